"""After a resume, a run's train examples/s covers the whole run, not the resumed part only
(issue 33): the totals travel in the checkpoint's meta, results.json says how many processes
they cover, and report.md labels the rate."""

import json

import pytest

from mmer_jax.train.progress import Throughput

from .helpers import only_variant, tiny_config


def test_carry_over_adds_the_earlier_processes():
    t = Throughput()
    t.examples, t.wall_s = 64, 2.0
    assert t.totals() == {"examples": 64, "wall_s": 2.0, "processes": 1}
    resumed = Throughput()
    resumed.carry_over(t.totals())
    resumed.examples += 32
    resumed.wall_s += 2.0
    assert resumed.examples_per_s == pytest.approx(96 / 4.0)
    assert resumed.processes == 2
    old = Throughput()
    old.carry_over(None)  # a checkpoint written before the totals were saved
    assert old.processes == 1 and old.examples_per_s is None


def test_a_resumed_run_reports_the_rate_of_all_its_processes(tiny_generated, tmp_path):
    from mmer_jax.train.hooks import Interrupted
    from mmer_jax.train.run import run

    def cfg(**extra):
        c = tiny_config(tiny_generated, **{"train.epochs": 2, **extra})
        return only_variant(c, "audio", ["audio"])

    work = str(tmp_path / "w")
    with pytest.raises(Interrupted):  # 4 steps an epoch: stops inside epoch 2
        run(cfg(**{"train.stop_after_steps": 6}), work)
    results = run(cfg(), work)
    timing = results["timing"]
    assert timing["train_rate_processes"] == 2
    # Epoch 1 timed in the first process (3 of its 4 steps: the first one compiles), epoch 2
    # in the second (the steps it trained after the first one): both in the rate.
    assert timing["train_examples_per_s"] > 0 and timing["train_wall_s"] > 0
    stored = json.load(open(f"{work}/variants/audio/result.json"))
    assert stored["train_rate_processes"] == 2
    report = open(f"{work}/report.md").read()
    assert "Train examples/s (whole run: 2 processes, resumed)" in report
