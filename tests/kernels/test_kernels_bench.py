"""Smoke test of ``python -m kernels.bench --quick`` and of the CPU refusal of the autotuner."""

import json

import pytest

from kernels import autotune, bench


def test_bench_quick_writes_schema(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["what"] == "kernels" and data["rows"]
    assert {"device", "jax", "date"} <= set(data)
    for row in data["rows"]:
        assert {"op", "shape", "dtype", "pass", "impl", "ms", "tflops", "gbps", "vs"} <= set(row)
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
