"""S004's face network, Inception-ResNet-v2, with its feature taps: the paper's sizes at 299 x 299
(shapes only), and a CPU-sized copy (width 1/16, one block of each kind) that runs forward and
backward, ignores padded frames and fits 8 examples."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mmer_jax.models.encoders.inception_resnet_v2 import (
    TAPS,
    InceptionResNetV2,
    InceptionResNetV2Config,
    IRv2Frames,
)

from .jax_test_util import key

# Width 1/16 scales every channel count, the final 1 x 1 conv (1536 -> 96) and the FC (1024 -> 64).
TINY = InceptionResNetV2Config(width=1 / 16, blocks=(1, 1, 1), padding="SAME", dropout=0.2)



def test_paper_sizes_at_299():
    net = InceptionResNetV2()
    x = jax.ShapeDtypeStruct((1, 299, 299, 3), jnp.float32)
    shapes = jax.eval_shape(lambda x: net.init_with_output(
        {"params": key(0), "dropout": key(1)}, x, train=False)[0], x)
    assert {k: v.shape for k, v in shapes.items()} == {
        "conv": (1, 1536), "avgpool": (1, 1536), "dropout": (1, 1536), "fc": (1, 1024)}


def _frames(seed=0, b=8, t=3, s=16):
    rng = np.random.default_rng(seed)
    mask = np.arange(t) < rng.integers(1, t + 1, size=b)[:, None]
    x = np.where(mask[:, :, None, None, None], rng.uniform(size=(b, t, s, s, 3)), 0.0)
    return x.astype(np.float32), mask, rng.integers(0, 4, size=b)


def test_taps_and_padding():
    enc = IRv2Frames(TINY)
    x, mask, _ = _frames()
    variables = jax.jit(lambda: enc.init({"params": key(0)}, x, mask, train=False))()
    taps = jax.jit(lambda v, x, m: enc.apply(v, x, m, train=False, method=IRv2Frames.taps))
    out = taps(variables, x, mask)
    assert set(out) == set(TAPS) and out["fc"].shape == (8, 64) and out["conv"].shape == (8, 96)
    np.testing.assert_allclose(out["dropout"], out["avgpool"])  # eval: dropout is the identity
    noisy = np.where(mask[:, :, None, None, None], x,
                     np.random.default_rng(1).normal(scale=3, size=x.shape)).astype(np.float32)
    again = taps(variables, noisy, mask)
    for k in TAPS:
        np.testing.assert_allclose(again[k], out[k], atol=1e-5)


@pytest.mark.slow
def test_gradients_reach_most_parameters():
    enc = IRv2Frames(TINY)
    x, mask, _ = _frames()
    variables = jax.jit(lambda: enc.init({"params": key(0)}, x, mask, train=False))()

    def loss(p):
        y, _ = enc.apply({**variables, "params": p}, x, mask, train=True,
                         rngs={"dropout": key(2)}, mutable=["batch_stats"])
        return jnp.mean(y ** 2)

    grads = jax.jit(jax.grad(loss))(variables["params"])
    norms = [float(jnp.linalg.norm(g)) for g in jax.tree.leaves(grads)]
    assert all(np.isfinite(norms)) and sum(n > 0 for n in norms) > len(norms) // 2


@pytest.mark.slow
def test_overfits_eight_examples():
    enc = IRv2Frames(TINY)
    x, mask, labels = _frames(3)
    head = jax.nn.initializers.lecun_normal()(key(5), (64, 4))
    variables = enc.init({"params": key(0)}, x, mask, train=False)
    params = {"enc": variables["params"], "head": head}
    stats = variables["batch_stats"]
    tx = optax.adam(3e-3)
    opt = tx.init(params)

    @jax.jit
    def step(params, stats, opt, rng):
        def f(p):
            y, new = enc.apply({"params": p["enc"], "batch_stats": stats}, x, mask, train=True,
                               rngs={"dropout": rng}, mutable=["batch_stats"])
            logits = y @ p["head"]
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(), new
        (value, new), g = jax.value_and_grad(f, has_aux=True)(params)
        u, opt = tx.update(g, opt, params)
        return optax.apply_updates(params, u), new["batch_stats"], opt, value

    for i in range(200):
        params, stats, opt, loss = step(params, stats, opt, key(10 + i))

    @jax.jit
    def recalibrate(stats, rng):
        _, new = enc.apply({"params": params["enc"], "batch_stats": stats}, x, mask, train=True,
                           rngs={"dropout": rng}, mutable=["batch_stats"])
        return new["batch_stats"]

    # BatchNorm's running averages (momentum 0.99) still hold ~13 % of their early values after
    # 200 steps; let them settle on the trained weights before evaluating with them.
    for i in range(500):
        stats = recalibrate(stats, key(1000 + i))
    y = enc.apply({"params": params["enc"], "batch_stats": stats}, x, mask, train=False)
    acc = float(np.mean(np.argmax(np.asarray(y @ params["head"]), -1) == labels))
    assert acc == 1.0, f"train accuracy {acc} (final loss {float(loss):.3f})"


def test_valid_padding_names_the_smallest_input():
    """75 x 75 is the smallest input VALID padding leaves a map for; smaller inputs get an error
    that says so (not a reduction over an empty array deep inside the network)."""
    from mmer_jax.models.encoders.inception_resnet_v2 import MIN_VALID_SIZE, InceptionResNetV2

    net = InceptionResNetV2(InceptionResNetV2Config(width=1 / 16, blocks=(1, 1, 1)))
    init = lambda s: jax.eval_shape(  # noqa: E731
        lambda: net.init(key(0), jnp.zeros((1, s, s, 3)), train=False))
    init(MIN_VALID_SIZE)
    with pytest.raises(ValueError, match="at least 75 x 75, got 74 x 74.*SAME"):
        init(MIN_VALID_SIZE - 1)
