"""Encoders ``imported`` and ``imported_lstm``: a pretrained encoder imported with ``mmer encoders
import|fetch`` (``mmer_jax.weights``), inside a trained model.

The import's architecture (``registry.ARCHITECTURES``: Whisper, wav2vec 2.0 / HuBERT / WavLM,
BERT / RoBERTa, torchvision ResNet, timm Inception-ResNet-v2) is built as a sub-module named
``imported_<sha12>`` (the first 12 hex digits of the import's source sha256), so the train layer
finds it in the parameter tree and puts the import's weights there at initialisation
(``mmer_jax.train.imports``); here it is initialised at random like any other module.

``imported``: ``(x, mask, *, train) -> [B, D]``. The hidden states are combined (``states``:
"weighted", a learned softmax-weighted sum over every hidden state, each normalised over its
channels first with ``layer_norm``: the SUPERB / EmoBox head; or an int: that state), then pooled
over the valid positions (``pooling``: "stats" mean and standard deviation [B, 2D], "mean" [B, D],
"first" the first token, BERT's [CLS] / RoBERTa's <s>). ``imported_lstm``: ``(cfg, hidden,
stream)``, the same per-position features then a length-aware LSTM and its last valid state
[B, hidden] (a face branch: the imported CNN per frame, an LSTM over the frames).

Inputs, by the import's modality:

- speech, Whisper: Whisper's log-mel [B, T, 80] (``data.frontend = "whisper"``);
  wav2vec 2.0 / HuBERT / WavLM: the waveform [B, N] (``data.frontend = "waveform"``). With
  ``time_masks > 0``, SpecAugment-style time bands (``time_masks`` bands of up to
  ``time_mask_width`` input positions, each at most 20 % of the valid length; Whisper: 10-ms
  frames, waveform: samples) are set to 0 in training.
- text: ``tokens`` [B, L] int32 of the import's own tokenizer, stored shifted by one so that 0
  stays the pipeline's padding (``mmer_jax.data.text.PretrainedVocab``): id = token - 1.
- images: [B, H, W, 3] or frames [B, T, H, W, 3] in [0, 1] (the pipeline's), normalised as the
  checkpoint was trained (``pretrained.vision.NORMALIZATION``), resized to ``image_size`` when it
  is set; ``states`` names a stage (-1: the last), averaged over its map.

``freeze``: the encoder runs in inference mode (no dropout; BatchNorm's running statistics,
never updated) and no gradient flows into it (``stop_gradient``); the optimizer leaves its
parameters untouched too (``train.imports.lr_factors``).

The module needs the import's ``encoder.json`` (architecture and shape) and reads it as plain
JSON: from ``record`` when set (a run fills it in when it starts, so the run's ``config.json``
holds it and prediction needs no import directory), else from ``<path>/encoder.json``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from mmer_jax.models.encoders.speech_cnn import SpecAugmentConfig, spec_augment
from mmer_jax.models.layers import LSTM, last_valid
from mmer_jax.registry import ARCHITECTURES, ENCODERS

ENCODER_JSON = "encoder.json"
PREFIX = "imported_"  # + sha12: the architecture's sub-module
POOLINGS = ("stats", "mean", "first")
DTYPES = ("float32", "bfloat16")
SPEECH_INPUT = {"whisper": "whisper", "wav2vec2": "waveform", "hubert": "waveform",
                "wavlm": "waveform"}  # architecture -> the data.frontend it reads
TIME_MASK_FRAC = 0.2  # a time band covers at most this fraction of the valid input


@dataclasses.dataclass(frozen=True)
class ImportedEncoderConfig:
    """A ``model`` sub-section naming an imported encoder.

    Attributes:
      path: the import directory (``mmer encoders import|fetch``); "" when unused.
      states: "weighted" (learned softmax weights over every hidden state) or an int, or its
        decimal string (the state's index; -1 the last).
      layer_norm: with "weighted", each state normalised over its channels (no affine) first.
      pooling: "stats", "mean" or "first" (see the module docstring).
      freeze: keep the import's weights (inference mode, no gradient, no update).
      implementation: the attention backend of Transformer imports (xla, pallas, cudnn, auto).
      remat: recompute each layer in the backward pass (less memory when fine-tuning).
      dtype: the encoder's computation dtype, "float32" or "bfloat16" (parameters stay float32).
      time_masks: speech only: time bands masked per clip in training (0: off).
      time_mask_width: the widest band, in input positions.
      image_size: images only: resized to this square size first (0: as they come).
      record: the import's ``encoder.json`` summary as JSON (architecture, config, sha256,
        collections); filled in from ``path`` when a run starts; "" reads ``path``.

    Raises:
      ValueError: a value out of range, or a malformed ``record``.
    """

    path: str = ""
    states: str | int = "weighted"
    layer_norm: bool = True
    pooling: str = "stats"
    freeze: bool = False
    implementation: str = "xla"
    remat: bool = False
    dtype: str = "float32"
    time_masks: int = 0
    time_mask_width: int = 0
    image_size: int = 0
    record: str = ""

    def __post_init__(self):
        state_index(self)  # raises on anything but "weighted" or an integer
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling={self.pooling!r} must be one of {', '.join(POOLINGS)}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype={self.dtype!r} must be one of {', '.join(DTYPES)}")
        for name in ("time_masks", "time_mask_width", "image_size"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 0 (0: off)")
        if self.record:
            rec = json.loads(self.record)
            missing = [k for k in ("architecture", "config", "sha256") if k not in rec]
            if missing:
                raise ValueError(f"record lacks {', '.join(missing)} (leave it '' to read "
                                 "path's encoder.json)")


def state_index(cfg: ImportedEncoderConfig) -> Optional[int]:
    """None for ``states="weighted"``, else the state's int index.

    Raises:
      ValueError: ``states`` is neither "weighted" nor an integer.
    """
    if cfg.states == "weighted":
        return None
    try:
        return int(cfg.states)
    except (TypeError, ValueError):
        raise ValueError(f"states={cfg.states!r} must be 'weighted' or a state index "
                         "(an int; -1: the last)") from None


def summary(encoder_json: dict) -> dict:
    """What a model needs of an ``encoder.json``: architecture, config, source sha256 and the
    variable collections."""
    return {"architecture": encoder_json["architecture"], "config": encoder_json["config"],
            "sha256": encoder_json["source"]["sha256"],
            "collections": list(encoder_json.get("collections", ["params"]))}


def read_record(cfg: ImportedEncoderConfig) -> dict:
    """The :func:`summary` of the import ``cfg`` names: ``cfg.record``, else read from
    ``<cfg.path>/encoder.json``.

    Raises:
      ValueError: ``path`` is empty, or its ``encoder.json`` is missing or unreadable.
    """
    if cfg.record:
        return json.loads(cfg.record)
    if not cfg.path:
        raise ValueError("path is empty: name an imported encoder's directory (`mmer encoders "
                         "import` or `mmer encoders fetch` write one)")
    f = Path(cfg.path).expanduser() / ENCODER_JSON
    try:
        return summary(json.loads(f.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"path={cfg.path!r}: {f} is not a readable import ({exc}); import an "
                         "encoder with `mmer encoders import` or `mmer encoders fetch`") from None


def submodule_name(record: dict) -> str:
    """``imported_<sha12>``: the architecture's sub-module, named after the import's source."""
    return PREFIX + record["sha256"][:12]


def is_submodule(name: str) -> bool:
    """Whether a parameter-tree key is an imported encoder's sub-module."""
    return re.fullmatch(PREFIX + "[0-9a-f]{12}", name) is not None


