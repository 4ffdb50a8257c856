"""MELD CSV and clip-folder parsing (pure functions; the builder is in ``meld.py``)."""

from __future__ import annotations

import collections
import csv
import dataclasses
import io
import os

from data_prep._common.text import decode, read_text

EMOTIONS = ("neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger")
# MELD's own baseline code numbers sentiments neutral 0, positive 1, negative 2.
SENTIMENTS = ("neutral", "positive", "negative")
# Our split -> (MELD's CSV prefix, clip folders as released and as plainly renamed).
SPLITS = {
    "train": ("train", ("train_splits", "train")),
    "validation": ("dev", ("dev_splits_complete", "dev_splits", "dev")),
    "test": ("test", ("output_repeated_splits_test", "test_splits", "test")),
}
COLUMNS = ("Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID")


@dataclasses.dataclass(frozen=True)
class Row:
    """One CSV row; ``id`` is ``<csv prefix>_dia<D>_utt<U>``, unique over the corpus."""

    prefix: str
    dialogue: int
    utterance: int
    speaker: str
    text: str
    emotion: str
    sentiment: str

    @property
    def clip_name(self) -> str:
        return f"dia{self.dialogue}_utt{self.utterance}.mp4"

    @property
    def id(self) -> str:
        return f"{self.prefix}_dia{self.dialogue}_utt{self.utterance}"

    @property
    def dialogue_id(self) -> str:
        return f"{self.prefix}_dia{self.dialogue}"


def decode_csv_bytes(raw: bytes, source: str = "<bytes>"
                     ) -> tuple[str, collections.Counter]:
    """Decodes a MELD CSV by the project's text decoder (:mod:`data_prep._common.text`: BOM and
    UTF-16 detection, cp1252 for non-UTF-8 byte runs, C1 code points and mojibake repaired).

    Returns:
      ``(text, repairs)``: ``repairs`` counts each kind of repair (e.g. ``cp1252_bytes``,
      ``c1_code_points``, ``mojibake_lines``, ``utf16_file``).

    Raises:
      TextDecodeError: not a text file (names ``source``).
    """
    out = decode(raw, source)
    return out.text, out.repairs


def find(root: str, names: tuple[str, ...], want_dir: bool, depth: int = 2) -> str | None:
    """First of ``names`` in ``root`` or up to ``depth`` folder levels below (e.g. ``MELD.Raw/``).

    A found folder that itself holds one of ``names`` is descended into: the released
    ``train.tar.gz`` unpacks to ``train/train_splits/``.
    """
    level = [root]
    for _ in range(depth + 1):
        for base in level:
            for name in names:
                p = os.path.join(base, name)
                if want_dir and os.path.isdir(p):
                    while True:
                        inner = [os.path.join(p, n) for n in names
                                 if os.path.isdir(os.path.join(p, n))]
                        if not inner:
                            return p
                        p = inner[0]
                if not want_dir and os.path.isfile(p):
                    return p
        level = [os.path.join(b, d) for b in level for d in sorted(os.listdir(b))
                 if not d.startswith(".") and os.path.isdir(os.path.join(b, d))]
    return None


def read_rows(path: str, prefix: str
              ) -> tuple[list[Row], list[tuple[int, str]], collections.Counter]:
    """Parses ``<prefix>_sent_emo.csv``.

    Returns:
      ``(rows, bad, repairs)``: ``repairs`` counts the text repairs (see
      :func:`decode_csv_bytes`); ``bad`` lists ``(csv line, reason)`` for rows that cannot be used
      (unknown emotion/sentiment, non-integer ids), so the builder can count them as skips.

    Raises:
      ValueError: the header lacks one of :data:`COLUMNS`, or the file is not text (names the
        file and the encoding it was read in).
    """
    decoded = read_text(path)
    text, repairs = decoded.text, decoded.repairs
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ValueError(f"{path} (read as {decoded.encoding}): missing columns {missing}; "
                         f"header is {header}")
    reader.fieldnames = header
    rows, bad = [], []
    for rec in reader:
        line = reader.line_num
        emotion = (rec["Emotion"] or "").strip().lower()
        sentiment = (rec["Sentiment"] or "").strip().lower()
        try:
            d, u = int(rec["Dialogue_ID"]), int(rec["Utterance_ID"])
        except (TypeError, ValueError):
            bad.append((line, f"non-integer Dialogue_ID/Utterance_ID "
                              f"{rec['Dialogue_ID']!r}/{rec['Utterance_ID']!r}"))
            continue
        if emotion not in EMOTIONS or sentiment not in SENTIMENTS:
            bad.append((line, f"unknown emotion/sentiment {emotion!r}/{sentiment!r}"))
            continue
        rows.append(Row(prefix, d, u, (rec["Speaker"] or "").strip(),
                        (rec["Utterance"] or "").strip(), emotion, sentiment))
    return rows, bad, repairs
