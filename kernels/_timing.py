"""Wall-clock timing of jitted functions, several implementations side by side."""

from __future__ import annotations

import statistics
import time
from typing import Callable

import jax


def time_side_by_side(fns: dict[str, Callable], args: tuple, *, warmup: int = 2,
                      repeats: int = 10) -> dict[str, float | str]:
    """Median milliseconds per call of each (already jitted) function on the same args.

    Repeats are interleaved round-robin across the implementations, so clock or thermal
    drift during the run hits all of them alike. A function that fails to compile or
    run (e.g. cuDNN on an unsupported shape) maps to its error message instead.

    Args:
        fns: implementation name -> jitted function of ``*args``.
        args: the arguments, already on device.
        warmup: untimed calls per function (the first also compiles).
        repeats: timed calls per function.

    Returns:
        name -> median ms, or name -> "error: ..." string.

    Raises:
        Exception: whatever a function raises in a timed call after its warm-up calls passed.
    """
    live, result = {}, {}
    for name, fn in fns.items():
        try:
            for _ in range(warmup):
                jax.block_until_ready(fn(*args))
            live[name] = fn
        except Exception as e:  # noqa: BLE001 -- any backend refusal is a table entry
            result[name] = f"error: {type(e).__name__}: {str(e).splitlines()[0][:160]}"
    samples = {name: [] for name in live}
    for _ in range(repeats):
        for name, fn in live.items():
            start = time.perf_counter()
            jax.block_until_ready(fn(*args))
            samples[name].append((time.perf_counter() - start) * 1e3)
    result.update({name: statistics.median(s) for name, s in samples.items()})
    return result
