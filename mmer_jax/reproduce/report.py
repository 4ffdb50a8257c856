"""Markdown for ``reproductions/<system>/<corpus>.md`` from the harness's report dict.

A regression report (``task == "regression"``) shows MMSA's scores: Acc-2, F1 and Acc-3/5/7 in
percent, MAE in score units and Corr (Pearson r) as a number, the paper's on the same scale;
a predicted-vs-true scatter takes the place of the confusion matrix. A report of a
pretrained-encoder system adds *Encoder*, *Other encoders and protocols* and *Layer weights*
(:mod:`mmer_jax.reproduce.encoder_report`) where its runs carry them.
"""

from __future__ import annotations

from mmer_jax import metric_table
from mmer_jax.reproduce.encoder_report import context_lines, encoder_lines, layer_weight_lines
from mmer_jax.train.report_common import MISSING, cell, duration, markdown_table, num, pct

# Each score's label and format: the metric table's.
_NAMES = {name: m.label for name, m in metric_table.METRICS.items()}
# Scores shown as numbers (three decimals), not percent: MAE in score units, Corr in [-1, 1].
_SCORE_UNITS = metric_table.NOT_PERCENT


def _value(x, metric: str = "") -> str:
    """A score as shown: percent with one decimal, or a number with three for MAE and Corr."""
    return num(x, 3) if metric in _SCORE_UNITS else pct(x)


def _pm(stat: dict | None, metric: str = "") -> str:
    """'61.7 ± 0.8' (percent; '0.812 ± 0.014' for MAE and Corr) from a {mean, std} dict."""
    if not stat or stat.get("mean") is None:
        return MISSING
    if stat.get("std") is None:  # one seed: no spread to show
        return _value(stat["mean"], metric)
    return f"{_value(stat['mean'], metric)} ± {_value(stat['std'], metric)}"


def _delta(x, metric: str = "") -> str:
    if x is None:
        return MISSING
    return f"{x:+.3f}" if metric in _SCORE_UNITS else f"{100 * x:+.1f}"


