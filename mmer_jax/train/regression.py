"""The regression protocol of CMU-MOSI / CMU-MOSEI: sentiment intensity in [-3, 3] as the target.

Selected by ``protocol.task = "regression"`` (see :class:`mmer_jax.schema.ProtocolConfig`): the
model is built with a 1-output head, trained with ``protocol.regression_loss`` (L1, as the MMSA
toolkit trains its regression models, or MSE) on the batch's ``score``, and evaluated with the
field's metrics, computed as MMSA's ``MetricsTop`` computes them for MOSI/MOSEI:

* ``acc2_has0`` / ``f1_has0``: negative (< 0) vs non-negative (>= 0), every example;
* ``acc2_non0`` / ``f1_non0``: examples whose true score is exactly 0 are dropped, then positive
  (> 0) vs not (> 0 for prediction and truth alike); both F1 are support-weighted (scikit-learn
  ``average="weighted"``);
* ``acc3`` / ``acc5`` / ``acc7``: both sides clipped to [-1, 1] / [-2, 2] / [-3, 3] and rounded
  (``np.round``: half to even, as MMSA), then compared;
* ``mae``: mean absolute error of the raw (unclipped) prediction; ``corr``: Pearson correlation.

Deviation from MMSA: ``corr`` is 0.0, not NaN, when either side is constant (strict JSON has no
NaN). Every score is a python float; fractions in [0, 1], MAE in score units.

The metrics are plain numpy (host side, after the device step); :func:`regression_loss` and
:func:`eval_outputs` are the jnp pieces the jitted steps (:mod:`mmer_jax.train.steps`) call.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from mmer_jax import metric_table
from mmer_jax.schema import ProtocolConfig, from_section

# Keys of :func:`regression_metrics` (besides ``n``), in the order runs store them.
REGRESSION_KEYS = metric_table.REGRESSION
# Validation scores logged per epoch (metrics.jsonl, TensorBoard) for either task.
_LOGGED = {
    "classification": metric_table.HEADLINE,
    "regression": ("acc2_has0", "acc2_non0", "f1_non0", "acc7", "mae", "corr"),
}


# -- metrics (numpy) ---------------------------------------------------------------------------
def _binary_acc_wf1(true_pos: np.ndarray, pred_pos: np.ndarray) -> tuple[float, float]:
    """Accuracy and support-weighted F1 of two boolean arrays (a class absent from the truth has
    weight 0, as in scikit-learn)."""
    if true_pos.size == 0:
        return 0.0, 0.0
    acc = float(np.mean(true_pos == pred_pos))
    wf1 = 0.0
    for cls in (False, True):
        t, p = true_pos == cls, pred_pos == cls
        tp = float(np.sum(t & p))
        support, predicted = float(np.sum(t)), float(np.sum(p))
        if support == 0:
            continue
        precision = tp / predicted if predicted else 0.0
        recall = tp / support
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        wf1 += f1 * support
    return acc, wf1 / true_pos.size


def _rounded_acc(t: np.ndarray, p: np.ndarray, bound: float) -> float:
    """Fraction of equal rounded values after clipping both sides to [-bound, bound]."""
    clipped = lambda a: np.round(np.clip(a, -bound, bound))  # noqa: E731
    return float(np.mean(clipped(p) == clipped(t)))


def regression_metrics(y_true, y_pred, weight=None) -> dict:
    """Sentiment-regression metrics of MOSI/MOSEI as MMSA computes them (module docstring).

    Args:
      y_true: float scores in [-3, 3], any shape.
      y_pred: float predictions (unbounded), same shape.
      weight: optional 0/1 mask of the same shape; 0 marks padding rows, which are dropped.

    Returns:
      ``{"acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc3", "acc5", "acc7", "mae", "corr",
      "n"}``: python floats (fractions in [0, 1]; ``mae`` in score units; ``corr`` in [-1, 1],
      0.0 when either side is constant) and the int count of kept examples. Every score is 0.0
      for an empty set; the non-zero views are 0.0 when every true score is 0.

    Raises:
      ValueError: ``y_true``, ``y_pred`` (or ``weight``) differ in shape.
    """
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if t.shape != p.shape:
        raise ValueError(f"y_true.shape={t.shape} and y_pred.shape={p.shape} must match")
    if weight is not None:
        keep = np.asarray(weight) > 0
        if keep.shape != t.shape:
            raise ValueError(f"weight.shape={keep.shape} must equal y_true.shape={t.shape}")
        t, p = t[keep], p[keep]
    t, p = t.ravel(), p.ravel()
    n = int(t.size)
    if n == 0:
        return {**dict.fromkeys(REGRESSION_KEYS, 0.0), "n": 0}
    dt, dp = t - t.mean(), p - p.mean()
    den = np.sqrt((dt * dt).sum() * (dp * dp).sum())
    acc2_has0, f1_has0 = _binary_acc_wf1(t >= 0, p >= 0)
    nz = t != 0
    acc2_non0, f1_non0 = _binary_acc_wf1(t[nz] > 0, p[nz] > 0)
    return {
        "acc2_has0": acc2_has0,
        "f1_has0": f1_has0,
        "acc2_non0": acc2_non0,
        "f1_non0": f1_non0,
        "acc3": _rounded_acc(t, p, 1.0),
        "acc5": _rounded_acc(t, p, 2.0),
        "acc7": _rounded_acc(t, p, 3.0),
        "mae": float(np.mean(np.abs(p - t))),
        "corr": float((dt * dp).sum() / den) if den > 0 else 0.0,
        "n": n,
    }


# -- selection and logging (any task) ----------------------------------------------------------
def improved(metric: str, value: float, best: float | None) -> bool:
    """Whether validation ``value`` of ``metric`` beats ``best`` (None: nothing yet, so True).

    The direction is the metric table's (:data:`mmer_jax.metric_table.METRICS`: lower is
    better for ``mae``); a tie is not an improvement, so the earliest epoch reaching a score is
    kept.
    """
    return metric_table.METRICS[metric].better(value, best)


def logged_scores(val: dict) -> dict:
    """The validation scores written per epoch to metrics.jsonl / TensorBoard: ``accuracy``,
    ``weighted_f1``, ``uar`` of a classification run, or ``acc2_has0``, ``acc2_non0``,
    ``f1_non0``, ``acc7``, ``mae``, ``corr`` of a regression run (python floats)."""
    task = "regression" if "mae" in val else "classification"
    return {k: val[k] for k in _LOGGED[task]}


def is_regression(cfg) -> bool:
    """Whether a run config (a ConfigDict or mapping with an optional ``protocol`` section)
    trains a regression model (``protocol.task = "regression"``)."""
    protocol = from_section(ProtocolConfig, cfg.get("protocol"), "protocol")
    return protocol.task == "regression"


def head_size(cfg, num_classes: int) -> int:
    """The model's number of outputs for a run config: 1 for a regression run, else
    ``num_classes``. Everything that builds a run's model (trainer, config check, profile,
    predictor) asks here, so a restored checkpoint's head always matches."""
    return 1 if is_regression(cfg) else int(num_classes)


