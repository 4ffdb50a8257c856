"""The data-parallel step on 4 devices computes the loss and gradients of the 1-device step."""

import jax
import numpy as np
import pytest

from mmer_jax.data.device import make_feature_step
from mmer_jax.data.pipeline import Pipeline
from mmer_jax.models import build_model
from mmer_jax.schema import TrainConfig, from_section
from mmer_jax.train import sharding as sh
from mmer_jax.train import steps as steps_lib
from mmer_jax.train.state import init_state

from .helpers import tiny_config


def _loss_and_grads(cfg, pipeline, model, host_batch, params, batch_stats, n_devices):
    mesh = sh.make_mesh(n_devices)
    train = from_section(TrainConfig, cfg.train, "train")
    loss_fn = steps_lib.make_loss_fn(model, make_feature_step(cfg.data, train.dtype), train)
    fn = jax.jit(
        jax.value_and_grad(loss_fn, has_aux=True),
        in_shardings=(
            sh.replicated(mesh),
            sh.replicated(mesh),
            sh.data_sharding(mesh),
            sh.replicated(mesh),
        ),
    )
    (loss, (new_stats, _)), grads = fn(
        params, batch_stats, sh.to_global(host_batch, mesh), jax.random.PRNGKey(3)
    )
    return float(loss), jax.device_get(grads), jax.device_get(new_stats)


def test_four_devices_match_one(tiny_generated):
    if jax.device_count() < 4:
        pytest.skip("needs XLA_FLAGS=--xla_force_host_platform_device_count=4")
    cfg = tiny_config(tiny_generated)
    pipeline = Pipeline(cfg.data, ["audio", "frames", "text"], cfg.seed)
    model = build_model(cfg.model, num_classes=pipeline.num_classes,
                        vocab_size=pipeline.vocab_size, modalities=["audio", "frames", "text"])
    host = next(iter(pipeline.batches("train", 16, epoch=0, train=True)))
    features = make_feature_step(cfg.data, "float32")
    # Jitted, the key an argument (init_state's form for a jitted caller): an eager init compiles
    # one threefry program per parameter shape and one per op.
    state = jax.jit(lambda k, b: init_state(model, __import__("optax").sgd(0.1), b, k))(
        jax.random.key(cfg.seed, impl="rbg"), features(dict(host)))
    l1, g1, s1 = _loss_and_grads(cfg, pipeline, model, host, state.params, state.batch_stats, 1)
    l4, g4, s4 = _loss_and_grads(cfg, pipeline, model, host, state.params, state.batch_stats, 4)
    assert l1 == pytest.approx(l4, rel=1e-5)
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g4), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6)
    for a, b in zip(
        jax.tree.leaves(s1), jax.tree.leaves(s4), strict=True
    ):  # BatchNorm sees the global batch
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6)
