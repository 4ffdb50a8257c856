"""The Mosaic GPU (Hopper) attention kernels, without a GPU: interpret-mode numerics, sm90
lowering, the backward's product count, and the ``implementation`` switch.

What runs where (jax 0.10.2 and 0.11.2 alike):
  * Interpret mode: Pallas' Mosaic GPU interpreter runs the kernel bodies -- TMA copies into
    SMEM slots, barriers, the loops and their bounds, masks, softmax, the backward's dq
    read-modify-write -- and is compared with the jnp reference. Two things it cannot emulate
    are replaced inside the kernels' interpret form (``_attention_mosaic._Ops``): wgmma with a
    transposed or register operand (a ``jnp`` dot on the same SMEM tiles) and register layouts.
  * Lowering: the kernels lower for CUDA on an abstract H100 (as the Triton lowering tests do);
    Mosaic GPU's own lowering (wgmma operand swizzles, layouts, SMEM transfer plans) runs then,
    only the PTX compilation does not.
  * ``test_compiled_mosaic_matches_reference_on_hopper`` is the GPU check's (``-m gpu``).
"""

import functools
import importlib
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest
from jax.sharding import AbstractDevice, AbstractMesh, NamedSharding, PartitionSpec
from jax.sharding import PartitionSpec as P
from kernel_test_util import FAST_COMPILE, assert_close, normal, rng, tile_loop_counts

from mmer_kernels import Partition
from mmer_kernels._reference import attention_reference
from mmer_kernels.attention import attention

att = importlib.import_module("mmer_kernels.attention")  # the module, not the op
mg = importlib.import_module("mmer_kernels._attention_mosaic")

_MESH = AbstractMesh((1,), ("data",), abstract_device=AbstractDevice(
    device_kind="NVIDIA H100 80GB HBM3", num_cores=None, platform="cuda"))

# (B, Lq, Lk, H, D, dtype, causal, q_lengths, kv_lengths)
CASES = {
    # Tails of both sequences (100 and 70 rows: padded to 128), causal with Lq != Lk.
    "tails_causal": (2, 100, 70, 1, 64, "bfloat16", True, [100, 37], [50, 70]),
    # A batch entry with no valid query and one with no valid key (zero output and gradients),
    # three key tiles, D = 32 (64-byte swizzle).
    "empty_rows_d32": (2, 64, 192, 1, 32, "float16", False, [0, 64], [192, 0]),
    # D = 128, every position valid, lengths not given.
    "full_d128": (1, 128, 128, 2, 128, "bfloat16", False, None, None),
}


def _inputs(case, seed=0):
    b, lq, lk, h, d, dtype, causal, qlen, klen = case
    gen = rng(seed)
    q = normal(gen, (b, lq, h, d), dtype)
    k = normal(gen, (b, lk, h, d), dtype)
    v = normal(gen, (b, lk, h, d), dtype)
    kw = dict(causal=causal,
              q_lengths=None if qlen is None else jnp.asarray(qlen, jnp.int32),
              kv_lengths=None if klen is None else jnp.asarray(klen, jnp.int32))
    cot = normal(gen, q.shape)
    return (q, k, v), kw, cot


def _value_and_grads(fn, args, kw, cot):
    def loss(q, k, v):
        o = fn(q, k, v, **kw)
        return jnp.sum(o.astype(jnp.float32) * cot), o

    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True),
                   compiler_options=FAST_COMPILE)(*args)


@pytest.mark.parametrize("name", CASES)
def test_mosaic_matches_reference_in_interpret_mode(name):
    case = CASES[name]
    args, kw, cot = _inputs(case)
    (_, o), grads = _value_and_grads(
        functools.partial(attention, implementation="mosaic", interpret=True), args, kw, cot)
    (_, o_ref), grads_ref = _value_and_grads(attention_reference, args, kw, cot)
    dtype = case[5]
    assert_close(o, o_ref, dtype, "fwd", f"{name} out", platform="cpu")
    for n, g, g_ref in zip("qkv", grads, grads_ref, strict=True):
        assert_close(g, g_ref, dtype, "grad", f"{name} d{n}", platform="cpu")
    if name == "empty_rows_d32":  # rows without mass: exactly zero, not merely close
        assert not jnp.any(o[0]) and not jnp.any(o[1]) and not jnp.any(grads[0][1])


