"""The survey's text emotion system: word vectors -> K-means -> cluster emotion weights ->
TF-IDF-weighted emotion scores -> a classifier.

Source: seed paper S000 (``shared/papers/S000_*``), §2.1 (the system it credits to Goyal et al.):
transcripts become Word2Vec word vectors, the vectors are grouped by K-means, each cluster is given
an emotion weight, and every sentence is described by a weighted emotion score and a TF-IDF score
whose dot product decides the emotion. The survey gives no formula, so this is our reading:

1. word vectors ``v_w`` for the training split's words (any embedding; the experiment uses the
   JAX skip-gram of :mod:`.word2vec`, passed in as ``embed``);
2. K-means over the vectors: cluster ``k(w)`` of every word (scikit-learn ``KMeans``);
3. cluster emotion weights ``E [K, C]``: of the training tokens falling in cluster k, the share in
   utterances of class c, smoothed toward the class prior (m-estimate,
   ``(n_kc + m p_c) / (n_k + m)``);
4. per utterance u the emotion score vector ``s_u = Σ_w tfidf(u, w) E[k(w)]`` [C]: the dot product
   of its TF-IDF vector (scikit-learn ``TfidfVectorizer``, fitted on the training split) with the
   word-by-emotion matrix ``E[k(w)]``; words without a vector add nothing;
5. a multinomial logistic regression (scikit-learn) on the standardised ``s_u``, optionally
   concatenated with the TF-IDF vector itself.

Two guards the survey does not mention: the training utterances' scores come from weights
computed on the other training folds (cross-fitting), so the classifier does not learn to trust
weights that have seen its own labels; and the number of clusters, the inverse regularisation
``C`` and whether the TF-IDF vector is concatenated are chosen on the validation split only
(:func:`select_setting`); :func:`fit_and_evaluate` scores the test split once, at that setting.
numpy / scipy / scikit-learn only: no jax.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.cluster import KMeans
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import KFold
from sklearn.preprocessing import StandardScaler

Tokens = Sequence[Sequence[str]]  # utterances as lists of words
# (training sentences) -> (vocabulary [V], vectors [V, D]); e.g. the JAX skip-gram.
Embed = Callable[[Tokens], tuple[Sequence[str], np.ndarray]]
# (true labels [N], predicted labels [N]) -> a score, higher is better.
Metric = Callable[[np.ndarray, np.ndarray], float]


@dataclasses.dataclass(frozen=True)
class Setting:
    """One point of the hyper-parameter grid.

    Attributes:
      clusters: K of K-means (capped at the number of words with a vector).
      c: inverse L2 regularisation of the logistic regression.
      concat_tfidf: whether the TF-IDF vector is concatenated to the emotion scores.
    """

    clusters: int
    c: float
    concat_tfidf: bool

    def describe(self) -> str:
        """E.g. "clusters=50, C=1, scores + TF-IDF"."""
        return (f"clusters={self.clusters}, C={self.c:g}, "
                f"{'scores + TF-IDF' if self.concat_tfidf else 'scores only'}")


def weighted_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Support-weighted F1 of integer labels [N] (the default selection metric)."""
    return float(f1_score(y_true, y_pred, average="weighted", zero_division=0))


def _words(tokens):
    # The utterances arrive tokenised; TfidfVectorizer must not split them again.
    return tokens


def make_tfidf(train_tokens: Tokens) -> TfidfVectorizer:
    """scikit-learn's TF-IDF (raw counts, smoothed idf ``ln((1 + n) / (1 + df)) + 1``, rows
    L2-normalised) with the training split's vocabulary, over already tokenised utterances."""
    return TfidfVectorizer(analyzer=_words).fit(list(train_tokens))


