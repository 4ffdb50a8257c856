"""wav2vec 2.0, HuBERT and WavLM encoders from a Hugging Face directory (``Wav2Vec2Model``,
``HubertModel``, ``WavLMModel`` or a ``*ForCTC`` / ``*ForSequenceClassification`` /
``*ForPreTraining`` wrapping one, whose tensors sit under ``wav2vec2.``, ``hubert.`` or
``wavlm.``). Pretraining and task heads (quantiser, ``project_q`` / ``project_hid``,
``masked_spec_embed``, ``lm_head``, classifiers) are left out and listed as ignored.

Input normalisation (``normalize_input``): taken from the directory's ``preprocessor_config.json``
(``do_normalize``) when it has one, which is what Hugging Face's pipeline applies; otherwise
``feat_extract_norm == "layer"``, the convention of the released checkpoints (the large
layer-norm models were trained on standardised audio, the group-norm base models on raw audio).

The positional convolution's weight norm is read under either name PyTorch saves it with
(``weight_g`` / ``weight_v``, or ``parametrizations.weight.original0`` / ``original1``), or
from a plain ``weight`` (then ``g = ||weight||`` per tap, which gives the same kernel).
"""

from __future__ import annotations

import json
import os

import numpy as np

from mmer_jax.errors import CheckpointError
from mmer_jax.models.pretrained.wav2vec2 import Wav2Vec2Config
from mmer_jax.models.pretrained.wavlm import WavLMConfig
from mmer_jax.weights.convert import CONVERTERS, Checkpoint, Converted
from mmer_jax.weights.mapping import (
    Tensor,
    TensorSource,
    conv,
    dense,
    heads_in,
    heads_out,
    layer_norm,
)

# (hidden_size, num_hidden_layers) of the released sizes, for a readable default name.
SIZES = {(768, 12): "base", (1024, 24): "large", (1280, 48): "xlarge"}
PREFIXES = ("wav2vec2.", "hubert.", "wavlm.", "")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def _config(ckpt: Checkpoint, cls: type):
    """The architecture's config from ``config.json`` (+ ``preprocessor_config.json``)."""
    c = ckpt.config
    where = os.path.join(ckpt.path, "config.json")
    unsupported = [(c.get("add_adapter"), "add_adapter (a convolutional adapter after the "
                                          "encoder)"),
                   (c.get("adapter_attn_dim") is not None, "adapter_attn_dim (MMS adapters)"),
                   (c.get("conv_pos_batch_norm"), "conv_pos_batch_norm (a BatchNorm in place "
                                                  "of the positional weight norm)")]
    for flag, what in unsupported:
        if flag:
            raise CheckpointError(f"{where}: {what} is not supported")
    missing = [k for k in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                           "intermediate_size") if k not in c]
    if missing:
        raise CheckpointError(f"{where}: no {', '.join(missing)}")
    stable = bool(c.get("do_stable_layer_norm", False))
    norm = c.get("feat_extract_norm", "group")
    kw = dict(
        conv_dim=c.get("conv_dim", Wav2Vec2Config.conv_dim),
        conv_kernel=c.get("conv_kernel", Wav2Vec2Config.conv_kernel),
        conv_stride=c.get("conv_stride", Wav2Vec2Config.conv_stride),
        conv_bias=bool(c.get("conv_bias", False)),
        feat_extract_norm=norm,
        feat_extract_activation=c.get("feat_extract_activation", "gelu"),
        feat_proj_layer_norm=bool(c.get("feat_proj_layer_norm", True)),
        hidden_size=c["hidden_size"], num_hidden_layers=c["num_hidden_layers"],
        num_attention_heads=c["num_attention_heads"],
        intermediate_size=c["intermediate_size"], hidden_act=c.get("hidden_act", "gelu"),
        layer_norm_eps=float(c.get("layer_norm_eps", 1e-5)),
        num_conv_pos_embeddings=c.get("num_conv_pos_embeddings", 128),
        num_conv_pos_embedding_groups=c.get("num_conv_pos_embedding_groups", 16),
        do_stable_layer_norm=stable,
        normalize_input=_do_normalize(ckpt, norm),
    )
    if cls is WavLMConfig:
        kw.update(num_buckets=c.get("num_buckets", 320),
                  max_bucket_distance=c.get("max_bucket_distance", 800))
    try:
        return cls(**kw)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: {exc}") from None


def _do_normalize(ckpt: Checkpoint, norm: str) -> bool:
    """``do_normalize`` of ``preprocessor_config.json``, else ``norm == "layer"``."""
    path = os.path.join(ckpt.path, "preprocessor_config.json")
    if not os.path.isfile(path):
        return norm == "layer"
    try:
        with open(path, encoding="utf-8") as f:
            pre = json.load(f)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not readable JSON ({exc})") from None
    return bool(pre.get("do_normalize", norm == "layer"))


def _source(ckpt: Checkpoint) -> TensorSource:
    """The tensors under the base model's prefix, errors naming the weight file."""
    src: TensorSource = ckpt.tensors
    for prefix in PREFIXES:
        if src.has(prefix + "feature_extractor.conv_layers.0.conv.weight"):
            view = src.with_prefix(prefix)
            break
    else:
        raise CheckpointError(f"{src.origin}: no {ckpt.kind} encoder tensors "
                              "(feature_extractor.conv_layers.0.conv.weight under "
                              f"{', '.join(p for p in PREFIXES if p)} or the top level)")
    weights = [f for f in ckpt.files if os.path.basename(f) in WEIGHT_FILES]
    if len(weights) == 1:  # one file holds every tensor: name it rather than the directory
        view.origin = weights[0]
    return view


