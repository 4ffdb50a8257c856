"""1-D CNN over frame-level audio features (the audio branch of S003).

Blocks of conv -> BatchNorm -> ELU -> max-pool along time, after Zhao et al. (2019)'s 1-D CNN-LSTM,
which S003 cites for its audio stream. The time mask is pooled together with the features so the
caller can run a length-aware LSTM over the shortened sequence.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence, Tuple

import flax.linen as nn
import jax.numpy as jnp

_NEG = -1e9  # fills padded steps before a max-pool so a window's maximum comes from valid steps


def downsample_mask(mask: jnp.ndarray, factor: int, out_len: int | None = None) -> jnp.ndarray:
    """Pools a [B, T] bool mask by ``factor`` along time: a step is valid if any input step was.

    This matches "SAME" pooling / strided convolution with stride ``factor``, whose output length
    is ceil(T / factor); ``out_len`` truncates or pads (with False) to a layer's actual length.
    """
    b, t = mask.shape
    n = -(-t // factor)
    m = jnp.pad(mask, ((0, 0), (0, n * factor - t)))
    m = jnp.any(m.reshape(b, n, factor), axis=-1)  # [B, ceil(T / factor)]
    if out_len is not None:
        m = m[:, :out_len] if out_len <= n else jnp.pad(m, ((0, 0), (0, out_len - n)))
    return m


@dataclasses.dataclass(frozen=True)
class Conv1DAudioConfig:
    channels: Sequence[int] = (64, 64, 128, 128)  # one block per entry
    kernel: int = 3
    pool: int = 2  # time pooling per block (1 disables it)


class Conv1DAudio(nn.Module):
    """[B, T, F] features + [B, T] mask -> ([B, T', C] features, [B, T'] mask)."""

    cfg: Conv1DAudioConfig = Conv1DAudioConfig()

    @nn.compact
    def __call__(
        self, x: jnp.ndarray, mask: jnp.ndarray, train: bool
    ) -> Tuple[jnp.ndarray, jnp.ndarray]:
        c = self.cfg
        for i, ch in enumerate(c.channels):
            x = jnp.where(mask[..., None], x, 0.0)  # padded steps must not reach valid outputs
            x = nn.Conv(ch, (c.kernel,), use_bias=False, name=f"conv{i}")(x)
            # Statistics over valid steps only, so batches with more padding are not biased.
            x = nn.BatchNorm(use_running_average=not train, momentum=0.9, name=f"bn{i}")(
                x, mask=mask[..., None]
            )
            x = nn.elu(x)  # [B, T, ch]
            if c.pool > 1:
                x = jnp.where(mask[..., None], x, _NEG)
                x = nn.max_pool(x, (c.pool,), (c.pool,), padding="SAME")
                mask = downsample_mask(mask, c.pool, x.shape[1])
            x = jnp.where(mask[..., None], x, 0.0)
        return x, mask
