"""Dialogue-level input pipeline: utterances grouped by ``dialogue_id``, ordered by ``turn``.

Selected with ``data.unit = "dialogue"`` (see :func:`mmer_jax.data.pipeline.make_pipeline`). One
*unit* (one row of a batch) is a dialogue, or a contiguous chunk of one when it has more than
``data.max_utterances`` utterances: long dialogues are split into near-equal chunks, never
truncated, so training and evaluation see every utterance. Evaluation covers every utterance of
the split exactly once; padded utterances (and whole padding units in the last batch) have
weight 0 and ``utt_mask`` False.

Host batch (numpy), with U padded to a multiple of ``data.utterance_bucket`` capped by
``data.max_utterances`` and L to a multiple of ``data.token_bucket`` capped by ``data.max_tokens``:

| key | shape | dtype |
|---|---|---|
| ``tokens`` | [B, U, L] | int32 (0 = padding) |
| ``utt_mask`` | [B, U] | bool |
| ``speaker`` | [B, U] | int32: 0 for the dialogue's first speaker, 1 for the next, ... |
| ``label`` | [B, U] | int32 |
| ``weight`` | [B, U] | float32, 0 on padded utterances |
| ``tokens_packed`` | [N, L] | int32: instead of ``tokens`` when ``data.pack_utterances`` > 0 |
| ``packed_slot`` | [N] | int32: each packed row's flat slot ``b * U + u`` (``B * U``: padding) |
| ``audio_pcm`` / ``audio_len`` | [B, U, T] int16 / [B, U] int32 | when ``audio`` is a modality |
| ``frames_u8`` / ``frames_len`` (``face_*``) | [B, U, Tv, H, W, 3] uint8 / [B, U] | when present |

:func:`mmer_jax.data.device.make_feature_step` adds ``tokens_mask`` [B, U, L] and passes
``utt_mask`` and ``speaker`` through. ``num_examples(split)`` counts units (dialogues, or chunks
of long ones); ``num_utterances(split)`` counts utterances. Training batches keep the last
partial batch (padded with weight-0 units) unless ``data.drop_remainder`` is true, so every
dialogue is seen every epoch, as with conv-emotion's PyTorch loaders.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from mmer_jax.data.base import UnitPipeline, data_config
from mmer_jax.data.batching import bucket
from mmer_jax.data.sources import SPLITS, as_str
from mmer_jax.errors import RunError, UsageError

# One unit: (dialogue id, [n] int64 source indices in turn order, [n] int32 speaker ids).
Unit = tuple[str, np.ndarray, np.ndarray]


def chunk_sizes(n: int, cap: int) -> list[int]:
    """Splits n utterances into ceil(n / cap) contiguous chunks of near-equal size (<= cap).

    ``chunk_sizes(19, 8) == [7, 6, 6]``: never truncated, so every utterance is seen.
    """
    k = max(1, math.ceil(n / cap))
    base, extra = divmod(n, k)
    return [base + (1 if i < extra else 0) for i in range(k)]


def group_dialogues(source, split: str, max_utterances: int, what: str = "corpus") -> list[Unit]:
    """A split's utterances grouped by ``dialogue_id``, in turn order, chunked to the cap.

    Args:
      source: the split's records (``dialogue_id``, ``turn`` and optionally ``speaker`` fields).
      split: the split's name, for error messages.
      max_utterances: the largest chunk (``data.max_utterances``).
      what: names the corpus in error messages.

    Returns:
      Units sorted by dialogue id, chunks of one dialogue consecutive. Speaker ids count from 0 in
      order of first appearance within the dialogue.

    Raises:
      UsageError: records lack ``dialogue_id`` or ``turn``.
      RunError: a dialogue repeats a turn number.
    """
    dialogues: dict[str, list[tuple[int, int, str]]] = {}
    for i in range(len(source)):
        ex = source[i]
        if "dialogue_id" not in ex or "turn" not in ex:
            raise UsageError(
                f"data.unit='dialogue' needs 'dialogue_id' and 'turn' fields; "
                f"{what} has {sorted(ex)}"
            )
        d = as_str(ex["dialogue_id"])
        spk = as_str(ex["speaker"]) if "speaker" in ex else ""
        dialogues.setdefault(d, []).append((int(ex["turn"]), i, spk))
    units = []
    for d in sorted(dialogues):
        utts = sorted(dialogues[d])
        turns = [t for t, _, _ in utts]
        if len(set(turns)) != len(turns):
            raise RunError(f"dialogue {d!r} of split {split!r} repeats a turn number")
        ids = np.array([i for _, i, _ in utts], np.int64)
        first_seen: dict[str, int] = {}
        spk = np.array([first_seen.setdefault(s, len(first_seen)) for _, _, s in utts], np.int32)
        start = 0
        for size in chunk_sizes(len(ids), max_utterances):
            units.append((d, ids[start : start + size], spk[start : start + size]))
            start += size
    return units


class DialoguePipeline(UnitPipeline):
    """Same public surface as :class:`~mmer_jax.data.utterance.Pipeline`, but a batch row is a
    dialogue (or a chunk of one); see the module docstring for the batch layout.

    Args:
      data, modalities, seed, workdir, builder: as for
        :class:`~mmer_jax.data.base.UnitPipeline`.

    Attributes:
      units: ``{split: [(dialogue_id, source indices, speaker ids), ...]}``.

    Raises:
      UsageError: ``data.offline_augment`` is set (copies would duplicate turns inside their
        dialogue; augment dialogue corpora online), or the corpus has no dialogue fields.
      RunError: a split is missing or empty, or a dialogue repeats a turn number.
    """

    unit = "dialogue"
    what = "dialogue units"

    def __init__(
        self,
        data: Any,
        modalities: Sequence[str],
        seed: int,
        workdir: str | None = None,
        builder=None,
    ):
        data = data_config(data)
        if data.offline_augment:  # checked before the corpus is opened (and maybe built)
            raise UsageError(
                "config key 'data.offline_augment' is not supported with data.unit='dialogue'"
            )
        super().__init__(data, modalities, seed, workdir, builder)
        self.max_utterances = self.config.max_utterances
        self.utterance_bucket = self.config.utterance_bucket
        what = f"corpus {self.config.corpus!r} (config {self.config.config!r})"
        self.units: dict[str, list[Unit]] = {
            split: group_dialogues(self.sources[split], split, self.max_utterances, what)
            for split in SPLITS
        }

    # -- sizes -----------------------------------------------------------------------------
    def num_examples(self, split: str) -> int:
        """Units (dialogues, or chunks of dialogues longer than ``data.max_utterances``)."""
        return len(self.units[split])

    def num_utterances(self, split: str) -> int:
        """Utterances of ``split`` (each in exactly one unit)."""
        return int(sum(len(ids) for _, ids, _ in self.units[split]))

    def num_dialogues(self, split: str) -> int:
        """Distinct dialogues of ``split``."""
        return len({d for d, _, _ in self.units[split]})

    @property
    def drop_remainder(self) -> bool:
        """``data.drop_remainder``: by default every dialogue is seen every epoch, as with
        conv-emotion's PyTorch loaders."""
        return self.config.drop_remainder

    def batches(self, split: str, global_batch: int, **kwargs):
        """:meth:`UnitPipeline.batches <mmer_jax.data.base.UnitPipeline.batches>`, refusing
        packed utterances across hosts.

        Raises:
          UsageError: ``data.pack_utterances`` is set and ``process_count`` > 1 (packed rows
            index the host's own batch); and as the base method.
          RunError: as the base method.
        """
        if self.config.pack_utterances and kwargs.get("process_count", 1) > 1:
            raise UsageError("config key 'data.pack_utterances' works on one host only; set it "
                             "to 0 for a multi-host run")
        return super().batches(split, global_batch, **kwargs)

    # -- units -----------------------------------------------------------------------------
    def load_unit(self, split, index, train, rng) -> dict:
        """Dialogue unit ``index``: ``{"utts": [host example per utterance, in turn order],
        "speaker": int32 [n] speaker index within the dialogue}``."""
        _, ids, spk = self.units[split][index]
        source = self.sources[split]
        utts = [self.corpus.example(source[int(i)], train, rng) for i in ids]
        return {"utts": utts, "speaker": spk}

    def padding_unit(self, split, train, rng) -> dict:
        """A unit with no utterance (it collates to weight-0, ``utt_mask`` False rows)."""
        # An empty unit, not None: grain drops None elements.
        return {"utts": [], "speaker": np.zeros(0, np.int32)}

    def unit_lengths(self, split, index) -> dict:
        """Unit ``index``'s (``-1``: a padding unit) ``utterances`` and its longest utterance's
        ``audio`` / ``tokens`` (0 without utterances); frame shapes when present."""
        if int(index) < 0:
            return {"utterances": 0}
        _, ids, _ = self.units[split][int(index)]
        source = self.sources[split]
        per = [self.record_lengths(source[int(i)]) for i in ids]
        out: dict = {"utterances": len(ids)}
        for key in ("audio", "tokens"):
            if per and key in per[0]:
                out[key] = max(x[key] for x in per)
        for key in ("frames_u8", "face_u8"):
            if per and key in per[0]:
                out[key] = per[0][key]
        return out

    def widths(self, lengths: list[dict]) -> dict:
        """``utterances``, ``tokens``, ``audio`` (and frame shapes) of a batch of units with
        ``lengths``."""
        c = self.config
        n_utts = [x["utterances"] for x in lengths]
        width_u = bucket(
            max(max(n_utts), 1),
            self.utterance_bucket,
            max(self.max_utterances, self.utterance_bucket),
        )
        out: dict = {"utterances": max(width_u, max(n_utts))}  # a cap no multiple of the bucket
        if "text" in self.modalities:
            longest = max((x.get("tokens", 0) for x in lengths), default=0)
            out["tokens"] = bucket(max(longest, 1), c.token_bucket, c.max_tokens)
        if "audio" in self.modalities:
            step = int(c.audio_bucket_s * c.sample_rate)
            cap = bucket(int(c.max_audio_s * c.sample_rate), step, 1 << 40)
            longest = max((x.get("audio", 0) for x in lengths), default=0)
            out["audio"] = bucket(max(longest, 1), step, cap)
        for key in ("frames_u8", "face_u8"):
            shapes = [x[key] for x in lengths if key in x]
            if shapes:
                out[key] = shapes[0]
        return out

    def collate(self, units: list[dict], widths: dict | None = None) -> dict[str, np.ndarray]:
        """Units -> a host batch (module docstring), padded to bucketed lengths: ``widths``
        (those of the global batch, :meth:`batch_widths`) or, when None, those of ``units``."""
        c = self.config
        b = len(units)
        flat = [it for u in units for it in u["utts"]]
        if widths is None:
            widths = self.widths([_loaded_lengths(u) for u in units])
        n_utts = [len(u["utts"]) for u in units]
        width_u = _fits(widths["utterances"], n_utts, "utterances")
        batch = {
            "label": np.zeros((b, width_u), np.int32),
            "weight": np.zeros((b, width_u), np.float32),
            "utt_mask": np.zeros((b, width_u), bool),
            "speaker": np.zeros((b, width_u), np.int32),
        }
        for r, u in enumerate(units):
            n = len(u["utts"])
            if not n:
                continue
            batch["label"][r, :n] = [it["label"] for it in u["utts"]]
            batch["weight"][r, :n] = [it["weight"] for it in u["utts"]]
            batch["utt_mask"][r, :n] = True
            batch["speaker"][r, :n] = u["speaker"]
        if "text" in self.modalities:
            width = _fits(widths["tokens"], [len(it["tokens"]) for it in flat], "tokens")
            tok = np.zeros((b, width_u, width), np.int32)
            for r, u in enumerate(units):
                for j, it in enumerate(u["utts"]):
                    tok[r, j, : len(it["tokens"])] = it["tokens"]
            if c.pack_utterances:
                batch["tokens_packed"], batch["packed_slot"] = _pack_rows(
                    tok, batch["utt_mask"], c.pack_utterances
                )
            else:
                batch["tokens"] = tok
        if "audio" in self.modalities:
            width = _fits(widths["audio"], [len(it["audio_pcm"]) for it in flat], "audio samples")
            pcm = np.zeros((b, width_u, width), np.int16)
            lens = np.zeros((b, width_u), np.int32)
            for r, u in enumerate(units):
                for j, it in enumerate(u["utts"]):
                    pcm[r, j, : len(it["audio_pcm"])] = it["audio_pcm"]
                    lens[r, j] = len(it["audio_pcm"])
            batch["audio_pcm"], batch["audio_len"] = pcm, lens
        for key in ("frames_u8", "face_u8"):
            if key.replace("_u8", "") in self.modalities and (flat or key in widths):
                shape = flat[0][key].shape[1:] if flat else tuple(widths[key])
                arr = np.zeros((b, width_u, c.max_frames) + shape, np.uint8)
                lens = np.zeros((b, width_u), np.int32)
                for r, u in enumerate(units):
                    for j, it in enumerate(u["utts"]):
                        arr[r, j, : len(it[key])] = it[key]
                        lens[r, j] = len(it[key])
                batch[key], batch[key.replace("_u8", "_len")] = arr, lens
        return batch


