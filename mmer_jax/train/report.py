"""Human-readable run report: confusion-matrix (or, for a regression run, predicted-vs-true
scatter) and training-curve PNGs plus ``report.md``.

``write_report`` turns a ``results.json``-shaped dict (what :func:`mmer_jax.train.run.run`
returns) into Markdown next to the run's other outputs. Formatting and the confusion figures are
shared with the reproduction report (:mod:`mmer_jax.train.report_common`); without matplotlib
the report is still written, only without figures.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from mmer_jax.io_utils import atomic_write_json, atomic_write_text
from mmer_jax.metric_table import METRICS, REGRESSION
from mmer_jax.train.provenance import markdown_lines
from mmer_jax.train.report_common import (
    MISSING,
    cell,
    duration,
    is_num,
    markdown_table,
    new_figure,
    num,
    pct,
    plot_confusion,
    plot_confusion_panels,
    save_png,
    slug,
)

__all__ = [
    "atomic_write_json",
    "atomic_write_text",
    "plot_confusion",
    "plot_confusion_panels",
    "plot_curves",
    "plot_scatter",
    "read_jsonl",
    "read_predictions",
    "write_report",
]

# Labels and formats: the metric table's (mmer_jax.metric_table).
_HEADLINE = tuple((m, METRICS[m].label) for m in ("accuracy", "weighted_f1", "uar", "macro_f1"))
_REGRESSION = tuple((m, METRICS[m].label, "pct" if METRICS[m].percent else "num")
                    for m in REGRESSION)
# Validation scores drawn in the right-hand curve panel, whichever a run logs.
_CURVE_SCORES = (
    ("accuracy", "acc", "-", "o"),
    ("weighted_f1", "weighted F1", "--", "s"),
    ("acc2_non0", "acc-2", "-", "o"),
    ("f1_non0", "F1 non0", "--", "s"),
)


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Reads one JSON object per line, skipping blank and unparsable lines.

    A run killed mid-write can leave a torn last line; the curves should still draw from the rest.

    Raises:
      OSError: ``path`` cannot be read.
    """
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                records.append(record)
    return records


def _series(records: list[dict], split: str, key: str, x_key: str | None) -> dict:
    """Groups (x, value) points of ``key`` in ``split`` by variant, sorted by x."""
    out: dict[Any, list] = {}
    for i, r in enumerate(records):
        value = r.get(key)
        if r.get("split") != split or not isinstance(value, (int, float)):
            continue
        x = r.get(x_key, i) if x_key else i
        out.setdefault(r.get("variant"), []).append((x, float(value)))
    return {v: sorted(points, key=lambda p: p[0]) for v, points in out.items()}


def plot_curves(metrics_jsonl_path: str | os.PathLike, path: str | os.PathLike) -> str:
    """Draws training curves from ``metrics.jsonl`` as a two-panel PNG.

    Left: train and validation loss. Right: validation accuracy and weighted F1 (or the MOSI/MOSEI
    binary scores when those are what the run logs). One colour per ``variant`` when records carry
    that key. x is ``step`` when logged, else ``epoch``, else the line number.

    Args:
      metrics_jsonl_path: one JSON object per line, with at least ``split``.
      path: destination PNG (written atomically).

    Returns:
      ``path`` as a string.

    Raises:
      ImportError: matplotlib is not installed.
      OSError: ``metrics_jsonl_path`` cannot be read.
    """
    records = read_jsonl(metrics_jsonl_path)
    x_key = next((k for k in ("step", "epoch") if any(k in r for r in records)), None)
    variants = list(dict.fromkeys(r.get("variant") for r in records))
    colors = {v: f"C{i % 10}" for i, v in enumerate(variants)}
    multi = len(variants) > 1

    fig = new_figure(11.0, 4.2)
    ax_loss, ax_score = fig.subplots(1, 2)

    def label(variant, what: str) -> str:
        return f"{variant} · {what}" if multi else what

    def draw(ax, points, color, style, marker, text, alpha=1.0):
        xs, ys = zip(*points, strict=True)
        # A single point is invisible as a line; markers show it (and epoch-level validation).
        ax.plot(
            xs,
            ys,
            linestyle=style,
            marker=marker if len(xs) < 60 else None,
            markersize=4,
            color=color,
            alpha=alpha,
            label=text,
        )

    drawn_loss = drawn_score = False
    for split, style, marker, alpha in (("train", "-", None, 0.6), ("validation", "--", "o", 1.0)):
        for variant, points in _series(records, split, "loss", x_key).items():
            color = colors[variant] if multi else ("C0" if split == "train" else "C1")
            text = label(variant, f"{split} loss")
            draw(ax_loss, points, color, style, marker or ".", text, alpha)
            drawn_loss = True
    for n, (key, name, style, marker) in enumerate(_CURVE_SCORES):
        for variant, points in _series(records, "validation", key, x_key).items():
            color = colors[variant] if multi else f"C{n + 2}"
            draw(ax_score, points, color, style, marker, label(variant, f"val {name}"))
            drawn_score = True

    for ax, drawn, ylabel, title in (
        (ax_loss, drawn_loss, "loss", "Loss"),
        (ax_score, drawn_score, "score", "Validation scores"),
    ):
        ax.set_title(title)
        ax.set_xlabel(x_key or "record")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        if drawn:
            ax.legend(fontsize=7, loc="best")
        else:
            ax.text(
                0.5,
                0.5,
                "no data logged",
                ha="center",
                va="center",
                transform=ax.transAxes,
                color="gray",
            )
    return save_png(fig, path)


