"""S004's classical half as one object: per channel (modality) chi-square selection and a LIBSVM
classifier, decision-level fusion by a fuzzy integral, and the across-modality variant (the
channels concatenated, one LIBSVM).

Source: seed paper S004 (``shared/papers/S004_*``), "Feature Selection" (chi-square, keep the top
50 %) and "Feature Classification" (one LIBSVM per channel, fuzzy-integral fusion), Figure 8 (with
and without chi-square).

Input: each channel's features per split, as exported by
:mod:`mmer_jax.train.export_features` (``feat_<modality>`` or a ``tap_<layer>``), with the
examples' labels and ids. numpy/scikit-learn only.

S004's context LSTMs (within each modality over the utterances of one video, and across the
spliced modalities) are not computed here (no jax here). They run upstream
(:mod:`.context_lstm`, called by :mod:`.fit`), and their hidden states come in as channels like
any other features. On a corpus without groups (no ``dialogue_id`` / video id, e.g. the
generated corpus) every sequence has length 1, and those LSTMs learn a per-utterance transform
rather than context.

Preprocessing, fitted on the training split only: every channel is min-max scaled to [0, 1]
(values of other splits clipped), which the chi-square test needs (non-negative inputs); with
``chi2_keep=None`` the same scaling is applied and no feature is dropped, so the ablation changes
only the selection. ``chi2_keep=0.5`` keeps ceil(D / 2) features.

Model selection: each SVC's C and RBF gamma are chosen by validation weighted F1 (a plain SVC per
grid point), the fuzzy densities by validation accuracy; :meth:`S004Hybrid.evaluate` scores the
test split once, every row in one call.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.metrics import accuracy_score, f1_score
from sklearn.preprocessing import MinMaxScaler
from sklearn.svm import SVC

from mmer_jax.classic.chi2 import Chi2Selector
from mmer_jax.classic.fuzzy import FuzzyIntegralFusion
from mmer_jax.classic.svm import ChannelSVM

FUSIONS = ("sugeno", "choquet")
CONCAT = "concat"


@dataclasses.dataclass(frozen=True)
class SplitFeatures:
    """One split's inputs to the hybrid.

    Attributes:
      channels: ``{channel: features [N, D_channel]}`` (any float dtype), rows in ``ids`` order.
      labels: [N] int class indices.
      ids: [N] example ids (str), the same order in every channel.
    """

    channels: Mapping[str, np.ndarray]
    labels: np.ndarray
    ids: np.ndarray


def align(ids_by_channel: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Row indices that put every channel in the first channel's id order.

    Args:
      ids_by_channel: ``{channel: ids [N]}``, each channel's own order.

    Returns:
      ``{channel: index [N] int}`` with ``ids[channel][index] == ids[first]``.

    Raises:
      ValueError: a channel's ids are not the first channel's (missing, extra or repeated).
    """
    names = list(ids_by_channel)
    ref = np.asarray(ids_by_channel[names[0]]).astype(str)
    out = {}
    for name in names:
        ids = np.asarray(ids_by_channel[name]).astype(str)
        pos = {v: i for i, v in enumerate(ids)}
        if len(pos) != len(ids) or len(ids) != len(ref) or set(pos) != set(ref):
            raise ValueError(f"channel {name!r}: its example ids are not those of "
                             f"{names[0]!r} ({len(ids)} vs {len(ref)}, "
                             f"{len(set(ref) - set(pos))} missing)")
        out[name] = np.array([pos[v] for v in ref])
    return out


def join_channels(exports: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
                  ) -> SplitFeatures:
    """One split of several channels exported separately, rows in the first channel's order.

    Args:
      exports: ``{channel: (ids [N], features [N, D], labels [N])}``, each in its own order.

    Raises:
      ValueError: the channels' ids differ, or their labels disagree for the same id (one line).
    """
    index = align({name: e[0] for name, e in exports.items()})
    first = next(iter(exports))
    labels = np.asarray(exports[first][2])[index[first]]
    for name, (_, _, y) in exports.items():
        if not np.array_equal(np.asarray(y)[index[name]], labels):
            raise ValueError(f"channel {name!r}: labels disagree with {first!r} for the same ids")
    return SplitFeatures(
        channels={name: np.asarray(e[1])[index[name]] for name, e in exports.items()},
        labels=labels, ids=np.asarray(exports[first][0]).astype(str)[index[first]])


