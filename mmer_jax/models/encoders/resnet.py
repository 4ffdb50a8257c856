"""2-D ResNets (basic blocks) for spectrograms and images, with configurable depth and width.

``depth="resnet18"`` is stages of (2, 2, 2, 2) basic blocks and ``"resnet34"`` (3, 4, 6, 3)
(He et al. 2016); the quickstart uses a two-stage, narrow variant, ``depth=(1, 1)``.
Normalisation is BatchNorm by default (the papers' choice) or GroupNorm, which keeps no running
statistics and so needs no ``batch_stats``.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax.numpy as jnp

STAGES = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3), "resnet10": (1, 1, 1, 1)}


@dataclasses.dataclass(frozen=True)
class ResNetConfig:
    """A ResNet's shape; a ``model`` config section such as ``model.audio`` maps onto it.

    Raises:
      ValueError: ``depth`` names no entry of ``STAGES`` or ``norm`` is unknown.
    """

    depth: str | tuple[int, ...] = "resnet18"  # a name in STAGES, or blocks per stage
    width: int = 64  # channels of the first stage; doubled at each later stage
    norm: str = "batch"  # "batch" | "group"
    stem_stride: int = 2  # 1 for small inputs (32x32 frames, short spectrograms)
    stem_pool: bool = True

    def __post_init__(self):
        if isinstance(self.depth, str) and self.depth not in STAGES:
            raise ValueError(f"depth={self.depth!r} must be one of {sorted(STAGES)} or a tuple")
        if self.norm not in ("batch", "group"):
            raise ValueError(f"norm={self.norm!r} must be 'batch' or 'group'")

    @property
    def stage_sizes(self) -> tuple[int, ...]:
        """Basic blocks per stage."""
        return STAGES[self.depth] if isinstance(self.depth, str) else tuple(self.depth)

    def time_stride(self) -> int:
        """Total downsampling along one spatial axis (stem, stem pool, strided stages)."""
        return self.stem_stride * (2 if self.stem_pool else 1) * 2 ** (len(self.stage_sizes) - 1)


def _norm(kind: str, train: bool, name: str):
    if kind == "batch":
        return nn.BatchNorm(use_running_average=not train, momentum=0.9, name=name)
    if kind == "group":
        return nn.GroupNorm(num_groups=None, group_size=8, name=name)
    raise ValueError(f"ResNetConfig.norm={kind!r} must be 'batch' or 'group'")


class BasicBlock(nn.Module):
    channels: int
    stride: int
    norm: str

    @nn.compact
    def __call__(self, x, train: bool):
        y = nn.Conv(self.channels, (3, 3), (self.stride, self.stride), use_bias=False)(x)
        y = nn.relu(_norm(self.norm, train, "n1")(y))
        y = nn.Conv(self.channels, (3, 3), use_bias=False)(y)
        y = _norm(self.norm, train, "n2")(y)
        if x.shape[-1] != self.channels or self.stride != 1:
            x = nn.Conv(self.channels, (1, 1), (self.stride, self.stride), use_bias=False)(x)
            x = _norm(self.norm, train, "n_proj")(x)
        return nn.relu(x + y)


class ResNet(nn.Module):
    """[N, H, W, C] -> feature maps [N, H', W', C'] (pooling is left to the caller)."""

    cfg: ResNetConfig

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        c = self.cfg
        s = c.stem_stride
        x = nn.Conv(c.width, (7, 7) if s > 1 else (3, 3), (s, s), use_bias=False, name="stem")(x)
        x = nn.relu(_norm(c.norm, train, "stem_norm")(x))
        if c.stem_pool:
            x = nn.max_pool(x, (3, 3), (2, 2), padding="SAME")
        for i, n_blocks in enumerate(c.stage_sizes):
            for j in range(n_blocks):
                stride = 2 if (i > 0 and j == 0) else 1
                x = BasicBlock(c.width * 2**i, stride, c.norm, name=f"stage{i}_block{j}")(x, train)
        return x