def _pos_conv(src: TensorSource, cfg: Wav2Vec2Config) -> dict:
    d, k = cfg.hidden_size, cfg.num_conv_pos_embeddings
    shape = (d, d // cfg.num_conv_pos_embedding_groups, k)  # PyTorch [out, in/groups, K]
    name = "encoder.pos_conv_embed.conv"
    out = {"bias": src.get(f"{name}.bias", (d,))}
    for g_name, v_name in (("weight_g", "weight_v"),
                           ("parametrizations.weight.original0",
                            "parametrizations.weight.original1")):
        if src.has(f"{name}.{v_name}"):
            g = src.get(f"{name}.{g_name}", (1, 1, k))
            out["weight_v"] = _conv_kernel(src, f"{name}.{v_name}", shape)
            out["weight_g"] = Tensor(g.source, g.value.reshape(k))
            return out
    v = _conv_kernel(src, f"{name}.weight", shape)  # weight norm already folded in
    norm = np.sqrt(np.sum(np.square(v.value), axis=(1, 2)))
    out["weight_v"], out["weight_g"] = v, Tensor(v.source, norm)
    return out


def _conv_kernel(src: TensorSource, name: str, shape: tuple) -> Tensor:
    """A PyTorch conv weight stored under ``name`` itself, in Flax's layout."""
    w = src.get(name, shape)
    return Tensor(w.source, np.transpose(w.value, (2, 1, 0)))


def _convert(ckpt: Checkpoint, architecture: str, cls: type) -> Converted:
    cfg = _config(ckpt, cls)
    src = _source(ckpt)
    d, h, f = cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size
    extractor, c_in = {}, 1
    for i, (c, k) in enumerate(zip(cfg.conv_dim, cfg.conv_kernel, strict=True)):
        p = f"feature_extractor.conv_layers.{i}."
        extractor[f"conv_{i}"] = conv(src, p + "conv", (c, c_in, k), bias=cfg.conv_bias)
        if cfg.feat_extract_norm == "layer" or i == 0:
            extractor[f"norm_{i}"] = layer_norm(src, p + "layer_norm", c)
        c_in = c
    projection = {"projection": dense(src, "feature_projection.projection", c_in, d)}
    if cfg.feat_proj_layer_norm:
        projection["layer_norm"] = layer_norm(src, "feature_projection.layer_norm", c_in)
    params = {
        "feature_extractor": extractor,
        "feature_projection": projection,
        "pos_conv": _pos_conv(src, cfg),
        "encoder_norm": layer_norm(src, "encoder.layer_norm", d),
    }
    for i in range(cfg.num_hidden_layers):
        p = f"encoder.layers.{i}."
        layer = {
            "attention": {
                "query": heads_in(src, p + "attention.q_proj", d, h),
                "key": heads_in(src, p + "attention.k_proj", d, h),
                "value": heads_in(src, p + "attention.v_proj", d, h),
                "out": heads_out(src, p + "attention.out_proj", d, h),
            },
            "attention_norm": layer_norm(src, p + "layer_norm", d),
            "ffn": {"fc1": dense(src, p + "feed_forward.intermediate_dense", d, f),
                    "fc2": dense(src, p + "feed_forward.output_dense", f, d)},
            "ffn_norm": layer_norm(src, p + "final_layer_norm", d),
        }
        if architecture == "wavlm":
            const = src.get(p + "attention.gru_rel_pos_const", (1, h, 1, 1))
            layer["rel_pos_gate"] = {
                "linear": dense(src, p + "attention.gru_rel_pos_linear", d // h, 8),
                "const": Tensor(const.source, const.value.reshape(h)),
            }
        params[f"layers_{i}"] = layer
    if architecture == "wavlm":
        params["rel_attn_embed"] = src.get("encoder.layers.0.attention.rel_attn_embed.weight",
                                           (cfg.num_buckets, h))
    size = SIZES.get((d, cfg.num_hidden_layers), f"{d}x{cfg.num_hidden_layers}")
    return Converted(architecture, cfg, {"params": params}, f"{architecture}-{size}",
                     ignorable=IGNORABLE)


# Left out by an encoder import: pretraining (quantizer, projections, mask embedding) and
# task heads (CTC, classification, x-vector), and adapters of fine-tuned checkpoints.
IGNORABLE = (r"(^|\.)quantizer\.", r"(^|\.)project_q\.", r"(^|\.)project_hid\.",
             r"(^|\.)masked_spec_embed$", r"^lm_head\.", r"^classifier\.", r"^projector\.",
             r"^tdnn\.", r"^feature_extractor\.", r"^objective\.", r"^label_embeddings")


@CONVERTERS.register("hf:wav2vec2")
def from_hf_wav2vec2(ckpt: Checkpoint) -> Converted:
    """Hugging Face ``Wav2Vec2Config`` + weights -> ``wav2vec2``.

    Raises:
      CheckpointError: no encoder tensors, a tensor missing or of the wrong shape (naming the
        file and the tensor), or a config feature the encoder lacks (adapters).
    """
    return _convert(ckpt, "wav2vec2", Wav2Vec2Config)


@CONVERTERS.register("hf:hubert")
def from_hf_hubert(ckpt: Checkpoint) -> Converted:
    """Hugging Face ``HubertConfig`` + weights -> ``hubert``.

    Raises:
      CheckpointError: as :func:`from_hf_wav2vec2`; ``conv_pos_batch_norm`` is not supported.
    """
    return _convert(ckpt, "hubert", Wav2Vec2Config)


@CONVERTERS.register("hf:wavlm")
def from_hf_wavlm(ckpt: Checkpoint) -> Converted:
    """Hugging Face ``WavLMConfig`` + weights -> ``wavlm``.

    Raises:
      CheckpointError: as :func:`from_hf_wav2vec2`.
    """
    return _convert(ckpt, "wavlm", WavLMConfig)
