"""The ``provenance`` block of a reproduction report, and the record a refresh leaves in it.

A report is written by a run of the harness (``mmer reproduce``), and changes afterwards only
through an explicit refresh (``mmer reproduce --refresh REPORT.json``, or
``python -m mmer_jax.reproduce.refresh``), which appends to ``provenance.refreshes`` what it
changed, when, at which commit, and the sha256 of the files it read. The block:

- what :func:`mmer_jax.train.provenance.collect` records of the harness process (commit and dirty
  flag, the resolved config and its sha256, packages, encoders), plus ``config_path``;
- ``runs``: per run its workdir and what its own ``results.json`` recorded (commit, dirty flag,
  config sha256, build fingerprint; ``None`` for a run from before provenance was recorded);
- ``build``: the runs' build fingerprint when they share one;
- ``inputs``: the sha256 of the files the paper part and the baseline rows were read from
  (:mod:`papers`, :mod:`class_names`, each baseline report).
"""

from __future__ import annotations

import os
from typing import Any, Iterable

from mmer_jax.train import provenance

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PAPER_SOURCES = ("papers.py", "class_names.py")


def _rel(path: str) -> str:
    path = os.path.abspath(path)
    return os.path.relpath(path, REPO) if path.startswith(REPO + os.sep) else path


def inputs(baseline_paths: Iterable[str]) -> dict[str, Any]:
    """``{"paper_sources": {file: sha256}, "baselines": {report path: sha256}}`` of the files a
    report's paper part and same-harness baseline rows are read from (paths relative to the
    repository when inside it)."""
    return {
        "paper_sources": {f"mmer_jax/reproduce/{n}": provenance.file_sha256(os.path.join(HERE, n))
                          for n in PAPER_SOURCES},
        "baselines": {_rel(p): provenance.file_sha256(p) for p in baseline_paths},
    }


def _run_entry(run: dict) -> dict[str, Any]:
    block = run.get("provenance") or {}
    return {"workdir": run.get("_workdir"),
            "commit": (block.get("code") or {}).get("commit"),
            "dirty": (block.get("code") or {}).get("dirty"),
            "config_sha256": block.get("config_sha256"),
            "build": block.get("build")} if block else {"workdir": run.get("_workdir"),
                                                        "recorded": None}


def report_block(cfg, config_path: str, runs: list[dict],
                 baseline_paths: Iterable[str]) -> dict[str, Any]:
    """The ``provenance`` block of a report of ``runs`` (their ``results.json`` dicts, with
    ``_workdir``) of config ``cfg`` read from ``config_path``; ``baseline_paths``: the baseline
    reports its rows were read from."""
    block = provenance.collect(cfg)
    del block["build"]  # the runs' (below): the harness process opens no build
    block["config_path"] = _rel(config_path)
    block["runs"] = [_run_entry(r) for r in runs]
    builds = {repr(e.get("build")) for e in block["runs"] if e.get("build")}
    block["build"] = next(e["build"] for e in block["runs"] if e.get("build")) \
        if len(builds) == 1 else None
    block["inputs"] = inputs(baseline_paths)
    return block


def record_refresh(before: dict, after: dict, keys: Iterable[str],
                   baseline_paths: Iterable[str]) -> dict:
    """``after`` with a refresh record appended to ``provenance.refreshes`` when any of
    ``keys`` differs between the two reports (``after`` as it is otherwise, so a refresh that
    changes nothing leaves the report byte for byte as it was)."""
    changed = [k for k in keys if before.get(k) != after.get(k)]
    if not changed:
        return before
    block = dict(after.get("provenance") or {})
    block["refreshes"] = list(block.get("refreshes") or []) + [{
        "recorded_at": provenance.now_utc(),
        "code": provenance.code_state(),
        "changed": changed,
        "inputs": inputs(baseline_paths),
    }]
    return {**after, "provenance": block}
