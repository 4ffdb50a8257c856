"""One emotion, many spellings: matching a paper's class names to a build's.

Corpora and papers name the same emotion differently: IEMOCAP's files say ``hap``, ``neu``,
``fru``, S002's table says *happy*, *neutral*, *frustrated*; EmoDB's build says ``anger`` and
``happiness`` where RAVDESS says ``angry`` and ``happy``. A report that looks up the paper's
per-class figures under the build's names would otherwise find none and print dashes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

V = TypeVar("V")

# Canonical name -> the spellings that mean it (lower case; the canonical name included).
_SPELLINGS: dict[str, tuple[str, ...]] = {
    "neutral": ("neutral", "neu", "neutrality"),
    "happy": ("happy", "hap", "happiness", "joy"),
    "sad": ("sad", "sadness"),
    "angry": ("angry", "ang", "anger"),
    "excited": ("excited", "exc", "excitement"),
    "frustrated": ("frustrated", "fru", "frustration"),
    "fearful": ("fearful", "fea", "fear"),
    "disgust": ("disgust", "dis", "disgusted"),
    "surprised": ("surprised", "sur", "surprise"),
    "boredom": ("boredom", "bor", "bored"),
    "calm": ("calm",),
    "contempt": ("contempt",),
}
EMOTION_ALIASES: dict[str, str] = {s: c for c, spellings in _SPELLINGS.items() for s in spellings}


def canonical_emotion(name: str) -> str:
    """The canonical spelling of an emotion class name (``"hap"`` -> ``"happy"``); a name the
    table does not know comes back lower-cased and stripped."""
    key = str(name).strip().lower()
    return EMOTION_ALIASES.get(key, key)


def align_class_names(values: Mapping[str, V], classes: Sequence[str]) -> dict[str, V]:
    """``values`` (keyed by a paper's class names) re-keyed by the matching name in ``classes``.

    Names match when their :func:`canonical_emotion` spellings are equal; a paper class with no
    match in ``classes`` is left out (the run has no such class to set it beside).

    Raises:
      ValueError: two keys of ``values`` mean the same class of ``classes``.
    """
    by_canonical = {canonical_emotion(c): c for c in classes}
    out: dict[str, V] = {}
    source: dict[str, str] = {}
    for name, value in values.items():
        target = by_canonical.get(canonical_emotion(name))
        if target is None:
            continue
        if target in out:
            raise ValueError(f"paper classes {source[target]!r} and {name!r} both mean the "
                             f"run's class {target!r}")
        out[target], source[target] = value, name
    return out
