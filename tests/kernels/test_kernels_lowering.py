"""Each kernel (forward and backward) lowers for CUDA on a CPU-only machine.

Incantation that works on jax 0.10.2: inputs are ShapeDtypeStructs sharded on an
``AbstractMesh`` of abstract CUDA devices, and ``jit(f).trace(*args).lower(
lowering_platforms=("cuda",))``. With only an AbstractMesh in play jax itself insists on
the explicit ``lowering_platforms`` (a context ``use_abstract_mesh`` alone does not set the
platform and falls back to CPU, where pallas_call refuses non-interpret mode). Pallas'
Triton lowering runs at this stage, so the Triton-specific checks (power-of-two tiles,
supported primitives) are exercised; only Triton's own compilation to PTX is not.
"""

import functools
import importlib

import jax
import jax.numpy as jnp
import pytest
from jax.sharding import AbstractDevice, AbstractMesh, NamedSharding, PartitionSpec

att = importlib.import_module("kernels.attention")  # the module; kernels.attention is the op
dc = importlib.import_module("kernels.dynamic_conv")

_MESH = AbstractMesh((1,), ("data",), abstract_device=AbstractDevice(
    device_kind="NVIDIA H100 80GB HBM3", num_cores=None, platform="cuda"))


def _spec(shape, dtype):
    return jax.ShapeDtypeStruct(shape, dtype, sharding=NamedSharding(_MESH, PartitionSpec()))


def _lower_for_cuda(fn, *args):
    return jax.jit(fn).trace(*args).lower(lowering_platforms=("cuda",)).as_text()


def _with_grad(fn, argnums):
    def f(*args):
        return jax.grad(lambda *a: jnp.sum(fn(*a).astype(jnp.float32)), argnums=argnums)(*args)
    return f


@pytest.mark.parametrize("d,dtype,lq,lk,blocks", [
    (32, jnp.float32, 37, 50, att.BlockSizes(16, 16, 16, 16)),
    (64, jnp.bfloat16, 1000, 333, None),  # emotion-corpus length, default blocks
    (128, jnp.bfloat16, 200, 700, None),
    (128, jnp.float32, 64, 64, att.BlockSizes(64, 32, 32, 32)),
])
@pytest.mark.parametrize("pass_", ["fwd", "bwd"])
def test_attention_lowers_for_cuda(d, dtype, lq, lk, blocks, pass_):
    b, h = 4, 2
    blocks = blocks or att.BlockSizes.default(lq, lk, d, dtype)

    def fwd(q, k, v, bias, q_valid, kv_valid):
        return att._attention_pallas(q, k, v, q_valid, kv_valid, bias, causal=True,
                                     sm_scale=0.125, block_sizes=blocks, interpret=False)

    fn = fwd if pass_ == "fwd" else _with_grad(fwd, (0, 1, 2, 3))
    text = _lower_for_cuda(fn, _spec((b, lq, h, d), dtype), _spec((b, lk, h, d), dtype),
                           _spec((b, lk, h, d), dtype), _spec((1, h, lq, lk), jnp.float32),
                           _spec((b, lq), jnp.bool_), _spec((b, lk), jnp.bool_))
    assert text.count("xla.gpu.triton") == (1 if pass_ == "fwd" else 3)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("pass_", ["fwd", "bwd"])
def test_dynamic_conv_lowers_for_cuda(dtype, pass_):
    fwd = functools.partial(dc._dynamic_conv_pallas, padding="causal",
                            block_sizes=dc.BlockSizes.default(500, 48), interpret=False)
    fn = fwd if pass_ == "fwd" else _with_grad(fwd, (0, 1))
    text = _lower_for_cuda(fn, _spec((8, 500, 384), dtype), _spec((8, 500, 8, 7), dtype),
                           _spec((8, 500), jnp.bool_))
    assert text.count("xla.gpu.triton") == (1 if pass_ == "fwd" else 3)
