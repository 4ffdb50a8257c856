"""The README's result tables, generated from the committed result files.

Every figure table in README.md sits between ``<!-- BEGIN table:NAME -->`` and
``<!-- END table:NAME -->`` and is rewritten from ``reproductions/`` by

    python -m mmer_jax.reproduce.readme            # rewrite the marked blocks in README.md
    python -m mmer_jax.reproduce.readme --check    # exit 1 if README.md differs from the files

so a figure cannot drift from the files the runs wrote (``tests/reproduce/test_readme_tables.py``
checks it). Tables:

- ``quickstart``: ``reproductions/quickstart/results.json``, the ``results.json`` of the
  reference ``mmer train --config experiments/quickstart.py`` run;
- ``quickstart_spread``: ``reproductions/quickstart/spread/spread.json``, the quickstart over
  seeds and with XLA's CPU code capped at narrower vector extensions;
- ``reproductions``: every classification ``reproductions/<system>/<corpus>.json`` of
  ``mmer reproduce`` (a regression report has no accuracy or weighted F1: it is left out of
  this table, with a line naming it, and listed in ``regression``);
- ``regression``: the regression (CMU-MOSI/MOSEI style) reports: Acc-2 (non-0), F1 (non-0),
  MAE and Corr, the paper's beside them;
- ``unimodal_fused``: the variants of the reproductions on the generated corpus;
- ``ablation_fusion``: ``reproductions/ablation_fusion/fusion.json`` of ``mmer reproduce
  --ablation fusion``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys

from mmer_jax.metric_table import METRICS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
README = os.path.join(REPO, "README.md")
REFERENCE_DIR = os.path.join(REPO, "reproductions")
QUICKSTART = os.path.join(REFERENCE_DIR, "quickstart", "run", "results.json")

# Row order of the reproductions table: IEMOCAP text (S002, then its same-harness baselines),
# the generated corpus, EmoDB; reports not listed follow, sorted.
ORDER = [
    ("s002", "iemocap_text"), ("bc_lstm", "iemocap_text"), ("cmn", "iemocap_text"),
    ("text_cnn", "iemocap_text"), ("s001", "generated"), ("s002", "generated"),
    ("s003", "generated"), ("s001", "emodb"), ("s002", "emodb"), ("s003", "emodb"),
]
# Row labels of the unimodal-vs-fused table.
SYSTEM_LABELS = {
    "s001": "S001 (ResNet-18 MFCC + ResNet-34/LSTM frames)",
    "s002": "S002 (Bi-LSTM audio, 3-D CNN video, CNN text; context + MHA)",
    "s003": "S003 (1-D CNN audio, MobileFaceNet/LSTM frames; augmented)",
    "mi": "MI (conv + BiLSTM streams; cross-modal dynamic conv, residual gates)",
    "tsra": "TSRA (2-layer LSTMs; shared/private/fused spaces, 4 losses)",
    "mgmnet": "MGMNet (text-bridged attention, bilinear shift, bottleneck)",
}
VARIANT_COLUMNS = [("audio", "audio"), ("video", "video"), ("text", "text"), ("fused", "fused"),
                   ("fused_dropout05", "fused, dropout 0.5")]
UNITS = {"utterance": "clips", "dialogue": "dialogues"}
MISSING = "—"
# Marks a paper figure from another protocol or modality set (``paper["context_only"]``).
CONTEXT_MARK = " †"


def _pct(x) -> str:
    return MISSING if x is None else f"{100 * x:.1f}"


def _pm(stat: dict) -> str:
    if stat.get("mean") is None:
        return MISSING
    return _pct(stat["mean"]) + ("" if stat.get("std") is None else f" ± {_pct(stat['std'])}")


def _table(header: list[str], align: str, rows: list[list[str]]) -> list[str]:
    sep = ["---:" if a == "r" else "---" for a in align]
    return ["| " + " | ".join(r) + " |" for r in [header, sep, *rows]]


def _load(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def reports(ref_dir: str = REFERENCE_DIR) -> list[dict]:
    """The committed reproduction reports, in :data:`ORDER` (others after, sorted)."""
    found = {}
    for path in sorted(glob.glob(os.path.join(ref_dir, "*", "*.json"))):
        r = _load(path)
        if "ours" in r and "system" in r:
            r["_path"] = os.path.relpath(path, REPO)
            protocol = (r.get("folds") or {}).get("protocol") or ""
            found[(r["system"], r["corpus"], protocol)] = r
    keys = sorted(found, key=lambda k: (ORDER.index(k[:2]) if k[:2] in ORDER else len(ORDER),
                                        k))
    return [found[k] for k in keys]


def corpus_label(report: dict) -> str:
    """The corpus cell of a report's row: ``emodb``, or ``emodb (lso folds)`` for a fold report."""
    folds = report.get("folds") or {}
    return f"{report['corpus']} ({folds['protocol']} folds)" if folds else report["corpus"]


