"""Inception-ResNet-v2 (Szegedy et al. 2016, "Inception-v4, Inception-ResNet and the Impact of
Residual Connections on Learning"), S004's face network, with its feature-tap points.

Source: seed paper S004 (``shared/papers/S004_*``): faces through Inception-ResNet-v2 ("stem,
Inception-ResNet-A, Reduction-A, Inception-ResNet-B, Reduction-B, and Inception-ResNet-C"), with
features read from the "Convolution layer, Avg Pool layer, Dropout layer, and Fully Connected
layer" and compared (its Table 2; fully connected best, 85.75 %). Trained from scratch here: no
pretrained weights can be downloaded on this project's machines.

Layout (Szegedy et al., Figs. 3, 16-19; channel counts x ``width``): the stem (Inception-v4's, 384
channels), ``blocks[0]`` x Inception-ResNet-A (35 x 35 at 299 input), Reduction-A (k, l, m, n =
256, 256, 384, 384), ``blocks[1]`` x Inception-ResNet-B, Reduction-B, ``blocks[2]`` x
Inception-ResNet-C; each residual branch ends in a linear 1 x 1 convolution, is scaled
(``residual_scale``: 0.17 / 0.10 / 0.20, the TF-slim values within the paper's 0.1-0.3) and added,
then ReLU. Every convolution is conv -> BatchNorm -> ReLU. After the last block, as in the
released Keras / TF-slim / MATLAB models, a 1 x 1 convolution of 1536 channels (``final_conv``).

Taps (``tap``), each a per-image vector:

* ``conv``: the final convolution's map, max-pooled over space (a vector needs some pooling; the
  max keeps it distinct from ``avgpool``; our choice, the paper does not say);
* ``avgpool``: the same map averaged over space;
* ``dropout``: ``avgpool`` after dropout (keep 0.8 in the paper); identical to ``avgpool`` at
  evaluation, which bounds what the paper's avgpool-vs-dropout comparison can show;
* ``fc``: a fully connected layer of ``fc_dim`` units on ``dropout`` (ReLU).

``padding = "VALID"`` is the paper's (inputs of at least 75 x 75); ``"SAME"`` keeps small CPU-sized
face crops from shrinking to nothing. :class:`IRv2Frames` is the registered encoder: one network
(shared weights) per frame of [B, T, H, W, 3], the tap averaged over the valid frames.
"""

from __future__ import annotations

import dataclasses
from typing import Tuple

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.layers import masked_mean
from mmer_jax.registry import ENCODERS

TAPS = ("conv", "avgpool", "dropout", "fc")


MIN_VALID_SIZE = 75  # the smallest input the VALID stem and reductions leave a map for


@dataclasses.dataclass(frozen=True)
class InceptionResNetV2Config:
    """Sizes of :class:`InceptionResNetV2` (defaults: the paper's network at full width)."""

    width: float = 1.0  # multiplies every channel count (e.g. 0.25 on a CPU)
    blocks: Tuple[int, int, int] = (5, 10, 5)  # Inception-ResNet-A, -B, -C repeats
    residual_scale: Tuple[float, float, float] = (0.17, 0.10, 0.20)
    final_conv: int = 1536  # 1 x 1 conv after the last block (0: none)
    fc_dim: int = 1024
    dropout: float = 0.2  # the paper keeps 0.8
    padding: str = "VALID"  # "VALID" (paper) or "SAME" (small inputs)
    tap: str = "fc"  # which layer's features the encoder returns (TAPS)

    def __post_init__(self):
        if self.width <= 0:
            raise ValueError(f"width={self.width} must be > 0")
        if len(self.blocks) != 3 or min(self.blocks) < 0:
            raise ValueError(f"blocks={self.blocks} must be three counts >= 0")
        if self.padding not in ("VALID", "SAME"):
            raise ValueError(f"padding={self.padding!r} must be 'VALID' or 'SAME'")
        if self.tap not in TAPS:
            raise ValueError(f"tap={self.tap!r} must be one of {', '.join(TAPS)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout={self.dropout} must be in [0, 1)")
        if self.fc_dim < 1 or self.final_conv < 0:
            raise ValueError(f"fc_dim={self.fc_dim} must be >= 1 and "
                             f"final_conv={self.final_conv} >= 0")


class _Conv(nn.Module):
    """conv -> BatchNorm (statistics over the images whose ``valid`` is True) -> ReLU."""

    features: int
    kernel: Tuple[int, int]
    strides: int = 1
    padding: str = "SAME"

    @nn.compact
    def __call__(self, x, valid, train: bool):
        x = nn.Conv(self.features, self.kernel, self.strides, padding=self.padding,
                    use_bias=False)(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.99, epsilon=1e-3)(
            x, mask=jnp.broadcast_to(valid[:, None, None, None], x.shape))
        return nn.relu(x)


