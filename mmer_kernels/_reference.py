"""Plain-jnp references for the kernels, with exactly the kernels' semantics.

These run on every non-GPU platform (the dispatch's "xla" path) and are what the
tests compare the Pallas kernels against. Gradients come from JAX autodiff.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from mmer_kernels._common import NEG_INF, resolve_mask

PADDINGS = ("centered", "causal")


def attention_reference(q, k, v, *, q_lengths=None, kv_lengths=None, q_mask=None,
                        kv_mask=None, bias=None, causal=False, sm_scale=None):
    """Masked softmax attention, the semantics of ``mmer_kernels.attention.attention``.

    Logits and softmax are float32 for float32 and bfloat16 inputs; gradients come from
    autodiff. Unlike :func:`mmer_kernels.attention` it does not check the shapes of q, k and v.

    Args:
        q: float32 or bfloat16 [B, Lq, H, D].
        k, v: [B, Lk, H, D].
        q_lengths, kv_lengths: int [B] valid prefix lengths (or None).
        q_mask, kv_mask: bool [B, Lq] / [B, Lk], True = valid (or None).
        bias: additive logits bias broadcastable to [B, H, Lq, Lk] (or None); -inf entries
            are masked keys, and a row with no finite logit outputs zeros (zero gradients).
        causal: query i sees keys j <= i (top-left aligned when Lq != Lk).
        sm_scale: logits scale, default 1/sqrt(D).

    Returns:
        [B, Lq, H, D] in q.dtype. Padded query rows, rows with no valid key and rows whose
        logits are all -inf are zero.

    Raises:
        ValueError: lengths and mask given for one side, or a mask / lengths of the wrong shape.
        ValueError or TypeError: from jnp, when q, k, v or bias have incompatible shapes.
    """
    b, lq, h, d = q.shape
    lk = k.shape[1]
    qm = resolve_mask(q_lengths, q_mask, batch=b, seq_len=lq, name="q_")
    km = resolve_mask(kv_lengths, kv_mask, batch=b, seq_len=lk, name="kv_")
    scale = 1.0 / math.sqrt(d) if sm_scale is None else sm_scale
    # Float32 logits and softmax for float32 and bfloat16 inputs alike.
    s = jnp.einsum("bqhd,bkhd->bhqk", q, k, preferred_element_type=jnp.float32) * scale
    if bias is not None:
        s = s + bias.astype(jnp.float32)
    valid = qm[:, None, :, None] & km[:, None, None, :]  # [B, 1, Lq, Lk]
    if causal:
        valid = valid & (jnp.arange(lq)[:, None] >= jnp.arange(lk)[None, :])
    s = jnp.where(valid, s, NEG_INF)
    # Clamped at NEG_INF (finite): a row whose logits are all -inf (bias) then gets
    # exp(-inf - NEG_INF) = 0 everywhere and outputs zeros, as in the kernel, not NaN.
    m = jax.lax.stop_gradient(jnp.maximum(jnp.max(s, axis=-1, keepdims=True), NEG_INF))
    # Explicit zeroing: with every key masked, exp(s - m) would be 1, not 0.
    p = jnp.where(valid, jnp.exp(s - m), 0.0)
    denom = jnp.sum(p, axis=-1, keepdims=True)
    p = p / jnp.where(denom > 0, denom, 1.0)
    out = jnp.einsum("bhqk,bkhd->bqhd", p, v.astype(jnp.float32))
    return out.astype(q.dtype)


def conv_offset(kernel_size: int, padding: str) -> int:
    """Number of taps P before the centre tap: output t reads inputs t-P .. t-P+K-1.

    Args:
        kernel_size: K.
        padding: "centered" (P = (K-1)//2) or "causal" (P = K-1).

    Returns:
        P.

    Raises:
        ValueError: ``padding`` is neither "centered" nor "causal".
    """
    if padding not in PADDINGS:
        raise ValueError(f"{padding=} must be one of {PADDINGS}")
    return (kernel_size - 1) // 2 if padding == "centered" else kernel_size - 1


def dynamic_conv_reference(x, weight_logits, *, mask=None, lengths=None, padding="centered"):
    """Dynamic convolution (Wu et al. 2019), the semantics of ``mmer_kernels.dynamic_conv``.

    y[b, t, c] = sum_k softmax_k(weight_logits[b, t, h(c), :])[k] * x[b, t - P + k, c]
    with h(c) = c // (C / H), zero input outside [0, T) and at padded positions, and
    zero output at padded positions. The softmax runs over all K taps, including taps
    that land on padding (they just read zeros), as in fairseq.

    Accumulates in float32 for float32 and bfloat16 inputs; gradients come from autodiff.

    Args:
        x: float32 or bfloat16 [B, T, C].
        weight_logits: [B, T, H, K], C divisible by H.
        mask: bool [B, T], True = valid (or None).
        lengths: int [B] valid prefix lengths (or None); exclusive with mask.
        padding: "centered" (P = (K-1)//2) or "causal" (P = K-1).

    Returns:
        [B, T, C] in x.dtype, zero at padded positions.

    Raises:
        ValueError: ``padding`` is neither "centered" nor "causal".
        ValueError: both mask and lengths, or either of the wrong shape.
        TypeError: C is not divisible by H (from the reshape).
    """
    b, t, c = x.shape
    _, _, h, kk = weight_logits.shape
    p_off = conv_offset(kk, padding)
    m = resolve_mask(lengths, mask, batch=b, seq_len=t, name="")
    xm = jnp.where(m[..., None], x, 0).astype(jnp.float32)
    xp = jnp.pad(xm, ((0, 0), (p_off, kk - 1 - p_off), (0, 0)))  # [B, T+K-1, C]
    cols = jnp.stack([xp[:, i:i + t] for i in range(kk)], axis=2)  # [B, T, K, C]
    cols = cols.reshape(b, t, kk, h, c // h)
    w = jax.nn.softmax(weight_logits.astype(jnp.float32), axis=-1)  # [B, T, H, K]
    y = jnp.einsum("btkhr,bthk->bthr", cols, w).reshape(b, t, c)
    return jnp.where(m[..., None], y, 0).astype(x.dtype)
