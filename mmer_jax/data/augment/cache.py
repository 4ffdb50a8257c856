"""The training split plus precomputed audio copies (``data.offline_augment``), cached on disk.

The offline ops (:mod:`mmer_jax.data.augment.offline`) cost ~29 ms a clip, far more than a training
step can spare per example, so they run once and the copies are read back like originals: the
training split grows by one copy of every clip per op. Validation and test are never augmented.

The copies are cached next to the prepared dataset (``<tfds dir>/augmented_train/<copy>.npz``, or
the run directory when that is read-only), so every seed and every run of the same corpus reuses
them. Each file holds one flat int16 array, offsets and the clip ids it was made from (plain arrays,
no pickle); a file whose ids differ from the split's, or that is truncated, is recomputed.
"""

from __future__ import annotations

import os
import zipfile
from typing import Any

import numpy as np

from mmer_jax.data.augment.offline import copy_name, precompute_augmented_copies
from mmer_jax.data.sources import as_str

Ops = list[tuple[str, dict[str, Any]]]


def _ids(source) -> np.ndarray:
    return np.array([as_str(source[i].get("id", i)) for i in range(len(source))], dtype=str)


def _save(path: str, waves: list[np.ndarray], ids: np.ndarray) -> None:
    offsets = np.cumsum([0] + [len(w) for w in waves]).astype(np.int64)
    flat = np.concatenate(waves).astype(np.int16) if waves else np.zeros(0, np.int16)
    tmp = f"{path}.{os.getpid()}.tmp.npz"  # concurrent runs each write their own, then replace
    np.savez(tmp, audio=flat, offsets=offsets, ids=ids)
    os.replace(tmp, path)


def _load(path: str, ids: np.ndarray) -> list[np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            flat, offsets, stored = z["audio"], z["offsets"], z["ids"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None  # missing or truncated: recompute
    if len(offsets) != len(ids) + 1 or not np.array_equal(stored, ids):
        return None  # made from other clips (another corpus, config or rebuild)
    return [flat[offsets[i] : offsets[i + 1]] for i in range(len(ids))]


def cache_dir_for(builder, workdir: str | None) -> str | None:
    """Where the copies of ``builder``'s training split are cached.

    Args:
      builder: the prepared TFDS builder (its ``data_dir`` is the prepared dataset).
      workdir: the run directory, the fallback when the dataset directory is read-only.

    Returns:
      ``<prepared dataset>/augmented_train`` when writable, else ``<workdir>/augmented``, else
      None (no cache: copies are recomputed by every run).
    """
    base = getattr(builder, "data_dir", None)
    if base:
        path = os.path.join(str(base), "augmented_train")
        try:
            os.makedirs(path, exist_ok=True)
            if os.access(path, os.W_OK):
                return path
        except OSError:
            pass
    return os.path.join(workdir, "augmented") if workdir else None


def load_or_make_copies(
    source, ops: Ops, sample_rate: int, cache_dir: str | None
) -> list[list[np.ndarray]]:
    """The augmented copies of every clip of ``source``, read from the cache or made and cached.

    Args:
      source: the training split: ``len()`` and ``[i] -> {"audio": [N] int16, "id": ...}``.
      ops: ``(name, params)`` pairs from :func:`~mmer_jax.data.augment.offline.parse_ops`.
      sample_rate: of the stored audio, in Hz.
      cache_dir: where ``<copy name>.npz`` files are read and written; None disables the cache.

    Returns:
      One list per op of [N'] int16 waves, in ``source`` order.

    Raises:
      UnknownName (a KeyError): an op name is not an offline augmentation.
    """
    n = len(source)
    ids = _ids(source)
    out: list[list[np.ndarray] | None] = []
    missing = []
    for name, params in ops:
        path = os.path.join(cache_dir, copy_name(name, params) + ".npz") if cache_dir else None
        waves = _load(path, ids) if path else None
        out.append(waves)
        if waves is None:
            missing.append((name, params))
    if missing:
        originals = [np.asarray(source[i]["audio"], dtype=np.int16) for i in range(n)]
        made = iter(precompute_augmented_copies(originals, sample_rate, missing))
        for k, (name, params) in enumerate(ops):
            if out[k] is not None:
                continue
            _, waves = next(made)
            out[k] = [np.asarray(w, dtype=np.int16) for w in waves]
            if cache_dir:
                os.makedirs(cache_dir, exist_ok=True)
                _save(os.path.join(cache_dir, copy_name(name, params) + ".npz"), out[k], ids)
    return out  # type: ignore[return-value]


class AugmentedTrainSource:
    """Originals at indices ``[0, n)``, then op k's copies at ``[(k + 1) n, (k + 2) n)``.

    A copy is the original example with ``audio`` replaced and ``id`` suffixed with the copy name,
    so labels, speakers and the other modalities stay paired with it.

    Args:
      source: the training split (``len()`` and ``[i] -> dict``).
      ops: the ``(name, params)`` pairs the copies were made with.
      copies: :func:`load_or_make_copies`'s result for ``source`` and ``ops``.
    """

    def __init__(self, source, ops: Ops, copies: list[list[np.ndarray]]):
        self._source = source
        self._names = [copy_name(name, params) for name, params in ops]
        self._copies = copies

    def __len__(self) -> int:
        return len(self._source) * (1 + len(self._copies))

    def __getitem__(self, i: int):
        n = len(self._source)
        k, j = divmod(int(i), n)
        ex = self._source[j]
        if k == 0:
            return ex
        ex = dict(ex)
        ex["audio"] = self._copies[k - 1][j]
        if "id" in ex:
            ex["id"] = f"{as_str(ex['id'])}_{self._names[k - 1]}"
        return ex
