"""Imports every converter module (each registers itself in ``CONVERTERS``)."""

from mmer_jax.weights.convert import whisper  # noqa: F401
