"""Speaker-independent partitions: folds, fixed splits, and the disjointness check.

All assignments are functions of the sorted speaker ids only (no RNG), so a fold means the same
speakers on every machine and in every release of the code.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

SPLITS = ("train", "validation", "test")


def assign_folds(speakers: Iterable[str], k: int) -> list[list[str]]:
    """Splits sorted speakers into ``k`` contiguous folds whose sizes differ by at most one.

    Example: 24 RAVDESS actors, k=6 -> [01-04], [05-08], ..., [21-24].
    """
    spk = sorted(set(speakers))
    if not 1 <= k <= len(spk):
        raise ValueError(f"{k=} must be in [1, {len(spk)}] (number of speakers)")
    base, extra = divmod(len(spk), k)
    folds, start = [], 0
    for i in range(k):
        size = base + (1 if i < extra else 0)
        folds.append(spk[start:start + size])
        start += size
    return folds


def fold_splits(folds: Sequence[Sequence[str]], fold: int) -> dict[str, set[str]]:
    """Speakers per split for 1-based ``fold``: test = that fold, validation = the next (cyclic).

    Train is every other fold.
    """
    k = len(folds)
    if not 1 <= fold <= k:
        raise ValueError(f"{fold=} must be in [1, {k}]")
    test, val = set(folds[fold - 1]), set(folds[fold % k])
    train = {s for i, f in enumerate(folds) if i not in (fold - 1, fold % k) for s in f}
    return {"train": train, "validation": val, "test": test}


def check_disjoint(split_speakers: Mapping[str, Iterable[str]]) -> None:
    """Raises ``ValueError`` naming any speaker assigned to more than one split."""
    seen: dict[str, str] = {}
    for split, spks in split_speakers.items():
        for s in spks:
            if s in seen and seen[s] != split:
                raise ValueError(f"speaker {s!r} is in both {seen[s]!r} and {split!r}")
            seen[s] = split


def split_of(speaker: str, split_speakers: Mapping[str, Iterable[str]]) -> str | None:
    """The split holding ``speaker``, or None when it is in none of them."""
    for split, spks in split_speakers.items():
        if speaker in spks:
            return split
    return None


def stable_fraction(key: str, salt: str = "") -> float:
    """A deterministic pseudo-random number in [0, 1) from ``key`` (for carving subsets)."""
    h = hashlib.sha1(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0**64


def carve(ids: Iterable[str], fraction: float, salt: str = "") -> set[str]:
    """Deterministically picks about ``fraction`` of ``ids`` (the lowest stable hashes)."""
    ids = sorted(set(ids))
    n = int(round(fraction * len(ids)))
    return set(sorted(ids, key=lambda i: stable_fraction(i, salt))[:n])
