"""Data-parallel scaling of the real train step over 1, 2, 4, 8 forced CPU devices (or the GPUs).

How to run::

    python benchmarks/scaling.py                         # quickstart, 1/2/4/8 CPU devices
    python benchmarks/scaling.py --devices 1,2 --steps 5 --rounds 1 --out /tmp/s.json  # smoke
    python benchmarks/scaling.py --platform gpu --devices 1,2,4,8   # on a multi-GPU machine

Each device count runs in its own subprocess (``XLA_FLAGS=--xla_force_host_platform_device_count=N``
on CPU), with the config's global batch (``train.batch_size``, the same for every count) split
over an N-device ``data`` mesh, through the config's real ``VariantTrainer.train_step`` (state
replicated, batch sharded, gradients reduced by the collectives XLA inserts). Rounds alternate the
order of the counts (1 2 4 8, then 8 4 2 1, ...) so drift in a shared machine's load hits all.

Per count: the median step time (each step blocked on), examples/s over unblocked steps, and the
communication share, measured two ways (see ``METHOD``): from a profile (the time the devices
spend in collective ops, over the time they are busy) and from an isolated all-reduce of the
gradient bytes. JSON: ``benchmarks/results/scaling-<platform>-<date>.json``.
"""

from __future__ import annotations

import argparse
import datetime
import glob
import gzip
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

METHOD = (
    "step_ms: median over --steps steps of the wall time of one train step, each blocked on "
    "(jax.block_until_ready of its metrics). examples_per_s: global batch x steps / wall time of "
    "--steps unblocked steps (dispatch overlaps compute). comm_share_profile: a jax.profiler trace "
    "of --profile_steps steps; the time in collective thunks (all-reduce, "
    "all-gather, reduce-scatter, collective-permute, all-to-all) over all devices, divided by "
    "the union of the op thunks' intervals on each device's thread, summed over devices "
    "(rendezvous_ms: the collectives' time in their rendezvous). A collective thunk's duration "
    "includes waiting at the rendezvous for the slowest device, so the share counts "
    "synchronisation and load imbalance as communication. comm_share_isolated: the median time "
    "of a jitted all-reduce (psum) of the gradient bytes alone over the same devices, divided "
    "by step_ms (an upper bound for the reduction if nothing overlapped it). collectives: the "
    "all-reduce ops of the compiled step (count and total bytes) read from its HLO."
)
COLLECTIVE = re.compile(r"^(all-reduce|all-gather|reduce-scatter|collective-permute|all-to-all)"
                        r"(-start|-done)?(\.\d+)?$")
# Profiler events that are not op thunks (runtime bookkeeping, Python frames, waits).
NOT_OPS = re.compile(r"^(\$|end: |Wait|\[|Pjit|Common|Thunk|Threadpool|Rendezvous|Handle|"
                     r"Allocate|Parse|Python|Invoke|TfrtCpu|PjRt)")


def hlo_collectives(hlo: str) -> dict:
    """Count and total bytes of the all-reduce ops in a compiled HLO text.

    Args:
      hlo: ``compiled.as_text()``.

    Returns:
      {"all_reduce_ops": int, "all_reduce_bytes": int} (bytes of the reduced operands).
    """
    sizes = {"f32": 4, "s32": 4, "u32": 4, "bf16": 2, "f16": 2, "f64": 8, "s64": 8, "pred": 1}
    ops = nbytes = 0
    for line in hlo.splitlines():
        m = re.search(r"= (\(?[^=]*?\)?) all-reduce(-start)?\(", line)
        if not m:
            continue
        ops += 1
        for dt, dims in re.findall(r"(\w+)\[([\d,]*)\]", m.group(1)):
            n = 1
            for d in filter(None, dims.split(",")):
                n *= int(d)
            nbytes += n * sizes.get(dt, 4)
    return {"all_reduce_ops": ops, "all_reduce_bytes": nbytes}


