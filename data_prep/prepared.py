"""Prepared builds on disk: rebuilding without losing the previous build, and saying what a
reuse reused.

* ``--force`` builds into a temporary directory beside the data directory and swaps it in only on
  success; a failed rebuild leaves the previous build as it was (TFDS's own overwrite deletes the
  old build first and then fails to reinitialise the same builder).
* Every build stores ``build_source.json`` with its data (written inside TFDS's temporary
  directory, so it appears with the data or not at all): the ``manual_dir`` it read (absolute
  path), a fingerprint of that directory's file listing (relative paths and sizes) and the build's
  *recipe* (:func:`recipe`: builder version, every config field that shapes the data, such as the
  folder builder's classes and label map, and the SHA-256 of each file the config names, such as
  its manifest). A later call reuses the build only when the recipe is the same and the listing of
  the ``manual_dir`` it is given is the same: a changed recipe rebuilds (or, without a
  ``manual_dir`` to rebuild from, refuses), a changed listing refuses (``--force`` rebuilds).
* One build of a corpus/config at a time (:func:`build_lock`, an ``flock`` the kernel releases
  when the process dies): a second build waits and then reuses. Under the lock,
  :func:`clean_stale` removes what killed builds left: TFDS's ``incomplete.*`` directories, our
  ``.mmer-rebuild-*`` roots, and puts back a previous build a swap was interrupted in.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

SOURCE_NAME = "build_source.json"
REBUILD_PREFIX = ".mmer-rebuild-"
# BuilderConfig fields that describe a config without shaping its data.
_DESCRIPTIVE = {"description", "release_notes", "tags", "supported_versions"}


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


def recipe(builder, manual_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """What a build's content depends on besides the files of its ``manual_dir``.

    ``{"builder", "version", "config": {field: value}, "files": {name: sha256}}``: the builder's
    name and version, every field of its config except the descriptive ones (so the folder
    builder's JSON spec edited under the same name gives another recipe), and the SHA-256 of each
    file the builder's ``recipe_files(manual_dir)`` names (e.g. the folder builder's manifest;
    only when ``manual_dir`` is given).
    """
    cfg = getattr(builder, "builder_config", None)
    fields = {k: v for k, v in sorted(vars(cfg).items()) if k not in _DESCRIPTIVE} if cfg else {}
    files = {}
    named = getattr(builder, "recipe_files", None)
    if manual_dir and named is not None:
        for path in named(os.path.expanduser(os.fspath(manual_dir))):
            try:
                files[os.fspath(path)] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            except OSError:
                files[os.fspath(path)] = None
    return json.loads(json.dumps({"builder": builder.name, "version": str(builder.version),
                                  "config": fields, "files": files}, sort_keys=True,
                                 default=str))


def write_source(data_dir: str | os.PathLike, manual_dir: str | os.PathLike | None,
                 built_recipe: dict[str, Any] | None = None) -> None:
    """Stores :func:`fingerprint`, the :func:`recipe` and the build time as ``build_source.json``
    in ``data_dir``."""
    fp = fingerprint(manual_dir)
    fp["built_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    fp["listing"] = listing(manual_dir) if fp["files"] <= 20000 else None
    if built_recipe is not None:
        fp["recipe"] = built_recipe
    Path(os.fspath(data_dir), SOURCE_NAME).write_text(json.dumps(fp, indent=1))


def recipe_changes(data_dir: str | os.PathLike, now: dict[str, Any]) -> list[str]:
    """How the recipe ``now`` differs from the one stored with the build in ``data_dir`` (empty
    when equal, or when the build recorded none). File hashes are compared only where both
    recipes have them (a call without ``manual_dir`` cannot hash the manifest)."""
    src = read_source(data_dir) or {}
    old = src.get("recipe")
    if old is None:
        return []
    diffs = []
    if old.get("version") != now.get("version"):
        diffs.append(f"version {old.get('version')} -> {now.get('version')}")
    oc, nc = old.get("config", {}), now.get("config", {})
    for key in sorted(set(oc) | set(nc)):
        if oc.get(key) != nc.get(key):
            diffs.append(f"{key} {oc.get(key)!r} -> {nc.get(key)!r}")
    of, nf = old.get("files", {}), now.get("files", {})
    for name in sorted(set(of) & set(nf)):
        if of[name] != nf[name]:
            diffs.append(f"{name} content changed")
    return diffs


def read_source(data_dir: str | os.PathLike) -> dict[str, Any] | None:
    p = Path(os.fspath(data_dir), SOURCE_NAME)
    return json.loads(p.read_text()) if p.is_file() else None


def reuse_notice(data_dir: str | os.PathLike, label: str,
                 manual_dir: str | os.PathLike | None) -> tuple[str, bool]:
    """What reusing the build in ``data_dir`` means, and whether ``manual_dir`` changed since.

    Returns:
      ``(message, changed)``. ``changed`` is true when the build recorded a source and the
      listing of the given ``manual_dir`` differs from it (files added, removed or resized; the
      message is then the refusal, naming examples); another path with the same files is no
      change, and None as ``manual_dir`` is never one (the caller did not say where the corpus
      is).
    """
    src = read_source(data_dir)
    if src is None:
        return (f"reusing {label} in {data_dir} (built before sources were recorded; "
                f"--force rebuilds it)"), False
    origin = (f"from {src['manual_dir']} ({src.get('files', 0)} files)" if src.get("manual_dir")
              else "(generated)")
    msg = f"reusing {label} built {src.get('built_at', '?')} {origin} in {data_dir}"
    if not manual_dir:
        return msg, False
    now = fingerprint(manual_dir)
    diffs = []
    if now["listing_sha256"] == src.get("listing_sha256"):
        if now["manual_dir"] != src.get("manual_dir"):  # moved or copied: the same files
            msg += f" (same files as {now['manual_dir']})"
        return msg, False
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
    return (f"the build of {label} in {data_dir} (built {src.get('built_at', '?')} from "
            f"{origin}) does not reflect manual_dir: it changed since ({'; '.join(diffs)}); "
            "rebuild with --force, or leave manual_dir out to use the build as it is"), True


def rebuild_swapped(make_builder: Callable[[str], Any], root: str | os.PathLike,
                    prepare: Callable[[Any], None], tag: str = "") -> Any:
    """Builds into a temporary root beside ``root`` and swaps the result in on success.

    Args:
      make_builder: ``data_dir root -> builder`` (same corpus and config for every root).
      root: the data directory the build belongs in.
      prepare: runs the build of the builder it is given (``download_and_prepare``).
      tag: names the corpus/config in the temporary root's name (:func:`rebuild_tag`), so that
        :func:`clean_stale` removes what a killed rebuild of this corpus left.

    Returns:
      A builder rooted at ``root`` over the new build. On any exception the previous build (if
      any) is untouched and the temporary directory removed.
    """
    root = os.path.abspath(os.fspath(root))
    os.makedirs(root, exist_ok=True)
    tmp_root = tempfile.mkdtemp(prefix=f"{REBUILD_PREFIX}{tag}+" if tag else REBUILD_PREFIX,
                                dir=root)
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


def rebuild_tag(name: str, config: str) -> str:
    """``name.config`` with every character outside ``[A-Za-z0-9_-]`` replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name) + "." + re.sub(r"[^A-Za-z0-9_-]", "_", config)


