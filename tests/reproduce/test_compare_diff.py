"""``mmer compare --diff``: scores written as ``mmer compare`` writes them (metric_table), under
the split and variant they are of; a side without a provenance block gets one line, not a
``(missing) -> ...`` line per field."""

from __future__ import annotations

import json
import os
import re

from mmer_jax.cli import main
from mmer_jax.reproduce import harness
from mmer_jax.reproduce.listing import diff

REF = harness.REFERENCE_DIR


def test_two_committed_reports(capsys):
    """The issue's example: two reports from before provenance was recorded."""
    a, b = (os.path.join(REF, p) for p in ("s003/emodb.json", "crnn_ma/emodb.json"))
    assert main(["compare", "--diff", a, b]) == 0
    out = capsys.readouterr().out
    for side in "AB":
        assert out.count(f"{side} has no provenance block (written before provenance was "
                         "recorded): code/packages/build/config not compared\n") == 1
    assert "(missing)  ->  {" not in out and "\ncode:" not in out and "\npackages:" not in out
    scores = out.split("\ntest scores (test split, variant audio, mean over seeds; percent): ",
                       1)[1].split("\n\n", 1)[0]
    want = json.load(open(a))["ours"]["test"]["weighted_f1"]["mean"]
    assert f"  weighted_f1: {100 * want:.1f}  ->  " in scores
    assert not re.search(r"\b0\.\d", scores), scores  # no raw fractions


def _run(root, name, variant, test, provenance=None):
    d = root / name
    d.mkdir()
    results = {"variant": variant, "test": test}
    if provenance:
        results["provenance"] = provenance
    (d / "results.json").write_text(json.dumps(results))
    (d / "config.json").write_text(json.dumps({"train": {"lr": 0.001}}))
    return str(d)


def test_runs_one_with_provenance_regression_scores(tmp_path):
    """Variant: two runs, only B with a block, of different variants; MAE stays a number."""
    a = _run(tmp_path, "a", "fused", {"mae": 0.8123, "acc2_non0": 0.7})
    b = _run(tmp_path, "b", "text", {"mae": 0.75, "acc2_non0": 0.71},
             {"code": {"commit": "e" * 40, "dirty": False}, "packages": {"jax": "0.4"},
              "config": {"train": {"lr": 0.002}}})
    out = diff(a, b)
    assert out.count("has no provenance block") == 1
    assert ("A has no provenance block (written before provenance was recorded): "
            "code/packages/build not compared") in out
    assert "\ncode:" not in out and "(missing)" not in out
    assert "config: 1 differs\n  train.lr: 0.001  ->  0.002" in out
    assert ("test scores (A: test split, variant fused; B: test split, variant text; percent, "
            "MAE and Corr as numbers): 2 differ\n  acc2_non0: 70.0  ->  71.0\n"
            "  mae: 0.812  ->  0.750") in out
