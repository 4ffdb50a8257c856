"""Fusion layers; importing this package registers them in ``registry.FUSIONS``.

``concat``, ``dynconv_gate``, ``tfn``, ``lmf``, ``mult`` and ``late`` take a dict of per-modality
features [B, D_m] and return [B, D] (``mult`` also takes sequences [B, T_m, D_m] with masks);
``attention_residual`` (S002's) takes a sequence of utterance features [B, U, D] and its mask.
"""

from mmer_jax.models.fusion import (  # noqa: F401
    attention_residual,
    concat,
    dynconv_gate,
    late,
    lmf,
    mult,
    tfn,
)
