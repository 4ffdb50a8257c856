"""EmoBox's folds (github.com/emo-box/EmoBox) over the examples a build stored.

EmoBox publishes its folds per corpus as ``data/<name>/fold_<K>/<name>_{train,test}_fold_<K>.jsonl``
(MELD also ``valid``; a few older files are named ``..._fold<K>.jsonl``). Each line is a JSON object
whose ``key`` names the utterance (``"ravdess-03-01-07-02-02-02-11"``) and whose ``wav`` is its path
under EmoBox's ``downloads/`` (``".../Actor_11/03-01-07-02-02-02-11.wav"``); other fields (``emo``,
``length``, ...) are not read.

A path given for the folds may be EmoBox's checkout, its ``data/`` folder, ``data/<name>/`` or one
flat folder of the jsonl files (EmoDB's ``emobox_folds/``). Keys are mapped to our stored example
ids (:func:`id_mapper`); a listed key with no stored example, a stored example that a fold does not
list, or an example listed twice in one fold makes the protocol carry ``errors``, and reading such
a fold is an error naming them (:func:`data_prep.folds.fold_view`): a comparison with EmoBox's
tables needs exactly its folds.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from data_prep._common.speakers import SPLITS, carve

# Our corpus name -> EmoBox's (``data/<name>/``), for every corpus with a builder here and EmoBox
# folds. ``folder`` corpora name theirs in their spec (``"emobox": "turevdb"``).
EMOBOX_NAMES = {"emodb": "emodb", "ravdess": "ravdess", "crema_d": "cremad",
                "iemocap": "iemocap", "meld": "meld"}
VALID_FRACTION = 0.1  # validation carved from a fold's train list when EmoBox gives none
PARTS = {"train": "train", "valid": "validation", "test": "test"}
_FILE_RE = r"^{name}_(train|valid|test)_fold_?(\d+)\.jsonl$"
_SHOWN = 5  # errors quoted in a message

Entry = tuple[str, str, str]  # (key, wav, "file:line")


class EmoboxError(ValueError):
    """EmoBox's fold files are missing or unreadable; the message names the path or line."""


def fold_files(path: str | os.PathLike, name: str) -> dict[int, dict[str, Path]]:
    """``{K: {"train"|"valid"|"test": file}}`` of EmoBox corpus ``name`` under ``path``.

    Raises:
      EmoboxError: no fold file of ``name`` is found (the message lists where it looked).
    """
    root = Path(os.path.expanduser(os.fspath(path)))
    pattern = re.compile(_FILE_RE.format(name=re.escape(name)))
    tried = [root / "data" / name, root / name, root]
    for base in tried:
        found: dict[int, dict[str, Path]] = {}
        for f in sorted([*base.glob("fold_*/*.jsonl"), *base.glob("*.jsonl")]):
            m = pattern.match(f.name)
            if m:
                # "_fold_K" (EmoBox's current name) wins over an older "_foldK" copy beside it.
                found.setdefault(int(m[2]), {}).setdefault(m[1], f)
                if "_fold_" in f.name:
                    found[int(m[2])][m[1]] = f
        if found:
            return dict(sorted(found.items()))
    raise EmoboxError(f"no EmoBox fold files {name}_{{train,test}}_fold_K.jsonl under "
                      f"{', '.join(str(t) for t in tried)} (give EmoBox's checkout, its data/ "
                      "folder or the folder holding the files)")


def read_lists(path: str | os.PathLike, name: str) -> dict[int, dict[str, list[Entry]]]:
    """The entries of every fold: ``{K: {"train"|"valid"|"test": [(key, wav, where), ...]}}``.

    Raises:
      EmoboxError: no fold files (:func:`fold_files`), a fold without its train or test file, or a
        line that is not a JSON object with a ``key`` or ``wav`` string (named as ``file:line``).
    """
    out: dict[int, dict[str, list[Entry]]] = {}
    for k, parts in fold_files(path, name).items():
        missing = sorted({"train", "test"} - set(parts))
        if missing:
            raise EmoboxError(f"EmoBox {name} fold {k}: no {missing[0]} file beside "
                              f"{next(iter(parts.values()))}")
        out[k] = {part: _read_jsonl(f) for part, f in sorted(parts.items())}
    return out


