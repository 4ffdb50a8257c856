"""S002: Bi-LSTM dialogue context + multi-head self-attention + residual LayerNorm (Gao & Guo).

Per utterance, each present modality is encoded (text: text-CNN over trainable embeddings; audio:
4-layer Bi-LSTM + 4 linear layers + attention pooling; visual: 3-D CNN) and the features are
concatenated. A Bi-LSTM runs over the utterances of the dialogue, multi-head self-attention over
its outputs F gives ``H = Norm(F + MHA(F))``, and a small classifier labels every utterance.

The paper feeds 300-d RoBERTa-derived word vectors and does not give layer sizes; here embeddings
are trained from scratch and the sizes below are the defaults of the config keys.

Config keys (``model`` section), with defaults:
  num_classes; modalities ("text",); dropout 0.5; vocab_size (set by the pipeline for text);
  embed_dim 300, text_widths (3, 4, 5), text_filters 50, text_out 100;
  audio_hidden 128, audio_layers 4, audio_linear (256,)*4, audio_attn_hidden 128;
  visual_channels (32, 64, 128), visual_time_pool 2, visual_out 256;
  context_hidden 128 (per direction), num_heads 4, head_hidden 128, attention_impl "xla".
"""

from __future__ import annotations

import flax.linen as nn

from mmer_jax.models.fusion.attention_residual import AttentionResidual
from mmer_jax.models.layers import LSTM
from mmer_jax.models.systems.dialogue import (
    DialogueEncoder,
    as_dialogue,
    dialogue_encoder_from_cfg,
    finish_logits,
)
from mmer_jax.registry import MODELS


class S002(nn.Module):
    """Dialogue batch -> (logits [B, U, C], aux)."""

    num_classes: int
    encoder: DialogueEncoder
    context_hidden: int = 128
    num_heads: int = 4
    head_hidden: int = 128
    dropout: float = 0.5
    attention_impl: str = "xla"

    @nn.compact
    def __call__(self, batch, *, train: bool):
        batch, squeeze = as_dialogue(batch)
        u, utt, per_mod = self.encoder(batch, train)  # [B, U, D], [B, U]
        u = nn.Dropout(self.dropout)(u, deterministic=not train)
        f = LSTM(self.context_hidden, bidirectional=True, name="context")(u, utt)  # [B, U, 2h]
        h = AttentionResidual(
            self.num_heads, self.dropout, self.attention_impl, name="attn_residual"
        )(f, utt, train=train)  # [B, U, 2h]
        z = nn.relu(nn.Dense(self.head_hidden, name="head_hidden")(h))
        z = nn.Dropout(self.dropout)(z, deterministic=not train)
        logits = nn.Dense(self.num_classes, name="head_out")(z)  # [B, U, C]
        aux = {
            # Per-utterance classifier on the encoder output, used only by train.aux_loss_weight.
            "aux_logits": finish_logits(
                nn.Dense(self.num_classes, name="aux_head")(u), utt, squeeze
            ),
            "utterance": u,
            "context": f,
            "fused": h,
            **{f"feat_{k}": v for k, v in per_mod.items()},
        }
        return finish_logits(logits, utt, squeeze), aux


@MODELS.register("s002")
def build(cfg) -> S002:
    return S002(
        num_classes=cfg.num_classes,
        encoder=dialogue_encoder_from_cfg(cfg),
        context_hidden=cfg.get("context_hidden", 128),
        num_heads=cfg.get("num_heads", 4),
        head_hidden=cfg.get("head_hidden", 128),
        dropout=cfg.get("dropout", 0.5),
        attention_impl=cfg.get("attention_impl", "xla"),
    )
