"""Each kernel (forward and backward) lowers for CUDA on a CPU-only machine, with no work around it.

Incantation that works on jax 0.10.2 and 0.11.2: inputs are ShapeDtypeStructs sharded on an
``AbstractMesh`` of abstract CUDA devices (an H100's device kind), and, inside
``jax.sharding.use_abstract_mesh`` of that mesh, ``jit(f).trace(*args).lower(
lowering_platforms=("cuda",))``. The context names the target GPU (jax 0.11's Triton lowering
reads its compute capability from the abstract device and raises "No supported GPU devices
found" without it); the explicit ``lowering_platforms`` is still needed (the context alone does
not set the platform and falls back to CPU, where pallas_call refuses non-interpret mode). Pallas'
Triton lowering runs at this stage, so the Triton-specific checks (power-of-two tiles,
supported primitives, masked loads) are exercised; only Triton's own compilation to PTX is not.

The op-count tests read the lowered StableHLO around the kernels: the kernels take the caller's
un-padded arrays and lengths, so no pad, transpose, slice or concatenate may appear in the
forward or the backward program (only free reshapes, the lengths' clamp and the backward's
row reduction ``delta``).
"""

import functools
import importlib
import re

import jax
import jax.numpy as jnp
import pytest
from jax.sharding import AbstractDevice, AbstractMesh, NamedSharding, PartitionSpec

att = importlib.import_module("mmer_kernels.attention")  # the module, not the op
dc = importlib.import_module("mmer_kernels.dynamic_conv")

_MESH = AbstractMesh((1,), ("data",), abstract_device=AbstractDevice(
    device_kind="NVIDIA H100 80GB HBM3", num_cores=None, platform="cuda"))
MOVES = ("pad", "transpose", "slice", "dynamic_slice", "concatenate", "gather")


def _spec(shape, dtype):
    return jax.ShapeDtypeStruct(shape, dtype, sharding=NamedSharding(_MESH, PartitionSpec()))


def _lower_for_cuda(fn, *args):
    # Under the abstract mesh the Pallas lowering reads the target GPU from its abstract device
    # (jax 0.11 refuses to guess one where no GPU is present; 0.10 assumed compute capability
    # 9.0); the explicit platform is still needed for the pallas_call to lower for CUDA at all.
    with jax.sharding.use_abstract_mesh(_MESH):
        return jax.jit(fn).trace(*args).lower(lowering_platforms=("cuda",)).as_text()


def _with_grad(fn, argnums):
    def f(*args):
        return jax.grad(lambda *a: jnp.sum(fn(*a).astype(jnp.float32)), argnums=argnums)(*args)
    return f


def op_counts(text: str) -> dict[str, int]:
    """Occurrences of each data-movement op of ``MOVES`` in StableHLO text (outside kernels:
    the Triton kernels are opaque custom calls there)."""
    return {op: len(re.findall(rf"stablehlo\.{op}\b", text)) for op in MOVES}


def _attention_fn(blocks, causal=True, masks=False):
    def fwd(q, k, v, bias, q_side, kv_side):
        kw = dict(q_mask=q_side, kv_mask=kv_side) if masks else dict(q_lengths=q_side,
                                                                     kv_lengths=kv_side)
        return att._attention_pallas(q, k, v, bias, kw.get("q_lengths"), kw.get("kv_lengths"),
                                     kw.get("q_mask"), kw.get("kv_mask"), causal=causal,
                                     sm_scale=0.125, block_sizes=blocks, interpret=False)
    return fwd


