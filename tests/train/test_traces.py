"""Bucketed padding keeps compilations few: one train-step trace per bucket shape, not per batch."""

import numpy as np

from mmer_jax.data.pipeline import Pipeline
from mmer_jax.train import sharding as sh
from mmer_jax.train.loop import VariantTrainer

from .helpers import only_variant, tiny_config


def test_train_step_traces_once_per_bucket(tiny_generated, tmp_path):
    cfg = only_variant(tiny_config(tiny_generated), "fused", ["audio", "frames", "text"])
    pipeline = Pipeline(cfg.data, ["audio", "frames", "text"], cfg.seed)
    trainer = VariantTrainer(cfg, pipeline, "fused", ["audio", "frames", "text"], str(tmp_path))
    state = trainer.init_state()
    shapes = set()
    for epoch in range(2):
        for host in trainer.batches("train", epoch=epoch, train=True):
            shapes.add(tuple((k, v.shape) for k, v in sorted(host.items())))
            state, _ = trainer.train_step(state, sh.to_global(host, trainer.mesh))
    n_batches = 2 * trainer.steps_per_epoch
    # Every distinct padded shape compiles once; repeated shapes reuse the compiled step.
    assert trainer.train_step.jitted._cache_size() == len(shapes)
    assert len(shapes) < n_batches, (len(shapes), n_batches)
    audio_widths = {dict(s)["audio_pcm"][1] for s in shapes}
    step = int(cfg.data.audio_bucket_s * cfg.data.sample_rate)
    assert all(w % step == 0 for w in audio_widths)
    assert np.isfinite(float(state.step))
    trainer.ckpt.close()


def test_every_seed_compiles_the_same_programs(tiny_generated, tmp_path):
    """The seed (and the first batch, which the seed shuffles) reach the train step and the
    initialisation as arguments: a reproduction's seeds share one compiled program each. They
    were constants of the programs, so each seed compiled its own."""
    import jax

    programs = []
    for seed in (0, 1):
        cfg = only_variant(tiny_config(tiny_generated, seed=seed), "text", ["text"])
        pipeline = Pipeline(cfg.data, ["text"], cfg.seed)
        trainer = VariantTrainer(cfg, pipeline, "text", ["text"], str(tmp_path / str(seed)))
        host = next(iter(trainer.batches("train", epoch=0, train=True)))
        init = trainer.init_program.lower(None, trainer.features(host), jax.random.PRNGKey(seed))
        state = trainer.init_state()
        step = trainer.train_step.jitted.lower(state, sh.to_global(host, trainer.mesh))
        programs.append((init.as_text(), step.as_text()))
        trainer.ckpt.close()
    assert programs[0][0] == programs[1][0]  # initialisation
    assert programs[0][1] == programs[1][1]  # train step
    # Lowered and compiled, the step is still called with the state and the batch only (as the
    # ablation's cost rows and the scaling benchmark call it).
    with jax.set_mesh(trainer.mesh):
        new_state, metrics = step.compile()(state, sh.to_global(host, trainer.mesh))
    assert int(new_state.step) == 1 and np.isfinite(float(metrics["loss"]))
