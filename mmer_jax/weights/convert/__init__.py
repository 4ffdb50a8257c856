"""Converters from checkpoint formats to the architectures of ``registry.ARCHITECTURES``.

``CONVERTERS`` maps ``"<format>:<kind>"`` to a function ``(Checkpoint) -> Converted``:

- ``hf`` (a Hugging Face model directory): by ``config.json``'s ``model_type`` -- whisper,
  wav2vec2, hubert, wavlm, bert, roberta;
- ``ctranslate2`` (a CTranslate2 model directory, e.g. faster-whisper): by the spec name in
  ``model.bin`` -- WhisperSpec;
- ``torchvision`` (one state dict, safetensors or torch zip): by ``--arch`` -- resnet18,
  resnet34, resnet50;
- ``timm`` (one state dict): by ``--arch`` -- inception_resnet_v2.

Importing this package imports the converter modules, which register themselves.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

from mmer_registry import Registry

FORMATS = ("hf", "ctranslate2", "torchvision", "timm")

CONVERTERS: Registry[Callable[["Checkpoint"], "Converted"]] = Registry(
    "checkpoint converter", loaders=("mmer_jax.weights.convert.all",))


@dataclasses.dataclass
class Checkpoint:
    """A checkpoint as distributed, read but not yet converted.

    Attributes:
      format: one of ``FORMATS``.
      path: what the user named (directory or file).
      kind: the converter key's second half (``model_type``, spec name or ``--arch``).
      tensors: the weights (:class:`mapping.TensorSource`, naming the file in errors).
      config: the checkpoint's own configuration (``config.json``) or None.
      files: every file read, for the import record's hashes.
    """

    format: str
    path: str
    kind: str
    tensors: Any
    config: Optional[dict]
    files: list[str]


@dataclasses.dataclass
class Converted:
    """A checkpoint in the project's terms.

    Attributes:
      architecture: a name of ``registry.ARCHITECTURES``.
      config: an instance of that architecture's config class.
      variables: ``{"params": ..., ["batch_stats": ...]}`` with :class:`mapping.Tensor` leaves.
      name: a short default name for the import (``whisper-base``, ``wavlm-base``, ...).
      assets: files copied beside the weights (``{"tokenizer.json": source path}``).
      ignorable: regular expressions of the checkpoint tensors an encoder import leaves out
        (decoders, pretraining and classification heads, BatchNorm counters); any other unused
        tensor refuses the import, since it means the config describes less than the weights
        hold (fewer layers, say).
    """

    architecture: str
    config: Any
    variables: dict
    name: str
    assets: dict = dataclasses.field(default_factory=dict)
    ignorable: tuple = ()
