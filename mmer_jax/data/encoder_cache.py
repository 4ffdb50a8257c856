"""The encoder-feature cache: a pretrained encoder's layers for every clip of a build, on disk.

Written once per (build, encoder, front-end settings) by :mod:`mmer_jax.train.encoder_features`
and read here, by clip id, as the feature-stream modality ``encoder_feat``: every fold and seed
of a protocol reads the same cache, so the encoder runs once per corpus.

Layout (``<build dir>/encoder_features/<encoder name>-<key16>/``):

- ``shard-NNNNN.array_record``: one record per clip, msgpack ``{"id": str, "x": float16
  array}`` with ``x`` [T, L, D] (``store = "frames"``: every hidden state's frames) or [1, L, 2D]
  (``"pooled"``: per hidden state the mean and standard deviation over the clip's frames);
- ``shard-NNNNN.json``: the shard's clip ids in order, written once the shard is closed (a shard
  without it is partial and is recomputed);
- ``meta.json``: written last, once every clip of the build is in a closed shard: the key's
  parts, the clip count, ``layers`` (L), ``hidden_size`` (D), ``store``.

``key16`` is the first 16 hex digits of the sha256 over: the build's fingerprint (its
``dataset_info.json`` and ``folds.json``: the stored examples), the encoder import's source
sha256 and architecture config, the front-end settings and the cache format version. A change of
any of them is a different directory: a stale cache is never read, and a cache whose meta.json
disagrees with its key is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from mmer_jax.errors import RunError, UsageError
from mmer_jax.schema import DataConfig

FORMAT_VERSION = 1
META = "meta.json"
STREAM = "encoder_feat"


def encoder_record(encoder_dir: str) -> dict:
    """``encoder.json`` of an imported encoder (read as JSON: this layer imports no model code).

    Raises:
      UsageError: ``data.encoder`` is not an imported encoder directory.
    """
    path = Path(encoder_dir).expanduser() / "encoder.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"config key 'data.encoder': {path} is not readable ({exc}); import an "
                         "encoder with `mmer encoders import` or `mmer encoders fetch`") from None


def encoder_states(encoder_dir: str) -> int:
    """Hidden states per frame an encoder gives (its layers + 1: the layer-0 input too).

    Raises:
      UsageError: not an imported encoder directory, or one without a layer count.
    """
    cfg = encoder_record(encoder_dir).get("config", {})
    layers = cfg.get("encoder_layers") or cfg.get("num_hidden_layers")
    if not layers:
        raise UsageError(f"config key 'data.encoder': {encoder_dir} records no layer count "
                         "(encoder_layers / num_hidden_layers)")
    return int(layers) + 1


def build_fingerprint(builder_dir: str) -> str:
    """sha256 over the build's ``dataset_info.json`` and (when present) ``folds.json``."""
    h = hashlib.sha256()
    for name in ("dataset_info.json", "folds.json"):
        f = Path(builder_dir) / name
        if f.is_file():
            h.update(name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def cache_key(builder_dir: str, data: DataConfig) -> dict[str, Any]:
    """The parts that name a cache: build, encoder, front end, format."""
    rec = encoder_record(data.encoder)
    return {
        "format_version": FORMAT_VERSION,
        "build": build_fingerprint(builder_dir),
        "encoder_sha256": rec["source"]["sha256"],
        "architecture": rec["architecture"],
        "encoder_config": rec["config"],
        "frontend": {"sample_rate": data.sample_rate, "window_s": data.encoder_window_s,
                     **({"window": data.encoder_window} if data.encoder_window != "own_length"
                        else {}),
                     "store": data.encoder_store},
    }


def cache_dir(builder_dir: str, data: DataConfig) -> Path:
    """Where the cache of ``data.encoder`` over the build in ``builder_dir`` lives."""
    key = cache_key(builder_dir, data)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    name = Path(data.encoder).expanduser().resolve().name.rsplit("-", 1)[0] or "encoder"
    return Path(builder_dir) / "encoder_features" / f"{name}-{digest}"


def is_complete(directory: Path, key: dict) -> bool:
    """``meta.json`` exists and records ``key``.

    Raises:
      RunError: a ``meta.json`` whose key differs (a cache written by other settings under this
        name: refused, never reused).
    """
    meta = Path(directory) / META
    if not meta.is_file():
        return False
    got = json.loads(meta.read_text())
    if got.get("key") != json.loads(json.dumps(key)):
        raise RunError(f"{directory}: its {META} records other settings than this run's; "
                       "delete the directory to rebuild it")
    return True


class EncoderCache:
    """A complete cache, read by clip id.

    Decoded clips are kept in memory up to ``memory_mb`` (float16, as stored), so epochs after
    the first read no file.

    Args:
      directory: the cache directory (see :func:`cache_dir`).
      memory_mb: the in-memory budget of decoded clips.

    Attributes:
      layers, hidden_size, store: from ``meta.json``.

    Raises:
      RunError: the directory holds no complete cache.
    """

    def __init__(self, directory: str | os.PathLike, memory_mb: int = 4096):
        from array_record.python import array_record_module as ar

        self._memory: dict[str, np.ndarray] = {}
        self._budget = memory_mb << 20
        self.directory = Path(directory)
        meta_path = self.directory / META
        if not meta_path.is_file():
            raise RunError(f"{self.directory}: no complete encoder-feature cache ({META} missing)")
        meta = json.loads(meta_path.read_text())
        self.layers, self.hidden_size = int(meta["layers"]), int(meta["hidden_size"])
        self.store = meta["key"]["frontend"]["store"]
        self._where: dict[str, tuple[int, int]] = {}
        self._readers = []
        for k, shard in enumerate(meta["shards"]):
            ids = json.loads((self.directory / f"{shard}.json").read_text())
            self._readers.append(ar.ArrayRecordReader(
                str(self.directory / f"{shard}.array_record"), "readahead_buffer_size:0"))
            self._where.update({cid: (k, i) for i, cid in enumerate(ids)})

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, clip_id: str) -> bool:
        return clip_id in self._where

    def get(self, clip_id: str) -> np.ndarray:
        """Clip ``clip_id``'s features, float16 [T, L, D] (frames) or [1, L, 2D] (pooled).

        Raises:
          RunError: no such clip in the cache (names the clip and the directory).
        """
        from flax import serialization

        if clip_id in self._memory:
            return self._memory[clip_id]
        if clip_id not in self._where:
            raise RunError(f"{self.directory}: no features for clip {clip_id!r} (a cache of "
                           "another build?)")
        k, i = self._where[clip_id]
        x = np.asarray(serialization.msgpack_restore(self._readers[k].read([i])[0])["x"])
        if x.nbytes <= self._budget:
            self._budget -= x.nbytes
            self._memory[clip_id] = x
            x.setflags(write=False)  # shared by every reader of the clip
        return x


class EncoderFeatureSource:
    """A source whose records also carry ``encoder_feat`` [T, L * D] float32, read from the
    cache by the record's ``id``.

    Args:
      source: any random-access source of the build's records.
      cache: the :class:`EncoderCache`.
    """

    def __init__(self, source, cache: EncoderCache):
        self._source, self._cache = source, cache

    def __len__(self) -> int:
        return len(self._source)

    def __getitem__(self, i: int) -> dict:
        record = dict(self._source[i])
        cid = record["id"].decode() if isinstance(record["id"], bytes) else str(record["id"])
        x = self._cache.get(cid)
        record[STREAM] = x.reshape(x.shape[0], -1)
        return record
