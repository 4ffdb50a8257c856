"""Shared by the run report (``train/report.py``) and the reproduction report
(``reproduce/report.py``): Markdown formatting and confusion-matrix figures.

Formatting helpers turn a value into the text of one Markdown table cell, "—" when the value is
missing (None, NaN, a non-number). Scores are fractions in the results and shown as percent.

matplotlib is imported inside the figure functions, because ``mmer_jax.train`` must import with
jax/flax/optax/orbax alone. Figures use ``matplotlib.figure.Figure`` directly instead of pyplot,
so no global backend is switched and nothing leaks between calls.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import numpy as np

from mmer_jax.io_utils import atomic_write

__all__ = [
    "MISSING",
    "cell",
    "duration",
    "is_num",
    "markdown_table",
    "new_figure",
    "num",
    "pct",
    "plot_confusion",
    "plot_confusion_panels",
    "save_png",
    "slug",
]

DPI = 120  # resolution of every PNG
MISSING = "—"  # the text of a missing value


# ---------------------------------------------------------------------------------------- markdown


def is_num(x) -> bool:
    """True for a finite int, float or numpy number (not a bool)."""
    return isinstance(x, (int, float, np.number)) and not isinstance(x, bool) and np.isfinite(x)


def pct(x) -> str:
    """A fraction as percent with one decimal: ``0.6171 -> "61.7"``; "—" when missing."""
    return f"{100 * float(x):.1f}" if is_num(x) else MISSING


def num(x, digits: int = 3) -> str:
    """A number with ``digits`` decimals; "—" when missing."""
    return f"{float(x):.{digits}f}" if is_num(x) else MISSING


def cell(x) -> str:
    """Any value as the text of one table cell.

    None and "" give "—", booleans "yes"/"no", lists "a, b"; ``|`` is escaped and newlines
    become spaces so the table stays one row per line.
    """
    if x is None or x == "":
        return MISSING
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, (list, tuple)):
        x = ", ".join(str(v) for v in x)
    return str(x).replace("|", "\\|").replace("\n", " ")


def markdown_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], align: str = ""
) -> list[str]:
    """A Markdown table as lines, followed by one blank line.

    Args:
      header: the column titles.
      rows: the cells of each row, already formatted (see :func:`cell`, :func:`pct`).
      align: "l" or "r" per column; default: the first column left, the others right.

    Returns:
      The lines of the table (without newlines).
    """
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---" if a == "l" else "---:" for a in align]
    return ["| " + " | ".join(row) + " |" for row in (header, rule, *rows)] + [""]


def slug(name: str) -> str:
    """A name safe in a file name: runs of other characters than ``[A-Za-z0-9_-]`` become "_"."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", str(name)) or "variant"


def duration(seconds) -> str:
    """Seconds as ``"1h 02m 03s (3723.0 s)"`` or ``"2m 03s (123.0 s)"``; "—" when missing."""
    if not is_num(seconds):
        return MISSING
    s = float(seconds)
    h, rem = divmod(int(round(s)), 3600)
    m, sec = divmod(rem, 60)
    pretty = f"{h}h {m:02d}m {sec:02d}s" if h else f"{m}m {sec:02d}s"
    return f"{pretty} ({s:.1f} s)"


# ----------------------------------------------------------------------------------------- figures


def new_figure(width: float, height: float):
    """A pyplot-free ``matplotlib.figure.Figure`` of ``width`` x ``height`` inches.

    Raises:
      ImportError: matplotlib is not installed.
    """
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def save_png(fig, path: str | os.PathLike) -> str:
    """Writes ``fig`` as a PNG at :data:`DPI`, atomically; returns ``path`` as a string."""

    def write(f):
        fig.savefig(f, format="png", dpi=DPI, bbox_inches="tight")

    return atomic_write(path, write, mode="wb")


