"""Step hooks: work done after some training steps, outside the step itself.

A hook is called as ``hook(step, state)`` after every step of an epoch (``step`` is the number of
steps taken, ``state`` the :class:`~mmer_jax.train.state.TrainState` after it). The trainer builds
only the hooks a config asks for, so an ordinary run checks nothing extra per step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Save = Callable[[int, Any], None]  # (step, state) -> None: writes the `latest` checkpoint


class Interrupted(Exception):
    """The run stopped on purpose after ``train.stop_after_steps`` (a simulated kill).

    The ``latest`` checkpoint holds the last step; running the same command resumes from it.
    """


class StopAfterSteps:
    """``train.stop_after_steps``: saves ``latest`` at that step, then raises :class:`Interrupted`.

    Used by the tests of resume to kill a run at a known step without killing the process.
    """

    def __init__(self, stop_after: int, save_latest: Save):
        """Args:
          stop_after: the step (> 0) after which the run stops.
          save_latest: writes the ``latest`` checkpoint of ``(step, state)``.
        """
        self.stop_after, self.save_latest = stop_after, save_latest

    def __call__(self, step: int, state) -> None:
        """Raises:
          Interrupted: ``step >= stop_after``, after the checkpoint is written.
        """
        if step >= self.stop_after:
            self.save_latest(step, state)
            raise Interrupted(f"stopped after step {step} (train.stop_after_steps)")


class CheckpointEvery:
    """``train.checkpoint_every_steps``: saves ``latest`` every N steps inside an epoch.

    The last step of an epoch is skipped: the epoch's end saves it with the validation result.
    """

    def __init__(self, every: int, steps_per_epoch: int, save_latest: Save):
        """Args:
          every: steps between saves (> 0).
          steps_per_epoch: optimizer steps per epoch.
          save_latest: writes the ``latest`` checkpoint of ``(step, state)``.
        """
        self.every, self.steps_per_epoch, self.save_latest = every, steps_per_epoch, save_latest

    def __call__(self, step: int, state) -> None:
        """Saves ``latest`` when ``step`` is a multiple of ``every`` but not an epoch's end."""
        if step % self.every == 0 and step % self.steps_per_epoch:
            self.save_latest(step, state)
