"""The quickstart system: one registered encoder per modality, a registered fusion and head.

Modalities: "audio", "frames", "face", "text", and the pre-extracted feature streams
"text_feat", "audio_feat", "vision_feat" of CMU-MOSI / CMU-MOSEI (with the ``feature_lstm``
encoders of :data:`FEATURE_STREAM_ENCODERS`).

Also the template for assembling a new system from registered parts: every name in its
``model`` section (``encoders.<modality>.name``, ``fusion``, ``head``) is a registry entry, so a
new encoder or fusion is one file plus one name in a config.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from mmer_jax.models.fused import Branch, EncodersFusionHead, Head
from mmer_jax.registry import ENCODERS, HEADS, check_fusion, check_names, register_system

# Model-batch keys of each modality's input and mask (see docs/contracts.md). The feature streams
# of CMU-MOSI / CMU-MOSEI ([B, T, D] float, e.g. read by ``feature_lstm``) are keyed by their name.
FEATURE_STREAMS = ("text_feat", "audio_feat", "vision_feat")
INPUT_KEY = {"audio": "audio", "frames": "frames", "face": "face", "text": "tokens",
             **{m: m for m in FEATURE_STREAMS}}
MASK_KEY = {"audio": "audio_mask", "frames": "frames_mask", "face": "face_mask",
            "text": "tokens_mask", **{m: f"{m}_mask" for m in FEATURE_STREAMS}}

# The encoders of the feature-stream quickstart (experiments/quickstart_cmu_mosi.py): one small
# BiLSTM per stream.
FEATURE_STREAM_ENCODERS = {
    m: {"name": "feature_lstm", "hidden": 32, "proj": 32, "dropout": 0.1}
    for m in FEATURE_STREAMS
}


# Small enough for a laptop CPU: a two-stage ResNet over log-mel, a per-frame CNN + LSTM, a BiLSTM.
QUICKSTART_ENCODERS = {
    "audio": {"name": "resnet2d", "depth": (1, 1), "width": 16, "norm": "batch",
              "stem_stride": 2, "stem_pool": True},
    "frames": {"name": "cnn_lstm", "widths": (16, 32), "hidden": 64},
    "text": {"name": "bilstm", "embed_dim": 32, "hidden": 32, "dropout": 0.1},
}


@dataclasses.dataclass(frozen=True)
class QuickstartConfig:
    """``model`` section of the quickstart system.

    ``encoders`` maps each modality to ``{"name": <ENCODERS name>, **that encoder's fields}``;
    an encoder with a ``vocab_size`` field gets the training vocabulary's size.
    """

    name: str = "quickstart"
    modalities: tuple[str, ...] = ("audio", "frames", "text")
    encoders: Any = dataclasses.field(default_factory=lambda: dict(QUICKSTART_ENCODERS))
    fusion: str = "concat"  # a vector fusion (FUSIONS), over the modalities in sorted order
    fusion_options: Any = dataclasses.field(default_factory=dict)  # that fusion's fields
    head: str = "mlp"  # a name in HEADS
    head_hidden: int = 128
    dropout: float = 0.3

    def __post_init__(self):
        unknown = [m for m in self.modalities if m not in INPUT_KEY]
        if not self.modalities or unknown:
            raise ValueError(
                f"modalities={self.modalities} must be a non-empty subset of {tuple(INPUT_KEY)}"
            )
        missing = [m for m in self.modalities if m not in self.encoders]
        if missing:
            raise ValueError(f"encoders={dict(self.encoders)} has no entry for {missing[0]!r}")
        check_fusion("quickstart", "vector", self.fusion)
        check_names(head=(HEADS, self.head),
                    **{f"encoders.{m}.name": (ENCODERS, self.encoders[m].get("name", ""))
                       for m in self.modalities})


def _branch(modality: str, spec: dict, vocab_size: int) -> Branch:
    kwargs = dict(spec)
    name = kwargs.pop("name", None)
    if name is None:
        raise ValueError(f"encoders.{modality} needs a 'name' (one of {ENCODERS.names()})")
    cls = ENCODERS[name]
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(kwargs) - fields)
    if unknown:
        raise ValueError(f"encoders.{modality}: encoder {name!r} has no field {unknown[0]!r}")
    if "vocab_size" in fields:
        kwargs["vocab_size"] = vocab_size
    return Branch(modality, name, (INPUT_KEY[modality], MASK_KEY[modality]),
                  kwargs=tuple(sorted(kwargs.items())), scope=f"enc_{modality}")


@register_system("quickstart", QuickstartConfig, fusion_kind="vector")
def build(cfg: QuickstartConfig, num_classes: int, vocab_size: int) -> EncodersFusionHead:
    """The quickstart classifier for ``cfg.modalities``: utterance batch -> (logits [B, C],
    ``{"features": {modality: [B, D_m]}}``).

    The fusion sees the modalities in sorted-name order (the quickstart's order since its first
    runs, kept so that their checkpoints load and compute what they did).

    Raises:
      ValueError: an encoder without a name or with a field its module does not have.
      UnknownName (KeyError): an encoder, fusion or head name no registry has.
    """
    branches = tuple(_branch(m, cfg.encoders[m], vocab_size) for m in sorted(cfg.modalities))
    head = Head(cfg.head, (("hidden", cfg.head_hidden), ("dropout", cfg.dropout)))
    return EncodersFusionHead(branches, cfg.fusion, num_classes, head,
                              tuple(sorted(cfg.fusion_options.items())), features_key="features")
