"""A fitted survey text classifier as plain arrays: saved without pickle, scored with numpy.

:class:`~.classifier.SurveyTextClassifier` holds scikit-learn objects (the TF-IDF
vectorizer, a scaler, a logistic regression). A run must not store them with ``pickle`` (loading a
pickle runs code), so :class:`SavedSurveyText` keeps only the numbers that map words to class
probabilities and recomputes the same function with numpy/scipy:

    x      = l2_normalise(counts(tokens) * idf)            TF-IDF row [V] (sklearn's defaults)
    s      = x @ W                                          emotion scores [C] (W = word weights)
    z      = (s - mean) / scale                             the StandardScaler
    design = [z, x] if concat_tfidf else z
    p      = softmax(design @ coef.T + intercept)           sigmoid of one logit for 2 classes

Saved as ``classifier.npz`` (numeric arrays, read with ``allow_pickle=False``) and
``classifier.json`` (the vocabulary in column order, the class ids the regression saw, the
setting).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from mmer_jax.fitted.survey_text.classifier import SurveyTextClassifier
from mmer_jax.io_utils import atomic_write_json

SAVED_FORMAT = 1
_ARRAYS = ("idf", "word_weights", "mean", "scale", "coef", "intercept")


class SavedSurveyText:
    """The fitted survey text system's scoring function, with its own ``predict_proba``.

    Args:
      vocabulary: the TF-IDF columns' words, in column order (V).
      idf: [V] float64 inverse document frequencies.
      word_weights: [V, C] float64 emotion weights of each column's word cluster.
      mean, scale: [C] the score standardiser's statistics.
      coef, intercept: the logistic regression's [C', D] and [C'] (C' = 1 for two classes).
      classes: [C'] or [2] the class ids the regression was fitted on (``lr_.classes_``).
      num_classes: C, the corpus's classes (columns of :meth:`predict_proba`).
      concat_tfidf: whether the TF-IDF row is appended to the scores.
      setting: the selected setting's description (for display).

    Raises:
      ValueError: the arrays' shapes disagree.
    """

    def __init__(self, vocabulary: Sequence[str], idf, word_weights, mean, scale, coef, intercept,
                 classes, num_classes: int, concat_tfidf: bool, setting: str = ""):
        self.vocabulary = list(vocabulary)
        self.column = {w: i for i, w in enumerate(self.vocabulary)}
        self.idf = np.asarray(idf, np.float64)
        self.word_weights = np.asarray(word_weights, np.float64)
        self.mean, self.scale = np.asarray(mean, np.float64), np.asarray(scale, np.float64)
        self.coef, self.intercept = np.asarray(coef, np.float64), np.asarray(intercept, np.float64)
        self.classes = np.asarray(classes, np.int64)
        self.num_classes, self.concat_tfidf = int(num_classes), bool(concat_tfidf)
        self.setting = setting
        v, c = len(self.vocabulary), self.mean.shape[0]
        width = c + (v if self.concat_tfidf else 0)
        if (self.idf.shape != (v,) or self.word_weights.shape != (v, c) or self.scale.shape != (c,)
                or self.coef.ndim != 2 or self.coef.shape[1] != width
                or self.intercept.shape != (self.coef.shape[0],)):
            raise ValueError(f"inconsistent survey text arrays: V={v}, C={c}, "
                             f"idf {self.idf.shape}, word_weights {self.word_weights.shape}, "
                             f"coef {self.coef.shape}, intercept {self.intercept.shape}")

    @classmethod
    def from_classifier(cls, clf: SurveyTextClassifier, num_classes: int,
                        setting: str = "") -> "SavedSurveyText":
        """The arrays of a fitted :class:`SurveyTextClassifier` (``fit`` already called)."""
        tfidf = clf.features.tfidf
        return cls(tfidf.get_feature_names_out().tolist(), tfidf.idf_,
                   clf.features.word_weights(clf.features.weights_), clf.scaler_.mean_,
                   clf.scaler_.scale_, clf.lr_.coef_, clf.lr_.intercept_, clf.lr_.classes_,
                   num_classes, clf.concat_tfidf, setting)

    def tfidf(self, tokens: Sequence[Sequence[str]]) -> sp.csr_matrix:
        """[N, V] TF-IDF rows of tokenised utterances (raw counts x idf, L2-normalised; words
        outside the vocabulary are ignored, as scikit-learn's transform ignores them)."""
        rows, cols = [], []
        for r, words in enumerate(tokens):
            for w in words:
                j = self.column.get(w)
                if j is not None:
                    rows.append(r)
                    cols.append(j)
        x = sp.csr_matrix((np.ones(len(rows)), (rows, cols)),
                          shape=(len(tokens), len(self.vocabulary)))
        x.sum_duplicates()
        x = x @ sp.diags(self.idf)
        norm = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
        return sp.diags(1.0 / np.where(norm > 0, norm, 1.0)) @ x

    def predict_proba(self, tokens: Sequence[Sequence[str]]) -> np.ndarray:
        """[N, C] float64 class probabilities (classes the regression never saw get 0)."""
        x = self.tfidf(tokens)
        z = (np.asarray(x @ self.word_weights) - self.mean) / self.scale
        design = sp.hstack([sp.csr_matrix(z), x]).tocsr() if self.concat_tfidf else z
        logits = np.asarray(design @ self.coef.T) + self.intercept
        if self.coef.shape[0] == 1:  # scikit-learn's binary case: one logit for classes_[1]
            p1 = 1.0 / (1.0 + np.exp(-logits[:, 0]))
            known = np.stack([1.0 - p1, p1], axis=1)
        else:
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            known = e / e.sum(axis=1, keepdims=True)
        out = np.zeros((len(tokens), self.num_classes))
        out[:, self.classes] = known
        return out

    def save(self, directory: str) -> None:
        """Writes ``classifier.npz`` and ``classifier.json`` into ``directory``."""
        os.makedirs(directory, exist_ok=True)
        arrays = {k: getattr(self, k) for k in _ARRAYS}
        tmp = os.path.join(directory, "classifier.tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, os.path.join(directory, "classifier.npz"))
        atomic_write_json(os.path.join(directory, "classifier.json"), {
            "format": SAVED_FORMAT, "vocabulary": self.vocabulary,
            "classes": self.classes.tolist(), "num_classes": self.num_classes,
            "concat_tfidf": self.concat_tfidf, "setting": self.setting,
        })

    @classmethod
    def load(cls, directory: str) -> "SavedSurveyText":
        """Reads what :meth:`save` wrote.

        Raises:
          FileNotFoundError: ``classifier.npz`` or ``classifier.json`` is missing.
          ValueError: an unknown format or inconsistent arrays.
        """
        with open(os.path.join(directory, "classifier.json")) as f:
            meta = json.load(f)
        if meta.get("format") != SAVED_FORMAT:
            raise ValueError(f"{directory}/classifier.json: format {meta.get('format')!r}, "
                             f"expected {SAVED_FORMAT}")
        with np.load(os.path.join(directory, "classifier.npz"), allow_pickle=False) as z:
            arrays = {k: z[k] for k in _ARRAYS}
        return cls(meta["vocabulary"], classes=meta["classes"], num_classes=meta["num_classes"],
                   concat_tfidf=meta["concat_tfidf"], setting=meta.get("setting", ""), **arrays)