def read_predictions(variant_dir: str | os.PathLike, split: str = "test") -> dict | None:
    """A variant's per-example outputs of ``split`` (``predictions_<split>.json`` written by
    :func:`mmer_jax.train.run.write_predictions`), or None when the run saved none (a run
    written before runs saved them, or a trainer without per-example outputs).

    Raises:
      OSError, json.JSONDecodeError: the file exists but cannot be read.
    """
    path = os.path.join(os.fspath(variant_dir), f"predictions_{split}.json")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def plot_scatter(groups: list[tuple[str, list, list]], path: str | os.PathLike,
                 title: str = "") -> str:
    """Predicted against true score, one colour per group (a seed, a variant), with the y = x
    line; the regression counterpart of a confusion matrix.

    Args:
      groups: ``[(label, true scores, predicted scores)]``, each pair of equal length (score
        units, e.g. [-3, 3] on CMU-MOSI/MOSEI); an empty group is skipped.
      path: destination PNG (written atomically).
      title: figure title.

    Returns:
      ``path`` as a string.

    Raises:
      ImportError: matplotlib is not installed.
      ValueError: a group's true and predicted scores differ in length.
    """
    fig = new_figure(5.2, 5.0)
    ax = fig.subplots()
    lo, hi = np.inf, -np.inf
    for i, (label, true, pred) in enumerate(groups):
        t, p = np.asarray(true, np.float64), np.asarray(pred, np.float64)
        if t.shape != p.shape:
            raise ValueError(f"group {label!r}: {t.shape=} and {p.shape=} must match")
        if t.size == 0:
            continue
        # Many test clips share a true score: transparency shows where predictions pile up.
        ax.scatter(t, p, s=9, alpha=0.45, color=f"C{i % 10}", label=f"{label} (n={t.size})",
                   edgecolors="none")
        lo, hi = min(lo, t.min(), p.min()), max(hi, t.max(), p.max())
    if np.isfinite(lo):
        ax.plot([lo, hi], [lo, hi], color="gray", linewidth=1, linestyle="--", label="y = x")
        ax.legend(fontsize=7, loc="upper left")
    else:
        ax.text(0.5, 0.5, "no predictions", ha="center", va="center", transform=ax.transAxes,
                color="gray")
    ax.set_xlabel("true score")
    ax.set_ylabel("predicted score")
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    return save_png(fig, path)


# ---------------------------------------------------------------------------------------- markdown


def _protocol_rows(results: dict) -> list[list[str]]:
    protocol = results.get("protocol") or {}
    env = results.get("environment") or {}
    classes = protocol.get("classes")
    classes_text = f"{cell(classes)} ({len(classes)})" if classes else "—"
    device = cell(env.get("device"))
    if env.get("device_count") is not None:
        device += f" × {env['device_count']}"
    if env.get("hosts") is not None:
        device += f", {env['hosts']} host(s)"
    task = results.get("task") or protocol.get("task")
    task_rows = [["Task", f"regression (loss {cell(results.get('regression_loss'))} on the "
                  "score)"]] if task == "regression" else []
    system = cell(results.get("system"))
    if results.get("fusion"):
        system += f" (fusion {results['fusion']})"
    return [
        ["System", system],
        ["Corpus", cell(results.get("corpus"))],
        ["Modalities", cell(results.get("modalities"))],
        *task_rows,
        ["Classes", classes_text],
        ["Split", cell(protocol.get("split"))],
        ["Fold", cell(protocol.get("fold"))],
        ["Speaker independent", cell(protocol.get("speaker_independent"))],
        # How audio features were normalised changes what a score means (per utterance, per
        # speaker with the held-out speakers' own statistics, or not at all): say it.
        *([["Audio features normalised", protocol["feature_normalisation"]]]
          if protocol.get("feature_normalisation") else []),
        ["Selection", cell(protocol.get("selection"))],
        ["Seed", cell(protocol.get("seed"))],
        ["Device", device],
        ["JAX", cell(env.get("jax"))],
    ]