@pytest.mark.parametrize("d,dtype,lq,lk,blocks,bias", [
    (32, jnp.float32, 37, 50, att.BlockSizes(16, 16, 16, 16, 16, 16), (1, 2, 37, 50)),
    (64, jnp.bfloat16, 1000, 333, None, (4, 1, 1, 333)),  # emotion-corpus length, key bias
    (96, jnp.bfloat16, 200, 700, None, (1, 2, 200, 1)),  # D not a power of two, query bias
    (128, jnp.float32, 64, 64, att.BlockSizes(64, 32, 32, 32, 64, 16), None),
])
@pytest.mark.parametrize("pass_", ["fwd", "bwd"])
def test_attention_lowers_for_cuda_without_moves(d, dtype, lq, lk, blocks, bias, pass_):
    b, h = 4, 2
    blocks = blocks or att.BlockSizes.default(lq, lk, d, dtype)
    fwd = _attention_fn(blocks)
    argnums = (0, 1, 2, 3) if bias else (0, 1, 2)
    fn = fwd if pass_ == "fwd" else _with_grad(fwd, argnums)
    text = _lower_for_cuda(fn, _spec((b, lq, h, d), dtype), _spec((b, lk, h, d), dtype),
                           _spec((b, lk, h, d), dtype),
                           None if bias is None else _spec(bias, jnp.float32),
                           _spec((b,), jnp.int32), _spec((b,), jnp.int32))
    # bwd: the forward (for the residuals) and the one fused backward kernel.
    assert text.count("xla.gpu.triton") == (1 if pass_ == "fwd" else 2)
    assert op_counts(text) == dict.fromkeys(MOVES, 0), op_counts(text)


def test_attention_with_masks_lowers_without_moves():
    b, lq, lk, h, d = 2, 300, 300, 8, 64
    fn = _with_grad(_attention_fn(att.BlockSizes.default(lq, lk, d, jnp.bfloat16), False,
                                  masks=True), (0, 1, 2))
    text = _lower_for_cuda(fn, *[_spec((b, n, h, d), jnp.bfloat16) for n in (lq, lk, lk)],
                           None, _spec((b, lq), jnp.bool_), _spec((b, lk), jnp.bool_))
    assert text.count("xla.gpu.triton") == 2
    assert op_counts(text) == dict.fromkeys(MOVES, 0), op_counts(text)


def test_bias_gradient_only_when_asked():
    """grad w.r.t. q, k, v only: no [B, H, Lq, Lk] float32 gradient anywhere in the program."""
    b, lq, lk, h, d = 2, 40, 56, 2, 32
    fwd = _attention_fn(att.BlockSizes(16, 16, 16, 16, 16, 16))
    args = ([_spec((b, n, h, d), jnp.float32) for n in (lq, lk, lk)]
            + [_spec((1, h, lq, lk), jnp.float32), _spec((b,), jnp.int32),
               _spec((b,), jnp.int32)])
    without = _lower_for_cuda(_with_grad(fwd, (0, 1, 2)), *args)
    with_ = _lower_for_cuda(_with_grad(fwd, (0, 1, 2, 3)), *args)
    full = f"tensor<{b}x{h}x{lq}x{lk}xf32>"
    assert full not in without and full in with_


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("pass_", ["fwd", "bwd"])
@pytest.mark.parametrize("masks", [False, True])
def test_dynamic_conv_lowers_for_cuda_without_moves(dtype, pass_, masks):
    fwd = functools.partial(dc._dynamic_conv_pallas, padding="causal",
                            block_sizes=dc.BlockSizes.default(500, 48), interpret=False)
    if masks:
        fn0 = lambda x, w, m: fwd(x, w, None, m)  # noqa: E731
        side = _spec((8, 500), jnp.bool_)
    else:
        fn0 = lambda x, w, n: fwd(x, w, n, None)  # noqa: E731
        side = _spec((8,), jnp.int32)
    fn = fn0 if pass_ == "fwd" else _with_grad(fn0, (0, 1))
    text = _lower_for_cuda(fn, _spec((8, 500, 384), dtype), _spec((8, 500, 8, 7), dtype), side)
    # The backward recomputes the softmax from the logits, so grad alone needs no forward.
    assert text.count("xla.gpu.triton") == (1 if pass_ == "fwd" else 2)
    assert op_counts(text) == dict.fromkeys(MOVES, 0), op_counts(text)
