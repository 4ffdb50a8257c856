"""Fused masked attention for Hopper (sm90) on Pallas' Mosaic GPU backend: forward and a
FlashAttention-2 backward (5 matrix products per tile pair, each exponential computed once).

Pallas' Triton backend is deprecated from jax 0.11; these kernels are the path that outlives
it. They cover the common case -- bfloat16/float16, D in {32, 64, 128}, prefix lengths, causal
or not, no bias, no non-prefix masks (:func:`unsupported` names what is missing); everything
else stays on the Triton kernels of ``_attention_kernels.py``.

Layout and tiling (one warpgroup per program, wgmma M = 64 rows):
  * q/k/v/o [B, L, H, D] as the caller gives them; a [64, D] tile of one (batch, head) is a
    2-D TMA copy (row stride H*D). TMA and Mosaic refuse tiles that run past an array's end,
    so the wrapper pads L to a tile multiple when it is not one (the Triton kernels do not pad).
  * lse / delta float32 [B, H, L] (the sequence minor, so a row tile is one contiguous copy),
    lse in base 2 and +inf for a row without probability mass, as in the Triton kernels.
  * Logits are base 2: s2 = (q.k) * sm_scale * log2(e).

Forward: program (query tile, b, h); K/V tiles stream through two SMEM slots (TMA + barrier),
tile j+1 loading while tile j is multiplied; key tiles left of the valid length (and left of
the causal diagonal) run unmasked.

Backward: program (key-tile group g, b, h) takes key tiles g, g+G, ...; per key tile dK and dV
stay in registers while query tiles stream, and per (query tile, key tile) pair it forms
s^T = k q^T, dv += p^T do, dp^T = v do^T, dk += ds^T q and dq += ds k -- five products, p^T
computed once. dq has no atomics (Pallas' interpreter has none, and TMA reduce-add is not
interpretable either): program g owns the float32 slice dq_acc[g] and adds each tile by
read-modify-write through SMEM; the wrapper sums the G slices (G = 1 when B*H fills the GPU).

Interpret mode (Pallas' Mosaic GPU interpreter, any backend) runs these same bodies -- TMA
copies, barriers, slots, loops, masks, softmax -- except for two things it cannot emulate in
jax 0.10.2: wgmma with a transposed or register operand (the products then run as ``jnp`` dots
on the same SMEM tiles) and register layouts (``layout_cast`` is skipped).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import mosaic_gpu as plgpu

from mmer_kernels import _common
from mmer_kernels._common import NEG_INF, round_up

_F32 = jnp.float32
LOG2E = math.log2(math.e)
BLOCK = 64  # rows of every tile: one warpgroup's wgmma M
HEAD_DIMS = (32, 64, 128)
DTYPES = ("bfloat16", "float16")


def unsupported(dtype, head_dim: int, *, has_bias: bool, has_masks: bool) -> str | None:
    """Why the Mosaic GPU kernels cannot run a call, or None when they can.

    Args:
        dtype: dtype of q, k and v.
        head_dim: D.
        has_bias, has_masks: the call passes a bias / a non-prefix q_mask or kv_mask.

    Returns:
        A reason (str) or None.

    Raises:
        TypeError: ``dtype`` is not a dtype.
    """
    if jnp.dtype(dtype).name not in DTYPES:
        return f"the Mosaic GPU kernels take {DTYPES}, not {jnp.dtype(dtype).name}"
    if head_dim not in HEAD_DIMS:
        return f"the Mosaic GPU kernels take D in {HEAD_DIMS}, got D={head_dim}"
    if has_bias:
        return "the Mosaic GPU kernels take no bias (the Triton kernels do)"
    if has_masks:
        return "the Mosaic GPU kernels take prefix lengths, not masks (the Triton kernels do)"
    return None


def interpret_params():
    """Pallas' Mosaic GPU interpreter settings (``interpret=`` of ``plgpu.kernel``).

    jax 0.10.2 keeps the class in ``jax._src``; a later jax may export it from
    ``jax.experimental.pallas.mosaic_gpu``, which is tried first.
    """
    cls = getattr(plgpu, "InterpretParams", None) or getattr(plgpu, "InterpretGPUParams", None)
    if cls is None:
        from jax._src.pallas.mosaic_gpu.interpret.params import InterpretGPUParams as cls
    return cls()


@dataclasses.dataclass(frozen=True)
class _Ops:
    """The few operations whose GPU form Pallas' interpreter lacks, with their interpret form."""

    interpret: bool

    def layout(self, x, layout):
        return x if self.interpret else plgpu.layout_cast(x, layout)

    def iota(self, shape, dim, layout):
        if self.interpret:
            return lax.broadcasted_iota(jnp.int32, shape, dim)
        return plgpu.broadcasted_iota(jnp.int32, shape, dim, layout=layout)

    def load(self, ref, layout):
        """A whole SMEM ref into registers of ``layout``."""
        return ref[...] if self.interpret else plgpu.load(ref, (), layout=layout)

    def mm(self, a, b, out_shape, *, trans_a=False, trans_b=False, a_in_regs=False):
        """float32 ``op(a) @ op(b)`` of SMEM refs (``a`` a register array instead when
        ``a_in_regs``, never transposed then) -- one wgmma on GPU."""
        if self.interpret:
            av = a if a_in_regs else a[...]
            av = av.T if trans_a else av
            bv = b[...].T if trans_b else b[...]
            return lax.dot_general(av, bv, (((1,), (0,)), ((), ())),
                                   preferred_element_type=_F32)
        a = plgpu.transpose_ref(a, (1, 0)) if trans_a else a
        b = plgpu.transpose_ref(b, (1, 0)) if trans_b else b

        def run(acc):
            plgpu.wgmma(acc, a, b)
            return acc[...]
        return pl.run_scoped(run, plgpu.ACC(out_shape, _F32))


