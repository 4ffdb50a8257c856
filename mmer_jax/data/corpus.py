"""A corpus opened for one run: split sources, class names, vocabulary and the per-example op.

Shared by the utterance and dialogue pipelines (by composition): both read the same records and
turn each one into the same host example; they differ only in how they group examples into batch
rows and collate them.

A host example (one utterance, unpadded numpy) has ``label`` int32, ``weight`` float32 and, per
modality: ``audio_pcm`` [N] int16 (N <= ``max_audio_s * sample_rate``), ``frames_u8`` /
``face_u8`` [T <= max_frames, H, W, 3] uint8, ``tokens`` [L <= max_tokens] int32; with
``data.speaker_norm`` also ``audio_norm`` [2, F] float32 (the speaker's feature shift and scale).
The feature-stream modalities (:data:`~mmer_jax.data.batching.FEATURE_STREAMS`, the
pre-extracted sequences that ``cmu_mosi`` / ``cmu_mosei`` store) give ``text_feat`` /
``audio_feat`` / ``vision_feat`` [T <= max_feat_steps, D] float32 under their own names; D is fixed
per stream for the corpus. ``encoder_feat`` [T, L * D] is a pretrained encoder's layers, read
from the encoder-feature cache of ``data.encoder`` (:mod:`mmer_jax.data.encoder_cache`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from mmer_jax.data import augment, encoder_cache, sources, speaker_norm
from mmer_jax.data.batching import ENCODER_STREAM, FEATURE_STREAMS
from mmer_jax.data.pretrained_tokenizer import PretrainedVocab, load_vocab
from mmer_jax.data.text import Tokenizer
from mmer_jax.errors import CheckpointError, RunError, UsageError
from mmer_jax.schema import DataConfig


def _online_augment(data: DataConfig) -> augment.Op | None:
    """The composed ``data.augment`` op (training examples only), or None when the list is empty."""
    if not data.augment:
        return None
    try:
        return augment.compose([dict(s) for s in data.augment])
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"config key 'data.augment': {exc.args[0] if exc.args else exc}") from exc


class Corpus:
    """The records of one corpus, and how one record becomes a host example.

    Args:
      data: the run's data section.
      modalities: which of "audio", "frames", "face", "text" and the feature streams
        (:data:`~mmer_jax.data.batching.FEATURE_STREAMS`) examples carry.
      workdir: the run directory; ``vocab.json`` is read from (or written to) it, and offline
        copies are cached there when the dataset directory is read-only.
      builder: an already opened TFDS builder (tests, benchmarks); opened from ``data`` when None.

    Attributes:
      builder: the TFDS builder.
      class_names: label names, index = label id.
      sources: ``{split: source}``; the training source includes the offline copies.
      tokenizer: the :class:`~mmer_jax.data.text.Tokenizer` when "text" is a modality (a
        :class:`~mmer_jax.data.pretrained_tokenizer.PretrainedVocab` with ``data.tokenizer``),
        else None.
      feature_dims: ``{stream: D}`` of every feature-stream modality, read from the first
        training record; every example must agree.

    Raises:
      UsageError: the corpus cannot be opened, ``data.augment`` / ``data.offline_augment``
        names an unknown op or gives it bad parameters, or a feature-stream modality is a field
        the corpus does not store or is asked of dialogue units.
      RunError: a split is missing or empty, or the first training record's feature stream is
        not a [T, D] matrix.
    """

    def __init__(
        self, data: DataConfig, modalities: Sequence[str], workdir: str | None = None, builder=None
    ):
        data = sources.resolve_alias(data)  # a per-fold config alias reads its fold view
        self.data = data
        self.modalities = list(modalities)
        self.builder = builder if builder is not None else sources.open_builder(data)
        self.class_names = list(self.builder.info.features["label"].names)
        if data.class_scores and len(data.class_scores) != len(self.class_names):
            raise UsageError(f"config key 'data.class_scores': {len(data.class_scores)} scores for "
                             f"{len(self.class_names)} classes ({', '.join(self.class_names)})")
        self.sources: dict[str, Any] = sources.open_splits(self.builder, data)
        if ENCODER_STREAM in self.modalities:  # a pretrained encoder's layers, from the cache
            if data.augment or data.offline_augment:
                raise UsageError(f"modality {ENCODER_STREAM!r}: data.augment and "
                                 "data.offline_augment change the audio, not the cached encoder "
                                 "features; leave them empty")
            self.sources = {split: encoder_cache.EncoderFeatureSource(src, self._encoder_cache())
                            for split, src in self.sources.items()}
        # The fold view read (data.fold > 0), else None: protocol, fold, description, speakers.
        self.fold = sources.fold_view(self.builder, data) if data.fold else None
        self._split_speakers: dict[str, list[str]] | None | bool = False
        self._augment = _online_augment(data)
        self.tokenizer = self._tokenizer(workdir) if "text" in self.modalities else None
        self.feature_dims = self._feature_dims()
        # {speaker: [2, F] (shift, scale)}: from the stored clips of every split, before the
        # offline copies (a pitch-shifted copy is not how its speaker sounds).
        self.speaker_norm: dict[str, np.ndarray] | None = None
        if data.speaker_norm != "none" and "audio" in self.modalities:
            records = (r for split in sources.SPLITS for r in sources.iterate(self.sources[split]))
            stats = speaker_norm.speaker_statistics(records, data)
            if workdir:
                speaker_norm.save_statistics(stats, workdir)
            self.speaker_norm = speaker_norm.norm_table(stats, data.speaker_norm)
        # After the tokenizer, so copies do not change word counts.
        if data.offline_augment and "audio" in self.modalities:
            ops = augment.parse_ops(data.offline_augment)
            copies = augment.load_or_make_copies(
                self.sources["train"],
                ops,
                data.sample_rate,
                augment.cache_dir_for(self.builder, workdir),
            )
            self.sources["train"] = augment.AugmentedTrainSource(self.sources["train"], ops, copies)

    def _encoder_cache(self) -> encoder_cache.EncoderCache:
        if not self.data.encoder:
            raise UsageError(f"modality {ENCODER_STREAM!r} needs config key 'data.encoder': an "
                             "imported encoder directory (`mmer encoders import|fetch`)")
        if not hasattr(self, "_cache"):
            where = encoder_cache.cache_dir(self.builder.data_dir, self.data)
            if not encoder_cache.is_complete(where, encoder_cache.cache_key(
                    self.builder.data_dir, self.data)):
                raise RunError(f"{where}: the encoder-feature cache is not computed (`mmer "
                               "train` computes it first: mmer_jax.train.encoder_features)")
            self._cache = encoder_cache.EncoderCache(where)
        return self._cache

    def split_speakers(self) -> dict[str, list[str]] | None:
        """Sorted speaker ids per split, read from the records of this run's sources (None when
        the corpus stores no ``speaker`` field). Read once, then kept."""
        if self._split_speakers is False:
            out: dict[str, list[str]] | None = {}
            for split in sources.SPLITS:
                src = self.sources[split]
                if len(src) == 0 or "speaker" not in src[0]:
                    out = None
                    break
                out[split] = sorted({sources.as_str(ex["speaker"]) for ex in sources.iterate(src)})
            self._split_speakers = out
        return self._split_speakers  # type: ignore[return-value]

    def split_description(self) -> str:
        """What this run's splits are, derived from the builder config, the fold view and the
        speakers actually read (never a declaration), e.g. ``emodb/lso_fold3: speakers 6/2/2
        (train 03 08 09 10 15 16; validation 13 14; test 11 12)``."""
        name = f"{self.builder.name}/{self.builder.builder_config.name}" if getattr(
            self.builder, "builder_config", None) else self.builder.name
        if self.fold is not None:
            f = self.fold
            name += f", {f['protocol']} fold {f['fold']} of {f['num_folds']} ({f['description']})"
        spk = self.split_speakers()
        if spk is None:
            counts = "/".join(str(len(self.sources[s])) for s in sources.SPLITS)
            return f"{name}: examples {counts} (train/validation/test)"
        counts = "/".join(str(len(spk[s])) for s in sources.SPLITS)
        if max(len(v) for v in spk.values()) > 12:
            return f"{name}: speakers {counts} (train/validation/test)"
        lists = "; ".join(f"{s} {' '.join(spk[s])}" for s in sources.SPLITS)
        return f"{name}: speakers {counts} ({lists})"

    def _tokenizer(self, workdir: str | None) -> Tokenizer | PretrainedVocab:
        # The vocabulary comes from the training split only (or, with data.tokenizer, is a
        # pretrained encoder's), and is saved so evaluation and prediction of a run tokenize
        # identically.
        vocab_path = os.path.join(workdir, "vocab.json") if workdir else None
        if vocab_path and os.path.exists(vocab_path):
            return load_vocab(vocab_path)
        if self.data.tokenizer:
            try:
                tokenizer = PretrainedVocab.from_path(self.data.tokenizer)
            except CheckpointError as exc:
                raise UsageError(f"config key 'data.tokenizer': {exc}") from None
            if vocab_path:
                tokenizer.save(vocab_path)
            return tokenizer
        texts = (sources.as_str(ex["text"]) for ex in sources.iterate(self.sources["train"]))
        tokenizer = Tokenizer.fit(texts, min_count=self.data.min_count)
        if vocab_path:
            tokenizer.save(vocab_path)
        return tokenizer

    def _feature_dims(self) -> dict[str, int]:
        streams = [m for m in self.modalities if m in FEATURE_STREAMS]
        if not streams:
            return {}
        if self.data.unit != "utterance":  # the dialogue collate pads no feature stream
            raise UsageError(f"config key 'data.unit': the feature-stream modalities {streams} "
                             f"need data.unit='utterance', got {self.data.unit!r}")
        stored = set(self.builder.info.features.keys()) | {ENCODER_STREAM}
        missing = [m for m in streams if m not in stored]
        if missing:
            raise UsageError(
                f"model modalities name {missing[0]!r}, a field corpus {self.data.corpus!r} does "
                f"not store (its fields: {', '.join(sorted(stored))})"
            )
        first = self.sources["train"][0]
        return {m: _stream_dim(first, m, None) for m in streams}

    def feature_stream(self, record: dict[str, Any], key: str) -> np.ndarray:
        """Stream ``key`` of ``record`` as float32 [T, D], checked against :attr:`feature_dims`.

        Raises:
          RunError: the stream is not [T, D] with the corpus's D (names the record id and key).
        """
        x = np.asarray(record[key], dtype=np.float32)
        _stream_dim(record, key, self.feature_dims[key], x)
        return x

    def example(self, record: dict[str, Any], train: bool, rng: np.random.Generator) -> dict:
        """One stored record -> one host example (see the module docstring for keys and shapes).

        Training applies ``data.augment`` and takes a random window of clips longer than
        ``max_audio_s`` (or ``max_frames``, or feature streams longer than ``max_feat_steps``);
        evaluation takes the centre window and never draws from ``rng``.

        Args:
          record: a source record (``label``, ``audio`` int16, ``frames``/``face`` uint8,
            ``text`` bytes, feature streams float32 [T, D]).
          train: whether the example is for a training step.
          rng: this example's generator (see :mod:`mmer_jax.data.batching`).

        Raises:
          RunError: a feature stream's D differs from the corpus's (names the record id and key).
        """
        c = self.data
        ex = record
        if train and self._augment is not None:
            ex = self._augment(ex, rng)
        out = {"label": np.int32(ex["label"]), "weight": np.float32(1.0)}
        if c.class_scores:  # a synthetic regression target (protocol.task = "regression")
            out["score"] = np.float32(c.class_scores[int(ex["label"])])
        elif "score" in ex:  # the stored sentiment score (cmu_mosi / cmu_mosei)
            out["score"] = np.float32(ex["score"])
        if "audio" in self.modalities:
            # A random window of a long clip while training, the centre one at evaluation.
            out["audio_pcm"] = sources.window(np.asarray(ex["audio"], dtype=np.int16),
                                              int(c.max_audio_s * c.sample_rate),
                                              rng if train else None)
            if self.speaker_norm is not None:  # [2, F] float32: the speaker's shift and scale
                out["audio_norm"] = self.speaker_norm[sources.as_str(ex["speaker"])]
        for key in ("frames", "face"):
            if key in self.modalities:
                out[key + "_u8"] = sources.window(np.asarray(ex[key], dtype=np.uint8),
                                                  c.max_frames, rng if train else None)
        if "text" in self.modalities:
            out["tokens"] = self.tokenizer.encode(sources.as_str(ex["text"]), c.max_tokens)
        for key in self.feature_dims:
            out[key] = sources.window(self.feature_stream(ex, key), c.max_feat_steps,
                                      rng if train else None)
        return out


def _stream_dim(record: dict[str, Any], key: str, want: int | None, x=None) -> int:
    """D of ``record[key]`` ([T, D]); raises RunError unless it is a matrix with D == ``want``
    (any D when ``want`` is None)."""
    shape = np.shape(record[key] if x is None else x)
    if len(shape) != 2 or (want is not None and shape[1] != want):
        rid = sources.as_str(record["id"]) if "id" in record else "?"
        expected = "[T, D]" if want is None else f"[T, {want}] as in the first training record"
        raise RunError(f"record {rid!r}: feature stream {key!r} has shape {list(shape)}, "
                       f"expected {expected}")
    return int(shape[1])
