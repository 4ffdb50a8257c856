"""Dynamic convolution (Wu et al. 2019) as a Pallas kernel with a hand-written backward.

Order as in attention.py: block sizes -> (bodies in _dynamic_conv_kernels.py) -> thin
pallas_call wrappers -> custom_vjp -> rules -> dispatch. Reference: _reference.py.

Semantics: x [B, T, C], weight_logits [B, T, H, K] (one kernel per position and head,
shared by the C/H channels of the head), softmax over the K taps fused into the kernel;
"centered" padding reads x[t - (K-1)//2 .. t + K//2], "causal" reads x[t - K + 1 .. t].
Padded positions (mask False) contribute zero input and produce zero output; the softmax
still spans all K taps (as in fairseq). The op is memory-bound: the kernel reads x and the
logits once per output tile (plus a K-1 row halo) and writes y once.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as plgpu

from kernels import _dynamic_conv_kernels as _k
from kernels._common import device_kind, next_pow2, resolve_mask, round_up, tuned_entry, use_pallas
from kernels._reference import conv_offset, dynamic_conv_reference

_F32 = jnp.float32


@dataclasses.dataclass(frozen=True)
class BlockSizes:
    """Tile size along time and Triton launch parameters of the dynamic-conv kernels.

    Attributes:
        block_t: output positions per program (the time axis is zero-padded to a multiple).
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
    """Exact-match key of kernels/tuned_blocks.json for one dynamic-conv call.

    Args:
        x_shape: (B, T, C) of x.
        num_heads: H.
        kernel_size: K, the taps.
        dtype: dtype of x and the logits.
        padding: "centered" or "causal" (not validated here).
        device: device kind (default: that of ``jax.devices()[0]``).

    Returns:
        e.g. ``"NVIDIA H100 80GB HBM3|B32|T300|C512|H8|K7|bfloat16|centered"``.

    Raises:
        ValueError: ``x_shape`` does not have three entries.
        TypeError: ``dtype`` is not a dtype.
    """
    b, t, c = x_shape
    device = device_kind() if device is None else device
    return f"{device}|B{b}|T{t}|C{c}|H{num_heads}|K{kernel_size}|{jnp.dtype(dtype).name}|{padding}"