def layer_of(record: dict, key: str) -> tuple[int, int, bool]:
    """Where a top-level parameter group of an import sits in its stack, for layer-wise learning
    rates: ``(k, N, stem)`` with k in 0..N (0: below the first layer, N: the top), ``stem`` True
    for the convolutional stem / feature extractor (speech) or the image stem.

    Args:
      record: the import's :func:`summary`.
      key: a key directly under the ``imported_<sha12>`` sub-module (``layers_3``, ``conv1``).

    Raises:
      ValueError: an architecture this table does not know.
    """
    arch, c = record["architecture"], record["config"]
    if arch == "whisper":
        n = c["encoder_layers"]
        return _stack(key, n, stem=("conv1", "conv2"), top=("layer_norm",))
    if arch in ("wav2vec2", "hubert", "wavlm"):
        n = c["num_hidden_layers"]
        top = ("encoder_norm",) if c.get("do_stable_layer_norm") else ()
        return _stack(key, n, stem=("feature_extractor",), top=top)
    if arch in ("bert", "roberta"):
        return _stack(key, c["num_hidden_layers"], stem=(), top=())
    if arch == "resnet":
        m = re.fullmatch(r"layer(\d)_\d+", key)
        return (int(m.group(1)), 4, False) if m else (0, 4, key in ("conv1", "bn1"))
    if arch == "inception_resnet_v2":
        for pattern, k in ((r"repeat_\d", 1), (r"mixed_6a|repeat_1_\d+", 2),
                           (r"mixed_7a|repeat_2_\d+|block8|conv2d_7b", 3)):
            if re.fullmatch(pattern, key):
                return k, 3, False
        return 0, 3, key.startswith("conv2d_")
    raise ValueError(f"no layer table for architecture {arch!r}")


