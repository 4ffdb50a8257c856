"""Training one model variant: jitted steps, validation, best/latest checkpoints, test once.

Model selection uses the validation split only (``train.select_metric``); the test split is
evaluated exactly once, after training, at the best-by-validation checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Any

import jax
import ml_collections
import numpy as np

from mmer_jax import registry
from mmer_jax.data import device as device_data
from mmer_jax.data.pipeline import Pipeline
from mmer_jax.errors import RunError
from mmer_jax.train import sharding as sh
from mmer_jax.train import steps as steps_lib
from mmer_jax.train.checkpoint import Checkpoints
from mmer_jax.train.metrics import classification_metrics
from mmer_jax.train.state import init_state, make_optimizer


class Interrupted(Exception):
    """Raised by ``train.stop_after_steps`` to simulate a killed run (tests of resume)."""


def build_model(cfg: ml_collections.ConfigDict, pipeline: Pipeline, modalities):
    from mmer_jax.models import build_model as build

    return build(cfg.model, num_classes=pipeline.num_classes, vocab_size=pipeline.vocab_size,
                 modalities=modalities)


def append_jsonl(path: str, record: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def truncate_jsonl(path: str, variant: str, after_step: int) -> None:
    """Drops this variant's records newer than ``after_step`` (they are replayed on resume)."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        lines = [ln for ln in f if ln.strip()]
    def replayed(record: dict) -> bool:
        return record.get("variant") == variant and record["step"] > after_step

    keep = [ln for ln in lines if not replayed(json.loads(ln))]
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.writelines(keep)
    os.replace(tmp, path)


