"""Validation curves in reproduction reports: read from each run's metrics.jsonl, the largest
epoch-to-epoch change, and the figure."""

import json

import pytest

from mmer_jax.reproduce import curves


def _write_run(d, values, variant="audio", metric="uar"):
    d.mkdir(parents=True)
    with open(d / "metrics.jsonl", "w") as f:
        for e, v in enumerate(values, start=1):
            train = {"variant": variant, "split": "train", "epoch": e, "loss": 1.0}
            f.write(json.dumps(train) + "\n")
            f.write(json.dumps({"variant": variant, "split": "validation", "epoch": e,
                                metric: v}) + "\n")
            f.write(json.dumps({"variant": "other", "split": "validation", "epoch": e,
                                metric: 0.0}) + "\n")
    return str(d)


def test_curves_and_largest_jump(tmp_path):
    steady = [0.2, 0.5, 0.6, 0.6, 0.62, 0.61, 0.63, 0.64, 0.65, 0.64]
    jumpy = [0.2, 0.5, 0.6, 0.6, 0.62, 0.61, 0.30, 0.64, 0.65, 0.64]
    runs = [{"seed": 0, "fold": k + 1, "workdir": _write_run(tmp_path / f"f{k}", v),
             "selection": "best validation uar @ epoch 9"} for k, v in enumerate((steady, jumpy))]
    out = curves.validation_curves(runs, "audio")
    assert out["metric"] == "uar"
    assert out["per_run"][0]["values"] == steady  # the other variant's records are ignored
    assert out["per_run"][0]["largest_jump"] == pytest.approx(0.02)
    assert out["per_run"][1]["largest_jump"] == pytest.approx(0.34)
    assert out["largest_jump"]["max"] == pytest.approx(0.34)
    md = curves.markdown(out, "c.png")
    assert "34.0 points" in md and "| fold 2 · seed 0 | 9 | 65.0 | 34.0 |" in md
    png = curves.plot_validation_curves(out, str(tmp_path / "c.png"), "title")
    assert (tmp_path / "c.png").stat().st_size > 1000 and png.endswith("c.png")


def test_no_curves_without_logged_metric(tmp_path):
    runs = [{"seed": 0, "workdir": str(tmp_path), "selection": "last epoch"}]
    assert curves.validation_curves(runs, "audio") is None
    assert curves.selection_metric("best validation weighted_f1 @ epoch 3") == "weighted_f1"


def test_a_run_shorter_than_the_settling_epochs_has_no_jump():
    assert curves.largest_jump([0.3, 0.5, 0.52]) is None  # 3 epochs: nothing after epoch 5
    assert curves.largest_jump([0.3] * 5 + [0.4, 0.7]) == pytest.approx(0.3)
