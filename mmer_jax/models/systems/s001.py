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

import flax.linen as nn

from mmer_jax.models.encoders.imported import ImportedEncoderConfig
from mmer_jax.models.encoders.resnet import ResNetConfig
from mmer_jax.models.layers import in_scope_of
from mmer_jax.registry import ENCODERS, FUSIONS, check_names, register_system

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
    fusion: str = "concat"  # a name in FUSIONS

    def __post_init__(self):
        if not self.modalities or any(m not in S001_MODALITIES for m in self.modalities):
            raise ValueError(
                f"modalities={self.modalities} must be a non-empty subset of {S001_MODALITIES}"
            )
        check_names(audio_encoder=(ENCODERS, self.audio_encoder),
                    video_encoder=(ENCODERS, self.video_encoder), fusion=(FUSIONS, self.fusion))
        video = [m for m in self.modalities if m != "audio"]
        if self.video_encoder == "imported_lstm" and video and not (self.video_import.path
                                                                    or self.video_import.record):
            raise ValueError("video_encoder='imported_lstm' needs video_import.path (an "
                             "imported image network's directory)")


class S001(nn.Module):
    """Utterance batch -> (logits [B, C], aux with ``feat_<modality>`` [B, D_m])."""

    cfg: S001Config
    num_classes: int

    @nn.compact
    def __call__(self, batch, *, train: bool):
        c = self.cfg
        feats = {}
        for m in c.modalities:
            if m != "audio" and c.video_encoder == "imported_lstm":  # its own scope: enc_<m>
                feats[f"feat_{m}"] = ENCODERS["imported_lstm"](
                    c.video_import, c.lstm_hidden, m, name=f"enc_{m}")(
                    batch[m], batch[f"{m}_mask"], train=train)
                continue
            if m == "audio":
                enc = ENCODERS[c.audio_encoder](c.audio, name="enc_audio")
            else:
                enc = ENCODERS[c.video_encoder](c.video, c.lstm_hidden, m, name=f"enc_{m}")
            feats[f"feat_{m}"] = in_scope_of(self, enc)(batch[m], batch[f"{m}_mask"], train=train)
        fused = FUSIONS[c.fusion](ordered=True, name="fusion")(feats, train=train)
        h = nn.Dropout(c.dropout)(fused, deterministic=not train)
        return nn.Dense(self.num_classes, name="head_out")(h), feats


@register_system("s001", S001Config)
def build(cfg: S001Config, num_classes: int, vocab_size: int = 0) -> S001:
    """S001 for ``num_classes`` classes (it reads no text, so ``vocab_size`` is unused)."""
    del vocab_size
    return S001(cfg, num_classes)
