"""Token-sequence encoders."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.layers import LSTM, masked_max, masked_mean
from mmer_jax.registry import ENCODERS


@ENCODERS.register("bilstm")
class BiLstmText(nn.Module):
    """Tokens [B, L] + mask -> [B, 4*hidden]: embedding, Bi-LSTM, masked mean and max pooling."""

    vocab_size: int
    embed_dim: int = 64
    hidden: int = 64
    dropout: float = 0.1

    @nn.compact
    def __call__(self, tokens: jnp.ndarray, mask: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        x = nn.Embed(self.vocab_size, self.embed_dim, name="embed")(tokens)  # [B, L, E]
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        h = LSTM(self.hidden, bidirectional=True, name="bilstm")(x, mask)  # [B, L, 2H]
        return jnp.concatenate([masked_mean(h, mask), masked_max(h, mask)], axis=-1)
