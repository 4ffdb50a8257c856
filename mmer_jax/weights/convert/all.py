"""Imports every converter module (each registers itself in ``CONVERTERS``)."""

from mmer_jax.weights.convert import bert, vision, wav2vec2, whisper  # noqa: F401
