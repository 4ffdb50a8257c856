"""A build's per-file work (decoding, resampling, face detection) spread over worker processes.

:func:`ordered_map` runs a picklable top-level function over a builder's items and yields the
results **in the items' order**, whatever the number of workers. A builder's parent process keeps
everything with an order or a side effect (the build report, skips, the examples TFDS writes), so
a build is byte-identical for any ``num_workers``: the same array_record files and the same
``build_report.json``. The functions themselves must be deterministic (seeded, no global state).

Workers are started with ``forkserver`` (``spawn`` where it does not exist), never ``fork``: the
build may run inside a process that has imported jax (``mmer train`` building a missing corpus,
``mmer bench pipeline``), and forking a process with jax's (and XLA's) threads running can
deadlock the child. A forkserver is one fresh interpreter that forks the workers, so each starts
cheaply and clean. The work functions live in modules that do not import TensorFlow Datasets
(``data_prep._common.clips``, ``data_prep.generated.examples``), so a worker only imports numpy,
soundfile, soxr, PyAV and OpenCV.

At most ``4 × workers`` items are in flight, so memory stays bounded whatever the corpus size.

Progress: a tqdm bar with clips/s and the ETA, on a terminal only (``sys.stderr.isatty()``);
``MMER_PROGRESS=1`` / ``0`` forces it on or off.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from data_prep._common.media import MediaError

T = TypeVar("T")


class Failed:
    """The result of an item whose work raised :class:`MediaError` (the file is skipped)."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __reduce__(self):
        return (Failed, (self.reason,))

    def __repr__(self) -> str:
        return f"Failed({self.reason!r})"


def show_progress() -> bool:
    """Whether to draw progress bars: ``MMER_PROGRESS`` (``1``/``0``) or stderr is a terminal."""
    forced = os.environ.get("MMER_PROGRESS")
    if forced in ("0", "1"):
        return forced == "1"
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def resolve_workers(num_workers: int | None) -> int:
    """``None``/1 -> 1 (in-process), ``0`` -> one per CPU core, else ``num_workers``.

    Raises:
      ValueError: a negative count.
    """
    if num_workers is None:
        return 1
    n = int(num_workers)
    if n < 0:
        raise ValueError(f"num_workers={n} must be >= 0 (0: one per CPU core)")
    if n == 0:
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                   else os.cpu_count() or 1)
    return n


def _context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _run_chunk(fn: Callable[[Any], Any], chunk: Sequence[Any]) -> list[Any]:
    out = []
    for item in chunk:
        try:
            out.append(fn(item))
        except MediaError as exc:
            out.append(Failed(str(exc)))
    return out


def ordered_map(fn: Callable[[Any], T], items: Iterable[Any], num_workers: int = 1, *,
                desc: str = "", unit: str = "clip", chunksize: int = 1
                ) -> Iterator[T | Failed]:
    """Yields ``fn(item)`` for each item, in order; a :class:`MediaError` yields :class:`Failed`.

    Args:
      fn: a picklable top-level function of one picklable item (for ``num_workers > 1``).
      items: the work, in the order the results are wanted.
      num_workers: 1 runs ``fn`` in this process; more use that many worker processes.
      desc: the progress bar's label (e.g. ``emodb/default train``).
      unit: what one item is, for the bar's rate (``clip`` -> clips/s).
      chunksize: items sent to a worker at once (for cheap items, to save round trips).

    Other exceptions propagate (from a worker, with its traceback attached).
    """
    items = list(items)
    bar = _bar(len(items), desc, unit)
    try:
        if num_workers <= 1 or len(items) <= 1:
            for item in items:
                yield from _run_chunk(fn, [item])
                bar.update(1)
            return
        yield from _parallel(fn, items, num_workers, max(1, chunksize), bar)
    finally:
        bar.close()


_POOL: dict[str, Any] = {}  # the pool of the build in progress: {"workers": n, "pool": executor}
_ATEXIT: list[bool] = []


def _pool(workers: int):
    """One process pool, kept across the splits of a build (starting workers costs ~1 s each:
    a fresh interpreter importing numpy, soxr, PyAV, ...); :func:`shutdown` ends it."""
    from concurrent.futures import ProcessPoolExecutor

    if _POOL and (_POOL["workers"] != workers or getattr(_POOL["pool"], "_broken", False)):
        shutdown()
    if not _POOL:
        if not _ATEXIT:
            import atexit

            atexit.register(shutdown)
            _ATEXIT.append(True)
        _POOL.update(workers=workers, pool=ProcessPoolExecutor(max_workers=workers,
                                                                mp_context=_context()))
    return _POOL["pool"]


def shutdown() -> None:
    """Stops the worker processes (``data_prep.build.build`` calls it when a build ends)."""
    pool = _POOL.pop("pool", None)
    _POOL.clear()
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


def _parallel(fn, items: list, num_workers: int, chunksize: int, bar) -> Iterator[Any]:
    chunks = [items[i:i + chunksize] for i in range(0, len(items), chunksize)]
    pool = _pool(num_workers)
    pending: collections.deque = collections.deque()
    todo = iter(chunks)
    try:
        for chunk in todo:  # fill the window
            pending.append((len(chunk), pool.submit(_run_chunk, fn, chunk)))
            if len(pending) >= 4 * num_workers:
                break
        while pending:
            n, fut = pending.popleft()
            results = fut.result()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append((len(nxt), pool.submit(_run_chunk, fn, nxt)))
            yield from results
            bar.update(n)
    finally:
        # An early stop (an error while writing) must not leave workers decoding the rest.
        for _, fut in pending:
            fut.cancel()


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(total: int, desc: str, unit: str):
    if not show_progress() or total == 0:
        return _NoBar()
    from tqdm.auto import tqdm

    # The rate (clips/s) and the remaining time come from tqdm's default format.
    return tqdm(total=total, desc=desc or None, unit=f" {unit}s" if unit else "it",
                unit_scale=False, leave=False, dynamic_ncols=True, mininterval=0.5,
                file=sys.stderr)
