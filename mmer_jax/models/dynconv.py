"""Dynamic convolution layer (Wu et al. 2019); the core op runs in ``mmer_kernels.dynamic_conv``.

The layer predicts one softmax-normalised kernel of ``kernel_size`` taps per position and head
from the input at that position, convolves the (masked) sequence with it, and projects the result.
The convolution itself is ``mmer_kernels.dynamic_conv.dynamic_conv`` (softmax over the taps
fused in); one field, ``implementation``, switches it between XLA, the Pallas kernel and the Pallas
interpreter, as it does for :class:`mmer_jax.models.attention.MultiHeadAttention`
(:mod:`mmer_jax.models.ops`).

    logits[b, t]  = Dense_{H*K}(x[b, t])                       -> [B, T, H, K]
    conv[b, t, c] = sum_k softmax_k(logits[b, t, h(c)])[k] * x[b, t - P + k, c]
    y[b, t]       = Dense_out(conv[b, t]),  zero where mask is False

Padded positions (mask False) are zeroed before the convolution and in the output, so their
values cannot reach a valid position.
"""

from __future__ import annotations

from typing import Optional

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.ops import DYNAMIC_CONV_IMPLEMENTATIONS, lookup


class DynamicConv(nn.Module):
    """x [B, T, C] (+ mask [B, T]) -> [B, T, features].

    Attributes:
      features: output width (defaults to the input width C).
      num_heads: kernel heads; C must be divisible by it (each head's C/H channels share a kernel).
      kernel_size: taps K of the per-position kernel.
      padding: "centered" (taps t-(K-1)//2 .. t+K//2) or "causal" (taps t-K+1 .. t).
      implementation: "auto" | "xla" | "pallas" | "interpret"
        (``ops.DYNAMIC_CONV_IMPLEMENTATIONS``).
    """

    features: Optional[int] = None
    num_heads: int = 1
    kernel_size: int = 3
    padding: str = "centered"
    implementation: str = "xla"

    @nn.compact
    def __call__(self, x: jnp.ndarray, mask: Optional[jnp.ndarray] = None) -> jnp.ndarray:
        b, t, c = x.shape
        if c % self.num_heads:
            raise ValueError(f"input width {c} not divisible by num_heads={self.num_heads}")
        # Looked up before any parameter is created, so a bad name fails first.
        op = lookup(DYNAMIC_CONV_IMPLEMENTATIONS, self.implementation)
        if mask is not None:
            x = jnp.where(mask[..., None], x, 0.0)
        logits = nn.Dense(self.num_heads * self.kernel_size, name="weight")(x)
        logits = logits.reshape(b, t, self.num_heads, self.kernel_size)  # [B, T, H, K]
        y = op(x, logits, mask=mask, padding=self.padding)  # [B, T, C], zero where mask False
        y = nn.Dense(self.features or c, name="out")(y)
        if mask is not None:
            y = jnp.where(mask[..., None], y, 0.0)  # the output bias must not revive padding
        return y