def cluster_words(vectors: np.ndarray, clusters: int, seed: int) -> np.ndarray:
    """K-means cluster [V] int of each word vector [V, D]; K is capped at V.

    Raises:
      ValueError: ``vectors`` is not [V, D] with V >= 1, or ``clusters`` < 1.
    """
    vectors = np.asarray(vectors, np.float64)
    if vectors.ndim != 2 or len(vectors) < 1 or clusters < 1:
        raise ValueError(f"vectors must be [V, D] with V >= 1 and clusters >= 1; got "
                         f"{vectors.shape} and {clusters}")
    # Unit length first: word2vec similarity is the cosine, and K-means is Euclidean.
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    k = min(clusters, len(unit))
    return KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(unit).astype(np.int64)


def cluster_emotion_weights(token_clusters: Sequence[np.ndarray], labels: np.ndarray,
                            num_clusters: int, num_classes: int, smoothing: float) -> np.ndarray:
    """E [K, C] float64: per cluster, the class distribution of its training tokens.

    Args:
      token_clusters: per utterance, the clusters [n] of its words that have one.
      labels: [N] int class of each utterance.
      num_clusters, num_classes: K and C.
      smoothing: m of the m-estimate toward the class prior (0: raw shares; an empty cluster
        then gets the prior).

    Raises:
      ValueError: ``token_clusters`` and ``labels`` differ in length.
    """
    if len(token_clusters) != len(labels):
        raise ValueError(f"{len(token_clusters)} utterances but {len(labels)} labels")
    counts = np.zeros((num_clusters, num_classes))
    for ks, y in zip(token_clusters, labels, strict=True):
        np.add.at(counts[:, y], ks, 1.0)
    prior = np.bincount(labels, minlength=num_classes) / max(len(labels), 1)
    total = counts.sum(1, keepdims=True)
    m = smoothing if smoothing > 0 else 0.0
    denom = total + m
    return np.where(denom > 0, (counts + m * prior) / np.maximum(denom, 1e-12), prior)


class ScoreFeatures:
    """Steps 2-4 of the module docstring for a fixed K: word clusters, cluster emotion weights
    from the training labels, and the per-utterance emotion scores.

    Args:
      tfidf: the fitted vectorizer (:func:`make_tfidf`).
      vocab, vectors: words with a vector and their vectors [V, D].
      clusters: K.
      num_classes: C.
      smoothing: m of :func:`cluster_emotion_weights`.
      crossfit_folds: training scores from weights of the other folds (1: no cross-fitting).
      seed: K-means initialisation and the cross-fitting folds.
    """

    def __init__(self, tfidf: TfidfVectorizer, vocab: Sequence[str], vectors: np.ndarray,
                 clusters: int, num_classes: int, smoothing: float = 10.0,
                 crossfit_folds: int = 5, seed: int = 0):
        self.tfidf, self.num_classes = tfidf, num_classes
        self.smoothing, self.crossfit_folds, self.seed = smoothing, crossfit_folds, seed
        cluster = cluster_words(vectors, clusters, seed)
        self.num_clusters = int(cluster.max()) + 1
        of_word = dict(zip(vocab, cluster.tolist(), strict=True))
        self.word_cluster = of_word
        # Cluster of each TF-IDF column, -1 for a word without a vector.
        names = tfidf.get_feature_names_out()
        self.column_cluster = np.asarray([of_word.get(w, -1) for w in names], np.int64)

    def _token_clusters(self, tokens: Tokens) -> list[np.ndarray]:
        return [np.asarray([self.word_cluster[w] for w in u if w in self.word_cluster], np.int64)
                for u in tokens]

    def word_weights(self, weights: np.ndarray) -> np.ndarray:
        """[V_tfidf, C]: the emotion weights E[k(w)] of every TF-IDF column (0 without a
        cluster)."""
        out = np.zeros((len(self.column_cluster), self.num_classes))
        has = self.column_cluster >= 0
        out[has] = weights[self.column_cluster[has]]
        return out

    def fit(self, tokens: Tokens, labels: np.ndarray) -> "ScoreFeatures":
        """Cluster weights ``weights_`` [K, C] from all of the training utterances, and the
        cross-fitted training scores ``train_scores_`` [N, C]."""
        labels = np.asarray(labels, np.int64)
        clusters = self._token_clusters(tokens)
        self.weights_ = cluster_emotion_weights(clusters, labels, self.num_clusters,
                                                self.num_classes, self.smoothing)
        x = self.tfidf.transform(list(tokens))
        if self.crossfit_folds <= 1:
            self.train_scores_ = np.asarray(x @ self.word_weights(self.weights_))
            return self
        self.train_scores_ = np.zeros((len(labels), self.num_classes))
        folds = KFold(self.crossfit_folds, shuffle=True, random_state=self.seed)
        for fit_idx, out_idx in folds.split(np.arange(len(labels))):
            w = cluster_emotion_weights([clusters[i] for i in fit_idx], labels[fit_idx],
                                        self.num_clusters, self.num_classes, self.smoothing)
            self.train_scores_[out_idx] = np.asarray(x[out_idx] @ self.word_weights(w))
        return self

    def scores(self, tokens: Tokens) -> np.ndarray:
        """Emotion scores s_u [N, C] float64 of other utterances, with the full-train weights."""
        return np.asarray(self.tfidf.transform(list(tokens)) @ self.word_weights(self.weights_))


