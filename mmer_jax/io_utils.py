"""Atomic file writes, so an interrupted run never leaves a half-written result file.

Each writer fills a temporary file in the destination's own directory (``os.replace`` is only atomic
within one filesystem) and renames it over the destination; readers see the old file or the new one,
never a torn one. Standard library + numpy only, so the training loop can use it without matplotlib.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from typing import IO, Any

import numpy as np


def atomic_write(path: str | os.PathLike, write: Callable[[IO], None], mode: str = "w") -> str:
    """Calls ``write(file)`` on a temporary file next to ``path``, then renames it to ``path``.

    Args:
      path: destination; its directory must exist.
      write: fills the open file object.
      mode: ``"w"`` (text, UTF-8) or ``"wb"``.

    Returns:
      ``path`` as a string.
    """
    path = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600; give the usual permissions of an output file others may read.
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> str:
    """Writes ``text`` (UTF-8) to ``path`` atomically and returns the path."""
    return atomic_write(path, lambda f: f.write(text))


def to_jsonable(obj: Any) -> Any:
    """Converts numpy scalars/arrays and tuples to JSON types; non-finite floats become ``None``.

    NaN/Infinity are not JSON, and browsers and ``jq`` reject them, so they are written as null.
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> str:
    """Writes ``obj`` as strict JSON to ``path`` atomically and returns the path.

    Serialisation happens before the file is touched, so an unserialisable object raises without
    disturbing an existing file.
    """
    text = json.dumps(to_jsonable(obj), indent=indent, allow_nan=False) + "\n"
    return atomic_write_text(path, text)
