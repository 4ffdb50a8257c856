"""Fusion layers; importing this package registers them in ``registry.FUSIONS``.

``concat`` and ``dynconv_gate`` take a dict of per-modality features [B, D_m] and return [B, D];
``attention_residual`` (S002's) takes a sequence of utterance features [B, U, D] and its mask.
"""

from mmer_jax.models.fusion import (  # noqa: F401
    attention_residual,
    concat,
    dynconv_gate,
)
