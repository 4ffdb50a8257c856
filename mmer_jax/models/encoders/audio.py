"""Audio encoders over log-mel / MFCC features [B, T, F]."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.encoders.resnet import ResNet, ResNetConfig
from mmer_jax.models.layers import masked_mean
from mmer_jax.registry import ENCODERS


def downsample_mask(mask: jnp.ndarray, new_len: int) -> jnp.ndarray:
    """[B, T] -> [B, new_len]: a pooled step is valid if any step it covers is valid."""
    b, t = mask.shape
    stride = -(-t // new_len)
    padded = jnp.pad(mask, ((0, 0), (0, new_len * stride - t)))
    return padded.reshape(b, new_len, stride).any(-1)


@ENCODERS.register("resnet2d")
class ResNet2DAudio(nn.Module):
    """Treats [T, F] features as a one-channel image; masked mean over time of the last stage.

    Padded frames are zeroed before the first convolution so their values cannot leak in.
    """

    depth: str | tuple[int, ...] = "resnet18"
    width: int = 64
    norm: str = "batch"
    stem_stride: int = 2
    stem_pool: bool = True
    out_dim: int = 0  # 0 keeps the last stage's width

    @nn.compact
    def __call__(self, x: jnp.ndarray, mask: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        x = jnp.where(mask[..., None], x, 0.0)[..., None]  # [B, T, F, 1]
        cfg = ResNetConfig(
            self.depth,
            self.width,
            self.norm,
            self.stem_stride,
            self.stem_pool,
        )
        y = ResNet(cfg, name="resnet")(x, train)  # [B, T', F', C]
        y = y.mean(axis=2)  # [B, T', C]
        feats = masked_mean(y, downsample_mask(mask, y.shape[1]))
        if self.out_dim:
            feats = nn.Dense(self.out_dim)(feats)
        return feats
