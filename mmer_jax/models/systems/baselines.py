"""S002's comparison baselines on dialogue batches: text-CNN, bc-LSTM and a CMN-style memory.

All three share :class:`~mmer_jax.models.systems.dialogue.DialogueEncoder` for utterance features
(text only by default; the same config keys as S002) and return logits [B, U, C].

- ``text_cnn`` (Kim 2014): classifies each utterance alone, ignoring the dialogue.
- ``bc_lstm`` (Poria et al. 2017): an LSTM (bidirectional by default) over the utterance features.
- ``cmn`` (Hazarika et al. 2018): each utterance queries GRU memories built from the preceding
  utterances of each speaker, within a window, over a few hops.

Extra config keys and defaults: ``text_cnn``: none. ``bc_lstm``: context_hidden 100,
bidirectional True, head_hidden 100. ``cmn``: memory_hidden 100, hops 3, window 40,
num_speakers 2 (used when the batch has ``speaker`` [B, U]; otherwise one shared memory).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmer_jax.models.layers import LSTM
from mmer_jax.models.systems.dialogue import (
    DialogueEncoder,
    as_dialogue,
    dialogue_encoder_from_cfg,
    finish_logits,
)
from mmer_jax.registry import MODELS


class TextCNNBaseline(nn.Module):
    """Utterance-only classifier over the utterance features."""

    num_classes: int
    encoder: DialogueEncoder
    dropout: float = 0.5

    @nn.compact
    def __call__(self, batch, *, train: bool):
        batch, squeeze = as_dialogue(batch)
        u, utt, _ = self.encoder(batch, train)  # [B, U, D]
        logits = nn.Dense(self.num_classes, name="head_out")(
            nn.Dropout(self.dropout)(u, deterministic=not train)
        )
        return finish_logits(logits, utt, squeeze), {"utterance": u}


class BCLSTM(nn.Module):
    """Contextual LSTM over utterance features, no attention."""

    num_classes: int
    encoder: DialogueEncoder
    context_hidden: int = 100
    bidirectional: bool = True
    head_hidden: int = 100
    dropout: float = 0.5

    @nn.compact
    def __call__(self, batch, *, train: bool):
        batch, squeeze = as_dialogue(batch)
        u, utt, _ = self.encoder(batch, train)
        drop = lambda x: nn.Dropout(self.dropout)(x, deterministic=not train)  # noqa: E731
        c = LSTM(self.context_hidden, bidirectional=self.bidirectional, name="context")(
            drop(u), utt
        )
        z = drop(nn.relu(nn.Dense(self.head_hidden, name="head_hidden")(c)))
        logits = nn.Dense(self.num_classes, name="head_out")(z)
        # Per-utterance classifier on the encoder output, used only by train.aux_loss_weight.
        aux_head = nn.Dense(self.num_classes, name="aux_head")
        aux_logits = finish_logits(aux_head(drop(u)), utt, squeeze)
        return finish_logits(logits, utt, squeeze), {"utterance": u, "context": c,
                                                     "aux_logits": aux_logits}


def _rnn_on_subsequence(rnn: nn.RNN, x: jnp.ndarray, sel: jnp.ndarray) -> jnp.ndarray:
    """Runs ``rnn`` over only the selected steps of each row, in order.

    x [B, U, D], sel [B, U] bool -> [B, U, H], outputs at the selected positions, zeros elsewhere.
    The selected steps are gathered to the front (stable sort), run with their count as length,
    and scattered back: a speaker's memory skips the other speakers' turns.
    """
    order = jnp.argsort(~sel, axis=1, stable=True)  # selected steps first, order kept
    xs = jnp.take_along_axis(x, order[..., None], axis=1)
    ys = rnn(xs, seq_lengths=jnp.sum(sel, axis=1))
    y = jnp.take_along_axis(ys, jnp.argsort(order, axis=1)[..., None], axis=1)
    return jnp.where(sel[..., None], y, 0.0)


class CMN(nn.Module):
    """Conversational memory network over dialogue batches.

    Deviation from the paper, for batching: each speaker's memory GRU runs once over that speaker's
    whole (causal) turn sequence instead of restarting for every query's window; the window then
    limits which memory cells a query may read. Causality keeps cell j a function of turns <= j.
    """

    num_classes: int
    encoder: DialogueEncoder
    memory_hidden: int = 100
    hops: int = 3
    window: int = 40
    num_speakers: int = 2
    dropout: float = 0.5

    @nn.compact
    def __call__(self, batch, *, train: bool):
        batch, squeeze = as_dialogue(batch)
        u, utt, _ = self.encoder(batch, train)
        u = nn.Dropout(self.dropout)(u, deterministic=not train)
        b, n = utt.shape
        q = jnp.tanh(nn.Dense(self.memory_hidden, name="query")(u))  # [B, U, h]
        if "speaker" in batch:
            spk, n_spk = jnp.clip(batch["speaker"], 0, self.num_speakers - 1), self.num_speakers
        else:
            spk, n_spk = jnp.zeros((b, n), jnp.int32), 1
        pos = jnp.arange(n)
        lag = pos[:, None] - pos[None, :]  # [U_query, U_memory]
        history = (lag > 0) & (lag <= self.window)
        sels = [utt & (spk == s) for s in range(n_spk)]  # [B, U] per speaker
        mem_in = q
        for r in range(self.hops):
            mem = sum(
                _rnn_on_subsequence(
                    nn.RNN(nn.GRUCell(self.memory_hidden), name=f"gru{r}_s{s}"), mem_in, sel
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
        z = nn.Dropout(self.dropout)(jnp.tanh(q), deterministic=not train)
        logits = nn.Dense(self.num_classes, name="head_out")(z)
        return finish_logits(logits, utt, squeeze), {"utterance": u, "query": q}


@MODELS.register("text_cnn")
def build_text_cnn(cfg) -> TextCNNBaseline:
    return TextCNNBaseline(cfg.num_classes, dialogue_encoder_from_cfg(cfg), cfg.get("dropout", 0.5))


@MODELS.register("bc_lstm")
def build_bc_lstm(cfg) -> BCLSTM:
    return BCLSTM(
        cfg.num_classes,
        dialogue_encoder_from_cfg(cfg),
        context_hidden=cfg.get("context_hidden", 100),
        bidirectional=cfg.get("bidirectional", True),
        head_hidden=cfg.get("head_hidden", 100),
        dropout=cfg.get("dropout", 0.5),
    )


@MODELS.register("cmn")
def build_cmn(cfg) -> CMN:
    return CMN(
        cfg.num_classes,
        dialogue_encoder_from_cfg(cfg),
        memory_hidden=cfg.get("memory_hidden", 100),
        hops=cfg.get("hops", 3),
        window=cfg.get("window", 40),
        num_speakers=cfg.get("num_speakers", 2),
        dropout=cfg.get("dropout", 0.5),
    )
