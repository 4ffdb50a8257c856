"""The trainer's pieces behind its public boundary: step hooks, the typed optimizer, the shared
report helpers and `mmer bench` reaching `bench.run` without a second parser."""

import optax
import pytest

from mmer_jax import cli
from mmer_jax.errors import UsageError
from mmer_jax.schema import TrainConfig, from_section
from mmer_jax.train import report_common as rc
from mmer_jax.train.hooks import CheckpointEvery, Interrupted, StopAfterSteps
from mmer_jax.train.state import make_optimizer, make_schedule


def test_stop_after_steps_saves_latest_then_raises():
    saved = []
    hook = StopAfterSteps(3, lambda step, state: saved.append((step, state)))
    hook(2, "s2")
    assert saved == []
    with pytest.raises(Interrupted, match="stopped after step 3"):
        hook(3, "s3")
    assert saved == [(3, "s3")]


def test_checkpoint_every_skips_the_end_of_an_epoch():
    saved = []
    hook = CheckpointEvery(2, steps_per_epoch=4, save_latest=lambda step, _: saved.append(step))
    for step in range(1, 9):
        hook(step, None)
    assert saved == [2, 6]  # 4 and 8 end an epoch: saved there with the validation result


def test_optimizer_defaults_come_from_the_schema():
    train = TrainConfig()
    assert (train.schedule, train.grad_clip, train.weight_decay) == ("cosine", 1.0, 1e-4)
    schedule = make_schedule(train, total_steps=100)
    assert float(schedule(0)) == pytest.approx(train.lr)
    assert float(schedule(100)) == pytest.approx(train.lr * 0.01)
    # Clipping first, then AdamW: two parts in the chain.
    assert len(make_optimizer(train, 100).init({"w": optax.tree.zeros_like({"w": 0.0})})) == 2
    constant = from_section(TrainConfig, {"schedule": "constant", "grad_clip": 0.0}, "train")
    assert make_schedule(constant, 100) == constant.lr
    assert len(make_optimizer(constant, 100).init({"w": 0.0})) == 1


def test_unknown_train_key_is_named():
    with pytest.raises(UsageError, match="train.grad_clipp"):
        from_section(TrainConfig, {"grad_clipp": 1.0}, "train")


def test_report_helpers_format_cells_and_tables():
    assert rc.pct(0.6171) == "61.7" and rc.pct(None) == rc.MISSING and rc.pct(float("nan")) == "—"
    assert rc.num(1.23456, 2) == "1.23" and rc.cell(True) == "yes" and rc.cell(["a", "b"]) == "a, b"
    assert rc.cell("x|y\nz") == "x\\|y z"
    assert rc.duration(3723) == "1h 02m 03s (3723.0 s)"
    assert rc.slug("audio+text") == "audio_text"
    assert rc.markdown_table(["A", "B"], [["1", "2"]]) == ["| A | B |", "| --- | ---: |",
                                                          "| 1 | 2 |", ""]


def test_mmer_bench_calls_bench_run_with_its_flags(monkeypatch):
    from mmer_jax import bench

    calls = []
    monkeypatch.setattr(bench, "run", lambda what, **kw: calls.append((what, kw)) or 0)
    assert cli.main(["bench", "train", "--quick", "--out", "o.json", "--workdir", "w",
                     "--compare", "model.dropout=0.1,0.2", "--config.train.lr=0.01"]) == 0
    assert calls == [("train", dict(config=None, overrides=["train.lr=0.01"], out="o.json",
                                    quick=True, workdir="w", compare="model.dropout=0.1,0.2"))]


@pytest.mark.parametrize("warmup", [0, 1, 3])
def test_a_run_of_one_step_has_a_schedule(warmup):
    # optax rejects decay_steps <= warmup_steps; a 1-step (smoke) run must still get a schedule.
    train = from_section(TrainConfig, {"warmup_steps": warmup}, "train")
    schedule = make_schedule(train, total_steps=1)
    assert float(schedule(0)) == pytest.approx(0.0 if warmup else train.lr)
