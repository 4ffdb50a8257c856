"""S003: a small real-time model — whole frame + face crop + audio, CNN + LSTM per stream.

Each image stream (whole ``frames`` and cropped ``face``, separate weights) goes through a shallow
MobileFaceNet-style CNN per frame and an LSTM over time; the audio features go through a 1-D CNN
and an LSTM. The last valid LSTM state of every stream is concatenated and classified by fully
connected layers. S003 (an interim report) gives no layer sizes; the defaults keep it small.

Config keys (``model`` section), with defaults:
  num_classes; modalities ("frames", "face", "audio"); dropout 0.3;
  image_width 32, image_blocks ((32, 2), (64, 2), (64, 1), (128, 2), (128, 1)) as
  (channels, stride) pairs, image_expansion 2, image_last 256, image_embed 128;
  audio_channels (64, 64, 128, 128), audio_kernel 3, audio_pool 2;
  lstm_hidden 128, fc_hidden 128.
"""

from __future__ import annotations

from typing import Tuple

import flax.linen as nn
import jax.numpy as jnp

from mmer_jax.models.encoders.conv1d_audio import Conv1DAudio, Conv1DAudioConfig
from mmer_jax.models.encoders.mobileface import MobileFace, MobileFaceConfig
from mmer_jax.models.layers import LSTM, last_valid
from mmer_jax.registry import MODELS

_S003_MODALITIES = ("frames", "face", "audio")


class S003(nn.Module):
    """Utterance batch -> (logits [B, C], aux)."""

    num_classes: int
    modalities: Tuple[str, ...] = _S003_MODALITIES
    image: MobileFaceConfig = MobileFaceConfig()
    audio: Conv1DAudioConfig = Conv1DAudioConfig()
    lstm_hidden: int = 128
    fc_hidden: int = 128
    dropout: float = 0.3

    @nn.compact
    def __call__(self, batch, *, train: bool):
        feats, aux = [], {}
        for m in self.modalities:
            mask = batch[f"{m}_mask"]
            if m == "audio":
                seq, mask = Conv1DAudio(self.audio, name="audio_cnn")(batch["audio"], mask, train)
            else:
                b, t = mask.shape
                x = jnp.where(mask[:, :, None, None, None], batch[m], 0.0)
                x = x.reshape((b * t,) + x.shape[2:])  # [B*Tv, H, W, 3]
                seq = MobileFace(self.image, name=f"{m}_cnn")(x, train, mask.reshape(-1))
                seq = seq.reshape(b, t, -1)  # [B, Tv, embed]
            h = LSTM(self.lstm_hidden, name=f"{m}_lstm")(seq, mask)
            aux[f"feat_{m}"] = last_valid(h, mask)  # [B, hidden]
            feats.append(aux[f"feat_{m}"])
        z = nn.relu(nn.Dense(self.fc_hidden, name="fc")(jnp.concatenate(feats, -1)))
        z = nn.Dropout(self.dropout)(z, deterministic=not train)
        return nn.Dense(self.num_classes, name="head_out")(z), aux


@MODELS.register("s003")
def build(cfg) -> S003:
    mods = tuple(cfg.get("modalities", _S003_MODALITIES))
    if not mods or any(m not in _S003_MODALITIES for m in mods):
        raise ValueError(f"s003 modalities={mods} must be a non-empty subset of {_S003_MODALITIES}")
    image = MobileFaceConfig(
        width=cfg.get("image_width", 32),
        blocks=tuple(tuple(b) for b in cfg.get("image_blocks", MobileFaceConfig.blocks)),
        expansion=cfg.get("image_expansion", 2),
        last=cfg.get("image_last", 256),
        embed=cfg.get("image_embed", 128),
        depthwise_impl=cfg.get("depthwise_impl", "shifted"),
    )
    audio = Conv1DAudioConfig(
        channels=tuple(cfg.get("audio_channels", (64, 64, 128, 128))),
        kernel=cfg.get("audio_kernel", 3),
        pool=cfg.get("audio_pool", 2),
    )
    return S003(
        num_classes=cfg.num_classes,
        modalities=mods,
        image=image,
        audio=audio,
        lstm_hidden=cfg.get("lstm_hidden", 128),
        fc_hidden=cfg.get("fc_hidden", 128),
        dropout=cfg.get("dropout", 0.3),
    )
