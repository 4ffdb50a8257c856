"""Where records come from: the prepared TFDS builder and its per-split random-access sources.

The bottom of the data stack: it knows the corpus registry (``data_prep``) and nothing about
batching, examples or augmentation. A *source* is anything with ``len()`` and ``[i] -> dict`` of
decoded record fields (int16 audio, uint8 frames, text bytes, ids), as
``builder.as_data_source(split)`` returns.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from typing import Any

from mmer_jax.errors import RunError, UsageError
from mmer_jax.schema import SPLITS, DataConfig

__all__ = [
    "SPLITS",
    "CachedSource",
    "SubsetSource",
    "as_str",
    "computed_protocols",
    "fold_view",
    "iterate",
    "open_builder",
    "open_splits",
    "resolve_alias",
]


def resolve_alias(data: DataConfig) -> DataConfig:
    """``data`` with a per-fold builder config alias (``ravdess``/``speech_fold3``, see
    :data:`data_prep.folds.FOLD_ALIASES`) replaced by the view it names: the base config
    (``speech``), ``fold`` and ``fold_protocol``. Other configs pass through unchanged.

    Raises:
      UsageError: ``data.fold`` / ``data.fold_protocol`` name another fold than the alias.
    """
    from data_prep.folds import resolve_alias as alias_of

    alias = alias_of(data.corpus, data.config)
    if alias is None:
        return data
    base, protocol, fold = alias
    if data.fold and (data.fold, data.fold_protocol or protocol) != (fold, protocol):
        raise UsageError(
            f"config key 'data.config': {data.config!r} is fold {fold} of protocol {protocol!r} "
            f"over {data.corpus}/{base}, but data.fold={data.fold} "
            f"(data.fold_protocol={data.fold_protocol!r}) names another; set data.config={base!r} "
            "and choose the fold with data.fold / data.fold_protocol"
        )
    return dataclasses.replace(data, config=base, fold=fold, fold_protocol=protocol)


def open_builder(data: DataConfig):
    """The prepared TFDS builder of ``data.corpus`` / ``data.config``, built first when allowed.

    Args:
      data: the run's data section; ``corpus``, ``config``, ``data_dir``, ``manual_dir`` and
        ``build_if_missing`` are read.

    Returns:
      A ``tfds.core.DatasetBuilder`` whose files exist under ``builder.data_dir``.

    Raises:
      UsageError: the corpus or config is unknown, its manual files are missing, or it is not
        built and ``data.build_if_missing`` is false (the message says how to build it).
    """
    from data_prep import build as build_lib  # lazy: TFDS is imported only when data is opened

    data = resolve_alias(data)
    data_dir = os.path.expanduser(data.data_dir) if data.data_dir else None
    config = data.config or None  # "" -> the builder's default config
    try:
        if data.build_if_missing:
            return build_lib.build(data.corpus, config, data_dir, data.manual_dir or None,
                                   num_workers=data.build_workers)
        builder = build_lib.get_builder(data.corpus, config, data_dir)
    except build_lib.BuildError as exc:
        raise UsageError(f"data.corpus: {exc}") from exc
    except AssertionError as exc:  # TFDS reports a missing manual_dir this way
        raise UsageError(f"data.corpus {data.corpus!r}: {exc}") from exc
    if not os.path.isdir(builder.data_dir):
        raise UsageError(
            f"corpus {data.corpus!r} is not built in {data_dir!r}; run "
            f"`mmer data build {data.corpus} --data_dir {data_dir}` first"
        )
    return builder


def open_splits(builder, data: DataConfig) -> dict[str, Any]:
    """The train/validation/test sources of ``builder``, each wrapped in a :class:`CachedSource`
    when ``data.cache`` is true.

    With ``data.fold > 0`` the sources are a view: every stored example of the build (all its
    splits) re-split by fold ``data.fold`` of ``data.fold_protocol`` (see :func:`fold_view`).

    Raises:
      UsageError: ``data.fold`` names a fold or protocol the build does not define.
      RunError: a split is missing or empty.
    """
    data = resolve_alias(data)
    if data.fold:
        return _fold_sources(builder, data)
    sources = {}
    for split in SPLITS:
        if split not in builder.info.splits:
            from data_prep import folds

            protocols = folds.protocols_of(builder.data_dir)
            hint = (
                "; its build is read through fold views: set data.fold=1..K "
                f"(protocols: {', '.join(f'{n} K<={k}' for n, k in protocols.items())})"
                if protocols
                else ""
            )
            raise RunError(f"corpus {data.corpus!r} has no {split!r} split{hint}")
        src = builder.as_data_source(split=split)
        if len(src) == 0:
            raise RunError(
                f"split {split!r} of corpus {data.corpus!r} (config {data.config!r}) is empty"
            )
        sources[split] = CachedSource(src) if data.cache else src
    return sources


def fold_view(builder, data: DataConfig) -> dict[str, Any]:
    """Fold ``data.fold`` of ``data.fold_protocol`` as stored with the build (``folds.json``):
    ``{"protocol", "fold", "num_folds", "description", "speaker_independent", "ids",
    "speakers"}`` (see :func:`data_prep.folds.fold_view`). With ``data.fold_protocol="emobox"``
    and ``data.emobox_dir``, EmoBox's folds are read from its files there, over the build.

    Raises:
      UsageError: the build defines no such protocol or fold (the message lists what it has), or
        EmoBox's files are missing or do not match the build (the message names the ids).
    """
    from data_prep import folds

    data = resolve_alias(data)
    stored_folds = os.path.join(os.fspath(builder.data_dir), folds.FOLDS_NAME)
    built = os.stat(stored_folds).st_mtime_ns if os.path.exists(stored_folds) else 0
    key = (os.fspath(builder.data_dir), built, data.fold, data.fold_protocol, data.emobox_dir)
    if key in _VIEWS:
        return _VIEWS[key]
    try:
        view = folds.fold_view(builder.data_dir, data.fold, data.fold_protocol,
                               computed_protocols(builder, data))
    except folds.FoldError as exc:
        key_name = "data.emobox_dir" if _from_files(data) else "data.fold"
        raise UsageError(f"config key {key_name!r}: {data.corpus}/{data.config}: {exc}") from exc
    _VIEWS[key] = view
    return view


def _from_files(data: DataConfig) -> bool:
    return data.fold_protocol == "emobox" and bool(data.emobox_dir)


def computed_protocols(builder, data: DataConfig) -> dict[str, dict[str, Any]]:
    """Fold protocols made when reading, not stored with the build: ``{"emobox": ...}`` read
    from EmoBox's files in ``data.emobox_dir`` when ``data.fold_protocol`` is ``"emobox"``
    (:func:`data_prep.folds.emobox_protocol`), else ``{}``.

    Raises:
      data_prep.folds.FoldError: EmoBox has no folds of the corpus or its files are unreadable.
    """
    from data_prep import folds

    if not _from_files(data):
        return {}
    stored = folds.stored_examples(builder.data_dir)
    if stored is None:  # a build that does not list its examples (IEMOCAP, MELD): read them
        stored = _stored_examples(builder)
    return {"emobox": folds.emobox_protocol(builder.data_dir, data.emobox_dir, data.corpus,
                                            stored)}


# Fold views already read in this process (a view is read for the sources and for the report).
_VIEWS: dict[tuple, dict[str, Any]] = {}


def _stored_examples(builder) -> dict[str, str]:
    """Stored id -> speaker ("" when not stored) of every split of ``builder``'s build."""
    out = {}
    for split in sorted(builder.info.splits.keys()):
        for rec in iterate(builder.as_data_source(split=split)):
            out[as_str(rec["id"])] = as_str(rec["speaker"]) if "speaker" in rec else ""
    return out


