"""Imported encoders on disk: ``<dir>/encoder.json`` + ``<dir>/variables/`` (an orbax checkpoint)
+ assets (``tokenizer.json``).

``encoder.json`` records the architecture and its config, the source format, every source file
with its size and sha256, the tensors the import left out (decoders, pretraining heads) and the
parameter count. An import is written into a hidden sibling directory and renamed into place
only once complete, so a directory with an ``encoder.json`` is always a whole import; an
interrupted import leaves only a ``.<name>.partial-*`` directory, which no reader lists.

The default location is ``$MMER_CACHE/encoders/<name>-<sha12>`` (``$MMER_CACHE`` defaults to
``~/.cache/mmer``), ``sha12`` the first 12 hex digits of the sha256 over the source files' hashes.
Weights never go into the repository.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional

import numpy as np

from mmer_jax.errors import CheckpointError
from mmer_jax.io_utils import atomic_write_json

ENCODER_JSON = "encoder.json"
VARIABLES = "variables"
FORMAT_VERSION = 1


def cache_dir() -> Path:
    """``$MMER_CACHE``, else ``~/.cache/mmer``."""
    return Path(os.environ.get("MMER_CACHE") or "~/.cache/mmer").expanduser()


def encoders_dir() -> Path:
    """Where imports go by default: ``<cache>/encoders``."""
    return cache_dir() / "encoders"


@dataclasses.dataclass
class ImportedEncoder:
    """An imported encoder, loaded.

    Attributes:
      path: its directory.
      record: ``encoder.json`` as a dict.
      architecture: the registered :class:`registry.Architecture`.
      config: the architecture's config instance.
      variables: ``{"params": ..., ["batch_stats": ...]}`` of float32 numpy arrays.
    """

    path: Path
    record: dict
    architecture: Any
    config: Any
    variables: dict

    def module(self, **overrides):
        """The Flax module, with config fields replaced (``implementation="pallas"``,
        ``remat=True``, ``dtype="bfloat16"``; the parameter tree does not change)."""
        return self.architecture.module(dataclasses.replace(self.config, **overrides))


def save(out: str | os.PathLike, *, architecture: str, config: Any, variables: dict,
         source: dict, ignored: list[str], assets: dict[str, str], force: bool = False) -> Path:
    """Writes an import atomically (see the module docstring).

    Args:
      out: the encoder directory to create.
      architecture, config: the registered architecture and its config dataclass instance.
      variables: nested dicts of numpy arrays.
      source: the record's ``source`` entry (format, path, files with hashes).
      ignored: checkpoint tensors the encoder does not use.
      assets: ``{file name: source path}`` copied into the directory.
      force: replace an existing import at ``out``.

    Raises:
      CheckpointError: ``out`` is a file; or a non-empty directory that is not an import
        (``force`` replaces imports only, never other content); or an import, without ``force``.
    """
    import orbax.checkpoint as ocp

    out = Path(out).expanduser().absolute()
    check_out(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-{os.getpid()}-", dir=out.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; an import is read by others too
    try:
        ckpt = ocp.StandardCheckpointer()
        ckpt.save(tmp / VARIABLES, variables)
        ckpt.wait_until_finished()
        for name, path in assets.items():
            shutil.copyfile(path, tmp / name)
        n_params = int(sum(np.size(v) for v in _leaves(variables.get("params", {}))))
        record = {
            "format_version": FORMAT_VERSION,
            "architecture": architecture,
            "config": dataclasses.asdict(config),
            "source": source,
            "parameters": n_params,
            "collections": sorted(variables),
            "ignored_tensors": ignored,
            "assets": sorted(assets),
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        atomic_write_json(tmp / ENCODER_JSON, record)  # last: its presence marks a whole import
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def check_out(out: Path, force: bool, sources: tuple[str, ...] = ()) -> None:
    """Refuses an ``out`` that an import may not write: a file, a non-empty directory that is not
    an import (``--force`` replaces imports only), an import without ``force``, or a directory
    holding (or held by) one of ``sources`` (the checkpoint being read).

    Raises:
      CheckpointError: naming ``out`` and why.
    """
    out = Path(out).expanduser().absolute()
    for src in sources:
        s = Path(src).expanduser().absolute()
        if out == s or out in s.parents or s in out.parents:
            raise CheckpointError(f"{out}: --out must be outside the checkpoint being imported "
                                  f"({s})")
    if out.is_file():
        raise CheckpointError(f"{out}: a file; --out names the encoder directory to create")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not (out / ENCODER_JSON).is_file():
        raise CheckpointError(f"{out}: a non-empty directory that is not an imported encoder; "
                              "--out must be a new or empty directory (--force replaces imports "
                              "only)")
    if not force:
        raise CheckpointError(f"{out}: holds an import; choose another --out or pass --force to "
                              "replace it")


def remove_stale_partials(out: Path) -> list[Path]:
    """Deletes the hidden ``.<name>.partial-<pid>-*`` directories that imports into ``out`` left
    when they were killed (their process is gone); returns them."""
    removed = []
    for p in out.parent.glob(f".{out.name}.partial-*"):
        pid = p.name.rsplit(".partial-", 1)[1].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _leaves(tree):
    if isinstance(tree, dict):
        for v in tree.values():
            yield from _leaves(v)
    else:
        yield tree


def read_record(path: str | os.PathLike) -> dict:
    """``encoder.json`` of an import directory.

    Raises:
      CheckpointError: no ``encoder.json`` (not an import, or an unfinished one), unreadable
        JSON, or a newer format version.
    """
    p = Path(path).expanduser()
    f = p / ENCODER_JSON
    if not f.is_file():
        raise CheckpointError(f"{p}: no {ENCODER_JSON}: not an imported encoder (import one with "
                              "`mmer encoders import`)")
    try:
        record = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{f}: unreadable ({exc})") from None
    if record.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{f}: format_version {record['format_version']} is newer than "
                              f"this mmer_jax reads ({FORMAT_VERSION})")
    return record


def load(path: str | os.PathLike) -> ImportedEncoder:
    """An imported encoder's module config and variables.

    Raises:
      CheckpointError: as :func:`read_record`, an architecture this version does not know, or
        a variables checkpoint that cannot be restored.
    """
    import orbax.checkpoint as ocp

    from mmer_jax.registry import ARCHITECTURES

    p = Path(path).expanduser().absolute()
    record = read_record(p)
    try:
        arch = ARCHITECTURES.get(record["architecture"])
    except KeyError as exc:
        raise CheckpointError(f"{p / ENCODER_JSON}: {exc}") from None
    try:
        config = arch.config_class(**record["config"])
        variables = ocp.StandardCheckpointer().restore(p / VARIABLES)
    except (TypeError, ValueError, FileNotFoundError) as exc:
        raise CheckpointError(f"{p}: cannot load: {type(exc).__name__}: {exc}") from None
    variables = _to_numpy(variables)
    return ImportedEncoder(p, record, arch, config, variables)


def _to_numpy(tree):
    if isinstance(tree, dict):
        return {k: _to_numpy(v) for k, v in tree.items()}
    return np.asarray(tree)


def list_imported(root: Optional[str | os.PathLike] = None,
                  broken: Optional[list] = None) -> list[tuple[Path, dict]]:
    """Every whole import under ``root`` (default :func:`encoders_dir`), sorted by name, with its
    record; hidden (partial) directories are skipped. Directories with an ``encoder.json`` that
    cannot be read, or without their ``variables/``, are appended to ``broken`` as
    ``(path, reason)`` when a list is given."""
    base = Path(root).expanduser() if root else encoders_dir()
    if not base.is_dir():
        return []
    out = []
    for d in sorted(base.iterdir()):
        if d.name.startswith(".") or not (d / ENCODER_JSON).is_file():
            continue
        try:
            rec = read_record(d)
        except CheckpointError as exc:
            if broken is not None:
                broken.append((d, str(exc)))
            continue
        if not (d / VARIABLES).is_dir():
            if broken is not None:
                broken.append((d, f"{d / VARIABLES} is missing"))
            continue
        out.append((d, rec))
    return out
