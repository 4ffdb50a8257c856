"""Utterance-level pipeline: one batch row per stored example (``data.unit = "utterance"``).

Host batch (numpy; B = global batch // hosts), with T padded to a multiple of ``audio_bucket_s``
seconds capped by ``max_audio_s``, L to a multiple of ``token_bucket`` capped by ``max_tokens``,
and a feature stream's S to a multiple of ``ceil(max_feat_steps / 4)`` capped by ``max_feat_steps``
(rounded up to that multiple; :func:`~mmer_jax.data.batching.feature_bucket`):

| key | shape | dtype |
|---|---|---|
| ``label`` / ``weight`` | [B] | int32 / float32 (0 on padding rows) |
| ``score`` | [B] | float32, where the corpus stores one or ``data.class_scores`` is set |
| ``audio_pcm`` / ``audio_len`` | [B, T] / [B] | int16 PCM / int32 samples |
| ``audio_norm`` | [B, 2, F] | float32 speaker shift and scale (``data.speaker_norm`` only) |
| ``frames_u8`` / ``frames_len`` (``face_*``) | [B, max_frames, H, W, 3] / [B] | uint8 / int32 |
| ``tokens`` | [B, L] | int32 (0 = padding) |
| ``text_feat`` / ``audio_feat`` / ``vision_feat`` | [B, S, D] | float32, 0 after each length |
| ``text_feat_len`` / ``audio_feat_len`` / ``vision_feat_len`` | [B] | int32 valid steps |

Training batches always drop the last partial batch; evaluation pads it with weight-0 copies of
example 0. Features are computed on the device (:func:`mmer_jax.data.device.make_feature_step`).
"""

from __future__ import annotations

import numpy as np

from mmer_jax.data.base import UnitPipeline
from mmer_jax.data.batching import FEATURE_STREAMS, bucket, feature_bucket, pad_steps
from mmer_jax.errors import RunError


class Pipeline(UnitPipeline):
    """A batch row is one utterance (see the module docstring for the batch layout)."""

    def num_examples(self, split: str) -> int:
        """Stored examples of ``split`` (training: originals plus offline copies)."""
        return len(self.sources[split])

    def load_unit(self, split, index, train, rng) -> dict:
        """Example ``index`` of ``split`` as a host example (see ``Corpus.example``)."""
        return self.corpus.example(self.sources[split][index], train, rng)

    def padding_unit(self, split, train, rng) -> dict:
        """A copy of the split's first example with weight 0 (fills the last batch)."""
        # A real example keeps every array's trailing shape; weight 0 removes it from the metrics.
        ex = self.load_unit(split, 0, train, rng)
        ex["weight"] = np.float32(0.0)
        return ex

    def unit_lengths(self, split, index) -> dict:
        """Example ``index``'s (``-1``: the padding copy of example 0) audio/token lengths and
        feature-stream steps (at most ``max_feat_steps``)."""
        record = self.sources[split][max(int(index), 0)]
        out = self.record_lengths(record)
        for key in self.corpus.feature_dims:
            out[key] = min(len(record[key]), self.config.max_feat_steps)
        return out

    def widths(self, lengths: list[dict]) -> dict:
        """``audio`` samples, ``tokens`` and feature-stream steps of a batch whose examples have
        ``lengths``."""
        c = self.config
        out: dict = {}
        if "audio" in lengths[0]:
            step = int(c.audio_bucket_s * c.sample_rate)
            cap = bucket(int(c.max_audio_s * c.sample_rate), step, 1 << 40)
            out["audio"] = bucket(max(x["audio"] for x in lengths), step, cap)
        if "tokens" in lengths[0]:
            longest = max(max(x["tokens"] for x in lengths), 1)
            out["tokens"] = bucket(longest, c.token_bucket, c.max_tokens)
        step, cap = feature_bucket(c.max_feat_steps)
        for key in FEATURE_STREAMS:
            if key in lengths[0]:
                out[key] = bucket(max(x[key] for x in lengths), step, cap)
        return out

    def collate(self, items: list[dict], widths: dict | None = None) -> dict[str, np.ndarray]:
        """Host examples -> a host batch (module docstring), padded to bucketed lengths: ``widths``
        (those of the global batch, :meth:`batch_widths`) or, when None, those of ``items``."""
        c = self.config
        b = len(items)
        if widths is None:
            widths = self.widths([
                {k: len(it[key]) for k, key in (("audio", "audio_pcm"), ("tokens", "tokens"),
                                                *((m, m) for m in FEATURE_STREAMS))
                 if key in it}
                for it in items
            ])
        batch = {
            "label": np.stack([it["label"] for it in items]),
            "weight": np.stack([it["weight"] for it in items]),
        }
        if "score" in items[0]:  # float32 [B] sentiment scores (regression target)
            batch["score"] = np.stack([it["score"] for it in items])
        if "audio_pcm" in items[0]:
            lens = np.array([len(it["audio_pcm"]) for it in items], np.int32)
            width = _fits(widths["audio"], lens, "audio samples")
            pcm = np.zeros((b, width), np.int16)
            for i, it in enumerate(items):
                pcm[i, : lens[i]] = it["audio_pcm"]
            batch["audio_pcm"], batch["audio_len"] = pcm, lens
            if "audio_norm" in items[0]:
                batch["audio_norm"] = np.stack([it["audio_norm"] for it in items])
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
            width = _fits(widths["tokens"], lens, "tokens")
            tok = np.zeros((b, width), np.int32)
            for i, it in enumerate(items):
                tok[i, : lens[i]] = it["tokens"]
            batch["tokens"] = tok
        for key in FEATURE_STREAMS:
            if key in items[0]:
                seqs = [it[key] for it in items]
                width = _fits(widths[key], [len(x) for x in seqs], f"{key} steps")
                batch[key], batch[key + "_len"] = pad_steps(seqs, width, seqs[0].shape[1])
        return batch


def _fits(width: int, lens, what: str) -> int:
    """``width``, checked to hold every length (the global batch's looked-up lengths must bound
    the loaded examples, or hosts would disagree on shapes)."""
    longest = int(np.max(lens)) if len(lens) else 0
    if longest > width:
        raise RunError(
            f"an example has {longest} {what}, more than the global batch's padded width {width}: "
            "an augmentation changed a length the batch widths were computed from"
        )
    return int(width)
