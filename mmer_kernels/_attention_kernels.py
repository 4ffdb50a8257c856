"""Kernel bodies of the fused masked attention (forward, dK/dV, dQ) on un-padded arrays.

Bodies touch refs through ``plgpu.load`` / ``plgpu.store`` with masks (the only Triton-specific
calls), ``pl.ds`` slices, ``pl.program_id`` and ``lax.fori_loop``. Nothing is padded outside
the kernels: tiles that run past an array's end (sequence tail, head dim D below the
power-of-two tile width Dp) are read with masked loads (zeros) and written with masked stores.

Refs reach a body as one ``dict`` (``names`` says which ref is which), so optional inputs
(masks, bias) and outputs (bias gradients) need no positional juggling. Per program, after
BlockSpec squeezing:
  * q/o/do tiles [rows, Dp]; k/v [Lk_blk, Dp] (whole key axis) or [bk, Dp];
  * ql/kl int32 [B]: valid lengths, or one past the last valid position with masks;
  * qm/km int32 masks (1 = valid; only for non-prefix masks) over the whole axis;
  * lse/delta float32 per query row (lse in base 2: log2 of the softmax denominator plus the
    row max of the base-2 logits; +inf for a row with no probability mass);
  * bias: "full" [rows_q, cols_k] tiles, "q" one value per query row, "k" one per key.

Logits are base 2: ``s2 = (q.k) * sm_scale * log2(e) + bias * log2(e)``, so softmax terms are
``exp2`` and log2(e) costs nothing extra. Validity masks are applied only on boundary tiles: the
key tiles that cross the valid length, the tiles on the causal diagonal, and every tile with
a non-prefix key mask; interior tiles run unmasked.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plgpu

from mmer_kernels._common import NEG_INF

_F32 = jnp.float32
LOG2E = math.log2(math.e)


def _dot_nt(a, b):
    """a [m, d] @ b[n, d]^T -> float32 [m, n] (contract the last dims; an operand layout)."""
    return lax.dot_general(a, b, (((1,), (1,)), ((), ())), preferred_element_type=_F32)


def _dot_nn(a, b):
    """a [m, n] @ b [n, d] -> float32 [m, d]."""
    return lax.dot_general(a, b, (((1,), (0,)), ((), ())), preferred_element_type=_F32)


def _and(a, b):
    if a is None:
        return b
    return a if b is None else a & b


def _load(ref, mask, other=0.0):
    """``ref[...]``, masked (``other`` where the mask is False) when a mask is given."""
    if mask is None:
        return plgpu.load(ref)
    return plgpu.load(ref, mask=mask, other=other)


def _store(ref, val, mask):
    if mask is None:
        plgpu.store(ref, val.astype(ref.dtype))
    else:
        plgpu.store(ref, val.astype(ref.dtype), mask=mask)


def _in_bounds(start, size, length, static_full):
    """Bool [size]: positions start + i < length; None when statically always true."""
    if static_full:
        return None
    return (start + lax.broadcasted_iota(jnp.int32, (size,), 0)) < length


def _col_mask(d, dp):
    """Bool [1, Dp] marking the real head-dim columns; None when D is a power of two."""
    if d == dp:
        return None
    return (lax.broadcasted_iota(jnp.int32, (dp,), 0) < d)[None, :]


def _rows2(rows, cols):
    """[rows, 1] & [1, cols] (either may be None) -> a 2-D mask or None."""
    return _and(None if rows is None else rows[:, None], cols)


def _bias_tile(r, kind, q_start, bq, k_start, bk, lq, lk, transposed):
    """Bias (times log2 e) as [bq, bk] (or [bk, bq] when transposed), bounds-masked to 0."""
    ref = r["bias"]
    qs, ks = pl.ds(q_start, bq), pl.ds(k_start, bk)
    qin = (q_start + lax.broadcasted_iota(jnp.int32, (bq,), 0)) < lq
    kin = (k_start + lax.broadcasted_iota(jnp.int32, (bk,), 0)) < lk
    if kind == "q":
        b = _load(ref.at[qs], qin).astype(_F32) * LOG2E
        return b[None, :] if transposed else b[:, None]
    if kind == "k":
        b = _load(ref.at[ks], kin).astype(_F32) * LOG2E
        return b[:, None] if transposed else b[None, :]
    if transposed:  # [bk, bq] straight from memory: index arrays, no register transpose
        rows = q_start + lax.broadcasted_iota(jnp.int32, (1, bq), 1)
        cols = k_start + lax.broadcasted_iota(jnp.int32, (bk, 1), 0)
        return plgpu.load(ref.at[rows, cols], mask=(rows < lq) & (cols < lk),
                          other=0.0).astype(_F32) * LOG2E
    return _load(ref.at[qs, ks], qin[:, None] & kin[None, :]).astype(_F32) * LOG2E


def _key_valid(r, km_mode, k_start, bk, klen, lk):
    """Bool [bk]: key column valid (length or mask), False past the array end."""
    cols = k_start + lax.broadcasted_iota(jnp.int32, (bk,), 0)
    if km_mode:
        return _load(r["km"].at[pl.ds(k_start, bk)], cols < lk, 0) != 0
    return cols < klen


def _causal(q_start, bq, k_start, bk, transposed):
    """Bool [bq, bk] (or [bk, bq]): query i sees key j <= i."""
    shape = (bk, bq) if transposed else (bq, bk)
    qi = q_start + lax.broadcasted_iota(jnp.int32, shape, 1 if transposed else 0)
    kj = k_start + lax.broadcasted_iota(jnp.int32, shape, 0 if transposed else 1)
    return qi >= kj


def _kv_tiles(klen, q_start, qlen, bq, bk, causal, km_mode):
    """(first masked tile, end) of the key-tile loop of a query tile.

    Tiles [0, n_full) lie wholly inside the valid keys (and, under causal, left of the
    diagonal of every row of the tile); tiles [n_full, n_end) need masking. A query tile wholly
    past the valid queries visits nothing.
    """
    n_end = pl.cdiv(klen, bk)
    n_full = 0 if km_mode else klen // bk
    if causal:
        n_end = jnp.minimum(n_end, pl.cdiv(q_start + bq, bk))
        n_full = jnp.minimum(n_full, (q_start + 1) // bk)
    n_end = jnp.where(q_start < qlen, n_end, 0)
    return jnp.minimum(n_full, n_end), n_end


def fwd_kernel(*refs, names, sm_scale, causal, block_q, block_k, lq, lk, d, qm_mode, km_mode,
               bias_kind):
    """Online-softmax forward for one (query tile, batch, head); writes o and base-2 lse."""
    r = dict(zip(names, refs, strict=True))
    bq, bk = block_q, block_k
    iq, b = pl.program_id(0), pl.program_id(1)
    q_start = iq * bq
    dp = r["q"].shape[-1]
    cmask = _col_mask(d, dp)
    row_in = _in_bounds(q_start, bq, lq, lq % bq == 0)
    q = _load(r["q"], _rows2(row_in, cmask))
    qlen, klen = r["ql"][b], r["kl"][b]
    scale = sm_scale * LOG2E
    n_full, n_end = _kv_tiles(klen, q_start, qlen, bq, bk, causal, km_mode)

    def body(masked):
        def step(j, carry):
            acc, m_prev, l_prev = carry
            k_start = pl.multiple_of(j * bk, bk)
            ks = pl.ds(k_start, bk)
            kvalid = _key_valid(r, km_mode, k_start, bk, klen, lk) if masked else None
            kin = _in_bounds(k_start, bk, lk, not masked)  # interior tiles are in bounds
            k = _load(r["k"].at[ks, :], _rows2(kin, cmask))
            s = _dot_nt(q, k) * scale  # [bq, bk], base-2 logits
            if bias_kind:
                s = s + _bias_tile(r, bias_kind, q_start, bq, k_start, bk, lq, lk, False)
            valid = None
            if masked:
                valid = kvalid[None, :]
                if causal:
                    valid = valid & _causal(q_start, bq, k_start, bk, False)
                s = jnp.where(valid, s, NEG_INF)
            m_new = jnp.maximum(m_prev, jnp.max(s, axis=1))
            p = jnp.exp2(s - m_new[:, None])
            if masked:  # a row with nothing valid yet has m_new == NEG_INF: exp2(0) = 1
                p = jnp.where(valid, p, 0.0)
            alpha = jnp.exp2(m_prev - m_new)
            v = _load(r["v"].at[ks, :], _rows2(kin, cmask))
            acc = acc * alpha[:, None] + _dot_nn(p.astype(v.dtype), v)
            return acc, m_new, l_prev * alpha + jnp.sum(p, axis=1)
        return step

    init = (jnp.zeros((bq, dp), _F32), jnp.full((bq,), NEG_INF, _F32), jnp.zeros((bq,), _F32))
    carry = lax.fori_loop(0, n_full, body(False), init)
    acc, m, denom = lax.fori_loop(n_full, n_end, body(True), carry)
    rows = q_start + lax.broadcasted_iota(jnp.int32, (bq,), 0)
    if qm_mode:
        qvalid = _load(r["qm"].at[pl.ds(q_start, bq)], rows < lq, 0) != 0
    else:
        qvalid = rows < qlen
    # No mass: padded query, no valid key, or every logit -inf. Output 0; lse +inf, so the
    # backward's exp2(s - lse) is 0 for the row without any query mask there.
    has_mass = (denom > 0) & qvalid
    safe_l = jnp.where(has_mass, denom, 1.0)
    o = jnp.where(has_mass[:, None], acc / safe_l[:, None], 0.0)
    _store(r["o"], o, _rows2(row_in, cmask))
    _store(r["lse"], jnp.where(has_mass, m + jnp.log2(safe_l), jnp.inf), row_in)


def dkv_kernel(*refs, names, sm_scale, causal, block_q, block_k, lq, lk, d, qm_mode, km_mode,
               bias_kind):
    """dK, dV (and, for a key-only bias, its column sums) for one (key tile, batch, head).

    The key tile stays resident; query tiles stream through. Products are formed transposed
    (rows = keys): s^T = k q^T, dv += p^T do, dp^T = v do^T, dk += ds^T q, so P and dS are
    never transposed in registers.
    """
    del qm_mode  # padded query rows carry lse = +inf, so their probabilities are exactly 0
    r = dict(zip(names, refs, strict=True))
    bq, bk = block_q, block_k
    jk, b = pl.program_id(0), pl.program_id(1)
    k_start = jk * bk
    dp_ = r["k"].shape[-1]
    cmask = _col_mask(d, dp_)
    kin = _in_bounds(k_start, bk, lk, lk % bk == 0)
    k = _load(r["k"], _rows2(kin, cmask))
    v = _load(r["v"], _rows2(kin, cmask))
    qlen, klen = r["ql"][b], r["kl"][b]
    kvalid = _key_valid(r, km_mode, k_start, bk, klen, lk)
    scale = sm_scale * LOG2E
    lo = k_start // bq if causal else 0
    hi = jnp.where(k_start < klen, pl.cdiv(qlen, bq), lo)  # wholly padded key tile: nothing
    hi = jnp.maximum(hi, lo)
    # Query tiles [lo, mid) cross the causal diagonal or meet invalid keys: masked.
    mid = pl.cdiv(k_start + bk - 1, bq) if causal else lo
    keys_full = (k_start + bk <= klen) if not km_mode else False
    mid = jnp.where(keys_full, jnp.clip(mid, lo, hi), hi)
    q_tail = lq % bq != 0
    want_dbias = "dbias" in r

    def body(masked):
        def step(i, carry):
            dk, dv, db = carry
            q_start = pl.multiple_of(i * bq, bq)
            qs = pl.ds(q_start, bq)
            qin = _in_bounds(q_start, bq, lq, not q_tail)
            q = _load(r["q"].at[qs, :], _rows2(qin, cmask))
            do = _load(r["do"].at[qs, :], _rows2(qin, cmask))
            lse = _load(r["lse"].at[qs], qin, jnp.inf)
            delta = _load(r["delta"].at[qs], qin)
            st = _dot_nt(k, q) * scale  # [bk, bq]
            if bias_kind:
                st = st + _bias_tile(r, bias_kind, q_start, bq, k_start, bk, lq, lk, True)
            pt = jnp.exp2(st - lse[None, :])
            if masked:
                valid = kvalid[:, None]
                if causal:
                    valid = valid & _causal(q_start, bq, k_start, bk, True)
                pt = jnp.where(valid, pt, 0.0)
            dv = dv + _dot_nn(pt.astype(do.dtype), do)
            dpt = _dot_nt(v, do)  # [bk, bq]
            dst = pt * (dpt - delta[None, :])
            dk = dk + _dot_nn(dst.astype(q.dtype), q)
            if want_dbias:
                db = db + jnp.sum(dst, axis=1)
            return dk, dv, db
        return step

    zeros = jnp.zeros((bk, dp_), _F32)
    carry = (zeros, zeros, jnp.zeros((bk,), _F32))
    carry = lax.fori_loop(lo, mid, body(True), carry)
    dk, dv, db = lax.fori_loop(mid, hi, body(False), carry)
    _store(r["dk"], dk * sm_scale, _rows2(kin, cmask))
    _store(r["dv"], dv, _rows2(kin, cmask))
    if want_dbias:
        _store(r["dbias"], db, kin)


def dq_kernel(*refs, names, sm_scale, causal, block_q, block_k, lq, lk, d, qm_mode, km_mode,
              bias_kind):
    """dQ (and d-bias for "full" and query-only biases) for one (query tile, batch, head)."""
    del qm_mode
    r = dict(zip(names, refs, strict=True))
    bq, bk = block_q, block_k
    iq, b = pl.program_id(0), pl.program_id(1)
    q_start = iq * bq
    dp_ = r["q"].shape[-1]
    cmask = _col_mask(d, dp_)
    row_in = _in_bounds(q_start, bq, lq, lq % bq == 0)
    q = _load(r["q"], _rows2(row_in, cmask))
    do = _load(r["do"], _rows2(row_in, cmask))
    lse = _load(r["lse"], row_in, jnp.inf)
    delta = _load(r["delta"], row_in)
    qlen, klen = r["ql"][b], r["kl"][b]
    scale = sm_scale * LOG2E
    n_full, n_end = _kv_tiles(klen, q_start, qlen, bq, bk, causal, km_mode)
    want_dbias = "dbias" in r
    qin_all = lax.broadcasted_iota(jnp.int32, (bq,), 0) + q_start < lq

    def body(masked):
        def step(j, carry):
            dq, db = carry
            k_start = pl.multiple_of(j * bk, bk)
            ks = pl.ds(k_start, bk)
            kin = _in_bounds(k_start, bk, lk, not masked)
            k = _load(r["k"].at[ks, :], _rows2(kin, cmask))
            v = _load(r["v"].at[ks, :], _rows2(kin, cmask))
            s = _dot_nt(q, k) * scale
            if bias_kind:
                s = s + _bias_tile(r, bias_kind, q_start, bq, k_start, bk, lq, lk, False)
            p = jnp.exp2(s - lse[:, None])
            if masked:
                valid = _key_valid(r, km_mode, k_start, bk, klen, lk)[None, :]
                if causal:
                    valid = valid & _causal(q_start, bq, k_start, bk, False)
                p = jnp.where(valid, p, 0.0)
            ds = p * (_dot_nt(do, v) - delta[:, None])  # dL/ds (natural log) == dL/dbias
            if want_dbias and bias_kind == "full":
                kcols = k_start + lax.broadcasted_iota(jnp.int32, (bk,), 0)
                _store(r["dbias"].at[:, ks], ds, qin_all[:, None] & (kcols < lk)[None, :])
            elif want_dbias:
                db = db + jnp.sum(ds, axis=1)
            return dq + _dot_nn(ds.astype(k.dtype), k), db
        return step

    carry = (jnp.zeros((bq, dp_), _F32), jnp.zeros((bq,), _F32))
    carry = lax.fori_loop(0, n_full, body(False), carry)
    dq, db = lax.fori_loop(n_full, n_end, body(True), carry)
    _store(r["dq"], dq * sm_scale, _rows2(row_in, cmask))
    if want_dbias and bias_kind == "q":
        _store(r["dbias"], db, row_in)
    elif want_dbias:
        # Key tiles the loop skipped still get written: their gradient is exactly zero.
        def zero_fill(j, carry):
            k_start = pl.multiple_of(j * bk, bk)
            kcols = k_start + lax.broadcasted_iota(jnp.int32, (bk,), 0)
            _store(r["dbias"].at[:, pl.ds(k_start, bk)], jnp.zeros((bq, bk), _F32),
                   qin_all[:, None] & (kcols < lk)[None, :])
            return carry

        lax.fori_loop(n_end, pl.cdiv(lk, bk), zero_fill, 0)
