"""Every score a run reports, once: its name (the key in ``results.json``), the label reports show,
its task, which direction is better and how it is written.

Selection (``train.select_metric``, :func:`mmer_jax.train.regression.improved`), the per-run
``report.md``, the reproduction reports and the README's tables read this table; nothing else
spells a metric's direction or format.

    METRICS["mae"].better(0.71, 0.80)   # True: lower is better
    METRICS["accuracy"].format(0.617)   # "61.7" (percent, one decimal)
    METRICS["corr"].format(0.8123)      # "0.812" (a number, three decimals)
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Metric:
    """One reported score.

    Attributes:
      name: its key in ``results.json`` / ``metrics.jsonl``.
      label: how reports name it ("Weighted F1", "Acc-2 (has-0)").
      task: "classification" or "regression".
      higher_is_better: False for an error (MAE), which selection minimises.
      percent: stored as a fraction and shown in percent with one decimal; False for a score in
        its own units (MAE in score units, Corr in [-1, 1]), shown with three decimals.
    """

    name: str
    label: str
    task: str
    higher_is_better: bool = True
    percent: bool = True

    def better(self, value: float, best: float | None) -> bool:
        """Whether ``value`` beats ``best`` (None: nothing yet, so True); a tie does not."""
        if best is None:
            return True
        return value > best if self.higher_is_better else value < best

    def format(self, value: float | None, missing: str = "—") -> str:
        """``value`` as reports write it: "61.7" (percent) or "0.812"; ``missing`` for None."""
        if value is None:
            return missing
        return f"{100.0 * value:.1f}" if self.percent else f"{value:.3f}"


_TABLE = (
    Metric("accuracy", "Accuracy", "classification"),
    Metric("weighted_f1", "Weighted F1", "classification"),
    Metric("macro_f1", "Macro F1", "classification"),
    Metric("uar", "UAR", "classification"),
    # MMSA's sentiment scores, in the order runs store them.
    Metric("acc2_has0", "Acc-2 (has-0)", "regression"),
    Metric("f1_has0", "F1 (has-0)", "regression"),
    Metric("acc2_non0", "Acc-2 (non-0)", "regression"),
    Metric("f1_non0", "F1 (non-0)", "regression"),
    Metric("acc3", "Acc-3", "regression"),
    Metric("acc5", "Acc-5", "regression"),
    Metric("acc7", "Acc-7", "regression"),
    Metric("mae", "MAE", "regression", higher_is_better=False, percent=False),
    Metric("corr", "Corr", "regression", percent=False),
)
METRICS: dict[str, Metric] = {m.name: m for m in _TABLE}


def names(task: str) -> tuple[str, ...]:
    """The metrics of ``task`` ("classification" or "regression"), in the order runs store
    them.

    Raises:
      ValueError: an unknown task.
    """
    out = tuple(m.name for m in _TABLE if m.task == task)
    if not out:
        raise ValueError(f"task {task!r} must be 'classification' or 'regression'")
    return out


CLASSIFICATION = names("classification")
REGRESSION = names("regression")
# Reproduction reports' order (has-0 / non-0 accuracies first, then their F1).
REGRESSION_REPORT_ORDER = ("acc2_has0", "acc2_non0", "f1_has0", "f1_non0", "acc3", "acc5", "acc7",
                           "mae", "corr")
LOWER_IS_BETTER = tuple(m.name for m in _TABLE if not m.higher_is_better)
NOT_PERCENT = tuple(m.name for m in _TABLE if not m.percent)
# The classification scores a prediction's ``GET /model``, an ensemble and a log line show.
HEADLINE = ("accuracy", "weighted_f1", "uar")
