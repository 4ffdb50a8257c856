"""One-shot GPU check of the kernels (needs jax and numpy only; pytest optional).

On a GPU: measures the device's bf16 matmul peak and memory bandwidth, checks the compiled
kernels against their references, runs the ``gpu``-marked kernel tests (when pytest is
installed), the kernel benchmark and the autotuner on the emotion shapes, and writes
``benchmarks/results/gpu-check-<device>-<date>.json`` (plus the benchmark's own JSON and the
tuned table entries), and, when torch is installed, ``train_compare_torch.py --device cuda``
(mmer_jax vs PyTorch training throughput, its own JSON) and, with transformers too,
``pretrained_encoders.py --device gpu`` (Whisper base and a WavLM-base-sized encoder, forward and
backward, XLA and the Pallas attention kernel against PyTorch eager, its own JSON), and
``ssl_finetune_step.py`` (Whisper base fine-tuned end to end: the run's train step, float32 and
bfloat16, its own JSON).
``--dry-run`` runs the CPU-capable parts (tiny peaks, the quick benchmark, the autotuner's
refusal, collecting the GPU tests, the comparison's flag check) into ``--out`` so the script
itself is tested without a GPU. Every step has a time budget; the whole stays under 8 minutes.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from mmer_kernels import autotune, bench  # noqa: E402
from mmer_kernels._reference import attention_reference, dynamic_conv_reference  # noqa: E402
from mmer_kernels._timing import METHOD, time_side_by_side  # noqa: E402
from mmer_kernels.attention import attention  # noqa: E402
from mmer_kernels.dynamic_conv import dynamic_conv  # noqa: E402


def measure_peaks(dry_run: bool) -> dict:
    """bf16 matmul TFLOP/s and copy GB/s measured with XLA (the limits rows are read against)."""
    n = 256 if dry_run else 8192
    a = jnp.ones((n, n), jnp.bfloat16)
    mm = time_side_by_side({"mm": jax.jit(lambda a: a @ a)}, (a,), repeats=5)["mm"]
    m = (1 << 20) if dry_run else (1 << 28)  # elements of float32: 4 MiB / 1 GiB
    x = jnp.ones((m,), jnp.float32)
    cp = time_side_by_side({"copy": jax.jit(lambda x: x * 2.0)}, (x,), repeats=5)["copy"]
    return {"bf16_matmul_tflops": round(2 * n**3 / mm / 1e9, 2),
            "copy_gbps": round(2 * 4 * m / cp / 1e6, 1), "matmul_n": n, "copy_elements": m}


def _rel_errs(got, want):
    return [float(jnp.max(jnp.abs(g.astype(jnp.float32) - w)) / max(1.0, jnp.max(jnp.abs(w))))
            for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True)]


def _attention_grads(fn, q, k, kw):
    loss = lambda q, k: jnp.sum(fn(q, k, k, **kw).astype(jnp.float32) ** 2)  # noqa: E731
    return jax.jit(jax.value_and_grad(loss, (0, 1)))(q, k)


def _conv_grads(fn, x, w, lens):
    loss = lambda x, w: jnp.sum(fn(x, w, lengths=lens).astype(jnp.float32) ** 2)  # noqa: E731
    return jax.jit(jax.value_and_grad(loss, (0, 1)))(x, w)


def check_compiled() -> list[dict]:
    """Compiled kernels vs references (max abs error, relative to the reference's max)."""
    out = []
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    pallas_att = lambda *a, **b: attention(*a, implementation="pallas", **b)  # noqa: E731
    pallas_conv = lambda *a, **b: dynamic_conv(*a, implementation="pallas", **b)  # noqa: E731
    kw = dict(q_lengths=jnp.array([300, 120, 7, 0]), kv_lengths=jnp.array([277, 3, 200, 9]))
    lens = jnp.arange(8) * 37 + 10
    for dtype in (jnp.float32, jnp.bfloat16):
        q = jax.random.normal(keys[0], (4, 300, 8, 64), dtype)
        k = jax.random.normal(keys[1], (4, 277, 8, 64), dtype)
        got = _attention_grads(pallas_att, q, k, kw)
        want = _attention_grads(attention_reference, q.astype(jnp.float32),
                                k.astype(jnp.float32), kw)
        out.append({"op": "attention", "dtype": jnp.dtype(dtype).name,
                    "rel_err": _rel_errs(got, want)})
        x = jax.random.normal(keys[2], (8, 300, 512), dtype)
        w = jax.random.normal(keys[3], (8, 300, 8, 7), dtype)
        got = _conv_grads(pallas_conv, x, w, lens)
        want = _conv_grads(dynamic_conv_reference, x.astype(jnp.float32), w.astype(jnp.float32),
                           lens)
        out.append({"op": "dynamic_conv", "dtype": jnp.dtype(dtype).name,
                    "rel_err": _rel_errs(got, want)})
    return out


def _run_child(cmd: list[str], timeout: int, tail: int, env: dict | None = None) -> dict:
    """Runs one step's command from the repository root: {"status": "passed" | "rc N" |
    "timed out after T s", "tail": its last ``tail`` output lines}."""
    try:
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                              env=env)
    except subprocess.TimeoutExpired:
        return {"status": f"timed out after {timeout} s"}
    return {"status": "passed" if done.returncode == 0 else f"rc {done.returncode}",
            "tail": (done.stdout + done.stderr).strip().splitlines()[-tail:]}


