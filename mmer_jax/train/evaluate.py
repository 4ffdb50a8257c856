"""Re-evaluating a finished (or interrupted) run from its best-by-validation checkpoints."""

from __future__ import annotations

import json
import os

import jax
import ml_collections

from mmer_jax.data.pipeline import make_pipeline
from mmer_jax.errors import UsageError
from mmer_jax.io_utils import atomic_write_json
from mmer_jax.train.run import CONFIG_FILE, variants_of


def load_run_config(workdir: str) -> ml_collections.ConfigDict:
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        raise UsageError(f"--workdir {workdir!r} holds no run ({CONFIG_FILE} missing)")
    with open(path) as f:
        return ml_collections.ConfigDict(json.load(f))


def evaluate_run(workdir: str, split: str = "test") -> dict:
    """Evaluates each variant's best checkpoint on ``split``; writes ``eval_<split>.json``."""
    from mmer_jax.train.loop import VariantTrainer

    if split not in ("train", "validation", "test"):
        raise UsageError(f"--split {split!r} must be train, validation or test")
    cfg = load_run_config(workdir)
    variants = variants_of(cfg)
    pipeline = make_pipeline(
        cfg.data, sorted({m for v in variants.values() for m in v}), cfg.seed, workdir
    )
    out = {}
    for name, modalities in variants.items():
        trainer = VariantTrainer(cfg, pipeline, name, modalities, workdir)
        if trainer.ckpt.latest_step("best") is None:
            out[name] = {"error": "no best checkpoint yet"}
            continue
        state = trainer._init_state()
        best, meta = trainer.ckpt.restore("best", state)
        best = jax.device_put(
            best, jax.sharding.NamedSharding(trainer.mesh, jax.sharding.PartitionSpec())
        )
        out[name] = {
            "epoch": meta.get("best_epoch"),
            split: trainer.evaluate(best.params, best.batch_stats, split),
        }
        trainer.ckpt.close()
    atomic_write_json(os.path.join(workdir, f"eval_{split}.json"), out)
    return out
