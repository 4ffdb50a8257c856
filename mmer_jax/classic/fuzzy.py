"""Decision-level fusion by a fuzzy integral over a Sugeno λ-measure (S004).

Each classifier i (a channel) has a fuzzy density g_i in (0, 1), its importance. The λ-measure of
a set A of classifiers is g(A) = (prod_{i in A}(1 + λ g_i) - 1) / λ, where λ > -1 is the root of
prod_i(1 + λ g_i) = 1 + λ other than 0 (λ = 0 when the densities sum to 1). For a class c, sort
the classifiers by their score h_i(c) in decreasing order, h_(1) >= ... >= h_(n), and let A_k be
the top-k set:

    Sugeno:  max_k min(h_(k), g(A_k))
    Choquet: sum_k (h_(k) - h_(k+1)) g(A_k),  h_(n+1) = 0

The class with the largest integral wins. Densities are learned on the validation split (never
the test split): by default each classifier's validation accuracy, scaled into (0, 1).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq

_EPS = 1e-9


def lambda_measure(densities: np.ndarray) -> float:
    """The λ of the Sugeno λ-measure for ``densities`` [n], each in (0, 1).

    Raises:
      ValueError: a density outside (0, 1), or fewer than one density.
    """
    g = np.asarray(densities, np.float64)
    if g.ndim != 1 or len(g) < 1 or np.any(g <= 0) or np.any(g >= 1):
        raise ValueError(f"densities must be a non-empty vector in (0, 1); got {g}")
    total = g.sum()
    if len(g) == 1 or abs(total - 1.0) < 1e-12:
        return 0.0

    def f(lam):
        return np.prod(1.0 + lam * g) - (1.0 + lam)

    if total > 1.0:  # the root lies in (-1, 0)
        return float(brentq(f, -1.0 + _EPS, -_EPS))
    hi = 1.0  # total < 1: the root is positive; grow the bracket until f changes sign
    while f(hi) < 0:
        hi *= 2.0
    return float(brentq(f, _EPS, hi))


def measure_of_top_sets(densities_sorted: np.ndarray, lam: float) -> np.ndarray:
    """g(A_k) for k = 1..n, where A_k holds the first k classifiers of ``densities_sorted``.

    Uses g(A_1) = g_1 and g(A_k) = g_k + g(A_{k-1}) + λ g_k g(A_{k-1}); g(A_n) = 1.
    """
    out = np.empty(len(densities_sorted))
    acc = 0.0
    for k, gk in enumerate(densities_sorted):
        acc = gk + acc + lam * gk * acc if k else gk
        out[k] = acc
    return out


def _integrals(scores: np.ndarray, densities: np.ndarray, lam: float, kind: str) -> np.ndarray:
    order = np.argsort(-scores, kind="stable")
    h = scores[order]
    g = measure_of_top_sets(densities[order], lam)
    if kind == "sugeno":
        return float(np.max(np.minimum(h, g)))
    diffs = h - np.append(h[1:], 0.0)
    return float(np.sum(diffs * g))


def sugeno(scores: np.ndarray, densities: np.ndarray) -> float:
    """Sugeno integral of classifier scores [n] in [0, 1] against densities [n]."""
    return _integrals(np.asarray(scores, float), np.asarray(densities, float),
                      lambda_measure(densities), "sugeno")


def choquet(scores: np.ndarray, densities: np.ndarray) -> float:
    """Choquet integral of classifier scores [n] in [0, 1] against densities [n]."""
    return _integrals(np.asarray(scores, float), np.asarray(densities, float),
                      lambda_measure(densities), "choquet")


class FuzzyIntegralFusion:
    """Fuses per-classifier class probabilities by a Sugeno or Choquet integral.

    Args:
      kind: "sugeno" or "choquet".
      floor, ceiling: learned densities are mapped into [floor, ceiling] inside (0, 1), so no
        classifier is ignored or decides alone.

    Raises:
      ValueError: unknown ``kind``; on ``fit`` / ``predict``, probability arrays of different
        shapes.
    """

    def __init__(self, kind: str = "choquet", floor: float = 0.05, ceiling: float = 0.95):
        if kind not in ("sugeno", "choquet"):
            raise ValueError(f"kind={kind!r} must be 'sugeno' or 'choquet'")
        self.kind, self.floor, self.ceiling = kind, floor, ceiling

    @staticmethod
    def _stack(probs) -> np.ndarray:
        arrays = [np.asarray(p, np.float64) for p in probs]
        if len({a.shape for a in arrays}) != 1 or arrays[0].ndim != 2:
            raise ValueError(f"every classifier needs probabilities [N, C] of one shape; got "
                             f"{[a.shape for a in arrays]}")
        return np.stack(arrays)  # [n, N, C]

    def fit(self, val_probs, y_val: np.ndarray) -> "FuzzyIntegralFusion":
        """Learns one density per classifier from its validation accuracy.

        Args:
          val_probs: list of n arrays [N, C], each classifier's validation probabilities.
          y_val: [N] int validation labels.
        """
        p = self._stack(val_probs)
        acc = (p.argmax(-1) == np.asarray(y_val)[None]).mean(-1)  # [n]
        self.densities_ = self.floor + (self.ceiling - self.floor) * acc
        self.lambda_ = lambda_measure(self.densities_)
        return self

    def scores(self, probs) -> np.ndarray:
        """list of n arrays [N, C] -> fused scores [N, C] (one integral per example and class)."""
        p = self._stack(probs)
        n, m, c = p.shape
        out = np.empty((m, c))
        for i in range(m):
            for k in range(c):
                out[i, k] = _integrals(p[:, i, k], self.densities_, self.lambda_, self.kind)
        return out

    def predict(self, probs) -> np.ndarray:
        """list of n arrays [N, C] -> predicted class [N] int."""
        return self.scores(probs).argmax(-1)
