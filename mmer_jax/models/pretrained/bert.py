"""BERT (Devlin et al. 2019, "BERT: Pre-training of Deep Bidirectional Transformers for Language
Understanding") and RoBERTa (Liu et al. 2019, "RoBERTa: A Robustly Optimized BERT Pretraining
Approach") text encoders, in Flax.

Embeddings (word + position + token type 0) -> LayerNorm -> post-LN Transformer layers
(``LN(x + Attn(x))`` then ``LN(x + FFN(x))``). The two models share this module and differ in
their sizes and in how a token's position id is counted (``position_scheme``):

- ``"bert"``: position t of the row is id t (0 .. L-1);
- ``"roberta"``: fairseq's scheme -- a non-padding token's id is ``pad_token_id + 1`` plus the
  number of non-padding tokens before it, a padding token's id is ``pad_token_id`` (so
  roberta-base, with ``pad_token_id=1`` and 514 table rows, takes at most 512 tokens).

Input: token ids int32 [B, L] as the checkpoint's tokenizer gives them
(``mmer_jax.data.pretrained_tokenizer``: ``[CLS] ... [SEP]`` or ``<s> ... </s>``) and a bool
mask [B, L], True on the valid tokens, a prefix of each row. Every token is of segment (token
type) 0: the module encodes one text per row, never a sentence pair. Ids outside
``[0, vocab_size)`` at valid positions give NaN rows (JAX's out-of-range gather); padded
positions may hold any id.

Sizes: bert-base (768 wide, 12 layers, 12 heads), bert-large (1024, 24, 16), roberta-base /
roberta-large likewise; ``BertConfig`` holds any of them (``mmer_jax.weights`` reads it from the
checkpoint's config.json).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.pretrained.blocks import (
    EncoderOutput,
    TransformerLayer,
    activation,
    layer_class,
    lengths_of,
)
from mmer_jax.registry import ARCHITECTURES, Architecture

POSITION_SCHEMES = ("bert", "roberta")


@dataclasses.dataclass(frozen=True)
class BertConfig:
    """A BERT / RoBERTa encoder's shape (defaults: bert-base).

    Attributes:
      vocab_size: rows of the word embedding table.
      hidden_size, num_hidden_layers, num_attention_heads, intermediate_size: the Transformer's
        size (``hidden_size`` divisible by the heads).
      hidden_act: FFN activation ("gelu" is the exact erf GELU both models use).
      max_position_embeddings: rows of the position table (512 for BERT, 514 for RoBERTa).
      type_vocab_size: rows of the token-type table (2 for BERT, 1 for RoBERTa); only row 0 is
        used.
      layer_norm_eps: every LayerNorm's epsilon (1e-12 for BERT, 1e-5 for RoBERTa).
      pad_token_id: the tokenizer's padding id (0 for BERT, 1 for RoBERTa); the RoBERTa position
        scheme counts from it.
      position_scheme: "bert" (ids 0..L-1) or "roberta" (counted after ``pad_token_id``; see the
        module docstring).
      dropout: dropout on the embeddings and on the residual branches (the checkpoints' 0.1 is
        not imported: 0 unless a fine-tuning config asks for it).
      implementation: attention backend (:mod:`mmer_jax.models.ops`).
      dtype: computation dtype, "float32", "bfloat16" or "float16" (parameters stay float32).
      remat: recompute each layer's activations in the backward pass.

    Raises:
      ValueError: ``hidden_size`` not divisible by the heads, an unknown dtype, activation or
        position scheme, or a position table too short for the RoBERTa scheme's offset.
    """

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    position_scheme: str = "bert"
    dropout: float = 0.0
    implementation: str = "xla"
    dtype: str = "float32"
    remat: bool = False

    def __post_init__(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size={self.hidden_size} is not divisible by "
                             f"num_attention_heads={self.num_attention_heads}")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"dtype={self.dtype!r} must be float32, bfloat16 or float16")
        if self.position_scheme not in POSITION_SCHEMES:
            raise ValueError(f"position_scheme={self.position_scheme!r} must be one of "
                             f"{POSITION_SCHEMES}")
        if self.position_scheme == "roberta" and self.max_positions < 1:
            raise ValueError(f"max_position_embeddings={self.max_position_embeddings} leaves no "
                             f"position after pad_token_id={self.pad_token_id} (RoBERTa's "
                             "positions start at pad_token_id + 1)")
        activation(self.hidden_act)  # raises on an unknown name

    @property
    def max_positions(self) -> int:
        """The longest input (tokens, special ones included) the position table covers."""
        if self.position_scheme == "roberta":
            return self.max_position_embeddings - self.pad_token_id - 1
        return self.max_position_embeddings


def position_ids(ids: jnp.ndarray, valid: jnp.ndarray, cfg: BertConfig) -> jnp.ndarray:
    """int32 [B, L] position ids of token ids [B, L] under ``cfg.position_scheme``.

    For "roberta" a token counts as padding where its id is ``pad_token_id`` (as the reference
    decides it) or where ``valid`` (bool [B, L]) is False, so a batch padded with another id
    still gets in-range ids at its padded positions.
    """
    b, length = ids.shape
    if cfg.position_scheme == "bert":
        return jnp.broadcast_to(jnp.arange(length, dtype=jnp.int32)[None], (b, length))
    real = ((ids != cfg.pad_token_id) & valid).astype(jnp.int32)
    return jnp.cumsum(real, axis=1) * real + cfg.pad_token_id


class BertEncoder(nn.Module):
    """Token ids int32 [B, L] (+ bool mask [B, L]) -> :class:`EncoderOutput` with
    ``num_hidden_layers + 1`` hidden states [B, L, hidden_size]: the embeddings after their
    LayerNorm, then each layer's output (Hugging Face's ``output_hidden_states`` order; the last
    is ``last_hidden_state``). The output mask is the input mask (all True when None).

    Raises:
      ValueError: at trace time, ids that are not an integer [B, L] array, or L longer than the
        position table covers (``cfg.max_positions``).
    """

    cfg: BertConfig

    @nn.compact
    def __call__(self, ids: jnp.ndarray, mask: Optional[jnp.ndarray] = None, *,
                 train: bool = False) -> EncoderOutput:
        c = self.cfg
        dtype = jnp.dtype(c.dtype)
        if ids.ndim != 2 or not jnp.issubdtype(ids.dtype, jnp.integer):
            raise ValueError(f"BERT/RoBERTa take integer token ids [B, L]; got {ids.dtype} "
                             f"{list(ids.shape)}")
        b, length = ids.shape
        if length > c.max_positions:
            raise ValueError(f"{length} tokens exceed the {c.max_positions} this encoder's "
                             f"position table covers (truncate to max_length="
                             f"{c.max_positions})")
        lengths = lengths_of(mask, b, length)  # [B]
        valid = jnp.arange(length)[None, :] < lengths[:, None]  # [B, L]
        # Padded positions may hold any id (even one past the vocabulary); the pad id keeps
        # their rows finite, so nothing NaN reaches the attention's masked products.
        ids = jnp.where(valid, ids, c.pad_token_id).astype(jnp.int32)
        d = c.hidden_size
        x = nn.Embed(c.vocab_size, d, dtype=dtype, name="word_embeddings")(ids)  # [B, L, D]
        x = x + nn.Embed(c.max_position_embeddings, d, dtype=dtype,
                         name="position_embeddings")(position_ids(ids, valid, c))
        # One segment per row: token type 0 everywhere.
        x = x + nn.Embed(c.type_vocab_size, d, dtype=dtype,
                         name="token_type_embeddings")(jnp.zeros((1, 1), jnp.int32))
        x = nn.LayerNorm(c.layer_norm_eps, dtype=dtype, name="embeddings_norm")(x)
        x = nn.Dropout(c.dropout)(x, deterministic=not train)
        Layer = layer_class(TransformerLayer, c.remat)
        states = [x]
        for i in range(c.num_hidden_layers):
            x = Layer(c.num_attention_heads, c.intermediate_size, c.hidden_act, pre_norm=False,
                      ln_eps=c.layer_norm_eps, dropout=c.dropout,
                      implementation=c.implementation, dtype=dtype,
                      name=f"layers_{i}")(x, lengths, None, train)
            states.append(x)
        return EncoderOutput(tuple(states), valid)


def _dummy(cfg: BertConfig, batch: int):
    return jnp.zeros((batch, 4), jnp.int32), jnp.ones((batch, 4), bool)


ARCHITECTURES.register("bert", Architecture("bert", BertConfig, BertEncoder, "text", _dummy))
ARCHITECTURES.register("roberta", Architecture(
    "roberta", BertConfig, BertEncoder, "text", _dummy))
