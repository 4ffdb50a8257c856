"""Input pipeline: TFDS array_record source -> grain MapDataset -> padded, bucketed host batches.

Per step, each host assembles its slice of the global batch (``process_index``-th chunk of every
global batch, in the same global order on every host), so a run's data order depends only on the
seed and the epoch, never on the number of devices or hosts. Variable lengths are padded up to a
small set of bucket lengths so the jitted step compiles a handful of shapes, not one per batch.

Signals stay compact on the host (int16 audio, uint8 frames); features are computed on the device
by :mod:`mmer_jax.data.device` inside the jitted step.
"""

from __future__ import annotations

import math
import os
from typing import Any, Iterator

import ml_collections
import numpy as np

from mmer_jax.data.text import Tokenizer
from mmer_jax.errors import RunError, UsageError

SPLITS = ("train", "validation", "test")


def _bucket(n: int, step: int, cap: int) -> int:
    """Rounds n up to a multiple of step, at most cap (and at least step)."""
    return int(min(max(step, math.ceil(n / step) * step), cap))


def open_builder(data_cfg: ml_collections.ConfigDict):
    """Returns a prepared TFDS builder, building the corpus first when allowed."""
    from data_prep import build as build_lib

    data_dir = os.path.expanduser(data_cfg.data_dir) if data_cfg.get("data_dir") else None
    try:
        if data_cfg.get("build_if_missing", True):
            return build_lib.build(
                data_cfg.corpus,
                data_cfg.get("config") or None,
                data_dir,
                data_cfg.get("manual_dir") or None,
            )
        builder = build_lib.get_builder(data_cfg.corpus, data_cfg.get("config") or None, data_dir)
    except build_lib.BuildError as exc:
        raise UsageError(f"data.corpus: {exc}") from exc
    except AssertionError as exc:  # TFDS reports a missing manual_dir this way
        raise UsageError(f"data.corpus {data_cfg.corpus!r}: {exc}") from exc
    if not os.path.isdir(builder.data_dir):
        raise UsageError(
            f"corpus {data_cfg.corpus!r} is not built in {data_dir!r}; run "
            f"`mmer data build {data_cfg.corpus} --data_dir {data_dir}` first"
        )
    return builder


def make_pipeline(
    data_cfg: ml_collections.ConfigDict,
    modalities: list[str],
    seed: int,
    workdir: str | None = None,
    builder=None,
) -> "Pipeline":
    """``data.unit``: "utterance" (default) -> :class:`Pipeline`; "dialogue" ->
    :class:`mmer_jax.data.dialogue.DialoguePipeline` (batches [B, U, ...] of whole dialogues)."""
    unit = data_cfg.get("unit", "utterance") or "utterance"
    if unit == "dialogue":
        from mmer_jax.data.dialogue import DialoguePipeline

        return DialoguePipeline(data_cfg, modalities, seed, workdir, builder)
    if unit != "utterance":
        raise UsageError(f"config key 'data.unit' must be 'utterance' or 'dialogue', got {unit!r}")
    return Pipeline(data_cfg, modalities, seed, workdir, builder)


