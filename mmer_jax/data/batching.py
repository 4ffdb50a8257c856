"""Batching shared by every pipeline: global order, padding, per-host shard, length buckets, grain.

A run's data order depends only on the seed and the epoch, never on the number of devices or hosts:
every host computes the same global order of *units* (one batch row each: an utterance, or a
dialogue chunk) and takes its ``process_index``-th slice of every global batch. Entries that only
fill the last batch are marked ``-1`` in the order and become weight-0 units. Each unit gets its
own rng, ``np.random.default_rng([seed, epoch, position])``, so augmentation does not depend on
the read-ahead threads or on where a resumed run starts.

Variable lengths are padded up to a small set of bucket lengths (:func:`bucket`) so the jitted
step compiles a handful of shapes, not one per batch. With more than one host the bucket widths of
a batch come from the lengths of *every* unit of the global batch (``batch_widths``), which each
host can look up from the shared order, so all hosts build the same global shapes; with one host the
global batch is the host batch and the widths come from the loaded units themselves.

Also the names of the feature-stream modalities (:data:`FEATURE_STREAMS`) and how their step axis
is bucketed and padded (:func:`feature_bucket`, :func:`pad_steps`): the corpus, the collate
functions and the device step all read them from here (this module imports no other data module).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from mmer_jax.errors import RunError, UsageError

PAD = -1  # index of a padding entry in an order
# Modalities that are feature sequences [T, D] float32: stored by the corpus (text_feat,
# audio_feat, vision_feat of cmu_mosi / cmu_mosei) or read from the encoder-feature cache
# (encoder_feat: a pretrained encoder's layers, [T, L * D], see mmer_jax.data.encoder_cache). The
# record field, the host-example key and the model-batch key all carry the modality's name.
STORED_STREAMS = ("text_feat", "audio_feat", "vision_feat")  # what cmu_mosi / cmu_mosei store
ENCODER_STREAM = "encoder_feat"
FEATURE_STREAMS = (*STORED_STREAMS, ENCODER_STREAM)


def bucket(n: int, step: int, cap: int) -> int:
    """``n`` rounded up to a multiple of ``step``, at most ``cap`` and at least ``step``.

    Args:
      n: a length (samples, tokens, utterances).
      step: the bucket width, > 0.
      cap: the largest length returned (applied after rounding).
    """
    return int(min(max(step, math.ceil(n / step) * step), cap))


def feature_bucket(max_feat_steps: int) -> tuple[int, int]:
    """``(step, cap)`` of the feature-stream step axis: a quarter of ``max_feat_steps`` rounded
    up, and ``max_feat_steps`` rounded up to that step, so a stream pads to one of four widths."""
    step = max(1, math.ceil(max_feat_steps / 4))
    return step, math.ceil(max_feat_steps / step) * step


def pad_steps(seqs: list[np.ndarray], width: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Sequences [T_i, ``dim``] -> (float32 [len(seqs), width, dim] zero-padded after each
    sequence, int32 [len(seqs)] lengths T_i).

    Raises:
      RunError: a sequence has more than ``width`` steps, or not ``dim`` features.
    """
    out = np.zeros((len(seqs), width, dim), np.float32)
    lens = np.zeros((len(seqs),), np.int32)
    for i, x in enumerate(seqs):
        if x.ndim != 2 or x.shape[1] != dim or len(x) > width:
            raise RunError(f"a feature sequence of shape {list(x.shape)} does not fit the "
                           f"batch's padded shape [{width}, {dim}]")
        out[i, : len(x)] = x
        lens[i] = len(x)
    return out, lens


def global_order(
    n: int,
    global_batch: int,
    *,
    seed: int,
    epoch: int,
    train: bool,
    drop_remainder: bool,
    what: str = "examples",
    split: str = "train",
) -> np.ndarray:
    """The order of one pass over ``n`` units, as [n_batches, global_batch] int64 indices.

    Training shuffles with ``np.random.default_rng([seed, epoch])``; evaluation keeps index order.
    The last partial batch is dropped (training with ``drop_remainder``) or filled with
    :data:`PAD` (-1) entries, so evaluation covers every unit exactly once.

    Args:
      n: units in the split.
      global_batch: units per global batch (every host together).
      seed, epoch: the shuffle's seed.
      train: shuffle (and allow ``drop_remainder``).
      drop_remainder: training only: drop the last partial batch instead of padding it.
      what, split: name the units and split in the error message.

    Raises:
      RunError: training drops the remainder and ``n < global_batch`` (no batch at all).
    """
    if train:
        order = np.random.default_rng([seed, epoch]).permutation(n)
        if drop_remainder:
            n_batches = n // global_batch
            if n_batches == 0:
                raise RunError(
                    f"split {split!r} has {n} {what}, fewer than one batch of "
                    f"{global_batch}; lower train.batch_size"
                )
            return order[: n_batches * global_batch].reshape(n_batches, global_batch)
    else:
        order = np.arange(n)
    n_batches = math.ceil(n / global_batch)
    order = np.concatenate([order, np.full(n_batches * global_batch - n, PAD, int)])
    return order.reshape(n_batches, global_batch)


