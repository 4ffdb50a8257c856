"""Per-speaker feature normalisation (``data.speaker_norm``): statistics over every clip of a
speaker, labels unused.

Speaker-independent emotion recognition suffers most from what differs between speakers (vocal
tract length, habitual pitch and level, recording channel). Subtracting each speaker's mean
feature vector (and, with "mean_var", dividing by its standard deviation) removes that while
keeping what varies *within* a speaker: level and spectral shape move with arousal, and
per-utterance normalisation would erase them. The statistics of a held-out speaker come from that
speaker's own unlabelled clips, as in the usual speaker-normalised leave-speakers-out protocols
(e.g. Busso et al., "Iterative feature normalization scheme for automatic emotion detection from
speech", IEEE TAC 2013); the reports say so in their protocol.

Statistics are taken over the valid frames of each stored clip (the centre window of at most
``data.max_audio_s``, as evaluation reads it), of every split, before offline copies are added.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from mmer_jax.data.sources import as_str, window
from mmer_jax.errors import RunError
from mmer_jax.io_utils import atomic_write_json
from mmer_jax.schema import DataConfig

STATS_FILE = "speaker_norm.json"  # in the run directory: what the run normalised with
_CHUNK = 32  # clips per feature call (one padded shape per chunk length bucket)


def speaker_statistics(
    records: Iterable[Mapping[str, Any]], data: DataConfig
) -> dict[str, dict[str, Any]]:
    """Mean and standard deviation of the run's audio features per speaker.

    Args:
      records: stored records with ``speaker`` (bytes or str) and ``audio`` [N] int16 PCM.
      data: the data section (frontend, feature sizes; ``feature_norm`` must be False).

    Returns:
      ``{speaker: {"mean": [F] float32, "std": [F] float32, "frames": int, "clips": int}}``; the
      standard deviation is floored at 1e-3.

    Raises:
      RunError: a record has no ``speaker`` field (the corpus stores none), or a speaker has no
        valid frame.
    """
    import jax.numpy as jnp  # the feature function runs on the device, as in training

    from mmer_jax.data.device import audio_features

    max_len = int(data.max_audio_s * data.sample_rate)
    total: dict[str, np.ndarray] = {}
    total_sq: dict[str, np.ndarray] = {}
    frames: dict[str, int] = defaultdict(int)
    clips: dict[str, int] = defaultdict(int)

    def flush(chunk: list[tuple[str, np.ndarray]]) -> None:
        width = max(len(p) for _, p in chunk)
        width = -(-width // data.hop) * data.hop  # a few shapes only: multiples of the hop
        pcm = np.zeros((len(chunk), width), np.int16)
        lens = np.array([len(p) for _, p in chunk], np.int32)
        for i, (_, p) in enumerate(chunk):
            pcm[i, : len(p)] = p
        feats, mask = audio_features(jnp.asarray(pcm), jnp.asarray(lens), data)
        feats = np.asarray(feats, np.float64)
        mask = np.asarray(mask)
        for i, (spk, _) in enumerate(chunk):
            f = feats[i][mask[i]]
            total[spk] = total.get(spk, 0.0) + f.sum(0)
            total_sq[spk] = total_sq.get(spk, 0.0) + (f * f).sum(0)
            frames[spk] += len(f)
            clips[spk] += 1

    chunk: list[tuple[str, np.ndarray]] = []
    for rec in records:
        if "speaker" not in rec:
            raise RunError("data.speaker_norm needs a 'speaker' field in every record; this "
                           "corpus stores none (set data.speaker_norm='none')")
        chunk.append((as_str(rec["speaker"]), window(np.asarray(rec["audio"], np.int16),
                                                      max_len)))
        if len(chunk) == _CHUNK:
            flush(chunk)
            chunk = []
    if chunk:
        flush(chunk)
    out = {}
    for spk in sorted(frames):
        n = frames[spk]
        if n == 0:
            raise RunError(f"data.speaker_norm: speaker {spk!r} has no valid audio frame")
        mean = total[spk] / n
        std = np.sqrt(np.maximum(total_sq[spk] / n - mean * mean, 0.0))
        out[spk] = {"mean": mean.astype(np.float32), "std": np.maximum(std, 1e-3).astype(
            np.float32), "frames": int(n), "clips": int(clips[spk])}
    return out


def norm_table(stats: Mapping[str, Mapping[str, Any]], mode: str) -> dict[str, np.ndarray]:
    """``{speaker: [2, F] float32}``: (shift, scale) rows for ``(features - shift) * scale``.

    Args:
      stats: :func:`speaker_statistics`' result.
      mode: "mean" (scale 1) or "mean_var" (scale 1 / std).

    Raises:
      ValueError: ``mode`` is neither.
    """
    if mode not in ("mean", "mean_var"):
        raise ValueError(f"speaker_norm mode {mode!r} must be 'mean' or 'mean_var'")
    table = {}
    for spk, s in stats.items():
        mean = np.asarray(s["mean"], np.float32)
        scale = np.ones_like(mean) if mode == "mean" else 1.0 / np.asarray(s["std"], np.float32)
        table[spk] = np.stack([mean, scale]).astype(np.float32)
    return table


def save_statistics(stats: Mapping[str, Mapping[str, Any]], workdir: str) -> str:
    """Writes ``stats`` to ``<workdir>/speaker_norm.json`` (lists of floats); returns the path."""
    path = os.path.join(workdir, STATS_FILE)
    atomic_write_json(path, {spk: {"mean": np.asarray(s["mean"]).tolist(),
                                   "std": np.asarray(s["std"]).tolist(),
                                   "frames": s["frames"], "clips": s["clips"]}
                             for spk, s in stats.items()})
    return path


def load_statistics(path: str) -> dict[str, dict[str, Any]]:
    """Reads a ``speaker_norm.json`` written by :func:`save_statistics`."""
    with open(path) as f:
        raw = json.load(f)
    return {spk: {"mean": np.asarray(s["mean"], np.float32),
                  "std": np.asarray(s["std"], np.float32),
                  "frames": int(s["frames"]), "clips": int(s["clips"])} for spk, s in raw.items()}
