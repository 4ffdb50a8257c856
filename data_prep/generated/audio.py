"""Voice-like audio: a harmonic source with an emotion-dependent prosody and a speaker's timbre."""

from __future__ import annotations

import numpy as np
from scipy import signal

from data_prep.generated.design import AUDIO_GROUP, AUDIO_SIDE

SAMPLE_RATE = 16_000

# Per audio group (see design.py): f0 multiplier of the speaker's base pitch, f0 slope over the clip
# (relative), intonation depth (relative), syllable rate (Hz), level (dB), spectral tilt (harmonic k
# has amplitude k**-tilt, so a larger tilt is a darker voice).
_F0_MULT = np.array([0.85, 1.35, 1.15])
_SLOPE = np.array([-0.15, 0.30, 0.0])
_DEPTH = np.array([0.04, 0.18, 0.08])
_RATE = np.array([2.5, 4.5, 7.0])
_LEVEL_DB = np.array([-9.0, -4.0, 0.0])
_TILT = np.array([1.9, 1.3, 0.7])

_TABLE = 1024  # samples per period of the wavetable (a power of two, so wrapping is a bit mask)
_MAX_HARM = 40
# sin(2 pi k n / _TABLE) for harmonics k = 1.._MAX_HARM, shared by every clip.
_BASIS = np.sin(2 * np.pi * np.outer(np.arange(1, _MAX_HARM + 1), np.arange(_TABLE)) / _TABLE)


def sample_speaker(rng: np.random.Generator) -> dict[str, float]:
    """Draws a speaker's voice: base pitch, two formants, tilt and level offsets."""
    return {
        "f0": float(np.exp(rng.uniform(np.log(95.0), np.log(230.0)))),
        "f1": float(rng.uniform(450.0, 800.0)),
        "f2": float(rng.uniform(1200.0, 2300.0)),
        "tilt": float(rng.normal(0.0, 0.12)),
        "level_db": float(rng.normal(0.0, 1.5)),
    }


def _resonate(x: np.ndarray, freq: float, bandwidth: float) -> np.ndarray:
    """Two-pole resonator; lfilter keeps this fast for a whole clip."""
    r = np.exp(-np.pi * bandwidth / SAMPLE_RATE)
    theta = 2 * np.pi * freq / SAMPLE_RATE
    y = signal.lfilter([1.0 - r], [1.0, -2 * r * np.cos(theta), r * r], x)
    return y / (np.std(y) + 1e-9)  # unit RMS: the caller sets each formant's weight


def synthesize(rng: np.random.Generator, label: int, speaker: dict[str, float],
               num_samples: int, within: float) -> np.ndarray:
    """Returns one int16 waveform of ``num_samples`` at 16 kHz for class ``label``.

    Args:
      rng: the example's generator (consumed in a fixed order, so output is seed-deterministic).
      label: class index into ``design.CLASSES``.
      speaker: from :func:`sample_speaker`.
      num_samples: clip length.
      within: strength of the weak within-pair cue (0 = the pair is indistinguishable).
    """
    g = AUDIO_GROUP[label]
    nudge = AUDIO_SIDE[label] * within
    t = np.arange(num_samples) / SAMPLE_RATE
    dur = num_samples / SAMPLE_RATE

    # Pitch contour: mean, slope and an intonation wobble, all group-dependent.
    f0_mean = speaker["f0"] * _F0_MULT[g] * (1 + 0.04 * nudge) * np.exp(rng.normal(0, 0.06))
    slope = _SLOPE[g] + rng.normal(0, 0.05)
    depth = _DEPTH[g] * rng.uniform(0.7, 1.3)
    wobble = np.sin(2 * np.pi * rng.uniform(1.2, 2.5) * t + rng.uniform(0, 2 * np.pi))
    f0 = f0_mean * (1 + slope * (t / dur - 0.5) + depth * wobble)
    phase = np.cumsum(f0) / SAMPLE_RATE  # in periods

    # Wavetable source instead of per-sample harmonic sums: one period, band-limited below 7 kHz.
    tilt = _TILT[g] + speaker["tilt"] + rng.normal(0, 0.1) - 0.1 * nudge
    n_harm = max(1, min(_MAX_HARM, int(7000.0 // f0.max())))
    table = (np.arange(1, n_harm + 1) ** -tilt) @ _BASIS[:n_harm]
    source = table[(phase * _TABLE).astype(np.int64) & (_TABLE - 1)]
    source = source / (np.std(source) + 1e-9)
    voice = source + 0.9 * _resonate(source, speaker["f1"], 90.0) + 0.6 * _resonate(
        source, speaker["f2"], 140.0)

    # Syllable-like amplitude modulation at a group-dependent rate (with slow rate drift).
    rate = _RATE[g] * (1 + 0.05 * nudge) * rng.uniform(0.88, 1.12)
    drift = 1 + 0.12 * np.sin(2 * np.pi * rng.uniform(0.3, 0.8) * t + rng.uniform(0, 2 * np.pi))
    syl_phase = 2 * np.pi * np.cumsum(rate * drift) / SAMPLE_RATE + rng.uniform(0, 2 * np.pi)
    hump = 0.5 - 0.5 * np.cos(syl_phase)
    envelope = 0.08 + 0.92 * hump * np.sqrt(hump)  # hump ** 1.5: sharper syllable peaks
    fade = np.minimum(1.0, np.minimum(t, dur - t) / 0.02)
    voice = voice * envelope * fade

    level_db = -20.0 + _LEVEL_DB[g] + speaker["level_db"] + rng.normal(0, 1.5)
    voice = voice / (np.sqrt(np.mean(voice**2)) + 1e-9) * 10 ** (level_db / 20)
    noise_db = rng.uniform(-48.0, -34.0)
    wave = voice + 10 ** (noise_db / 20) * rng.standard_normal(num_samples, dtype=np.float32)
    return np.round(np.clip(wave, -1.0, 1.0) * 32767).astype(np.int16)
