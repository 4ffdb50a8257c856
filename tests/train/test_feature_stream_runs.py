"""The MOSI/MOSEI configs end to end on tiny pickles in the real release layouts: each trains one
epoch on the feature streams (regression, L1, selection on validation MAE) and writes MMSA's
metrics; without a copy of the corpus the harness reports it unavailable, naming
``data.manual_dir``."""

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data_prep"))
from fixtures_text import MOSI_SPLIT_SIZES, mosi_object, write_pickle  # noqa: E402

from mmer_jax import config as config_lib  # noqa: E402

from .helpers import only_variant  # noqa: E402

MOSI = ("cmu_mosi", "mosi_data.pkl", "mult")  # corpus, pickle path in the release, release kind
MOSEI = ("cmu_mosei", "MOSEI/Processed/aligned_50.pkl", "mmsa")
# Tiny models: every stream through 4-unit LSTMs.
QUICKSTART = {"model.head_hidden": 8, **{f"model.encoders.{m}.{k}": 4 for k in ("hidden", "proj")
                                         for m in ("text_feat", "audio_feat", "vision_feat")}}
CONFIGS = [
    ("experiments/quickstart_cmu_mosi.py", *MOSI, QUICKSTART),
    ("experiments/quickstart_cmu_mosei.py", *MOSEI, QUICKSTART),
    ("experiments/mi_cmu_mosei.py", *MOSEI,
     {"model.width": 8, "model.num_heads": 2, "model.segments": 4, "model.fc_hidden": 8}),
    ("experiments/tsra_cmu_mosi.py", *MOSI,
     {"model.hidden": 4, "model.dim": 4, "model.recognizer_hidden": 4, "model.head_hidden": 4}),
]
IDS = [c[0].split("/")[-1][:-3] for c in CONFIGS]
# The default run trains the MOSI quickstart (the release's MulT layout, every stream); the
# MOSEI MMSA layout and the MI/TSRA configs (their models are tested in tests/models) train
# with the slow tests, to keep the default suite short.
DEFAULT_CASES = ("quickstart_cmu_mosi",)
TRAIN_CASES = [pytest.param(*c, id=i, marks=[] if i in DEFAULT_CASES else [pytest.mark.slow])
               for c, i in zip(CONFIGS, IDS, strict=True)]
REGRESSION_KEYS = {"acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc3", "acc5", "acc7", "mae",
                   "corr", "n", "loss"}
# One epoch of 3 steps on two devices.
TINY = {"train.epochs": 1, "train.batch_size": 2, "train.num_devices": 2, "train.progress": False,
        "train.log_every": 1, "data.max_feat_steps": 16}


def _release(root: Path, corpus: str, fname: str, kind: str) -> Path:
    """A tiny aligned pickle of ``corpus`` in its release layout under ``root``; returns the
    manual_dir."""
    raw = root / f"{corpus}_raw"
    write_pickle(raw / fname, mosi_object(kind, aligned=True), protocol=2 if kind == "mult" else 4)
    return raw


def _train_and_check(path, corpus, fname, kind, model, tmp_path, every_variant: bool):
    from mmer_jax.train.run import run

    raw = _release(tmp_path, corpus, fname, kind)
    items = {**TINY, **model, "data.data_dir": tmp_path / "tfds", "data.manual_dir": raw}
    cfg = config_lib.load(path, [f"{k}={v}" for k, v in items.items()])
    if not every_variant:  # the fused streams only: one compilation, not one per variant
        cfg = only_variant(cfg, "fused", cfg.variants.fused)
    assert cfg.data.corpus == corpus and cfg.protocol.task == "regression"
    assert cfg.protocol.regression_loss == "l1" and cfg.train.select_metric == "mae"
    work = str(tmp_path / "run")
    run(cfg, work)
    res = json.load(open(os.path.join(work, "results.json")))
    assert res["corpus"] == corpus and res["modalities"] == ["text_feat", "audio_feat",
                                                             "vision_feat"]
    assert res["protocol"]["selection"].startswith("best validation mae @ epoch")
    assert "examples 6/3/4" in res["protocol"]["split"]  # measured from the splits read
    variants = {k: list(v) for k, v in cfg.variants.items()}
    assert set(res.get("variants") or {"fused": None}) == set(variants)
    for name in variants:
        scores = res["variants"][name] if "variants" in res else res
        for split, n in (("validation", MOSI_SPLIT_SIZES["valid"]),
                         ("test", MOSI_SPLIT_SIZES["test"])):
            m = scores[split]
            assert REGRESSION_KEYS <= set(m), (name, split, sorted(m))
            assert m["n"] == n and m["mae"] >= 0.0 and 0.0 <= m["acc7"] <= 1.0
            assert 0.0 <= m["acc2_has0"] <= 1.0 and -1.0 <= m["corr"] <= 1.0
            assert "accuracy" not in m  # a regression run reports no class metrics
    # L1 is the loss: the validation loss is the validation MAE.
    assert res["validation"]["loss"] == pytest.approx(res["validation"]["mae"], rel=1e-5)


@pytest.mark.parametrize("path,corpus,fname,kind,model", TRAIN_CASES)
def test_config_trains_on_the_release_layout(path, corpus, fname, kind, model, tmp_path):
    _train_and_check(path, corpus, fname, kind, model, tmp_path, every_variant=False)


