"""Pretrained encoders' architectures in Flax; importing this package registers them in
``registry.ARCHITECTURES``.

Each module returns every layer's hidden states (:class:`EncoderOutput`) and honours a padding
mask, so a probe can weight the layers and a fine-tuning run can train the whole stack. The
parameter trees are what ``mmer_jax.weights`` fills from checkpoints as distributed (Hugging Face
directories, CTranslate2, torchvision and timm state dicts); nothing here reads files.

| name | module | input |
|---|---|---|
| ``whisper`` | ``whisper.WhisperEncoder`` | Whisper log-mel [B, T, 80] |
| ``wav2vec2``, ``hubert`` | ``wav2vec2.Wav2Vec2Encoder`` | 16 kHz waveform [B, S] |
| ``wavlm`` | ``wavlm.WavLMEncoder`` | 16 kHz waveform [B, S] |
| ``bert``, ``roberta`` | ``bert.BertEncoder`` | token ids [B, L] |
| ``resnet`` (torchvision), ``inception_resnet_v2`` (timm) | vision modules | [B, H, W, 3] |

Self-attention runs through ``mmer_kernels.attention`` (``implementation``: xla, pallas, cudnn,
interpret, auto); ``remat`` recomputes each layer in the backward pass.
"""

from mmer_jax.models.pretrained import (  # noqa: F401 - importing registers each architecture
    bert,
    vision,
    wav2vec2,
    wavlm,
    whisper,
)
from mmer_jax.models.pretrained.blocks import EncoderOutput

__all__ = ["EncoderOutput"]
