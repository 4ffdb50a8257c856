"""Fused masked attention: Pallas kernels (Triton on GPU; Mosaic GPU on Hopper, see
``_attention_mosaic.py``) with a hand-written backward.

Order (STYLE.md, Kernels): block-size dataclass -> kernel bodies (in _attention_kernels.py,
kept apart from these thin pallas_call wrappers so they can move off the deprecated Triton
backend) -> jitted custom_vjp function -> forward/backward rules -> reference (in
_reference.py) -> public dispatch ``attention``.

Semantics (identical in the reference):
  * q [B, Lq, H, D], k/v [B, Lk, H, D]; query and key padding are separate, given as
    lengths [B] or boolean masks [B, L] (True = valid; masks need not be prefixes).
  * bias: additive, broadcastable to [B, H, Lq, Lk], differentiable (its gradient is computed
    only when the bias is differentiated). -inf entries mask keys; logits at or below
    -0.7 * float32 max count as masked too. Never +inf or NaN.
  * causal: query i sees key j <= i, top-left aligned when Lq != Lk.
  * Padded query rows return zeros; a query row with no valid key, or whose logits are all
    -inf (bias), returns zeros (not the mean of v, not NaN), and gets zero gradients -- on
    both the kernel and the reference path.
  * float32 accumulation for float32 and bfloat16 inputs. On GPU, float32 matmuls inside
    the kernel use Triton's default (TF32) precision.
  * Deterministic gradients: the backward sums dQ over key tiles without atomics (see
    ``_attention_kernels.bwd_kernel``).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import math

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import CustomVJPPrimal, SymbolicZero
from jax.experimental import pallas as pl

try:  # Pallas' Triton backend is deprecated from jax 0.11 and will leave jax.
    from jax.experimental.pallas import triton as plgpu

    from mmer_kernels import _attention_kernels as _k
except ImportError:  # the Mosaic GPU kernels remain (implementation="mosaic", Hopper)
    plgpu = _k = None

from mmer_kernels._common import (
    IMPLEMENTATIONS,
    check_mask_args,
    device_kind,
    key_groups,
    mask_bound,
    next_pow2,
    pick_implementation,
    round_up,
    tuned_entry,
    use_pallas,
)
from mmer_kernels._reference import attention_reference
from mmer_kernels._sharding import DEFAULT_PARTITION, out_struct, resolve, shard

_F32 = jnp.float32


# ----------------------------------------------------------------------------- block sizes
def _fit(n: int, cap: int) -> int:
    """Tile for a length n: the largest power of two in 16..cap whose padded work stays within
    10 % of the least padded candidate (so L=300 takes 64, not 16; L=50 takes 64: 16, 32 and
    64 all pad it to 64)."""
    cands = [t for t in (16, 32, 64, 128) if t <= max(16, cap)]
    least = min(round_up(n, t) for t in cands)
    return max(t for t in cands if round_up(n, t) <= 1.1 * least)


def _warps(rows: int, cols: int, d: int) -> int:
    """Warps by tile size: 4 up to 64x64 tiles at D <= 64, else 8."""
    return 4 if rows * cols <= 64 * 64 and d <= 64 else 8


@dataclasses.dataclass(frozen=True)
class BlockSizes:
    """Tile sizes and Triton launch parameters of the two Triton attention kernels.

    Arrays are never padded: tiles that run past a sequence end are read and written with
    masked loads and stores, so any tile fits any length; ``default`` picks tiles by length.

    Attributes:
        block_q, block_k: forward tiles along Lq / Lk.
        block_q_dkv, block_k_dkv: the backward kernel (key tile resident, query tiles
            streamed; it forms dK, dV and dQ).
        block_q_dq, block_k_dq: unused since dQ is formed in the one backward kernel; kept so
            the tuned tables and callers that name them stay valid.
        num_warps, num_stages: Triton launch parameters of the forward.
        num_warps_dkv, num_stages_dkv: the same for the backward kernel.
        num_warps_dq, num_stages_dq: unused, as block_q_dq and block_k_dq.

    Raises:
        ValueError: a tile is not a power of two >= 16 (Triton tiles are powers of two and
            ``tl.dot`` needs at least 16 per side); the message names the field and value.
    """

    block_q: int = 64
    block_k: int = 64
    block_q_dkv: int = 64
    block_k_dkv: int = 64
    block_q_dq: int = 64
    block_k_dq: int = 64
    num_warps: int = 4
    num_stages: int = 2
    num_warps_dkv: int = 4
    num_stages_dkv: int = 2
    num_warps_dq: int = 4
    num_stages_dq: int = 2

    TILES = ("block_q", "block_k", "block_q_dkv", "block_k_dkv", "block_q_dq", "block_k_dq")

    def __post_init__(self):
        for name in self.TILES:
            val = getattr(self, name)
            # Triton tiles must be powers of two, and tl.dot needs at least 16 per side.
            if val < 16 or val & (val - 1):
                raise ValueError(f"{name}={val} must be a power of two >= 16")

    @classmethod
    def default(cls, q_len: int, kv_len: int, head_dim: int, dtype) -> BlockSizes:
        """Untuned per-shape defaults: tiles chosen by length, 64 rows wherever lengths allow.

        Hopper's wgmma wants at least 64-row tiles, so every kernel uses 64x64 tiles once the
        sequences reach 64; long bfloat16 sequences with D <= 64 take 128-row forward query
        tiles; warps follow the tile size (8 for tiles above 64x64 or D > 64).

        Args:
            q_len: Lq, the query length.
            kv_len: Lk, the key/value length.
            head_dim: D.
            dtype: dtype of q, k and v (its item size selects the tiles).

        Returns:
            BlockSizes with tiles in 16..128.

        Raises:
            TypeError: ``dtype`` is not a dtype.
        """
        narrow = head_dim <= 64 and jnp.dtype(dtype).itemsize <= 2
        bq = _fit(q_len, 128 if narrow and q_len >= 1024 else 64)
        bk = _fit(kv_len, 64)
        bq_b, bk_b = _fit(q_len, 64), _fit(kv_len, 64)
        stages = 3 if narrow else 2
        return cls(block_q=bq, block_k=bk, block_q_dkv=bq_b, block_k_dkv=bk_b,
                   block_q_dq=bq_b, block_k_dq=bk_b,
                   num_warps=_warps(bq, bk, head_dim), num_stages=stages,
                   num_warps_dkv=_warps(bk_b, bq_b, head_dim), num_stages_dkv=2,
                   num_warps_dq=_warps(bq_b, bk_b, head_dim), num_stages_dq=2)

    def to_dict(self) -> dict:
        """The fields as a dict of ints (the ``blocks`` entry of tuned_blocks.json)."""
        return dataclasses.asdict(self)


def length_bucket(n: int) -> int:
    """Tuning-table bucket of a length or batch: the next power of two (at least 16)."""
    return max(16, next_pow2(n))


def tuning_key(q_shape, kv_len: int, dtype, *, causal: bool, has_bias: bool,
               device: str | None = None) -> str:
    """Key of mmer_kernels/tuned_blocks.json for one attention call, by shape bucket.

    Lengths and batch are bucketed (:func:`length_bucket`), so the bucketed shapes of training
    share one entry; H, D, dtype and the flags are exact.

    Args:
        q_shape: (B, Lq, H, D) of q.
        kv_len: Lk.
        dtype: dtype of q, k and v.
        causal: the call's ``causal`` flag.
        has_bias: whether the call passes a bias.
        device: device kind (default: that of ``jax.devices()[0]``).

    Returns:
        e.g. ``"NVIDIA H100 80GB HBM3|B32|Lq512|Lk512|H8|D64|bfloat16|causal0|bias0"`` for
        B=32, Lq=Lk=300.

    Raises:
        ValueError: ``q_shape`` does not have four entries.
        TypeError: ``dtype`` is not a dtype.
    """
    b, lq, h, d = q_shape
    device = device_kind() if device is None else device
    return (f"{device}|B{length_bucket(b)}|Lq{length_bucket(lq)}|Lk{length_bucket(kv_len)}"
            f"|H{h}|D{d}|{jnp.dtype(dtype).name}|causal{int(causal)}|bias{int(has_bias)}")


def pick_block_sizes(q_shape, kv_len, dtype, *, causal, has_bias) -> BlockSizes:
    """Tuned blocks for this shape bucket when the table has them, else the defaults.

    Args:
        q_shape: (B, Lq, H, D) of q.
        kv_len: Lk.
        dtype: dtype of q, k and v.
        causal, has_bias: as in :func:`tuning_key`.

    Returns:
        BlockSizes from the ``attention`` section of mmer_kernels/tuned_blocks.json on a key match
        (an absent or unreadable table counts as no match), else ``BlockSizes.default``.

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
    bias_kind: str | None = None  # None, "full" [.., Lq, Lk], "q" [.., Lq, 1], "k" [.., 1, Lk]


