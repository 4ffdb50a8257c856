"""report.md and its PNGs from a fake results dict and a fake metrics.jsonl."""

import json
import os
import sys

import numpy as np
import pytest

from mmer_jax.io_utils import atomic_write_json, atomic_write_text
from mmer_jax.train.metrics import classification_metrics
from mmer_jax.train.report import plot_confusion, plot_curves, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CLASSES = ["ang", "hap", "neu", "sad"]


def _assert_png(path, min_bytes=5_000):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == PNG_SIGNATURE, path
    assert len(data) > min_bytes, (path, len(data))


def _split_metrics(seed):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 4, 120)
    p = np.where(rng.random(120) < 0.6, t, rng.integers(0, 4, 120))
    return classification_metrics(t, p, CLASSES)


def _results(variants=True):
    test = _split_metrics(0)
    test.update(accuracy=0.6123, weighted_f1=0.60449, uar=0.5876, macro_f1=0.25)
    out = {
        "system": "s002",
        "corpus": "iemocap_text",
        "modalities": ["audio", "text"],
        "protocol": {
            "classes": CLASSES,
            "split": "108/12/31 dialogues",
            "fold": None,
            "speaker_independent": True,
            "selection": "best validation weighted_f1 @ epoch 17",
            "seed": 0,
        },
        "test": test,
        "validation": _split_metrics(1),
        "environment": {"jax": "0.10.2", "device": "cpu", "device_count": 2, "hosts": 1},
        "timing": {"wall_s": 3723.4, "train_examples_per_s": 812.34},
    }
    if variants:
        out["variants"] = {
            name: {"test": _split_metrics(i + 2), "validation": _split_metrics(i + 7)}
            for i, name in enumerate(["audio", "text", "fused"])
        }
        out["variants"]["fused"]["test"]["accuracy"] = 0.7049
    return out


def _write_metrics_jsonl(path, variants=("audio", "text", "fused"), torn_tail=True):
    lines = []
    for v_i, variant in enumerate(variants):
        for epoch in range(1, 6):
            step = epoch * 40
            extra = {"variant": variant} if variant else {}
            lines.append(
                {
                    "step": step,
                    "epoch": epoch,
                    "split": "train",
                    "loss": 1.4 / epoch + 0.05 * v_i,
                    "examples_per_s": 800.0,
                    **extra,
                }
            )
            lines.append(
                {
                    "step": step,
                    "epoch": epoch,
                    "split": "validation",
                    "loss": 1.5 / epoch + 0.1 + 0.05 * v_i,
                    "accuracy": 0.4 + 0.05 * epoch + 0.04 * v_i,
                    "weighted_f1": 0.38 + 0.05 * epoch + 0.04 * v_i,
                    "uar": 0.35 + 0.05 * epoch,
                    **extra,
                }
            )
    text = "\n".join(json.dumps(r) for r in lines) + "\n"
    if torn_tail:
        text += '{"step": 240, "split": "tra'  # a run killed mid-write
    with open(path, "w") as f:
        f.write(text)