def pick_block_sizes(x_shape, num_heads, kernel_size, dtype, *, padding) -> BlockSizes:
    """Tuned blocks for this exact shape when the table has them, else the defaults.

    Args:
        x_shape: (B, T, C) of x.
        num_heads: H (C must be divisible by it).
        kernel_size: K.
        dtype: dtype of x and the logits.
        padding: "centered" or "causal".

    Returns:
        BlockSizes from the ``dynamic_conv`` section of kernels/tuned_blocks.json on an exact key
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
    blocks: BlockSizes
    interpret: bool

    def params(self):
        return plgpu.CompilerParams(num_warps=self.blocks.num_warps,
                                    num_stages=self.blocks.num_stages)


def _fwd_call(xp, lw, m, cfg: _Config):
    """xp [B, Tx, H, R], lw [B, H, K, T], m [B, T] -> (y [B, T, H, R], lse [B, H, T] f32)."""
    b, tx, h, r = xp.shape
    t, bt = lw.shape[-1], cfg.blocks.block_t
    return pl.pallas_call(
        functools.partial(_k.fwd_kernel, block_t=bt, taps=cfg.taps),
        grid=(t // bt, b, h),
        in_specs=[pl.BlockSpec((None, tx, None, r), lambda i, b_, h_: (b_, 0, h_, 0)),
                  pl.BlockSpec((None, None, cfg.taps, bt), lambda i, b_, h_: (b_, h_, 0, i)),
                  pl.BlockSpec((None, bt), lambda i, b_, h_: (b_, i))],
        out_specs=[pl.BlockSpec((None, bt, None, r), lambda i, b_, h_: (b_, i, h_, 0)),
                   pl.BlockSpec((None, None, bt), lambda i, b_, h_: (b_, h_, i))],
        out_shape=[jax.ShapeDtypeStruct((b, t, h, r), xp.dtype),
                   jax.ShapeDtypeStruct((b, h, t), _F32)],
        compiler_params=cfg.params(), interpret=cfg.interpret, name="mmer_dynconv_fwd",
    )(xp, lw, m)


def _dlogits_call(xp, lw, lse, dy, delta, cfg: _Config):
    """-> d logits [B, H, K, T] in lw.dtype."""
    b, tx, h, r = xp.shape
    t, bt = lw.shape[-1], cfg.blocks.block_t
    row = pl.BlockSpec((None, None, bt), lambda i, b_, h_: (b_, h_, i))
    taps_spec = pl.BlockSpec((None, None, cfg.taps, bt), lambda i, b_, h_: (b_, h_, 0, i))
    return pl.pallas_call(
        functools.partial(_k.dlogits_kernel, block_t=bt, taps=cfg.taps),
        grid=(t // bt, b, h),
        in_specs=[pl.BlockSpec((None, tx, None, r), lambda i, b_, h_: (b_, 0, h_, 0)),
                  taps_spec, row,
                  pl.BlockSpec((None, bt, None, r), lambda i, b_, h_: (b_, i, h_, 0)), row],
        out_specs=taps_spec,
        out_shape=jax.ShapeDtypeStruct(lw.shape, lw.dtype),
        compiler_params=cfg.params(), interpret=cfg.interpret, name="mmer_dynconv_dlogits",
    )(xp, lw, lse, dy, delta)


def _dx_call(dyf, lwf, lsef, x_shape, x_dtype, cfg: _Config):
    """Front-padded dy [B, Tf, H, R], logits [B, H, K, Tf], lse [B, H, Tf] -> dx [x_shape]."""
    b, tf, h, r = dyf.shape
    tx, bt = x_shape[1], cfg.blocks.block_t
    return pl.pallas_call(
        functools.partial(_k.dx_kernel, block_t=bt, taps=cfg.taps),
        grid=(tx // bt, b, h),
        in_specs=[pl.BlockSpec((None, tf, None, r), lambda i, b_, h_: (b_, 0, h_, 0)),
                  pl.BlockSpec((None, None, cfg.taps, tf), lambda i, b_, h_: (b_, h_, 0, 0)),
                  pl.BlockSpec((None, None, tf), lambda i, b_, h_: (b_, h_, 0))],
        out_specs=pl.BlockSpec((None, bt, None, r), lambda i, b_, h_: (b_, i, h_, 0)),
        out_shape=jax.ShapeDtypeStruct(x_shape, x_dtype),
        compiler_params=cfg.params(), interpret=cfg.interpret, name="mmer_dynconv_dx",
    )(dyf, lwf, lsef)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _dconv(xp, lw, m, cfg):
    """Kernel-layout op: xp [B, Tx, H, R] (halo-padded), lw [B, H, K, T], m [B, T] -> y."""
    return _fwd_call(xp, lw, m, cfg)[0]


def _dconv_fwd(xp, lw, m, cfg):
    y, lse = _fwd_call(xp, lw, m, cfg)
    return y, (xp, lw, m, y, lse)


def _dconv_bwd(cfg, res, dy):
    xp, lw, m, y, lse = res
    taps, tx, t = cfg.taps, xp.shape[1], lw.shape[-1]
    dy = jnp.where(m[:, :, None, None] != 0, dy, 0).astype(dy.dtype)  # masked outputs
    delta = jnp.einsum("bthr,bthr->bht", dy.astype(_F32), y.astype(_F32))
    dlw = _dlogits_call(xp, lw, lse, dy, delta, cfg)
    # dx needs rows t = s - k for k < K: front-pad K-1 zero rows, back-pad to Tx rows.
    front, back = taps - 1, tx - t
    dyf = jnp.pad(dy, ((0, 0), (front, back), (0, 0), (0, 0)))
    lwf = jnp.pad(lw, ((0, 0), (0, 0), (0, 0), (front, back)))
    lsef = jnp.pad(lse, ((0, 0), (0, 0), (front, back)))
    dxp = _dx_call(dyf, lwf, lsef, xp.shape, xp.dtype, cfg)
    return dxp, dlw, None


_dconv.defvjp(_dconv_fwd, _dconv_bwd)


@functools.partial(jax.jit, static_argnames=("padding", "block_sizes", "interpret"))
def _dynamic_conv_pallas(x, weight_logits, valid, *, padding, block_sizes, interpret):
    """Masks, pads and re-lays out x and the logits, runs the kernel, undoes the layout.

    The mask/pad/transpose steps are plain jnp, so autodiff carries the custom_vjp's
    kernel-layout gradients back to x (masked) and weight_logits.
    """
    b, t, c = x.shape
    _, _, h, taps = weight_logits.shape
    r = c // h
    r_pad = next_pow2(r)  # Triton tiles are powers of two; zero channels are sliced off
    bt = block_sizes.block_t
    off = conv_offset(taps, padding)
    t_pad = round_up(t, bt)
    tx = round_up(t_pad + taps - 1, bt)  # halo rows, rounded so dx tiles the same grid
    xm = jnp.where(valid[:, :, None], x, 0).reshape(b, t, h, r)
    xp = jnp.pad(xm, ((0, 0), (off, tx - t - off), (0, 0), (0, r_pad - r)))
    lw = jnp.pad(jnp.transpose(weight_logits, (0, 2, 3, 1)), ((0, 0),) * 3 + ((0, t_pad - t),))
    m = jnp.pad(valid, ((0, 0), (0, t_pad - t))).astype(jnp.int32)
    y = _dconv(xp, lw, m, _Config(taps=taps, blocks=block_sizes, interpret=bool(interpret)))
    return y[:, :t, :, :r].reshape(b, t, c)


def dynamic_conv(x, weight_logits, *, mask=None, lengths=None, padding="centered",
                 block_sizes=None, implementation=None, interpret=False):
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
            kernels/tuned_blocks.json, else ``BlockSizes.default``.
        implementation: None (Pallas on GPU, XLA elsewhere), "pallas" or "xla".
        interpret: run the Pallas kernel in interpret mode (any backend; slow, for tests).

    Returns:
        [B, T, C] in x.dtype, zero at padded positions.

    Raises:
        ValueError: x is not [B, T, C] or weight_logits is not [B, T, H, K] with x's B and T.
        ValueError: C is not divisible by H.
        ValueError: ``padding`` is not "centered" or "causal".
        ValueError: from the dispatch: ``implementation`` is not None, "pallas" or "xla";
            ``interpret=True`` with ``implementation="xla"``; ``implementation="pallas"``
            without a GPU and without ``interpret=True``.
        ValueError: from the mask: both mask and lengths, or either of the wrong shape.
    """
    if x.ndim != 3 or weight_logits.ndim != 4 or weight_logits.shape[:2] != x.shape[:2]:
        raise ValueError(f"x.shape={x.shape} must be [B, T, C] and weight_logits.shape="
                         f"{weight_logits.shape} must be [B, T, H, K]")
    b, t, c = x.shape
    h, taps = weight_logits.shape[2:]
    if c % h:
        raise ValueError(f"channels C={c} must be divisible by heads H={h}")
    conv_offset(taps, padding)  # validates padding
    if not use_pallas(implementation, interpret):
        return dynamic_conv_reference(x, weight_logits, mask=mask, lengths=lengths,
                                      padding=padding)
    valid = resolve_mask(lengths, mask, batch=b, seq_len=t, name="")
    if block_sizes is None:
        block_sizes = pick_block_sizes(x.shape, h, taps, x.dtype, padding=padding)
    return _dynamic_conv_pallas(x, weight_logits, valid, padding=padding,
                                block_sizes=block_sizes, interpret=interpret)