class SurveyTextClassifier:
    """Step 5: logistic regression on standardised emotion scores (+ the TF-IDF vector).

    Args:
      features: fitted :class:`ScoreFeatures`.
      c: inverse regularisation.
      concat_tfidf: concatenate the TF-IDF vector to the scores.
    """

    def __init__(self, features: ScoreFeatures, c: float, concat_tfidf: bool):
        self.features, self.c, self.concat_tfidf = features, c, concat_tfidf

    def _design(self, scores: np.ndarray, tokens: Tokens):
        z = self.scaler_.transform(scores)
        if not self.concat_tfidf:
            return z
        return sp.hstack([sp.csr_matrix(z), self.features.tfidf.transform(list(tokens))]).tocsr()

    def fit(self, tokens: Tokens, labels: np.ndarray) -> "SurveyTextClassifier":
        """Fits on the training utterances (their cross-fitted scores)."""
        scores = self.features.train_scores_
        self.scaler_ = StandardScaler().fit(scores)
        self.lr_ = LogisticRegression(C=self.c, max_iter=3000)
        self.lr_.fit(self._design(scores, tokens), np.asarray(labels))
        return self

    def predict_proba(self, tokens: Tokens) -> np.ndarray:
        """[N, C'] class probabilities of other utterances (columns ``lr_.classes_``)."""
        return self.lr_.predict_proba(self._design(self.features.scores(tokens), tokens))

    def predict(self, tokens: Tokens) -> np.ndarray:
        """[N] int predicted classes."""
        return self.lr_.classes_[np.argmax(self.predict_proba(tokens), axis=1)]


@dataclasses.dataclass(frozen=True)
class Grid:
    """The values :func:`select_setting` searches (in two stages; see there).

    Raises:
      ValueError: an empty axis, or a value out of range.
    """

    clusters: tuple[int, ...] = (10, 25, 50, 100, 200, 400, 800)
    c: tuple[float, ...] = (0.1, 1.0, 10.0)
    concat_tfidf: tuple[bool, ...] = (False, True)

    def __post_init__(self):
        if not (self.clusters and self.c and self.concat_tfidf):
            raise ValueError(f"every grid axis needs a value; got {self}")
        if min(self.clusters) < 1 or min(self.c) <= 0:
            raise ValueError(f"clusters must be >= 1 and c > 0; got {self}")

    def settings(self) -> list[Setting]:
        """Every combination, in a fixed order."""
        return [Setting(k, float(c), bool(t))
                for k, c, t in itertools.product(self.clusters, self.c, self.concat_tfidf)]


