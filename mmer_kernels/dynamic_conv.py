"""Dynamic convolution (Wu et al. 2019) as a Pallas kernel with a hand-written backward.

Order as in attention.py: block sizes -> (bodies in _dynamic_conv_kernels.py) -> thin
pallas_call wrappers -> custom_vjp -> rules -> dispatch. Reference: _reference.py.

Semantics: x [B, T, C], weight_logits [B, T, H, K] (one kernel per position and head,
shared by the C/H channels of the head), softmax over the K taps fused into the kernel;
"centered" padding reads x[t - (K-1)//2 .. t + K//2], "causal" reads x[t - K + 1 .. t].
Padded positions (mask False) contribute zero input and produce zero output; the softmax
still spans all K taps (as in fairseq). The op is memory-bound. Nothing is padded, sliced or
transposed around the kernels: x is read as [B, T, H, R] (a free reshape), the logits in their
own [B, T, H, K] layout, and tails are masked loads and stores. The forward reads x (plus a K-1
row halo, from cache) and the logits once and writes y once; the softmax over the K taps is a
plain softmax over a [block_t, K] tile (one exp per tap). The backward recomputes it: one
kernel writes d-logits and the probabilities (zeroed at padded outputs, float32, K/R of x's
size), a second reads them with dy to write dx.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

try:  # Pallas' Triton backend is deprecated from jax 0.11 and will leave jax.
    from jax.experimental.pallas import triton as plgpu

    from mmer_kernels import _dynamic_conv_kernels as _k
except ImportError:  # then only the XLA path remains (no Mosaic GPU version of this op)
    plgpu = _k = None
from mmer_kernels._common import (
    check_mask_args,
    device_kind,
    next_pow2,
    pick_implementation,
    round_up,
    tuned_entry,
    use_pallas,
)
from mmer_kernels._reference import conv_offset, dynamic_conv_reference
from mmer_kernels._sharding import DEFAULT_PARTITION, out_struct, resolve, shard

_F32 = jnp.float32


@dataclasses.dataclass(frozen=True)
class BlockSizes:
    """Tile size along time and Triton launch parameters of the dynamic-conv kernels.

    Attributes:
        block_t: output positions per program (tail tiles are masked, nothing is padded).
        num_warps, num_stages: Triton launch parameters of all three kernels.

    Raises:
        ValueError: ``block_t`` is not a power of two >= 16; the message names the value.
    """

    block_t: int = 64
    num_warps: int = 4
    num_stages: int = 2

    def __post_init__(self):
        if self.block_t < 16 or self.block_t & (self.block_t - 1):
            raise ValueError(f"block_t={self.block_t} must be a power of two >= 16")

    @classmethod
    def default(cls, seq_len: int, head_channels: int) -> BlockSizes:
        """Keeps a [block_t, C/H] float32 tile around 8k elements (register budget).

        Args:
            seq_len: T.
            head_channels: C / H, the channels sharing one kernel.

        Returns:
            BlockSizes with block_t in 16..128 (at least 16, else no larger than next_pow2(T));
            never raises for positive sizes.
        """
        cap = max(16, min(128, 8192 // next_pow2(head_channels)))
        return cls(block_t=max(16, min(cap, next_pow2(seq_len))))

    def to_dict(self) -> dict:
        """The fields as a dict of ints (the ``blocks`` entry of tuned_blocks.json)."""
        return dataclasses.asdict(self)


def tuning_key(x_shape, num_heads: int, kernel_size: int, dtype, *, padding: str,
               device: str | None = None) -> str:
    """Key of mmer_kernels/tuned_blocks.json for one dynamic-conv call, by shape bucket (B and T
    rounded up to a power of two, at least 16; C, H, K, dtype and padding exact).

    Args:
        x_shape: (B, T, C) of x.
        num_heads: H.
        kernel_size: K, the taps.
        dtype: dtype of x and the logits.
        padding: "centered" or "causal" (not validated here).
        device: device kind (default: that of ``jax.devices()[0]``).

    Returns:
        e.g. ``"NVIDIA H100 80GB HBM3|B32|T512|C512|H8|K7|bfloat16|centered"`` for T=300.

    Raises:
        ValueError: ``x_shape`` does not have three entries.
        TypeError: ``dtype`` is not a dtype.
    """
    b, t, c = x_shape
    device = device_kind() if device is None else device
    bucket = lambda n: max(16, next_pow2(n))  # noqa: E731
    return (f"{device}|B{bucket(b)}|T{bucket(t)}|C{c}|H{num_heads}|K{kernel_size}"
            f"|{jnp.dtype(dtype).name}|{padding}")


def pick_block_sizes(x_shape, num_heads, kernel_size, dtype, *, padding) -> BlockSizes:
    """Tuned blocks for this shape bucket when the table has them, else the defaults.

    Args:
        x_shape: (B, T, C) of x.
        num_heads: H (C must be divisible by it).
        kernel_size: K.
        dtype: dtype of x and the logits.
        padding: "centered" or "causal".

    Returns:
        BlockSizes from the ``dynamic_conv`` section of mmer_kernels/tuned_blocks.json on a key
        match (an absent or unreadable table counts as no match), else ``BlockSizes.default``.

    Raises:
        ValueError: ``x_shape`` does not have three entries, or a table entry's block_t is not
            a power of two >= 16.
        TypeError: a table entry has fields BlockSizes does not know.
    """
    entry = tuned_entry("dynamic_conv", tuning_key(x_shape, num_heads, kernel_size, dtype,
                                                   padding=padding))
    if entry:
        return BlockSizes(**entry)
    return BlockSizes.default(x_shape[1], x_shape[2] // num_heads)


@dataclasses.dataclass(frozen=True)
class _Config:
    taps: int
    offset: int
    blocks: BlockSizes
    interpret: bool
    mask_mode: bool

    def params(self):
        return plgpu.CompilerParams(num_warps=self.blocks.num_warps,
                                    num_stages=self.blocks.num_stages)


def _call(kernel, name, cfg, x4, arrays, outs, out_names):
    """One pallas_call over (time tiles, B, H) on [B, T, H, R]-layout operands.

    ``arrays`` maps names to (array, kind): "whole" = the whole time axis of a [B, T, H, R]
    array, "tile" = a [bt, Rp] tile of one, "taps" = a [bt, Kp] tile of a [B, T, H, K] array,
    "taps_whole" = the whole time axis of one, "len" = lengths [B], "mask" = int32 [B, T].
    ``outs`` lists ((shape, dtype), kind) per output; the outputs vary over the manual mesh axes
    of the inputs (:func:`mmer_kernels._sharding.out_struct`).
    """
    b, t, h, r = x4.shape
    bt = cfg.blocks.block_t
    t_blk, rp = round_up(t, bt), next_pow2(r)
    kp = next_pow2(cfg.taps)
    spec = {
        "whole": pl.BlockSpec((None, t_blk, None, rp), lambda i, b_, h_: (b_, 0, h_, 0)),
        "tile": pl.BlockSpec((None, bt, None, rp), lambda i, b_, h_: (b_, i, h_, 0)),
        "taps": pl.BlockSpec((None, bt, None, kp), lambda i, b_, h_: (b_, i, h_, 0)),
        "taps_whole": pl.BlockSpec((None, t_blk, None, kp), lambda i, b_, h_: (b_, 0, h_, 0)),
        "len": pl.BlockSpec((b,), lambda *_: (0,)),
        "mask": pl.BlockSpec((None, t_blk), lambda i, b_, h_: (b_, 0)),
    }
    names = tuple(arrays) + tuple(out_names)
    return pl.pallas_call(
        functools.partial(kernel, names=names, block_t=bt, taps=cfg.taps, offset=cfg.offset,
                          t_len=t, r_len=r, mask_mode=cfg.mask_mode),
        grid=(pl.cdiv(t, bt), b, h),
        in_specs=[spec[kind] for _, kind in arrays.values()],
        out_specs=[spec[kind] for _, kind in outs],
        out_shape=[out_struct(shape, dtype, *(a for a, _ in arrays.values()))
                   for (shape, dtype), _ in outs],
        compiler_params=cfg.params(), interpret=cfg.interpret, name=name,
    )(*(a for a, _ in arrays.values()))


def _valid_arg(valid, cfg):
    return ("m", (valid, "mask")) if cfg.mask_mode else ("len", (valid, "len"))


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _dconv(x4, w, valid, cfg):
    """Kernel-layout op: x4 [B, T, H, R], w [B, T, H, K], lengths [B] or int32 mask [B, T]."""
    vname, varg = _valid_arg(valid, cfg)
    return _call(_k.fwd_kernel, "mmer_dynconv_fwd", cfg, x4,
                 {"x": (x4, "whole"), "w": (w, "taps"), vname: varg},
                 [((x4.shape, x4.dtype), "tile")], ["y"])[0]


def _dconv_fwd(x4, w, valid, cfg):
    # Residuals are the inputs: the softmax is recomputed in the backward (K exps a row).
    return _dconv(x4, w, valid, cfg), (x4, w, valid)


def _dconv_bwd(cfg, res, dy):
    x4, w, valid = res
    vname, varg = _valid_arg(valid, cfg)
    f32 = (w.shape, _F32)
    dw, p = _call(_k.dlogits_kernel, "mmer_dynconv_dlogits", cfg, x4,
                  {"x": (x4, "whole"), "w": (w, "taps"), "dy": (dy, "whole"), vname: varg},
                  [((w.shape, w.dtype), "taps"), (f32, "taps")],
                  ["dw", "p"])
    dx = _call(_k.dx_kernel, "mmer_dynconv_dx", cfg, x4,
               {"dy": (dy, "whole"), "p": (p, "taps_whole"), vname: varg},
               [((x4.shape, x4.dtype), "tile")], ["dx"])[0]
    return dx, dw, None


_dconv.defvjp(_dconv_fwd, _dconv_bwd)


@functools.partial(jax.jit, static_argnames=("padding", "block_sizes", "interpret"))
def _dynamic_conv_pallas(x, weight_logits, lengths, mask, *, padding, block_sizes, interpret):
    """Runs the kernels on the caller's arrays: a free reshape of x, nothing padded or moved."""
    b, t, c = x.shape
    _, _, h, taps = weight_logits.shape
    if mask is not None:
        valid = mask.astype(jnp.int32)
    elif lengths is not None:
        valid = jnp.clip(lengths.astype(jnp.int32), 0, t)
    else:
        valid = jnp.full((b,), t, jnp.int32)
    cfg = _Config(taps=taps, offset=conv_offset(taps, padding), blocks=block_sizes,
                  interpret=bool(interpret), mask_mode=mask is not None)
    y = _dconv(x.reshape(b, t, h, c // h), weight_logits, valid, cfg)
    return y.reshape(b, t, c)


def dynamic_conv(x, weight_logits, *, mask=None, lengths=None, padding="centered",
                 block_sizes=None, implementation=None, interpret=False,
                 partition=DEFAULT_PARTITION):
    """Dynamic convolution with softmax-normalised per-position kernels (Wu et al. 2019).

    y[b, t, c] = sum_k softmax_k(weight_logits[b, t, h(c)])[k] * x[b, t - P + k, c] with
    h(c) = c // (C / H), P = (K-1)//2 ("centered") or K-1 ("causal"); padded positions read as
    zero input and produce zero output; the softmax spans all K taps. Float32 accumulation for
    float32 and bfloat16 inputs. Differentiable in x and weight_logits.

    Args:
        x: float32 or bfloat16 [B, T, C].
        weight_logits: [B, T, H, K] in the dtype of x; C must be divisible by H.
        mask: bool [B, T] (True = valid; need not be a prefix), or None.
        lengths: int [B] valid prefix lengths (exclusive with mask), or None. Neither: every
            position is valid.
        padding: "centered" or "causal".
        block_sizes: DynamicConvBlockSizes (Pallas path only); default: the exact match in
            mmer_kernels/tuned_blocks.json, else ``BlockSizes.default``.
        implementation: None or "auto": off GPU XLA; on GPU the faster of "pallas" and "xla"
            that the autotuner recorded for this shape bucket and device in
            mmer_kernels/tuned_blocks.json, Pallas when the table has no entry. Or "pallas"/"xla".
        interpret: run the Pallas kernel in interpret mode (any backend; slow, for tests).
        partition: :class:`mmer_kernels.Partition` -- the mesh axes the kernel path splits B and H
            (with C) over (a ``jax.shard_map``, no collective in forward or backward); default:
            B over the ``"data"`` axis of the context mesh (``jax.set_mesh``) when there is
            one. None: unpartitioned. The XLA path ignores it.

    Returns:
        [B, T, C] in x.dtype, zero at padded positions.

    Raises:
        ValueError: x is not [B, T, C] or weight_logits is not [B, T, H, K] with x's B and T.
        ValueError: C is not divisible by H.
        ValueError: ``padding`` is not "centered" or "causal".
        ValueError: from the dispatch: ``implementation`` is not None, "auto", "pallas" or "xla";
            ``interpret=True`` with ``implementation="xla"``; ``implementation="pallas"``
            without a GPU and without ``interpret=True``; ``implementation="pallas"`` or
            ``interpret=True`` on a jax without Pallas' Triton backend.
        ValueError: from the mask: both mask and lengths, or either of the wrong shape.
        ValueError: from the partition: B or H not divisible by the devices of its mesh axes.
    """
    if x.ndim != 3 or weight_logits.ndim != 4 or weight_logits.shape[:2] != x.shape[:2]:
        raise ValueError(f"x.shape={x.shape} must be [B, T, C] and weight_logits.shape="
                         f"{weight_logits.shape} must be [B, T, H, K]")
    b, t, c = x.shape
    h, taps = weight_logits.shape[2:]
    if c % h:
        raise ValueError(f"channels C={c} must be divisible by heads H={h}")
    conv_offset(taps, padding)  # validates padding
    if implementation in (None, "auto") and not interpret:
        key = tuning_key(x.shape, h, taps, x.dtype, padding=padding)
        implementation = pick_implementation(
            "dynamic_conv", key, ("pallas", "xla") if _k is not None else ("xla",))
    if _k is None and (implementation == "pallas" or interpret):
        raise ValueError("the dynamic convolution's Pallas kernel needs Pallas' Triton backend, "
                         "which this jax lacks; use implementation='xla'")
    if not use_pallas(implementation, interpret):
        return dynamic_conv_reference(x, weight_logits, mask=mask, lengths=lengths,
                                      padding=padding)
    check_mask_args(lengths, mask, batch=b, seq_len=t, name="")
    part = resolve(partition, b, h)
    if block_sizes is None:  # tuned for the per-device shape the kernels see
        n_b = math.prod(part.mesh.shape[a] for a in part.batch or ()) if part else 1
        n_h = math.prod(part.mesh.shape[a] for a in part.heads or ()) if part else 1
        block_sizes = pick_block_sizes((b // n_b, t, c // n_h), h // n_h, taps, x.dtype,
                                       padding=padding)
    run = functools.partial(_dynamic_conv_pallas, padding=padding, block_sizes=block_sizes,
                            interpret=interpret)
    args = (x, weight_logits, lengths, mask)
    if part is None:
        return run(*args)
    # C = H * (C/H) is head-major, so splitting C over the head axes keeps whole heads.
    xs, ws = part.spec("b", None, "h"), part.spec("b", None, "h", None)
    return shard(run, part, (xs, ws, part.spec("b"), part.spec("b", None)), xs,
                 interpret=interpret)(*args)
