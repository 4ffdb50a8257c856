"""Class-subset confusion views (S001's 6-class figures of 8-class RAVDESS) and the per-variant
confusion figures of a reproduction report."""

import json

import ml_collections
import numpy as np
import pytest

from mmer_jax.errors import UsageError
from mmer_jax.reproduce import class_views as V
from mmer_jax.reproduce import harness
from mmer_jax.reproduce.papers import RAVDESS_S001_CLASSES
from mmer_jax.train.metrics import classification_metrics

EIGHT = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]


def test_view_keeps_rows_and_folds_left_out_predictions_into_other():
    cm = np.arange(64).reshape(8, 8)
    view = V.confusion_view(cm, EIGHT, list(RAVDESS_S001_CLASSES))
    keep = [EIGHT.index(c) for c in RAVDESS_S001_CLASSES]
    m = np.asarray(view["matrix"])
    assert m.shape == (6, 7) and view["columns"][-1] == "other"
    np.testing.assert_array_equal(m[:, :6], cm[np.ix_(keep, keep)])
    dropped = [EIGHT.index("calm"), EIGHT.index("disgust")]
    np.testing.assert_array_equal(m[:, 6], cm[np.ix_(keep, dropped)].sum(1))
    assert m.sum() == cm[keep].sum() == view["clips"]  # no clip of a kept class is lost
    correct = np.trace(cm[np.ix_(keep, keep)])
    assert view["accuracy"] == pytest.approx(correct / cm[keep].sum())
    assert view["accuracy_within_view"] == pytest.approx(correct / m[:, :6].sum())
    with pytest.raises(ValueError, match="contempt"):
        V.confusion_view(cm, EIGHT, ["contempt"])


def test_views_of_report_skip_the_full_set_and_refuse_unknown_classes():
    cm = np.eye(8, dtype=int) * 5
    out = V.views_of_report({"paper6": RAVDESS_S001_CLASSES, "all": EIGHT[::-1]}, EIGHT,
                            {"fused": cm, "audio": None})
    assert list(out) == ["paper6"] and list(out["paper6"]) == ["fused"]
    assert out["paper6"]["fused"]["accuracy"] == 1.0
    with pytest.raises(UsageError, match="class_views.bad.*contempt"):
        V.views_of_report({"bad": ["contempt"]}, EIGHT, {"fused": cm})


def _fake_run(seed, rng):
    def metrics():
        y = rng.integers(0, 8, 80)
        p = np.where(rng.random(80) < 0.6, y, rng.integers(0, 8, 80))
        return classification_metrics(y, p, EIGHT)

    variants = {v: {"modalities": [v], "test": metrics(), "validation": metrics()}
                for v in ("audio", "video", "fused")}
    return {
        "variant": "fused",
        "modalities": ["audio", "frames"],
        "protocol": {"classes": EIGHT, "seed": seed, "selection": "epoch 1", "examples": {}},
        "test": variants["fused"]["test"],
        "validation": variants["fused"]["validation"],
        "variants": variants,
        "timing": {"wall_s": 1.0, "train_wall_s": 1.0, "train_examples_per_s": 10.0},
        "environment": {"jax": "x", "device": "cpu"},
        "_workdir": f"w/seed{seed}",
    }


def test_report_has_view_and_per_variant_figures(tmp_path):
    pytest.importorskip("matplotlib")
    cfg = ml_collections.ConfigDict(
        dict(
            data=dict(corpus="ravdess", config="av"),
            train=dict(select_metric="weighted_f1"),
            variants=dict(audio=["audio"], video=["frames"], fused=["audio", "frames"]),
            primary_variant="fused",
            class_views=dict(paper6=list(RAVDESS_S001_CLASSES)),
        )
    )
    rng = np.random.default_rng(0)
    runs = [_fake_run(s, rng) for s in range(2)]
    report = harness.build_report("s001", "ravdess", "x.py", cfg, runs, str(tmp_path), 0.0)
    view = report["class_views"]["paper6"]["variants"]
    assert set(view) == {"audio", "video", "fused"}
    summed = np.sum([r["variants"]["video"]["test"]["confusion"] for r in runs], axis=0)
    expected = V.confusion_view(summed, EIGHT, list(RAVDESS_S001_CLASSES))
    assert view["video"]["matrix"] == expected["matrix"]
    paths = harness.write_outputs(report, str(tmp_path))
    for key in ("png", "variants_png", "view_paper6_png"):
        assert (tmp_path / "s001" / paths[key].split("/")[-1]).stat().st_size > 1000, key
    md = open(paths["md"]).read()
    assert "Class view 'paper6': 6 of 8 classes" in md and "ravdess_view_paper6.png" in md
    assert "ravdess_confusion_variants.png" in md
    stored = json.load(open(paths["json"]))["class_views"]["paper6"]
    assert stored["png"] == "ravdess_view_paper6.png"
