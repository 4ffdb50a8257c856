"""Pallas attention in interpret mode vs the jnp reference: forward and gradients."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from kernel_test_util import FAST_COMPILE, assert_close, bernoulli, normal, rng

from mmer_kernels._reference import attention_reference
from mmer_kernels.attention import BlockSizes, attention

B16 = BlockSizes(16, 16, 16, 16, 16, 16)
B_MIXED = BlockSizes(block_q=32, block_k=16, block_q_dkv=16, block_k_dkv=32, block_q_dq=32,
                     block_k_dq=16)

# Each scenario covers a different corner; crossed with both dtypes below.
SCENARIOS = {
    # Odd lengths, Lq != Lk, a fully padded batch entry on each side, causal + bias.
    "lengths_causal_bias": dict(b=3, lq=37, lk=50, h=2, d=32, q_len=[37, 0, 21],
                                kv_len=[50, 17, 0], causal=True, bias=(1, 2, 37, 50),
                                blocks=B16),
    # Non-prefix boolean masks (rows with no valid key inside the mask), bias over keys.
    "masks_keybias": dict(b=2, lq=29, lk=41, h=2, d=64, masks=True, bias=(2, 1, 1, 41),
                          blocks=B_MIXED),
    # Cross-modal Lq > Lk, head dim 128, default (per-shape) block sizes.
    "cross_modal_d128": dict(b=2, lq=45, lk=23, h=1, d=128, q_len=[45, 30],
                             kv_len=[23, 5], blocks=None),
    # Larger B*H with a broadcast 2-D bias and causal masking, no padding at all.
    "many_heads": dict(b=4, lq=19, lk=19, h=8, d=32, causal=True, bias=(19, 19), blocks=B16),
    # D = 48 (not a power of two: masked columns), a query-only bias, key loops of 6 tiles.
    "d48_qbias_long_loop": dict(b=2, lq=23, lk=90, h=1, d=48, q_len=[23, 11], kv_len=[90, 70],
                                bias=(2, 1, 23, 1), blocks=B16),
}


def _inputs(sc, dtype, seed=0):
    gen = rng(seed)
    b, lq, lk, h, d = sc["b"], sc["lq"], sc["lk"], sc["h"], sc["d"]
    q = normal(gen, (b, lq, h, d), dtype)
    k = normal(gen, (b, lk, h, d), dtype)
    v = normal(gen, (b, lk, h, d), dtype)
    kw = dict(causal=sc.get("causal", False))
    if sc.get("masks"):
        qm = bernoulli(gen, 0.7, (b, lq))
        km = bernoulli(gen, 0.5, (b, lk))
        km[1, :] = False  # no valid key
        kw.update(q_mask=jnp.asarray(qm), kv_mask=jnp.asarray(km))
    else:
        for name in ("q_len", "kv_len"):
            if name in sc:
                kw[name.replace("len", "lengths")] = jnp.asarray(sc[name], jnp.int32)
    bias = normal(gen, sc["bias"], jnp.float32, scale=2.0) if "bias" in sc else None
    return (q, k, v, bias), kw


def _f32(a):
    """A float32 copy, cast in numpy (an eager cast compiles a program per shape and dtype)."""
    return jnp.asarray(np.asarray(a).astype(np.float32))


def _loss_and_grads(fn, args, kw, cot):
    """Forward output and grads of sum(o * cot) w.r.t. q, k, v (and bias), in one jit."""
    argnums = (0, 1, 2, 3) if args[3] is not None else (0, 1, 2)

    def loss(q, k, v, bias):
        o = fn(q, k, v, bias=bias, **kw)
        return jnp.sum(o.astype(jnp.float32) * cot), o

    return jax.jit(jax.value_and_grad(loss, argnums=argnums, has_aux=True),
                   compiler_options=FAST_COMPILE)(*args)


# Interpret mode compiles slowly (~3 s a case), so one bfloat16 case is left out.
CASES = [(n, d) for n in SCENARIOS for d in ("float32", "bfloat16")
         if (n, d) not in {("many_heads", "bfloat16"), ("d48_qbias_long_loop", "bfloat16")}]
CASES.append(("masks_keybias", "float16"))


@pytest.mark.parametrize("name,dtype", CASES)
def test_forward_and_grads_match_reference(name, dtype):
    dtype = jnp.dtype(dtype)
    sc = SCENARIOS[name]
    args, kw = _inputs(sc, dtype)
    cot = normal(rng(9), args[0].shape)
    kernel = functools.partial(attention, interpret=True, block_sizes=sc["blocks"])
    (_, o), grads = _loss_and_grads(kernel, args, kw, cot)
    # Truth: the reference on float32 copies of the same (possibly bfloat16) inputs.
    args32 = tuple(None if a is None else _f32(a) for a in args)
    (_, o_ref), grads_ref = _loss_and_grads(attention_reference, args32, kw, cot)
    assert o.dtype == dtype
    assert_close(o, o_ref, dtype, "fwd", f"{name} out")
    for n, g, g_ref in zip("qkvb", grads, grads_ref, strict=False):
        assert_close(g, g_ref, dtype, "grad", f"{name} d{n}")
    if name == "lengths_causal_bias":
        arrays = (np.asarray(a, np.float32) for a in (o, *grads[:3]))
        _check_exact_zeros(*arrays)


def _check_exact_zeros(o, dq, dk, dv):
    """q_len [37, 0, 21], kv_len [50, 17, 0]: padded or key-less rows are exactly zero."""
    assert (o[1] == 0).all() and (o[2] == 0).all() and (o[2, 21:] == 0).all()
    assert (dq[1] == 0).all() and (dq[2] == 0).all()
    assert (dk[1] == 0).all() and (dv[1] == 0).all()  # its only queries are padded
    assert (dk[2] == 0).all() and (dv[2] == 0).all()
    assert (dk[0, 50:] == 0).all() and np.abs(o[0]).max() > 0


def test_bad_arguments_name_the_values():
    q = jnp.zeros((2, 5, 1, 32))
    with pytest.raises(ValueError, match="block_q=24"):
        BlockSizes(block_q=24)
    with pytest.raises(ValueError, match="not broadcastable"):
        attention(q, q, q, bias=jnp.zeros((3, 5)), interpret=True)
    with pytest.raises(ValueError, match="either q_lengths or q_mask"):
        attention(q, q, q, q_lengths=jnp.array([1, 2]), q_mask=jnp.ones((2, 5), bool))
    with pytest.raises(ValueError, match="k.shape"):
        attention(q, q[:, :, :, :16], q[:, :, :, :16])


def test_all_minus_inf_rows_are_zero_on_both_paths():
    """-inf bias: one semantics. Keys with -inf are masked; a row whose logits are all -inf
    outputs zeros with zero gradients, from the kernel and from the reference alike."""
    b, lq, lk, h, d = 2, 20, 24, 1, 16
    gen = rng(3)
    q = normal(gen, (b, lq, h, d))
    k, v = normal(gen, (b, lk, h, d)), normal(gen, (b, lk, h, d))
    bias = np.zeros((b, 1, lq, lk), np.float32)
    bias[0, 0, 3] = -np.inf  # row 3 of batch 0: all -inf
    bias[1, 0, :, 5:] = -np.inf  # batch 1: keys 5.. masked by the bias
    args, kw = (q, k, v, jnp.asarray(bias)), {}
    cot = normal(gen, q.shape)
    (_, o), grads = _loss_and_grads(
        functools.partial(attention, interpret=True, block_sizes=B16), args, kw, cot)
    (_, o_ref), grads_ref = _loss_and_grads(attention_reference, args, kw, cot)
    for got, want, what in zip((o, *grads), (o_ref, *grads_ref), ("o", "dq", "dk", "dv", "db"),
                               strict=True):
        assert np.isfinite(np.asarray(want)).all(), f"reference {what} is not finite"
        assert_close(got, want, jnp.float32, "fwd" if what == "o" else "grad", what)
    assert (np.asarray(o)[0, 3] == 0).all() and (np.asarray(o_ref)[0, 3] == 0).all()
    assert (np.asarray(grads[0])[0, 3] == 0).all()
    # The -inf keys of batch 1 act like kv_lengths = 5.
    want = jax.jit(lambda q, k, v: attention_reference(  # eagerly: one compile per op
        q[1:], k[1:], v[1:], kv_lengths=jnp.array([5])))(q, k, v)
    assert_close(np.asarray(o)[1:], want, jnp.float32, "fwd", "bias -inf == key mask")


def test_gpu_tolerances_are_looser_for_float32():
    from kernel_test_util import tolerance
    assert tolerance(jnp.float32, "fwd", "gpu") > 100 * tolerance(jnp.float32, "fwd", "cpu")


@pytest.mark.gpu
@pytest.mark.skipif(jax.default_backend() != "gpu", reason="needs a GPU")
@pytest.mark.parametrize("name,dtype", [("lengths_causal_bias", "bfloat16"),
                                        ("masks_keybias", "float32"),
                                        ("cross_modal_d128", "float16"),
                                        ("d48_qbias_long_loop", "bfloat16")])
def test_compiled_kernel_matches_reference_on_gpu(name, dtype):
    """The Triton-compiled kernel (not interpret mode) against the reference, GPU tolerances."""
    dtype = jnp.dtype(dtype)
    sc = SCENARIOS[name]
    args, kw = _inputs(sc, dtype)
    cot = normal(rng(9), args[0].shape)
    kernel = functools.partial(attention, implementation="pallas", block_sizes=sc["blocks"])
    (_, o), grads = _loss_and_grads(kernel, args, kw, cot)
    args32 = tuple(None if a is None else _f32(a) for a in args)
    (_, o_ref), grads_ref = _loss_and_grads(attention_reference, args32, kw, cot)
    assert_close(o, o_ref, dtype, "fwd", f"{name} out", platform="gpu")
    for n, g, g_ref in zip("qkvb", grads, grads_ref, strict=False):
        assert_close(g, g_ref, dtype, "grad", f"{name} d{n}", platform="gpu")
