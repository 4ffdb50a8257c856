"""Kernel bodies of the dynamic convolution (forward, d-logits + probabilities, d-input).

Bodies touch refs through masked ``plgpu.load`` / ``plgpu.store`` (Triton-specific), index
arrays, ``pl.program_id`` and ``lax.fori_loop``. Nothing is padded or transposed outside the
kernels: x and y are read as [B, T, H, R] (a free reshape of [B, T, C]) and the logits in their
own [B, T, H, K] layout; the halo rows before t = 0 and after T, the tail tile, and R or K
below their power-of-two tile widths are all handled by load / store masks.

Layout per program (one time tile, batch, head), after BlockSpec squeezing:
  x / dy [T_blk, Rp] (whole time axis: taps read rows t - P + k), y / dx tiles [bt, Rp];
  logits / probabilities / d-logits tiles [bt, Kp]; lengths int32 [B]; mask int32 [T_blk].
The softmax over the K taps is a plain softmax over the [bt, Kp] tile (one exp per tap).
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plgpu

from mmer_kernels._common import NEG_INF

_F32 = jnp.float32


def _iota(n, axis=0, shape=None):
    return lax.broadcasted_iota(jnp.int32, shape or (n,), axis)


def _valid_rows(r, rows, t_len, mask_mode, b):
    """Bool for int32 positions ``rows``: inside [0, T) and valid (length or mask)."""
    inside = (rows >= 0) & (rows < t_len)
    if mask_mode:
        return plgpu.load(r["m"].at[rows], mask=inside, other=0) != 0
    return inside & (rows < r["len"][b])


def _softmax_tile(r, t0, bt, t_len, taps):
    """Softmax over taps of the logits tile (rows t0..t0+bt): float32 [bt, Kp], 0 in padded
    taps."""
    kp = r["w"].shape[-1]
    rows = t0 + _iota(bt, 0, (bt, kp))
    cols = _iota(kp, 1, (bt, kp))
    w = plgpu.load(r["w"], mask=(rows < t_len) & (cols < taps),
                   other=NEG_INF).astype(_F32)
    e = jnp.where(cols < taps, jnp.exp(w - jnp.max(w, axis=1, keepdims=True)), 0.0)
    return e / jnp.sum(e, axis=1, keepdims=True), cols


def _tap(p, cols, k):
    """Column k of a [bt, Kp] tile as [bt] (a masked row sum: no dynamic register slicing)."""
    return jnp.sum(jnp.where(cols == k, p, 0.0), axis=1)


def _rows_tile(r, name, rows, valid, rp_mask):
    """Rows ``rows`` [bt] of a whole-time [T_blk, Rp] ref as float32, 0 where not valid."""
    cols = _iota(r[name].shape[-1], 1, (1, r[name].shape[-1]))
    mask = valid[:, None] if rp_mask is None else valid[:, None] & rp_mask
    return plgpu.load(r[name].at[rows[:, None], cols], mask=mask, other=0.0).astype(_F32)


def _rp_mask(r, name, rr):
    rp = r[name].shape[-1]
    return None if rr == rp else (_iota(rp, 1, (1, rp)) < rr)


def fwd_kernel(*refs, names, block_t, taps, offset, t_len, r_len, mask_mode):
    """y[t] = valid[t] * sum_k p[t, k] * x[t - P + k] (x read as zero where not valid)."""
    r = dict(zip(names, refs, strict=True))
    bt = block_t
    t0, b = pl.program_id(0) * bt, pl.program_id(1)
    p, cols = _softmax_tile(r, t0, bt, t_len, taps)
    rpm = _rp_mask(r, "x", r_len)
    out_rows = t0 + _iota(bt)

    def body(k, acc):
        rows = out_rows - offset + k
        xk = _rows_tile(r, "x", rows, _valid_rows(r, rows, t_len, mask_mode, b), rpm)
        return acc + _tap(p, cols, k)[:, None] * xk

    acc = lax.fori_loop(0, taps, body, jnp.zeros((bt, r["x"].shape[-1]), _F32))
    valid = _valid_rows(r, out_rows, t_len, mask_mode, b)
    acc = jnp.where(valid[:, None], acc, 0.0)
    in_t = (out_rows < t_len)[:, None]
    plgpu.store(r["y"], acc.astype(r["y"].dtype), mask=in_t if rpm is None else in_t & rpm)


def dlogits_kernel(*refs, names, block_t, taps, offset, t_len, r_len, mask_mode):
    """d logits[t, k] = p[t, k] (dp[t, k] - sum_k' p[t, k'] dp[t, k']), dp = dy[t] . x[t-P+k].

    Also writes the probabilities, zeroed at padded outputs, for the d-input kernel.
    """
    r = dict(zip(names, refs, strict=True))
    bt = block_t
    t0, b = pl.program_id(0) * bt, pl.program_id(1)
    p, cols = _softmax_tile(r, t0, bt, t_len, taps)
    rpm = _rp_mask(r, "x", r_len)
    out_rows = t0 + _iota(bt)
    valid = _valid_rows(r, out_rows, t_len, mask_mode, b)
    dy = _rows_tile(r, "dy", out_rows, valid, rpm)  # padded outputs carry no gradient

    def body(k, dp):
        rows = out_rows - offset + k
        xk = _rows_tile(r, "x", rows, _valid_rows(r, rows, t_len, mask_mode, b), rpm)
        return dp + jnp.where(cols == k, jnp.sum(dy * xk, axis=1)[:, None], 0.0)

    dp = lax.fori_loop(0, taps, body, jnp.zeros(p.shape, _F32))
    dw = p * (dp - jnp.sum(p * dp, axis=1, keepdims=True))
    store_mask = ((out_rows < t_len)[:, None]) & (cols < taps)
    plgpu.store(r["dw"], dw.astype(r["dw"].dtype), mask=store_mask)
    plgpu.store(r["p"], jnp.where(valid[:, None], p, 0.0), mask=store_mask)


def dx_kernel(*refs, names, block_t, taps, offset, t_len, r_len, mask_mode):
    """dx[s] = valid[s] * sum_k p[s + P - k, k] dy[s + P - k] (the transposed convolution)."""
    r = dict(zip(names, refs, strict=True))
    bt = block_t
    s0, b = pl.program_id(0) * bt, pl.program_id(1)
    rpm = _rp_mask(r, "dy", r_len)
    in_rows = s0 + _iota(bt)

    def body(k, acc):
        rows = in_rows + offset - k
        inside = (rows >= 0) & (rows < t_len)
        pk = plgpu.load(r["p"].at[rows, k], mask=inside, other=0.0)  # 0 at padded outputs
        return acc + pk[:, None] * _rows_tile(r, "dy", rows, inside, rpm)

    acc = lax.fori_loop(0, taps, body, jnp.zeros((bt, r["dy"].shape[-1]), _F32))
    acc = jnp.where(_valid_rows(r, in_rows, t_len, mask_mode, b)[:, None], acc, 0.0)
    in_t = (in_rows < t_len)[:, None]
    plgpu.store(r["dx"], acc.astype(r["dx"].dtype), mask=in_t if rpm is None else in_t & rpm)
