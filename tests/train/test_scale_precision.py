"""Issue 11: ``train.dtype=bfloat16`` computes in bfloat16 while the master weights, the optimizer
state, the BatchNorm statistics and the loss stay float32."""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmer_jax.schema import TrainConfig
from mmer_jax.train import sharding as sh
from mmer_jax.train import steps as steps_lib
from mmer_jax.train.state import init_state, make_optimizer


class _TinyBN(nn.Module):
    """Dense -> BatchNorm -> Dense: a model with running statistics, compiled in a second."""

    @nn.compact
    def __call__(self, inputs, train: bool = False):
        x = nn.Dense(32)(inputs["x"])
        x = nn.BatchNorm(use_running_average=not train)(x)
        return nn.Dense(4)(nn.relu(x)), {}


def _features(dtype):
    def step(batch):
        return {"x": batch["x"].astype(dtype), "label": batch["label"], "weight": batch["weight"]}

    return step


def _dtypes(tree) -> set:
    return {str(x.dtype) for x in jax.tree.leaves(tree) if hasattr(x, "dtype")}


def _run(dtype: str, batch):
    train = dataclasses.replace(TrainConfig(), dtype=dtype, optimizer="adamw")
    mesh = sh.make_mesh(1)
    model = _TinyBN()
    features = _features(steps_lib.DTYPES[dtype])
    opt = make_optimizer(train, total_steps=10)
    state = jax.device_put(init_state(model, opt, features(batch), seed=0), sh.replicated(mesh))
    step = steps_lib.make_train_step(model, opt, features, train, 0, mesh)
    text = step.jitted.lower(state, batch).as_text()
    for _ in range(2):
        state, metrics = step(state, batch)
    return state, metrics, text


def test_bfloat16_compute_keeps_float32_master_weights_state_and_loss():
    rng = np.random.default_rng(0)
    batch = {"x": rng.normal(size=(8, 16)).astype(np.float32),
             "label": rng.integers(0, 4, 8).astype(np.int32),
             "weight": np.ones(8, np.float32)}
    state, metrics, text = _run("bfloat16", batch)
    assert _dtypes(state.params) == {"float32"}
    assert _dtypes(state.batch_stats) == {"float32"}
    assert _dtypes(state.opt_state) <= {"float32", "int32"}
    assert {str(v.dtype) for v in metrics.values()} == {"float32"}
    # the matmuls run in bfloat16: both operands of every dot_general are bf16
    dots = [line for line in text.splitlines() if "stablehlo.dot_general" in line]
    assert dots and all("xbf16>, tensor<" in line for line in dots), dots

    ref_state, ref_metrics, ref_text = _run("float32", batch)
    assert "bf16" not in ref_text
    loss, ref_loss = float(metrics["loss"]), float(ref_metrics["loss"])
    assert loss != ref_loss and loss == pytest.approx(ref_loss, rel=5e-2)  # rounded, same function
    for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(ref_state.params),
                    strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=5e-3)


@pytest.mark.slow
def test_quickstart_audio_variant_in_bfloat16(tmp_path, tiny_generated):
    """The real path: the ResNet (convolutions + BatchNorm) of the quickstart in bfloat16."""
    from mmer_jax.data.pipeline import make_pipeline
    from mmer_jax.train.loop import VariantTrainer

    from .helpers import only_variant, tiny_config

    cfg = only_variant(tiny_config(tiny_generated, **{"train.dtype": "bfloat16"}), "audio",
                       ["audio"])
    pipe = make_pipeline(cfg.data, ["audio"], cfg.seed, str(tmp_path))
    trainer = VariantTrainer(cfg, pipe, "audio", ["audio"], str(tmp_path))
    state = trainer.init_state()
    batch = sh.to_global(next(iter(trainer.batches("train", epoch=0, train=True))), trainer.mesh)
    text = trainer.train_step.jitted.lower(state, batch).as_text()
    convs = [line for line in text.splitlines() if "stablehlo.convolution" in line]
    assert convs and all("xbf16>" in line for line in convs)
    state, metrics = trainer.train_step(state, batch)
    assert _dtypes(state.params) == _dtypes(state.batch_stats) == {"float32"}
    assert str(metrics["loss"].dtype) == "float32" and jnp.isfinite(metrics["loss"])
