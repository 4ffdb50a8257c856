"""The report of ``mmer reproduce s004_hybrid``: ``<out>/s004_hybrid/<corpus>.{md,json}``.

The registry entry's reporter (:func:`write_report`): the harness trains (or reads back) the seed
runs, each of which wrote its rows to ``variants/<variant>/hybrid.json`` (:mod:`.fit`), and this
summarises them: mean ± std (ddof 1) over the seeds, per-seed numbers in the JSON, S004's three
claims tested on the seeds, S004's own numbers (:data:`PAPER`) beside ours.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from mmer_jax.fitted.s004_hybrid.fit import HYBRID_FILE
from mmer_jax.io_utils import atomic_write_json, atomic_write_text
from mmer_jax.reproduce import harness, report_provenance
from mmer_jax.reproduce.launch import read_results
from mmer_jax.train.export_features import SPLITS
from mmer_jax.train.provenance import markdown_lines

# What the report names as its runner; a report without a "runner" field was written by the
# runner before the hybrid was a registered system, and re-renders naming that one.
RUNNER = "mmer reproduce s004_hybrid"
EARLIER_RUNNER = "python -m experiments.s004_hybrid"

# S004's reported numbers (shared/papers/S004_*; ANCHORS.md §1), on CMU-MOSI / MELD, not here.
PAPER = {
    "table2": {"tap_conv": 66.09, "tap_avgpool": 63.84, "tap_dropout": 79.18, "tap_fc": 85.75},
    "table3_mean_accuracy": {"voice": 83.72, "video": 80.19, "fused": 88.64},
    "fused_accuracy": {"cmu_mosi": 87.56, "meld": 90.06},
    "chi2_gain_points": 3.0,
}
ROWS = {"speech": "speech SVC", "face": "face SVC", "sugeno": "fused Sugeno",
        "choquet": "fused Choquet", "concat": "concatenated SVC",
        "across": "across-modality LSTM -> SVC"}

def _stat(values) -> dict:
    v = 100.0 * np.asarray(values, float)
    return {"per_seed": v.round(2).tolist(), "mean": float(v.mean()),
            "std": float(v.std(ddof=1)) if v.size > 1 else None}


def summarise(per_seed: list[dict]) -> dict:
    """Mean ± std (percent) over seeds of every Table 2 row, of every fused row per context
    setting (``fused[context][row][chi2]``), and of the networks."""
    def gather(get):
        return {m: _stat([get(r)[m] for r in per_seed]) for m in ("accuracy", "weighted_f1")}

    first = per_seed[0]
    table2 = {tap: {k: gather(lambda r, t=tap, k=k: r["table2"][t][k]["test"])
                    for k in first["table2"][tap]} for tap in first["table2"]}
    fused = {ctx: {row: {k: gather(lambda r, c=ctx, row=row, k=k: r["fused"][c][k][row]["test"])
                         for k in by} for row in by["off"]}
             for ctx, by in first["fused"].items()}
    networks = {n: gather(lambda r, n=n: r["networks"][n]["test"]) for n in first["networks"]}
    return {"table2": table2, "fused": fused, "networks": networks}


def context_gain(summary: dict, context: str) -> dict:
    """Accuracy of each row after the context stage minus without it (chi-square on, points);
    rows only the context setting has (``across``) are compared with the concatenated SVC."""
    fused = summary["fused"]
    if context == "none":
        return {}
    base = fused["none"]
    return {row: by["on"]["accuracy"]["mean"]
            - base.get(row, base["concat"])["on"]["accuracy"]["mean"]
            for row, by in fused[context].items()}


def claims(summary: dict, context: str) -> dict:
    """S004's three claims, tested on accuracy means (the paper reports accuracy), on the rows
    of the configured ``context`` setting (Table 2 has no context stage)."""
    fused, t2 = summary["fused"][context], summary["table2"]

    def acc(row, k):
        return fused[row][k]["accuracy"]

    single = max(acc("speech", "on")["mean"], acc("face", "on")["mean"])
    best_fused = max((r for r in ("sugeno", "choquet", "concat", "across") if r in fused),
                     key=lambda r: acc(r, "on")["mean"])
    per_seed_wins = sum(
        f > max(s, v) for f, s, v in zip(acc("choquet", "on")["per_seed"],
                                         acc("speech", "on")["per_seed"],
                                         acc("face", "on")["per_seed"], strict=True))
    gains = {row: acc(row, "on")["mean"] - acc(row, "off")["mean"] for row in fused}
    tap_means = {tap: t2[tap]["off"]["accuracy"]["mean"] for tap in t2}
    best_tap = max(tap_means, key=tap_means.get)
    fused_gain = gains["choquet"]
    seed_gains = [a - b for a, b in zip(acc("choquet", "on")["per_seed"],
                                        acc("choquet", "off")["per_seed"], strict=True)]
    n_seeds = len(seed_gains)
    # A claim holds only when every seed agrees; a mean that moves the right way while some
    # seed disagrees is reported as such ("mean_holds"), not as support.
    return {
        "fused_beats_single": {
            "holds": per_seed_wins == n_seeds,
            "mean_holds": acc("choquet", "on")["mean"] > single,
            "choquet": acc("choquet", "on")["mean"], "best_single": single,
            "best_fused_row": best_fused, "seeds_where_choquet_beats_both": per_seed_wins},
        "chi2_gain": {"holds": fused_gain >= PAPER["chi2_gain_points"]
                      and all(g > 0 for g in seed_gains),
                      "mean_holds": fused_gain >= PAPER["chi2_gain_points"],
                      "direction_holds": fused_gain > 0, "gain_points": gains,
                      "choquet_gain_per_seed": seed_gains},
        "fc_best": {"holds": best_tap == "tap_fc", "best_tap": best_tap, "means": tap_means},
    }


def paper_fields(corpus: str) -> dict:
    """The ``floors`` / ``paper`` / ``paper_note`` fields every committed report carries, as the
    harness fills them (tests/reproduce/test_harness.py checks them against the registry)."""
    entry, note = harness.paper_entry("s004_hybrid", corpus)
    return {"floors": harness.floors(corpus), "paper": harness.paper_scores(entry) or None,
            "paper_note": note}


def _pm(s: dict) -> str:
    return f"{s['mean']:.1f} ± {s['std']:.1f}" if s["std"] is not None else f"{s['mean']:.1f}"


def _identical_note(rep: dict) -> str:
    """What the report says about taps that are the same features."""
    pairs = [sorted(map(tuple, r["identical_taps"])) for r in rep["per_seed"]]
    if not pairs[0]:
        return ""
    same = ", ".join(f"`{a}` = `{b}`" for a, b in pairs[0])
    every = "in every seed" if all(p == pairs[0] for p in pairs) else "in seed 0"
    return (f"The exported features are exactly equal {every}: {same}. Dropout is the identity "
            "in eval mode, and at 32 x 32 input this CPU-sized network's last feature map is "
            "1 x 1, so its spatial max (`tap_conv`) and mean (`tap_avgpool`) coincide: those rows "
            "of Table 2 are one measurement, not three.")


def _notes(rep: dict) -> list[str]:
    """Observations computed from the numbers: rows that score the same in every seed, the
    size of the chi-square effect against the seed spread, feature- vs decision-level fusion."""
    fused = rep["summary"]["fused"][rep["context"]]
    out = []
    for k, label in (("off", "without"), ("on", "with")):
        rows = list(fused)
        def scored(row, k=k):
            return [fused[row][k][m]["per_seed"] for m in ("accuracy", "weighted_f1")]

        same = [(a, b) for i, a in enumerate(rows) for b in rows[i + 1:]
                if scored(a) == scored(b)]
        if same:
            out.append(f"- Same test accuracy and weighted F1 in every seed ({label} "
                       "chi-square): " + ", ".join(f"{ROWS[a]} = {ROWS[b]}" for a, b in same)
                       + ".")
    gains = rep["claims"]["chi2_gain"]["gain_points"]
    spread = max(fused[r]["on"]["accuracy"]["std"] or 0.0 for r in fused)
    every_seed = [ROWS[r] for r in fused if all(
        a > b for a, b in zip(fused[r]["on"]["accuracy"]["per_seed"],
                              fused[r]["off"]["accuracy"]["per_seed"], strict=True))]
    out.append(f"- Chi-square changes accuracy by {min(gains.values()):+.1f} to "
               f"{max(gains.values()):+.1f} points; the seed standard deviations reach "
               f"{spread:.1f}. Rows that gain in every seed: "
               + (", ".join(every_seed) if every_seed else "none") + ".")
    cat, cho = fused["concat"]["on"]["accuracy"]["mean"], fused["choquet"]["on"]["accuracy"]["mean"]
    out.append(f"- Feature-level fusion (one SVC on the concatenated channels) reaches "
               f"{cat:.1f} %, {cat - cho:+.1f} points from decision-level Choquet fusion "
               f"(context {rep['context']!r}).")
    gain = rep.get("context_gain") or {}
    if gain:
        spread = max(by["on"]["accuracy"]["std"] or 0.0
                     for c in rep["summary"]["fused"].values() for by in c.values())
        out.append(f"- Context stage {rep['context']!r} minus none, accuracy with chi-square, "
                   "points: " + ", ".join(f"{ROWS[r]} {g:+.1f}" for r, g in gain.items())
                   + f" (the across row against the concatenated SVC without context); seed "
                   f"standard deviations reach {spread:.1f}.")
    return out


def _verdict(claim: dict) -> str:
    """"holds" (every seed agrees), "not shown" (the mean agrees, some seed does not), or
    "does not hold"."""
    if claim["holds"]:
        return "holds"
    return "not shown: the mean agrees, not every seed" if claim.get("mean_holds") else \
        "does not hold"


def _context_protocol(rep: dict) -> str:
    """The protocol table's context cell: the setting, the LSTMs and what they saw."""
    if rep["context"] == "none":
        return "none: the channels go to chi-square and LIBSVM as exported"
    lstm = rep["context_lstm"]
    ctx = [r["context"] for r in rep["per_seed"]]
    longest = max(i["max_group"] for c in ctx for i in c.values())
    epochs = ", ".join(f"{name} {[c[name]['best_epoch'] for c in ctx]}" for name in ctx[0])
    text = (f"`{rep['context']}`: a {lstm['hidden']}-unit LSTM "
            f"({'bi' if lstm['bidirectional'] else 'uni'}directional) per modality over each "
            "group's utterances in order, trained with a per-utterance softmax head (dropout "
            f"{lstm['dropout']}, Adam {lstm['learning_rate']}, {lstm['batch_size']} groups per "
            f"step, {lstm['epochs']} epochs, epoch by validation weighted F1); its hidden states "
            "replace the channel")
    if rep["context"] == "within+across":
        text += ("; the across row: those features min-max scaled (and chi-square selected), "
                 "spliced, one more such LSTM, its hidden states -> SVC")
    text += f". Best epochs per seed: {epochs}. Longest group: {longest} utterance(s)"
    if longest == 1:
        text += (" — this corpus has no videos of several utterances (group = example id), so "
                 "every sequence has length 1 and the LSTMs learn a per-utterance transform, not "
                 "context")
    return text


