"""benchmarks/train_compare_torch.py: the PyTorch implementations match mmer_jax's models
(parameter counts, the log-mel front end) and one tiny interleaved round writes the JSON."""

import importlib.util
import json
import os
import sys

import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mmer_jax import config as config_lib  # noqa: E402
from mmer_jax.data.device import make_feature_step  # noqa: E402
from mmer_jax.models import build_model  # noqa: E402

from ..data.test_dialogue import _cosmic  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load(name):
    path = os.path.join(REPO, "benchmarks", f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, os.path.dirname(path))
    spec.loader.exec_module(mod)
    return mod


tc = _load("train_compare_torch")
tm = _load("torch_models")


def _flax_params(cfg, host, vocab, classes, modalities):
    model = build_model(cfg.model, num_classes=classes, vocab_size=vocab, modalities=modalities)
    inputs = make_feature_step(cfg.data)(host)
    key = jax.random.PRNGKey(0)
    shapes = jax.eval_shape(lambda: model.init({"params": key, "dropout": key}, inputs,
                                               train=False))
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes["params"]))


def _quickstart_host(b=2, n=24000, t=10, size=32, length=16, vocab=50):
    rng = np.random.default_rng(0)
    return {"audio_pcm": rng.integers(-3000, 3000, (b, n)).astype(np.int16),
            "audio_len": np.array([n, n // 2][:b] + [n] * (b - 2), np.int32),
            "frames_u8": rng.integers(0, 255, (b, t, size, size, 3)).astype(np.uint8),
            "frames_len": np.array([t, 3][:b] + [t] * (b - 2), np.int32),
            "tokens": rng.integers(1, vocab, (b, length)).astype(np.int32),
            "label": np.zeros(b, np.int32), "weight": np.ones(b, np.float32)}


def test_param_counts_match_flax_but_for_the_second_lstm_bias():
    # S002 (the paper config's sizes): word and dialogue BiLSTMs, MHA, LayerNorm, heads.
    cfg = config_lib.load("experiments/s002_iemocap_text_paper.py")
    host = {"tokens": np.ones((2, 3, 5), np.int32), "utt_mask": np.ones((2, 3), bool),
            "label": np.zeros((2, 3), np.int32), "weight": np.ones((2, 3), np.float32)}
    flax_n = _flax_params(cfg, host, 500, 6, ["text"])
    model = tc.torch_model("s002", cfg, 500, 6)
    assert tm.count_params(model) - tm.lstm_bias_surplus(model) == flax_n
    assert tm.lstm_bias_surplus(model) == 8 * 4 * cfg.model.text.lstm_hidden  # 2 BiLSTMs x 2 layers
    # The quickstart's fused model.
    cfg = config_lib.load("experiments/quickstart.py")
    flax_n = _flax_params(cfg, _quickstart_host(), 50, 6, ["audio", "frames", "text"])
    model = tc.torch_model("quickstart", cfg, 50, 6, frame_size=32)
    assert tm.count_params(model) - tm.lstm_bias_surplus(model) == flax_n
    assert abs(tm.count_params(model) - flax_n) / flax_n < tc.PARAM_TOLERANCE


def test_torch_logmel_matches_the_on_device_features():
    cfg = config_lib.load("experiments/quickstart.py")
    host = _quickstart_host()
    want = make_feature_step(cfg.data)(host)
    model = tc.torch_model("quickstart", cfg, 50, 6, frame_size=32)
    got, mask = model.logmel(torch.from_numpy(host["audio_pcm"]),
                             torch.from_numpy(host["audio_len"]))
    np.testing.assert_array_equal(mask.numpy(), np.asarray(want["audio_mask"]))
    np.testing.assert_allclose(got.numpy(), np.asarray(want["audio"]), atol=2e-3, rtol=1e-3)


def test_s002_torch_ignores_padding():
    model = tc.torch_model("s002", config_lib.load("experiments/s002_iemocap_text_paper.py"),
                           30, 6).eval()
    tokens = torch.tensor([[[3, 4, 0], [5, 0, 0], [0, 0, 0]]])
    mask = torch.tensor([[True, True, False]])
    a = model(tokens, mask)
    tokens2 = tokens.clone()
    tokens2[0, 2] = torch.tensor([7, 8, 9])  # words in a padded utterance
    b = model(tokens2, mask)
    torch.testing.assert_close(a[:, :2], b[:, :2])


@pytest.mark.slow  # ~35 s of CPU (S002's step compiles), 10 min wall on the loaded 2-core machine
def test_one_tiny_round_writes_the_json(tmp_path, capsys):
    _cosmic(tmp_path / "manual")
    out = tmp_path / "compare.json"
    overrides = [f"data.data_dir={tmp_path / 'tfds'}", f"data.manual_dir={tmp_path / 'manual'}",
                 "data.build_if_missing=true", "data.min_count=1", "data.utterance_bucket=8",
                 "data.max_utterances=8", "data.token_bucket=4", "train.batch_size=2",
                 "model.text.embed_dim=8", "model.text.lstm_hidden=4", "model.context_hidden=4",
                 "train.num_devices=1"]
    argv = ["--models", "s002", "--frameworks", "mmer_jax,torch_eager", "--rounds", "2",
            "--batches", "1", "--out", str(out), "--workdir", str(tmp_path / "w"), "--layout", "",
            "--threads", "1"]
    for o in overrides:
        argv += ["--override", o]
    assert tc.main(argv) == 0
    rec = json.loads(out.read_text())
    assert rec["what"] == "train-compare-torch" and rec["dtype"] == "float32"
    assert len(rec["load_average_before"]) == 3 and rec["torch"] == torch.__version__
    (setting,) = rec["settings"]
    assert setting["threads"] == "1" and setting["torch_threads"] == 1
    assert len(setting["affinity"]) == 1 and setting["OMP_WAIT_POLICY"] == "PASSIVE"
    (s,) = setting["models"]
    assert len(s["load_average_1min_per_round"]) == 2
    assert s["model"] == "s002" and s["unit"] == "dialogues" and s["global_batch"] == 2
    p = s["params"]
    assert p["torch_eager"] - p["torch_lstm_bias_hh"] == p["mmer_jax"]
    assert p["torch_minus_bias_hh_equals_mmer_jax"] is True
    rows = {r["framework"]: r for r in s["rows"]}
    assert set(rows) == {"mmer_jax", "torch_eager"}
    for r in rows.values():
        assert len(r["rounds"]) == 2 and all(x > 0 for x in r["rounds"])
        q = r["dialogues_per_s"]
        assert q["q1"] <= q["median"] <= q["q3"]
        # Several utterances per dialogue: utterances/s is the larger rate.
        assert r["utterances_per_s"]["median"] > q["median"]
    assert rows["torch_eager"]["ratio_to_torch_eager"] == 1.0
    assert 0 < s["padding"]["real_word_fraction"] <= 1
    assert "mmer_jax" in capsys.readouterr().out


@pytest.mark.slow  # torch.compile of both models: minutes on 2 CPU cores
def test_compiled_round_of_quickstart(tmp_path, tiny_generated):
    out = tmp_path / "compare.json"
    argv = ["--models", "quickstart", "--rounds", "1", "--batches", "1", "--out", str(out),
            "--workdir", str(tmp_path), "--override", f"data.data_dir={tiny_generated}",
            "--override", "data.config=tiny", "--layout", "", "--threads", "all"]
    assert tc.main(argv) == 0
    rec = json.loads(out.read_text())
    section = rec["settings"][0]["models"][0]
    rows = {r["framework"]: r for r in section["rows"]}
    assert set(rows) | set(section["errors"]) >= {"mmer_jax", "torch_eager",
                                                           "torch_compile"}
