"""Online (per-step) augmentations as named ops, composed from ``data.augment``.

Every online op is built by a factory in :data:`AUGMENTATIONS` and has the signature
``op(example: dict, rng: np.random.Generator) -> dict``, working on one *unpadded* host example
(numpy arrays, before batching), so its whole array is the valid signal unless a ``*_mask`` key says
otherwise. Ops return a new dict and never modify their input arrays. A pipeline comes from config::

    augment = compose([{"name": "additive_noise", "snr_db": [10, 30]},
                       {"name": "random_crop_frames", "num_frames": 16}])
    example = augment(example, np.random.default_rng(seed))

Device-side variants for batches already on the accelerator: :func:`spec_augment_jax`,
:func:`additive_noise_jax`. Pitch shift and time stretch are too slow for per-step use (~29 ms a
clip); they are offline ops (:mod:`mmer_jax.data.augment.offline`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mmer_jax.data.augment.offline import OFFLINE_AUGMENTATIONS
from mmer_registry import Registry, UnknownName

Example = dict[str, Any]
Op = Callable[[Example, np.random.Generator], Example]

# name -> factory(**params) -> Op; the names ``data.augment`` accepts.
AUGMENTATIONS: Registry[Callable[..., Op]] = Registry("augmentation")


def _range(value) -> tuple[float, float]:
    # Config gives either a scalar or a [lo, hi] pair (lists in JSON/ConfigDict, tuples in code).
    if np.ndim(value) == 0:
        return float(value), float(value)
    lo, hi = value
    return float(lo), float(hi)


# --------------------------------------------------------------------------------------------------
# Additive noise
# --------------------------------------------------------------------------------------------------
def _pink(n: int, rng: np.random.Generator) -> np.ndarray:
    # Shape white noise to a 1/f power spectrum (amplitude 1/sqrt(f)); DC gets the first bin's gain.
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spec.shape[0], dtype=np.float64)
    f[0] = 1.0
    return np.fft.irfft(spec / np.sqrt(f), n=n)


@AUGMENTATIONS.register("additive_noise")
def additive_noise(
    snr_db: float | Sequence[float] = (10.0, 30.0), color: str = "white", key: str = "audio"
) -> Op:
    """Adds white or pink noise at an SNR drawn uniformly from ``snr_db``.

    The SNR is exact before clipping: the noise is rescaled so that its empirical power equals
    ``signal_power / 10 ** (snr / 10)``, the signal power taken over the valid samples (those where
    ``example[key + "_mask"]`` is true, when present, else all). Padded samples are left alone and a
    silent signal is returned unchanged.

    Args:
      snr_db: a fixed SNR in dB, or a ``(low, high)`` range.
      color: ``"white"`` or ``"pink"`` (1/f power).
      key: the waveform's key; [N] int16 (rounded and clipped back to int16) or float.

    Returns:
      The op ``(example, rng) -> example``.

    Raises:
      ValueError: ``color`` is neither "white" nor "pink".
    """
    lo, hi = _range(snr_db)
    if color not in ("white", "pink"):
        raise ValueError(f"additive_noise color={color!r} must be 'white' or 'pink'")

    def op(example: Example, rng: np.random.Generator) -> Example:
        wave = np.asarray(example[key])
        is_pcm = wave.dtype == np.int16
        x = wave.astype(np.float64)
        valid = np.asarray(example.get(f"{key}_mask", np.ones(x.shape, bool)), bool)
        n_valid = int(valid.sum())
        p_signal = float(np.sum(x[valid] ** 2)) / max(n_valid, 1)
        snr = rng.uniform(
            lo, hi
        )  # draw even when skipping, so the rng stream doesn't depend on data
        if n_valid == 0 or p_signal == 0.0:
            return dict(example)
        noise = _pink(n_valid, rng) if color == "pink" else rng.standard_normal(n_valid)
        noise *= np.sqrt(p_signal / 10.0 ** (snr / 10.0) / np.mean(noise**2))
        x[valid] += noise
        if is_pcm:
            out = np.clip(np.round(x), -32768, 32767).astype(np.int16)
        else:
            out = x.astype(wave.dtype if wave.dtype.kind == "f" else np.float32)
        return {**example, key: out}

    return op


@functools.partial(jax.jit, static_argnames=("snr_db",))
def additive_noise_jax(
    rng: jax.Array, wave: jax.Array, lengths: jax.Array, snr_db: tuple[float, float] = (10.0, 30.0)
) -> jax.Array:
    """Device version of white :func:`additive_noise` on a float batch.

    Args:
      rng: PRNG key.
      wave: [B, N] float waveforms.
      lengths: [B] valid samples per wave; noise is added only there.
      snr_db: ``(low, high)`` SNR range in dB, drawn per example (static; pass a tuple).

    Returns:
      [B, N] noisy waves, padding untouched.
    """
    b, n = wave.shape
    k_snr, k_noise = jax.random.split(rng)
    valid = jnp.arange(n)[None, :] < lengths[:, None]  # [B, N]
    count = jnp.maximum(lengths, 1).astype(wave.dtype)
    p_signal = jnp.sum(jnp.where(valid, wave**2, 0.0), axis=1) / count  # [B]
    noise = jnp.where(valid, jax.random.normal(k_noise, (b, n), wave.dtype), 0.0)
    p_noise = jnp.maximum(jnp.sum(noise**2, axis=1) / count, 1e-12)
    snr = jax.random.uniform(k_snr, (b,), minval=snr_db[0], maxval=snr_db[1])
    scale = jnp.sqrt(p_signal / 10.0 ** (snr / 10.0) / p_noise)  # [B]
    return wave + scale[:, None] * noise


# --------------------------------------------------------------------------------------------------
# SpecAugment
# --------------------------------------------------------------------------------------------------
@AUGMENTATIONS.register("spec_augment")
def spec_augment(
    freq_masks: int = 2,
    freq_width: int = 8,
    time_masks: int = 2,
    time_width: int = 10,
    fill: float | None = None,
    key: str = "audio",
) -> Op:
    """SpecAugment-style band masks on a [T, F] feature array (Park et al., 2019; no time warp).

    Each mask has a width drawn uniformly from ``0..width`` and a uniform start; time masks fall
    inside the valid frames (``example[key + "_mask"]`` if present, else all T).

    Args:
      freq_masks, freq_width: number and maximum width (bins) of frequency masks.
      time_masks, time_width: number and maximum width (frames) of time masks.
      fill: value written in masked cells; None uses the mean of the valid features, which is
        neutral for un-normalised log-mel (whose 0 is not silence).
      key: the feature array's key.

    Returns:
      The op ``(example, rng) -> example``.
    """

    def op(example: Example, rng: np.random.Generator) -> Example:
        feats = np.array(example[key], copy=True)  # [T, F]
        t, f = feats.shape
        mask = example.get(f"{key}_mask")
        t_valid = t if mask is None else int(np.asarray(mask).sum())
        value = fill if fill is not None else (feats[:t_valid].mean() if t_valid else 0.0)
        for _ in range(freq_masks):
            w = int(rng.integers(0, min(freq_width, f) + 1))
            f0 = int(rng.integers(0, f - w + 1))
            feats[:t_valid, f0 : f0 + w] = value
        for _ in range(time_masks):
            w = int(rng.integers(0, min(time_width, t_valid) + 1))
            t0 = int(rng.integers(0, t_valid - w + 1))
            feats[t0 : t0 + w] = value
        return {**example, key: feats}

    return op


def _band_mask(rng, count, width, limit, n):
    # [B, n] mask of `count` random bands per row, each of width U{0..width} starting inside
    # [0, limit[b]); `limit` is the per-row valid extent (an int or [B] array).
    b = limit.shape[0]
    k_w, k_s = jax.random.split(rng)
    w = jax.random.randint(k_w, (b, count), 0, width + 1)
    w = jnp.minimum(w, limit[:, None])  # [B, count]
    start = jnp.floor(jax.random.uniform(k_s, (b, count)) * (limit[:, None] - w + 1)).astype(
        jnp.int32
    )
    pos = jnp.arange(n)[None, None, :]  # [1, 1, n]
    hit = (pos >= start[..., None]) & (pos < (start + w)[..., None])  # [B, count, n]
    return jnp.any(hit, axis=1)  # [B, n]


@functools.partial(
    jax.jit, static_argnames=("freq_masks", "freq_width", "time_masks", "time_width", "fill")
)
def spec_augment_jax(
    rng: jax.Array,
    feats: jax.Array,
    mask: jax.Array,
    freq_masks: int = 2,
    freq_width: int = 8,
    time_masks: int = 2,
    time_width: int = 10,
    fill: float | None = None,
) -> jax.Array:
    """Jit-able batched :func:`spec_augment`; padded frames (``mask`` false) are never touched.

    Args:
      rng: PRNG key; the same key gives the same masks.
      feats: [B, T, F] features.
      mask: [B, T] bool valid frames (a prefix per row).
      freq_masks, freq_width, time_masks, time_width: mask counts and maximum widths
        (static: a new value recompiles).
      fill: value for masked cells; None = per-example mean over valid frames.

    Returns:
      [B, T, F] masked features.
    """
    b, t, f = feats.shape
    k_f, k_t = jax.random.split(rng)
    t_valid = jnp.sum(mask, axis=1).astype(jnp.int32)  # [B]
    f_hit = _band_mask(k_f, freq_masks, min(freq_width, f), jnp.full((b,), f, jnp.int32), f)
    t_hit = _band_mask(k_t, time_masks, time_width, t_valid, t)  # [B, T]
    hit = (f_hit[:, None, :] | t_hit[:, :, None]) & mask[:, :, None]  # [B, T, F]
    if fill is None:
        denom = jnp.maximum(t_valid * f, 1).astype(feats.dtype)
        value = (jnp.sum(jnp.where(mask[..., None], feats, 0.0), axis=(1, 2)) / denom)[
            :, None, None
        ]
    else:
        value = jnp.asarray(fill, feats.dtype)
    return jnp.where(hit, value, feats)


# --------------------------------------------------------------------------------------------------
# Frame cropping
# --------------------------------------------------------------------------------------------------
@AUGMENTATIONS.register("random_crop_frames")
def random_crop_frames(
    num_frames: int, train: bool = True, keys: Sequence[str] = ("frames", "face")
) -> Op:
    """Crops a contiguous window of ``num_frames`` from the visual sequences, same offset for all.

    ``frames`` and ``face`` (and their ``*_mask`` keys when present) share one offset so a face crop
    stays paired with its frame. Sequences already no longer than ``num_frames`` are left for the
    padding op. At eval (``train=False``) the crop is the deterministic centre window.

    Args:
      num_frames: window length.
      train: random offset if True, centre offset if False (``rng`` is then unused and may be None).
      keys: sequence keys cropped together; missing keys are skipped.

    Returns:
      The op ``(example, rng) -> example``.

    Raises:
      ValueError: (when the op runs) the present keys disagree on their length.
    """

    def op(example: Example, rng: np.random.Generator | None) -> Example:
        present = [k for k in keys if k in example]
        present += [f"{k}_mask" for k in keys if f"{k}_mask" in example]
        if not present:
            return dict(example)
        lengths = {k: len(example[k]) for k in present}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"random_crop_frames: sequences differ in length: {lengths}")
        t = lengths[present[0]]
        if t <= num_frames:
            return dict(example)
        start = int(rng.integers(0, t - num_frames + 1)) if train else (t - num_frames) // 2
        return {**example, **{k: example[k][start : start + num_frames] for k in present}}

    return op


@AUGMENTATIONS.register("random_crop_images")
def random_crop_images(padding: int = 4, keys: Sequence[str] = ("frames", "face")) -> Op:
    """Spatial random crop of image sequences: edge-pad by ``padding`` pixels, crop back to size.

    One offset per clip and key, shared by all of that clip's frames, so the crop jitters the
    framing without making the sequence shake from frame to frame. Shapes are unchanged.

    Args:
      padding: the largest shift in pixels, in each direction.
      keys: [T, H, W, C] (or [T, H, W]) image sequences to crop; missing keys are skipped.

    Returns:
      The op ``(example, rng) -> example``.

    Raises:
      ValueError: ``padding`` is negative.
    """
    if padding < 0:
        raise ValueError(f"random_crop_images padding={padding} must be >= 0")

    def op(example: Example, rng: np.random.Generator) -> Example:
        out = dict(example)
        for key in keys:
            if key not in example:
                continue
            x = np.asarray(example[key])
            dy, dx = (int(v) for v in rng.integers(0, 2 * padding + 1, size=2))
            if padding == 0 or x.ndim < 3 or x.shape[0] == 0:
                continue
            pad = [(0, 0), (padding, padding), (padding, padding)] + [(0, 0)] * (x.ndim - 3)
            h, w = x.shape[1], x.shape[2]
            out[key] = np.pad(x, pad, mode="edge")[:, dy : dy + h, dx : dx + w]
        return out

    return op


# --------------------------------------------------------------------------------------------------
# Composition
# --------------------------------------------------------------------------------------------------


def compose(specs: Sequence[dict[str, Any]]) -> Op:
    """Builds one op applying ``specs`` in order; each spec is ``{"name": ..., **params}``.

    Args:
      specs: config entries, e.g. ``[{"name": "additive_noise", "snr_db": [10, 30]}]``.

    Returns:
      The op ``(example, rng) -> example``; every stage draws from the same ``rng`` in turn.

    Raises:
      KeyError: an entry has no ``name``; :class:`~mmer_registry.UnknownName` (a KeyError) when
        it names no online op (the message lists the known names, and says so when the name is
        an offline op).
      TypeError, ValueError: an entry's parameters do not fit its factory.
    """
    ops = []
    for i, spec in enumerate(specs):
        params = dict(spec)
        if "name" not in params:
            raise KeyError(f"augmentation spec #{i} {spec!r} has no 'name'")
        name = params.pop("name")
        try:
            factory = AUGMENTATIONS.get(name)
        except UnknownName as exc:
            if name not in OFFLINE_AUGMENTATIONS:
                raise
            hint = f"; {name!r} is an offline op, use data.offline_augment"
            raise UnknownName(f"{exc}{hint}") from exc
        ops.append(factory(**params))

    def op(example: Example, rng: np.random.Generator) -> Example:
        for stage in ops:
            example = stage(example, rng)
        return example

    return op
