"""The waveform front end shared by wav2vec 2.0, HuBERT and WavLM: input normalisation, the
convolutional feature extractor, the feature projection and the convolutional positional
embedding (Baevski et al. 2020, "wav2vec 2.0: A Framework for Self-Supervised Learning of Speech
Representations"; reused unchanged by Hsu et al. 2021, HuBERT, and Chen et al. 2022, WavLM).

Padding is honoured everywhere, so a padded batch gives on its valid frames what each waveform
gives alone at its own length:

- the per-utterance input normalisation and the group-norm extractor's statistics run over valid
  samples / frames only (the reference's GroupNorm averages over the padded length too, so there
  padding leaks into real frames);
- a valid output frame of a "valid" convolution only reads valid input frames, so the stack
  needs no zeroing between convolutions;
- padded frames are zeroed before the positional convolution, which pads with zeros at the
  ends, as the reference does when given an attention mask.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmer_jax.models.pretrained.blocks import TORCH_LN_EPS, activation, lengths_of, prefix_mask

# Hugging Face's Wav2Vec2FeatureExtractor (do_normalize=True): (x - mean) / sqrt(var + 1e-7).
NORMALIZE_EPS = 1e-7


def conv_output_lengths(lengths: jnp.ndarray, kernels: Sequence[int],
                        strides: Sequence[int]) -> jnp.ndarray:
    """int32 [B] frames after the "valid" convolutions ``kernels`` / ``strides`` for ``lengths``
    samples (0 for a waveform shorter than the stack's receptive field)."""
    for k, s in zip(kernels, strides, strict=True):
        lengths = jnp.maximum((lengths - k) // s + 1, 0)
    return lengths.astype(jnp.int32)


def min_samples(kernels: Sequence[int], strides: Sequence[int]) -> int:
    """The fewest samples that give one output frame (the stack's receptive field)."""
    n = 1
    for k, s in zip(reversed(tuple(kernels)), reversed(tuple(strides)), strict=True):
        n = (n - 1) * s + k
    return n


def masked_standardize(x: jnp.ndarray, valid: jnp.ndarray, eps: float,
                       axis: int = 1) -> jnp.ndarray:
    """``(x - mean) / sqrt(var + eps)`` with mean and (biased) variance over the positions of
    ``axis`` that ``valid`` marks, per row and channel; float32 statistics.

    Args:
      x: [B, T, ...] float.
      valid: bool, broadcastable to ``x``.
      eps: added to the variance.
    """
    xf = x.astype(jnp.float32)
    w = valid.astype(jnp.float32)
    n = jnp.maximum(jnp.sum(jnp.broadcast_to(w, xf.shape), axis, keepdims=True), 1.0)
    mean = jnp.sum(xf * w, axis, keepdims=True) / n
    var = jnp.sum(jnp.square((xf - mean) * w), axis, keepdims=True) / n
    return (xf - mean) * jax.lax.rsqrt(var + eps)


class ConvFeatureExtractor(nn.Module):
    """Waveform [B, S] -> features [B, T, conv_dim[-1]]: "valid" 1-D convolutions, each followed
    by the extractor's normalisation and the activation.

    ``norm="group"`` (wav2vec 2.0 / HuBERT / WavLM base): after the first convolution only, a
    GroupNorm with one group per channel, i.e. each channel standardised over time (here over the
    valid frames) with an affine ``scale`` / ``bias``. ``norm="layer"`` (the large "lv60"
    models): a LayerNorm over channels after every convolution.

    Attributes:
      conv_dim, conv_kernel, conv_stride: channels, kernel and stride of each convolution.
      conv_bias: whether the convolutions have a bias.
      norm: "group" or "layer".
      act: activation name (:func:`blocks.activation`).
      dtype: computation dtype (statistics stay float32).
    """

    conv_dim: Sequence[int]
    conv_kernel: Sequence[int]
    conv_stride: Sequence[int]
    conv_bias: bool = False
    norm: str = "group"
    act: str = "gelu"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, lengths: jnp.ndarray) -> jnp.ndarray:
        """x [B, S] (already normalised), lengths int [B] valid samples -> [B, T, C]."""
        act = activation(self.act)
        h = x[..., None].astype(self.dtype)  # [B, S, 1]
        for i, (c, k, s) in enumerate(
                zip(self.conv_dim, self.conv_kernel, self.conv_stride, strict=True)):
            h = nn.Conv(c, (k,), (s,), padding="VALID", use_bias=self.conv_bias,
                        dtype=self.dtype, name=f"conv_{i}")(h)  # [B, T_i, C_i]
            if self.norm == "layer":
                h = nn.LayerNorm(TORCH_LN_EPS, dtype=self.dtype, name=f"norm_{i}")(h)
            elif self.norm == "group" and i == 0:
                frames = conv_output_lengths(lengths, self.conv_kernel[:1], self.conv_stride[:1])
                valid = prefix_mask(frames, h.shape[1])[..., None]  # [B, T_0, 1]
                h = TimeNorm(self.dtype, name="norm_0")(h, valid)
            h = act(h)
        return h


class TimeNorm(nn.Module):
    """Each channel standardised over the valid frames of its row, then ``scale`` / ``bias``:
    PyTorch's ``GroupNorm(C, C)`` on [B, C, T] with its statistics restricted to the valid
    frames (eps 1e-5, biased variance)."""

    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, valid: jnp.ndarray) -> jnp.ndarray:
        """x [B, T, C], valid bool [B, T, 1] -> [B, T, C]."""
        c = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (c,))
        bias = self.param("bias", nn.initializers.zeros, (c,))
        return (masked_standardize(x, valid, TORCH_LN_EPS) * scale + bias).astype(self.dtype)


