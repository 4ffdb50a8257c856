"""A word-level tokenizer whose vocabulary comes from the training split only.

Ids: 0 = padding, 1 = unknown; words seen at least ``min_count`` times in training get 2…V-1.
The vocabulary is saved to the run directory so evaluation and prediction tokenize identically.
"""

from __future__ import annotations

import collections
import json
import re
from typing import Iterable

import numpy as np

PAD, UNK = 0, 1
_WORD = re.compile(r"[a-z0-9']+|[^\sa-z0-9']")


def split_words(text: str) -> list[str]:
    """Lower-cases and splits into words and single punctuation marks."""
    return _WORD.findall(text.lower())


class Tokenizer:
    def __init__(self, vocab: list[str]):
        self.vocab = list(vocab)
        self.index = {w: i for i, w in enumerate(self.vocab)}

    @classmethod
    def fit(cls, texts: Iterable[str], min_count: int = 1, max_size: int = 30000) -> "Tokenizer":
        counts = collections.Counter(w for t in texts for w in split_words(t))
        # Sort by count, then alphabetically, so the vocabulary is deterministic.
        words = sorted(
            (w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w)
        )
        return cls(["<pad>", "<unk>"] + words[: max_size - 2])

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, text: str, max_len: int | None = None) -> np.ndarray:
        ids = [self.index.get(w, UNK) for w in split_words(text)]
        if max_len is not None:
            ids = ids[:max_len]
        return np.asarray(ids, dtype=np.int32)

    def save(self, path: str) -> None:
        with open(path, "w") as f:
            json.dump({"vocab": self.vocab}, f)

    @classmethod
    def load(cls, path: str) -> "Tokenizer":
        with open(path) as f:
            return cls(json.load(f)["vocab"])
