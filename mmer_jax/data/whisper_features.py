"""Whisper's log-mel front end on the device (JAX), as OpenAI's ``log_mel_spectrogram`` computes
it (``whisper/audio.py``, MIT): 16 kHz, 400-sample (25 ms) periodic Hann frames every 160
samples (10 ms), centred with reflect padding, power spectrum, 80 (or 128) Slaney mel bands up
to 8 kHz, ``log10(max(mel, 1e-10))``, floored at the clip's maximum minus 8, then
``(x + 4) / 4``. The last STFT frame is dropped, so a clip of N samples gives N // 160 frames.

The computation runs in float32 by default; its distance to a float64 computation (Hugging Face's
numpy extractor) is a few 1e-6, up to ~2e-5 on low-energy bins, the same as OpenAI's own float32
torch implementation's. ``precision="float64"`` (host-side feature caches) computes in float64 and
agrees with the float64 reference to ~1e-7.

Each row is computed at its own length (the reflect padding and the maximum read only the
row's valid samples and frames), as Whisper does for one clip. Whisper's 30-s windows are the
same computation on a zero-padded window: pad each clip with zeros to 480,000 samples and pass
``lengths=None``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from mmer_jax.data.features import mel_power

SAMPLE_RATE = 16000
HOP = 160
N_FFT = 400
WINDOW_SAMPLES = 30 * SAMPLE_RATE  # Whisper's 30-s window


def whisper_log_mel(wave: jax.Array, lengths: jax.Array | None = None, *, n_mels: int = 80,
                    precision: str = "float32"):
    """Whisper's log-mel features.

    Args:
      wave: [B, N] float32 audio at 16 kHz in [-1, 1], anything past each length.
      lengths: [B] int valid samples per row; None means all N.
      n_mels: 80 (Whisper tiny to large-v2) or 128 (large-v3).
      precision: "float32" (jit-able on any device) or "float64" (computed under
        ``jax.enable_x64``, on the host; the result is cast to float32).

    Returns:
      (feats [B, N // 160, n_mels] float32, zeros in padded frames; frame_mask [B, N // 160]
      bool, ``lengths // 160`` valid frames per row).

    Raises:
      ValueError: ``wave`` is not 2-D, or an unknown ``precision``.
    """
    if precision == "float64":
        with jax.enable_x64(True):
            return _log_mel(wave, lengths, n_mels, jnp.float64)
    if precision != "float32":
        raise ValueError(f"precision={precision!r} must be 'float32' or 'float64'")
    return _log_mel(wave, lengths, n_mels, jnp.float32)


# Jitted: run eagerly (the host-side float64 caches), each of its ~40 ops compiled a program of
# its own per shape, several times one compile of the whole.
@functools.partial(jax.jit, static_argnums=(2, 3))
def _log_mel(wave, lengths, n_mels, dtype):
    mel, mask = mel_power(wave, lengths, sr=SAMPLE_RATE, n_fft=N_FFT, hop=HOP, n_mels=n_mels,
                          fmin=0.0, fmax=SAMPLE_RATE / 2, dtype=dtype)
    mel, mask = mel[:, :-1], mask[:, 1:]  # drop the last frame (a row's own last, via the mask)
    log = jnp.log10(jnp.maximum(mel, 1e-10))  # [B, T, n_mels]
    peak = jnp.max(jnp.where(mask[..., None], log, -jnp.inf), axis=(1, 2), keepdims=True)
    log = jnp.maximum(log, peak - 8.0)
    feats = (log + 4.0) / 4.0
    return jnp.where(mask[..., None], feats, 0.0).astype(jnp.float32), mask
