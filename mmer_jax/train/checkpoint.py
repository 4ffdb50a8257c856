"""Orbax checkpoints: ``latest`` (keep-N, for resuming) and ``best`` (by validation metric).

Each checkpoint holds the train state and a small JSON of loop bookkeeping (epoch, best metric,
history), so resuming restores exactly where the run stopped. Orbax commits a step by renaming a
finished temporary directory, so a run killed mid-save leaves the previous checkpoint intact.

Saves are idempotent: saving a step that already exists replaces it. A run killed between the
epoch-end ``best`` save and the ``latest`` save resumes from the previous ``latest``, replays the
epoch and saves the same ``best`` step again; that must not fail (it used to raise orbax's
``StepAlreadyExistsError`` on this and every later resume).

Restoring does not depend on the topology that saved: every array is restored with a sharding of
the current process (the template's, else one local device), so a run trained on 4 devices is
used for prediction on 1. A step that cannot be read (a truncated or zero-filled file, its
``_METADATA`` missing or empty) raises :class:`CheckpointError` in one line naming the step's
directory and the fault; restoring ``latest`` falls back to the newest intact step instead, with a
one-line warning per step skipped. The skipped step stays on disk until the resumed run reaches
it and saves it again (replacing it). Orbax's asyncio leftovers of a failed read (``Event loop is
closed`` tracebacks, ``Task exception was never retrieved`` logs of its abandoned tasks) are
dropped by a narrow ``sys.unraisablehook`` wrapper and ``asyncio`` logger filter, nothing else.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from typing import Any

import jax
import orbax.checkpoint as ocp

from mmer_jax.errors import CheckpointError

# The JSON files a step needs before any array can be read: the state's tree and the bookkeeping.
_JSON_FILES = ("state/_METADATA", "meta/metadata")


def _manager(directory: str, keep: int) -> ocp.CheckpointManager:
    # A run killed mid-save leaves a temporary directory behind; it is removed when the run
    # resumes (the committed steps are untouched). The handlers are named (not just the items)
    # so the saved tree's metadata can be read before restoring (a restore without template).
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, create=True, enable_async_checkpointing=False,
        cleanup_tmp_directories=True,
    )
    return ocp.CheckpointManager(
        os.path.abspath(directory), options=options,
        item_handlers={"state": ocp.StandardCheckpointHandler(),
                       "meta": ocp.JsonCheckpointHandler()},
    )


def _is_orphaned_loop_callback(unraisable) -> bool:
    """True for TensorStore finishing a read after orbax closed the event loop awaiting it.

    When one array of a restore fails, orbax's ``asyncio.gather`` raises at once and closes its
    loop; the other reads still complete in TensorStore's threads, and each one's
    ``loop.call_soon_threadsafe`` raises ``RuntimeError('Event loop is closed')`` into
    ``sys.unraisablehook`` (38 tracebacks for one bad checkpoint). Their results are unwanted:
    the restore already failed with the first error, which is reported.
    """
    if unraisable.exc_type is not RuntimeError:
        return False
    if str(unraisable.exc_value) != "Event loop is closed":
        return False
    tb = unraisable.exc_traceback
    while tb is not None:
        if tb.tb_frame.f_code.co_name == "call_soon_threadsafe":
            return True
        tb = tb.tb_next
    return False


class _AbandonedOrbaxTasks(logging.Filter):
    """Drops asyncio's reports of the tasks and futures a failed restore abandoned, nothing else.

    The other reads of that ``gather`` may fail too; their tasks and futures are
    garbage-collected later with ``Task exception was never retrieved`` (``Future ...``; or,
    still running when the loop closed, ``Task was destroyed but it is pending!``) logged on the
    ``asyncio`` logger, each with a TensorStore spec. A report is dropped when it names a step
    whose restore failed in this process (:attr:`failed`) or is an orbax task's; the first
    failure is the one reported, as a :class:`CheckpointError`.
    """

    _MESSAGES = ("Task exception was never retrieved", "Future exception was never retrieved",
                 "Task was destroyed but it is pending")

    def __init__(self):
        super().__init__()
        self.failed: set[str] = set()  # step directories, each ending in os.sep

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if not text.startswith(self._MESSAGES):
            return True
        if record.exc_info and record.exc_info[1] is not None:
            text += str(record.exc_info[1])
        return not ("/orbax/checkpoint/" in text or any(d in text for d in self.failed))


_ABANDONED = _AbandonedOrbaxTasks()


def _drop_orphaned_loop_callbacks() -> None:
    """Wraps ``sys.unraisablehook`` (once) so the orphaned callbacks above are dropped (every
    other unraisable exception goes to the hook that was installed before), and filters the
    ``asyncio`` logger's reports of abandoned orbax tasks (once)."""
    asyncio_log = logging.getLogger("asyncio")
    if _ABANDONED not in asyncio_log.filters:
        asyncio_log.addFilter(_ABANDONED)
    previous = sys.unraisablehook
    if getattr(previous, "_mmer_drops_orphaned_loop_callbacks", False):
        return

    def hook(unraisable):
        if not _is_orphaned_loop_callback(unraisable):
            previous(unraisable)

    hook._mmer_drops_orphaned_loop_callbacks = True
    sys.unraisablehook = hook


