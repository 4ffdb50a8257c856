"""The survey's text system (S000 §2.1): TF-IDF-weighted cluster emotion scores, the whole pipeline
on a small labelled corpus, and a selection that never sees the test split."""

import numpy as np
import pytest

from mmer_jax.fitted.survey_text import classifier as st
from mmer_jax.fitted.survey_text.word2vec import SkipGramConfig, train_skipgram

KEYWORDS = {0: ["happy", "great", "love"], 1: ["sad", "cry", "lost"], 2: ["angry", "hate", "mad"]}
FILLER = ["the", "a", "i", "you", "it", "was", "is", "so", "today", "and"]


def _corpus(n, seed, sentinel=None):
    """Utterances of 3 classes: 2 of the class's keywords among 4 filler words (each with a 20 %
    chance of a keyword of another class instead)."""
    rng = np.random.default_rng(seed)
    tokens, labels = [], []
    for i in range(n):
        y = i % 3
        words = list(rng.choice(FILLER, 4))
        for _ in range(2):
            src = y if rng.random() > 0.2 else int(rng.integers(3))
            words.insert(int(rng.integers(len(words) + 1)), str(rng.choice(KEYWORDS[src])))
        if sentinel:
            words.append(sentinel)
        tokens.append(words)
        labels.append(y)
    return tokens, np.asarray(labels)


def _random_embed(sentences):
    vocab = sorted({w for s in sentences for w in s})
    return vocab, np.random.default_rng(0).normal(size=(len(vocab), 8))


SMALL_GRID = st.Grid(clusters=(2, 4), c=(0.1, 1.0), concat_tfidf=(False, True))


def test_emotion_scores_are_the_tfidf_weighted_sum_of_cluster_weights_by_hand():
    tokens = [["good", "day"], ["bad", "day", "day"], ["good", "good"]]
    labels = np.array([0, 1, 0])
    # "good" and "day" share a direction, "bad" is apart: K-means with K=2 separates them so.
    vocab, vectors = ["good", "day", "bad"], np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    tfidf = st.make_tfidf(tokens)
    feats = st.ScoreFeatures(tfidf, vocab, vectors, 2, 2, smoothing=2.0, crossfit_folds=1)
    feats.fit(tokens, labels)
    k = feats.word_cluster
    assert k["good"] == k["day"] != k["bad"]

    # scikit-learn's TF-IDF by hand: idf = ln((1 + n) / (1 + df)) + 1, raw counts, L2 rows.
    n, df = 3, {"bad": 1, "day": 2, "good": 2}
    idf = {w: np.log((1 + n) / (1 + d)) + 1 for w, d in df.items()}
    cols = sorted(df)
    x = np.array([[u.count(w) * idf[w] for w in cols] for u in tokens])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    np.testing.assert_allclose(tfidf.transform(tokens).toarray(), x, rtol=1e-12)
    assert list(tfidf.get_feature_names_out()) == cols

    # Cluster weights: token counts per class, m-estimate toward the prior (2/3, 1/3), m = 2.
    prior = np.array([2, 1]) / 3
    counts = {k["good"]: np.array([4.0, 2.0]), k["bad"]: np.array([0.0, 1.0])}  # good+day / bad
    want_e = {c: (v + 2 * prior) / (v.sum() + 2) for c, v in counts.items()}
    for c, e in want_e.items():
        np.testing.assert_allclose(feats.weights_[c], e, rtol=1e-12)

    want = np.array([sum(x[i, j] * want_e[k[w]] for j, w in enumerate(cols))
                     for i in range(len(tokens))])
    np.testing.assert_allclose(feats.scores(tokens), want, rtol=1e-12)
    np.testing.assert_allclose(feats.train_scores_, want, rtol=1e-12)  # no cross-fitting here
    # A word the training split never had adds nothing.
    np.testing.assert_allclose(feats.scores([["good", "day", "zebra"]]), want[:1], rtol=1e-12)


