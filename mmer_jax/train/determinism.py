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


# XLA's CPU code generator emits the widest vector instructions the host offers (and the widest
# vectors change the order of summation in reductions), so the last bits of a CPU run depend on
# the CPU's vector extensions. ``--xla_cpu_max_isa`` caps them; these are its values, narrow
# to wide.
CPU_ISA_LEVELS = ("SSE4_2", "AVX", "AVX2", "AVX512")
_ISA_FLAGS = {"SSE4_2": ("sse4_2",), "AVX": ("avx",), "AVX2": ("avx2", "fma"),
              "AVX512": ("avx512f", "avx512bw", "avx512dq", "avx512vl")}


def cpu_flags() -> tuple[str, list[str]]:
    """The CPU's model name and its vector-extension flags (``avx*``, ``fma``, ``sse4*``, ``amx*``,
    ``f16c``; ``asimd``/``sve`` on Arm) from ``/proc/cpuinfo``; ``("unknown", [])`` elsewhere."""
    model, flags = "unknown", []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model == "unknown":
                    model = value.strip()
                elif key.strip() in ("flags", "Features") and not flags:
                    flags = sorted(x for x in value.split() if x.startswith(
                        ("avx", "fma", "sse4", "amx", "f16c", "asimd", "sve")))
    except OSError:
        import platform

        model = platform.processor() or platform.machine()
    return model, flags


def cpu_isa_levels(flags: list[str] | None = None) -> list[str]:
    """The :data:`CPU_ISA_LEVELS` this CPU supports (all of each level's flags present)."""
    have = set(cpu_flags()[1] if flags is None else flags)
    return [level for level in CPU_ISA_LEVELS if set(_ISA_FLAGS[level]) <= have]


def xla_cpu_max_isa(xla_flags: str | None = None) -> str | None:
    """The ``--xla_cpu_max_isa`` value in ``XLA_FLAGS`` (None when unset: the host's widest)."""
    flags = os.environ.get("XLA_FLAGS", "") if xla_flags is None else xla_flags
    for flag in flags.split():
        if flag.startswith("--xla_cpu_max_isa="):
            return flag.split("=", 1)[1].upper()
    return None


def cpu_environment() -> dict[str, object]:
    """For ``results.json``'s ``environment``: what a CPU run's last bits depend on."""
    model, flags = cpu_flags()
    return {"cpu": model, "cpu_flags": flags, "xla_cpu_max_isa": xla_cpu_max_isa()}
