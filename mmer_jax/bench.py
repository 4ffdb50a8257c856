"""`mmer bench pipeline|train`: input-pipeline throughput against what the train step consumes.

Both are measured in the same process, one after the other, on the same config (the quickstart by
default), so the ratio says whether the host pipeline can keep the step fed on this machine. Both
time the batches the config trains on, through its own pipeline (``data.unit``) and train step: a
dialogue config is reported in dialogues/s (batch rows: dialogues or chunks of long ones) and
utterances/s (the real utterances in them), an utterance config in examples/s.
Results are printed and written as JSON (benchmarks/results/<what>-<device>-<date>.json).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import time
from collections.abc import Sequence

import jax
import numpy as np

from mmer_jax.errors import UsageError

DEFAULT_CONFIG = "experiments/quickstart.py"
DEFAULT_WORKDIR = "runs/bench"


@dataclasses.dataclass(frozen=True)
class _Options:
    """The options of one ``mmer bench`` call, defaults filled in (recorded in the JSON)."""

    config: str
    overrides: list[str]
    out: str | None
    quick: bool
    workdir: str


def _counts(batch) -> tuple[int, int]:
    """(real units, real utterances) of a host batch: rows with any weight > 0 and the entries
    with weight > 0 ([B] for utterance batches, [B, U] for dialogue batches)."""
    w = np.asarray(batch["weight"]) > 0
    return int(w.reshape(len(w), -1).any(axis=1).sum()), int(w.sum())


def _unit_names(pipeline) -> tuple[str, str]:
    """(plural unit name, plural utterance name) a pipeline's rates are reported in."""
    return ("dialogues", "utterances") if pipeline.unit == "dialogue" else ("examples", "examples")


def _time_pipeline(pipeline, batch_size: int, n_batches: int) -> tuple[float, float]:
    """(units/s, utterances/s) of the training batches the pipeline produces."""
    it = pipeline.batches("train", batch_size, epoch=1, train=True)
    next(it)  # first batch pays for thread start-up and cache warm-up
    t0 = time.perf_counter()
    units = utts = 0
    for _ in range(n_batches):
        try:
            batch = next(it)
        except StopIteration:
            it = pipeline.batches("train", batch_size, epoch=2, train=True)
            batch = next(it)
        u, n = _counts(batch)
        units, utts = units + u, utts + n
    dt = time.perf_counter() - t0
    return units / dt, utts / dt


class _StepTimer:
    """A trainer's state and a few device batches (the training batches of the config, through
    its pipeline), every bucket shape compiled before timing, so repeated ``rate`` calls
    (interleaved rounds) pay no initialisation or compilation."""

    def __init__(self, trainer, n_batches: int = 8):
        from mmer_jax.train import sharding as sh

        self.trainer = trainer
        self.state = trainer.init_state()
        host = [b for _, b in zip(range(n_batches), trainer.batches("train", epoch=0, train=True),
                                  strict=False)]
        self.counts = [_counts(b) for b in host]
        self.batches = [sh.to_global(b, trainer.mesh) for b in host]
        for b in self.batches:
            self.state, m = trainer.train_step(self.state, b)
        jax.block_until_ready(m)
        self.utterances_per_s: float | None = None

    def rate(self, n_steps: int) -> float:
        """Train-step units/s (examples, or dialogue units) over ``n_steps`` steps; the
        utterances/s of the same steps is left in :attr:`utterances_per_s`."""
        units = utts = 0
        t0 = time.perf_counter()
        for i in range(n_steps):
            k = i % len(self.batches)
            self.state, m = self.trainer.train_step(self.state, self.batches[k])
            units, utts = units + self.counts[k][0], utts + self.counts[k][1]
        jax.block_until_ready(m)
        dt = time.perf_counter() - t0
        self.utterances_per_s = utts / dt
        return units / dt


