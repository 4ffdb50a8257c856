"""Runs S004's hybrid (``experiments/s004_hybrid_<corpus>.py``) on finished encoder runs and writes
``<out>/s004_hybrid/<corpus>.{md,json}``.

    python -m experiments.s004_hybrid --corpus generated --workdir runs/reproduce \\
        [--speech-workdir DIR] [--face-workdir DIR] [--seeds 3] [--context none|within|...]
        [--update-reference]

Per seed k: the best checkpoints of ``<workdir>/s004_speech/<corpus>/seed<k>`` and
``<workdir>/s004_face/<corpus>/seed<k>`` are exported once (``<features>/<system>/seed<k>/``,
reused when their manifest matches the run's best epoch and has the ``order`` field), then

- Table 2: each face tap alone -> min-max scaling (-> chi-square) -> SVC;
- the fused system: speech and face channels (ids aligned) -> per-channel SVC -> Sugeno and
  Choquet fusion, and the concatenated channels -> one SVC; with and without chi-square; once
  on the raw channels (context "none") and once after the config's ``context`` stage: S004's
  LSTM within each modality over the utterances of a video (:mod:`mmer_jax.train.context_lstm`),
  whose outputs replace the channels, and with "within+across" one more row, "across": each
  modality's context features -> min-max (-> chi-square, fitted on train) -> spliced -> an LSTM
  across the modalities -> SVC.

The LSTMs' epochs, C, gamma and the fuzzy densities are chosen on validation; the test split is
scored once per classifier. Reports: mean ± std (ddof 1) over the seeds, per-seed numbers in the
JSON.
"""

from __future__ import annotations

import argparse
import glob
import importlib
import json
import os
import sys
import time

import numpy as np

from mmer_jax.classic.hybrid import ChannelFeatures, S004Hybrid, SplitFeatures, join_channels
from mmer_jax.io_utils import atomic_write_json
from mmer_jax.reproduce import harness
from mmer_jax.train.context_lstm import ContextConfig, GroupedSplit, contextual_features
from mmer_jax.train.export_features import MANIFEST, SPLITS, export_features, load_split

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
CONTEXTS = ("none", "within", "within+across")
CHI2 = {"off": None}  # "on" is the config's chi2_keep


def run_dir(workdir: str, system: str, corpus: str, seed: int) -> str:
    """``<workdir>/<system>/<corpus>/seed<k>``, where ``mmer reproduce`` puts seed k."""
    return os.path.join(workdir, system, corpus, f"seed{seed}")


def ensure_export(run: str, keys: list[str], out: str) -> dict:
    """The features ``keys`` of ``run`` in ``out``: exported unless a manifest of the same run,
    best epoch and keys, written with the ``order`` field, is there already. Returns the
    manifest."""
    path = os.path.join(out, MANIFEST)
    best = json.load(open(os.path.join(run, "results.json"))).get("best_epoch")
    if os.path.exists(path):
        have = json.load(open(path))
        if (have["workdir"] == os.path.abspath(run) and have["best_epoch"] == best
                and set(keys) <= set(have["keys"]) and "order" in have):
            return have
    return export_features(run, keys, out)


def channel(out: str, key: str) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``{split: (ids, features, labels)}`` of one exported key."""
    return {s: (z["id"], z[key], z["label"]) for s in SPLITS for z in [load_split(out, s)]}


def fit_rows(splits: dict[str, SplitFeatures], keep, cfg, seed: int) -> dict:
    """One hybrid fitted on train/validation, scored once on test: ``{row: {...}}``."""
    model = S004Hybrid(chi2_keep=keep, c_grid=cfg.c_grid, gamma_scales=cfg.gamma_scales,
                       seed=seed).fit(splits["train"], splits["validation"])
    test = model.evaluate(splits["test"])
    return {row: {"test": test[row], "validation": model.validation_[row],
                  "dims": model.dims_.get(row), "svc": model.settings_.get(row),
                  "densities": (model.fusion_[row].densities_.tolist()
                                if row in model.fusion_ else None)}
            for row in test}


def grouping(out: str, ids: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{split: (group [N], order [N])}`` of an export, rows put in ``ids[split]``'s order.

    Raises:
      ValueError: an id of ``ids`` is not in the export.
    """
    out_rows = {}
    for s in SPLITS:
        z = load_split(out, s)
        pos = {v: i for i, v in enumerate(z["id"].astype(str))}
        missing = [v for v in ids[s] if v not in pos]
        if missing:
            raise ValueError(f"{out} {s}: {len(missing)} ids missing, e.g. {missing[0]!r}")
        index = np.array([pos[v] for v in ids[s]])
        out_rows[s] = (z["group"][index], z["order"][index])
    return out_rows


