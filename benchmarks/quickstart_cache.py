"""Quickstart wall time without and with JAX's persistent compilation cache (issue 30, item 5).

    python3 benchmarks/quickstart_cache.py [--rounds 2] [--out benchmarks/results/...json]

Runs the README's quickstart command at its tiny setting,

    mmer train --config experiments/quickstart.py --workdir W --config.data.config=tiny

(the ``generated_emotion/tiny`` corpus, built once beforehand into a scratch data directory and
not timed), each time in a fresh workdir, as separate processes:

- ``cold``: once, with an empty cache directory (what the first run on a machine pays, plus
  writing the cache);
- then ``rounds`` x (``no_cache``, ``cache``) interleaved: ``MMER_COMPILATION_CACHE=0``, against
  the same command with the cache the cold run filled (the second run of the same command).

Every run records its wall time (process start to exit), the run's own ``timing.wall_s`` from
``results.json``, the 1-minute load average before and after, the most threads the process held,
and the machine's cores; ``uptime`` is recorded around the whole benchmark. The cache lives in a
scratch ``$MMER_CACHE``; nothing is written to ``~/.cache``. On a machine shared with other work
read the ratio with the load beside it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMAND = ["mmer", "train", "--config", "experiments/quickstart.py",
           "--config.data.config=tiny"]


def _threads(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def one_run(kind: str, data_dir: str, cache: str, scratch: str, index: int) -> dict:
    """One quickstart process; ``kind`` is "cold", "cache" or "no_cache"."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JAX_COMPILATION_CACHE", "JAX_PERSISTENT_CACHE"))}
    env.update(MMER_CACHE=cache, MMER_PROGRESS="0")
    if kind == "no_cache":
        env["MMER_COMPILATION_CACHE"] = "0"
    else:
        env.pop("MMER_COMPILATION_CACHE", None)
    workdir = os.path.join(scratch, f"run{index}_{kind}")
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.Popen([*COMMAND, "--workdir", workdir, "--data_dir", data_dir], cwd=REPO,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    most_threads = 0
    while proc.poll() is None:
        most_threads = max(most_threads, _threads(proc.pid))
        time.sleep(0.5)
    wall = time.perf_counter() - t0
    err = proc.stderr.read() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{kind} run {index} failed (rc {proc.returncode}):\n{err[-2000:]}")
    with open(os.path.join(workdir, "results.json")) as f:
        results = json.load(f)
    shutil.rmtree(workdir)
    row = {"kind": kind, "index": index, "wall_s": round(wall, 2),
           "run_wall_s": round(results["timing"]["wall_s"], 2),
           "test_accuracy_fused": results["test"]["accuracy"],
           "load1_before": load_before, "load1_after": os.getloadavg()[0],
           "most_threads": most_threads}
    print(json.dumps(row), flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=2, help="interleaved (no_cache, cache) pairs")
    ap.add_argument("--out", default=os.path.join(
        REPO, "benchmarks", "results",
        f"quickstart-compile-cache-cpu-{datetime.date.today().isoformat()}.json"))
    args = ap.parse_args(argv)
    scratch = tempfile.mkdtemp(prefix="mmer-qs-cache-")
    try:
        data_dir = os.path.join(scratch, "tfds")
        subprocess.run(["mmer", "data", "build", "generated_emotion", "--config", "tiny",
                        "--data_dir", data_dir], cwd=REPO, check=True, capture_output=True)
        cache = os.path.join(scratch, "cache")
        uptime_start = _uptime()
        rows = [one_run("cold", data_dir, cache, scratch, 0)]
        for _ in range(args.rounds):
            for kind in ("no_cache", "cache"):  # A B A B
                rows.append(one_run(kind, data_dir, cache, scratch, len(rows)))
        cache_bytes = sum(os.path.getsize(os.path.join(d, f))
                          for d, _, fs in os.walk(os.path.join(cache, "jax")) for f in fs)
        uptime_end = _uptime()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    def walls(kind):
        return [r["wall_s"] for r in rows if r["kind"] == kind]

    summary = {k: {"median_wall_s": statistics.median(walls(k)), "runs": walls(k)}
               for k in ("cold", "no_cache", "cache")}
    summary["no_cache_over_cache"] = round(
        summary["no_cache"]["median_wall_s"] / summary["cache"]["median_wall_s"], 2)
    import jax

    out = {
        "benchmark": "quickstart wall time without / with the persistent compilation cache",
        "command": " ".join(COMMAND) + " --workdir <fresh> --data_dir <scratch, built first>",
        "protocol": ("one cold-cache run, then rounds x (no_cache, cache) interleaved, each a "
                     "fresh process and workdir; cache = the second and later runs of the same "
                     "command; wall_s from process start to exit"),
        "rounds": args.rounds,
        "rows": rows,
        "summary": summary,
        "cache_bytes": cache_bytes,
        "machine": {"cpu_count": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)),
                    "processor": platform.processor() or platform.machine(),
                    "python": platform.python_version(), "jax": jax.__version__,
                    "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
                    "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", ""),
                    "uptime_start": uptime_start, "uptime_end": uptime_end,
                    "note": "shared machine: other sessions' jobs ran meanwhile (see loads)"},
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps(summary, indent=1))
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
