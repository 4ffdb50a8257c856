"""The regression protocol's metrics (MOSI/MOSEI, MMSA's conventions) against hand-computed values,
the selection direction, the loss, and the config checks that tie ``protocol.task`` to the other
sections."""

import jax.numpy as jnp
import numpy as np
import pytest

from mmer_jax import config as config_lib
from mmer_jax.errors import UsageError
from mmer_jax.train import regression as R

T = np.array([-2.6, -1.2, -0.4, 0.0, 0.0, 0.8, 1.6, 2.4])
P = np.array([-3.4, 0.2, -0.6, 0.4, -0.2, 1.4, 0.5, 2.6])


def test_hand_computed():
    got = R.regression_metrics(T, P)
    assert got["n"] == 8
    # |P - T| = .8 1.4 .2 .4 .2 .6 1.1 .2 -> 4.9 / 8
    assert got["mae"] == pytest.approx(4.9 / 8)
    # Pearson by hand: means -0.175 and 0.1125; sums of products of deviations.
    dt, dp = T - T.mean(), P - P.mean()
    assert got["corr"] == pytest.approx(np.sum(dt * dp) / np.sqrt(np.sum(dt**2) * np.sum(dp**2)))
    # has0: truth >= 0 -> F F F T T T T T; pred >= 0 -> F T F T F T T T: 6/8 right.
    assert got["acc2_has0"] == pytest.approx(6 / 8)
    # neg: support 3, tp 2, predicted 3 -> F1 2/3; non-neg: support 5, tp 4, predicted 5 -> 4/5.
    assert got["f1_has0"] == pytest.approx((3 * 2 / 3 + 5 * 4 / 5) / 8)
    # non0 drops the two true zeros: truth > 0 -> F F F T T T; pred > 0 -> F T F T T T: 5/6.
    assert got["acc2_non0"] == pytest.approx(5 / 6)
    # neg: support 3, tp 2, predicted 2 -> P 1, R 2/3, F1 0.8; pos: support 3, tp 3, predicted 4
    # -> P 3/4, R 1, F1 6/7.
    assert got["f1_non0"] == pytest.approx((3 * 0.8 + 3 * 6 / 7) / 6)
    # acc7: clip to [-3, 3], round half to even.
    #   T -> -3 -1 -0 0 0 1 2 2 ; P (-3.4 -> -3) -> -3 0 -1 0 -0 1 0 3 : hits at 0, 3, 4, 5 = 4/8
    assert got["acc7"] == pytest.approx(4 / 8)
    # acc5: clip to [-2, 2]: T -> -2 -1 -0 0 0 1 2 2 ; P -> -2 0 -1 0 -0 1 0 2: hits 0 3 4 5 7
    assert got["acc5"] == pytest.approx(5 / 8)
    # acc3: clip to [-1, 1]: T -> -1 -1 -0 0 0 1 1 1 ; P -> -1 0 -1 0 -0 1 0 1 (0.5 -> 0):
    #   hits at 0, 3, 4, 5, 7 = 5/8
    assert got["acc3"] == pytest.approx(5 / 8)


def test_padding_empty_constant_and_zero_only():
    masked = R.regression_metrics(np.r_[T, 9.0], np.r_[P, -9.0], weight=np.r_[np.ones(8), 0])
    assert masked == R.regression_metrics(T, P)
    assert R.regression_metrics(np.zeros(0), np.zeros(0)) == {
        **dict.fromkeys(R.REGRESSION_KEYS, 0.0), "n": 0}
    const = R.regression_metrics(np.array([1.0, 2.0]), np.array([0.5, 0.5]))
    assert const["corr"] == 0.0  # MMSA gives NaN here; strict JSON has none
    only_zero = R.regression_metrics(np.zeros(3), np.array([1.0, -1.0, 0.2]))
    assert only_zero["acc2_non0"] == 0.0 and only_zero["acc2_has0"] == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="must match"):
        R.regression_metrics(np.zeros(3), np.zeros(4))


def test_matches_sklearn_binary_views():
    skm = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    t = np.round(rng.uniform(-3, 3, 300) * 3) / 3
    t[:15] = 0.0
    p = rng.normal(t, 1.0)
    got = R.regression_metrics(t, p)
    nz = t != 0
    assert got["f1_has0"] == pytest.approx(skm.f1_score(t >= 0, p >= 0, average="weighted"))
    assert got["f1_non0"] == pytest.approx(skm.f1_score(t[nz] > 0, p[nz] > 0, average="weighted"))
    assert got["acc2_non0"] == pytest.approx(skm.accuracy_score(t[nz] > 0, p[nz] > 0))


