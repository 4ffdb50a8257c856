"""Every element of every kernel output buffer is written.

Pallas interpret mode allocates float outputs filled with NaN (hlo_interpreter's
``uninitialized_value``); the first test proves that, the others run the raw kernels on
padded layouts (padded rows, skipped key blocks, halo rows included) and require no NaN.
"""

import functools
import importlib

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import pallas as pl
from kernel_test_util import FAST_COMPILE

att = importlib.import_module("kernels.attention")  # the module; kernels.attention is the op
dc = importlib.import_module("kernels.dynamic_conv")


def test_interpret_mode_poisons_unwritten_outputs():
    def half_kernel(x_ref, o_ref):
        o_ref[:8] = x_ref[:8]  # rows 8.. are never written

    out = pl.pallas_call(half_kernel, out_shape=jax.ShapeDtypeStruct((16, 16), jnp.float32),
                         interpret=True)(jnp.ones((16, 16)))
    out = np.asarray(out)
    assert (out[:8] == 1).all() and np.isnan(out[8:]).all()


def test_attention_kernels_write_every_element():
    cfg = att._Config(sm_scale=0.2, causal=True, blocks=att.BlockSizes(16, 16, 16, 16),
                      interpret=True)
    b, lq, lk, h, d = 2, 48, 64, 2, 32  # padded layout: multiples of the blocks
    keys = jax.random.split(jax.random.PRNGKey(0), 5)
    q = jax.random.normal(keys[0], (b, lq, h, d))
    k = jax.random.normal(keys[1], (b, lk, h, d))
    v = jax.random.normal(keys[2], (b, lk, h, d))
    bias = jax.random.normal(keys[3], (1, h, lq, lk))
    q_len, kv_len = jnp.array([40, 0]), jnp.array([20, 64])  # whole blocks of both skipped
    qm = (jnp.arange(lq)[None] < q_len[:, None]).astype(jnp.int32)
    km = (jnp.arange(lk)[None] < kv_len[:, None]).astype(jnp.int32)

    @functools.partial(jax.jit, compiler_options=FAST_COMPILE)
    def run(q, k, v, bias, do):
        o, lse = att._fwd_call(q, k, v, bias, qm, km, q_len, kv_len, cfg)
        delta = jnp.einsum("bqhd,bqhd->bhq", o, do)
        return (o, lse) + att._bwd_call(q, k, v, bias, qm, km, q_len, kv_len, do, lse, delta, cfg)

    outs = run(q, k, v, bias, jax.random.normal(keys[4], q.shape))
    for name, arr in zip(["o", "lse", "dq", "dk", "dv", "dbias"], outs, strict=True):
        arr = np.asarray(arr)
        assert not np.isnan(arr).any(), f"{name}: {np.isnan(arr).sum()} elements never written"
    o, _, dq, dk, dv, dbias = map(np.asarray, outs)
    assert (o[0, 40:] == 0).all() and (o[1] == 0).all() and (dq[1] == 0).all()
    assert (dk[0, 20:] == 0).all() and (dv[0, 20:] == 0).all() and (dbias[0, :, :, 20:] == 0).all()


def test_dynamic_conv_kernels_write_every_element():
    cfg = dc._Config(taps=5, blocks=dc.BlockSizes(16), interpret=True)
    b, t, h, r = 2, 32, 2, 8
    tx = 48  # round_up(t + taps - 1, block_t): the halo rows
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    xp = jax.random.normal(keys[0], (b, tx, h, r))
    lw = jax.random.normal(keys[1], (b, h, 5, t))
    m = (jnp.arange(t)[None] < jnp.array([[25], [0]])).astype(jnp.int32)

    @functools.partial(jax.jit, compiler_options=FAST_COMPILE)
    def run(xp, lw, dy):
        y, lse = dc._fwd_call(xp, lw, m, cfg)
        delta = jnp.einsum("bthr,bthr->bht", dy, y)
        dlw = dc._dlogits_call(xp, lw, lse, dy, delta, cfg)
        pad = ((0, 0), (4, tx - t))
        dxp = dc._dx_call(jnp.pad(dy, pad + ((0, 0), (0, 0))), jnp.pad(lw, ((0, 0),) * 2 + pad),
                          jnp.pad(lse, ((0, 0),) + pad), xp.shape, xp.dtype, cfg)
        return y, lse, dlw, dxp

    outs = run(xp, lw, jax.random.normal(keys[2], (b, t, h, r)))
    for name, arr in zip(["y", "lse", "dlogits", "dx"], outs, strict=True):
        arr = np.asarray(arr)
        assert not np.isnan(arr).any(), f"{name}: {np.isnan(arr).sum()} elements never written"
    y = np.asarray(outs[0])
    assert (y[0, 25:] == 0).all() and (y[1] == 0).all()
