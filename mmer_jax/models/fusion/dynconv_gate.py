"""Dynamic-convolution fusion with a residual gate, after the "MI" model described in S000.

The per-modality feature vectors are treated as a short sequence over modalities, so the dynamic
convolution models interactions between neighbouring modalities, and a learned gate decides, per
channel, how much of that interaction to add back to each modality's own representation:

    x_m  = Dense_d^{(m)}(feats[m])                 one projection per modality, m in sorted order
    X    = stack_m x_m                              [B, M, d]
    C    = DynamicConv(X)                           [B, M, d]  (centered taps across modalities)
    G    = sigmoid(Dense_d([X; C]))                 [B, M, d]  gate from the input and the conv
    H    = X + G * C                                residual gating
    out  = mean_m H                                 [B, d]

Modalities are taken in the system's order (``order``; sorted names when empty), so the
sequence order never depends on how the feature dict was built. Every
example has every modality, so the sequence carries no mask.
"""

from __future__ import annotations

from typing import Optional

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.dynconv import DynamicConv
from mmer_jax.models.fusion.contract import fusion_order
from mmer_jax.registry import FUSIONS


@FUSIONS.register("dynconv_gate")
class DynConvGateFusion(nn.Module):
    """dict of [B, D_m] features -> [B, width].

    Attributes:
      width: common width d every modality is projected to (and the output width).
      num_heads: DynamicConv kernel heads; ``width`` must be divisible by it.
      kernel_size: DynamicConv taps across the modality axis.
      implementation: "xla" | "pallas" | "interpret" for the dynamic-conv op.
      order: the modality order (the system's, from its config; () = sorted names), see
        :mod:`mmer_jax.models.fusion.contract`.
    """

    width: int = 64
    num_heads: int = 4
    kernel_size: int = 3
    implementation: str = "xla"
    order: tuple[str, ...] = ()

    @nn.compact
    def __call__(self, feats: dict[str, jnp.ndarray], *, train: bool,
                 masks: Optional[dict[str, jnp.ndarray]] = None) -> jnp.ndarray:
        del masks  # vectors: no steps to mask
        names = fusion_order(feats, self.order, "dynconv_gate")
        x = jnp.stack([nn.Dense(self.width, name=f"proj_{m}")(feats[m]) for m in names], axis=1)
        c = DynamicConv(self.width, self.num_heads, self.kernel_size, "centered",
                        self.implementation, name="dynconv")(x)  # [B, M, d]
        g = nn.sigmoid(nn.Dense(self.width, name="gate")(jnp.concatenate([x, c], axis=-1)))
        h = x + g * c
        return h.mean(axis=1)
