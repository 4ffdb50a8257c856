"""k-fold protocols as views over one build.

A build decodes and stores a corpus once. Its fold protocols (leave-speakers-out, leave-one-
speaker-out, EmoBox's folds, ...) are split definitions stored beside the data as ``folds.json``
and applied when the build is read (``data.fold`` / ``data.fold_protocol`` in a run config), so
``k`` folds cost one build, not ``k``.

``folds.json``::

    {"protocols": {NAME: {"description": str, "speaker_independent": bool,
                          "folds": [{"train": [id, ...], "validation": [...], "test": [...],
                                     "speakers": {"train": [...], ...}}, ...],
                          "errors": [str, ...]}},          # only when the folds cannot be used
     "default": NAME,
     "examples": {id: speaker},                            # every stored example
     "emobox": NAME, "emobox_keys": {key: id}}             # EmoBox's corpus name, explicit keys

Ids are the stored ``id`` field of each example. Every assignment is a function of the stored
ids, speakers and (for EmoBox) the fold files only: no RNG, the same on every machine. Builders
make them with ``data_prep._common.folds``.

EmoBox's folds (protocol ``emobox``) are also read from EmoBox's own files at any time, over a
build that did not store them (:func:`emobox_protocol`, ``data.emobox_dir`` in a run config).

Per-fold builder configs of earlier releases (RAVDESS ``speech_fold3``, CREMA-D ``audio_fold2``,
EmoDB ``lso_fold1`` ...) are aliases of fold views (:data:`FOLD_ALIASES`): they read the one build
of their base config, never a build of their own.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from data_prep._common import emobox
from data_prep._common.folds import FOLDS_NAME
from data_prep._common.speakers import SPLITS

__all__ = ["FOLDS_NAME", "FOLD_ALIASES", "FoldError", "emobox_protocol", "fold_view", "ids_in",
           "protocols_of", "read_folds", "resolve_alias", "stored_examples"]

# Corpus -> {alias prefix: (base builder config, fold protocol, number of folds)}: the alias
# "<prefix><K>" (K in 1..number) is fold K of the protocol over the one build of the base config.
FOLD_ALIASES: dict[str, dict[str, tuple[str, str, int]]] = {
    "ravdess": {"speech_fold": ("speech", "actors", 6), "av_fold": ("av", "actors", 6)},
    "crema_d": {"audio_fold": ("audio", "actors", 5), "av_fold": ("av", "actors", 5)},
    "emodb": {"lso_fold": ("default", "lso", 5), "emobox_fold": ("default", "emobox", 5)},
}


class FoldError(ValueError):
    """A build has no such fold protocol or fold, or its folds cannot be used (EmoBox's lists
    and the build disagree); the message lists what it has or names the mismatch."""


def resolve_alias(corpus: str, config: str | None) -> tuple[str, str, int] | None:
    """``(base config, protocol, fold)`` when ``config`` is a per-fold alias of ``corpus``
    (``("ravdess", "speech_fold3")`` -> ``("speech", "actors", 3)``), else None."""
    for prefix, (base, protocol, k) in FOLD_ALIASES.get(corpus, {}).items():
        rest = (config or "")[len(prefix):]
        if (config or "").startswith(prefix) and rest.isdigit() and 1 <= int(rest) <= k:
            return base, protocol, int(rest)
    return None


def alias_names(corpus: str) -> list[str]:
    """Every per-fold alias of ``corpus`` (``speech_fold1`` ... ``av_fold6``)."""
    return [f"{p}{k}" for p, (_, _, n) in FOLD_ALIASES.get(corpus, {}).items()
            for k in range(1, n + 1)]


def read_folds(data_dir: str | os.PathLike) -> dict[str, Any] | None:
    """``folds.json`` of a build, or None when it defines no fold protocol."""
    p = Path(os.fspath(data_dir), FOLDS_NAME)
    return json.loads(p.read_text()) if p.is_file() else None


def fold_view(data_dir: str | os.PathLike, fold: int, protocol: str = "",
              computed: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The split definition of 1-based ``fold`` of ``protocol`` ("" = the build's default).

    Args:
      computed: protocols made when reading (EmoBox's folds from a path, :func:`emobox_protocol`);
        they take the place of stored protocols of the same name.

    Returns:
      ``{"protocol", "fold", "num_folds", "description", "speaker_independent", "ids": {split:
      set}, "speakers": {split: list}}``.

    Raises:
      FoldError: the build stores no fold protocols, or not this one, or no such fold, or the
        protocol's folds do not match the build (EmoBox's lists; the message names the ids).
    """
    doc = read_folds(data_dir) or {"protocols": {}, "default": ""}
    protocols = {**doc["protocols"], **(computed or {})}
    if not protocols:
        raise FoldError(f"the build in {data_dir} defines no fold protocols (no {FOLDS_NAME}); "
                        "use data.fold=0 for its own splits")
    name = protocol or doc["default"] or next(iter(protocols))
    if name not in protocols:
        hint = (" (EmoBox's folds are read from its files with data.emobox_dir=PATH)"
                if name == "emobox" else "")
        raise FoldError(f"no fold protocol {name!r} in the build in {data_dir}{hint}; it has "
                        f"{', '.join(sorted(protocols))}")
    p = protocols[name]
    if p.get("errors"):
        raise FoldError(emobox.errors_message(doc.get("emobox") or name, p["errors"]))
    k = len(p["folds"])
    if not 1 <= fold <= k:
        raise FoldError(f"fold {fold} of protocol {name!r}: must be in 1..{k}")
    f = p["folds"][fold - 1]
    return {"protocol": name, "fold": fold, "num_folds": k, "description": p["description"],
            "speaker_independent": p["speaker_independent"],
            "ids": {s: set(f[s]) for s in SPLITS}, "speakers": f.get("speakers", {})}