class Pipeline:
    """Everything the trainer needs from a corpus: class names, vocabulary, batch iterators."""

    def __init__(
        self,
        data_cfg: ml_collections.ConfigDict,
        modalities: list[str],
        seed: int,
        workdir: str | None = None,
        builder=None,
    ):
        self.cfg = data_cfg
        self.modalities = list(modalities)
        self.seed = seed
        self.builder = builder if builder is not None else open_builder(data_cfg)
        label = self.builder.info.features["label"]
        self.class_names = list(label.names)
        self.sources = {}
        for split in SPLITS:
            if split not in self.builder.info.splits:
                raise RunError(f"corpus {data_cfg.corpus!r} has no {split!r} split")
            src = self.builder.as_data_source(split=split)
            if len(src) == 0:
                raise RunError(
                    f"split {split!r} of corpus {data_cfg.corpus!r} "
                    f"(config {data_cfg.get('config')!r}) is empty"
                )
            self.sources[split] = _CachedSource(src) if data_cfg.get("cache", True) else src
        self._augment = _online_augment(data_cfg)
        self.tokenizer = None
        if "text" in self.modalities:
            vocab_path = os.path.join(workdir, "vocab.json") if workdir else None
            if vocab_path and os.path.exists(vocab_path):
                self.tokenizer = Tokenizer.load(vocab_path)
            else:
                texts = (_as_str(ex["text"]) for ex in _iterate(self.sources["train"]))
                self.tokenizer = Tokenizer.fit(texts, min_count=data_cfg.get("min_count", 1))
                if vocab_path:
                    self.tokenizer.save(vocab_path)
        # After the tokenizer, so copies do not change word counts.
        offline = data_cfg.get("offline_augment") or []
        if offline and "audio" in self.modalities:
            from mmer_jax.data import augmented_source as aug_src

            ops = aug_src.parse_ops(offline)
            cache_dir = aug_src.cache_dir_for(self.builder, workdir)
            copies = aug_src.load_or_make_copies(
                self.sources["train"], ops, data_cfg.sample_rate, cache_dir
            )
            self.sources["train"] = aug_src.AugmentedTrainSource(self.sources["train"], ops, copies)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer) if self.tokenizer else 0

    def num_examples(self, split: str) -> int:
        return len(self.sources[split])

    def steps_per_epoch(self, batch_size: int) -> int:
        return self.num_examples("train") // batch_size

    # -- per-example op --------------------------------------------------------------------
    def _example(self, ex: dict[str, Any], train: bool, rng: np.random.Generator) -> dict:
        c = self.cfg
        if train and self._augment is not None:
            ex = self._augment(ex, rng)
        out = {"label": np.int32(ex["label"]), "weight": np.float32(1.0)}
        if "audio" in self.modalities:
            pcm = np.asarray(ex["audio"], dtype=np.int16)
            max_len = int(c.max_audio_s * c.sample_rate)
            if len(pcm) > max_len:  # random window while training, the centre at evaluation
                start = (
                    rng.integers(0, len(pcm) - max_len + 1) if train else (len(pcm) - max_len) // 2
                )
                pcm = pcm[start : start + max_len]
            out["audio_pcm"] = pcm
        for key in ("frames", "face"):
            if key in self.modalities:
                fr = np.asarray(ex[key], dtype=np.uint8)
                if len(fr) > c.max_frames:
                    start = (
                        rng.integers(0, len(fr) - c.max_frames + 1)
                        if train
                        else ((len(fr) - c.max_frames) // 2)
                    )
                    fr = fr[start : start + c.max_frames]
                out[key + "_u8"] = fr
        if "text" in self.modalities:
            out["tokens"] = self.tokenizer.encode(_as_str(ex["text"]), c.max_tokens)
        return out

    def _collate(self, items: list[dict]) -> dict[str, np.ndarray]:
        c = self.cfg
        b = len(items)
        batch = {
            "label": np.stack([it["label"] for it in items]),
            "weight": np.stack([it["weight"] for it in items]),
        }
        if "audio_pcm" in items[0]:
            lens = np.array([len(it["audio_pcm"]) for it in items], np.int32)
            step = int(c.audio_bucket_s * c.sample_rate)
            width = _bucket(
                int(lens.max()), step, _bucket(int(c.max_audio_s * c.sample_rate), step, 1 << 40)
            )
            pcm = np.zeros((b, width), np.int16)
            for i, it in enumerate(items):
                pcm[i, : lens[i]] = it["audio_pcm"]
            batch["audio_pcm"], batch["audio_len"] = pcm, lens
        for key in ("frames_u8", "face_u8"):
            if key in items[0]:
                lens = np.array([len(it[key]) for it in items], np.int32)
                shape = items[0][key].shape[1:]
                arr = np.zeros((b, c.max_frames) + shape, np.uint8)  # fixed length: one shape
                for i, it in enumerate(items):
                    arr[i, : lens[i]] = it[key]
                batch[key], batch[key.replace("_u8", "_len")] = arr, lens
        if "tokens" in items[0]:
            lens = np.array([len(it["tokens"]) for it in items], np.int32)
            width = _bucket(int(max(lens.max(), 1)), c.token_bucket, c.max_tokens)
            tok = np.zeros((b, width), np.int32)
            for i, it in enumerate(items):
                tok[i, : lens[i]] = it["tokens"]
            batch["tokens"] = tok
        return batch

    # -- batches ---------------------------------------------------------------------------
    def batches(
        self,
        split: str,
        global_batch: int,
        *,
        epoch: int = 0,
        train: bool = False,
        process_index: int = 0,
        process_count: int = 1,
        skip_batches: int = 0,
    ) -> Iterator[dict[str, np.ndarray]]:
        """Yields this host's part of each global batch of ``split``.

        Training batches are shuffled per epoch and drop the remainder; evaluation batches cover
        every example once, the last one padded with weight-0 copies.
        """

        if global_batch % process_count:
            raise UsageError(
                f"train.batch_size={global_batch} must divide by the {process_count} hosts"
            )
        n = self.num_examples(split)
        if train:
            order = np.random.default_rng([self.seed, epoch]).permutation(n)
            n_batches = n // global_batch
            if n_batches == 0:
                raise RunError(
                    f"split {split!r} has {n} examples, fewer than one batch of "
                    f"{global_batch}; lower train.batch_size"
                )
            order = order[: n_batches * global_batch]
        else:
            n_batches = math.ceil(n / global_batch)
            order = np.concatenate([np.arange(n), -np.ones(n_batches * global_batch - n, int)])
        per_host = global_batch // process_count
        local = order.reshape(n_batches, global_batch)[
            :, process_index * per_host : (process_index + 1) * per_host
        ].reshape(-1)
        source = self.sources[split]

        def load(i_and_idx):
            pos, idx = i_and_idx
            rng = np.random.default_rng([self.seed, epoch, int(pos)])
            ex = self._example(source[max(int(idx), 0)], train, rng)
            if idx < 0:
                ex["weight"] = np.float32(0.0)
            return ex

        yield from grain_batches(local, load, per_host, self._collate, skip_batches,
                                 int(self.cfg.get("read_threads", 2)))


def grain_batches(local_order, load, per_host: int, collate, skip_batches: int, threads: int):
    """grain MapDataset over (position, index) pairs -> ``load`` -> batches of ``per_host``.

    ``threads`` > 0 reads ahead with that many threads (never worker processes).
    """
    import grain

    pairs = list(enumerate(np.asarray(local_order).tolist()))
    ds = grain.MapDataset.source(pairs).map(load).batch(per_host, batch_fn=collate)
    if skip_batches:
        ds = ds[skip_batches:]
    if threads > 0:
        return ds.to_iter_dataset(grain.ReadOptions(num_threads=threads, prefetch_buffer_size=4))
    return ds


def _online_augment(data_cfg):
    """The composed ``data.augment`` op (training examples only), or None when the list is empty."""
    specs = data_cfg.get("augment") or []
    if not specs:
        return None
    from mmer_jax.data.augment import compose

    try:
        return compose([dict(s) for s in specs])
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"config key 'data.augment': {exc.args[0] if exc.args else exc}") from exc


class _CachedSource:
    """Decodes each record once and keeps it; small corpora then read at memory speed."""

    def __init__(self, source):
        self._source = source
        self._cache: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self._source)

    def __getitem__(self, i: int):
        ex = self._cache.get(i)
        if ex is None:
            ex = self._cache[i] = self._source[i]
        return ex


def _iterate(source):
    for i in range(len(source)):
        yield source[i]


def _as_str(x) -> str:
    return x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x)
