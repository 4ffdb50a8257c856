"""S001: MFCC -> ResNet-18 speech branch, frames -> ResNet-34 -> LSTM video branch, concatenation.

Source: seed paper S001 (``shared/papers/S001_*``), its Table I models (audio-only, video-only,
fused at dropout 0.3 and 0.5).

Assembled from registered parts: the speech branch (encoder ``resnet_speech``) treats the
[Ta, F] MFCC matrix as a one-channel image, averaged over frequency and valid time at the end;
the video branch (``resnet_lstm``) applies one ResNet to every frame, runs a length-aware LSTM
over time and keeps the last valid state (see ``encoders/streams.py``). The branch vectors are
fused (``model.fusion``, concatenation in the paper), passed through dropout (0.3 or 0.5 in the
paper) and one fully connected layer. Either branch alone gives the
paper's audio-only / video-only models.

``video_encoder = "imported_lstm"`` starts the video branch from ImageNet: the per-frame ResNet is
a torchvision ResNet imported with ``mmer encoders import --format torchvision``
(``model.video_import``: its last stage averaged per frame, the ImageNet normalisation applied
to the frames), the LSTM over frames as before: ``experiments/s001_ravdess_imagenet.py``.
"""

from __future__ import annotations

import dataclasses

from mmer_jax.models.encoders.imported import ImportedEncoderConfig
from mmer_jax.models.encoders.resnet import ResNetConfig
from mmer_jax.models.fused import Branch, EncodersFusionHead, Head
from mmer_jax.registry import ENCODERS, check_fusion, check_names, register_system

S001_MODALITIES = ("audio", "frames", "face")


@dataclasses.dataclass(frozen=True)
class S001Config:
    """``model`` section of S001 (every default of the system lives here).

    ``modalities``: a non-empty subset of ("audio", "frames", "face"); each image key is its own
    video stream with its own weights.
    """

    name: str = "s001"
    modalities: tuple[str, ...] = ("audio", "frames")
    dropout: float = 0.5
    audio: ResNetConfig = ResNetConfig("resnet18")  # the speech branch over MFCC [Ta, F, 1]
    video: ResNetConfig = ResNetConfig("resnet34")  # applied to every frame
    lstm_hidden: int = 256
    audio_encoder: str = "resnet_speech"  # ENCODERS name, built as (audio,)
    video_encoder: str = "resnet_lstm"  # ENCODERS name, built as (video, lstm_hidden, modality)
    # video_encoder="imported_lstm": the imported image network per frame, in place of ``video``.
    video_import: ImportedEncoderConfig = ImportedEncoderConfig(states="-1")
    fusion: str = "concat"  # a vector fusion (FUSIONS), over the modalities in this order

    def __post_init__(self):
        if not self.modalities or any(m not in S001_MODALITIES for m in self.modalities):
            raise ValueError(
                f"modalities={self.modalities} must be a non-empty subset of {S001_MODALITIES}"
            )
        check_names(audio_encoder=(ENCODERS, self.audio_encoder),
                    video_encoder=(ENCODERS, self.video_encoder))
        check_fusion("s001", "vector", self.fusion)
        video = [m for m in self.modalities if m != "audio"]
        if self.video_encoder == "imported_lstm" and video and not (self.video_import.path
                                                                    or self.video_import.record):
            raise ValueError("video_encoder='imported_lstm' needs video_import.path (an "
                             "imported image network's directory)")


def branches(cfg: S001Config) -> tuple[Branch, ...]:
    """S001's encoders in ``cfg.modalities`` order (the fusion's order): the speech branch and one
    video stream per image key, each fused as ``feat_<modality>``."""
    out = []
    for m in cfg.modalities:
        inputs = (m, f"{m}_mask")
        if m != "audio" and cfg.video_encoder == "imported_lstm":  # its own scope: enc_<m>
            out.append(Branch(f"feat_{m}", "imported_lstm", inputs,
                              (cfg.video_import, cfg.lstm_hidden, m), scope=f"enc_{m}"))
        elif m == "audio":
            out.append(Branch("feat_audio", cfg.audio_encoder, inputs, (cfg.audio,),
                              scope="enc_audio", flat=True))
        else:
            out.append(Branch(f"feat_{m}", cfg.video_encoder, inputs,
                              (cfg.video, cfg.lstm_hidden, m), scope=f"enc_{m}", flat=True))
    return tuple(out)


@register_system("s001", S001Config, fusion_kind="vector")
def build(cfg: S001Config, num_classes: int, vocab_size: int = 0) -> EncodersFusionHead:
    """S001 for ``num_classes`` classes (it reads no text, so ``vocab_size`` is unused): utterance
    batch -> (logits [B, C], aux with ``feat_<modality>`` [B, D_m]); the head is dropout and one
    linear layer (``head_out``)."""
    del vocab_size
    head = Head("mlp", (("hidden", 0), ("dropout", cfg.dropout), ("out_name", "head_out")),
                flat=True)
    return EncodersFusionHead(branches(cfg), cfg.fusion, num_classes, head)
