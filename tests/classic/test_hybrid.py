"""S004's classical half end to end (mmer_jax.fitted.s004_hybrid.classifier) on a small synthetic
2-channel problem: fusion, selection on validation only, the chi-square switch, id alignment."""

import numpy as np
import pytest

from mmer_jax.fitted.s004_hybrid import classifier as hybrid
from mmer_jax.fitted.s004_hybrid.classifier import S004Hybrid, SplitFeatures, align, join_channels

SIZES = {"train": 150, "validation": 60, "test": 45}  # distinct, so a spy can tell them apart
GRID = dict(c_grid=(1.0, 10.0), gamma_scales=(1.0,))


def _split(n: int, seed: int, d: int = 7) -> SplitFeatures:
    """3 classes. Channel "a" tells class 0 from {1, 2}; channel "b" tells 1 from 2, its class 0
    drawn like 1 or 2 at random: each channel alone is capped, together they separate all three."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    a = rng.normal(size=(n, d))
    a[:, 0] += 3.0 * (y == 0)
    b = rng.normal(size=(n, d))
    side = np.where(y == 1, 1.0, -1.0)
    side[y == 0] = rng.choice([-1.0, 1.0], size=int((y == 0).sum()))  # 0 looks like 1 or 2
    b[:, 0] += 3.0 * side
    ids = np.array([f"s{seed}_{i:03d}" for i in range(n)])
    return SplitFeatures(channels={"a": a, "b": b}, labels=y, ids=ids)


@pytest.fixture(scope="module")
def splits():
    return {name: _split(n, seed) for seed, (name, n) in enumerate(SIZES.items())}


def test_fusion_beats_the_weaker_channel(splits):
    model = S004Hybrid(chi2_keep=None, **GRID).fit(splits["train"], splits["validation"])
    out = model.evaluate(splits["test"])
    assert set(out) == {"a", "b", "concat", "sugeno", "choquet"}
    weaker = min(out["a"]["accuracy"], out["b"]["accuracy"])
    assert weaker < 0.75  # each channel alone confuses a pair of classes
    for row in ("sugeno", "choquet", "concat"):
        assert out[row]["accuracy"] > weaker + 0.1, (row, out)
    assert out["choquet"]["accuracy"] > max(out["a"]["accuracy"], out["b"]["accuracy"])


def test_chi2_switch_keeps_ceil_half_the_features(splits):
    on = S004Hybrid(chi2_keep=0.5, **GRID).fit(splits["train"], splits["validation"])
    off = S004Hybrid(chi2_keep=None, **GRID).fit(splits["train"], splits["validation"])
    assert on.dims_ == {"a": 4, "b": 4, "concat": 8}  # ceil(7 / 2) per channel
    assert off.dims_ == {"a": 7, "b": 7, "concat": 14}
    # The informative column of each channel survives the selection.
    assert 0 in on.features_["a"].selector_.selected_
    assert 0 in on.features_["b"].selector_.selected_
    assert hybrid.kept_features(5, 0.5) == 3 and hybrid.kept_features(5, None) == 5


def test_selection_never_sees_the_test_split(splits, monkeypatch):
    seen_rows = []
    real_select = hybrid.select_svc

    def spy_select(x_train, y_train, x_val, y_val, *args):
        seen_rows.append((len(x_train), len(x_val)))
        return real_select(x_train, y_train, x_val, y_val, *args)

    fit_rows = []
    real_fit = hybrid.ChannelFeatures.fit

    def spy_fit(self, x, y):
        fit_rows.append(len(x))
        return real_fit(self, x, y)

    predicted = []
    real_proba = hybrid.ChannelSVM.predict_proba

    def spy_proba(self, x, num_classes):
        predicted.append(len(x))
        return real_proba(self, x, num_classes)

    monkeypatch.setattr(hybrid, "select_svc", spy_select)
    monkeypatch.setattr(hybrid.ChannelFeatures, "fit", spy_fit)
    monkeypatch.setattr(hybrid.ChannelSVM, "predict_proba", spy_proba)
    model = S004Hybrid(chi2_keep=0.5, **GRID).fit(splits["train"], splits["validation"])
    assert seen_rows == [(150, 60)] * 3  # a, b, concat: train + validation only
    assert fit_rows == [150, 150]
    assert SIZES["test"] not in predicted
    out = model.evaluate(splits["test"])
    assert predicted.count(SIZES["test"]) == 3  # the test split is scored once per classifier
    monkeypatch.undo()

    # Test labels cannot change anything chosen: shuffled labels, same settings and densities.
    test = splits["test"]
    shuffled = SplitFeatures(test.channels, np.random.default_rng(0).permutation(test.labels),
                             test.ids)
    again = S004Hybrid(chi2_keep=0.5, **GRID).fit(splits["train"], splits["validation"])
    again.evaluate(shuffled)
    assert again.settings_ == model.settings_
    np.testing.assert_array_equal(again.fusion_["choquet"].densities_,
                                  model.fusion_["choquet"].densities_)
    assert set(out) == {"a", "b", "concat", "sugeno", "choquet"}


def test_join_channels_aligns_by_id_and_rejects_mismatches():
    rng = np.random.default_rng(0)
    ids = np.array(["u0", "u1", "u2", "u3"])
    y = np.array([0, 1, 2, 1])
    xa, xb = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    perm = np.array([2, 0, 3, 1])
    split = join_channels({"a": (ids, xa, y), "b": (ids[perm], xb[perm], y[perm])})
    np.testing.assert_array_equal(split.channels["b"], xb)
    np.testing.assert_array_equal(split.labels, y)
    assert list(split.ids) == list(ids)

    other = np.array(["u0", "u1", "u2", "u9"])
    with pytest.raises(ValueError, match="'b'.*not those of 'a'") as err:
        join_channels({"a": (ids, xa, y), "b": (other, xb, y)})
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="labels disagree"):
        join_channels({"a": (ids, xa, y), "b": (ids, xb, (y + 1) % 3)})
    with pytest.raises(ValueError, match="not those of"):
        align({"a": ids, "b": np.array(["u0", "u0", "u1", "u2"])})  # a repeated id


def test_bad_inputs_are_one_line_errors(splits):
    train = splits["train"]
    short = SplitFeatures({"a": train.channels["a"][:10], "b": train.channels["b"]},
                          train.labels, train.ids)
    with pytest.raises(ValueError, match="channel 'a' has shape"):
        S004Hybrid(**GRID).fit(short, splits["validation"])
    model = S004Hybrid(**GRID).fit(train, splits["validation"])
    only_a = SplitFeatures({"a": splits["test"].channels["a"]}, splits["test"].labels,
                           splits["test"].ids)
    with pytest.raises(ValueError, match="fitted on"):
        model.evaluate(only_a)
    with pytest.raises(ValueError, match="chi2_keep"):
        S004Hybrid(chi2_keep=0.0)