@pytest.mark.slow
def test_mosi_config_trains_every_variant(tmp_path):
    _train_and_check(*CONFIGS[0], tmp_path, every_variant=True)


@pytest.mark.parametrize("path,corpus,fname,kind,model", CONFIGS, ids=IDS)
def test_harness_skips_the_corpus_without_a_copy(path, corpus, fname, kind, model, tmp_path,
                                                 monkeypatch):
    from mmer_jax.reproduce.harness import data_available

    for var in ("MMER_DATA_ROOT", f"MMER_{corpus.upper()}"):
        monkeypatch.delenv(var, raising=False)
    cfg = config_lib.load(path, [f"data.data_dir={tmp_path / 'tfds'}"])
    assert cfg.data.manual_dir == ""
    ok, why = data_available(cfg.data)
    assert not ok
    assert corpus in why and "data.manual_dir" in why and "unset" in why
    # The corpus's own variable, then $MMER_DATA_ROOT/<corpus>, is where the config looks.
    raw = _release(tmp_path, corpus, fname, kind)
    monkeypatch.setenv(f"MMER_{corpus.upper()}", str(raw))
    cfg = config_lib.load(path, [f"data.data_dir={tmp_path / 'tfds'}"])
    assert cfg.data.manual_dir == str(raw)
    ok, why = data_available(cfg.data)
    assert ok and str(raw) in why
    monkeypatch.delenv(f"MMER_{corpus.upper()}")
    monkeypatch.setenv("MMER_DATA_ROOT", str(tmp_path))
    assert config_lib.load(path, []).data.manual_dir == str(tmp_path / corpus)


def test_meld_dialogue_protocol_reads_whole_dialogues(tmp_path):
    from fixtures_text import write_meld

    from experiments import corpora
    from mmer_jax.config import base_config
    from mmer_jax.data.pipeline import make_pipeline

    write_meld(tmp_path / "MELD.Raw")
    cfg = corpora.meld_dialogues(base_config("bc_lstm"))
    assert (cfg.data.corpus, cfg.data.config, cfg.data.unit) == ("meld", "text", "dialogue")
    assert not cfg.protocol.speaker_independent and list(cfg.model.modalities) == ["text"]
    cfg.data.data_dir, cfg.data.manual_dir = str(tmp_path / "tfds"), str(tmp_path)
    pipe = make_pipeline(cfg.data, ["text"], 0)
    for split in ("train", "validation", "test"):
        src = pipe.sources[split]
        dialogues = {bytes(src[i]["dialogue_id"]) for i in range(len(src))}
        assert pipe.num_examples(split) == len(dialogues)
        batch = next(iter(pipe.batches(split, len(dialogues))))
        b, u, _ = batch["tokens"].shape
        assert (b, u % cfg.data.utterance_bucket) == (len(dialogues), 0)
        assert int(batch["utt_mask"].sum()) == len(src)  # every utterance once, none cut
        assert ((batch["tokens"] > 0).any(-1) <= batch["utt_mask"]).all()


@pytest.mark.slow  # 15 s; the release layout stays fast through quickstart_cmu_mosi
def test_mgmnet_meld_config_trains_on_the_release_layout(tmp_path, monkeypatch):
    from fixtures_text import write_meld

    from mmer_jax.reproduce.harness import data_available
    from mmer_jax.train.run import run

    write_meld(tmp_path / "MELD.Raw")
    items = {"train.epochs": 1, "train.batch_size": 2, "train.num_devices": 2,
             "train.progress": False, "model.width": 8, "model.num_heads": 2,
             "model.embed_dim": 8, "model.rank": 2,
             "model.ib_dim": 4, "model.context_hidden": 4, "model.head_hidden": 8,
             "data.data_dir": tmp_path / "tfds", "data.manual_dir": tmp_path}
    cfg = config_lib.load("experiments/mgmnet_meld.py", [f"{k}={v}" for k, v in items.items()])
    assert (cfg.data.corpus, cfg.data.unit, cfg.system) == ("meld", "dialogue", "mgmnet")
    res = run(cfg, str(tmp_path / "run"))
    assert len(res["protocol"]["classes"]) == 7 and 0.0 <= res["test"]["weighted_f1"] <= 1.0
    # Dialogue batches ([B, U, K] softmax, padded turns weight 0): one saved row per real turn.
    from mmer_jax.train.report import read_predictions

    saved = read_predictions(tmp_path / "run" / "variants" / res["variant"], "test")
    probs = np.asarray(saved["probs"])
    assert probs.shape == (sum(map(sum, res["test"]["confusion"])), 7)  # turns, not dialogues
    assert np.all(probs[np.arange(len(probs)), saved["pred"]] >= probs.max(-1) - 1e-6)
    # Without a copy the harness skips MELD, naming where it looked.
    monkeypatch.delenv("MMER_MELD", raising=False)
    monkeypatch.delenv("MMER_DATA_ROOT", raising=False)
    cfg = config_lib.load("experiments/mgmnet_meld.py", [])
    ok, why = data_available(cfg.data)
    assert not ok and "data.manual_dir" in why