@jax.tree_util.register_static
@dataclasses.dataclass(frozen=True)
class _Flag:
    """A static bool carried through the custom_vjp residuals (a pytree with no leaves)."""

    value: bool


def _bias_kind(shape) -> str | None:
    """Kernel bias layout of a 4-D bias shape [Bb, Hb, Lqb, Lkb] (after ``_prepare_bias``)."""
    if shape is None:
        return None
    return {(False, False): "full", (False, True): "q", (True, False): "k"}[
        (shape[2] == 1, shape[3] == 1)]


def _bias_arg(bias, kind, lq_blk, lk_blk):
    """(array, BlockSpec) of the bias: B/H broadcast by index, whole Lq / Lk per program."""
    bsel = (lambda b: b) if bias.shape[0] > 1 else (lambda b: 0)
    hsel = (lambda h: h) if bias.shape[1] > 1 else (lambda h: 0)
    if kind == "full":
        spec = pl.BlockSpec((None, None, lq_blk, lk_blk), lambda i, b, h: (bsel(b), hsel(h), 0, 0))
        return bias, spec
    arr = bias.reshape(bias.shape[:2] + (-1,))  # [Bb, Hb, L]: drops a size-1 axis, free
    n = lq_blk if kind == "q" else lk_blk
    return arr, pl.BlockSpec((None, None, n), lambda i, b, h: (bsel(b), hsel(h), 0))


