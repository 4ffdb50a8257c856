"""Class-subset views of a confusion matrix, e.g. S001's 6-class figures of an 8-class RAVDESS run.

S001 trains on RAVDESS's 8 emotions but prints 6-class confusion matrices (calm and disgust left
out). To set our run beside those figures without retraining, a view keeps the rows and columns of
the chosen classes and folds every prediction into a left-out class into one ``other`` column, so
no test clip silently disappears. Two accuracies follow:

* ``accuracy``: correct / all clips of the kept classes (a prediction of a left-out class is wrong);
* ``accuracy_within_view``: correct / clips predicted as one of the kept classes, the number a
  matrix printed without the ``other`` column implies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mmer_jax.errors import UsageError

OTHER = "other"


def confusion_view(confusion, classes: Sequence[str], keep: Sequence[str]) -> dict:
    """The ``keep`` rows/columns of ``confusion`` plus an ``other`` column.

    Args:
      confusion: [K, K] counts, rows = true class, columns = predicted, in ``classes`` order.
      classes: the K class names.
      keep: the view's classes (a subset of ``classes``), in the order to show them.

    Returns:
      {"classes": keep, "columns": keep + ["other"], "matrix": [[...]] (len(keep) x
      len(keep) + 1), "accuracy", "accuracy_within_view", "clips", "predicted_other"}.
    """
    cm = np.asarray(confusion, dtype=np.int64)
    missing = [c for c in keep if c not in classes]
    if missing:
        raise ValueError(f"view classes {missing} are not among {list(classes)}")
    idx = [list(classes).index(c) for c in keep]
    rows = cm[idx]
    inside = rows[:, idx]
    other = rows.sum(axis=1) - inside.sum(axis=1)
    total, correct = int(rows.sum()), int(np.trace(inside))
    within = int(inside.sum())
    return {
        "classes": list(keep),
        "columns": list(keep) + [OTHER],
        "matrix": np.concatenate([inside, other[:, None]], axis=1).tolist(),
        "accuracy": correct / total if total else None,
        "accuracy_within_view": correct / within if within else None,
        "clips": total,
        "predicted_other": int(other.sum()),
    }


def check_views(views: Mapping[str, Sequence[str]], classes: Sequence[str]) -> None:
    """Refuses a ``class_views`` config naming a class the corpus does not have."""
    for name, keep in views.items():
        unknown = [c for c in keep if c not in classes]
        if unknown or not keep:
            raise UsageError(
                f"config key 'class_views.{name}': classes {unknown or '(none)'} are not among "
                f"the corpus classes {list(classes)}"
            )


def views_of_report(views: Mapping[str, Sequence[str]], classes, confusions: Mapping) -> dict:
    """{view name: {variant: confusion_view}} for each variant's summed test confusion.

    A view equal to the full class set adds nothing and is left out.
    """
    check_views(views, classes)
    out = {}
    for name, keep in views.items():
        if set(keep) == set(classes):
            continue
        out[name] = {
            variant: confusion_view(cm, classes, list(keep))
            for variant, cm in confusions.items()
            if cm is not None
        }
    return out
