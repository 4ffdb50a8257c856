"""S001: MFCC -> ResNet-18 speech branch, frames -> ResNet-34 -> LSTM video branch, concatenation.

The speech branch treats the [Ta, F] MFCC matrix as a one-channel image; its feature map is
averaged over frequency and over the valid time steps (the audio mask is pooled with the
network's time stride). The video branch applies one ResNet (shared weights) to every frame,
averages each frame's feature map, runs a length-aware LSTM over time and keeps the last valid
state. The branch vectors are concatenated, passed through dropout (0.3 or 0.5 in the paper) and
one fully connected layer. Either branch alone gives the paper's audio-only / video-only models.

Config keys (``model`` section), with defaults:
  num_classes; modalities ("audio", "frames") — any of "audio", "frames", "face" (a video stream
  per image key, separate weights); dropout 0.5;
  audio_depth "resnet18" (a name in ``resnet.STAGES``, or blocks per stage such as (1, 1)),
  audio_width 64, audio_stem_stride 2, audio_stem_pool True;
  video_depth "resnet34" (same forms), video_width 64, video_stem_stride 2, video_stem_pool True;
  norm "batch"; lstm_hidden 256.
"""

from __future__ import annotations

from typing import Tuple

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.encoders.conv1d_audio import downsample_mask
from mmer_jax.models.encoders.resnet import STAGES, ResNet, ResNetConfig
from mmer_jax.models.layers import LSTM, last_valid, masked_mean
from mmer_jax.registry import MODELS

_S001_MODALITIES = ("audio", "frames", "face")


def time_stride(cfg: ResNetConfig) -> int:
    """Total downsampling of a ResNet along one spatial axis (stem, stem pool, strided stages)."""
    return cfg.stem_stride * (2 if cfg.stem_pool else 1) * 2 ** (len(cfg.stage_sizes) - 1)


class S001(nn.Module):
    """Utterance batch -> (logits [B, C], aux)."""

    num_classes: int
    modalities: Tuple[str, ...] = ("audio", "frames")
    audio_resnet: ResNetConfig = ResNetConfig(STAGES["resnet18"])
    video_resnet: ResNetConfig = ResNetConfig(STAGES["resnet34"])
    lstm_hidden: int = 256
    dropout: float = 0.5

    @nn.compact
    def __call__(self, batch, *, train: bool):
        feats, aux = [], {}
        for m in self.modalities:
            if m == "audio":
                aux["feat_audio"] = self._speech(batch["audio"], batch["audio_mask"], train)
            else:
                aux[f"feat_{m}"] = self._video(m, batch[m], batch[f"{m}_mask"], train)
            feats.append(aux[f"feat_{m}"])
        h = nn.Dropout(self.dropout)(jnp.concatenate(feats, -1), deterministic=not train)
        return nn.Dense(self.num_classes, name="head_out")(h), aux

    def _speech(self, x, mask, train):
        """x [B, Ta, F] MFCC, mask [B, Ta] -> [B, C_audio]."""
        x = jnp.where(mask[..., None], x, 0.0)[..., None]  # [B, Ta, F, 1]; padding cannot leak
        y = ResNet(self.audio_resnet, name="speech_resnet")(x, train)  # [B, Ta', F', C]
        m = downsample_mask(mask, time_stride(self.audio_resnet), y.shape[1])  # [B, Ta']
        return masked_mean(jnp.mean(y, axis=2), m)

    def _video(self, name, x, mask, train):
        """x [B, Tv, H, W, 3], mask [B, Tv] -> [B, lstm_hidden]."""
        b, t = mask.shape
        x = jnp.where(mask[:, :, None, None, None], x, 0.0)
        y = ResNet(self.video_resnet, name=f"{name}_resnet")(
            x.reshape((b * t,) + x.shape[2:]), train
        )
        y = jnp.mean(y, axis=(1, 2)).reshape(b, t, -1)  # [B, Tv, C]
        h = LSTM(self.lstm_hidden, name=f"{name}_lstm")(y, mask)  # [B, Tv, hidden]
        return last_valid(h, mask)


def _resnet_cfg(cfg, prefix: str, depth: str) -> ResNetConfig:
    name = cfg.get(f"{prefix}_depth", depth)
    if isinstance(name, str):
        if name not in STAGES:
            raise ValueError(f"{prefix}_depth={name!r} must be one of {sorted(STAGES)}")
        stages = STAGES[name]
    else:  # explicit blocks per stage, e.g. (1, 1) for a two-stage test-sized network
        stages = tuple(int(n) for n in name)
    return ResNetConfig(
        stage_sizes=stages,
        width=cfg.get(f"{prefix}_width", 64),
        norm=cfg.get("norm", "batch"),
        stem_stride=cfg.get(f"{prefix}_stem_stride", 2),
        stem_pool=cfg.get(f"{prefix}_stem_pool", True),
    )


@MODELS.register("s001")
def build(cfg) -> S001:
    mods = tuple(cfg.get("modalities", ("audio", "frames")))
    if not mods or any(m not in _S001_MODALITIES for m in mods):
        raise ValueError(f"s001 modalities={mods} must be a non-empty subset of {_S001_MODALITIES}")
    return S001(
        num_classes=cfg.num_classes,
        modalities=mods,
        audio_resnet=_resnet_cfg(cfg, "audio", "resnet18"),
        video_resnet=_resnet_cfg(cfg, "video", "resnet34"),
        lstm_hidden=cfg.get("lstm_hidden", 256),
        dropout=cfg.get("dropout", 0.5),
    )