def _union_ms(intervals: list[tuple[float, float]]) -> float:
    """Total length (ms) of the union of (start_us, end_us) intervals (nested ones count once)."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b > end:
            total += b - max(a, end)
            end = b
    return total / 1e3


def profile_shares(trace_dir: str) -> dict:
    """Collective time over busy time of the devices, from a jax.profiler trace directory.

    Each forced CPU device runs its op thunks on its own thread: per thread, the union of the op
    thunks' intervals is its busy time and the union of the collective thunks' its communication
    time (nested thunks, e.g. a while loop's body, count once). ``rendezvous_ms`` is the part of
    the collectives spent in their rendezvous (waiting for the other devices).

    Returns:
      {"collective_ms", "rendezvous_ms", "busy_ms", "comm_share_profile"}: ms summed over the
      device threads.

    Raises:
      FileNotFoundError: the directory holds no ``*.trace.json.gz``.
    """
    paths = sorted(glob.glob(os.path.join(trace_dir, "**", "*.trace.json.gz"), recursive=True))
    if not paths:
        raise FileNotFoundError(f"no trace under {trace_dir}")
    with gzip.open(paths[-1]) as f:
        events = json.load(f)["traceEvents"]
    busy: dict = {}
    coll: dict = {}
    wait: dict = {}
    for e in events:
        if e.get("ph") != "X" or "dur" not in e:
            continue
        name, key = e.get("name", ""), (e.get("pid"), e.get("tid"))
        iv = (e["ts"], e["ts"] + e["dur"])
        if name == "Rendezvous":
            wait.setdefault(key, []).append(iv)
        elif COLLECTIVE.match(name):
            coll.setdefault(key, []).append(iv)
            busy.setdefault(key, []).append(iv)
        elif not NOT_OPS.match(name) and " " not in name and ":" not in name:
            busy.setdefault(key, []).append(iv)
    c = sum(_union_ms(v) for v in coll.values())
    b = sum(_union_ms(v) for k, v in busy.items() if k in coll or not coll)
    w = sum(_union_ms(v) for k, v in wait.items() if k in coll)
    return {"collective_ms": c, "rendezvous_ms": w, "busy_ms": b,
            "comm_share_profile": c / b if b else 0.0}


def child(args) -> dict:
    """Measures one device count in this process (``--child``); returns its row."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    sys.path.insert(0, REPO)
    from mmer_jax import bench
    from mmer_jax import config as config_lib

    n = jax.device_count()
    cfg = config_lib.load(args.config, list(args.override) + [
        "train.progress=false", f"train.num_devices={n}"])
    workdir = tempfile.mkdtemp(prefix=f"scaling{n}-")
    trainer, _ = bench._primary_trainer(cfg, workdir)
    t0 = time.perf_counter()
    timer = bench._StepTimer(trainer, args.batches)
    warm = time.perf_counter() - t0
    k = len(timer.batches)
    times = []
    for i in range(args.steps):
        t = time.perf_counter()
        timer.state, m = trainer.train_step(timer.state, timer.batches[i % k])
        jax.block_until_ready(m)
        times.append(time.perf_counter() - t)
    rate = timer.rate(args.steps)
    hlo = trainer.train_step.jitted.lower(timer.state, timer.batches[0]).compile().as_text()
    coll = hlo_collectives(hlo)
    prof = {}
    if args.profile_steps:
        trace = tempfile.mkdtemp(prefix="trace-")
        jax.profiler.start_trace(trace)
        for i in range(args.profile_steps):
            timer.state, m = trainer.train_step(timer.state, timer.batches[i % k])
        jax.block_until_ready(m)
        jax.profiler.stop_trace()
        prof = profile_shares(trace)
    n_params = int(sum(x.size for x in jax.tree.leaves(timer.state.params)))
    iso_ms = 0.0
    if n > 1:
        from jax.sharding import NamedSharding
        from jax.sharding import PartitionSpec as P

        mesh = trainer.mesh
        g = jax.device_put(jnp.ones((n, n_params), jnp.float32),
                           NamedSharding(mesh, P("data")))
        psum = jax.jit(lambda x: jnp.sum(x, axis=0), out_shardings=NamedSharding(mesh, P()))
        jax.block_until_ready(psum(g))
        iso = []
        for _ in range(20):
            t = time.perf_counter()
            jax.block_until_ready(psum(g))
            iso.append(time.perf_counter() - t)
        iso_ms = statistics.median(iso) * 1e3
    step_ms = statistics.median(times) * 1e3
    return {
        "devices": n, "platform": jax.default_backend(),
        "global_batch": trainer.global_batch, "per_device_batch": trainer.global_batch // n,
        "step_ms": step_ms, "step_ms_q1_q3": list(np.percentile(np.array(times) * 1e3, [25, 75])),
        "examples_per_s": rate, "warmup_s": warm, "params": n_params,
        **coll, **prof,
        "allreduce_isolated_ms": iso_ms,
        "comm_share_isolated": iso_ms / step_ms if step_ms else 0.0,
    }


def run_count(n: int, args) -> dict:
    """One device count in a subprocess; returns its row (or {"devices": n, "error": ...})."""
    env = dict(os.environ)
    if args.platform == "cpu":
        flags = [f for f in env.get("XLA_FLAGS", "").split()
                 if not f.startswith("--xla_force_host_platform_device_count")]
        env["XLA_FLAGS"] = " ".join(flags + [f"--xla_force_host_platform_device_count={n}"])
        env["JAX_PLATFORMS"] = "cpu"
    else:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(n))
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--config", args.config,
           "--steps", str(args.steps), "--batches", str(args.batches),
           "--profile_steps", str(args.profile_steps)]
    for o in args.override:
        cmd += ["--override", o]
    try:
        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"devices": n, "error": f"timed out after {args.timeout} s"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {"devices": n, "error": (done.stdout + done.stderr)[-1500:]}


