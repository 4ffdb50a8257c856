"""Evaluation metrics for emotion classification (sentiment regression: ``regression.py``).

Plain numpy on purpose: metrics run on host arrays after the device step, and the GPU machine's
Python has no scikit-learn. Every value returned is a python ``float``/``int`` (fractions in [0, 1],
never percent) so a result dict goes straight into ``results.json``; ``report.py`` formats percent.

Conventions, chosen to match what papers in this field report:

* ``weighted_f1`` weights per-class F1 by true support (scikit-learn ``average="weighted"``).
* ``macro_f1`` averages F1 over the classes seen in either ``y_true`` or ``y_pred`` (scikit-learn's
  default label set): a class absent from both has an undefined F1 and is left out, while a class
  that is predicted but never true still counts with F1 = 0.
* ``uar`` (unweighted average recall) averages recall over classes with true support > 0.
* Any 0/0 (precision of a never-predicted class, metrics of an empty set) is 0.0.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import numpy as np

# Kept importable from here; the regression protocol lives in train/regression.py.
from mmer_jax.train.regression import regression_metrics  # noqa: F401


def _as_labels(y_true, y_pred, weight) -> tuple[np.ndarray, np.ndarray]:
    """Flattens labels, argmaxes logits, and drops examples whose weight is 0.

    Args:
      y_true: integer labels, any shape.
      y_pred: integer labels of y_true's shape, or logits with one extra trailing axis.
      weight: optional 0/1 mask of y_true's shape; 0 marks padding added to fill a batch.

    Returns:
      (y_true, y_pred) as flat int64 arrays of the kept examples.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_pred.ndim == y_true.ndim + 1:
        y_pred = y_pred.argmax(axis=-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true.shape={y_true.shape} and y_pred.shape={y_pred.shape} must match")
    keep = np.ones(y_true.shape, dtype=bool)
    if weight is not None:
        weight = np.asarray(weight)
        if weight.shape != y_true.shape:
            raise ValueError(f"weight.shape={weight.shape} must equal y_true.shape={y_true.shape}")
        keep = weight > 0
    return y_true[keep].astype(np.int64).ravel(), y_pred[keep].astype(np.int64).ravel()


def confusion_matrix(y_true, y_pred, num_classes: int, weight=None) -> np.ndarray:
    """Counts (true, predicted) pairs.

    Args:
      y_true: integer labels.
      y_pred: integer labels or logits (see ``_as_labels``).
      num_classes: K.
      weight: optional 0/1 mask; masked examples are not counted (their labels may be anything).

    Returns:
      int64 array [K, K], rows = true class, columns = predicted class.

    Raises:
      ValueError: shapes that do not match, or a kept label outside [0, K).
    """
    t, p = _as_labels(y_true, y_pred, weight)
    for name, arr in (("y_true", t), ("y_pred", p)):
        if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
            raise ValueError(
                f"{name} has labels in [{arr.min()}, {arr.max()}] outside [0, {num_classes})"
            )
    flat = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def metrics_from_confusion(confusion, class_names: Sequence[str]) -> dict:
    """Derives the classification metric dict from a confusion matrix.

    Args:
      confusion: [K, K] counts, rows = true, columns = predicted.
      class_names: K names, in label order.

    Returns:
      Dict with ``accuracy``, ``weighted_f1``, ``macro_f1``, ``uar``, ``per_class``
      ({name: {precision, recall, f1, support}}), ``confusion`` (list of lists) and ``n``.

    Raises:
      ValueError: ``confusion`` is not K x K.
    """
    cm = np.asarray(confusion, dtype=np.int64)
    k = len(class_names)
    if cm.shape != (k, k):
        raise ValueError(f"confusion.shape={cm.shape} does not match {k} class_names")
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    n = int(cm.sum())

    precision = _safe_div(tp, predicted)
    recall = _safe_div(tp, support)
    f1 = _safe_div(2 * precision * recall, precision + recall)

    seen = (support + predicted) > 0
    present = support > 0
    return {
        "accuracy": float(_safe_div(tp.sum(), n)),
        "weighted_f1": float(_safe_div((f1 * support).sum(), n)),
        "macro_f1": float(f1[seen].mean()) if seen.any() else 0.0,
        "uar": float(recall[present].mean()) if present.any() else 0.0,
        "per_class": {
            str(name): {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(class_names)
        },
        "confusion": cm.tolist(),
        "n": n,
    }


def classification_metrics(y_true, y_pred, class_names: Sequence[str], weight=None) -> dict:
    """Accuracy, weighted/macro F1, UAR, per-class scores and the confusion matrix.

    Args:
      y_true: integer labels, any shape.
      y_pred: integer labels of the same shape, or logits with one extra trailing class axis.
      class_names: names of the K classes, in label order.
      weight: optional 0/1 mask excluding padded examples.

    Returns:
      See ``metrics_from_confusion``; all scores are fractions in [0, 1].

    Raises:
      ValueError: shapes that do not match, or a kept label outside [0, K).
    """
    cm = confusion_matrix(y_true, y_pred, len(class_names), weight)
    return metrics_from_confusion(cm, class_names)


class ConfusionAccumulator:
    """Sums a confusion matrix over eval batches so metrics need not keep every prediction.

    Example::

      acc = ConfusionAccumulator(num_classes=4)
      for batch in eval_batches:
          acc.update(batch["label"], logits, batch["mask"])
      metrics = acc.result(class_names)
    """

    def __init__(self, num_classes: int):
        self.num_classes = int(num_classes)
        self.reset()

    def reset(self) -> None:
        """Zeroes the matrix."""
        self.confusion = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def update(self, y_true, y_pred, weight=None) -> None:
        """Adds one batch; arguments as in ``classification_metrics`` (jax arrays are fine).

        Raises:
          ValueError: as :func:`confusion_matrix`.
        """
        self.confusion += confusion_matrix(y_true, y_pred, self.num_classes, weight)

    def result(self, class_names: Sequence[str]) -> dict:
        """Returns the metric dict of everything added since the last ``reset``."""
        return metrics_from_confusion(self.confusion, class_names)


def per_speaker_metrics(y_true, y_pred, speakers: Sequence[str], weight=None) -> dict | None:
    """Accuracy and UAR per speaker: ``{speaker: {"n", "accuracy", "uar"}}``, speakers sorted.

    Args:
      y_true: integer labels of the evaluated examples, in evaluation order.
      y_pred: integer labels or logits (see ``_as_labels``).
      speakers: the speaker id of each kept (weight > 0) example, in the same order.
      weight: optional 0/1 mask; padding rows (weight 0) are dropped before matching speakers.

    Returns:
      The dict above (UAR over the classes the speaker has examples of), or None when the number
      of kept examples differs from ``len(speakers)`` (the order is then unknown).
    """
    t, p = _as_labels(y_true, y_pred, weight)
    spk = np.asarray([str(s) for s in speakers])
    if spk.shape != t.shape:
        return None
    out = {}
    for s in sorted(set(spk.tolist())):
        mine = spk == s
        ts, ps = t[mine], p[mine]
        recalls = [float(np.mean(ps[ts == c] == c)) for c in np.unique(ts)]
        out[s] = {"n": int(mine.sum()), "accuracy": float(np.mean(ts == ps)),
                  "uar": float(np.mean(recalls))}
    return out


def speakers_in_order(pipeline, split: str) -> list[str] | None:
    """The speaker id of every example of ``split`` in evaluation order (index order: eval
    batches cover each example once, in order), or None where unknown: dialogue units (a row is
    a dialogue) or a corpus storing no ``speaker``.

    Read once per (pipeline, split) and kept.
    """
    if getattr(pipeline, "unit", "utterance") != "utterance":
        return None
    try:
        cache = _SPEAKERS.setdefault(pipeline, {})
    except TypeError:  # not weak-referenceable: read every time
        cache = {}
    if split not in cache:
        src = pipeline.sources[split]
        n = len(src)
        if n == 0 or n != pipeline.num_examples(split) or "speaker" not in src[0]:
            cache[split] = None
        else:
            cache[split] = [
                s.decode("utf-8", "replace") if isinstance(s, bytes) else str(s)
                for s in (src[i]["speaker"] for i in range(n))
            ]
    return cache[split]


_SPEAKERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # pipeline -> {split: ...}


def per_speaker_of(pipeline, split: str, y_true, y_pred, weight, cfg=None) -> dict | None:
    """:func:`per_speaker_metrics` of an evaluation of ``split`` (rows in evaluation order, padding
    weighted 0), or None where speakers are not known (see :func:`speakers_in_order`) or the
    config says the stored ids are not people (``protocol.measure_speakers`` false, e.g. M/F)."""
    protocol = (cfg.get("protocol") if cfg is not None else None) or {}
    if not protocol.get("measure_speakers", True):
        return None
    speakers = speakers_in_order(pipeline, split)
    if speakers is None:
        return None
    return per_speaker_metrics(y_true, y_pred, speakers, weight=weight)

