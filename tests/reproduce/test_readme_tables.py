"""README figures are generated from the committed result files and agree with them."""

import json
import os

import ml_collections
import numpy as np

from mmer_jax.reproduce import readme

from .test_class_views import _fake_run


def test_readme_tables_agree_with_the_committed_results():
    with open(readme.README) as f:
        text = f.read()
    names = readme.block_names(text)
    assert {"reproductions", "unimodal_fused"} <= set(names)
    if os.path.exists(readme.QUICKSTART):
        assert "quickstart" in names
    assert readme.render(text) == text, (
        "README.md differs from reproductions/; run `python -m mmer_jax.reproduce.readme`"
    )


def test_check_says_so_when_it_passes(tmp_path, capsys):
    """--check printed nothing on success; now one line (and on failure only the error)."""
    copy = tmp_path / "README.md"
    text = readme.render(open(readme.README).read())
    copy.write_text(text)
    assert readme.main(["--check", "--readme", str(copy)]) == 0
    assert capsys.readouterr().out == f"{copy} tables match reproductions/\n"
    marker = "<!-- BEGIN table:reproductions -->\n"
    copy.write_text(text.replace(marker, marker + "a stale line\n", 1))
    assert readme.main(["--check", "--readme", str(copy)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "differs from the result files" in err


def test_every_committed_report_is_a_row():
    table = "\n".join(readme.reproductions_table())
    regression = "\n".join(readme.regression_table())
    for r in readme.reports():
        if readme.is_regression(r):  # MMSA's metrics: a row of the regression block instead
            assert f"[md]({r['_path'][:-5]}.md)" in regression
            continue
        assert f"| {r['system']} | {readme.corpus_label(r)} | {readme.runs_label(r)} |" in table
        assert f"[md]({r['_path'][:-5]}.md)" in table


def test_paper_figures_of_another_protocol_are_marked_as_context():
    lines = readme.reproductions_table()
    (mgmnet,) = [r for r in lines if r.startswith("| mgmnet | iemocap_text |")]
    assert "| — / 72.3 † |" in mgmnet  # the survey's weighted F1, text + audio + video
    (s002,) = [r for r in lines if r.startswith("| s002 | iemocap_text_paper |")]
    assert "| 61.7 / 61.0 |" in s002  # like for like: no mark
    assert any(r.startswith("† The paper's figure on another protocol") for r in lines)
    (mi,) = [r for r in lines if r.startswith("| mi | iemocap_text |")]
    assert " utterances/s |" in mi  # transcripts, read one utterance at a time: not clips


def test_render_rewrites_only_marked_blocks(tmp_path, monkeypatch):
    ref = tmp_path / "reproductions" / "s003"
    ref.mkdir(parents=True)
    with open(os.path.join(readme.REFERENCE_DIR, "s003", "generated.json")) as f:
        rep = json.load(f)
    rep["ours"]["test"]["accuracy"] = {"mean": 0.5, "std": None}
    (ref / "generated.json").write_text(json.dumps(rep))
    monkeypatch.setattr(readme, "REPO", str(tmp_path))  # report links relative to it
    text = ("intro 1.0\n<!-- BEGIN table:reproductions -->\nstale\n"
            "<!-- END table:reproductions -->\nafter 2.0\n")
    new = readme.render(text, str(tmp_path / "reproductions"))
    assert new.startswith("intro 1.0\n<!-- BEGIN table:reproductions -->\n| system |")
    assert "| s003 | generated | 3 | 50.0 |" in new and "stale" not in new
    assert new.endswith("<!-- END table:reproductions -->\nafter 2.0\n")


def test_reports_record_their_overrides(tmp_path):
    from mmer_jax.reproduce import harness
    from mmer_jax.reproduce.report import render_markdown

    cfg = ml_collections.ConfigDict(dict(
        data=dict(corpus="ravdess", config="av"), train=dict(select_metric="weighted_f1"),
        variants=dict(audio=["audio"], video=["frames"], fused=["audio", "frames"]),
        primary_variant="fused"))
    runs = [_fake_run(0, np.random.default_rng(0))]
    report = harness.build_report("s001", "ravdess", "x.py", cfg, runs, str(tmp_path), 0.0,
                                  ["train.epochs=2"])
    assert report["overrides"] == ["train.epochs=2"]
    md = render_markdown(report)
    assert "| Overrides | --config.train.epochs=2 |" in md
    assert "1 seed (0)" in md and "1 seeds" not in md
    report = harness.build_report("s001", "ravdess", "x.py", cfg, runs, str(tmp_path), 0.0)
    assert "| Overrides | none (the config as committed) |" in render_markdown(report)