def summary(val: dict) -> str:
    """A short text of the validation scores for the per-epoch progress line."""
    if "mae" in val:
        return f"Acc-2 {val['acc2_non0']:.3f} MAE {val['mae']:.3f} Corr {val['corr']:.3f}"
    # UAR too: speech corpora are judged by it, and it moves where accuracy hides a class.
    uar = f" UAR {val['uar']:.3f}" if "uar" in val else ""
    return f"acc {val['accuracy']:.3f} wF1 {val['weighted_f1']:.3f}{uar}"


# -- the jitted side (jnp) ---------------------------------------------------------------------
def _score(inputs: dict) -> jnp.ndarray:
    if "score" not in inputs:
        raise KeyError(
            "protocol.task='regression' needs a 'score' in every batch: the corpus stores none "
            "(use a corpus with a score field, e.g. cmu_mosi, or set data.class_scores)"
        )
    return inputs["score"].astype(jnp.float32)


def predictions(logits: jnp.ndarray) -> jnp.ndarray:
    """[..., 1] outputs of a 1-output head -> [...] float32 predicted scores.

    Raises:
      ValueError: the last axis is not of size 1 (the model was built for classes).
    """
    if logits.shape[-1] != 1:
        raise ValueError(f"a regression head has 1 output, got logits.shape={logits.shape}")
    return logits[..., 0].astype(jnp.float32)


