"""Fault 4 of issue 11: a run killed at any checkpoint boundary (just before or just after each
``latest`` / ``best`` save) resumes and ends with the parameters and scores of an uninterrupted
run. Killed after an epoch's ``best`` save and before its ``latest`` save, the resumed run replays
the epoch and saves the same ``best`` step again, which used to fail with orbax's
``StepAlreadyExistsError`` on every later resume."""

import json
import os
import shutil

import jax
import numpy as np
import pytest

from mmer_jax.data.pipeline import make_pipeline
from mmer_jax.train import checkpoint as ckpt_lib
from mmer_jax.train.loop import VariantTrainer

from .helpers import only_variant, tiny_config


class Killed(Exception):
    """Stands in for SIGKILL at a checkpoint boundary."""


@pytest.fixture(scope="module")
def trainer(tmp_path_factory, tiny_generated):
    # 64 train examples / batch 32 = 2 steps per epoch, `latest` also every step: the saves are
    # latest@1, best@2, latest@2, latest@3, (best@4 when validation improved), latest@4.
    tmp = tmp_path_factory.mktemp("kill")
    cfg = only_variant(tiny_config(tiny_generated, **{"train.checkpoint_every_steps": 1,
                                                      "train.batch_size": 32}),
                       "text", ["text"])
    pipe = make_pipeline(cfg.data, ["text"], cfg.seed, str(tmp))
    return VariantTrainer(cfg, pipe, "text", ["text"], str(tmp))


def _fresh(trainer):
    """Forgets the previous run: no checkpoint, no record (the compiled steps are kept)."""
    try:
        trainer.ckpt.close()
    except Exception:  # a manager left mid-save by a simulated kill
        pass
    shutil.rmtree(os.path.join(trainer.dir, "ckpt"), ignore_errors=True)
    metrics = os.path.join(trainer.run_dir, "metrics.jsonl")
    if os.path.exists(metrics):
        os.remove(metrics)
    trainer.ckpt = ckpt_lib.Checkpoints(trainer.dir, keep=trainer.train_cfg.keep_checkpoints)


def _resumed(trainer):
    """A new process on the same directory: fresh checkpoint managers, then ``run()``."""
    try:
        trainer.ckpt.close()
    except Exception:
        pass
    trainer.ckpt = ckpt_lib.Checkpoints(trainer.dir, keep=trainer.train_cfg.keep_checkpoints)
    return trainer.run()


def _final(trainer, result):
    ckpt = ckpt_lib.Checkpoints(trainer.dir)
    state, meta = ckpt.restore("latest", None)
    ckpt.close()
    with open(os.path.join(trainer.run_dir, "metrics.jsonl")) as f:
        records = [(r["split"], r["step"]) for r in map(json.loads, f)]
    return state["params"], meta, result["test"]["accuracy"], result["best_epoch"], records


@pytest.fixture(scope="module")
def reference(trainer):
    """The saves of an uninterrupted run, in order, and its final parameters, meta and scores."""
    saves = []
    real_save = ckpt_lib.Checkpoints.save

    def recording(self, which, step, state, meta):
        saves.append((which, int(step)))
        real_save(self, which, step, state, meta)

    ckpt_lib.Checkpoints.save = recording
    try:
        _fresh(trainer)
        final = _final(trainer, trainer.run())
    finally:
        ckpt_lib.Checkpoints.save = real_save
    assert ("best", 2) in saves and ("latest", 2) in saves
    assert saves.index(("best", 2)) < saves.index(("latest", 2))  # the boundary of the fault
    return saves, final


def _kill_and_resume(trainer, monkeypatch, reference, n, when):
    saves, final = reference
    real_save = ckpt_lib.Checkpoints.save
    calls = []

    def killing(self, which, step, state, meta):
        calls.append((which, int(step)))
        if len(calls) - 1 == n and when == "before":
            raise Killed
        real_save(self, which, step, state, meta)
        if len(calls) - 1 == n and when == "after":
            raise Killed

    monkeypatch.setattr(ckpt_lib.Checkpoints, "save", killing)
    _fresh(trainer)
    with pytest.raises(Killed):
        trainer.run()
    monkeypatch.setattr(ckpt_lib.Checkpoints, "save", real_save)
    params, meta, acc, best_epoch, records = _final(trainer, _resumed(trainer))
    where = f"killed {when} save {saves[n]}"
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, b, err_msg=where), params,
                 final[0])
    assert (meta, acc, best_epoch) == final[1:4], where
    assert records == final[4], where  # replayed records are not duplicated


@pytest.mark.slow  # ~45 s: a reference run, a killed run and its resume
def test_kill_between_best_and_latest_resumes(trainer, monkeypatch, reference):
    """The boundary of the issue: after the epoch-end ``best`` save, before ``latest``."""
    n = reference[0].index(("best", 2))
    _kill_and_resume(trainer, monkeypatch, reference, n, "after")


@pytest.mark.slow
def test_kill_at_every_checkpoint_boundary_resumes(trainer, monkeypatch, reference):
    for n in range(len(reference[0])):
        for when in ("before", "after"):
            _kill_and_resume(trainer, monkeypatch, reference, n, when)


def test_saving_an_existing_step_replaces_it(tmp_path):
    """The checkpoint-level property behind the resume (fast): a replayed step is saved again."""
    ckpt = ckpt_lib.Checkpoints(str(tmp_path), keep=2)
    ckpt.save("best", 4, {"w": np.zeros(3, np.float32)}, {"epoch": 1})
    ckpt.save("best", 4, {"w": np.ones(3, np.float32)}, {"epoch": 1, "replayed": True})
    state, meta = ckpt.restore("best", None)
    assert meta["replayed"] and state["w"].tolist() == [1, 1, 1]
    assert ckpt.latest_step("best") == 4
    ckpt.close()
