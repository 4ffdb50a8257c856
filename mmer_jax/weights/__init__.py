"""Pretrained weights from the checkpoints researchers already have, into the Flax architectures
of ``registry.ARCHITECTURES`` -- with no torch, transformers or ctranslate2 at run time.

| module | what |
|---|---|
| ``readers`` | safetensors files, Hugging Face directories; ``torch_zip``: ``torch.save`` zips |
| ``ctranslate2`` | CTranslate2's ``model.bin`` (faster-whisper), int8/int16 dequantised |
| ``mapping`` | PyTorch layouts -> Flax, every shape checked against the config |
| ``convert`` | one converter per (format, model type), registered in ``CONVERTERS`` |
| ``importer`` | ``mmer encoders import``: read -> convert -> check -> store |
| ``store`` | imported encoders on disk (orbax + ``encoder.json``), written atomically |
| ``fetch`` | ``mmer encoders fetch``: checkpoints published on a package registry |
| ``listing`` | ``mmer encoders list`` |

Errors a user can cause (missing or truncated files, a config that does not fit the tensors) are
``mmer_jax.errors.CheckpointError``: one line naming the file and, where one is at fault, the
tensor.
"""
