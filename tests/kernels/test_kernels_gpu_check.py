"""``benchmarks/gpu_check.sh --dry-run``: the one-shot GPU check's CPU parts run and write JSON."""

import json
import os
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
def test_gpu_check_dry_run_writes_its_report(tmp_path):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([os.path.join(REPO, "benchmarks", "gpu_check.sh"), "--dry-run",
                           "--out", str(tmp_path)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (report,) = tmp_path.glob("gpu-check-*.json")
    data = json.loads(report.read_text())
    assert data["dry_run"] and {"device", "jax", "date", "timing_method"} <= set(data)
    assert {"peaks", "gpu_tests", "bench", "autotune_attention"} <= set(data["steps"])
    assert all("error" not in s for s in data["steps"].values()), data["steps"]
    bench = json.loads(next(tmp_path.glob("kernels-*.json")).read_text())
    assert all({"flops", "bytes"} <= set(r) for r in bench["rows"])
    finetune = data["steps"]["ssl_finetune"]["result"]
    assert finetune["status"] == "passed", finetune
    rows = json.loads(open(finetune["json"]).read())["rows"]
    assert rows and all(r["clips_per_s"] > 0 and r["last_loss"] > 0 for r in rows)
