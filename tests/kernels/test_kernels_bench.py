"""Smoke test of ``python -m mmer_kernels.bench --quick`` and of the CPU refusal of the
autotuner."""

import json

import pytest

from mmer_kernels import autotune, bench


def test_bench_quick_writes_schema(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["what"] == "kernels" and data["rows"]
    assert {"device", "jax", "date", "timing_method"} <= set(data)
    assert "calls enqueued back to back per sync" in data["timing_method"]
    for row in data["rows"]:
        assert {"op", "shape", "dtype", "pass", "impl", "ms", "tflops", "gbps", "vs", "flops",
                "bytes"} <= set(row)
        assert row["pass"] in ("fwd", "fwd+bwd") and row["ms"] > 0
    impls = {(r["op"], r["impl"]) for r in data["rows"]}
    assert ("attention", "xla") in impls and ("dynamic_conv", "reference") in impls
    if data["device"] == "cpu":
        assert "need a GPU" in capsys.readouterr().out
        assert all(r["impl"] != "pallas" for r in data["rows"])


def test_valid_flops_count_padding_and_causal():
    import numpy as np
    full = bench.attention_work(np.array([4]), np.array([4]), 1, 8, False, 2, 4, 4)[0]
    causal = bench.attention_work(np.array([4]), np.array([4]), 1, 8, True, 2, 4, 4)[0]
    padded = bench.attention_work(np.array([2]), np.array([4]), 1, 8, False, 2, 4, 4)[0]
    assert (full, causal, padded) == (4 * 8 * 16, 4 * 8 * 10, 4 * 8 * 8)


def test_autotune_refuses_politely_without_gpu(tmp_path, capsys):
    if autotune.jax.default_backend() == "gpu":
        pytest.skip("has a GPU")
    table = tmp_path / "t.json"
    assert autotune.main(["attention", "2", "50", "50", "2", "64", "bfloat16",
                          "--table", str(table)]) == 2
    assert "need a GPU" in capsys.readouterr().err and not table.exists()


def test_roofline_reads_a_row_against_limits():
    row = {"flops": 2e12, "bytes": 1e9, "ms": 4.0}
    got = bench.roofline(row, peak_tflops=1000.0, peak_gbps=1000.0)
    assert got["bound"] == "compute" and got["floor_ms"] == 2.0 and got["frac_of_limit"] == 0.5
    assert bench.roofline({**row, "flops": 1e9}, 1000.0, 1000.0)["bound"] == "memory"
    fwd, both = bench.dynamic_conv_bytes(100, 10, 2)
    assert fwd == 2 * 210 and both == fwd + 2 * 420 + 80