def test_backward_with_one_key_group_matches_reference(monkeypatch):
    """G = 1 (a full GPU's worth of (b, h) pairs, one dq slice) against G = 3 above."""
    monkeypatch.setattr(mg._common, "TARGET_PROGRAMS", 1)
    case = (2, 64, 192, 1, 64, "bfloat16", True, [64, 50], [192, 130])
    assert mg.key_groups(2, 1, 192) == 1
    args, kw, cot = _inputs(case, seed=1)
    (_, o), grads = _value_and_grads(
        functools.partial(attention, implementation="mosaic", interpret=True), args, kw, cot)
    _, grads_ref = _value_and_grads(attention_reference, args, kw, cot)
    for n, g, g_ref in zip("qkv", grads, grads_ref, strict=True):
        assert_close(g, g_ref, "bfloat16", "grad", f"G=1 d{n}", platform="cpu")


def test_key_groups_fill_the_gpu_without_exceeding_the_key_tiles():
    assert mg.key_groups(32, 8, 1024) == 1  # 256 programs already
    assert mg.key_groups(4, 32, 1024) == 2  # 128 programs: one SM's worth short
    assert mg.key_groups(2, 2, 192) == 3  # 4 pairs: as many groups as key tiles (3)
    assert mg.key_groups(4, 8, 4096) == 5  # 32 pairs: ceil(132 / 32) groups
    assert mg.key_groups(1, 1, 64) == 1
    assert mg.key_groups(1, 1, 8192) == 16  # 128 key tiles, capped: 16 dq copies at most


# ----------------------------------------------------------------- structure of the kernels
def test_backward_forms_five_products_and_one_exponential_per_tile_pair():
    """FlashAttention-2's backward: s^T, dV, dP^T, dK, dQ -- five wgmma per (query tile, key
    tile) and one exp2 (the Triton pair of kernels forms seven products and recomputes the
    exponentials in each)."""
    b, lq, h, d = 1, 128, 1, 64  # Lq = Lk
    q = jnp.zeros((b, lq, h, d), jnp.bfloat16)
    rows = jnp.zeros((b, h, lq), jnp.float32)
    n = jnp.full((b,), lq, jnp.int32)
    jaxpr = jax.make_jaxpr(functools.partial(mg.bwd, sm_scale=0.1, causal=True,
                                             interpret=False))(q, q, q, q, rows, rows, n, n)
    # Every tile loop (masked and interior; the kernel's jaxpr may hold more than one copy).
    per_tile = tile_loop_counts(jaxpr.jaxpr, "wgmma_ref")
    assert len(per_tile) >= 2 and all(c == {"wgmma_ref": 5, "exp2": 1} for c in per_tile), (
        per_tile)
    fwd = jax.make_jaxpr(functools.partial(mg.fwd, sm_scale=0.1, causal=True,
                                           interpret=False))(q, q, q, n, n)
    per_tile = tile_loop_counts(fwd.jaxpr, "wgmma_ref")
    assert len(per_tile) >= 2 and all(c == {"wgmma_ref": 2, "exp2": 2} for c in per_tile), (
        per_tile)


# ---------------------------------------------------------------------------- lowering
def _spec(shape, dtype):
    return jax.ShapeDtypeStruct(shape, dtype, sharding=NamedSharding(_MESH, PartitionSpec()))


def _lower_for_cuda(fn, *args):
    # As in test_kernels_lowering: the abstract mesh names the target GPU (jax 0.11 needs it),
    # the explicit platform makes the kernels lower for CUDA at all.
    with jax.sharding.use_abstract_mesh(_MESH):
        return jax.jit(fn).trace(*args).lower(lowering_platforms=("cuda",)).as_text()