def _primary_trainer(cfg, workdir: str, tag: str = "", pipeline=None):
    """(trainer of the config's primary variant, its pipeline)."""
    from mmer_jax.data.pipeline import make_pipeline
    from mmer_jax.train.loop import VariantTrainer
    from mmer_jax.train.run import primary_variant, variants_of

    name = primary_variant(cfg)
    modalities = variants_of(cfg)[name]
    pipeline = pipeline or make_pipeline(cfg.data, modalities, cfg.seed)
    os.makedirs(workdir, exist_ok=True)
    trainer = VariantTrainer(cfg, pipeline, f"bench_{name}{tag}", modalities, workdir)
    return trainer, pipeline


def run(
    what: str,
    *,
    config: str | None = None,
    overrides: Sequence[str] = (),
    out: str | None = None,
    quick: bool = False,
    workdir: str | None = None,
    compare: str | None = None,
) -> int:
    """``mmer bench pipeline|train``: measures, prints and writes the JSON record.

    Args:
      what: "pipeline" (fresh corpus builds at 1 and 2 workers, interleaved; the host pipeline
        and the train step) or "train" (the host pipeline and the train step).
      config: the experiment config file; default ``experiments/quickstart.py``.
      overrides: ``KEY=VALUE`` config overrides (the text after ``--config.``).
      out: the JSON file; default ``benchmarks/results/<what>-<platform>-<date>.json``.
      quick: fewer batches and steps (10 instead of 40; 5 instead of 15 per compared value).
      workdir: scratch directory for the trainer; default ``runs/bench``.
      compare: ``KEY=V1,V2[,...]``: time the train step once per value of one config key, in
        interleaved rounds (``what`` must be "train").

    Returns:
      0 (the process exit code).

    Raises:
      UsageError: ``compare`` with ``what != "train"``, a malformed ``compare``, or a config
        error.
    """
    from mmer_jax import config as config_lib
    from mmer_jax.data.pipeline import make_pipeline
    from mmer_jax.schema import DataConfig, from_section
    from mmer_jax.train.run import primary_variant, variants_of

    opts = _Options(config or DEFAULT_CONFIG, list(overrides), out, quick,
                    workdir or DEFAULT_WORKDIR)
    if compare:
        if what != "train":
            raise UsageError("--compare works with `mmer bench train` only")
        return _compare(opts, compare)
    cfg = config_lib.load(opts.config, opts.overrides)
    data = from_section(DataConfig, cfg.data, "data")
    name = primary_variant(cfg)
    modalities = variants_of(cfg)[name]
    rows = []
    if what == "pipeline":
        rows += _time_builds(data, rounds=1 if quick else 2)
    pipeline = make_pipeline(data, modalities, cfg.seed)
    unit, utt = _unit_names(pipeline)
    n = 10 if quick else 40
    host_rate, host_utts = _time_pipeline(pipeline, cfg.train.batch_size, n)
    rows.append(
        {
            "what": "pipeline",
            "corpus": data.corpus,
            "unit": unit,
            "examples_per_s": host_rate,
            f"{unit}_per_s": host_rate,
            f"{utt}_per_s": host_utts,
            "read_threads": data.read_threads,
        }
    )
    also = f" = {host_utts:8.1f} {utt}/s" if unit != utt else ""
    print(
        f"input pipeline ({data.corpus}, {pipeline.unit} batches, {data.read_threads} threads): "
        f"{host_rate:8.1f} {unit}/s{also}"
    )
    if what in ("pipeline", "train"):
        trainer, _ = _primary_trainer(cfg, opts.workdir, pipeline=pipeline)
        timer = _StepTimer(trainer)
        step_rate = timer.rate(n)
        rows.append(
            {
                "what": "train_step",
                "variant": name,
                "unit": unit,
                "examples_per_s": step_rate,
                f"{unit}_per_s": step_rate,
                f"{utt}_per_s": timer.utterances_per_s,
                "global_batch": cfg.train.batch_size,
            }
        )
        also = f" = {timer.utterances_per_s:8.1f} {utt}/s" if unit != utt else ""
        print(
            f"train step ({name}, batch {cfg.train.batch_size} {unit}): {step_rate:8.1f} "
            f"{unit}/s{also}"
        )
        print(
            f"pipeline / step ratio: {host_rate / step_rate:.2f} "
            f"({'keeps up' if host_rate >= step_rate else 'STARVES the step'})"
        )
    return _write(what, opts, rows)


