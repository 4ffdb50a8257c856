"""`mmer reproduce` harness on a tiny IEMOCAP-text corpus: seeds, mean ± std, report files."""

import glob
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data_prep"))
from fixtures_text import write_cosmic  # noqa: E402

from mmer_jax.errors import UsageError  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TINY = [
    "model.text.embed_dim=8",
    "model.text.filters=4",
    "model.text.out=8",
    "train.epochs=2",
    "train.batch_size=4",
    "train.progress=false",
    "train.log_every=1",
    "data.max_tokens=8",
]
S002_TINY = ["model.context_hidden=8", "model.num_heads=2", "model.head_hidden=8"]
# Reports written by earlier runs of the harness: an independent record of what the report's
# paper columns and floors were, which the one copy in ``papers`` must still produce.
# (reproductions/ablation_<name>/ holds ablation tables, not per-system reports)
COMMITTED = sorted(p for p in glob.glob(os.path.join(REPO_ROOT, "reproductions", "*", "*.json"))
                   if not os.path.basename(os.path.dirname(p)).startswith("ablation_"))


def _committed(system, corpus):
    with open(os.path.join(REPO_ROOT, "reproductions", system, f"{corpus}.json")) as f:
        return json.load(f)


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: os.path.relpath(p, REPO_ROOT))
def test_paper_columns_and_floors_match_the_committed_reports(path):
    from mmer_jax.reproduce import harness

    with open(path) as f:
        rep = json.load(f)
    assert harness.floors(rep["corpus"]) == rep["floors"]
    if "comparison" not in rep:  # S004's hybrid report: paper table of its own (paper_s004)
        assert harness.paper_entry(rep["system"], rep["corpus"]) == (None, rep["paper_note"])
        return
    refreshed = harness.refresh_paper(rep)
    # A baseline rerun must reach the reports that cite it (python -m mmer_jax.reproduce.refresh).
    for key in ("paper", "paper_note", "comparison", "baselines_same_harness"):
        assert refreshed.get(key) == rep.get(key), f"{key}: run mmer_jax.reproduce.refresh"


def test_a_recipe_variant_reads_its_corpus_baselines_of_the_same_split_only(tmp_path):
    from mmer_jax.reproduce import harness

    split = _committed("cmn", "iemocap_text")["protocol"]["split"]
    rows = harness.baseline_rows("s002", "iemocap_text_paper", str(tmp_path), split)
    assert set(rows) == {"text_cnn", "bc_lstm", "cmn"}
    assert rows["cmn"]["source"] == "cmn/iemocap_text.json"
    assert rows["cmn"]["weighted_f1"] == _committed("cmn", "iemocap_text")["ours"]["test"][
        "weighted_f1"]
    # A report in the run's folder comes first, but not one of another split.
    other = _committed("cmn", "iemocap_text")
    other["protocol"]["split"] = "a different split"
    other["ours"]["test"]["weighted_f1"]["mean"] = 0.99
    (tmp_path / "cmn").mkdir()
    (tmp_path / "cmn" / "iemocap_text.json").write_text(json.dumps(other))
    rows = harness.baseline_rows("s002", "iemocap_text_paper", str(tmp_path), split)
    assert rows["cmn"]["weighted_f1"]["mean"] != 0.99
    same = dict(other, protocol=dict(other["protocol"], split=split))
    (tmp_path / "cmn" / "iemocap_text.json").write_text(json.dumps(same))
    rows = harness.baseline_rows("s002", "iemocap_text_paper", str(tmp_path), split)
    assert rows["cmn"]["weighted_f1"]["mean"] == 0.99
    assert harness.baseline_rows("s002", "emodb", str(tmp_path), split) == {}


def test_paper_per_class_figures_reach_reports_under_the_builds_class_names():
    # IEMOCAP's build says "hap"/"neu"/...; S002's Table 2 and the survey say happy/neutral/....
    s002 = _committed("s002", "iemocap_text")
    assert s002["protocol"]["classes"] == ["hap", "sad", "neu", "ang", "exc", "fru"]
    assert set(s002["paper"]["per_class"]) == set(s002["protocol"]["classes"])
    assert s002["paper"]["per_class"]["hap"]["f1"] == pytest.approx(0.360)
    assert s002["paper"]["per_class"]["fru"]["f1"] == pytest.approx(0.553)
    md = Path(REPO_ROOT, "reproductions", "s002", "iemocap_text.md").read_text()
    assert "| hap | 29.9 |" in md


