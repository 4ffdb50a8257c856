"""S002's utterance encoder, shared by its text_cnn / bc_lstm / cmn baselines.

Source: seed paper S002 (Gao & Guo, ``shared/papers/S002_*``): text through a text-CNN, audio
through a 4-layer Bi-LSTM + linear layers + attention pooling, video through a 3-D CNN; the
per-modality utterance features are concatenated.

Dialogue batches carry a leading utterance axis (``tokens`` [B, U, L], ``audio`` [B, U, Ta, F],
``frames`` [B, U, Tv, H, W, 3], ``utt_mask`` [B, U]); text may instead come packed
(``tokens_packed`` [N, L] of the real utterances only, ``packed_slot`` [N]: each row's flat
``b * U + u``; ``data.pack_utterances``), so the word encoder skips padded utterances.
:class:`DialogueEncoder` folds the utterance axis into the batch, runs one encoder per modality
and returns per-utterance features.

``text_encoder = "imported"`` replaces the text-CNN by a pretrained text encoder imported with
``mmer encoders import`` (BERT / RoBERTa; ``text_import``, the ``imported`` encoder: a hidden
state pooled over the utterance's tokens) followed by a linear projection to ``text_dim`` (S002's
300-d RoBERTa vectors, its Section 3.4); the tokens are then the import's own
(``data.tokenizer``).
"""

from __future__ import annotations

from typing import Dict, Tuple

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.encoders.bilstm_attn import BiLSTMAttnConfig, BiLSTMAttnEncoder
from mmer_jax.models.encoders.conv3d import Conv3DConfig, Conv3DEncoder
from mmer_jax.models.encoders.imported import ImportedEncoder, ImportedEncoderConfig
from mmer_jax.models.encoders.text_cnn import TextCNN, TextCNNConfig
from mmer_jax.registry import ENCODERS

MODALITIES = ("text", "audio", "frames", "face")
_DATA_KEY = {"text": "tokens", "audio": "audio", "frames": "frames", "face": "face"}


def _inner_mask(batch: Dict[str, jnp.ndarray], modality: str) -> jnp.ndarray:
    """[B, U, T] validity of the steps of each utterance, False everywhere in padded utterances."""
    key = _DATA_KEY[modality]
    x = batch[key]
    mask = batch.get(f"{key}_mask")
    if mask is None:
        mask = x != 0 if modality == "text" else jnp.ones(x.shape[:3], bool)
    return mask & batch["utt_mask"][..., None]


def _unpack(packed: jnp.ndarray, slot: jnp.ndarray, b: int, u: int) -> jnp.ndarray:
    """Features of packed utterances [N, D] back to their dialogue slots [B, U, D] (zeros where
    no utterance was packed; rows with slot ``B * U`` are padding and dropped)."""
    out = jnp.zeros((b * u + 1, packed.shape[-1]), packed.dtype).at[slot].set(packed)
    return out[: b * u].reshape(b, u, -1)


class ImportedText(nn.Module):
    """Tokens [N, L] (the import's ids + 1) + mask [N, L] -> [N, dim] (``dim`` 0: [N, D]): an
    imported text encoder's pooled utterance vector (``encoder``), projected (``proj``)."""

    cfg: ImportedEncoderConfig
    dim: int

    @nn.compact
    def __call__(self, tokens: jnp.ndarray, mask: jnp.ndarray, train: bool) -> jnp.ndarray:
        f = ImportedEncoder(self.cfg, name="encoder")(tokens, mask, train=train)
        return nn.Dense(self.dim, name="proj")(f) if self.dim else f


@ENCODERS.register("utterance")
class DialogueEncoder(nn.Module):
    """Per-utterance features of the configured modalities, concatenated.

    Attributes:
      modalities: subset of ("text", "audio", "frames", "face").
      text: text-CNN config (its ``vocab_size`` must be set when "text" is a modality).
      audio: Bi-LSTM + attention-pooling config.
      visual: 3-D CNN config (frames and face get separate weights).
      text_encoder: "text_cnn" (``text``) or "imported" (``text_import``, projected to
        ``text_dim``; 0: not projected).
    """

    modalities: Tuple[str, ...]
    text: TextCNNConfig = TextCNNConfig()
    audio: BiLSTMAttnConfig = BiLSTMAttnConfig()
    visual: Conv3DConfig = Conv3DConfig()
    text_encoder: str = "text_cnn"
    text_import: ImportedEncoderConfig = ImportedEncoderConfig()
    text_dim: int = 300

    @nn.compact
    def __call__(self, batch: Dict[str, jnp.ndarray], train: bool):
        """Returns (features [B, U, D], utt_mask [B, U], {modality: [B, U, D_m]})."""
        utt = batch["utt_mask"]
        b, u = utt.shape
        flat = lambda a: a.reshape((b * u,) + a.shape[2:])  # noqa: E731  [B, U, ...] -> [BU, ...]
        per_mod = {}
        for m in self.modalities:
            if m == "text":
                if self.text_encoder == "imported":
                    text = ImportedText(self.text_import, self.text_dim, name="text")
                elif self.text.vocab_size < 1:
                    raise ValueError("modality 'text' needs TextCNNConfig.vocab_size >= 1")
                else:
                    text = TextCNN(self.text, name="text")
                if "tokens_packed" in batch:  # the real utterances only (data.pack_utterances)
                    f = _unpack(text(batch["tokens_packed"], batch["tokens_packed_mask"], train),
                                batch["packed_slot"], b, u)
                else:
                    f = text(flat(batch["tokens"]), flat(_inner_mask(batch, m)), train)
            elif m == "audio":
                f = BiLSTMAttnEncoder(self.audio, name="audio")(
                    flat(batch["audio"]), flat(_inner_mask(batch, m)), train)
            else:
                f = Conv3DEncoder(self.visual, name=m)(
                    flat(batch[_DATA_KEY[m]]), flat(_inner_mask(batch, m)), train)
            per_mod[m] = f.reshape(b, u, -1)  # [B, U, D_m]
        feats = jnp.concatenate([per_mod[m] for m in self.modalities], axis=-1)
        return jnp.where(utt[..., None], feats, 0.0), utt, per_mod