@pytest.mark.parametrize("d,dtype,lq,lk,causal", [
    (64, jnp.bfloat16, 1000, 333, False),  # emotion-corpus lengths, padded to tiles
    (32, jnp.float16, 128, 192, True),
    (128, jnp.bfloat16, 200, 200, True),
])
@pytest.mark.parametrize("pass_", ["fwd", "bwd"])
def test_mosaic_lowers_for_sm90(d, dtype, lq, lk, causal, pass_):
    b, h = 2, 2
    fwd = functools.partial(att._attention_mosaic, causal=causal, sm_scale=0.125,
                            interpret=False)
    if pass_ == "bwd":
        fn = jax.grad(lambda *a: jnp.sum(fwd(*a).astype(jnp.float32)), argnums=(0, 1, 2))
    else:
        fn = fwd
    text = _lower_for_cuda(fn, _spec((b, lq, h, d), dtype), _spec((b, lk, h, d), dtype),
                           _spec((b, lk, h, d), dtype), _spec((b,), jnp.int32),
                           _spec((b,), jnp.int32))
    kernels = text.count("stablehlo.custom_call @mosaic_gpu")
    assert kernels == (1 if pass_ == "fwd" else 2), kernels  # bwd: forward + fused backward
    assert "xla.gpu.triton" not in text


# ------------------------------------------------------------------------------ dispatch
def test_mosaic_refusals_name_their_reason():
    q = jnp.zeros((1, 64, 1, 64), jnp.bfloat16)
    with pytest.raises(ValueError, match="Hopper"):
        attention(q, q, q, implementation="mosaic")  # CPU, not interpreted
    with pytest.raises(ValueError, match="float32"):
        f32 = q.astype(jnp.float32)
        attention(f32, f32, f32, implementation="mosaic", interpret=True)
    with pytest.raises(ValueError, match="D in"):
        q48 = jnp.zeros((1, 64, 1, 48), jnp.bfloat16)
        attention(q48, q48, q48, implementation="mosaic", interpret=True)
    with pytest.raises(ValueError, match="bias"):
        attention(q, q, q, bias=jnp.zeros((64, 64)), implementation="mosaic", interpret=True)
    with pytest.raises(ValueError, match="masks"):
        attention(q, q, q, kv_mask=jnp.ones((1, 64), bool), implementation="mosaic",
                  interpret=True)


def test_pallas_runs_mosaic_when_jax_has_no_triton(monkeypatch):
    """A jax without Pallas' Triton backend: "pallas" (and interpret mode) take the Mosaic GPU
    kernels, and a call they cannot run says why."""
    calls = []

    def fake(q, k, v, ql, kl, **kw):
        calls.append(kw)
        return jnp.zeros_like(q)

    monkeypatch.setattr(att, "_k", None)
    monkeypatch.setattr(att, "_attention_mosaic", fake)
    q = jnp.zeros((1, 64, 1, 64), jnp.bfloat16)
    attention(q, q, q, implementation="pallas", interpret=True)
    attention(q, q, q, interpret=True)
    assert [c["interpret"] for c in calls] == [True, True]
    with pytest.raises(ValueError, match="no Pallas Triton backend.*float32"):
        f32 = q.astype(jnp.float32)
        attention(f32, f32, f32, implementation="pallas", interpret=True)


def test_mosaic_runs_by_default_only_where_timed_fastest(monkeypatch):
    """On a Hopper GPU "auto" picks "mosaic" from the table's times, never unmeasured."""
    seen = []

    def pick(op, key, eligible, **kw):
        seen.append(eligible)
        return "xla"

    monkeypatch.setattr(att, "pick_implementation", pick)
    monkeypatch.setattr(att.jax, "default_backend", lambda: "gpu")
    monkeypatch.setattr(att, "is_hopper", lambda device=None: True)
    monkeypatch.setattr(att, "cudnn_unsupported", lambda *a, **k: "not in this test")
    q = jnp.zeros((1, 64, 1, 64), jnp.bfloat16)
    attention(q, q, q)
    attention(q.astype(jnp.float32), q.astype(jnp.float32), q.astype(jnp.float32))
    assert seen == [("pallas", "xla", "mosaic"), ("pallas", "xla")]


@pytest.mark.gpu
@pytest.mark.skipif(jax.default_backend() != "gpu", reason="needs a GPU")
@pytest.mark.parametrize("name", CASES)
def test_compiled_mosaic_matches_reference_on_hopper(name):
    if not att.is_hopper():
        pytest.skip(f"the Mosaic GPU kernels need Hopper (sm90), not {jax.devices()[0]}")
    case = CASES[name]
    args, kw, cot = _inputs(case)
    (_, o), grads = _value_and_grads(functools.partial(attention, implementation="mosaic"),
                                     args, kw, cot)
    (_, o_ref), grads_ref = _value_and_grads(attention_reference, args, kw, cot)
    assert_close(o, o_ref, case[5], "fwd", f"{name} out", platform="gpu")
    for n, g, g_ref in zip("qkv", grads, grads_ref, strict=True):
        assert_close(g, g_ref, case[5], "grad", f"{name} d{n}", platform="gpu")


