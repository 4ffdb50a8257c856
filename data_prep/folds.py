"""k-fold protocols as views over one build.

A build decodes and stores a corpus once. Its fold protocols (leave-speakers-out, leave-one-
speaker-out, EmoBox's folds, ...) are split definitions stored beside the data as ``folds.json``
and applied when the build is read (``data.fold`` / ``data.fold_protocol`` in a run config), so
``k`` folds cost one build, not ``k``.

``folds.json``::

    {"protocols": {NAME: {"description": str, "speaker_independent": bool,
                          "folds": [{"train": [id, ...], "validation": [...], "test": [...],
                                     "speakers": {"train": [...], ...}}, ...]}},
     "default": NAME}

Ids are the stored ``id`` field of each example. Every assignment is a function of the stored
ids, speakers and (for EmoBox) the fold files only: no RNG, the same on every machine. Builders
make them with ``data_prep._common.folds``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from data_prep._common.folds import FOLDS_NAME
from data_prep._common.speakers import SPLITS

__all__ = ["FOLDS_NAME", "FoldError", "fold_view", "ids_in", "protocols_of", "read_folds"]


class FoldError(ValueError):
    """A build has no such fold protocol or fold; the message lists what it has."""


def read_folds(data_dir: str | os.PathLike) -> dict[str, Any] | None:
    """``folds.json`` of a build, or None when it defines no fold protocol."""
    p = Path(os.fspath(data_dir), FOLDS_NAME)
    return json.loads(p.read_text()) if p.is_file() else None


def fold_view(data_dir: str | os.PathLike, fold: int, protocol: str = "") -> dict[str, Any]:
    """The split definition of 1-based ``fold`` of ``protocol`` ("" = the build's default).

    Returns:
      ``{"protocol", "fold", "num_folds", "description", "speaker_independent", "ids": {split:
      set}, "speakers": {split: list}}``.

    Raises:
      FoldError: the build stores no fold protocols, or not this one, or no such fold.
    """
    doc = read_folds(data_dir)
    if not doc:
        raise FoldError(f"the build in {data_dir} defines no fold protocols (no {FOLDS_NAME}); "
                        "use data.fold=0 for its own splits")
    name = protocol or doc["default"]
    if name not in doc["protocols"]:
        raise FoldError(f"no fold protocol {name!r} in the build in {data_dir}; it has "
                        f"{', '.join(sorted(doc['protocols']))}")
    p = doc["protocols"][name]
    k = len(p["folds"])
    if not 1 <= fold <= k:
        raise FoldError(f"fold {fold} of protocol {name!r}: must be in 1..{k}")
    f = p["folds"][fold - 1]
    return {"protocol": name, "fold": fold, "num_folds": k, "description": p["description"],
            "speaker_independent": p["speaker_independent"],
            "ids": {s: set(f[s]) for s in SPLITS}, "speakers": f.get("speakers", {})}


def protocols_of(data_dir: str | os.PathLike) -> dict[str, int]:
    """``{protocol: number of folds}`` of a build (empty without ``folds.json``)."""
    doc = read_folds(data_dir) or {"protocols": {}}
    return {n: len(p["folds"]) for n, p in doc["protocols"].items()}


def ids_in(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """The ``id`` field of each record as str (TFDS returns Text features as bytes)."""
    return [r["id"].decode() if isinstance(r["id"], bytes) else str(r["id"]) for r in records]