class InceptionResNetV2(nn.Module):
    """Images [N, H, W, 3] float (+ ``valid`` [N] bool) -> {tap: [N, D_tap]} for every tap."""

    cfg: InceptionResNetV2Config = InceptionResNetV2Config()

    def _ch(self, c: int) -> int:
        return max(1, int(round(c * self.cfg.width)))

    @nn.compact
    def __call__(self, x: jnp.ndarray, valid: jnp.ndarray | None = None, *, train: bool) -> dict:
        c, ch = self.cfg, self._ch
        pad = c.padding
        if pad == "VALID" and min(x.shape[-3:-1]) < MIN_VALID_SIZE:
            raise ValueError(f"padding='VALID' needs images of at least {MIN_VALID_SIZE} x "
                             f"{MIN_VALID_SIZE}, got {x.shape[-3]} x {x.shape[-2]}: use "
                             "padding='SAME' for small crops")
        if valid is None:
            valid = jnp.ones(x.shape[:1], bool)
        n = [0]

        def conv(y, feats, kernel, strides=1, padding="SAME"):
            n[0] += 1
            return _Conv(ch(feats), kernel, strides, padding, name=f"conv{n[0]}")(y, valid, train)

        def maxpool(y):
            return nn.max_pool(y, (3, 3), (2, 2), padding=pad)

        # Stem (Inception-v4 Fig. 3): 299 -> 35 x 35 x 384.
        y = conv(x, 32, (3, 3), 2, pad)
        y = conv(y, 32, (3, 3), 1, pad)
        y = conv(y, 64, (3, 3))
        y = jnp.concatenate([maxpool(y), conv(y, 96, (3, 3), 2, pad)], -1)
        a = conv(conv(y, 64, (1, 1)), 96, (3, 3), 1, pad)
        b = conv(conv(conv(conv(y, 64, (1, 1)), 64, (7, 1)), 64, (1, 7)), 96, (3, 3), 1, pad)
        y = jnp.concatenate([a, b], -1)
        y = jnp.concatenate([conv(y, 192, (3, 3), 2, pad), maxpool(y)], -1)

        def residual(y, branches, scale):
            mixed = jnp.concatenate(branches, -1)
            n[0] += 1
            up = nn.Conv(y.shape[-1], (1, 1), name=f"conv{n[0]}_linear")(mixed)
            return nn.relu(y + scale * up)

        for _ in range(c.blocks[0]):  # Inception-ResNet-A (Fig. 16)
            y = residual(y, [conv(y, 32, (1, 1)),
                             conv(conv(y, 32, (1, 1)), 32, (3, 3)),
                             conv(conv(conv(y, 32, (1, 1)), 48, (3, 3)), 64, (3, 3))],
                         c.residual_scale[0])
        # Reduction-A (Fig. 7; k, l, m, n = 256, 256, 384, 384).
        y = jnp.concatenate([maxpool(y), conv(y, 384, (3, 3), 2, pad),
                             conv(conv(conv(y, 256, (1, 1)), 256, (3, 3)), 384, (3, 3), 2, pad)],
                            -1)
        for _ in range(c.blocks[1]):  # Inception-ResNet-B (Fig. 17)
            y = residual(y, [conv(y, 192, (1, 1)),
                             conv(conv(conv(y, 128, (1, 1)), 160, (1, 7)), 192, (7, 1))],
                         c.residual_scale[1])
        # Reduction-B (Fig. 18).
        y = jnp.concatenate([maxpool(y),
                             conv(conv(y, 256, (1, 1)), 384, (3, 3), 2, pad),
                             conv(conv(y, 256, (1, 1)), 288, (3, 3), 2, pad),
                             conv(conv(conv(y, 256, (1, 1)), 288, (3, 3)), 320, (3, 3), 2, pad)],
                            -1)
        for _ in range(c.blocks[2]):  # Inception-ResNet-C (Fig. 19)
            y = residual(y, [conv(y, 192, (1, 1)),
                             conv(conv(conv(y, 192, (1, 1)), 224, (1, 3)), 256, (3, 1))],
                         c.residual_scale[2])
        if c.final_conv:
            y = conv(y, c.final_conv, (1, 1))
        taps = {"conv": jnp.max(y, axis=(1, 2)), "avgpool": jnp.mean(y, axis=(1, 2))}
        taps["dropout"] = nn.Dropout(c.dropout)(taps["avgpool"], deterministic=not train)
        taps["fc"] = nn.relu(nn.Dense(ch(c.fc_dim), name="fc")(taps["dropout"]))
        return taps


@ENCODERS.register("inception_resnet_v2")
class IRv2Frames(nn.Module):
    """Face crops [B, T, H, W, 3] float + mask [B, T] bool -> [B, D]: Inception-ResNet-v2 per frame
    (shared weights; BatchNorm statistics from valid frames only), the ``cfg.tap`` features
    averaged over the valid frames. ``aux``-style access to every tap: :meth:`taps`."""

    cfg: InceptionResNetV2Config = InceptionResNetV2Config()

    def setup(self):
        self.net = InceptionResNetV2(self.cfg)

    def taps(self, x: jnp.ndarray, mask: jnp.ndarray, *, train: bool) -> dict:
        """{tap: [B, D_tap]} for every tap, each averaged over the valid frames."""
        b, t = mask.shape
        x = jnp.where(mask[:, :, None, None, None], x, 0.0)
        per = self.net(x.reshape((b * t,) + x.shape[2:]), mask.reshape(-1), train=train)
        return {k: masked_mean(v.reshape(b, t, -1), mask) for k, v in per.items()}

    def __call__(self, x: jnp.ndarray, mask: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        return self.taps(x, mask, train=train)[self.cfg.tap]
