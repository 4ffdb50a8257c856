"""Dialogue-level input pipeline: utterances grouped by ``dialogue_id``, ordered by ``turn``.

Selected with ``data.unit = "dialogue"`` (see :func:`mmer_jax.data.pipeline.make_pipeline`). One
*unit* (one row of a batch) is a dialogue, or a contiguous chunk of one when it has more than
``data.max_utterances`` utterances: long dialogues are split into near-equal chunks, never
truncated, so training and evaluation see every utterance. Evaluation covers every utterance of
the split exactly once; padded utterances (and whole padding units in the last batch) have
weight 0 and ``utt_mask`` False.

Host batch (numpy), with U padded to a multiple of ``data.utterance_bucket`` (8) capped by
``data.max_utterances`` and L to a multiple of ``data.token_bucket`` capped by ``data.max_tokens``:

| key | shape | dtype |
|---|---|---|
| ``tokens`` | [B, U, L] | int32 (0 = padding) |
| ``utt_mask`` | [B, U] | bool |
| ``speaker`` | [B, U] | int32: 0 for the dialogue's first speaker, 1 for the next, ... |
| ``label`` | [B, U] | int32 |
| ``weight`` | [B, U] | float32, 0 on padded utterances |
| ``audio_pcm`` / ``audio_len`` | [B, U, T] int16 / [B, U] int32 | when ``audio`` is a modality |
| ``frames_u8`` / ``frames_len`` (``face_*``) | [B, U, Tv, H, W, 3] uint8 / [B, U] | when present |

:func:`mmer_jax.data.device.prepare` adds ``tokens_mask`` [B, U, L] and passes ``utt_mask`` and
``speaker`` through. ``num_examples(split)`` counts units (dialogues, or chunks of long ones);
``num_utterances(split)`` counts utterances. Training batches keep the last partial batch (padded
with weight-0 units) unless ``data.drop_remainder`` is true, so every dialogue is seen every
epoch, as with conv-emotion's PyTorch loaders.
"""

from __future__ import annotations

import math
from typing import Iterator

import ml_collections
import numpy as np

from mmer_jax.data.pipeline import SPLITS, Pipeline, _as_str, _bucket, grain_batches
from mmer_jax.errors import RunError, UsageError

UTTERANCE_BUCKET = 8


def chunk_sizes(n: int, cap: int) -> list[int]:
    """Splits n utterances into ceil(n / cap) contiguous chunks of near-equal size (<= cap)."""
    k = max(1, math.ceil(n / cap))
    base, extra = divmod(n, k)
    return [base + (1 if i < extra else 0) for i in range(k)]