def _score_tables(rows: list[tuple[str, dict]], first: str) -> list[str]:
    """Classification and/or regression tables for (row label, metrics dict) pairs."""
    lines: list[str] = []
    if any(k in m for _, m in rows for k, _ in _HEADLINE):
        header = [first] + [name for _, name in _HEADLINE] + ["N"]
        body = [
            [label] + [pct(m.get(k)) for k, _ in _HEADLINE] + [cell(m.get("n"))]
            for label, m in rows
        ]
        lines += markdown_table(header, body)
    if any(k in m for _, m in rows for k, _, _ in _REGRESSION):
        header = [first] + [name for _, name, _ in _REGRESSION]
        body = [
            [label]
            + [pct(m.get(k)) if kind == "pct" else num(m.get(k)) for k, _, kind in _REGRESSION]
            for label, m in rows
        ]
        lines += markdown_table(header, body)
    return lines


def _per_class_rows(per_class: dict) -> list[list[str]]:
    return [
        [
            cell(name),
            pct(s.get("precision")),
            pct(s.get("recall")),
            pct(s.get("f1")),
            cell(s.get("support")),
        ]
        for name, s in per_class.items()
    ]


def _class_names(metrics: dict, fallback) -> list[str]:
    return list(metrics.get("per_class") or {}) or list(fallback or [])


def _write_figures(workdir: str, results: dict, title: str) -> tuple[list[tuple[str, str]], str]:
    """Writes the report's PNGs; returns ([(caption, file name)], note on anything skipped)."""
    classes = (results.get("protocol") or {}).get("classes")
    jobs = []  # (caption, file name, plot function, args)
    test = results.get("test") or {}
    if test.get("confusion") and _class_names(test, classes):
        jobs.append(
            (
                "Confusion matrix (test)",
                "confusion_test.png",
                plot_confusion,
                (test["confusion"], _class_names(test, classes)),
                f"{title} — test",
            )
        )
    for name, v in (results.get("variants") or {}).items():
        m = (v or {}).get("test") or {}
        if m.get("confusion") and _class_names(m, classes):
            jobs.append(
                (
                    f"Confusion matrix ({name}, test)",
                    f"confusion_test_{slug(name)}.png",
                    plot_confusion,
                    (m["confusion"], _class_names(m, classes)),
                    f"{name} — test",
                )
            )
    if (results.get("task") or (results.get("protocol") or {}).get("task")) == "regression":
        names = list(results.get("variants") or {}) or [results.get("variant")]
        for name in names:
            saved = read_predictions(os.path.join(workdir, "variants", str(name)))
            if saved is None:
                continue
            primary = name == results.get("variant")
            jobs.append((
                "Predicted vs true score (test)" if primary else
                f"Predicted vs true score ({name}, test)",
                "scatter_test.png" if primary else f"scatter_test_{slug(name)}.png",
                plot_scatter, ([(str(name), saved["true"], saved["pred"])],),
                f"{title} — {name}, test"))
    metrics_path = os.path.join(workdir, "metrics.jsonl")
    if os.path.exists(metrics_path):
        jobs.append(("Training curves", "curves.png", plot_curves, (metrics_path,), None))

    figures = []
    for caption, file, plot, args, fig_title in jobs:
        out = os.path.join(workdir, file)
        try:
            if fig_title is None:
                plot(*args, out)
            else:
                plot(*args, out, title=fig_title)
        except ImportError as e:
            # mmer_jax.train runs without matplotlib on the GPU machine; keep the text report.
            return figures, f"Figures skipped: {e}."
        figures.append((caption, file))
    return figures, ""


