"""A finished ``s004_hybrid`` run as a predictor: a file -> both encoders' features -> the saved
row (:class:`~.saved.SavedHybrid`, default the Choquet fusion with chi-square).

Each encoder run is opened as ``mmer predict`` opens it
(:class:`~mmer_jax.serve.predictor.Predictor`: its best checkpoint, its corpus settings), and its
exported entry (``model.speech.key``, ``model.face.key``) is read from the model's ``aux`` in
eval mode, as :mod:`mmer_jax.train.export_features` exported it for training. A file is decoded
once with both runs' settings (audio at the speech run's rate, frames at the face run's size).

    p = S004HybridPredictor("runs/reproduce/s004_hybrid/generated/seed0")
    p.predict_file("clip.mp4")
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from mmer_jax.errors import UsageError
from mmer_jax.fitted.s004_hybrid.saved import NPZ, SavedHybrid
from mmer_jax.metric_table import HEADLINE
from mmer_jax.schema import DataConfig, from_section
from mmer_jax.serve import inputs
from mmer_jax.serve.prediction import FilePrediction
from mmer_jax.train.evaluate import load_run_variant
from mmer_jax.train.run import config_for_variant


class _Encoder:
    """One encoder run's eval-mode features (one ``aux`` key) of corpus-layout records."""

    def __init__(self, run: str, key: str):
        import jax

        from mmer_jax.serve.predictor import Predictor

        self.predictor = p = Predictor(run)
        self.key = key
        self._variables = {"params": p.params, "batch_stats": p.batch_stats}
        # The weights are an argument, not constants folded into the compiled program.
        self._apply = jax.jit(lambda variables, batch: p.model.apply(
            variables, p.features(batch), train=False)[1][key])

    def features(self, records: Sequence[dict]) -> np.ndarray:
        """[N, D] float32 features of ``records``."""
        from mmer_jax.train import sharding as sh

        p = self.predictor
        out = [np.asarray(self._apply(self._variables, sh.to_global(batch, p.mesh)),
                          np.float32)[:n]
               for batch, n in p.host_batches(records)]
        return np.concatenate(out)


class S004HybridPredictor(FilePrediction):
    """Loads ``<workdir>/variants/<variant>/hybrid_model.{npz,json}`` of an ``s004_hybrid`` run
    and the two encoder runs it was fitted on.

    Same interface as :class:`~mmer_jax.serve.predictor.Predictor` for ``mmer predict`` and
    ``mmer serve``. Class scores are the saved row's (a fusion row's integrals normalised to sum
    1, so the argmax is the fusion's class).

    Args:
      workdir: the run directory.
      variant: the variant (default: the run's primary variant).
      batch_size: unused (the encoders' runs batch as they predict); kept for the signature.

    Raises:
      UsageError: ``workdir`` holds no run, an unknown variant, a variant without a saved row,
        or an encoder run that cannot be opened (moved or deleted: the message names it).
    """

    def __init__(self, workdir: str, variant: str | None = None, batch_size: int = 1):
        del batch_size
        self.workdir = workdir
        cfg, variants, self.variant = load_run_variant(workdir, variant)
        self.cfg = config_for_variant(cfg, self.variant)
        self.data = from_section(DataConfig, self.cfg.data, "data")
        directory = os.path.join(workdir, "variants", self.variant)
        if not os.path.exists(os.path.join(directory, NPZ)):
            raise UsageError(f"--workdir {workdir!r}: variant {self.variant!r} has no saved "
                             f"row ({NPZ})")
        self.saved = SavedHybrid.load(directory)
        self.results = self._read_json("results.json")
        self.classes = self._class_names()
        self.encoders = {}
        for name, enc in self.saved.meta["encoders"].items():
            try:
                self.encoders[name] = _Encoder(enc["run"], enc["key"])
            except UsageError as exc:
                raise UsageError(f"--workdir {workdir!r}: its {name} encoder run "
                                 f"{enc['run']!r} cannot be opened: {exc}") from exc
        self.modalities = sorted({m for e in self.encoders.values()
                                  for m in e.predictor.modalities})
        settings = [e.predictor.settings for e in self.encoders.values()]
        speech = self.encoders["speech"].predictor.settings
        face = self.encoders["face"].predictor.settings
        self.settings = dataclasses.replace(
            speech, modalities=tuple(self.modalities),
            max_frames=max(s.max_frames for s in settings),
            frame_size=face.frame_size, face_size=face.face_size)
        self.meta = {"best_epoch": None}
        self.warm_shapes: list[dict] = []

    def predict_records(self, records: Sequence[dict]) -> np.ndarray:
        """[N, K] float32 class scores (summing to 1) of records holding both encoders'
        inputs."""
        if not records:
            return np.zeros((0, len(self.classes)), np.float32)
        feats = {name: e.features(records) for name, e in self.encoders.items()}
        s = np.maximum(self.saved.scores(feats), 0.0)
        total = s.sum(1, keepdims=True)
        s = np.divide(s, total, out=np.full_like(s, 1.0 / s.shape[1]), where=total > 0)
        return s.astype(np.float32)

    def bucket_shapes(self) -> list[dict[str, int]]:
        """No shapes compiled ahead (each encoder compiles on its first input)."""
        return []

    def warmup(self) -> float:
        """Nothing compiled ahead; returns 0.0 seconds."""
        return 0.0

    def describe(self) -> dict[str, Any]:
        """What ``GET /model`` answers (as :meth:`Predictor.describe`), with the served row and
        the encoder runs."""
        res = self.results or {}
        test = res.get("test") or {}
        return {
            "system": self.cfg.get("system"),
            "corpus": f"{self.data.corpus}/{self.data.config}",
            "variant": self.variant,
            "best_epoch": None,
            "row": self.saved.row,
            "encoders": self.saved.meta["encoders"],
            "classes": self.classes,
            "modalities": self.modalities,
            "protocol": res.get("protocol"),
            "test": {k: test[k] for k in HEADLINE if k in test},
            "inputs": {"sample_rate": self.settings.sample_rate,
                       "max_frames": self.settings.max_frames,
                       "frame_size": self.settings.frame_size,
                       "extensions": list(inputs.SUPPORTED_EXTS)},
        }
