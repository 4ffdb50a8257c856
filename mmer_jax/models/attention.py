"""Multi-head self/cross attention that routes the core op through ``kernels.attention``.

The projections live here; the softmax(QK^T)V step is delegated to the project's attention op so
that one config field (``attention_impl``) switches a model between XLA, the Pallas kernel and the
Pallas interpreter. ``kernels.attention`` is imported lazily: while it is absent, the "xla" path
falls back to :func:`reference_attention` below, which follows the same contract.
"""

from __future__ import annotations

import importlib
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

# attention_impl (config value) -> keyword arguments for kernels.attention.attention.
IMPLS = {
    "auto": {"implementation": None, "interpret": False},  # Pallas on GPU, XLA elsewhere
    "xla": {"implementation": "xla", "interpret": False},
    "pallas": {"implementation": "pallas", "interpret": False},
    "interpret": {"implementation": "pallas", "interpret": True},
}


def reference_attention(
    q: jnp.ndarray,
    k: jnp.ndarray,
    v: jnp.ndarray,
    *,
    q_mask: Optional[jnp.ndarray] = None,
    kv_mask: Optional[jnp.ndarray] = None,
    bias: Optional[jnp.ndarray] = None,
    causal: bool = False,
) -> jnp.ndarray:
    """Plain einsum attention with the same contract as ``kernels.attention.attention``.

    Args:
      q: [B, Lq, H, D] queries.
      k: [B, Lk, H, D] keys.
      v: [B, Lk, H, D] values.
      q_mask: [B, Lq] bool; False rows return zeros.
      kv_mask: [B, Lk] bool; False keys get no weight.
      bias: optional additive logits bias broadcastable to [B, H, Lq, Lk].
      causal: if True, query i attends only to keys j <= i.

    Returns:
      [B, Lq, H, D]; rows with no valid key (or a False q_mask) are zeros, not NaN.
    """
    b, lq, _, d = q.shape
    lk = k.shape[1]
    s = jnp.einsum("bqhd,bkhd->bhqk", q, k).astype(jnp.float32) / jnp.sqrt(d).astype(jnp.float32)
    if bias is not None:
        s = s + bias.astype(jnp.float32)
    valid = jnp.ones((b, 1, lq, lk), bool)
    if kv_mask is not None:
        valid = valid & kv_mask[:, None, None, :]
    if q_mask is not None:
        valid = valid & q_mask[:, None, :, None]
    if causal:
        valid = valid & jnp.tril(jnp.ones((lq, lk), bool))[None, None]
    s = jnp.where(valid, s, -jnp.inf)
    # A row with no valid key would give NaN from softmax; compute it on a safe row and zero it.
    any_valid = jnp.any(valid, axis=-1, keepdims=True)  # [B, H|1, Lq, 1]
    p = jax.nn.softmax(jnp.where(any_valid, s, 0.0), axis=-1)
    p = jnp.where(valid, p, 0.0)
    out = jnp.einsum("bhqk,bkhd->bqhd", p.astype(v.dtype), v)
    return out


def attention_op(impl: str = "xla"):
    """Returns a callable ``f(q, k, v, *, q_mask, kv_mask, bias, causal)`` for ``impl``.

    Raises:
      ValueError: unknown ``impl``.
      ImportError: ``impl`` needs the Pallas kernel but ``kernels.attention`` is not importable.
    """
    if impl not in IMPLS:
        raise ValueError(f"attention_impl={impl!r} must be one of {sorted(IMPLS)}")
    try:
        kernel = importlib.import_module("kernels.attention").attention
    except ModuleNotFoundError as exc:
        if exc.name not in ("kernels", "kernels.attention"):
            raise
        if impl not in ("xla", "auto"):
            raise ImportError(
                f"attention_impl={impl!r} needs kernels/attention.py, which is not importable"
            ) from exc
        return reference_attention
    kwargs = IMPLS[impl]
    return lambda q, k, v, **kw: kernel(q, k, v, **kw, **kwargs)


class MultiHeadAttention(nn.Module):
    """Multi-head attention: project, attend through ``kernels.attention``, merge heads.

    Attributes:
      num_heads: number of heads; ``qkv_features`` must divide by it.
      qkv_features: total width of the q/k/v projections (defaults to the input width).
      out_features: output width (defaults to the input width).
      dropout: dropout on the merged heads (the attention op itself has no dropout).
      attention_impl: "xla" | "pallas" | "interpret" | "auto", passed to the attention op.
    """

    num_heads: int
    qkv_features: Optional[int] = None
    out_features: Optional[int] = None
    dropout: float = 0.0
    attention_impl: str = "xla"

    @nn.compact
    def __call__(
        self,
        x_q: jnp.ndarray,
        x_kv: Optional[jnp.ndarray] = None,
        *,
        q_mask: Optional[jnp.ndarray] = None,
        kv_mask: Optional[jnp.ndarray] = None,
        causal: bool = False,
        train: bool = False,
    ) -> jnp.ndarray:
        """x_q [B, Lq, Din], x_kv [B, Lk, Din] (defaults to x_q) -> [B, Lq, Dout]."""
        if x_kv is None:
            x_kv, kv_mask = x_q, (q_mask if kv_mask is None else kv_mask)
        features = self.qkv_features or x_q.shape[-1]
        if features % self.num_heads:
            raise ValueError(f"qkv_features={features} not divisible by {self.num_heads=}")
        head_dim = features // self.num_heads
        proj = lambda name: nn.DenseGeneral((self.num_heads, head_dim), name=name)  # noqa: E731
        q = proj("query")(x_q)  # [B, Lq, H, Dh]
        k = proj("key")(x_kv)  # [B, Lk, H, Dh]
        v = proj("value")(x_kv)  # [B, Lk, H, Dh]
        o = attention_op(self.attention_impl)(
            q, k, v, q_mask=q_mask, kv_mask=kv_mask, bias=None, causal=causal
        )  # [B, Lq, H, Dh]
        o = nn.Dropout(self.dropout)(o, deterministic=not train)
        return nn.DenseGeneral(self.out_features or x_q.shape[-1], axis=(-2, -1), name="out")(o)