def _read_jsonl(f: Path) -> list[Entry]:
    entries = []
    with open(f, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{f}:{n}"
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise EmoboxError(f"{where}: not a JSON line ({exc})") from exc
            key, wav = (row.get("key"), row.get("wav")) if isinstance(row, dict) else (None, None)
            if not isinstance(key, str) and not isinstance(wav, str):
                raise EmoboxError(f"{where}: a line needs a 'key' or 'wav' string")
            entries.append((key or "", wav or "", where))
    return entries


def _trailing_index(ids: Iterable[str]) -> dict[str, list[str]]:
    """Stored ids by their last path component (a folder corpus's ids are relative paths)."""
    index: dict[str, list[str]] = {}
    for i in ids:
        index.setdefault(i.rsplit("/", 1)[-1], []).append(i)
    return index


def id_mapper(corpus: str, stored: Iterable[str], explicit: Mapping[str, str] | None = None,
              ) -> Callable[[str, str], list[str]]:
    """``(key, wav) -> candidate stored ids`` (empty: none found), tried in this order:

    * ``explicit[key]`` (a folder corpus's manifest column ``emobox_key``);
    * the stored id whose path is the tail of ``wav`` without its suffix (EmoDB ``03a01Wa``,
      CREMA-D ``1001_DFA_ANG_XX``, IEMOCAP turn names, a folder corpus's relative paths);
    * RAVDESS: the audio-visual clip of an audio-only file (``03-01-…`` -> ``01-01-…``, the same
      recording); MELD: ``meld-dia0_utt1-dev`` -> ``dev_dia0_utt1``.

    Several candidates mean the key is ambiguous (two stored paths end the same way).
    """
    stored = set(stored)
    index = _trailing_index(stored)

    def candidates(key: str, wav: str) -> list[str]:
        if explicit and key in explicit:
            return [explicit[key]] if explicit[key] in stored else []
        tail = Path(wav).with_suffix("").as_posix() if wav else ""
        stem = tail.rsplit("/", 1)[-1]
        found = [i for i in index.get(stem, []) if tail == i or tail.endswith("/" + i)]
        if found:
            return found
        if corpus == "ravdess" and stem[:3] == "03-" and "01-" + stem[3:] in stored:
            return ["01-" + stem[3:]]
        if corpus == "meld":
            m = re.match(r"^meld-(.+)-([a-z]+)$", key)
            if m and f"{m[2]}_{m[1]}" in stored:
                return [f"{m[2]}_{m[1]}"]
        return []

    return candidates


def protocol(lists: Mapping[int, Mapping[str, Sequence[Entry]]],
             id_of: Callable[[str, str], list[str]], speaker_of: Mapping[str, str], name: str,
             valid_fraction: float = VALID_FRACTION) -> dict[str, Any]:
    """EmoBox's folds over the stored examples ``speaker_of`` (id -> speaker).

    Validation is EmoBox's ``valid`` list when it has one, else a deterministic
    ``valid_fraction`` of each fold's train list (lowest stable hashes of the ids, salt
    ``<name>-emobox-<K>``, as EmoDB's folds always had). Mismatches are listed under ``errors``
    (see the module docstring) rather than raised, so a build that stores the protocol succeeds
    and reading the fold names them.
    """
    folds, errors = [], []
    for k, parts in sorted(lists.items()):
        where: dict[str, str] = {}
        for part, entries in parts.items():
            for key, wav, at in entries:
                found = id_of(key, wav)
                if len(found) != 1:
                    what = "no stored example" if not found else f"several: {sorted(found)}"
                    errors.append(f"{at}: key {key or wav!r} -> {what}")
                elif found[0] in where:
                    errors.append(f"{at}: example {found[0]!r} is listed twice in fold {k}")
                else:
                    where[found[0]] = PARTS[part]
        errors += [f"stored example {i!r} is in no list of EmoBox {name} fold {k}"
                   for i in sorted(set(speaker_of) - set(where))]
        if "valid" not in parts:
            train = [i for i, s in where.items() if s == "train"]
            for i in carve(train, valid_fraction, salt=f"{name}-emobox-{k}"):
                where[i] = "validation"
        fold: dict[str, Any] = {s: sorted(i for i, p in where.items() if p == s) for s in SPLITS}
        fold["speakers"] = {s: sorted({speaker_of[i] for i in fold[s] if i in speaker_of})
                            for s in SPLITS}
        folds.append(fold)
    independent = all(not (set(f["speakers"]["train"]) & set(f["speakers"]["test"]))
                      for f in folds)
    valid = ("EmoBox's valid list" if all("valid" in p for p in lists.values())
             else f"a stable {valid_fraction:.0%} of each train list")
    out = {"description": f"EmoBox's {len(folds)} {name} folds (validation: {valid})",
           "speaker_independent": independent, "folds": folds}
    if errors:
        out["errors"] = errors
    return out


def errors_message(name: str, errors: Sequence[str]) -> str:
    """One line naming the first mismatches of an EmoBox protocol (and how many there are)."""
    more = f" (and {len(errors) - _SHOWN} more)" if len(errors) > _SHOWN else ""
    return (f"EmoBox's {name} folds do not match the build: {'; '.join(errors[:_SHOWN])}{more}; "
            "EmoBox's folds are used only when every listed key is a stored example and every "
            "stored example is listed")
