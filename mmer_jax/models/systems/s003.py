"""S003: a small real-time model — whole frame + face crop + audio, CNN + LSTM per stream.

Source: seed paper S003 (``shared/papers/S003_*``, an interim report that gives no layer sizes;
the defaults keep the model small).

Assembled from registered parts: each image stream (whole ``frames`` and cropped ``face``,
separate weights) goes through a shallow MobileFaceNet-style CNN per frame and an LSTM over time
(encoder ``mobileface_lstm``); the audio features through a 1-D CNN and an LSTM
(``conv1d_lstm``). The last valid LSTM state of every stream is fused (``model.fusion``:
concatenation in the system's modality order) and classified by fully connected layers.

``audio_encoder = "imported"`` swaps the audio stream for a pretrained speech encoder imported
with ``mmer encoders import|fetch`` (``model.audio_import``, the ``imported`` encoder: weighted
hidden states, pooled; the run's ``data.frontend`` is then the encoder's input, e.g.
"whisper"): ``experiments/s003_meld_whisper.py``.
"""

from __future__ import annotations

import dataclasses

from mmer_jax.models.encoders.conv1d_audio import Conv1DAudioConfig
from mmer_jax.models.encoders.imported import ImportedEncoderConfig
from mmer_jax.models.encoders.mobileface import MobileFaceConfig
from mmer_jax.models.fused import Branch, EncodersFusionHead, Head
from mmer_jax.registry import ENCODERS, check_fusion, check_names, register_system

S003_MODALITIES = ("frames", "face", "audio")


@dataclasses.dataclass(frozen=True)
class S003Config:
    """``model`` section of S003 (every default of the system lives here).

    ``image`` configures the per-frame CNN of both image streams (``image.implementation`` picks
    the depthwise convolution: "shifted" or "grouped"); ``audio`` the 1-D CNN over features.
    """

    name: str = "s003"
    modalities: tuple[str, ...] = S003_MODALITIES
    dropout: float = 0.3
    image: MobileFaceConfig = MobileFaceConfig()
    audio: Conv1DAudioConfig = Conv1DAudioConfig()
    lstm_hidden: int = 128
    fc_hidden: int = 128
    image_encoder: str = "mobileface_lstm"  # ENCODERS name, built as (image, lstm_hidden, modality)
    audio_encoder: str = "conv1d_lstm"  # ENCODERS name, built as (audio, lstm_hidden)
    # audio_encoder="imported": the pretrained speech encoder of the audio stream, in place of
    # ``audio`` (its pooled vector is fused as the stream's feature).
    audio_import: ImportedEncoderConfig = ImportedEncoderConfig(time_masks=0)
    fusion: str = "concat"  # a vector fusion (FUSIONS), over the modalities in this order

    def __post_init__(self):
        if not self.modalities or any(m not in S003_MODALITIES for m in self.modalities):
            raise ValueError(
                f"modalities={self.modalities} must be a non-empty subset of {S003_MODALITIES}"
            )
        check_names(image_encoder=(ENCODERS, self.image_encoder),
                    audio_encoder=(ENCODERS, self.audio_encoder))
        check_fusion("s003", "vector", self.fusion)
        imported = self.audio_encoder == "imported"
        if imported and "audio" in self.modalities and not (self.audio_import.path
                                                            or self.audio_import.record):
            raise ValueError("audio_encoder='imported' needs audio_import.path (an imported "
                             "speech encoder's directory)")


def branches(cfg: S003Config) -> tuple[Branch, ...]:
    """S003's streams in ``cfg.modalities`` order (the fusion's order), fused as
    ``feat_<modality>``."""
    out = []
    for m in cfg.modalities:
        inputs = (m, f"{m}_mask")
        if m == "audio" and cfg.audio_encoder == "imported":  # its own scope: enc_audio/...
            out.append(Branch("feat_audio", "imported", inputs, (cfg.audio_import,),
                              scope="enc_audio"))
        elif m == "audio":
            out.append(Branch("feat_audio", cfg.audio_encoder, inputs,
                              (cfg.audio, cfg.lstm_hidden), scope="enc_audio", flat=True))
        else:
            out.append(Branch(f"feat_{m}", cfg.image_encoder, inputs,
                              (cfg.image, cfg.lstm_hidden, m), scope=f"enc_{m}", flat=True))
    return tuple(out)


@register_system("s003", S003Config, fusion_kind="vector")
def build(cfg: S003Config, num_classes: int, vocab_size: int = 0) -> EncodersFusionHead:
    """S003 for ``num_classes`` classes (it reads no text, so ``vocab_size`` is unused): utterance
    batch -> (logits [B, C], aux with ``feat_<modality>`` [B, lstm_hidden]); the head is FC
    (``fc``) -> ReLU -> dropout -> FC (``head_out``)."""
    del vocab_size
    head = Head("mlp", (("hidden", cfg.fc_hidden), ("dropout", cfg.dropout),
                        ("hidden_name", "fc"), ("out_name", "head_out")), flat=True)
    return EncodersFusionHead(branches(cfg), cfg.fusion, num_classes, head)
