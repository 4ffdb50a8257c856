"""Helpers shared by the kernels: masks, padding, dispatch and the tuned-block table.

Imports jax only, so ``mmer_kernels`` works without flax or mmer_jax.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

import jax
import jax.numpy as jnp

# A large finite negative logit. Finite (not -inf) so that masked logits never produce
# inf - inf = NaN in the online softmax; masked probabilities are zeroed explicitly anyway.
NEG_INF = -0.7 * float(jnp.finfo(jnp.float32).max)

IMPLEMENTATIONS = (None, "auto", "pallas", "xla")
# What a tuning-table entry may name as the fastest ("implementation" field).
TABLE_IMPLEMENTATIONS = ("pallas", "cudnn", "xla")
TUNED_BLOCKS_PATH = os.path.join(os.path.dirname(__file__), "tuned_blocks.json")


def next_pow2(n: int) -> int:
    """Smallest power of two >= n (and >= 1)."""
    return 1 if n <= 1 else 1 << (int(n) - 1).bit_length()


def round_up(n: int, m: int) -> int:
    """Smallest multiple of m that is >= n."""
    return -(-n // m) * m


# Programs a fused attention backward aims at (one per SM of an H100/H200: 132): fewer
# (batch, head) pairs than this split the key tiles into groups, each with its own dq slice.
TARGET_PROGRAMS = 132
# At most this many float32 dq slices (memory: MAX_KEY_GROUPS times a float32 copy of q).
MAX_KEY_GROUPS = 16


def key_groups(batch: int, heads: int, key_tiles: int) -> int:
    """G, the key-tile groups of a fused attention backward (grid G x B x H).

    Each group owns a float32 dq slice the caller sums, so G trades memory (G copies of dq) for
    parallelism: enough programs to fill the GPU, never more groups than key tiles.

    Args:
        batch, heads: B and H of the call (per device).
        key_tiles: number of key tiles, ceil(Lk / block).

    Returns:
        An int in 1..max(1, min(key_tiles, MAX_KEY_GROUPS)).
    """
    return max(1, min(key_tiles, MAX_KEY_GROUPS, -(-TARGET_PROGRAMS // max(1, batch * heads))))


def resolve_mask(lengths, mask, *, batch: int, seq_len: int, name: str) -> jax.Array:
    """Turns optional lengths [B] or a boolean mask [B, L] into a boolean mask [B, L].

    Args:
        lengths: int array [B] of valid prefix lengths, or None.
        mask: bool array [B, L] (True = valid), or None.
        batch: B.
        seq_len: L.
        name: argument prefix for error messages ("q_", "kv_" or "").

    Returns:
        bool [B, L]; all True when both are None.

    Raises:
        ValueError: both are given, or mask is not [B, L], or lengths is not [B].
    """
    check_mask_args(lengths, mask, batch=batch, seq_len=seq_len, name=name)
    if mask is not None:
        return mask.astype(bool)
    if lengths is not None:
        return jnp.arange(seq_len)[None, :] < lengths[:, None]
    return jnp.ones((batch, seq_len), bool)


def check_mask_args(lengths, mask, *, batch: int, seq_len: int, name: str) -> None:
    """Validates optional lengths [B] / mask [B, L] (the checks of :func:`resolve_mask`).

    Raises:
        ValueError: both are given, or mask is not [B, L], or lengths is not [B].
    """
    if lengths is not None and mask is not None:
        raise ValueError(f"give either {name}lengths or {name}mask, not both")
    if mask is not None and tuple(mask.shape) != (batch, seq_len):
        raise ValueError(f"{name}mask.shape={tuple(mask.shape)} must be {(batch, seq_len)=}")
    if lengths is not None and tuple(lengths.shape) != (batch,):
        raise ValueError(f"{name}lengths.shape={tuple(lengths.shape)} must be ({batch=},)")


def mask_bound(mask: jax.Array) -> jax.Array:
    """Index one past the last valid position of each row: int32 [B] from bool [B, L].

    Kernels loop only up to this bound, so fully padded tail blocks cost nothing
    even when the mask is not a prefix mask.
    """
    pos = jnp.arange(1, mask.shape[1] + 1, dtype=jnp.int32)
    return jnp.max(jnp.where(mask, pos, 0), axis=1).astype(jnp.int32)


def use_pallas(implementation: str | None, interpret: bool) -> bool:
    """Decides between the Pallas kernel and the XLA reference.

    Args:
        implementation: None or "auto" (Pallas on GPU), "pallas" or "xla" (the ops resolve
            "auto" from the tuning table first, see :func:`pick_implementation`).
        interpret: run the Pallas kernel in interpret mode (any backend).

    Returns:
        True for the Pallas kernel.

    Raises:
        ValueError: ``implementation`` is not one of None, "auto", "pallas", "xla";
            ``interpret=True`` with ``implementation="xla"``; ``implementation="pallas"`` on a
            non-GPU backend without ``interpret``.
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"{implementation=} must be one of {IMPLEMENTATIONS}")
    if interpret:
        if implementation == "xla":
            raise ValueError(
                "interpret=True runs the Pallas kernel; it contradicts implementation='xla'")
        return True
    if implementation == "xla":
        return False
    on_gpu = jax.default_backend() == "gpu"
    if implementation == "pallas" and not on_gpu:
        raise ValueError(
            f"implementation='pallas' needs a GPU (backend is {jax.default_backend()!r}); "
            "pass interpret=True to run the kernel in interpret mode (a model's option: "
            "implementation='interpret')")
    return on_gpu