class PositionalConvEmbedding(nn.Module):
    """wav2vec 2.0's relative positional embedding: a grouped convolution over time (kernel
    ``kernel``, zero padding ``kernel // 2`` at both ends, the last frame dropped when ``kernel``
    is even so the output keeps T frames) with a weight-normalised kernel, then the activation.

    The weight norm (Salimans & Kingma 2016) is kept as its two parameters, so fine-tuning
    updates what the reference updates: ``weight_v`` [K, D / groups, D] (Flax's convolution
    layout) and ``weight_g`` [K], one magnitude per kernel tap (PyTorch's ``dim=2``); the kernel is
    ``weight_v * weight_g / ||weight_v||`` with the norm over the last two axes.

    Attributes:
      kernel: ``num_conv_pos_embeddings``.
      groups: ``num_conv_pos_embedding_groups``; D must divide by it.
      act: activation name.
      dtype: computation dtype (the kernel is normalised in float32).
    """

    kernel: int
    groups: int
    act: str = "gelu"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        """x [B, T, D] (padded frames already zero) -> [B, T, D].

        Raises:
          ValueError: D not divisible by ``groups``.
        """
        d = x.shape[-1]
        if d % self.groups:
            raise ValueError(f"hidden size {d} is not divisible by "
                             f"num_conv_pos_embedding_groups={self.groups}")
        std = 2.0 * (1.0 / (self.kernel * d)) ** 0.5  # the reference's initialiser
        v = self.param("weight_v", nn.initializers.normal(std), (self.kernel, d // self.groups, d))
        g = self.param("weight_g", lambda _: jnp.sqrt(jnp.sum(jnp.square(v), axis=(1, 2))))
        b = self.param("bias", nn.initializers.zeros, (d,))
        norm = jnp.sqrt(jnp.sum(jnp.square(v), axis=(1, 2)))  # [K]
        w = (v * (g / norm)[:, None, None]).astype(self.dtype)
        pad = self.kernel // 2
        y = jax.lax.conv_general_dilated(
            x.astype(self.dtype), w, window_strides=(1,), padding=((pad, pad),),
            dimension_numbers=("NWC", "WIO", "NWC"), feature_group_count=self.groups)
        y = y + b.astype(self.dtype)
        if self.kernel % 2 == 0:
            y = y[:, :-1]  # the even kernel's extra frame
        return activation(self.act)(y)


class FeatureProjection(nn.Module):
    """[LayerNorm ->] Dense to the Transformer's width (HuBERT can drop the LayerNorm)."""

    hidden_size: int
    layer_norm: bool = True
    ln_eps: float = TORCH_LN_EPS
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        """x [B, T, C] -> [B, T, hidden_size]."""
        if self.layer_norm:
            x = nn.LayerNorm(self.ln_eps, dtype=self.dtype, name="layer_norm")(x)
        return nn.Dense(self.hidden_size, dtype=self.dtype, name="projection")(x)


def embed_waveform(cfg: Any, x: jnp.ndarray, mask: Optional[jnp.ndarray],
                   train: bool) -> tuple[jnp.ndarray, jnp.ndarray]:
    """The front end up to the Transformer's input, called inside an encoder's compact
    ``__call__`` (its submodules ``feature_extractor``, ``feature_projection`` and ``pos_conv``
    belong to that encoder).

    Args:
      cfg: a :class:`wav2vec2.Wav2Vec2Config` (or a subclass).
      x: float [B, S] 16 kHz waveform.
      mask: bool [B, S] valid samples (a prefix per row) or None.
      train: enables dropout (rng ``"dropout"``).

    Returns:
      ``(h, lengths)``: h [B, T, D] the features plus their positional embedding (zero at padded
      frames before the addition), lengths int32 [B] valid frames.

    Raises:
      ValueError: x is not [B, S], or S is shorter than the extractor's receptive field.
    """
    if x.ndim != 2:
        raise ValueError(f"input has shape {x.shape}; expected a waveform [B, S]")
    b, s = x.shape
    need = min_samples(cfg.conv_kernel, cfg.conv_stride)
    if s < need:
        raise ValueError(f"{s} samples are fewer than the feature extractor's receptive field "
                         f"({need} samples = one frame)")
    dtype = jnp.dtype(cfg.dtype)
    samples = lengths_of(mask, b, s)  # [B]
    valid = prefix_mask(samples, s)  # [B, S]
    x = jnp.where(valid, x.astype(jnp.float32), 0.0)
    if cfg.normalize_input:
        x = jnp.where(valid, masked_standardize(x, valid, NORMALIZE_EPS), 0.0)
    h = ConvFeatureExtractor(cfg.conv_dim, cfg.conv_kernel, cfg.conv_stride, cfg.conv_bias,
                             cfg.feat_extract_norm, cfg.feat_extract_activation, dtype,
                             name="feature_extractor")(x, samples)  # [B, T, C]
    lengths = conv_output_lengths(samples, cfg.conv_kernel, cfg.conv_stride)
    h = FeatureProjection(cfg.hidden_size, cfg.feat_proj_layer_norm, cfg.layer_norm_eps, dtype,
                          name="feature_projection")(h)  # [B, T, D]
    h = nn.Dropout(cfg.feat_proj_dropout)(h, deterministic=not train)
    h = jnp.where(prefix_mask(lengths, h.shape[1])[..., None], h, 0.0)
    h = h + PositionalConvEmbedding(cfg.num_conv_pos_embeddings,
                                    cfg.num_conv_pos_embedding_groups,
                                    cfg.feat_extract_activation, dtype, name="pos_conv")(h)
    return h, lengths