_WITHOUT_TRITON = """
import sys
sys.modules["jax.experimental.pallas.triton"] = None  # as in a jax that removed the backend
import jax, jax.numpy as jnp, numpy as np
import mmer_kernels as mk
from mmer_kernels._reference import attention_reference
att = sys.modules["mmer_kernels.attention"]
assert att._k is None and sys.modules["mmer_kernels.dynamic_conv"]._k is None
gen = np.random.default_rng(0)  # not jax.random: a threefry compile per shape (~0.3 s)
q = jnp.asarray(gen.standard_normal((1, 64, 1, 32), np.float32).astype(jnp.bfloat16))
o = mk.attention(q, q, q, kv_lengths=jnp.array([40]), implementation="pallas", interpret=True)
ref = attention_reference(q, q, q, kv_lengths=jnp.array([40]))
print("attention err", float(jnp.max(jnp.abs(o.astype(float) - ref.astype(float)))))
x = jnp.asarray(gen.standard_normal((1, 8, 4), np.float32))
w = jnp.asarray(gen.standard_normal((1, 8, 2, 3), np.float32))
y = mk.dynamic_conv(x, w, implementation="xla")
print("dynamic_conv err", float(jnp.max(jnp.abs(y - mk.dynamic_conv_reference(x, w)))))
try:
    mk.dynamic_conv(x, w, implementation="pallas", interpret=True)
except ValueError as e:
    print("refused:", e)
"""


def test_package_works_on_a_jax_without_the_triton_backend():
    """``import mmer_kernels`` survives the Triton backend's removal; attention's "pallas" then
    runs the Mosaic GPU kernels, and the dynamic convolution's kernel is refused by name."""
    out = subprocess.run([sys.executable, "-c", _WITHOUT_TRITON], capture_output=True,
                         text=True, timeout=300, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert out.returncode == 0, out.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in out.stdout.strip().splitlines()[-3:])
    assert float(lines["attention"].split()[-1]) < 2e-2, out.stdout
    assert float(lines["dynamic_conv"].split()[-1]) == 0.0, out.stdout
    assert "Triton backend" in lines["refused:"], out.stdout


_GPU4 = AbstractMesh((4,), ("data",), abstract_device=AbstractDevice(
    device_kind="NVIDIA H100 80GB HBM3", num_cores=None, platform="cuda"))


def test_mosaic_lowers_inside_shard_map(monkeypatch):
    """Under a sharded jit the Mosaic path runs in a shard_map (check_vma off: plgpu.kernel
    drops its outputs' varying axes), and the kernels see per-device shapes.

    Partitioned numerics are not run in interpret mode: the Mosaic GPU interpreter's
    multi-device mode needs every device's kernel in flight at once (a threading barrier
    across devices) and hung here on a loaded 2-core machine."""
    monkeypatch.setattr(att, "mosaic_unsupported", lambda *a, **k: None)  # no Hopper here
    part = Partition(mesh=_GPU4)

    def spec(shape, dtype):
        return jax.ShapeDtypeStruct(shape, dtype, sharding=NamedSharding(_GPU4, P("data")))

    def fn(q, k, v, ql):
        o = attention(q, k, v, q_lengths=ql, kv_lengths=ql, causal=True, partition=part,
                      implementation="mosaic")
        return jnp.sum(o.astype(jnp.float32))

    args = (spec((8, 64, 2, 64), jnp.bfloat16),) * 3 + (spec((8,), jnp.int32),)
    with jax.sharding.use_abstract_mesh(_GPU4):
        text = jax.jit(jax.grad(fn, argnums=(0, 1, 2))).trace(*args).lower(
            lowering_platforms=("cuda",)).as_text()
    assert "sdy.manual_computation" in text
    assert text.count("stablehlo.custom_call @mosaic_gpu") == 2
    assert "tensor<2x64x2x64xbf16>" in text  # a quarter of the batch per device