def _seq_specs(b, dp, lq_blk, lk_blk, tile, tiled_q):
    """Specs of q-side and k-side operands: (q [B,Lq,H,D], q rows [B,Lq,H], k [B,Lk,H,D])."""
    if tiled_q:  # grid over query tiles: q-side tiled, k-side whole
        q4 = pl.BlockSpec((None, tile, None, dp), lambda i, b_, h_: (b_, i, h_, 0))
        q3 = pl.BlockSpec((None, tile, None), lambda i, b_, h_: (b_, i, h_))
        k4 = pl.BlockSpec((None, lk_blk, None, dp), lambda i, b_, h_: (b_, 0, h_, 0))
    else:  # grid over key tiles: k-side tiled, q-side whole
        q4 = pl.BlockSpec((None, lq_blk, None, dp), lambda j, b_, h_: (b_, 0, h_, 0))
        q3 = pl.BlockSpec((None, lq_blk, None), lambda j, b_, h_: (b_, 0, h_))
        k4 = pl.BlockSpec((None, tile, None, dp), lambda j, b_, h_: (b_, j, h_, 0))
    return q4, q3, k4


def _lens_and_masks(ql, kl, qm, km, lq_blk, lk_blk):
    """Names, arrays and specs of the lengths (always) and the non-prefix masks (if given)."""
    whole = pl.BlockSpec((ql.shape[0],), lambda *_: (0,))
    names, args, specs = ["ql", "kl"], [ql, kl], [whole, whole]
    if qm is not None:
        names.append("qm")
        args.append(qm)
        specs.append(pl.BlockSpec((None, lq_blk), lambda i, b_, h_: (b_, 0)))
    if km is not None:
        names.append("km")
        args.append(km)
        specs.append(pl.BlockSpec((None, lk_blk), lambda i, b_, h_: (b_, 0)))
    return names, args, specs


def _static(cfg, q, k, qm, km, bq, bk, d):
    return dict(sm_scale=cfg.sm_scale, causal=cfg.causal, block_q=bq, block_k=bk,
                lq=q.shape[1], lk=k.shape[1], d=d, qm_mode=qm is not None,
                km_mode=km is not None, bias_kind=cfg.bias_kind)


def _fwd_call(q, k, v, bias, ql, kl, qm, km, cfg: _Config):
    """Forward pallas_call on un-padded inputs -> (o [B, Lq, H, D], lse2 [B, Lq, H] float32)."""
    b, lq, h, d = q.shape
    lk = k.shape[1]
    dp = max(16, next_pow2(d))
    bq, bk = cfg.blocks.block_q, cfg.blocks.block_k
    lq_blk, lk_blk = round_up(lq, bq), round_up(lk, bk)
    q4, q3, k4 = _seq_specs(b, dp, lq_blk, lk_blk, bq, tiled_q=True)
    names, args, specs = ["q", "k", "v"], [q, k, v], [q4, k4, k4]
    n2, a2, s2 = _lens_and_masks(ql, kl, qm, km, lq_blk, lk_blk)
    names, args, specs = names + n2, args + a2, specs + s2
    if bias is not None:
        arr, spec = _bias_arg(bias, cfg.bias_kind, lq_blk, lk_blk)
        names, args, specs = names + ["bias"], args + [arr], specs + [spec]
    names += ["o", "lse"]
    kernel = functools.partial(_k.fwd_kernel, names=tuple(names),
                               **_static(cfg, q, k, qm, km, bq, bk, d))
    return pl.pallas_call(
        kernel,
        grid=(pl.cdiv(lq, bq), b, h),
        in_specs=specs,
        out_specs=[q4, q3],
        out_shape=[out_struct(q.shape, q.dtype, *args), out_struct((b, lq, h), _F32, *args)],
        compiler_params=plgpu.CompilerParams(num_warps=cfg.blocks.num_warps,
                                             num_stages=cfg.blocks.num_stages),
        interpret=cfg.interpret,
        name="mmer_attention_fwd",
    )(*args)


