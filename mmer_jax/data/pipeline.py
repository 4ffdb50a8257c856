"""The pipeline factory: ``data.unit`` -> the pipeline that batches a corpus for a run.

The layers below it are listed in :mod:`mmer_jax.data`. Signals stay compact on the host (int16
audio, uint8 frames); features are computed on the device by
:func:`mmer_jax.data.device.make_feature_step` inside the jitted step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mmer_jax.data.base import UnitPipeline, data_config
from mmer_jax.data.dialogue import DialoguePipeline
from mmer_jax.data.sources import SPLITS, open_builder
from mmer_jax.data.utterance import Pipeline
from mmer_jax.errors import UsageError

__all__ = [
    "SPLITS",
    "DialoguePipeline",
    "Pipeline",
    "UnitPipeline",
    "make_pipeline",
    "open_builder",
]

PIPELINES: dict[str, type[UnitPipeline]] = {"utterance": Pipeline, "dialogue": DialoguePipeline}


def make_pipeline(
    data: Any,
    modalities: Sequence[str],
    seed: int,
    workdir: str | None = None,
    builder=None,
) -> UnitPipeline:
    """The pipeline for ``data.unit``.

    Args:
      data: the run's data section: a :class:`~mmer_jax.schema.DataConfig`, or a ConfigDict /
        mapping of it (converted strictly).
      modalities: which of "audio", "frames", "face", "text" and the pre-extracted streams
        "text_feat", "audio_feat", "vision_feat" (``batching.FEATURE_STREAMS``) batches carry.
      seed: the run's seed.
      workdir: the run directory (vocabulary, augmented-copy cache fallback).
      builder: an already opened TFDS builder; opened from ``data`` when None.

    Returns:
      A :class:`~mmer_jax.data.utterance.Pipeline` for "utterance" (batches [B, ...] of
      utterances) or a :class:`~mmer_jax.data.dialogue.DialoguePipeline` for "dialogue" (batches
      [B, U, ...] of whole dialogues).

    Raises:
      UsageError: an unknown ``data.unit`` or data key, a bad value, or a corpus that cannot be
        opened.
      RunError: a split is missing or empty.
    """
    data = data_config(data)
    cls = PIPELINES.get(data.unit)
    if cls is None:
        raise UsageError(
            f"config key 'data.unit' must be 'utterance' or 'dialogue', got {data.unit!r}"
        )
    return cls(data, modalities, seed, workdir, builder)
