"""The non-neural half of S004 (chi-square feature selection, one LIBSVM classifier per channel,
decision-level fusion by a fuzzy integral), usable on features exported from any encoder.

Source: seed paper S004 (``shared/papers/S004_*``), sections on feature selection, LIBSVM and
fuzzy-integral fusion. scikit-learn's ``SVC`` is LIBSVM; the chi-square scores are
scikit-learn's. numpy/scipy/scikit-learn only: no jax.

    selector = Chi2Selector(keep=0.5).fit(x_train, y_train)      # per channel
    svms = [ChannelSVM().fit(selector.transform(x), y) for ...]
    fusion = FuzzyIntegralFusion(kind="choquet").fit(val_probs, y_val)
    y_pred = fusion.predict(test_probs)

S004's hybrid itself (these parts assembled, trained, served and reported) is the system
:mod:`mmer_jax.fitted.s004_hybrid`.
"""

from mmer_jax.classic.chi2 import Chi2Selector
from mmer_jax.classic.fuzzy import (
    FuzzyIntegralFusion,
    choquet,
    lambda_measure,
    measure_of_top_sets,
    sugeno,
)
from mmer_jax.classic.svm import ChannelSVM

__all__ = [
    "ChannelSVM",
    "Chi2Selector",
    "FuzzyIntegralFusion",
    "choquet",
    "lambda_measure",
    "measure_of_top_sets",
    "sugeno",
]