def _bwd_call(q, k, v, bias, ql, kl, qm, km, do, lse, delta, cfg: _Config, want_dbias: bool):
    """The backward pallas_call (one kernel, five products per tile pair) -> (dq, dk, dv,
    dbias float32 or None).

    dbias comes back per (batch, head), before any reduction over broadcast dims: [B, H, Lq, Lk]
    for a "full" bias, [B, H, Lq] for a query-only bias, [B, H, Lk] for a key-only one.
    """
    b, lq, h, d = q.shape
    lk = k.shape[1]
    dp = max(16, next_pow2(d))
    bl = cfg.blocks
    kind = cfg.bias_kind if want_dbias else None
    bq, bk = bl.block_q_dkv, bl.block_k_dkv
    lq_blk, lk_blk = round_up(lq, bq), round_up(lk, bk)
    groups = key_groups(b, h, pl.cdiv(lk, bk))
    # Every operand whole per (batch, head): the program walks its key tiles and all query
    # tiles itself; the grid's first axis is the key-tile group.
    q4, q3, k4 = _seq_specs(b, dp, lq_blk, lk_blk, bk, tiled_q=False)
    k4 = pl.BlockSpec((None, lk_blk, None, dp), lambda g, b_, h_: (b_, 0, h_, 0))
    names = ["q", "k", "v", "do", "lse", "delta"]
    args, specs = [q, k, v, do, lse, delta], [q4, k4, k4, q4, q3, q3]
    n2, a2, s2 = _lens_and_masks(ql, kl, qm, km, lq_blk, lk_blk)
    names, args, specs = names + n2, args + a2, specs + s2
    if bias is not None:
        arr, spec = _bias_arg(bias, cfg.bias_kind, lq_blk, lk_blk)
        names, args, specs = names + ["bias"], args + [arr], specs + [spec]
    names += ["dk", "dv", "dq"]
    out_specs = [k4, k4, pl.BlockSpec((None, None, lq_blk, None, dp),
                                      lambda g, b_, h_: (g, b_, 0, h_, 0))]
    out_shape = [out_struct(k.shape, k.dtype, *args), out_struct(v.shape, v.dtype, *args),
                 out_struct((groups, b, lq, h, d), _F32, *args)]
    if kind:
        names.append("dbias")
        if kind == "full":
            out_specs.append(pl.BlockSpec((None, None, lq_blk, lk_blk),
                                          lambda g, b_, h_: (b_, h_, 0, 0)))
            out_shape.append(out_struct((b, h, lq, lk), _F32, *args))
        elif kind == "q":  # summed over key tiles like dq: one slice per group
            out_specs.append(pl.BlockSpec((None, None, None, lq_blk),
                                          lambda g, b_, h_: (g, b_, h_, 0)))
            out_shape.append(out_struct((groups, b, h, lq), _F32, *args))
        else:
            out_specs.append(pl.BlockSpec((None, None, lk_blk), lambda g, b_, h_: (b_, h_, 0)))
            out_shape.append(out_struct((b, h, lk), _F32, *args))
    outs = pl.pallas_call(
        functools.partial(_k.bwd_kernel, names=tuple(names), groups=groups,
                          sync=not cfg.interpret,
                          **_static(cfg, q, k, qm, km, bq, bk, d)),
        grid=(groups, b, h), in_specs=specs, out_specs=out_specs, out_shape=out_shape,
        compiler_params=plgpu.CompilerParams(num_warps=bl.num_warps_dkv,
                                             num_stages=bl.num_stages_dkv),
        interpret=cfg.interpret, name="mmer_attention_bwd",
    )(*args)
    dk, dv, dq = outs[:3]
    # The G slices summed in a fixed order (a free reshape when G = 1): deterministic.
    dq = (dq.reshape(q.shape) if groups == 1 else jnp.sum(dq, axis=0)).astype(q.dtype)
    dbias = outs[3] if kind else None
    if kind == "q":
        dbias = dbias.reshape((b, h, lq)) if groups == 1 else jnp.sum(dbias, axis=0)
    return dq, dk, dv, dbias


# ------------------------------------------------------------- custom_vjp and its rules
def _value(x):
    """The array inside a ``CustomVJPPrimal`` (symbolic-zeros fwd rules get those)."""
    return x.value if isinstance(x, CustomVJPPrimal) else x


@functools.partial(jax.custom_vjp, nondiff_argnums=(8,))
def _flash(q, k, v, bias, ql, kl, qm, km, cfg):
    """Attention on un-padded inputs; returns o only."""
    return _fwd_call(q, k, v, bias, ql, kl, qm, km, cfg)[0]


def _flash_fwd(q, k, v, bias, ql, kl, qm, km, cfg):
    # symbolic_zeros=True: the fwd rule learns which inputs are differentiated, so the bias
    # gradient is computed and written only when someone asked for it.
    want_dbias = isinstance(bias, CustomVJPPrimal) and bias.value is not None and bias.perturbed
    q, k, v, bias, ql, kl, qm, km = map(_value, (q, k, v, bias, ql, kl, qm, km))
    o, lse = _fwd_call(q, k, v, bias, ql, kl, qm, km, cfg)
    # Residuals: inputs, o and the base-2 logsumexp [B, Lq, H] -- not the probabilities.
    return o, (q, k, v, bias, ql, kl, qm, km, o, lse, _Flag(want_dbias))


