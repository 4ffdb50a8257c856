"""Transformer pieces shared by the pretrained encoders (Whisper, wav2vec 2.0, HuBERT, WavLM, BERT).

Parameter names follow one scheme in every architecture, so an importer maps a checkpoint's
tensors onto them the same way: ``attention/{query,key,value,out}`` (``Dense`` kernels
``[D_in, D_out]``, i.e. a PyTorch ``Linear`` weight transposed), ``attention_norm``,
``ffn/{fc1,fc2}`` and ``ffn_norm`` (``LayerNorm`` ``scale`` / ``bias``).

The softmax(QK^T)V step goes through the project's attention op (:mod:`mmer_kernels.attention`,
chosen by ``implementation``: "xla", "pallas", "cudnn", "interpret" or "auto"), with the padding
given as valid prefix lengths so the Pallas kernel masks only boundary tiles. An additive
``bias`` ([B, H, T, T] or broadcastable; WavLM's gated relative position bias) is the kernel's
bias input and is differentiated through it.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp

from mmer_jax.models.ops import ATTENTION_IMPLEMENTATIONS, lookup

# PyTorch's default LayerNorm epsilon; BERT uses 1e-12 and passes its own.
TORCH_LN_EPS = 1e-5


@flax.struct.dataclass
class EncoderOutput:
    """What every pretrained encoder returns.

    Attributes:
      hidden_states: tuple of L + 1 arrays ``[B, T, D]`` (the layer-0 input, then each layer's
        output, in the reference implementation's order and normalisation: for pre-LN stacks
        the last entry has the final LayerNorm applied, as Hugging Face returns it). Vision
        encoders return ``[B, H, W, C]`` stage outputs instead. Values at padded positions are
        unspecified: read them through ``mask``.
      mask: bool ``[B, T]``, True on valid frames/tokens (a prefix per row), or None where every
        position is valid (vision).
    """

    hidden_states: tuple
    mask: Optional[jnp.ndarray]

    @property
    def last_hidden_state(self) -> jnp.ndarray:
        return self.hidden_states[-1]


def activation(name: str) -> Callable[[jnp.ndarray], jnp.ndarray]:
    """The activation a checkpoint's config names (``hidden_act`` / ``activation_function``).

    "gelu" is the exact (erf) GELU of ``torch.nn.functional.gelu``; "gelu_new"/"gelu_pytorch_tanh"
    the tanh approximation.

    Raises:
      ValueError: an unknown name.
    """
    table = {
        "gelu": lambda x: jax.nn.gelu(x, approximate=False),
        "gelu_new": lambda x: jax.nn.gelu(x, approximate=True),
        "gelu_pytorch_tanh": lambda x: jax.nn.gelu(x, approximate=True),
        "relu": jax.nn.relu,
        "swish": jax.nn.silu,
        "silu": jax.nn.silu,
        "tanh": jnp.tanh,
    }
    if name not in table:
        raise ValueError(f"activation {name!r} is not supported (known: {sorted(table)})")
    return table[name]


def lengths_of(mask: Optional[jnp.ndarray], batch: int, length: int) -> jnp.ndarray:
    """int32 [B] valid prefix lengths of a bool [B, T] padding mask (all T when None).

    A mask is read as a prefix of ``mask.sum(-1)`` positions: padding sits at the end of a row,
    as the project's batching puts it.
    """
    if mask is None:
        return jnp.full((batch,), length, jnp.int32)
    return mask.astype(jnp.int32).sum(-1)


def prefix_mask(lengths: jnp.ndarray, length: int) -> jnp.ndarray:
    """bool [B, T]: position t < lengths[b]."""
    return jnp.arange(length)[None, :] < lengths[:, None]


class SelfAttention(nn.Module):
    """Multi-head self-attention with q/k/v/out projections, as the reference models lay it out.

    Attributes:
      num_heads: heads; ``D`` must divide by it.
      qkv_bias: (query, key, value) bias flags (Whisper's key projection has none).
      implementation: the attention op's backend (:mod:`mmer_jax.models.ops`).
      dtype: computation dtype (parameters stay float32).
    """

    num_heads: int
    qkv_bias: Sequence[bool] = (True, True, True)
    implementation: str = "xla"
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, lengths: jnp.ndarray,
                 bias: Optional[jnp.ndarray] = None) -> jnp.ndarray:
        """x [B, T, D], lengths int [B], bias broadcastable to [B, H, T, T] -> [B, T, D]."""
        d = x.shape[-1]
        if d % self.num_heads:
            raise ValueError(f"hidden size {d} is not divisible by num_heads={self.num_heads}")
        head_dim = d // self.num_heads

        def proj(name, use_bias):
            return nn.DenseGeneral((self.num_heads, head_dim), use_bias=use_bias,
                                   dtype=self.dtype, name=name)

        q = proj("query", self.qkv_bias[0])(x)  # [B, T, H, Dh]
        k = proj("key", self.qkv_bias[1])(x)
        v = proj("value", self.qkv_bias[2])(x)
        attend = lookup(ATTENTION_IMPLEMENTATIONS, self.implementation)
        o = attend(q, k, v, q_lengths=lengths, kv_lengths=lengths,
                   bias=None if bias is None else bias.astype(q.dtype))  # [B, T, H, Dh]
        return nn.DenseGeneral(d, axis=(-2, -1), dtype=self.dtype, name="out")(o)


class FeedForward(nn.Module):
    """fc1 -> activation -> fc2 (dropout after each, as the references place it)."""

    hidden: int
    act: str = "gelu"
    dropout: float = 0.0
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, *, train: bool = False) -> jnp.ndarray:
        y = activation(self.act)(nn.Dense(self.hidden, dtype=self.dtype, name="fc1")(x))
        y = nn.Dropout(self.dropout)(y, deterministic=not train)
        return nn.Dense(x.shape[-1], dtype=self.dtype, name="fc2")(y)


class TransformerLayer(nn.Module):
    """One encoder layer in either LayerNorm order.

    ``pre_norm=True`` (Whisper; wav2vec 2.0 "stable layer norm"):
    ``x + Attn(LN(x))`` then ``x + FFN(LN(x))``. ``pre_norm=False`` (BERT, RoBERTa, wav2vec 2.0 /
    HuBERT / WavLM base): ``LN(x + Attn(x))`` then ``LN(x + FFN(x))``.

    Attributes:
      num_heads, ffn_dim, act: the layer's sizes and FFN activation.
      pre_norm: the LayerNorm order (above).
      ln_eps: LayerNorm epsilon.
      qkv_bias: (query, key, value) bias flags.
      dropout: dropout on the attention and FFN outputs (residual branch).
      implementation, dtype: as :class:`SelfAttention`.
    """

    num_heads: int
    ffn_dim: int
    act: str = "gelu"
    pre_norm: bool = True
    ln_eps: float = TORCH_LN_EPS
    qkv_bias: Sequence[bool] = (True, True, True)
    dropout: float = 0.0
    implementation: str = "xla"
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, lengths: jnp.ndarray,
                 bias: Optional[jnp.ndarray] = None, train: bool = False) -> jnp.ndarray:
        """x [B, T, D], lengths int [B] -> [B, T, D]."""
        attn = SelfAttention(self.num_heads, tuple(self.qkv_bias), self.implementation,
                             self.dtype, name="attention")
        ffn = FeedForward(self.ffn_dim, self.act, 0.0, self.dtype, name="ffn")
        ln_a = nn.LayerNorm(self.ln_eps, dtype=self.dtype, name="attention_norm")
        ln_f = nn.LayerNorm(self.ln_eps, dtype=self.dtype, name="ffn_norm")
        drop = nn.Dropout(self.dropout)
        if self.pre_norm:
            x = x + drop(attn(ln_a(x), lengths, bias), deterministic=not train)
            return x + drop(ffn(ln_f(x), train=train), deterministic=not train)
        x = ln_a(x + drop(attn(x, lengths, bias), deterministic=not train))
        return ln_f(x + drop(ffn(x, train=train), deterministic=not train))


def layer_class(cls: type, remat: bool) -> type:
    """``cls``, or its rematerialised version (activations recomputed in the backward pass, so
    a deep encoder trains in less memory). ``train`` (the last positional argument of a
    :class:`TransformerLayer` call) stays static."""
    return nn.remat(cls, static_argnums=(4,)) if remat else cls
