"""Fusion layers; importing this package registers them in ``registry.FUSIONS``.

``concat``, ``dynconv_gate``, ``tfn``, ``lmf``, ``mult``, ``late``, ``bridge`` and ``bilinear``
take a dict of per-modality features [B, D_m] and return [B, D] (``mult``, ``bridge`` and
``bilinear`` also take sequences [B, T_m, D_m] with masks); ``attention_residual`` (S002's) takes
a sequence of utterance features [B, U, D] and its mask. ``bridge`` and ``bilinear`` are MGMNet's
(S000 §3.3) fine- and coarse-grained fusions.
"""

from mmer_jax.models.fusion import (  # noqa: F401
    attention_residual,
    bilinear,
    bridge,
    concat,
    dynconv_gate,
    late,
    lmf,
    mult,
    tfn,
)
