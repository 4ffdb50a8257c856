"""CRNN-MA: a convolutional-recurrent speech encoder with multiple attention mechanisms.

Source: the survey S000 §2.3 (``shared/papers/S000_*``; P. Jiang et al.'s CRNN-MA): "multiple
self-attention layers are used in the CNN module to obtain rich emotional information by
calculating the weights of different frames. Then, a multi-dimensional attention layer is added
as input to the LSTM module, taking into account the feature and frame dimensions. Finally, a
fusion layer is added to connect the two modules." The survey gives no sizes; the defaults are
small and ours.

Two branches over the same spectral features [B, T, F], in parallel:

* CNN: 2-D convolution blocks (conv 3 x 3 -> BatchNorm over valid frames -> ReLU -> max-pool over
  frequency, and over time every ``time_pool`` blocks), the frequency x channel values of each
  frame projected to ``cnn_dim``, then ``num_self_attention`` masked multi-head self-attention
  layers over frames (residual + LayerNorm), then additive attention pooling over valid frames
  (the frame weights) -> [B, cnn_dim].
* LSTM + multi-dimensional attention: a score per (frame, feature), a softmax over the valid
  frames separately for every feature, so each feature gets its own frame weights. The survey's
  sentence ("added as input to the LSTM") and the issue ("an LSTM with a ... attention layer")
  read both ways, so ``md_attention`` chooses: ``"after"`` (default) pools the LSTM's outputs
  [B, T, H] with the feature x frame weights -> [B, H]; ``"before"`` re-weights the input frames
  feature by feature (weights x number of valid frames, so a uniform map is the identity) and the
  LSTM's last valid state is the branch output.
* Fusion layer: the two vectors concatenated -> Dense(``fusion_dim``) -> ReLU -> dropout.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.attention import MultiHeadAttention
from mmer_jax.models.encoders.conv1d_audio import downsample_mask
from mmer_jax.models.layers import LSTM, AttentionPool, last_valid
from mmer_jax.registry import ENCODERS

_NEG = -1e9


def multidim_attention_weights(scores: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
    """Feature x frame attention: scores [B, T, D] -> weights [B, T, D], a softmax over the valid
    frames (mask [B, T] bool) for every feature separately; 0 on padded frames, and 0 everywhere
    in a row without a valid frame."""
    s = jnp.where(mask[..., None], scores.astype(jnp.float32), _NEG)
    w = jnp.exp(s - jnp.max(s, axis=1, keepdims=True)) * mask[..., None]
    return w / jnp.maximum(jnp.sum(w, axis=1, keepdims=True), 1e-9)


class MultiDimAttention(nn.Module):
    """Scores s = W2 tanh(W1 x) of width D = x's width, one per (frame, feature); returns the
    weights of :func:`multidim_attention_weights`, [B, T, D]."""

    hidden: int = 64

    @nn.compact
    def __call__(self, x: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
        s = nn.Dense(x.shape[-1], name="score")(jnp.tanh(nn.Dense(self.hidden, name="proj")(x)))
        return multidim_attention_weights(s, mask).astype(x.dtype)


@dataclasses.dataclass(frozen=True)
class CRNNMAConfig:
    """Sizes of :class:`CRNNMA` (the survey gives none; these are small defaults)."""

    channels: Sequence[int] = (32, 64)  # one conv block per entry
    kernel: int = 3
    freq_pool: int = 2  # max-pool over frequency in every block
    time_pool: int = 2  # max-pool over time in every block (1: keep every frame)
    cnn_dim: int = 128  # frame width after the CNN's projection (self-attention width)
    num_self_attention: int = 2
    num_heads: int = 4
    attn_pool_hidden: int = 64
    lstm_hidden: int = 128
    md_attention: str = "after"  # "after": pools the LSTM outputs; "before": weights its input
    md_hidden: int = 64
    fusion_dim: int = 128
    dropout: float = 0.3
    implementation: str = "xla"  # the attention op (mmer_jax.models.ops)

    def __post_init__(self):
        if self.md_attention not in ("after", "before"):
            raise ValueError(f"md_attention={self.md_attention!r} must be 'after' or 'before'")
        if self.cnn_dim % self.num_heads:
            raise ValueError(f"cnn_dim={self.cnn_dim} must divide by num_heads={self.num_heads}")
        for name in ("kernel", "freq_pool", "time_pool", "cnn_dim", "num_heads", "lstm_hidden",
                     "md_hidden", "fusion_dim", "attn_pool_hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if not self.channels:
            raise ValueError("channels must name at least one conv block")


@ENCODERS.register("crnn_ma")
class CRNNMA(nn.Module):
    """CRNN-MA: features [B, T, F] float + mask [B, T] bool -> [B, fusion_dim] (module docstring).

    Every attention and pooling step sees valid frames only, and padded frames are zeroed before
    each convolution, so padding cannot change the output.
    """

    cfg: CRNNMAConfig = CRNNMAConfig()

    @nn.compact
    def __call__(self, x: jnp.ndarray, mask: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        c = self.cfg
        x = jnp.where(mask[..., None], x, 0.0)
        cnn = self._cnn_branch(x, mask, train)  # [B, cnn_dim]
        rnn = self._lstm_branch(x, mask)  # [B, lstm_hidden]
        z = nn.relu(nn.Dense(c.fusion_dim, name="fusion")(jnp.concatenate([cnn, rnn], -1)))
        return nn.Dropout(c.dropout)(z, deterministic=not train)

    def _cnn_branch(self, x, mask, train):
        c = self.cfg
        y = x[..., None]  # [B, T, F, 1]
        m = mask
        for i, ch in enumerate(c.channels):
            y = jnp.where(m[:, :, None, None], y, 0.0)
            y = nn.Conv(ch, (c.kernel, c.kernel), use_bias=False, name=f"conv{i}")(y)
            y = nn.BatchNorm(use_running_average=not train, momentum=0.9, name=f"bn{i}")(
                y, mask=jnp.broadcast_to(m[:, :, None, None], y.shape)
            )
            y = nn.relu(y)
            y = jnp.where(m[:, :, None, None], y, _NEG)
            y = nn.max_pool(y, (c.time_pool, c.freq_pool), (c.time_pool, c.freq_pool),
                            padding="SAME")
            m = downsample_mask(m, c.time_pool, y.shape[1])
        y = jnp.where(m[:, :, None, None], y, 0.0)
        h = nn.Dense(c.cnn_dim, name="frame_proj")(y.reshape(y.shape[0], y.shape[1], -1))
        for i in range(c.num_self_attention):
            a = MultiHeadAttention(c.num_heads, implementation=c.implementation,
                                   name=f"self_attn{i}")(h, q_mask=m, kv_mask=m, train=train)
            h = nn.LayerNorm(name=f"norm{i}")(h + nn.Dropout(c.dropout)(a, deterministic=not train))
            h = jnp.where(m[..., None], h, 0.0)
        return AttentionPool(c.attn_pool_hidden, name="frame_pool")(h, m)

    def _lstm_branch(self, x, mask):
        c = self.cfg
        if c.md_attention == "before":
            w = MultiDimAttention(c.md_hidden, name="md_attention")(x, mask)  # [B, T, F]
            n = jnp.sum(mask, axis=1, keepdims=True)[..., None].astype(x.dtype)  # [B, 1, 1]
            h = LSTM(c.lstm_hidden, name="lstm")(x * w * n, mask)
            return last_valid(h, mask)
        h = LSTM(c.lstm_hidden, name="lstm")(x, mask)  # [B, T, H]
        w = MultiDimAttention(c.md_hidden, name="md_attention")(h, mask)
        return jnp.sum(w * h, axis=1)
