"""S002's comparison baselines on dialogue batches: text-CNN, bc-LSTM and a CMN-style memory.

All three share S002's utterance encoder (:mod:`mmer_jax.models.encoders.utterance`; text only by
default; the same ``text`` / ``audio`` / ``visual`` config sub-sections as S002) and return logits
[B, U, C].

- ``text_cnn`` (Kim 2014): classifies each utterance alone, ignoring the dialogue.
- ``bc_lstm`` (Poria et al. 2017): an LSTM (bidirectional by default) over the utterance features.
- ``cmn`` (Hazarika et al. 2018): each utterance queries GRU memories built from the preceding
  utterances of each speaker, within a window, over a few hops.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmer_jax.models.layers import LSTM, lengths_from_mask, on_subsequence
from mmer_jax.models.systems.dialogue import (
    DialogueSystemConfig,
    as_dialogue,
    finish_logits,
    speaker_turns,
    utterance_encoder,
)
from mmer_jax.registry import register_system


@dataclasses.dataclass(frozen=True)
class TextCNNBaselineConfig(DialogueSystemConfig):
    """``model`` section of ``text_cnn``: the utterance encoder's keys only."""

    name: str = "text_cnn"


@dataclasses.dataclass(frozen=True)
class BCLSTMConfig(DialogueSystemConfig):
    """``model`` section of ``bc_lstm``."""

    name: str = "bc_lstm"
    context_hidden: int = 100
    bidirectional: bool = True
    head_hidden: int = 100


@dataclasses.dataclass(frozen=True)
class CMNConfig(DialogueSystemConfig):
    """``model`` section of ``cmn``; ``num_speakers`` is used when the batch has ``speaker``
    [B, U] (otherwise one shared memory)."""

    name: str = "cmn"
    memory_hidden: int = 100
    hops: int = 3
    window: int = 40
    num_speakers: int = 2

    def __post_init__(self):
        super().__post_init__()
        for name in ("memory_hidden", "hops", "window", "num_speakers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")

class TextCNNBaseline(nn.Module):
    """Utterance-only classifier over the utterance features."""

    cfg: TextCNNBaselineConfig
    num_classes: int
    vocab_size: int

    @nn.compact
    def __call__(self, batch, *, train: bool):
        batch, squeeze = as_dialogue(batch)
        encoder = utterance_encoder(self.cfg, self.vocab_size, "encoder")
        u, utt, _ = encoder(batch, train)  # [B, U, D]
        logits = nn.Dense(self.num_classes, name="head_out")(
            nn.Dropout(self.cfg.dropout)(u, deterministic=not train)
        )
        return finish_logits(logits, utt, squeeze), {"utterance": u}


class BCLSTM(nn.Module):
    """Contextual LSTM over utterance features, no attention."""

    cfg: BCLSTMConfig
    num_classes: int
    vocab_size: int

    @nn.compact
    def __call__(self, batch, *, train: bool):
        cfg = self.cfg
        batch, squeeze = as_dialogue(batch)
        encoder = utterance_encoder(cfg, self.vocab_size, "encoder")
        u, utt, _ = encoder(batch, train)
        drop = lambda x: nn.Dropout(cfg.dropout)(x, deterministic=not train)  # noqa: E731
        c = LSTM(cfg.context_hidden, bidirectional=cfg.bidirectional, name="context")(
            drop(u), utt
        )
        z = drop(nn.relu(nn.Dense(cfg.head_hidden, name="head_hidden")(c)))
        logits = nn.Dense(self.num_classes, name="head_out")(z)
        # Per-utterance classifier on the encoder output, used only by train.aux_loss_weight.
        aux_head = nn.Dense(self.num_classes, name="aux_head")
        aux_logits = finish_logits(aux_head(drop(u)), utt, squeeze)
        return finish_logits(logits, utt, squeeze), {"utterance": u, "context": c,
                                                     "aux_logits": aux_logits}


def _with_lengths(rnn: nn.RNN):
    """``rnn`` as an :func:`on_subsequence` layer: (xs, mask) -> rnn(xs, lengths of mask)."""
    return lambda xs, mask: rnn(xs, seq_lengths=lengths_from_mask(mask))


class CMN(nn.Module):
    """Conversational memory network over dialogue batches.

    Deviation from the paper, for batching: each speaker's memory GRU runs once over that speaker's
    whole (causal) turn sequence instead of restarting for every query's window; the window then
    limits which memory cells a query may read. Causality keeps cell j a function of turns <= j.
    """

    cfg: CMNConfig
    num_classes: int
    vocab_size: int

    @nn.compact
    def __call__(self, batch, *, train: bool):
        cfg = self.cfg
        batch, squeeze = as_dialogue(batch)
        encoder = utterance_encoder(cfg, self.vocab_size, "encoder")
        u, utt, _ = encoder(batch, train)
        u = nn.Dropout(cfg.dropout)(u, deterministic=not train)
        n = utt.shape[1]
        q = jnp.tanh(nn.Dense(cfg.memory_hidden, name="query")(u))  # [B, U, h]
        sels = speaker_turns(batch, cfg.num_speakers)  # [B, U] per speaker
        pos = jnp.arange(n)
        lag = pos[:, None] - pos[None, :]  # [U_query, U_memory]
        history = (lag > 0) & (lag <= cfg.window)
        mem_in = q
        for r in range(cfg.hops):
            mem = sum(
                on_subsequence(
                    _with_lengths(nn.RNN(nn.GRUCell(cfg.memory_hidden), name=f"gru{r}_s{s}")),
                    mem_in, sel,
                )
                for s, sel in enumerate(sels)
            )  # [B, U, h]: each position holds its own speaker's memory cell
            scores = jnp.einsum("bqh,bkh->bqk", q, mem)
            read = jnp.zeros_like(q)
            for sel in sels:  # a separate softmax per speaker's memory, as in CMN
                valid = history[None] & sel[:, None, :]  # [B, U, U]
                p = jax.nn.softmax(jnp.where(valid, scores, -1e30), axis=-1)
                p = jnp.where(valid, p, 0.0)  # empty histories read nothing
                read = read + jnp.einsum("bqk,bkh->bqh", p, mem)
            q = q + read
            mem_in = mem
        z = nn.Dropout(cfg.dropout)(jnp.tanh(q), deterministic=not train)
        logits = nn.Dense(self.num_classes, name="head_out")(z)
        return finish_logits(logits, utt, squeeze), {"utterance": u, "query": q}


@register_system("text_cnn", TextCNNBaselineConfig)
def build_text_cnn(cfg: TextCNNBaselineConfig, num_classes: int, vocab_size: int):
    """The text-CNN baseline (Kim 2014): each utterance classified alone."""
    return TextCNNBaseline(cfg, num_classes, vocab_size)


@register_system("bc_lstm", BCLSTMConfig)
def build_bc_lstm(cfg: BCLSTMConfig, num_classes: int, vocab_size: int):
    """bc-LSTM (Poria et al. 2017)."""
    return BCLSTM(cfg, num_classes, vocab_size)


@register_system("cmn", CMNConfig)
def build_cmn(cfg: CMNConfig, num_classes: int, vocab_size: int):
    """A CMN-style conversational memory network (Hazarika et al. 2018)."""
    return CMN(cfg, num_classes, vocab_size)