def host_shard(order: np.ndarray, process_index: int, process_count: int) -> np.ndarray:
    """This host's columns of a [n_batches, global_batch] order, flattened batch after batch.

    Raises:
      UsageError: ``global_batch`` does not divide by ``process_count``.
    """
    global_batch = order.shape[1]
    if global_batch % process_count:
        raise UsageError(
            f"train.batch_size={global_batch} must divide by the {process_count} hosts"
        )
    per_host = global_batch // process_count
    return order[:, process_index * per_host : (process_index + 1) * per_host].reshape(-1)


def grain_batches(local_order, load, per_host: int, collate, skip_batches: int, threads: int):
    """grain MapDataset over (position, index) pairs -> ``load`` -> batches of ``per_host``.

    Args:
      local_order: this host's flat order (:func:`host_shard`).
      load: ``(position, index) -> unit``; must not return None (grain drops None elements).
      per_host: units per host batch.
      collate: ``list of units -> batch dict``.
      skip_batches: host batches to skip at the start (resuming mid-epoch).
      threads: > 0 reads ahead with that many threads (never worker processes); 0 reads in the
        calling thread.

    Returns:
      An iterable of collated batches.
    """
    import grain  # lazy: grain is imported only when batches are read

    pairs = list(enumerate(np.asarray(local_order).tolist()))
    ds = grain.MapDataset.source(pairs).map(load).batch(per_host, batch_fn=collate)
    if skip_batches:
        ds = ds[skip_batches:]
    if threads > 0:
        return ds.to_iter_dataset(grain.ReadOptions(num_threads=threads, prefetch_buffer_size=4))
    return ds


def host_batches(
    n: int,
    global_batch: int,
    *,
    load: Callable[[int, np.random.Generator], Any],
    pad: Callable[[np.random.Generator], Any],
    collate: Callable[[list], dict[str, np.ndarray]],
    seed: int,
    epoch: int,
    train: bool,
    drop_remainder: bool,
    process_index: int = 0,
    process_count: int = 1,
    skip_batches: int = 0,
    threads: int = 0,
    what: str = "examples",
    split: str = "train",
    batch_widths: Callable[[list[int]], dict[str, Any]] | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """THE batching routine: order -> shard -> grain load -> collate, for any kind of unit.

    Args:
      n: units in the split.
      global_batch: units per global batch; divisible by ``process_count``.
      load: ``(index, rng) -> unit`` for a real unit.
      pad: ``rng -> unit`` for a padding entry (its weights must be 0).
      collate: ``list of units -> host batch`` (numpy arrays with a leading [global_batch //
        process_count] axis); called as ``collate(units, widths)`` with ``batch_widths`` of the
        global batch when that is given and ``process_count > 1``.
      seed, epoch: the order's and the per-unit rngs' seed.
      train, drop_remainder: see :func:`global_order`.
      process_index, process_count: this host and the number of hosts.
      skip_batches: host batches to skip (resuming mid-epoch); the rngs do not change.
      threads: grain read-ahead threads.
      what, split: name the units and split in error messages.
      batch_widths: ``global batch's indices (PAD for padding) -> widths`` given to ``collate``
        when ``process_count > 1``, so every host pads the same global batch to the same shapes.

    Yields:
      This host's part of each global batch, in order.

    Raises:
      UsageError: ``global_batch`` does not divide by ``process_count``.
      RunError: see :func:`global_order`.
    """
    if global_batch % process_count:  # checked before the order so the message names hosts
        raise UsageError(
            f"train.batch_size={global_batch} must divide by the {process_count} hosts"
        )
    order = global_order(
        n,
        global_batch,
        seed=seed,
        epoch=epoch,
        train=train,
        drop_remainder=drop_remainder,
        what=what,
        split=split,
    )
    local = host_shard(order, process_index, process_count)
    per_host = global_batch // process_count
    multi = process_count > 1 and batch_widths is not None
    widths_of_row: dict[int, dict[str, Any]] = {}  # read-ahead threads may race: same values

    def load_entry(pos_and_idx):
        pos, idx = pos_and_idx
        row, col = divmod(int(pos), per_host)
        # The unit's position in the *global* order: its rng does not depend on the host count.
        rng = np.random.default_rng([seed, epoch, row * global_batch + process_index * per_host
                                     + col])
        unit = load(int(idx), rng) if idx >= 0 else pad(rng)
        if not multi:
            return unit
        if row not in widths_of_row:
            widths_of_row[row] = batch_widths(order[row].tolist())
        return unit, widths_of_row[row]

    def collate_entries(entries):
        if not multi:
            return collate(entries)
        return collate([u for u, _ in entries], entries[0][1])

    yield from grain_batches(local, load_entry, per_host, collate_entries, skip_batches, threads)
