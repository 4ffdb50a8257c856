"""Metrics against scikit-learn (the oracle, test-only) and hand-worked regression cases."""

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from mmer_jax.train.metrics import (
    ConfusionAccumulator,
    classification_metrics,
    regression_metrics,
)

NAMES = ["ang", "hap", "neu", "sad", "fru"]


def _oracle(t, p, k):
    labels = list(range(k))
    prec, rec, f1, sup = skm.precision_recall_fscore_support(t, p, labels=labels, zero_division=0)
    present = np.unique(t)
    return {
        "accuracy": skm.accuracy_score(t, p),
        "weighted_f1": skm.f1_score(t, p, labels=labels, average="weighted", zero_division=0),
        # sklearn's default label set: classes in y_true or y_pred.
        "macro_f1": skm.f1_score(t, p, average="macro", zero_division=0),
        "uar": skm.recall_score(t, p, labels=present, average="macro", zero_division=0),
        "confusion": skm.confusion_matrix(t, p, labels=labels),
        "prf": (prec, rec, f1, sup),
    }


def _check(got, want):
    for key in ("accuracy", "weighted_f1", "macro_f1", "uar"):
        assert got[key] == pytest.approx(want[key], abs=1e-12), key
        assert isinstance(got[key], float)
    np.testing.assert_array_equal(np.array(got["confusion"]), want["confusion"])
    prec, rec, f1, sup = want["prf"]
    for i, name in enumerate(NAMES):
        pc = got["per_class"][name]
        assert pc["precision"] == pytest.approx(prec[i])
        assert pc["recall"] == pytest.approx(rec[i])
        assert pc["f1"] == pytest.approx(f1[i])
        assert pc["support"] == sup[i] and isinstance(pc["support"], int)


@pytest.mark.parametrize("seed", range(6))
def test_classification_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    k = len(NAMES)
    n = int(rng.integers(5, 200))
    t = rng.integers(0, k, n)
    # Skew predictions towards the truth so scores are not all near chance.
    p = np.where(rng.random(n) < 0.6, t, rng.integers(0, k, n))
    if seed % 2:
        t[t == 2] = 3  # class "neu" absent from the truth; may still be predicted
    if seed == 4:
        p[p == 4] = 0  # class "fru" never predicted: zero-division precision
    got = classification_metrics(t, p, NAMES)
    assert got["n"] == n
    _check(got, _oracle(t, p, k))
    json.dumps(got)  # plain python types only


def test_weights_exclude_padding_and_logits_are_argmaxed():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 5, (4, 32))
    logits = rng.normal(size=(4, 32, 5))
    mask = (rng.random((4, 32)) < 0.7).astype(np.float32)
    t_padded = np.where(mask > 0, t, -1)  # padded labels may be garbage; they must be ignored
    got = classification_metrics(t_padded, logits, NAMES, weight=mask)
    keep = mask > 0
    _check(got, _oracle(t[keep], logits.argmax(-1)[keep], 5))
    assert got["n"] == int(keep.sum())