@contextlib.contextmanager
def build_lock(root: str | os.PathLike, name: str, config: str,
               label: str = "") -> Iterator[bool]:
    """Holds the build lock of ``name``/``config`` under data root ``root``; yields whether it had
    to wait for another process (which then usually built what the caller wants). ``label``
    names the build in the waiting message (default ``name/config``).

    The lock is an ``flock`` on ``<root>/<name>/.<config>.lock``: the kernel drops it when its
    holder exits or is killed, so a killed build never blocks the next one.
    """
    lock_dir = Path(os.fspath(root), name)
    lock_dir.mkdir(parents=True, exist_ok=True)
    path = lock_dir / f".{rebuild_tag('', config)[1:]}.lock"
    with open(path, "a+") as f:
        waited = False
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"[data] waiting for another build of {label or f'{name}/{config}'} "
                  f"(lock {path})",
                  file=sys.stderr, flush=True)
            fcntl.flock(f, fcntl.LOCK_EX)
            waited = True
        try:
            yield waited
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def clean_stale(root: str | os.PathLike, name: str, config: str, version: str) -> list[str]:
    """Removes what killed builds of ``name``/``config`` left under data root ``root``; call it
    holding :func:`build_lock`.

    * ``<root>/<name>/<config>/incomplete.*``: TFDS's temporary build directories;
    * ``<root>/.mmer-rebuild-<name>.<config>+*``: our ``--force`` temporary roots (and untagged
      ones from older versions that hold only this corpus/config);
    * ``<version>.previous-<pid>``: the build a swap moved aside. When the swap was cut off
      before the new build arrived, the previous one is put back instead of removed.

    Returns:
      The paths removed (``"<path> (restored)"`` for a build put back).
    """
    root = Path(os.path.abspath(os.fspath(root)))
    config_dir = root / name / config
    done = []
    for prev in sorted(config_dir.glob(f"{version}.previous-*")):
        final = config_dir / version
        if not final.exists() and (prev / "dataset_info.json").is_file():
            os.replace(prev, final)
            done.append(f"{prev} (restored)")
        else:
            shutil.rmtree(prev, ignore_errors=True)
            done.append(str(prev))
    stale = sorted(config_dir.glob("incomplete.*"))
    stale += sorted(root.glob(f"{REBUILD_PREFIX}{rebuild_tag(name, config)}+*"))
    for d in sorted(root.glob(f"{REBUILD_PREFIX}*")):
        # Untagged (older versions): remove only one that holds this corpus/config alone.
        if d.is_dir() and "." not in d.name[len(REBUILD_PREFIX):]:
            top = [p.name for p in d.iterdir()]
            if top == [name] and [p.name for p in (d / name).iterdir()] == [config]:
                stale.append(d)
    for d in stale:
        shutil.rmtree(d, ignore_errors=True)
        done.append(str(d))
    return done