@functools.lru_cache(maxsize=1)
def _load_table(path: str, mtime: float) -> dict[str, Any]:
    del mtime  # Only part of the cache key, so an edited file is re-read.
    with open(path) as f:
        return json.load(f)


def tuned_entry(op: str, key: str, path: str | None = None) -> dict[str, Any] | None:
    """Looks up ``key`` (exact match) in the ``op`` section of tuned_blocks.json.

    The table is re-read when its modification time changes. It never raises: an unreadable
    or malformed table counts as empty, so a broken table cannot break a model.

    Args:
        op: "attention" or "dynamic_conv".
        key: from the op's ``tuning_key``.
        path: the table (default: ``TUNED_BLOCKS_PATH``, read at call time so tests can patch
            it).

    Returns:
        The entry's "blocks" dict, or None when the table or the key is absent.
    """
    path = TUNED_BLOCKS_PATH if path is None else path  # read at call time (tests patch it)
    if not os.path.exists(path):
        return None
    try:
        table = _load_table(path, os.path.getmtime(path))
    except (OSError, ValueError):
        return None  # A broken table must never break the model; fall back to defaults.
    section = table.get(op) if isinstance(table, dict) else None
    entry = section.get(key) if isinstance(section, dict) else None
    return entry.get("blocks") if isinstance(entry, dict) and "blocks" in entry else entry


def tuned_record(op: str, key: str, path: str | None = None) -> dict[str, Any] | None:
    """The whole entry of ``key`` in the ``op`` section of the table (blocks, ms, implementation,
    times_ms), or None; never raises (see :func:`tuned_entry`)."""
    path = TUNED_BLOCKS_PATH if path is None else path
    if not os.path.exists(path):
        return None
    try:
        table = _load_table(path, os.path.getmtime(path))
    except (OSError, ValueError):
        return None
    section = table.get(op) if isinstance(table, dict) else None
    entry = section.get(key) if isinstance(section, dict) else None
    return entry if isinstance(entry, dict) else None


def pick_implementation(op: str, key: str, eligible: tuple[str, ...], *,
                        on_gpu: bool | None = None) -> str:
    """What ``implementation=None``/"auto" runs: the fastest eligible one the table recorded.

    The autotuner times the Pallas kernel, cuDNN (attention) and XLA on a shape bucket and
    records ``"implementation"`` (the winner) and ``"times_ms"`` (all of them) in the entry.

    Args:
        op: "attention" or "dynamic_conv".
        key: the call's tuning key (its shape bucket and device kind).
        eligible: the implementations this call can run ("cudnn" only where its restrictions
            hold), in order of preference when the table says nothing.
        on_gpu: whether the backend is a GPU (default: ``jax.default_backend() == "gpu"``).

    Returns:
        "xla" off GPU (the Pallas kernel runs off GPU only in interpret mode, which is slow);
        on GPU the eligible implementation with the least recorded time, else the recorded
        winner when eligible, else ``eligible[0]`` (the safe default: no entry, an unreadable
        table or an ineligible winner).
    """
    on_gpu = jax.default_backend() == "gpu" if on_gpu is None else on_gpu
    if not on_gpu:
        return "xla"
    entry = tuned_record(op, key) or {}
    times = entry.get("times_ms")
    if isinstance(times, dict):
        ok = {k: v for k, v in times.items() if k in eligible and isinstance(v, (int, float))}
        if ok:
            return min(ok, key=ok.get)
    winner = entry.get("implementation")
    return winner if winner in eligible else eligible[0]


def device_kind() -> str:
    """Device kind of the default device, e.g. 'NVIDIA H100 80GB HBM3' or 'cpu'."""
    return jax.devices()[0].device_kind