def _check_split(split: SplitFeatures, what: str, channels: Sequence[str] | None) -> None:
    n = len(split.labels)
    if len(split.ids) != n:
        raise ValueError(f"{what}: {len(split.ids)} ids for {n} labels")
    if channels is not None and list(split.channels) != list(channels):
        raise ValueError(f"{what}: channels {list(split.channels)}, fitted on {list(channels)}")
    for name, x in split.channels.items():
        if np.ndim(x) != 2 or len(x) != n:
            raise ValueError(f"{what}: channel {name!r} has shape {np.shape(x)}, expected "
                             f"[{n}, D]")


def kept_features(d: int, keep: float | None) -> int:
    """Features kept of ``d`` by chi-square selection keeping ``keep`` (None: all): ceil."""
    return d if keep is None else max(1, math.ceil(keep * d))


class ChannelFeatures:
    """One channel's train-fitted preprocessing: min-max scaling to [0, 1] and, when ``keep`` is
    set, chi-square selection of the ceil(keep * D) best features (scored on train only).

    Args:
      keep: fraction kept, in (0, 1], or None (no selection; scaling only).
    """

    def __init__(self, keep: float | None):
        self.keep = keep

    def fit(self, x: np.ndarray, y: np.ndarray) -> "ChannelFeatures":
        """x [N, D] training features, y [N] labels -> self."""
        x = np.asarray(x, np.float64)
        if self.keep is None:
            self.scaler_ = MinMaxScaler(clip=True).fit(x)
            self.selector_ = None
        else:
            # Chi2Selector rounds keep * D; ask for exactly ceil(keep * D) features.
            k = kept_features(x.shape[1], self.keep)
            self.selector_ = Chi2Selector(keep=k / x.shape[1]).fit(x, y)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        """x [N, D] -> [N, k] float64 in [0, 1]."""
        if self.selector_ is not None:
            return self.selector_.transform(x)
        return self.scaler_.transform(np.asarray(x, np.float64))


def select_svc(x_train, y_train, x_val, y_val, c_grid, gamma_scales) -> dict:
    """C and gamma of an RBF SVC by validation weighted F1 (ties: the earlier grid point).

    Args:
      x_train, y_train, x_val, y_val: preprocessed features [N, k] and labels [N].
      c_grid: penalty factors tried.
      gamma_scales: multiples of scikit-learn's "scale" gamma, 1 / (k * var(x_train)).

    Returns:
      ``{"c", "gamma", "val_weighted_f1"}``.
    """
    var = float(np.var(x_train))
    base = 1.0 / (x_train.shape[1] * var) if var > 0 else 1.0
    best = {"val_weighted_f1": -1.0}
    for c in c_grid:
        for s in gamma_scales:
            pred = SVC(C=c, gamma=base * s, kernel="rbf").fit(x_train, y_train).predict(x_val)
            f1 = f1_score(y_val, pred, average="weighted")
            if f1 > best["val_weighted_f1"]:
                best = {"c": float(c), "gamma": float(base * s), "val_weighted_f1": float(f1)}
    return best


def scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """``{"accuracy", "weighted_f1"}`` as fractions."""
    return {"accuracy": float(accuracy_score(y_true, y_pred)),
            "weighted_f1": float(f1_score(y_true, y_pred, average="weighted"))}


