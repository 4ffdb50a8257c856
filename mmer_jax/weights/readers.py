"""Checkpoint files as distributed, read into numpy without torch.

- safetensors files (``model.safetensors``, sharded ``model-0000k-of-0000n.safetensors`` with
  their ``.index.json``, torchvision/timm state dicts saved with ``safetensors.torch.save_file``),
  through the ``safetensors`` package;
- PyTorch zip checkpoints (``pytorch_model.bin``, ``*.pt``, ``*.pth``) through the restricted
  unpickler of :mod:`mmer_jax.weights.torch_zip`;
- a Hugging Face model directory: ``config.json`` plus either of the above.

Every reader returns plain ``{name: np.ndarray}``; :class:`TensorSource` wraps it for a
converter and remembers the file names for error messages.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any

import ml_dtypes
import numpy as np

from mmer_jax.errors import CheckpointError
from mmer_jax.weights.torch_zip import read_torch_zip

SAFETENSORS = ("model.safetensors", "model.safetensors.index.json")
TORCH_BIN = ("pytorch_model.bin", "pytorch_model.bin.index.json")


def read_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All tensors of one ``.safetensors`` file (bfloat16 as ``ml_dtypes.bfloat16``).

    Raises:
      CheckpointError: the file is missing, truncated or not safetensors; the message names it.
    """
    from safetensors import SafetensorError, safe_open

    source = os.fspath(path)
    out = {}
    try:
        with safe_open(source, framework="numpy") as f:
            for name in f.keys():
                if f.get_slice(name).get_dtype() == "BF16":
                    out[name] = _bf16(f, source, name)
                else:
                    out[name] = f.get_tensor(name)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{source}: not a readable safetensors file ({exc})") from None
    return out


def _bf16(f, source: str, name: str) -> np.ndarray:
    # numpy has no bfloat16, so safetensors' numpy framework refuses it: read the raw bytes.
    sl = f.get_slice(name)
    shape = tuple(sl.get_shape())
    with open(source, "rb") as fh:
        header_len = int.from_bytes(fh.read(8), "little")
        header = json.loads(fh.read(header_len))
        start, end = header[name]["data_offsets"]
        fh.seek(8 + header_len + start)
        raw = fh.read(end - start)
    return np.frombuffer(raw, ml_dtypes.bfloat16).reshape(shape)


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """A state dict file by its content: safetensors or a torch zip checkpoint.

    Raises:
      CheckpointError: missing file, or neither format.
    """
    source = os.fspath(path)
    if not os.path.isfile(source):
        raise CheckpointError(f"{source}: no such file")
    with open(source, "rb") as fh:
        head = fh.read(9)
    if head[:2] == b"PK":
        return read_torch_zip(source)
    if len(head) == 9 and head[8:9] == b"{":
        return read_safetensors(source)
    if head[:1] == b"\x80":
        raise CheckpointError(f"{source}: a bare pickle stream (torch's legacy pre-1.6 format, "
                              "which this reader does not unpickle); re-save it with a current "
                              "torch (torch.save) or as safetensors")
    raise CheckpointError(f"{source}: neither a safetensors file nor a zip-format torch "
                          "checkpoint")


@dataclasses.dataclass
class HFDirectory:
    """A Hugging Face model directory, read.

    Attributes:
      root: the directory.
      config: ``config.json`` as a dict.
      tensors: every tensor of the weight files, by name.
      files: the files read (config and weights, plus ``tokenizer.json`` and
        ``preprocessor_config.json`` when present: both change what an import does).
      tensor_files: the weight file of each tensor.
    """

    root: str
    config: dict
    tensors: dict[str, np.ndarray]
    files: list[str]
    tensor_files: dict[str, str]


def read_hf_dir(root: str | os.PathLike) -> HFDirectory:
    """Reads ``config.json`` and the weights of a Hugging Face model directory.

    Weights are taken from ``model.safetensors`` (or its sharded index), else
    ``pytorch_model.bin`` (or its index).

    Raises:
      CheckpointError: not a directory, no or unparsable ``config.json``, no weight file, a shard
        named by an index that is missing, or an unreadable weight file.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise CheckpointError(f"{root}: not a directory (a Hugging Face model directory holds "
                              "config.json and model.safetensors)")
    cfg_path = os.path.join(root, "config.json")
    if not os.path.isfile(cfg_path):
        raise CheckpointError(f"{cfg_path}: missing (a Hugging Face model directory needs its "
                              "config.json)")
    config = _read_json(cfg_path)
    files = [cfg_path]
    for single, index in (SAFETENSORS, TORCH_BIN):
        if os.path.isfile(os.path.join(root, single)):
            weight_files = [os.path.join(root, single)]
        elif os.path.isfile(os.path.join(root, index)):
            shards = sorted(set(_read_json(os.path.join(root, index)).get("weight_map", {})
                                .values()))
            weight_files = [os.path.join(root, s) for s in shards]
            files.append(os.path.join(root, index))
        else:
            continue
        tensors: dict[str, np.ndarray] = {}
        tensor_files: dict[str, str] = {}
        for wf in weight_files:
            shard = read_state_dict(wf)
            tensors.update(shard)
            tensor_files.update(dict.fromkeys(shard, wf))
        files += weight_files
        for extra in ("tokenizer.json", "preprocessor_config.json"):  # they change behaviour
            if os.path.isfile(os.path.join(root, extra)):
                files.append(os.path.join(root, extra))
        return HFDirectory(root, config, tensors, files, tensor_files)
    raise CheckpointError(f"{root}: no weights (model.safetensors or pytorch_model.bin, or "
                          "their .index.json)")


def _read_json(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not readable JSON ({exc})") from None


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
