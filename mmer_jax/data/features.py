"""Audio front ends: log-mel and MFCC features, on the host (librosa) and on the device (JAX).

Both implementations compute the same thing, so a model trained on one can be served with the other:

1. frame the waveform librosa-style with ``center=True`` and *reflect* padding of ``n_fft // 2``
   samples at both ends (``T = 1 + n_samples // hop`` frames),
2. periodic Hann window of length ``n_fft``, ``rfft``, power spectrum ``|X|^2``,
3. Slaney-style mel filterbank with Slaney area normalisation (librosa's defaults),
4. **natural log** of the mel power plus ``eps = 1e-6``: ``log(mel + 1e-6)``. The floor keeps
   digital silence finite (``log(1e-6) ~ -13.8``) and hides float32 FFT round-off in near-empty
   bins, which is what makes the host and device versions agree to ~1e-4,
5. optional ``top_db`` floor: values more than ``top_db`` decibels below the clip's maximum are
   raised to that level (``top_db`` is given in dB and converted to natural-log units),
6. MFCC only: orthonormal DCT-II over the mel axis, keeping the first ``n_mfcc`` coefficients — the
   same transform ``librosa.feature.mfcc`` applies to its log-mel input (librosa's own default
   input is ``10 * log10`` power, i.e. ours times ``10 / ln 10``, plus an 80 dB floor).

Waveforms are float32 in [-1, 1]; convert stored int16 audio with :func:`pcm16_to_float` first (the
host functions accept int16 and convert themselves).

The device path (:class:`LogMel`, :func:`logmel_jax`, :func:`mfcc_jax`) needs only jax and numpy:
the mel and DCT matrices are built here in numpy; librosa is used only by the host functions,
imported lazily inside them.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

EPS = 1e-6  # floor added to mel power before the log; see module docstring.


def pcm16_to_float(x):
    """Converts int16 PCM samples to float32 in [-1, 1).

    Args:
      x: int16 samples, numpy or JAX array of any shape.

    Returns:
      float32 array of the same shape and array type, ``x / 32768``.
    """
    return x.astype(np.float32) / np.float32(32768.0)


def num_frames(n_samples, hop: int):
    """Number of centred frames librosa produces for ``n_samples`` samples (0 for an empty signal).

    Works on Python ints, numpy arrays and JAX arrays alike.
    """
    if isinstance(n_samples, (int, np.integer)):
        return 1 + int(n_samples) // hop if n_samples > 0 else 0
    xp = jnp if isinstance(n_samples, jax.Array) else np
    return xp.where(n_samples > 0, 1 + n_samples // hop, 0)


def _top_db_nat(top_db: float) -> float:
    # A power ratio of top_db decibels is top_db / 10 * ln(10) in natural-log units.
    return float(top_db) / 10.0 * math.log(10.0)


# --------------------------------------------------------------------------------------------------
# Host front end (numpy + librosa)
# --------------------------------------------------------------------------------------------------
def logmel_host(
    wave: np.ndarray,
    sr: int = 16000,
    n_mels: int = 64,
    n_fft: int = 400,
    hop: int = 160,
    fmin: float = 0.0,
    fmax: float | None = None,
    top_db: float | None = None,
) -> np.ndarray:
    """Log-mel spectrogram of one waveform with librosa.

    Args:
      wave: [N] float waveform in [-1, 1], or int16 PCM.
      sr: sample rate in Hz.
      n_mels: number of mel bands.
      n_fft: FFT size and window length (400 = 25 ms at 16 kHz).
      hop: hop length in samples (160 = 10 ms at 16 kHz).
      fmin: lowest mel band edge in Hz.
      fmax: highest mel band edge in Hz; None means ``sr / 2``.
      top_db: if set, floor at ``max - top_db`` dB.

    Returns:
      [T, n_mels] float32 ``log(mel_power + 1e-6)`` with ``T = num_frames(N, hop)``.
    """
    import librosa  # lazy: the device machine has no librosa

    wave = np.asarray(wave)
    if wave.dtype == np.int16:
        wave = pcm16_to_float(wave)
    wave = wave.astype(np.float32, copy=False)
    mel = librosa.feature.melspectrogram(
        y=wave,
        sr=sr,
        n_fft=n_fft,
        hop_length=hop,
        window="hann",
        center=True,
        pad_mode="reflect",  # librosa>=0.10 defaults to zero padding; reflect is our convention
        power=2.0,
        n_mels=n_mels,
        fmin=fmin,
        fmax=fmax,
        htk=False,
        norm="slaney",
    )  # [n_mels, T]
    logmel = np.log(mel + EPS).T  # [T, n_mels]
    if top_db is not None and logmel.size:
        logmel = np.maximum(logmel, logmel.max() - _top_db_nat(top_db))
    return logmel.astype(np.float32)


def mfcc_host(
    wave: np.ndarray,
    sr: int = 16000,
    n_mfcc: int = 40,
    n_mels: int = 64,
    n_fft: int = 400,
    hop: int = 160,
    fmin: float = 0.0,
    fmax: float | None = None,
    top_db: float | None = None,
) -> np.ndarray:
    """MFCCs of one waveform: orthonormal DCT-II of :func:`logmel_host`.

    Args:
      wave: [N] float waveform in [-1, 1], or int16 PCM.
      sr, n_mels, n_fft, hop, fmin, fmax, top_db: as in :func:`logmel_host`.
      n_mfcc: number of coefficients kept (at most ``n_mels``).

    Returns:
      [T, n_mfcc] float32.
    """
    import scipy.fft  # lazy, like librosa (scipy is a librosa dependency)

    logmel = logmel_host(wave, sr, n_mels, n_fft, hop, fmin, fmax, top_db)  # [T, n_mels]
    return scipy.fft.dct(logmel, type=2, norm="ortho", axis=-1)[:, :n_mfcc].astype(np.float32)


# --------------------------------------------------------------------------------------------------
# Filterbank and DCT matrices (numpy, no librosa)
# --------------------------------------------------------------------------------------------------
_F_SP = 200.0 / 3  # Slaney: 66.67 Hz per mel below 1 kHz (linear part)
_MIN_LOG_HZ = 1000.0  # Slaney: log-spaced above 1 kHz
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, np.float64)
    lin = hz / _F_SP
    log = _MIN_LOG_MEL + np.log(np.maximum(hz, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(hz >= _MIN_LOG_HZ, log, lin)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, np.float64)
    lin = mel * _F_SP
    log = _MIN_LOG_HZ * np.exp(_LOGSTEP * (np.maximum(mel, _MIN_LOG_MEL) - _MIN_LOG_MEL))
    return np.where(mel >= _MIN_LOG_MEL, log, lin)


@functools.lru_cache(maxsize=16)
def mel_filterbank(
    sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None,
    dtype=np.float32,
) -> np.ndarray:
    """Slaney mel filterbank with Slaney area normalisation (librosa's ``filters.mel`` defaults).

    Returns:
      [n_fft // 2 + 1, n_mels] of ``dtype``, laid out for ``power @ fb``. Cached; do not mutate.
    """
    fmax = sr / 2.0 if fmax is None else float(fmax)
    fft_hz = np.fft.rfftfreq(n_fft, 1.0 / sr)  # [K]
    # n_mels + 2 band edges evenly spaced on the mel scale: band i spans edges i .. i + 2.
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(edges)  # [n_mels + 1]
    ramps = edges[:, None] - fft_hz[None, :]  # [n_mels + 2, K]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    fb = np.maximum(0.0, np.minimum(rising, falling))  # [n_mels, K] triangles
    fb *= (2.0 / (edges[2:] - edges[:-2]))[:, None]  # equal area per band
    return np.ascontiguousarray(fb.T, dtype=dtype)


@functools.lru_cache(maxsize=16)
def dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Orthonormal DCT-II matrix: ``x @ D`` equals ``scipy.fft.dct(x, 2, norm="ortho")[:n_out]``.

    Returns:
      [n_in, n_out] float32.
    """
    n = np.arange(n_in)[:, None]
    k = np.arange(n_out)[None, :]
    d = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
    d[:, 0] /= np.sqrt(2.0)
    return d.astype(np.float32)


def _hann_periodic(n: int, dtype=np.float32) -> np.ndarray:
    # Periodic ("fftbins=True") Hann, the window librosa's stft uses.
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)).astype(dtype)


