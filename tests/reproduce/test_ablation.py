"""`mmer reproduce --ablation fusion` on the tiny generated corpus: rows, seeds, table, cost."""

import json
import os

import pytest

from mmer_jax.errors import UsageError

# S003 shrunk to seconds per run on the tiny corpus (64/16/16 clips), one epoch.
TINY = [
    "data.config=tiny",
    "data.read_threads=0",
    "train.epochs=1",
    "train.batch_size=16",
    "train.progress=false",
    "model.image.width=8",
    "model.image.blocks=((8, 2),)",
    "model.image.last=16",
    "model.image.embed=16",
    "model.audio.channels=(8,)",
    "model.lstm_hidden=8",
    "model.fc_hidden=8",
]


@pytest.fixture
def tiny(tiny_generated):
    return TINY + [f"data.data_dir={tiny_generated}"]


def _fake_runs(calls):
    """A stand-in for the harness's ``run_seeds``: scores that depend on (fusion, seed)."""
    from mmer_jax.reproduce.ablation import ABLATIONS

    rows = ABLATIONS["fusion"].rows

    def run_seeds(cfg, workdir, seeds):
        out = []
        for k in range(seeds):
            calls.append((cfg.model.fusion, k, workdir))
            acc = 0.3 + 0.08 * rows.index(cfg.model.fusion) + 0.02 * k
            out.append({
                "system": "s003", "modalities": ["frames", "audio"], "best_epoch": 1,
                "num_params": 1000,
                "protocol": {"seed": k, "classes": ["a", "b"], "split": "s",
                             "examples": {"train": 64, "validation": 16, "test": 16},
                             "speaker_independent": True},
                "test": {"accuracy": acc, "weighted_f1": acc - 0.05, "macro_f1": acc, "uar": acc},
                "validation": {"accuracy": acc, "weighted_f1": acc, "macro_f1": acc, "uar": acc},
                "timing": {"wall_s": 1.0, "train_examples_per_s": 100.0 + k},
                "_workdir": os.path.join(workdir, f"seed{k}"),
            })
        return out

    return run_seeds


def test_table_is_mean_and_std_of_each_rows_seed_runs(tiny, tmp_path, monkeypatch):
    from mmer_jax.reproduce import ablation as ablation_lib

    calls = []
    monkeypatch.setattr(ablation_lib, "run_seeds", _fake_runs(calls))
    work, out = str(tmp_path / "runs"), str(tmp_path / "out")
    res = ablation_lib.ablation("fusion", corpus="generated", seeds=3, workdir=work,
                                out_dir=out, overrides=tiny, measure=False)
    rows = ["concat", "dynconv_gate", "tfn", "lmf", "mult", "late", "bridge", "bilinear"]
    # Every row trained with its own fusion, seeds 0..2, in its own directory.
    assert [(f, k) for f, k, _ in calls] == [(r, k) for r in rows for k in range(3)]
    assert {w for r, _, w in calls if r == "tfn"} == {
        os.path.join(work, "ablation_fusion", "generated", "tfn")}
    rep = json.load(open(res["json"]))
    assert res["json"] == os.path.join(out, "ablation_fusion", "fusion.json")
    assert rep["rows"] == rows and rep["corpora"] == ["generated"] and rep["seeds"] == [0, 1, 2]
    lmf = rep["results"]["generated"]["lmf"]["test"]["accuracy"]
    assert lmf["values"] == pytest.approx([0.54, 0.56, 0.58])
    assert lmf["mean"] == pytest.approx(0.56) and lmf["std"] == pytest.approx(0.02)
    assert rep["best"] == {"generated": "bilinear"}
    assert rep["protocol"]["generated"]["config"] == "experiments/ablation_fusion_generated.py"
    md = open(res["md"]).read()
    assert "| `lmf` | 51.0 ± 2.0 (56.0 ± 2.0) |" in md
    assert "| `late` | 67.0 ± 2.0 (72.0 ± 2.0) |" in md
    assert "| `bilinear` | **83.0 ± 2.0 (88.0 ± 2.0)** |" in md
    assert "generated (frames, audio)" in md and "## Cost on" not in md
    assert "mmer reproduce --ablation fusion --corpus generated --seeds 3" in md
    # Its provenance, once per corpus: the base config (each row sets model.fusion), every run.
    block = rep["provenance"]["generated"]
    assert block["config_path"] == "experiments/ablation_fusion_generated.py"
    assert len(block["runs"]) == 3 * len(rows) and block["config"]["model"]["fusion"] == "concat"
    assert "## Provenance (generated)" in md and block["config_sha256"] in md


@pytest.mark.slow
def test_cost_of_a_tfn_row(tiny):
    """Parameters and FLOPs of the fusion alone follow TFN's sizes; the step is compiled,
    counted and timed (about 25 s of CPU: S003's train step compiles)."""
    from mmer_jax import config as config_lib
    from mmer_jax.reproduce.ablation import measure_cost

    cfg = config_lib.load("experiments/ablation_fusion_generated.py", tiny + ["model.fusion=tfn"])
    cost = measure_cost(cfg, steps=1)
    # TFN on two 8-d LSTM states: fuse [(8+1)^2, 128] + post [128, 128], with biases.
    assert cost["fusion_params"] == 81 * 128 + 128 + 128 * 128 + 128
    assert cost["fusion_flops_per_example"] == 2 * (81 * 128 + 128 * 128)
    assert cost["params"] > cost["fusion_params"]
    assert cost["step_flops_xla"] > 2 * 16 * cost["fusion_flops_per_example"]
    assert cost["step_ms"] > 0 and cost["global_batch"] == 16


