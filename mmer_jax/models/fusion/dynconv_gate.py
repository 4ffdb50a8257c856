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

Modalities are ordered by name (``ordered``: in the dict's order, as S001/S003 pass them) so
parameter shapes and the sequence order are stable. Every
example has every modality, so the sequence carries no mask.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.dynconv import DynamicConv
from mmer_jax.registry import FUSIONS


@FUSIONS.register("dynconv_gate")
class DynConvGateFusion(nn.Module):
    """dict of [B, D_m] features -> [B, width].

    Attributes:
      width: common width d every modality is projected to (and the output width).
      num_heads: DynamicConv kernel heads; ``width`` must be divisible by it.
      kernel_size: DynamicConv taps across the modality axis.
      implementation: "xla" | "pallas" | "interpret" for the dynamic-conv op.
      ordered: modality (sequence) order: the dict's (True, as S001/S003 pass) or sorted names.
    """

    width: int = 64
    num_heads: int = 4
    kernel_size: int = 3
    implementation: str = "xla"
    ordered: bool = False

    @nn.compact
    def __call__(self, feats: dict[str, jnp.ndarray], *, train: bool) -> jnp.ndarray:
        names = list(feats) if self.ordered else sorted(feats)
        x = jnp.stack([nn.Dense(self.width, name=f"proj_{m}")(feats[m]) for m in names], axis=1)
        c = DynamicConv(self.width, self.num_heads, self.kernel_size, "centered",
                        self.implementation, name="dynconv")(x)  # [B, M, d]
        g = nn.sigmoid(nn.Dense(self.width, name="gate")(jnp.concatenate([x, c], axis=-1)))
        h = x + g * c
        return h.mean(axis=1)
