"""Timing of jitted functions, several implementations side by side, dispatch overlapped.

A GPU kernel of these sizes runs for about as long as one host dispatch (~10-30 us), so a
figure taken with a sync after every call measures the host, not the kernel. Here each sample
enqueues ``calls_per_sync`` calls back to back and synchronises once, so dispatch overlaps
execution and the per-call figure is device time plus at most 1/calls_per_sync of one dispatch
and sync; :func:`dispatch_floor` measures that floor itself (a trivial program timed the same
way), and the benchmarks report it beside their rows. Consecutive calls take their inputs in
turn from copies at different addresses (:func:`rotated`) whose total exceeds twice the largest
L2 of the GPUs in use (60 MB on an H200), so no call finds its inputs in L2 from the call before.
All candidates are compiled first, in parallel threads (XLA and Triton compile outside the GIL).
:data:`METHOD` states this in every benchmark JSON.
"""

from __future__ import annotations

import concurrent.futures
import os
import statistics
import time
from typing import Callable

import jax

CALLS_PER_SYNC = 20
L2_BYTES = 64 << 20  # above the H100's 50 MB and the H200's 60 MB of L2
MAX_COPIES = 16


def method(calls_per_sync: int = CALLS_PER_SYNC) -> str:
    """The timing method in words, for the ``timing_method`` field of the benchmark JSON."""
    return (f"wall clock: {calls_per_sync} calls enqueued back to back per sync "
            "(jax.block_until_ready on the last), per-call time = sample / calls; median over "
            "samples; implementations interleaved round-robin; after warm-up (compile, all "
            "candidates compiled first in parallel threads) calls; consecutive calls read "
            f"rotated input copies totalling >= {2 * L2_BYTES >> 20} MiB (or {MAX_COPIES} "
            "copies), so inputs are L2-cold; the dispatch floor (a trivial jitted program timed "
            "the same way) is reported beside the rows")


def _nbytes(args) -> int:
    return sum(getattr(x, "nbytes", 0) for x in jax.tree.leaves(args))


def rotated(args: tuple, min_bytes: int = 2 * L2_BYTES, max_copies: int = MAX_COPIES) -> list:
    """Copies of ``args`` at distinct device addresses, enough that cycling through them reads
    at least ``min_bytes`` before an input repeats (so it is out of L2 by then).

    Args:
        args: the arguments (a tuple of arrays; ``None`` leaves allowed).
        min_bytes: bytes one cycle must cover; default twice :data:`L2_BYTES`.
        max_copies: at most this many sets (memory), the first being ``args`` itself.

    Returns:
        list of argument tuples, ``args`` first.

    Raises:
        ValueError: ``max_copies`` is below 1.
    """
    if max_copies < 1:
        raise ValueError(f"{max_copies=} must be >= 1")
    n = max(1, min(max_copies, -(-min_bytes // max(_nbytes(args), 1))))
    copy = lambda x: x if x is None else jax.numpy.array(x, copy=True)  # noqa: E731
    return [args] + [jax.tree.map(copy, args) for _ in range(n - 1)]


def compile_all(fns: dict[str, Callable], args: tuple, workers: int | None = None) -> dict:
    """Compiles every jitted function for ``args`` in parallel threads.

    Returns:
        name -> compiled executable (callable like the function on arguments of the same
        shapes), or -> "error: ..." string where lowering or compiling failed; a function
        without ``.lower`` is passed through as it is.
    """
    def one(fn):
        if not hasattr(fn, "lower"):
            return fn
        try:
            return fn.lower(*args).compile()
        except Exception as e:  # noqa: BLE001 -- a refusal is a table entry
            return f"error: {type(e).__name__}: {str(e).splitlines()[0][:160]}"

    workers = workers or max(1, min(len(fns), os.cpu_count() or 1, 8))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return dict(zip(fns, pool.map(one, fns.values()), strict=True))


def dispatch_floor(calls_per_sync: int = CALLS_PER_SYNC, repeats: int = 20) -> float:
    """Median milliseconds per call of a trivial jitted program (one float32 added to), timed
    like the benchmarks: the per-call time no kernel can go under on this host and device."""
    x = jax.numpy.ones((1,), jax.numpy.float32)
    return time_side_by_side({"floor": jax.jit(lambda x: x + 1.0)}, (x,), repeats=repeats,
                             calls_per_sync=calls_per_sync, rotate=False)["floor"]


METHOD = method()


def time_side_by_side(fns: dict[str, Callable], args: tuple, *, warmup: int = 2,
                      repeats: int = 10, calls_per_sync: int = CALLS_PER_SYNC,
                      rotate: bool = True) -> dict[str, float | str]:
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
        rotate: consecutive calls read :func:`rotated` copies of ``args`` (L2-cold inputs).

    Returns:
        name -> median ms per call, or name -> "error: ..." string.

    Raises:
        ValueError: ``calls_per_sync`` or ``repeats`` is below 1.
        Exception: whatever a function raises in a timed call after its warm-up calls passed.
    """
    if calls_per_sync < 1 or repeats < 1:
        raise ValueError(f"{calls_per_sync=} and {repeats=} must be >= 1")
    sets = rotated(args) if rotate else [args]
    live, result = {}, {}
    for name, fn in compile_all(fns, args).items():
        if isinstance(fn, str):
            result[name] = fn
            continue
        try:
            for i in range(warmup):
                jax.block_until_ready(fn(*sets[i % len(sets)]))
            live[name] = fn
        except Exception as e:  # noqa: BLE001 -- any backend refusal is a table entry
            result[name] = f"error: {type(e).__name__}: {str(e).splitlines()[0][:160]}"
    samples = {name: [] for name in live}
    k = 0
    for _ in range(repeats):
        for name, fn in live.items():
            start = time.perf_counter()
            out = None
            for _ in range(calls_per_sync):
                out = fn(*sets[k % len(sets)])
                k += 1
            jax.block_until_ready(out)
            samples[name].append((time.perf_counter() - start) * 1e3 / calls_per_sync)
    result.update({name: statistics.median(s) for name, s in samples.items()})
    return result