def _flash_bwd(cfg, res, do):
    q, k, v, bias, ql, kl, qm, km, o, lse, want_dbias = res
    if isinstance(do, SymbolicZero):
        do = jnp.zeros(o.shape, o.dtype)
    # delta_i = sum_d o_id * do_id = sum_j p_ij dp_ij, the softmax-backward row term, reduced
    # in the [B, Lq, H] layout of the kernels (no transpose).
    delta = jnp.sum(o.astype(_F32) * do.astype(_F32), axis=-1)
    dq, dk, dv, dbias = _bwd_call(q, k, v, bias, ql, kl, qm, km, do, lse, delta, cfg,
                                  want_dbias.value)
    if dbias is not None:
        if cfg.bias_kind == "q":
            dbias = dbias[..., None]
        elif cfg.bias_kind == "k":
            dbias = dbias[:, :, None, :]
        axes = tuple(i for i in (0, 1) if bias.shape[i] == 1)  # undo B/H broadcasting
        dbias = jnp.sum(dbias, axis=axes, keepdims=True).astype(bias.dtype)
    return dq, dk, dv, dbias, None, None, None, None


_flash.defvjp(_flash_fwd, _flash_bwd, symbolic_zeros=True)


def _bias_shape(shape, target):
    """Validates a bias shape against [B, H, Lq, Lk]; returns it left-padded with 1s to 4-D."""
    if len(shape) > 4:
        raise ValueError(f"bias.ndim={len(shape)} must be <= 4 (broadcastable to [B, H, Lq, Lk])")
    shape = (1,) * (4 - len(shape)) + tuple(shape)
    if any(s not in (1, t) for s, t in zip(shape, target, strict=True)):
        raise ValueError(f"bias.shape={shape} is not broadcastable to [B, H, Lq, Lk]={target}")
    return shape


def _prepare_bias(bias, b, h, lq, lk):
    """Validates bias and returns it 4-D [Bb, Hb, Lqb, Lkb], nothing materialised.

    Only a bias broadcast over both Lq and Lk ([.., 1, 1]) gets its key axis materialised
    ([Bb, Hb, 1, Lk], small); every other broadcast stays in the kernels' block indexing.
    """
    bias = bias.reshape(_bias_shape(bias.shape, (b, h, lq, lk)))
    if bias.shape[2] == 1 and bias.shape[3] == 1:
        bias = jnp.broadcast_to(bias, bias.shape[:3] + (lk,))
    return bias


def _lengths(lengths, mask, batch, seq_len):
    """int32 [B] bound of each row and the int32 [B, L] mask (None unless a mask was given)."""
    if mask is not None:
        return mask_bound(mask), mask.astype(jnp.int32)
    if lengths is None:
        return jnp.full((batch,), seq_len, jnp.int32), None
    return jnp.clip(lengths.astype(jnp.int32), 0, seq_len), None


@functools.partial(jax.jit, static_argnames=("causal", "sm_scale", "block_sizes", "interpret"))
def _attention_pallas(q, k, v, bias, q_lengths, kv_lengths, q_mask, kv_mask, *, causal,
                      sm_scale, block_sizes, interpret):
    """Runs the kernels on the caller's arrays: no padding, no slicing, lengths passed in."""
    b, lq, h, d = q.shape
    lk = k.shape[1]
    ql, qm = _lengths(q_lengths, q_mask, b, lq)
    kl, km = _lengths(kv_lengths, kv_mask, b, lk)
    if bias is not None:
        bias = _prepare_bias(bias, b, h, lq, lk)
    cfg = _Config(sm_scale=float(sm_scale), causal=bool(causal), blocks=block_sizes,
                  interpret=bool(interpret),
                  bias_kind=_bias_kind(None if bias is None else bias.shape))
    return _flash(q, k, v, bias, ql, kl, qm, km, cfg)


# ------------------------------------------------------------------- Mosaic GPU (Hopper)
def _mosaic():
    """The Mosaic GPU kernels' module, imported on first use (``import mmer_kernels`` must not
    depend on Pallas' Mosaic GPU backend)."""
    return importlib.import_module("mmer_kernels._attention_mosaic")


def is_hopper(device=None) -> bool:
    """Whether ``device`` (default: the first device) is an sm90 GPU (H100, H200, H800)."""
    device = jax.devices()[0] if device is None else device
    return str(getattr(device, "compute_capability", "")).split(".")[0] == "9"


