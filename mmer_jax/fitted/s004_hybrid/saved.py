"""The row a finished ``s004_hybrid`` run serves, as plain arrays: saved without pickle, scored
with numpy.

The fitted :class:`~.classifier.S004Hybrid` holds scikit-learn objects (min-max scalers, chi-square
selections, calibrated RBF SVCs). A run must not store them with ``pickle`` (loading a pickle runs
code), so :class:`SavedHybrid` keeps the numbers that map the two channels' features to class
scores and recomputes the same function:

    z_c    = clip(x_c * scale_c + min_c, 0, 1)[:, selected_c]        each channel's preprocessing
    K      = exp(-gamma * |z - sv|^2)                                  the RBF kernel [N, SV]
    d_ij   = K[:, sv_i] @ alpha_j-1 + K[:, sv_j] @ alpha_i + b_ij       LIBSVM's one-vs-one values
    f      = one-vs-rest values from d (scikit-learn's votes + confidences), [N, C] or [N] for 2
    p_k    = sigmoid(-(a_k f_k + b_k)), normalised                      Platt scaling per class
    fused  = Sugeno / Choquet integral of the channels' p over the densities

Saved as ``hybrid_model.npz`` (numeric arrays, read with ``allow_pickle=False``) and
``hybrid_model.json`` (channels, rows, classes, densities).
"""

from __future__ import annotations

import json
import os

import numpy as np

from mmer_jax.classic.fuzzy import FuzzyIntegralFusion, lambda_measure
from mmer_jax.io_utils import atomic_write_json

NPZ, JSON = "hybrid_model.npz", "hybrid_model.json"


def _preprocessing(features) -> dict[str, np.ndarray]:
    """A fitted :class:`~.classifier.ChannelFeatures` as ``scale``, ``min``, ``selected``."""
    selector = features.selector_
    scaler = selector.scaler_ if selector is not None else features.scaler_
    selected = (selector.selected_ if selector is not None
                else np.arange(len(scaler.scale_)))
    return {"scale": scaler.scale_, "min": scaler.min_, "selected": np.asarray(selected)}


def _svm(channel_svm) -> dict[str, np.ndarray]:
    """A fitted :class:`~mmer_jax.classic.svm.ChannelSVM` (one calibrated SVC) as arrays."""
    cal = channel_svm.svc.calibrated_classifiers_[0]
    svc = cal.estimator
    return {"support_vectors": svc.support_vectors_, "dual_coef": svc._dual_coef_,
            "intercept": svc._intercept_, "n_support": svc._n_support,
            "gamma": np.float64(svc._gamma), "classes": svc.classes_,
            "cal_a": np.array([c.a_ for c in cal.calibrators], np.float64),
            "cal_b": np.array([c.b_ for c in cal.calibrators], np.float64)}


def svc_probabilities(arrays: dict[str, np.ndarray], z: np.ndarray,
                      num_classes: int) -> np.ndarray:
    """[N, num_classes] float64 calibrated probabilities of preprocessed inputs ``z`` [N, D]
    (0 for classes absent in training), as ``ChannelSVM.predict_proba`` computes them."""
    sv, classes = arrays["support_vectors"], arrays["classes"]
    k = len(classes)
    sq = (z * z).sum(1)[:, None] + (sv * sv).sum(1)[None] - 2.0 * z @ sv.T
    kernel = np.exp(-arrays["gamma"] * np.maximum(sq, 0.0))  # [N, SV]
    start = np.concatenate([[0], np.cumsum(arrays["n_support"])])
    coef, b = arrays["dual_coef"], arrays["intercept"]
    ovo, p = [], 0
    for i in range(k):
        for j in range(i + 1, k):
            si, sj = slice(start[i], start[i + 1]), slice(start[j], start[j + 1])
            ovo.append(kernel[:, si] @ coef[j - 1, si] + kernel[:, sj] @ coef[i, sj] + b[p])
            p += 1
    dec = np.stack(ovo, 1)  # LIBSVM's sign: > 0 votes for the first class of the pair
    if k == 2:
        f = -dec  # scikit-learn's binary decision_function: > 0 is classes[1]
    else:
        votes, conf, p = np.zeros((len(z), k)), np.zeros((len(z), k)), 0
        for i in range(k):
            for j in range(i + 1, k):
                conf[:, i] += dec[:, p]
                conf[:, j] -= dec[:, p]
                votes[:, i] += dec[:, p] >= 0
                votes[:, j] += dec[:, p] < 0
                p += 1
        f = votes + conf / (3 * (np.abs(conf) + 1))
    f = f.reshape(len(z), -1)
    cal = 1.0 / (1.0 + np.exp(arrays["cal_a"][None] * f + arrays["cal_b"][None]))
    if k == 2:
        proba = np.stack([1.0 - cal[:, 0], cal[:, 0]], 1)
    else:
        total = cal.sum(1, keepdims=True)
        proba = np.divide(cal, total, out=np.full_like(cal, 1.0 / k), where=total != 0)
    proba[(1.0 < proba) & (proba <= 1.0 + 1e-5)] = 1.0
    out = np.zeros((len(z), num_classes))
    out[:, classes] = proba
    return out