def context_stage(cfg, splits: dict[str, SplitFeatures], groups, seed: int):
    """S004's within-modality LSTMs: ``(splits with each channel replaced by its LSTM's hidden
    states, {channel: the LSTM's info})``."""
    lstm = ContextConfig(**cfg.context_lstm.to_dict())
    out = {s: {} for s in SPLITS}
    infos = {}
    for name in splits["train"].channels:
        grouped = {s: GroupedSplit(sp.channels[name], sp.labels, *groups[s])
                   for s, sp in splits.items()}
        feats, infos[name] = contextual_features(grouped, lstm, seed)
        for s in SPLITS:
            out[s][name] = feats[s]
    return ({s: SplitFeatures(out[s], splits[s].labels, splits[s].ids) for s in SPLITS}, infos)


def across_row(cfg, within: dict[str, SplitFeatures], groups, keep, seed: int):
    """S004's across-modality LSTM: each channel's context features min-max scaled (and, with
    ``keep``, chi-square selected), fitted on train, spliced, one LSTM over the videos, its
    hidden states -> one SVC (min-max only: the selection happened before the splice).
    Returns ``(row, the LSTM's info)``."""
    y = within["train"].labels
    prep = {n: ChannelFeatures(keep).fit(x, y) for n, x in within["train"].channels.items()}
    spliced = {s: np.concatenate([prep[n].transform(x) for n, x in sp.channels.items()], axis=1)
               for s, sp in within.items()}
    grouped = {s: GroupedSplit(spliced[s], sp.labels, *groups[s]) for s, sp in within.items()}
    feats, info = contextual_features(grouped, ContextConfig(**cfg.context_lstm.to_dict()), seed)
    splits = {s: SplitFeatures({"across": feats[s]}, sp.labels, sp.ids)
              for s, sp in within.items()}
    return fit_rows(splits, None, cfg, seed)["across"], info


def lstm_summary(info: dict) -> dict:
    """What the report keeps of a context LSTM's ``info``."""
    return {"best_epoch": info["best_epoch"],
            "val_weighted_f1": round(max(info["val_weighted_f1"]), 4),
            "max_group": info["max_group"], "groups": info["groups"]}


