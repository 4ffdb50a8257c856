"""S004's speech and face configs on its paper's corpora, end to end on fixtures in the real
release layouts: ``s004_speech_cmu_mosi`` (COVAREP frames of a MulT pickle, regression scored by
binary polarity), ``s004_speech_meld`` and ``s004_face_meld`` (MELD's mp4 clips through the
``av`` builder config). Each trains one tiny epoch; without a copy of the corpus the harness
reports the config unavailable, naming the files to fetch."""

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data_prep"))
from fixtures_text import MOSI_SPLIT_SIZES, mosi_object, write_meld, write_pickle  # noqa: E402

from mmer_jax import config as config_lib  # noqa: E402

MOSI_CFG = "experiments/s004_speech_cmu_mosi.py"
MELD_SPEECH = "experiments/s004_speech_meld.py"
MELD_FACE = "experiments/s004_face_meld.py"
# One epoch on two devices, batches of 2.
TINY = {"train.epochs": 1, "train.batch_size": 2, "train.num_devices": 2, "train.progress": False,
        "train.log_every": 1}
TINY_SPEECH = {"model.audio.filters": 2, "model.audio.hidden": 4}
TINY_FACE = {"model.face.width": 0.0625, "model.face.blocks": "(1, 1, 1)",
             "model.face.final_conv": 8, "model.face.fc_dim": 8}


def _load(path: str, items: dict):
    return config_lib.load(path, [f"{k}={v}" for k, v in items.items()])


def _results(work: Path) -> dict:
    return json.load(open(os.path.join(work, "results.json")))


@pytest.fixture(scope="module")
def meld_release(tmp_path_factory) -> tuple[Path, Path]:
    """(manual_dir, data_dir): MELD's CSVs and mp4 clips in the release layout, built once
    (``av`` config) for the tests of this module."""
    from data_prep.build import build

    root = tmp_path_factory.mktemp("meld")
    write_meld(root / "MELD.Raw", clips=True, missing=None, bad_row=False)
    build("meld", "av", str(root / "tfds"), str(root / "MELD.Raw"))
    return root / "MELD.Raw", root / "tfds"


def test_mosi_speech_trains_on_covarep_frames_of_the_mult_pickle(tmp_path):
    from mmer_jax.train.run import run

    raw = tmp_path / "mosi"
    write_pickle(raw / "mosi_data.pkl", mosi_object("mult", aligned=True), protocol=2)
    cfg = _load(MOSI_CFG, {**TINY, **TINY_SPEECH, "data.max_feat_steps": 16,
                           "data.data_dir": tmp_path / "tfds", "data.manual_dir": raw})
    assert (cfg.data.corpus, cfg.model.name, cfg.protocol.task) == (
        "cmu_mosi", "s004_speech", "regression")
    assert cfg.protocol.regression_loss == "l1" and cfg.train.select_metric == "mae"
    res = run(cfg, str(tmp_path / "run"))
    assert res["modalities"] == ["audio_feat"]
    assert res["protocol"]["selection"].startswith("best validation mae @ epoch")
    for split, n in (("validation", MOSI_SPLIT_SIZES["valid"]), ("test", MOSI_SPLIT_SIZES["test"])):
        m = res[split]
        assert m["n"] == n and m["mae"] >= 0.0
        # S004's measure: binary polarity from the predicted score's sign.
        for key in ("acc2_has0", "acc2_non0", "f1_has0", "f1_non0"):
            assert 0.0 <= m[key] <= 1.0, (split, key)
        assert "accuracy" not in m
    assert res["validation"]["loss"] == pytest.approx(res["validation"]["mae"], rel=1e-5)
    assert _results(tmp_path / "run")["test"] == res["test"]


def _train_meld(path: str, model: dict, modality: str, meld_release, tmp_path) -> dict:
    from mmer_jax.train.run import run

    raw, tfds_dir = meld_release
    cfg = _load(path, {**TINY, **model, "data.data_dir": tfds_dir, "data.manual_dir": raw})
    assert (cfg.data.corpus, cfg.data.config) == ("meld", "av")
    assert not cfg.protocol.speaker_independent and list(cfg.model.modalities) == [modality]
    res = run(cfg, str(tmp_path / "run"))
    assert res["modalities"] == [modality] and len(res["protocol"]["classes"]) == 7
    # The fixture's dev and test utterances (missing clip none): every one scored once.
    assert (res["validation"]["n"], res["test"]["n"]) == (3, 2)
    for split in ("validation", "test"):
        assert 0.0 <= res[split]["accuracy"] <= 1.0 and 0.0 <= res[split]["weighted_f1"] <= 1.0
    assert res["protocol"]["selection"].startswith("best validation weighted_f1 @ epoch")
    return res


def test_meld_speech_trains_on_the_clips_audio(meld_release, tmp_path):
    _train_meld(MELD_SPEECH, TINY_SPEECH, "audio", meld_release, tmp_path)


@pytest.mark.slow  # Inception-ResNet-v2 compiles for a while even at 1/16 width
def test_meld_face_trains_on_the_face_crops(meld_release, tmp_path):
    res = _train_meld(MELD_FACE, TINY_FACE, "face", meld_release, tmp_path)
    assert res["protocol"]["classes"][0] == "neutral"


@pytest.mark.parametrize("path,corpus,fetch", [
    (MOSI_CFG, "cmu_mosi", "mosi_data.pkl"),
    (MELD_SPEECH, "meld", "MELD.Raw"),
    (MELD_FACE, "meld", "MELD.Raw"),
], ids=["speech_cmu_mosi", "speech_meld", "face_meld"])
def test_harness_skips_the_config_without_a_copy(path, corpus, fetch, tmp_path, monkeypatch):
    from mmer_jax.reproduce.harness import data_available

    for var in ("MMER_DATA_ROOT", f"MMER_{corpus.upper()}"):
        monkeypatch.delenv(var, raising=False)
    cfg = _load(path, {"data.data_dir": tmp_path / "tfds"})
    assert cfg.data.manual_dir == ""
    ok, why = data_available(cfg.data)
    assert not ok
    assert corpus in why and "data.manual_dir" in why and fetch in why
    # The corpus's own variable, then $MMER_DATA_ROOT/<corpus>, is where the config looks.
    monkeypatch.setenv(f"MMER_{corpus.upper()}", str(tmp_path / "copy"))
    assert _load(path, {}).data.manual_dir == str(tmp_path / "copy")
    monkeypatch.delenv(f"MMER_{corpus.upper()}")
    monkeypatch.setenv("MMER_DATA_ROOT", str(tmp_path))
    assert _load(path, {}).data.manual_dir == str(tmp_path / corpus)
