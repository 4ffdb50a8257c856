"""Triton kernel bodies of the fused masked attention (forward; backward as one kernel with
FlashAttention-2's five products per tile pair) on un-padded arrays.

Bodies touch refs through ``plgpu.load`` / ``plgpu.store`` with masks (the only Triton-specific
calls), ``pl.ds`` slices, ``pl.program_id`` and ``lax.fori_loop``. Nothing is padded outside
the kernels: tiles that run past an array's end (sequence tail, head dim D below the
power-of-two tile width Dp) are read with masked loads (zeros) and written with masked stores.

Refs reach a body as one ``dict`` (``names`` says which ref is which), so optional inputs
(masks, bias) and outputs (bias gradients) need no positional juggling. Per program, after
BlockSpec squeezing:
  * forward: q/o tiles [rows, Dp], k/v [Lk_blk, Dp] (whole key axis); backward: q/do
    [Lq_blk, Dp] and k/v/dk/dv [Lk_blk, Dp] whole, dq float32 [Lq_blk, Dp] (this key-tile
    group's slice);
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


def _dot_tn(a, b):
    """a [n, m]^T @ b [n, d] -> float32 [m, d] (contract the first dims)."""
    return lax.dot_general(a, b, (((0,), (0,)), ((), ())), preferred_element_type=_F32)


def bwd_kernel(*refs, names, sm_scale, causal, block_q, block_k, lq, lk, d, qm_mode, km_mode,
               bias_kind, groups, sync=True):
    """The whole backward for key tiles g, g+G, ... of one (batch, head): dK, dV, dQ (and the
    bias gradient), FlashAttention-2's five products per tile pair.

    A key tile stays resident while query tiles stream through; per pair the products are
    formed transposed (rows = keys): s^T = k q^T, dv += p^T do, dp^T = v do^T, dk += ds^T q,
    and dq += ds k, so p^T is exponentiated once and neither P nor dS is transposed in
    registers. dq (and a query-only bias' gradient) sums over key tiles without atomics: this
    program owns the float32 slice ``dq[g]`` (zeroed first) and adds each tile into it by a
    masked load and store; the caller sums the G slices, so the result does not depend on the
    order programs run in.
    """
    del qm_mode  # padded query rows carry lse = +inf, so their probabilities are exactly 0
    r = dict(zip(names, refs, strict=True))
    bq, bk = block_q, block_k
    g, b = pl.program_id(0), pl.program_id(1)
    dp_ = r["k"].shape[-1]
    cmask = _col_mask(d, dp_)
    qlen, klen = r["ql"][b], r["kl"][b]
    scale = sm_scale * LOG2E
    q_tail = lq % bq != 0
    want_dbias = "dbias" in r
    n_q = pl.cdiv(lq, bq)

    def q_rows(i):
        q_start = pl.multiple_of(i * bq, bq)
        return q_start, pl.ds(q_start, bq), _in_bounds(q_start, bq, lq, not q_tail)

    def zero_slices(i, carry):
        _, qs, qin = q_rows(i)
        _store(r["dq"].at[qs, :], jnp.zeros((bq, dp_), _F32), _rows2(qin, cmask))
        if want_dbias and bias_kind == "q":
            _store(r["dbias"].at[qs], jnp.zeros((bq,), _F32), qin)
        return carry

    lax.fori_loop(0, n_q, zero_slices, 0)

    def key_tile(n, carry):
        k_start = pl.multiple_of((g + n * groups) * bk, bk)
        ks = pl.ds(k_start, bk)
        kin = _in_bounds(k_start, bk, lk, lk % bk == 0)
        kcols = k_start + lax.broadcasted_iota(jnp.int32, (bk,), 0)
        k = _load(r["k"].at[ks, :], _rows2(kin, cmask))
        v = _load(r["v"].at[ks, :], _rows2(kin, cmask))
        kvalid = _key_valid(r, km_mode, k_start, bk, klen, lk)
        lo = k_start // bq if causal else 0
        hi = jnp.where(k_start < klen, pl.cdiv(qlen, bq), lo)  # wholly padded key tile
        hi = jnp.maximum(hi, lo)
        # Query tiles [lo, mid) cross the causal diagonal or meet invalid keys: masked.
        mid = pl.cdiv(k_start + bk - 1, bq) if causal else lo
        keys_full = (k_start + bk <= klen) if not km_mode else False
        mid = jnp.where(keys_full, jnp.clip(mid, lo, hi), hi)
        # This program's previous key tile wrote the dq tiles read below (other threads of
        # the program may hold them): all its stores must be visible first. (Pallas'
        # interpreter, sequential, has no barrier: ``sync=False`` there.)
        if sync:
            plgpu.debug_barrier()

        def body(masked):
            def step(i, acc):
                dk, dv, db = acc
                q_start, qs, qin = q_rows(i)
                q = _load(r["q"].at[qs, :], _rows2(qin, cmask))
                do = _load(r["do"].at[qs, :], _rows2(qin, cmask))
                lse = _load(r["lse"].at[qs], qin, jnp.inf)
                delta = _load(r["delta"].at[qs], qin)
                st = _dot_nt(k, q) * scale  # [bk, bq]
                if bias_kind:
                    st = st + _bias_tile(r, bias_kind, q_start, bq, k_start, bk, lq, lk, True)
                pt = jnp.exp2(st - lse[None, :])  # the only exponentials of the pair
                if masked:
                    valid = kvalid[:, None]
                    if causal:
                        valid = valid & _causal(q_start, bq, k_start, bk, True)
                    pt = jnp.where(valid, pt, 0.0)
                dv = dv + _dot_nn(pt.astype(do.dtype), do)
                dst = pt * (_dot_nt(v, do) - delta[None, :])  # dL/ds^T (natural log)
                dk = dk + _dot_nn(dst.astype(q.dtype), q)
                dq_tile = r["dq"].at[qs, :]
                qmask = _rows2(qin, cmask)
                dq = _dot_tn(dst.astype(k.dtype), k) * sm_scale
                _store(dq_tile, _load(dq_tile, qmask) + dq, qmask)
                if want_dbias and bias_kind == "k":
                    db = db + jnp.sum(dst, axis=1)
                elif want_dbias and bias_kind == "q":
                    _store(r["dbias"].at[qs], _load(r["dbias"].at[qs], qin)
                           + jnp.sum(dst, axis=0), qin)
                elif want_dbias:  # "full": [bk, bq] straight to memory through index arrays
                    rows = q_start + lax.broadcasted_iota(jnp.int32, (1, bq), 1)
                    plgpu.store(r["dbias"].at[rows, kcols[:, None]], dst,
                                mask=(rows < lq) & (kcols[:, None] < lk))
                return dk, dv, db
            return step

        zeros = jnp.zeros((bk, dp_), _F32)
        acc = lax.fori_loop(lo, mid, body(True), (zeros, zeros, jnp.zeros((bk,), _F32)))
        dk, dv, db = lax.fori_loop(mid, hi, body(False), acc)
        _store(r["dk"].at[ks, :], dk * sm_scale, _rows2(kin, cmask))
        _store(r["dv"].at[ks, :], dv, _rows2(kin, cmask))
        if want_dbias and bias_kind == "k":
            _store(r["dbias"].at[ks], db, kin)
        elif want_dbias and bias_kind == "full":
            # Query tiles this key tile skipped still get written: their gradient is zero.
            def zero_fill(i, c):
                _, qs, qin = q_rows(i)
                _store(r["dbias"].at[qs, ks], jnp.zeros((bq, bk), _F32),
                       qin[:, None] & (kcols < lk)[None, :])
                return c

            lax.fori_loop(0, lo, zero_fill, 0)
            lax.fori_loop(hi, n_q, zero_fill, 0)
        return carry

    lax.fori_loop(0, pl.cdiv(pl.cdiv(lk, bk) - g, groups), key_tile, 0)