def seed_results(cfg, speech_run: str, face_run: str, features: str, seed: int) -> dict:
    """Table 2 and the fused rows of one seed (speech seed k with face seed k)."""
    speech_out = os.path.join(features, cfg.speech.system, f"seed{seed}")
    face_out = os.path.join(features, cfg.face.system, f"seed{seed}")
    speech_m = ensure_export(speech_run, [cfg.speech.key], speech_out)
    face_m = ensure_export(face_run, sorted(set(cfg.face_taps) | {cfg.face.key}), face_out)
    keeps = {"off": None, "on": cfg.chi2_keep}
    table2 = {}
    for tap in cfg.face_taps:
        data = channel(face_out, tap)
        splits = {s: join_channels({tap: data[s]}) for s in SPLITS}
        table2[tap] = {k: fit_rows(splits, keep, cfg, seed)[tap] for k, keep in keeps.items()}
    speech, face = channel(speech_out, cfg.speech.key), channel(face_out, cfg.face.key)
    splits = {s: join_channels({"speech": speech[s], "face": face[s]}) for s in SPLITS}
    fused = {"none": {k: fit_rows(splits, keep, cfg, seed) for k, keep in keeps.items()}}
    context = {}
    if cfg.context != "none":
        ids = {s: splits[s].ids for s in SPLITS}
        groups = grouping(speech_out, ids)
        face_groups = grouping(face_out, ids)
        if any(not np.array_equal(groups[s][0], face_groups[s][0]) for s in SPLITS):
            raise ValueError("speech and face exports disagree on the groups of the same ids")
        within, infos = context_stage(cfg, splits, groups, seed)
        context = {name: lstm_summary(i) for name, i in infos.items()}
        fused[cfg.context] = {k: fit_rows(within, keep, cfg, seed) for k, keep in keeps.items()}
        if cfg.context == "within+across":
            for k, keep in keeps.items():
                row, info = across_row(cfg, within, groups, keep, seed)
                fused[cfg.context][k]["across"] = row
                context[f"across_chi2_{k}"] = lstm_summary(info)
    networks = {}
    for name, run in (("speech", speech_run), ("face", face_run)):
        r = json.load(open(os.path.join(run, "results.json")))
        networks[name] = {"run": os.path.abspath(run), "best_epoch": r.get("best_epoch"),
                          "test": {m: r["test"][m] for m in ("accuracy", "weighted_f1")}}
    return {"seed": seed, "table2": table2, "fused": fused, "context": context,
            "networks": networks,
            "identical_taps": identical_taps(face_out, list(cfg.face_taps)),
            "exports": {"speech": speech_m, "face": face_m}}


