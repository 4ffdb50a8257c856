"""``mmer encoders list``: the registered architectures, the converters, the checkpoints
``mmer encoders fetch`` knows, and the imported encoders in the cache (or a given folder)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from mmer_jax.weights import fetch, store


def listing(root: Optional[str | os.PathLike] = None) -> str:
    """The text ``mmer encoders list`` prints."""
    from mmer_jax.registry import ARCHITECTURES
    from mmer_jax.weights.convert import CONVERTERS

    lines = ["architectures (registry.ARCHITECTURES):"]
    for name in ARCHITECTURES.names():
        arch = ARCHITECTURES[name]
        lines.append(f"  {name:<20} {arch.modality:<6} {arch.config_class.__name__}")
    by_format: dict[str, list[str]] = {}
    for key in CONVERTERS.names():
        fmt, kind = key.split(":", 1)
        by_format.setdefault(fmt, []).append(kind)
    lines.append("import formats (mmer encoders import --format F):")
    lines += [f"  {fmt:<12} {', '.join(sorted(kinds))}" for fmt, kinds in sorted(by_format.items())]
    lines.append("fetchable (mmer encoders fetch NAME):")
    for name, spec in sorted(fetch.KNOWN.items()):
        state = f"fetched: {fetch.source_path(name)}" if fetch.is_fetched(name) else "not fetched"
        lines.append(f"  {name:<20} {spec.format}, {spec.licence}; {state}")
    base = root or store.encoders_dir()
    broken: list = []
    imported = store.list_imported(base, broken)
    lines.append(f"imported ({base}): {len(imported) or 'none'}")
    for path, rec in imported:
        src = rec.get("source", {})
        lines.append(f"  {path.name:<32} {rec['architecture']:<18} "
                     f"{rec.get('parameters', 0) / 1e6:7.2f}M params  from {src.get('format')} "
                     f"sha256 {str(src.get('sha256', ''))[:12]}")
    for path, why in broken:
        lines.append(f"  {path.name:<32} BROKEN: {why} (import it again with --force)")
    partial = sorted(p.name for p in Path(base).glob(".*.partial-*")) if Path(base).is_dir() else []
    if partial:
        lines.append(f"  ({len(partial)} unfinished import director"
                     f"{'y' if len(partial) == 1 else 'ies'} of killed imports: "
                     f"{', '.join(partial)}; the next import to the same name removes them)")
    return "\n".join(lines)
