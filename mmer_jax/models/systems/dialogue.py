"""Shared pieces of the dialogue-level systems (S002 and the text_cnn / bc_lstm / cmn baselines).

Dialogue batches carry a leading utterance axis (``tokens`` [B, U, L], ``audio`` [B, U, Ta, F],
``frames`` [B, U, Tv, H, W, 3], ``utt_mask`` [B, U]). :class:`DialogueEncoder` folds the
utterance axis into the batch, runs one encoder per modality and returns per-utterance features.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.encoders.bilstm_attn import BiLSTMAttnConfig, BiLSTMAttnEncoder
from mmer_jax.models.encoders.conv3d import Conv3DConfig, Conv3DEncoder
from mmer_jax.models.encoders.text_cnn import TextCNN, TextCNNConfig

MODALITIES = ("text", "audio", "frames", "face")
_DATA_KEY = {"text": "tokens", "audio": "audio", "frames": "frames", "face": "face"}


def as_dialogue(batch: Dict[str, jnp.ndarray]) -> Tuple[Dict[str, jnp.ndarray], bool]:
    """Gives an utterance-level batch a U = 1 axis so dialogue models accept both shapes.

    Returns:
      (batch with ``utt_mask``, True if the axis was added and logits must be squeezed back).
    """
    if "utt_mask" in batch:
        return batch, False
    out = {k: v[:, None] for k, v in batch.items() if getattr(v, "ndim", 0) >= 1}
    b = next(iter(out.values())).shape[0]
    out["utt_mask"] = jnp.ones((b, 1), bool)
    return out, True


def _inner_mask(batch: Dict[str, jnp.ndarray], modality: str) -> jnp.ndarray:
    """[B, U, T] validity of the steps of each utterance, False everywhere in padded utterances."""
    key = _DATA_KEY[modality]
    x = batch[key]
    mask = batch.get(f"{key}_mask")
    if mask is None:
        mask = x != 0 if modality == "text" else jnp.ones(x.shape[:3], bool)
    return mask & batch["utt_mask"][..., None]


def check_modalities(modalities) -> Tuple[str, ...]:
    mods = tuple(modalities)
    bad = [m for m in mods if m not in MODALITIES]
    if bad or not mods:
        raise ValueError(f"modalities={mods} must be a non-empty subset of {MODALITIES}")
    return mods


class DialogueEncoder(nn.Module):
    """Per-utterance features of the configured modalities, concatenated.

    Attributes:
      modalities: subset of ("text", "audio", "frames", "face").
      text: text-CNN config (needed when "text" is a modality).
      audio: Bi-LSTM + attention-pooling config.
      visual: 3-D CNN config (frames and face get separate weights).
    """

    modalities: Tuple[str, ...]
    text: Optional[TextCNNConfig] = None
    audio: BiLSTMAttnConfig = BiLSTMAttnConfig()
    visual: Conv3DConfig = Conv3DConfig()

    @nn.compact
    def __call__(self, batch: Dict[str, jnp.ndarray], train: bool):
        """Returns (features [B, U, D], utt_mask [B, U], {modality: [B, U, D_m]})."""
        utt = batch["utt_mask"]
        b, u = utt.shape
        flat = lambda a: a.reshape((b * u,) + a.shape[2:])  # noqa: E731  [B, U, ...] -> [BU, ...]
        per_mod = {}
        for m in self.modalities:
            x, mask = flat(batch[_DATA_KEY[m]]), flat(_inner_mask(batch, m))
            if m == "text":
                if self.text is None:
                    raise ValueError("modality 'text' needs a TextCNNConfig (cfg.vocab_size)")
                f = TextCNN(self.text, name="text")(x, mask, train)
            elif m == "audio":
                f = BiLSTMAttnEncoder(self.audio, name="audio")(x, mask, train)
            else:
                f = Conv3DEncoder(self.visual, name=m)(x, mask, train)
            per_mod[m] = f.reshape(b, u, -1)  # [B, U, D_m]
        feats = jnp.concatenate([per_mod[m] for m in self.modalities], axis=-1)
        return jnp.where(utt[..., None], feats, 0.0), utt, per_mod


def dialogue_encoder_from_cfg(cfg, default_modalities=("text",)) -> DialogueEncoder:
    """Reads the utterance-encoder keys of a model config (see the systems' docstrings)."""
    mods = check_modalities(cfg.get("modalities", default_modalities))
    text = None
    if "text" in mods:
        text = TextCNNConfig(
            vocab_size=int(cfg.vocab_size),
            embed_dim=cfg.get("embed_dim", 300),
            widths=tuple(cfg.get("text_widths", (3, 4, 5))),
            filters=cfg.get("text_filters", 50),
            out=cfg.get("text_out", 100),
            dropout=cfg.get("dropout", 0.5),
            kind=cfg.get("text_encoder", "cnn"),
            bigram_buckets=cfg.get("bigram_buckets", 0),
            embed_init_std=cfg.get("embed_init_std", 1.0),
        )
    audio = BiLSTMAttnConfig(
        hidden=cfg.get("audio_hidden", 128),
        num_layers=cfg.get("audio_layers", 4),
        linear=tuple(cfg.get("audio_linear", (256, 256, 256, 256))),
        attn_hidden=cfg.get("audio_attn_hidden", 128),
    )
    visual = Conv3DConfig(
        channels=tuple(cfg.get("visual_channels", (32, 64, 128))),
        time_pool=cfg.get("visual_time_pool", 2),
        out=cfg.get("visual_out", 256),
    )
    return DialogueEncoder(mods, text=text, audio=audio, visual=visual)


def finish_logits(logits: jnp.ndarray, utt: jnp.ndarray, squeeze: bool) -> jnp.ndarray:
    """Zeros logits of padded utterances (they carry weight 0) and drops an added U axis."""
    logits = jnp.where(utt[..., None], logits, 0.0)  # [B, U, C]
    return logits[:, 0] if squeeze else logits
