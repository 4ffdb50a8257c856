"""Imported pretrained encoders that experiment configs name by default.

An experiment's ``data.encoder`` is a directory written by ``mmer encoders import|fetch``; this
finds the default one in the cache (``$MMER_CACHE/encoders``, default ``~/.cache/mmer``) so a
config works after ``mmer encoders fetch whisper-base`` with nothing else set.
``MMER_ENCODER`` (a directory) overrides it, as does ``--config.data.encoder=DIR``.
"""

from __future__ import annotations

import os

from mmer_jax.weights.store import encoders_dir


def imported(name: str) -> str:
    """``$MMER_ENCODER``, else the import ``<cache>/encoders/<name>-<sha12>`` (the newest when
    several), else the path it would have (a run then stops on it with a one-line error saying
    how to import it)."""
    if os.environ.get("MMER_ENCODER"):
        return os.path.expanduser(os.environ["MMER_ENCODER"])
    root = encoders_dir()
    found = sorted(root.glob(f"{name}-*/encoder.json"), key=lambda p: p.stat().st_mtime)
    return str(found[-1].parent) if found else str(root / f"{name}-<run `mmer encoders fetch "
                                                              f"{name}`>")
