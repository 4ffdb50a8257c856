"""A small 3-D CNN over short face/frame clips (S002's visual utterance encoder).

Conv3D -> ReLU -> max-pool blocks over (time, height, width), then a masked mean over the
remaining time steps, a spatial mean and a fully connected layer, as S002 describes. Padded frames
are zeroed before every convolution and excluded from every pooling window, so their content
cannot reach the output.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.encoders.conv1d_audio import downsample_mask
from mmer_jax.models.layers import masked_mean

_NEG = -1e9


@dataclasses.dataclass(frozen=True)
class Conv3DConfig:
    channels: Sequence[int] = (32, 64, 128)  # one conv + pool block per entry
    kernel: int = 3
    time_pool: int = 2  # pooling factor along time per block
    out: int = 256  # size of the clip feature


class Conv3DEncoder(nn.Module):
    """[N, T, H, W, C] clip + [N, T] frame mask -> [N, out] clip feature."""

    cfg: Conv3DConfig = Conv3DConfig()

    @nn.compact
    def __call__(self, x: jnp.ndarray, mask: jnp.ndarray, train: bool) -> jnp.ndarray:
        del train  # no dropout or normalisation inside; kept for a uniform encoder signature
        c = self.cfg
        bcast = lambda m: m[:, :, None, None, None]  # noqa: E731  [N, T] -> [N, T, 1, 1, 1]
        for i, ch in enumerate(c.channels):
            x = jnp.where(bcast(mask), x, 0.0)
            x = nn.relu(nn.Conv(ch, (c.kernel,) * 3, name=f"conv{i}")(x))  # [N, T, H, W, ch]
            x = jnp.where(bcast(mask), x, _NEG)
            window = (c.time_pool, 2, 2)
            x = nn.max_pool(x, window, window, padding="SAME")
            mask = downsample_mask(mask, c.time_pool, x.shape[1])
        x = jnp.where(bcast(mask), x, 0.0)
        x = masked_mean(jnp.mean(x, axis=(2, 3)), mask)  # [N, ch]
        return nn.relu(nn.Dense(c.out, name="fc")(x))