def _loaded_lengths(unit: dict) -> dict:
    """A loaded unit's lengths, as :meth:`DialoguePipeline.unit_lengths` looks them up."""
    out: dict = {"utterances": len(unit["utts"])}
    for key, field in (("audio", "audio_pcm"), ("tokens", "tokens")):
        if unit["utts"] and field in unit["utts"][0]:
            out[key] = max(len(it[field]) for it in unit["utts"])
    return out


def _pack_rows(tokens: np.ndarray, utt_mask: np.ndarray, step: int):
    """The real utterances of tokens [B, U, L], packed: (``tokens_packed`` [N, L] int32,
    ``packed_slot`` [N] int32, the flat index ``b * U + u`` of each row's utterance, ``B * U``
    on padding rows). N is the real count rounded up to a multiple of ``step`` and of B (so the
    rows split evenly over the devices of a data-parallel mesh)."""
    b, u, width = tokens.shape
    slots = np.flatnonzero(utt_mask.reshape(-1)).astype(np.int32)
    multiple = step * b // math.gcd(step, b)
    n = max(multiple, -(-len(slots) // multiple) * multiple)
    packed = np.zeros((n, width), np.int32)
    packed[: len(slots)] = tokens.reshape(b * u, width)[slots]
    slot = np.full((n,), b * u, np.int32)
    slot[: len(slots)] = slots
    return packed, slot


def _fits(width: int, lens, what: str) -> int:
    """``width``, checked to hold every length (the global batch's looked-up lengths must bound
    the loaded units, or hosts would disagree on shapes)."""
    longest = max(lens, default=0)
    if longest > width:
        raise RunError(
            f"a unit has {longest} {what}, more than the global batch's padded width {width}: "
            "an augmentation changed a length the batch widths were computed from"
        )
    return int(width)
