"""``train.profile_steps``: a ``jax.profiler`` trace of a window of training steps.

``--config.train.profile_steps=10:15`` traces the steps numbered 11 to 15 in ``metrics.jsonl``
(the trace starts once 10 steps are done and stops when the 15th has finished on the device) into
``<workdir>/profile/<variant>/plugins/profile/<timestamp>/``: ``<host>.xplane.pb`` for
TensorBoard's profile plugin (``tensorboard --logdir <workdir>/profile``) and
``perfetto_trace.json.gz`` for https://ui.perfetto.dev. Each step of the window is marked with a
``train`` step annotation (its step number), so the profile's step view lines up with the log.
With several processes each writes its own trace under ``process<i>/``.
"""

from __future__ import annotations

import os
import sys

import jax

from mmer_jax.schema import profile_window


class ProfileSteps:
    """A step hook (``hook(step, state)``) that starts and stops a ``jax.profiler`` trace.

    Attributes:
      start: steps done when the trace starts (A of "A:B").
      stop: the step after which it stops (B of "A:B").
      log_dir: the trace's TensorBoard log directory.
      active: whether the trace is running now.
    """

    def __init__(self, spec: str, log_dir: str, current_step: int):
        """Starts the trace at once when ``current_step`` (the step the run starts or resumes
        from) lies inside the window.

        Args:
          spec: ``train.profile_steps``, "A:B" (0 <= A < B).
          log_dir: where the trace goes (``<workdir>/profile/<variant>``).
          current_step: optimizer steps already taken.

        Raises:
          ValueError: ``spec`` is not a window "A:B".
        """
        window = profile_window(spec)
        if window is None:
            raise ValueError(f"profile_steps={spec!r} is not a window 'A:B'")
        self.start, self.stop = window
        if jax.process_count() > 1:
            log_dir = os.path.join(log_dir, f"process{jax.process_index()}")
        self.log_dir = log_dir
        self.active = False
        if self.start <= current_step < self.stop:
            self._begin()

    def _begin(self) -> None:
        os.makedirs(self.log_dir, exist_ok=True)
        jax.profiler.start_trace(self.log_dir, create_perfetto_trace=True)
        self.active = True

    def in_window(self, step: int) -> bool:
        """Whether the step that takes the state from ``step`` to ``step + 1`` is traced."""
        return self.active and step < self.stop

    def __call__(self, step: int, state) -> None:
        """After step ``step``: starts the trace at ``step == start``, stops it (once ``state``
        is computed) at ``step >= stop``."""
        if not self.active and step == self.start:
            self._begin()
        elif self.active and step >= self.stop:
            jax.block_until_ready(state)
            self.close()

    def close(self) -> None:
        """Stops the trace if it is running (also when a run ends inside the window)."""
        if self.active:
            self.active = False
            jax.profiler.stop_trace()
            print(f"[profile] trace of steps {self.start + 1}..{self.stop} in {self.log_dir}",
                  file=sys.stderr)
