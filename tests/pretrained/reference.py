"""Helpers for the parity tests against the reference implementations (transformers, torchvision,
timm, ctranslate2): a reference model saved in its own format, imported through our reader, and
hidden states compared on the valid positions only.

The reference packages are the ``ref`` extra (``pip install -e ".[ref]"``); each test module
calls ``pytest.importorskip`` for the one it needs, so they skip with the reason when it is absent.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np

from mmer_jax.weights import importer, store


def import_dir(fmt: str, src, tmp_path: pathlib.Path, arch: str | None = None):
    """Imports ``src`` through ``mmer encoders import``'s code path and loads it back."""
    out = importer.import_checkpoint(fmt, src, tmp_path / "imported", arch=arch)
    return store.load(out)


def max_abs_diff(ours, ref, valid=None) -> float:
    """max |ours - ref| over the rows ``valid`` marks (bool [B, T]), or everywhere."""
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    d = np.abs(ours - ref)
    if valid is not None:
        d = d[np.asarray(valid, bool)]
    return float(d.max()) if d.size else 0.0


def assert_states_close(ours: tuple, ref: tuple, valid=None, atol: float = 1e-4) -> list[float]:
    """Every hidden state within ``atol``; returns the per-state max differences."""
    assert len(ours) == len(ref), f"{len(ours)} hidden states, reference has {len(ref)}"
    diffs = [max_abs_diff(o, r, valid) for o, r in zip(ours, ref, strict=True)]
    assert max(diffs) <= atol, f"max abs difference per hidden state: {diffs}"
    return diffs


def write_hf_whisper(path: pathlib.Path, *, d: int = 16, ffn: int = 32, heads: int = 2,
                     layers: int = 2, mels: int = 80, positions: int = 100,
                     config_ffn: int | None = None, seed: int = 0) -> pathlib.Path:
    """A Hugging Face Whisper directory (``WhisperForConditionalGeneration`` tensor names) of
    random tensors written with numpy alone, plus one decoder tensor an encoder import leaves
    out. ``config_ffn`` (default ``ffn``) is what config.json claims, to test misfits."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    t = {}

    def put(name, *shape, scale=0.2):
        t[name] = (scale * rng.normal(size=shape)).astype(np.float32)

    e = "model.encoder."
    put(e + "conv1.weight", d, mels, 3), put(e + "conv1.bias", d)
    put(e + "conv2.weight", d, d, 3), put(e + "conv2.bias", d)
    put(e + "embed_positions.weight", positions, d)
    put(e + "layer_norm.weight", d), put(e + "layer_norm.bias", d)
    for i in range(layers):
        p = f"{e}layers.{i}."
        for proj in ("q", "k", "v", "out"):
            put(f"{p}self_attn.{proj}_proj.weight", d, d)
            if proj != "k":
                put(f"{p}self_attn.{proj}_proj.bias", d)
        for ln in ("self_attn_layer_norm", "final_layer_norm"):
            put(f"{p}{ln}.weight", d), put(f"{p}{ln}.bias", d)
        put(f"{p}fc1.weight", ffn, d), put(f"{p}fc1.bias", ffn)
        put(f"{p}fc2.weight", d, ffn), put(f"{p}fc2.bias", d)
    put("model.decoder.embed_tokens.weight", 10, d)
    path = pathlib.Path(path)
    path.mkdir(parents=True, exist_ok=True)
    save_file(t, str(path / "model.safetensors"))
    cfg = {"model_type": "whisper", "num_mel_bins": mels, "d_model": d, "encoder_layers": layers,
           "encoder_attention_heads": heads, "encoder_ffn_dim": config_ffn or ffn,
           "max_source_positions": positions, "activation_function": "gelu"}
    (path / "config.json").write_text(json.dumps(cfg))
    return path
