"""`mmer bench pipeline` smoke test: build, pipeline and train-step throughputs land in the JSON."""

import json

import pytest

from mmer_jax import bench


@pytest.mark.slow  # long for the default run; `pytest -m slow` runs it
def test_bench_pipeline_writes_rows(tmp_path, tiny_generated):
    out = tmp_path / "bench.json"
    code = bench.run("pipeline", quick=True, out=str(out), workdir=str(tmp_path / "w"),
                     overrides=["data.config=tiny", f"data.data_dir={tiny_generated}",
                                "train.batch_size=16", "data.read_threads=0",
                                "train.progress=false"])
    assert code == 0
    record = json.loads(out.read_text())
    kinds = {r["what"]: r for r in record["rows"]}
    assert set(kinds) == {"build", "pipeline", "train_step"}
    assert kinds["build"]["clips"] == 96 and kinds["build"]["clips_per_s"] > 0
    assert kinds["pipeline"]["examples_per_s"] > 0 and kinds["train_step"]["examples_per_s"] > 0
    assert record["jax"] and record["device"]


@pytest.mark.slow  # long for the default run; `pytest -m slow` runs it
def test_bench_compare_times_each_value_interleaved(tmp_path, tiny_generated):
    out = tmp_path / "cmp.json"
    code = bench.run("train", quick=True, out=str(out), workdir=str(tmp_path / "w"),
                     compare="model.head_hidden=16,32",
                     overrides=["primary_variant=text",  # smallest model: fast compile
                                "data.config=tiny", f"data.data_dir={tiny_generated}",
                                "train.batch_size=16", "data.read_threads=0",
                                "train.progress=false"])
    assert code == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["value"] for r in rows] == ["16", "32"]
    assert all(len(r["rounds"]) == 3 and r["examples_per_s"] > 0 for r in rows)
    assert rows[0]["ratio_to_first"] == 1.0


def test_bench_compare_needs_two_values(tmp_path):
    import pytest

    from mmer_jax.errors import UsageError

    with pytest.raises(UsageError, match="KEY=V1,V2"):
        bench.run("train", compare="model.head_hidden=16", out=str(tmp_path / "x"))