def runs_label(report: dict) -> str:
    """Seeds, or seeds x folds for a fold report."""
    folds = report.get("folds") or {}
    if folds:
        seeds = folds.get("seeds") or 1
        seeds = seeds if isinstance(seeds, int) else len(seeds)
        return f"{seeds} × {len(folds['folds'])} folds"
    return str(len(report.get("seeds") or report.get("runs", [])))


def is_regression(report: dict) -> bool:
    """Whether a reproduction report is of a regression task (its scores are MAE, Corr, Acc-2
    ...; reports written before reports recorded their task are classification)."""
    return report.get("task") == "regression"


def reproductions_table(ref_dir: str = REFERENCE_DIR) -> list[str]:
    """The classification reproductions: test accuracy, weighted F1 and UAR (mean ± std), the
    paper's accuracy / weighted F1, throughput; a line after the table names the regression
    reports left out (they are in :func:`regression_table`)."""
    rows, left_out = [], []
    for r in reports(ref_dir):
        if is_regression(r):
            left_out.append(f"{r['system']}/{corpus_label(r)}")
            continue
        test, paper = r["ours"]["test"], r.get("paper") or {}
        if r.get("folds"):  # mean ± std over the folds (each fold: its mean over seeds)
            test = r["folds"]["test_over_folds"]
        p_acc, p_wf1 = paper.get("accuracy"), paper.get("weighted_f1")
        timing = r.get("timing", {})
        rate = (timing.get("train_examples_per_s") or {}).get("mean")
        unit = UNITS.get(timing.get("example_unit", "utterance"), "examples")
        if unit == "clips" and set(r["ours"].get("modalities") or ["audio"]) <= {"text"}:
            unit = "utterances"  # transcripts: no audio or video clip is read
        md = r["_path"][:-len(".json")] + ".md"
        rows.append([
            r["system"], corpus_label(r), runs_label(r),
            _pm(test["accuracy"]), _pm(test["weighted_f1"]),
            _pm(test["uar"]) if "uar" in test else MISSING,
            MISSING if p_acc is None and p_wf1 is None else
            f"{_pct(p_acc)} / {_pct(p_wf1)}" + (CONTEXT_MARK if paper.get(
                "context_only") else ""),
            # Two significant digits below 10/s: a fitted system's 0.28/s is not "0".
            MISSING if rate is None else f"{rate:.2g} {unit}/s" if rate < 10 else
            f"{rate:.0f} {unit}/s",
            f"[md]({md})",
        ])
    header = ["system", "corpus", "seeds", "test accuracy", "test weighted F1", "test UAR",
              "paper (acc / wF1)", "train throughput", "report"]
    table = _table(header, "llrrrrrrl", rows)
    if any(CONTEXT_MARK in row[6] for row in rows):
        table += ["", f"{CONTEXT_MARK.strip()} The paper's figure on another protocol or modality "
                  "set (the survey's runs use text, audio and video with pretrained features): "
                  "context, not a target; the report says why."]
    if left_out:
        table += ["", f"Regression reports ({', '.join(left_out)}) score MAE, Corr and Acc-2 "
                  "instead: see the regression table."]
    return table


