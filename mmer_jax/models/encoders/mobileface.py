"""A shallow MobileFaceNet-style image encoder (S003's per-frame CNN).

MobileFaceNet (Chen et al. 2018) stacks a strided stem, a depthwise conv and inverted-residual
bottlenecks (1x1 expand -> 3x3 depthwise -> 1x1 linear projection) with PReLU. Its final
global depthwise conv assumes a fixed 7x7 map; here global average pooling takes its place so any
frame size works. Depth and width are config fields; the defaults are deliberately small.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence, Tuple

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.ops import DEPTHWISE_IMPLEMENTATIONS, lookup


@dataclasses.dataclass(frozen=True)
class MobileFaceConfig:
    width: int = 32  # stem channels
    blocks: Sequence[Tuple[int, int]] = ((32, 2), (64, 2), (64, 1), (128, 2), (128, 1))
    expansion: int = 2  # bottleneck expansion factor
    last: int = 256  # channels of the final 1x1 conv before pooling
    embed: int = 128  # output feature size
    # The depthwise convolution's implementation (mmer_jax.models.ops.DEPTHWISE_IMPLEMENTATIONS):
    # "shifted" (k*k multiply-adds, fast on CPU) or "grouped"; same parameters, same outputs.
    implementation: str = "shifted"

    def __post_init__(self):
        lookup(DEPTHWISE_IMPLEMENTATIONS, self.implementation)


class _ConvBN(nn.Module):
    channels: int
    kernel: int = 1
    stride: int = 1
    depthwise: bool = False
    act: bool = True
    implementation: str = "shifted"  # of the depthwise convolution

    @nn.compact
    def __call__(self, x, train: bool, mask: Optional[jnp.ndarray]):
        if self.depthwise and self.channels != x.shape[-1]:
            raise ValueError(f"depthwise conv keeps {x.shape[-1]} channels, asked {self.channels}")
        if self.depthwise:
            make = lookup(DEPTHWISE_IMPLEMENTATIONS, self.implementation)
            x = make(self.channels, self.kernel, self.stride)(x)
        else:
            x = nn.Conv(
                self.channels,
                (self.kernel, self.kernel),
                (self.stride, self.stride),
                use_bias=False,
            )(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x, mask=mask)
        return nn.PReLU(negative_slope_init=0.25)(x) if self.act else x


class MobileFace(nn.Module):
    """[N, H, W, 3] images -> [N, embed] features.

    ``mask`` [N] marks real images (False for padded frames) so that BatchNorm statistics in
    training come from real frames only.
    """

    cfg: MobileFaceConfig = MobileFaceConfig()

    @nn.compact
    def __call__(
        self, x: jnp.ndarray, train: bool, mask: Optional[jnp.ndarray] = None
    ) -> jnp.ndarray:
        c = self.cfg
        m = None if mask is None else mask[:, None, None, None]
        x = _ConvBN(c.width, 3, 2, name="stem")(x, train, m)
        x = _ConvBN(c.width, 3, 1, depthwise=True, implementation=c.implementation, name="stem_dw")(
            x, train, m
        )
        for i, (ch, stride) in enumerate(c.blocks):
            y = _ConvBN(x.shape[-1] * c.expansion, name=f"b{i}_expand")(x, train, m)
            y = _ConvBN(y.shape[-1], 3, stride, depthwise=True, implementation=c.implementation,
                         name=f"b{i}_dw")(y, train, m)
            y = _ConvBN(ch, act=False, name=f"b{i}_project")(y, train, m)
            x = x + y if (stride == 1 and x.shape[-1] == ch) else y
        x = _ConvBN(c.last, name="last")(x, train, m)  # [N, h, w, last]
        x = jnp.mean(x, axis=(1, 2))  # [N, last]
        return nn.Dense(c.embed, name="embed")(x)
