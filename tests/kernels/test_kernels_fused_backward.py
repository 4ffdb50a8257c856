"""The Triton attention backward as one kernel: FlashAttention-2's five products per tile pair,
one exponential, and dq (and a query-only bias gradient) summed over key tiles without atomics.

The numerical scenarios of test_kernels_attention.py run it with as many key-tile groups as key
tiles (one key tile per program); here one group walks every key tile, so each dq tile is read,
added to and written back once per key tile -- the path a full GPU's batch takes.
"""

import functools
import importlib

import jax
import jax.numpy as jnp
import pytest
from kernel_test_util import FAST_COMPILE, assert_close, normal, rng, tile_loop_counts

from mmer_kernels import _common
from mmer_kernels._reference import attention_reference
from mmer_kernels.attention import BlockSizes, attention

att = importlib.import_module("mmer_kernels.attention")
B16 = BlockSizes(16, 16, 16, 16, 16, 16)


@pytest.mark.parametrize("bias_shape", [None, (2, 1, 37, 1), (1, 2, 37, 50), (2, 1, 1, 50)],
                         ids=["none", "q_bias", "full_bias", "k_bias"])
def test_one_group_accumulates_dq_over_every_key_tile(monkeypatch, bias_shape):
    monkeypatch.setattr(_common, "TARGET_PROGRAMS", 1)
    assert _common.key_groups(2, 2, 4) == 1
    b, lq, lk, h, d = 2, 37, 50, 2, 24  # 3 query and 4 key tiles of 16; D=24 in a 32 tile
    gen = rng(3)
    q = normal(gen, (b, lq, h, d))
    k = normal(gen, (b, lk, h, d))
    v = normal(gen, (b, lk, h, d))
    bias = None if bias_shape is None else normal(gen, bias_shape)
    cot = normal(gen, q.shape)
    kw = dict(q_lengths=jnp.array([37, 20]), kv_lengths=jnp.array([50, 33]), causal=True)
    argnums = (0, 1, 2) if bias is None else (0, 1, 2, 3)

    def grads(fn):
        loss = lambda q, k, v, bias: jnp.sum(fn(q, k, v, bias=bias, **kw) * cot)  # noqa: E731
        return jax.jit(jax.grad(loss, argnums=argnums), compiler_options=FAST_COMPILE)(
            q, k, v, bias)

    got = grads(functools.partial(attention, block_sizes=B16, interpret=True))
    want = grads(attention_reference)
    assert len(got) == len(want) == len(argnums)
    for name, g, w in zip(["dq", "dk", "dv", "dbias"][:len(argnums)], got, want, strict=True):
        assert_close(g, w, jnp.float32, "grad", name, platform="cpu")


def test_triton_backward_forms_five_products_and_one_exponential_per_tile_pair():
    """Before: a dK/dV kernel (4 products) and a dQ kernel (3), each exponentiating p."""
    b, lq, h, d = 2, 64, 2, 32
    cfg = att._Config(sm_scale=0.2, causal=True, blocks=B16, interpret=False)
    q = jnp.zeros((b, lq, h, d))
    rows = jnp.zeros((b, lq, h))
    n = jnp.full((b,), lq, jnp.int32)
    jaxpr = jax.make_jaxpr(lambda q, do, lse, delta: att._bwd_call(
        q, q, q, None, n, n, None, None, do, lse, delta, cfg, False))(q, q, rows, rows)
    calls = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == "pallas_call"]
    assert len(calls) == 1, [e.primitive.name for e in jaxpr.jaxpr.eqns]
    per_tile = tile_loop_counts(jaxpr.jaxpr, "dot_general")
    assert len(per_tile) == 2 and all(c == {"dot_general": 5, "exp2": 1} for c in per_tile), (
        per_tile)  # the masked and the interior query-tile loops