class S004Hybrid:
    """Per-channel SVCs fused by Sugeno and Choquet integrals, plus one SVC on the concatenated
    channels (S004's across-modality row).

    Args:
      chi2_keep: fraction of each channel's features kept by chi-square (the paper: 0.5), or None
        to switch selection off (the paper's Figure 8 ablation).
      c_grid: SVC penalty factors tried on validation.
      gamma_scales: RBF gamma multiples of the "scale" value tried on validation.
      concat: also fit the concatenated-channels SVC.
      seed: seeds the probability calibration folds.

    Raises:
      ValueError: on ``fit``/``evaluate``, a split with mismatched lengths, channels, or ids that
        differ between train-time channels (one line).
    """

    def __init__(self, chi2_keep: float | None = 0.5,
                 c_grid: Sequence[float] = (0.1, 1.0, 10.0, 100.0),
                 gamma_scales: Sequence[float] = (0.1, 1.0, 10.0), concat: bool = True,
                 seed: int = 0):
        if chi2_keep is not None and not 0.0 < chi2_keep <= 1.0:
            raise ValueError(f"chi2_keep={chi2_keep} must be in (0, 1] or None")
        self.chi2_keep, self.c_grid, self.gamma_scales = chi2_keep, tuple(c_grid), tuple(
            gamma_scales)
        self.concat, self.seed = concat, seed

    def _inputs(self, split: SplitFeatures) -> dict[str, np.ndarray]:
        out = {name: self.features_[name].transform(x) for name, x in split.channels.items()}
        if self.concat and len(out) > 1:
            out[CONCAT] = np.concatenate([out[name] for name in self.channels_], axis=1)
        return out

    def fit(self, train: SplitFeatures, validation: SplitFeatures) -> "S004Hybrid":
        """Fits preprocessing and SVCs on ``train``, chooses C/gamma and the fuzzy densities on
        ``validation``.

        Sets ``channels_``, ``num_classes_``, ``dims_`` (features per channel after selection),
        ``settings_`` (per classifier: c, gamma, validation weighted F1), ``validation_``
        (validation scores of every row) and ``fusion_`` (per kind, the fitted fusion).
        """
        _check_split(train, "train", None)
        self.channels_ = list(train.channels)
        _check_split(validation, "validation", self.channels_)
        y_tr, y_va = np.asarray(train.labels), np.asarray(validation.labels)
        self.num_classes_ = int(max(y_tr.max(), y_va.max())) + 1
        self.features_ = {name: ChannelFeatures(self.chi2_keep).fit(x, y_tr)
                          for name, x in train.channels.items()}
        x_tr, x_va = self._inputs(train), self._inputs(validation)
        self.dims_ = {name: int(x.shape[1]) for name, x in x_tr.items()}
        self.settings_, self.svms_, val_probs = {}, {}, {}
        for name in x_tr:
            s = select_svc(x_tr[name], y_tr, x_va[name], y_va, self.c_grid, self.gamma_scales)
            self.settings_[name] = s
            self.svms_[name] = ChannelSVM(c=s["c"], gamma=s["gamma"], seed=self.seed).fit(
                x_tr[name], y_tr)
            val_probs[name] = self.svms_[name].predict_proba(x_va[name], self.num_classes_)
        self.validation_ = {name: scores(y_va, p.argmax(-1)) for name, p in val_probs.items()}
        self.fusion_ = {}
        if len(self.channels_) > 1:
            per_channel = [val_probs[name] for name in self.channels_]
            for kind in FUSIONS:
                self.fusion_[kind] = FuzzyIntegralFusion(kind).fit(per_channel, y_va)
                self.validation_[kind] = scores(y_va, self.fusion_[kind].predict(per_channel))
        return self

    def row_scores(self, split: SplitFeatures) -> dict[str, np.ndarray]:
        """Every row's class scores [N, C] float64 on ``split``: each channel's and ``concat``'s
        SVC probabilities, ``sugeno``'s and ``choquet``'s fuzzy integrals; a row's prediction
        is the argmax."""
        _check_split(split, "split", self.channels_)
        x = self._inputs(split)
        probs = {name: self.svms_[name].predict_proba(x[name], self.num_classes_) for name in x}
        for kind, fusion in self.fusion_.items():
            probs[kind] = fusion.scores([probs[name] for name in self.channels_])
        return probs

    def evaluate(self, test: SplitFeatures) -> dict[str, dict]:
        """Scores every row on ``test`` once: ``{row: {"accuracy", "weighted_f1"}}`` for each
        channel, ``sugeno``, ``choquet`` and ``concat`` (the last three with two or more
        channels)."""
        _check_split(test, "test", self.channels_)
        y = np.asarray(test.labels)
        return {name: scores(y, p.argmax(-1)) for name, p in self.row_scores(test).items()}
