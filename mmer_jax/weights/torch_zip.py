"""Reads PyTorch's ``torch.save`` zip files (``pytorch_model.bin``, ``*.pt``, ``*.pth``) without
torch and without running the pickle's code.

A zip checkpoint holds ``<archive>/data.pkl`` (the state dict's structure, a pickle whose tensors
are ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` calls over persistent
storage ids) and one raw little-endian file per storage under ``<archive>/data/<key>``. The
unpickler here admits only those rebuild functions, the storage type names, ``OrderedDict`` and
builtin containers; it rebuilds each tensor as a numpy array from the storage bytes. Anything
else (a pickled module, an arbitrary callable) is refused naming the global. The legacy pre-1.6
format (a bare pickle stream) is refused too: re-save it with a current torch, or as safetensors.
"""

from __future__ import annotations

import collections
import os
import pickle
import zipfile
from typing import Any

import ml_dtypes
import numpy as np

from mmer_jax.errors import CheckpointError

# torch storage class name -> numpy dtype of its elements.
_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _StorageType:
    def __init__(self, name: str):
        self.name, self.dtype = name, np.dtype(_STORAGE_DTYPES[name])


def _rebuild_tensor(storage, offset, size, stride, *_rest):
    """``torch._utils._rebuild_tensor_v2``: a strided view of the storage, copied."""
    size, stride = tuple(size), tuple(stride)
    if not size:
        return np.array(storage[offset], copy=True)
    itemsize = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=size, strides=tuple(s * itemsize for s in stride), writeable=False)
    return np.array(view, copy=True)


def _rebuild_parameter(data, requires_grad, backward_hooks, *_rest):
    del requires_grad, backward_hooks
    return data


_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch", "Size"): tuple,
}
_BUILTINS = {"dict", "list", "tuple", "set", "frozenset", "int", "float", "bool", "str", "bytes",
             "slice"}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, archive: zipfile.ZipFile, prefix: str, source: str):
        super().__init__(file)
        self._zip, self._prefix, self._source = archive, prefix, source
        self._storages: dict[str, np.ndarray] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _GLOBALS:
            return _GLOBALS[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if module == "builtins" and name in _BUILTINS:
            return __builtins__[name] if isinstance(__builtins__, dict) else getattr(
                __builtins__, name)
        raise CheckpointError(f"{self._source}: refused pickle global {module}.{name} (a torch "
                              "checkpoint may hold only tensors and containers of them)")

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise CheckpointError(f"{self._source}: unexpected persistent id {pid!r}")
        kind, key = pid[1], str(pid[2])
        if key not in self._storages:
            try:
                raw = self._zip.read(f"{self._prefix}data/{key}")
            except KeyError:
                raise CheckpointError(f"{self._source}: storage {key} is missing from the "
                                      "archive (truncated file?)") from None
            if len(raw) % kind.dtype.itemsize:
                raise CheckpointError(f"{self._source}: storage {key} has {len(raw)} bytes, not "
                                      f"a multiple of {kind.dtype.itemsize} ({kind.name})")
            self._storages[key] = np.frombuffer(raw, kind.dtype.newbyteorder("<"))
        return self._storages[key]


def read_torch_zip(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The tensors of a ``torch.save``'d state dict, as numpy arrays, without torch.

    Nested dicts are flattened with "." (``{"model": {"w": t}}`` -> ``"model.w"``), so a
    training checkpoint that wraps its state dict is read too.

    Args:
      path: a zip-format torch checkpoint (torch >= 1.6 writes this format by default).

    Returns:
      name -> array (the stored dtype; bfloat16 as ``ml_dtypes.bfloat16``).

    Raises:
      CheckpointError: not a zip checkpoint (legacy or corrupt file), a truncated archive, or a
        pickle global other than tensors and containers; the message names the file.
    """
    source = os.fspath(path)
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        with open(source, "rb") as f:
            head = f.read(2)
        if head == b"PK":  # a zip that does not open: cut short or damaged
            raise CheckpointError(f"{source}: a torch zip checkpoint that cannot be opened "
                                  f"({exc}): truncated or damaged; download it again") from None
        raise CheckpointError(f"{source}: not a zip-format torch checkpoint"
                              + (" (a bare pickle stream: torch's legacy pre-1.6 format); re-save "
                                 "it with a current torch (torch.save) or as safetensors"
                                 if head[:1] == b"\x80" else f" ({exc})")) from None
    with archive:
        pkl = [n for n in archive.namelist() if n.endswith("data.pkl")]
        if not pkl:
            raise CheckpointError(f"{source}: zip file without data.pkl: not a torch checkpoint")
        prefix = pkl[0][: -len("data.pkl")]
        try:
            with archive.open(pkl[0]) as f:
                obj = _Unpickler(f, archive, prefix, source).load()
        except CheckpointError:
            raise
        except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError, TypeError,
                KeyError, IndexError, AttributeError) as exc:
            raise CheckpointError(f"{source}: unreadable torch checkpoint: "
                                  f"{type(exc).__name__}: {exc}") from None
    out: dict[str, np.ndarray] = {}
    _flatten(obj, "", out, source)
    return out


def _flatten(obj: Any, prefix: str, out: dict, source: str) -> None:
    if isinstance(obj, np.ndarray):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out, source)
    # Scalars, strings and lists (epoch counters, optimizer hyper-parameters) are not weights.
