"""Orbax checkpoints: ``latest`` (keep-N, for resuming) and ``best`` (by validation metric).

Each checkpoint holds the train state and a small JSON of loop bookkeeping (epoch, best metric,
history), so resuming restores exactly where the run stopped. Orbax commits a step by renaming a
finished temporary directory, so a run killed mid-save leaves the previous checkpoint intact.

Saves are idempotent: saving a step that already exists replaces it. A run killed between the
epoch-end ``best`` save and the ``latest`` save resumes from the previous ``latest``, replays the
epoch and saves the same ``best`` step again; that must not fail (it used to raise orbax's
``StepAlreadyExistsError`` on this and every later resume).
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp


def _manager(directory: str, keep: int) -> ocp.CheckpointManager:
    # A run killed mid-save leaves a temporary directory behind; it is removed when the run
    # resumes (the committed steps are untouched).
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, create=True, enable_async_checkpointing=False,
        cleanup_tmp_directories=True,
    )
    return ocp.CheckpointManager(
        os.path.abspath(directory), options=options, item_names=("state", "meta")
    )


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
        """Returns (state, meta) of checkpoint ``which`` (its newest step by default).

        Args:
          which: "latest" or "best".
          abstract_state: a state with the saved structure, shapes and dtypes (the arrays are
            restored like it); None restores host numpy arrays as saved (for inspection).
          step: a step to restore instead of the newest.

        Raises:
          FileNotFoundError: ``which`` holds no checkpoint.
        """
        mngr = self.latest if which == "latest" else self.best
        step = mngr.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no {which} checkpoint in {mngr.directory}")
        # Without a target, arrays come back as saved (host numpy), for inspection and tests.
        target = (
            None
            if abstract_state is None
            else jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract_state)
        )
        out = mngr.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore()
            ),
        )
        return out["state"], out["meta"]

    def close(self) -> None:
        """Releases both managers; the object is unusable afterwards."""
        self.latest.close()
        self.best.close()
