"""The survey text system through the main job: ``run()`` picks its non-gradient trainer from the
registry and writes the same results.json as a gradient system (metrics, protocol, selection)."""

import json
import os

import ml_collections
import pytest

from mmer_jax.config import base_config
from mmer_jax.errors import UsageError
from mmer_jax.train.evaluate import evaluate_run
from mmer_jax.train.run import run, trainer_class
from mmer_jax.train.survey_text import SurveyTextTrainer


def _cfg(data_dir):
    cfg = base_config("survey_text")
    cfg.variants = ml_collections.ConfigDict({"text": ["text"]})
    cfg.primary_variant = "text"
    cfg.data.corpus = "generated_emotion"
    cfg.data.config = "tiny"
    cfg.data.data_dir = data_dir
    cfg.data.read_threads = 0
    cfg.model.modalities = ["text"]
    cfg.model.word2vec.dim = 8
    cfg.model.word2vec.epochs = 2
    cfg.model.word2vec.batch_size = 256
    cfg.model.word2vec.min_count = 1
    cfg.model.clusters = [4, 8]
    cfg.model.c = [1.0]
    cfg.model.concat_tfidf = [False]
    cfg.train.progress = False
    return cfg


def test_run_fits_selects_on_validation_and_reports(tiny_generated, tmp_path):
    cfg = _cfg(tiny_generated)
    assert trainer_class(cfg) is SurveyTextTrainer
    res = run(cfg, str(tmp_path))
    assert res["system"] == "survey_text" and res["variant"] == "text"
    for split in ("test", "validation"):
        assert 0.0 <= res[split]["accuracy"] <= 1.0 and "confusion" in res[split]
    assert res["protocol"]["selection"].startswith("best validation weighted_f1: clusters=")
    assert "test scored once" in res["protocol"]["selection_rule"]
    assert res["best_epoch"] is None and res["num_params"] > 0
    with open(os.path.join(tmp_path, "variants", "text", "selection.json")) as f:
        sel = json.load(f)
    assert len(sel["grid"]) == 2 and len(sel["word2vec_loss_per_epoch"]) == 2
    assert os.path.exists(os.path.join(tmp_path, "results.json"))
    assert os.path.exists(os.path.join(tmp_path, "report.md"))
    # `mmer eval` has no checkpoint to restore: it says where the one test evaluation is.
    with pytest.raises(UsageError, match="results.json"):
        evaluate_run(str(tmp_path), "test")
