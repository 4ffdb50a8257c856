"""Timing of jitted functions, several implementations side by side, dispatch overlapped.

A GPU kernel of these sizes runs for about as long as one host dispatch (~10-30 us), so a
figure taken with a sync after every call measures the host, not the kernel. Here each sample
enqueues ``calls_per_sync`` calls back to back and synchronises once, so dispatch overlaps
execution and the per-call figure is device time plus at most 1/calls_per_sync of one dispatch
and sync. :data:`METHOD` states this in every benchmark JSON.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

import jax

CALLS_PER_SYNC = 20


def method(calls_per_sync: int = CALLS_PER_SYNC) -> str:
    """The timing method in words, for the ``timing_method`` field of the benchmark JSON."""
    return (f"wall clock: {calls_per_sync} calls enqueued back to back per sync "
            "(jax.block_until_ready on the last), per-call time = sample / calls; median over "
            "samples; implementations interleaved round-robin; after warm-up (compile) calls")


METHOD = method()


def time_side_by_side(fns: dict[str, Callable], args: tuple, *, warmup: int = 2,
                      repeats: int = 10,
                      calls_per_sync: int = CALLS_PER_SYNC) -> dict[str, float | str]:
    """Median milliseconds per call of each (already jitted) function on the same args.

    Repeats are interleaved round-robin across the implementations, so clock or thermal
    drift during the run hits all of them alike. A function that fails to compile or
    run (e.g. cuDNN on an unsupported shape) maps to its error message instead.

    Args:
        fns: implementation name -> jitted function of ``*args``.
        args: the arguments, already on device.
        warmup: untimed calls per function (the first also compiles).
        repeats: timed samples per function.
        calls_per_sync: calls per sample, enqueued without a sync in between.

    Returns:
        name -> median ms per call, or name -> "error: ..." string.

    Raises:
        ValueError: ``calls_per_sync`` or ``repeats`` is below 1.
        Exception: whatever a function raises in a timed call after its warm-up calls passed.
    """
    if calls_per_sync < 1 or repeats < 1:
        raise ValueError(f"{calls_per_sync=} and {repeats=} must be >= 1")
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
            out = None
            for _ in range(calls_per_sync):
                out = fn(*args)
            jax.block_until_ready(out)
            samples[name].append((time.perf_counter() - start) * 1e3 / calls_per_sync)
    result.update({name: statistics.median(s) for name, s in samples.items()})
    return result
