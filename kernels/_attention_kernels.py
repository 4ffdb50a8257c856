"""Kernel bodies of the fused masked attention (forward, dK/dV, dQ).

Bodies only touch refs through ``ref[...]`` / ``pl.ds`` slices, ``pl.program_id`` and
``lax.fori_loop``; nothing here is Triton-specific, so porting to another Pallas
backend means rewriting the thin ``pallas_call`` wrappers in attention.py, not these.

Shared layout (per program, after BlockSpec squeezing): q/k/v/do tiles are [rows, D];
masks are int32 rows (1 = valid); bounds are int32 [B] (one past the last valid
position); lse/delta are float32 rows; bias tiles are [rows_q, cols_k].
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl

from kernels._common import NEG_INF

_F32 = jnp.float32


def _dot_nt(a, b):
    """a [m, d] @ b[n, d]^T -> float32 [m, n] (contract the last dims, no explicit .T)."""
    return lax.dot_general(a, b, (((1,), (1,)), ((), ())), preferred_element_type=_F32)


def _dot_nn(a, b):
    """a [m, n] @ b [n, d] -> float32 [m, d]."""
    return lax.dot_general(a, b, (((1,), (0,)), ((), ())), preferred_element_type=_F32)


def _dot_tn(a, b):
    """a[m, n]^T @ b [m, d] -> float32 [n, d]."""
    return lax.dot_general(a, b, (((0,), (0,)), ((), ())), preferred_element_type=_F32)


def _valid(qm, km, q_start, k_start, block_q, block_k, causal):
    """Boolean [block_q, block_k]: query row valid, key column valid, and causal."""
    valid = (qm[:, None] != 0) & (km[None, :] != 0)
    if causal:
        qi = q_start + lax.broadcasted_iota(jnp.int32, (block_q, block_k), 0)
        kj = k_start + lax.broadcasted_iota(jnp.int32, (block_q, block_k), 1)
        valid = valid & (qi >= kj)
    return valid


def _num_kv_blocks(kv_bound, q_start, q_bound, block_q, block_k, causal):
    """KV blocks a query block must visit: stop at the last valid key (and the diagonal)."""
    n = pl.cdiv(kv_bound, block_k)
    if causal:
        n = jnp.minimum(n, pl.cdiv(q_start + block_q, block_k))
    # A query block lying wholly in the padding visits nothing and writes zeros.
    return jnp.where(q_start < q_bound, n, 0)


def fwd_kernel(q_ref, k_ref, v_ref, qm_ref, km_ref, qb_ref, kb_ref, *rest,
               sm_scale, causal, block_q, block_k, has_bias):
    """Online-softmax forward for one (query block, batch, head).

    Refs: q [bq, D], k/v [Lk_pad, D], qm [bq], km [Lk_pad], qb/kb [B],
    optional bias [bq, Lk_pad]; outputs o [bq, D], lse [bq].
    """
    bias_ref = rest[0] if has_bias else None
    o_ref, lse_ref = rest[-2:]
    iq, b = pl.program_id(0), pl.program_id(1)
    q_start = iq * block_q
    q = q_ref[...]
    qm = qm_ref[...]
    n_kv = _num_kv_blocks(kb_ref[b], q_start, qb_ref[b], block_q, block_k, causal)

    def body(j, carry):
        acc, m_prev, l_prev = carry
        k_start = pl.multiple_of(j * block_k, block_k)
        ks = pl.ds(k_start, block_k)
        s = _dot_nt(q, k_ref[ks, :]) * sm_scale  # [bq, bk] float32
        if bias_ref is not None:
            s = s + bias_ref[:, ks].astype(_F32)
        valid = _valid(qm, km_ref[ks], q_start, k_start, block_q, block_k, causal)
        s = jnp.where(valid, s, NEG_INF)
        m_new = jnp.maximum(m_prev, jnp.max(s, axis=1))
        p = jnp.where(valid, jnp.exp(s - m_new[:, None]), 0.0)
        alpha = jnp.exp(m_prev - m_new)  # rescales what was accumulated so far
        v = v_ref[ks, :]
        acc = acc * alpha[:, None] + _dot_nn(p.astype(v.dtype), v)
        return acc, m_new, l_prev * alpha + jnp.sum(p, axis=1)

    d = q.shape[-1]
    init = (jnp.zeros((block_q, d), _F32), jnp.full((block_q,), NEG_INF, _F32),
            jnp.zeros((block_q,), _F32))
    acc, m, denom = lax.fori_loop(0, n_kv, body, init)
    # denom == 0: padded query row or no valid key at all -> output zeros, lse 0 (unused:
    # the backward re-masks probabilities, so the stored value never matters there).
    has_mass = (denom > 0) & (qm != 0)
    safe_l = jnp.where(has_mass, denom, 1.0)
    o_ref[...] = jnp.where(has_mass[:, None], acc / safe_l[:, None], 0.0).astype(o_ref.dtype)
    lse_ref[...] = jnp.where(has_mass, m + jnp.log(safe_l), 0.0)


def dkv_kernel(q_ref, k_ref, v_ref, do_ref, lse_ref, delta_ref, qm_ref, km_ref, qb_ref,
               kb_ref, *rest, sm_scale, causal, block_q, block_k, has_bias):
    """dK and dV for one (key block, batch, head), looping over query blocks.

    Refs: q/do [Lq_pad, D], k/v [bk, D], lse/delta/qm [Lq_pad], km [bk], qb/kb [B],
    optional bias [Lq_pad, bk]; outputs dk/dv [bk, D].
    """
    bias_ref = rest[0] if has_bias else None
    dk_ref, dv_ref = rest[-2:]
    ik, b = pl.program_id(0), pl.program_id(1)
    k_start = ik * block_k
    k, v = k_ref[...], v_ref[...]
    km = km_ref[...]
    # Queries before the diagonal cannot see this key block under causal masking.
    lo = k_start // block_q if causal else 0
    hi = pl.cdiv(qb_ref[b], block_q)
    hi = jnp.where(k_start < kb_ref[b], hi, lo)  # key block wholly padded: nothing to do

    def body(i, carry):
        dk, dv = carry
        q_start = pl.multiple_of(i * block_q, block_q)
        qs = pl.ds(q_start, block_q)
        q, do = q_ref[qs, :], do_ref[qs, :]
        s = _dot_nt(q, k) * sm_scale  # [bq, bk]
        if bias_ref is not None:
            s = s + bias_ref[qs, :].astype(_F32)
        valid = _valid(qm_ref[qs], km, q_start, k_start, block_q, block_k, causal)
        # Probabilities recomputed from the saved logsumexp; never stored.
        p = jnp.where(valid, jnp.exp(s - lse_ref[qs][:, None]), 0.0)
        dv = dv + _dot_tn(p.astype(do.dtype), do)
        dp = _dot_nt(do, v)  # [bq, bk]
        ds = p * (dp - delta_ref[qs][:, None])
        dk = dk + _dot_tn(ds.astype(q.dtype), q)
        return dk, dv

    d = k.shape[-1]
    zeros = jnp.zeros((block_k, d), _F32)
    dk, dv = lax.fori_loop(lo, hi, body, (zeros, zeros))
    dk_ref[...] = (dk * sm_scale).astype(dk_ref.dtype)
    dv_ref[...] = dv.astype(dv_ref.dtype)


def dq_kernel(q_ref, k_ref, v_ref, do_ref, lse_ref, delta_ref, qm_ref, km_ref, qb_ref,
              kb_ref, *rest, sm_scale, causal, block_q, block_k, has_bias):
    """dQ (and d-bias) for one (query block, batch, head), looping over key blocks.

    Refs: q/do [bq, D], k/v [Lk_pad, D], lse/delta/qm [bq], km [Lk_pad], qb/kb [B],
    optional bias [bq, Lk_pad]; outputs dq [bq, D] and, with bias, dbias [bq, Lk_pad].
    """
    bias_ref = rest[0] if has_bias else None
    dq_ref = rest[-2] if has_bias else rest[-1]
    dbias_ref = rest[-1] if has_bias else None
    iq, b = pl.program_id(0), pl.program_id(1)
    q_start = iq * block_q
    q, do = q_ref[...], do_ref[...]
    qm, lse, delta = qm_ref[...], lse_ref[...], delta_ref[...]
    n_kv = _num_kv_blocks(kb_ref[b], q_start, qb_ref[b], block_q, block_k, causal)

    def body(j, dq):
        k_start = pl.multiple_of(j * block_k, block_k)
        ks = pl.ds(k_start, block_k)
        k = k_ref[ks, :]
        s = _dot_nt(q, k) * sm_scale
        if bias_ref is not None:
            s = s + bias_ref[:, ks].astype(_F32)
        valid = _valid(qm, km_ref[ks], q_start, k_start, block_q, block_k, causal)
        p = jnp.where(valid, jnp.exp(s - lse[:, None]), 0.0)
        ds = p * (_dot_nt(do, v_ref[ks, :]) - delta[:, None])  # dL/ds == dL/dbias
        if dbias_ref is not None:
            dbias_ref[:, ks] = ds.astype(dbias_ref.dtype)
        return dq + _dot_nn(ds.astype(k.dtype), k)

    dq = lax.fori_loop(0, n_kv, body, jnp.zeros(q.shape, _F32))
    dq_ref[...] = (dq * sm_scale).astype(dq_ref.dtype)
    if dbias_ref is not None:
        # Skipped key blocks still get written: their gradient is exactly zero.
        def zero_fill(j, carry):
            dbias_ref[:, pl.ds(pl.multiple_of(j * block_k, block_k), block_k)] = jnp.zeros(
                (block_q, block_k), dbias_ref.dtype)
            return carry

        lax.fori_loop(n_kv, dbias_ref.shape[1] // block_k, zero_fill, 0)