def test_cross_fitted_training_scores_never_use_their_own_label():
    tokens, labels = _corpus(60, 0)
    vocab, vectors = _random_embed(tokens)
    tfidf = st.make_tfidf(tokens)
    feats = st.ScoreFeatures(tfidf, vocab, vectors, 4, 3, crossfit_folds=5, seed=0)
    flipped = labels.copy()
    flipped[0] = (labels[0] + 1) % 3
    a = feats.fit(tokens, labels).train_scores_[0].copy()
    b = feats.fit(tokens, flipped).train_scores_[0]
    np.testing.assert_array_equal(a, b)  # utterance 0's own label is out of its fold's weights


def test_pipeline_with_the_jax_skipgram_beats_chance():
    train, val, test = _corpus(240, 0), _corpus(60, 1), _corpus(90, 2)
    cfg = SkipGramConfig(dim=16, window=3, epochs=3, batch_size=256, lr=2e-2, min_count=1,
                         subsample=0.0)
    out = st.fit_and_evaluate(train, val, test, lambda s: train_skipgram(s, cfg, 0)[:2], 3,
                              st.Grid(clusters=(3, 6), c=(1.0,), concat_tfidf=(False,)), seed=0)
    accuracy = np.mean(out["test_pred"] == test[1])
    assert accuracy > 0.6, accuracy  # chance is 1/3
    assert out["test_pred"].shape == (90,)
    assert out["vocab_size"] == 19  # 9 keywords + 10 filler words


def test_selection_never_sees_the_test_split(monkeypatch):
    train, val = _corpus(90, 0), _corpus(45, 1)
    test = _corpus(45, 2, sentinel="testonly")  # a word only the test utterances have
    seen = []

    real_select = st.select_setting

    def spy(*args, **kwargs):
        seen.append((args, kwargs))
        return real_select(*args, **kwargs)

    predicted_on_test = []
    real_predict = st.SurveyTextClassifier.predict

    def counting_predict(self, tokens):
        predicted_on_test.append(any("testonly" in u for u in tokens))
        return real_predict(self, tokens)

    monkeypatch.setattr(st, "select_setting", spy)
    monkeypatch.setattr(st.SurveyTextClassifier, "predict", counting_predict)
    out = st.fit_and_evaluate(train, val, test, _random_embed, 3, SMALL_GRID, seed=0)

    (args, kwargs), = seen
    flat = repr(args) + repr(kwargs)
    assert "testonly" not in flat  # neither test texts nor anything derived from them
    assert predicted_on_test.count(True) == 1  # the test split is predicted once, at the end
    best = max(out["selection"], key=lambda r: r["validation"])
    assert out["selection"][0]["validation"] <= best["validation"]
    assert st.Setting(**best["setting"]) == out["setting"]
    # Two stages: 2 clusters x 2 C on scores only, then 2 C with TF-IDF at the chosen clusters.
    stage1, stage2 = out["selection"][:4], out["selection"][4:]
    assert len(stage2) == 2 and all(r["setting"]["concat_tfidf"] for r in stage2)
    chosen = max(stage1, key=lambda r: r["validation"])["setting"]["clusters"]
    assert {r["setting"]["clusters"] for r in stage2} == {chosen}

    # Test labels cannot change the choice: shuffled test labels, same setting and predictions.
    monkeypatch.undo()
    shuffled = (test[0], np.random.default_rng(0).permutation(test[1]))
    again = st.fit_and_evaluate(train, val, shuffled, _random_embed, 3, SMALL_GRID, seed=0)
    assert again["setting"] == out["setting"]
    np.testing.assert_array_equal(again["test_pred"], out["test_pred"])


def test_bad_input_is_a_one_line_error():
    with pytest.raises(ValueError, match="test: 2 utterances but 1 labels"):
        st.fit_and_evaluate(([["a"]], [0]), ([["a"]], [0]), ([["a"], ["b"]], [0]),
                            _random_embed, 2)
    with pytest.raises(ValueError, match="clusters must be >= 1"):
        st.Grid(clusters=(0,))
    with pytest.raises(ValueError, match="vectors must be"):
        st.cluster_words(np.zeros(3), 2, 0)
