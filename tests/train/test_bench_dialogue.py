"""Fault 6 of issue 11: `mmer bench train` on a dialogue config times the dialogue batches the
config trains on (its DialoguePipeline and train step) and names its units: dialogues/s and
utterances/s."""

import json

import pytest

from mmer_jax import bench

from ..data.test_dialogue import _cosmic


@pytest.mark.slow  # ~50 s on 2 CPU cores: S002 compiles
def test_bench_train_dialogue_config_reports_dialogues_and_utterances(tmp_path, capsys):
    _cosmic(tmp_path / "manual")
    out = tmp_path / "bench.json"
    code = bench.run("train", config="experiments/s002_iemocap_text.py", quick=True, out=str(out),
                     workdir=str(tmp_path / "w"),
                     overrides=[f"data.data_dir={tmp_path / 'tfds'}",
                                f"data.manual_dir={tmp_path / 'manual'}",
                                "data.build_if_missing=true", "data.read_threads=0",
                                "data.min_count=1", "train.batch_size=4",
                                "train.progress=false"])
    assert code == 0
    rows = {r["what"]: r for r in json.loads(out.read_text())["rows"]}
    for what in ("pipeline", "train_step"):
        row = rows[what]
        assert row["unit"] == "dialogues"
        # Dialogues here have 3-8 utterances (chunks of 8 at most): utterances/s is several times
        # dialogues/s, and dialogues/s is the rate the step and pipeline are compared in.
        assert 2 * row["dialogues_per_s"] < row["utterances_per_s"]
        assert row["examples_per_s"] == row["dialogues_per_s"]
    printed = capsys.readouterr().out
    assert "dialogues/s" in printed and "utterances/s" in printed