def test_context_only_paper_figures_are_shown_without_a_difference():
    from mmer_jax.reproduce import harness

    rep = _committed("mgmnet", "iemocap_text")  # the survey's run: text + audio + video
    assert rep["paper"]["weighted_f1"] == pytest.approx(0.7233)
    assert rep["paper"]["per_class"]["exc"]["f1"] == pytest.approx(0.8025)
    assert rep["paper_note"].startswith("context, not a target")
    assert all(c["delta"] is None for c in rep["comparison"])
    like = harness.paper_section("s002", "iemocap_text", rep["protocol"]["classes"],
                                 rep["ours"]["test"], ["weighted_f1"])
    (wf1,) = like["comparison"]
    assert wf1["delta"] == pytest.approx(rep["ours"]["test"]["weighted_f1"]["mean"] - 0.61)


def test_refresh_rewrites_a_report_and_its_markdown(tmp_path):
    from mmer_jax.reproduce import refresh

    rep = _committed("mgmnet", "iemocap_text")
    rep["paper"], rep["paper_note"] = None, "stale"
    for c in rep["comparison"]:
        c["paper"] = None
    path = tmp_path / "iemocap_text.json"
    path.write_text(json.dumps(rep))
    assert refresh.main([str(path)]) == 0
    assert refresh.refresh_file(str(path))[1] is False  # a second pass changes nothing
    again = json.loads(path.read_text())
    assert again["paper"]["weighted_f1"] == pytest.approx(0.7233)
    assert "| Weighted F1 | 72.3 |" in (tmp_path / "iemocap_text.md").read_text()
    (tmp_path / "ablation.json").write_text(json.dumps({"rows": []}))
    assert refresh.main([str(tmp_path / "ablation.json")]) == 1


def test_floors_are_the_paper_registry_values_as_fractions():
    from mmer_jax.reproduce import harness, papers

    assert len(COMMITTED) >= 5  # the comparison above runs on real reports
    rep = _committed("s002", "iemocap_text")
    assert [f["weighted_f1"] for f in rep["floors"]] == [0.529, 0.579]
    percent = papers.floors("iemocap_text")
    fractions = harness.floors("iemocap_text")
    assert [f["name"] for f in fractions] == [f["name"] for f in percent]
    for pct, frac in zip(percent, fractions, strict=True):
        assert frac["accuracy"] == pytest.approx(pct["accuracy"] / 100, abs=1e-12)
        assert frac["weighted_f1"] == pytest.approx(pct["weighted_f1"] / 100, abs=1e-12)
    assert harness.floors("emodb") == []


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    base = tmp_path_factory.mktemp("repro")
    write_cosmic(base / "manual")
    return [f"data.data_dir={base / 'tfds'}", f"data.manual_dir={base / 'manual'}"]


