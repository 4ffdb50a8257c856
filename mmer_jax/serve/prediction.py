"""What every predictor shares: the run's class names and the file -> prediction path.

:class:`FilePrediction` turns a file (audio, video or a transcript) into the prediction dict of
``mmer predict`` / ``POST /predict`` through the subclass's ``predict_records``; the gradient
systems' :class:`~mmer_jax.serve.predictor.Predictor` and the predictors of systems fitted by
their own trainer (:mod:`mmer_jax.fitted`) use it. :func:`open_predictor` opens a run with the
predictor its system's registry entry names.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from mmer_jax.errors import UsageError
from mmer_jax.serve import inputs


def open_predictor(workdir: str, variant: str | None = None, batch_size: int = 1):
    """The predictor of a finished run: the class its system's registry entry names
    (:attr:`mmer_jax.registry.System.predictor`; :class:`~mmer_jax.serve.predictor.Predictor`
    for a system trained by gradient).

    Raises:
      UsageError: ``workdir`` holds no run, its system is unknown or its predictor cannot be
        imported; and what the predictor's constructor raises.
    """
    from mmer_jax.registry import SYSTEMS
    from mmer_jax.train.evaluate import load_run_config

    name = load_run_config(workdir).model.get("name")
    try:
        system = SYSTEMS[name]
        predictor = system.part("predictor")
    except (KeyError, ImportError, AttributeError, ValueError) as exc:
        raise UsageError(f"--workdir {workdir!r}: no predictor for system {name!r} "
                         f"({exc})") from exc
    return predictor(workdir, variant, batch_size)


class FilePrediction:
    """Mixin: needs ``workdir``, ``data`` (DataConfig), ``results`` (results.json or None),
    ``settings`` (MediaSettings), ``classes``, ``modalities`` and ``predict_records(records) ->
    [N, K] probabilities``."""

    CHUNK = 64  # windows scored per call of predict_records

    workdir: str
    classes: list[str]
    modalities: list[str]
    settings: inputs.MediaSettings

    def predict_records(self, records: Sequence[dict]) -> np.ndarray:
        """[N, K] class probabilities of corpus-layout records (the subclass's model)."""
        raise NotImplementedError

    def _read_json(self, name: str) -> dict | None:
        path = os.path.join(self.workdir, name)
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return json.load(f)

    def _class_names(self) -> list[str]:
        if self.results and self.results.get("protocol", {}).get("classes"):
            return list(self.results["protocol"]["classes"])
        from data_prep import build as build_lib

        try:
            builder = build_lib.get_builder(self.data.corpus, self.data.config or None,
                                            os.path.expanduser(self.data.data_dir))
            return list(builder.info.features["label"].names)
        except Exception as exc:  # noqa: BLE001
            raise UsageError(
                f"--workdir {self.workdir!r}: no results.json and corpus {self.data.corpus!r} "
                f"cannot be opened for its class names ({exc})"
            ) from exc

    def decode(self, path: str | None, text: str | None = None, shown_name: str | None = None,
               window_s: float | None = None, hop_s: float | None = None,
               limits: inputs.Limits | None = None) -> inputs.Decoded:
        """``path`` decoded for this model and its windows (see
        :func:`mmer_jax.serve.inputs.decode`)."""
        return inputs.decode(path, self.settings, text=text, shown_name=shown_name,
                             window_s=window_s, hop_s=hop_s, limits=limits)

    def predict_decoded(self, decoded: inputs.Decoded, name: str = "") -> dict[str, Any]:
        """The prediction for a decoded input: the mean over its windows, plus the timeline.

        Windows are scored ``CHUNK`` at a time, so the records of a long input never exist all
        at once.

        Returns:
          ``{"file", "label", "probabilities": {class: p}, "modalities": {"used", "missing"},
          "duration_s", "scored" (what the windows cover), "windows": [{"start", "end",
          "label", "probabilities"}]}``.
        """
        spans, probs = [], []
        for i in range(0, len(decoded.spans), self.CHUNK):
            part = dataclasses.replace(decoded, spans=decoded.spans[i : i + self.CHUNK])
            recs = inputs.records(part, self.settings)
            probs.append(self.predict_records([r for _, _, r in recs]))
            spans.extend((s, e) for s, e, _ in recs)
        probs = np.concatenate(probs) if probs else np.zeros((0, len(self.classes)), np.float32)
        mean = probs.mean(0)
        return {
            "file": name,
            "label": self.classes[int(mean.argmax())],
            "probabilities": self._named(mean),
            "modalities": {
                "used": [m for m in self.modalities if m not in decoded.missing],
                "missing": dict(decoded.missing),
            },
            "duration_s": round(decoded.duration_s, 3),
            "scored": decoded.coverage,
            "windows": [
                {"start": round(s, 3), "end": round(e, 3),
                 "label": self.classes[int(p.argmax())], "probabilities": self._named(p)}
                for (s, e), p in zip(spans, probs, strict=True)
            ],
        }

    def predict_file(self, path: str, text: str | None = None, window_s: float | None = None,
                     hop_s: float | None = None,
                     limits: inputs.Limits | None = None) -> dict[str, Any]:
        """Decodes ``path`` and predicts it (see :meth:`predict_decoded`).

        Raises:
          InputError: an unsupported, undecodable, too long or unusable file, or a bad window
            (the message says why).
        """
        decoded = self.decode(path, text, window_s=window_s, hop_s=hop_s, limits=limits)
        return self.predict_decoded(decoded, name=os.path.basename(path))

    def _named(self, p: np.ndarray) -> dict[str, float]:
        return {c: float(v) for c, v in zip(self.classes, p, strict=True)}
