"""Pitch shift / time stretch, too slow to run per step, applied once to make augmented copies.

``librosa.effects.pitch_shift`` costs ~29 ms per 3 s clip (a phase vocoder plus a resample), i.e.
a whole core for ~35 clips/s — more than a training step's budget. So these run once, when a dataset
is built or cached, and the copies are read back like any other example. Two ways to use them:

* **Builder config** (preferred, what ``DESIGN.md`` sketches): a corpus builder adds a config such
  as ``speech_aug`` whose ``train`` split yields, next to each original, one example per op, with
  the id suffixed by :func:`copy_name` (``"03-01-05-01_pitch_shift_n_steps_2"``)::

      copies = precompute_augmented_copies(waves, 16000, [("pitch_shift", {"n_steps": 2})])
      for name, waves_aug in copies:
          for ex, w in zip(examples, waves_aug):
              yield f"{ex['id']}_{name}", {**ex, "id": f"{ex['id']}_{name}", "audio": w}

  Only the training split gets copies; validation/test stay untouched so results stay comparable.
* **Cache next to the dataset**: run it over a split's audio once and write the copies to an
  ``array_record`` file beside the TFDS files (same feature dict, ids suffixed as above), then
  concatenate the two data sources in the input pipeline.

Waves keep their dtype: int16 in, int16 out (rounded and clipped); float in, float32 out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def _to_float(wave: np.ndarray) -> np.ndarray:
    wave = np.asarray(wave)
    if wave.dtype == np.int16:
        return wave.astype(np.float32) / np.float32(32768.0)
    return wave.astype(np.float32, copy=False)


def _like(out: np.ndarray, ref: np.ndarray) -> np.ndarray:
    if np.asarray(ref).dtype == np.int16:
        return np.clip(np.round(out * 32768.0), -32768, 32767).astype(np.int16)
    return out.astype(np.float32, copy=False)


def pitch_shift(wave: np.ndarray, sr: int = 16000, n_steps: float = 2.0) -> np.ndarray:
    """Shifts pitch by ``n_steps`` semitones, keeping the duration (phase vocoder + resample).

    Args:
      wave: [N] int16 or float waveform.
      sr: sample rate in Hz.
      n_steps: semitones; frequencies scale by ``2 ** (n_steps / 12)``.

    Returns:
      [N] waveform, same dtype convention as the input.
    """
    import librosa  # lazy: heavy import, and absent on the device machine

    return _like(librosa.effects.pitch_shift(_to_float(wave), sr=sr, n_steps=n_steps), wave)


def time_stretch(wave: np.ndarray, sr: int = 16000, rate: float = 0.9) -> np.ndarray:
    """Changes tempo by ``rate`` without changing pitch (librosa phase vocoder).

    Args:
      wave: [N] int16 or float waveform.
      sr: unused; accepted so every offline op has the same ``(wave, sr, **params)`` signature.
      rate: > 1 speeds up (shorter output), < 1 slows down; output has ~``N / rate`` samples.

    Returns:
      [~N / rate] waveform, same dtype convention as the input.
    """
    import librosa

    del sr
    return _like(librosa.effects.time_stretch(_to_float(wave), rate=rate), wave)


OFFLINE_OPS: dict[str, Callable[..., np.ndarray]] = {
    "pitch_shift": pitch_shift,
    "time_stretch": time_stretch,
}


def copy_name(name: str, params: dict[str, Any]) -> str:
    """Stable, id-safe name of one augmented copy: ``("pitch_shift", {"n_steps": 2})`` →
    ``"pitch_shift_n_steps_2"`` (parameters sorted by key)."""
    parts = [name] + [f"{k}_{v}" for k, v in sorted(params.items())]
    return "_".join(parts).replace("-", "m")


def precompute_augmented_copies(
    waves: Sequence[np.ndarray],
    sr: int,
    ops: Sequence[tuple[str, dict[str, Any]]] = (
        ("pitch_shift", {"n_steps": 2}),
        ("pitch_shift", {"n_steps": -2}),
        ("time_stretch", {"rate": 0.9}),
        ("time_stretch", {"rate": 1.1}),
    ),
    progress: bool = True,
) -> list[tuple[str, list[np.ndarray]]]:
    """Applies each offline op to every wave, once, with a tqdm progress bar.

    Args:
      waves: 1-D waveforms (int16 or float), any lengths.
      sr: their sample rate.
      ops: ``(op_name, params)`` pairs; op names are keys of :data:`OFFLINE_OPS`.
      progress: show the progress bar (one bar over all ops × waves).

    Returns:
      One ``(copy_name(op_name, params), augmented_waves)`` per op, in ``ops`` order; the waves
      are in ``waves`` order.

    Raises:
      KeyError: an op name is not in :data:`OFFLINE_OPS`.
    """
    from tqdm.auto import tqdm

    for name, _ in ops:
        if name not in OFFLINE_OPS:
            raise KeyError(f"unknown offline augmentation {name!r}; known: {sorted(OFFLINE_OPS)}")
    out = []
    with tqdm(total=len(ops) * len(waves), desc="augmented copies", disable=not progress) as bar:
        for name, params in ops:
            fn = OFFLINE_OPS[name]
            copies = []
            for wave in waves:
                copies.append(fn(wave, sr, **params))
                bar.update(1)
            out.append((copy_name(name, params), copies))
    return out
