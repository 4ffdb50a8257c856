"""`mmer reproduce` on a regression config (protocol.task = "regression", CMU-MOSI/MOSEI style):
MMSA's scores as mean ± std over seeds beside S000's MI numbers on the same scale, a scatter of
the saved test predictions, MAE validation curves, README tables, `mmer eval` and `mmer compare`.

The corpus is the tiny generated one with a synthetic score per class (``data.class_scores``);
the experiment file is named ``mi_cmu_mosei.py`` so the paper column is MI's CMU-MOSEI entry.
"""

import glob
import json
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCORES = "[-3.0, 2.0, -1.5, -2.5, -0.5, 1.0]"  # one per generated class, in label order
CONFIG = f'''
import runpy

def get_config():
    cfg = runpy.run_path({os.path.join(REPO, "experiments", "quickstart.py")!r})["get_config"]()
    cfg.variants = {{"text": ["text"]}}
    cfg.primary_variant = "text"
    cfg.model.modalities = ["text"]
    return cfg
'''
METRICS = ("acc2_has0", "acc2_non0", "f1_has0", "f1_non0", "acc3", "acc5", "acc7", "mae", "corr")


@pytest.fixture(scope="module")
def reproduced(tiny_generated, tmp_path_factory):
    """Two seeds of one epoch through the harness; model profiling is stubbed out (it times a
    forward pass and is tested elsewhere)."""
    from mmer_jax.reproduce import model_profile
    from mmer_jax.reproduce.harness import reproduce

    exp = tmp_path_factory.mktemp("experiments")
    (exp / "mi_cmu_mosei.py").write_text(CONFIG)
    base = tmp_path_factory.mktemp("regression")
    work, out = str(base / "runs"), str(base / "reports")
    overrides = [f"data.data_dir={tiny_generated}", "data.config=tiny", "data.read_threads=0",
                 "data.max_tokens=8", "model.encoders.text.embed_dim=8",
                 "model.encoders.text.hidden=8", "model.head_hidden=8", "train.epochs=1",
                 "train.batch_size=16", "train.progress=false", "protocol.task=regression",
                 "train.select_metric=mae", f"data.class_scores={SCORES}"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(model_profile, "profile_config", lambda cfg: None)
        paths = reproduce("mi", corpus="cmu_mosei", seeds=2, workdir=work, out_dir=out,
                          overrides=overrides, experiments_dir=str(exp))["cmu_mosei"]
    seed_dirs = [os.path.join(work, "mi", "cmu_mosei", f"seed{k}") for k in range(2)]
    results = [json.load(open(os.path.join(d, "results.json"))) for d in seed_dirs]
    return {"paths": paths, "report": json.load(open(paths["json"])),
            "md": open(paths["md"]).read(), "results": results, "dirs": seed_dirs,
            "config": str(exp / "mi_cmu_mosei.py"), "overrides": overrides}


def test_results_record_the_task_and_save_the_test_predictions(reproduced):
    from mmer_jax.train.report import read_predictions
    from mmer_jax.train.run import task_of

    for res, d in zip(reproduced["results"], reproduced["dirs"], strict=True):
        assert res["task"] == res["protocol"]["task"] == "regression"
        assert res["regression_loss"] == res["protocol"]["regression_loss"] == "l1"
        saved = read_predictions(os.path.join(d, "variants", "text"))
        assert saved["task"] == "regression" and len(saved["pred"]) == res["test"]["n"]
        # The saved predictions are the ones the test scores were computed from.
        mae = sum(abs(p - t) for p, t in zip(saved["pred"], saved["true"], strict=True))
        assert mae / len(saved["pred"]) == pytest.approx(res["test"]["mae"], rel=1e-5)
        assert os.path.getsize(os.path.join(d, "scatter_test.png")) > 1000
        assert "![Predicted vs true score (test)](scatter_test.png)" in open(
            os.path.join(d, "report.md")).read()
    # results.json written before runs recorded their task read as classification
    assert task_of({"test": {"accuracy": 0.5}}) == "classification"


def test_report_means_are_the_runs_values(reproduced):
    rep, results = reproduced["report"], reproduced["results"]
    assert rep["task"] == "regression" and rep["seeds"] == [0, 1]
    for m in METRICS:
        values = [r["test"][m] for r in results]
        stat = rep["ours"]["test"][m]
        assert stat["values"] == values and stat["mean"] == pytest.approx(sum(values) / 2)
        row = next(c for c in rep["comparison"] if c["metric"] == m)
        assert row["ours_mean"] == stat["mean"]
        assert [x["test"][m] for x in rep["runs"]] == values
    assert "accuracy" not in rep["ours"]["test"] and rep["confusion"] is None
    assert rep["baselines_same_harness"] == {} and rep["floors"] == []
    md = reproduced["md"]
    mae, corr = rep["ours"]["test"]["mae"], rep["ours"]["test"]["corr"]
    acc2 = rep["ours"]["test"]["acc2_non0"]
    assert f"| MAE | 0.568 | {mae['mean']:.3f} ± {mae['std']:.3f} |" in md
    assert f"| Corr | 0.712 | {corr['mean']:.3f} ± {corr['std']:.3f} |" in md
    assert f"| Acc-2 (non-0) | 83.5 | {100 * acc2['mean']:.1f} ± {100 * acc2['std']:.1f} |" in md
    assert "best validation mae (lower is better) epoch per seed" in md
    assert "| Task | regression on the sentiment score (loss l1) |" in md
    assert "Confusion matrix" not in md and "Per class" not in md


def test_paper_column_converts_the_printed_x100_scores(reproduced):
    from mmer_jax.reproduce import harness, papers

    entry = papers.reported("mi", "cmu_mosei")
    assert entry["task"] == "regression" and entry["metrics"]["mae"] == 0.568
    assert entry["metrics"]["corr"] == 0.712 and entry["metrics"]["acc2_non0"] == 83.5
    assert papers.reported("tsra", "gmsa")["metrics"]["mae"] == 0.4328
    assert papers.reported("mi", "cmu_mosi") is None  # MI printed CMU-MOSEI only
    paper = harness.paper_scores(entry)
    assert paper["mae"] == 0.568 and paper["acc2_has0"] == pytest.approx(0.835)
    rep = reproduced["report"]
    by = {c["metric"]: c for c in rep["comparison"]}
    assert by["mae"]["paper"] == 0.568
    assert by["mae"]["delta"] == pytest.approx(by["mae"]["ours_mean"] - 0.568)
    assert by["acc3"]["paper"] is None and by["acc3"]["delta"] is None
    assert "56.8 -> 0.568" in reproduced["md"] and "§3.1, Table 3" in reproduced["md"]


def test_scatter_and_mae_validation_curves(reproduced):
    rep, paths = reproduced["report"], reproduced["paths"]
    n_test = sum(r["test"]["n"] for r in reproduced["results"])
    assert rep["scatter"]["points"] == n_test and rep["scatter"]["runs_with_predictions"] == 2
    assert paths["png"].endswith("cmu_mosei_scatter.png") and os.path.getsize(paths["png"]) > 1000
    assert "![predicted vs true](cmu_mosei_scatter.png)" in reproduced["md"]
    curves = rep["validation_curves"]
    assert curves["metric"] == "mae"
    for run, res in zip(curves["per_run"], reproduced["results"], strict=True):
        assert run["values"] == [pytest.approx(res["validation"]["mae"], rel=1e-5)]
    assert os.path.getsize(paths["curves_png"]) > 1000
    # MAE is in score units, not percent.
    assert f"| seed 0 | 1 | {curves['per_run'][0]['values'][0]:.3f} | — |" in reproduced["md"]


def test_readme_lists_regression_reports_apart(reproduced, tmp_path, monkeypatch):
    from mmer_jax.reproduce import readme

    # The README itself (no regression report committed) is unchanged by the new block.
    assert readme.main(["--check"]) == 0
    ref = tmp_path / "reproductions"
    (ref / "mi").mkdir(parents=True)
    (ref / "mi" / "cmu_mosei.json").write_text(json.dumps(reproduced["report"]))
    (ref / "s003").mkdir()
    with open(os.path.join(readme.REFERENCE_DIR, "s003", "generated.json")) as f:
        (ref / "s003" / "generated.json").write_text(f.read())
    monkeypatch.setattr(readme, "REPO", str(tmp_path))
    table = "\n".join(readme.reproductions_table(str(ref)))
    assert "| s003 | generated |" in table and "| mi |" not in table
    assert "Regression reports (mi/cmu_mosei)" in table
    reg = "\n".join(readme.regression_table(str(ref)))
    mae = reproduced["report"]["ours"]["test"]["mae"]
    assert "| mi | cmu_mosei | 2 |" in reg and f"{mae['mean']:.3f} ± {mae['std']:.3f}" in reg
    assert "83.5 / 0.568 / 0.712" in reg and "s003" not in reg
    assert readme.regression_table(str(tmp_path / "none")) == [
        "_No regression reproduction committed yet._"]


def test_train_eval_and_compare_print_regression_scores(reproduced, capsys):
    from mmer_jax import cli
    from mmer_jax.reproduce.listing import compare

    d, res = reproduced["dirs"][0], reproduced["results"][0]
    assert cli.main(["eval", "--workdir", d]) == 0
    line = capsys.readouterr().out.strip()
    # The same checkpoint scored again: the test MAE of results.json.
    assert line.startswith("text: test Acc-2 has0 ") and f"MAE {res['test']['mae']:.3f}" in line
    # `mmer train` on the finished seed reads its results back and prints the same scores.
    flags = [f"--config.{o}" for o in reproduced["overrides"]] + ["--config.seed=0"]
    assert cli.main(["train", "--config", reproduced["config"], "--workdir", d, *flags]) == 0
    printed = capsys.readouterr().out
    assert f"text: test Acc-2 has0 {100 * res['test']['acc2_has0']:.1f}" in printed
    assert f"MAE {res['test']['mae']:.3f}" in printed and "results.json" in printed
    table = compare(reproduced["dirs"])
    assert "| test MAE | test Corr |" in table
    assert f"| {res['test']['mae']:.3f} | {res['test']['corr']:.3f} |" in table


def test_classification_reports_render_as_committed():
    """The committed classification reports' *Paper vs ours* and *Runs* tables still come out
    of the JSON exactly as the committed Markdown has them."""
    from mmer_jax.reproduce.report import render_markdown

    checked = 0
    for path in sorted(glob.glob(os.path.join(REPO, "reproductions", "*", "*.json"))):
        rep = json.load(open(path))
        if "ours" not in rep or rep.get("task") == "regression":
            continue
        md = render_markdown(rep)
        committed = open(path[:-len(".json")] + ".md").read()
        for title in ("## Paper vs ours", "## Runs"):
            section = md.split(title, 1)[1].split("\n## ", 1)[0]
            assert title + section in committed, (path, title)
        checked += 1
    assert checked >= 5


def test_fold_summary_and_table_of_regression_runs():
    from mmer_jax.reproduce.harness import fold_summary
    from mmer_jax.reproduce.report import _fold_lines

    plan = {"protocol": "loso", "description": "leave one speaker out", "num_folds": 2,
            "folds": [1, 2], "speaker_independent": True, "speakers": {}}
    runs = []
    for fold in (1, 2):
        for seed in (0, 1):
            m = {k: 0.5 for k in METRICS} | {"mae": 0.1 * fold + 0.01 * seed, "corr": 0.5}
            runs.append({"task": "regression", "_fold": fold, "_workdir": f"f{fold}s{seed}",
                         "protocol": {"seed": seed, "split": "x", "examples": {"test": 4}},
                         "test": m, "validation": m})
    folds = fold_summary(plan, runs, seeds=2)
    assert "accuracy" not in folds["test_over_folds"]
    assert [f["test"]["mae"]["mean"] for f in folds["per_fold"]] == [
        pytest.approx(0.105), pytest.approx(0.205)]
    assert folds["test_over_folds"]["mae"]["mean"] == pytest.approx(0.155)
    text = "\n".join(_fold_lines(folds))
    assert "| Fold | Test speakers | Test examples | Acc-2 (non-0) | MAE | Corr |" in text
    assert "| 1 | — | 4 | 50.0 ± 0.0 | 0.105 ± 0.007 | 0.500 ± 0.000 |" in text
    assert "## Folds (test, protocol `loso`)" in text
