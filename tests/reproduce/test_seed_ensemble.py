"""Seed ensembles in k-fold reports: runs save per-example probabilities of validation and test at
their chosen checkpoint, and the harness averages them over a fold's seeds."""

import os

import numpy as np
import pytest

from mmer_jax.errors import RunError
from mmer_jax.reproduce.harness import fold_summary, seed_ensemble
from mmer_jax.reproduce.report import _fold_lines
from mmer_jax.train.report import read_predictions
from mmer_jax.train.run import write_predictions

CLASSES = ["angry", "calm", "happy"]
TRUE = np.array([0, 1, 2, 2])


def _run(tmp_path, name, probs, fold=1, true=TRUE, val_true=None):
    """A finished run dir holding ``probs`` [4, 3] for test and the same rows in reverse order
    for validation (labels reversed too, or ``val_true``), each with one weight-0 padding row
    that must not be saved."""
    d = tmp_path / name
    vdir = d / "variants" / "audio"
    os.makedirs(vdir)
    val_true = true[::-1] if val_true is None else val_true
    for split, p, t in (("validation", probs[::-1], val_true), ("test", probs, true)):
        pad = np.vstack([p, [[1.0, 0.0, 0.0]]])
        y, w = np.append(t, 0), np.array([1, 1, 1, 1, 0], np.float32)
        write_predictions(str(vdir), (y, pad.argmax(-1), w), "classification", CLASSES,
                          probs=pad, split=split)
    acc = float(np.mean(probs.argmax(-1) == true))
    m = {"accuracy": acc, "weighted_f1": acc, "macro_f1": acc, "uar": acc}
    return {"_workdir": str(d), "_fold": fold, "variant": "audio", "task": "classification",
            "protocol": {"seed": int(name[-1]), "split": "x", "examples": {"test": 4}},
            "test": m, "validation": m}


# Each seed errs on a different clip; averaged, the confident right answers win everywhere.
SEEDS = [np.array([[.9, .05, .05], [.1, .8, .1], [.1, .1, .8], [.6, .1, .3]]),
         np.array([[.2, .7, .1], [.1, .8, .1], [.1, .1, .8], [.1, .1, .8]]),
         np.array([[.9, .05, .05], [.1, .1, .8], [.1, .1, .8], [.1, .1, .8]])]


def test_write_predictions_saves_probabilities_per_split(tmp_path):
    run = _run(tmp_path, "seed0", SEEDS[0])
    vdir = os.path.join(run["_workdir"], "variants", "audio")
    for split, order in (("validation", slice(None, None, -1)), ("test", slice(None))):
        saved = read_predictions(vdir, split)
        assert saved["split"] == split and saved["classes"] == CLASSES
        assert saved["true"] == TRUE[order].tolist()  # the weight-0 row is dropped
        np.testing.assert_allclose(saved["probs"], SEEDS[0][order])
        assert saved["pred"] == SEEDS[0][order].argmax(-1).tolist()
    assert os.path.exists(os.path.join(vdir, "predictions_test.json"))


def test_ensemble_averages_the_seeds_probabilities(tmp_path):
    runs = [_run(tmp_path, f"seed{s}", p) for s, p in enumerate(SEEDS)]
    assert [r["test"]["accuracy"] for r in runs] == [0.75, 0.75, 0.75]
    ens = seed_ensemble(runs)
    assert ens["seeds"] == 3
    for split in ("test", "validation"):
        assert ens[split]["accuracy"] == ens[split]["uar"] == 1.0
    # Any subset of seeds: the argmax of the hand-averaged probabilities.
    pair = seed_ensemble(runs[1:])
    mean = (SEEDS[1] + SEEDS[2]) / 2
    assert pair["test"]["accuracy"] == pytest.approx(np.mean(mean.argmax(-1) == TRUE))
    # Validation is read from its own file: other labels there give another score.
    other = [_run(tmp_path, f"o{s}", p, val_true=np.array([2, 2, 1, 1])) for s, p in
             enumerate(SEEDS)]
    ens = seed_ensemble(other)
    assert ens["test"]["uar"] == 1.0
    assert ens["validation"]["accuracy"] == pytest.approx(0.75)  # predicted [2, 2, 1, 0]


def test_no_ensemble_without_probabilities_or_with_one_seed(tmp_path):
    runs = [_run(tmp_path, f"seed{s}", p) for s, p in enumerate(SEEDS)]
    assert seed_ensemble(runs[:1]) is None
    vdir = os.path.join(runs[2]["_workdir"], "variants", "audio")
    os.remove(os.path.join(vdir, "predictions_validation.json"))
    assert seed_ensemble(runs) is None
    os.remove(os.path.join(vdir, "predictions_test.json"))
    assert seed_ensemble(runs) is None
    assert seed_ensemble([dict(r, task="regression") for r in runs[:2]]) is None


def test_runs_over_different_examples_are_refused(tmp_path):
    a = _run(tmp_path, "seed0", SEEDS[0])
    b = _run(tmp_path, "seed1", SEEDS[1], true=np.array([0, 1, 2, 0]))
    with pytest.raises(RunError, match="seed1: its saved test labels differ"):
        seed_ensemble([a, b])
    c = _run(tmp_path, "seed2", SEEDS[2], val_true=np.array([0, 0, 0, 0]))
    with pytest.raises(RunError, match="seed2: its saved validation labels differ"):
        seed_ensemble([a, c])


def test_fold_report_shows_the_ensemble_per_fold_and_over_folds(tmp_path):
    runs = [_run(tmp_path, f"f{k}seed{s}", p, fold=k) for k in (1, 2)
            for s, p in enumerate(SEEDS)]
    plan = {"protocol": "loso", "description": "leave one speaker out", "num_folds": 2,
            "folds": [1, 2], "speaker_independent": True, "speakers": {}}
    folds = fold_summary(plan, runs, seeds=3)
    assert [f["seed_ensemble"]["test"]["uar"] for f in folds["per_fold"]] == [1.0, 1.0]
    assert folds["seed_ensemble_over_folds"]["test"]["uar"]["mean"] == 1.0
    assert folds["test_over_folds"]["uar"]["mean"] == pytest.approx(0.75)  # single runs
    text = "\n".join(_fold_lines(folds))
    assert "## Seed ensemble (test and validation, %; protocol `loso`)" in text
    assert "| 1 | 100.0 | 100.0 | 100.0 | 100.0 |" in text
    assert "| **mean ± std over 2 folds** | 100.0 ± 0.0 |" in text
    # A fold without saved probabilities: no figure over folds (it would mix fold sets).
    os.remove(os.path.join(runs[0]["_workdir"], "variants", "audio", "predictions_test.json"))
    folds = fold_summary(plan, runs, seeds=3)
    assert "seed_ensemble" not in folds["per_fold"][0]
    assert "seed_ensemble_over_folds" not in folds
    assert "Seed ensemble" not in "\n".join(_fold_lines(folds))
