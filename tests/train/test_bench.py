"""`mmer bench pipeline` smoke test: build, pipeline and train-step throughputs land in the JSON."""

import json

from mmer_jax import bench


def test_bench_pipeline_writes_rows(tmp_path, tiny_generated):
    out = tmp_path / "bench.json"
    code = bench.main("pipeline", ["--quick", "--out", str(out), "--workdir", str(tmp_path / "w"),
                                   "--config.data.config=tiny",
                                   f"--config.data.data_dir={tiny_generated}",
                                   "--config.train.batch_size=16", "--config.data.read_threads=0",
                                   "--config.train.progress=false"])
    assert code == 0
    record = json.loads(out.read_text())
    kinds = {r["what"]: r for r in record["rows"]}
    assert set(kinds) == {"build", "pipeline", "train_step"}
    assert kinds["build"]["clips"] == 96 and kinds["build"]["clips_per_s"] > 0
    assert kinds["pipeline"]["examples_per_s"] > 0 and kinds["train_step"]["examples_per_s"] > 0
    assert record["jax"] and record["device"]
