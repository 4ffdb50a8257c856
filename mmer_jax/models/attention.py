"""Multi-head self/cross attention that routes the core op through ``mmer_kernels.attention``.

The projections live here; the softmax(QK^T)V step is the project's attention op, so one config
field (``implementation``, see :mod:`mmer_jax.models.ops`) switches a model between XLA, the Pallas
kernel and the Pallas interpreter.
"""

from __future__ import annotations

from typing import Optional

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.ops import ATTENTION_IMPLEMENTATIONS, lookup


class MultiHeadAttention(nn.Module):
    """Multi-head attention: project, attend through ``mmer_kernels.attention``, merge heads.

    Attributes:
      num_heads: number of heads; ``qkv_features`` must divide by it.
      qkv_features: total width of the q/k/v projections (defaults to the input width).
      out_features: output width (defaults to the input width).
      dropout: dropout on the merged heads (the attention op itself has no dropout).
      implementation: "auto" | "xla" | "pallas" | "cudnn" | "interpret"
        (``ops.ATTENTION_IMPLEMENTATIONS``).
    """

    num_heads: int
    qkv_features: Optional[int] = None
    out_features: Optional[int] = None
    dropout: float = 0.0
    implementation: str = "xla"

    @nn.compact
    def __call__(
        self,
        x_q: jnp.ndarray,
        x_kv: Optional[jnp.ndarray] = None,
        *,
        q_mask: Optional[jnp.ndarray] = None,
        kv_mask: Optional[jnp.ndarray] = None,
        causal: bool = False,
        train: bool = False,
    ) -> jnp.ndarray:
        """x_q [B, Lq, Din], x_kv [B, Lk, Din] (defaults to x_q) -> [B, Lq, Dout]."""
        if x_kv is None:
            x_kv, kv_mask = x_q, (q_mask if kv_mask is None else kv_mask)
        features = self.qkv_features or x_q.shape[-1]
        if features % self.num_heads:
            raise ValueError(f"qkv_features={features} not divisible by {self.num_heads=}")
        head_dim = features // self.num_heads
        proj = lambda name: nn.DenseGeneral((self.num_heads, head_dim), name=name)  # noqa: E731
        q = proj("query")(x_q)  # [B, Lq, H, Dh]
        k = proj("key")(x_kv)  # [B, Lk, H, Dh]
        v = proj("value")(x_kv)  # [B, Lk, H, Dh]
        o = lookup(ATTENTION_IMPLEMENTATIONS, self.implementation)(
            q, k, v, q_mask=q_mask, kv_mask=kv_mask, bias=None, causal=causal
        )  # [B, Lq, H, Dh]
        o = nn.Dropout(self.dropout)(o, deterministic=not train)
        return nn.DenseGeneral(self.out_features or x_q.shape[-1], axis=(-2, -1), name="out")(o)
