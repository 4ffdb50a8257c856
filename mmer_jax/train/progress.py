"""What a run shows and records while it trains: ``metrics.jsonl``, TensorBoard event files,
throughput and a progress bar.

None of this changes what is trained; the trainer calls it between steps.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import weakref

import jax

TENSORBOARD_DIR = "tensorboard"  # <workdir>/tensorboard/<variant>/: one TensorBoard run each


def append_jsonl(path: str, record: dict) -> None:
    """Appends ``record`` as one JSON line to ``path`` (created if missing)."""
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def truncate_jsonl(path: str, variant: str, after_step: int) -> None:
    """Drops the records of ``variant`` whose ``step`` is newer than ``after_step``.

    A resumed run replays the steps after its checkpoint, and their records with them; ``-1``
    drops every record of the variant (a fresh start). The file is replaced atomically; a
    missing file is left missing.

    Raises:
      json.JSONDecodeError: a non-blank line of ``path`` is not JSON.
      KeyError: a record of ``variant`` has no ``step``.
    """
    if not os.path.exists(path):
        return
    with open(path) as f:
        lines = [ln for ln in f if ln.strip()]

    def replayed(record: dict) -> bool:
        return record.get("variant") == variant and record["step"] > after_step

    keep = [ln for ln in lines if not replayed(json.loads(ln))]
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.writelines(keep)
    os.replace(tmp, path)


class MetricsLog:
    """The records of one variant in the run's ``metrics.jsonl`` (read by the report's curves),
    also written as TensorBoard scalars to ``<workdir>/tensorboard/<variant>/`` (tensorboardX,
    process 0 only): tag ``<split>/<key>`` (``train/loss``, ``validation/uar``, ...) at the
    record's step, so ``tensorboard --logdir runs/`` compares variants and runs."""

    def __init__(self, path: str, variant: str, tensorboard: bool = True):
        """Args:
          path: the run's ``metrics.jsonl``.
          variant: the variant name every record carries.
          tensorboard: also write TensorBoard event files (on process 0).
        """
        self.path, self.variant = path, variant
        from mmer_jax.train.report_common import slug

        self.tensorboard_dir = os.path.join(os.path.dirname(os.path.abspath(path)),
                                            TENSORBOARD_DIR, slug(variant))
        self._tensorboard = tensorboard and jax.process_index() == 0
        self._writer = None
        self._purge_step: int | None = None

    def _tb(self):
        if self._writer is None and self._tensorboard:
            SummaryWriter = _summary_writer_class()
            # purge_step: TensorBoard drops the events of an earlier, interrupted attempt from
            # this step on (their records are dropped from metrics.jsonl by :meth:`truncate`).
            self._writer = SummaryWriter(self.tensorboard_dir, purge_step=self._purge_step,
                                         flush_secs=30)
            weakref.finalize(self, self._writer.close)
        return self._writer

    def append(self, split: str, step: int, epoch: int, **values) -> None:
        """Appends ``{"variant", "split", "step", "epoch", **values}`` (epoch counts from 1) and
        writes each finite numeric value as the TensorBoard scalar ``<split>/<key>``."""
        record = {"variant": self.variant, "split": split, "step": step, "epoch": epoch}
        append_jsonl(self.path, {**record, **values})
        writer = self._tb()
        if writer is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) \
                        and math.isfinite(value):
                    writer.add_scalar(f"{split}/{key}", float(value), step)
            writer.flush()

    def truncate(self, after_step: int) -> None:
        """Drops this variant's records after ``after_step`` (see :func:`truncate_jsonl`); the
        TensorBoard events after it are purged when the next event is written."""
        truncate_jsonl(self.path, self.variant, after_step)
        if self._writer is None:
            self._purge_step = after_step + 1

    def close(self) -> None:
        """Flushes and closes the TensorBoard writer (appending again reopens it)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self._purge_step = None


def _summary_writer_class():
    """tensorboardX's ``SummaryWriter``, imported without torch.

    tensorboardX's writer imports torch whenever it is installed, only to accept torch tensors
    (25 s on a cold 2-core machine); scalars need none of it. Unless torch is already loaded,
    ``sys.modules["torch"] = None`` makes that optional import fail as if torch were absent, for
    the duration of this import only.
    """
    import sys

    blocked = "torch" not in sys.modules
    if blocked:
        sys.modules["torch"] = None  # type: ignore[assignment]
    try:
        from tensorboardX import SummaryWriter
    finally:
        if blocked and sys.modules.get("torch", 0) is None:
            del sys.modules["torch"]
    return SummaryWriter


class Throughput:
    """Training examples per second, excluding the first step of the process (it compiles).

    Call :meth:`start_epoch`, then :meth:`step` after every step, then :meth:`end_epoch`. Only
    time spent in epochs counts (not validation).
    """

    def __init__(self):
        self.wall_s = 0.0  # seconds of timed training, summed over epochs
        self.examples = 0  # examples trained in that time
        self.processes = 1  # processes (this one and those resumed from) the totals cover
        self._compiled = False
        self._t0 = time.perf_counter()
        self._n = 0

    def start_epoch(self) -> None:
        """Starts the clock of an epoch."""
        self._t0, self._n = time.perf_counter(), 0

    def step(self, state, n_examples: int) -> None:
        """Counts one step of ``n_examples``; the first step of the process restarts the clock.

        Args:
          state: the step's output; waited for after the first step only.
          n_examples: the global batch size.
        """
        if not self._compiled:
            jax.block_until_ready(state)
            self._compiled = True
            self._t0 = time.perf_counter()
        else:
            self._n += n_examples

    def epoch_rate(self) -> float | None:
        """Examples/s of the epoch so far (steps dispatched, not necessarily finished)."""
        dt = time.perf_counter() - self._t0
        return self._n / dt if self._n and dt > 0 else None

    def end_epoch(self, state) -> None:
        """Waits for ``state`` and adds the epoch's time and examples to the totals."""
        jax.block_until_ready(state)
        self.wall_s += time.perf_counter() - self._t0
        self.examples += self._n

    @property
    def examples_per_s(self) -> float | None:
        """Examples/s over every finished epoch (of earlier processes too, after
        :meth:`carry_over`); None before any time was measured."""
        return (self.examples / self.wall_s) if self.wall_s else None

    def totals(self) -> dict[str, float | int]:
        """``{"examples", "wall_s", "processes"}`` of the finished epochs so far, to be saved
        with a checkpoint so a resumed run reports the rate of the whole run."""
        return {"examples": self.examples, "wall_s": self.wall_s,
                "processes": self.processes}

    def carry_over(self, totals: dict | None) -> None:
        """Adds an interrupted process's :meth:`totals` (None: a checkpoint written before they
        were saved, so only this process is measured and :attr:`processes` stays 1).

        An interrupted epoch is timed only in the process that finishes it: its steps before
        the interruption are in neither count, so the rate stays examples over their time."""
        if totals:
            self.examples += int(totals["examples"])
            self.wall_s += float(totals["wall_s"])
            self.processes += int(totals.get("processes", 1))


def on_terminal(stream=None) -> bool:
    """Whether ``stream`` (default stderr) is a terminal; bars are drawn only there, so a log file
    gets the epoch lines and no carriage-return updates. ``MMER_PROGRESS=1`` forces bars on,
    ``MMER_PROGRESS=0`` off."""
    forced = os.environ.get("MMER_PROGRESS")
    if forced in ("0", "1"):
        return forced == "1"
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def progress_bar(total: int, initial: int, desc: str, enabled: bool):
    """A tqdm bar on stderr, shown on process 0 only, and only when stderr is a terminal
    (:func:`on_terminal`).

    Args:
      total: steps of the whole run.
      initial: steps already done (a resumed run).
      desc: the label at the bar's left.
      enabled: False gives a silent bar (``train.progress``).

    Returns:
      The ``tqdm`` object (``update``, ``set_postfix``, ``write``, ``close``).
    """
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        dynamic_ncols=True,
        leave=False,
        disable=not enabled or not on_terminal() or jax.process_index() != 0,
        file=sys.stderr,
    )
