"""CRNN-MA (survey S000 §2.3): a CNN with frame self-attention in parallel with an LSTM with
feature x frame attention, joined by a fusion layer, then a softmax output layer.

Source: S000 §2.3 (``shared/papers/S000_*``), after P. Jiang et al.'s CRNN-MA; protocol there:
IEMOCAP 4 classes, unweighted accuracy. The encoder (``model.encoder``, default ``crnn_ma``) is
described in :mod:`mmer_jax.models.encoders.crnn_ma`.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn

from mmer_jax.models.encoders.crnn_ma import CRNNMAConfig
from mmer_jax.models.systems.speech_only import check_speech_config, encode_and_classify
from mmer_jax.registry import register_system


@dataclasses.dataclass(frozen=True)
class CRNNMASystemConfig:
    """``model`` section of ``crnn_ma`` (every default of the system lives here)."""

    name: str = "crnn_ma"
    modalities: tuple[str, ...] = ("audio",)
    audio: CRNNMAConfig = CRNNMAConfig()
    encoder: str = "crnn_ma"  # an ENCODERS name built as (audio)

    def __post_init__(self):
        check_speech_config(self)


class CRNNMASystem(nn.Module):
    """Utterance batch (``audio`` [B, T, F], ``audio_mask`` [B, T]) -> (logits [B, C],
    ``{"feat_audio": [B, audio.fusion_dim]}``)."""

    cfg: CRNNMASystemConfig
    num_classes: int

    @nn.compact
    def __call__(self, batch, *, train: bool):
        return encode_and_classify(self.cfg, batch["audio"], batch["audio_mask"],
                                   self.num_classes, train)


@register_system("crnn_ma", CRNNMASystemConfig)
def build(cfg: CRNNMASystemConfig, num_classes: int, vocab_size: int = 0) -> CRNNMASystem:
    """CRNN-MA for ``num_classes`` outputs (no text, so ``vocab_size`` is unused)."""
    del vocab_size
    return CRNNMASystem(cfg, num_classes)
