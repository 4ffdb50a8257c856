"""The non-gradient trainer (and ``mmer eval``'s evaluator) of the survey's text system
(``model.name = "survey_text"``).

Same constructor and :meth:`SurveyTextTrainer.run` result as
:class:`~mmer_jax.train.loop.VariantTrainer`, so :func:`mmer_jax.train.run.run`, ``results.json``,
``report.md`` and ``mmer reproduce`` treat it like any other system. It reads the utterance texts
and labels of each split from the run's pipeline, trains the JAX skip-gram
(:mod:`.word2vec`) on the training transcripts, then fits and selects the K-means /
TF-IDF / logistic-regression half (:mod:`.classifier`) on the validation split and
scores the test split once. The grid it tried, with each setting's validation score, and the
skip-gram's loss per epoch are written to ``<run_dir>/variants/<variant>/selection.json``; the
selected classifier, as arrays (no pickle: :mod:`.saved`), to
``classifier.npz`` / ``classifier.json`` beside it, which ``mmer predict`` and ``mmer serve`` load.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import ml_collections
import numpy as np

from mmer_jax.data.base import UnitPipeline
from mmer_jax.data.sources import as_str, iterate
from mmer_jax.data.text import split_words
from mmer_jax.errors import UsageError
from mmer_jax.fitted.survey_text import classifier as classic
from mmer_jax.fitted.survey_text.saved import SavedSurveyText
from mmer_jax.fitted.survey_text.word2vec import train_skipgram
from mmer_jax.io_utils import atomic_write_json
from mmer_jax.models import model_config
from mmer_jax.schema import CLASSIFICATION_METRICS, TrainConfig, from_section
from mmer_jax.train.metrics import classification_metrics


def split_texts(pipeline: UnitPipeline, split: str) -> tuple[list[list[str]], np.ndarray]:
    """Every utterance of ``split`` as words (the project tokenizer's split) and its labels [N]
    int64, in stored order.

    Raises:
      UsageError: the corpus records have no ``text`` field.
    """
    tokens, labels = [], []
    for record in iterate(pipeline.sources[split]):
        if "text" not in record:
            raise UsageError(f"model.name='survey_text' needs a corpus with a 'text' field; "
                             f"{split} records have {sorted(record)}")
        tokens.append(split_words(as_str(record["text"])))
        labels.append(int(record["label"]))
    return tokens, np.asarray(labels, np.int64)


class SurveyTextTrainer:
    """Fits, selects (validation only) and tests the survey text system for one variant.

    Args:
      cfg: the run config; reads ``model`` (a ``survey_text`` section), ``train.select_metric``
        and ``seed`` (skip-gram initialisation and sampling, K-means, cross-fitting folds).
      pipeline: the run's pipeline (its ``sources`` and ``class_names``).
      variant: the variant's name (its directory under ``variants/``).
      modalities: must be ["text"].
      run_dir: the run's working directory.

    Raises:
      UsageError: a modality other than text, a bad ``model`` section, or a regression
        ``train.select_metric``.
    """

    def __init__(self, cfg: ml_collections.ConfigDict, pipeline: UnitPipeline, variant: str,
                 modalities: Sequence[str], run_dir: str):
        if list(modalities) != ["text"]:
            raise UsageError(f"variant {variant!r}: survey_text reads text only, got modalities "
                             f"{list(modalities)}")
        self.cfg, self.pipeline, self.variant = cfg, pipeline, variant
        self.modalities = list(modalities)
        self.model_cfg = model_config(cfg.model, modalities)
        self.train_cfg: TrainConfig = from_section(TrainConfig, cfg.train, "train")
        if self.train_cfg.select_metric not in CLASSIFICATION_METRICS:
            raise UsageError(f"config key 'train.select_metric': survey_text selects on a "
                             f"classification metric ({', '.join(CLASSIFICATION_METRICS)}), "
                             f"got {self.train_cfg.select_metric!r}")
        self.seed = int(cfg.seed)
        self.dir = os.path.join(run_dir, "variants", variant)
        os.makedirs(self.dir, exist_ok=True)

    def metric(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        """``train.select_metric`` of integer labels [N] (a fraction, higher is better)."""
        names = self.pipeline.class_names
        return float(classification_metrics(y_true, y_pred, names)[self.train_cfg.select_metric])

    def run(self) -> dict[str, Any]:
        """Trains the skip-gram, selects a setting on validation, tests once.

        Returns:
          As :meth:`VariantTrainer.run <mmer_jax.train.loop.VariantTrainer.run>`: ``modalities``,
          ``validation`` and ``test`` metrics, ``selection`` (the chosen setting), ``best_epoch``
          (None: there are no epochs), ``train_examples_per_s`` (training units, utterances or
          dialogues as the pipeline batches them, per second of fitting: skip-gram and grid
          together), ``train_wall_s`` and ``num_params``
          (skip-gram tables 2 V D + cluster weights K C + logistic-regression weights), plus
          ``selection_rule``.
        """
        m = self.model_cfg
        train, val, test = (split_texts(self.pipeline, s) for s in ("train", "validation", "test"))
        losses: list[float] = []

        def embed(sentences):
            t = time.time()
            vocab, vectors, epoch_losses = train_skipgram(sentences, m.word2vec, self.seed)
            losses.extend(epoch_losses)
            print(f"[{self.variant}] word2vec: {len(vocab)} words x {m.word2vec.dim}, loss per "
                  f"epoch {', '.join(f'{x:.3f}' for x in epoch_losses)} ({time.time() - t:.0f} s)"
                  "; fitting the grid", file=sys.stderr, flush=True)
            return vocab, vectors

        grid = classic.Grid(tuple(m.clusters), tuple(m.c), tuple(m.concat_tfidf))
        t0 = time.time()
        out = classic.fit_and_evaluate(
            train, val, test, embed, self.pipeline.num_classes, grid, metric=self.metric,
            smoothing=m.smoothing, crossfit_folds=m.crossfit_folds, seed=self.seed)
        wall = time.time() - t0
        setting: classic.Setting = out["setting"]
        names = self.pipeline.class_names
        val_metrics = classification_metrics(val[1], out["validation_pred"], names)
        test_metrics = classification_metrics(test[1], out["test_pred"], names)
        clf = out["classifier"]
        num_params = (2 * out["vocab_size"] * m.word2vec.dim
                      + clf.features.weights_.size + clf.lr_.coef_.size + clf.lr_.intercept_.size)
        selection = f"best validation {self.train_cfg.select_metric}: {setting.describe()}"
        # What `mmer predict` loads: plain arrays and JSON, never a pickle.
        SavedSurveyText.from_classifier(clf, self.pipeline.num_classes,
                                        setting.describe()).save(self.dir)
        atomic_write_json(os.path.join(self.dir, "selection.json"), {
            "selected": setting.describe(),
            "select_metric": self.train_cfg.select_metric,
            "grid": out["selection"],
            "word2vec_loss_per_epoch": losses,
            "word2vec_vocab": out["vocab_size"],
        })
        print(f"[{self.variant}] {selection} (validation {val_metrics['weighted_f1']:.3f} "
              f"weighted F1; {len(out['selection'])} settings, {wall:.0f} s)", file=sys.stderr,
              flush=True)
        return {
            "modalities": self.modalities,
            "validation": val_metrics,
            "test": test_metrics,
            "selection": selection,
            "selection_rule": (f"{len(out['selection'])} settings fitted on train (clusters x C "
                               "on emotion scores, then C with the TF-IDF vector concatenated at "
                               f"the chosen clusters), best validation "
                               f"{self.train_cfg.select_metric} per seed; test scored once at "
                               "that setting"),
            "best_epoch": None,
            # In the pipeline's units (dialogues for a dialogue corpus), as the gradient trainer.
            "train_examples_per_s": self.pipeline.num_examples("train") / max(wall, 1e-9),
            "train_wall_s": wall,
            "num_params": int(num_params),
        }


def evaluate_saved(workdir: str, split: str, cfg: ml_collections.ConfigDict) -> dict[str, Any]:
    """``mmer eval`` of a ``survey_text`` run: each variant's saved classifier
    (``variants/<variant>/classifier.npz``, what ``mmer predict`` loads) on ``split``.

    Returns:
      ``{variant: {"epoch": None, split: metrics}}`` (classification metrics as in
      ``results.json``), or ``{variant: {"error": ...}}`` for a variant without a saved
      classifier.

    Raises:
      UsageError: the corpus records have no ``text`` field.
    """
    from mmer_jax.data.pipeline import make_pipeline
    from mmer_jax.schema import DataConfig
    from mmer_jax.train.run import variants_of

    variants = variants_of(cfg)
    data = from_section(DataConfig, cfg.data, "data")
    pipeline = make_pipeline(data, sorted({m for v in variants.values() for m in v}), cfg.seed,
                             workdir)
    tokens, labels = split_texts(pipeline, split)
    out: dict[str, Any] = {}
    for name in variants:
        directory = os.path.join(workdir, "variants", name)
        if not os.path.exists(os.path.join(directory, "classifier.npz")):
            out[name] = {"error": "no saved classifier (variants/<variant>/classifier.npz)"}
            continue
        pred = SavedSurveyText.load(directory).predict_proba(tokens).argmax(1)
        out[name] = {"epoch": None,
                     split: classification_metrics(labels, pred, pipeline.class_names)}
    return out
