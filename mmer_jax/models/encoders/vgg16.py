"""VGG16 (Simonyan & Zisserman 2015, configuration "D"), the survey's face-emotion network, applied
to every frame of a face-crop sequence.

Source: seed paper S000 (``shared/papers/S000_*``), §2.2: Dwijayanti et al. (its ref. [6])
compare three CNNs for face and facial-emotion recognition on a humanoid robot and find VGG16
("Model B") best, 73 % emotion accuracy on their own camera data. The survey gives no layer
sizes; the layout is the VGG paper's.

Layout (defaults = the paper's network at 224 x 224): thirteen 3 x 3 convolutions (stride 1,
"SAME", ReLU) in five stages of 64, 64 | 128, 128 | 256 x 3 | 512 x 3 | 512 x 3 channels, each
stage ending in a 2 x 2 max-pool (stride 2); the last map flattened; fully connected layers of
``fc_dims`` (4096, 4096), each ReLU then dropout 0.5. The encoder returns the last of those
(VGG's "fc7"); the system adds the classifier (VGG's "fc8").

Changes for small inputs, both inactive at 224 x 224: a stage's max-pool is skipped once the map
is 1 pixel on a side (a 32 x 32 crop reaches 1 x 1 after exactly five pools; a 16 x 16 one after
four), and a map larger than ``fc_grid`` on a side is average-pooled down to ``fc_grid`` before
flattening (so 7 x 7 x 512 for any input that is a multiple of 224, as in torchvision's adaptive
pool). ``width`` scales every convolution's channels (0.125: 8 ... 64 on a CPU); ``batch_norm``
adds BatchNorm after each convolution (the common "VGG16-BN" variant, which trains from scratch
without VGG's staged initialisation), its statistics taken from valid frames only.
"""

from __future__ import annotations

import dataclasses
from typing import Tuple

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.layers import masked_mean
from mmer_jax.registry import ENCODERS

# Configuration "D" of the VGG paper: channels per convolution, stages separated by max-pools.
VGG16_STAGES: Tuple[Tuple[int, ...], ...] = ((64, 64), (128, 128), (256, 256, 256),
                                             (512, 512, 512), (512, 512, 512))


@dataclasses.dataclass(frozen=True)
class VGG16Config:
    """Sizes of :class:`VGG16` (defaults: the paper's network at full width)."""

    width: float = 1.0  # multiplies every convolution's channel count
    fc_dims: Tuple[int, ...] = (4096, 4096)  # the fully connected part, before the classifier
    fc_grid: int = 7  # the last map is average-pooled to at most fc_grid x fc_grid
    dropout: float = 0.5  # after each fully connected layer
    batch_norm: bool = False  # True: BatchNorm after each convolution (VGG16-BN)

    def __post_init__(self):
        if self.width <= 0:
            raise ValueError(f"width={self.width} must be > 0")
        if not self.fc_dims or min(self.fc_dims) < 1:
            raise ValueError(f"fc_dims={self.fc_dims} must be one or more sizes >= 1")
        if self.fc_grid < 1:
            raise ValueError(f"fc_grid={self.fc_grid} must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout={self.dropout} must be in [0, 1)")


def _pool_to_grid(y: jnp.ndarray, grid: int) -> jnp.ndarray:
    """[N, H, W, C] -> [N, min(H, grid), min(W, grid), C] by averaging equal windows.

    Raises:
      ValueError: a side larger than ``grid`` that ``grid`` does not divide.
    """
    n, h, w, c = y.shape
    gh, gw = min(h, grid), min(w, grid)
    if h % gh or w % gw:
        raise ValueError(f"last VGG16 map {h}x{w} cannot be averaged to {gh}x{gw}: "
                         f"use an input size whose map divides fc_grid={grid}")
    return y.reshape(n, gh, h // gh, gw, w // gw, c).mean(axis=(2, 4))


class VGG16(nn.Module):
    """Images [N, H, W, 3] float (+ ``valid`` [N] bool) -> features [N, fc_dims[-1]]."""

    cfg: VGG16Config = VGG16Config()

    @nn.compact
    def __call__(self, x: jnp.ndarray, valid: jnp.ndarray | None = None, *, train: bool):
        c = self.cfg
        if valid is None:
            valid = jnp.ones(x.shape[:1], bool)
        y, n = x, 0
        for stage in VGG16_STAGES:
            for feats in stage:
                n += 1
                y = nn.Conv(max(1, round(feats * c.width)), (3, 3), padding="SAME",
                            use_bias=not c.batch_norm, name=f"conv{n}")(y)
                if c.batch_norm:
                    # Padded frames would pull the batch statistics towards zero images.
                    y = nn.BatchNorm(use_running_average=not train, momentum=0.9,
                                     name=f"bn{n}")(
                        y, mask=jnp.broadcast_to(valid[:, None, None, None], y.shape))
                y = nn.relu(y)
            if min(y.shape[1:3]) > 1:
                y = nn.max_pool(y, (2, 2), (2, 2), padding="VALID")
        y = _pool_to_grid(y, c.fc_grid)
        y = y.reshape(y.shape[0], -1)
        for i, dim in enumerate(c.fc_dims):
            y = nn.relu(nn.Dense(dim, name=f"fc{i + 6}")(y))  # VGG's fc6, fc7
            y = nn.Dropout(c.dropout)(y, deterministic=not train)
        return y


@ENCODERS.register("vgg16")
class VGG16Frames(nn.Module):
    """Face crops [B, T, H, W, 3] float + mask [B, T] bool -> [B, fc_dims[-1]] float: VGG16 per
    frame (shared weights), the frame embeddings averaged over the valid frames.

    Padded frames are zeroed before the network and left out of the BatchNorm statistics and of
    the average, so no output depends on them.
    """

    cfg: VGG16Config = VGG16Config()

    @nn.compact
    def __call__(self, x: jnp.ndarray, mask: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        b, t = mask.shape
        x = jnp.where(mask[:, :, None, None, None], x, 0.0)
        per = VGG16(self.cfg, name="vgg16")(
            x.reshape((b * t,) + x.shape[2:]), mask.reshape(-1), train=train)  # [B*T, D]
        return masked_mean(per.reshape(b, t, -1), mask)
