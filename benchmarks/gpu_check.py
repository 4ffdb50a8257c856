"""One-shot GPU check that fits a 15-minute lease: every GPU figure the project claims, one command.

``benchmarks/gpu_check.sh`` runs this with ``python3`` under a hard ``timeout``. The parent
imports no jax (it never takes the GPU's memory); each step is a child process started with
``XLA_PYTHON_CLIENT_PREALLOCATE=false``, killed at its time budget (a step's unspent time passes
to the steps after it; ``--budget`` caps the whole), and the summary
``gpu-check-<device>-<date>.json`` is rewritten as each step ends, so a timeout keeps what
finished. Steps, most valuable first (:data:`STEPS`):

1. ``probe``: versions, the device, its memory.
2. ``gpu_tests``: the ``gpu``-marked kernel tests, compiled on the GPU, with
   ``MMER_REQUIRE_GPU=1`` (tests/conftest.py): a skipped GPU test is a failure, and a step that
   ran none fails.
3. ``peaks``: measured limits: matrix-product TFLOP/s per dtype (bfloat16, float32 at XLA's
   default precision, float32 at full precision) on random data, copy GB/s, and the dispatch
   floor (per-call time of a trivial jitted program: ``mmer_kernels._timing.dispatch_floor``).
4. ``pretrained_encoders``: Whisper base and a WavLM-base-sized encoder, forward and backward,
   mmer_jax (XLA and the Pallas attention kernel) against transformers' PyTorch eager.
5. ``bench``: the kernel benchmark on a representative shape set (``mmer_kernels.bench --set
   gpu-check``: compilation in parallel, L2-cold rotated inputs), each row read against the
   measured peak of its own dtype.
6. ``train_compare_torch``: mmer_jax vs PyTorch training throughput on generated batches of the
   real configs' layout (jax/flax/optax and torch only).
7. ``ssl_finetune``: the ``ssl_finetune`` train step (Whisper base), float32 and bfloat16.
8. ``autotune_attention`` / ``autotune_dynamic_conv``: the tuner on the emotion shapes with
   padded inputs as they come, a cut candidate set compiled in parallel.

``--dry-run`` (or no GPU) runs every step on the CPU at smoke sizes, so the script itself is
tested anywhere: ``gpu_tests`` then fails, as it must without a GPU (``expected_without_gpu``).
``--steps a,b`` runs only those (a rerun of what failed). Exit code 0 when every step ran to its
end (a step's failure is recorded in the JSON, not raised); 1 when a step timed out.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable or "python3"

# name: (GPU budget s, CPU dry-run budget s). Their sum on the GPU (480 s) and gpu_check.sh's
# timeout (510 s) leave a 15-minute lease ~5 minutes for the machine's start, the transfers and
# a rerun of a failed step (--steps).
STEPS = {
    "probe": (20, 60),
    "gpu_tests": (110, 120),
    "peaks": (30, 90),
    "pretrained_encoders": (100, 240),
    "bench": (80, 180),
    "train_compare_torch": (50, 400),
    "ssl_finetune": (50, 240),
    "autotune_attention": (25, 120),
    "autotune_dynamic_conv": (15, 120),
}
# A steady value of the summary, rewritten after every step.
_SUMMARY: dict = {}
_SCRATCH = tempfile.mkdtemp(prefix="mmer-gpu-check-")


def _child_env(extra: dict | None = None) -> dict:
    env = {**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false", "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH")) if p)
    return {**env, **(extra or {})}


def _run(cmd: list[str], timeout: float, env: dict | None = None, tail: int = 12) -> dict:
    """Runs one step's command from the repository root within ``timeout`` seconds:
    {"status": "passed" | "rc N" | "timed out after T s", "tail": its last output lines}."""
    try:
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                              timeout=max(timeout, 1), env=env or _child_env())
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"") + (e.stderr or b"")
        out = out.decode(errors="replace") if isinstance(out, bytes) else out
        return {"status": f"timed out after {timeout:.0f} s",
                "tail": out.strip().splitlines()[-tail:]}
    return {"status": "passed" if done.returncode == 0 else f"rc {done.returncode}",
            "tail": (done.stdout + done.stderr).strip().splitlines()[-tail:]}


# --- what the child steps compute (they import jax; the parent does not) ---------------------

def probe() -> dict:
    """Versions of the stack, the default backend, its devices and memory."""
    import importlib.metadata as md

    import jax

    versions = {}
    for name in ("jax", "jaxlib", "flax", "optax", "numpy", "torch", "transformers", "triton",
                 "ml_collections"):
        try:
            versions[name] = md.version(name.replace("_", "-"))
        except md.PackageNotFoundError:
            versions[name] = None
    dev = jax.devices()[0]
    stats = dev.memory_stats() or {}
    return {"backend": jax.default_backend(), "device": dev.device_kind,
            "device_count": jax.device_count(), "python": sys.version.split()[0],
            "versions": versions, "bytes_limit": stats.get("bytes_limit"),
            "preallocate": os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE")}


def peaks(dry_run: bool) -> dict:
    """Measured limits the benchmark rows are read against: matrix-product TFLOP/s per dtype
    on random data, copy GB/s (bytes read + written), the dispatch floor (ms per call)."""
    import jax
    import jax.numpy as jnp

    from mmer_kernels._timing import METHOD, dispatch_floor, time_side_by_side

    n = 256 if dry_run else 8192
    key = jax.random.PRNGKey(0)
    out = {"matmul_n": n, "timing_method": METHOD}
    for name, dtype, precision in (("bfloat16", jnp.bfloat16, None),
                                   ("float32", jnp.float32, None),  # XLA default (TF32 on GPU)
                                   ("float32_highest", jnp.float32, "highest")):
        a = jax.random.normal(key, (n, n), dtype)
        b = jax.random.normal(jax.random.fold_in(key, 1), (n, n), dtype)
        mm = jax.jit(lambda a, b, p=precision: jnp.dot(a, b, precision=p))
        ms = time_side_by_side({"mm": mm}, (a, b), repeats=5, calls_per_sync=5)["mm"]
        out[f"{name}_matmul_tflops"] = round(2 * n**3 / ms / 1e9, 2)
    m = (1 << 20) if dry_run else (1 << 28)  # float32 elements: 4 MiB / 1 GiB, beyond L2
    x = jax.random.normal(key, (m,), jnp.float32)
    ms = time_side_by_side({"copy": jax.jit(lambda x: x * 2.0)}, (x,), repeats=5)["copy"]
    out.update(copy_gbps=round(2 * 4 * m / ms / 1e6, 1), copy_elements=m,
               dispatch_floor_ms=round(dispatch_floor(), 5))
    return out


def _step_main(name: str, dry_run: bool, result: str) -> int:
    fn = {"probe": probe, "peaks": lambda: peaks(dry_run)}[name]
    with open(result, "w") as f:
        json.dump(fn(), f, indent=1)
    return 0


# --- the parent ------------------------------------------------------------------------------

def _pytest_counts(tail: list[str]) -> dict:
    counts = {}
    for line in tail[-3:]:
        for n, what in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected)", line):
            counts[what.rstrip("s") if what.startswith("error") else what] = int(n)
    return counts


def step_command(name: str, dry: bool, out: str, slug: str, date: str, summary: str):
    """(command, environment, JSON file the step writes or None) of step ``name``."""
    me = os.path.abspath(__file__)
    bench_dir = os.path.join(REPO, "benchmarks")
    if name in ("probe", "peaks"):
        # Their results go into the summary; the files stay out of --out (the device tool
        # returns at most 8 files).
        cmd = [PY, me, "--step", name, "--result", os.path.join(_SCRATCH, f"{name}.json")]
        return cmd + (["--dry-run"] if dry else []), _child_env(), None
    if name == "gpu_tests":
        cmd = [PY, "-m", "pytest", "tests/kernels", "-m", "gpu", "-q", "-p", "no:cacheprovider",
               "-rfE", "-n", "0" if dry else "4"]
        return cmd, _child_env({"MMER_REQUIRE_GPU": "1"}), None
    path = os.path.join(out, f"{name.replace('_', '-')}-{slug}-{date}.json")
    if name == "pretrained_encoders":
        cmd = [PY, os.path.join(bench_dir, "pretrained_encoders.py"), "--out", path,
               "--sides", "mmer_jax_xla,mmer_jax_pallas,torch_eager"]
        cmd += (["--quick", "--device", "cpu", "--threads", "2", "--sides",
                 "mmer_jax_xla,torch_eager"] if dry else
                ["--device", "gpu", "--rounds", "3", "--calls", "3"])
        return cmd, _child_env(), path
    if name == "bench":
        path = os.path.join(out, f"kernels-{slug}-{date}.json")
        cmd = [PY, "-m", "mmer_kernels.bench", "--out", path, "--peaks", summary]
        return cmd + (["--quick"] if dry else ["--set", "gpu-check"]), _child_env(), path
    if name == "train_compare_torch":
        cmd = [PY, os.path.join(bench_dir, "train_compare_torch.py"), "--out", path]
        cmd += (["--device", "cpu", "--quick", "--rounds", "1", "--batches", "1", "--threads",
                 "all", "--frameworks", "mmer_jax,torch_eager"] if dry else
                ["--device", "cuda", "--rounds", "3", "--batches", "2", "--frameworks",
                 "mmer_jax,torch_eager"])
        return cmd, _child_env(), path
    if name == "ssl_finetune":
        cmd = [PY, os.path.join(bench_dir, "ssl_finetune_step.py"), "--out", path]
        cmd += ["--quick", "--device", "cpu"] if dry else ["--device", "gpu", "--steps", "10"]
        return cmd, _child_env(), path
    if name.startswith("autotune_"):
        table = os.path.join(out, f"tuned-{slug}-{date}.json")
        dims = (["attention", "32", "300", "300", "8", "64"] if name == "autotune_attention"
                else ["dynamic_conv", "32", "300", "512", "8", "7"])
        cmd = [PY, "-m", "mmer_kernels.autotune", *dims, "bfloat16", "--table", table,
               "--pad", "0.4", "--max-candidates", "12"]
        return cmd + (["--dry-run"] if dry else []), _child_env(), table
    raise ValueError(f"unknown step {name!r}; steps: {', '.join(STEPS)}")


def _write(path: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(_SUMMARY, f, indent=1, default=str)
        f.write("\n")
    os.replace(tmp, path)


def main(argv=None) -> int:
    """Runs the steps (module docstring); returns 0, or 1 when a step timed out.

    Raises:
        SystemExit: bad arguments (an unknown step).
        OSError: ``--out`` cannot be written.
    """
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", action="store_true", help="every step at CPU smoke sizes")
    p.add_argument("--out", default=os.path.join(REPO, "benchmarks", "results"))
    p.add_argument("--steps", default=",".join(STEPS), help="comma-separated subset, in order")
    p.add_argument("--budget", type=float, default=None,
                   help="seconds for all steps (default: the sum of the steps' budgets)")
    p.add_argument("--step", default=None, help=argparse.SUPPRESS)
    p.add_argument("--result", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.step:
        return _step_main(args.step, args.dry_run, args.result)
    steps = [s for s in args.steps.split(",") if s]
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        p.error(f"unknown step {unknown[0]!r}; steps: {', '.join(STEPS)}")
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    # The probe decides dry or not (a GPU or not) and names the files; it runs first always.
    probe_file = os.path.join(_SCRATCH, "probe.json")
    cmd, env, _ = step_command("probe", args.dry_run, args.out, "", "", "")
    got = _run(cmd, STEPS["probe"][1], env)
    info = {"device": "unknown", "backend": "unknown"}
    if got["status"] == "passed":
        with open(probe_file) as f:
            info = json.load(f)
    dry = args.dry_run or info["backend"] != "gpu"
    slug = re.sub(r"[^a-z0-9]+", "-", info["device"].lower()).strip("-")
    date = datetime.date.today().isoformat()
    summary = os.path.join(args.out, f"gpu-check-{slug}-{date}.json")
    col = 1 if dry else 0
    budget = args.budget or sum(STEPS[s][col] for s in steps)
    _SUMMARY.update({"what": "gpu-check", "device": info["device"], "date": date,
                     "dry_run": dry, "budget_s": budget, "probe": info,
                     "steps": {"probe": {**got, "seconds": round(time.time() - t0, 1)}}})
    _write(summary)
    carry, timed_out = 0.0, False
    for name in steps:
        if name == "probe":
            continue
        left = budget - (time.time() - t0)
        allowed = min(STEPS[name][col] + carry, left)
        start = time.time()
        if allowed < 5:
            res = {"status": f"not run: {left:.0f} s of the budget left"}
        else:
            cmd, env, path = step_command(name, dry, args.out, slug, date, summary)
            res = _run(cmd, allowed, env)
            if name in ("peaks",) and res["status"] == "passed":
                with open(os.path.join(_SCRATCH, "peaks.json")) as f:
                    _SUMMARY["peaks"] = json.load(f)
            if name == "gpu_tests":
                res["counts"] = counts = _pytest_counts(res.get("tail", []))
                if res["status"] == "passed" and not counts.get("passed"):
                    res["status"] = "failed: no GPU test ran"
                if dry:
                    res["expected_without_gpu"] = ("fails: every gpu test skips, and a skip "
                                                   "counts as a failure (MMER_REQUIRE_GPU=1)")
            if path is not None:
                res["json"] = path if os.path.exists(path) else None
        spent = time.time() - start
        res.update(seconds=round(spent, 1), budget_s=round(allowed, 1))
        timed_out |= res["status"].startswith("timed out")
        carry = max(0.0, allowed - spent) if not res["status"].startswith("not run") else carry
        _SUMMARY["steps"][name] = res
        _SUMMARY["total_seconds"] = round(time.time() - t0, 1)
        _write(summary)
        print(f"[gpu_check] {name}: {res['status']} in {spent:.1f} s (budget {allowed:.0f} s)",
              flush=True)
    print(f"[gpu_check] wrote {summary} in {time.time() - t0:.1f} s")
    for r in _SUMMARY["steps"].values():
        for line in r.get("tail", [])[-2:]:
            print("   ", line[:160])
    return 1 if timed_out else 0


if __name__ == "__main__":
    sys.exit(main())
