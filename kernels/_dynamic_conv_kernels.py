"""Kernel bodies of the dynamic convolution (forward, d-logits, d-input).

Like _attention_kernels.py, bodies use only ref slicing, ``pl.program_id`` and
``lax.fori_loop``, so they are independent of the Triton backend.

Layout per program (one time block, batch, head), after BlockSpec squeezing:
  x   [Tx, R]  halo-padded input of the head (row t + k feeds output t, tap k),
  w   [K, bt]  weight logits, taps major so a tap's column is a contiguous row,
  y   [bt, R], lse / delta / mask [bt].
The softmax over the K taps is fused as an online softmax over the tap loop.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl

from kernels._common import NEG_INF

_F32 = jnp.float32


def fwd_kernel(x_ref, w_ref, m_ref, y_ref, lse_ref, *, block_t, taps):
    """y[t] = mask[t] * sum_k softmax_k(w[:, t])[k] * x[t + k]; also lse[t] over taps."""
    t0 = pl.program_id(0) * block_t

    def body(k, carry):
        acc, m_prev, s_prev = carry
        logit = w_ref[k, :].astype(_F32)  # [bt]
        xk = x_ref[pl.ds(t0 + k, block_t), :].astype(_F32)  # [bt, R]
        m_new = jnp.maximum(m_prev, logit)
        alpha, e = jnp.exp(m_prev - m_new), jnp.exp(logit - m_new)
        return acc * alpha[:, None] + e[:, None] * xk, m_new, s_prev * alpha + e

    r = x_ref.shape[-1]
    init = (jnp.zeros((block_t, r), _F32), jnp.full((block_t,), NEG_INF, _F32),
            jnp.zeros((block_t,), _F32))
    acc, m, s = lax.fori_loop(0, taps, body, init)
    valid = m_ref[...] != 0
    y_ref[...] = jnp.where(valid[:, None], acc / s[:, None], 0.0).astype(y_ref.dtype)
    lse_ref[...] = m + jnp.log(s)  # s >= 1 after the loop: always finite


def dlogits_kernel(x_ref, w_ref, lse_ref, dy_ref, delta_ref, dw_ref, *, block_t, taps):
    """d logits[k, t] = p[k, t] * (sum_r dy[t] x[t + k] - delta[t]).

    dy arrives already masked; delta[t] = sum_r dy[t] y[t] = sum_k p[k, t] dp[k, t].
    """
    t0 = pl.program_id(0) * block_t
    dy = dy_ref[...].astype(_F32)  # [bt, R]
    lse, delta = lse_ref[...], delta_ref[...]

    def body(k, carry):
        p = jnp.exp(w_ref[k, :].astype(_F32) - lse)  # softmax recomputed from lse
        xk = x_ref[pl.ds(t0 + k, block_t), :].astype(_F32)
        dp = jnp.sum(dy * xk, axis=1)  # [bt]
        dw_ref[k, :] = (p * (dp - delta)).astype(dw_ref.dtype)
        return carry

    lax.fori_loop(0, taps, body, 0)


def dx_kernel(dy_ref, w_ref, lse_ref, dx_ref, *, block_t, taps):
    """dx[s] = sum_k p[k, s - k] dy[s - k] (the transposed convolution).

    dy/w/lse are front-padded by K - 1 rows of zeros, so row s - k sits at s + K - 1 - k.
    """
    s0 = pl.program_id(0) * block_t

    def body(k, acc):
        rows = pl.ds(s0 + taps - 1 - k, block_t)
        p = jnp.exp(w_ref[k, rows].astype(_F32) - lse_ref[rows])  # [bt]
        return acc + p[:, None] * dy_ref[rows, :].astype(_F32)

    acc = lax.fori_loop(0, taps, body, jnp.zeros(dx_ref.shape, _F32))
    dx_ref[...] = acc.astype(dx_ref.dtype)