def _score(stat: dict, metric: str) -> str:
    """Mean ± std of a regression score: percent, or three decimals for MAE and Corr."""
    if METRICS[metric].percent:  # the metric table's format
        return _pm(stat)
    if stat.get("mean") is None:
        return MISSING
    return f"{stat['mean']:.3f}" + ("" if stat.get("std") is None else f" ± {stat['std']:.3f}")


def regression_table(ref_dir: str = REFERENCE_DIR) -> list[str]:
    """The regression reproductions: test Acc-2 (non-0), F1 (non-0) in percent, MAE and Corr
    (mean ± std over the runs) and the paper's Acc-2 / MAE / Corr on the same scale; a line
    saying so when there is none yet."""
    rows = []
    for r in reports(ref_dir):
        if not is_regression(r):
            continue
        test, paper = r["ours"]["test"], r.get("paper") or {}
        if r.get("folds"):
            test = r["folds"]["test_over_folds"]
        p = [paper.get("acc2_non0"), paper.get("mae"), paper.get("corr")]
        md = r["_path"][:-len(".json")] + ".md"
        rows.append([
            r["system"], corpus_label(r), runs_label(r),
            *(_score(test[m], m) for m in ("acc2_non0", "f1_non0", "mae", "corr")),
            MISSING if all(x is None for x in p) else
            f"{_pct(p[0])} / {MISSING if p[1] is None else f'{p[1]:.3f}'} / "
            f"{MISSING if p[2] is None else f'{p[2]:.3f}'}",
            f"[md]({md})",
        ])
    if not rows:
        return ["_No regression reproduction committed yet._"]
    header = ["system", "corpus", "seeds", "test Acc-2 (non-0)", "test F1 (non-0)", "test MAE",
              "test Corr", "paper (Acc-2 / MAE / Corr)", "report"]
    return _table(header, "llrrrrrrl", rows)


def unimodal_fused_table(ref_dir: str = REFERENCE_DIR) -> list[str]:
    """Test accuracy of each variant of the classification reproductions on the generated
    corpus."""
    rows = []
    for r in reports(ref_dir):
        if r["corpus"] != "generated" or not r.get("variants") or is_regression(r):
            continue
        v = r["variants"]
        rows.append([SYSTEM_LABELS.get(r["system"], r["system"])] + [
            _pct(v[name]["test"]["accuracy"]["mean"]) if name in v else MISSING
            for name, _ in VARIANT_COLUMNS
        ])
    return _table(["system"] + [title for _, title in VARIANT_COLUMNS], "lrrrrr", rows)


def _duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} min {s} s" if m else f"{s} s"


def quickstart_block(ref_dir: str = REFERENCE_DIR) -> list[str]:
    path = os.path.join(ref_dir, "quickstart", "run", "results.json")
    r = _load(path)
    env, timing = r["environment"], r["timing"]
    variants = r.get("variants") or {r["variant"]: {**r, "selection": r["protocol"]["selection"]}}
    order = [n for n in ("audio", "video", "text", "fused") if n in variants]
    order += [n for n in variants if n not in order]
    rows = []
    for name in order:
        v = variants[name]
        epoch = v.get("best_epoch") or str(v.get("selection", "")).rsplit("@ epoch", 1)[-1]
        rows.append([name, ", ".join(v["modalities"]), _pct(v["test"]["accuracy"]),
                     _pct(v["test"]["weighted_f1"]), _pct(v["test"]["uar"]), str(epoch).strip()])
    fused = (r.get("variants") or {}).get("fused")
    intro = (
        f"From `{os.path.relpath(path, REPO)}` ({env['device_kind']}, "
        f"{env['device_count']} device, jax {env['jax']}):\n{_duration(timing['wall_s'])} wall "
        f"recorded in `results.json`; {r['variant']}-model training "
        f"{timing['train_examples_per_s']:.0f} examples/s."
    )
    lines = [intro, ""]
    lines += _table(["variant", "modalities", "test accuracy", "test weighted F1", "test UAR",
                     "selected epoch"], "llrrrr", rows)
    singles = {n: variants[n]["test"]["accuracy"] for n in ("audio", "video", "text")
               if n in variants}
    if fused and singles:
        best = max(singles, key=singles.get)
        chance = 1.0 / len(r["protocol"]["classes"])
        acc = fused["test"]["accuracy"]
        lines += ["", f"Fused beats the best single modality ({best}) by "
                  f"{100 * (acc - singles[best]):.1f} points and chance ({_pct(chance)} %) by "
                  f"{acc / chance:.1f}×."]
    return lines


