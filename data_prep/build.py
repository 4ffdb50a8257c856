"""Build a corpus with TFDS into array_record files, without TensorFlow.

``tfds build`` imports TensorFlow; this wrapper calls ``download_and_prepare`` directly with
``file_format="array_record"`` so a TF-free install can build every corpus.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any

from data_prep import CORPORA
from data_prep.errors import BuildError  # noqa: F401  (raised here; imported from here)


def builder_class(name: str) -> type:
    """The TFDS builder class registered in ``data_prep.CORPORA`` under ``name``.

    Raises:
      BuildError: ``name`` is not a registered corpus (the message lists the known ones), or its
        module cannot be imported.
    """
    if name not in CORPORA:
        known = ", ".join(CORPORA.names())
        raise BuildError(f"unknown corpus {name!r}; known corpora: {known}")
    try:
        return CORPORA.get(name)
    except ModuleNotFoundError as exc:
        raise BuildError(f"corpus {name!r} is registered but its module is missing: {exc}") from exc


def get_builder(name: str, config: str | None = None, data_dir: str | None = None, **kwargs: Any):
    """A TFDS builder instance for ``name``/``config`` rooted at ``data_dir`` (array_record files).

    Raises:
      BuildError: an unknown corpus or config (the message lists the known ones).
    """
    cls = builder_class(name)
    kw: dict[str, Any] = dict(kwargs)
    from_file = getattr(cls, "config_from_file", None)
    if config and from_file is not None and config.endswith(".json"):
        try:  # a user's corpus spec (e.g. the ``folder`` builder)
            kw["config"] = from_file(os.path.expanduser(config))
        except ValueError as exc:
            raise BuildError(f"corpus {name!r}: {exc}") from exc
    elif config:
        from data_prep.folds import alias_names, resolve_alias

        alias = resolve_alias(name, config)  # a per-fold alias reads its base config's build
        config = alias[0] if alias else config
        names = [c.name for c in getattr(cls, "BUILDER_CONFIGS", [])]
        names += alias_names(name)
        if names and config not in names:
            raise BuildError(
                f"corpus {name!r} has no config {config!r}; configs: {', '.join(names)}"
            )
        kw["config"] = config
    if data_dir:
        kw["data_dir"] = os.path.expanduser(data_dir)
    kw.setdefault("file_format", "array_record")
    return cls(**kw)


def manual_files(builder, dir_name: str = "--manual_dir") -> str:
    """What ``builder``'s manual directory must hold, in one line (its
    ``MANUAL_DOWNLOAD_INSTRUCTIONS`` with the line breaks folded); "" for a generated corpus.

    For errors about a missing corpus: they name the files to fetch (e.g. MulT's
    ``mosi_data.pkl``), not only the folder that lacks them. ``dir_name`` replaces the build
    flag's name, so a config error can say ``data.manual_dir``.
    """
    text = getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None) or ""
    return " ".join(text.split()).replace("--manual_dir", dir_name)


def build(
    name: str,
    config: str | None = None,
    data_dir: str | None = None,
    manual_dir: str | None = None,
    force: bool = False,
    num_workers: int = 1,
):
    """Prepares ``name``/``config`` (idempotent) and returns the builder.

    Args:
      name: a name in ``data_prep.CORPORA``.
      config: builder config name (fold / variant); the builder's default when None.
      data_dir: where TFDS writes the prepared dataset (TFDS default when None).
      manual_dir: the corpus as distributed, for corpora that cannot be downloaded.
      force: rebuild even if the prepared files exist: into a temporary directory, swapped in
        on success (a failed rebuild leaves the previous build).
      num_workers: worker processes for decoding, resampling and face detection (0: one per CPU
        core). The prepared files are byte-identical for any count (results are written in the
        files' order; see :mod:`data_prep._common.parallel`).

    Raises:
      BuildError: an unknown corpus or config, ``manual_dir`` is not a directory, a negative
        ``num_workers``, or an existing build that ``manual_dir`` no longer matches (names what
        changed; ``force`` rebuilds).

    Two calls for one corpus/config at once: the second waits for the first and reuses its
    build. What an interrupted build left is removed first (:func:`data_prep.prepared.clean_stale`).
    """
    from data_prep._common import parallel

    try:
        workers = parallel.resolve_workers(num_workers)
    except ValueError as exc:
        raise BuildError(str(exc)) from exc
    builder = _with_workers(get_builder(name, config, data_dir), workers)
    if manual_dir is not None and not os.path.isdir(os.path.expanduser(manual_dir)):
        raise BuildError(f"--manual_dir {manual_dir!r} is not a directory")
    from data_prep import prepared as prepared_lib

    cfg_name = builder.builder_config.name if builder.builder_config else "default"
    root = os.fspath(builder._data_dir_root)
    with prepared_lib.build_lock(root, builder.name, cfg_name, f"{name}/{cfg_name}") as waited:
        removed = prepared_lib.clean_stale(root, builder.name, cfg_name, str(builder.version))
        if removed:
            print(f"[data] removed {len(removed)} partial build(s) of {name}/{cfg_name} left by "
                  f"an interrupted build: {', '.join(removed[:3])}", file=sys.stderr, flush=True)
        if waited or removed:  # the other build (or a restored one) may be there now
            builder = _with_workers(get_builder(name, config, data_dir), workers)
        return _build_locked(builder, name, config, manual_dir, force, workers)


def _build_locked(builder, name: str, config: str | None, manual_dir: str | None, force: bool,
                  workers: int):
    """:func:`build`'s work, holding the corpus/config's build lock."""
    import tensorflow_datasets as tfds

    from data_prep._common import parallel

    download_config = tfds.download.DownloadConfig(
        manual_dir=os.path.expanduser(manual_dir) if manual_dir else None,
        download_mode=(
            tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS
            if force
            else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS
        ),
    )
    if force:
        download_config.download_mode = tfds.download.GenerateMode.FORCE_REDOWNLOAD
    prepared = os.path.isfile(os.path.join(os.fspath(builder.data_dir), "dataset_info.json"))
    if not prepared or force:
        print(_announce(name, builder, manual_dir), file=sys.stderr, flush=True)
    _quiet(builder, tfds)
    try:
        with _SkipSummary() as skips:
            builder = _prepare(builder, name, config, download_config, manual_dir, force,
                               workers)
    finally:
        parallel.shutdown()  # the workers end with the build
    skips.summarize(builder)
    _log_report(builder)
    return builder


def _with_workers(builder, num_workers: int):
    """Sets the worker count the builder's per-file work uses (``ReportingMixin.num_workers``)."""
    builder.num_workers = num_workers
    return builder


def _prepare(builder, name: str, config: str | None, download_config, manual_dir: str | None,
             force: bool, num_workers: int = 1):
    """Builds, rebuilds or reuses ``builder``'s dataset; returns the builder over the result.

    ``force`` builds into a temporary directory and swaps it in on success, so a failed rebuild
    leaves the previous build as it was. An existing build is reused only when its recipe (config
    fields, version, manifest contents) and its ``manual_dir`` listing match: another recipe
    rebuilds the same way (or raises without a ``manual_dir`` to rebuild from), another listing
    raises. See :mod:`data_prep.prepared`.
    """
    import tensorflow_datasets as tfds

    from data_prep import prepared

    def run(b) -> None:
        _quiet(b, tfds)
        made = prepared.recipe(b, manual_dir)
        # Written by ReportingMixin inside TFDS's temporary directory (appears with the data).
        b.write_build_source = lambda d: prepared.write_source(d, manual_dir, made)
        b.download_and_prepare(download_config=download_config, file_format="array_record")
        if not os.path.isfile(os.path.join(os.fspath(b.data_dir), prepared.SOURCE_NAME)):
            prepared.write_source(b.data_dir, manual_dir, made)

    def swapped():
        # Each rebuild starts in an empty directory, so TFDS has nothing to delete or overwrite.
        download_config.download_mode = tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS
        return prepared.rebuild_swapped(
            lambda root: _with_workers(get_builder(name, config, root), num_workers),
            builder._data_dir_root, run, tag=prepared.rebuild_tag(builder.name, label))

    label = builder.builder_config.name if builder.builder_config else "default"
    if force:
        return swapped()
    if os.path.isfile(os.path.join(os.fspath(builder.data_dir), "dataset_info.json")):
        shown = f"{name}/{label}"
        changes = prepared.recipe_changes(builder.data_dir, prepared.recipe(builder, manual_dir))
        if changes:
            what = f"the build of {shown} in {builder.data_dir} was made from another recipe " \
                   f"({'; '.join(changes)})"
            if not manual_dir and manual_files(builder):
                raise BuildError(f"{what}; pass its manual_dir to rebuild it")
            print(f"[data] {what}: rebuilding", file=sys.stderr, flush=True)
            return swapped()
        msg, changed = prepared.reuse_notice(builder.data_dir, shown, manual_dir)
        if changed:
            raise BuildError(msg)
        print(f"[data] {msg}", file=sys.stderr, flush=True)
        builder.reused = True  # what `mmer data build` says it did
        return builder
    run(builder)
    return builder


def _announce(name: str, builder, manual_dir: str | None) -> str:
    """The one line printed before a build: what, from where, into where."""
    config = builder.builder_config.name if builder.builder_config else "default"
    src = f" from {os.path.expanduser(manual_dir)}" if manual_dir else " (generated)"
    return f"[data] building {name}/{config}{src} into {builder.data_dir}"


def _on_terminal() -> bool:
    """Progress bars on a terminal only; ``MMER_PROGRESS=1``/``0`` forces them on/off."""
    from data_prep._common.parallel import show_progress

    return show_progress()


def _quiet(builder, tfds) -> None:
    """Drops TFDS's "Downloading and preparing dataset Unknown size ..." and "downloaded and
    prepared" banners (nothing is downloaded: corpora are read from ``manual_dir`` or generated),
    and its progress bars when stderr is not a terminal (log files get no bar updates)."""
    for attr in ("_log_download_bytes", "_log_download_done"):
        if hasattr(builder, attr):
            setattr(builder, attr, lambda: None)
    if not _on_terminal():
        tfds.disable_progress_bar()


class _SkipSummary(logging.Filter):
    """While a build runs, counts the builders' per-file "skipping ..." warnings (logger
    ``data_prep``) instead of printing each; :meth:`summarize` prints one line. The details stay
    in ``build_report.json``. ``MMER_DEBUG=1`` shows every warning."""

    def __init__(self):
        super().__init__()
        self.count = 0
        self.first: str | None = None
        self._logger = logging.getLogger("data_prep")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING and str(record.msg).startswith("skipping"):
            self.count += 1
            if self.first is None:
                self.first = record.getMessage()
            return bool(os.environ.get("MMER_DEBUG"))
        return True

    def __enter__(self) -> "_SkipSummary":
        self._logger.addFilter(self)
        return self

    def __exit__(self, *exc) -> None:
        self._logger.removeFilter(self)
        if exc[0] is not None and self.count:
            print(f"[data] {self.count} files skipped before the build failed "
                  f"(first: {self.first})", file=sys.stderr, flush=True)

    def summarize(self, builder) -> None:
        if self.count:
            path = os.path.join(os.fspath(builder.data_dir), "build_report.json")
            print(f"[data] {self.count} files skipped (first: {self.first}); every file and "
                  f"reason in {path}", file=sys.stderr, flush=True)


def _log_report(builder) -> None:
    """Logs the split counts and skips from the builder's ``build_report.json``, when it has one.

    Builders using ``data_prep._common.report.ReportingMixin`` write the report next to the data.
    """
    path = os.path.join(os.fspath(builder.data_dir), "build_report.json")
    if not os.path.isfile(path):
        return
    with open(path) as f:
        rep = json.load(f)
    counts = ", ".join(f"{k}={v['count']}" for k, v in rep.get("splits", {}).items())
    logging.getLogger("data_prep").info(
        "%s/%s: %s; %d files skipped (reasons in %s)",
        rep.get("dataset"),
        rep.get("config"),
        counts,
        rep.get("skipped_total", 0),
        path,
    )