class SavedHybrid:
    """One row of a fitted hybrid, scored with numpy (module docstring).

    Args:
      arrays: the ``.npz`` arrays (keys ``<channel>.scale`` ..., ``<row>.support_vectors`` ...).
      meta: ``{"channels", "row", "num_classes", "densities" (fusion rows)}``.
    """

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict):
        self.arrays, self.meta = arrays, meta
        self.channels: list[str] = list(meta["channels"])
        self.row: str = meta["row"]
        self.num_classes = int(meta["num_classes"])

    @classmethod
    def from_model(cls, model, row: str) -> "SavedHybrid":
        """Keeps what row ``row`` of a fitted :class:`~.classifier.S004Hybrid` needs.

        Raises:
          ValueError: the model has no row ``row``.
        """
        fusion = row in model.fusion_
        if not fusion and row not in model.svms_:
            raise ValueError(f"row {row!r}: the hybrid has {sorted(model.svms_)} and "
                             f"{sorted(model.fusion_)}")
        arrays = {}
        for name in model.channels_:
            arrays.update({f"{name}.{k}": v for k, v in _preprocessing(
                model.features_[name]).items()})
        svms = model.channels_ if fusion else [row]
        for name in svms:
            arrays.update({f"svm.{name}.{k}": np.asarray(v) for k, v in _svm(
                model.svms_[name]).items()})
        meta = {"channels": list(model.channels_), "row": row,
                "num_classes": int(model.num_classes_), "svms": list(svms),
                "densities": model.fusion_[row].densities_.tolist() if fusion else None}
        return cls(arrays, meta)

    def save(self, directory: str) -> None:
        """Writes ``hybrid_model.npz`` and ``hybrid_model.json`` into ``directory``."""
        np.savez(os.path.join(directory, NPZ), **self.arrays)
        atomic_write_json(os.path.join(directory, JSON), self.meta)

    @classmethod
    def load(cls, directory: str) -> "SavedHybrid":
        """Reads what :meth:`save` wrote (``allow_pickle=False``).

        Raises:
          FileNotFoundError: a file is missing.
        """
        with np.load(os.path.join(directory, NPZ), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        with open(os.path.join(directory, JSON)) as f:
            return cls(arrays, json.load(f))

    def _inputs(self, channels: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {}
        for name in self.channels:
            a = {k: self.arrays[f"{name}.{k}"] for k in ("scale", "min", "selected")}
            x = np.asarray(channels[name], np.float64) * a["scale"] + a["min"]
            out[name] = np.clip(x, 0.0, 1.0)[:, a["selected"]]
        out["concat"] = np.concatenate([out[n] for n in self.channels], axis=1)
        return out

    def scores(self, channels: dict[str, np.ndarray]) -> np.ndarray:
        """The row's class scores [N, C] float64 (probabilities for an SVC row, the fuzzy
        integrals for a fusion row; the prediction is the argmax).

        Args:
          channels: ``{channel: features [N, D_channel]}`` as exported (before scaling).

        Raises:
          KeyError: a channel is missing.
        """
        z = self._inputs(channels)
        probs = {}
        for name in self.meta["svms"]:
            svm = {k[len(f"svm.{name}."):]: v for k, v in self.arrays.items()
                   if k.startswith(f"svm.{name}.")}
            probs[name] = svc_probabilities(svm, z[name], self.num_classes)
        if self.meta["densities"] is None:
            return probs[self.row]
        fusion = FuzzyIntegralFusion(self.row)
        fusion.densities_ = np.asarray(self.meta["densities"], np.float64)
        fusion.lambda_ = lambda_measure(fusion.densities_)
        return fusion.scores([probs[n] for n in self.channels])