def _time_builds(data, rounds: int, workers: Sequence[int] = (1, 2)) -> list[dict]:
    """Fresh builds of the run's corpus at each worker count (``--num_workers``), interleaved
    (1, 2, 1, 2, ...) so drift in a shared machine's load hits every count alike; one row per
    count with the mean clips/s and its ratio to the first count."""
    import tempfile

    from data_prep import build as build_lib

    times: dict[int, list[float]] = {w: [] for w in workers}
    clips = 0
    for _ in range(rounds):
        for w in workers:
            with tempfile.TemporaryDirectory() as tmp:  # a fresh build: the builder's real cost
                t0 = time.perf_counter()
                builder = build_lib.build(data.corpus, data.config or None, tmp,
                                          data.manual_dir or None, num_workers=w)
                times[w].append(time.perf_counter() - t0)
                clips = sum(s.num_examples for s in builder.info.splits.values())
    rows = []
    base = clips * rounds / sum(times[workers[0]])
    for w in workers:
        dt = sum(times[w]) / rounds
        rate = clips / dt
        rows.append({"what": "build", "corpus": data.corpus, "config": data.config,
                     "num_workers": w, "clips": clips, "seconds": dt, "clips_per_s": rate,
                     "rounds_s": times[w], "ratio_to_first": rate / base,
                     "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                     else os.cpu_count()})
        print(f"build ({data.corpus}/{data.config}, {w} worker{'s' * (w > 1)}): {clips} clips "
              f"in {dt:.1f} s = {rate:8.1f} clips/s ({rate / base:.2f}x {workers[0]})")
    return rows


def _compare(opts: _Options, compare: str, rounds: int = 3) -> int:
    """Train-step examples/s for each value of one key, rounds interleaved so drift in a shared
    machine's load hits every value alike; the ratio to the first value is what to read."""
    from mmer_jax import config as config_lib

    key, _, values = compare.partition("=")
    values = [v for v in values.split(",") if v]
    if not key or len(values) < 2:
        raise UsageError(f"--compare {compare!r}: expected KEY=V1,V2[,...]")
    timers = {}
    for v in values:
        cfg = config_lib.load(opts.config, opts.overrides + [f"{key}={v}"])
        timers[v] = _StepTimer(_primary_trainer(cfg, opts.workdir, tag=f"_{v}")[0])
    n = 5 if opts.quick else 15
    rates: dict[str, list[float]] = {v: [] for v in values}
    for _ in range(rounds):
        for v, timer in timers.items():
            rates[v].append(timer.rate(n))
    rows = []
    base = sum(rates[values[0]]) / rounds
    for v in values:
        mean = sum(rates[v]) / rounds
        rows.append({"what": "train_step", "key": key, "value": v, "examples_per_s": mean,
                     "rounds": rates[v], "ratio_to_first": mean / base,
                     "global_batch": timers[v].trainer.global_batch})
        print(f"{key}={v:<12} {mean:8.1f} examples/s  ({mean / base:.2f}x {values[0]})")
    return _write("train-compare", opts, rows)


def _write(what: str, opts: _Options, rows: list[dict]) -> int:
    dev = jax.devices()[0]
    date = datetime.date.today().isoformat()
    out = opts.out or os.path.join("benchmarks", "results", f"{what}-{dev.platform}-{date}.json")
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    record = {
        "what": what,
        "device": getattr(dev, "device_kind", dev.platform),
        "device_count": jax.device_count(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "date": date,
        "config": opts.config,
        "overrides": opts.overrides,
        "rows": rows,
    }
    with open(out, "w") as f:
        json.dump(record, f, indent=2)
    print(f"written {out}")
    return 0
