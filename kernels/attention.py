"""Fused masked attention: Pallas kernel (Triton lowering on GPU) with a hand-written backward.

Order (STYLE.md, Kernels): block-size dataclass -> kernel bodies (in _attention_kernels.py,
kept apart from these thin pallas_call wrappers so they can move off the deprecated Triton
backend) -> jitted custom_vjp function -> forward/backward rules -> reference (in
_reference.py) -> public dispatch ``attention``.

Semantics (identical in the reference):
  * q [B, Lq, H, D], k/v [B, Lk, H, D]; query and key padding are separate, given as
    lengths [B] or boolean masks [B, L] (True = valid; masks need not be prefixes).
  * bias: additive, broadcastable to [B, H, Lq, Lk], differentiable. Use large finite
    negatives rather than -inf in it.
  * causal: query i sees key j <= i, top-left aligned when Lq != Lk.
  * Padded query rows return zeros; a query row with no valid key returns zeros (not the
    mean of v as a plain -inf-masked softmax would), and gets zero gradients.
  * float32 accumulation for float32 and bfloat16 inputs. On GPU, float32 matmuls inside
    the kernel use Triton's default (TF32) precision.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plgpu

from kernels import _attention_kernels as _k
from kernels._common import (
    device_kind,
    mask_bound,
    next_pow2,
    resolve_mask,
    round_up,
    tuned_entry,
    use_pallas,
)
from kernels._reference import attention_reference

_F32 = jnp.float32


# ----------------------------------------------------------------------------- block sizes
@dataclasses.dataclass(frozen=True)
class BlockSizes:
    """Tile sizes and Triton launch parameters of the attention kernels.

    Sequences are zero-padded up to a multiple of the tiles inside :func:`attention`, so any
    tile fits any length; ``default`` picks tiles no larger than the (rounded-up) sequence.

    Attributes:
        block_q, block_k: forward tiles along Lq / Lk (rows of q / of k and v).
        block_q_bwd, block_k_bwd: tiles of both backward kernels.
        num_warps, num_stages: Triton launch parameters (forward).
        num_warps_bwd, num_stages_bwd: the same for the backward kernels.

    Raises:
        ValueError: a tile is not a power of two >= 16 (Triton tiles are powers of two and
            ``tl.dot`` needs at least 16 per side); the message names the field and value.
    """

    block_q: int = 64
    block_k: int = 64
    block_q_bwd: int = 32
    block_k_bwd: int = 32
    num_warps: int = 4
    num_stages: int = 2
    num_warps_bwd: int = 4
    num_stages_bwd: int = 2

    def __post_init__(self):
        for name in ("block_q", "block_k", "block_q_bwd", "block_k_bwd"):
            val = getattr(self, name)
            # Triton tiles must be powers of two, and tl.dot needs at least 16 per side.
            if val < 16 or val & (val - 1):
                raise ValueError(f"{name}={val} must be a power of two >= 16")

    @classmethod
    def default(cls, q_len: int, kv_len: int, head_dim: int, dtype) -> BlockSizes:
        """Untuned per-shape defaults: smaller tiles for wide heads and float32 (shared memory).

        Args:
            q_len: Lq, the query length.
            kv_len: Lk, the key/value length.
            head_dim: D.
            dtype: dtype of q, k and v (its item size selects the tiles).

        Returns:
            BlockSizes with tiles in 16..64, no larger than next_pow2 of each length.

        Raises:
            TypeError: ``dtype`` is not a dtype.
        """
        wide = head_dim > 64 or jnp.dtype(dtype).itemsize > 2
        cap_q, cap_k = (64, 32) if wide else (64, 64)
        fit = lambda n, cap: max(16, min(cap, next_pow2(n)))
        return cls(block_q=fit(q_len, cap_q), block_k=fit(kv_len, cap_k),
                   block_q_bwd=fit(q_len, 32), block_k_bwd=fit(kv_len, 32 if wide else 64),
                   num_warps=4, num_stages=2 if wide else 3)

    def to_dict(self) -> dict:
        """The fields as a dict of ints (the ``blocks`` entry of tuned_blocks.json)."""
        return dataclasses.asdict(self)


def tuning_key(q_shape, kv_len: int, dtype, *, causal: bool, has_bias: bool,
               device: str | None = None) -> str:
    """Exact-match key of kernels/tuned_blocks.json for one attention call.

    Args:
        q_shape: (B, Lq, H, D) of q.
        kv_len: Lk.
        dtype: dtype of q, k and v.
        causal: the call's ``causal`` flag.
        has_bias: whether the call passes a bias.
        device: device kind (default: that of ``jax.devices()[0]``).

    Returns:
        e.g. ``"NVIDIA H100 80GB HBM3|B32|Lq300|Lk300|H8|D64|bfloat16|causal0|bias0"``.

    Raises:
        ValueError: ``q_shape`` does not have four entries.
        TypeError: ``dtype`` is not a dtype.
    """
    b, lq, h, d = q_shape
    device = device_kind() if device is None else device
    return (f"{device}|B{b}|Lq{lq}|Lk{kv_len}|H{h}|D{d}|{jnp.dtype(dtype).name}"
            f"|causal{int(causal)}|bias{int(has_bias)}")


def pick_block_sizes(q_shape, kv_len, dtype, *, causal, has_bias) -> BlockSizes:
    """Tuned blocks for this exact shape when the table has them, else the defaults.

    Args:
        q_shape: (B, Lq, H, D) of q.
        kv_len: Lk.
        dtype: dtype of q, k and v.
        causal, has_bias: as in :func:`tuning_key`.

    Returns:
        BlockSizes from the ``attention`` section of kernels/tuned_blocks.json on an exact key
        match (an absent or unreadable table counts as no match), else ``BlockSizes.default``.

    Raises:
        ValueError: ``q_shape`` does not have four entries, or a table entry holds tiles that
            are not powers of two >= 16.
        TypeError: a table entry has fields BlockSizes does not know.
    """
    entry = tuned_entry("attention", tuning_key(q_shape, kv_len, dtype, causal=causal,
                                                has_bias=has_bias))
    if entry:
        return BlockSizes(**entry)
    return BlockSizes.default(q_shape[1], kv_len, q_shape[3], dtype)


# ------------------------------------------------------------------ pallas_call wrappers
@dataclasses.dataclass(frozen=True)
class _Config:
    """Static (hashable) configuration of one kernel call."""

    sm_scale: float
    causal: bool
    blocks: BlockSizes
    interpret: bool


def _bias_spec(bias, rows, cols, row_axis_is_q):
    """BlockSpec for a [Bb, Hb, Lq, Lk] bias whose B/H dims may be 1 (broadcast by index)."""
    bsel = (lambda b: b) if bias.shape[0] > 1 else (lambda b: 0)
    hsel = (lambda h: h) if bias.shape[1] > 1 else (lambda h: 0)
    if row_axis_is_q:  # tile over queries, whole key axis
        return pl.BlockSpec((None, None, rows, cols), lambda i, b, h: (bsel(b), hsel(h), i, 0))
    return pl.BlockSpec((None, None, rows, cols), lambda j, b, h: (bsel(b), hsel(h), 0, j))


def _common_specs(batch, q_rows, k_rows, d, q_tiled):
    """Specs of q, k, v, q-mask, k-mask, q-bound, k-bound.

    q_tiled: q is tiled by the grid (forward, dQ) else k is (dK/dV).
    """
    if q_tiled:
        qi = lambda i, b, h: (b, i, h, 0)
        ki = lambda i, b, h: (b, 0, h, 0)
        qmi, kmi = (lambda i, b, h: (b, i)), (lambda i, b, h: (b, 0))
    else:
        qi = lambda j, b, h: (b, 0, h, 0)
        ki = lambda j, b, h: (b, j, h, 0)
        qmi, kmi = (lambda j, b, h: (b, 0)), (lambda j, b, h: (b, j))
    whole = pl.BlockSpec((batch,), lambda *_: (0,))
    return [pl.BlockSpec((None, q_rows, None, d), qi), pl.BlockSpec((None, k_rows, None, d), ki),
            pl.BlockSpec((None, k_rows, None, d), ki), pl.BlockSpec((None, q_rows), qmi),
            pl.BlockSpec((None, k_rows), kmi), whole, whole]


def _fwd_call(q, k, v, bias, qm, km, qb, kb, cfg: _Config):
    """Forward pallas_call on padded inputs -> (o [B, Lq, H, D], lse [B, H, Lq] float32)."""
    b, lq, h, d = q.shape
    lk = k.shape[1]
    bq, bk = cfg.blocks.block_q, cfg.blocks.block_k
    in_specs = _common_specs(b, bq, lk, d, q_tiled=True)
    args = [q, k, v, qm, km, qb, kb]
    if bias is not None:
        in_specs.append(_bias_spec(bias, bq, lk, row_axis_is_q=True))
        args.append(bias)
    kernel = functools.partial(_k.fwd_kernel, sm_scale=cfg.sm_scale, causal=cfg.causal,
                               block_q=bq, block_k=bk, has_bias=bias is not None)
    return pl.pallas_call(
        kernel,
        grid=(lq // bq, b, h),
        in_specs=in_specs,
        out_specs=[pl.BlockSpec((None, bq, None, d), lambda i, b_, h_: (b_, i, h_, 0)),
                   pl.BlockSpec((None, None, bq), lambda i, b_, h_: (b_, h_, i))],
        out_shape=[jax.ShapeDtypeStruct(q.shape, q.dtype),
                   jax.ShapeDtypeStruct((b, h, lq), _F32)],
        compiler_params=plgpu.CompilerParams(num_warps=cfg.blocks.num_warps,
                                             num_stages=cfg.blocks.num_stages),
        interpret=cfg.interpret,
        name="mmer_attention_fwd",
    )(*args)


def _bwd_call(q, k, v, bias, qm, km, qb, kb, do, lse, delta, cfg: _Config):
    """Backward pallas_calls -> (dq, dk, dv, dbias [B, H, Lq, Lk] float32 or None)."""
    b, lq, h, d = q.shape
    lk = k.shape[1]
    bq, bk = cfg.blocks.block_q_bwd, cfg.blocks.block_k_bwd
    has_bias = bias is not None
    params = plgpu.CompilerParams(num_warps=cfg.blocks.num_warps_bwd,
                                  num_stages=cfg.blocks.num_stages_bwd)
    static = dict(sm_scale=cfg.sm_scale, causal=cfg.causal, block_q=bq, block_k=bk,
                  has_bias=has_bias)

    def ordered(specs, do_spec, row_spec):
        # Kernel argument order: q, k, v, do, lse, delta, qm, km, qb, kb[, bias].
        return specs[:3] + [do_spec, row_spec, row_spec] + specs[3:]

    args = [q, k, v, do, lse, delta, qm, km, qb, kb] + ([bias] if has_bias else [])

    # dK, dV: grid over key blocks; each program sweeps the query blocks.
    specs = _common_specs(b, lq, bk, d, q_tiled=False)
    rows = pl.BlockSpec((None, None, lq), lambda j, b_, h_: (b_, h_, 0))
    in_specs = ordered(specs, specs[0], rows)
    if has_bias:
        in_specs.append(_bias_spec(bias, lq, bk, row_axis_is_q=False))
    kv_spec = pl.BlockSpec((None, bk, None, d), lambda j, b_, h_: (b_, j, h_, 0))
    dk, dv = pl.pallas_call(
        functools.partial(_k.dkv_kernel, **static),
        grid=(lk // bk, b, h), in_specs=in_specs, out_specs=[kv_spec, kv_spec],
        out_shape=[jax.ShapeDtypeStruct(k.shape, k.dtype), jax.ShapeDtypeStruct(v.shape, v.dtype)],
        compiler_params=params, interpret=cfg.interpret, name="mmer_attention_dkv",
    )(*args)

    # dQ (and dbias): grid over query blocks; each program sweeps the key blocks.
    specs = _common_specs(b, bq, lk, d, q_tiled=True)
    rows = pl.BlockSpec((None, None, bq), lambda i, b_, h_: (b_, h_, i))
    in_specs = ordered(specs, specs[0], rows)
    out_specs = [specs[0]]
    out_shape = [jax.ShapeDtypeStruct(q.shape, q.dtype)]
    if has_bias:
        in_specs.append(_bias_spec(bias, bq, lk, row_axis_is_q=True))
        # Full [B, H] even for a broadcast bias: programs of different (b, h) must not race.
        out_specs.append(pl.BlockSpec((None, None, bq, lk), lambda i, b_, h_: (b_, h_, i, 0)))
        out_shape.append(jax.ShapeDtypeStruct((b, h, lq, lk), _F32))
    outs = pl.pallas_call(
        functools.partial(_k.dq_kernel, **static),
        grid=(lq // bq, b, h), in_specs=in_specs, out_specs=out_specs, out_shape=out_shape,
        compiler_params=params, interpret=cfg.interpret, name="mmer_attention_dq",
    )(*args)
    dq, dbias = (outs[0], outs[1]) if has_bias else (outs[0], None)
    return dq, dk, dv, dbias


# ------------------------------------------------------------- custom_vjp and its rules
@functools.partial(jax.custom_vjp, nondiff_argnums=(8,))
def _flash(q, k, v, bias, qm, km, qb, kb, cfg):
    """Attention on padded inputs (lengths multiples of the blocks); returns o only."""
    return _fwd_call(q, k, v, bias, qm, km, qb, kb, cfg)[0]


def _flash_fwd(q, k, v, bias, qm, km, qb, kb, cfg):
    o, lse = _fwd_call(q, k, v, bias, qm, km, qb, kb, cfg)
    # Residuals: inputs, o and the logsumexp [B, H, Lq] -- not the probabilities.
    return o, (q, k, v, bias, qm, km, qb, kb, o, lse)


def _flash_bwd(cfg, res, do):
    q, k, v, bias, qm, km, qb, kb, o, lse = res
    # delta_i = sum_d o_id * do_id = sum_j p_ij dp_ij, the softmax-backward row term.
    delta = jnp.einsum("bqhd,bqhd->bhq", o.astype(_F32), do.astype(_F32))
    dq, dk, dv, dbias = _bwd_call(q, k, v, bias, qm, km, qb, kb, do, lse, delta, cfg)
    if bias is not None:
        axes = tuple(i for i in (0, 1) if bias.shape[i] == 1)  # undo B/H broadcasting
        dbias = jnp.sum(dbias, axis=axes, keepdims=True).astype(bias.dtype)
    return dq, dk, dv, dbias, None, None, None, None


_flash.defvjp(_flash_fwd, _flash_bwd)


def _bias_shape(shape, target):
    """Validates a bias shape against [B, H, Lq, Lk]; returns it left-padded with 1s to 4-D."""
    if len(shape) > 4:
        raise ValueError(f"bias.ndim={len(shape)} must be <= 4 (broadcastable to [B, H, Lq, Lk])")
    shape = (1,) * (4 - len(shape)) + tuple(shape)
    if any(s not in (1, t) for s, t in zip(shape, target, strict=True)):
        raise ValueError(f"bias.shape={shape} is not broadcastable to [B, H, Lq, Lk]={target}")
    return shape


def _prepare_bias(bias, b, h, lq, lk):
    """Validates bias and returns it as [Bb, Hb, Lq, Lk] with Bb in {1, B}, Hb in {1, H}."""
    bias = bias.reshape(_bias_shape(bias.shape, (b, h, lq, lk)))
    # Lq/Lk broadcasting is materialised (tiles index it directly); B/H stay broadcast.
    return jnp.broadcast_to(bias, bias.shape[:2] + (lq, lk))


@functools.partial(jax.jit, static_argnames=("causal", "sm_scale", "block_sizes", "interpret"))
def _attention_pallas(q, k, v, q_valid, kv_valid, bias, *, causal, sm_scale, block_sizes,
                      interpret):
    """Pads to the block grid (and D to a power of two), runs the kernel, slices back."""
    b, lq, h, d = q.shape
    lk = k.shape[1]
    blocks = block_sizes
    lq_pad = round_up(lq, max(blocks.block_q, blocks.block_q_bwd))
    lk_pad = round_up(lk, max(blocks.block_k, blocks.block_k_bwd))
    d_pad = max(16, next_pow2(d))  # zero columns change neither q.k nor (p @ v)[:, :d]

    def pad(x, length):
        return jnp.pad(x, ((0, 0), (0, length - x.shape[1]), (0, 0), (0, d_pad - d)))

    qm = jnp.pad(q_valid, ((0, 0), (0, lq_pad - lq))).astype(jnp.int32)  # padding invalid
    km = jnp.pad(kv_valid, ((0, 0), (0, lk_pad - lk))).astype(jnp.int32)
    if bias is not None:
        bias = jnp.pad(_prepare_bias(bias, b, h, lq, lk),
                       ((0, 0), (0, 0), (0, lq_pad - lq), (0, lk_pad - lk)))
    cfg = _Config(sm_scale=float(sm_scale), causal=bool(causal), blocks=blocks,
                  interpret=bool(interpret))
    o = _flash(pad(q, lq_pad), pad(k, lk_pad), pad(v, lk_pad), bias, qm, km,
               mask_bound(q_valid), mask_bound(kv_valid), cfg)
    return o[:, :lq, :, :d]


# --------------------------------------------------------------------------- dispatch
def attention(q, k, v, *, q_lengths=None, kv_lengths=None, q_mask=None, kv_mask=None,
              bias=None, causal=False, sm_scale=None, block_sizes=None, implementation=None,
              interpret=False):
    """Masked multi-head attention; Pallas kernel on GPU, XLA reference elsewhere.

    out[b, i, h] = sum_j softmax_j(sm_scale * q[b, i, h] . k[b, j, h] + bias[b, h, i, j]) v[b, j, h]
    over the valid keys j of row i (see the module docstring for the exact semantics). Logits,
    softmax and accumulation are float32 for float32 and bfloat16 inputs. Differentiable in q,
    k, v and bias (hand-written backward on the Pallas path, autodiff on the XLA path).

    Args:
        q: float32 or bfloat16 [B, Lq, H, D]; D is typically 32, 64 or 128 (the kernel
            zero-pads other D to a power of two).
        k, v: [B, Lk, H, D], the dtype of q.
        q_lengths, kv_lengths: int [B] valid prefix lengths (or None).
        q_mask, kv_mask: bool [B, Lq] / [B, Lk] (True = valid; need not be prefixes),
            exclusive with the lengths of the same side. None on both: every position is valid.
        bias: float, additive logits bias broadcastable to [B, H, Lq, Lk] (or None);
            differentiable. Use large finite negatives rather than -inf in it.
        causal: query i attends key j <= i (top-left aligned when Lq != Lk).
        sm_scale: logits scale (default 1/sqrt(D)).
        block_sizes: AttentionBlockSizes (Pallas path only); default: the exact match in
            kernels/tuned_blocks.json, else ``BlockSizes.default``.
        implementation: None (Pallas on GPU, XLA elsewhere), "pallas" or "xla".
        interpret: run the Pallas kernel in interpret mode (any backend; slow, for tests).

    Returns:
        [B, Lq, H, D] in q.dtype; zeros at padded queries and at queries without a valid key
        (whose gradients are zero too).

    Raises:
        ValueError: q, k or v is not 4-D, or k.shape != v.shape.
        ValueError: k and q differ in B, H or D.
        ValueError: q, k and v do not share one dtype.
        ValueError: bias has more than 4 dims or does not broadcast to [B, H, Lq, Lk].
        ValueError: from the dispatch: ``implementation`` is not None, "pallas" or "xla";
            ``interpret=True`` with ``implementation="xla"``; ``implementation="pallas"``
            without a GPU and without ``interpret=True``.
        ValueError: from the masks: lengths and mask given for one side, or a mask / lengths
            of the wrong shape.
    """
    if q.ndim != 4 or k.shape != v.shape or k.ndim != 4:
        raise ValueError(f"q.shape={q.shape}, k.shape={k.shape}, v.shape={v.shape} must be "
                         "[B, Lq, H, D] and [B, Lk, H, D] with k.shape == v.shape")
    b, lq, h, d = q.shape
    if (k.shape[0], k.shape[2], k.shape[3]) != (b, h, d):
        raise ValueError(f"k.shape={k.shape} must share B, H, D with q.shape={q.shape}")
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"q.dtype={q.dtype}, k.dtype={k.dtype}, v.dtype={v.dtype} must match")
    lk = k.shape[1]
    if bias is not None:
        _bias_shape(bias.shape, (b, h, lq, lk))  # the same error on both paths
    if sm_scale is None:
        sm_scale = 1.0 / math.sqrt(d)
    if not use_pallas(implementation, interpret):
        return attention_reference(q, k, v, q_lengths=q_lengths, kv_lengths=kv_lengths,
                                   q_mask=q_mask, kv_mask=kv_mask, bias=bias, causal=causal,
                                   sm_scale=sm_scale)
    q_valid = resolve_mask(q_lengths, q_mask, batch=b, seq_len=lq, name="q_")
    kv_valid = resolve_mask(kv_lengths, kv_mask, batch=b, seq_len=lk, name="kv_")
    if block_sizes is None:
        block_sizes = pick_block_sizes(q.shape, lk, q.dtype, causal=causal,
                                       has_bias=bias is not None)
    return _attention_pallas(q, k, v, q_valid, kv_valid, bias, causal=causal,
                             sm_scale=sm_scale, block_sizes=block_sizes, interpret=interpret)