class VariantTrainer:
    """Trains, selects and tests one variant (one set of modalities) of a config."""

    def __init__(self, cfg, pipeline: Pipeline, variant: str, modalities, run_dir: str, mesh=None):
        self.cfg, self.pipeline, self.variant = cfg, pipeline, variant
        self.modalities = list(modalities)
        self.run_dir = run_dir
        self.dir = os.path.join(run_dir, "variants", variant)
        os.makedirs(self.dir, exist_ok=True)
        self.mesh = mesh if mesh is not None else sh.make_mesh(cfg.train.get("num_devices") or None)
        self.model = build_model(cfg, pipeline, self.modalities)
        self.global_batch = cfg.train.batch_size
        n_dev = self.mesh.devices.size
        if self.global_batch % n_dev:
            from mmer_jax.errors import UsageError

            raise UsageError(
                f"train.batch_size={self.global_batch} must be a multiple of the {n_dev} devices"
            )
        self.steps_per_epoch = pipeline.steps_per_epoch(self.global_batch)
        if self.steps_per_epoch == 0:
            raise RunError(
                f"train split has {pipeline.num_examples('train')} examples, fewer "
                f"than train.batch_size={self.global_batch}"
            )
        self.total_steps = self.steps_per_epoch * cfg.train.epochs
        self.optimizer = make_optimizer(cfg.train, self.total_steps)
        self.train_step = steps_lib.make_train_step(
            self.model, self.optimizer, cfg.data, cfg.train, cfg.seed, self.mesh
        )
        self.eval_step = steps_lib.make_eval_step(self.model, cfg.data, cfg.train, self.mesh)
        self.ckpt = Checkpoints(self.dir, keep=cfg.train.get("keep_checkpoints", 2))
        self.metrics_path = os.path.join(run_dir, "metrics.jsonl")

    # -- helpers --------------------------------------------------------------------------------
    def _host_batches(self, split, **kw):
        return self.pipeline.batches(
            split,
            self.global_batch,
            process_index=jax.process_index(),
            process_count=jax.process_count(),
            **kw,
        )

    def _init_state(self):
        first = next(iter(self._host_batches("train", epoch=0, train=True)))
        inputs = device_data.prepare({k: np.asarray(v) for k, v in first.items()}, self.cfg.data)
        init = jax.jit(
            lambda: init_state(self.model, self.optimizer, inputs, self.cfg.seed),
            out_shardings=sh.replicated(self.mesh),
        )
        return init()

    def evaluate(self, state_params, batch_stats, split: str) -> dict:
        preds, labels, weights, loss_sum = [], [], [], 0.0
        for host in self._host_batches(split, train=False):
            out = self.eval_step(state_params, batch_stats, sh.to_global(host, self.mesh))
            # Flattened per batch: dialogue batches differ in their (bucketed) utterance axis.
            preds.append(sh.to_host(out["pred"]).reshape(-1))
            labels.append(sh.to_host(out["label"]).reshape(-1))
            weights.append(sh.to_host(out["weight"]).reshape(-1))
            loss_sum += float(out["loss_sum"])
        y, p, w = (np.concatenate(a) for a in (labels, preds, weights))
        m = classification_metrics(y, p, self.pipeline.class_names, weight=w)
        m["loss"] = loss_sum / max(float(w.sum()), 1.0)
        return m

    # -- main -----------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        cfg = self.cfg
        select = cfg.train.get("select_metric", "weighted_f1")
        state = self._init_state()
        meta = {"epoch": 0, "best": None, "best_epoch": None, "best_step": None}
        if self.ckpt.latest_step() is not None:
            state, meta = self.ckpt.restore("latest", state)
            state = jax.device_put(state, sh.replicated(self.mesh))
            truncate_jsonl(self.metrics_path, self.variant, int(state.step))
            print(f"[{self.variant}] resuming from step {int(state.step)}", file=sys.stderr)
        else:
            truncate_jsonl(self.metrics_path, self.variant, -1)
        start_step = int(state.step)
        stop_after = cfg.train.get("stop_after_steps", 0)
        log_every = max(1, cfg.train.get("log_every", 10))
        t_train, n_train = 0.0, 0
        bar = _progress(
            self.total_steps, start_step, f"train[{self.variant}]", cfg.train.get("progress", True)
        )
        first_step_done = False
        for epoch in range(meta["epoch"], cfg.train.epochs):
            # Batches of this epoch already trained before an interruption are skipped, not redone.
            skip = max(0, start_step - epoch * self.steps_per_epoch)
            t0 = time.perf_counter()
            n_seen = n_timed = 0
            for host in self._host_batches("train", epoch=epoch, train=True, skip_batches=skip):
                state, m = self.train_step(state, sh.to_global(host, self.mesh))
                n_seen += self.global_batch
                step = int(state.step)
                if not first_step_done:
                    # Throughput excludes the first step of the process: it includes compilation.
                    jax.block_until_ready(state)
                    first_step_done = True
                    t0 = time.perf_counter()
                else:
                    n_timed += self.global_batch
                if step % log_every == 0 or step % self.steps_per_epoch == 0:
                    loss = float(m["loss"])
                    if not math.isfinite(loss):
                        raise RunError(
                            f"[{self.variant}] loss became {loss} at step {step} "
                            f"(epoch {epoch + 1}); lower train.lr or set train.grad_clip"
                        )
                    dt = time.perf_counter() - t0
                    rate = n_timed / dt if n_timed and dt > 0 else None
                    bar.set_postfix(loss=f"{loss:.3f}", ex_s=f"{rate or 0:.0f}")
                    append_jsonl(
                        self.metrics_path,
                        {
                            "variant": self.variant,
                            "split": "train",
                            "step": step,
                            "epoch": epoch + 1,
                            "loss": loss,
                            "accuracy": float(m["accuracy"]),
                            "examples_per_s": rate,
                        },
                    )
                bar.update(1)
                if stop_after and step >= stop_after:
                    self.ckpt.save("latest", step, state, meta)
                    bar.close()
                    raise Interrupted(f"stopped after step {step} (train.stop_after_steps)")
                every = cfg.train.get("checkpoint_every_steps", 0)
                if every and step % every == 0 and step % self.steps_per_epoch:
                    self.ckpt.save("latest", step, state, meta)
            jax.block_until_ready(state)
            t_train += time.perf_counter() - t0
            n_train += n_timed
            val = self.evaluate(state.params, state.batch_stats, "validation")
            step = int(state.step)
            append_jsonl(
                self.metrics_path,
                {
                    "variant": self.variant,
                    "split": "validation",
                    "step": step,
                    "epoch": epoch + 1,
                    "loss": val["loss"],
                    "accuracy": val["accuracy"],
                    "weighted_f1": val["weighted_f1"],
                    "uar": val["uar"],
                },
            )
            meta["epoch"] = epoch + 1
            if meta["best"] is None or val[select] > meta["best"]:
                meta.update(best=val[select], best_epoch=epoch + 1, best_step=step)
                self.ckpt.save("best", step, state, meta)
            self.ckpt.save("latest", step, state, meta)
            bar.write(
                f"[{self.variant}] epoch {epoch + 1}/{cfg.train.epochs}: val "
                f"acc {val['accuracy']:.3f} wF1 {val['weighted_f1']:.3f} "
                f"(best {select} {meta['best']:.3f} @ {meta['best_epoch']})",
                file=sys.stderr,
            )
        bar.close()
        best_state, best_meta = self.ckpt.restore("best", state)
        best_state = jax.device_put(best_state, sh.replicated(self.mesh))
        validation = self.evaluate(best_state.params, best_state.batch_stats, "validation")
        test = self.evaluate(best_state.params, best_state.batch_stats, "test")  # once
        self.ckpt.close()
        return {
            "modalities": self.modalities,
            "validation": validation,
            "test": test,
            "selection": f"best validation {select} @ epoch {best_meta['best_epoch']}",
            "best_epoch": best_meta["best_epoch"],
            "train_examples_per_s": (n_train / t_train) if t_train else None,
            "train_wall_s": t_train,
            "num_params": _count(best_state.params),
        }


def _count(params) -> int:
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(params)))


def _progress(total: int, initial: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        dynamic_ncols=True,
        leave=False,
        disable=not enabled or jax.process_index() != 0,
        file=sys.stderr,
    )