def regression_loss(pred, score, weight, kind: str = "l1") -> jnp.ndarray:
    """Weighted mean L1 or squared error over the examples with weight > 0.

    Args:
      pred: [...] float predicted scores.
      score: [...] float true scores (score units, [-3, 3] on MOSI/MOSEI).
      weight: [...] float, 1 for real examples and 0 for padding.
      kind: "l1" (mean absolute error, MMSA's regression loss) or "mse".

    Returns:
      A float32 scalar: sum(weight * err) / max(sum(weight), 1).

    Raises:
      ValueError: ``kind`` is neither "l1" nor "mse".
    """
    diff = pred.astype(jnp.float32) - score.astype(jnp.float32)
    if kind == "l1":
        err = jnp.abs(diff)
    elif kind == "mse":
        err = diff * diff
    else:
        raise ValueError(f"regression_loss kind={kind!r} must be 'l1' or 'mse'")
    return jnp.sum(err * weight) / jnp.maximum(jnp.sum(weight), 1.0)


def train_objective(logits, aux: dict, inputs: dict, kind: str, aux_weight: float = 0.0):
    """The training loss of a regression batch and its has-0 binary accuracy.

    Args:
      logits: [B, 1] head outputs.
      aux: the model's aux dict; ``aux["aux_logits"]`` ([B, 1]) adds ``aux_weight`` times its
        loss when ``aux_weight > 0``.
      inputs: the model batch (``score`` [B] float, ``weight`` [B] float).
      kind: "l1" or "mse" (``protocol.regression_loss``).
      aux_weight: ``train.aux_loss_weight``.

    Returns:
      ``(loss, acc)``: float32 scalars; ``acc`` is the weighted fraction of examples whose
      predicted and true scores agree in sign (negative vs non-negative), in [0, 1].

    Raises:
      KeyError: the batch has no ``score``.
      ValueError: the head does not have 1 output, or ``kind`` is unknown.
    """
    score, weight = _score(inputs), inputs["weight"]
    pred = predictions(logits)
    loss = regression_loss(pred, score, weight, kind)
    if aux_weight and "aux_logits" in aux:
        loss = loss + aux_weight * regression_loss(predictions(aux["aux_logits"]), score, weight,
                                                   kind)
    agree = ((pred >= 0) == (score >= 0)) * weight
    return loss, jnp.sum(agree) / jnp.maximum(jnp.sum(weight), 1.0)


def eval_outputs(logits, inputs: dict, kind: str) -> dict:
    """The eval step's outputs for a regression batch, with the classification step's keys.

    Returns:
      ``pred`` [B] float32 predicted scores, ``label`` [B] float32 true scores, ``weight`` [B],
      ``loss_sum`` (float32 scalar: sum of weight x error), ``probs`` [B, 1] (the predicted score
      again: a regression run has no class probabilities).

    Raises:
      KeyError: the batch has no ``score``.
      ValueError: the head does not have 1 output, or ``kind`` is unknown.
    """
    score, weight = _score(inputs), inputs["weight"]
    pred = predictions(logits)
    loss = regression_loss(pred, score, weight, kind)
    return {"pred": pred, "label": score, "weight": weight,
            "loss_sum": loss * jnp.sum(weight), "probs": pred[..., None]}