def render_markdown(r: dict) -> str:
    """The report's Markdown (protocol, paper vs ours, per class or scatter, runs, timing).

    Args:
      r: the harness's report dict (:func:`mmer_jax.reproduce.harness.build_report`).
    """
    p = r["protocol"]
    seeds = len(r["runs"])
    folds = r.get("folds")
    regression = r.get("task") == "regression"
    units = ("Acc-2, F1 and Acc-3/5/7 in percent, MAE in score units, Corr (Pearson r) as a "
             "number" if regression else "in percent")
    if folds:
        n_seeds = folds["seeds"]
        lines = [
            f"# {r['system']} on {r['corpus']}, {folds['protocol']!r} folds: paper vs this "
            "reproduction",
            "",
            f"Config `{r['config']}`, fold protocol `{folds['protocol']}` ({folds['description']}"
            f"), folds {', '.join(map(str, folds['folds']))} of {folds['num_folds']}, "
            f"{n_seeds} seed{'' if n_seeds == 1 else 's'} per fold, all read from one build. "
            "*Folds* gives each fold and mean ± standard deviation over the folds (ddof 1) of "
            "the per-fold means; the other tables pool every fold × seed run (mean ± std over "
            f"those {seeds} runs), on the test split, {units}. Every number of ours below "
            "comes from the runs listed under *Runs*.",
            "",
        ]
    else:
        lines = [
            f"# {r['system']} on {r['corpus']}: paper vs this reproduction",
            "",
            f"Config `{r['config']}`, {seeds} seed{'' if seeds == 1 else 's'} "
            f"({', '.join(map(str, r['seeds']))}); "
            f"ours = mean ± standard deviation over seeds (ddof 1) on the test split, {units}. "
            "Every number of ours below comes from the runs listed under *Runs*.",
            "",
        ]

    lines += ["## Protocol", ""]
    ex = p.get("examples") or {}
    utt = p.get("utterances") or {}
    sizes = "/".join(str(ex.get(s, MISSING)) for s in ("train", "validation", "test"))
    if not ex and (r.get("folds") or {}).get("per_fold"):  # sizes differ per fold: list them
        sizes = "; ".join(
            f"fold {f['fold']}: " + "/".join(str((f.get("examples") or {}).get(s, MISSING))
                                             for s in ("train", "validation", "test"))
            for f in r["folds"]["per_fold"])
    rows = [
        ["Corpus", f"{cell(p['corpus'])} (config {cell(p.get('corpus_config'))})"],
        *([["Task", f"regression on the sentiment score (loss {cell(p.get('regression_loss'))})"
            ]] if regression else []),
        ["Classes", f"{cell(p['classes'])} ({len(p['classes'])})"],
        ["Split", cell(p.get("split"))],
        [
            "Train/validation/test",
            f"{sizes} {p.get('unit', 'utterance')}s"
            + (
                " · "
                + "/".join(str(utt.get(s)) for s in ("train", "validation", "test"))
                + " utterances"
                if utt
                else ""
            ),
        ],
        [
            "Speaker independent",
            cell(p.get("speaker_independent"))
            + (
                f" (declared by the config; the stored speaker ids overlap across splits: "
                f"{cell(not p['speaker_independent_measured'])})"
                if p.get("speaker_independent_measured") is not None
                else ""
            ),
        ],
        *([["Audio features normalised", p["feature_normalisation"]]]
          if p.get("feature_normalisation") else []),
        ["Model selection", cell(p.get("selection_rule"))],
        *([["Folds", cell(p.get("fold"))]] if folds else []),
        ["Selected (epoch, or fitted settings)", cell(r["ours"].get("selection"))],
        ["Seeds", str(folds["seeds"] if folds else seeds)
         + (f" per fold ({seeds} runs)" if folds else "")],
        [
            "Overrides",
            cell(" ".join(f"--config.{o}" for o in r["overrides"]))
            if r.get("overrides")
            else "none (the config as committed)"
            if "overrides" in r
            else "not recorded (a report written before overrides were)",
        ],
    ]
    lines += markdown_table(["Field", "Value"], rows, "ll")
    lines += encoder_lines(r)

    if folds:
        lines += _fold_lines(folds)

    lines += ["## Paper vs ours (test" + ("" if regression else ", %") + ")", ""]
    if r.get("paper_note"):
        lines += [f"_{r['paper_note']}_", ""]
    paper = r.get("paper") or {}
    if regression and paper:
        lines += [f"_Paper: {paper.get('source') or MISSING}. Scale: {paper.get('scale')}."
                  + (f" Acc-2 variant {paper['acc2_variant']}." if paper.get("acc2_variant")
                     else "") + "_", ""]
    rows = [
        [
            _NAMES[c["metric"]],
            _value(c["paper"], c["metric"]),
            _pm({"mean": c["ours_mean"], "std": c["ours_std"]}, c["metric"]),
            _delta(c["delta"], c["metric"]),
        ]
        for c in r["comparison"]
    ]
    lines += markdown_table(["Metric", "Paper", "Ours", "Ours − paper"], rows)
    lines += context_lines(r) + layer_weight_lines(r)
    if regression:
        return _regression_tail(r, lines, folds)

    classes = p["classes"]
    paper_pc = (r.get("paper") or {}).get("per_class") or {}
    ours_pc = r["ours"]["test"]["per_class"]
    lines += ["## Per class (test, %; per-class accuracy = recall)", ""]
    rows = [
        [
            c,
            pct((paper_pc.get(c) or {}).get("recall")),
            _pm(ours_pc[c]["recall"]),
            pct((paper_pc.get(c) or {}).get("f1")),
            _pm(ours_pc[c]["f1"]),
        ]
        for c in classes
    ]
    lines += markdown_table(["Class", "Paper acc", "Ours acc", "Paper F1", "Ours F1"], rows)
    runs = r["ours"]["test"]["accuracy"].get("n") or 0
    partial = [f"{c} (absent from {runs - (ours_pc[c]['recall'].get('n') or 0)} of {runs} runs; "
               f"its figures are over the other {ours_pc[c]['recall'].get('n') or 0})"
               for c in classes if (ours_pc[c]["recall"].get("n") or 0) < runs]
    if partial:
        lines += [f"_Classes absent from some runs' test split: {'; '.join(partial)}._", ""]

    if r.get("variants"):
        pv = (r.get("paper") or {}).get("variants") or {}
        lines += ["## Unimodal vs fused (test, %)", ""]
        rows = [
            [
                name,
                cell(v["modalities"]),
                pct((pv.get(name) or {}).get("accuracy")),
                _pm(v["test"]["accuracy"]),
                pct((pv.get(name) or {}).get("weighted_f1")),
                _pm(v["test"]["weighted_f1"]),
            ]
            for name, v in r["variants"].items()
        ]
        lines += markdown_table(
            ["Variant", "Modalities", "Paper acc", "Ours acc", "Paper wF1", "Ours wF1"], rows
        )

    same = r.get("baselines_same_harness") or {}
    paper_base = (r.get("paper") or {}).get("baselines") or {}
    floors = r.get("floors") or []
    if same or paper_base or floors:
        lines += ["## Baselines and floors (test, %)", ""]
        rows = [
            [
                f"**{r['system']} (this reproduction)**",
                MISSING,
                MISSING,
                _pm(r["ours"]["test"]["accuracy"]),
                _pm(r["ours"]["test"]["weighted_f1"]),
                f"{seeds} seed" + ("" if seeds == 1 else "s"),
            ]
        ]
        for name in sorted(set(same) | set(paper_base)):
            ours_b, pb = same.get(name) or {}, paper_base.get(name) or {}
            rows.append(
                [
                    name,
                    pct(pb.get("accuracy")),
                    pct(pb.get("weighted_f1")),
                    _pm(ours_b.get("accuracy")),
                    _pm(ours_b.get("weighted_f1")),
                    f"same harness, `{ours_b['source']}`" if ours_b else "not reproduced yet",
                ]
            )
        for f in floors:
            rows.append(
                [
                    f"{f['name']} (floor)",
                    MISSING,
                    MISSING,
                    pct(f["accuracy"]),
                    pct(f["weighted_f1"]),
                    f"measured on this data, {f['source']}",
                ]
            )
        lines += markdown_table(
            ["Model", "Paper acc", "Paper wF1", "Ours acc", "Ours wF1", "Source"], rows, "lrrrrl"
        )

    lines += [
        "## Confusion matrix (test, summed over "
        + ("folds and seeds" if r.get("folds") else "seeds") + ")",
        "",
        f"![confusion]({r['confusion']['png']})",
        "",
    ]

    if r["confusion"].get("variants_png"):
        lines += [
            "Per variant (test, summed over seeds):",
            "",
            f"![confusion per variant]({r['confusion']['variants_png']})",
            "",
        ]
    lines += _class_view_lines(r)

    lines += ["## Runs", ""]
    # Runs selected on validation UAR show it beside weighted F1 (the figure they were kept by).
    val_uar = "uar" in (r["protocol"].get("selection_rule") or "").split()[:3] and all(
        "uar" in x["validation"] for x in r["runs"])
    rows = [
        [
            f"{x['fold']} / {x['seed']}" if "fold" in x else str(x["seed"]),
            f"`{x['workdir']}`",
            cell(x["selection"]),
            pct(x["validation"]["weighted_f1"]),
            *([pct(x["validation"].get("uar"))] if val_uar else []),
            pct(x["test"]["accuracy"]),
            pct(x["test"]["weighted_f1"]),
            cell(x.get("num_params")),
        ]
        for x in r["runs"]
    ]
    lines += markdown_table(
        ["Fold / seed" if folds else "Seed", "Run dir", "Selection", "Val wF1",
         *(["Val UAR"] if val_uar else []), "Test acc", "Test wF1", "Params"],
        rows,
        "lllrrrr" + ("r" if val_uar else ""),
    )

    lines += _environment_lines(r)
    return "\n".join(lines).rstrip() + "\n"


