"""What every pipeline shares: the opened corpus, its public surface and the batching call.

A pipeline is a :class:`~mmer_jax.data.corpus.Corpus` plus a way to group its examples into
*units* (batch rows) and to collate units into a host batch. Subclasses say only that
(``num_examples``, ``load_unit``, ``padding_unit``, ``collate``); the order, padding, host shard
and read-ahead are :func:`mmer_jax.data.batching.host_batches` for all of them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from mmer_jax.data import batching
from mmer_jax.data.corpus import Corpus
from mmer_jax.data.sources import as_str
from mmer_jax.schema import DataConfig, from_section


def data_config(data: Any) -> DataConfig:
    """``data`` as a :class:`~mmer_jax.schema.DataConfig`: returned as is, or built strictly from a
    ConfigDict / mapping.

    Raises:
      UsageError: an unknown key or a bad value; the message names ``data.<key>``.
    """
    return from_section(DataConfig, data, "data")


class UnitPipeline:
    """Everything the trainer needs from a corpus: class names, vocabulary, batch iterators.

    Args:
      data: the run's data section (a ``DataConfig``, or a ConfigDict / mapping of it).
      modalities: which of "audio", "frames", "face", "text" and the pre-extracted streams
        "text_feat", "audio_feat", "vision_feat" (``batching.FEATURE_STREAMS``) batches carry.
      seed: the run's seed; with the epoch it fixes the order and every example's rng.
      workdir: the run directory (vocabulary, augmented-copy cache fallback).
      builder: an already opened TFDS builder; opened from ``data`` when None.

    Raises:
      UsageError: a bad data section, or a corpus that cannot be opened.
      RunError: a split is missing or empty.
    """

    unit = "utterance"  # the value of data.unit this pipeline implements
    what = "examples"  # how error messages call the units
    drop_remainder = True  # training drops the last partial batch

    def __init__(
        self,
        data: Any,
        modalities: Sequence[str],
        seed: int,
        workdir: str | None = None,
        builder=None,
    ):
        self.config = data_config(data)
        self.modalities = list(modalities)
        self.seed = seed
        self.corpus = Corpus(self.config, self.modalities, workdir, builder)
        self._lengths: dict[str, dict[int, dict[str, Any]]] = {}  # {split: {index: lengths}}

    # -- the corpus ------------------------------------------------------------------------
    @property
    def builder(self):
        """The prepared TFDS builder."""
        return self.corpus.builder

    @property
    def sources(self) -> dict[str, Any]:
        """``{split: source}`` of stored records (training includes offline copies)."""
        return self.corpus.sources

    @property
    def class_names(self) -> list[str]:
        """Label names; index = label id."""
        return self.corpus.class_names

    @property
    def split_description(self) -> str:
        """The run's splits as read (corpus/config, fold view, speakers per split); see
        :meth:`~mmer_jax.data.corpus.Corpus.split_description`."""
        return self.corpus.split_description()

    @property
    def split_speakers(self) -> dict[str, list[str]] | None:
        """Sorted speaker ids per split as read; None when the corpus stores no speaker."""
        return self.corpus.split_speakers()

    @property
    def fold(self) -> dict | None:
        """The fold view read (``data.fold > 0``): protocol, fold, num_folds, description,
        speaker_independent, speakers; None for the build's own splits."""
        return self.corpus.fold

    @property
    def tokenizer(self):
        """The run's tokenizer when "text" is a modality, else None."""
        return self.corpus.tokenizer

    @property
    def num_classes(self) -> int:
        """Number of emotion classes of the corpus (``len(class_names)``)."""
        return len(self.class_names)

    @property
    def vocab_size(self) -> int:
        """Token ids are in ``[0, vocab_size)``; 0 without a text modality."""
        return len(self.tokenizer) if self.tokenizer else 0

    # -- units (what subclasses define) -----------------------------------------------------
    def num_examples(self, split: str) -> int:
        """Units (batch rows) in ``split``."""
        raise NotImplementedError

    def load_unit(self, split: str, index: int, train: bool, rng: np.random.Generator) -> Any:
        """Unit ``index`` of ``split``, read and turned into host example(s)."""
        raise NotImplementedError

    def padding_unit(self, split: str, train: bool, rng: np.random.Generator) -> Any:
        """A unit that only fills the last batch: every weight 0."""
        raise NotImplementedError

    def collate(self, units: list, widths: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
        """Units -> one host batch of padded, bucketed numpy arrays.

        ``widths`` (:meth:`widths`) fixes the padded widths; None derives them from ``units``.
        """
        raise NotImplementedError

    def unit_lengths(self, split: str, index: int) -> dict[str, Any]:
        """The lengths that decide unit ``index``'s padded widths (read from its record(s), not
        from an example: no augmentation, no random window); ``index = -1`` is a padding unit."""
        raise NotImplementedError

    def widths(self, lengths: list[dict[str, Any]]) -> dict[str, Any]:
        """The bucketed padded widths of a batch whose units have ``lengths``."""
        raise NotImplementedError

    def batch_widths(self, split: str, indices: list[int]) -> dict[str, Any]:
        """The padded widths of the *global* batch ``indices`` (-1 = padding unit): what every
        host pads its own slice to. Unit lengths are looked up once per split and kept."""
        cache = self._lengths.setdefault(split, {})
        lengths = []
        for i in indices:
            i = int(i)
            if i not in cache:
                cache[i] = self.unit_lengths(split, i)
            lengths.append(cache[i])
        return self.widths(lengths)

    def record_lengths(self, record: dict[str, Any]) -> dict[str, Any]:
        """One stored record's lengths as :meth:`~mmer_jax.data.corpus.Corpus.example` will cut
        them: ``audio`` samples (at most ``max_audio_s``), ``tokens`` (at most ``max_tokens``),
        and the trailing shape of ``frames`` / ``face``."""
        c = self.config
        out: dict[str, Any] = {}
        if "audio" in self.modalities:
            out["audio"] = min(len(record["audio"]), int(c.max_audio_s * c.sample_rate))
        if "text" in self.modalities:
            out["tokens"] = len(self.tokenizer.encode(as_str(record["text"]), c.max_tokens))
        for key in ("frames", "face"):
            if key in self.modalities:
                out[key + "_u8"] = tuple(np.asarray(record[key]).shape[1:])
        return out

    # -- batches ---------------------------------------------------------------------------
    def steps_per_epoch(self, batch_size: int) -> int:
        """Training batches per epoch for a global ``batch_size``."""
        n = self.num_examples("train")
        return n // batch_size if self.drop_remainder else math.ceil(n / batch_size)

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

        Training batches are shuffled per epoch (and drop the remainder when
        :attr:`drop_remainder`); evaluation batches cover every unit once, in index order, the
        last one padded with weight-0 units.

        Args:
          split: "train", "validation" or "test".
          global_batch: units per global batch, across every host.
          epoch: the epoch (with the seed, fixes the order and the per-example rngs).
          train: training batches (shuffled, augmented, random windows).
          process_index, process_count: this host and the number of hosts.
          skip_batches: host batches to skip (resuming mid-epoch).

        Yields:
          Host batches of ``global_batch // process_count`` rows (see :meth:`collate`).

        Raises:
          UsageError: ``global_batch`` does not divide by ``process_count``.
          RunError: training drops the remainder and the split has fewer units than one batch.
        """
        yield from batching.host_batches(
            self.num_examples(split),
            global_batch,
            load=lambda i, rng: self.load_unit(split, i, train, rng),
            pad=lambda rng: self.padding_unit(split, train, rng),
            collate=self.collate,
            seed=self.seed,
            epoch=epoch,
            train=train,
            drop_remainder=self.drop_remainder,
            process_index=process_index,
            process_count=process_count,
            skip_batches=skip_batches,
            threads=self.config.read_threads,
            what=self.what,
            split=split,
            batch_widths=lambda indices: self.batch_widths(split, indices),
        )
