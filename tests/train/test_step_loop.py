"""Fault 3 of issue 11: the steady-state step loop never waits on the device. Under
``jax.transfer_guard("disallow")`` an epoch runs with no implicit transfer (no ``int(state.step)``),
metrics are fetched only on logging steps, and batches are put on the devices ahead of the step."""

import json

import jax
import numpy as np

from mmer_jax.data.pipeline import make_pipeline
from mmer_jax.train import loop as loop_lib
from mmer_jax.train import sharding as sh

from .helpers import only_variant, tiny_config


def _trainer(tmp_path, data_dir, **overrides):
    cfg = only_variant(tiny_config(data_dir, **overrides), "text", ["text"])
    pipe = make_pipeline(cfg.data, ["text"], cfg.seed, str(tmp_path))
    return loop_lib.VariantTrainer(cfg, pipe, "text", ["text"], str(tmp_path))


def _count_device_to_host(monkeypatch) -> list:
    """Counts reads of device arrays' values on the host (``int(x)``, ``float(x)``,
    ``jax.device_get``): on CPU devices the transfer guard does not see them
    (the buffers already are host memory), so they are counted at ``ArrayImpl._value``."""
    from jax._src import array

    reads = []
    value = array.ArrayImpl._value

    def counted(self):
        reads.append(self.shape)
        return value.fget(self)

    monkeypatch.setattr(array.ArrayImpl, "_value", property(counted))
    return reads


def test_epoch_has_no_host_sync_and_fetches_only_on_log_steps(
    tmp_path, tiny_generated, monkeypatch
):
    # 64 train examples / batch 8 = 8 steps per epoch; logged every 3rd step and at the epoch end.
    trainer = _trainer(tmp_path, tiny_generated, **{"train.batch_size": 8, "train.log_every": 3})
    state = trainer.train_epoch(trainer.init_state(), 0)  # compiles outside the guard
    fetched = []

    def counting_fetch(metrics):
        fetched.append(len(reads))
        out = jax.device_get(metrics)
        del reads[fetched[-1]:]  # the explicit fetch of a logging step is not counted
        return out

    monkeypatch.setattr(loop_lib, "fetch_metrics", counting_fetch)
    reads = _count_device_to_host(monkeypatch)
    with jax.transfer_guard("disallow"):  # no implicit host-to-device transfer either
        state = trainer.train_epoch(state, 1)
    assert reads == []  # no int(state.step), no float(loss) outside the logging fetches
    assert len(fetched) == 4  # steps 9, 12, 15 and 16 (the epoch end)
    monkeypatch.undo()
    assert int(state.step) == 2 * trainer.steps_per_epoch
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    records = [r for r in map(json.loads, lines) if r["split"] == "train"]
    assert [r["step"] for r in records][-4:] == [9, 12, 15, 16]


def test_the_counter_sees_a_host_sync(monkeypatch):
    reads = _count_device_to_host(monkeypatch)
    x = jax.numpy.arange(3) + 1
    int(x[0]), float(x.sum())  # what `int(state.step)` / `float(metrics["loss"])` do
    assert len(reads) == 2


def test_prefetch_keeps_two_batches_in_flight(tmp_path, tiny_generated):
    mesh = sh.make_mesh()
    pulled = []

    def host_batches():
        for i in range(5):
            pulled.append(i)
            yield {"x": np.full((4, 2), i, np.float32)}

    it = sh.prefetch_to_mesh(host_batches(), mesh, size=2)
    first = next(it)
    assert pulled == [0, 1, 2]  # batch 0 handed out, batches 1 and 2 already on the devices
    assert first["x"].sharding == sh.data_sharding(mesh)
    rest = [int(b["x"][0, 0]) for b in it]
    assert rest == [1, 2, 3, 4]