@pytest.mark.slow
def test_fusion_ablation_table_from_the_seed_runs(tiny, tmp_path):
    """The same through real training and cost measurement (several minutes on 2 cores)."""
    from mmer_jax.reproduce.ablation import ablation

    work, out = str(tmp_path / "runs"), str(tmp_path / "out")
    res = ablation("fusion", corpus="generated", seeds=2, workdir=work, out_dir=out,
                   overrides=tiny, rows=["concat", "tfn"])
    rep = json.load(open(res["json"]))
    assert res["json"] == os.path.join(out, "ablation_fusion", "fusion.json")
    assert rep["rows"] == ["concat", "tfn"] and rep["corpora"] == ["generated"]
    assert rep["seeds"] == [0, 1] and rep["key"] == "model.fusion"
    cells = rep["results"]["generated"]
    for row in ("concat", "tfn"):
        # Each cell is the mean ± std of its own seed runs, which trained that fusion.
        seed_runs = [os.path.join(work, "ablation_fusion", "generated", row, f"seed{k}")
                     for k in range(2)]
        assert cells[row]["workdirs"] == seed_runs
        accs = [json.load(open(os.path.join(d, "results.json")))["test"]["accuracy"]
                for d in seed_runs]
        cfgs = [json.load(open(os.path.join(d, "config.json"))) for d in seed_runs]
        assert [c["model"]["fusion"] for c in cfgs] == [row, row]
        assert [c["seed"] for c in cfgs] == [0, 1]
        acc = cells[row]["test"]["accuracy"]
        assert acc["values"] == accs and acc["mean"] == pytest.approx(sum(accs) / 2)
        assert acc["std"] == pytest.approx(abs(accs[0] - accs[1]) / 2**0.5)
        cost = cells[row]["cost"]
        assert cost["params"] == cells[row]["num_params"] > 0 and cost["step_ms"] > 0
        assert cost["global_batch"] == 16 and cost["step_flops_xla"] > 0
    # Same encoders and head: the rows differ only in the fusion's parameters.
    concat, tfn = cells["concat"]["cost"], cells["tfn"]["cost"]
    assert concat["fusion_params"] == 0 and concat["fusion_flops_per_example"] == 0
    # TFN on two 8-d LSTM states: fuse [(8+1)^2, 128] + post [128, 128], with biases.
    assert tfn["fusion_params"] == 81 * 128 + 128 + 128 * 128 + 128
    assert tfn["fusion_flops_per_example"] == 2 * (81 * 128 + 128 * 128)
    # The head reads 16 concatenated features for concat, 128 for TFN: fc 8 x (16 vs 128).
    assert tfn["params"] - tfn["fusion_params"] - concat["params"] == (128 - 16) * 8
    md = open(res["md"]).read()
    for text in ("# Ablation: fusion (`model.fusion`)", "| `concat` |", "| `tfn` |",
                 "generated (frames, audio)", "## Cost on generated", "±", "**",
                 "mmer reproduce --ablation fusion --corpus generated --seeds 2"):
        assert text in md, text
    # Run again: every seed is read back, the table is the same.
    again = ablation("fusion", corpus="generated", seeds=2, workdir=work, out_dir=out,
                     overrides=tiny, rows=["concat", "tfn"], measure=False)
    assert again["report"]["results"]["generated"]["tfn"]["test"] == cells["tfn"]["test"]
    assert "## Cost on" not in open(again["md"]).read()


def test_ablation_refuses_bad_requests(tiny, tmp_path):
    from mmer_jax.reproduce.ablation import ablation

    kw = dict(corpus="generated", seeds=1, workdir=str(tmp_path), overrides=tiny)
    with pytest.raises(UsageError, match="unknown ablation.*did you mean 'fusion'"):
        ablation("fusoin", **kw)
    with pytest.raises(UsageError, match="sets model.fusion itself"):
        ablation("fusion", **{**kw, "overrides": tiny + ["model.fusion=tfn"]})
    with pytest.raises(UsageError, match="'brdige' is not one of"):
        ablation("fusion", **kw, rows=["brdige"])
    with pytest.raises(UsageError, match="--seeds must be >= 1"):
        ablation("fusion", **{**kw, "seeds": 0})
    with pytest.raises(UsageError, match="refuses --config"):
        ablation("fusion", **kw, update_reference=True)
    with pytest.raises(UsageError, match="no config .*ablation_fusion_nosuch"):
        ablation("fusion", **{**kw, "corpus": "nosuch"})


def test_cli_reproduce_takes_a_system_or_an_ablation(capsys):
    from mmer_jax import cli

    assert cli.main(["reproduce"]) == 2
    assert "takes a SYSTEM or --ablation NAME" in capsys.readouterr().err
    assert cli.main(["reproduce", "s003", "--ablation", "fusion"]) == 2
    assert cli.main(["reproduce", "--ablation", "nosuch"]) == 2
    assert "unknown ablation" in capsys.readouterr().err
    assert "--ablation" in cli_help(cli, capsys)


def cli_help(cli, capsys) -> str:
    with pytest.raises(SystemExit):
        cli.main(["reproduce", "--help"])
    return capsys.readouterr().out
