"""Whisper's audio encoder (Radford et al. 2022, "Robust Speech Recognition via Large-Scale Weak
Supervision"; OpenAI's MIT-licensed release), in Flax.

Conv stem (two 3-tap convolutions, the second with stride 2, GELU after each) -> fixed
sinusoidal position table (stored as a parameter, as the checkpoints carry it) -> pre-LN
Transformer layers -> final LayerNorm. The key projection has no bias. Sizes: tiny (384 wide,
4 layers), base (512, 6), small (768, 12), medium (1024, 24), large (1280, 32); ``WhisperConfig``
holds any of them (``mmer_jax.weights`` reads the size from the checkpoint).

Input: Whisper's log-mel features (``mmer_jax.data.whisper_features``) time-major, [B, T, 80]
(128 bins for large-v3), 100 frames per second. OpenAI's model always sees 30-s windows (3,000
frames, the clip padded with silence); this module also runs a clip at its own length (any
T <= 2 * max_source_positions), as CTranslate2's ``encode`` does. With a padding mask, padded
frames are zeroed before each convolution, so every valid output frame equals the clip run
alone at its own length, and attention ignores padded frames.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.pretrained.blocks import (
    EncoderOutput,
    TransformerLayer,
    activation,
    layer_class,
    lengths_of,
    prefix_mask,
)
from mmer_jax.registry import ARCHITECTURES, Architecture


@dataclasses.dataclass(frozen=True)
class WhisperConfig:
    """A Whisper encoder's shape (defaults: Whisper base).

    Attributes:
      num_mel_bins: log-mel bins of the input (80; 128 for large-v3).
      d_model, encoder_layers, encoder_attention_heads, encoder_ffn_dim: the Transformer's size.
      max_source_positions: rows of the position table (1,500 = 30 s after the stride-2 stem).
      activation: FFN and stem activation ("gelu", exact).
      dropout: dropout on the residual branches (0 in the released models).
      implementation: attention backend (:mod:`mmer_jax.models.ops`).
      dtype: computation dtype, "float32" or "bfloat16" (parameters stay float32).
      remat: recompute each layer's activations in the backward pass.

    Raises:
      ValueError: ``d_model`` not divisible by the heads, or an unknown dtype.
    """

    num_mel_bins: int = 80
    d_model: int = 512
    encoder_layers: int = 6
    encoder_attention_heads: int = 8
    encoder_ffn_dim: int = 2048
    max_source_positions: int = 1500
    activation: str = "gelu"
    dropout: float = 0.0
    implementation: str = "xla"
    dtype: str = "float32"
    remat: bool = False

    def __post_init__(self):
        if self.d_model % self.encoder_attention_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by "
                             f"encoder_attention_heads={self.encoder_attention_heads}")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"dtype={self.dtype!r} must be float32, bfloat16 or float16")
        activation(self.activation)  # raises on an unknown name


def output_lengths(frames: jnp.ndarray) -> jnp.ndarray:
    """Encoder positions for ``frames`` log-mel frames (the stem's stride-2 convolution)."""
    return (frames - 1) // 2 + 1


class WhisperEncoder(nn.Module):
    """Log-mel [B, T, n_mels] (+ bool mask [B, T]) -> :class:`EncoderOutput` with
    ``encoder_layers + 1`` hidden states of [B, ceil(T / 2), d_model]: the stem's output plus
    positions, then each layer's output, the last one after the final LayerNorm (Hugging Face's
    order). ``mask`` of the output marks the valid encoder positions.

    Raises:
      ValueError: at trace time, T / 2 exceeds ``max_source_positions`` or the input has a
        different number of mel bins than the config.
    """

    cfg: WhisperConfig

    @nn.compact
    def __call__(self, x: jnp.ndarray, mask: Optional[jnp.ndarray] = None, *,
                 train: bool = False) -> EncoderOutput:
        c = self.cfg
        dtype = jnp.dtype(c.dtype)
        b, t, n_mels = x.shape
        if n_mels != c.num_mel_bins:
            raise ValueError(f"input has {n_mels} mel bins; this Whisper encoder expects "
                             f"{c.num_mel_bins} ([B, T, n_mels], time-major)")
        t_out = (t - 1) // 2 + 1
        if t_out > c.max_source_positions:
            raise ValueError(f"{t} log-mel frames give {t_out} positions; Whisper's table has "
                             f"{c.max_source_positions} (cut long clips into 30-s windows)")
        act = activation(c.activation)
        frames = lengths_of(mask, b, t)  # [B]
        in_valid = prefix_mask(frames, t)[..., None]  # [B, T, 1]
        x = jnp.where(in_valid, x, 0.0).astype(dtype)
        x = act(nn.Conv(c.d_model, (3,), padding=((1, 1),), dtype=dtype, name="conv1")(x))
        x = jnp.where(in_valid, x, 0.0)  # so the stride-2 conv sees zeros past the clip
        x = act(nn.Conv(c.d_model, (3,), (2,), padding=((1, 1),), dtype=dtype, name="conv2")(x))
        positions = self.param("embed_positions", _sinusoids,
                               (c.max_source_positions, c.d_model))  # [P, D]
        x = x + positions[:t_out].astype(x.dtype)[None]
        x = nn.Dropout(c.dropout)(x, deterministic=not train)
        lengths = output_lengths(frames)  # [B]
        Layer = layer_class(TransformerLayer, c.remat)
        states = [x]
        for i in range(c.encoder_layers):
            x = Layer(c.encoder_attention_heads, c.encoder_ffn_dim, c.activation, pre_norm=True,
                      qkv_bias=(True, False, True), dropout=c.dropout,
                      implementation=c.implementation, dtype=dtype,
                      name=f"layers_{i}")(x, lengths, None, train)
            states.append(x)
        states[-1] = nn.LayerNorm(1e-5, dtype=dtype, name="layer_norm")(x)
        return EncoderOutput(tuple(states), prefix_mask(lengths, t_out))


def _sinusoids(key, shape, dtype=jnp.float32):
    """Whisper's position table: sin over the first half of the channels, cos over the second,
    timescales log-spaced from 1 to 10,000 (the initialiser; checkpoints carry the table)."""
    del key
    length, channels = shape
    inc = jnp.log(10000.0) / (channels // 2 - 1)
    inv = jnp.exp(-inc * jnp.arange(channels // 2))
    t = jnp.arange(length)[:, None] * inv[None, :]
    return jnp.concatenate([jnp.sin(t), jnp.cos(t)], axis=1).astype(dtype)


def _dummy(cfg: WhisperConfig, batch: int):
    return jnp.zeros((batch, 4, cfg.num_mel_bins), jnp.float32), jnp.ones((batch, 4), bool)


ARCHITECTURES.register("whisper", Architecture(
    "whisper", WhisperConfig, WhisperEncoder, "audio", _dummy))
