"""WavLM (Chen et al. 2022, "WavLM: Large-Scale Self-Supervised Pre-Training for Full Stack Speech
Processing"), in Flax.

wav2vec 2.0's front end and Transformer (:mod:`wav2vec2`, either LayerNorm order) with a gated
relative position bias added to every layer's attention logits:

- relative positions ``j - i`` are put into ``num_buckets`` buckets (half per direction; exact
  below a quarter of ``num_buckets``, log-spaced up to ``max_bucket_distance``, clipped beyond),
  as in T5 but bidirectional;
- one learned table ``rel_attn_embed`` [num_buckets, H] (the reference keeps it in layer 0 and
  hands the looked-up bias to the later layers) gives the bias [H, T, T];
- each layer scales that bias per query by a gate computed from its attention input:
  a Dense of each head's slice (Dh -> 8), summed in two groups of four, sigmoid -> a, b;
  ``gate = a * (b * c_h - 1) + 2`` with a learned per-head ``c_h`` (initialised to 1).

The gated bias [B, H, T, T] is the attention op's ``bias`` input, so on GPU it goes through the
Pallas kernel and its gradient through the kernel's bias gradient. Hidden states as in
:mod:`wav2vec2`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mmer_jax.models.pretrained.blocks import (
    TORCH_LN_EPS,
    EncoderOutput,
    FeedForward,
    SelfAttention,
    layer_class,
    prefix_mask,
)
from mmer_jax.models.pretrained.conv_features import embed_waveform
from mmer_jax.models.pretrained.wav2vec2 import Wav2Vec2Config, dummy_waveform
from mmer_jax.registry import ARCHITECTURES, Architecture


@dataclasses.dataclass(frozen=True)
class WavLMConfig(Wav2Vec2Config):
    """A WavLM encoder's shape (defaults: WavLM base): :class:`Wav2Vec2Config`'s fields plus the
    relative position buckets.

    Attributes:
      num_buckets: buckets of the relative position table (320).
      max_bucket_distance: the distance from which positions share the last bucket (800 frames).

    Raises:
      ValueError: as :class:`Wav2Vec2Config`; fewer than 4 buckets, or ``max_bucket_distance``
        not beyond the exact range (``num_buckets // 4``).
    """

    num_buckets: int = 320
    max_bucket_distance: int = 800

    def __post_init__(self):
        super().__post_init__()
        if self.num_buckets < 4 or self.max_bucket_distance <= self.num_buckets // 4:
            raise ValueError(f"num_buckets={self.num_buckets} must be >= 4 and "
                             f"max_bucket_distance={self.max_bucket_distance} > num_buckets // 4")


def relative_position_buckets(length: int, num_buckets: int, max_distance: int) -> np.ndarray:
    """int32 [T, T]: the bucket of key j relative to query i (WavLM's bucketing, above).

    Computed with numpy in float32 at trace time (T is static), the reference's arithmetic in
    the same precision, so every backend gets the same table.
    """
    rel = np.arange(length)[None, :] - np.arange(length)[:, None]  # key - query
    half = num_buckets // 2
    buckets = (rel > 0).astype(np.int64) * half
    dist = np.abs(rel)
    exact = half // 2
    # log of 0 is never used (those distances are exact); clamp to keep the warning away
    scaled = (np.log(np.maximum(dist, 1).astype(np.float32) / np.float32(exact))
              / np.float32(math.log(max_distance / exact)) * np.float32(half - exact))
    large = np.minimum((np.float32(exact) + scaled).astype(np.int64), half - 1)
    return (buckets + np.where(dist < exact, dist, large)).astype(np.int32)


class GatedRelativeBias(nn.Module):
    """A layer's gate over the shared relative position bias.

    Parameters: ``linear`` (Dense Dh -> 8, the reference's ``gru_rel_pos_linear``) and
    ``const`` [H] (``gru_rel_pos_const``).
    """

    num_heads: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, h: jnp.ndarray, position_bias: jnp.ndarray) -> jnp.ndarray:
        """h [B, T, D] (the attention's input), position_bias [H, T, T] -> float32
        [B, H, T, T]."""
        b, t, d = h.shape
        heads = self.num_heads
        proj = nn.Dense(8, dtype=self.dtype, name="linear")(h.reshape(b, t, heads, d // heads))
        ab = jax.nn.sigmoid(proj.astype(jnp.float32).reshape(b, t, heads, 2, 4).sum(-1))
        const = self.param("const", nn.initializers.ones, (heads,))
        gate = ab[..., 0] * (ab[..., 1] * const - 1.0) + 2.0  # [B, T, H]
        return jnp.transpose(gate, (0, 2, 1))[..., None] * position_bias[None]


class WavLMLayer(nn.Module):
    """One WavLM layer: :class:`blocks.TransformerLayer` (same parameter names, either order)
    with the gated relative position bias (``rel_pos_gate``) on the attention logits.

    ``train`` is the fourth call argument, so :func:`blocks.layer_class` can remat it.
    """

    num_heads: int
    ffn_dim: int
    act: str = "gelu"
    pre_norm: bool = False
    ln_eps: float = TORCH_LN_EPS
    dropout: float = 0.0
    implementation: str = "xla"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, lengths: jnp.ndarray, position_bias: jnp.ndarray,
                 train: bool = False) -> jnp.ndarray:
        """x [B, T, D], lengths int [B], position_bias [H, T, T] -> [B, T, D]."""
        attn = SelfAttention(self.num_heads, (True, True, True), self.implementation,
                             self.dtype, name="attention")
        gate = GatedRelativeBias(self.num_heads, self.dtype, name="rel_pos_gate")
        ffn = FeedForward(self.ffn_dim, self.act, 0.0, self.dtype, name="ffn")
        ln_a = nn.LayerNorm(self.ln_eps, dtype=self.dtype, name="attention_norm")
        ln_f = nn.LayerNorm(self.ln_eps, dtype=self.dtype, name="ffn_norm")
        drop = nn.Dropout(self.dropout)
        a_in = ln_a(x) if self.pre_norm else x
        x = x + drop(attn(a_in, lengths, gate(a_in, position_bias)), deterministic=not train)
        if self.pre_norm:
            return x + drop(ffn(ln_f(x), train=train), deterministic=not train)
        x = ln_a(x)
        return ln_f(x + drop(ffn(x, train=train), deterministic=not train))


class WavLMEncoder(nn.Module):
    """Waveform [B, S] (+ bool mask [B, S]) -> :class:`EncoderOutput` with
    ``num_hidden_layers + 1`` hidden states [B, T, hidden_size] (order as
    :class:`wav2vec2.Wav2Vec2Encoder`) and the mask of the valid frames.

    Raises:
      ValueError: at trace time, x is not [B, S] or shorter than the feature extractor's
        receptive field.
    """

    cfg: WavLMConfig

    @nn.compact
    def __call__(self, x: jnp.ndarray, mask: Optional[jnp.ndarray] = None, *,
                 train: bool = False) -> EncoderOutput:
        c = self.cfg
        dtype = jnp.dtype(c.dtype)
        h, lengths = embed_waveform(c, x, mask, train)  # [B, T, D], [B]
        t = h.shape[1]
        table = self.param("rel_attn_embed", nn.initializers.normal(1.0),
                           (c.num_buckets, c.num_attention_heads))  # [NB, H]
        buckets = relative_position_buckets(t, c.num_buckets, c.max_bucket_distance)
        position_bias = jnp.transpose(table[buckets], (2, 0, 1))  # [H, T, T]
        encoder_norm = nn.LayerNorm(c.layer_norm_eps, dtype=dtype, name="encoder_norm")
        if not c.do_stable_layer_norm:
            h = encoder_norm(h)
        h = nn.Dropout(c.dropout)(h, deterministic=not train)
        Layer = layer_class(WavLMLayer, c.remat)
        states = [h]
        for i in range(c.num_hidden_layers):
            h = Layer(c.num_attention_heads, c.intermediate_size, c.hidden_act,
                      pre_norm=c.do_stable_layer_norm, ln_eps=c.layer_norm_eps,
                      dropout=c.dropout, implementation=c.implementation, dtype=dtype,
                      name=f"layers_{i}")(h, lengths, position_bias, train)
            states.append(h)
        if c.do_stable_layer_norm:
            states[-1] = encoder_norm(h)
        return EncoderOutput(tuple(states), prefix_mask(lengths, t))


ARCHITECTURES.register("wavlm", Architecture(
    "wavlm", WavLMConfig, WavLMEncoder, "audio", dummy_waveform))
