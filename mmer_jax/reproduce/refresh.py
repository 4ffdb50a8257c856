"""Re-render committed reproduction reports after a change to the paper tables.

    python -m mmer_jax.reproduce.refresh reproductions/s002/iemocap_text.json [...]

Recomputes each report's paper part (``paper``, ``paper_note``, ``comparison``: the figures of
:mod:`mmer_jax.reproduce.papers`, per-class names matched through
:mod:`mmer_jax.reproduce.class_names`) and its same-harness baseline rows (re-read from the
baselines' reports in the same reproductions folder, so S002's reports follow a rerun CMN), and
rewrites its ``.json`` and ``.md`` beside it. Our numbers, runs and figures are left as they
are: nothing is retrained, and the run directories need not exist any more. A refresh that
changes anything is recorded in the report's ``provenance.refreshes`` (when, the commit, what
changed, the sha256 of the files read); a report changes in no other way without a run.

    mmer reproduce --refresh reproductions/s002/iemocap_text.json   # the same, from the CLI
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from mmer_jax.io_utils import atomic_write_json, atomic_write_text
from mmer_jax.reproduce.harness import baseline_paths, refresh_paper, report_markdown
from mmer_jax.reproduce.report_provenance import record_refresh

# The parts of a report a refresh recomputes (everything else is the runs').
REFRESHED_KEYS = ("paper", "paper_note", "comparison", "baselines_same_harness",
                  "encoder_context")


def refresh_file(path: str) -> tuple[str, bool]:
    """Refreshes the report ``path`` (a ``.json``) and its ``.md``.

    Returns:
      (the ``.md`` path, whether the JSON's paper part or baseline rows changed).

    Raises:
      ValueError: ``path`` is not a reproduction report (no ``system``/``comparison``); an
        ablation table has no paper part.
    """
    with open(path) as f:
        report = json.load(f)
    if not isinstance(report, dict) or "comparison" not in report or "system" not in report:
        raise ValueError(f"{path}: not a reproduction report (no 'system' and 'comparison')")
    # <root>/<system>/<corpus>.json: the baselines' reports are <root>/<baseline>/<key>.json.
    root = os.path.dirname(os.path.dirname(os.path.abspath(path)))
    fresh = refresh_paper(report, root)
    # A refresh is recorded in the report (what changed, when, at which commit, from which
    # files); one that changes nothing leaves the report as it was.
    fresh = record_refresh(report, fresh, REFRESHED_KEYS, baseline_paths(
        report["system"], report["corpus"], root, report["protocol"].get("split")))
    changed = json.dumps(fresh, sort_keys=True) != json.dumps(report, sort_keys=True)
    atomic_write_json(path, fresh)
    md_path = os.path.splitext(path)[0] + ".md"
    return atomic_write_text(md_path, report_markdown(fresh)), changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mmer_jax.reproduce.refresh", description=__doc__.split("\n\n")[0],
        epilog="example: python -m mmer_jax.reproduce.refresh reproductions/s002/*.json")
    parser.add_argument("reports", nargs="+",
                        help="per-system report .json files (not ablation or hybrid reports)")
    args = parser.parse_args(argv)
    for path in args.reports:
        try:
            md, changed = refresh_file(path)
            what = ("paper part or baselines updated" if changed
                    else "paper part and baselines as before")
            print(f"[refresh] {md} ({what}; markdown re-rendered)")
        except (OSError, ValueError) as e:
            print(f"[refresh] {e}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