# --------------------------------------------------------------------------------------------------
# Device front end (JAX)
# --------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class LogMel:
    """Batched, jit-able log-mel (or MFCC, when ``n_mfcc`` is set) front end.

    Same semantics as :func:`logmel_host` / :func:`mfcc_host` applied to each wave cut to its
    length: the reflect padding at the end of a wave mirrors its own last samples, not the batch
    padding. A wave shorter than ``n_fft // 2 + 1`` samples is edge-clamped where librosa would
    reflect repeatedly, the only case where the two differ.

    Example::

        front = LogMel(n_mels=64)
        feats, mask = jax.jit(front)(pcm16_to_float(audio), lengths)  # [B, T, 64], [B, T]
    """

    sr: int = 16000
    n_mels: int = 64
    n_fft: int = 400
    hop: int = 160
    fmin: float = 0.0
    fmax: float | None = None
    top_db: float | None = None
    n_mfcc: int | None = None

    def num_frames(self, n_samples):
        """Frames produced for ``n_samples`` samples (see module-level :func:`num_frames`)."""
        return num_frames(n_samples, self.hop)

    def __call__(self, wave: jax.Array, lengths: jax.Array | None = None):
        """Computes features.

        Args:
          wave: [B, N] float32 waveforms, zero- (or anything-) padded past each length.
          lengths: [B] int valid samples per wave; None means all N.

        Returns:
          (feats, frame_mask): feats [B, T, n_mels] (or [B, T, n_mfcc]) float32 with zeros in
          masked frames, frame_mask [B, T] bool, ``T = 1 + N // hop``.
        """
        mel, frame_mask = mel_power(wave, lengths, sr=self.sr, n_fft=self.n_fft, hop=self.hop,
                                    n_mels=self.n_mels, fmin=self.fmin, fmax=self.fmax)
        feats = jnp.log(mel + EPS)
        if self.top_db is not None:
            peak = jnp.max(jnp.where(frame_mask[..., None], feats, -jnp.inf), axis=(1, 2))  # [B]
            feats = jnp.maximum(feats, (peak - _top_db_nat(self.top_db))[:, None, None])
        if self.n_mfcc is not None:
            feats = jnp.matmul(
                feats, dct_matrix(self.n_mels, self.n_mfcc), precision=jax.lax.Precision.HIGHEST
            )  # [B, T, n_mfcc]
        feats = jnp.where(frame_mask[..., None], feats, 0.0)
        return feats, frame_mask


