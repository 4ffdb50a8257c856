"""What every predictor shares: the run's class names and the file -> prediction path.

:class:`FilePrediction` turns a file (audio, video or a transcript) into the prediction dict of
``mmer predict`` / ``POST /predict`` through the subclass's ``predict_records``; the gradient
systems' :class:`~mmer_jax.serve.predictor.Predictor` and the survey text system's
:class:`~mmer_jax.serve.text_predictor.SurveyTextPredictor` both use it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from mmer_jax.errors import UsageError
from mmer_jax.serve import inputs


class FilePrediction:
    """Mixin: needs ``workdir``, ``data`` (DataConfig), ``results`` (results.json or None),
    ``settings`` (MediaSettings), ``classes``, ``modalities`` and ``predict_records(records) ->
    [N, K] probabilities``."""

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

    def decode(self, path: str, text: str | None = None,
               shown_name: str | None = None) -> inputs.Decoded:
        """``path`` decoded for this model (see :func:`mmer_jax.serve.inputs.decode`)."""
        return inputs.decode(path, self.settings, text=text, shown_name=shown_name)

    def predict_decoded(self, decoded: inputs.Decoded, window_s: float | None = None,
                        hop_s: float | None = None, name: str = "") -> dict[str, Any]:
        """The prediction for a decoded input: the mean over its windows, plus the timeline.

        Returns:
          ``{"file", "label", "probabilities": {class: p}, "modalities": {"used", "missing"},
          "duration_s", "windows": [{"start", "end", "label", "probabilities"}]}``.
        """
        spans = inputs.records(decoded, self.settings, window_s, hop_s)
        probs = self.predict_records([r for _, _, r in spans])
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
            "windows": [
                {"start": round(s, 3), "end": round(e, 3),
                 "label": self.classes[int(p.argmax())], "probabilities": self._named(p)}
                for (s, e, _), p in zip(spans, probs, strict=True)
            ],
        }

    def predict_file(self, path: str, text: str | None = None, window_s: float | None = None,
                     hop_s: float | None = None) -> dict[str, Any]:
        """Decodes ``path`` and predicts it (see :meth:`predict_decoded`).

        Raises:
          InputError: an unsupported, undecodable or unusable file (the message says why).
        """
        decoded = self.decode(path, text)
        return self.predict_decoded(decoded, window_s, hop_s, name=os.path.basename(path))

    def _named(self, p: np.ndarray) -> dict[str, float]:
        return {c: float(v) for c, v in zip(self.classes, p, strict=True)}