def _json_fault(step_dir: str) -> str | None:
    """What is wrong with the step's JSON files (missing, empty, zero-filled, not JSON), or None.

    Checked before orbax reads them, so these faults are named exactly.
    """
    for rel in _JSON_FILES:
        path = os.path.join(step_dir, rel)
        if not os.path.isfile(path):
            return f"{rel} is missing"
        with open(path, "rb") as f:
            data = f.read()
        if not data:
            return f"{rel} is empty (0 bytes)"
        if not data.strip(b"\0"):
            return f"{rel} is zero-filled ({len(data)} bytes)"
        try:
            json.loads(data)
        except ValueError as exc:
            return f"{rel} is not valid JSON ({exc})"
    return None


def _fault_of(exc: BaseException, step_dir: str) -> str:
    """One line out of orbax's or TensorStore's error: the file at fault (relative to the step),
    the innermost cause and the array being read, without TensorStore's spec dump.

    Orbax wraps a failed array read in ``Exception("Encountered error while reading array index
    ... <bound method ...spec of TensorStore({...})>.")`` (the ``})>.`` users saw); TensorStore's
    own error, with the file, is its cause.
    """
    chain: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and e not in chain:
        chain.append(e)
        e = e.__cause__ or e.__context__
    named = [e for e in chain if 'local file "' in str(e)]
    inner = named[-1] if named else exc
    text = str(inner).strip()
    # TensorStore appends the JSON specs of every driver it opened ([tensorstore_spec='...']).
    text = re.split(r"\s\[(?:tensorstore_spec|source locations)", text)[0]
    text = text.splitlines()[0] if text else ""
    arrays = re.findall(r'Error reading "([^"/]+)/[^"]*" in OCDBT', text)
    files = list(re.finditer(r'local file "([^"]+)": ', text))
    if files:
        last = files[-1]
        text = f"{os.path.relpath(last.group(1), step_dir)}: {text[last.end():]}"
        if arrays:
            text += f" (reading array {arrays[-1]})"
    elif not isinstance(inner, (OSError, ValueError)) or not text:
        text = f"{type(inner).__name__}: {text}"
    return text if len(text) <= 300 else text[:297] + "..."


def _single_device() -> jax.sharding.Sharding:
    return jax.sharding.SingleDeviceSharding(jax.local_devices()[0])


def _target(abstract_state, saved_tree):
    """The restore target: ``abstract_state``'s shapes, dtypes and shardings, else the saved
    tree's shapes and dtypes on one local device. A leaf without a sharding gets one local
    device too: orbax would otherwise use the saving topology's, which fails on another one."""

    def leaf(x, keep_sharding: bool):
        if not (hasattr(x, "shape") and hasattr(x, "dtype")):
            return x
        # (the saved tree's `sharding` is orbax's record of the saving topology: not used)
        sharding = getattr(x, "sharding", None) if keep_sharding else None
        return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding or _single_device())

    if abstract_state is None:
        return jax.tree.map(lambda x: leaf(x, False), saved_tree)
    return jax.tree.map(lambda x: leaf(x, True), abstract_state)


