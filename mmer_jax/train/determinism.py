"""``train.deterministic``: XLA's deterministic GPU ops, set before JAX starts its backend.

XLA reads ``XLA_FLAGS`` once, when the first backend is created, so the flags must be in the
environment before any JAX computation (or device query) of the process. ``mmer train`` calls
:func:`enable_deterministic_ops` at the start of the run; a process whose backend already runs
without the flags gets a :class:`~mmer_jax.errors.UsageError` naming the key (set the flags in
the environment yourself in that case, e.g. ``XLA_FLAGS="--xla_gpu_deterministic_ops=true
--xla_gpu_autotune_level=0"``).

* ``--xla_gpu_deterministic_ops=true``: no GPU op that accumulates with atomics (scatter-add,
  some reductions and convolution backward passes use deterministic algorithms instead).
* ``--xla_gpu_autotune_level=0``: no autotuning, whose choice of kernels depends on timings and
  so can differ from run to run.

Both slow a GPU run down; on CPU they have no effect (XLA's CPU backend accepts and ignores
them).
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

from mmer_jax.errors import UsageError

DETERMINISTIC_FLAGS = ("--xla_gpu_deterministic_ops=true", "--xla_gpu_autotune_level=0")


def _backend_started() -> bool:
    """Whether this process's JAX backend already exists (then XLA_FLAGS has been read)."""
    from jax._src import xla_bridge

    started = getattr(xla_bridge, "backends_are_initialized", None)
    return bool(started()) if started is not None else bool(getattr(xla_bridge, "_backends", {}))


def missing_flags(xla_flags: str) -> list[str]:
    """The :data:`DETERMINISTIC_FLAGS` an ``XLA_FLAGS`` value lacks (a flag given with another
    value counts as missing)."""
    present = xla_flags.split()
    return [f for f in DETERMINISTIC_FLAGS if f not in present]


def enable_deterministic_ops(environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Adds :data:`DETERMINISTIC_FLAGS` to ``XLA_FLAGS`` (replacing other values of the same
    flags), before JAX's backend starts.

    Args:
      environ: the environment to change (default ``os.environ``).

    Returns:
      The flags added; ``[]`` when ``XLA_FLAGS`` already held them.

    Raises:
      UsageError: a flag is missing and the backend already started in this process (XLA has
        read ``XLA_FLAGS``; changing it now would do nothing).
    """
    env = os.environ if environ is None else environ
    current = env.get("XLA_FLAGS", "")
    missing = missing_flags(current)
    if not missing:
        return []
    if env is os.environ and _backend_started():
        raise UsageError(
            "config key 'train.deterministic': JAX's backend already started in this process "
            f"without {' '.join(missing)} in XLA_FLAGS; set them in the environment before "
            "starting Python (or before any JAX call)"
        )
    names = {f.split("=", 1)[0] for f in DETERMINISTIC_FLAGS}
    kept = [f for f in current.split() if f.split("=", 1)[0] not in names]
    env["XLA_FLAGS"] = " ".join(kept + list(DETERMINISTIC_FLAGS))
    return missing
