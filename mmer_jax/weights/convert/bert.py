"""BERT and RoBERTa from a Hugging Face directory: ``BertModel`` / ``RobertaModel``, or the same
encoder saved inside ``*ForMaskedLM``, ``*ForSequenceClassification`` and the other task models
(tensors under ``bert.`` / ``roberta.``). The pooler and the task heads are left out (listed as
ignored in the import record). The directory's ``tokenizer.json``, when present, is copied
beside the weights (``mmer_jax.data.pretrained_tokenizer`` reads it there).

Old BERT checkpoints (Google's TF conversions, e.g. bert-base-uncased's ``pytorch_model.bin``)
name the LayerNorm parameters ``gamma`` / ``beta``; both spellings are read.
"""

from __future__ import annotations

import os

from mmer_jax.errors import CheckpointError
from mmer_jax.models.pretrained.bert import BertConfig
from mmer_jax.weights.convert import CONVERTERS, Checkpoint, Converted
from mmer_jax.weights.mapping import TensorSource, dense, heads_in, heads_out, layer_norm

# (hidden size, layers) of the released models, for a readable default name.
SIZES = {
    "bert": {(128, 2): "tiny", (256, 4): "mini", (512, 4): "small", (512, 8): "medium",
             (768, 12): "base", (1024, 24): "large"},
    "roberta": {(768, 12): "base", (1024, 24): "large"},
}

# Each model type's class defaults, applied (as transformers applies them) to a config.json
# that leaves a field out.
DEFAULTS = {
    "bert": dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12,
                 num_attention_heads=12, intermediate_size=3072, hidden_act="gelu",
                 max_position_embeddings=512, type_vocab_size=2, layer_norm_eps=1e-12,
                 pad_token_id=0),
    "roberta": dict(vocab_size=50265, hidden_size=768, num_hidden_layers=12,
                    num_attention_heads=12, intermediate_size=3072, hidden_act="gelu",
                    max_position_embeddings=512, type_vocab_size=2, layer_norm_eps=1e-12,
                    pad_token_id=1),
}


def _config(ckpt: Checkpoint, kind: str) -> BertConfig:
    c = ckpt.config or {}
    where = os.path.join(ckpt.path, "config.json")
    if c.get("is_decoder"):
        raise CheckpointError(f"{where}: is_decoder=true (a causal {kind} decoder); only the "
                              "bidirectional encoder is supported")
    scheme = c.get("position_embedding_type", "absolute")
    if scheme not in (None, "absolute"):
        raise CheckpointError(f"{where}: position_embedding_type={scheme!r}; only absolute "
                              "position embeddings are supported")
    fields = {k: c.get(k, v) for k, v in DEFAULTS[kind].items()}
    if fields["pad_token_id"] is None:
        if kind == "roberta":
            raise CheckpointError(f"{where}: pad_token_id is null; RoBERTa's position ids are "
                                  "counted from it")
        fields["pad_token_id"] = 0  # BERT's positions do not depend on it
    try:
        return BertConfig(**fields, position_scheme=kind)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: {exc}") from None


def _ln(src: TensorSource, name: str, dim: int) -> dict:
    if src.has(f"{name}.gamma") and not src.has(f"{name}.weight"):
        return layer_norm(src, name, dim, weight="gamma", bias="beta")
    return layer_norm(src, name, dim)


def _name(kind: str, cfg: BertConfig) -> str:
    size = SIZES[kind].get((cfg.hidden_size, cfg.num_hidden_layers),
                           f"{cfg.hidden_size}x{cfg.num_hidden_layers}")
    return f"{kind}-{size}"


def _encoder_source(src: TensorSource, kind: str) -> TensorSource:
    """The view of ``src`` whose names start at ``embeddings.`` / ``encoder.``."""
    for prefix in (f"{kind}.", "bert.", "roberta.", ""):
        if src.has(prefix + "embeddings.word_embeddings.weight"):
            return src.with_prefix(prefix)
    raise CheckpointError(f"{src.origin}: no {kind} encoder tensors "
                          f"(embeddings.word_embeddings.weight under {kind}. or the top level)")


def _convert(ckpt: Checkpoint, kind: str) -> Converted:
    cfg = _config(ckpt, kind)
    src = _encoder_source(ckpt.tensors, kind)
    d, h, f = cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size
    params = {
        "word_embeddings": {"embedding": src.get("embeddings.word_embeddings.weight",
                                                 (cfg.vocab_size, d))},
        "position_embeddings": {"embedding": src.get("embeddings.position_embeddings.weight",
                                                     (cfg.max_position_embeddings, d))},
        "token_type_embeddings": {"embedding": src.get(
            "embeddings.token_type_embeddings.weight", (cfg.type_vocab_size, d))},
        "embeddings_norm": _ln(src, "embeddings.LayerNorm", d),
    }
    for i in range(cfg.num_hidden_layers):
        p = f"encoder.layer.{i}."
        params[f"layers_{i}"] = {
            "attention": {
                "query": heads_in(src, p + "attention.self.query", d, h),
                "key": heads_in(src, p + "attention.self.key", d, h),
                "value": heads_in(src, p + "attention.self.value", d, h),
                "out": heads_out(src, p + "attention.output.dense", d, h),
            },
            "attention_norm": _ln(src, p + "attention.output.LayerNorm", d),
            "ffn": {"fc1": dense(src, p + "intermediate.dense", d, f),
                    "fc2": dense(src, p + "output.dense", f, d)},
            "ffn_norm": _ln(src, p + "output.LayerNorm", d),
        }
    if src.has(f"encoder.layer.{cfg.num_hidden_layers}.output.dense.weight"):
        raise CheckpointError(f"{src.origin}: the weights hold more than the "
                              f"num_hidden_layers={cfg.num_hidden_layers} layers config.json "
                              "names")
    assets = {}
    tokenizer = os.path.join(ckpt.path, "tokenizer.json")
    if os.path.isdir(ckpt.path) and os.path.isfile(tokenizer):
        assets["tokenizer.json"] = tokenizer
    return Converted(kind, cfg, {"params": params}, _name(kind, cfg), assets,
                     ignorable=IGNORABLE)


# Left out by an encoder import: the pooler, masked-LM / classification / NSP heads, and the
# buffers older checkpoints saved (position ids, token type ids).
IGNORABLE = (r"(^|\.)pooler\.", r"^cls\.", r"^lm_head\.", r"^classifier\.", r"^qa_outputs\.",
             r"position_ids$", r"token_type_ids$")


@CONVERTERS.register("hf:bert")
def from_hf_bert(ckpt: Checkpoint) -> Converted:
    """Hugging Face ``BertConfig`` + weights -> ``bert`` (positions 0..L-1).

    Raises:
      CheckpointError: a decoder or relative-position config, a config field the encoder cannot
        take, no encoder tensors, a missing tensor or one whose shape disagrees with
        config.json (the message names the file and the tensor).
    """
    return _convert(ckpt, "bert")


@CONVERTERS.register("hf:roberta")
def from_hf_roberta(ckpt: Checkpoint) -> Converted:
    """Hugging Face ``RobertaConfig`` + weights -> ``roberta`` (positions counted after
    ``pad_token_id``).

    Raises:
      CheckpointError: as :func:`from_hf_bert`, or a null ``pad_token_id``.
    """
    return _convert(ckpt, "roberta")
