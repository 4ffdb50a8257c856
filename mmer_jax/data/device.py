"""On-device half of the input pipeline, traced inside the jitted step.

Turns the compact host batch (int16 PCM, uint8 frames, token ids, lengths) into the model batch of
``docs/contracts.md`` (float features + boolean masks). Computing log-mel/MFCC here keeps the host
cheap and moves 2 bytes per sample instead of 4 per feature value.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from mmer_jax.data import features
from mmer_jax.data.batching import FEATURE_STREAMS
from mmer_jax.data.whisper_features import whisper_log_mel
from mmer_jax.schema import DataConfig, from_section


def length_mask(lengths: jnp.ndarray, width: int) -> jnp.ndarray:
    """[B] int lengths -> [B, width] bool, True on the first ``lengths[b]`` positions of row b."""
    return jnp.arange(width)[None, :] < lengths[:, None]


def _frames_to_model(u8: jnp.ndarray, lengths: jnp.ndarray, dtype) -> tuple:
    mask = length_mask(lengths, u8.shape[1])
    x = u8.astype(dtype) / 255.0
    return jnp.where(mask[:, :, None, None, None], x, 0.0), mask


def audio_features(pcm: jnp.ndarray, lengths: jnp.ndarray, data: DataConfig) -> tuple:
    """The audio features of a run, before any per-speaker normalisation.

    Args:
      pcm: [B, N] int16 PCM at ``data.sample_rate``.
      lengths: [B] int valid samples per row.
      data: the data section (``frontend``, ``n_mels``/``n_mfcc``, ``n_fft``, ``hop``,
        ``feature_norm``).

    Returns:
      (features [B, T', F] float32, mask [B, T'] bool), T' = 1 + N // ``hop``; with
      ``feature_norm`` every row is normalised to zero mean and unit variance per feature over
      its valid frames, and padded frames are 0. ``frontend="whisper"``: Whisper's log-mel
      (:func:`mmer_jax.data.whisper_features.whisper_log_mel`, float32, each row at its own
      length), [B, N // 160, 80] (128 bins when ``n_mels`` is 128), mask ``lengths // 160``
      frames. ``frontend="waveform"``: the samples, float32 [B, N] in [-1, 1] (0 past each
      length), and their mask [B, N]. Neither is normalised (``DataConfig`` refuses
      ``feature_norm`` and ``speaker_norm`` with them).

    Raises:
      ValueError: ``data.frontend`` is not one of "logmel", "mfcc", "whisper", "waveform".
    """
    wave = features.pcm16_to_float(pcm)
    if data.frontend == "waveform":
        mask = length_mask(lengths, wave.shape[1])
        return jnp.where(mask, wave, 0.0), mask
    if data.frontend == "whisper":
        return whisper_log_mel(wave, lengths, n_mels=128 if data.n_mels == 128 else 80)
    kw = dict(sr=data.sample_rate, n_fft=data.n_fft, hop=data.hop)
    if data.frontend == "logmel":
        feats, mask = features.logmel_jax(wave, lengths, n_mels=data.n_mels, **kw)
    elif data.frontend == "mfcc":
        feats, mask = features.mfcc_jax(wave, lengths, n_mfcc=data.n_mfcc, n_mels=data.n_mels,
                                        **kw)
    else:
        raise ValueError(f"data.frontend={data.frontend!r} must be 'logmel', 'mfcc', 'whisper' "
                         "or 'waveform'")
    if data.feature_norm:
        # Per-utterance mean/variance normalisation over valid frames: removes channel and
        # loudness offsets that otherwise dominate small models.
        m = mask[..., None].astype(feats.dtype)
        n = jnp.maximum(m.sum(1, keepdims=True), 1.0)
        mu = (feats * m).sum(1, keepdims=True) / n
        var = (((feats - mu) * m) ** 2).sum(1, keepdims=True) / n
        feats = jnp.where(mask[..., None], (feats - mu) / jnp.sqrt(var + 1e-5), 0.0)
    return feats, mask


def prepare(batch: dict, data_cfg: Any, dtype=jnp.float32) -> dict:
    """Host batch -> model batch; the implementation of :func:`make_feature_step`.

    Keys absent from the host batch are absent from the result. Utterance batches give
    ``audio`` [B, T', F] ``dtype`` features (log-mel: F = ``n_mels``; MFCC: F = ``n_mfcc``;
    T' = 1 + T // ``hop`` frames; ``frontend="whisper"``: Whisper's log-mel [B, T // 160, 80];
    ``frontend="waveform"``: float32 samples [B, T] whatever ``dtype``, see
    :func:`audio_features`; with ``audio_norm`` [B, 2, F] in the host batch, normalised
    as ``(features - audio_norm[:, 0]) * audio_norm[:, 1]``) with ``audio_mask`` [B, T'] bool;
    ``frames`` / ``face`` [B, Tv, H, W, 3] ``dtype`` in [0, 1] with ``*_mask`` [B, Tv];
    ``tokens`` [B, L] int32 with ``tokens_mask`` [B, L]; the feature streams ``text_feat`` /
    ``audio_feat`` / ``vision_feat`` [B, S, D] ``dtype`` (0 past each row's ``<key>_len``) with
    ``<key>_mask`` [B, S] bool; ``label``, ``weight`` and ``score`` (when present) pass through.

    Dialogue batches (``utt_mask`` present) carry a leading utterance axis [B, U, ...]: the signal
    keys are folded to [B*U, ...] for the feature computation and unfolded again (a feature stream
    [B, U, S, D] with ``<key>_len`` [B, U] gives ``<key>`` and ``<key>_mask`` [B, U, S]);
    ``utt_mask`` and ``speaker`` pass through.

    Args:
      batch: a host batch (:mod:`mmer_jax.data.utterance` / :mod:`mmer_jax.data.dialogue`).
      data_cfg: the data section (a ``DataConfig``, or a ConfigDict / mapping of it).
      dtype: the float features' dtype.

    Raises:
      UsageError: ``data_cfg`` is not a valid data section.
      ValueError: ``data_cfg.frontend`` is not a known front end.
    """
    data = from_section(DataConfig, data_cfg, "data")
    if "utt_mask" in batch:
        return _prepare_dialogue(batch, data, dtype)
    out = {"label": batch["label"], "weight": batch["weight"]}
    if "score" in batch:  # the regression target passes through
        out["score"] = batch["score"]
    if "audio_pcm" in batch:
        feats, mask = audio_features(batch["audio_pcm"], batch["audio_len"], data)
        if "audio_norm" in batch:  # per-speaker statistics (data.speaker_norm)
            shift, scale = batch["audio_norm"][:, 0], batch["audio_norm"][:, 1]
            feats = jnp.where(mask[..., None], (feats - shift[:, None]) * scale[:, None], 0.0)
        # The waveform stays float32: bfloat16 would keep 8 of the 16 bits of the PCM.
        keep = jnp.float32 if data.frontend == "waveform" else dtype
        out["audio"], out["audio_mask"] = feats.astype(keep), mask
    for key in ("frames", "face"):
        if key + "_u8" in batch:
            out[key], out[key + "_mask"] = _frames_to_model(
                batch[key + "_u8"], batch[key + "_len"], dtype
            )
    if "tokens" in batch:
        out["tokens"] = batch["tokens"]
        out["tokens_mask"] = batch["tokens"] > 0
    for key in FEATURE_STREAMS:
        if key in batch:
            mask = length_mask(batch[key + "_len"], batch[key].shape[1])
            out[key] = jnp.where(mask[..., None], batch[key], 0.0).astype(dtype)
            out[key + "_mask"] = mask
    return out


_SIGNALS = ("audio_pcm", "audio_len", "frames_u8", "frames_len", "face_u8", "face_len",
            *(k + s for k in FEATURE_STREAMS for s in ("", "_len")))


def _prepare_dialogue(batch: dict, data: DataConfig, dtype) -> dict:
    b, u = batch["utt_mask"].shape
    flat = {k: batch[k].reshape((b * u,) + batch[k].shape[2:]) for k in _SIGNALS if k in batch}
    inner = (
        prepare(
            {"label": batch["label"].reshape(-1), "weight": batch["weight"].reshape(-1), **flat},
            data,
            dtype,
        )
        if flat
        else {}
    )
    out = {
        k: v.reshape((b, u) + v.shape[1:]) for k, v in inner.items() if k not in ("label", "weight")
    }
    out.update(label=batch["label"], weight=batch["weight"], utt_mask=batch["utt_mask"])
    if "speaker" in batch:
        out["speaker"] = batch["speaker"]
    if "tokens" in batch:
        out["tokens"] = batch["tokens"]
        out["tokens_mask"] = batch["tokens"] > 0
    if "tokens_packed" in batch:
        out["tokens_packed"] = batch["tokens_packed"]
        out["tokens_packed_mask"] = batch["tokens_packed"] > 0
        out["packed_slot"] = batch["packed_slot"]
    return out


def make_feature_step(data_cfg: Any, dtype: str = "float32"):
    """The on-device feature step of a run: ``host batch -> model batch``, traced inside jit.

    The one place that binds the data settings and the compute dtype, so the train step, the eval
    step, state initialisation and profiling can never compute features differently.

    Args:
      data_cfg: the run's data section (a ``DataConfig``, or a ConfigDict / mapping of it).
      dtype: "float32" or "bfloat16": the dtype of the float features.

    Returns:
      ``f(batch: dict) -> dict`` (keys, shapes and dtypes: see :func:`prepare`).

    Raises:
      UsageError: ``data_cfg`` is not a valid data section.
      ValueError: ``dtype`` is neither "float32" nor "bfloat16".
    """
    data = from_section(DataConfig, data_cfg, "data")  # once, not at every trace
    compute = _DTYPES.get(dtype)
    if compute is None:
        raise ValueError(f"dtype={dtype!r} must be one of {', '.join(_DTYPES)}")
    return lambda batch: prepare(batch, data, compute)


_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
