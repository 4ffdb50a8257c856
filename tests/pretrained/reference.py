"""Helpers for the parity tests against the reference implementations (transformers, torchvision,
timm, ctranslate2): a reference model saved in its own format, imported through our reader, and
hidden states compared on the valid positions only.

The reference packages are the ``ref`` extra (``pip install -e ".[ref]"``); each test module
calls ``pytest.importorskip`` for the one it needs, so they skip with the reason when it is absent.
"""

from __future__ import annotations

import pathlib

import numpy as np

from mmer_jax.weights import importer, store


def import_dir(fmt: str, src, tmp_path: pathlib.Path, arch: str | None = None):
    """Imports ``src`` through ``mmer encoders import``'s code path and loads it back."""
    out = importer.import_checkpoint(fmt, src, tmp_path / "imported", arch=arch)
    return store.load(out)


def max_abs_diff(ours, ref, valid=None) -> float:
    """max |ours - ref| over the rows ``valid`` marks (bool [B, T]), or everywhere."""
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    d = np.abs(ours - ref)
    if valid is not None:
        d = d[np.asarray(valid, bool)]
    return float(d.max()) if d.size else 0.0


def assert_states_close(ours: tuple, ref: tuple, valid=None, atol: float = 1e-4) -> list[float]:
    """Every hidden state within ``atol``; returns the per-state max differences."""
    assert len(ours) == len(ref), f"{len(ours)} hidden states, reference has {len(ref)}"
    diffs = [max_abs_diff(o, r, valid) for o, r in zip(ours, ref, strict=True)]
    assert max(diffs) <= atol, f"max abs difference per hidden state: {diffs}"
    return diffs