def run_gpu_tests(dry_run: bool, timeout: int) -> dict:
    """The ``gpu``-marked kernel tests through pytest (collect only in a dry run)."""
    try:
        import pytest  # noqa: F401
    except ImportError:
        return {"status": "skipped: pytest is not installed"}
    cmd = [sys.executable, "-m", "pytest", "tests/kernels", "-m", "gpu", "-n", "0", "-q",
           "-p", "no:cacheprovider"] + (["--collect-only"] if dry_run else [])
    return _run_child(cmd, timeout, tail=3)


def run_train_compare(dry_run: bool, out: str, timeout: int) -> dict:
    """``benchmarks/train_compare_torch.py --device cuda`` (mmer_jax vs PyTorch training
    throughput) in a subprocess; a dry run only checks its flags, torch and the device."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return {"status": "skipped: torch is not installed (pip install -e '.[bench]')"}
    cmd = [sys.executable, os.path.join(REPO, "benchmarks", "train_compare_torch.py"),
           "--device", "cpu" if dry_run else "cuda", "--quick", "--rounds", "3", "--out", out]
    cmd += ["--dry-run"] if dry_run else []
    result = _run_child(cmd, timeout, tail=8)
    return result if "tail" not in result else {**result, "json": None if dry_run else out}


def run_pretrained_encoders(dry_run: bool, out: str, timeout: int) -> dict:
    """``benchmarks/pretrained_encoders.py --device gpu``: Whisper base and a WavLM-base-sized
    encoder, forward and forward+backward, mmer_jax (XLA and the Pallas attention kernel)
    against transformers' PyTorch eager, in a subprocess (torch.compile left out: its compile
    time would take the lease). A dry run checks the script's arguments and imports only."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        return {"status": "skipped: torch / transformers are not installed (the ref extra)"}
    cmd = [sys.executable, os.path.join(REPO, "benchmarks", "pretrained_encoders.py"), "--out",
           out]
    cmd += (["--dry-run", "--sides", "mmer_jax_xla,mmer_jax_pallas,torch_eager"] if dry_run else
            ["--device", "gpu", "--rounds", "3", "--calls", "3", "--sides",
             "mmer_jax_xla,mmer_jax_pallas,torch_eager"])
    result = _run_child(cmd, timeout, tail=8)
    return result if "tail" not in result else {**result, "json": out}