def _fold_sources(builder, data: DataConfig) -> dict[str, Any]:
    from data_prep import folds

    view = fold_view(builder, data)
    where = {i: s for s, ids in view["ids"].items() for i in ids}
    index: dict[str, list] = {s: [] for s in SPLITS}
    # The build's splits in a fixed order; within each, stored (index) order.
    for stored in sorted(builder.info.splits.keys()):
        src = builder.as_data_source(split=stored)
        src = CachedSource(src) if data.cache else src
        for i, example_id in enumerate(folds.ids_in(iterate(src))):
            split = where.get(example_id)
            if split is not None:
                index[split].append((src, i))
    out = {}
    for split in SPLITS:
        if not index[split]:
            raise RunError(
                f"fold {data.fold} ({view['protocol']}) of corpus {data.corpus!r} (config "
                f"{data.config!r}) has no {split!r} example in the build"
            )
        out[split] = SubsetSource(index[split])
    return out


class SubsetSource:
    """Records picked from other sources: ``entries[i] = (source, index)``."""

    def __init__(self, entries: list):
        self._entries = list(entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, i: int):
        src, j = self._entries[i]
        return src[j]


class CachedSource:
    """Decodes each record once and keeps it; small corpora then read at memory speed.

    Args:
      source: any random-access source (``len()`` and ``[i] -> record``).
    """

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


def iterate(source) -> Iterator[Any]:
    """Every record of ``source`` in index order."""
    for i in range(len(source)):
        yield source[i]


def window(x, width: int, rng=None):
    """At most ``width`` items of ``x`` along its first axis: all of a shorter ``x``, else a window
    at a random start drawn from ``rng`` (a numpy Generator; training) or the centre one (None)."""
    if len(x) <= width:
        return x
    start = rng.integers(0, len(x) - width + 1) if rng is not None else (len(x) - width) // 2
    return x[start : start + width]


def as_str(x) -> str:
    """A stored text field (bytes in TFDS records, or str) as str; bad UTF-8 is replaced."""
    return x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x)
