"""The quickstart's spread over seeds and vector-extension caps: collected from run directories
and rendered as the README's table."""

import json

from mmer_jax.reproduce import quickstart_spread as qs
from mmer_jax.train import determinism


def _run(root, name, seed, isa, accs):
    wd = root / name
    wd.mkdir()
    flags = ["avx", "avx2", "avx512f", "fma", "sse4_2"]
    variants = {v: {"test": {"accuracy": a, "weighted_f1": a - 0.01, "uar": a}}
                for v, a in accs.items()}
    (wd / "results.json").write_text(json.dumps({
        "environment": {"cpu": "Some CPU", "cpu_flags": flags, "xla_cpu_max_isa": isa,
                        "jax": "0.10.2"},
        "timing": {"wall_s": 100.0}, "variants": variants}))
    (wd / "config.json").write_text(json.dumps({"seed": seed}))
    return str(wd)


def test_spread_table_means_seeds_and_lists_each_cap(tmp_path):
    dirs = [_run(tmp_path, "s0", 0, None, {"audio": 0.56, "fused": 0.95}),
            _run(tmp_path, "s1", 1, None, {"audio": 0.60, "fused": 0.97}),
            _run(tmp_path, "s0_avx2", 0, "AVX2", {"audio": 0.59, "fused": 0.955})]
    out = tmp_path / "spread.json"
    assert qs.main([*dirs, "--out", str(out)]) == 0
    lines = qs.spread_block(str(out))
    text = "\n".join(lines)
    assert "| variant | seeds 0–1 | seed 0, no cap | seed 0, AVX2 |" in text
    # mean ± sample std of 56 and 60: 58.0 ± 2.8; the host's seed 0 and the capped seed 0 beside
    assert "| audio | 58.0 ± 2.8 | 56.0 | 59.0 |" in text
    assert "| fused | 96.0 ± 1.4 | 95.0 | 95.5 |" in text
    assert "moved by up to 3.0 points (audio)" in text
    assert "AVX-512" in text


def test_a_run_without_cpu_flags_is_refused(tmp_path):
    wd = tmp_path / "old"
    wd.mkdir()
    (wd / "results.json").write_text(json.dumps({"environment": {"jax": "0.10.2"}}))
    (wd / "config.json").write_text("{}")
    try:
        qs.collect([str(wd)])
    except SystemExit as e:
        assert "cpu_flags" in str(e) and "results.json" in str(e)
    else:
        raise AssertionError("collect accepted a run without cpu_flags")


def test_isa_levels_and_the_cap_flag():
    assert determinism.cpu_isa_levels(["sse4_2", "avx", "avx2", "fma"]) == [
        "SSE4_2", "AVX", "AVX2"]
    # AVX-512 needs all four of its base extensions, AVX2 needs FMA beside it
    assert determinism.cpu_isa_levels(["sse4_2", "avx", "avx2", "avx512f"]) == ["SSE4_2", "AVX"]
    assert determinism.xla_cpu_max_isa("--xla_force_host_platform_device_count=4 "
                                       "--xla_cpu_max_isa=avx2") == "AVX2"
    assert determinism.xla_cpu_max_isa("--xla_force_host_platform_device_count=4") is None
