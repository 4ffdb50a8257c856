"""TF-free TFDS feature constructors (``tfds.features.Audio/Video/Image`` need TensorFlow)."""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds


def audio() -> tfds.features.Tensor:
    """Mono 16 kHz int16 waveform, zlib-compressed."""
    return tfds.features.Tensor(shape=(None,), dtype=np.int16, encoding="zlib")


def frames(h: int, w: int) -> tfds.features.Tensor:
    """uint8 RGB frames [T, h, w, 3], zlib-compressed."""
    return tfds.features.Tensor(shape=(None, h, w, 3), dtype=np.uint8, encoding="zlib")


def scalar(dtype=np.float32) -> tfds.features.Tensor:
    return tfds.features.Tensor(shape=(), dtype=dtype)
