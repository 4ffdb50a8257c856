"""Every element of every kernel output buffer is written.

Pallas interpret mode allocates float outputs filled with NaN (hlo_interpreter's
``uninitialized_value``) and pads inputs to whole tiles with NaN; the first test proves that,
the others run the raw kernels on un-padded arrays whose lengths are not multiples of the
tiles (tail tiles, skipped key tiles, halo rows, D below its tile width) and require no NaN in
any output: every element written, and no padding read unmasked.
"""

import functools
import importlib

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import pallas as pl
from kernel_test_util import FAST_COMPILE, normal, rng

att = importlib.import_module("mmer_kernels.attention")  # the module, not the op
dc = importlib.import_module("mmer_kernels.dynamic_conv")


def test_interpret_mode_poisons_unwritten_outputs():
    def half_kernel(x_ref, o_ref):
        o_ref[:8] = x_ref[:8]  # rows 8.. are never written

    out = pl.pallas_call(half_kernel, out_shape=jax.ShapeDtypeStruct((16, 16), jnp.float32),
                         interpret=True)(jnp.ones((16, 16)))
    out = np.asarray(out)
    assert (out[:8] == 1).all() and np.isnan(out[8:]).all()


def test_attention_kernels_write_every_element():
    cfg = att._Config(sm_scale=0.2, causal=True, blocks=att.BlockSizes(16, 16, 16, 16, 16, 16),
                      interpret=True, bias_kind="full")
    b, lq, lk, h, d = 2, 45, 61, 2, 24  # not multiples of the tiles; D=24 in a 32-wide tile
    gen = rng(0)
    q = normal(gen, (b, lq, h, d))
    k = normal(gen, (b, lk, h, d))
    v = normal(gen, (b, lk, h, d))
    bias = normal(gen, (1, h, lq, lk))
    ql, kl = jnp.array([40, 0]), jnp.array([20, 61])  # whole tiles of both skipped

    @functools.partial(jax.jit, compiler_options=FAST_COMPILE)
    def run(q, k, v, bias, do):
        o, lse = att._fwd_call(q, k, v, bias, ql, kl, None, None, cfg)
        delta = jnp.sum(o * do, axis=-1)
        return (o, lse) + att._bwd_call(q, k, v, bias, ql, kl, None, None, do, lse, delta, cfg,
                                        True)

    outs = run(q, k, v, bias, normal(gen, q.shape))
    for name, arr in zip(["o", "lse", "dq", "dk", "dv", "dbias"], outs, strict=True):
        arr = np.asarray(arr)
        assert not np.isnan(arr).any(), f"{name}: {np.isnan(arr).sum()} elements never written"
    o, lse, dq, dk, dv, dbias = map(np.asarray, outs)
    assert (o[0, 40:] == 0).all() and (o[1] == 0).all() and (dq[1] == 0).all()
    assert np.isinf(lse[1]).all() and np.isfinite(lse[0, :40]).all()
    assert (dk[0, 20:] == 0).all() and (dv[0, 20:] == 0).all() and (dbias[0, :, :, 20:] == 0).all()


def test_dynamic_conv_kernels_write_every_element():
    b, t, h, r, taps = 2, 37, 2, 6, 5  # T, R and K not powers of two
    cfg = dc._Config(taps=taps, offset=2, blocks=dc.BlockSizes(16), interpret=True,
                     mask_mode=False)
    gen = rng(0)
    x4 = normal(gen, (b, t, h, r))
    w = normal(gen, (b, t, h, taps))
    lengths = jnp.array([25, 0])

    @functools.partial(jax.jit, compiler_options=FAST_COMPILE)
    def run(x4, w, dy):
        y, vjp = jax.vjp(lambda x4, w: dc._dconv(x4, w, lengths, cfg), x4, w)
        return (y,) + vjp(dy)

    outs = run(x4, w, normal(gen, (b, t, h, r)))
    for name, arr in zip(["y", "dx", "dlogits"], outs, strict=True):
        arr = np.asarray(arr)
        assert not np.isnan(arr).any(), f"{name}: {np.isnan(arr).sum()} elements never written"
    y, dx, _ = map(np.asarray, outs)
    assert (y[0, 25:] == 0).all() and (y[1] == 0).all() and (dx[0, 25:] == 0).all()
