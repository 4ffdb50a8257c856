"""Stacked Bi-LSTM + linear layers + attention pooling (S002's audio utterance encoder).

S002 describes its audio encoder as a four-layer Bi-LSTM followed by four linear layers, with an
attention score per step and a weighted average as the utterance vector. The paper feeds raw
waveform; here the input is the contract's frame-level features [N, T, F].
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.layers import LSTM, AttentionPool


@dataclasses.dataclass(frozen=True)
class BiLSTMAttnConfig:
    hidden: int = 128  # per direction
    num_layers: int = 4
    linear: Sequence[int] = (256, 256, 256, 256)
    attn_hidden: int = 128


class BiLSTMAttnEncoder(nn.Module):
    """[N, T, F] + [N, T] mask -> [N, linear[-1]] (zeros for an all-padding row)."""

    cfg: BiLSTMAttnConfig = BiLSTMAttnConfig()

    @nn.compact
    def __call__(self, x: jnp.ndarray, mask: jnp.ndarray, train: bool) -> jnp.ndarray:
        del train
        c = self.cfg
        h = LSTM(c.hidden, bidirectional=True, num_layers=c.num_layers, name="bilstm")(x, mask)
        for i, width in enumerate(c.linear):
            h = nn.relu(nn.Dense(width, name=f"linear{i}")(h))  # [N, T, width]
        return AttentionPool(c.attn_hidden, name="pool")(h, mask)
