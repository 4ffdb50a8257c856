"""A tiny regression run end to end (protocol.task = "regression"): the generated corpus with a
synthetic score per class (data.class_scores), a 1-output head, L1 loss, selection on validation
MAE, and MMSA's metric keys in results.json, metrics.jsonl and report.md."""

import json
import os

import numpy as np
import pytest

from mmer_jax.errors import UsageError

from .helpers import only_variant, tiny_config

SCORES = "[-3.0, 2.0, -1.5, -2.5, -0.5, 1.0]"  # one per generated class, in label order
KEYS = {"acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc3", "acc5", "acc7", "mae", "corr", "n"}


def _cfg(data_dir, **extra):
    small = {"train.epochs": 2, "train.log_every": 2, "data.max_tokens": 8,
             "model.encoders.text.embed_dim": 8, "model.encoders.text.hidden": 8,
             "model.head_hidden": 8, "protocol.task": "regression",
             "train.select_metric": "mae", "data.class_scores": SCORES, **extra}
    cfg = only_variant(tiny_config(data_dir, **small), "text", ["text"])
    cfg.model.modalities = ["text"]
    return cfg


def test_regression_run_writes_mmsa_metrics(tiny_generated, tmp_path, capsys):
    from mmer_jax.train.run import run

    work = str(tmp_path / "run")
    results = run(_cfg(tiny_generated), work)
    # No progress bar (not a terminal): the log says when the first step has compiled.
    assert "[text] first train step compiled and ran in " in capsys.readouterr().err
    stored = json.load(open(os.path.join(work, "results.json")))
    assert stored == json.loads(json.dumps(results))
    for split in ("test", "validation"):
        assert KEYS <= set(stored[split]) and "loss" in stored[split]
        assert "accuracy" not in stored[split] and "confusion" not in stored[split]
        assert 0.0 <= stored[split]["acc2_has0"] <= 1.0 and stored[split]["mae"] >= 0.0
        assert stored[split]["n"] > 0
    # L1 is the loss: the validation loss is the validation MAE.
    assert stored["validation"]["loss"] == pytest.approx(stored["validation"]["mae"], rel=1e-5)
    assert stored["protocol"]["selection"].startswith("best validation mae @ epoch")

    records = [json.loads(ln) for ln in open(os.path.join(work, "metrics.jsonl"))]
    val = [r for r in records if r["split"] == "validation"]
    assert len(val) == 2 and all({"mae", "corr", "acc2_non0"} <= set(r) for r in val)
    # Selection kept the epoch of the lowest validation MAE (lower is better).
    best = min(range(2), key=lambda i: (val[i]["mae"], i))
    assert stored["best_epoch"] == best + 1
    assert stored["validation"]["mae"] == pytest.approx(val[best]["mae"], rel=1e-5)
    md = open(os.path.join(work, "report.md")).read()
    assert "| Acc-2 (has-0) |" in md and "MAE" in md and "Acc-3" in md

    # Everything that rebuilds the model sizes its head as the trainer did: 1 output.
    from mmer_jax.reproduce.model_profile import profile_config
    from mmer_jax.serve.predictor import Predictor
    from mmer_jax.train.evaluate import load_run_config

    cfg = load_run_config(work)
    assert profile_config(cfg)["params"] == stored["num_params"]
    # predict / serve / export refuse it in one line instead of failing on the head's shape.
    with pytest.raises(UsageError, match="regression run"):
        Predictor(work)


def test_class_scores_must_cover_every_class(tiny_generated, tmp_path):
    from mmer_jax.train.run import run

    with pytest.raises(UsageError, match="data.class_scores': 2 scores for 6 classes"):
        run(_cfg(tiny_generated, **{"data.class_scores": "[1.0, 2.0]"}), str(tmp_path / "bad"))


def test_pipeline_carries_the_score(tiny_generated):
    from mmer_jax.data.pipeline import make_pipeline

    cfg = _cfg(tiny_generated)
    pipe = make_pipeline(cfg.data, ["text"], 0)
    batch = next(iter(pipe.batches("validation", 8)))
    scores = np.array(json.loads(SCORES), np.float32)
    assert batch["score"].dtype == np.float32
    np.testing.assert_array_equal(batch["score"], scores[batch["label"]])


def test_generated_sentiment_scores_follow_the_corpus_class_order():
    from data_prep.generated.design import CLASSES
    from experiments import corpora, mi_generated_sentiment

    assert tuple(corpora.GENERATED_SENTIMENT) == CLASSES
    cfg = mi_generated_sentiment.get_config()
    assert list(cfg.data.class_scores) == [corpora.GENERATED_SENTIMENT[c] for c in CLASSES]
    assert cfg.protocol.task == "regression" and cfg.train.select_metric == "mae"
