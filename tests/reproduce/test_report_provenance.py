"""Reproduction reports carry their provenance, and change without a run only through a recorded
refresh (issue 31)."""

from __future__ import annotations

import json
import os
import shutil

import ml_collections
import numpy as np

from mmer_jax.reproduce import harness, refresh
from mmer_jax.train import provenance

from .test_class_views import _fake_run

REF = harness.REFERENCE_DIR


def test_a_report_records_its_provenance_and_shows_it(tmp_path):
    cfg = ml_collections.ConfigDict(dict(
        data=dict(corpus="ravdess", config="av"), train=dict(select_metric="weighted_f1"),
        variants=dict(audio=["audio"], video=["frames"], fused=["audio", "frames"]),
        primary_variant="fused"))
    runs = [_fake_run(s, np.random.default_rng(s)) for s in (0, 1)]
    runs[0]["provenance"] = {"code": {"commit": "a" * 40, "dirty": False},
                             "config_sha256": "c" * 64, "build": {"name": "ravdess"}}
    path = os.path.join(harness.REPO, "experiments", "s001_ravdess.py")
    report = harness.build_report("s001", "ravdess", path, cfg, runs, str(tmp_path), 0.0)
    block = report["provenance"]
    assert block["config_path"] == "experiments/s001_ravdess.py"
    assert block["config_sha256"] == provenance.canonical_sha256(block["config"])
    assert len(block["code"]["commit"]) == 40 and block["code"]["dirty"] in (True, False)
    assert block["runs"][0]["commit"] == "a" * 40 and block["runs"][1] == {
        "workdir": "w/seed1", "recorded": None}  # a run from before provenance: said so
    papers = block["inputs"]["paper_sources"]["mmer_jax/reproduce/papers.py"]
    assert papers == provenance.file_sha256(os.path.join(harness.REPO, "mmer_jax", "reproduce",
                                                         "papers.py"))
    md = harness.report_markdown(report)
    assert "## Provenance" in md and block["code"]["commit"] in md
    assert block["config_sha256"] in md


def _copy_reports(tmp_path, *names):
    for name in names:
        os.makedirs(tmp_path / os.path.dirname(name), exist_ok=True)
        for ext in (".json", ".md"):
            shutil.copy(os.path.join(REF, name + ext), tmp_path / (name + ext))
    return tmp_path


def test_a_refresh_that_changes_nothing_leaves_the_report_as_it_was(tmp_path):
    root = _copy_reports(tmp_path, "s002/iemocap_text", "cmn/iemocap_text")
    before = (root / "s002" / "iemocap_text.json").read_bytes()
    assert refresh.main([str(root / "s002" / "iemocap_text.json")]) == 0
    assert (root / "s002" / "iemocap_text.json").read_bytes() == before


def test_a_baseline_rerun_reaches_a_report_only_through_a_recorded_refresh(tmp_path):
    root = _copy_reports(tmp_path, "s002/iemocap_text", "cmn/iemocap_text")
    cmn = root / "cmn" / "iemocap_text.json"
    rep = json.loads(cmn.read_text())
    rep["ours"]["test"]["weighted_f1"]["mean"] = 0.5  # a rerun of the baseline
    cmn.write_text(json.dumps(rep))
    s002 = root / "s002" / "iemocap_text.json"
    assert json.loads(s002.read_text())["baselines_same_harness"]["cmn"]["weighted_f1"][
        "mean"] != 0.5  # nothing changes by itself
    assert refresh.main([str(s002)]) == 0
    fresh = json.loads(s002.read_text())
    assert fresh["baselines_same_harness"]["cmn"]["weighted_f1"]["mean"] == 0.5
    (record,) = fresh["provenance"]["refreshes"]
    assert record["changed"] == ["baselines_same_harness"]
    assert len(record["code"]["commit"]) == 40 and record["recorded_at"]
    assert record["inputs"]["baselines"][str(cmn)] == provenance.file_sha256(str(cmn))
    assert "Refreshed" in (root / "s002" / "iemocap_text.md").read_text()
    once = s002.read_bytes()
    assert refresh.main([str(s002)]) == 0 and s002.read_bytes() == once  # recorded once
    # What differs from the committed report: the baseline row and the refresh, nothing else.
    from mmer_jax.reproduce.listing import diff

    out = diff(os.path.join(REF, "s002", "iemocap_text.json"), str(s002))
    assert "\nbaseline rows: 1 differs\n  cmn.weighted_f1.mean: " in out
    assert "\nrefreshes: " in out and "\ntest scores" not in out and "\nconfig:" not in out
    assert "scores" in out.split("\nsame: ", 1)[1]


def test_a_paper_correction_is_recorded_too(tmp_path):
    root = _copy_reports(tmp_path, "mgmnet/iemocap_text")
    path = root / "mgmnet" / "iemocap_text.json"
    rep = json.loads(path.read_text())
    rep["paper"], rep["paper_note"] = None, "stale"
    path.write_text(json.dumps(rep))
    from mmer_jax.cli import main

    assert main(["reproduce", "--refresh", str(path)]) == 0
    (record,) = json.loads(path.read_text())["provenance"]["refreshes"]
    assert record["changed"] == ["paper", "paper_note"]
