"""benchmarks/speaker_norm_floor.py: the utterance statistics, and one run over two folds of a
tiny EmoDB-layout corpus writes the protocol and per-fold, per-mode UARs."""

import importlib.util
import json
import os

import numpy as np
import pytest

from ..data.test_speaker_norm import emodb_tones  # noqa: F401  (the module-scoped fixture)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_spec = importlib.util.spec_from_file_location(
    "bench_speaker_norm_floor", os.path.join(REPO, "benchmarks", "speaker_norm_floor.py"))
floor = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(floor)


def test_statistics_use_valid_frames_only():
    feats = np.zeros((2, 5, 2), np.float32)
    feats[0, :3, 0] = [1.0, 3.0, 8.0]  # deltas 2, 5
    feats[0, 3:] = 100.0  # padding: must not count
    feats[1, :, 1] = [0.0, 1.0, 2.0, 3.0, 4.0]  # deltas all 1: zero spread
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    x = floor.utterance_statistics(feats, mask)
    assert x.shape == (2, 6) and x.dtype == np.float64
    np.testing.assert_allclose(x[0], [4.0, 0.0, np.std([1, 3, 8]), 0.0, 1.5, 0.0])
    np.testing.assert_allclose(x[1], [0.0, 2.0, 0.0, np.sqrt(2.0), 0.0, 0.0])
    with pytest.raises(ValueError, match="at least 2"):
        floor.utterance_statistics(feats[:1], np.array([[1, 0, 0, 0, 0]], bool))


def test_modes_change_what_is_read(emodb_tones):  # noqa: F811
    root, data_dir = emodb_tones
    kw = dict(corpus="emodb", config="default", fold_protocol="lso", manual_dir=str(root),
              data_dir=str(data_dir), max_audio_s=4.0)
    feats = floor._feature_fn()
    means = {}  # the per-bin means: the first third of the statistics
    for m in ("none", "utterance", "mean"):
        x = floor.read_fold(floor.data_config(m, 1, **kw), feats)["x"]["train"]
        means[m] = x[:, : x.shape[1] // 3]
    assert np.abs(means["none"]).max() > 1.0  # raw log-mel levels
    np.testing.assert_allclose(means["utterance"], 0.0, atol=1e-4)  # per clip: centred
    # A speaker's two clips are one tone: centred on the speaker, each clip's mean is near 0.
    assert np.abs(means["mean"]).max() < 0.1 * np.abs(means["none"]).max()


def test_two_folds_write_the_protocol(emodb_tones, tmp_path, capsys):  # noqa: F811
    root, data_dir = emodb_tones
    out = tmp_path / "floor.json"
    modes = ["none", "mean_var"]  # the other two: test_modes_change_what_is_read
    assert floor.main(["--corpus", "emodb", "--folds", "1,2", "--modes", ",".join(modes),
                       "--manual_dir", str(root), "--data_dir", str(data_dir),
                       "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    prot = rec["protocol"]
    assert (prot["corpus"], prot["fold_protocol"], prot["num_folds"]) == ("emodb", "lso", 5)
    assert len(prot["classes"]) == 7 and prot["speaker_independent"] is True
    assert prot["num_statistics"] == 3 * prot["frontend"]["n_mels"]
    assert f"max_iter={floor.MAX_ITER}" in prot["selection"] and prot["features"]
    assert [f["fold"] for f in rec["folds"]] == [1, 2]
    for f, spk in zip(rec["folds"], prot["speakers_per_fold"], strict=True):
        assert f["speakers"] == spk
        assert sum(f["clips"].values()) == 20  # every clip, once, in one split
        assert not set(spk["test"]) & (set(spk["train"]) | set(spk["validation"]))
    assert list(rec["modes"]) == modes
    for m in rec["modes"].values():
        assert [r["fold"] for r in m["folds"]] == [1, 2]
        for r in m["folds"]:
            assert r["C"] in floor.C_GRID
            assert r["validation_uar"] == max(r["validation_uar_by_C"].values())
            assert 0.0 <= r["test_uar"] <= 1.0
        t = [r["test_uar"] for r in m["folds"]]
        assert m["test_uar"]["mean"] == pytest.approx(np.mean(t))
        assert m["test_uar"]["std"] == pytest.approx(np.std(t, ddof=1))
    assert (rec["what"], rec["device"]) == ("speaker-norm-floor", "cpu")
    printed = capsys.readouterr().out
    assert "| none |" in printed and "| mean_var |" in printed
