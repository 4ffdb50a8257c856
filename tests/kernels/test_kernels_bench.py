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


def test_rotated_copies_cover_twice_l2_at_distinct_buffers():
    import jax.numpy as jnp

    from mmer_kernels import _timing

    x = jnp.arange(1024, dtype=jnp.float32)  # 4 KiB: capped at MAX_COPIES
    sets = _timing.rotated((x, None))
    assert len(sets) == _timing.MAX_COPIES and sets[0][0] is x and sets[3][1] is None
    ptrs = {s[0].unsafe_buffer_pointer() for s in sets}
    assert len(ptrs) == len(sets)  # each copy its own buffer
    assert all(bool((s[0] == x).all()) for s in sets)
    big = jnp.zeros((3 << 20,), jnp.float32)  # 12 MiB: 11 sets cover 128 MiB
    assert len(_timing.rotated((big,))) == -(-2 * _timing.L2_BYTES // big.nbytes)


def test_compile_all_reports_a_failing_candidate_and_floor_is_positive():
    import jax
    import jax.numpy as jnp

    from mmer_kernels import _timing

    x = jnp.ones((4,), jnp.float32)
    bad = jax.jit(lambda x: x.reshape(3, 3))
    got = _timing.compile_all({"ok": jax.jit(lambda x: x * 2), "bad": bad}, (x,), workers=2)
    assert callable(got["ok"]) and got["bad"].startswith("error: ")
    times = _timing.time_side_by_side({"ok": jax.jit(lambda x: x * 2), "bad": bad}, (x,),
                                      repeats=2, calls_per_sync=2)
    assert times["ok"] > 0 and times["bad"].startswith("error: ")
    assert _timing.dispatch_floor(calls_per_sync=2, repeats=3) > 0


def test_rows_are_read_against_their_own_dtype_peak():
    peaks = {"bfloat16_matmul_tflops": 800.0, "float32_matmul_tflops": 400.0,
             "copy_gbps": 3000.0}
    rows = [{"dtype": d, "flops": 4e11, "bytes": 1e6, "ms": 2.0} for d in ("float32",
                                                                           "bfloat16")]
    f32, bf16 = bench._annotate(rows, floor_ms=1.5, peaks=peaks)
    assert f32["roofline"]["peak_tflops"] == 400.0 and bf16["roofline"]["peak_tflops"] == 800.0
    assert f32["roofline"]["floor_ms"] == 1.0 and bf16["roofline"]["floor_ms"] == 0.5
    assert f32["near_dispatch_floor"] is True  # 2.0 ms < 2 x 1.5 ms
    (f16,) = bench._annotate([{**rows[0], "dtype": "float16"}], 0.01, peaks)
    assert "roofline" not in f16 and f16["near_dispatch_floor"] is False  # no float16 peak


def test_autotune_cut_keeps_defaults_and_spreads():
    cands = {str(i): i for i in range(36)}
    got = autotune.cut(cands, 5, keep=("7",))
    assert "7" in got and "0" in got and "35" in got and len(got) == 6
    assert autotune.cut(cands, None) is cands and autotune.cut(cands, 40) is cands
    lens = autotune.ragged_lengths(32, 300, 0.4)
    assert lens.max() == 300 and abs(1 - lens.mean() / 300 - 0.4) < 0.02


def test_autotune_dry_run_times_padded_xla_and_records_nothing(tmp_path, capsys):
    table = tmp_path / "t.json"
    assert autotune.main(["attention", "2", "40", "40", "2", "32", "float32", "--dry-run",
                          "--table", str(table)]) == 0
    out = capsys.readouterr().out
    assert "dry run, nothing recorded" in out and "padded 40%" in out and not table.exists()
