"""One LIBSVM classifier per channel (S004): scikit-learn's ``SVC`` is LIBSVM."""

from __future__ import annotations

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import SVC


class ChannelSVM:
    """An RBF-kernel LIBSVM classifier with class probabilities, the input of the
    fuzzy-integral fusion.

    Probabilities come from Platt scaling fitted on cross-validated decision values, as LIBSVM's
    ``-b 1`` does (scikit-learn >= 1.9 replaces ``SVC(probability=True)`` by this calibrator).

    Args:
      c: the penalty factor (the paper's theta).
      gamma: RBF kernel width; "scale" is 1 / (D * var(x)).
      seed: seeds the cross-validation folds of the probability model.
    """

    def __init__(self, c: float = 1.0, gamma: str | float = "scale", seed: int = 0):
        folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
        self.svc = CalibratedClassifierCV(SVC(C=c, gamma=gamma, kernel="rbf"), method="sigmoid",
                                          cv=folds, ensemble=False)

    def fit(self, x: np.ndarray, y: np.ndarray) -> "ChannelSVM":
        """x [N, D] features, y [N] int labels -> self."""
        self.svc.fit(np.asarray(x), np.asarray(y))
        return self

    def predict_proba(self, x: np.ndarray, num_classes: int) -> np.ndarray:
        """x [N, D] -> probabilities [N, num_classes] float64 (0 for classes absent in training)."""
        p = self.svc.predict_proba(np.asarray(x))
        out = np.zeros((len(p), num_classes))
        out[:, self.svc.classes_] = p
        return out
