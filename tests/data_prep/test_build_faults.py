"""Issue 32, kind 5: builds that went stale or left debris. A build's recipe (config fields,
manifest contents) is part of its fingerprint; killed builds leave nothing after the next command;
two builds of one corpus at once wait instead of colliding; duplicate ids, git-lfs pointers and a
raising ``get_config()`` are one-line errors naming the file; results.json names the split and
fold read with ``data.cache=False``. Each fault: the issue's example and a variant."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import fixtures_av as fx  # noqa: E402

from data_prep._common.report import BuildReport, CorpusError, read_report  # noqa: E402
from data_prep.build import BuildError, build  # noqa: E402
from mmer_jax.config import base_config, load_config_file  # noqa: E402
from mmer_jax.data.pipeline import make_pipeline  # noqa: E402
from mmer_jax.errors import UsageError  # noqa: E402
from mmer_jax.train.run import protocol  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
EMOTIONS = ("Angry", "Calm", "Happy", "Sad")
LFS_POINTER = ("version https://git-lfs.github.com/spec/v1\noid sha256:"
               "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 95044\n")


def _turev_like(root: Path, per_class: int = 1) -> None:
    """TurEV-DB's layout: ``<Emotion>/<speaker>_<n>_<word>.wav``, 3 speakers."""
    for k, emo in enumerate(EMOTIONS):
        for s in range(3):
            for j in range(per_class):
                fx.write_wav(root / emo / f"{100 + s}_{j}_w.wav", 0.05, 16000,
                             freq=200 + 50 * k + 10 * s)


def _spec(path: Path, **kw) -> str:
    spec = {"name": "mini", "classes": ["angry", "calm", "happy", "sad"],
            "speaker_regex": r"^(?P<speaker>\d+)_"} | kw
    path.write_text(json.dumps(spec))
    return str(path)


def _labels(builder) -> dict[str, str]:
    src = builder.as_data_source("full")
    names = builder.info.features["label"].names
    return {fx.text(ex["id"]).split("/")[0]: names[int(ex["label"])]
            for ex in (src[i] for i in range(len(src)))}


def _debris(tfds_dir: Path) -> list[str]:
    """What an interrupted build leaves: TFDS's incomplete.*, our .mmer-rebuild-*, a swap's
    .previous-*."""
    return sorted(str(p.relative_to(tfds_dir)) for p in tfds_dir.rglob("*")
                  if p.name.startswith(("incomplete.", ".mmer-rebuild-")) or ".previous-" in p.name)


# ---- the fingerprint covers what the build read ----------------------------------------------

def test_spec_edited_under_the_same_name_rebuilds(tmp_path, capsys):
    """The issue's example: Calm merged into sad in the JSON spec, same name."""
    root, tfds_dir = tmp_path / "corpus", str(tmp_path / "tfds")
    _turev_like(root)
    spec = _spec(tmp_path / "mini.json")
    assert set(_labels(build("folder", spec, tfds_dir, str(root))).items()) == {
        ("Angry", "angry"), ("Calm", "calm"), ("Happy", "happy"), ("Sad", "sad")}
    _spec(tmp_path / "mini.json", classes=["angry", "happy", "sad"], labels={"calm": "sad"})
    capsys.readouterr()
    b = build("folder", spec, tfds_dir, str(root))
    assert "made from another recipe" in capsys.readouterr().err
    assert b.info.features["label"].names == ["angry", "happy", "sad"]
    assert set(_labels(b).items()) == {("Angry", "angry"), ("Calm", "sad"), ("Happy", "happy"),
                                       ("Sad", "sad")}
    assert not _debris(Path(tfds_dir))
    # Without a manual_dir to rebuild from, another recipe is refused, never reused.
    _spec(tmp_path / "mini.json", classes=["angry", "calm", "happy", "sad"])
    with pytest.raises(BuildError, match=r"another recipe \(classes .*pass its manual_dir"):
        build("folder", spec, tfds_dir)


