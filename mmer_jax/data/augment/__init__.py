"""Augmentation, online and offline, owned by one package.

* :mod:`~mmer_jax.data.augment.online`: per-step ops on host examples (``data.augment``,
  registry :data:`AUGMENTATIONS`) and their on-device variants.
* :mod:`~mmer_jax.data.augment.offline`: pitch shift / time stretch, too slow per step, applied
  once to make copies (``data.offline_augment``, registry :data:`OFFLINE_AUGMENTATIONS`).
* :mod:`~mmer_jax.data.augment.cache`: those copies cached beside the prepared dataset and joined
  to the training split.
"""

from mmer_jax.data.augment.cache import (
    AugmentedTrainSource,
    cache_dir_for,
    load_or_make_copies,
)
from mmer_jax.data.augment.offline import (
    OFFLINE_AUGMENTATIONS,
    copy_name,
    parse_ops,
    pitch_shift,
    precompute_augmented_copies,
    time_stretch,
)
from mmer_jax.data.augment.online import (
    AUGMENTATIONS,
    Example,
    Op,
    additive_noise,
    additive_noise_jax,
    compose,
    random_crop_frames,
    random_crop_images,
    spec_augment,
    spec_augment_jax,
)

__all__ = [
    "AUGMENTATIONS",
    "OFFLINE_AUGMENTATIONS",
    "AugmentedTrainSource",
    "Example",
    "Op",
    "additive_noise",
    "additive_noise_jax",
    "cache_dir_for",
    "compose",
    "copy_name",
    "load_or_make_copies",
    "parse_ops",
    "pitch_shift",
    "precompute_augmented_copies",
    "random_crop_frames",
    "random_crop_images",
    "spec_augment",
    "spec_augment_jax",
    "time_stretch",
]
