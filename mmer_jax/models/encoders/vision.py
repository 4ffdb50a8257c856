"""Frame-sequence encoders: a CNN per frame, then a recurrent layer over time."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.layers import LSTM, last_valid, masked_mean
from mmer_jax.registry import ENCODERS


class FrameCNN(nn.Module):
    """[N, H, W, C] -> [N, D]: strided conv blocks, then pooling.

    ``pool="flatten"`` keeps where a feature is (a mouth corner below, a brow above), which
    global averaging throws away; for small face crops that position is the expression.
    """

    widths: tuple = (16, 32, 64)
    pool: str = "flatten"  # flatten | mean
    out_dim: int = 128

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        for i, w in enumerate(self.widths):
            x = nn.Conv(w, (3, 3), strides=(2, 2), name=f"conv{i}")(x)
            x = nn.relu(nn.GroupNorm(num_groups=None, group_size=min(8, w), name=f"gn{i}")(x))
        if self.pool == "mean":
            return x.mean(axis=(1, 2))
        return nn.relu(nn.Dense(self.out_dim, name="proj")(x.reshape(x.shape[0], -1)))


@ENCODERS.register("cnn_lstm")
class CnnLstmVideo(nn.Module):
    """Frames [B, T, H, W, C] + mask [B, T] -> [B, hidden]: shared per-frame CNN, masked LSTM."""

    widths: tuple = (16, 32, 64)
    hidden: int = 64
    pool: str = "flatten"
    frame_dim: int = 128

    @nn.compact
    def __call__(self, frames: jnp.ndarray, mask: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        b, t = frames.shape[:2]
        per_frame = FrameCNN(tuple(self.widths), self.pool, self.frame_dim, name="cnn")(
            frames.reshape((b * t,) + frames.shape[2:])
        )
        seq = per_frame.reshape(b, t, -1)  # [B, T, D]
        seq = jnp.where(mask[..., None], seq, 0.0)
        h = LSTM(self.hidden, name="lstm")(seq, mask)  # [B, T, H]
        # The temporal mean of frame features is a short gradient path to the CNN; the LSTM's
        # last state adds the dynamics (how the expression evolves).
        return jnp.concatenate([last_valid(h, mask), masked_mean(seq, mask)], axis=-1)
