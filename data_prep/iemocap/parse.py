"""Parsers for the IEMOCAP release files and the conv-emotion (COSMIC) ``iemocap.pkl``.

Pure functions over paths and strings, no TFDS: the builder in ``iemocap.py`` composes them, and the
tests call them directly.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import re

from data_prep._common.safe_pickle import safe_load
from data_prep._common.text import read_text as _read_text

# Label order of the COSMIC pickle (0 hap ... 5 fru); the 6-class configs keep it so that integer
# labels mean the same in the ``text`` and the release configs.
LABELS_6 = ("hap", "sad", "neu", "ang", "exc", "fru")
# The 4-class names keep the 6-class indices of the classes they share; ``exc`` merges into ``hap``.
LABELS_4 = ("hap", "sad", "neu", "ang")
MERGE_4 = {"hap": "hap", "exc": "hap", "sad": "sad", "neu": "neu", "ang": "ang"}

# Validation dialogues of the conv-emotion / COSMIC split (12 of the 120 Session 1-4 dialogues).
# The release configs use the same carve, so ``text`` and ``4class``/``6class`` share their splits.
VALID_DIALOGUES = frozenset({
    "Ses01M_impro01", "Ses01M_script03_1", "Ses02F_impro02", "Ses02F_impro07",
    "Ses02M_script01_2", "Ses03F_impro01", "Ses03M_impro02", "Ses03M_impro08a",
    "Ses03M_script02_2", "Ses03M_script03_2", "Ses04F_impro07", "Ses04F_script02_1",
})
TEST_SESSION = 5

_EVAL_LINE = re.compile(
    r"^\[\s*(?P<start>[\d.]+)\s*-\s*(?P<end>[\d.]+)\s*\]\t(?P<turn>\S+)\t(?P<label>\S+)\t"
    r"\[(?P<vad>[^\]]*)\]")
_TRANSCRIPT_LINE = re.compile(r"^(?P<turn>\S+) \[[^\]]*\]:\s?(?P<text>.*)$")


@dataclasses.dataclass(frozen=True)
class Utterance:
    """One evaluated turn of an IEMOCAP dialogue, as the EmoEvaluation file gives it."""

    turn_name: str  # e.g. Ses01F_impro01_F000
    dialogue_id: str  # e.g. Ses01F_impro01
    start: float
    end: float
    label: str  # raw code: neu, fru, ang, sad, hap, exc, sur, fea, dis, oth, xxx
    vad: tuple[float, float, float]

    @property
    def session(self) -> int:
        return int(self.turn_name[3:5])

    @property
    def speaker(self) -> str:
        """Session plus the speaking actor's gender, e.g. ``Ses01M``: IEMOCAP's 10 actors.

        The gender comes from the turn's last part (``F000``/``M012``), not from the dialogue name,
        whose letter says which actor wore the motion-capture markers.
        """
        return self.turn_name[:5] + self.turn_name.rsplit("_", 1)[-1][0]


def session_of(dialogue_id: str) -> int:
    """``Ses03M_impro02`` -> 3."""
    return int(dialogue_id[3:5])


def split_of(dialogue_id: str) -> str:
    """Session 5 is test; the fixed :data:`VALID_DIALOGUES` are validation; the rest train."""
    if session_of(dialogue_id) == TEST_SESSION:
        return "test"
    return "validation" if dialogue_id in VALID_DIALOGUES else "train"


def read_text(path: str) -> tuple[str, collections.Counter]:
    """Reads a text file by the project's text decoder (:mod:`data_prep._common.text`).

    Returns:
      ``(text, repairs)``: ``repairs`` counts each kind of repair (empty when none was needed).

    Raises:
      TextDecodeError: not a text file (names ``path``).
    """
    out = _read_text(path)
    return out.text, out.repairs


def parse_emo_evaluation(text: str, dialogue_id: str) -> list[Utterance]:
    """Parses one ``EmoEvaluation/<dialogue>.txt``; the per-annotator lines are ignored."""
    out = []
    for line in text.splitlines():
        m = _EVAL_LINE.match(line)
        if not m:
            continue
        vad = tuple(float(v) for v in m["vad"].split(","))
        if len(vad) != 3:
            raise ValueError(f"{dialogue_id}: bad [V, A, D] in line {line!r}")
        out.append(Utterance(m["turn"], dialogue_id, float(m["start"]), float(m["end"]),
                             m["label"], vad))
    out.sort(key=lambda u: (u.start, u.turn_name))
    return out


def parse_transcription(text: str) -> dict[str, str]:
    """Parses ``transcriptions/<dialogue>.txt`` into ``{turn_name: text}``."""
    out = {}
    for line in text.splitlines():
        m = _TRANSCRIPT_LINE.match(line.strip())
        if m:
            out[m["turn"]] = m["text"].strip()
    return out


def find_sessions(root: str) -> dict[int, str]:
    """Finds ``Session1`` ... ``Session5`` under ``root`` or one level below (the release folder).

    Raises:
      FileNotFoundError: no ``SessionN/dialog/EmoEvaluation`` folder was found.
    """
    candidates = [root] + [os.path.join(root, d) for d in sorted(os.listdir(root))
                           if os.path.isdir(os.path.join(root, d))]
    for base in candidates:
        found = {}
        for n in range(1, 6):
            s = os.path.join(base, f"Session{n}")
            if os.path.isdir(os.path.join(s, "dialog", "EmoEvaluation")):
                found[n] = s
        if found:
            return found
    raise FileNotFoundError(
        f"{root}: no IEMOCAP SessionN/dialog/EmoEvaluation folder here or one level below")


@dataclasses.dataclass(frozen=True)
class CosmicUtterance:
    """One utterance of the COSMIC pickle."""

    dialogue_id: str
    turn: int
    speaker: str  # 'M' / 'F'
    label: int  # index into LABELS_6
    text: str

    @property
    def id(self) -> str:
        return f"{self.dialogue_id}_{self.turn}"


def read_cosmic(path: str) -> dict[str, list[CosmicUtterance]]:
    """Reads conv-emotion's ``iemocap.pkl``; returns ``{split: [utterance, ...]}``.

    Raises:
      FileNotFoundError: ``path`` is missing.
      ValueError: the pickle is not the 6-element COSMIC list or its dicts disagree.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: IEMOCAP text pickle not found (conv-emotion COSMIC "
                                "feature-extraction/iemocap/iemocap.pkl)")
    data = safe_load(path)
    if not isinstance(data, (list, tuple)) or len(data) != 6:
        raise ValueError(f"{path}: expected a list of 6 [speakers, labels, sentences, train_ids, "
                         f"test_ids, valid_ids], got {type(data).__name__} of length "
                         f"{len(data) if hasattr(data, '__len__') else '?'}")
    speakers, labels, sentences, train_ids, test_ids, valid_ids = data
    out: dict[str, list[CosmicUtterance]] = {}
    for split, ids in (("train", train_ids), ("validation", valid_ids), ("test", test_ids)):
        utts = []
        for d in sorted(ids):
            spk, lab, sen = speakers[d], labels[d], sentences[d]
            if not len(spk) == len(lab) == len(sen):
                raise ValueError(f"{path}: dialogue {d} has {len(spk)} speakers, "
                                 f"{len(lab)} labels, {len(sen)} sentences")
            for t, (s, y, x) in enumerate(zip(spk, lab, sen, strict=True)):
                if not 0 <= int(y) < len(LABELS_6):
                    raise ValueError(f"{path}: dialogue {d} turn {t} has label {y} outside 0-5")
                utts.append(CosmicUtterance(d, t, str(s), int(y), str(x)))
        out[split] = utts
    return out
