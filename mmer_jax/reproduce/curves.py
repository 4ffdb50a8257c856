"""Validation curves of a reproduction's runs: every seed (x fold) on one figure, and how far the
selection metric moves from one epoch to the next.

A model whose validation score jumps by tens of points between epochs is selected by luck, so a
report shows the curves it selected from and the largest epoch-to-epoch change of each run.
Values come from each run's ``metrics.jsonl`` (``split == "validation"`` records of the reported
variant, one per epoch) and are stored in the report, so the figure can be redrawn without the run
directories. Fractions (accuracy, F1, ...) are shown in percent and their changes in points; a
regression run's MAE (score units) and Corr (Pearson r) are shown as they are.
"""

from __future__ import annotations

import os
import re

from mmer_jax import metric_table
from mmer_jax.train.report import read_jsonl

SETTLE_EPOCHS = 5  # jumps are counted after this many epochs (the first epochs move fast)
# Selection metrics that are not fractions, so not shown in percent.
SCORE_UNITS = metric_table.NOT_PERCENT


def scale(metric: str) -> tuple[float, str, int]:
    """How ``metric`` is shown: (factor, unit text, decimals): (100, " (%)", 1) for a fraction,
    (1, "", 3) for MAE (score units) and Corr."""
    return (1.0, "", 3) if metric in SCORE_UNITS else (100.0, " (%)", 1)


def selection_metric(selection: str | None) -> str | None:
    """The metric in a run's selection text ("best validation uar @ epoch 31" -> "uar")."""
    m = re.match(r"best validation (\w+) @", selection or "")
    return m.group(1) if m else None


def run_curve(workdir: str, variant: str, metric: str) -> list[tuple[int, float]]:
    """[(epoch, validation ``metric``)] of ``variant`` in ``<workdir>/metrics.jsonl``, in epoch
    order (the last record of an epoch wins: a resumed run may log one twice); [] when the file
    or the metric is absent."""
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    by_epoch = {}
    for r in read_jsonl(path):
        if (r.get("split") == "validation" and r.get("variant", variant) == variant
                and metric in r and "epoch" in r):
            by_epoch[int(r["epoch"])] = float(r[metric])
    return sorted(by_epoch.items())


def largest_jump(values: list[float], settle: int = SETTLE_EPOCHS) -> float | None:
    """The largest |v[e] - v[e-1]| between consecutive epochs after epoch ``settle``
    (fractions); None when the run has fewer than two epochs after it."""
    tail = values[settle:]
    if len(tail) < 2:
        return None
    return max(abs(b - a) for a, b in zip(tail, tail[1:], strict=False))


def validation_curves(runs: list[dict], variant: str) -> dict | None:
    """The report's ``validation_curves`` section for ``runs`` (the report's run entries, with
    ``workdir``, ``seed``, optional ``fold`` and ``selection``).

    Returns:
      ``{"metric", "variant", "settle_epochs", "per_run": [{"seed", "fold", "epochs", "values",
      "selected_epoch", "largest_jump"}], "largest_jump": {"max", "median"}}`` with values as
      fractions; None when no run logged its selection metric.
    """
    metric = next((selection_metric(r.get("selection")) for r in runs
                   if selection_metric(r.get("selection"))), None)
    if metric is None:
        return None
    per_run = []
    for r in runs:
        curve = run_curve(r["workdir"], variant, metric)
        if not curve:
            continue
        epochs, values = zip(*curve, strict=True)
        sel = re.search(r"@ epoch (\d+)", r.get("selection") or "")
        per_run.append({"seed": r.get("seed"), "fold": r.get("fold"), "epochs": list(epochs),
                        "values": list(values),
                        "selected_epoch": int(sel.group(1)) if sel else None,
                        "largest_jump": largest_jump(list(values))})
    if not per_run:
        return None
    jumps = sorted(j for j in (p["largest_jump"] for p in per_run) if j is not None)
    return {"metric": metric, "variant": variant, "settle_epochs": SETTLE_EPOCHS,
            "per_run": per_run,
            "largest_jump": {"max": jumps[-1] if jumps else None,
                             "median": jumps[len(jumps) // 2] if jumps else None}}


def _run_label(p: dict) -> str:
    return (f"fold {p['fold']} · " if p.get("fold") is not None else "") + f"seed {p['seed']}"


def plot_validation_curves(curves: dict, path: str, title: str) -> str:
    """One line per run (validation metric in percent, or MAE / Corr as they are, against
    epoch), a dot at the selected epoch; returns ``path``.

    Raises:
      ImportError: matplotlib is not installed.
    """
    from mmer_jax.train.report_common import new_figure, save_png

    fig = new_figure(7.5, 4.2)
    ax = fig.subplots()
    factor, unit, _ = scale(curves["metric"])
    for i, p in enumerate(curves["per_run"]):
        color = f"C{i % 10}"
        ax.plot(p["epochs"], [factor * v for v in p["values"]], color=color, linewidth=1.2,
                label=_run_label(p))
        if p["selected_epoch"] in p["epochs"]:
            k = p["epochs"].index(p["selected_epoch"])
            ax.plot([p["selected_epoch"]], [factor * p["values"][k]], "o", color=color)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"validation {curves['metric']}{unit}")
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    # MAE falls as a model learns: its curves end low, so the legend goes to the upper right.
    ax.legend(fontsize=7, loc="upper right" if curves["metric"] == "mae" else "lower right")
    return save_png(fig, path)


def markdown(curves: dict, png: str) -> str:
    """The report section: the figure and each run's largest epoch-to-epoch change."""
    m, settle = curves["metric"], curves["settle_epochs"]
    factor, _, digits = scale(m)
    rows = [f"| {_run_label(p)} | {p['selected_epoch']} | "
            f"{factor * p['values'][p['epochs'].index(p['selected_epoch'])]:.{digits}f} | "
            + ("—" if p["largest_jump"] is None else f"{factor * p['largest_jump']:.{digits}f}")
            + " |"
            for p in curves["per_run"] if p["selected_epoch"] in p["epochs"]]
    big = curves["largest_jump"]
    points = " points" if factor == 100.0 else ""
    summary = ("" if big["max"] is None else
               f" Largest change between consecutive epochs after epoch {settle}: "
               f"{factor * big['max']:.{digits}f}{points} (median over runs "
               f"{factor * big['median']:.{digits}f}).")
    return "\n".join([
        "## Validation curves", "",
        f"Validation {m} per epoch of every run (dot: the selected epoch).{summary}", "",
        f"![validation curves]({png})", "",
        f"| Run | Selected epoch | Validation {m} there | Largest epoch-to-epoch change |",
        "| --- | ---: | ---: | ---: |", *rows, ""])