def plot_confusion(
    confusion,
    class_names: Sequence[str],
    path: str | os.PathLike,
    title: str = "Confusion matrix",
    normalize: bool = True,
) -> str:
    """Draws a confusion matrix as a PNG, each cell annotated.

    Args:
      confusion: [K, K] counts, rows = true class, columns = predicted class.
      class_names: K names in label order.
      path: destination PNG (written atomically).
      title: figure title.
      normalize: colour and annotate by row-normalised percent (recall per true class) with the
        count beneath; otherwise colour and annotate by count only.

    Returns:
      ``path`` as a string.

    Raises:
      ValueError: ``confusion`` is not K x K for the K ``class_names``.
      ImportError: matplotlib is not installed.
    """
    cm = np.asarray(confusion, dtype=np.int64)
    k = len(class_names)
    if cm.shape != (k, k):
        raise ValueError(f"confusion.shape={cm.shape} does not match {k} class_names")
    side = 0.85 * k + 2.2  # ~0.85 inch per cell keeps two-line annotations legible up to 8 classes
    fig = new_figure(side + 0.8, side)
    _draw_confusion(fig, fig.add_subplot(), cm, class_names, class_names, title, normalize)
    return save_png(fig, path)


def plot_confusion_panels(panels: Sequence[tuple], path: str | os.PathLike, title: str = "") -> str:
    """Several confusion matrices side by side (e.g. audio / video / fused), one PNG.

    Args:
      panels: ``(panel title, counts [R, C], row names [R], column names [C])`` each; a matrix
        may have extra columns (a class-subset view's ``other``), rows are true classes.
      path: destination PNG (written atomically).
      title: figure title above the panels.

    Returns:
      ``path`` as a string.

    Raises:
      ValueError: a matrix's shape does not match its row and column names.
      ImportError: matplotlib is not installed.
    """
    n = len(panels)
    rows_max = max(len(p[2]) for p in panels)
    cols_max = max(len(p[3]) for p in panels)
    side_w, side_h = 0.85 * cols_max + 2.6, 0.85 * rows_max + 2.2
    fig = new_figure(side_w * n, side_h + (0.3 if title else 0.0))
    for i, (panel_title, matrix, row_names, col_names) in enumerate(panels):
        _draw_confusion(
            fig, fig.add_subplot(1, n, i + 1), np.asarray(matrix, dtype=np.int64), row_names,
            col_names, panel_title, True, colorbar=i == n - 1,
        )
    if title:
        fig.suptitle(title)
    return save_png(fig, path)


def _draw_confusion(fig, ax, cm, row_names, col_names, title, normalize, colorbar=True) -> None:
    """Row-normalised (or raw-count) matrix with every cell annotated; R x C, C >= R allowed."""
    r, c = len(row_names), len(col_names)
    if cm.shape != (r, c):
        raise ValueError(f"confusion.shape={cm.shape} does not match {r} rows x {c} columns")
    support = cm.sum(axis=1, keepdims=True)
    rates = np.divide(cm, support, out=np.zeros(cm.shape), where=support > 0)
    shown = rates if normalize else cm.astype(np.float64)
    vmax = 1.0 if normalize else max(float(cm.max()), 1.0)
    image = ax.imshow(shown, cmap="Blues", vmin=0.0, vmax=vmax)
    if colorbar:
        fig.colorbar(
            image,
            ax=ax,
            fraction=0.046,
            pad=0.04,
            label="fraction of true class" if normalize else "count",
        )
    k = max(r, c)
    fontsize = 9 if k <= 8 else max(5.0, 72.0 / k)
    for i in range(r):
        for j in range(c):
            text = f"{100 * rates[i, j]:.1f}%\n({cm[i, j]})" if normalize else f"{cm[i, j]}"
            # Dark text on light cells, white on dark, so every cell stays readable.
            color = "white" if shown[i, j] > 0.55 * vmax else "black"
            ax.text(j, i, text, ha="center", va="center", color=color, fontsize=fontsize)
    ax.set_xticks(range(c), [str(x) for x in col_names], rotation=45, ha="right",
                  rotation_mode="anchor")
    ax.set_yticks(
        range(r), [f"{x} ({int(s)})" for x, s in zip(row_names, support[:, 0], strict=True)]
    )
    ax.set_xlabel("Predicted")
    ax.set_ylabel("True (support)")
    ax.set_title(title)
