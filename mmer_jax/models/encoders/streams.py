"""The seed systems' per-modality encoders (S001's and S003's branches), registered by name.

Each is ``(x, mask, *, train) -> [B, D]``. S001 and S003 attach them with
:func:`mmer_jax.models.layers.in_scope_of`, so their sub-modules keep the parameter names they had
before the systems were assembled from registered parts (``speech_resnet``, ``frames_lstm``, ...):
old checkpoints load and a seed initialises exactly as before. ``stream`` is the prefix of those
names (the modality: ``frames`` or ``face``).
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.encoders.conv1d_audio import Conv1DAudio, Conv1DAudioConfig, downsample_mask
from mmer_jax.models.encoders.mobileface import MobileFace, MobileFaceConfig
from mmer_jax.models.encoders.resnet import ResNet, ResNetConfig
from mmer_jax.models.layers import LSTM, last_valid, masked_mean
from mmer_jax.registry import ENCODERS


@ENCODERS.register("resnet_speech")
class ResNetSpeech(nn.Module):
    """S001's speech branch: MFCC x [B, Ta, F] float + mask [B, Ta] bool -> [B, C_last].

    The matrix is a one-channel image; the last feature map is averaged over frequency and over
    the valid time steps (the mask pooled with the network's time stride). Padding is zeroed
    before the first convolution, so its values cannot leak in.
    """

    cfg: ResNetConfig

    @nn.compact
    def __call__(self, x: jnp.ndarray, mask: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        x = jnp.where(mask[..., None], x, 0.0)[..., None]  # [B, Ta, F, 1]
        y = ResNet(self.cfg, name="speech_resnet")(x, train)  # [B, Ta', F', C]
        m = downsample_mask(mask, self.cfg.time_stride(), y.shape[1])  # [B, Ta']
        return masked_mean(jnp.mean(y, axis=2), m)


@ENCODERS.register("resnet_lstm")
class ResNetLSTM(nn.Module):
    """S001's video branch: frames [B, Tv, H, W, 3] float + mask [B, Tv] bool -> [B, hidden].

    One ResNet (shared weights) per frame, its feature map averaged, a length-aware LSTM over
    time, the last valid state.
    """

    cfg: ResNetConfig
    hidden: int
    stream: str = "frames"

    @nn.compact
    def __call__(self, x: jnp.ndarray, mask: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        b, t = mask.shape
        x = jnp.where(mask[:, :, None, None, None], x, 0.0)
        frames = x.reshape((b * t,) + x.shape[2:])  # [B*Tv, H, W, 3]
        y = ResNet(self.cfg, name=f"{self.stream}_resnet")(frames, train)
        y = jnp.mean(y, axis=(1, 2)).reshape(b, t, -1)  # [B, Tv, C]
        h = LSTM(self.hidden, name=f"{self.stream}_lstm")(y, mask)  # [B, Tv, hidden]
        return last_valid(h, mask)


@ENCODERS.register("mobileface_lstm")
class MobileFaceLSTM(nn.Module):
    """S003's image stream: frames [B, Tv, H, W, 3] float + mask [B, Tv] bool -> [B, hidden].

    A MobileFaceNet-style CNN per frame (BatchNorm statistics from real frames only), an LSTM over
    time, the last valid state.
    """

    cfg: MobileFaceConfig
    hidden: int
    stream: str = "frames"

    @nn.compact
    def __call__(self, x: jnp.ndarray, mask: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        b, t = mask.shape
        x = jnp.where(mask[:, :, None, None, None], x, 0.0)
        x = x.reshape((b * t,) + x.shape[2:])  # [B*Tv, H, W, 3]
        seq = MobileFace(self.cfg, name=f"{self.stream}_cnn")(x, train, mask.reshape(-1))
        h = LSTM(self.hidden, name=f"{self.stream}_lstm")(seq.reshape(b, t, -1), mask)
        return last_valid(h, mask)


@ENCODERS.register("conv1d_lstm")
class Conv1DLSTM(nn.Module):
    """S003's audio stream: features [B, Ta, F] float + mask [B, Ta] bool -> [B, hidden].

    A 1-D CNN over time (pooling shortens the mask with it), an LSTM, the last valid state.
    """

    cfg: Conv1DAudioConfig
    hidden: int

    @nn.compact
    def __call__(self, x: jnp.ndarray, mask: jnp.ndarray, *, train: bool) -> jnp.ndarray:
        seq, mask = Conv1DAudio(self.cfg, name="audio_cnn")(x, mask, train)
        h = LSTM(self.hidden, name="audio_lstm")(seq, mask)
        return last_valid(h, mask)
