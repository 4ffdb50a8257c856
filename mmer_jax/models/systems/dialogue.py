"""What the dialogue-level systems share (S002 and its text_cnn / bc_lstm / cmn baselines): their
config base class and the two batch-shape helpers.

Every dialogue system encodes utterances with S002's utterance encoder
(:class:`mmer_jax.models.encoders.utterance.DialogueEncoder`), configured by the ``text``,
``audio`` and ``visual`` sub-sections of its ``model`` section.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Tuple

import jax.numpy as jnp

from mmer_jax.models.encoders.bilstm_attn import BiLSTMAttnConfig
from mmer_jax.models.encoders.conv3d import Conv3DConfig
from mmer_jax.models.encoders.imported import ImportedEncoderConfig
from mmer_jax.models.encoders.text_cnn import TextCNNConfig
from mmer_jax.models.encoders.utterance import MODALITIES, DialogueEncoder


@dataclasses.dataclass(frozen=True)
class DialogueSystemConfig:
    """The ``model`` keys every dialogue system has.

    ``text.vocab_size`` is set by the builder from the training vocabulary, not by the config.
    ``text_encoder = "imported"``: the utterance's text through a pretrained text encoder
    (``text_import``: a BERT / RoBERTa import, its tokens from ``data.tokenizer``) projected to
    ``text_dim``, in place of the text-CNN (S002's RoBERTa vectors).
    """

    name: str = ""
    modalities: tuple[str, ...] = ("text",)
    dropout: float = 0.5
    text: TextCNNConfig = TextCNNConfig()
    audio: BiLSTMAttnConfig = BiLSTMAttnConfig()
    visual: Conv3DConfig = Conv3DConfig()
    text_encoder: str = "text_cnn"
    text_import: ImportedEncoderConfig = ImportedEncoderConfig(states="-1", pooling="mean")
    text_dim: int = 300  # text_encoder="imported": the projection's width (0: none)

    def __post_init__(self):
        if not self.modalities or any(m not in MODALITIES for m in self.modalities):
            raise ValueError(
                f"modalities={self.modalities} must be a non-empty subset of {MODALITIES}"
            )
        if self.text_encoder not in ("text_cnn", "imported"):
            raise ValueError(f"text_encoder={self.text_encoder!r} must be 'text_cnn' or "
                             "'imported'")
        if self.text_encoder == "imported" and "text" in self.modalities and not (
                self.text_import.path or self.text_import.record):
            raise ValueError("text_encoder='imported' needs text_import.path (an imported "
                             "BERT / RoBERTa directory; set data.tokenizer to it too)")
        if self.text_dim < 0:
            raise ValueError(f"text_dim={self.text_dim} must be >= 0 (0: no projection)")


def utterance_encoder(cfg: DialogueSystemConfig, vocab_size: int, name: str) -> DialogueEncoder:
    """S002's utterance encoder for ``cfg``'s modalities, its embedding sized ``vocab_size``
    (called inside a system's ``@nn.compact`` method, which then owns it as ``name``)."""
    text = dataclasses.replace(cfg.text, vocab_size=int(vocab_size))
    return DialogueEncoder(
        tuple(cfg.modalities), text=text, audio=cfg.audio, visual=cfg.visual,
        text_encoder=cfg.text_encoder, text_import=cfg.text_import, text_dim=cfg.text_dim,
        name=name,
    )


def as_dialogue(batch: Dict[str, jnp.ndarray]) -> Tuple[Dict[str, jnp.ndarray], bool]:
    """Gives an utterance-level batch a U = 1 axis so dialogue models accept both shapes.

    Returns:
      (batch with ``utt_mask``, True if the axis was added and logits must be squeezed back).
    """
    if "utt_mask" in batch:
        return batch, False
    out = {k: v[:, None] for k, v in batch.items() if getattr(v, "ndim", 0) >= 1}
    b = next(iter(out.values())).shape[0]
    out["utt_mask"] = jnp.ones((b, 1), bool)
    return out, True


def speaker_turns(batch: Dict[str, jnp.ndarray], max_speakers: int) -> list[jnp.ndarray]:
    """Per-speaker [B, U] bool masks of a dialogue batch's real turns: one per speaker id
    0..``max_speakers`` - 1 (ids clipped into that range, so later speakers of a multi-party
    dialogue join the last one), or the single mask ``utt_mask`` when the batch has no
    ``speaker`` ids. A real turn is in exactly one mask."""
    utt = batch["utt_mask"]
    if "speaker" not in batch:
        return [utt]
    spk = jnp.clip(batch["speaker"], 0, max_speakers - 1)
    return [utt & (spk == s) for s in range(max_speakers)]


def finish_logits(logits: jnp.ndarray, utt: jnp.ndarray, squeeze: bool) -> jnp.ndarray:
    """Zeros logits of padded utterances (they carry weight 0) and drops an added U axis."""
    logits = jnp.where(utt[..., None], logits, 0.0)  # [B, U, C]
    return logits[:, 0] if squeeze else logits
