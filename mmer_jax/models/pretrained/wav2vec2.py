"""wav2vec 2.0 (Baevski et al. 2020, "wav2vec 2.0: A Framework for Self-Supervised Learning of
Speech Representations") and HuBERT (Hsu et al. 2021, "HuBERT: Self-Supervised Speech
Representation Learning by Masked Prediction of Hidden Units") encoders, in Flax.

Both share one architecture: the waveform front end of :mod:`conv_features` (7 strided
convolutions, 320 samples = 20 ms per frame at 16 kHz; feature projection; convolutional
positional embedding) -> a Transformer in one of two LayerNorm orders:

- post-LN (``do_stable_layer_norm=False``; the base models): LayerNorm after the positional
  embedding, then post-LN layers;
- pre-LN (``do_stable_layer_norm=True``; the large "lv60" / "ll60k" models): pre-LN layers, then a
  final LayerNorm.

HuBERT differs only in that its feature projection may lack the LayerNorm
(``feat_proj_layer_norm``). The pretraining heads (quantiser, ``project_q``, ``masked_spec_embed``
for SpecAugment, CTC ``lm_head``) are not part of the encoder.

Hidden states follow Hugging Face's order: the Transformer's input (after the encoder LayerNorm
in the post-LN order, before any in the pre-LN order), then each layer's output. One deviation:
in the pre-LN order the last entry is after the final LayerNorm, i.e. ``last_hidden_state``, as
:class:`EncoderOutput` promises and as transformers 4.x returned it; transformers 5.x's
``hidden_states[-1]`` of ``Wav2Vec2Model`` / ``HubertModel`` / ``WavLMModel`` is the last layer's
output before that LayerNorm.

Input: 16 kHz waveform float32 [B, S] and a bool mask [B, S]. ``normalize_input`` applies the
zero-mean / unit-variance normalisation of Hugging Face's feature extractor (``do_normalize``)
per utterance over its valid samples, so raw audio goes in.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.pretrained.blocks import (
    TORCH_LN_EPS,
    EncoderOutput,
    TransformerLayer,
    activation,
    layer_class,
    prefix_mask,
)
from mmer_jax.models.pretrained.conv_features import (
    conv_output_lengths,
    embed_waveform,
    min_samples,
)
from mmer_jax.registry import ARCHITECTURES, Architecture


@dataclasses.dataclass(frozen=True)
class Wav2Vec2Config:
    """A wav2vec 2.0 / HuBERT encoder's shape (defaults: wav2vec 2.0 base). Field names follow
    Hugging Face's ``Wav2Vec2Config`` / ``HubertConfig``.

    Attributes:
      conv_dim, conv_kernel, conv_stride: the feature extractor's convolutions (lists are
        turned into tuples, so a config read back from JSON compares equal).
      conv_bias: whether those convolutions have a bias.
      feat_extract_norm: "group" (GroupNorm after the first convolution) or "layer" (LayerNorm
        after every convolution).
      feat_extract_activation: activation of the extractor and the positional convolution.
      feat_proj_layer_norm: LayerNorm before the feature projection (always in wav2vec 2.0).
      hidden_size, num_hidden_layers, num_attention_heads, intermediate_size, hidden_act:
        the Transformer's size and FFN activation.
      layer_norm_eps: epsilon of the Transformer's and the projection's LayerNorms.
      num_conv_pos_embeddings, num_conv_pos_embedding_groups: kernel and groups of the
        positional convolution.
      do_stable_layer_norm: the pre-LN order (above) instead of post-LN.
      normalize_input: standardise each waveform over its valid samples first (what Hugging
        Face's feature extractor does with ``do_normalize=True``); the importer sets it from the
        checkpoint's ``preprocessor_config.json`` (``do_normalize``), else to
        ``feat_extract_norm == "layer"``.
      dropout: dropout on the Transformer's input and residual branches (``hidden_dropout``).
      feat_proj_dropout: dropout after the feature projection.
      implementation: attention backend (:mod:`mmer_jax.models.ops`).
      dtype: computation dtype, "float32", "bfloat16" or "float16" (parameters stay float32).
      remat: recompute each layer's activations in the backward pass.

    Raises:
      ValueError: sizes that do not divide (heads, positional groups), conv lists of unequal
        length, an unknown norm, activation or dtype.
    """

    conv_dim: tuple = (512,) * 7
    conv_kernel: tuple = (10, 3, 3, 3, 3, 2, 2)
    conv_stride: tuple = (5, 2, 2, 2, 2, 2, 2)
    conv_bias: bool = False
    feat_extract_norm: str = "group"
    feat_extract_activation: str = "gelu"
    feat_proj_layer_norm: bool = True
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    layer_norm_eps: float = TORCH_LN_EPS
    num_conv_pos_embeddings: int = 128
    num_conv_pos_embedding_groups: int = 16
    do_stable_layer_norm: bool = False
    normalize_input: bool = False
    dropout: float = 0.0
    feat_proj_dropout: float = 0.0
    implementation: str = "xla"
    dtype: str = "float32"
    remat: bool = False

    def __post_init__(self):
        for name in ("conv_dim", "conv_kernel", "conv_stride"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        if not len(self.conv_dim) == len(self.conv_kernel) == len(self.conv_stride):
            raise ValueError(f"conv_dim={self.conv_dim}, conv_kernel={self.conv_kernel} and "
                             f"conv_stride={self.conv_stride} must have one entry per layer")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size={self.hidden_size} is not divisible by "
                             f"num_attention_heads={self.num_attention_heads}")
        if self.hidden_size % self.num_conv_pos_embedding_groups:
            raise ValueError(f"hidden_size={self.hidden_size} is not divisible by "
                             f"num_conv_pos_embedding_groups={self.num_conv_pos_embedding_groups}")
        if self.feat_extract_norm not in ("group", "layer"):
            raise ValueError(f"feat_extract_norm={self.feat_extract_norm!r} must be 'group' or "
                             "'layer'")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"dtype={self.dtype!r} must be float32, bfloat16 or float16")
        activation(self.hidden_act)  # raises on an unknown name
        activation(self.feat_extract_activation)


def output_lengths(cfg: Wav2Vec2Config, samples: jnp.ndarray) -> jnp.ndarray:
    """Encoder frames for ``samples`` valid samples (the feature extractor's "valid"
    convolutions: 320 samples per frame for the released models)."""
    return conv_output_lengths(samples, cfg.conv_kernel, cfg.conv_stride)


class Wav2Vec2Encoder(nn.Module):
    """Waveform [B, S] (+ bool mask [B, S]) -> :class:`EncoderOutput` with
    ``num_hidden_layers + 1`` hidden states [B, T, hidden_size] (order in the module docstring)
    and the mask of the valid frames, from the convolutions' output lengths.

    Raises:
      ValueError: at trace time, x is not [B, S] or shorter than the feature extractor's
        receptive field (400 samples for the released models).
    """

    cfg: Wav2Vec2Config

    @nn.compact
    def __call__(self, x: jnp.ndarray, mask: Optional[jnp.ndarray] = None, *,
                 train: bool = False) -> EncoderOutput:
        c = self.cfg
        dtype = jnp.dtype(c.dtype)
        h, lengths = embed_waveform(c, x, mask, train)  # [B, T, D], [B]
        encoder_norm = nn.LayerNorm(c.layer_norm_eps, dtype=dtype, name="encoder_norm")
        if not c.do_stable_layer_norm:
            h = encoder_norm(h)
        h = nn.Dropout(c.dropout)(h, deterministic=not train)
        Layer = layer_class(TransformerLayer, c.remat)
        states = [h]
        for i in range(c.num_hidden_layers):
            h = Layer(c.num_attention_heads, c.intermediate_size, c.hidden_act,
                      pre_norm=c.do_stable_layer_norm, ln_eps=c.layer_norm_eps,
                      dropout=c.dropout, implementation=c.implementation, dtype=dtype,
                      name=f"layers_{i}")(h, lengths, None, train)
            states.append(h)
        if c.do_stable_layer_norm:
            states[-1] = encoder_norm(h)
        return EncoderOutput(tuple(states), prefix_mask(lengths, h.shape[1]))


def dummy_waveform(cfg: Wav2Vec2Config, batch: int):
    """Zero waveforms of one frame (the extractor's receptive field) and their mask."""
    s = min_samples(cfg.conv_kernel, cfg.conv_stride)
    return jnp.zeros((batch, s), jnp.float32), jnp.ones((batch, s), bool)


ARCHITECTURES.register("wav2vec2", Architecture(
    "wav2vec2", Wav2Vec2Config, Wav2Vec2Encoder, "audio", dummy_waveform))
ARCHITECTURES.register("hubert", Architecture(
    "hubert", Wav2Vec2Config, Wav2Vec2Encoder, "audio", dummy_waveform))