def mosaic_unsupported(dtype, head_dim: int, *, has_bias: bool, has_masks: bool,
                       interpret: bool = False) -> str | None:
    """Why the Mosaic GPU kernels cannot run a call, or None when they can.

    They take bfloat16/float16, D in {32, 64, 128}, prefix lengths, causal or not, no bias and
    no non-prefix masks; compiled, they need a Hopper GPU (sm90) -- in interpret mode any
    backend runs them.

    Args:
        dtype: dtype of q, k and v.
        head_dim: D.
        has_bias, has_masks: the call's flags (masks: q_mask or kv_mask given).
        interpret: the kernels would run in Pallas' Mosaic GPU interpreter.

    Returns:
        A reason (str) or None.

    Raises:
        TypeError: ``dtype`` is not a dtype.
    """
    why = _mosaic().unsupported(dtype, head_dim, has_bias=has_bias, has_masks=has_masks)
    if why or interpret:
        return why
    if jax.default_backend() != "gpu" or not is_hopper():
        return (f"the Mosaic GPU kernels need a Hopper GPU (sm90), not "
                f"{device_kind()!r}; pass interpret=True to run them in interpret mode")
    return None


@dataclasses.dataclass(frozen=True)
class _MosaicConfig:
    """Static configuration of the Mosaic GPU kernels (they pick their own 64-row tiles)."""

    sm_scale: float
    causal: bool
    interpret: bool


def _unpad(x, n, axis=1):
    """The first n entries of x along ``axis`` (x itself when it has n)."""
    return x if x.shape[axis] == n else lax.slice_in_dim(x, 0, n, axis=axis)


def _mosaic_fwd_call(q, k, v, ql, kl, cfg: _MosaicConfig):
    mg = _mosaic()
    o, lse = mg.fwd(mg.pad_to_tiles(q), mg.pad_to_tiles(k), mg.pad_to_tiles(v), ql, kl,
                    sm_scale=cfg.sm_scale, causal=cfg.causal, interpret=cfg.interpret)
    return _unpad(o, q.shape[1]), lse  # lse stays [B, H, Lq padded] for the backward


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def _flash_mosaic(q, k, v, ql, kl, cfg):
    """Attention on the Mosaic GPU kernels; returns o only."""
    return _mosaic_fwd_call(q, k, v, ql, kl, cfg)[0]


def _flash_mosaic_fwd(q, k, v, ql, kl, cfg):
    o, lse = _mosaic_fwd_call(q, k, v, ql, kl, cfg)
    return o, (q, k, v, ql, kl, o, lse)


def _flash_mosaic_bwd(cfg, res, do):
    q, k, v, ql, kl, o, lse = res
    mg = _mosaic()
    # The kernels read delta per (b, h) row tile: [B, H, Lq], the sequence minor.
    delta = jnp.einsum("bqhd,bqhd->bhq", o.astype(_F32), do.astype(_F32))
    dq, dk, dv = mg.bwd(mg.pad_to_tiles(q), mg.pad_to_tiles(k), mg.pad_to_tiles(v),
                        mg.pad_to_tiles(do), lse, mg.pad_to_tiles(delta, axis=2), ql, kl,
                        sm_scale=cfg.sm_scale, causal=cfg.causal, interpret=cfg.interpret)
    lq, lk = q.shape[1], k.shape[1]
    return (_unpad(dq, lq).astype(q.dtype), _unpad(dk, lk), _unpad(dv, lk), None, None)


_flash_mosaic.defvjp(_flash_mosaic_fwd, _flash_mosaic_bwd)


@functools.partial(jax.jit, static_argnames=("causal", "sm_scale", "interpret"))
def _attention_mosaic(q, k, v, q_lengths, kv_lengths, *, causal, sm_scale, interpret):
    """Runs the Mosaic GPU kernels on the caller's arrays (padded to 64-row tiles inside)."""
    b, lq, _, _ = q.shape
    ql, _ = _lengths(q_lengths, None, b, lq)
    kl, _ = _lengths(kv_lengths, None, b, k.shape[1])
    cfg = _MosaicConfig(sm_scale=float(sm_scale), causal=bool(causal), interpret=bool(interpret))
    return _flash_mosaic(q, k, v, ql, kl, cfg)


# ------------------------------------------------------------------------------ cuDNN
def cudnn_unsupported(dtype, head_dim: int, q_len: int, kv_len: int, *, causal: bool,
                      has_bias: bool, has_masks: bool) -> str | None:
    """Why cuDNN's fused attention cannot run a call with our semantics, or None when it can.

    ``jax.nn.dot_product_attention(implementation="cudnn")`` takes prefix sequence lengths but
    no non-prefix masks, float16/bfloat16 only, D a multiple of 8 up to 128; a bias is refused
    (our -inf semantics are not cuDNN's) and causal only for Lq == Lk (ours is top-left
    aligned). Off GPU it is never available.

    Args:
        dtype: dtype of q, k and v.
        head_dim: D.
        q_len, kv_len: Lq, Lk.
        causal, has_bias, has_masks: the call's flags (masks: q_mask or kv_mask given).

    Returns:
        A reason (str) or None.

    Raises:
        TypeError: ``dtype`` is not a dtype.
    """
    if jax.default_backend() != "gpu":
        return f"cuDNN needs a GPU (backend is {jax.default_backend()!r})"
    if jnp.dtype(dtype) not in (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16)):
        return f"cuDNN attention takes float16/bfloat16, not {jnp.dtype(dtype).name}"
    if head_dim % 8 or head_dim > 128:
        return f"cuDNN attention needs D a multiple of 8 up to 128, got D={head_dim}"
    if has_bias or has_masks:
        return "cuDNN is used without bias and with prefix lengths only (no masks)"
    if causal and q_len != kv_len:
        return "causal cuDNN attention is used only for Lq == Lk (ours is top-left aligned)"
    return None