def main(argv=None) -> int:
    """Parses flags, measures every device count, prints the table and writes the JSON.

    Returns:
      0, or 1 when a device count failed (its error is in the JSON).

    Raises:
      SystemExit: bad flags.
    """
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="experiments/quickstart.py")
    p.add_argument("--override", action="append", default=[], help="KEY=VALUE (repeatable)")
    p.add_argument("--devices", default="1,2,4,8")
    p.add_argument("--platform", default="cpu", choices=("cpu", "gpu"))
    p.add_argument("--steps", type=int, default=20, help="timed steps per count and round")
    p.add_argument("--batches", type=int, default=4, help="distinct training batches")
    p.add_argument("--profile_steps", type=int, default=3)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--timeout", type=int, default=300, help="seconds per subprocess")
    p.add_argument("--out", default=None)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)), flush=True)
        return 0
    counts = [int(c) for c in args.devices.split(",") if c]
    load_before = os.getloadavg()
    t0 = time.time()
    per: dict[int, list[dict]] = {n: [] for n in counts}
    for r in range(args.rounds):
        for n in (counts if r % 2 == 0 else counts[::-1]):
            row = run_count(n, args)
            per[n].append(row)
            print(f"round {r + 1}: {n} device(s): " + (
                f"{row['step_ms']:.1f} ms/step, {row['examples_per_s']:.1f} examples/s"
                if "error" not in row else "FAILED " + row["error"][-300:]), flush=True)
    rows, failed = [], False
    for n in counts:
        ok = [x for x in per[n] if "error" not in x]
        if not ok:
            rows.append(per[n][0])
            failed = True
            continue
        row = dict(ok[0])
        for key in ("step_ms", "examples_per_s", "comm_share_profile", "comm_share_isolated",
                    "allreduce_isolated_ms", "collective_ms", "rendezvous_ms", "busy_ms"):
            if key in row:
                row[key] = statistics.median([x[key] for x in ok])
                row[f"{key}_rounds"] = [x[key] for x in ok]
        rows.append(row)
    base = next((r for r in rows if "error" not in r), None)
    for r in rows:
        if base and "error" not in r:
            r["speedup_vs_first"] = r["examples_per_s"] / base["examples_per_s"]
    import jax

    date = datetime.date.today().isoformat()
    git = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip()
    record = {
        "what": "scaling", "git": git, "device": args.platform, "jax": jax.__version__,
        "date": date,
        "config": args.config, "overrides": args.override, "cpu_count": os.cpu_count(),
        "method": METHOD, "rounds": args.rounds, "steps": args.steps,
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "wall_s": time.time() - t0,
        "notes": (f"Forced CPU devices are threads of one process sharing this machine's "
                  f"{os.cpu_count()} physical cores (and other jobs: see the load averages), so "
                  "more devices cannot add compute: the table shows the data-parallel "
                  "program's overheads (per-device dispatch, collectives, rendezvous waits), "
                  "not the speed-up real devices would give." if args.platform == "cpu"
                  else ""),
        "rows": rows,
    }
    out = args.out or os.path.join(REPO, "benchmarks", "results",
                                   f"scaling-{args.platform}-{date}.json")
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out, "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    print(f"\n{'devices':>7} {'per-dev batch':>13} {'step ms':>9} {'examples/s':>11} "
          f"{'speed-up':>8} {'comm (profile)':>15} {'comm (isolated)':>16} {'all-reduce':>16}")
    for r in rows:
        if "error" in r:
            print(f"{r['devices']:>7} FAILED")
            continue
        print(f"{r['devices']:>7} {r['per_device_batch']:>13} {r['step_ms']:>9.1f} "
              f"{r['examples_per_s']:>11.1f} {r['speedup_vs_first']:>7.2f}x "
              f"{r.get('comm_share_profile', float('nan')):>14.1%} "
              f"{r['comm_share_isolated']:>15.1%} "
              f"{r['all_reduce_ops']:>4} / {r['all_reduce_bytes'] / 1e6:6.2f} MB")
    print(f"written {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