def ablation_fusion_block(ref_dir: str = REFERENCE_DIR) -> list[str]:
    """The fusion ablation's main table (``reproductions/ablation_fusion/fusion.json``)."""
    from mmer_jax.reproduce.ablation import score_table

    path = os.path.join(ref_dir, "ablation_fusion", "fusion.json")
    if not os.path.exists(path):
        return [f"_No committed fusion ablation yet ({os.path.relpath(path, REPO)})._"]
    rep = _load(path)
    md = os.path.relpath(path, REPO)[:-len(".json")] + ".md"
    env = rep["environment"]
    return [f"From [`{md}`]({md}) ({env.get('device_kind') or env.get('device')}, jax "
            f"{env.get('jax')}, seeds {', '.join(map(str, rep['seeds']))}): test weighted F1 "
            "(accuracy), mean ± std over seeds; bold: a column's best; costs in the report.", "",
            *score_table(rep)]


def quickstart_spread_block(ref_dir: str = REFERENCE_DIR) -> list[str]:
    """The quickstart over seeds and vector-extension caps (``reproductions/quickstart/spread/
    spread.json``, :mod:`mmer_jax.reproduce.quickstart_spread`)."""
    from mmer_jax.reproduce.quickstart_spread import spread_block

    return spread_block(os.path.join(ref_dir, "quickstart", "spread", "spread.json"))


BLOCKS = {
    "quickstart": quickstart_block,
    "quickstart_spread": quickstart_spread_block,
    "reproductions": reproductions_table,
    "unimodal_fused": unimodal_fused_table,
    "regression": regression_table,
    "ablation_fusion": ablation_fusion_block,
}
_BLOCK = re.compile(r"(<!-- BEGIN table:(\w+) -->\n)(.*?)(<!-- END table:\2 -->)", re.S)


def render(text: str, ref_dir: str = REFERENCE_DIR) -> str:
    """``text`` (the README) with every marked block regenerated from the result files in
    ``ref_dir``; the rest of ``text`` is kept as it is.

    Raises:
      KeyError: a block names no known table.
    """
    def fill(m: re.Match) -> str:
        return m.group(1) + "\n".join(BLOCKS[m.group(2)](ref_dir)) + "\n" + m.group(4)

    return _BLOCK.sub(fill, text)


def block_names(text: str) -> list[str]:
    return [m.group(2) for m in _BLOCK.finditer(text)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mmer_jax.reproduce.readme",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if README.md is out of date")
    ap.add_argument("--readme", default=README)
    args = ap.parse_args(argv)
    with open(args.readme) as f:
        text = f.read()
    new = render(text)
    if args.check:
        if new != text:
            print(f"{args.readme} differs from the result files; run "
                  "`python -m mmer_jax.reproduce.readme`", file=sys.stderr)
            return 1
        print(f"{args.readme} tables match reproductions/")
        return 0
    if new != text:
        with open(args.readme, "w") as f:
            f.write(new)
    print(f"{args.readme}: {', '.join(block_names(text)) or 'no marked blocks'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
