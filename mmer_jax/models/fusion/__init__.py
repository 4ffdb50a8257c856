"""Fusion layers: take a dict of per-modality features, return one vector per example."""

from mmer_jax.models.fusion import (
    concat,  # noqa: F401
    dynconv_gate,  # noqa: F401
)
