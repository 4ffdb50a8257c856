"""Every number carries its provenance (issue 31): a fresh run's results.json and report.md hold
the block (commit, dirty flag, resolved config and its sha256, packages, build fingerprint), and
``mmer compare --diff`` names what differs between two runs."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess

import pytest

from mmer_jax.train import provenance
from mmer_jax.train.run import run

from .helpers import only_variant, tiny_config


def _tiny(data_dir, **extra):
    return only_variant(tiny_config(data_dir, **{"train.epochs": 1, **extra}), "audio", ["audio"])


@pytest.fixture(scope="module")
def two_runs(tiny_generated, tmp_path_factory):
    """Two runs of the tiny quickstart that differ in one key (``train.lr``)."""
    root = tmp_path_factory.mktemp("prov")
    a, b = str(root / "a"), str(root / "b")
    run(_tiny(tiny_generated), a)
    run(_tiny(tiny_generated, **{"train.lr": 0.0005}), b)
    return a, b


def test_a_fresh_run_records_its_provenance(two_runs, tiny_generated):
    a, _ = two_runs
    with open(os.path.join(a, "results.json")) as f:
        block = json.load(f)["provenance"]
    with open(os.path.join(a, "config.json")) as f:
        config = json.load(f)
    assert block["config"] == config
    assert block["config_sha256"] == hashlib.sha256(json.dumps(
        config, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()
    commit = block["code"]["commit"]  # HEAD when the run started (others may commit since)
    assert len(commit) == 40 and isinstance(block["code"]["dirty"], bool)
    assert subprocess.run(["git", "-C", provenance.REPO, "merge-base", "--is-ancestor", commit,
                           "HEAD"]).returncode == 0
    assert set(block["packages"]) == set(provenance.PACKAGES)
    assert block["packages"]["jax"] == __import__("jax").__version__
    build = block["build"]
    assert (build["name"], build["config"]) == ("generated_emotion", "tiny")
    report = next(_build_reports(tiny_generated))
    assert build["build_report_sha256"] == provenance.file_sha256(report)
    md = open(os.path.join(a, "report.md")).read()
    assert "## Provenance" in md and block["code"]["commit"] in md
    assert block["config_sha256"] in md


def _build_reports(data_dir):
    for root, _, files in os.walk(data_dir):
        if "build_report.json" in files and "tiny" in root:
            yield os.path.join(root, "build_report.json")


def test_diff_names_the_one_key_two_runs_differ_in(two_runs, capsys):
    from mmer_jax.cli import main

    a, b = two_runs
    assert main(["compare", "--diff", a, b]) == 0
    out = capsys.readouterr().out
    config = out.split("\nconfig: ", 1)[1].split("\n\n", 1)[0]
    assert config.startswith("1 differs") and "train.lr: 0.001  ->  0.0005" in config
    assert "packages" in out.split("same: ", 1)[1]
    assert main(["compare", "--diff", a]) != 0  # one path: a clear error


def test_a_resume_under_other_code_is_appended_not_overwritten(tmp_path, monkeypatch):
    import ml_collections

    cfg = ml_collections.ConfigDict({"model": {"name": "s001"}, "data": {"encoder": ""}})
    monkeypatch.setattr(provenance, "code_state", lambda: {"commit": "e" * 40, "dirty": False})
    first = provenance.record_start(str(tmp_path), cfg)
    assert provenance.record_start(str(tmp_path), cfg) == first  # same code: nothing added
    monkeypatch.setattr(provenance, "code_state", lambda: {"commit": "f" * 40, "dirty": True})
    again = provenance.record_start(str(tmp_path), cfg)
    assert again["recorded_at"] == first["recorded_at"] and again["code"] == first["code"]
    assert again["resumes"][-1]["code"] == {"commit": "f" * 40, "dirty": True}


def test_absent_packages_are_recorded_as_absent():
    assert provenance.package_versions(["numpy", "no-such-distribution-xyz"]) == {
        "numpy": __import__("numpy").__version__, "no-such-distribution-xyz": "absent"}


def test_differences_of_nested_blocks():
    a = {"config": {"train": {"lr": 1e-3, "epochs": 2}}, "recorded_at": "x"}
    b = {"config": {"train": {"lr": 5e-4, "epochs": 2}, "seed": 1}, "recorded_at": "y"}
    assert provenance.differences(a, b) == [("config.seed", "(missing)", 1),
                                            ("config.train.lr", 1e-3, 5e-4)]
