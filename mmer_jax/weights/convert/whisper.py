"""Whisper's encoder from a Hugging Face directory (``WhisperModel`` /
``WhisperForConditionalGeneration``, or a bare ``WhisperEncoder``) or a CTranslate2 model
(faster-whisper). The decoder's tensors are left out (listed as ignored in the import record).
"""

from __future__ import annotations

import numpy as np

from mmer_jax.errors import CheckpointError
from mmer_jax.models.pretrained.whisper import WhisperConfig
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

# What an encoder import leaves out: the decoder (and CTranslate2's decoder-side config
# variables), the output projection tied to it.
IGNORABLE = (r"(^|\.|/)decoder[./]", r"^proj_out\.", r"^encoder/num_heads$")

# Encoder sizes of OpenAI's releases, for a readable default name.
SIZES = {(384, 4): "tiny", (512, 6): "base", (768, 12): "small", (1024, 24): "medium",
         (1280, 32): "large"}


def _name(cfg: WhisperConfig) -> str:
    return "whisper-" + SIZES.get((cfg.d_model, cfg.encoder_layers),
                                  f"{cfg.d_model}x{cfg.encoder_layers}")


@CONVERTERS.register("hf:whisper")
def from_hf(ckpt: Checkpoint) -> Converted:
    """Hugging Face ``WhisperConfig`` + weights -> ``whisper``."""
    c = ckpt.config
    cfg = WhisperConfig(
        num_mel_bins=c.get("num_mel_bins", 80), d_model=c["d_model"],
        encoder_layers=c["encoder_layers"], encoder_attention_heads=c["encoder_attention_heads"],
        encoder_ffn_dim=c["encoder_ffn_dim"],
        max_source_positions=c.get("max_source_positions", 1500),
        activation=c.get("activation_function", "gelu"))
    src: TensorSource = ckpt.tensors
    for prefix in ("model.encoder.", "encoder.", ""):
        if src.has(prefix + "conv1.weight"):
            src = src.with_prefix(prefix)
            break
    else:
        raise CheckpointError(f"{src.origin}: no Whisper encoder tensors (conv1.weight under "
                              "model.encoder., encoder. or the top level)")
    d, h = cfg.d_model, cfg.encoder_attention_heads
    params = {
        "conv1": conv(src, "conv1", (d, cfg.num_mel_bins, 3)),
        "conv2": conv(src, "conv2", (d, d, 3)),
        "embed_positions": src.get("embed_positions.weight", (cfg.max_source_positions, d)),
        "layer_norm": layer_norm(src, "layer_norm", d),
    }
    for i in range(cfg.encoder_layers):
        p = f"layers.{i}."
        params[f"layers_{i}"] = {
            "attention": {
                "query": heads_in(src, p + "self_attn.q_proj", d, h),
                "key": heads_in(src, p + "self_attn.k_proj", d, h, bias=False),
                "value": heads_in(src, p + "self_attn.v_proj", d, h),
                "out": heads_out(src, p + "self_attn.out_proj", d, h),
            },
            "attention_norm": layer_norm(src, p + "self_attn_layer_norm", d),
            "ffn": {"fc1": dense(src, p + "fc1", d, cfg.encoder_ffn_dim),
                    "fc2": dense(src, p + "fc2", cfg.encoder_ffn_dim, d)},
            "ffn_norm": layer_norm(src, p + "final_layer_norm", d),
        }
    return Converted("whisper", cfg, {"params": params}, _name(cfg), ignorable=IGNORABLE)


@CONVERTERS.register("ctranslate2:WhisperSpec")
def from_ctranslate2(ckpt: Checkpoint) -> Converted:
    """CTranslate2 ``WhisperSpec`` -> ``whisper``: sizes read off the tensors' shapes, the fused
    q/k/v projection split in three. CTranslate2 stores a zero key bias for the fused matmul;
    a key bias shifts every logit of a query row equally, which the softmax cancels, so it is
    dropped (recorded as used)."""
    src: TensorSource = ckpt.tensors
    conv1 = src.get("encoder/conv1/weight")
    d, n_mels, _ = conv1.value.shape
    layers = 0
    while src.has(f"encoder/layer_{layers}/ffn/linear_0/weight"):
        layers += 1
    if not layers:
        raise CheckpointError(f"{src.origin}: a WhisperSpec without encoder layers")
    heads = int(np.asarray(src.get("encoder/num_heads").value))
    ffn = src.get("encoder/layer_0/ffn/linear_0/weight").value.shape[0]
    positions = src.get("encoder/position_encodings/encodings").value.shape[0]
    cfg = WhisperConfig(num_mel_bins=int(n_mels), d_model=int(d), encoder_layers=layers,
                        encoder_attention_heads=heads, encoder_ffn_dim=int(ffn),
                        max_source_positions=int(positions))

    def ln(name):
        return {"scale": src.get(f"{name}/gamma", (d,)), "bias": src.get(f"{name}/beta", (d,))}

    def lin(name, d_in, d_out):
        w = src.get(f"{name}/weight", (d_out, d_in))
        return {"kernel": Tensor(w.source, w.value.T), "bias": src.get(f"{name}/bias", (d_out,))}

    def c1d(name, shape):
        w = src.get(f"{name}/weight", shape)
        return {"kernel": Tensor(w.source, w.value.transpose(2, 1, 0)),
                "bias": src.get(f"{name}/bias", (shape[0],))}

    dh = d // heads
    params = {
        "conv1": c1d("encoder/conv1", (d, n_mels, 3)),
        "conv2": c1d("encoder/conv2", (d, d, 3)),
        "embed_positions": src.get("encoder/position_encodings/encodings", (positions, d)),
        "layer_norm": ln("encoder/layer_norm"),
    }
    for i in range(layers):
        p = f"encoder/layer_{i}/"
        qkv = lin(p + "self_attention/linear_0", d, 3 * d)
        wq, wk, wv = np.split(qkv["kernel"].value, 3, axis=1)  # each [D, D]
        bq, _bk, bv = np.split(qkv["bias"].value, 3)
        s_w, s_b = qkv["kernel"].source, qkv["bias"].source
        out = lin(p + "self_attention/linear_1", d, d)
        params[f"layers_{i}"] = {
            "attention": {
                "query": {"kernel": Tensor(s_w, wq.reshape(d, heads, dh)),
                          "bias": Tensor(s_b, bq.reshape(heads, dh))},
                "key": {"kernel": Tensor(s_w, wk.reshape(d, heads, dh))},
                "value": {"kernel": Tensor(s_w, wv.reshape(d, heads, dh)),
                          "bias": Tensor(s_b, bv.reshape(heads, dh))},
                "out": {"kernel": Tensor(out["kernel"].source,
                                         out["kernel"].value.reshape(heads, dh, d)),
                        "bias": out["bias"]},
            },
            "attention_norm": ln(p + "self_attention/layer_norm"),
            "ffn": {"fc1": lin(p + "ffn/linear_0", d, ffn), "fc2": lin(p + "ffn/linear_1", ffn, d)},
            "ffn_norm": ln(p + "ffn/layer_norm"),
        }
    return Converted("whisper", cfg, {"params": params}, _name(cfg), ignorable=IGNORABLE)
