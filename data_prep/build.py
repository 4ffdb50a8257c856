"""Build a corpus with TFDS into array_record files, without TensorFlow.

``tfds build`` imports TensorFlow; this wrapper calls ``download_and_prepare`` directly with
``file_format="array_record"`` so a TF-free install can build every corpus.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from data_prep import CORPORA


class BuildError(RuntimeError):
    """A corpus could not be built; the message names the corpus, file or directory at fault."""


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
    if config:
        names = [c.name for c in getattr(cls, "BUILDER_CONFIGS", [])]
        if names and config not in names:
            raise BuildError(
                f"corpus {name!r} has no config {config!r}; configs: {', '.join(names)}"
            )
        kw["config"] = config
    if data_dir:
        kw["data_dir"] = os.path.expanduser(data_dir)
    kw.setdefault("file_format", "array_record")
    return cls(**kw)


def build(
    name: str,
    config: str | None = None,
    data_dir: str | None = None,
    manual_dir: str | None = None,
    force: bool = False,
):
    """Prepares ``name``/``config`` (idempotent) and returns the builder.

    Args:
      name: a name in ``data_prep.CORPORA``.
      config: builder config name (fold / variant); the builder's default when None.
      data_dir: where TFDS writes the prepared dataset (TFDS default when None).
      manual_dir: the corpus as distributed, for corpora that cannot be downloaded.
      force: rebuild even if the prepared files exist.

    Raises:
      BuildError: an unknown corpus or config, or ``manual_dir`` is not a directory.
    """
    import tensorflow_datasets as tfds

    builder = get_builder(name, config, data_dir)
    if manual_dir is not None and not os.path.isdir(os.path.expanduser(manual_dir)):
        raise BuildError(f"--manual_dir {manual_dir!r} is not a directory")
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
    builder.download_and_prepare(download_config=download_config, file_format="array_record")
    _log_report(builder)
    return builder


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