def identical_taps(out: str, taps: list[str]) -> list[list[str]]:
    """Pairs of exported taps whose features are equal in every split (e.g. a spatial max and
    mean over a 1 x 1 map, or dropout in eval mode)."""
    data = {s: load_split(out, s) for s in SPLITS}
    return [[a, b] for i, a in enumerate(taps) for b in taps[i + 1:]
            if all(np.array_equal(data[s][a], data[s][b]) for s in SPLITS)]


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
    """The markdown report of :func:`main`'s JSON ``rep``."""
    s, c = rep["summary"], rep["claims"]
    seeds = rep["seeds"]
    fb = c["fused_beats_single"]
    lines = [
        f"# s004_hybrid on {rep['corpus']}: S004's chi-square + LIBSVM + fuzzy-integral half",
        "",
        f"Config `{rep['config']}`, runner `python -m experiments.s004_hybrid`; {len(seeds)} "
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
    return "\n".join(lines)


def main(argv=None) -> int:
    """Command line (module docstring); writes the report and prints its path."""
    ap = argparse.ArgumentParser(
        prog="python -m experiments.s004_hybrid",
        description=__doc__.split("\n\n")[0].replace("``", "`") + " The speech and face "
        "encoder runs must exist first (mmer reproduce s004_speech / s004_face --corpus C).",
        epilog="example: python -m experiments.s004_hybrid --corpus generated --seeds 3 "
        "--workdir runs/reproduce",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--corpus", default="generated",
                    help="the <corpus> of experiments/s004_hybrid_<corpus>.py (generated, meld)")
    ap.add_argument("--seeds", type=int, default=3,
                    help="pairs speech seed k with face seed k for k < SEEDS")
    ap.add_argument("--workdir", default="runs/reproduce",
                    help="holds <system>/<corpus>/seed<k> of both encoders")
    ap.add_argument("--speech-workdir", default=None, help="default: --workdir")
    ap.add_argument("--face-workdir", default=None, help="default: --workdir")
    ap.add_argument("--features", default=None,
                    help="export folder (default: <workdir>/features)")
    ap.add_argument("--out", default=None, help="default: <workdir>/reports")
    ap.add_argument("--context", choices=CONTEXTS, default=None,
                    help="override the config's context stage (default: the config's)")
    ap.add_argument("--update-reference", action="store_true",
                    help="write reproductions/s004_hybrid/<corpus>.{md,json}")
    args = ap.parse_args(argv)
    t0 = time.time()
    config_path = f"experiments/s004_hybrid_{args.corpus}.py"
    if args.seeds < 1:
        ap.error(f"--seeds {args.seeds}: at least 1")
    corpora = sorted(os.path.basename(p)[len("s004_hybrid_"):-3] for p in glob.glob(
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "s004_hybrid_*.py")))
    if args.corpus not in corpora:
        ap.error(f"--corpus {args.corpus!r}: no experiments/s004_hybrid_{args.corpus}.py; "
                 f"corpora: {', '.join(corpora)}")
    cfg = importlib.import_module(f"experiments.s004_hybrid_{args.corpus}").get_hybrid_config()
    if args.context is not None:
        cfg.context = args.context
    if cfg.get("context", "none") not in CONTEXTS:
        ap.error(f"context={cfg.get('context')!r} must be one of {', '.join(CONTEXTS)}")
    cfg.context = cfg.get("context", "none")
    speech_wd = args.speech_workdir or args.workdir
    face_wd = args.face_workdir or args.workdir
    features = args.features or os.path.join(args.workdir, "features")
    out = "reproductions" if args.update_reference else (args.out or os.path.join(
        args.workdir, "reports"))
    missing = [run for k in range(args.seeds) for run, system in (
        (run_dir(speech_wd, cfg.speech.system, args.corpus, k), cfg.speech.system),
        (run_dir(face_wd, cfg.face.system, args.corpus, k), cfg.face.system))
        if not os.path.isfile(os.path.join(run, "results.json"))]
    if missing:  # before any export: name every run to train, in one line
        print(f"s004_hybrid: no finished encoder run in {', '.join(missing)}; train them with "
              f"`mmer reproduce {cfg.speech.system} --corpus {args.corpus} --seeds {args.seeds} "
              f"--workdir {speech_wd}` and `mmer reproduce {cfg.face.system} --corpus "
              f"{args.corpus} --seeds {args.seeds} --workdir {face_wd}`", file=sys.stderr)
        return 2
    per_seed = []
    for k in range(args.seeds):
        print(f"[s004_hybrid] seed {k}", file=sys.stderr)
        per_seed.append(seed_results(
            cfg, run_dir(speech_wd, cfg.speech.system, args.corpus, k),
            run_dir(face_wd, cfg.face.system, args.corpus, k), features, k))
    summary = summarise(per_seed)
    face_m = per_seed[0]["exports"]["face"]
    rep = {
        "system": "s004_hybrid", "corpus": args.corpus, "corpus_detail": face_m["corpus"],
        "config": config_path, "seeds": list(range(args.seeds)),
        "speech_config": f"experiments/{cfg.speech.system}_{args.corpus}.py",
        "face_config": f"experiments/{cfg.face.system}_{args.corpus}.py",
        "speech_key": cfg.speech.key, "face_key": cfg.face.key,
        "chi2_keep": cfg.chi2_keep, "c_grid": list(cfg.c_grid),
        "gamma_scales": list(cfg.gamma_scales), "context": cfg.context,
        "context_lstm": cfg.context_lstm.to_dict() if "context_lstm" in cfg else None,
        "examples": "/".join(str(face_m["examples"][s]) for s in SPLITS),
        "dims": face_m["keys"], "paper_s004": PAPER, **paper_fields(args.corpus),
        "summary": summary,
        "claims": claims(summary, cfg.context),
        "context_gain": context_gain(summary, cfg.context), "per_seed": per_seed,
        "wall_s": time.time() - t0,
    }
    os.makedirs(os.path.join(out, "s004_hybrid"), exist_ok=True)
    base = os.path.join(out, "s004_hybrid", args.corpus)
    atomic_write_json(base + ".json", rep)
    with open(base + ".md", "w") as f:
        f.write(render(rep))
    print(base + ".md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