def test_absent_class_never_predicted_is_left_out_of_macro_and_uar():
    t = np.array([0, 0, 1, 1])
    p = np.array([0, 1, 1, 1])
    got = classification_metrics(t, p, ["a", "b", "c"])
    assert got["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert got["uar"] == pytest.approx((0.5 + 1.0) / 2)
    assert got["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)


def test_empty_and_bad_inputs():
    got = classification_metrics(np.array([1]), np.array([1]), ["a", "b"], weight=np.array([0]))
    assert got["n"] == 0 and got["accuracy"] == 0.0 and got["uar"] == 0.0
    with pytest.raises(ValueError, match="outside"):
        classification_metrics(np.array([0, 3]), np.array([0, 1]), ["a", "b"])
    with pytest.raises(ValueError, match="must match"):
        classification_metrics(np.array([0, 1]), np.array([0]), ["a", "b"])


def test_accumulator_equals_one_shot():
    rng = np.random.default_rng(1)
    t = rng.integers(0, 5, 300)
    p = rng.integers(0, 5, 300)
    w = (rng.random(300) < 0.9).astype(np.int32)
    acc = ConfusionAccumulator(5)
    for s in range(0, 300, 64):
        acc.update(t[s : s + 64], p[s : s + 64], w[s : s + 64])
    assert acc.result(NAMES) == classification_metrics(t, p, NAMES, weight=w)
    acc.reset()
    assert acc.result(NAMES)["n"] == 0


def test_regression_hand_worked():
    t = np.array([-2.0, -0.4, 0.0, 0.6, 1.4, 3.0])
    p = np.array([-1.6, 0.2, -0.2, 0.0, 1.6, 3.4])
    got = regression_metrics(t, p)
    assert got["n"] == 6
    assert got["mae"] == pytest.approx((0.4 + 0.6 + 0.2 + 0.6 + 0.2 + 0.4) / 6)
    assert got["corr"] == pytest.approx(np.corrcoef(t, p)[0, 1])
    # has0: truth >=0 -> [F, F, T, T, T, T]; preds >=0 -> [F, T, F, T, T, T]: 4/6 right.
    assert got["acc2_has0"] == pytest.approx(4 / 6)
    # Both classes: neg support 2 (P=1/2, R=1/2, F1=1/2), pos support 4 (P=3/4, R=3/4, F1=3/4).
    assert got["f1_has0"] == pytest.approx((2 * 0.5 + 4 * 0.75) / 6)
    # non0 drops the true 0; truth >0 -> [F, F, T, T, T]; preds >0 -> [F, T, F, T, T]: 3/5.
    # pred 0.0 counts as not positive, as in MMSA.
    assert got["acc2_non0"] == pytest.approx(3 / 5)
    assert got["f1_non0"] == pytest.approx((2 * 0.5 + 3 * (2 / 3)) / 5)
    # acc7 rounds the clipped values: t -> [-2, -0, 0, 1, 1, 3]; p -> [-2, 0, -0, 0, 2, 3].
    assert got["acc7"] == pytest.approx(4 / 6)
    # acc5 clips to [-2, 2]: t -> [-2, -0, 0, 1, 1, 2]; p -> [-2, 0, -0, 0, 2, 2].
    assert got["acc5"] == pytest.approx(4 / 6)


def test_regression_matches_sklearn_binary_views_and_edge_cases():
    rng = np.random.default_rng(3)
    t = np.round(rng.uniform(-3, 3, 200) * 3) / 3
    t[:10] = 0.0
    p = np.clip(t + rng.normal(0, 0.8, 200), -3.5, 3.5)
    got = regression_metrics(t, p)
    nz = t != 0
    assert got["acc2_has0"] == pytest.approx(skm.accuracy_score(t >= 0, p >= 0))
    assert got["f1_has0"] == pytest.approx(skm.f1_score(t >= 0, p >= 0, average="weighted"))
    assert got["acc2_non0"] == pytest.approx(skm.accuracy_score(t[nz] > 0, p[nz] > 0))
    assert got["f1_non0"] == pytest.approx(skm.f1_score(t[nz] > 0, p[nz] > 0, average="weighted"))
    assert got["acc7"] == pytest.approx(
        np.mean(np.round(np.clip(t, -3, 3)) == np.round(np.clip(p, -3, 3)))
    )

    masked = regression_metrics(np.r_[t, 9.0], np.r_[p, -9.0], weight=np.r_[np.ones(200), 0])
    assert masked == got
    const = regression_metrics(np.array([1.0, 2.0]), np.array([0.5, 0.5]))
    assert const["corr"] == 0.0  # constant prediction: no NaN
    empty = regression_metrics(np.zeros(0), np.zeros(0))
    assert empty["n"] == 0 and empty["mae"] == 0.0
    only_zero = regression_metrics(np.zeros(3), np.ones(3))
    assert only_zero["acc2_non0"] == 0.0 and only_zero["acc2_has0"] == 1.0
