"""S004's context LSTM stage (mmer_jax.fitted.s004_hybrid.context_lstm) on a tiny grouped set whose
labels need the previous utterance: context must help, padding and row order must change nothing,
and the order within a group must be the one the LSTM reads."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from mmer_jax.fitted.s004_hybrid.context_lstm import (
    ContextConfig,
    GroupedSplit,
    contextual_features,
    sequences,
)
from mmer_jax.train.export_features import record_order

K, LENGTH, D = 3, 6, 4
CFG = ContextConfig(hidden=16, epochs=20, batch_size=16, learning_rate=1e-2, dropout=0.1)


def grouped(n_groups: int, seed: int, prefix: str) -> tuple[GroupedSplit, np.ndarray]:
    """Groups of LENGTH utterances; utterance t shows class z_t, its label is
    (z_t + z_{t-1}) mod K, so its own features say nothing of its label beyond t = 0."""
    rng = np.random.default_rng(seed)
    z = rng.integers(0, K, (n_groups, LENGTH))
    prev = np.concatenate([np.zeros((n_groups, 1), int), z[:, :-1]], axis=1)
    y = ((z + prev) % K).ravel()
    x = 2.0 * np.eye(D)[z.ravel()] + rng.normal(0, 0.3, (n_groups * LENGTH, D))
    groups = np.repeat([f"{prefix}{g}" for g in range(n_groups)], LENGTH)
    order = np.tile(np.arange(LENGTH), n_groups)
    return GroupedSplit(x.astype(np.float32), y, groups, order), y


@pytest.fixture(scope="module")
def data():
    """Train/validation/test; the test labels handed to the stage are -1 (it must not read
    them), the true ones are returned apart."""
    train, _ = grouped(60, 0, "tr")
    val, _ = grouped(20, 1, "va")
    test, y_test = grouped(20, 2, "te")
    hidden = GroupedSplit(test.x, np.full_like(y_test, -1), test.groups, test.order)
    return {"train": train, "validation": val, "test": hidden}, y_test


@pytest.fixture(scope="module")
def base(data):
    splits, _ = data
    return contextual_features(splits, CFG, seed=0)


def _probe(train_x, train_y, test_x, test_y) -> float:
    clf = LogisticRegression(max_iter=2000).fit(train_x, train_y)
    return float((clf.predict(test_x) == test_y).mean())


def test_sequences_sort_groups_by_id_and_rows_by_order():
    index, mask = sequences(np.array(["b", "a", "b", "a", "c"]), np.array([7, 5, 0, 2, 0]))
    np.testing.assert_array_equal(mask, [[True, True], [True, True], [True, False]])
    np.testing.assert_array_equal(index[mask], [3, 1, 2, 0, 4])  # a: 2 < 5; b: 0 < 7; c
    with pytest.raises(ValueError, match="group 'a': two rows with order 2"):
        sequences(np.array(["a", "a"]), np.array([2, 2]))


def test_exported_order_is_the_turn_else_the_position():
    assert record_order({"id": "u", "turn": 4}, 9) == 4
    assert record_order({"id": "u"}, 9) == 9


def test_context_features_beat_the_raw_ones(data, base):
    splits, y_test = data
    feats, info = base
    assert feats["test"].shape == (len(y_test), CFG.hidden) and feats["test"].dtype == np.float32
    raw = _probe(splits["train"].x, splits["train"].labels, splits["test"].x, y_test)
    ctx = _probe(feats["train"], splits["train"].labels, feats["test"], y_test)
    assert raw < 0.5 < 0.85 < ctx, (raw, ctx)
    assert max(info["val_weighted_f1"]) > 0.85 and info["max_group"] == LENGTH
    assert info["val_weighted_f1"][info["best_epoch"] - 1] == max(info["val_weighted_f1"])


def test_rows_come_back_in_input_order_whatever_the_row_and_group_order(data, base):
    splits, _ = data
    rng = np.random.default_rng(3)
    perms = {s: rng.permutation(len(sp.x)) for s, sp in splits.items()}
    shuffled = {s: GroupedSplit(sp.x[perms[s]], sp.labels[perms[s]], sp.groups[perms[s]],
                                sp.order[perms[s]]) for s, sp in splits.items()}
    feats, _ = contextual_features(shuffled, CFG, seed=0)
    for s in splits:
        np.testing.assert_allclose(feats[s], base[0][s][perms[s]], atol=1e-4)


def test_padded_steps_change_nothing(data, base):
    feats, info = contextual_features(data[0], CFG, seed=0, max_len=LENGTH + 3)
    assert info["best_epoch"] == base[1]["best_epoch"]
    for s in feats:
        np.testing.assert_allclose(feats[s], base[0][s], atol=1e-4)
    with pytest.raises(ValueError, match="max_len=2 is shorter than the longest group"):
        contextual_features(data[0], CFG, max_len=2)


def test_the_lstm_reads_the_given_order(data, base):
    """Reversed order values: the previous utterance now comes after, so a forward LSTM can no
    longer see it and the context gain vanishes."""
    splits, y_test = data
    reversed_ = {s: GroupedSplit(sp.x, sp.labels, sp.groups, LENGTH - 1 - sp.order)
                 for s, sp in splits.items()}
    feats, _ = contextual_features(reversed_, CFG, seed=0)
    assert _probe(feats["train"], splits["train"].labels, feats["test"], y_test) < 0.6


def test_same_seed_same_output_and_needs_validation(data):
    splits, _ = data
    short = ContextConfig(hidden=16, epochs=2, batch_size=16)
    a, _ = contextual_features(splits, short, seed=5)
    b, _ = contextual_features(splits, short, seed=5)
    np.testing.assert_array_equal(a["test"], b["test"])
    with pytest.raises(ValueError, match="must include 'train' and 'validation'"):
        contextual_features({"train": splits["train"]}, short)
