"""The public surface of ``mmer_kernels``: its exports, its jax-only imports, its documented
errors."""

import functools
import inspect
import os
import subprocess
import sys

import chex
import jax.numpy as jnp
import numpy as np
import pytest

import mmer_kernels

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OPS = ("attention", "attention_reference", "dynamic_conv", "dynamic_conv_reference")


def test_all_lists_the_ops_and_block_sizes():
    assert sorted(mmer_kernels.__all__) == sorted(
        OPS + ("AttentionBlockSizes", "DynamicConvBlockSizes", "Partition"))
    for name in mmer_kernels.__all__:
        assert getattr(mmer_kernels, name).__module__.startswith("mmer_kernels."), name
    assert mmer_kernels.AttentionBlockSizes().block_q == 64
    assert mmer_kernels.DynamicConvBlockSizes().block_t


def test_public_callables_document_shapes_and_errors():
    for name in mmer_kernels.__all__:
        doc = inspect.getdoc(getattr(mmer_kernels, name)) or ""
        assert "Raises:" in doc, f"mmer_kernels.{name} has no Raises: section"
        assert "[B, " in doc or name.endswith("BlockSizes"), f"mmer_kernels.{name}: no shapes"


def test_importing_kernels_needs_jax_alone():
    code = ("import sys, kernels, mmer_kernels.autotune, mmer_kernels.bench; "
            "bad = sorted({m.split('.')[0] for m in sys.modules} & "
            "{'flax', 'mmer_jax', 'data_prep', 'experiments', 'optax', 'tensorflow'}); "
            "print(bad); sys.exit(1 if bad else 0)")
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, f"importing kernels loaded {done.stdout}{done.stderr}"


def test_bad_bias_is_the_same_error_on_both_paths():
    q = jnp.zeros((2, 5, 1, 32))
    for interpret in (False, True):
        with pytest.raises(ValueError, match="not broadcastable"):
            mmer_kernels.attention(q, q, q, bias=jnp.zeros((3, 5)), interpret=interpret)
        with pytest.raises(ValueError, match="ndim=5"):
            mmer_kernels.attention(q, q, q, bias=jnp.zeros((1, 1, 1, 5, 5)), interpret=interpret)


class XlaPathIsTheReference(chex.TestCase):
    """With ``implementation="xla"`` the ops are their references, jitted or not."""

    @chex.variants(with_jit=True, without_jit=True)
    def test_attention(self):
        # numpy inputs: eager jax.random compiles a program per shape (~0.3 s each)
        gen = np.random.default_rng(0)
        q = jnp.asarray(gen.standard_normal((2, 7, 2, 16), np.float32))
        k, v = (jnp.asarray(gen.standard_normal((2, 9, 2, 16), np.float32)) for _ in range(2))
        bias = jnp.asarray(gen.standard_normal((1, 2, 7, 9), np.float32))
        kw = dict(q_lengths=jnp.array([7, 3]), kv_lengths=jnp.array([9, 0]), causal=True)
        got = self.variant(functools.partial(mmer_kernels.attention, implementation="xla", **kw))(
            q, k, v, bias=bias)
        chex.assert_shape(got, q.shape)
        chex.assert_type(got, q.dtype)
        chex.assert_trees_all_close(got, mmer_kernels.attention_reference(q, k, v, bias=bias, **kw))
        chex.assert_trees_all_equal(got[1, 3:], jnp.zeros_like(got[1, 3:]))  # padded queries

    @chex.variants(with_jit=True, without_jit=True)
    def test_dynamic_conv(self):
        gen = np.random.default_rng(1)
        x = jnp.asarray(gen.standard_normal((2, 11, 12), np.float32).astype(jnp.bfloat16))
        w = jnp.asarray(gen.standard_normal((2, 11, 3, 5), np.float32).astype(jnp.bfloat16))
        kw = dict(lengths=jnp.array([11, 4]), padding="causal")
        op = functools.partial(mmer_kernels.dynamic_conv, implementation="xla", **kw)
        got = self.variant(op)(x, w)
        chex.assert_shape(got, x.shape)
        chex.assert_type(got, jnp.bfloat16)
        chex.assert_trees_all_close(got, mmer_kernels.dynamic_conv_reference(x, w, **kw))
        chex.assert_trees_all_equal(got[1, 4:], jnp.zeros_like(got[1, 4:]))