def test_selection_direction():
    assert R.improved("mae", 0.9, None) and R.improved("acc2_non0", 0.1, None)
    assert R.improved("mae", 0.7, 0.8) and not R.improved("mae", 0.9, 0.8)
    assert R.improved("corr", 0.6, 0.5) and not R.improved("corr", 0.5, 0.5)  # tie keeps the first
    assert R.improved("weighted_f1", 0.6, 0.5) and not R.improved("weighted_f1", 0.4, 0.5)


def test_loss_and_outputs():
    pred = jnp.array([[0.5], [-1.0], [2.0], [7.0]])
    inputs = {"score": jnp.array([1.0, -2.0, 2.0, 0.0]), "weight": jnp.array([1.0, 1.0, 1.0, 0.0]),
              "label": jnp.zeros(4, jnp.int32)}
    loss, acc = R.train_objective(pred, {}, inputs, "l1")
    assert float(loss) == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert float(acc) == pytest.approx(1.0)  # signs agree on the 3 real rows
    mse, _ = R.train_objective(pred, {}, inputs, "mse")
    assert float(mse) == pytest.approx((0.25 + 1.0) / 3)
    out = R.eval_outputs(pred, inputs, "l1")
    np.testing.assert_allclose(out["pred"], [0.5, -1.0, 2.0, 7.0])
    assert float(out["loss_sum"]) == pytest.approx(1.5)
    with pytest.raises(ValueError, match="1 output"):
        R.predictions(jnp.zeros((4, 3)))
    with pytest.raises(KeyError, match="score"):
        R.train_objective(pred, {}, {"weight": inputs["weight"]}, "l1")


@pytest.mark.parametrize("overrides, message", [
    (["protocol.task=regression"], "'train.select_metric': 'weighted_f1' is not a regression"),
    (["train.select_metric=mae"], "'mae' is not a classification metric"),
    (["protocol.task=regress"], "config key 'protocol.task' must be one of"),
    (["protocol.task=regression", "train.select_metric=mae", "protocol.regression_loss=huber"],
     "config key 'protocol.regression_loss' must be one of 'l1', 'mse'"),
])
def test_config_checks(overrides, message):
    with pytest.raises(UsageError, match=message):
        config_lib.load("experiments/quickstart.py", overrides)


def test_config_accepts_regression():
    cfg = config_lib.load("experiments/quickstart.py", [
        "protocol.task=regression", "train.select_metric=mae", "data.class_scores=[-3, -1, 1, 3]"])
    assert cfg.protocol.task == "regression"


def test_the_epoch_line_names_the_field_s_metrics():
    from mmer_jax.train.regression import summary

    line = summary({"accuracy": 0.5, "weighted_f1": 0.25, "uar": 0.375})
    assert line == "acc 0.500 wF1 0.250 UAR 0.375"
    assert summary({"acc2_non0": 0.75, "mae": 0.5, "corr": 0.125}) == (
        "Acc-2 0.750 MAE 0.500 Corr 0.125")


def test_eval_lines_mark_percent_only_where_it_is_percent():
    from mmer_jax.train.evaluate import summary_line

    cls = {"test": {"accuracy": 0.5, "weighted_f1": 0.25, "uar": 0.375}, "epoch": 3}
    assert summary_line("audio", "test", cls) == (
        "audio: test accuracy 50.0  weighted F1 25.0  UAR 37.5 (%, best epoch 3)")
    fitted = dict(cls, epoch=None)  # survey_text: selected without epochs
    assert summary_line("text", "test", fitted).endswith("(%, no epochs: fitted, not trained)")
    reg = {"test": {"acc2_has0": 0.5, "acc2_non0": 0.75, "f1_has0": 0.5, "f1_non0": 0.75,
                    "acc7": 0.25, "mae": 0.5, "corr": 0.125}, "epoch": 2}
    line = summary_line("fused", "test", reg)
    assert "Acc-7 25.0 (%)  MAE 0.500  Corr 0.125 (best epoch 2)" in line
