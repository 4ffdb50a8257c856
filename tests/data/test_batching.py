"""The shared batching routine: order, padding, host shard, buckets (no corpus needed)."""

import numpy as np
import pytest

from mmer_jax.data import batching
from mmer_jax.errors import RunError, UsageError


def test_bucket_rounds_up_and_caps():
    assert batching.bucket(1, 8, 48) == 8
    assert batching.bucket(9, 8, 48) == 16
    assert batching.bucket(100, 8, 48) == 48
    assert batching.bucket(0, 4, 6) == 4


def test_eval_order_covers_every_unit_once_then_pads():
    order = batching.global_order(10, 4, seed=0, epoch=0, train=False, drop_remainder=True)
    assert order.shape == (3, 4)
    assert order.reshape(-1).tolist() == list(range(10)) + [batching.PAD] * 2


def test_train_order_depends_on_seed_and_epoch_only():
    kw = dict(seed=3, train=True, drop_remainder=False)
    a = batching.global_order(10, 4, epoch=1, **kw)
    assert np.array_equal(a, batching.global_order(10, 4, epoch=1, **kw))
    assert not np.array_equal(a, batching.global_order(10, 4, epoch=2, **kw))
    flat = a.reshape(-1)
    assert sorted(flat[flat >= 0].tolist()) == list(range(10)) and (flat < 0).sum() == 2
    dropped = batching.global_order(10, 4, epoch=1, seed=3, train=True, drop_remainder=True)
    assert dropped.shape == (2, 4) and np.array_equal(dropped.reshape(-1), flat[:8])
    with pytest.raises(RunError, match="3 dialogue units, fewer than one batch of 4"):
        batching.global_order(3, 4, seed=0, epoch=0, train=True, drop_remainder=True,
                              what="dialogue units")


def test_hosts_split_every_global_batch():
    order = np.arange(12).reshape(3, 4)
    halves = [batching.host_shard(order, i, 2) for i in range(2)]
    assert halves[0].tolist() == [0, 1, 4, 5, 8, 9] and halves[1].tolist() == [2, 3, 6, 7, 10, 11]
    with pytest.raises(UsageError, match="batch_size=4 must divide by the 3 hosts"):
        batching.host_shard(order, 0, 3)


def test_host_batches_rng_per_position_and_weight0_padding():
    def load(i, rng):
        return {"x": np.int64(i), "r": rng.random(), "weight": np.float32(1)}

    def pad(rng):
        return {"x": np.int64(-1), "r": rng.random(), "weight": np.float32(0)}

    def collate(items):
        return {k: np.stack([it[k] for it in items]) for k in items[0]}

    kw = dict(load=load, pad=pad, collate=collate, seed=5, epoch=0, train=False,
              drop_remainder=False)
    batches = list(batching.host_batches(5, 2, **kw))
    assert [b["x"].tolist() for b in batches] == [[0, 1], [2, 3], [4, -1]]
    assert batches[-1]["weight"].tolist() == [1.0, 0.0]
    assert batches[1]["r"][0] == np.random.default_rng([5, 0, 2]).random()
    skipped = list(batching.host_batches(5, 2, skip_batches=1, **kw))
    assert all(np.array_equal(a["r"], b["r"]) for a, b in zip(batches[1:], skipped, strict=True))
