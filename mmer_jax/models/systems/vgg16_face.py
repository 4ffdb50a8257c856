"""The survey's face-emotion model: VGG16 on every face crop, frame embeddings averaged over the
clip's valid frames, dropout, a linear output layer.

Source: seed paper S000 (``shared/papers/S000_*``), §2.2 (Dwijayanti et al.'s "Model B", VGG16,
73 % facial-emotion accuracy on the authors' own robot-camera data; no layer sizes or training
settings given). The network is VGG configuration "D" (:mod:`mmer_jax.models.encoders.vgg16`),
trained from scratch; the paper classifies single images, so averaging over frames is ours, the
simplest way to give one label per clip.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn

from mmer_jax.models.encoders.vgg16 import VGG16Config
from mmer_jax.models.systems.face_only import check_face_config, classify
from mmer_jax.registry import ENCODERS, check_names, register_system


@dataclasses.dataclass(frozen=True)
class VGG16FaceConfig:
    """``model`` section of ``vgg16_face`` (every default of the system lives here)."""

    name: str = "vgg16_face"
    modalities: tuple[str, ...] = ("face",)  # or ("frames",) where frames are face crops
    face: VGG16Config = VGG16Config()
    encoder: str = "vgg16"  # an ENCODERS name built as (face)
    dropout: float = 0.0  # before the output layer (VGG's own dropout is inside fc6/fc7)

    def __post_init__(self):
        check_face_config(self)
        check_names(encoder=(ENCODERS, self.encoder))


class VGG16Face(nn.Module):
    """Clip batch (``<m>`` [B, T, H, W, 3] float, ``<m>_mask`` [B, T] bool, m = the one modality)
    -> (logits [B, C], ``{"feat_<m>": [B, face.fc_dims[-1]]}``)."""

    cfg: VGG16FaceConfig
    num_classes: int

    @nn.compact
    def __call__(self, batch, *, train: bool):
        (m,) = self.cfg.modalities
        feat = ENCODERS[self.cfg.encoder](self.cfg.face, name=f"enc_{m}")(
            batch[m], batch[f"{m}_mask"], train=train)
        return classify(self.cfg, feat, self.num_classes, train), {f"feat_{m}": feat}


@register_system("vgg16_face", VGG16FaceConfig)
def build(cfg: VGG16FaceConfig, num_classes: int, vocab_size: int = 0) -> VGG16Face:
    """The VGG16 face model for ``num_classes`` outputs (1 for regression; no text, so
    ``vocab_size`` is unused)."""
    del vocab_size
    return VGG16Face(cfg, num_classes)
