"""``benchmarks/gpu_check.sh --dry-run``: every step of the one-shot GPU check runs at CPU smoke
sizes and writes its JSON."""

import json
import os
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow  # ~13 min on the loaded 2-core CPU: every step at smoke size
def test_gpu_check_dry_run_writes_its_report(tmp_path):
    """Under the GPU machine's package set (benchmarks/gpu_machine.py's import gate)."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "MMER_GPU_MACHINE_ONLY": "1",
           "PYTHONPATH": os.path.join(REPO, "benchmarks", "gpu_rehearsal")}
    done = subprocess.run([os.path.join(REPO, "benchmarks", "gpu_check.sh"), "--dry-run",
                           "--out", str(tmp_path)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-2000:]
    (report,) = tmp_path.glob("gpu-check-*.json")
    data = json.loads(report.read_text())
    assert data["dry_run"] and {"device", "date", "probe", "peaks"} <= set(data)
    assert set(data["steps"]) == {"probe", "gpu_tests", "peaks", "pretrained_encoders", "bench",
                                  "train_compare_torch", "ssl_finetune", "autotune_attention",
                                  "autotune_dynamic_conv"}
    # Without a GPU the GPU tests must fail (skips count as failures); everything else passes.
    assert data["steps"]["gpu_tests"]["status"] == "rc 1", data["steps"]["gpu_tests"]
    assert data["steps"]["gpu_tests"]["counts"].get("passed", 0) == 0
    others = {k: s["status"] for k, s in data["steps"].items() if k != "gpu_tests"}
    assert set(others.values()) == {"passed"}, others
    bench = json.loads(next(tmp_path.glob("kernels-*.json")).read_text())
    assert all({"flops", "bytes"} <= set(r) for r in bench["rows"])
    assert bench["dispatch_floor_ms"] > 0 and "rotated input copies" in bench["timing_method"]
    finetune = data["steps"]["ssl_finetune"]
    rows = json.loads(open(finetune["json"]).read())["rows"]
    assert rows and all(r["clips_per_s"] > 0 and r["last_loss"] > 0 for r in rows)
