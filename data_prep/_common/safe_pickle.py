"""A restricted unpickler for corpus files distributed as pickles.

Loading a pickle runs whatever callables its author named, so ``pickle.load`` on a downloaded file
is arbitrary code execution. :func:`safe_load` admits only builtin containers and scalars plus the
few numpy globals that array, dtype and scalar pickles need (under both the numpy 1.x ``numpy.core``
and the numpy 2.x ``numpy._core`` module names); any other global raises :class:`UnsafePickleError`.
"""

from __future__ import annotations

import importlib
import io
import os
import pickle
import struct
from typing import Any, BinaryIO

# Builtins that only build plain data. Python 2 pickles spell the module ``__builtin__``.
_BUILTIN_NAMES = frozenset({
    "bool", "bytearray", "bytes", "complex", "dict", "float", "frozenset", "int", "list", "range",
    "set", "slice", "str", "tuple",
})

# (public module, name) -> candidate modules to import it from, newest first. Resolving to the
# numpy 2 location avoids the ``numpy.core`` deprecation shim for pickles written by numpy 1.x.
_NUMPY_GLOBALS: dict[tuple[str, str], tuple[str, ...]] = {}
for _old, _new in (("numpy.core.multiarray", "numpy._core.multiarray"),
                   ("numpy.core.numeric", "numpy._core.numeric")):
    for _name in ("_reconstruct", "scalar", "_frombuffer"):
        _NUMPY_GLOBALS[(_old, _name)] = (_new, _old)
        _NUMPY_GLOBALS[(_new, _name)] = (_new, _old)
_NUMPY_GLOBALS[("numpy", "ndarray")] = ("numpy",)
_NUMPY_GLOBALS[("numpy", "dtype")] = ("numpy",)

_OTHER_GLOBALS: dict[tuple[str, str], tuple[str, ...]] = {
    # Python 2 / protocol-2 pickles store bytes as ``_codecs.encode(str, "latin1")``.
    ("_codecs", "encode"): ("_codecs",),
    ("collections", "OrderedDict"): ("collections",),
}


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list; nothing it named was called."""


class CorruptPickleError(ValueError):
    """The pickle is truncated or malformed."""


def _resolve(module: str, name: str) -> Any:
    if module in ("builtins", "__builtin__") and name in _BUILTIN_NAMES:
        return getattr(importlib.import_module("builtins"), name)
    candidates = _NUMPY_GLOBALS.get((module, name)) or _OTHER_GLOBALS.get((module, name))
    if candidates is None:
        return None
    for candidate in candidates:
        try:
            return getattr(importlib.import_module(candidate), name)
        except (ImportError, AttributeError):
            continue
    return None


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: BinaryIO, source: str, encoding: str):
        super().__init__(file, encoding=encoding)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        obj = _resolve(module, name)
        if obj is None:
            raise UnsafePickleError(
                f"{self._source}: refused global {module}.{name} (only builtin containers and "
                "numpy arrays are allowed)")
        return obj

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self._source}: refused persistent id {pid!r}")


def safe_load(path_or_file: str | os.PathLike | BinaryIO, *, encoding: str = "ASCII") -> Any:
    """Unpickles plain data (builtin containers, scalars, numpy arrays) without running other code.

    Args:
      path_or_file: a file path or a binary file object open for reading.
      encoding: how to decode Python 2 ``str`` objects; ``"latin1"`` for Python 2 numpy pickles.

    Returns:
      The unpickled object.

    Raises:
      FileNotFoundError: the path does not exist.
      UnsafePickleError: the pickle names a global outside the allow-list.
      CorruptPickleError: the pickle is truncated or malformed; the message names the file.
    """
    if isinstance(path_or_file, (str, os.PathLike)):
        source = os.fspath(path_or_file)
        with open(source, "rb") as f:
            return _load(f, source, encoding)
    source = getattr(path_or_file, "name", None) or repr(path_or_file)
    return _load(path_or_file, str(source), encoding)


def safe_loads(data: bytes, *, source: str = "<bytes>", encoding: str = "ASCII") -> Any:
    """Like :func:`safe_load` for an in-memory pickle; ``source`` names it in errors."""
    return _load(io.BytesIO(data), source, encoding)


def _load(file: BinaryIO, source: str, encoding: str) -> Any:
    try:
        return _RestrictedUnpickler(file, source, encoding).load()
    except UnsafePickleError:
        raise
    except EOFError as exc:
        reason = exc or "unexpected end"
        raise CorruptPickleError(f"{source}: pickle is truncated ({reason})") from exc
    except pickle.UnpicklingError as exc:
        kind = "truncated" if "truncated" in str(exc) else "not a readable pickle"
        raise CorruptPickleError(f"{source}: pickle is {kind}: {exc}") from exc
    except (ValueError, TypeError, KeyError, IndexError, AttributeError,
            struct.error, UnicodeDecodeError, MemoryError) as exc:
        raise CorruptPickleError(
            f"{source}: pickle is not readable: {type(exc).__name__}: {exc}") from exc