def test_manifest_edited_in_place_rebuilds(tmp_path):
    """Variant: the manifest's labels swapped, same file size (the listing cannot see it)."""
    root, tfds_dir = tmp_path / "corpus", str(tmp_path / "tfds")
    _turev_like(root)
    rows = [f"{e}/10{s}_0_w.wav,{e}" for e in ("Angry", "Sad") for s in range(3)]
    (root / "labels.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    spec = _spec(tmp_path / "m.json", classes=["angry", "sad"], manifest="labels.csv")
    assert _labels(build("folder", spec, tfds_dir, str(root))) == {"Angry": "angry",
                                                                   "Sad": "sad"}
    swapped = [r.replace(",Angry", ",Xngry").replace(",Sad", ",Angry").replace(",Xngry", ",Sad")
               for r in rows]
    (root / "labels.csv").write_text("path,label\n" + "\n".join(swapped) + "\n")
    assert _labels(build("folder", spec, tfds_dir, str(root))) == {"Angry": "sad",
                                                                   "Sad": "angry"}


# ---- kill anywhere: no debris after the next command ---------------------------------------

_KILLER = textwrap.dedent("""
    import os, signal, sys, time
    point, sig, spec, tfds_dir, root, force, slow = sys.argv[1:]
    sig = getattr(signal, sig)
    from data_prep.folder import folder
    orig = folder.LabelledFolder._generate_examples

    def gen(self, items, split):
        for i, x in enumerate(orig(self, items, split)):
            if point == "generate" and i == 2:
                os.kill(os.getpid(), sig)
            time.sleep(float(slow))
            yield x

    folder.LabelledFolder._generate_examples = gen
    if point == "swap":  # between moving the old build aside and moving the new one in
        real = os.replace

        def replace(src, dst):
            real(src, dst)
            if ".previous-" in os.fspath(dst):
                os.kill(os.getpid(), sig)

        os.replace = replace
    from data_prep.build import build
    build("folder", spec, tfds_dir, root, force=force == "1")
""")


def _run(point: str, sig: str, spec: str, tfds_dir: Path, root: Path, force: bool = False,
         slow: float = 0.0, wait: bool = True):
    env = dict(os.environ, PYTHONPATH=str(REPO), MMER_PROGRESS="0")
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLER, point, sig, spec, str(tfds_dir), str(root),
         "1" if force else "0", str(slow)], cwd=REPO, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    if not wait:
        return proc
    out, err = proc.communicate(timeout=120)
    return proc.returncode, err


@pytest.mark.parametrize("point,sig,force", [
    ("generate", "SIGKILL", False),  # the example: killed mid-build
    ("generate", "SIGTERM", False),
    ("generate", "SIGKILL", True),  # variant: a --force rebuild killed mid-build
    ("swap", "SIGKILL", True),  # variant: killed between the two renames of the swap
])
def test_killed_build_leaves_no_debris_after_the_next_build(point, sig, force, tmp_path):
    root, tfds_dir = tmp_path / "corpus", tmp_path / "tfds"
    _turev_like(root)
    spec = _spec(tmp_path / "mini.json")
    if force:
        build("folder", spec, str(tfds_dir), str(root))
    rc, err = _run(point, sig, spec, tfds_dir, root, force)
    assert rc == -getattr(signal, sig), err
    assert _debris(tfds_dir), "the kill left nothing to clean: the test did not kill mid-build"
    b = build("folder", spec, str(tfds_dir), str(root))
    assert not _debris(tfds_dir)
    assert len(b.as_data_source("full")) == 12


def _build_under_way(tmp_path):
    """A slowed build of a small folder corpus, started in a child and waited for until its
    TFDS ``incomplete.*`` directory exists: (the child, spec, data dir, corpus root)."""
    root, tfds_dir = tmp_path / "corpus", tmp_path / "tfds"
    _turev_like(root)
    spec = _spec(tmp_path / "mini.json")
    first = _run("none", "SIGKILL", spec, tfds_dir, root, slow=0.3, wait=False)
    deadline = time.time() + 60
    while not list(tfds_dir.rglob("incomplete.*")) and time.time() < deadline:
        time.sleep(0.1)
    return first, spec, tfds_dir, root