def test_write_report_with_variants(tmp_path):
    _write_metrics_jsonl(tmp_path / "metrics.jsonl")
    results = _results()
    path = write_report(tmp_path, results)
    assert path == os.path.join(tmp_path, "report.md")
    md = open(path).read()

    for png in [
        "confusion_test.png",
        "curves.png",
        "confusion_test_audio.png",
        "confusion_test_text.png",
        "confusion_test_fused.png",
    ]:
        _assert_png(tmp_path / png)
        assert f"]({png})" in md  # embedded with a relative link
    # Headline numbers: percent with one decimal.
    assert "| Test | 61.2 | 60.4 | 58.8 | 25.0 | 120 |" in md
    assert "| fused | 70.5 |" in md
    assert "| Speaker independent | yes |" in md
    assert "| Fold | — |" in md
    assert "Audio features normalised" not in md  # the run recorded none
    assert "| Device | cpu × 2, 1 host(s) |" in md
    assert "| Classes | ang, hap, neu, sad (4) |" in md
    assert "1h 02m 03s (3723.4 s)" in md and "812.3" in md
    ang = results["test"]["per_class"]["ang"]
    assert f"| ang | {100 * ang['precision']:.1f} | {100 * ang['recall']:.1f} |" in md
    # No temporary files left behind by the atomic writes.
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_write_report_minimal_and_regression(tmp_path):
    results = {
        "system": "s005",
        "corpus": "cmu_mosi",
        "test": {
            "acc2_has0": 0.8012,
            "f1_has0": 0.8,
            "acc2_non0": 0.8211,
            "f1_non0": 0.82,
            "acc7": 0.4512,
            "mae": 0.7234,
            "corr": 0.789,
        },
    }
    md = open(write_report(tmp_path / "new_dir", results)).read()
    assert "| Test | 80.1 | 80.0 | 82.1 | 82.0 | — | — | 45.1 | 0.723 | 0.789 |" in md
    assert "## Results (Acc and F1 in %; MAE, Corr as numbers)" in md
    assert "| System | s005 |" in md
    results["fusion"] = "bridge"
    md = open(write_report(tmp_path / "fused", results)).read()
    assert "| System | s005 (fusion bridge) |" in md
    assert "png" not in md  # nothing to plot
    assert "| Seed | — |" in md


def test_report_states_the_audio_feature_normalisation(tmp_path):
    results = _results(variants=False)
    results["protocol"]["feature_normalisation"] = "per speaker (mean of each speaker's features)"
    md = open(write_report(tmp_path, results)).read()
    assert ("| Audio features normalised | per speaker (mean of each speaker's features) |"
            in md)


def test_write_report_without_matplotlib(tmp_path, monkeypatch):
    # Simulate the GPU machine's Python, where matplotlib is not installed.
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    md = open(write_report(tmp_path, _results(variants=False))).read()
    assert "Figures skipped" in md and "| Test | 61.2 |" in md
    assert not list(tmp_path.glob("*.png"))


@pytest.mark.parametrize("normalize", [True, False])
def test_plot_confusion_eight_classes_with_empty_row(tmp_path, normalize):
    names = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
    cm = np.random.default_rng(0).integers(0, 40, (8, 8))
    cm[3] = 0  # a class absent from the test split must not divide by zero
    out = plot_confusion(cm, names, tmp_path / "cm.png", title="RAVDESS", normalize=normalize)
    _assert_png(out, min_bytes=20_000)
    with pytest.raises(ValueError, match="class_names"):
        plot_confusion(cm, names[:4], tmp_path / "bad.png")


def test_plot_curves_single_point_missing_keys_and_empty(tmp_path):
    src = tmp_path / "metrics.jsonl"
    src.write_text('{"epoch": 1, "split": "validation", "accuracy": 0.5}\n{"split": "train"}\n')
    _assert_png(plot_curves(src, tmp_path / "one.png"))
    src.write_text("")
    _assert_png(plot_curves(src, tmp_path / "empty.png"))
    _write_metrics_jsonl(src, variants=(None,), torn_tail=False)
    _assert_png(plot_curves(src, tmp_path / "plain.png"))


def test_atomic_writes_keep_old_file_on_failure(tmp_path):
    target = tmp_path / "results.json"
    atomic_write_json(target, {"a": np.float32(0.5), "b": np.arange(3), "c": float("nan")})
    assert json.loads(target.read_text()) == {"a": 0.5, "b": [0, 1, 2], "c": None}
    with pytest.raises(TypeError):
        atomic_write_json(target, {"bad": object()})
    assert json.loads(target.read_text())["a"] == 0.5  # untouched
    atomic_write_text(tmp_path / "r.md", "hi\n")
    assert (tmp_path / "r.md").read_text() == "hi\n"
    assert sorted(os.listdir(tmp_path)) == ["r.md", "results.json"]
