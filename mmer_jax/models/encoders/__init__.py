"""Per-modality encoders; importing this package registers them in ``registry.ENCODERS``."""

from mmer_jax.models.encoders import audio, text, vision  # noqa: F401
