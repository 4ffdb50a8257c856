"""S002: Bi-LSTM dialogue context + multi-head self-attention + residual LayerNorm (Gao & Guo).

Source: seed paper S002 (``shared/papers/S002_*``).

Per utterance, each present modality is encoded (text: text-CNN over trainable embeddings; audio:
4-layer Bi-LSTM + 4 linear layers + attention pooling; visual: 3-D CNN) and the features are
concatenated. A Bi-LSTM runs over the utterances of the dialogue, the context fusion
(``model.fusion``: ``H = Norm(F + MHA(F))`` in the paper) runs over its outputs F, and a small
classifier labels every utterance. With ``model.speaker_context`` a second Bi-LSTM also runs over
each speaker's own turns and F holds both: our reading of the paper's per-speaker context sets
(its Eq. 1, which takes a speaker's earlier turns within a window H that it does not give; here
the speaker's whole turn sequence, both directions, and only the current speaker's context).

The paper feeds 300-d RoBERTa-derived word vectors and does not give layer sizes; here embeddings
are trained from scratch and the sizes are the defaults of :class:`S002Config`.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.layers import LSTM, on_subsequence
from mmer_jax.models.ops import ATTENTION_IMPLEMENTATIONS, lookup
from mmer_jax.models.systems.dialogue import (
    DialogueSystemConfig,
    as_dialogue,
    finish_logits,
    speaker_turns,
    utterance_encoder,
)
from mmer_jax.registry import SEQUENCE_FUSIONS, check_fusion, register_system


@dataclasses.dataclass(frozen=True)
class S002Config(DialogueSystemConfig):
    """``model`` section of S002 (every default of the system lives here)."""

    name: str = "s002"
    context_hidden: int = 128  # per direction
    context_layers: int = 1
    num_heads: int = 4
    attention_dropout: float | None = None  # inside the attention block; None: ``dropout``
    head_hidden: int = 128  # 0: the classifier is one linear layer on the fused features
    init_scheme: str = "flax"  # "pytorch": the context LSTM initialised as PyTorch's nn.LSTM
    fusion: str = "attention_residual"  # a sequence fusion (SEQUENCE_FUSIONS)
    implementation: str = "xla"  # of the attention op (mmer_jax.models.ops)
    # True: a second Bi-LSTM (shared by the speakers) runs over each speaker's own turns (our
    # reading of the paper's per-speaker context Y_lambda, its Eq. 1), and its outputs are
    # concatenated to the dialogue context, so F is [B, U, 4 * context_hidden]. Reads the
    # batch's ``speaker`` ids (dialogue batches carry them; a corpus without speakers gives all
    # turns id 0, and then this is a second dialogue Bi-LSTM).
    speaker_context: bool = False
    max_speakers: int = 2  # speaker_context: ids >= this share the last speaker's context

    def __post_init__(self):
        super().__post_init__()
        lookup(ATTENTION_IMPLEMENTATIONS, self.implementation)
        check_fusion("s002", "sequence", self.fusion)
        if self.max_speakers < 1:
            raise ValueError(f"max_speakers={self.max_speakers} must be >= 1")
        # The bidirectional context's features (twice that with the per-speaker context).
        width = (4 if self.speaker_context else 2) * self.context_hidden
        if self.num_heads < 1 or width % self.num_heads:
            raise ValueError(f"num_heads={self.num_heads} must be >= 1 and divide the context "
                             f"width {width} (2 * context_hidden, 4 * with speaker_context)")


class S002(nn.Module):
    """Dialogue batch -> (logits [B, U, C], aux)."""

    cfg: S002Config
    num_classes: int
    vocab_size: int

    @nn.compact
    def __call__(self, batch, *, train: bool):
        c = self.cfg
        batch, squeeze = as_dialogue(batch)
        encoder = utterance_encoder(c, self.vocab_size, "encoder")
        u, utt, per_mod = encoder(batch, train)  # [B, U, D], [B, U]
        u = nn.Dropout(c.dropout)(u, deterministic=not train)
        context = lambda name: LSTM(  # noqa: E731
            c.context_hidden, bidirectional=True, num_layers=c.context_layers,
            init_scheme=c.init_scheme, name=name)
        f = context("context")(u, utt)  # [B, U, 2h]
        if c.speaker_context:
            f = jnp.concatenate([f, _speaker_context(
                context("speaker_context"), u, batch, c.max_speakers)], -1)  # [B, U, 4h]
        h = SEQUENCE_FUSIONS[c.fusion](
            num_heads=c.num_heads, dropout=c.dropout, implementation=c.implementation,
            attention_dropout=c.attention_dropout, name="attn_residual",
        )(f, utt, train=train)  # shaped as f
        z = nn.relu(nn.Dense(c.head_hidden, name="head_hidden")(h)) if c.head_hidden else h
        z = nn.Dropout(c.dropout)(z, deterministic=not train)
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


def _speaker_context(lstm: LSTM, u: jnp.ndarray, batch, max_speakers: int) -> jnp.ndarray:
    """u [B, U, D] -> [B, U, 2h]: at each turn, ``lstm`` run over its own speaker's turns only
    (:func:`speaker_turns`: on a multi-party corpus the later speakers share the last one's
    context)."""
    sels = speaker_turns(batch, max_speakers)
    n, b = len(sels), u.shape[0]
    # The speakers' sequences are stacked on the batch axis so the LSTM scans U steps once, not
    # once per speaker. A turn belongs to exactly one speaker, so the per-speaker outputs (zeros
    # off that speaker's turns) add up without overlap.
    y = on_subsequence(lstm, jnp.concatenate([u] * n), jnp.concatenate(sels))  # [n B, U, 2h]
    return y.reshape(n, b, *y.shape[1:]).sum(0)


@register_system("s002", S002Config, fusion_kind="sequence")
def build(cfg: S002Config, num_classes: int, vocab_size: int) -> S002:
    """S002 for ``num_classes`` classes over a text vocabulary of ``vocab_size`` ids."""
    return S002(cfg, num_classes, vocab_size)
