"""Offline audio augmentations: pitch shift and time stretch, applied once to make copies.

``librosa.effects.pitch_shift`` costs ~29 ms per 3 s clip (a phase vocoder plus a resample), i.e.
a whole core for ~35 clips/s, more than a training step's budget. So these run once per corpus
(``data.offline_augment``) and the copies are read back like any other example: see
:mod:`mmer_jax.data.augment.cache`, which stores them beside the prepared dataset. Only the
training split gets copies; validation and test stay untouched so results stay comparable.

Every op has the signature ``op(wave, sr, **params) -> wave``. Waves keep their dtype convention:
int16 in, int16 out (rounded and clipped); float in, float32 out.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mmer_jax.errors import UsageError
from mmer_registry import Registry

# name -> op(wave, sr, **params) -> wave; the names ``data.offline_augment`` accepts.
OFFLINE_AUGMENTATIONS: Registry[Callable[..., np.ndarray]] = Registry("offline augmentation")


def _to_float(wave: np.ndarray) -> np.ndarray:
    wave = np.asarray(wave)
    if wave.dtype == np.int16:
        return wave.astype(np.float32) / np.float32(32768.0)
    return wave.astype(np.float32, copy=False)


def _like(out: np.ndarray, ref: np.ndarray) -> np.ndarray:
    if np.asarray(ref).dtype == np.int16:
        return np.clip(np.round(out * 32768.0), -32768, 32767).astype(np.int16)
    return out.astype(np.float32, copy=False)


@OFFLINE_AUGMENTATIONS.register("pitch_shift")
def pitch_shift(wave: np.ndarray, sr: int = 16000, n_steps: float = 2.0) -> np.ndarray:
    """Shifts pitch by ``n_steps`` semitones, keeping the duration (phase vocoder + resample).

    Args:
      wave: [N] int16 PCM or float waveform in [-1, 1].
      sr: sample rate in Hz.
      n_steps: semitones; frequencies scale by ``2 ** (n_steps / 12)``.

    Returns:
      [N] waveform, int16 for int16 input, else float32.
    """
    import librosa  # lazy: a heavy import, and absent on the device machine

    return _like(librosa.effects.pitch_shift(_to_float(wave), sr=sr, n_steps=n_steps), wave)


@OFFLINE_AUGMENTATIONS.register("time_stretch")
def time_stretch(wave: np.ndarray, sr: int = 16000, rate: float = 0.9) -> np.ndarray:
    """Changes tempo by ``rate`` without changing pitch (librosa phase vocoder).

    Args:
      wave: [N] int16 PCM or float waveform in [-1, 1].
      sr: unused; accepted so every offline op has the same ``(wave, sr, **params)`` signature.
      rate: > 1 speeds up (shorter output), < 1 slows down.

    Returns:
      [~N / rate] waveform, int16 for int16 input, else float32.
    """
    import librosa

    del sr
    return _like(librosa.effects.time_stretch(_to_float(wave), rate=rate), wave)


def copy_name(name: str, params: dict[str, Any]) -> str:
    """Stable, id-safe name of one augmented copy, parameters sorted by key.

    ``("pitch_shift", {"n_steps": -2})`` -> ``"pitch_shift_n_steps_m2"``. It names the cache file
    and suffixes the copied example's ``id``.
    """
    parts = [name] + [f"{k}_{v}" for k, v in sorted(params.items())]
    return "_".join(parts).replace("-", "m")


def parse_ops(specs: Sequence[Any]) -> list[tuple[str, dict[str, Any]]]:
    """``data.offline_augment`` entries -> ``(name, params)`` pairs.

    Args:
      specs: mappings such as ``[{"name": "pitch_shift", "n_steps": 2}]``.

    Returns:
      ``[("pitch_shift", {"n_steps": 2})]``, in ``specs`` order.

    Raises:
      UsageError: an entry's name is missing or not in :data:`OFFLINE_AUGMENTATIONS`; the message
        names the config key (``data.offline_augment[i]``) and the known names.
    """
    ops = []
    for i, spec in enumerate(specs):
        params = dict(spec)
        name = params.pop("name", None)
        if name not in OFFLINE_AUGMENTATIONS:
            known = ", ".join(OFFLINE_AUGMENTATIONS.names())
            raise UsageError(
                f"config key 'data.offline_augment[{i}]': unknown op {name!r}; known: {known}"
            )
        ops.append((name, params))
    return ops


def precompute_augmented_copies(
    waves: Sequence[np.ndarray],
    sr: int,
    ops: Sequence[tuple[str, dict[str, Any]]] = (
        ("pitch_shift", {"n_steps": 2}),
        ("pitch_shift", {"n_steps": -2}),
        ("time_stretch", {"rate": 0.9}),
        ("time_stretch", {"rate": 1.1}),
    ),
    progress: bool | None = None,
) -> list[tuple[str, list[np.ndarray]]]:
    """Applies each offline op to every wave, once, with a tqdm progress bar.

    Args:
      waves: 1-D waveforms (int16 PCM or float), any lengths.
      sr: their sample rate in Hz.
      ops: ``(op_name, params)`` pairs; names are keys of :data:`OFFLINE_AUGMENTATIONS`.
      progress: show the progress bar (one bar over all ops x waves); None: only on a terminal,
        or as ``MMER_PROGRESS=1``/``0`` forces.

    Returns:
      One ``(copy_name(op_name, params), augmented_waves)`` per op, in ``ops`` order; the waves
      are in ``waves`` order.

    Raises:
      UnknownName (a KeyError): an op name is not in :data:`OFFLINE_AUGMENTATIONS` (checked
        before any work is done; the message lists the known names).
    """
    from tqdm.auto import tqdm

    if progress is None:
        forced = os.environ.get("MMER_PROGRESS")
        progress = forced == "1" if forced in ("0", "1") else sys.stderr.isatty()
    fns = [OFFLINE_AUGMENTATIONS.get(name) for name, _ in ops]
    out = []
    with tqdm(total=len(ops) * len(waves), desc="augmented copies", disable=not progress) as bar:
        for fn, (name, params) in zip(fns, ops, strict=True):
            copies = []
            for wave in waves:
                copies.append(fn(wave, sr, **params))
                bar.update(1)
            out.append((copy_name(name, params), copies))
    return out


__all__ = [
    "OFFLINE_AUGMENTATIONS",
    "copy_name",
    "parse_ops",
    "pitch_shift",
    "precompute_augmented_copies",
    "time_stretch",
]
