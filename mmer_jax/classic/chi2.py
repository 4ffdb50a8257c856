"""Chi-square feature selection (S004: keep the top 50 % of each modality's features)."""

from __future__ import annotations

import numpy as np
from sklearn.feature_selection import chi2
from sklearn.preprocessing import MinMaxScaler


class Chi2Selector:
    """Keeps the ``keep`` fraction of features with the highest chi-square score against the
    labels, scored on the training split only.

    The chi-square test needs non-negative features (counts or frequencies), and encoder features
    are signed, so each feature is first min-max scaled to [0, 1] on the training split (values of
    other splits outside that range are clipped). Ties keep the lower feature index, so the choice
    is deterministic.

    Args:
      keep: fraction of features kept, in (0, 1]; the paper keeps 0.5. At least one is kept.

    Raises:
      ValueError: ``keep`` outside (0, 1]; on ``fit``, x not 2-D or x and y of different lengths.
    """

    def __init__(self, keep: float = 0.5):
        if not 0.0 < keep <= 1.0:
            raise ValueError(f"keep={keep} must be in (0, 1]")
        self.keep = keep

    def fit(self, x: np.ndarray, y: np.ndarray) -> "Chi2Selector":
        """x [N, D] float features, y [N] int labels -> self (``scores_``, ``selected_``)."""
        x = np.asarray(x, np.float64)
        y = np.asarray(y)
        if x.ndim != 2 or len(x) != len(y):
            raise ValueError(f"x must be [N, D] and y [N]; got {x.shape} and {y.shape}")
        self.scaler_ = MinMaxScaler(clip=True).fit(x)
        scores, _ = chi2(self.scaler_.transform(x), y)
        self.scores_ = np.nan_to_num(scores, nan=0.0)  # constant features score 0
        k = max(1, int(round(self.keep * x.shape[1])))
        order = np.lexsort((np.arange(len(self.scores_)), -self.scores_))  # score desc, index asc
        self.selected_ = np.sort(order[:k])
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        """x [N, D] -> the selected, scaled features [N, k] (float64 in [0, 1])."""
        return self.scaler_.transform(np.asarray(x, np.float64))[:, self.selected_]