def mel_power(wave: jax.Array, lengths: jax.Array | None, *, sr: int, n_fft: int, hop: int,
              n_mels: int, fmin: float = 0.0, fmax: float | None = None, dtype=jnp.float32):
    """Mel-filtered power spectrogram of each wave cut to its own length (the shared part of
    :class:`LogMel` and Whisper's front end).

    Centred frames with a periodic Hann window; each wave is reflect-padded about its *own*
    end (gathered per row), so batch padding never enters a valid frame.

    Args:
      wave: [B, N] float32, anything past each length.
      lengths: [B] int valid samples per wave; None means all N.
      dtype: the computation's float type (float64 needs ``jax.enable_x64``).

    Returns:
      (mel [B, T, n_mels] of ``dtype``, frame_mask [B, T] bool) with ``T = 1 + N // hop`` and
      ``num_frames(length, hop)`` valid frames per row.

    Raises:
      ValueError: ``wave`` is not 2-D.
    """
    wave = jnp.asarray(wave, dtype)
    if wave.ndim != 2:
        raise ValueError(f"wave must be [B, N], got shape {wave.shape}")
    b, n = wave.shape
    pad = n_fft // 2
    t = 1 + n // hop
    lengths = jnp.full((b,), n, jnp.int32) if lengths is None else jnp.asarray(lengths, jnp.int32)

    # Reflect-pad each wave about its *own* end by gathering: position p of the padded signal
    # reads sample p - pad, mirrored into [0, len - 1].
    pos = jnp.arange(n + 2 * pad, dtype=jnp.int32)[None, :] - pad  # [1, N + 2 pad]
    last = jnp.maximum(lengths - 1, 0)[:, None]  # [B, 1]
    src = jnp.abs(pos)
    src = jnp.where(src > last, 2 * last - src, src)
    src = jnp.clip(src, 0, last)  # only bites for waves shorter than pad + 1
    padded = jnp.take_along_axis(wave, src, axis=1)  # [B, N + 2 pad]

    idx = np.arange(t)[:, None] * hop + np.arange(n_fft)[None, :]  # [T, n_fft]
    window = jnp.asarray(_hann_periodic(n_fft, np.float64), dtype)
    frames = padded[:, idx] * window  # [B, T, n_fft]
    spec = jnp.fft.rfft(frames, axis=-1)  # [B, T, K]
    power = jnp.real(spec) ** 2 + jnp.imag(spec) ** 2
    fb = jnp.asarray(mel_filterbank(sr, n_fft, n_mels, fmin, fmax, np.float64), dtype)
    mel = jnp.matmul(power, fb, precision=jax.lax.Precision.HIGHEST)  # [B, T, n_mels]
    frame_mask = jnp.arange(t)[None, :] < num_frames(lengths, hop)[:, None]  # [B, T]
    return mel, frame_mask


@functools.partial(
    jax.jit, static_argnames=("sr", "n_mels", "n_fft", "hop", "fmin", "fmax", "top_db")
)
def logmel_jax(
    wave: jax.Array,
    lengths: jax.Array | None = None,
    *,
    sr: int = 16000,
    n_mels: int = 64,
    n_fft: int = 400,
    hop: int = 160,
    fmin: float = 0.0,
    fmax: float | None = None,
    top_db: float | None = None,
):
    """Jitted functional form of :class:`LogMel`: [B, N] waves → ([B, T, n_mels], [B, T] mask)."""
    return LogMel(sr, n_mels, n_fft, hop, fmin, fmax, top_db)(wave, lengths)


@functools.partial(
    jax.jit, static_argnames=("sr", "n_mfcc", "n_mels", "n_fft", "hop", "fmin", "fmax", "top_db")
)
def mfcc_jax(
    wave: jax.Array,
    lengths: jax.Array | None = None,
    *,
    sr: int = 16000,
    n_mfcc: int = 40,
    n_mels: int = 64,
    n_fft: int = 400,
    hop: int = 160,
    fmin: float = 0.0,
    fmax: float | None = None,
    top_db: float | None = None,
):
    """Jitted MFCC front end: [B, N] waves → ([B, T, n_mfcc], [B, T] mask); see :class:`LogMel`."""
    return LogMel(sr, n_mels, n_fft, hop, fmin, fmax, top_db, n_mfcc)(wave, lengths)
