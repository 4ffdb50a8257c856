"""S004's face model: Inception-ResNet-v2 on every face crop, the chosen layer's features
averaged over the clip's valid frames, dropout, a dense softmax output layer.

Source: seed paper S004 (``shared/papers/S004_*``): video faces go through Inception-ResNet-v2,
whose convolution, average-pool, dropout and fully connected layer outputs are each classified
and compared (its Table 2: 66.09 / 63.84 / 79.18 / 85.75 %; fully connected best and used).
Trained end to end from scratch here (no pretrained weights can be fetched).

``face.tap`` picks the layer whose features feed the output layer (default ``fc``, the paper's
choice); every layer's features come back in ``aux`` as ``tap_conv``, ``tap_avgpool``,
``tap_dropout`` and ``tap_fc`` ([B, D_tap] each, averaged over valid frames), so one forward
pass exports all four for a Table 2-style comparison or for S004's classical half
(:mod:`mmer_jax.classic`).

``face_encoder = "imported"`` starts from ImageNet instead: timm's Inception-ResNet-v2 imported
with ``mmer encoders import --format timm --arch inception_resnet_v2`` (``model.face_import``:
every crop resized to ``face_import.image_size``, the network's last 1536-channel map averaged,
then over the clip's valid crops: the paper's average-pool tap, ``tap_avgpool``), dropout, the
output layer: ``experiments/s004_face_meld_imagenet.py``.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn

from mmer_jax.models.encoders.imported import ImportedEncoderConfig
from mmer_jax.models.encoders.inception_resnet_v2 import InceptionResNetV2Config, IRv2Frames
from mmer_jax.models.systems.face_only import check_face_config, classify
from mmer_jax.registry import ENCODERS, register_system


@dataclasses.dataclass(frozen=True)
class S004FaceConfig:
    """``model`` section of ``s004_face`` (every default of the system lives here)."""

    name: str = "s004_face"
    modalities: tuple[str, ...] = ("face",)  # or ("frames",) where frames are face crops
    face: InceptionResNetV2Config = InceptionResNetV2Config()
    # "inception_resnet_v2": ``face``, trained from scratch with its taps; "imported": the
    # ImageNet network of ``face_import`` (any imported image network), features averaged.
    face_encoder: str = "inception_resnet_v2"
    face_import: ImportedEncoderConfig = ImportedEncoderConfig(states="-1", pooling="mean",
                                                               image_size=299)
    dropout: float = 0.0  # before the output layer (the network's own dropout is face.dropout)

    def __post_init__(self):
        check_face_config(self)
        if self.face_encoder not in ("inception_resnet_v2", "imported"):
            raise ValueError(f"face_encoder={self.face_encoder!r} must be 'inception_resnet_v2' "
                             "or 'imported'")
        if self.face_encoder == "imported" and not (self.face_import.path
                                                    or self.face_import.record):
            raise ValueError("face_encoder='imported' needs face_import.path (an imported "
                             "image network's directory)")


class S004Face(nn.Module):
    """Clip batch (``<m>`` [B, T, H, W, 3] float, ``<m>_mask`` [B, T] bool, m = the one modality)
    -> (logits [B, C], aux): ``aux["feat_<m>"]`` is the ``face.tap`` features, ``aux["tap_<t>"]``
    every tap t's [B, D_t]."""

    cfg: S004FaceConfig
    num_classes: int

    @nn.compact
    def __call__(self, batch, *, train: bool):
        (m,) = self.cfg.modalities
        if self.cfg.face_encoder == "imported":
            feat = ENCODERS["imported"](self.cfg.face_import, name=f"enc_{m}")(
                batch[m], batch[f"{m}_mask"], train=train)  # [B, C] over the valid crops
            aux = {f"feat_{m}": feat, "tap_avgpool": feat}
            return classify(self.cfg, feat, self.num_classes, train), aux
        # IRv2Frames is the registered ``inception_resnet_v2`` encoder; built directly for .taps.
        taps = IRv2Frames(self.cfg.face, name=f"enc_{m}").taps(
            batch[m], batch[f"{m}_mask"], train=train)
        feat = taps[self.cfg.face.tap]
        aux = {f"feat_{m}": feat, **{f"tap_{k}": v for k, v in taps.items()}}
        return classify(self.cfg, feat, self.num_classes, train), aux


@register_system("s004_face", S004FaceConfig)
def build(cfg: S004FaceConfig, num_classes: int, vocab_size: int = 0) -> S004Face:
    """S004's face model for ``num_classes`` outputs (1 for regression; no text, so
    ``vocab_size`` is unused)."""
    del vocab_size
    return S004Face(cfg, num_classes)
