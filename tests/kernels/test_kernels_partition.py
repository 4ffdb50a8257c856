"""Partitioning under a data-parallel jit: the kernels split over batch (and head) mesh axes.

On 4 forced CPU devices (tests/conftest.py) with the batch sharded on a ``data`` axis of the
context mesh, the compiled forward+backward program of each op (Pallas interpret mode) holds
no all-gather, all-reduce, collective-permute, all-to-all or reduce-scatter: the vjp with a
sharded cotangent holds none at all, ``value_and_grad`` of a summed loss exactly one (the loss'
own all-reduce). The unpartitioned op (``partition=None``) gathers the batch on every device,
which shows that the count detects the fault. Values and gradients equal the unpartitioned
ones. The compiled (Triton) path keeps ``check_vma=True``: it lowers for CUDA on an abstract
4-device mesh.
"""

import importlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AbstractDevice, AbstractMesh, NamedSharding
from jax.sharding import PartitionSpec as P
from kernel_test_util import normal, rng

from mmer_kernels import Partition
from mmer_kernels._sharding import DEFAULT_PARTITION, resolve

att = importlib.import_module("mmer_kernels.attention")  # the module, not the op
dc = importlib.import_module("mmer_kernels.dynamic_conv")

pytestmark = pytest.mark.skipif(jax.device_count() < 4,
                                reason="needs XLA_FLAGS=--xla_force_host_platform_device_count=4")

COLLECTIVES = ("all-gather", "all-reduce", "collective-permute", "all-to-all", "reduce-scatter")


def collectives(hlo: str) -> dict[str, int]:
    """Collective ops in compiled HLO text, by opcode (async ``-start`` halves counted once)."""
    return {c: len(re.findall(rf"\s{c}(?:-start)?\(", hlo)) for c in COLLECTIVES}


def _mesh(shape=(4,), names=("data",)):
    return jax.make_mesh(shape, names, (jax.sharding.AxisType.Auto,) * len(names))


def _compile(fn, mesh, args, specs):
    shardings = tuple(NamedSharding(mesh, s) for s in specs)
    f = jax.jit(fn, in_shardings=shardings)
    with jax.set_mesh(mesh):
        return f.lower(*args).compile().as_text(), f(*args)


def _attention_case(b=8, lq=20, lk=13, h=2, d=16):
    gen = rng(0)
    q = normal(gen, (b, lq, h, d))
    k = normal(gen, (b, lk, h, d))
    v = normal(gen, (b, lk, h, d))
    ql = jnp.asarray(np.arange(b, dtype=np.int32) % lq + 3)
    kl = jnp.asarray(np.arange(b, dtype=np.int32) % lk + 1)
    return q, k, v, ql, kl


def _attn(partition=DEFAULT_PARTITION):
    def f(q, k, v, ql, kl):
        return att.attention(q, k, v, q_lengths=ql, kv_lengths=kl, interpret=True,
                             partition=partition)
    return f


def _vjp(fn, n):
    """(outputs, input cotangents) of fn for a given (sharded) output cotangent."""
    def f(*args):
        out, pull = jax.vjp(lambda *a: fn(*a[:n], *args[n:-1]), *args[:n])
        return out, pull(args[-1])
    return f


