"""The survey's text system (S000 §2.1): Word2Vec -> K-means -> TF-IDF-weighted cluster emotion
scores -> logistic regression; fitted without gradients through the model.

Source: seed paper S000 (``shared/papers/S000_*``), §2.1. This file holds the ``model`` section
(every default of the system) and registers it with its trainer, evaluator and predictor (the
modules beside it, imported only when a run needs them); the registered build returns the one
neural part, the skip-gram module (:mod:`.word2vec`).
"""

from __future__ import annotations

import dataclasses

from mmer_jax.fitted.survey_text.word2vec import SkipGram, SkipGramConfig
from mmer_jax.registry import register_system

_HERE = "mmer_jax.fitted.survey_text"


@dataclasses.dataclass(frozen=True)
class SurveyTextConfig:
    """``model`` section of ``survey_text``.

    Attributes:
      word2vec: the skip-gram (trained on the training split's transcripts).
      clusters, c, concat_tfidf: the grid chosen from on the validation split (K of K-means,
        inverse regularisation of the logistic regression, TF-IDF vector concatenated or not).
      smoothing: m of the m-estimate of the cluster emotion weights toward the class prior.
      crossfit_folds: training scores from weights of the other folds (1: none).
    """

    name: str = "survey_text"
    modalities: tuple[str, ...] = ("text",)
    word2vec: SkipGramConfig = SkipGramConfig()
    clusters: tuple[int, ...] = (10, 25, 50, 100, 200, 400, 800)
    c: tuple[float, ...] = (0.1, 1.0, 10.0)
    concat_tfidf: tuple[bool, ...] = (False, True)
    smoothing: float = 10.0
    crossfit_folds: int = 5

    def __post_init__(self):
        if tuple(self.modalities) != ("text",):
            raise ValueError(f"modalities={self.modalities} must be ('text',): a text system")
        if not (self.clusters and self.c and self.concat_tfidf):
            raise ValueError("clusters, c and concat_tfidf each need at least one value")
        if min(self.clusters) < 1 or min(self.c) <= 0 or self.smoothing < 0:
            raise ValueError(f"clusters={self.clusters} must be >= 1, c={self.c} > 0 and "
                             f"smoothing={self.smoothing} >= 0")
        if self.crossfit_folds < 1:
            raise ValueError(f"crossfit_folds={self.crossfit_folds} must be >= 1")


@register_system("survey_text", SurveyTextConfig,
                 trainer=f"{_HERE}.trainer:SurveyTextTrainer",
                 evaluator=f"{_HERE}.trainer:evaluate_saved",
                 predictor=f"{_HERE}.predictor:SurveyTextPredictor")
def build(cfg: SurveyTextConfig, num_classes: int, vocab_size: int = 0) -> SkipGram:
    """The skip-gram of the system (the classifier on top is fitted by its trainer); its
    vocabulary is built by the trainer, so ``vocab_size`` here only sizes a placeholder."""
    del num_classes
    return SkipGram(max(int(vocab_size), 2), cfg.word2vec.dim)