def test_reproduce_writes_json_md_png_with_seed_stats(corpus, tmp_path):
    from mmer_jax.reproduce.harness import reproduce

    work, out = str(tmp_path / "runs"), str(tmp_path / "reproductions")
    base = reproduce(
        "text_cnn",
        corpus="iemocap_text",
        seeds=1,
        workdir=work,
        out_dir=out,
        overrides=corpus + TINY,
    )
    assert os.path.exists(base["iemocap_text"]["json"])
    paths = reproduce(
        "s002",
        corpus="iemocap_text",
        seeds=2,
        workdir=work,
        out_dir=out,
        overrides=corpus + TINY + S002_TINY,
    )["iemocap_text"]
    assert paths["json"] == os.path.join(out, "s002", "iemocap_text.json")
    assert os.path.getsize(paths["png"]) > 1000
    rep = json.load(open(paths["json"]))
    assert rep["seeds"] == [0, 1] and len(rep["runs"]) == 2
    # Numbers come from the seed runs: the mean/std are those of the runs' own results.json.
    seed_res = [
        json.load(open(os.path.join(work, "s002", "iemocap_text", f"seed{k}", "results.json")))
        for k in range(2)
    ]
    accs = [r["test"]["accuracy"] for r in seed_res]
    acc = rep["ours"]["test"]["accuracy"]
    assert acc["values"] == accs and acc["mean"] == pytest.approx(sum(accs) / 2)
    assert acc["std"] == pytest.approx(abs(accs[0] - accs[1]) / 2**0.5)
    n_test = sum(sum(row) for row in rep["confusion"]["summed_over_seeds"])
    assert n_test == 2 * rep["protocol"]["utterances"]["test"] == 2 * 5
    assert rep["protocol"]["unit"] == "dialogue" and rep["protocol"]["seeds"] == 2
    assert set(rep["ours"]["test"]["per_class"]) == set(rep["protocol"]["classes"])
    assert rep["environment"]["jax"] and rep["timing"]["train_examples_per_s"]["n"] >= 0
    assert "text_cnn" in rep["baselines_same_harness"]
    assert rep["floors"] == _committed("s002", "iemocap_text")["floors"]
    md = open(paths["md"]).read()
    for text in (
        "## Protocol",
        "## Paper vs ours",
        "±",
        "text_cnn",
        "57.9",
        "confusion.png",
        "## Runs",
        "Speaker independent",
    ):
        assert text in md, text
    if rep["paper"] is None:
        assert "no paper figure for s002 on iemocap_text" in md

    # Running again reads the finished seeds back instead of training them again.
    before = os.path.getmtime(os.path.join(work, "s002", "iemocap_text", "seed0", "results.json"))
    again = reproduce(
        "s002",
        corpus="iemocap_text",
        seeds=2,
        workdir=work,
        out_dir=out,
        overrides=corpus + TINY + S002_TINY,
    )["iemocap_text"]
    assert (
        os.path.getmtime(os.path.join(work, "s002", "iemocap_text", "seed0", "results.json"))
        == before
    )
    assert json.load(open(again["json"]))["ours"]["test"]["accuracy"]["values"] == accs


def test_unavailable_data_is_skipped_or_refused(tmp_path):
    from mmer_jax.reproduce.harness import reproduce

    empty = tmp_path / "empty"
    empty.mkdir()
    # Only the IEMOCAP config: other corpora (the generated one is always available) would train.
    exp = tmp_path / "experiments"
    exp.mkdir()
    shutil.copy(os.path.join(REPO_ROOT, "experiments", "s002_iemocap_text.py"), exp)
    over = [f"data.data_dir={tmp_path / 'tfds'}", f"data.manual_dir={empty}"]
    out = reproduce(
        "s002", seeds=1, workdir=str(tmp_path / "w"), out_dir=str(tmp_path / "o"), overrides=over,
        experiments_dir=str(exp),
    )
    assert set(out) == {"iemocap_text"}
    assert "not built" in out["iemocap_text"]["skipped"]
    # names the file to fetch, not only the folder that lacks it
    assert "iemocap.pkl from declare-lab/conv-emotion" in out["iemocap_text"]["skipped"]
    with pytest.raises(UsageError, match="not built"):
        reproduce(
            "s002", corpus="iemocap_text", seeds=1, workdir=str(tmp_path / "w"), overrides=over,
            experiments_dir=str(exp),
        )
    with pytest.raises(UsageError, match="no config"):
        reproduce("s002", corpus="nosuchcorpus")


def test_a_class_absent_from_a_runs_test_split_is_left_out_of_its_per_class_figures():
    from mmer_jax.reproduce.harness import summarize

    def run(calm_support, calm_recall):
        return {"accuracy": 0.5, "per_class": {
            "angry": {"recall": 0.6, "f1": 0.7, "precision": 0.8, "support": 10},
            "calm": {"recall": calm_recall, "f1": calm_recall, "precision": 0.0,
                     "support": calm_support}}}

    # TurEV-DB's fold 1 (speaker 1157) has no calm clip: its 0 is no measurement.
    out = summarize([run(0, 0.0), run(5, 0.4), run(5, 0.6)], ["angry", "calm"])
    calm = out["per_class"]["calm"]
    assert calm["recall"]["n"] == 2 and calm["recall"]["mean"] == pytest.approx(0.5)
    assert calm["f1"]["values"] == [0.4, 0.6]
    assert calm["precision"]["n"] == 3  # predictions of calm there are still wrong ones
    assert out["per_class"]["angry"]["recall"]["n"] == 3