def _environment_lines(r: dict) -> list[str]:
    """The "Environment and timing" table."""
    env, t = r["environment"], r["timing"]
    unit = t.get("example_unit", "utterance")
    rows = [
        [
            "Device",
            f"{cell(env.get('device_kind') or env.get('device'))} × "
            f"{cell(env.get('device_count'))}",
        ],
        ["JAX", cell(env.get("jax"))],
        ["Wall time, all seeds (as recorded by each run)", duration(t["total_seed_wall_s"])],
        ["Wall time, this harness call", duration(t["harness_wall_s"])],
        [f"Train {unit}s/s (mean over seeds)", num(t["train_examples_per_s"]["mean"], 1)],
    ]
    if t.get("train_utterances_per_s") is not None:
        rows.append(["Train utterances/s (mean)", num(t["train_utterances_per_s"], 1)])
    return ["## Environment and timing", ""] + markdown_table(["", "Value"], rows, "ll")


# The scores of a regression report's variant and per-run tables (the comparison has them all).
_REGRESSION_SHOWN = ("acc2_non0", "f1_non0", "mae", "corr")


def _regression_tail(r: dict, lines: list[str], folds: dict | None) -> str:
    """The rest of a regression report after *Paper vs ours*: variants, the predicted-vs-true
    scatter, the runs, environment and timing."""
    if r.get("variants"):
        lines += ["## Unimodal vs fused (test)", ""]
        rows = [[name, cell(v["modalities"])] + [_pm(v["test"][m], m) for m in _REGRESSION_SHOWN]
                for name, v in r["variants"].items()]
        lines += markdown_table(["Variant", "Modalities"]
                                + [_NAMES[m] for m in _REGRESSION_SHOWN], rows)
    scatter = r.get("scatter") or {}
    lines += ["## Predicted vs true score (test, every run)", ""]
    if scatter.get("png"):
        lines += [f"{scatter['points']} test predictions of {scatter['runs_with_predictions']} "
                  f"of {len(r['runs'])} runs ({cell(scatter.get('variant'))}); dashed: y = x.",
                  "", f"![predicted vs true]({scatter['png']})", ""]
    else:
        lines += ["_No run saved its test predictions (predictions_test.json), so there is no "
                  "scatter plot._", ""]
    lines += ["## Runs", ""]
    rows = [
        [f"{x['fold']} / {x['seed']}" if "fold" in x else str(x["seed"]), f"`{x['workdir']}`",
         cell(x["selection"]), _value(x["validation"].get("mae"), "mae")]
        + [_value(x["test"].get(m), m) for m in _REGRESSION_SHOWN] + [cell(x.get("num_params"))]
        for x in r["runs"]
    ]
    lines += markdown_table(
        ["Fold / seed" if folds else "Seed", "Run dir", "Selection", "Val MAE"]
        + [f"Test {_NAMES[m]}" for m in _REGRESSION_SHOWN] + ["Params"],
        rows, "lll" + "r" * (len(_REGRESSION_SHOWN) + 2))
    lines += _environment_lines(r)
    return "\n".join(lines).rstrip() + "\n"


