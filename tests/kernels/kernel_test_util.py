"""Shared helpers of the kernel tests: per-device tolerances and comparisons."""

import jax
import jax.numpy as jnp
import numpy as np

# Relative to the largest reference magnitude. bfloat16/float16 cast p (and dS) to the input
# dtype before the second matmul, like FlashAttention, so they carry ~3 significant digits.
# On a GPU, float32 matmuls inside Triton kernels run in TF32 (10-bit mantissa), so float32
# tolerances there are those of a ~3-digit format, not the 2e-5 that interpret mode meets.
TOL_BY_PLATFORM = {
    "cpu": {"float32": {"fwd": 2e-5, "grad": 1e-4}, "bfloat16": {"fwd": 2e-2, "grad": 4e-2},
            "float16": {"fwd": 4e-3, "grad": 8e-3}},
    "gpu": {"float32": {"fwd": 4e-3, "grad": 1e-2}, "bfloat16": {"fwd": 2e-2, "grad": 4e-2},
            "float16": {"fwd": 4e-3, "grad": 1e-2}},
}


def tolerance(dtype, kind, platform=None):
    """Tolerance of ``kind`` ("fwd" or "grad") for ``dtype`` on ``platform`` (default: the
    default backend; interpret mode on any backend meets the "cpu" row)."""
    platform = platform or jax.default_backend()
    return TOL_BY_PLATFORM["gpu" if platform in ("gpu", "cuda") else "cpu"][
        jnp.dtype(dtype).name][kind]


TOL = TOL_BY_PLATFORM["cpu"]  # interpret mode


# Test inputs come from numpy: every eager jax.random call compiles a threefry program per
# shape (~0.3 s each on a CPU), more than many of the kernels' own checks cost.
def rng(seed):
    """A numpy generator for test inputs."""
    return np.random.default_rng(seed)


def normal(gen, shape, dtype=jnp.float32, scale=1.0):
    """``scale`` times standard-normal draws of ``gen``, as a jax array of ``dtype``."""
    x = (scale * gen.standard_normal(shape, dtype=np.float32)).astype(jnp.dtype(dtype))
    return jnp.asarray(x)


def bernoulli(gen, p, shape):
    """Booleans that are True with probability ``p``, as a numpy array (edit, then convert)."""
    return gen.random(shape) < p


def assert_close(got, want, dtype, kind, what="", platform=None):
    """max |got - want| <= tol * max(1, max |want|), with a message naming the error."""
    assert tuple(got.shape) == tuple(want.shape), f"{what}: shape {got.shape} != {want.shape}"
    # Cast in numpy: an eager jnp cast compiles one small XLA program per shape and dtype.
    got = np.asarray(got).astype(np.float32)
    assert np.isfinite(got).all(), f"{what}: the kernel result is not finite"
    want = np.asarray(want).astype(np.float32)
    err = float(np.max(np.abs(got - want))) if got.size else 0.0
    scale = max(1.0, float(np.max(np.abs(want))) if want.size else 0.0)
    tol = tolerance(dtype, kind, platform)
    assert err <= tol * scale, f"{what}: max abs err {err:.3g} > {tol:g} * {scale:.3g}"

# XLA options for the tests' interpret-mode jits: the Pallas interpreter emits large
# while-loop programs whose CPU compile dominates test time; codegen quality is irrelevant.
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


# Structure of traced kernels: what a kernel's loop body computes per tile (pair).
def _subjaxprs(eqn):
    """The jaxprs inside an equation's params (loop bodies, cond branches, kernel bodies)."""
    stack = list(eqn.params.values())
    while stack:
        p = stack.pop()
        if isinstance(p, (tuple, list)):
            stack.extend(p)
        elif hasattr(p, "eqns"):
            yield p
        elif hasattr(getattr(p, "jaxpr", None), "eqns"):
            yield p.jaxpr


def primitive_counts(jaxpr, names):
    """Occurrences of the primitives ``names`` in a jaxpr and everything nested in it."""
    out = dict.fromkeys(names, 0)
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in out:
            out[eqn.primitive.name] += 1
        for sub in _subjaxprs(eqn):
            for k, v in primitive_counts(sub, names).items():
                out[k] += v
    return out


def innermost_loop_bodies(jaxpr):
    """The innermost while-loop bodies of a jaxpr, at any depth."""
    found = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "while":
            body = eqn.params["body_jaxpr"].jaxpr
            if not primitive_counts(body, {"while"})["while"]:
                found.append(body)
        for sub in _subjaxprs(eqn):
            found += innermost_loop_bodies(sub)
    return found


def tile_loop_counts(jaxpr, product: str, others=("exp2",)):
    """Per innermost loop that contains ``product`` (a matmul primitive): how many of it and of
    ``others`` one iteration runs, as dicts."""
    names = {product, *others}
    counts = [primitive_counts(body, names) for body in innermost_loop_bodies(jaxpr)]
    return [c for c in counts if c[product]]
