"""Where a number came from: the ``provenance`` block of ``results.json``, reproduction reports
and their Markdown.

A run records it once, when it starts (``provenance.json`` in the run directory, beside
``config.json``); a resume under other code or packages is appended to its ``resumes``, never
overwrites it. ``results.json`` carries the block as recorded. It holds:

- ``code``: the git commit of the repository and whether its tracked files differed from it
  (``dirty``; ``None`` for both outside a git checkout);
- ``config`` and ``config_sha256``: the resolved config (as ``config.json`` holds it) and the
  sha256 of its canonical JSON (sorted keys, no spaces);
- ``packages``: the installed versions of :data:`PACKAGES` (``"absent"`` when not installed);
- ``encoders``: each imported encoder's key (``model.audio_import``, ``data.encoder``), its
  architecture and the sha256 of its source files (the import's own key, see
  :mod:`mmer_jax.weights`);
- ``build``: the prepared corpus: builder name, config and version, and the sha256 of its
  ``build_report.json`` and ``folds.json`` (``None`` when the build has none).

:func:`differences` lists what differs between two such blocks (``mmer compare --diff``).
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import json
import os
import subprocess
from typing import Any, Iterable

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FILE = "provenance.json"
# Distribution names whose versions change numbers or data: the array stack, the checkpoint and
# data libraries.
PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "grain", "tensorflow-datasets",
            "numpy")
ABSENT = "absent"
BUILD_FILES = {"build_report_sha256": "build_report.json", "folds_sha256": "folds.json"}


def package_versions(packages: Iterable[str] = PACKAGES) -> dict[str, str]:
    """``{distribution: version}``, ``"absent"`` for one that is not installed."""
    out = {}
    for name in packages:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = ABSENT
    return out


def code_state(repo: str = REPO) -> dict[str, Any]:
    """``{"commit": sha or None, "dirty": bool or None}`` of the git checkout at ``repo``;
    ``dirty`` is True when a tracked file differs from the commit (untracked files do not
    count: runs/ and scratch files are not code). None for both outside a checkout or without
    git."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True,
                                  timeout=30, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def canonical_sha256(obj: Any) -> str:
    """sha256 of ``obj`` as canonical JSON (sorted keys, no spaces, UTF-8)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_sha256(path: str) -> str | None:
    """sha256 of the file's bytes; None when it does not exist."""
    if not os.path.isfile(path):
        return None
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_fingerprint(builder) -> dict[str, Any] | None:
    """The prepared corpus a run read: ``{"name", "config", "version", "build_report_sha256",
    "folds_sha256"}`` from a TFDS builder (None without one)."""
    data_dir = getattr(builder, "data_dir", None)
    if builder is None or not data_dir:
        return None
    config = getattr(builder, "builder_config", None)
    return {"name": getattr(builder, "name", None),
            "config": getattr(config, "name", None),
            "version": str(getattr(builder, "version", "")) or None,
            **{key: file_sha256(os.path.join(data_dir, name))
               for key, name in BUILD_FILES.items()}}


def encoder_hashes(cfg) -> dict[str, dict[str, Any]]:
    """``{key: {"architecture", "sha256"}}`` of every imported encoder ``cfg`` uses: the model's
    import sections (their ``record``, else ``encoder.json``) and ``data.encoder``. An import
    that cannot be read is recorded with ``"sha256": None`` and the reason."""
    from mmer_jax.models import model_config
    from mmer_jax.models.encoders.imported import read_record
    from mmer_jax.train.imports import used_sections

    out: dict[str, dict[str, Any]] = {}
    model = cfg.get("model")
    for key, sec in used_sections(model_config(model)) if model else []:
        try:
            rec = read_record(sec)
            out[key] = {"architecture": rec.get("architecture"), "sha256": rec.get("sha256")}
        except ValueError as exc:
            out[key] = {"architecture": None, "sha256": None, "error": str(exc)}
    # The schema's own default ("") when the section or key is absent: no second default here.
    data = cfg["data"] if "data" in cfg else {}
    path = data["encoder"] if "encoder" in data else ""
    if path:
        from mmer_jax.data.encoder_cache import encoder_record
        from mmer_jax.errors import UsageError

        try:
            rec = encoder_record(path)
            out["data.encoder"] = {"architecture": rec.get("architecture"),
                                   "sha256": rec.get("source", {}).get("sha256")}
        except UsageError as exc:
            out["data.encoder"] = {"architecture": None, "sha256": None, "error": str(exc)}
    return out


