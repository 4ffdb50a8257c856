"""S002's fusion: self-attention with a residual connection and LayerNorm, ``H = Norm(F + MHA(F))``.

A sequence fusion (``registry.SEQUENCE_FUSIONS``, see :mod:`mmer_jax.models.fusion.contract`): it
runs over the per-utterance context features of a dialogue, not over a dict of modality features
as the vector fusions (``concat``, ``tfn``, ...) do.

S002 applies this block to the Bi-LSTM context features of the utterances of a dialogue; padded
utterances are excluded as keys and their own rows are zeroed, so they can influence nothing.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.attention import MultiHeadAttention
from mmer_jax.registry import SEQUENCE_FUSIONS


@SEQUENCE_FUSIONS.register("attention_residual")
class AttentionResidual(nn.Module):
    """F [B, U, D] + mask [B, U] -> H [B, U, D].

    Attributes:
      num_heads: attention heads; D must be divisible by it.
      dropout: dropout on the attention output before the residual sum.
      implementation: of the attention op: "auto" | "xla" | "pallas" | "interpret"
        (``mmer_jax.models.ops.ATTENTION_IMPLEMENTATIONS``).
    """

    num_heads: int = 4
    dropout: float = 0.0
    implementation: str = "xla"
    attention_dropout: float | None = None  # on the merged heads; None: ``dropout``

    @nn.compact
    def __call__(self, f: jnp.ndarray, mask: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        a = MultiHeadAttention(
            self.num_heads,
            dropout=self.dropout if self.attention_dropout is None else self.attention_dropout,
            implementation=self.implementation,
            name="mha",
        )(f, q_mask=mask, kv_mask=mask, train=train)  # [B, U, D]
        a = nn.Dropout(self.dropout)(a, deterministic=not train)
        h = nn.LayerNorm(name="norm")(f + a)
        return jnp.where(mask[..., None], h, 0.0)
