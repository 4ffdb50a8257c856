"""S004's classical half: chi-square selection, per-channel LIBSVM, fuzzy-integral fusion."""

import numpy as np
import pytest
from sklearn.feature_selection import chi2

from mmer_jax.classic import (
    ChannelSVM,
    Chi2Selector,
    FuzzyIntegralFusion,
    choquet,
    lambda_measure,
    measure_of_top_sets,
    sugeno,
)

G = np.array([0.3, 0.4, 0.2])  # densities of three classifiers (sum 0.9 < 1: lambda > 0)
H = np.array([0.6, 0.9, 0.3])  # their scores for one class


def test_lambda_is_the_nonzero_root_of_the_measure_equation():
    # (1 + .3l)(1 + .4l)(1 + .2l) = 1 + l  <=>  .024 l^2 + .26 l - .1 = 0 (l != 0), by hand.
    by_hand = (-0.26 + np.sqrt(0.26**2 + 4 * 0.024 * 0.1)) / (2 * 0.024)
    assert lambda_measure(G) == pytest.approx(by_hand, rel=1e-9)
    # A direct polynomial solve for densities summing above 1 (root in (-1, 0)).
    g = np.array([0.5, 0.6, 0.4])
    poly = np.poly1d([1.0])
    for gi in g:
        poly *= np.poly1d([gi, 1.0])
    roots = (poly - np.poly1d([1.0, 1.0])).r
    want = [r.real for r in roots if abs(r.imag) < 1e-12 and -1 < r.real < -1e-9]
    assert lambda_measure(g) == pytest.approx(want[0], rel=1e-9)
    assert lambda_measure(np.array([0.5, 0.5])) == 0.0  # additive measure
    with pytest.raises(ValueError, match="densities"):
        lambda_measure(np.array([0.5, 1.0]))


def test_sugeno_and_choquet_on_a_hand_computed_three_classifier_example():
    lam = lambda_measure(G)
    # Sorted by score: 0.9 (g .4), 0.6 (g .3), 0.3 (g .2).
    g_top = measure_of_top_sets(np.array([0.4, 0.3, 0.2]), lam)
    assert g_top[0] == pytest.approx(0.4)
    assert g_top[1] == pytest.approx(0.7 + lam * 0.12)
    assert g_top[2] == pytest.approx(1.0)  # the whole set has measure 1
    assert sugeno(H, G) == pytest.approx(0.6)  # max(min(.9,.4), min(.6,.745), min(.3,1))
    assert choquet(H, G) == pytest.approx(0.3 * 0.4 + 0.3 * (0.7 + lam * 0.12) + 0.3)


def test_fusion_learns_densities_on_validation_and_follows_the_better_classifier():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    good = np.full((60, 3), 0.1)
    good[np.arange(60), y] = 0.8  # always right
    bad = rng.dirichlet(np.ones(3), 60)  # chance
    for kind in ("sugeno", "choquet"):
        fusion = FuzzyIntegralFusion(kind).fit([good, bad], y)
        assert fusion.densities_[0] > fusion.densities_[1]
        assert (fusion.predict([good, bad]) == y).mean() > 0.9
    with pytest.raises(ValueError, match="one shape"):
        fusion.predict([good, bad[:10]])
    with pytest.raises(ValueError, match="kind='max'"):
        FuzzyIntegralFusion("max")


def test_chi2_selector_keeps_the_informative_half_scored_on_train_only():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    informative = y[:, None] * 3.0 + rng.normal(size=(200, 3)) * 0.3 - 5.0  # signed features
    noise = rng.normal(size=(200, 3))
    x = np.concatenate([noise[:, :1], informative, noise[:, 1:]], axis=1)  # informative: 1, 2, 3
    sel = Chi2Selector(keep=0.5).fit(x, y)
    assert list(sel.selected_) == [1, 2, 3]
    # The scores are scikit-learn's chi-square on the train-scaled features.
    np.testing.assert_allclose(sel.scores_, chi2(sel.scaler_.transform(x), y)[0])
    out = sel.transform(x[:5] * 100)  # outside the train range: clipped into [0, 1]
    assert out.shape == (5, 3) and out.min() >= 0 and out.max() <= 1
    with pytest.raises(ValueError, match="keep=0"):
        Chi2Selector(keep=0)


def test_channel_svm_probabilities_cover_every_class():
    rng = np.random.default_rng(2)
    y = np.repeat([0, 2], 30)  # class 1 never seen in training
    x = rng.normal(size=(60, 4)) + y[:, None] * 2.0
    svm = ChannelSVM(seed=0).fit(x, y)
    p = svm.predict_proba(x, num_classes=3)
    assert p.shape == (60, 3) and np.allclose(p.sum(1), 1.0) and np.all(p[:, 1] == 0)
    assert (p.argmax(1) == y).mean() > 0.9