class Checkpoints:
    """The ``latest`` and ``best`` checkpoints of one variant, under ``<workdir>/ckpt/``.

    Each step is saved synchronously: when :meth:`save` returns the checkpoint is on disk.
    """

    def __init__(self, workdir: str, keep: int = 2):
        """Args:
          workdir: the variant's directory (created if missing).
          keep: how many ``latest`` steps to keep; ``best`` keeps one.
        """
        self.latest = _manager(os.path.join(workdir, "ckpt", "latest"), keep)
        self.best = _manager(os.path.join(workdir, "ckpt", "best"), 1)

    def save(self, which: str, step: int, state, meta: dict[str, Any]) -> None:
        """Writes ``state`` and the JSON-serialisable ``meta`` as step ``step`` of ``which``.

        Args:
          which: "latest" or "best" (anything but "latest" means "best").
          step: the optimizer step; an existing checkpoint of that step is replaced.
          state: the train state pytree.
          meta: loop bookkeeping (epoch, best metric, ...).
        """
        mngr = self.latest if which == "latest" else self.best
        step = int(step)
        if step in mngr.all_steps():  # a replayed step (see the module docstring): replace it
            mngr.delete(step)
        mngr.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)
            ),
            force=True,
        )
        mngr.wait_until_finished()

    def latest_step(self, which: str = "latest") -> int | None:
        """The newest saved step of ``which`` ("latest" or "best"); None when there is none."""
        mngr = self.latest if which == "latest" else self.best
        return mngr.latest_step()

    def restore(self, which: str, abstract_state, step: int | None = None):
        """Returns (state, meta) of checkpoint ``which`` (its newest intact step by default).

        Restoring ``latest`` without ``step`` falls back from a step that cannot be read to the
        next older one, printing one line to stderr per step skipped (which, and why). The
        arrays are placed on the current process's devices whatever topology saved them.

        Args:
          which: "latest" or "best".
          abstract_state: a state with the saved structure, shapes and dtypes (the arrays are
            restored like it, with its shardings; a leaf without one goes to one local device);
            None restores the saved tree as ``jax.Array`` s on one local device (for inspection
            and prediction).
          step: a step to restore instead of the newest; no fallback.

        Raises:
          FileNotFoundError: ``which`` holds no checkpoint.
          CheckpointError: the step cannot be read (for ``latest``: no step can); the message
            names the step's directory and the file at fault.
        """
        mngr = self.latest if which == "latest" else self.best
        if step is not None:
            return self._restore_step(mngr, int(step), abstract_state)
        steps = sorted(mngr.all_steps(), reverse=True)
        if not steps:
            raise FileNotFoundError(f"no {which} checkpoint in {mngr.directory}")
        # `best` keeps one step: there is nothing older to fall back to.
        candidates = steps if which == "latest" else steps[:1]
        skipped = []
        for s in candidates:
            try:
                out = self._restore_step(mngr, s, abstract_state)
            except CheckpointError as exc:
                skipped.append(exc)
                continue
            for exc in skipped:
                print(f"mmer: warning: skipped {exc}; restored step {s} instead",
                      file=sys.stderr)
            return out
        if len(skipped) == 1:
            raise skipped[0]
        raise CheckpointError(
            f"no intact {which} checkpoint in {mngr.directory}: "
            + "; ".join(str(e) for e in skipped)
            + f" (delete {mngr.directory} to train again from step 0)")

    def _restore_step(self, mngr: ocp.CheckpointManager, step: int, abstract_state):
        step_dir = os.path.join(str(mngr.directory), str(step))
        if not os.path.isdir(step_dir):
            raise FileNotFoundError(f"no step {step} in {mngr.directory}")
        fault = _json_fault(step_dir)
        if fault is None:
            _drop_orphaned_loop_callbacks()
            try:
                saved = None if abstract_state is not None else mngr.item_metadata(step)["state"]
                target = _target(abstract_state, None if saved is None else saved.tree)
                out = mngr.restore(
                    step,
                    args=ocp.args.Composite(
                        state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore()
                    ),
                )
            except Exception as exc:  # noqa: BLE001 - orbax and TensorStore raise many kinds
                _ABANDONED.failed.add(os.path.join(step_dir, ""))
                fault = _fault_of(exc, step_dir)
        if fault is not None:
            raise CheckpointError(f"checkpoint {step_dir} cannot be restored: {fault}")
        return out["state"], out["meta"]

    def close(self) -> None:
        """Releases both managers; the object is unusable afterwards."""
        self.latest.close()
        self.best.close()
