"""Fault 4 of issue 11: a run killed at any checkpoint boundary (just before or just after each
``latest`` / ``best`` save) resumes and ends with the parameters and scores of an uninterrupted
run. Killed after an epoch's ``best`` save and before its ``latest`` save, the resumed run replays
the epoch and saves the same ``best`` step again, which used to fail with orbax's
``StepAlreadyExistsError`` on every later resume.

Issue 32 (kind 4) extends the kills to checkpoint corruption: killed after a ``latest`` save whose
step is then corrupted on disk (each fault of ckpt_faults.py in turn), the run resumes from the
step before, with one warning naming the skipped step, and ends as the uninterrupted run did; a
corrupted ``best`` step is replaced when the resumed run saves it again, and otherwise restoring
it (what ``mmer eval`` and predict do) raises one line naming it."""

import json
import os
import shutil

import jax
import numpy as np
import pytest

from mmer_jax.data.pipeline import make_pipeline
from mmer_jax.errors import CheckpointError
from mmer_jax.train import checkpoint as ckpt_lib
from mmer_jax.train.loop import VariantTrainer

from .ckpt_faults import FAULTS
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
    # the measured throughput (examples, wall time, processes) differs with every interruption
    meta = {k: v for k, v in meta.items() if k != "throughput"}
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


def _kill_and_resume(trainer, monkeypatch, reference, n, when, corrupt=None):
    """Kills the run ``when`` ("before"/"after") save ``n``; ``corrupt(step_dir)`` then damages
    that save's step on disk; resumes and compares with the uninterrupted run."""
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
    if corrupt is not None:
        which, step = saves[n]
        corrupt(os.path.join(trainer.dir, "ckpt", which, str(step)))
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


@pytest.mark.slow  # ~1.5 min: a kill, a corruption and a resume per fault
def test_kill_then_a_corrupted_latest_step_resumes_from_the_step_before(trainer, monkeypatch,
                                                                        reference, capsys):
    saves = reference[0]
    # every `latest` save with an older `latest` step kept beside it (keep_checkpoints=2)
    points = [n for n, (which, _) in enumerate(saves)
              if which == "latest" and ("latest" in [w for w, _ in saves[:n]])]
    assert len(points) >= 3
    for i, name in enumerate(FAULTS):  # every fault, the kill points in turn
        n = points[i % len(points)]
        capsys.readouterr()
        _kill_and_resume(trainer, monkeypatch, reference, n, "after", FAULTS[name][0])
        step_dir = os.path.join(trainer.dir, "ckpt", "latest", str(saves[n][1]))
        warnings = [x for x in capsys.readouterr().err.splitlines()
                    if x.startswith("mmer: warning: skipped")]
        assert len(warnings) == 1, (name, warnings)
        assert warnings[0].startswith(f"mmer: warning: skipped checkpoint {step_dir} cannot be "
                                      "restored: "), (name, warnings[0])
        assert FAULTS[name][1] in warnings[0], (name, warnings[0])


@pytest.mark.slow  # ~30 s: a kill, a corruption and a resume
def test_kill_then_a_corrupted_best_step_is_replaced_or_named(trainer, monkeypatch, reference):
    saves = reference[0]
    # killed right after best@2: the resume replays the epoch and saves best@2 again
    n = saves.index(("best", 2))
    _kill_and_resume(trainer, monkeypatch, reference, n, "after", FAULTS["zero-filled"][0])
    # after the run, a corrupted best is what `mmer eval` and predict restore: one line naming it
    best = max(step for which, step in saves if which == "best")
    step_dir = os.path.join(trainer.dir, "ckpt", "best", str(best))
    FAULTS["_METADATA empty"][0](step_dir)
    trainer.ckpt.close()
    trainer.ckpt = ckpt_lib.Checkpoints(trainer.dir, keep=trainer.train_cfg.keep_checkpoints)
    with pytest.raises(CheckpointError) as err:
        trainer.restore("best")
    assert str(err.value) == (f"checkpoint {step_dir} cannot be restored: state/_METADATA is "
                              "empty (0 bytes)")


def test_saving_an_existing_step_replaces_it(tmp_path):
    """The checkpoint-level property behind the resume (fast): a replayed step is saved again."""
    ckpt = ckpt_lib.Checkpoints(str(tmp_path), keep=2)
    ckpt.save("best", 4, {"w": np.zeros(3, np.float32)}, {"epoch": 1})
    ckpt.save("best", 4, {"w": np.ones(3, np.float32)}, {"epoch": 1, "replayed": True})
    state, meta = ckpt.restore("best", None)
    assert meta["replayed"] and state["w"].tolist() == [1, 1, 1]
    assert ckpt.latest_step("best") == 4
    ckpt.close()
