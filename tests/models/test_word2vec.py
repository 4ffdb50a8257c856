"""The JAX skip-gram (S000 §2.1's Word2Vec step): it learns, co-occurrence shows in the cosine,
and it is deterministic given the seed."""

import numpy as np
import pytest

from mmer_jax.fitted.survey_text.word2vec import (
    SkipGramConfig,
    build_vocab,
    skipgram_pairs,
    train_skipgram,
)

TOPIC_A = [f"a{i}" for i in range(6)]
TOPIC_B = [f"b{i}" for i in range(6)]
CFG = SkipGramConfig(dim=16, window=3, negatives=4, epochs=4, batch_size=128, lr=2e-2,
                     min_count=1, subsample=0.0)


def _corpus(n=120, seed=0):
    """Sentences drawn from one topic each: a-words co-occur, b-words co-occur, never across."""
    rng = np.random.default_rng(seed)
    return [list(rng.choice(TOPIC_A if k % 2 else TOPIC_B, 6)) for k in range(n)]


@pytest.fixture(scope="module")
def trained():
    return train_skipgram(_corpus(), CFG, seed=0)


def test_loss_decreases_and_co_occurring_words_are_closer(trained):
    vocab, vectors, losses = trained
    assert vectors.shape == (12, 16) and vectors.dtype == np.float32
    assert losses[-1] < 0.8 * losses[0]
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    idx = {w: i for i, w in enumerate(vocab)}
    a, b = [idx[w] for w in TOPIC_A], [idx[w] for w in TOPIC_B]
    cos = unit @ unit.T
    within = np.mean([cos[i, j] for grp in (a, b) for i in grp for j in grp if i != j])
    across = cos[np.ix_(a, b)].mean()
    assert within > across + 0.3, (within, across)


def test_same_seed_same_vectors_other_seed_other_vectors(trained):
    again = train_skipgram(_corpus(), CFG, seed=0)
    other = train_skipgram(_corpus(), CFG, seed=1)
    np.testing.assert_array_equal(trained[1], again[1])
    assert not np.allclose(trained[1], other[1])


def test_pairs_stay_inside_the_window_and_inside_the_sentence():
    ids = [np.arange(5, dtype=np.int32), np.arange(5, 8, dtype=np.int32)]
    counts = np.ones(8, np.int64)
    pairs = skipgram_pairs(ids, counts, window=2, subsample=0.0, rng=np.random.default_rng(0))
    assert pairs.dtype == np.int32 and pairs.shape[1] == 2
    assert np.all(np.abs(pairs[:, 0] - pairs[:, 1]) <= 2)
    assert np.all((pairs[:, 0] < 5) == (pairs[:, 1] < 5))  # no pair across sentences
    assert np.all(pairs[:, 0] != pairs[:, 1])


def test_vocab_order_min_count_and_bad_input():
    vocab, counts = build_vocab([["b", "a", "a"], ["c", "b"]], min_count=2)
    assert vocab == ["a", "b"] and counts.tolist() == [2, 2]
    with pytest.raises(ValueError, match="min_count"):
        train_skipgram([["x"]], CFG)
    with pytest.raises(ValueError, match="dim=0"):
        SkipGramConfig(dim=0)
