"""Fusion layers; importing this package registers them, one registry per kind
(:mod:`mmer_jax.models.fusion.contract` states both contracts):

- vector fusions, ``registry.FUSIONS``: ``concat``, ``dynconv_gate``, ``tfn``, ``lmf``, ``mult``,
  ``late``, ``bridge`` and ``bilinear`` take per-modality features [B, D_m] in the system's
  modality order (``order``) and return [B, D] (``mult``, ``bridge`` and ``bilinear`` also take
  sequences [B, T_m, D_m] with masks);
- sequence fusions, ``registry.SEQUENCE_FUSIONS``: ``attention_residual`` (S002's) takes a
  sequence of utterance features [B, U, D] and its mask.

``bridge`` and ``bilinear`` are MGMNet's (S000 §3.3) fine- and coarse-grained fusions.
"""

from mmer_jax.models.fusion import (  # noqa: F401
    attention_residual,
    bilinear,
    bridge,
    concat,
    contract,
    dynconv_gate,
    late,
    lmf,
    mult,
    tfn,
)