def _smem(shape, dtype, row_elems=None):
    """SMEM tile in the swizzled layout wgmma reads: swizzle = bytes of ``row_elems`` (default:
    the tile's row) up to 128. Operands of one wgmma must share a swizzle."""
    dtype = jnp.dtype(dtype)
    swizzle = min(128, (row_elems or shape[-1]) * dtype.itemsize)
    tiling = plgpu.TilingTransform((8, swizzle // dtype.itemsize))
    return plgpu.SMEM(shape, dtype, transforms=(tiling, plgpu.SwizzleTransform(swizzle)))


def _bcast_rows(x, shape):
    """A per-row vector [rows] to [rows, cols]."""
    return lax.broadcast_in_dim(x, shape, [0])


def _bcast_cols(x, shape):
    """A per-column vector [cols] to [rows, cols]."""
    return lax.broadcast_in_dim(x, shape, [1])


def _key_tiles(klen, q_start, qlen, causal):
    """(first masked key tile, end) of a query tile's key loop, as in the Triton forward."""
    n_end = pl.cdiv(klen, BLOCK)
    n_full = klen // BLOCK
    if causal:
        n_end = jnp.minimum(n_end, pl.cdiv(q_start + BLOCK, BLOCK))
        n_full = jnp.minimum(n_full, (q_start + 1) // BLOCK)
    n_end = jnp.where(q_start < qlen, n_end, 0)
    return jnp.minimum(n_full, n_end), n_end


def _query_tiles(k_start, klen, qlen, causal):
    """(lo, mid, hi): a key tile's query tiles [lo, mid) need masking, [mid, hi) do not."""
    lo = k_start // BLOCK if causal else 0
    hi = jnp.where(k_start < klen, pl.cdiv(qlen, BLOCK), lo)
    hi = jnp.maximum(hi, lo)
    mid = pl.cdiv(k_start + BLOCK - 1, BLOCK) if causal else lo
    mid = jnp.where(k_start + BLOCK <= klen, jnp.clip(mid, lo, hi), hi)
    return lo, mid, hi


# ---------------------------------------------------------------------------- forward
def _fwd_body(q_g, k_g, v_g, ql_g, kl_g, o_g, lse_g, q_s, k_s, v_s, lse_s, kbar, vbar, qbar, *,
              sm_scale, causal, ops):
    """One (query tile, batch, head): o and base-2 lse of 64 query rows."""
    wg = plgpu.Layout.WGMMA
    row = wg.reduce(1)
    d = q_s.shape[-1]
    iq, b, h = lax.axis_index("q"), lax.axis_index("b"), lax.axis_index("h")
    q_start = iq * BLOCK
    qlen, klen = ql_g[b], kl_g[b]
    scale = sm_scale * LOG2E
    n_full, n_end = _key_tiles(klen, q_start, qlen, causal)
    plgpu.copy_gmem_to_smem(q_g.at[b, pl.ds(q_start, BLOCK), h], q_s, qbar)

    def fetch(j):
        slot, rows = lax.rem(j, 2), pl.ds(j * BLOCK, BLOCK)
        plgpu.copy_gmem_to_smem(k_g.at[b, rows, h], k_s.at[slot], kbar.at[slot])
        plgpu.copy_gmem_to_smem(v_g.at[b, rows, h], v_s.at[slot], vbar.at[slot])

    pl.when(n_end > 0)(lambda: fetch(0))
    plgpu.barrier_wait(qbar)

    def body(masked):
        def step(j, carry):
            acc, m_prev, l_prev = carry
            slot = lax.rem(j, 2)
            pl.when(j + 1 < n_end)(lambda: fetch(j + 1))  # overlaps this tile's products
            plgpu.barrier_wait(kbar.at[slot])
            s = ops.mm(q_s, k_s.at[slot], (BLOCK, BLOCK), trans_b=True) * scale
            if masked:
                cols = j * BLOCK + ops.iota((BLOCK, BLOCK), 1, wg)
                valid = cols < klen
                if causal:
                    valid = valid & (q_start + ops.iota((BLOCK, BLOCK), 0, wg) >= cols)
                s = jnp.where(valid, s, NEG_INF)
            m_new = jnp.maximum(m_prev, s.max(axis=1))
            p = jnp.exp2(s - _bcast_rows(m_new, s.shape))
            if masked:  # a row with nothing valid yet has m_new == NEG_INF: exp2(0) = 1
                p = jnp.where(valid, p, 0.0)
            alpha = jnp.exp2(m_prev - m_new)
            plgpu.barrier_wait(vbar.at[slot])
            pv = ops.mm(p.astype(v_s.dtype), v_s.at[slot], (BLOCK, d), a_in_regs=True)
            return (acc * _bcast_rows(alpha, acc.shape) + pv, m_new,
                    l_prev * alpha + p.sum(axis=1))
        return step

    init = (ops.layout(jnp.zeros((BLOCK, d), _F32), wg),
            ops.layout(jnp.full((BLOCK,), NEG_INF, _F32), row),
            ops.layout(jnp.zeros((BLOCK,), _F32), row))
    carry = lax.fori_loop(0, n_full, body(False), init)
    acc, m, denom = lax.fori_loop(n_full, n_end, body(True), carry)
    rows = q_start + ops.iota((BLOCK,), 0, row)
    has_mass = (denom > 0) & (rows < qlen)  # else output 0 and lse +inf (zero gradients)
    safe = jnp.where(has_mass, denom, 1.0)
    o = jnp.where(_bcast_rows(has_mass, acc.shape), acc / _bcast_rows(safe, acc.shape), 0.0)
    q_s[...] = o.astype(q_s.dtype)  # q is no longer needed: its tile stages o
    lse_s[...] = jnp.where(has_mass, m + jnp.log2(safe), jnp.inf)
    plgpu.commit_smem()
    plgpu.copy_smem_to_gmem(q_s, o_g.at[b, pl.ds(q_start, BLOCK), h])
    plgpu.copy_smem_to_gmem(lse_s, lse_g.at[b, h, pl.ds(q_start, BLOCK)])
    plgpu.wait_smem_to_gmem(0)


def fwd(q, k, v, ql, kl, *, sm_scale, causal, interpret):
    """Forward on tile-padded inputs.

    Args:
        q: [B, Lq, H, D] with Lq a multiple of 64; k, v [B, Lk, H, D], Lk a multiple of 64.
        ql, kl: int32 [B] valid lengths (<= the padded lengths).
        sm_scale: logits scale.
        causal: query i sees key j <= i.
        interpret: run in Pallas' Mosaic GPU interpreter.

    Returns:
        (o [B, Lq, H, D] in q.dtype, lse float32 [B, H, Lq] base 2, +inf at rows with no mass).
    """
    b, lq, h, d = q.shape
    body = functools.partial(_fwd_body, sm_scale=sm_scale, causal=causal, ops=_Ops(interpret))
    return plgpu.kernel(
        body,
        out_type=(jax.ShapeDtypeStruct(q.shape, q.dtype),
                  jax.ShapeDtypeStruct((b, h, lq), _F32)),
        scratch_types=(_smem((BLOCK, d), q.dtype), _smem((2, BLOCK, d), q.dtype),
                       _smem((2, BLOCK, d), q.dtype), plgpu.SMEM((BLOCK,), _F32),
                       plgpu.Barrier(num_barriers=2), plgpu.Barrier(num_barriers=2),
                       plgpu.Barrier()),
        grid=(lq // BLOCK, b, h), grid_names=("q", "b", "h"), kernel_name="mmer_attention_fwd_mgpu",
        compiler_params=plgpu.CompilerParams(approx_math=True),
        interpret=interpret_params() if interpret else None,
    )(q, k, v, ql, kl)


# --------------------------------------------------------------------------- backward
def _bwd_body(q_g, k_g, v_g, do_g, lse_g, dl_g, ql_g, kl_g, dk_g, dv_g, dq_g,
              k_s, v_s, q_s, do_s, lse_s, dl_s, ds_s, dq_s, kvbar, qbar, dqbar, *,
              sm_scale, causal, groups, ops):
    """Key tiles g, g+G, ... of one (batch, head): dK, dV, and dq added into dq_acc[g]."""
    wg = plgpu.Layout.WGMMA
    col = wg.reduce(0)
    d = k_s.shape[-1]
    g, b, h = lax.axis_index("g"), lax.axis_index("b"), lax.axis_index("h")
    lq, lk = q_g.shape[1], k_g.shape[1]
    qlen, klen = ql_g[b], kl_g[b]
    scale = sm_scale * LOG2E
    dq_rows = dq_g.at[g, b, :, h]  # [Lq, D] float32, owned by this program alone

    # dq_acc[g] starts at zero: every row, so rows no key tile reaches read back as zero.
    dq_s.at[0][...] = ops.layout(jnp.zeros((BLOCK, d), _F32), wg)
    plgpu.commit_smem()

    @pl.loop(0, lq // BLOCK)
    def _(i):
        plgpu.copy_smem_to_gmem(dq_s.at[0], dq_rows.at[pl.ds(i * BLOCK, BLOCK)])
    plgpu.wait_smem_to_gmem(0)

    def fetch(i):
        slot, rows = lax.rem(i, 2), pl.ds(i * BLOCK, BLOCK)
        plgpu.copy_gmem_to_smem(q_g.at[b, rows, h], q_s.at[slot], qbar.at[slot])
        plgpu.copy_gmem_to_smem(do_g.at[b, rows, h], do_s.at[slot], qbar.at[slot])
        plgpu.copy_gmem_to_smem(lse_g.at[b, h, rows], lse_s.at[slot], qbar.at[slot])
        plgpu.copy_gmem_to_smem(dl_g.at[b, h, rows], dl_s.at[slot], qbar.at[slot])
        plgpu.copy_gmem_to_smem(dq_rows.at[rows], dq_s.at[slot], dqbar.at[slot])

    def key_tile(n, carry):
        jk = g + n * groups
        k_start = jk * BLOCK
        krows = pl.ds(k_start, BLOCK)
        plgpu.copy_gmem_to_smem(k_g.at[b, krows, h], k_s, kvbar)
        plgpu.copy_gmem_to_smem(v_g.at[b, krows, h], v_s, kvbar)
        lo, mid, hi = _query_tiles(k_start, klen, qlen, causal)
        pl.when(lo < hi)(lambda: fetch(lo))
        plgpu.barrier_wait(kvbar)

        def body(masked):
            def step(i, acc):
                dk, dv = acc
                slot = lax.rem(i, 2)
                pl.when(i + 1 < hi)(lambda: fetch(i + 1))
                plgpu.barrier_wait(qbar.at[slot])
                st = ops.mm(k_s, q_s.at[slot], (BLOCK, BLOCK), trans_b=True) * scale
                lse = ops.load(lse_s.at[slot], col)
                pt = jnp.exp2(st - _bcast_cols(lse, st.shape))  # the only exponentials
                if masked:
                    kcols = k_start + ops.iota((BLOCK, BLOCK), 0, wg)
                    valid = kcols < klen
                    if causal:
                        valid = valid & (i * BLOCK + ops.iota((BLOCK, BLOCK), 1, wg) >= kcols)
                    pt = jnp.where(valid, pt, 0.0)
                dv = dv + ops.mm(pt.astype(do_s.dtype), do_s.at[slot], (BLOCK, d),
                                 a_in_regs=True)
                dpt = ops.mm(v_s, do_s.at[slot], (BLOCK, BLOCK), trans_b=True)
                dst = pt * (dpt - _bcast_cols(ops.load(dl_s.at[slot], col), dpt.shape))
                dk = dk + ops.mm(dst.astype(q_s.dtype), q_s.at[slot], (BLOCK, d),
                                 a_in_regs=True)
                ds_s[...] = dst.astype(ds_s.dtype)
                plgpu.commit_smem()
                dq = ops.mm(ds_s, k_s, (BLOCK, d), trans_a=True)
                plgpu.barrier_wait(dqbar.at[slot])
                dq_s.at[slot][...] = ops.load(dq_s.at[slot], wg) + dq
                plgpu.commit_smem()
                plgpu.copy_smem_to_gmem(dq_s.at[slot], dq_rows.at[pl.ds(i * BLOCK, BLOCK)])
                # The next fetch reuses the other slot, and a later key tile re-reads this
                # dq tile: both need this write finished.
                plgpu.wait_smem_to_gmem(0)
                return dk, dv
            return step

        zeros = ops.layout(jnp.zeros((BLOCK, d), _F32), wg)
        acc = lax.fori_loop(lo, mid, body(True), (zeros, zeros))
        dk, dv = lax.fori_loop(mid, hi, body(False), acc)
        k_s[...] = (dk * sm_scale).astype(k_s.dtype)  # k and v are done: their tiles stage out
        v_s[...] = dv.astype(v_s.dtype)
        plgpu.commit_smem()
        plgpu.copy_smem_to_gmem(k_s, dk_g.at[b, krows, h])
        plgpu.copy_smem_to_gmem(v_s, dv_g.at[b, krows, h])
        plgpu.wait_smem_to_gmem(0)
        return carry

    n_tiles = lk // BLOCK
    lax.fori_loop(0, pl.cdiv(n_tiles - g, groups), key_tile, 0)


def key_groups(b: int, h: int, lk: int) -> int:
    """G, the key-tile groups of the backward (:func:`mmer_kernels._common.key_groups`) for a
    tile-padded key length lk."""
    return _common.key_groups(b, h, lk // BLOCK)


def bwd(q, k, v, do, lse, delta, ql, kl, *, sm_scale, causal, interpret):
    """Backward on tile-padded inputs.

    Args:
        q, do: [B, Lq, H, D], Lq a multiple of 64; k, v [B, Lk, H, D], Lk a multiple of 64.
        lse: float32 [B, H, Lq] from :func:`fwd`; delta float32 [B, H, Lq] (rowsum(o * do)).
        ql, kl: int32 [B] valid lengths.
        sm_scale, causal, interpret: as in :func:`fwd`.

    Returns:
        (dq float32 [B, Lq, H, D], dk [B, Lk, H, D], dv [B, Lk, H, D] in k.dtype).
    """
    b, lq, h, d = q.shape
    lk = k.shape[1]
    groups = key_groups(b, h, lk)
    body = functools.partial(_bwd_body, sm_scale=sm_scale, causal=causal, groups=groups,
                             ops=_Ops(interpret))
    dk, dv, dq_acc = plgpu.kernel(
        body,
        out_type=(jax.ShapeDtypeStruct(k.shape, k.dtype), jax.ShapeDtypeStruct(v.shape, v.dtype),
                  jax.ShapeDtypeStruct((groups, b, lq, h, d), _F32)),
        scratch_types=(_smem((BLOCK, d), k.dtype), _smem((BLOCK, d), k.dtype),
                       _smem((2, BLOCK, d), q.dtype), _smem((2, BLOCK, d), q.dtype),
                       plgpu.SMEM((2, BLOCK), _F32), plgpu.SMEM((2, BLOCK), _F32),
                       _smem((BLOCK, BLOCK), q.dtype, d), _smem((2, BLOCK, d), _F32),
                       plgpu.Barrier(num_arrivals=2),
                       plgpu.Barrier(num_arrivals=4, num_barriers=2),
                       plgpu.Barrier(num_barriers=2)),
        grid=(groups, b, h), grid_names=("g", "b", "h"), kernel_name="mmer_attention_bwd_mgpu",
        compiler_params=plgpu.CompilerParams(approx_math=True),
        interpret=interpret_params() if interpret else None,
    )(q, k, v, do, lse, delta, ql, kl)
    dq = dq_acc.reshape(q.shape) if groups == 1 else jnp.sum(dq_acc, axis=0)
    return dq * sm_scale, dk, dv


def pad_to_tiles(x, axis: int = 1):
    """x padded with zeros along ``axis`` to a multiple of 64 (x itself when it is one)."""
    n = x.shape[axis]
    if n % BLOCK == 0:
        return x
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, round_up(n, BLOCK) - n)
    return jnp.pad(x, widths)
