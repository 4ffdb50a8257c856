"""The hybrid's report moved into its package (mmer_jax.fitted.s004_hybrid.report) unchanged: the
committed report's JSON renders to the committed markdown byte for byte."""

import json
import os

from mmer_jax.fitted.s004_hybrid import report

REF = os.path.join(os.path.dirname(__file__), "..", "..", "reproductions", "s004_hybrid")


def test_the_committed_report_renders_to_its_committed_markdown():
    with open(os.path.join(REF, "generated.json")) as f:
        rep = json.load(f)
    with open(os.path.join(REF, "generated.md")) as f:
        assert report.render(rep) == f.read()
    # A report of the registered system names its runner; the numbers render the same.
    again = report.render(dict(rep, runner=report.RUNNER))
    assert "runner `mmer reproduce s004_hybrid`" in again
    assert again.replace(report.RUNNER, report.EARLIER_RUNNER) == report.render(rep)


def test_claims_and_summary_recompute_from_the_per_seed_rows():
    with open(os.path.join(REF, "generated.json")) as f:
        rep = json.load(f)
    summary = report.summarise(rep["per_seed"])
    assert summary == rep["summary"]
    assert report.claims(summary, rep["context"]) == rep["claims"]
