"""A finished ``survey_text`` run as a predictor (S000 §2.1's Word2Vec / K-means / TF-IDF system).

The run has no checkpoint: its trainer saved the selected classifier as arrays
(:mod:`.saved`), which this loads. A transcript is split into words
exactly as the trainer split the corpus (:func:`mmer_jax.data.text.split_words`), and each
utterance is classified alone, as in training.

    p = SurveyTextPredictor("runs/survey_text")   # or serve.prediction.open_predictor(...)
    p.predict_file("utterance.txt")               # or predict_file("x.wav", text="...")
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from mmer_jax.data.sources import as_str
from mmer_jax.data.text import split_words
from mmer_jax.errors import UsageError
from mmer_jax.fitted.survey_text.saved import SavedSurveyText
from mmer_jax.metric_table import HEADLINE
from mmer_jax.schema import DataConfig, from_section
from mmer_jax.serve import inputs
from mmer_jax.serve.prediction import FilePrediction
from mmer_jax.train.evaluate import load_run_variant
from mmer_jax.train.run import config_for_variant


class SurveyTextPredictor(FilePrediction):
    """Loads ``<workdir>/variants/<variant>/classifier.{npz,json}`` of a ``survey_text`` run.

    Same interface as :class:`~mmer_jax.serve.predictor.Predictor` for ``mmer predict`` and
    ``mmer serve`` (``predict_file``, ``predict_decoded``, ``predict_records``, ``describe``,
    ``warmup``); there is nothing to compile, and nothing to export with ``jax.export``.

    Args:
      workdir: the run directory.
      variant: the variant (default: the run's primary variant).
      batch_size: unused (every record is scored in one numpy call); kept for the same signature.

    Raises:
      UsageError: ``workdir`` holds no run, an unknown variant, or a variant whose classifier was
        not saved (a run from before classifiers were saved: train it again).
    """

    def __init__(self, workdir: str, variant: str | None = None, batch_size: int = 1):
        del batch_size
        self.workdir = workdir
        cfg, variants, self.variant = load_run_variant(workdir, variant)
        self.cfg = config_for_variant(cfg, self.variant)
        self.data = from_section(DataConfig, self.cfg.data, "data")
        self.modalities = list(variants[self.variant])
        self.results = self._read_json("results.json")
        self.classes = self._class_names()
        directory = os.path.join(workdir, "variants", self.variant)
        if not os.path.exists(os.path.join(directory, "classifier.npz")):
            raise UsageError(f"--workdir {workdir!r}: variant {self.variant!r} has no saved "
                             "classifier (variants/<variant>/classifier.npz); runs trained "
                             "before classifiers were saved must be trained again")
        self.classifier = SavedSurveyText.load(directory)
        if self.classifier.num_classes != len(self.classes):
            raise UsageError(f"--workdir {workdir!r}: the classifier has "
                             f"{self.classifier.num_classes} classes, the run {len(self.classes)}")
        self.settings = inputs.MediaSettings(modalities=("text",),
                                             sample_rate=self.data.sample_rate,
                                             max_frames=self.data.max_frames)
        self.meta = {"best_epoch": None}
        self.warm_shapes: list[dict] = []

    def predict_records(self, records: Sequence[dict]) -> np.ndarray:
        """[N, K] float32 class probabilities of records with a ``text`` field (empty when the
        input had no transcript: the classifier then sees no word and answers from its bias)."""
        tokens = [split_words(as_str(r.get("text", b""))) for r in records]
        if not tokens:
            return np.zeros((0, len(self.classes)), np.float32)
        return self.classifier.predict_proba(tokens).astype(np.float32)

    def bucket_shapes(self) -> list[dict[str, int]]:
        """No compiled shapes (the classifier is numpy)."""
        return []

    def warmup(self) -> float:
        """Nothing to compile; returns 0.0 seconds."""
        return 0.0

    def describe(self) -> dict[str, Any]:
        """What ``GET /model`` answers (as :meth:`Predictor.describe`), with the selected
        setting."""
        res = self.results or {}
        test = ((res.get("variants") or {}).get(self.variant, {}).get("test")
                or res.get("test") or {})
        return {
            "system": self.cfg.get("system"),
            "corpus": f"{self.data.corpus}/{self.data.config}",
            "variant": self.variant,
            "best_epoch": None,
            "setting": self.classifier.setting,
            "classes": self.classes,
            "modalities": self.modalities,
            "protocol": res.get("protocol"),
            "test": {k: test[k] for k in HEADLINE if k in test},
            "inputs": {"extensions": sorted(inputs.TEXT_EXTS), "text": True},
        }

