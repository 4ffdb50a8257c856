"""Prepared builds on disk: rebuilding without losing the previous build, and saying what a
reuse reused.

* ``--force`` builds into a temporary directory beside the data directory and swaps it in only on
  success; a failed rebuild leaves the previous build as it was (TFDS's own overwrite deletes the
  old build first and then fails to reinitialise the same builder).
* Every build stores ``build_source.json`` next to its data: the ``manual_dir`` it read (absolute
  path) and a fingerprint of that directory's file listing (relative paths and sizes). A later
  call that reuses the build says which build it reused, and says so loudly when ``manual_dir`` is
  not the one the build read (another path, or files added, removed or resized).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

SOURCE_NAME = "build_source.json"


def listing(manual_dir: str | os.PathLike | None) -> dict[str, int]:
    """``{relative path: size}`` of every file under ``manual_dir`` (hidden entries ignored)."""
    if not manual_dir:
        return {}
    root = os.path.abspath(os.path.expanduser(os.fspath(manual_dir)))
    out = {}
    for base, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            if f.startswith("."):
                continue
            p = os.path.join(base, f)
            try:
                out[os.path.relpath(p, root)] = os.path.getsize(p)
            except OSError:
                continue
    return out


def fingerprint(manual_dir: str | os.PathLike | None) -> dict[str, Any]:
    """The ``manual_dir`` path, file count, total bytes and a SHA-256 of its listing."""
    files = listing(manual_dir)
    h = hashlib.sha256()
    for rel, size in sorted(files.items()):
        h.update(f"{rel}\0{size}\n".encode())
    return {
        "manual_dir": (os.path.abspath(os.path.expanduser(os.fspath(manual_dir)))
                       if manual_dir else None),
        "files": len(files), "bytes": sum(files.values()), "listing_sha256": h.hexdigest(),
    }


def write_source(data_dir: str | os.PathLike, manual_dir: str | os.PathLike | None) -> None:
    """Stores :func:`fingerprint` and the build time as ``build_source.json`` in ``data_dir``."""
    fp = fingerprint(manual_dir)
    fp["built_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    fp["listing"] = listing(manual_dir) if fp["files"] <= 20000 else None
    Path(os.fspath(data_dir), SOURCE_NAME).write_text(json.dumps(fp, indent=1))


def read_source(data_dir: str | os.PathLike) -> dict[str, Any] | None:
    p = Path(os.fspath(data_dir), SOURCE_NAME)
    return json.loads(p.read_text()) if p.is_file() else None


def reuse_notice(data_dir: str | os.PathLike, label: str,
                 manual_dir: str | os.PathLike | None) -> tuple[str, bool]:
    """What reusing the build in ``data_dir`` means, and whether ``manual_dir`` changed since.

    Returns:
      ``(message, changed)``. ``changed`` is true when the build recorded a source and the given
      ``manual_dir`` differs from it (path or listing); None as ``manual_dir`` is never a change
      (the caller did not say where the corpus is).
    """
    src = read_source(data_dir)
    if src is None:
        return (f"reusing {label} in {data_dir} (built before sources were recorded; "
                f"--force rebuilds it)"), False
    origin = src.get("manual_dir") or "generated"
    msg = (f"reusing {label} built {src.get('built_at', '?')} from {origin} "
           f"({src.get('files', 0)} files) in {data_dir}")
    if not manual_dir:
        return msg, False
    now = fingerprint(manual_dir)
    diffs = []
    if now["manual_dir"] != src.get("manual_dir"):
        diffs.append(f"path {src.get('manual_dir')} -> {now['manual_dir']}")
    if now["listing_sha256"] != src.get("listing_sha256"):
        old, new = src.get("listing") or {}, listing(manual_dir)
        if old:
            added = sorted(set(new) - set(old))
            removed = sorted(set(old) - set(new))
            resized = sorted(k for k in set(old) & set(new) if old[k] != new[k])
            diffs.append(f"files {len(old)} -> {len(new)} (+{len(added)} -{len(removed)} "
                         f"~{len(resized)}; e.g. {(added + removed + resized)[:3]})")
        else:
            diffs.append(f"files {src.get('files')} -> {now['files']} (listing differs)")
    if not diffs:
        return msg, False
    return (f"{msg}; WARNING: manual_dir changed since that build ({'; '.join(diffs)}): the "
            f"build does not reflect it; rebuild with --force"), True


def rebuild_swapped(make_builder: Callable[[str], Any], root: str | os.PathLike,
                    prepare: Callable[[Any], None]) -> Any:
    """Builds into a temporary root beside ``root`` and swaps the result in on success.

    Args:
      make_builder: ``data_dir root -> builder`` (same corpus and config for every root).
      root: the data directory the build belongs in.
      prepare: runs the build of the builder it is given (``download_and_prepare``).

    Returns:
      A builder rooted at ``root`` over the new build. On any exception the previous build (if
      any) is untouched and the temporary directory removed.
    """
    root = os.path.abspath(os.fspath(root))
    os.makedirs(root, exist_ok=True)
    tmp_root = tempfile.mkdtemp(prefix=".mmer-rebuild-", dir=root)
    try:
        tmp_builder = make_builder(tmp_root)
        prepare(tmp_builder)
        new_dir = os.fspath(tmp_builder.data_dir)
        final_dir = os.path.join(root, os.path.relpath(new_dir, tmp_root))
        os.makedirs(os.path.dirname(final_dir), exist_ok=True)
        old = None
        if os.path.exists(final_dir):
            old = final_dir + f".previous-{os.getpid()}"
            os.replace(final_dir, old)
        try:
            os.replace(new_dir, final_dir)
        except BaseException:
            if old is not None:
                os.replace(old, final_dir)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    return make_builder(root)
