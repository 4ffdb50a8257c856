"""Offline (build/cache-time) audio augmentations: pitch shift and time stretch.

They live in ``data_prep`` so builders can store augmented copies as a builder config without
importing ``mmer_jax`` (``mmer_jax.data.augment`` re-exports them).
"""

from data_prep._augment.offline import (
    OFFLINE_OPS,
    copy_name,
    pitch_shift,
    precompute_augmented_copies,
    time_stretch,
)

__all__ = ["OFFLINE_OPS", "copy_name", "pitch_shift", "precompute_augmented_copies", "time_stretch"]
