"""Building fold protocols (the writing side of :mod:`data_prep.folds`, which reads them).

Used by the builders' ``_fold_protocols`` and by ``ReportingMixin``, which writes ``folds.json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from data_prep._common.speakers import SPLITS, assign_folds, fold_splits

FOLDS_NAME = "folds.json"


def speaker_group_folds(speaker_of: Mapping[str, str],
                        groups: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    """Folds over speaker groups: fold k tests group k, validates on group k+1 (cyclic), trains
    on the rest (:func:`data_prep._common.speakers.fold_splits`)."""
    out = []
    for k in range(1, len(groups) + 1):
        spk = fold_splits(groups, k)
        fold = {s: sorted(i for i, sp in speaker_of.items() if sp in spk[s]) for s in SPLITS}
        fold["speakers"] = {s: sorted(spk[s]) for s in SPLITS}
        out.append(fold)
    return out


def speaker_protocol(speaker_of: Mapping[str, str], k: int | None = None,
                     what: str = "", speakers: Sequence[str] | None = None) -> dict[str, Any]:
    """Speaker-independent folds over the sorted speakers of ``speaker_of`` (id -> speaker):
    leave-one-speaker-out when ``k`` is None, else ``k`` contiguous groups. ``speakers``: the
    corpus's full speaker list to group instead (so a speaker missing from a copy never moves
    another one to a different fold)."""
    speakers = sorted(set(speaker_of.values()) if speakers is None else speakers)
    k = len(speakers) if k is None else k
    groups = assign_folds(speakers, k)
    size = "one speaker" if all(len(g) == 1 for g in groups) else "speaker groups"
    return {"description": what or f"{k} folds leaving {size} out (test = group k, validation = "
                                   f"group k+1, train = the rest)",
            "speaker_independent": True, "folds": speaker_group_folds(speaker_of, groups)}


def write_folds(data_dir: str | os.PathLike, protocols: Mapping[str, Mapping[str, Any]],
                default: str | None = None, **extra: Any) -> None:
    """Writes ``folds.json`` (see :mod:`data_prep.folds`) into ``data_dir``: the protocols and the
    non-empty ``extra`` entries (``examples``: stored id -> speaker; ``emobox``: EmoBox's name of
    the corpus; ``emobox_keys``: EmoBox key -> stored id), from which EmoBox's folds are mapped
    when they are read from a path."""
    if not protocols:
        return
    doc: dict[str, Any] = {"default": default or next(iter(protocols)),
                           "protocols": dict(protocols)}
    doc.update({k: v for k, v in extra.items() if v})
    Path(os.fspath(data_dir), FOLDS_NAME).write_text(json.dumps(doc))