def render(rep: dict) -> str:
    """The markdown report of :func:`write_report`'s JSON ``rep``."""
    s, c = rep["summary"], rep["claims"]
    seeds = rep["seeds"]
    fb = c["fused_beats_single"]
    lines = [
        f"# s004_hybrid on {rep['corpus']}: S004's chi-square + LIBSVM + fuzzy-integral half",
        "",
        f"Config `{rep['config']}`, runner `{rep.get('runner', EARLIER_RUNNER)}`; {len(seeds)} "
        f"seeds ({', '.join(map(str, seeds))}), speech seed k paired with face seed k; ours = "
        "mean ± standard deviation over seeds (ddof 1) on the test split, in percent.",
        "",
        f"**Corpus: the generated corpus ({rep['corpus_detail']}), not CMU-MOSI or MELD.** "
        "S004's numbers below are on MOSI/MELD, or on a corpus it does not name (Table 3), "
        "and are not targets here; the claims are tested "
        "as directions.",
        "",
        "## Protocol",
        "",
        "| Field | Value |",
        "| --- | --- |",
        f"| Encoders | `{rep['speech_config']}` (CNN-LSTM, `{rep['speech_key']}`), "
        f"`{rep['face_config']}` (Inception-ResNet-v2, `{rep['face_key']}`) |",
        f"| Train/validation/test | {rep['examples']} |",
        "| Features | each run's best checkpoint (validation weighted F1), eval mode, exported "
        "by `python -m mmer_jax.train.export_features` |",
        f"| Context (S004's LSTMs over a video's utterances) | {_context_protocol(rep)} |",
        "| Preprocessing | min-max to [0, 1] fitted on train (chi-square needs non-negative "
        f"inputs); chi-square keeps ceil({rep['chi2_keep']} × D) features, scored on train |",
        f"| SVC | RBF LIBSVM (scikit-learn SVC); C in {rep['c_grid']}, gamma = "
        f"{rep['gamma_scales']} × 1/(D·var), chosen by validation weighted F1; probabilities by "
        "Platt scaling on 5-fold decision values |",
        "| Fusion | Sugeno and Choquet integrals over a λ-measure; densities = validation "
        "accuracy of each channel's SVC, mapped into [0.05, 0.95] |",
        "| Test | scored once per classifier, after every choice above |",
        "",
        "## S004's claims here",
        "",
        f"- **Fused > single modalities: {_verdict(c['fused_beats_single'])}.** Choquet "
        f"fusion (with chi-square) {c['fused_beats_single']['choquet']:.1f} % vs the best "
        f"single channel {c['fused_beats_single']['best_single']:.1f} % (mean accuracy); "
        f"Choquet beats both channels in {fb['seeds_where_choquet_beats_both']} of "
        f"{len(seeds)} seeds; best row overall (feature-level rows included): "
        f"{ROWS[fb['best_fused_row']]}. S004: voice 83.72, "
        "video 80.19, fused 88.64 (Table 3).",
        f"- **Chi-square +3 points (fused Choquet): {_verdict(c['chi2_gain'])}** (per seed: "
        + ", ".join(f"{g:+.1f}" for g in c["chi2_gain"].get("choquet_gain_per_seed", []))
        + "). Accuracy with "
        "minus without chi-square, points: " + ", ".join(
            f"{ROWS[r]} {g:+.1f}" for r, g in c["chi2_gain"]["gain_points"].items()) + ".",
        f"- **FC-layer features best (Table 2): {_verdict(c['fc_best'])}.** Best tap: "
        f"`{c['fc_best']['best_tap']}` (" + ", ".join(
            f"{t} {v:.1f}" for t, v in c["fc_best"]["means"].items()) + ", mean accuracy without "
        "chi-square; compare the differences with the seed standard deviations in the table). "
        + _identical_note(rep),
        *_notes(rep),
        "",
        "## Fused system (test, %)",
        "",
        f"Rows without the context stage (context `none`) and after it (context "
        f"`{rep['context']}`, the configured setting; the claims above use it).",
        "",
        "| Row | Context | Acc, no chi² | wF1, no chi² | Acc, chi² 50 % | wF1, chi² 50 % |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for ctx, rows in s["fused"].items():
        for row, by in rows.items():
            lines.append(f"| {ROWS[row]} | {ctx} | {_pm(by['off']['accuracy'])} | "
                         f"{_pm(by['off']['weighted_f1'])} | {_pm(by['on']['accuracy'])} | "
                         f"{_pm(by['on']['weighted_f1'])} |")
    for name, by in s["networks"].items():
        lines.append(f"| {name} network alone (softmax, end to end) | — | "
                     f"{_pm(by['accuracy'])} | {_pm(by['weighted_f1'])} | — | — |")
    lines += [
        "",
        "S004 (MOSI / MELD): fused 87.56 / 90.06 % accuracy.",
        "",
        "## Table 2: each face layer's features alone -> SVC (test, %; no context stage)",
        "",
        "| Layer | D | Paper acc | Acc, no chi² | wF1, no chi² | Acc, chi² 50 % | "
        "wF1, chi² 50 % |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for tap, by in s["table2"].items():
        lines.append(f"| `{tap}` | {rep['dims'][tap]} | {PAPER['table2'][tap]:.2f} | "
                     f"{_pm(by['off']['accuracy'])} | {_pm(by['off']['weighted_f1'])} | "
                     f"{_pm(by['on']['accuracy'])} | {_pm(by['on']['weighted_f1'])} |")
    lines += ["", "## Runs", "", "| Seed | Speech run (best epoch) | Face run (best epoch) |",
              "| --- | --- | --- |"]
    for r in rep["per_seed"]:
        n = r["networks"]
        lines.append(f"| {r['seed']} | `{n['speech']['run']}` ({n['speech']['best_epoch']}) | "
                     f"`{n['face']['run']}` ({n['face']['best_epoch']}) |")
    lines += ["", f"Wall time of this runner call: {rep['wall_s']:.0f} s.", ""]
    if rep.get("provenance"):  # reports from before it was recorded have none
        lines += [*markdown_lines(rep["provenance"]), ""]
    return "\n".join(lines)


def write_report(system: str, corpus: str, config_path: str, cfg, run_dirs: list[str],
                 out_dir: str, wall_s: float) -> dict[str, str]:
    """The registry entry's reporter: summarises the seed runs ``run_dirs`` of ``cfg`` and
    writes ``<out_dir>/<system>/<corpus>.{json,md}``.

    Args:
      system: "s004_hybrid".
      corpus: the experiments file's corpus key ("generated").
      config_path: the experiments file.
      cfg: the run config (its ``model`` section is read).
      run_dirs: the finished seed runs, seed 0 first.
      out_dir: the report directory.
      wall_s: the harness's wall time for this corpus.

    Returns:
      ``{"json": path, "md": path}``.

    Raises:
      UsageError: a run has no ``hybrid.json`` (not a finished s004_hybrid run).
    """
    from mmer_jax.errors import UsageError
    from mmer_jax.models import model_config
    from mmer_jax.train.run import primary_variant

    m = model_config(cfg.model)
    variant = primary_variant(cfg)
    per_seed = []
    for d in run_dirs:
        path = os.path.join(d, "variants", variant, HYBRID_FILE)
        if not os.path.isfile(path):
            raise UsageError(f"{path}: missing; {d} is not a finished s004_hybrid run")
        with open(path) as f:
            per_seed.append(json.load(f))
    summary = summarise(per_seed)
    face_m = per_seed[0]["exports"]["face"]
    rep = {
        "system": system, "corpus": corpus, "corpus_detail": face_m["corpus"],
        "config": os.path.relpath(config_path, harness.REPO), "runner": RUNNER,
        "seeds": [r["seed"] for r in per_seed],
        "speech_config": f"experiments/{m.speech.system}_{corpus}.py",
        "face_config": f"experiments/{m.face.system}_{corpus}.py",
        "speech_key": m.speech.key, "face_key": m.face.key,
        "chi2_keep": m.chi2_keep, "c_grid": list(m.c_grid),
        "gamma_scales": list(m.gamma_scales), "context": m.context,
        "context_lstm": dataclasses.asdict(m.context_lstm),
        "examples": "/".join(str(face_m["examples"][s]) for s in SPLITS),
        "dims": face_m["keys"], "paper_s004": PAPER, **paper_fields(corpus),
        "summary": summary,
        "claims": claims(summary, m.context),
        "context_gain": context_gain(summary, m.context), "per_seed": per_seed,
        "wall_s": wall_s,
        # commit, config sha256, packages, the seed runs and their builds (no baseline rows)
        "provenance": report_provenance.report_block(
            cfg, config_path, [read_results(d) for d in run_dirs], []),
    }
    base = os.path.join(out_dir, system, corpus)
    os.makedirs(os.path.dirname(base), exist_ok=True)
    return {"json": atomic_write_json(base + ".json", rep),
            "md": atomic_write_text(base + ".md", render(rep))}
