"""Seeds and folds of a reproduction as independent jobs.

``mmer reproduce ... --launcher NAME``:

- ``inline`` (default): one run after another in this process;
- ``local``: each seed (and fold) run in its own process on this machine, through submitit's
  local executor, at most ``--jobs`` at once;
- ``slurm``: each run a SLURM job (a job array) through submitit, with ``--partition``,
  ``--gpus-per-job``, ``--cpus-per-job`` and ``--timeout-min``.

Every job is an ordinary ``mmer train`` run in its own directory, so each is resumable: a job
killed by a time limit (or a crash) resumes from its checkpoints when the same command is run
again, and finished runs are read back, never retrained. The report is written only once every
job has finished, from the runs' own ``results.json``. Job logs (stdout, stderr, the pickled
call) go to ``<workdir>/<system>/<corpus>/jobs/``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Sequence

from mmer_jax.errors import RunError, UsageError

LAUNCHERS = ("inline", "local", "slurm")


@dataclasses.dataclass(frozen=True)
class LaunchOptions:
    """How ``mmer reproduce`` runs its seed/fold jobs (see the module docstring).

    Attributes:
      launcher: one of :data:`LAUNCHERS`.
      jobs: ``local``: runs at once (0: all); ``slurm``: the job array's parallelism (0: no cap).
      partition: ``slurm``: the partition (empty: the cluster's default).
      gpus_per_job, cpus_per_job: ``slurm`` resources of one run (0: not requested).
      timeout_min: wall-clock limit of one job, minutes.
    """

    launcher: str = "inline"
    jobs: int = 0
    partition: str = ""
    gpus_per_job: int = 0
    cpus_per_job: int = 0
    timeout_min: int = 240

    def __post_init__(self):
        if self.launcher not in LAUNCHERS:
            raise UsageError(f"--launcher {self.launcher!r}: expected one of "
                             f"{', '.join(LAUNCHERS)}")
        for name in ("jobs", "gpus_per_job", "cpus_per_job"):
            if getattr(self, name) < 0:
                raise UsageError(f"--{name.replace('_', '-')} must be >= 0")
        if self.timeout_min < 1:
            raise UsageError("--timeout-min must be >= 1")


def train_job(cfg, workdir: str) -> str:
    """The body of one job: trains (or resumes) the run of ``cfg`` in ``workdir``.

    Args:
      cfg: the run's ConfigDict (seed and fold already set).
      workdir: the run directory.

    Returns:
      The path of the run's ``results.json``.

    Raises:
      UsageError, RunError: as :func:`mmer_jax.train.run.run`.
    """
    from mmer_jax.train.run import run

    run(cfg, workdir)
    return os.path.join(workdir, "results.json")


def read_results(workdir: str) -> dict:
    """A finished run's ``results.json`` as a dict, with ``_workdir`` added.

    Raises:
      RunError: the file is missing or not JSON.
    """
    path = os.path.join(workdir, "results.json")
    try:
        with open(path) as f:
            res = json.load(f)
    except (OSError, ValueError) as e:
        raise RunError(f"{path}: cannot read the run's results ({e})") from None
    res["_workdir"] = workdir
    return res


def _prepare_data(jobs: Sequence[tuple], log) -> None:
    """Builds each corpus the jobs read (once, here) before any job starts: jobs that each found
    it missing would build it at the same time into the same directory."""
    from mmer_jax.data.sources import open_builder
    from mmer_jax.schema import DataConfig, from_section

    seen = set()
    for cfg, _ in jobs:
        data = from_section(DataConfig, cfg.data, "data")
        key = (data.corpus, data.config, data.data_dir, data.manual_dir)
        if key not in seen:
            seen.add(key)
            builder = open_builder(data)
            log(f"data: {data.corpus}/{data.config} ready in {builder.data_dir}")


def run_jobs(jobs: Sequence[tuple], options: LaunchOptions, folder: str, log=print) -> None:
    """Runs every ``(cfg, workdir)`` of ``jobs`` to completion with ``options.launcher``.

    Args:
      jobs: the runs still to train (finished ones are left out by the caller).
      options: the launcher and its resources.
      folder: where submitit keeps its job files (unused ``inline``).
      log: a one-line logger.

    Raises:
      UsageError: submitit is not installed (``pip install -e ".[launch]"``).
      RunError: a job failed; the message names its run directory and its log file.
    """
    if not jobs:
        return
    if options.launcher == "inline":
        for cfg, workdir in jobs:
            train_job(cfg, workdir)
        return
    _prepare_data(jobs, log)
    try:
        import submitit
    except ImportError:
        raise UsageError(f"--launcher {options.launcher} needs submitit: "
                         "pip install -e \".[launch]\"") from None
    executor = submitit.AutoExecutor(folder=folder, cluster=options.launcher)
    params: dict = {"timeout_min": options.timeout_min, "name": "mmer"}
    if options.launcher == "slurm":
        if options.partition:
            params["slurm_partition"] = options.partition
        if options.gpus_per_job:
            params["gpus_per_node"] = options.gpus_per_job
        if options.cpus_per_job:
            params["cpus_per_task"] = options.cpus_per_job
        if options.jobs:
            params["slurm_array_parallelism"] = options.jobs
    executor.update_parameters(**params)
    # The local executor starts everything it is given: submit in waves of --jobs.
    wave = len(jobs) if options.launcher == "slurm" or not options.jobs else options.jobs
    for start in range(0, len(jobs), wave):
        part = list(jobs[start:start + wave])
        with executor.batch():
            submitted = [executor.submit(train_job, cfg, workdir) for cfg, workdir in part]
        for job, (_, workdir) in zip(submitted, part, strict=True):
            log(f"{workdir}: job {job.job_id} ({options.launcher})")
        for job, (_, workdir) in zip(submitted, part, strict=True):
            try:
                job.result()
            except Exception as e:  # submitit wraps the job's own exception and traceback
                raise RunError(f"{workdir}: job {job.job_id} failed: {_cause(e)} (log: "
                               f"{job.paths.stderr}); run the command again to resume") from None


_ERROR_LINE = re.compile(r"^[\w.]*(Error|Exception|Interrupt)\b.*")


def _cause(e: Exception) -> str:
    """The job's own exception line ("UsageError: ...") from submitit's failure text."""
    lines = [ln.strip() for ln in str(e).splitlines()]
    found = [ln for ln in lines if _ERROR_LINE.match(ln)]
    return found[-1] if found else type(e).__name__
