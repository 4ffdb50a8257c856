"""On-device half of the input pipeline, traced inside the jitted step.

Turns the compact host batch (int16 PCM, uint8 frames, token ids, lengths) into the model batch of
``docs/contracts.md`` (float features + boolean masks). Computing log-mel/MFCC here keeps the host
cheap and moves 2 bytes per sample instead of 4 per feature value.
"""

from __future__ import annotations

import jax.numpy as jnp
import ml_collections

from mmer_jax.data import features


def length_mask(lengths: jnp.ndarray, width: int) -> jnp.ndarray:
    """[B] lengths -> [B, width] bool, True on valid positions."""
    return jnp.arange(width)[None, :] < lengths[:, None]


def _frames_to_model(u8: jnp.ndarray, lengths: jnp.ndarray, dtype) -> tuple:
    mask = length_mask(lengths, u8.shape[1])
    x = u8.astype(dtype) / 255.0
    return jnp.where(mask[:, :, None, None, None], x, 0.0), mask


def prepare(batch: dict, data_cfg: ml_collections.ConfigDict, dtype=jnp.float32) -> dict:
    """Host batch -> model batch. Keys absent from the host batch are absent from the result.

    Dialogue batches (``utt_mask`` present) carry a leading utterance axis [B, U, ...]: the signal
    keys are folded to [B*U, ...] for the feature computation and unfolded again; ``utt_mask`` and
    ``speaker`` pass through.
    """
    if "utt_mask" in batch:
        return _prepare_dialogue(batch, data_cfg, dtype)
    out = {"label": batch["label"], "weight": batch["weight"]}
    if "audio_pcm" in batch:
        wave = features.pcm16_to_float(batch["audio_pcm"])
        kind = data_cfg.get("frontend", "logmel")
        kw = dict(
            sr=data_cfg.sample_rate, n_fft=data_cfg.get("n_fft", 400), hop=data_cfg.get("hop", 160)
        )
        if kind == "logmel":
            feats, mask = features.logmel_jax(
                wave, batch["audio_len"], n_mels=data_cfg.get("n_mels", 64), **kw
            )
        elif kind == "mfcc":
            feats, mask = features.mfcc_jax(
                wave,
                batch["audio_len"],
                n_mfcc=data_cfg.get("n_mfcc", 40),
                n_mels=data_cfg.get("n_mels", 64),
                **kw,
            )
        else:
            raise ValueError(f"data.frontend={kind!r} must be 'logmel' or 'mfcc'")
        if data_cfg.get("feature_norm", True):
            # Per-utterance mean/variance normalisation over valid frames: removes channel and
            # loudness offsets that otherwise dominate small models.
            m = mask[..., None].astype(feats.dtype)
            n = jnp.maximum(m.sum(1, keepdims=True), 1.0)
            mu = (feats * m).sum(1, keepdims=True) / n
            var = (((feats - mu) * m) ** 2).sum(1, keepdims=True) / n
            feats = jnp.where(mask[..., None], (feats - mu) / jnp.sqrt(var + 1e-5), 0.0)
        out["audio"], out["audio_mask"] = feats.astype(dtype), mask
    for key in ("frames", "face"):
        if key + "_u8" in batch:
            out[key], out[key + "_mask"] = _frames_to_model(
                batch[key + "_u8"], batch[key + "_len"], dtype
            )
    if "tokens" in batch:
        out["tokens"] = batch["tokens"]
        out["tokens_mask"] = batch["tokens"] > 0
    return out


_SIGNALS = ("audio_pcm", "audio_len", "frames_u8", "frames_len", "face_u8", "face_len")


def _prepare_dialogue(batch: dict, data_cfg, dtype) -> dict:
    b, u = batch["utt_mask"].shape
    flat = {k: batch[k].reshape((b * u,) + batch[k].shape[2:]) for k in _SIGNALS if k in batch}
    inner = (
        prepare(
            {"label": batch["label"].reshape(-1), "weight": batch["weight"].reshape(-1), **flat},
            data_cfg,
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
    return out


def make_feature_step(data_cfg, dtype: str = "float32"):
    """The on-device feature step of a run: ``host batch -> model batch``, traced inside jit.

    The one place that binds the data settings and the compute dtype, so the train step, the eval
    step, state initialisation and profiling can never compute features differently.

    Args:
      data_cfg: the run's data section (``DataConfig`` or a ConfigDict of it).
      dtype: "float32" or "bfloat16": the dtype of the float features.

    Returns:
      ``f(batch: dict) -> dict`` (see :func:`prepare`).
    """
    import jax.numpy as jnp

    compute = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}[dtype]
    return lambda batch: prepare(batch, data_cfg, compute)
