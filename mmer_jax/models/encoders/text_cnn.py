"""Word-level text CNN utterance encoder (Kim 2014), as used by bc-LSTM, CMN and DialogueRNN.

Trainable embeddings -> parallel 1-D convolutions of several widths -> ReLU -> max over the valid
words -> concatenation -> dropout -> a fully connected layer. "SAME" padding keeps utterances
shorter than the widest filter usable; padded words are zeroed before the convolutions and
excluded from the max, so their token ids cannot change the result.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmer_jax.models.layers import LSTM, masked_max, masked_mean
from mmer_jax.schema import derived

KINDS = ("cnn", "bow", "cnn+bow", "bilstm")
# The tokenizer's <unk> id (mmer_jax.data.text.UNK; models may not import the data layer, so a
# test pins the two equal).
UNK_ID = 1


@dataclasses.dataclass(frozen=True)
class TextCNNConfig:
    """The text-CNN's shape (``model.text`` of the dialogue systems).

    ``vocab_size`` is not a config key: the model builder sets it from the training vocabulary.
    """

    vocab_size: int = derived(0)
    embed_dim: int = 300
    widths: Sequence[int] = (3, 4, 5)
    filters: int = 50  # per width
    out: int = 100
    dropout: float = 0.5
    # "cnn" (the text-CNN of bc-LSTM/DialogueRNN), "bow" (mean+max of word and hashed-bigram
    # embeddings, a learned TF-IDF-like view) or "cnn+bow" (both, concatenated). Embeddings trained
    # from scratch learn lexical cues far faster through the bag-of-n-grams path.
    kind: str = "cnn"
    bigram_buckets: int = 0  # > 0 adds hashed word-bigram embeddings to the bag path
    # N(0, 1), PyTorch's nn.Embedding default that these systems were built with. Flax's default
    # (std 1/sqrt(embed_dim)) makes utterance features ~10x smaller, and the dialogue models then
    # sit on the class prior for many epochs before the context layers pick up the words.
    embed_init_std: float = 1.0
    # kind "bilstm" (S002's paper text path): embedding -> dropout -> a BiLSTM of lstm_layers
    # layers x lstm_hidden per direction -> max over the valid words -> [N, 2 * lstm_hidden];
    # init_scheme "pytorch" gives its LSTMs PyTorch's initialisation (the paper's framework).
    lstm_hidden: int = 128
    lstm_layers: int = 2
    init_scheme: str = "flax"
    # Word dropout: in training, each real word becomes <unk> with this probability, so <unk>'s
    # embedding is trained on words in context, as it is used at test time for unseen words.
    word_dropout: float = 0.0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind={self.kind!r} must be one of {', '.join(KINDS)}")
        if not 0.0 <= self.word_dropout < 1.0:
            raise ValueError(f"word_dropout={self.word_dropout} must be in [0, 1)")


class TextCNN(nn.Module):
    """tokens [N, L] int32 + mask [N, L] bool -> [N, out] ([N, 2 * lstm_hidden] for "bilstm")."""

    cfg: TextCNNConfig

    @nn.compact
    def __call__(self, tokens: jnp.ndarray, mask: jnp.ndarray, train: bool) -> jnp.ndarray:
        c = self.cfg
        tokens = jnp.where(mask, tokens, 0)  # out-of-range ids in padding would embed as NaN
        if train and c.word_dropout > 0:
            drop = jax.random.bernoulli(self.make_rng("dropout"), c.word_dropout, tokens.shape)
            tokens = jnp.where(drop & mask, UNK_ID, tokens)
        e = nn.Embed(c.vocab_size, c.embed_dim, name="embed",
                     embedding_init=nn.initializers.normal(c.embed_init_std))(tokens)  # [N, L, E]
        e = jnp.where(mask[..., None], e, 0.0)
        if c.kind == "bilstm":
            e = nn.Dropout(c.dropout)(e, deterministic=not train)
            h = LSTM(c.lstm_hidden, bidirectional=True, num_layers=c.lstm_layers,
                     init_scheme=c.init_scheme,
                     name="bilstm")(e, mask)  # [N, L, 2h], zero on padding
            return masked_max(h, mask)  # padded words cannot win the max
        pooled = []
        if "cnn" in c.kind:
            for w in c.widths:
                h = nn.relu(nn.Conv(c.filters, (w,), name=f"conv{w}")(e))  # [N, L, filters]
                pooled.append(masked_max(h, mask))  # [N, filters]
        if "bow" in c.kind:
            pooled += [masked_mean(e, mask), masked_max(e, mask)]
            if c.bigram_buckets:
                pair = mask[:, 1:] & mask[:, :-1]  # [N, L-1]
                # Hash (previous word, word) into buckets; ids stay >= 0 (tokens are >= 0).
                ids = (tokens[:, :-1] * 1000003 + tokens[:, 1:]) % c.bigram_buckets
                bi = nn.Embed(c.bigram_buckets, c.embed_dim, name="bigram",
                          embedding_init=nn.initializers.normal(c.embed_init_std))(ids)
                bi = jnp.where(pair[..., None], bi, 0.0)
                pooled.append(masked_mean(bi, pair))
        h = nn.Dropout(c.dropout)(jnp.concatenate(pooled, axis=-1), deterministic=not train)
        return nn.relu(nn.Dense(c.out, name="fc")(h))
