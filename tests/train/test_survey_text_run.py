"""The survey text system through the common commands: ``run()`` (``mmer train``) picks its
non-gradient trainer from its registry entry and writes the same results.json as a gradient system
(metrics, protocol, selection); ``mmer eval``, ``mmer predict`` and ``mmer serve`` open the
evaluator and predictor that entry names."""

import json
import os

import ml_collections
import numpy as np
import pytest

from mmer_jax.config import base_config
from mmer_jax.errors import UsageError
from mmer_jax.fitted.survey_text.trainer import SurveyTextTrainer
from mmer_jax.train.evaluate import evaluate_run
from mmer_jax.train.run import run, trainer_class


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
    # `mmer eval` scores the saved classifier (no checkpoint): the run's own test evaluation.
    ev = evaluate_run(str(tmp_path), "test")
    assert ev["text"]["epoch"] is None
    assert ev["text"]["test"]["accuracy"] == pytest.approx(res["test"]["accuracy"], abs=1e-9)
    assert ev["text"]["test"]["weighted_f1"] == pytest.approx(res["test"]["weighted_f1"],
                                                              abs=1e-9)
    assert os.path.exists(os.path.join(tmp_path, "eval_test.json"))


def test_a_finished_run_predicts_text_files_as_its_test_evaluation_did(tiny_generated, tmp_path,
                                                                        capsys):
    from mmer_jax.cli import main
    from mmer_jax.data.pipeline import make_pipeline
    from mmer_jax.data.sources import as_str, iterate
    from mmer_jax.fitted.survey_text.predictor import SurveyTextPredictor
    from mmer_jax.serve.prediction import open_predictor
    from mmer_jax.serve.predictor import Predictor

    workdir = str(tmp_path / "run")
    res = run(_cfg(tiny_generated), workdir)
    predictor = open_predictor(workdir)
    assert isinstance(predictor, SurveyTextPredictor) and predictor.warmup() == 0.0
    # The saved classifier reproduces the run's own test predictions (its accuracy).
    cfg = _cfg(tiny_generated)
    pipe = make_pipeline(cfg.data, ["text"], seed=0, workdir=str(tmp_path / "pipe"))
    records = list(iterate(pipe.sources["test"]))
    probs = predictor.predict_records(records)
    labels = [int(r["label"]) for r in records]
    acc = float((probs.argmax(1) == labels).mean())
    assert abs(acc - res["test"]["accuracy"]) < 1e-6
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    # `mmer predict` on a transcript file answers with the class table; `mmer export` refuses.
    text = as_str(records[0]["text"])
    path = tmp_path / "utt.txt"
    path.write_text(text)
    assert main(["predict", "--workdir", workdir, str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)["results"][0]
    assert out["label"] == predictor.classes[int(probs[0].argmax())]
    assert out["modalities"]["used"] == ["text"]
    # A transcript on its own (no file) gives the same answer, and the table has no duration.
    assert main(["predict", "--workdir", workdir, "--text", text]) == 0
    table = capsys.readouterr().out
    assert table.startswith(f"--text: {out['label']}  (modalities used: text)")
    assert main(["predict", "--workdir", workdir]) == 2
    assert "give FILE(s), or --text" in capsys.readouterr().err
    # `mmer serve`'s app, on the predictor the registry names: the same label for the same file.
    from starlette.testclient import TestClient

    from mmer_jax.serve.app import create_app

    with TestClient(create_app(predictor)) as client:
        assert client.get("/model").json()["system"] == "survey_text"
        got = client.post("/predict", files={"file": ("utt.txt", text.encode(), "text/plain")})
        assert got.status_code == 200 and got.json()["label"] == out["label"]
    with pytest.raises(UsageError, match="survey_text run"):
        Predictor(workdir)
