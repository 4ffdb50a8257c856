"""A word-level tokenizer whose vocabulary comes from the training split only.

Ids: 0 = padding, 1 = unknown; words seen at least ``min_count`` times in training get 2…V-1.
The vocabulary is saved to the run directory so evaluation and prediction tokenize identically.
"""

from __future__ import annotations

import collections
import json
import os
import re
from typing import Iterable

import numpy as np

PAD, UNK = 0, 1
_WORD = re.compile(r"[a-z0-9']+|[^\sa-z0-9']")
# Typographic quotes read like their ASCII forms, so "don’t", "don't" and "don‘t" are one word.
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'",
                         "\u2032": "'", "\u201c": '"', "\u201d": '"', "\u201e": '"',
                         "\u201f": '"', "\u2033": '"'})


def split_words(text: str) -> list[str]:
    """Lower-cases and splits into words and single punctuation marks; typographic quotes
    (‘ ’ ‚ ‛ “ ” „ ‟ and primes) count as the ASCII ``'`` and ``"``."""
    return _WORD.findall(text.lower().translate(_QUOTES))


class Tokenizer:
    """Word-level tokenizer: ids 0 = ``<pad>``, 1 = ``<unk>``, then words by training frequency.

    Args:
      vocab: the id -> word list (``vocab[0] == "<pad>"``, ``vocab[1] == "<unk>"``).
    """

    def __init__(self, vocab: list[str]):
        self.vocab = list(vocab)
        self.index = {w: i for i, w in enumerate(self.vocab)}

    @classmethod
    def fit(cls, texts: Iterable[str], min_count: int = 1, max_size: int = 30000) -> "Tokenizer":
        """The vocabulary of ``texts``: words seen at least ``min_count`` times, most frequent
        first (ties alphabetical), at most ``max_size`` ids including the two reserved ones."""
        counts = collections.Counter(w for t in texts for w in split_words(t))
        # Sort by count, then alphabetically, so the vocabulary is deterministic.
        words = sorted(
            (w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w)
        )
        return cls(["<pad>", "<unk>"] + words[: max_size - 2])

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, text: str, max_len: int | None = None) -> np.ndarray:
        """``text`` -> [L] int32 ids (unknown words -> 1), truncated to ``max_len`` when given."""
        ids = [self.index.get(w, UNK) for w in split_words(text)]
        if max_len is not None:
            ids = ids[:max_len]
        return np.asarray(ids, dtype=np.int32)

    def save(self, path: str) -> None:
        """Writes ``{"vocab": [...]}`` as JSON to ``path``, creating its directory."""
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as f:
            json.dump({"vocab": self.vocab}, f)

    @classmethod
    def load(cls, path: str) -> "Tokenizer":
        """Reads a vocabulary written by :meth:`save`.

        Raises:
          OSError: ``path`` cannot be read. KeyError / ValueError: it is not a saved vocabulary.
        """
        with open(path) as f:
            return cls(json.load(f)["vocab"])