def _stack(key: str, n: int, stem: tuple, top: tuple) -> tuple[int, int, bool]:
    m = re.fullmatch(r"layers_(\d+)", key)
    if m:
        return int(m.group(1)) + 1, n, False
    return (n, n, False) if key in top else (0, n, key in stem)


def _layer_norm(x: jnp.ndarray, eps: float = 1e-5) -> jnp.ndarray:
    mu = x.mean(-1, keepdims=True)
    return (x - mu) * jax.lax.rsqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps)


def _architecture(cfg: ImportedEncoderConfig):
    """(record, Architecture, the architecture's config with this section's overrides)."""
    record = read_record(cfg)
    arch = ARCHITECTURES.get(record["architecture"])
    fields = {f.name for f in dataclasses.fields(arch.config_class)}
    overrides = {"implementation": cfg.implementation, "remat": cfg.remat, "dtype": cfg.dtype}
    acfg = arch.config_class(**{**record["config"],
                                **{k: v for k, v in overrides.items() if k in fields}})
    return record, arch, acfg


def _speech_input(cfg, record, acfg, x, mask, train, rng_of):
    arch = record["architecture"]
    frontend = SPEECH_INPUT[arch]
    if frontend == "whisper" and (x.ndim != 3 or x.shape[-1] != acfg.num_mel_bins):
        raise ValueError(f"the whisper import reads Whisper log-mel features [B, T, "
                         f"{acfg.num_mel_bins}] (data.frontend='whisper'); got audio of shape "
                         f"{tuple(x.shape)}")
    if frontend == "waveform" and x.ndim != 2:
        raise ValueError(f"the {arch} import reads the waveform [B, N] "
                         f"(data.frontend='waveform'); got audio of shape {tuple(x.shape)}")
    if train and cfg.time_masks and cfg.time_mask_width:
        bands = SpecAugmentConfig(freq_masks=0, time_masks=cfg.time_masks,
                                  time_width=cfg.time_mask_width, time_frac=TIME_MASK_FRAC)
        y = x if x.ndim == 3 else x[..., None]
        y = spec_augment(rng_of(), y, mask, bands)
        x = y if x.ndim == 3 else y[..., 0]
    return x


def _image_input(cfg, record, x, mask):
    from mmer_jax.models.pretrained.vision import NORMALIZATION

    if x.ndim == 4:
        x, mask = x[:, None], jnp.ones(x.shape[:1] + (1,), bool)
    if x.ndim != 5 or x.shape[-1] != 3:
        raise ValueError(f"the {record['architecture']} import reads images [B, H, W, 3] or "
                         f"frames [B, T, H, W, 3]; got shape {tuple(x.shape)}")
    b, t = x.shape[:2]
    x = x.reshape((b * t,) + x.shape[2:])  # [B*T, H, W, 3]
    if cfg.image_size:
        x = jax.image.resize(x, (b * t, cfg.image_size, cfg.image_size, 3), "bilinear")
    mean, std = NORMALIZATION[record["architecture"]]
    x = (x - jnp.asarray(mean, x.dtype)) / jnp.asarray(std, x.dtype)
    x = jnp.where(mask.reshape(-1)[:, None, None, None], x, 0.0)
    return x, mask, (b, t)