def stored_examples(data_dir: str | os.PathLike) -> dict[str, str] | None:
    """Stored id -> speaker of a build, as its ``folds.json`` lists them (None when it does not)."""
    doc = read_folds(data_dir) or {}
    return doc.get("examples")


def emobox_protocol(data_dir: str | os.PathLike, path: str | os.PathLike, corpus: str,
                    stored: Mapping[str, str] | None = None) -> dict[str, Any]:
    """EmoBox's folds read from its files under ``path``, over the build in ``data_dir``.

    Args:
      corpus: our corpus name (``ravdess``); EmoBox's name comes from the build's ``folds.json``
        or :data:`data_prep._common.emobox.EMOBOX_NAMES`.
      stored: stored id -> speaker; default the build's ``folds.json`` ``examples``.

    Returns:
      A protocol as stored in ``folds.json`` (with ``errors`` when the lists and the build
      disagree; :func:`fold_view` raises on them).

    Raises:
      FoldError: EmoBox has no folds of this corpus, its files are missing or unreadable, or the
        build's stored examples are unknown (a build from before ``examples`` was stored).
    """
    doc = read_folds(data_dir) or {}
    name = doc.get("emobox") or emobox.EMOBOX_NAMES.get(corpus, "")
    if not name:
        raise FoldError(f"EmoBox publishes no folds of corpus {corpus!r} (it has folds of "
                        f"{', '.join(sorted(emobox.EMOBOX_NAMES))} and folder corpora whose "
                        "spec names one with 'emobox')")
    stored = stored if stored is not None else doc.get("examples")
    if stored is None:
        raise FoldError(f"the build in {data_dir} does not list its examples; rebuild it with "
                        "--force to read EmoBox's folds over it")
    try:
        lists = emobox.read_lists(path, name)
    except emobox.EmoboxError as exc:
        raise FoldError(str(exc)) from exc
    id_of = emobox.id_mapper(corpus, stored, doc.get("emobox_keys"))
    return emobox.protocol(lists, id_of, stored, name)


def protocols_of(data_dir: str | os.PathLike) -> dict[str, int]:
    """``{protocol: number of folds}`` of a build (empty without ``folds.json``)."""
    doc = read_folds(data_dir) or {"protocols": {}}
    return {n: len(p["folds"]) for n, p in doc["protocols"].items()}


def ids_in(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """The ``id`` field of each record as str (TFDS returns Text features as bytes)."""
    return [r["id"].decode() if isinstance(r["id"], bytes) else str(r["id"]) for r in records]
