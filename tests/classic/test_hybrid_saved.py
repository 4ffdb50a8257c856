"""The row an s004_hybrid run serves, saved as arrays (mmer_jax.fitted.s004_hybrid.saved): the
numpy RBF SVC + Platt scaling gives scikit-learn's probabilities, every row's saved scores equal
the fitted hybrid's, and the files load without pickle."""

import numpy as np
import pytest

from mmer_jax.classic.svm import ChannelSVM
from mmer_jax.fitted.s004_hybrid.classifier import S004Hybrid
from mmer_jax.fitted.s004_hybrid.saved import NPZ, SavedHybrid, _svm, svc_probabilities
from tests.classic.test_hybrid import GRID, SIZES, _split


@pytest.mark.parametrize("k, absent", [(2, 0), (3, 0), (5, 2)])
def test_numpy_svc_gives_sklearns_calibrated_probabilities(k, absent):
    rng = np.random.default_rng(k)
    x = rng.normal(size=(90, 5))
    y = rng.integers(0, k, 90)
    x[:, 0] += y
    m = ChannelSVM(c=3.0, gamma=0.3, seed=1).fit(x, y)
    xt = rng.normal(size=(30, 5)) * 2.0
    # ``absent`` extra classes never seen in training keep probability 0.
    want = m.predict_proba(xt, k + absent)
    got = svc_probabilities(_svm(m), xt, k + absent)
    np.testing.assert_allclose(got, want, atol=1e-12)


@pytest.fixture(scope="module")
def fitted():
    splits = {name: _split(n, seed) for seed, (name, n) in enumerate(SIZES.items())}
    return S004Hybrid(chi2_keep=0.5, **GRID).fit(splits["train"], splits["validation"]), splits


@pytest.mark.parametrize("row", ["a", "b", "concat", "sugeno", "choquet"])
def test_every_saved_row_scores_as_the_fitted_hybrid(fitted, row, tmp_path):
    model, splits = fitted
    SavedHybrid.from_model(model, row).save(str(tmp_path))
    with np.load(tmp_path / NPZ, allow_pickle=False) as z:  # plain arrays only
        assert all(z[k].dtype != object for k in z.files)
    saved = SavedHybrid.load(str(tmp_path))
    test = splits["test"]
    np.testing.assert_allclose(saved.scores(dict(test.channels)),
                               model.row_scores(test)[row], atol=1e-10)


def test_an_unknown_row_is_refused(fitted):
    with pytest.raises(ValueError, match="row 'across'"):
        SavedHybrid.from_model(fitted[0], "across")