def _attention_cudnn(q, k, v, q_lengths, kv_lengths, *, causal, sm_scale):
    """cuDNN fused attention with our padding semantics: zeros at padded queries and at queries
    without a valid key (cuDNN leaves those rows undefined)."""
    b, lq, lk = q.shape[0], q.shape[1], k.shape[1]
    ql = jnp.full((b,), lq, jnp.int32) if q_lengths is None else jnp.clip(
        q_lengths.astype(jnp.int32), 0, lq)
    kl = jnp.full((b,), lk, jnp.int32) if kv_lengths is None else jnp.clip(
        kv_lengths.astype(jnp.int32), 0, lk)
    o = jax.nn.dot_product_attention(q, k, v, scale=sm_scale, is_causal=causal,
                                     query_seq_lengths=ql, key_value_seq_lengths=kl,
                                     implementation="cudnn")
    valid = (jnp.arange(lq)[None, :] < ql[:, None]) & (kl[:, None] > 0)
    return jnp.where(valid[:, :, None, None], o, jnp.zeros((), o.dtype))


def _local_dims(part, b: int, h: int) -> tuple[int, int]:
    """(B, H) one device sees under a resolved partition (None: the whole op)."""
    if part is None:
        return b, h
    return (b // math.prod(part.mesh.shape[a] for a in part.batch or ()),
            h // math.prod(part.mesh.shape[a] for a in part.heads or ()))


# --------------------------------------------------------------------------- dispatch
def attention(q, k, v, *, q_lengths=None, kv_lengths=None, q_mask=None, kv_mask=None,
              bias=None, causal=False, sm_scale=None, block_sizes=None, implementation=None,
              interpret=False, partition=DEFAULT_PARTITION):
    """Masked multi-head attention: Pallas kernel, cuDNN or XLA, by shape bucket on GPU.

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
            differentiable; -inf masks a key, and a row with no finite logit outputs zeros.
            A key-only [B, 1, 1, Lk] or query-only bias is never broadcast in memory.
        causal: query i attends key j <= i (top-left aligned when Lq != Lk).
        sm_scale: logits scale (default 1/sqrt(D)).
        block_sizes: AttentionBlockSizes (Pallas path only); default: the exact match in
            mmer_kernels/tuned_blocks.json, else ``BlockSizes.default``.
        implementation: None or "auto": off GPU XLA; on GPU the fastest of "pallas", "cudnn"
            (where :func:`cudnn_unsupported` allows), "mosaic" (where
            :func:`mosaic_unsupported` allows) and "xla" that the autotuner recorded for
            this shape bucket and device in mmer_kernels/tuned_blocks.json, Pallas when the table
            has no entry. Or force one: "pallas" (the Triton kernels; the Mosaic GPU ones when
            this jax has no Triton backend), "mosaic" (the Mosaic GPU kernels: Hopper,
            bfloat16/float16, D in {32, 64, 128}, no bias, no masks), "cudnn" (GPU) or "xla".
        interpret: run the Pallas kernel in interpret mode (any backend; slow, for tests);
            with "mosaic", in Pallas' Mosaic GPU interpreter.
        partition: :class:`mmer_kernels.Partition` -- the mesh axes the kernel path splits B and H
            over (a ``jax.shard_map``, no collective in forward or backward); default: B over
            the ``"data"`` axis of the context mesh (``jax.set_mesh``) when there is one.
            None: unpartitioned (under a sharded jit XLA then gathers the operands). The XLA
            path ignores it (XLA partitions the reference itself).

    Returns:
        [B, Lq, H, D] in q.dtype; zeros at padded queries and at queries without a valid key
        (whose gradients are zero too).

    Raises:
        ValueError: q, k or v is not 4-D, or k.shape != v.shape.
        ValueError: k and q differ in B, H or D.
        ValueError: q, k and v do not share one dtype.
        ValueError: bias has more than 4 dims or does not broadcast to [B, H, Lq, Lk].
        ValueError: from the dispatch: ``implementation`` is not None, "auto", "pallas",
            "cudnn", "mosaic" or "xla"; ``interpret=True`` with "xla" or "cudnn";
            ``implementation="pallas"`` without a GPU and without ``interpret=True``;
            ``implementation="cudnn"`` where :func:`cudnn_unsupported` gives a reason;
            ``implementation="mosaic"`` where :func:`mosaic_unsupported` gives one;
            ``implementation="pallas"`` on a jax without the Triton backend where the Mosaic
            GPU kernels cannot run the call either.
        ValueError: from the masks: lengths and mask given for one side, or a mask / lengths
            of the wrong shape.
        ValueError: from the partition: B or H not divisible by the devices of its mesh axes.
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
    if implementation not in IMPLEMENTATIONS + ("cudnn", "mosaic"):
        raise ValueError(
            f"{implementation=} must be one of {IMPLEMENTATIONS + ('cudnn', 'mosaic')}")
    has_masks = q_mask is not None or kv_mask is not None
    cudnn_why = cudnn_unsupported(q.dtype, d, lq, lk, causal=causal, has_bias=bias is not None,
                                  has_masks=has_masks)
    on_gpu = jax.default_backend() == "gpu"
    # Interpret mode with no implementation named runs the Pallas kernels, as "pallas" does.
    wants_pallas = implementation == "pallas" or (implementation in (None, "auto") and interpret)
    mosaic_why = None
    if (implementation == "mosaic" or (wants_pallas and _k is None)
            or (implementation in (None, "auto") and on_gpu)):
        mosaic_why = mosaic_unsupported(q.dtype, d, has_bias=bias is not None,
                                        has_masks=has_masks, interpret=interpret)
    if implementation in (None, "auto") and not interpret:
        try:
            lb, lh = _local_dims(resolve(partition, b, h), b, h)
        except ValueError:  # not divisible: the Pallas path raises it, if it is taken
            lb, lh = b, h
        key = tuning_key((lb, lq, lh, d), lk, q.dtype, causal=causal, has_bias=bias is not None)
        # "mosaic" runs by default only where the autotuner timed it fastest.
        implementation = pick_implementation(
            "attention", key, ("pallas", "xla") + (() if cudnn_why else ("cudnn",))
            + (() if mosaic_why else ("mosaic",)))
    if wants_pallas and _k is None and (interpret or on_gpu):
        if mosaic_why:
            raise ValueError("implementation='pallas': this jax has no Pallas Triton backend, "
                             f"and {mosaic_why}")
        implementation = "mosaic"
    if implementation == "mosaic" and mosaic_why:
        raise ValueError(f"implementation='mosaic': {mosaic_why}")
    if implementation == "cudnn":
        if interpret:
            raise ValueError("interpret=True runs the Pallas kernel; it contradicts "
                             "implementation='cudnn'")
        if cudnn_why:
            raise ValueError(f"implementation='cudnn': {cudnn_why}")
        return _attention_cudnn(q, k, v, q_lengths, kv_lengths, causal=causal, sm_scale=sm_scale)
    if implementation != "mosaic" and not use_pallas(implementation, interpret):
        return attention_reference(q, k, v, q_lengths=q_lengths, kv_lengths=kv_lengths,
                                   q_mask=q_mask, kv_mask=kv_mask, bias=bias, causal=causal,
                                   sm_scale=sm_scale)
    check_mask_args(q_lengths, q_mask, batch=b, seq_len=lq, name="q_")
    check_mask_args(kv_lengths, kv_mask, batch=b, seq_len=lk, name="kv_")
    part = resolve(partition, b, h)
    if implementation == "mosaic":
        run = functools.partial(_attention_mosaic, causal=causal, sm_scale=sm_scale,
                                interpret=interpret)
        if part is None:
            return run(q, k, v, q_lengths, kv_lengths)
        seq, row = part.spec("b", None, "h", None), part.spec("b")
        return shard(run, part, (seq, seq, seq, row, row), seq, interpret=interpret,
                     check_vma=False)(q, k, v, q_lengths, kv_lengths)
    if bias is not None:
        bias = bias.reshape(_bias_shape(bias.shape, (b, h, lq, lk)))  # 4-D, a free reshape
    if block_sizes is None:  # tuned for the per-device shape the kernels see
        lb, lh = _local_dims(part, b, h)
        block_sizes = pick_block_sizes((lb, lq, lh, d), lk, q.dtype, causal=causal,
                                       has_bias=bias is not None)
    run = functools.partial(_attention_pallas, causal=causal, sm_scale=sm_scale,
                            block_sizes=block_sizes, interpret=interpret)
    args = (q, k, v, bias, q_lengths, kv_lengths, q_mask, kv_mask)
    if part is None:
        return run(*args)
    seq = part.spec("b", None, "h", None)  # q, k, v and the output
    bias_spec = None if bias is None else part.spec(
        "b" if bias.shape[0] > 1 else None, "h" if bias.shape[1] > 1 else None, None, None)
    row, rows = part.spec("b"), part.spec("b", None)  # lengths [B], masks [B, L]
    return shard(run, part, (seq, seq, seq, bias_spec, row, row, rows, rows), seq,
                 interpret=interpret)(*args)
