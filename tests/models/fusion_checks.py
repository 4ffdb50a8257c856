"""What every registered fusion's tests share: a fusion + linear head classifier, random features,
and the two checks each fusion must pass (4-device mesh = 1 device; overfitting 8 examples)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from mmer_jax.models.fused import FusionOnly

from .jax_test_util import key

C = 4


def Classifier(fusion: str, options: tuple = ()) -> FusionOnly:  # noqa: N802 - a model's name
    """A registered fusion + a linear head ``head``, from the shared assembly
    (:class:`mmer_jax.models.fused.FusionOnly`); ``apply`` returns (logits [N, C], {})."""
    return FusionOnly(fusion, (), options, C)


def random_feats(n: int, dims: dict, seed: int = 0) -> dict:
    """``{modality: [n, d] float32}`` standard-normal features."""
    rng = np.random.default_rng(seed)
    return {m: jnp.asarray(rng.normal(size=(n, d)), jnp.float32) for m, d in dims.items()}


def init(model, *args, seed: int = 0, **kwargs) -> dict:
    """``model.init`` jitted, from an "rbg" key: an eager init compiles one threefry program per
    parameter shape (~0.3 s each on CPU), a jitted one a single program. ``kwargs`` (``train``,
    ``masks``) are closed over."""
    return jax.jit(lambda k, *a: model.init(k, *a, **kwargs))(
        key(seed), *args)


def xent(logits, labels):
    """Mean cross-entropy of [N, C] logits."""
    return -jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=1).mean()


def check_mesh_matches_one_device(model: FusionOnly, feats: dict) -> None:
    """Loss and gradients on a 4-device data-parallel mesh equal one device's; the fusion's
    gradients are finite and not all zero."""
    if jax.device_count() < 4:
        pytest.skip("needs XLA_FLAGS=--xla_force_host_platform_device_count=4")
    n = len(next(iter(feats.values())))
    labels = np.arange(n) % C
    params = init(model, feats, train=False)["params"]

    def loss(p, x, y):
        return xent(model.apply({"params": p}, x, train=False)[0], y)

    mesh = jax.make_mesh((4,), ("data",))
    data, rep = NamedSharding(mesh, P("data")), NamedSharding(mesh, P())
    fn = jax.jit(jax.value_and_grad(loss), in_shardings=(rep, data, data))
    xs = jax.device_put(feats, data)
    assert all(len(x.sharding.device_set) == 4 for x in xs.values())  # split over devices
    l4, g4 = fn(jax.device_put(params, rep), xs, jax.device_put(labels, data))
    l1, g1 = jax.jit(jax.value_and_grad(loss))(params, feats, labels)
    assert float(l4) == pytest.approx(float(l1), rel=1e-5)
    for a, b in zip(jax.tree.leaves(g4), jax.tree.leaves(g1), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    fusion_grads = jax.tree.leaves(g4["fusion"])
    assert all(np.isfinite(np.asarray(g)).all() for g in fusion_grads)
    assert sum(float(np.abs(np.asarray(g)).sum()) for g in fusion_grads) > 0


def check_overfits_eight_examples(model: FusionOnly, feats: dict) -> None:
    """Random labels on random features: only a fusion that passes information through can fit
    them (300 Adam steps)."""
    labels = jnp.asarray(np.random.default_rng(6).integers(0, C, 8))
    tx = optax.adam(1e-2)

    def step(carry, _):
        p, s = carry
        loss, g = jax.value_and_grad(
            lambda q: xent(model.apply({"params": q}, feats, train=False)[0], labels))(p)
        u, s = tx.update(g, s, p)
        return (optax.apply_updates(p, u), s), loss

    def fit(k):  # init, steps and the fitted logits in one program: nothing compiled eagerly
        p = model.init(k, feats, train=False)["params"]
        (p, _), losses = jax.lax.scan(step, (p, tx.init(p)), None, 300)
        return losses, model.apply({"params": p}, feats, train=False)[0]

    losses, logits = jax.jit(fit)(key(0))
    assert float(losses[-1]) < 0.05 < float(losses[0])
    assert (np.asarray(logits).argmax(-1) == np.asarray(labels)).all()
