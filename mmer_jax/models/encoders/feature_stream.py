"""An encoder of pre-extracted feature sequences (the CMU-MOSI / CMU-MOSEI ``*_feat`` streams).

The MOSI/MOSEI pickles give every modality as a [T, D] float matrix (GloVe or BERT vectors for
text, COVAREP for audio, Facet or OpenFace for vision), so one small sequence encoder serves all
three: a per-step LayerNorm (the streams' features differ in scale by orders of magnitude), a
linear projection, a (Bi)LSTM that stops at each row's length, masked mean and max pooling.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.layers import LSTM, masked_max, masked_mean
from mmer_jax.registry import ENCODERS


@ENCODERS.register("feature_lstm")
class FeatureLSTM(nn.Module):
    """Feature sequence x [B, T, D] float + mask [B, T] bool -> [B, 2 * H * (2 if bidirectional
    else 1)] (masked mean and max of the LSTM states).

    Padded steps cannot change the output: they are zeroed before the LSTM, which stops at each
    row's length, and the pooling counts valid steps only. A row without a valid step pools to
    zeros.

    Attributes:
      hidden: LSTM units per direction (H).
      proj: width of the Dense projection before the LSTM; 0 feeds the normalised input directly.
      bidirectional: a BiLSTM (the default) or a forward LSTM.
      dropout: dropout rate on the projected steps (training only; rng stream ``"dropout"``).
      input_norm: a LayerNorm over D at every step before the projection.
    """

    hidden: int = 32
    proj: int = 32
    bidirectional: bool = True
    dropout: float = 0.1
    input_norm: bool = True

    @nn.compact
    def __call__(self, x: jnp.ndarray, mask: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        x = jnp.where(mask[..., None], x, 0.0)  # [B, T, D]
        if self.input_norm:
            x = nn.LayerNorm(name="norm")(x)
        if self.proj:
            # Linear, as MulT's temporal projections: a ReLU here can zero every input of a
            # short sequence, and an LSTM fed only zeros outputs zeros.
            x = nn.Dense(self.proj, name="proj")(x)  # [B, T, P]
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        h = LSTM(self.hidden, bidirectional=self.bidirectional, name="lstm")(x, mask)  # [B, T, H']
        return jnp.concatenate([masked_mean(h, mask), masked_max(h, mask)], axis=-1)