def encode_positions(module: nn.Module, cfg: ImportedEncoderConfig, x: jnp.ndarray,
                     mask: jnp.ndarray, train: bool) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Inside ``module``'s compact method: the import's per-position features.

    Args:
      module: the calling module (the architecture and ``state_logits`` are created in it).
      cfg: the section.
      x, mask: the input and its bool validity mask (see the module docstring).
      train: training mode (dropout, BatchNorm statistics, time masks) unless ``cfg.freeze``.

    Returns:
      (features [B, T, D] float32, mask [B, T] bool): the combined hidden states per encoder
      position (speech frames, tokens) or per image / frame (images: a stage's map averaged).

    Raises:
      ValueError: at trace time, an input the import does not read, or ``states="weighted"``
        over image stages (their widths differ).
    """
    record, arch, acfg = _architecture(cfg)
    run_train = train and not cfg.freeze
    frames = None
    if arch.modality == "audio":
        x = _speech_input(cfg, record, acfg, x, mask, train, lambda: module.make_rng("dropout"))
    elif arch.modality == "text":
        x = jnp.where(mask, x - 1, 0).astype(jnp.int32)  # the pipeline stores ids + 1
    else:
        x, mask, frames = _image_input(cfg, record, x, mask)
    out = arch.module(acfg, name=submodule_name(record))(
        x, None if arch.modality == "image" else mask, train=run_train)
    states = [s.astype(jnp.float32) for s in out.hidden_states]
    if cfg.freeze:
        states = [jax.lax.stop_gradient(s) for s in states]
    index = state_index(cfg)
    if frames is not None:  # images: one vector per image, stages cannot be summed
        if index is None:
            raise ValueError(f"states='weighted' sums hidden states of one width; the "
                             f"{record['architecture']} import's stages differ: name a stage "
                             "index (-1: the last)")
        h = states[index].mean(axis=(1, 2))  # [B*T, C]
        return h.reshape(frames + h.shape[-1:]), mask
    if index is not None:
        return states[index], out.mask
    logits = module.param("state_logits", nn.initializers.zeros, (len(states),))
    weights = jax.nn.softmax(logits)
    norm = _layer_norm if cfg.layer_norm else (lambda s: s)
    h = sum(weights[i] * norm(s) for i, s in enumerate(states))  # [B, T, D]
    return h, out.mask


def pool(h: jnp.ndarray, mask: jnp.ndarray, how: str) -> jnp.ndarray:
    """[B, T, D] over the valid positions -> [B, D] ("mean", "first") or [B, 2D] ("stats":
    mean and standard deviation)."""
    if how == "first":
        return h[:, 0]
    m = mask.astype(h.dtype)[..., None]
    w = m / jnp.maximum(m.sum(1, keepdims=True), 1.0)
    mean = (w * h).sum(1)
    if how == "mean":
        return mean
    var = (w * (h - mean[:, None]) ** 2).sum(1)
    return jnp.concatenate([mean, jnp.sqrt(var + 1e-6)], axis=-1)


@ENCODERS.register("imported")
class ImportedEncoder(nn.Module):
    """An import's states combined and pooled: x + mask [B, T] -> [B, D] (``pooling="stats"``:
    [B, 2D]), float32. See the module docstring for the inputs."""

    cfg: ImportedEncoderConfig

    @nn.compact
    def __call__(self, x: jnp.ndarray, mask: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        h, m = encode_positions(self, self.cfg, x, mask, train)
        return pool(h, m, self.cfg.pooling)


@ENCODERS.register("imported_lstm")
class ImportedLSTM(nn.Module):
    """An import's per-position (per-frame) features, a length-aware LSTM over them, its last
    valid state: x + mask [B, T] -> [B, hidden] float32. Built as ``(cfg, hidden, stream)``, the
    signature of S001's and S003's video encoders."""

    cfg: ImportedEncoderConfig
    hidden: int
    stream: str = "frames"

    @nn.compact
    def __call__(self, x: jnp.ndarray, mask: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        h, m = encode_positions(self, self.cfg, x, mask, train)
        return last_valid(LSTM(self.hidden, name=f"{self.stream}_lstm")(h, m), m)