def test_attention_partitions_over_batch_with_no_collective():
    mesh = _mesh()
    q, k, v, ql, kl = _attention_case()
    ct = normal(rng(5), q.shape)
    seq, row = P("data", None, None, None), P("data")
    specs = (seq, seq, seq, row, row, seq)
    hlo, (out, grads) = _compile(_vjp(_attn(), 3), mesh, (q, k, v, ql, kl, ct), specs)
    assert collectives(hlo) == dict.fromkeys(COLLECTIVES, 0)
    # The summed loss needs its own all-reduce, and only that one.
    loss = lambda *a: jnp.sum(_attn()(*a) ** 2)  # noqa: E731
    hlo_loss, (val, g) = _compile(jax.value_and_grad(loss, argnums=(0, 1, 2)), mesh,
                                  (q, k, v, ql, kl), specs[:-1])
    assert collectives(hlo_loss) == {**dict.fromkeys(COLLECTIVES, 0), "all-reduce": 1}
    # The same numbers as the unpartitioned op (which gathers the batch on every device).
    hlo_whole, (out_w, grads_w) = _compile(_vjp(_attn(None), 3), mesh, (q, k, v, ql, kl, ct),
                                           specs)
    assert collectives(hlo_whole)["all-gather"] > 0
    np.testing.assert_allclose(out, out_w, rtol=1e-5, atol=1e-6)
    for a, b in zip(grads, grads_w, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    ref_val, ref_g = jax.value_and_grad(
        lambda *a: jnp.sum(_attn(None)(*a) ** 2), argnums=(0, 1, 2))(q, k, v, ql, kl)
    np.testing.assert_allclose(val, ref_val, rtol=1e-5)
    for a, b in zip(g, ref_g, strict=True):  # dq of a one-key row: 0 here, ~1e-6 there
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_attention_partitions_over_batch_and_heads():
    mesh = _mesh((2, 2), ("data", "model"))
    q, k, v, ql, kl = _attention_case(b=4, h=4)
    ct = jnp.ones(q.shape)
    seq, row = P("data", None, "model", None), P("data")
    fn = _vjp(_attn(Partition(batch=("data",), heads=("model",))), 3)
    hlo, (out, grads) = _compile(fn, mesh, (q, k, v, ql, kl, ct), (seq, seq, seq, row, row, seq))
    assert collectives(hlo) == dict.fromkeys(COLLECTIVES, 0)
    out_w, pull = jax.vjp(lambda q, k, v: _attn(None)(q, k, v, ql, kl), q, k, v)
    np.testing.assert_allclose(out, out_w, rtol=1e-5, atol=1e-6)
    for a, b in zip(grads, pull(ct), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _dconv(partition=DEFAULT_PARTITION):
    def f(x, w, lengths):
        return dc.dynamic_conv(x, w, lengths=lengths, interpret=True, partition=partition)
    return f


@pytest.mark.parametrize("heads_axis", [False, True])
def test_dynamic_conv_partitions_with_no_collective(heads_axis):
    b, t, c, h, taps = 8, 21, 16, 2, 5
    gen = rng(1)
    x = normal(gen, (b, t, c))
    w = normal(gen, (b, t, h, taps))
    lengths = jnp.asarray(np.arange(b, dtype=np.int32) % t + 4)
    ct = normal(gen, (b, t, c))
    if heads_axis:
        mesh, part = _mesh((2, 2), ("data", "model")), Partition(heads=("model",))
        xs, ws = P("data", None, "model"), P("data", None, "model", None)
    else:
        mesh, part = _mesh(), Partition()
        xs, ws = P("data", None, None), P("data", None, None, None)
    specs = (xs, ws, P("data"), xs)
    hlo, (out, grads) = _compile(_vjp(_dconv(part), 2), mesh, (x, w, lengths, ct), specs)
    assert collectives(hlo) == dict.fromkeys(COLLECTIVES, 0)
    out_w, pull = jax.vjp(lambda x, w: _dconv(None)(x, w, lengths), x, w)
    np.testing.assert_allclose(out, out_w, rtol=1e-5, atol=1e-6)
    for a, b_ in zip(grads, pull(ct), strict=True):
        np.testing.assert_allclose(a, b_, rtol=1e-5, atol=1e-6)
    if not heads_axis:
        hlo_whole, _ = _compile(_vjp(_dconv(None), 2), mesh, (x, w, lengths, ct), specs)
        assert collectives(hlo_whole)["all-gather"] > 0


def test_resolve_ignores_missing_unit_and_manual_axes_and_checks_divisibility():
    assert resolve(Partition(), 8, 2) is None  # no context mesh
    assert resolve(None, 8, 2) is None
    mesh = _mesh()
    assert resolve(Partition(batch=("other",), mesh=mesh), 8, 2) is None
    got = resolve(Partition("data", mesh=mesh), 8, 2)  # a bare str is one axis
    assert (got.batch, got.heads) == (("data",), None)
    assert got.spec("b", None, "h") == P(("data",), None, None)
    with pytest.raises(ValueError, match="batch B=6 is not divisible by the 4 devices"):
        resolve(Partition(mesh=mesh), 6, 2)
    with pytest.raises(TypeError, match="tuple of mesh axis names"):
        Partition(batch=[1])

    # Inside a caller's shard_map over "data" the axis is manual: the op does not split again.
    def inner(x):
        assert resolve(Partition(), x.shape[0], 1) is None
        return x
    with jax.set_mesh(mesh):
        jax.jit(jax.shard_map(inner, in_specs=P("data"), out_specs=P("data")))(jnp.ones(8))


_GPU4 = AbstractMesh((4,), ("data",), abstract_device=AbstractDevice(
    device_kind="NVIDIA H100 80GB HBM3", num_cores=None, platform="cuda"))


@pytest.mark.parametrize("op", ["attention", "dynamic_conv"])
def test_compiled_kernels_lower_for_cuda_inside_shard_map_with_check_vma(op, monkeypatch):
    """The Triton path under check_vma=True: the kernels' out_shape carries the varying axes
    (without it pallas_call raises); the shard_map body sees per-device shapes."""
    for mod in (att, dc):
        monkeypatch.setattr(mod, "use_pallas", lambda implementation, interpret: True)
    part = Partition(mesh=_GPU4)

    def spec(shape, dtype, p):
        return jax.ShapeDtypeStruct(shape, dtype, sharding=NamedSharding(_GPU4, p))

    if op == "attention":
        def fn(q, k, v, ql):
            o = att.attention(q, k, v, q_lengths=ql, kv_lengths=ql, causal=True, partition=part)
            return jnp.sum(o.astype(jnp.float32))
        seq = P("data")
        args = (spec((8, 64, 2, 64), jnp.bfloat16, seq),) * 3 + (spec((8,), jnp.int32, seq),)
        argnums = (0, 1, 2)
    else:
        def fn(x, w, lengths):
            return jnp.sum(dc.dynamic_conv(x, w, lengths=lengths, partition=part))
        args = (spec((8, 64, 32), jnp.float32, P("data")),
                spec((8, 64, 4, 7), jnp.float32, P("data")), spec((8,), jnp.int32, P("data")))
        argnums = (0, 1)
    text = jax.jit(jax.grad(fn, argnums=argnums)).trace(*args).lower(
        lowering_platforms=("cuda",)).as_text()
    assert "sdy.manual_computation" in text
    assert "__gpu$xla.gpu.triton" in text or "triton_kernel_call" in text
    local = "tensor<2x64x2x64xbf16>" if op == "attention" else "tensor<2x64x32xf32>"
    assert local in text  # the kernels see a quarter of the batch