def run_ssl_finetune(dry_run: bool, out: str, timeout: int) -> dict:
    """``benchmarks/ssl_finetune_step.py``: the ``ssl_finetune`` train step (Whisper base end to
    end, random weights, generated batches of the EmoDB config's shapes) in float32 and bfloat16,
    XLA and the Pallas attention kernel, in a subprocess. A dry run is its ``--quick`` smoke run
    on the CPU (a 2-layer encoder), so the script itself is tested."""
    cmd = [sys.executable, os.path.join(REPO, "benchmarks", "ssl_finetune_step.py"), "--out", out]
    cmd += ["--quick", "--device", "cpu"] if dry_run else ["--device", "gpu", "--steps", "10"]
    result = _run_child(cmd, timeout, tail=6,
                        env={**os.environ, "XLA_PYTHON_CLIENT_PREALLOCATE": "false"})
    return result if "tail" not in result else {**result, "json": out}


def main(argv=None) -> int:
    """Runs the check; returns 0 when every step ran (failures are recorded in the JSON)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", action="store_true", help="CPU parts only (no GPU needed)")
    p.add_argument("--out", default=os.path.join(REPO, "benchmarks", "results"))
    args = p.parse_args(argv)
    on_gpu = jax.default_backend() == "gpu"
    dry = args.dry_run or not on_gpu
    device = jax.devices()[0].device_kind
    date = datetime.date.today().isoformat()
    slug = re.sub(r"[^a-z0-9]+", "-", device.lower()).strip("-")
    os.makedirs(args.out, exist_ok=True)
    report = {"what": "gpu-check", "device": device, "jax": jax.__version__, "date": date,
              "dry_run": dry, "timing_method": METHOD, "steps": {}}
    t0 = time.time()

    def step(name, fn):
        start = time.time()
        try:
            report["steps"][name] = {"result": fn()}
        except Exception as e:  # noqa: BLE001 -- one failed step must not lose the others
            report["steps"][name] = {"error": f"{type(e).__name__}: {e}"[:400]}
        report["steps"][name]["seconds"] = round(time.time() - start, 1)
        print(f"[gpu_check] {name}: {time.time() - start:.1f} s", flush=True)

    step("peaks", lambda: measure_peaks(dry))
    if not dry:
        step("compiled_vs_reference", check_compiled)
    step("gpu_tests", lambda: run_gpu_tests(dry, 150))
    bench_out = os.path.join(args.out, f"kernels-{slug}-{date}.json")
    step("bench", lambda: bench.main((["--quick"] if dry else ["--repeats", "10"])
                                     + ["--out", bench_out]) or bench_out)
    # The pretrained encoders and their fine-tuning step next: the workloads users run.
    encoders_out = os.path.join(args.out, f"pretrained-encoders-{slug}-{date}.json")
    step("pretrained_encoders", lambda: run_pretrained_encoders(dry, encoders_out, 240))
    finetune_out = os.path.join(args.out, f"ssl-finetune-step-{slug}-{date}.json")
    step("ssl_finetune", lambda: run_ssl_finetune(dry, finetune_out, 150))
    table = os.path.join(args.out, f"tuned-{slug}-{date}.json")
    tune = [["attention", "32", "300", "300", "8", "64", "bfloat16"],
            ["dynamic_conv", "32", "300", "512", "8", "7", "bfloat16"]]
    for t in (tune[:1] if dry else tune):
        step(f"autotune_{t[0]}", lambda t=t: autotune.main(t + ["--table", table]))
    compare_out = os.path.join(args.out, f"train-compare-torch-{slug}-{date}.json")
    step("train_compare_torch", lambda: run_train_compare(dry, compare_out, 200))
    if not dry and os.path.exists(bench_out) and "result" in report["steps"]["peaks"]:
        peaks = report["steps"]["peaks"]["result"]
        with open(bench_out) as f:
            rows = json.load(f)["rows"]
        report["roofline"] = [
            {**{k: r[k] for k in ("op", "shape", "dtype", "pass", "impl", "ms")},
             **bench.roofline(r, peaks["bf16_matmul_tflops"], peaks["copy_gbps"])}
            for r in rows if r.get("ms")]
    report["total_seconds"] = round(time.time() - t0, 1)
    path = os.path.join(args.out, f"gpu-check-{slug}-{date}.json")
    with open(path, "w") as f:
        json.dump(report, f, indent=1, default=str)
        f.write("\n")
    print(f"[gpu_check] wrote {path} in {report['total_seconds']} s")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
