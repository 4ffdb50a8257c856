"""Word-level text CNN utterance encoder (Kim 2014), as used by bc-LSTM, CMN and DialogueRNN.

Trainable embeddings -> parallel 1-D convolutions of several widths -> ReLU -> max over the valid
words -> concatenation -> dropout -> a fully connected layer. "SAME" padding keeps utterances
shorter than the widest filter usable; padded words are zeroed before the convolutions and
excluded from the max, so their token ids cannot change the result.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.layers import masked_max


@dataclasses.dataclass(frozen=True)
class TextCNNConfig:
    vocab_size: int
    embed_dim: int = 300
    widths: Sequence[int] = (3, 4, 5)
    filters: int = 50  # per width
    out: int = 100
    dropout: float = 0.5


class TextCNN(nn.Module):
    """tokens [N, L] int32 + mask [N, L] -> [N, out]."""

    cfg: TextCNNConfig

    @nn.compact
    def __call__(self, tokens: jnp.ndarray, mask: jnp.ndarray, train: bool) -> jnp.ndarray:
        c = self.cfg
        tokens = jnp.where(mask, tokens, 0)  # out-of-range ids in padding would embed as NaN
        e = nn.Embed(c.vocab_size, c.embed_dim, name="embed")(tokens)  # [N, L, E]
        e = jnp.where(mask[..., None], e, 0.0)
        pooled = []
        for w in c.widths:
            h = nn.relu(nn.Conv(c.filters, (w,), name=f"conv{w}")(e))  # [N, L, filters]
            pooled.append(masked_max(h, mask))  # [N, filters]
        h = nn.Dropout(c.dropout)(jnp.concatenate(pooled, axis=-1), deterministic=not train)
        return nn.relu(nn.Dense(c.out, name="fc")(h))
