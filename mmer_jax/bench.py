"""`mmer bench pipeline|train`: input-pipeline throughput against what the train step consumes.

Both are measured in the same process, one after the other, on the same config (the quickstart by
default), so the ratio says whether the host pipeline can keep the step fed on this machine.
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


def _time_pipeline(pipeline, batch_size: int, n_batches: int) -> float:
    it = pipeline.batches("train", batch_size, epoch=1, train=True)
    next(it)  # first batch pays for thread start-up and cache warm-up
    t0 = time.perf_counter()
    n = 0
    for _ in range(n_batches):
        try:
            next(it)
        except StopIteration:
            it = pipeline.batches("train", batch_size, epoch=2, train=True)
            next(it)
        n += batch_size
    return n / (time.perf_counter() - t0)


class _StepTimer:
    """A trainer's state and a few device batches, every bucket shape compiled before timing, so
    repeated ``rate`` calls (interleaved rounds) pay no initialisation or compilation."""

    def __init__(self, trainer):
        from mmer_jax.train import sharding as sh

        self.trainer = trainer
        self.state = trainer.init_state()
        self.batches = [
            sh.to_global(b, trainer.mesh)
            for _, b in zip(range(4), trainer.batches("train", epoch=0, train=True), strict=False)
        ]
        for b in self.batches:
            self.state, m = trainer.train_step(self.state, b)
        jax.block_until_ready(m)

    def rate(self, n_steps: int) -> float:
        """Train-step examples/s over ``n_steps`` steps."""
        t0 = time.perf_counter()
        for i in range(n_steps):
            self.state, m = self.trainer.train_step(
                self.state, self.batches[i % len(self.batches)]
            )
        jax.block_until_ready(m)
        return n_steps * self.trainer.global_batch / (time.perf_counter() - t0)


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
      what: "pipeline" (a fresh corpus build, the host pipeline and the train step) or "train"
        (the host pipeline and the train step).
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
        import tempfile

        from data_prep import build as build_lib

        with tempfile.TemporaryDirectory() as tmp:  # a fresh build: the builder's real cost
            t0 = time.perf_counter()
            builder = build_lib.build(data.corpus, data.config or None, tmp,
                                      data.manual_dir or None)
            dt = time.perf_counter() - t0
            clips = sum(s.num_examples for s in builder.info.splits.values())
        rows.append({"what": "build", "corpus": data.corpus, "clips": clips, "seconds": dt,
                     "clips_per_s": clips / dt})
        print(f"build ({data.corpus}/{data.config}): {clips} clips in {dt:.1f} s "
              f"= {clips / dt:8.1f} clips/s")
    pipeline = make_pipeline(data, modalities, cfg.seed)
    n = 10 if quick else 40
    host_rate = _time_pipeline(pipeline, cfg.train.batch_size, n)
    rows.append(
        {
            "what": "pipeline",
            "corpus": data.corpus,
            "examples_per_s": host_rate,
            "read_threads": data.read_threads,
        }
    )
    print(
        f"input pipeline ({data.corpus}, {data.read_threads} threads): "
        f"{host_rate:8.1f} examples/s"
    )
    if what in ("pipeline", "train"):
        trainer, _ = _primary_trainer(cfg, opts.workdir, pipeline=pipeline)
        step_rate = _StepTimer(trainer).rate(n)
        rows.append(
            {
                "what": "train_step",
                "variant": name,
                "examples_per_s": step_rate,
                "global_batch": cfg.train.batch_size,
            }
        )
        print(
            f"train step ({name}, batch {cfg.train.batch_size}):      {step_rate:8.1f} examples/s"
        )
        print(
            f"pipeline / step ratio: {host_rate / step_rate:.2f} "
            f"({'keeps up' if host_rate >= step_rate else 'STARVES the step'})"
        )
    return _write(what, opts, rows)


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