def select_setting(
    train: tuple[Tokens, np.ndarray],
    validation: tuple[Tokens, np.ndarray],
    vocab: Sequence[str],
    vectors: np.ndarray,
    num_classes: int,
    grid: Grid = Grid(),
    *,
    metric: Metric = weighted_f1,
    smoothing: float = 10.0,
    crossfit_folds: int = 5,
    seed: int = 0,
) -> tuple[Setting, SurveyTextClassifier, list[dict[str, Any]]]:
    """Fits grid settings on ``train`` and keeps the best by ``metric`` on ``validation``.

    Sees the training and validation splits only: the test split is not an argument. The search
    is in two stages, because a logistic regression on the TF-IDF vector costs far more than one
    on C scores: first every (clusters, C) with ``grid.concat_tfidf[0]``, then the other
    ``concat_tfidf`` values for every C at the clusters chosen in stage one. The best of all the
    settings tried wins (ties keep the first tried).

    Args:
      train, validation: ``(tokens, labels [N] int)`` of each split.
      vocab, vectors: the word vectors [V, D] (trained on the training split).
      num_classes: C.
      grid: the values tried.
      metric: ``(y_true, y_pred) -> score``, higher is better.
      smoothing, crossfit_folds, seed: as for :class:`ScoreFeatures`.

    Returns:
      ``(best setting, its fitted classifier, [{"setting", "validation"} per setting tried]``.
    """
    (train_tokens, y_train), (val_tokens, y_val) = train, validation
    y_train, y_val = np.asarray(y_train, np.int64), np.asarray(y_val, np.int64)
    tfidf = make_tfidf(train_tokens)
    best, table, features = None, [], {}

    def attempt(s: Setting):
        nonlocal best
        if s.clusters not in features:
            features[s.clusters] = ScoreFeatures(
                tfidf, vocab, vectors, s.clusters, num_classes, smoothing, crossfit_folds, seed
            ).fit(train_tokens, y_train)
        clf = SurveyTextClassifier(features[s.clusters], s.c, s.concat_tfidf)
        clf.fit(train_tokens, y_train)
        score = float(metric(y_val, clf.predict(val_tokens)))
        table.append({"setting": dataclasses.asdict(s), "validation": score})
        if best is None or score > best[0]:
            best = (score, s, clf)

    first, *others = dict.fromkeys(grid.concat_tfidf)  # unique, in order
    for k in dict.fromkeys(grid.clusters):
        for c in grid.c:
            attempt(Setting(k, float(c), bool(first)))
    chosen_k = best[1].clusters
    for concat in others:
        for c in grid.c:
            attempt(Setting(chosen_k, float(c), bool(concat)))
    return best[1], best[2], table


def fit_and_evaluate(
    train: tuple[Tokens, np.ndarray],
    validation: tuple[Tokens, np.ndarray],
    test: tuple[Tokens, np.ndarray],
    embed: Embed,
    num_classes: int,
    grid: Grid = Grid(),
    *,
    metric: Metric = weighted_f1,
    smoothing: float = 10.0,
    crossfit_folds: int = 5,
    seed: int = 0,
) -> dict[str, Any]:
    """The whole system: word vectors on the training split, selection on validation, one test.

    Args:
      train, validation, test: ``(tokens, labels [N] int)`` of each split.
      embed: ``(training tokens) -> (vocab, vectors [V, D])``, e.g. the JAX skip-gram.
      num_classes, grid, metric, smoothing, crossfit_folds, seed: as for
        :func:`select_setting`.

    Returns:
      ``{"setting": Setting, "classifier": SurveyTextClassifier, "selection": [...],
      "validation_pred": [N_val] int, "test_pred": [N_test] int, "vocab_size": V}``; the test
      predictions are made once, by the selected classifier.

    Raises:
      ValueError: a split whose tokens and labels differ in length.
    """
    for name, (tokens, labels) in (("train", train), ("validation", validation), ("test", test)):
        if len(tokens) != len(labels):
            raise ValueError(f"{name}: {len(tokens)} utterances but {len(labels)} labels")
    vocab, vectors = embed(train[0])
    setting, clf, table = select_setting(train, validation, vocab, vectors, num_classes, grid,
                                         metric=metric, smoothing=smoothing,
                                         crossfit_folds=crossfit_folds, seed=seed)
    return {
        "setting": setting,
        "classifier": clf,
        "selection": table,
        "validation_pred": clf.predict(validation[0]),
        "test_pred": clf.predict(test[0]),  # the only time the test split is read
        "vocab_size": len(vocab),
    }
