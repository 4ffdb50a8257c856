"""Computes the encoder-feature cache (:mod:`mmer_jax.data.encoder_cache`) of a build: a
pretrained speech encoder's hidden states for every clip, once.

Every clip of every stored split is read (fold protocols are views over them), cut into windows
of ``data.encoder_window_s`` when longer, and encoded at its own length in padded batches of
similar lengths (the encoders honour padding masks, so a clip's features do not depend on its
batch beyond float32 rounding); the windows' frames are concatenated. Whisper reads its log-mel
front end (:func:`mmer_jax.data.whisper_features.whisper_log_mel`, float64 on the host),
wav2vec 2.0 / HuBERT / WavLM the waveform. Shards of ``SHARD_CLIPS`` clips are closed as they
fill, so an interrupted computation resumes from the last closed shard; ``meta.json`` is written
last. A lock file serialises processes that start on the same cache (seeds and folds launched as
parallel jobs).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from mmer_jax.data import encoder_cache, sources
from mmer_jax.errors import UsageError
from mmer_jax.io_utils import atomic_write_json
from mmer_jax.schema import DataConfig

SHARD_CLIPS = 256
BATCH_SECONDS = 64.0  # padded audio per encoder call
LENGTH_STEP_S = 0.5  # padded lengths are multiples of this (few compiled shapes)
SPEECH = ("whisper", "wav2vec2", "hubert", "wavlm")


def _all_clips(builder) -> list[tuple[str, np.ndarray]]:
    """(id, int16 audio) of every stored example, splits in sorted order.

    Raises:
      UsageError: the build stores no audio or an id twice.
    """
    out, seen = [], set()
    for split in sorted(builder.info.splits.keys()):
        for rec in sources.iterate(builder.as_data_source(split=split)):
            if "audio" not in rec:
                raise UsageError(f"data.encoder: corpus {builder.name!r} stores no audio")
            cid = sources.as_str(rec["id"])
            if cid in seen:
                raise UsageError(f"data.encoder: clip id {cid!r} occurs twice in the build")
            seen.add(cid)
            out.append((cid, np.asarray(rec["audio"], np.int16)))
    return out


class _Encoder:
    """An imported speech encoder as ``encode(waves [B, N] float32, lengths [B]) -> list of
    [T_b, L, D] float32`` (each row's valid frames)."""

    def __init__(self, path: str):
        from mmer_jax.weights import store

        enc = store.load(path)
        if enc.record["architecture"] not in SPEECH:
            raise UsageError(f"config key 'data.encoder': {path} is a "
                             f"{enc.record['architecture']!r} encoder; the encoder-feature cache "
                             f"holds speech encoders ({', '.join(SPEECH)})")
        self.architecture = enc.record["architecture"]
        self.config = enc.config
        self.variables = jax.device_put(enc.variables)
        module = enc.module()

        def apply(variables, x, mask):
            out = module.apply(variables, x, mask)
            return jnp.stack(out.hidden_states, axis=2), out.mask  # [B, T, L, D], [B, T]

        self._apply = jax.jit(apply)
        self.calls = 0  # encoder invocations (tests count them)

    def encode(self, waves: np.ndarray, lengths: np.ndarray,
               keep: np.ndarray | None = None) -> list[np.ndarray]:
        """waves [B, N] float32, lengths [B] valid samples -> per row [T_b, L, D] float32; with
        ``keep`` (samples per row), only the frames of the first ``keep`` samples are returned
        (a clip encoded inside a zero-padded window)."""
        if self.architecture == "whisper":
            from mmer_jax.data.whisper_features import whisper_log_mel

            x, mask = whisper_log_mel(waves, lengths, precision="float64")
        else:
            x, mask = waves, np.arange(waves.shape[1])[None] < lengths[:, None]
        states, out_mask = self._apply(self.variables, jnp.asarray(x), jnp.asarray(mask))
        self.calls += 1
        states, n = np.asarray(states, np.float32), np.asarray(out_mask).sum(-1)
        if keep is not None:
            n = np.minimum(n, self.frames(keep))
        # Copies: a view would keep the whole batch (a 30-s window's states) alive per clip.
        return [states[b, : n[b]].copy() for b in range(len(n))]

    def frames(self, samples: np.ndarray) -> np.ndarray:
        """Encoder frames of ``samples`` samples of 16-kHz audio."""
        if self.architecture == "whisper":
            return (samples // 160 - 1) // 2 + 1
        from mmer_jax.models.pretrained.conv_features import conv_output_lengths

        c = self.config
        return np.asarray(conv_output_lengths(samples, c.conv_kernel, c.conv_stride))


def _windows(audio: np.ndarray, width: int) -> list[np.ndarray]:
    return [audio[i:i + width] for i in range(0, max(len(audio), 1), width)] or [audio]


def _encode_clips(enc: _Encoder, clips: list[tuple[str, np.ndarray]], data: DataConfig,
                  done: Callable[[str, np.ndarray], None]) -> None:
    """Encodes ``clips`` (windows batched by padded length) and calls ``done(id, [T, L, D])``
    for each clip as soon as its last window is encoded (not in ``clips`` order)."""
    sr = data.sample_rate
    width = int(data.encoder_window_s * sr)
    step = width if data.encoder_window == "padded" else int(LENGTH_STEP_S * sr)
    segments = [(i, w) for i, (_, a) in enumerate(clips) for w in _windows(a, width)]
    pieces: dict[int, list] = {i: [] for i in range(len(clips))}
    order = sorted(range(len(segments)), key=lambda s: len(segments[s][1]))
    remaining = {i: 0 for i in range(len(clips))}
    for i, _ in segments:
        remaining[i] += 1
    k = 0
    while k < len(order):
        padded = max(step, -(-len(segments[order[k]][1]) // step) * step)
        group = []
        while (k < len(order) and len(segments[order[k]][1]) <= padded
               and (len(group) + 1) * padded <= BATCH_SECONDS * sr):
            group.append(order[k])
            k += 1
        group = group or [order[k - 1]]
        waves = np.zeros((len(group), padded), np.float32)
        lengths = np.array([len(segments[s][1]) for s in group], np.int32)
        for row, s in enumerate(group):
            waves[row, : lengths[row]] = segments[s][1].astype(np.float32) / 32768.0
        if data.encoder_window == "padded":  # the zeros are input: the whole window is valid
            encoded = enc.encode(waves, np.full_like(lengths, padded), keep=lengths)
        else:
            encoded = enc.encode(waves, lengths)
        for s, frames in zip(group, encoded, strict=True):
            clip = segments[s][0]
            pieces[clip].append((s, frames))
            remaining[clip] -= 1
            if remaining[clip] == 0:
                parts = [f for _, f in sorted(pieces.pop(clip), key=lambda p: p[0])]
                done(clips[clip][0], np.concatenate(parts, axis=0))


def _stored(frames: np.ndarray, store: str) -> np.ndarray:
    """[T, L, D] float32 -> what the cache stores, float16."""
    if store == "pooled":
        frames = np.concatenate([frames.mean(0), frames.std(0)], axis=-1)[None]  # [1, L, 2D]
    return frames.astype(np.float16)


def ensure_cache(builder, data: DataConfig, log: Callable[[str], None] = print,
                 progress: bool = True) -> Path:
    """The complete cache of ``data.encoder`` over ``builder``'s build, computed if missing or
    partial (resumed from its closed shards).

    Args:
      builder: the prepared TFDS builder (``sources.open_builder``).
      data: the run's data section (``encoder``, ``encoder_store``, ``encoder_window_s``,
        ``sample_rate``).
      log: where the one-line summary goes.
      progress: draw a progress bar (clips/s, ETA, cache size) on a terminal.

    Returns:
      The cache directory.

    Raises:
      UsageError: ``data.encoder`` is not an imported speech encoder, or the build stores no
        audio or a duplicate id.
      RunError: a ``meta.json`` under this cache's name records other settings.
    """
    from array_record.python import array_record_module as ar

    from mmer_jax.train.progress import progress_bar

    directory = encoder_cache.cache_dir(builder.data_dir, data)
    key = encoder_cache.cache_key(builder.data_dir, data)
    if encoder_cache.is_complete(directory, key):
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    with open(str(directory) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be computing the same cache
        if encoder_cache.is_complete(directory, key):
            return directory
        clips = _all_clips(builder)
        shards, have = [], set()
        while (directory / f"shard-{len(shards):05d}.json").is_file():
            name = f"shard-{len(shards):05d}"
            have.update(json.loads((directory / f"{name}.json").read_text()))
            shards.append(name)
        todo = [c for c in clips if c[0] not in have]
        enc = _Encoder(data.encoder)
        t0 = time.time()
        bar = progress_bar(len(todo), 0, f"encoder features ({enc.architecture})", progress)
        state = {"writer": None, "ids": [], "bytes": 0}

        def close_shard():
            state["writer"].close()
            atomic_write_json(directory / f"{shards[-1]}.json", state["ids"])
            state.update(writer=None, ids=[])

        def done(cid: str, frames: np.ndarray) -> None:
            from flax import serialization

            if state["writer"] is None:
                shards.append(f"shard-{len(shards):05d}")
                state["writer"] = ar.ArrayRecordWriter(
                    str(directory / f"{shards[-1]}.array_record"), "group_size:1")
            blob = serialization.msgpack_serialize({"id": cid, "x": _stored(frames,
                                                                           data.encoder_store)})
            state["writer"].write(blob)
            state["ids"].append(cid)
            state["bytes"] += len(blob)
            bar.update(1)
            bar.set_postfix(cache=f"{state['bytes'] / 2**20:.0f} MB")
            if len(state["ids"]) == SHARD_CLIPS:
                close_shard()

        try:
            _encode_clips(enc, todo, data, done)
            if state["writer"] is not None:
                close_shard()
        finally:
            bar.close()
        layers, hidden = _layer_shape(directory, shards)
        atomic_write_json(directory / encoder_cache.META, {
            "key": key, "clips": len(clips), "shards": shards, "layers": layers,
            "hidden_size": hidden, "encoder": os.path.abspath(os.path.expanduser(data.encoder)),
            "encoder_calls": enc.calls, "seconds": time.time() - t0})
        log(f"encoder features: {len(todo)} of {len(clips)} clips computed "
            f"({enc.calls} encoder calls, {time.time() - t0:.0f} s) -> {directory}")
    return directory


def _layer_shape(directory: Path, shards: list[str]) -> tuple[int, int]:
    """(L, D) of the stored features, read from the first record."""
    from array_record.python import array_record_module as ar
    from flax import serialization

    reader = ar.ArrayRecordReader(str(directory / f"{shards[0]}.array_record"))
    x = np.asarray(serialization.msgpack_restore(reader.read([0])[0])["x"])
    reader.close()
    return int(x.shape[1]), int(x.shape[2])
