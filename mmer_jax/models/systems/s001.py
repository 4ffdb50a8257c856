"""S001: MFCC -> ResNet-18 speech branch, frames -> ResNet-34 -> LSTM video branch, concatenation.

Source: seed paper S001 (``shared/papers/S001_*``), its Table I models (audio-only, video-only,
fused at dropout 0.3 and 0.5).

The speech branch treats the [Ta, F] MFCC matrix as a one-channel image; its feature map is
averaged over frequency and over the valid time steps (the audio mask is pooled with the
network's time stride). The video branch applies one ResNet (shared weights) to every frame,
averages each frame's feature map, runs a length-aware LSTM over time and keeps the last valid
state. The branch vectors are fused (``model.fusion``, concatenation in the paper), passed through
dropout (0.3 or 0.5 in the paper) and one fully connected layer. Either branch alone gives the
paper's audio-only / video-only models.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.encoders.conv1d_audio import downsample_mask
from mmer_jax.models.encoders.resnet import ResNet, ResNetConfig
from mmer_jax.models.layers import LSTM, last_valid, masked_mean
from mmer_jax.registry import FUSIONS, register_system

S001_MODALITIES = ("audio", "frames", "face")


@dataclasses.dataclass(frozen=True)
class S001Config:
    """``model`` section of S001 (every default of the system lives here).

    ``modalities``: a non-empty subset of ("audio", "frames", "face"); each image key is its own
    video stream with its own weights.
    """

    name: str = "s001"
    modalities: tuple[str, ...] = ("audio", "frames")
    dropout: float = 0.5
    audio: ResNetConfig = ResNetConfig("resnet18")  # the speech branch over MFCC [Ta, F, 1]
    video: ResNetConfig = ResNetConfig("resnet34")  # applied to every frame
    lstm_hidden: int = 256
    fusion: str = "concat"  # a name in FUSIONS

    def __post_init__(self):
        if not self.modalities or any(m not in S001_MODALITIES for m in self.modalities):
            raise ValueError(
                f"modalities={self.modalities} must be a non-empty subset of {S001_MODALITIES}"
            )


class S001(nn.Module):
    """Utterance batch -> (logits [B, C], aux with ``feat_<modality>`` [B, D_m])."""

    cfg: S001Config
    num_classes: int

    @nn.compact
    def __call__(self, batch, *, train: bool):
        feats = {}
        for m in self.cfg.modalities:
            if m == "audio":
                feats["feat_audio"] = self._speech(batch["audio"], batch["audio_mask"], train)
            else:
                feats[f"feat_{m}"] = self._video(m, batch[m], batch[f"{m}_mask"], train)
        fused = FUSIONS[self.cfg.fusion](ordered=True, name="fusion")(feats, train=train)
        h = nn.Dropout(self.cfg.dropout)(fused, deterministic=not train)
        return nn.Dense(self.num_classes, name="head_out")(h), feats

    def _speech(self, x, mask, train):
        """x [B, Ta, F] MFCC, mask [B, Ta] -> [B, C_audio]."""
        res = self.cfg.audio
        x = jnp.where(mask[..., None], x, 0.0)[..., None]  # [B, Ta, F, 1]; padding cannot leak
        y = ResNet(res, name="speech_resnet")(x, train)  # [B, Ta', F', C]
        m = downsample_mask(mask, res.time_stride(), y.shape[1])  # [B, Ta']
        return masked_mean(jnp.mean(y, axis=2), m)

    def _video(self, name, x, mask, train):
        """x [B, Tv, H, W, 3], mask [B, Tv] -> [B, lstm_hidden]."""
        b, t = mask.shape
        x = jnp.where(mask[:, :, None, None, None], x, 0.0)
        y = ResNet(self.cfg.video, name=f"{name}_resnet")(
            x.reshape((b * t,) + x.shape[2:]), train
        )
        y = jnp.mean(y, axis=(1, 2)).reshape(b, t, -1)  # [B, Tv, C]
        h = LSTM(self.cfg.lstm_hidden, name=f"{name}_lstm")(y, mask)  # [B, Tv, hidden]
        return last_valid(h, mask)


@register_system("s001", S001Config)
def build(cfg: S001Config, num_classes: int, vocab_size: int = 0) -> S001:
    """S001 for ``num_classes`` classes (it reads no text, so ``vocab_size`` is unused)."""
    del vocab_size
    return S001(cfg, num_classes)
