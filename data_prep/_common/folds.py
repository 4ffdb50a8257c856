"""Building fold protocols (the writing side of :mod:`data_prep.folds`, which reads them).

Used by the builders' ``_fold_protocols`` and by ``ReportingMixin``, which writes ``folds.json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from data_prep._common.speakers import SPLITS, assign_folds, carve, fold_splits

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
                     what: str = "") -> dict[str, Any]:
    """Speaker-independent folds over the sorted speakers of ``speaker_of`` (id -> speaker):
    leave-one-speaker-out when ``k`` is None, else ``k`` contiguous groups."""
    speakers = sorted(set(speaker_of.values()))
    k = len(speakers) if k is None else k
    groups = assign_folds(speakers, k)
    size = "one speaker" if all(len(g) == 1 for g in groups) else "speaker groups"
    return {"description": what or f"{k} folds leaving {size} out (test = group k, validation = "
                                   f"group k+1, train = the rest)",
            "speaker_independent": True, "folds": speaker_group_folds(speaker_of, groups)}


def read_emobox_lists(fold_dir: str | os.PathLike, corpus: str) -> dict[int, dict[str, list]]:
    """EmoBox's ``<corpus>_{train,test}_fold_<K>.jsonl`` (keys, wav paths, labels), as
    ``{K: {"train": [wav stem, ...], "test": [...]}}`` for every K present."""
    fold_dir = Path(os.fspath(fold_dir))
    out: dict[int, dict[str, list]] = {}
    for f in sorted(fold_dir.glob(f"{corpus}_*_fold_*.jsonl")):
        part, k = f.stem[len(corpus) + 1:].split("_fold_")
        if part not in ("train", "test") or not k.isdigit():
            continue
        with open(f) as fh:
            stems = [Path(json.loads(line)["wav"]).stem for line in fh if line.strip()]
        out.setdefault(int(k), {})[part] = stems
    return {k: v for k, v in sorted(out.items()) if set(v) == {"train", "test"}}


def emobox_protocol(lists: Mapping[int, Mapping[str, Sequence[str]]], id_of: Mapping[str, str],
                    speaker_of: Mapping[str, str], corpus: str,
                    valid_fraction: float = 0.1) -> dict[str, Any]:
    """EmoBox folds over stored ids. ``id_of`` maps a wav stem to the stored id; validation is a
    deterministic ``valid_fraction`` of each fold's train list (stable hash, as the EmoDB
    ``emobox_fold*`` configs do). Listed files that were not stored are left out."""
    folds = []
    for k, parts in sorted(lists.items()):
        val = carve(parts["train"], valid_fraction, salt=f"{corpus}-emobox-{k}")
        fold: dict[str, Any] = {s: [] for s in SPLITS}
        for part, stems in parts.items():
            for stem in stems:
                if stem in id_of:
                    fold["validation" if stem in val else part].append(id_of[stem])
        fold = {s: sorted(v) for s, v in fold.items()}
        fold["speakers"] = {s: sorted({speaker_of[i] for i in fold[s]}) for s in SPLITS}
        folds.append(fold)
    independent = all(not (set(f["speakers"]["train"]) & set(f["speakers"]["test"]))
                      for f in folds)
    return {"description": f"EmoBox's {len(folds)} {corpus} folds (validation: a stable "
                           f"{valid_fraction:.0%} of each train list)",
            "speaker_independent": independent, "folds": folds}


def write_folds(data_dir: str | os.PathLike, protocols: Mapping[str, Mapping[str, Any]],
                default: str | None = None) -> None:
    """Writes ``folds.json`` (see the module docstring) into ``data_dir``."""
    if not protocols:
        return
    doc = {"default": default or next(iter(protocols)), "protocols": dict(protocols)}
    Path(os.fspath(data_dir), FOLDS_NAME).write_text(json.dumps(doc))