class DialoguePipeline(Pipeline):
    """Same public surface as :class:`Pipeline`, but a batch row is a dialogue (or chunk)."""

    def __init__(self, data_cfg: ml_collections.ConfigDict, modalities: list[str], seed: int,
                 workdir: str | None = None, builder=None):
        if data_cfg.get("offline_augment"):
            # Copies would duplicate turns inside their dialogue; augment dialogue corpora online.
            raise UsageError("config key 'data.offline_augment' is not supported with "
                             "data.unit='dialogue'")
        super().__init__(data_cfg, modalities, seed, workdir, builder)
        cap = int(data_cfg.get("max_utterances", 128))
        step = int(data_cfg.get("utterance_bucket", UTTERANCE_BUCKET))
        if cap < 1 or step < 1:
            raise UsageError(f"data.max_utterances={cap} and data.utterance_bucket={step} must be "
                             ">= 1")
        self.max_utterances, self.utterance_bucket = cap, step
        # units[split]: list of (dialogue_id, np.ndarray of source indices in turn order, speakers)
        self.units: dict[str, list[tuple[str, np.ndarray, np.ndarray]]] = {}
        for split in SPLITS:
            self.units[split] = self._group(split)

    # -- grouping --------------------------------------------------------------------------------
    def _group(self, split: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
        src = self.sources[split]
        dialogues: dict[str, list[tuple[int, int, str]]] = {}
        for i in range(len(src)):
            ex = src[i]
            if "dialogue_id" not in ex or "turn" not in ex:
                raise UsageError(f"data.unit='dialogue' needs 'dialogue_id' and 'turn' fields; "
                                 f"corpus {self.cfg.corpus!r} (config {self.cfg.get('config')!r}) "
                                 f"has {sorted(ex)}")
            d = _as_str(ex["dialogue_id"])
            spk = _as_str(ex["speaker"]) if "speaker" in ex else ""
            dialogues.setdefault(d, []).append((int(ex["turn"]), i, spk))
        units = []
        for d in sorted(dialogues):
            utts = sorted(dialogues[d])
            turns = [t for t, _, _ in utts]
            if len(set(turns)) != len(turns):
                raise RunError(f"dialogue {d!r} of split {split!r} repeats a turn number")
            ids = np.array([i for _, i, _ in utts], np.int64)
            first_seen: dict[str, int] = {}
            spk = np.array([first_seen.setdefault(s, len(first_seen)) for _, _, s in utts],
                           np.int32)
            start = 0
            for size in chunk_sizes(len(ids), self.max_utterances):
                units.append((d, ids[start:start + size], spk[start:start + size]))
                start += size
        return units

    # -- sizes -----------------------------------------------------------------------------------
    def num_examples(self, split: str) -> int:
        """Units (dialogues, or chunks of dialogues longer than ``data.max_utterances``)."""
        return len(self.units[split])

    def num_utterances(self, split: str) -> int:
        return int(sum(len(ids) for _, ids, _ in self.units[split]))

    def num_dialogues(self, split: str) -> int:
        return len({d for d, _, _ in self.units[split]})

    @property
    def drop_remainder(self) -> bool:
        return bool(self.cfg.get("drop_remainder", False))

    def steps_per_epoch(self, batch_size: int) -> int:
        n = self.num_examples("train")
        return n // batch_size if self.drop_remainder else math.ceil(n / batch_size)

    # -- per-unit op -----------------------------------------------------------------------------
    def _unit(self, split: str, idx: int, train: bool, rng: np.random.Generator) -> dict:
        _, ids, spk = self.units[split][idx]
        source = self.sources[split]
        utts = [self._example(source[int(i)], train, rng) for i in ids]
        return {"utts": utts, "speaker": spk}

    def _collate_units(self, units: list[dict]) -> dict[str, np.ndarray]:
        c = self.cfg
        b = len(units)
        n_utts = [len(u["utts"]) for u in units]
        width_u = _bucket(max(max(n_utts), 1), self.utterance_bucket,
                          max(self.max_utterances, self.utterance_bucket))
        width_u = max(width_u, max(n_utts))  # a cap that is no multiple of the bucket
        batch = {"label": np.zeros((b, width_u), np.int32),
                 "weight": np.zeros((b, width_u), np.float32),
                 "utt_mask": np.zeros((b, width_u), bool),
                 "speaker": np.zeros((b, width_u), np.int32)}
        flat = [it for u in units for it in u["utts"]]
        for r, u in enumerate(units):
            n = len(u["utts"])
            if not n:
                continue
            batch["label"][r, :n] = [it["label"] for it in u["utts"]]
            batch["weight"][r, :n] = [it["weight"] for it in u["utts"]]
            batch["utt_mask"][r, :n] = True
            batch["speaker"][r, :n] = u["speaker"]
        if "text" in self.modalities:
            longest = max((len(it["tokens"]) for it in flat), default=1)
            width = _bucket(max(longest, 1), c.token_bucket, c.max_tokens)
            tok = np.zeros((b, width_u, width), np.int32)
            for r, u in enumerate(units):
                for j, it in enumerate(u["utts"]):
                    tok[r, j, : len(it["tokens"])] = it["tokens"]
            batch["tokens"] = tok
        if "audio" in self.modalities:
            step = int(c.audio_bucket_s * c.sample_rate)
            cap = _bucket(int(c.max_audio_s * c.sample_rate), step, 1 << 40)
            longest = max((len(it["audio_pcm"]) for it in flat), default=1)
            width = _bucket(max(longest, 1), step, cap)
            pcm = np.zeros((b, width_u, width), np.int16)
            lens = np.zeros((b, width_u), np.int32)
            for r, u in enumerate(units):
                for j, it in enumerate(u["utts"]):
                    pcm[r, j, : len(it["audio_pcm"])] = it["audio_pcm"]
                    lens[r, j] = len(it["audio_pcm"])
            batch["audio_pcm"], batch["audio_len"] = pcm, lens
        for key in ("frames_u8", "face_u8"):
            if key.replace("_u8", "") in self.modalities and flat:
                shape = flat[0][key].shape[1:]
                arr = np.zeros((b, width_u, c.max_frames) + shape, np.uint8)
                lens = np.zeros((b, width_u), np.int32)
                for r, u in enumerate(units):
                    for j, it in enumerate(u["utts"]):
                        arr[r, j, : len(it[key])] = it[key]
                        lens[r, j] = len(it[key])
                batch[key], batch[key.replace("_u8", "_len")] = arr, lens
        return batch

    # -- batches ---------------------------------------------------------------------------------
    def batches(self, split: str, global_batch: int, *, epoch: int = 0, train: bool = False,
                process_index: int = 0, process_count: int = 1,
                skip_batches: int = 0) -> Iterator[dict[str, np.ndarray]]:
        """Yields this host's part of each global batch of dialogue units of ``split``.

        Training shuffles the units per epoch; evaluation keeps the sorted dialogue order and
        covers every utterance once, padding the last batch with empty (weight-0) units.
        """

        if global_batch % process_count:
            raise UsageError(f"train.batch_size={global_batch} must divide by the "
                             f"{process_count} hosts")
        n = self.num_examples(split)
        if train:
            order = np.random.default_rng([self.seed, epoch]).permutation(n)
            if self.drop_remainder:
                n_batches = n // global_batch
                if n_batches == 0:
                    raise RunError(f"split {split!r} has {n} dialogue units, fewer than one batch "
                                   f"of {global_batch}; lower train.batch_size")
                order = order[: n_batches * global_batch]
            else:
                n_batches = math.ceil(n / global_batch)
                order = np.concatenate([order, -np.ones(n_batches * global_batch - n, int)])
        else:
            n_batches = math.ceil(n / global_batch)
            order = np.concatenate([np.arange(n), -np.ones(n_batches * global_batch - n, int)])
        per_host = global_batch // process_count
        local = order.reshape(n_batches, global_batch)[
            :, process_index * per_host:(process_index + 1) * per_host].reshape(-1)

        def load(pos_and_idx):
            pos, idx = pos_and_idx
            if idx < 0:  # padding unit (not None: grain drops None elements)
                return {"utts": [], "speaker": np.zeros(0, np.int32)}
            rng = np.random.default_rng([self.seed, epoch, int(pos)])
            return self._unit(split, int(idx), train, rng)

        yield from grain_batches(local, load, per_host, self._collate_units, skip_batches,
                                 int(self.cfg.get("read_threads", 2)))
