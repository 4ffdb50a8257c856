"""S004's speech model: the CNN-LSTM speech branch with a dense softmax output layer.

Source: seed paper S004 (``shared/papers/S004_*``): "the convolution part is composed of two
convolution layers and a maximum pooling layer ... 32 x 3 ... ReLU. The output dimension of the
LSTM layer is set to 256, and the Recurrent Dropout parameter is set to 0.2 ... The output layer of
all models is the Dense layer, and the output dimension is the number of types of sentiment
classification." This is that network trained end to end (encoder ``model.encoder``, default
``cnn_lstm_speech``); its 256-d utterance vector (``aux["feat_audio"]``) is what S004's classical
half (:mod:`mmer_jax.classic`: chi-square selection, LIBSVM, fuzzy integral) consumes.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn

from mmer_jax.models.encoders.cnn_lstm_speech import CNNLSTMSpeechConfig
from mmer_jax.models.systems.speech_only import check_speech_config, encode_and_classify
from mmer_jax.registry import register_system

# The input streams the network reads as a (time, feature) image: log-mels computed from the
# clip ("audio"), or a stored feature-frame stream (CMU-MOSI / MOSEI's COVAREP "audio_feat").
SPEECH_INPUTS = ("audio", "audio_feat")


@dataclasses.dataclass(frozen=True)
class S004SpeechConfig:
    """``model`` section of ``s004_speech`` (every default of the system lives here).

    ``modalities`` is ``("audio",)`` (log-mels of the clip, the default) or ``("audio_feat",)``
    (stored frames such as CMU-MOSI's COVAREP [T, 74], read the same way: time x feature).
    """

    name: str = "s004_speech"
    modalities: tuple[str, ...] = ("audio",)  # one of SPEECH_INPUTS
    audio: CNNLSTMSpeechConfig = CNNLSTMSpeechConfig()
    encoder: str = "cnn_lstm_speech"  # an ENCODERS name built as (audio)
    dropout: float = 0.0  # before the output layer (the paper names none there)

    def __post_init__(self):
        check_speech_config(self, SPEECH_INPUTS)


class S004Speech(nn.Module):
    """Utterance batch (``<m>`` [B, T, F] float, ``<m>_mask`` [B, T] bool, m = ``audio`` or
    ``audio_feat``) -> (logits [B, C], ``{"feat_audio": [B, audio.hidden]}``). Frames whose mask
    is False change no output."""

    cfg: S004SpeechConfig
    num_classes: int

    @nn.compact
    def __call__(self, batch, *, train: bool):
        (m,) = self.cfg.modalities
        return encode_and_classify(self.cfg, batch[m], batch[f"{m}_mask"],
                                   self.num_classes, train)


@register_system("s004_speech", S004SpeechConfig)
def build(cfg: S004SpeechConfig, num_classes: int, vocab_size: int = 0) -> S004Speech:
    """S004's speech model for ``num_classes`` outputs (1 for regression; no text, so
    ``vocab_size`` is unused)."""
    del vocab_size
    return S004Speech(cfg, num_classes)
