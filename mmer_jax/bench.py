"""`mmer bench pipeline|train`: input-pipeline throughput against what the train step consumes.

Both are measured in the same process, one after the other, on the same config (the quickstart by
default), so the ratio says whether the host pipeline can keep the step fed on this machine.
Results are printed and written as JSON (benchmarks/results/<what>-<device>-<date>.json).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import time

import jax

from mmer_jax.errors import UsageError


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
        self.state = trainer._init_state()
        self.batches = [
            sh.to_global(b, trainer.mesh)
            for _, b in zip(
                range(4), trainer._host_batches("train", epoch=0, train=True), strict=False
            )
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
    from mmer_jax.data.pipeline import Pipeline
    from mmer_jax.train.loop import VariantTrainer
    from mmer_jax.train.run import primary_variant, variants_of

    name = primary_variant(cfg)
    modalities = variants_of(cfg)[name]
    pipeline = pipeline or Pipeline(cfg.data, modalities, cfg.seed)
    os.makedirs(workdir, exist_ok=True)
    trainer = VariantTrainer(cfg, pipeline, f"bench_{name}{tag}", modalities, workdir)
    return trainer, pipeline


def main(what: str, argv=None) -> int:
    from mmer_jax import config as config_lib
    from mmer_jax.data.pipeline import Pipeline
    from mmer_jax.train.run import primary_variant, variants_of

    p = argparse.ArgumentParser(prog=f"mmer bench {what}")
    p.add_argument("--config", default="experiments/quickstart.py")
    p.add_argument("--out", default=None)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--workdir", default="runs/bench")
    p.add_argument(
        "--compare",
        default=None,
        metavar="KEY=V1,V2[,...]",
        help="train: time the step once per value of one config key, interleaved in one run "
        "(e.g. model.depthwise_impl=shifted,grouped)",
    )
    args, overrides = p.parse_known_args(argv)
    overrides = [o[len("--config.") :] for o in overrides if o.startswith("--config.")]
    if args.compare:
        if what != "train":
            raise UsageError("--compare works with `mmer bench train` only")
        return _compare(args, overrides)
    cfg = config_lib.load(args.config, overrides)
    name = primary_variant(cfg)
    modalities = variants_of(cfg)[name]
    rows = []
    if what == "pipeline":
        import tempfile

        from data_prep import build as build_lib

        with tempfile.TemporaryDirectory() as tmp:  # a fresh build: the builder's real cost
            t0 = time.perf_counter()
            builder = build_lib.build(cfg.data.corpus, cfg.data.get("config") or None, tmp,
                                      cfg.data.get("manual_dir") or None)
            dt = time.perf_counter() - t0
            clips = sum(s.num_examples for s in builder.info.splits.values())
        rows.append({"what": "build", "corpus": cfg.data.corpus, "clips": clips, "seconds": dt,
                     "clips_per_s": clips / dt})
        print(f"build ({cfg.data.corpus}/{cfg.data.get('config')}): {clips} clips in {dt:.1f} s "
              f"= {clips / dt:8.1f} clips/s")
    pipeline = Pipeline(cfg.data, modalities, cfg.seed)
    n = 10 if args.quick else 40
    host_rate = _time_pipeline(pipeline, cfg.train.batch_size, n)
    rows.append(
        {
            "what": "pipeline",
            "corpus": cfg.data.corpus,
            "examples_per_s": host_rate,
            "read_threads": cfg.data.get("read_threads", 2),
        }
    )
    print(
        f"input pipeline ({cfg.data.corpus}, {cfg.data.get('read_threads', 2)} threads): "
        f"{host_rate:8.1f} examples/s"
    )
    if what in ("pipeline", "train"):
        trainer, _ = _primary_trainer(cfg, args.workdir, pipeline=pipeline)
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
    return _write(what, args, rows, overrides)


def _compare(args, overrides, rounds: int = 3) -> int:
    """Train-step examples/s for each value of one key, rounds interleaved so drift in a shared
    machine's load hits every value alike; the ratio to the first value is what to read."""
    from mmer_jax import config as config_lib

    key, _, values = args.compare.partition("=")
    values = [v for v in values.split(",") if v]
    if not key or len(values) < 2:
        raise UsageError(f"--compare {args.compare!r}: expected KEY=V1,V2[,...]")
    timers = {}
    for v in values:
        cfg = config_lib.load(args.config, overrides + [f"{key}={v}"])
        timers[v] = _StepTimer(_primary_trainer(cfg, args.workdir, tag=f"_{v}")[0])
    n = 5 if args.quick else 15
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
    return _write("train-compare", args, rows, overrides)


def _write(what: str, args, rows: list[dict], overrides: list[str]) -> int:
    dev = jax.devices()[0]
    date = datetime.date.today().isoformat()
    out = args.out or os.path.join("benchmarks", "results", f"{what}-{dev.platform}-{date}.json")
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    record = {
        "what": what,
        "device": getattr(dev, "device_kind", dev.platform),
        "device_count": jax.device_count(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "date": date,
        "config": args.config,
        "overrides": overrides,
        "rows": rows,
    }
    with open(out, "w") as f:
        json.dump(record, f, indent=2)
    print(f"written {out}")
    return 0
