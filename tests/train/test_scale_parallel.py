"""Issue 11, training at scale: gradient accumulation and FSDP-style parameter sharding give the
parameters of plain data parallelism.

The model is the quickstart's text variant with dropout off (embedding + Bi-LSTM + MLP head, no
BatchNorm), so one batch of 16 and 4 micro-batches of 4 have the same gradient. Some rows of the
batches carry weight 0 and the micro-batches hold different numbers of real rows, so a step that
averaged the micro-batches' means (instead of weighting each by its share of the batch's weight)
would not match.
"""

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from mmer_jax.data.pipeline import make_pipeline
from mmer_jax.errors import UsageError
from mmer_jax.train import sharding as sh
from mmer_jax.train.loop import VariantTrainer

from .helpers import only_variant, tiny_config

N_STEPS = 3


def _trainer(tmp_path, data_dir, **overrides):
    items = {"model.dropout": 0.0, "model.encoders.text.dropout": 0.0, **overrides}
    cfg = only_variant(tiny_config(data_dir, **items), "text", ["text"])
    pipe = make_pipeline(cfg.data, ["text"], cfg.seed, str(tmp_path))
    return VariantTrainer(cfg, pipe, "text", ["text"], str(tmp_path))


def _host_batches(trainer):
    batches = []
    for i, host in zip(range(N_STEPS), trainer.batches("train", epoch=0, train=True),
                       strict=False):
        host = {k: np.array(v) for k, v in host.items()}
        # rows 0, 4, 8 (micro-batch 0 of 4) and row 1 (micro-batch 1) do not count
        host["weight"][[0, 4, 8, 1][: 1 + i * 2]] = 0.0
        batches.append(host)
    return batches


def _train(trainer, hosts):
    state = trainer.init_state()
    losses = []
    for host in hosts:
        state, metrics = trainer.train_step(state, sh.to_global(host, trainer.mesh))
        losses.append(float(metrics["loss"]))
    return state, losses


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_generated):
    """Plain data parallelism on 4 devices, one batch of 16 per step: (hosts, losses, params)."""
    if jax.device_count() < 4:
        pytest.skip("needs XLA_FLAGS=--xla_force_host_platform_device_count=4")
    trainer = _trainer(tmp_path_factory.mktemp("ref"), tiny_generated)
    assert dict(trainer.mesh.shape) == {"data": 4}
    hosts = _host_batches(trainer)
    state, losses = _train(trainer, hosts)
    return hosts, losses, jax.device_get(state.params)


def _assert_same_run(losses, params, reference, rtol=1e-5, atol=2e-6):
    _, ref_losses, ref_params = reference
    np.testing.assert_allclose(losses, ref_losses, rtol=rtol)
    for a, b in zip(jax.tree.leaves(jax.device_get(params)), jax.tree.leaves(ref_params),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def test_four_micro_batches_give_the_parameters_of_one_batch(tmp_path, tiny_generated,
                                                              reference):
    trainer = _trainer(tmp_path, tiny_generated, **{"train.grad_accum_steps": 4})
    assert trainer.global_batch == 16 and trainer.steps_per_epoch == 4  # schedule unchanged
    state, losses = _train(trainer, reference[0])
    assert int(state.step) == N_STEPS  # one optimizer step per batch
    _assert_same_run(losses, state.params, reference)


def test_fsdp_shards_parameters_and_optimizer_state_and_matches_data_parallel(
    tmp_path, tiny_generated, reference
):
    trainer = _trainer(tmp_path, tiny_generated,
                       **{"train.fsdp": 2, "train.fsdp_min_size": 1024})
    assert dict(trainer.mesh.shape) == {"data": 2, "fsdp": 2}
    state, losses = _train(trainer, reference[0])
    _assert_same_run(losses, state.params, reference)

    # the LSTM and head kernels (>= 1024 elements) live split over "fsdp"; biases replicated
    lstm = state.params["enc_text"]["bilstm"]["OptimizedLSTMCell_0"]
    kernel, bias = lstm["hi"]["kernel"], lstm["hi"]["bias"]
    assert kernel.sharding.spec == P("fsdp", None)
    assert {s.data.shape for s in kernel.addressable_shards} == {(16, 32)}  # half of (32, 32)
    assert bias.sharding.spec == P() and bias.addressable_shards[0].data.shape == (32,)
    sharded = [x for x in jax.tree.leaves(state.params) if x.sharding.spec != P()]
    assert len(sharded) >= 17
    # the Adam moments of a sharded parameter are sharded the same way
    mu = [x for x in jax.tree.leaves(state.opt_state)
          if getattr(x, "shape", None) == kernel.shape]
    assert mu and all(x.sharding.spec == P("fsdp", None) for x in mu)
    # a batch is split over both axes: each of the 4 devices holds 4 of the 16 rows
    batch = sh.to_global(reference[0][0], trainer.mesh)
    assert {s.data.shape[0] for s in batch["weight"].addressable_shards} == {4}

    # a checkpoint restores onto the same shards
    trainer.ckpt.save("latest", N_STEPS, state, {"epoch": 0})
    restored, _ = trainer.restore("latest", state)
    got = restored.params["enc_text"]["bilstm"]["OptimizedLSTMCell_0"]["hi"]["kernel"]
    assert got.sharding.spec == P("fsdp", None)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(kernel))


def test_bad_fsdp_and_accumulation_sizes_are_named(tmp_path, tiny_generated):
    if jax.device_count() < 4:
        pytest.skip("needs 4 devices")
    with pytest.raises(UsageError, match="'train.fsdp': 3 must divide the 4 devices"):
        sh.make_mesh(None, fsdp=3)
    # 16 rows on 4 devices cannot make 8 micro-batches per device
    with pytest.raises(UsageError, match="'train.grad_accum_steps'"):
        _trainer(tmp_path, tiny_generated, **{"train.grad_accum_steps": 8})


def test_leaf_sharding_rule():
    if jax.device_count() < 4:
        pytest.skip("needs 4 devices")
    mesh = sh.make_mesh(4, fsdp=4)
    assert sh.leaf_sharding(mesh, (8, 32), 256).spec == P(None, "fsdp")  # largest divisible
    assert sh.leaf_sharding(mesh, (30, 8), 16).spec == P(None, "fsdp")  # 30 % 4 != 0
    assert sh.leaf_sharding(mesh, (30, 7), 16).spec == P()  # no divisible axis
    assert sh.leaf_sharding(mesh, (8, 32), 257).spec == P()  # below the size threshold
    assert sh.leaf_sharding(sh.make_mesh(4), (8, 32), 1).spec == P()  # no fsdp axis


@pytest.mark.slow
def test_fsdp_with_accumulation_matches_data_parallel(tmp_path, tiny_generated, reference):
    trainer = _trainer(tmp_path, tiny_generated, **{
        "train.fsdp": 2, "train.fsdp_min_size": 1024, "train.grad_accum_steps": 2})
    state, losses = _train(trainer, reference[0])
    _assert_same_run(losses, state.params, reference)