def collect(cfg, builder=None) -> dict[str, Any]:
    """The provenance block of a run of ``cfg`` (an ``ml_collections.ConfigDict``, resolved)
    over the prepared corpus ``builder``, as of now."""
    config = json.loads(cfg.to_json_best_effort())
    return {
        "recorded_at": now_utc(),
        "code": code_state(),
        "config_sha256": canonical_sha256(config),
        "config": config,
        "packages": package_versions(),
        "encoders": encoder_hashes(cfg),
        "build": build_fingerprint(builder),
    }


def record_start(workdir: str, cfg, builder=None) -> dict[str, Any]:
    """Writes ``workdir/provenance.json`` at a run's first start; on a resume keeps it and
    appends ``{"recorded_at", "code", "packages"}`` to its ``resumes`` when the code or the
    packages differ from the last record. Returns the block."""
    from mmer_jax.io_utils import atomic_write_json

    path = os.path.join(workdir, FILE)
    now = collect(cfg, builder)
    if not os.path.exists(path):
        atomic_write_json(path, now)
        return now
    with open(path, encoding="utf-8") as f:
        block = json.load(f)
    last = (block.get("resumes") or [block])[-1]
    if (last.get("code"), last.get("packages")) != (now["code"], now["packages"]):
        block.setdefault("resumes", []).append(
            {k: now[k] for k in ("recorded_at", "code", "packages")})
        atomic_write_json(path, block)
    return block


def read(workdir: str) -> dict[str, Any] | None:
    """The run's recorded block (``provenance.json``), or None for a run from before it."""
    path = os.path.join(workdir, FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def now_utc() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a.b.c": leaf}`` of nested dicts (lists are leaves)."""
    if isinstance(obj, dict) and obj:
        out = {}
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    if not prefix:  # the whole object is a leaf: an empty dict holds nothing to compare
        return {} if obj == {} else {"": obj}
    return {prefix[:-1]: obj}


def differences(a: dict[str, Any] | None, b: dict[str, Any] | None,
                ignore: Iterable[str] = ("recorded_at",)) -> list[tuple[str, Any, Any]]:
    """``[(dotted key, value in a, value in b)]`` where two nested dicts differ (a key missing
    on one side has ``"(missing)"`` there), sorted by key; keys starting with an ``ignore``
    entry are left out."""
    fa, fb = flatten(a or {}), flatten(b or {})
    skip = tuple(ignore)
    out = []
    for key in sorted(set(fa) | set(fb)):
        if key.startswith(skip):
            continue
        va, vb = fa.get(key, "(missing)"), fb.get(key, "(missing)")
        if va != vb:
            out.append((key, va, vb))
    return out


def markdown_lines(block: dict[str, Any] | None, title: str = "## Provenance") -> list[str]:
    """The report section of a provenance block: commit (and whether the tree was dirty), the
    config's sha256, packages, encoders, build, resumes and refreshes; [] for None."""
    from mmer_jax.train.report_common import cell, markdown_table

    if not block:
        return []
    code = block.get("code") or {}
    commit = code.get("commit") or "unknown (not a git checkout)"
    dirty = {True: " (uncommitted changes)", False: "", None: ""}[code.get("dirty")]
    rows = [["Recorded", cell(block.get("recorded_at"))], ["Commit", f"`{commit}`{dirty}"],
            ["Config sha256", f"`{block.get('config_sha256')}`"]]
    if block.get("config_path"):
        rows.append(["Config file", f"`{block['config_path']}`"])
    pkgs = block.get("packages") or {}
    rows.append(["Packages", ", ".join(f"{k} {v}" for k, v in pkgs.items()) or "—"])
    for key, enc in (block.get("encoders") or {}).items():
        rows.append([f"Encoder `{key}`", f"{cell(enc.get('architecture'))}, source sha256 "
                     f"`{enc.get('sha256')}`"])
    build = block.get("build")
    if build:
        rows.append(["Build", f"{build.get('name')}/{build.get('config')} {build.get('version')}"
                     f"; build_report.json `{str(build.get('build_report_sha256'))[:16]}`, "
                     f"folds.json `{str(build.get('folds_sha256'))[:16]}`"])
    for r in block.get("resumes") or []:
        rc = r.get("code") or {}
        rows.append(["Resumed", f"{cell(r.get('recorded_at'))} at `{rc.get('commit')}`"
                     f"{' (uncommitted changes)' if rc.get('dirty') else ''}"])
    for r in block.get("refreshes") or []:
        rc = r.get("code") or {}
        rows.append(["Refreshed", f"{cell(r.get('recorded_at'))} at `{rc.get('commit')}`: "
                     f"{', '.join(r.get('changed') or []) or 'nothing changed'}"])
    return [title, ""] + markdown_table(["", "Value"], rows, "ll")