def test_two_builds_at_once_wait_and_reuse(tmp_path):
    """The issue's example: two builds of one corpus at once (was FileExistsError)."""
    first, spec, tfds_dir, root = _build_under_way(tmp_path)
    assert first.poll() is None, first.communicate()[1]
    rc2, err2 = _run("none", "SIGKILL", spec, tfds_dir, root)
    _, err1 = first.communicate(timeout=120)
    assert first.returncode == 0 and rc2 == 0, (err1, err2)
    assert "waiting for another build of folder/mini" in err2 and "reusing" in err2
    assert not _debris(tfds_dir)


def test_a_forced_rebuild_during_a_build_waits(tmp_path):
    """Variant: ``--force`` started while a plain build of the same corpus runs."""
    first, spec, tfds_dir, root = _build_under_way(tmp_path)
    rc2, err2 = _run("none", "SIGKILL", spec, tfds_dir, root, force=True)
    _, err1 = first.communicate(timeout=120)
    assert first.returncode == 0 and rc2 == 0, (err1, err2)
    assert "waiting for another build" in err2
    assert not _debris(tfds_dir)
    assert len(build("folder", spec, str(tfds_dir)).as_data_source("full")) == 12


# ---- one-line errors naming the file -----------------------------------------------------------

def test_same_stem_as_wav_and_flac_names_both_files(tmp_path):
    """The issue's example (was ModuleNotFoundError: tensorflow from inside TFDS)."""
    root = tmp_path / "corpus"
    _turev_like(root)
    import soundfile as sf

    x, sr = sf.read(root / "Sad" / "101_0_w.wav", dtype="int16")
    sf.write(root / "Sad" / "101_0_w.flac", x, sr)
    with pytest.raises(CorpusError) as err:
        build("folder", _spec(tmp_path / "m.json"), str(tmp_path / "tfds"), str(root))
    msg = str(err.value)
    assert "\n" not in msg and "same example id 'Sad/101_0_w'" in msg
    assert "101_0_w.wav" in msg and "101_0_w.flac" in msg


