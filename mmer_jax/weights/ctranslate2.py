"""Reads CTranslate2's ``model.bin`` (faster-whisper and other CTranslate2 model directories)
without the ctranslate2 package.

The file (binary version 6, as CTranslate2 4.x writes it) is: uint32 version, the spec's name
(uint16 length incl. a trailing NUL, then UTF-8), uint32 revision, uint32 variable count, then per
variable: name, uint8 rank, uint32 dims, uint8 dtype id (float32, int8, int16, int32, float16,
bfloat16), uint32 byte count, the raw little-endian data; then uint32 alias count and
(alias, target) name pairs. All integers little-endian. Quantized weights (int8/int16) are
stored with a per-row ``<name>_scale``: the float weight is ``q / scale`` (CTranslate2's
``_quantize`` multiplies by ``127 / max|row|`` and rounds).
"""

from __future__ import annotations

import dataclasses
import os
import struct

import ml_dtypes
import numpy as np

from mmer_jax.errors import CheckpointError

_DTYPES = (np.float32, np.int8, np.int16, np.int32, np.float16, ml_dtypes.bfloat16)
SUPPORTED_VERSIONS = (5, 6)


@dataclasses.dataclass
class CT2Model:
    """A CTranslate2 model file, read.

    Attributes:
      spec: the model spec's name (``"WhisperSpec"``, ...).
      revision: the spec's revision.
      variables: name -> array, quantized weights already multiplied back to float32; aliases
        resolved to the array they name.
      quantized: names of the weights that were stored quantized (int8/int16).
    """

    spec: str
    revision: int
    variables: dict[str, np.ndarray]
    quantized: list[str]


class _Reader:
    def __init__(self, buf: memoryview, source: str):
        self.buf, self.off, self.source = buf, 0, source

    def take(self, n: int) -> memoryview:
        if self.off + n > len(self.buf):
            raise CheckpointError(f"{self.source}: truncated at byte {self.off} (needs {n} more "
                                  f"of {len(self.buf)})")
        out = self.buf[self.off:self.off + n]
        self.off += n
        return out

    def unpack(self, fmt: str):
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))[0]

    def string(self) -> str:
        n = self.unpack("H")
        raw = bytes(self.take(n))
        if n == 0 or raw[-1:] != b"\0":
            raise CheckpointError(f"{self.source}: malformed string at byte {self.off - n}")
        return raw[:-1].decode("utf-8")


def read_ctranslate2(path: str | os.PathLike) -> CT2Model:
    """Every variable of a CTranslate2 ``model.bin``.

    Args:
      path: the ``model.bin`` file, or the model directory holding it.

    Raises:
      CheckpointError: missing file, an unsupported binary version, an unknown dtype id, or a
        truncated file; the message names the file and the byte offset.
    """
    source = os.fspath(path)
    if os.path.isdir(source):
        source = os.path.join(source, "model.bin")
    if not os.path.isfile(source):
        raise CheckpointError(f"{source}: no such file (a CTranslate2 model directory holds "
                              "model.bin)")
    with open(source, "rb") as f:
        data = f.read()
    r = _Reader(memoryview(data), source)
    version = r.unpack("I")
    if version not in SUPPORTED_VERSIONS:
        raise CheckpointError(f"{source}: CTranslate2 binary version {version} is not supported "
                              f"(known: {SUPPORTED_VERSIONS}); is this a model.bin?")
    spec = r.string()
    revision = r.unpack("I")
    raw: dict[str, np.ndarray] = {}
    for _ in range(r.unpack("I")):
        name = r.string()
        dims = [r.unpack("I") for _ in range(r.unpack("B"))]
        type_id = r.unpack("B")
        if type_id >= len(_DTYPES):
            raise CheckpointError(f"{source}: variable {name!r} has unknown dtype id {type_id}")
        nbytes = r.unpack("I")
        dtype = np.dtype(_DTYPES[type_id])
        if nbytes != dtype.itemsize * int(np.prod(dims, dtype=np.int64)):
            raise CheckpointError(f"{source}: variable {name!r} declares {nbytes} bytes for "
                                  f"shape {dims} of {dtype.name}")
        raw[name] = np.frombuffer(r.take(nbytes), dtype.newbyteorder("<")).reshape(dims)
    aliases = {}
    for _ in range(r.unpack("I")):
        alias = r.string()
        aliases[alias] = r.string()
    variables, quantized = {}, []
    for name, value in raw.items():
        if name.endswith("_scale") and name[: -len("_scale")] in raw:
            continue
        scale = raw.get(f"{name}_scale")
        if value.dtype in (np.int8, np.int16) and scale is not None:
            value = value.astype(np.float32) / np.asarray(scale, np.float32).reshape(
                (-1,) + (1,) * (value.ndim - 1))
            quantized.append(name)
        variables[name] = value
    for alias, target in aliases.items():
        if target in variables:
            variables[alias] = variables[target]
    return CT2Model(spec, revision, variables, quantized)
