"""A small 2-D CNN over log-mel features that trains stably from scratch on a few hundred clips,
and the on-device SpecAugment that the speech recipe (system ``speech_recipe``) applies before it.

Encoder ``speech_cnn``, features [B, T, F] (+ ``mask`` [B, T]) -> [B, ``embed_dim``]:

* ``len(channels)`` blocks of ``convs_per_block`` x (3 x 3 conv -> norm -> ReLU), channel dropout,
  then a 2 x 2 max-pool (time and frequency); the very first convolution has stride
  ``stem_stride`` (the full-resolution network costs ~4x the compute). ``norm`` is "group"
  (GroupNorm whose statistics are taken over the valid frames only, so validation sees exactly
  what training saw: no running statistics to drift), "layer" (default: per time-frequency
  cell over channels), "batch" (BatchNorm over valid frames with ``bn_momentum``) or "none".
* The frequency axis averaged away, then global pooling over the valid frames: "stats" (mean and
  standard deviation), "attentive" (attention-weighted mean and standard deviation, as in
  ECAPA-TDNN's attentive statistics pooling) or "mean".
* Dense(``embed_dim``) -> ReLU.

Padding never changes the output: padded frames are zeroed before every convolution (the same
zeros a SAME convolution of the unpadded clip sees), the statistics of every norm and pooling
count valid frames only, and a pooled frame is valid only when both frames of its window are
(as VALID pooling of the unpadded clip).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmer_jax.registry import ENCODERS

NORMS = ("group", "layer", "batch", "none")
POOLINGS = ("stats", "attentive", "mean")


# ------------------------------------------------------------------------------------ SpecAugment


@dataclasses.dataclass(frozen=True)
class SpecAugmentConfig:
    """Band masks on the features in training (Park et al. 2019, without time warping).

    ``freq_masks`` bands of U{0..``freq_width``} mel bins and ``time_masks`` bands of
    U{0..min(``time_width``, ``time_frac`` x valid frames)} frames, each at a uniform position
    inside the valid region, are set to 0 (the mean of per-utterance normalised features). Zero
    counts switch a kind off; both zero switch SpecAugment off.
    """

    freq_masks: int = 2
    freq_width: int = 8  # mel bins
    time_masks: int = 2
    time_width: int = 20  # frames (10 ms each at hop 160, 16 kHz)
    time_frac: float = 0.2  # a time band covers at most this fraction of the valid frames

    def __post_init__(self):
        for name in ("freq_masks", "freq_width", "time_masks", "time_width"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 0")
        if not 0.0 <= self.time_frac <= 1.0:
            raise ValueError(f"time_frac={self.time_frac} must be in [0, 1]")

    @property
    def enabled(self) -> bool:
        """Whether any mask is drawn."""
        return (self.freq_masks > 0 and self.freq_width > 0) or (
            self.time_masks > 0 and self.time_width > 0 and self.time_frac > 0
        )


def _bands(rng: jax.Array, count: int, max_width: jnp.ndarray, limit: jnp.ndarray,
           n: int) -> jnp.ndarray:
    """[B, n] bool: ``count`` bands per row, width U{0..max_width[b]}, inside [0, limit[b])."""
    b = limit.shape[0]
    k_w, k_s = jax.random.split(rng)
    width = jnp.floor(jax.random.uniform(k_w, (b, count)) * (max_width[:, None] + 1))
    width = jnp.minimum(width.astype(jnp.int32), limit[:, None])  # [B, count]
    start = jnp.floor(jax.random.uniform(k_s, (b, count)) * (limit[:, None] - width + 1))
    start = start.astype(jnp.int32)
    pos = jnp.arange(n)[None, None, :]
    hit = (pos >= start[..., None]) & (pos < (start + width)[..., None])  # [B, count, n]
    return jnp.any(hit, axis=1)


def spec_augment(rng: jax.Array, feats: jnp.ndarray, mask: jnp.ndarray,
                 cfg: SpecAugmentConfig) -> jnp.ndarray:
    """Applies :class:`SpecAugmentConfig`'s band masks to a batch (jit-able; call it in training
    only).

    Args:
      rng: PRNG key; the same key gives the same masks.
      feats: [B, T, F] float features (per-utterance normalised: the fill value 0 is their mean).
      mask: [B, T] bool valid frames (a prefix per row); padded frames are never touched.
      cfg: mask counts and widths.

    Returns:
      [B, T, F] features of ``feats``' dtype, 0 in the masked cells.
    """
    if not cfg.enabled:
        return feats
    b, t, f = feats.shape
    k_f, k_t = jax.random.split(rng)
    hit = jnp.zeros((b, t, f), bool)
    if cfg.freq_masks and cfg.freq_width:
        fw = jnp.full((b,), min(cfg.freq_width, f), jnp.int32)
        hit = hit | _bands(k_f, cfg.freq_masks, fw, jnp.full((b,), f, jnp.int32), f)[:, None, :]
    if cfg.time_masks and cfg.time_width and cfg.time_frac:
        t_valid = jnp.sum(mask, axis=1).astype(jnp.int32)  # [B]
        tw = jnp.minimum(cfg.time_width, jnp.floor(cfg.time_frac * t_valid).astype(jnp.int32))
        hit = hit | _bands(k_t, cfg.time_masks, tw, t_valid, t)[:, :, None]
    return jnp.where(hit & mask[:, :, None], jnp.zeros((), feats.dtype), feats)


# ------------------------------------------------------------------------------------ encoder


@dataclasses.dataclass(frozen=True)
class SpeechCNNConfig:
    """Sizes of :class:`SpeechCNN` (see the module docstring)."""

    channels: Sequence[int] = (16, 32, 64, 128)  # one block per entry, each ending in a 2x2 pool
    # "2d": 3 x 3 convolutions over (time, frequency), 2 x 2 pools; "1d": the mel bins are the
    # input channels of 3-tap convolutions over time (a TDNN), pools over time only
    conv: str = "2d"
    convs_per_block: int = 1
    stem_stride: int = 2  # the first convolution's stride in time and frequency (1: none)
    # one of NORMS. "group" fixes each group's mean and variance over the whole utterance, the
    # very statistics the pooling reads (EmoDB fold 1: validation UAR 0.24 after 12 epochs)
    norm: str = "layer"
    groups: int = 8  # GroupNorm groups (capped at the block's channels)
    bn_momentum: float = 0.9  # norm="batch": running-statistics momentum
    block_dropout: float = 0.1  # channel dropout after every block
    pooling: str = "stats"  # one of POOLINGS
    attention_hidden: int = 64  # pooling="attentive": width of the frame-scoring MLP
    embed_dim: int = 128

    def __post_init__(self):
        if not self.channels or any(c <= 0 for c in self.channels):
            raise ValueError(f"channels={self.channels} must be a non-empty list of positives")
        if self.conv not in ("1d", "2d"):
            raise ValueError(f"conv={self.conv!r} must be '1d' or '2d'")
        if self.norm not in NORMS:
            raise ValueError(f"norm={self.norm!r} must be one of {NORMS}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling={self.pooling!r} must be one of {POOLINGS}")
        for name in ("convs_per_block", "stem_stride", "groups", "embed_dim",
                     "attention_hidden"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}={getattr(self, name)} must be > 0")
        if not 0.0 <= self.block_dropout < 1.0:
            raise ValueError(f"block_dropout={self.block_dropout} must be in [0, 1)")
        if not 0.0 < self.bn_momentum < 1.0:
            raise ValueError(f"bn_momentum={self.bn_momentum} must be in (0, 1)")


class MaskedGroupNorm(nn.Module):
    """GroupNorm over [B, T, F, C] whose statistics count only valid frames (mask [B, T])."""

    groups: int = 8
    eps: float = 1e-5

    @nn.compact
    def __call__(self, x: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
        b, t, f, c = x.shape
        g = max(1, min(self.groups, c))
        while c % g:
            g -= 1
        xs = x.astype(jnp.float32).reshape(b, t, f, g, c // g)
        m = mask.astype(jnp.float32)[:, :, None, None, None]  # [B, T, 1, 1, 1]
        count = jnp.maximum(jnp.sum(m, axis=(1, 2, 4), keepdims=True) * f * (c // g), 1.0)
        mu = jnp.sum(xs * m, axis=(1, 2, 4), keepdims=True) / count
        var = jnp.sum(((xs - mu) * m) ** 2, axis=(1, 2, 4), keepdims=True) / count
        y = ((xs - mu) * jax.lax.rsqrt(var + self.eps)).reshape(b, t, f, c)
        scale = self.param("scale", nn.initializers.ones, (c,))
        bias = self.param("bias", nn.initializers.zeros, (c,))
        return (y * scale + bias).astype(x.dtype)


def _pool_mask(mask: jnp.ndarray) -> jnp.ndarray:
    """[B, T] -> [B, T // 2]: a pooled frame is valid when both frames of its window are."""
    n = mask.shape[1] // 2
    return mask[:, 0 : 2 * n : 2] & mask[:, 1 : 2 * n : 2]


def masked_stats(x: jnp.ndarray, weights: jnp.ndarray) -> jnp.ndarray:
    """Weighted mean and standard deviation over axis 1.

    Args:
      x: [B, T, D] float frames.
      weights: [B, T] or [B, T, D] non-negative float weights, 0 on padded frames; each row's
        weights are normalised to sum to 1 (a row of zeros pools to zeros).

    Returns:
      [B, 2 D] float32: mean, then standard deviation (sqrt of the variance + 1e-5).
    """
    x = x.astype(jnp.float32)
    w = weights.astype(jnp.float32)
    if w.ndim == 2:
        w = w[..., None]
    w = w / jnp.maximum(jnp.sum(w, axis=1, keepdims=True), 1e-9)
    mu = jnp.sum(w * x, axis=1)
    var = jnp.sum(w * (x - mu[:, None]) ** 2, axis=1)
    return jnp.concatenate([mu, jnp.sqrt(var + 1e-5)], axis=-1)


@ENCODERS.register("speech_cnn")
class SpeechCNN(nn.Module):
    """(features [B, T, F], mask [B, T]) -> utterance vector [B, ``embed_dim``]."""

    cfg: SpeechCNNConfig

    def _norm(self, x, mask, train: bool, name: str):
        c = self.cfg
        if c.norm == "group":
            return MaskedGroupNorm(c.groups, name=name)(x, mask)
        if c.norm == "layer":
            return nn.LayerNorm(name=name)(x)
        if c.norm == "batch":
            return nn.BatchNorm(use_running_average=not train, momentum=c.bn_momentum,
                                name=name)(x, mask=mask[:, :, None, None])
        return x

    @nn.compact
    def __call__(self, x: jnp.ndarray, mask: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        c = self.cfg
        bias = c.norm == "none"
        two_d = c.conv == "2d"
        h = x[..., None] if two_d else x[:, :, None, :]  # [B, T, F, 1] or [B, T, 1, F]
        kernel, fpad, fpool = ((3, 3), (1, 1), 2) if two_d else ((3, 1), (0, 0), 1)
        for i, ch in enumerate(c.channels):
            for j in range(c.convs_per_block):
                h = jnp.where(mask[:, :, None, None], h, 0.0)
                s = c.stem_stride if i == j == 0 else 1
                # explicit padding: frame k of the output is centred on input frame s k whatever
                # the padded length, so it is valid when that frame is
                h = nn.Conv(ch, kernel, strides=(s, s if two_d else 1), padding=((1, 1), fpad),
                            use_bias=bias, name=f"conv{i}_{j}")(h)
                mask = mask[:, ::s]
                h = nn.relu(self._norm(h, mask, train, f"norm{i}_{j}"))
            h = jnp.where(mask[:, :, None, None], h, 0.0)
            # channel dropout: one draw per (example, channel), shared over time and frequency
            h = nn.Dropout(c.block_dropout, broadcast_dims=(1, 2))(h, deterministic=not train)
            if h.shape[1] >= 2 and h.shape[2] >= fpool:
                h = nn.max_pool(h, (2, fpool), strides=(2, fpool), padding="VALID")
                mask = _pool_mask(mask)
        frames = jnp.mean(h, axis=2)  # [B, T', C]
        valid = mask.astype(jnp.float32)
        if c.pooling == "mean":
            pooled = jnp.sum(frames * valid[..., None], 1) / jnp.maximum(valid.sum(1)[:, None], 1)
        elif c.pooling == "stats":
            pooled = masked_stats(frames, valid)
        else:  # attentive statistics: a weight per (frame, channel), softmax over valid frames
            s = nn.Dense(frames.shape[-1], name="att_out")(
                jnp.tanh(nn.Dense(c.attention_hidden, name="att_hidden")(frames))
            ).astype(jnp.float32)
            s = jnp.where(mask[..., None], s, -1e9)
            w = jnp.exp(s - jnp.max(s, axis=1, keepdims=True)) * valid[..., None]
            pooled = masked_stats(frames, w)
        return nn.relu(nn.Dense(c.embed_dim, name="embed")(pooled.astype(x.dtype)))