def test_duplicate_ids_across_manifest_splits_and_in_any_builder(tmp_path):
    """Variant: one stem in the manifest's train and test splits; and the report's own guard,
    which every builder passing ``example_id`` goes through."""
    root = tmp_path / "corpus"
    _turev_like(root)
    import soundfile as sf

    x, sr = sf.read(root / "Sad" / "101_0_w.wav", dtype="int16")
    sf.write(root / "Sad" / "101_0_w.flac", x, sr)
    rows = ["path,label,split", "Sad/101_0_w.wav,Sad,train", "Sad/101_0_w.flac,Sad,test",
            "Angry/100_0_w.wav,Angry,validation"]
    (root / "m.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(CorpusError, match=r"101_0_w\.wav and .*101_0_w\.flac give the same"):
        build("folder", _spec(tmp_path / "m.json", manifest="m.csv"), str(tmp_path / "tfds"),
              str(root))
    rep = BuildReport("crema_d", "audio", "1.0.0")
    rep.add("train", "anger", "1001", path="/c/AudioWAV/1001_DFA_ANG_XX.wav",
            example_id="1001_DFA_ANG_XX")
    with pytest.raises(CorpusError, match=r"1001_DFA_ANG_XX\.wav and /d/1001_DFA_ANG_XX\.mp3"):
        rep.add("test", "anger", "1001", path="/d/1001_DFA_ANG_XX.mp3",
                example_id="1001_DFA_ANG_XX")


def test_crema_d_clone_without_git_lfs(tmp_path):
    """The issue's example: every wav of a CREMA-D clone is a git-lfs pointer."""
    root = tmp_path / "CREMA-D"
    for a in ("1001", "1075", "1085"):
        for emo in ("ANG", "SAD"):
            p = root / "AudioWAV" / f"{a}_IEO_{emo}_HI.wav"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(LFS_POINTER)
    with pytest.raises(CorpusError) as err:
        build("crema_d", "audio", str(tmp_path / "tfds"), str(root))
    msg = str(err.value)
    assert f"6 files under {root} are git-lfs pointers" in msg and "git lfs pull" in msg
    assert "1001_IEO_ANG_HI.wav" in msg and "\n" not in msg


def test_some_lfs_pointers_are_counted_skips_with_the_reason(tmp_path):
    """Variant: a partly fetched clone; the build succeeds and the report says why each of the
    pointer files was skipped."""
    root = tmp_path / "corpus"
    _turev_like(root)
    for s in range(3):
        (root / "Calm" / f"10{s}_0_w.wav").write_text(LFS_POINTER)
    b = build("folder", _spec(tmp_path / "m.json"), str(tmp_path / "tfds"), str(root))
    skipped = read_report(b)["skipped"]["full"]
    assert len(skipped) == 3
    assert all(s["reason"].startswith("git-lfs pointer") and "git lfs pull" in s["reason"]
               for s in skipped)


@pytest.mark.parametrize("body,error", [
    ("    c = base_config('quickstart')\n    return c['missing_key_in_get_config']\n",
     "KeyError"),  # the example
    ("    return _helper()\n\n\ndef _helper():\n    return 1 / 0\n",
     "ZeroDivisionError"),  # variant: raised in a helper the config calls
])
def test_config_whose_get_config_raises_is_named(body, error, tmp_path):
    path = tmp_path / "my_config.py"
    path.write_text("from mmer_jax.config import base_config\n\n\ndef get_config():\n" + body)
    with pytest.raises(UsageError) as err:
        load_config_file(str(path))
    assert str(err.value).startswith(f"config file {str(path)!r}: get_config() raised {error}")


# ---- results.json with data.cache=False -------------------------------------------------------

@pytest.fixture(scope="module")
def crema_d(tmp_path_factory):
    """A CREMA-D copy with an actor in each of the 5 actor folds and in the fixed split's
    validation (1076) and test (1085) groups."""
    root = tmp_path_factory.mktemp("cache_off") / "CREMA-D"
    for i, a in enumerate(("1001", "1020", "1040", "1060", "1076", "1085")):
        for emo in ("ANG", "SAD"):
            stem = f"{a}_IEO_{emo}_HI"
            fx.write_wav(root / "AudioWAV" / f"{stem}.wav", 0.1, 16000, freq=200 + 20 * i)
            fx.write_mp4(root / "VideoFlash" / f"{stem}.flv", seconds=0.3, fps=10,
                         size=(120, 160), vcodec="flv", audio_sr=22050, face=False)
    return root


def _protocol(root: Path, config: str, cache: bool) -> dict:
    cfg = base_config("quickstart")
    cfg.protocol.split = "CREMA-D fixed actor split of the av builder config"  # experiments/s003
    cfg.data.corpus, cfg.data.config, cfg.data.cache = "crema_d", config, cache
    cfg.data.data_dir, cfg.data.manual_dir = str(root.parent / "tfds"), str(root)
    cfg.data.read_threads = 0
    return protocol(cfg, make_pipeline(cfg.data, ["audio"], 0), "x")


@pytest.mark.parametrize("config,fold,test_actor", [
    ("av_fold3", 3, "1040"),  # the example
    ("audio_fold2", 2, "1020"),  # variant: another fold, the audio build
])
def test_uncached_fold_run_reports_its_split_and_fold(crema_d, config, fold, test_actor):
    p = _protocol(crema_d, config, cache=False)
    assert p["fold"] == f"actors {fold}/5"
    assert p["split"].startswith(f"crema_d/{config.split('_')[0]}, actors fold {fold} of 5")
    assert f"test {test_actor})" in p["split"] and "fixed actor split" not in p["split"]
    assert p == _protocol(crema_d, config, cache=True)  # as with the cache on


def test_uncached_own_split_run_names_its_builder_config(crema_d):
    """A build's own splits with data.cache=False: named from the builder config actually read
    (``audio``), not from the declaration (the ``av`` config's)."""
    p = _protocol(crema_d, "audio", cache=False)
    assert p["split"].startswith("crema_d/audio (Audio, fixed actor split.): examples 8/2/2")