def _class_view_lines(r: dict) -> list[str]:
    """One table + figure per class-subset view (e.g. S001's 6-class figures of 8 classes)."""
    lines = []
    for view, spec in (r.get("class_views") or {}).items():
        first = next(iter(spec["variants"].values()))
        lines += [
            f"## Class view {view!r}: {len(first['classes'])} of "
            f"{len(r['protocol']['classes'])} classes (test, summed over seeds)",
            "",
            "Rows and columns of the view's classes; predictions of a left-out class go to "
            "`other`. *Accuracy* counts those as wrong; *within view* drops them, as a matrix "
            "printed without `other` would.",
            "",
        ]
        rows = [
            [
                v,
                pct(cv["accuracy"]),
                pct(cv["accuracy_within_view"]),
                str(cv["clips"]),
                str(cv["predicted_other"]),
            ]
            for v, cv in spec["variants"].items()
        ]
        header = ["Variant", "Accuracy", "Within view", "Clips", "Predicted other"]
        lines += markdown_table(header, rows)
        lines += [f"![view {view}]({spec['png']})", ""]
    return lines


def _fold_lines(folds: dict) -> list[str]:
    """Per-fold test scores (mean ± std over seeds) and mean ± std over the folds: accuracy,
    weighted F1 and UAR, or Acc-2 (non-0), MAE and Corr of a regression report."""
    shown = metric_table.HEADLINE
    if "mae" in folds["test_over_folds"]:
        shown = ("acc2_non0", "mae", "corr")
    pct_note = "" if "mae" in shown else "%; "
    lines = [f"## Folds (test, {pct_note}protocol `{folds['protocol']}`)", ""]
    rows = []
    for f in folds["per_fold"]:
        test_spk = (f.get("speakers") or {}).get("test")
        rows.append([
            str(f["fold"]),
            cell(" ".join(map(str, test_spk))) if test_spk else MISSING,
            str((f.get("examples") or {}).get("test", MISSING)),
            *(_pm(f["test"][m], m) for m in shown),
        ])
    over = folds["test_over_folds"]
    rows.append([
        f"**mean ± std over {len(folds['per_fold'])} folds**", "", "",
        *(_pm(over[m], m) for m in shown),
    ])
    lines += markdown_table(
        ["Fold", "Test speakers", "Test examples", *(_NAMES[m] for m in shown)], rows,
        "llrrrr")
    return lines + _ensemble_lines(folds)


def _ensemble_lines(folds: dict) -> list[str]:
    """The seed ensemble of each fold (softmax averaged over its seeds), when every run saved
    its probabilities (:func:`mmer_jax.reproduce.harness.seed_ensemble`)."""
    over = folds.get("seed_ensemble_over_folds")
    if not over:
        return []
    shown = metric_table.HEADLINE
    seeds = folds["per_fold"][0]["seed_ensemble"]["seeds"]
    lines = [f"## Seed ensemble (test and validation, %; protocol `{folds['protocol']}`)", "",
             f"Per fold, the softmax outputs of its {seeds} seeds, each at its own "
             "validation-chosen checkpoint, averaged with equal weights (nothing chosen on "
             "test); mean ± std over the folds.", ""]
    rows = [[str(f["fold"]),
             *(_value(f["seed_ensemble"]["test"][m], m) for m in shown),
             _value(f["seed_ensemble"]["validation"]["uar"], "uar")]
            for f in folds["per_fold"]]
    rows.append([f"**mean ± std over {len(folds['per_fold'])} folds**",
                 *(_pm(over["test"][m], m) for m in shown), _pm(over["validation"]["uar"], "uar")])
    lines += markdown_table(["Fold", *(_NAMES[m] for m in shown), "Validation UAR"], rows,
                            "lrrrr")
    return lines
