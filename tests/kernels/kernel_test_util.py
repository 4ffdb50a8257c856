"""Shared helpers of the kernel tests: tolerances and comparisons."""

import chex
import jax.numpy as jnp
import numpy as np

# Relative to the largest reference magnitude. bfloat16 casts p (and dS) to bfloat16
# before the second matmul, like FlashAttention, so it carries ~3 significant digits.
TOL = {"float32": {"fwd": 2e-5, "grad": 1e-4}, "bfloat16": {"fwd": 2e-2, "grad": 4e-2}}


def assert_close(got, want, dtype, kind, what=""):
    """max |got - want| <= tol * max(1, max |want|), with a message naming the error."""
    chex.assert_shape(got, tuple(want.shape), custom_message=what)
    chex.assert_tree_all_finite(got, custom_message=f"{what}: the kernel result")
    got = np.asarray(jnp.asarray(got, jnp.float32))
    want = np.asarray(jnp.asarray(want, jnp.float32))
    err = float(np.max(np.abs(got - want))) if got.size else 0.0
    scale = max(1.0, float(np.max(np.abs(want))) if want.size else 0.0)
    tol = TOL[jnp.dtype(dtype).name][kind]
    assert err <= tol * scale, f"{what}: max abs err {err:.3g} > {tol:g} * {scale:.3g}"

# XLA options for the tests' interpret-mode jits: the Pallas interpreter emits large
# while-loop programs whose CPU compile dominates test time; codegen quality is irrelevant.
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