def _per_speaker_lines(results: dict) -> list[str]:
    """"Per speaker" table: each test and validation speaker's examples, accuracy and UAR of the
    primary variant, and the accuracy of every other variant; none where speakers are unknown."""
    variants = results.get("variants") or {}
    primary = results.get("variant")
    others = [v for v in variants if v != primary]
    rows = []
    for split, name in (("test", "Test"), ("validation", "Validation")):
        by = (results.get(split) or {}).get("per_speaker") or {}
        for spk, m in by.items():
            row = [name, cell(spk), str(m.get("n", MISSING)), pct(m.get("accuracy")),
                   pct(m.get("uar"))]
            for v in others:
                vm = (((variants[v] or {}).get(split) or {}).get("per_speaker") or {}).get(spk)
                row.append(pct((vm or {}).get("accuracy")))
            rows.append(row)
    if not rows:
        return []
    head = ["Split", "Speaker", "Examples", f"Accuracy ({cell(primary)})" if others else
            "Accuracy", f"UAR ({cell(primary)})" if others else "UAR"]
    head += [f"Accuracy ({cell(v)})" for v in others]
    return ["## Per speaker (%)", ""] + markdown_table(head, rows, "llr" + "r" * (len(head) - 3))


def write_report(workdir: str | os.PathLike, results: dict) -> str:
    """Writes ``report.md`` (and its figures) into ``workdir`` from a results.json-shaped dict.

    Figures written alongside: ``confusion_test.png``, ``confusion_test_<variant>.png`` per variant
    (a regression run: ``scatter_test.png`` and ``scatter_test_<variant>.png`` from the saved
    test predictions), and ``curves.png`` when ``workdir/metrics.jsonl`` exists. Every file is
    written atomically. Scores are fractions in ``results`` and shown as percent with one decimal
    (MAE and Corr as numbers).

    Args:
      workdir: run directory (created if missing).
      results: dict following the results.json schema; missing parts are skipped or shown as "—".

    Returns:
      Path of ``report.md``.
    """
    workdir = os.fspath(workdir)
    os.makedirs(workdir, exist_ok=True)
    test = results.get("test") or {}
    validation = results.get("validation") or {}
    variants = results.get("variants") or {}

    title = " · ".join(cell(results.get(k)) for k in ("system", "corpus") if results.get(k))
    lines = [f"# {title or 'Run report'}", ""]
    lines += ["## Protocol", ""] + markdown_table(["Field", "Value"], _protocol_rows(results), "ll")

    split_rows = [(name, m) for name, m in (("Test", test), ("Validation", validation)) if m]
    if split_rows:
        regression = any("mae" in m for _, m in split_rows)
        # MAE and Corr are not percentages: the heading says which columns are.
        title = "## Results (Acc and F1 in %; MAE, Corr as numbers)" if regression else \
            "## Results (%)"
        lines += [title, ""] + _score_tables(split_rows, "Split")

    if variants:
        rows = [(cell(name), (v or {}).get("test") or {}) for name, v in variants.items()]
        lines += ["## Unimodal vs fused (test, %)", ""] + _score_tables(rows, "Variant")

    if test.get("per_class"):
        lines += ["## Per class (test, %)", ""]
        lines += markdown_table(
            ["Class", "Precision", "Recall", "F1", "Support"], _per_class_rows(test["per_class"])
        )

    lines += _per_speaker_lines(results)

    figures, note = _write_figures(workdir, results, title)
    for caption, file in figures:
        lines += [f"## {caption}", "", f"![{caption}]({file})", ""]

    timing = results.get("timing") or {}
    if timing:
        rows = [
            ["Wall time", duration(timing.get("wall_s"))],
            ["Train examples/s" + (f" (whole run: {procs} processes, resumed)"
                                   if (procs := timing.get("train_rate_processes", 1)) > 1
                                   else ""), num(timing.get("train_examples_per_s"), 1)],
        ]
        rows += [
            [cell(k), num(v, 2) if is_num(v) else cell(v)]
            for k, v in timing.items()
            if k not in ("wall_s", "train_examples_per_s", "train_rate_processes")
        ]
        lines += ["## Timing", ""] + markdown_table(["", "Value"], rows, "lr")

    if note:
        lines += [f"_{note}_", ""]
    lines += markdown_lines(results.get("provenance"))
    return atomic_write_text(os.path.join(workdir, "report.md"), "\n".join(lines).rstrip() + "\n")
