"""The first multimodal model: per-modality encoders, concatenation fusion, MLP head.

Config (``cfg.model``): ``modalities`` (subset of audio/frames/face/text), ``encoders`` with one
entry per modality (``name`` from ``registry.ENCODERS`` plus that encoder's fields),
``fusion`` (a ``registry.FUSIONS`` name), ``head_hidden``, ``dropout``, ``num_classes``.
"""

from __future__ import annotations

import flax.linen as nn
import ml_collections

from mmer_jax.models.heads import MLPHead
from mmer_jax.registry import ENCODERS, FUSIONS, MODELS

MASK_KEY = {
    "audio": "audio_mask",
    "frames": "frames_mask",
    "face": "face_mask",
    "text": "tokens_mask",
}
INPUT_KEY = {"audio": "audio", "frames": "frames", "face": "face", "text": "tokens"}


class MultimodalClassifier(nn.Module):
    modalities: tuple
    encoder_specs: tuple  # ((modality, name, kwargs-tuple), ...): hashable for Flax
    fusion: str
    num_classes: int
    head_hidden: int = 128
    dropout: float = 0.3

    @nn.compact
    def __call__(self, batch: dict, *, train: bool):
        feats = {}
        for modality, name, kwargs in self.encoder_specs:
            enc = ENCODERS.get_or_raise(name)(**dict(kwargs), name=f"enc_{modality}")
            feats[modality] = enc(
                batch[INPUT_KEY[modality]], batch[MASK_KEY[modality]], train=train
            )
        fused = FUSIONS.get_or_raise(self.fusion)(name="fusion")(feats, train=train)
        logits = MLPHead(self.num_classes, self.head_hidden, self.dropout, name="head")(
            fused, train=train
        )
        return logits, {"features": feats}


def _freeze(value):
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


@MODELS.register("multimodal")
def build(cfg: ml_collections.ConfigDict) -> nn.Module:
    specs = []
    for modality in cfg.modalities:
        if modality not in cfg.encoders:
            raise KeyError(f"model.encoders has no entry for modality {modality!r}")
        enc = cfg.encoders[modality].to_dict()
        name = enc.pop("name")
        if name == "bilstm":
            enc["vocab_size"] = cfg.vocab_size
        specs.append((modality, name, tuple(sorted((k, _freeze(v)) for k, v in enc.items()))))
    return MultimodalClassifier(
        tuple(cfg.modalities),
        tuple(specs),
        cfg.get("fusion", "concat"),
        cfg.num_classes,
        cfg.get("head_hidden", 128),
        cfg.get("dropout", 0.3),
    )
