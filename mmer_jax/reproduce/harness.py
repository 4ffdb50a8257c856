"""``mmer reproduce SYSTEM``: a seed system's configs over several seeds, beside the paper.

For every ``experiments/<system>_<corpus>.py`` (or the one named by ``corpus``) whose data is
available, seeds 0..N-1 are trained with :func:`mmer_jax.train.run.run` in
``<workdir>/<system>/<corpus>/seed<k>`` (resumable: a finished seed is read back, an interrupted
one resumes from its checkpoints), then ``<out_dir>/<system>/<corpus>.json`` and ``.md`` are
written with the paper's table beside ours (mean ± std over seeds), the protocol, environment,
timing, same-harness baselines and a confusion matrix summed over seeds
(``<corpus>_confusion.png``). Every number in those files comes from the seed runs listed in them.

A regression config (``protocol.task = "regression"``, CMU-MOSI/MOSEI style) is reported with
MMSA's scores instead (:data:`REGRESSION_METRICS`: Acc-2 and F1 has-0 / non-0, Acc-3/5/7, MAE,
Corr), the paper's beside them on the same scale, and a predicted-vs-true scatter of every
seed's saved test predictions (``<corpus>_scatter.png``) in place of the confusion matrix.

Runs on a pretrained encoder (``data.encoder``) add the encoder's record, the softmax layer
weights their runs report (``model_summary.layer_weights``, ``<stem>_layer_weights.png``) and
other encoders' published figures as context (:mod:`mmer_jax.reproduce.encoder_report`).
"""

from __future__ import annotations

import copy
import glob
import json
import os
import sys
import time
from typing import Any, Iterable

import numpy as np

from mmer_jax import metric_table
from mmer_jax.errors import RunError, UsageError
from mmer_jax.io_utils import atomic_write_json
from mmer_jax.reproduce import encoder_report, papers, report_provenance
from mmer_jax.reproduce.class_names import align_class_names
from mmer_jax.reproduce.class_views import views_of_report
from mmer_jax.reproduce.curves import markdown as curves_markdown
from mmer_jax.reproduce.curves import plot_validation_curves, validation_curves
from mmer_jax.reproduce.launch import LaunchOptions, read_results, run_jobs
from mmer_jax.schema import LOWER_IS_BETTER, DataConfig, from_section
from mmer_jax.train.provenance import markdown_lines

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
METRICS = metric_table.CLASSIFICATION
# A regression run's scores (mmer_jax.train.regression), in report order.
REGRESSION_METRICS = metric_table.REGRESSION_REPORT_ORDER
# Scores that are not fractions: kept in their own units (MAE: score units; Corr: [-1, 1]).
SCORE_UNITS = metric_table.NOT_PERCENT


def metrics_of(task: str) -> tuple[str, ...]:
    """The scalar scores a report summarises for ``task``: :data:`METRICS` for
    "classification", :data:`REGRESSION_METRICS` for "regression"."""
    return REGRESSION_METRICS if task == "regression" else METRICS


def _task(runs: list[dict]) -> str:
    from mmer_jax.train.run import task_of

    return task_of(runs[0]) if runs else "classification"

# The committed reference reports (README tables are generated from them).
REFERENCE_DIR = os.path.join(REPO, "reproductions")

# Same-harness baselines a system's report lists when their reproductions exist.
BASELINES = {"s002": ("text_cnn", "bc_lstm", "cmn")}


def floors(corpus: str) -> list[dict]:
    """Floors measured on the same data (ANCHORS.md §2) as fractions, from ``papers.floors``.

    Args:
      corpus: corpus key of the experiment, e.g. "iemocap_text".

    Returns:
      [{"name", "accuracy", "weighted_f1", "source"}] with fractions in [0, 1]; [] if none.

    Raises:
      ValueError: the paper registry's floor entries are inconsistent (see ``papers.floors``).
    """
    return [
        {**f, "accuracy": _frac(f["accuracy"]), "weighted_f1": _frac(f["weighted_f1"])}
        for f in papers.floors(corpus)
    ]


def _log(msg: str) -> None:
    print(f"[reproduce] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------ configs


def find_configs(
    system: str, corpus: str | None = None, experiments_dir: str | None = None
) -> dict[str, str]:
    """{corpus: config path} for ``experiments/<system>_<corpus>.py``."""
    from mmer_jax.config import did_you_mean

    exp = experiments_dir or os.path.join(REPO, "experiments")
    if corpus:
        path = os.path.join(exp, f"{system}_{corpus}.py")
        if not os.path.isfile(path):
            known = sorted(find_configs(system, None, exp))
            raise UsageError(
                f"no config {path!r} for system {system!r} on corpus {corpus!r}"
                + did_you_mean(corpus, known)
                + (f" (its corpora: {', '.join(known)})" if known else "")
            )
        return {corpus: path}
    found = {}
    for path in sorted(glob.glob(os.path.join(exp, f"{system}_*.py"))):
        found[os.path.basename(path)[len(system) + 1 : -3]] = path
    if not found:
        systems = reproducible_systems(exp)
        raise UsageError(
            f"no experiments/{system}_<corpus>.py config for system {system!r}"
            + did_you_mean(system, systems)
            + f" (systems with configs: {', '.join(systems)}; see `mmer list`)"
        )
    return found


def reproducible_systems(experiments_dir: str | None = None) -> list[str]:
    """Registered systems that have at least one ``experiments/<system>_<corpus>.py``."""
    from mmer_jax.registry import SYSTEMS

    exp = experiments_dir or os.path.join(REPO, "experiments")
    return [n for n in SYSTEMS.names() if glob.glob(os.path.join(exp, f"{n}_*.py"))]


def system_name(system: str) -> str:
    """``system`` as registered, in any case ("S003" -> "s003"); unknown names pass through
    (:func:`find_configs` then names them with a suggestion)."""
    from mmer_jax.registry import SYSTEMS

    by_lower = {n.lower(): n for n in SYSTEMS.names()}
    return by_lower.get(system.lower(), system)


def plural(n: int, word: str) -> str:
    """``plural(1, "seed")`` -> "1 seed", ``plural(3, "seed")`` -> "3 seeds"."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def data_available(data_cfg) -> tuple[bool, str]:
    """Whether the corpus is prepared, or can be built from ``data.manual_dir``; and why not.

    Args:
      data_cfg: the run's ``data`` section (a ``DataConfig`` or a ConfigDict of it).
    """
    data_cfg = from_section(DataConfig, data_cfg, "data")
    from data_prep import build as build_lib
    from mmer_jax.config import manual_dir_hint

    data_dir = os.path.expanduser(data_cfg.data_dir) if data_cfg.data_dir else None
    try:
        builder = build_lib.get_builder(data_cfg.corpus, data_cfg.config or None, data_dir)
    except build_lib.BuildError as exc:
        return False, str(exc)
    if os.path.isfile(os.path.join(builder.data_dir, "dataset_info.json")):
        return True, f"prepared in {builder.data_dir}"
    if not data_cfg.build_if_missing:
        return False, f"not built in {builder.data_dir} and data.build_if_missing is false"
    if not getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None):
        return True, "generated at build time"
    manual = os.path.expanduser(data_cfg.manual_dir)
    if manual and os.path.isdir(manual) and os.listdir(manual):
        return True, f"will be built from {manual}"
    return False, (
        f"corpus {data_cfg.corpus!r} (config {data_cfg.config!r}) is not built "
        f"in {builder.data_dir} and data.manual_dir {manual or '(unset)'!r} holds no "
        f"copy of it; {manual_dir_hint(data_cfg.corpus, builder)}"
    )


# ------------------------------------------------------------------------------------ runs


def seed_jobs(cfg, workdir: str, seeds: int) -> list[tuple]:
    """``(config, run directory)`` of seeds 0..seeds-1: ``<workdir>/seed<k>``."""
    jobs = []
    for k in range(seeds):
        c = copy.deepcopy(cfg)
        c.seed = k
        jobs.append((c, os.path.join(workdir, f"seed{k}")))
    return jobs


def train_jobs(jobs: list[tuple], launch: LaunchOptions | None, folder: str) -> list[dict]:
    """Trains the runs of ``jobs`` that have not finished (through ``launch``'s launcher; one
    after another in this process by default) and returns every run's results, in order."""
    from mmer_jax.train.run import prepare_workdir

    pending = []
    for c, d in jobs:
        if os.path.exists(os.path.join(d, "results.json")):
            prepare_workdir(d, c)  # refuses a directory holding a run of another config
            _log(f"{d}: finished earlier, read back")
        else:
            _log(f"{d}: training seed {c.seed}")
            pending.append((c, d))
    run_jobs(pending, launch or LaunchOptions(), folder, _log)
    return [read_results(d) for _, d in jobs]


def run_seeds(cfg, workdir: str, seeds: int, launch: LaunchOptions | None = None) -> list[dict]:
    """Trains seeds 0..seeds-1 (or reads back finished ones); returns their results dicts."""
    return train_jobs(seed_jobs(cfg, workdir, seeds), launch, os.path.join(workdir, "jobs"))


# ------------------------------------------------------------------------------------ folds


def parse_folds(spec: str, num_folds: int, protocol: str) -> list[int]:
    """``--folds``: "all" -> 1..num_folds, "1,3" -> [1, 3] (sorted, unique).

    Raises:
      UsageError: an unparsable spec or a fold outside 1..num_folds.
    """
    text = str(spec).strip().lower()
    if text == "all":
        return list(range(1, num_folds + 1))
    try:
        folds = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise UsageError(f"--folds {spec!r}: expected 'all' or fold numbers such as 1,3") from None
    bad = [k for k in folds if not 1 <= k <= num_folds]
    if not folds or bad:
        raise UsageError(f"--folds {spec!r}: protocol {protocol!r} has folds 1..{num_folds}")
    return folds


def fold_plan(cfg, spec: str) -> dict:
    """Opens (building it once if needed) the corpus of ``cfg`` and resolves ``--folds``.

    Returns:
      ``{"protocol", "description", "speaker_independent", "num_folds", "folds": [k, ...],
      "speakers": {k: {split: [speaker, ...]}}, "data_dir"}``.

    Raises:
      UsageError: the build defines no fold protocol, or not ``data.fold_protocol``, or the
        config already fixes ``data.fold``.
    """
    from data_prep import folds as folds_lib
    from mmer_jax.data.sources import computed_protocols, open_builder, resolve_alias

    data = from_section(DataConfig, cfg.data, "data")
    if data.fold or resolve_alias(data).fold:
        raise UsageError(f"--folds runs every fold itself; drop data.fold={data.fold} (or the "
                         f"per-fold data.config={data.config!r}) from the config or the "
                         "--config.* overrides")
    builder = open_builder(data)
    try:
        computed = computed_protocols(builder, data)  # EmoBox's folds from data.emobox_dir
    except folds_lib.FoldError as exc:
        raise UsageError(f"config key 'data.emobox_dir': {exc}") from exc
    doc = folds_lib.read_folds(builder.data_dir) or {"protocols": {}, "default": ""}
    doc["protocols"].update(computed)
    if not doc["protocols"]:
        raise UsageError(
            f"{data.corpus}/{data.config}: the build in {builder.data_dir} defines no fold "
            "protocol (no folds.json), so --folds has nothing to run; its own splits run "
            "without --folds")
    name = data.fold_protocol or doc["default"]
    if name not in doc["protocols"]:
        raise UsageError(
            f"config key 'data.fold_protocol': {data.corpus}/{data.config} has no fold protocol "
            f"{name!r}; it has {', '.join(sorted(doc['protocols']))}")
    p = doc["protocols"][name]
    if p.get("errors"):  # EmoBox's lists and the build disagree: name the ids before any run
        raise UsageError(f"config key 'data.fold_protocol': {data.corpus}/{data.config}: "
                         f"{folds_lib.emobox.errors_message(name, p['errors'])}")
    folds = parse_folds(spec, len(p["folds"]), name)
    return {
        "protocol": name,
        "description": p["description"],
        "speaker_independent": p["speaker_independent"],
        "num_folds": len(p["folds"]),
        "folds": folds,
        "speakers": {k: p["folds"][k - 1].get("speakers", {}) for k in folds},
        "data_dir": os.fspath(builder.data_dir),
    }


def run_folds(cfg, workdir: str, seeds: int, plan: dict,
              launch: LaunchOptions | None = None) -> list[dict]:
    """Every fold of ``plan`` × seeds 0..seeds-1, each in ``<workdir>/<protocol>_fold<k>/
    seed<s>`` and read from the one build (``data.fold`` views); finished runs are read back.
    With a job launcher every fold × seed is one job, all submitted together. Each result
    carries ``_fold``."""
    jobs, fold_of = [], []
    for k in plan["folds"]:
        c = copy.deepcopy(cfg)
        c.data.fold = k
        c.data.fold_protocol = plan["protocol"]
        fold_jobs = seed_jobs(c, os.path.join(workdir, f"{plan['protocol']}_fold{k}"), seeds)
        jobs += fold_jobs
        fold_of += [k] * len(fold_jobs)
    _log(f"folds {', '.join(map(str, plan['folds']))} of {plan['num_folds']} of "
         f"{plan['protocol']!r}: {len(jobs)} runs")
    out = train_jobs(jobs, launch, os.path.join(workdir, "jobs"))
    for res, k in zip(out, fold_of, strict=True):
        res["_fold"] = k
    return out


def fold_summary(plan: dict, runs: list[dict], seeds: int) -> dict:
    """The ``folds`` block of a k-fold report: per fold the mean (± std over seeds) of each
    metric, and mean ± std over the folds of those per-fold means (the task's scores:
    :func:`metrics_of`). A fold whose runs saved probabilities also gets ``seed_ensemble``
    (:func:`seed_ensemble`); when every fold has one, ``seed_ensemble_over_folds`` holds
    ``{"test"|"validation": {metric: mean ± std over folds}}``.

    Raises:
      RunError: from :func:`seed_ensemble` (a fold's runs saved different labels).
    """
    metrics = metrics_of(_task(runs))
    per_fold = []
    for k in plan["folds"]:
        rs = [r for r in runs if r.get("_fold") == k]
        per_fold.append({
            "fold": k,
            "speakers": plan["speakers"].get(k, {}),
            "split": rs[0]["protocol"].get("split") if rs else None,
            "examples": rs[0]["protocol"].get("examples") if rs else None,
            "seeds": [r["protocol"].get("seed") for r in rs],
            "workdirs": [r["_workdir"] for r in rs],
            "test": {m: _stats(r["test"].get(m) for r in rs) for m in metrics},
            "validation": {m: _stats(r["validation"].get(m) for r in rs) for m in metrics},
        })
        ensemble = seed_ensemble(rs)
        if ensemble is not None:
            per_fold[-1]["seed_ensemble"] = ensemble
    ensembles = [f["seed_ensemble"] for f in per_fold if "seed_ensemble" in f]
    extra = {}
    if ensembles and len(ensembles) == len(per_fold):  # every fold, or no figure over folds
        extra["seed_ensemble_over_folds"] = {
            part: {m: _stats(e[part][m] for e in ensembles) for m in ENSEMBLE_METRICS}
            for part in ("test", "validation")}
    return {
        "protocol": plan["protocol"],
        "description": plan["description"],
        "speaker_independent": plan["speaker_independent"],
        "num_folds": plan["num_folds"],
        "folds": plan["folds"],
        "seeds": seeds,
        "per_fold": per_fold,
        "test_over_folds": {m: _stats(f["test"][m]["mean"] for f in per_fold) for m in metrics},
        "validation_over_folds": {
            m: _stats(f["validation"][m]["mean"] for f in per_fold) for m in metrics
        },
        **extra,
    }


ENSEMBLE_METRICS = metric_table.HEADLINE


def seed_ensemble(runs: list[dict]) -> dict | None:
    """The seed ensemble of one fold's runs: per split, the softmax averaged over the seeds (each
    at its own validation-chosen checkpoint), argmax, scored as a run is.

    Nothing here is chosen on test: every seed enters with equal weight.

    Args:
      runs: the fold's run results (``_workdir`` and ``variant`` as :func:`run_folds` returns).

    Returns:
      ``{"seeds": n, "test": {metric: fraction}, "validation": {...}}`` over
      :data:`ENSEMBLE_METRICS`; None for a regression fold, fewer than 2 runs, or a run that
      saved no probabilities (runs written before runs saved them).

    Raises:
      RunError: the runs' saved labels differ (they read different examples or orders), naming
        the first run that differs.
    """
    from mmer_jax.train.metrics import classification_metrics
    from mmer_jax.train.report import read_predictions

    if len(runs) < 2 or _task(runs) != "classification":
        return None
    out: dict[str, Any] = {"seeds": len(runs)}
    for split in ("test", "validation"):
        saved = [read_predictions(os.path.join(r["_workdir"], "variants", r.get("variant") or ""),
                                  split) for r in runs]
        if any(p is None or "probs" not in p for p in saved):
            return None
        for p, r in zip(saved[1:], runs[1:], strict=True):
            if p["true"] != saved[0]["true"]:
                raise RunError(f"{r['_workdir']}: its saved {split} labels differ from "
                               f"{runs[0]['_workdir']}'s; a seed ensemble needs the same examples")
        mean = np.mean([np.asarray(p["probs"], np.float64) for p in saved], axis=0)
        m = classification_metrics(saved[0]["true"], mean.argmax(-1), saved[0]["classes"])
        out[split] = {k: float(m[k]) for k in ENSEMBLE_METRICS}
    return out


def fold_stem(corpus: str, plan: dict) -> str:
    """File stem of a k-fold report: ``emodb_lso_folds`` (all folds) or
    ``emodb_lso_folds1_3`` (folds 1 and 3)."""
    ks = plan["folds"]
    every = ks == list(range(1, plan["num_folds"] + 1))
    return f"{corpus}_{plan['protocol']}_folds" + ("" if every else "_".join(map(str, ks)))


# ------------------------------------------------------------------------------------ summary


def _stats(values: Iterable[float]) -> dict:
    v = np.asarray([x for x in values if x is not None], np.float64)
    if v.size == 0:
        return {"mean": None, "std": None, "n": 0, "values": []}
    return {
        "mean": float(v.mean()),
        "std": float(v.std(ddof=1)) if v.size > 1 else None,
        "n": int(v.size),
        "values": [float(x) for x in v],
    }


def summarize(metric_dicts: list[dict], class_names: list[str],
              task: str = "classification") -> dict:
    """Mean ± std over seeds of the scalar metrics and per-class recall / F1 / precision; of a
    regression run's :data:`REGRESSION_METRICS` only (no classes, no confusion).

    A class with no test example in a run (support 0: TurEV-DB's speaker 1157 has only angry
    and sad clips, so its fold has no calm or happy) has no recall or F1 there; that run is left
    out of the class's recall and F1 statistics instead of counting as 0 (``n`` says how many
    runs each figure covers)."""
    if task == "regression":
        return {m: _stats(d.get(m) for d in metric_dicts) for m in REGRESSION_METRICS}
    out = {m: _stats(d.get(m) for d in metric_dicts) for m in METRICS}

    def values(c: str, k: str):
        for d in metric_dicts:
            pc = d.get("per_class", {}).get(c)
            if pc is not None and (k == "precision" or pc.get("support", 1) > 0):
                yield pc[k]

    out["per_class"] = {c: {k: _stats(values(c, k)) for k in ("recall", "f1", "precision")}
                        for c in class_names}
    cms = [np.asarray(d["confusion"]) for d in metric_dicts if d.get("confusion")]
    out["confusion_sum"] = np.sum(cms, axis=0).astype(int).tolist() if cms else None
    return out


def paper_entry(system: str, corpus: str) -> tuple[dict | None, str]:
    """The paper's reported table for (system, corpus) and, when there is none, why."""
    entry = papers.reported(system, corpus)
    if entry is None:
        note = f"no paper figure for {system} on {corpus}"
        elsewhere = papers.OTHER_CORPUS_NOTES.get(system)  # reported, but on another corpus
        return None, note + (f"; {elsewhere}" if elsewhere else "")
    if entry.get("context_only"):
        # Another protocol or modality set: the paper's figures stand beside ours as context
        # and no difference is printed (papers.reported says why in the entry's note).
        return entry, (f"context, not a target: {entry['note']} "
                       f"(source: {entry.get('source', 'the paper')})")
    return entry, ""


def _frac(x):
    """``papers`` gives percent; everything in a report is a fraction in [0, 1]."""
    return None if x is None else float(x) / 100.0


def paper_scores(entry: dict | None) -> dict:
    """Normalises a paper entry to {metric: fraction, per_class: {c: {recall, f1}}, baselines}.

    A regression entry (``papers.reported`` on a regression corpus) gives its
    :data:`REGRESSION_METRICS` the way ours are stored: accuracies and F1 as fractions, MAE
    and Corr as they come (``papers`` has converted them to score units already), plus
    ``scale``, ``acc2_variant`` and ``source`` (the entry's notes on them).
    """
    if not entry:
        return {}
    src = entry.get("metrics", entry)
    out = {m: _frac(src.get(m)) for m in METRICS if src.get(m) is not None}
    if entry.get("task") == "regression":
        out.update({m: (float(src[m]) if m in SCORE_UNITS else _frac(src[m]))
                    for m in REGRESSION_METRICS if src.get(m) is not None})
        out.update(scale=entry.get("scale", ""), acc2_variant=entry.get("acc2_variant", ""),
                   source=entry.get("source", ""))
    per = src.get("per_class") or entry.get("per_class") or {}
    out["per_class"] = {}
    for c, v in per.items():
        if isinstance(v, dict):
            out["per_class"][c] = {
                "recall": _frac(v.get("recall", v.get("accuracy"))),
                "f1": _frac(v.get("f1")),
            }
    variants = src.get("variants") or entry.get("variants") or {}
    out["variants"] = {
        k: {m: _frac(v.get(m)) for m in METRICS if isinstance(v, dict) and v.get(m) is not None}
        for k, v in variants.items()
    }
    base = entry.get("baselines") or {}
    out["baselines"] = {
        k: {m: _frac(v.get(m)) for m in METRICS if isinstance(v, dict) and v.get(m) is not None}
        for k, v in base.items()
    }
    return out


def _baseline_report(b: str, corpus: str, out_dir: str,
                     split: str | None) -> tuple[str, dict] | None:
    """Baseline ``b``'s report (path, contents) for ``corpus`` or a corpus key it varies
    (:func:`papers.corpus_keys`) whose protocol split is ``split`` (any, when None):
    ``out_dir`` first, then the committed ones."""
    for key in papers.corpus_keys(corpus):
        for root in (out_dir, REFERENCE_DIR):
            path = os.path.join(root, b, f"{key}.json")
            if not os.path.exists(path):
                continue
            with open(path) as f:
                rep = json.load(f)
            if split is None or rep.get("protocol", {}).get("split") == split:
                return path, rep
    return None


def baseline_rows(system: str, corpus: str, out_dir: str, split: str | None = None) -> dict:
    """Same-harness baselines of ``system`` on ``corpus``: each baseline's test scores from its
    report in ``out_dir``, else the committed reference one, for ``corpus`` or the corpus key it
    varies (S002's "iemocap_text_paper" reads the baselines' "iemocap_text"), and only a report
    whose protocol split is ``split`` when one is given.

    Returns:
      ``{baseline: {metric: summary, "source": "<b>/<key>.json", "seeds": n}}``; a baseline
      without such a report is left out.
    """
    rows = {}
    for b in BASELINES.get(system, ()):
        found = _baseline_report(b, corpus, out_dir, split)
        if found is None:
            continue
        path, rep = found
        test = rep["ours"]["test"]
        rows[b] = {m: test[m] for m in METRICS if m in test}
        rows[b]["source"] = os.path.relpath(path, os.path.dirname(os.path.dirname(path)))
        rows[b]["seeds"] = rep.get("seeds")
    return rows


def baseline_paths(system: str, corpus: str, out_dir: str, split: str | None = None) -> list[str]:
    """The report files :func:`baseline_rows` reads, for the report's provenance."""
    found = (_baseline_report(b, corpus, out_dir, split) for b in BASELINES.get(system, ()))
    return [f[0] for f in found if f is not None]


def paper_section(system: str, corpus: str, classes: list[str], ours_test: dict,
                  metrics: Iterable[str]) -> dict:
    """A report's ``paper``, ``paper_note`` and ``comparison`` from :func:`papers.reported`.

    The paper's per-class figures are re-keyed by ``classes`` (``class_names``: IEMOCAP's
    ``hap`` is the paper's *happy*). A ``context_only`` entry (another protocol or modality
    set) keeps its figures but gets no "ours - paper" difference.

    Args:
      ours_test: the report's ``ours["test"]`` (metric -> {"mean", "std", ...}).

    Returns:
      {"paper": scores or None (``context_only: True`` for a context entry), "paper_note",
      "comparison": [{"metric", "paper", "ours_mean", "ours_std", "delta"}]}.
    """
    entry, note = paper_entry(system, corpus)
    paper = paper_scores(entry)
    like_for_like = not (entry or {}).get("context_only")
    if paper:
        paper["per_class"] = align_class_names(paper["per_class"], classes)
        if not like_for_like:
            paper["context_only"] = True
    comparison = []
    for m in metrics:
        ours_m, p = ours_test[m], paper.get(m)
        comparison.append({
            "metric": m,
            "paper": p,
            "ours_mean": ours_m["mean"],
            "ours_std": ours_m["std"],
            "delta": (ours_m["mean"] - p)
            if like_for_like and p is not None and ours_m["mean"] is not None else None,
        })
    return {"paper": paper or None, "paper_note": note, "comparison": comparison}


def refresh_paper(report: dict, out_dir: str = REFERENCE_DIR) -> dict:
    """``report`` with its paper part recomputed from today's :mod:`papers` (a corrected table
    or class-name match reaches a committed report without retraining its runs) and its
    same-harness baseline rows re-read from the baselines' reports in ``out_dir`` (a baseline
    rerun reaches the reports that cite it)."""
    metrics = [c["metric"] for c in report["comparison"]]
    part = paper_section(report["system"], report["corpus"], report["protocol"]["classes"],
                         report["ours"]["test"], metrics)
    if report.get("task", "classification") == "classification":
        part["baselines_same_harness"] = baseline_rows(
            report["system"], report["corpus"], out_dir, report["protocol"].get("split"))
    context = encoder_report.context_rows(report["system"], report["corpus"],
                                          (report.get("folds") or {}).get("protocol"))
    if context or "encoder_context" in report:
        part["encoder_context"] = context
    return {**report, **part}


def build_report(
    system: str,
    corpus: str,
    config_path: str,
    cfg,
    runs: list[dict],
    out_dir: str,
    harness_wall_s: float,
    overrides: Iterable[str] = (),
    folds: dict | None = None,
    stem: str | None = None,
) -> dict:
    """The report dict of ``runs`` (seeds, or folds × seeds with ``folds`` from
    :func:`fold_summary`); ``stem`` names its files (default ``corpus``).

    ``task`` is the runs' (``results.json``'s, "classification" for results without one); a
    regression report summarises :data:`REGRESSION_METRICS`, has no confusion matrix, class
    views, baselines or floors, and has a ``scatter`` entry instead (the PNG of every run's
    saved test predictions, see :func:`scatter_groups`)."""
    from mmer_jax.train.run import feature_normalisation, primary_variant, variants_of

    stem = stem or corpus

    head = runs[0]
    task = _task(runs)
    metrics = metrics_of(task)
    regression = task == "regression"
    classes = head["protocol"]["classes"]
    main = head.get("variant") or primary_variant(cfg)
    ours = {
        "variant": main,
        "modalities": head.get("modalities"),
        "test": summarize([r["test"] for r in runs], classes, task),
        "validation": summarize([r["validation"] for r in runs], classes, task),
        "selection": [r["protocol"].get("selection") for r in runs],
    }
    variants = {}
    if len(variants_of(cfg)) > 1:
        for name in variants_of(cfg):
            tests = [r["variants"][name]["test"] for r in runs if name in r.get("variants", {})]
            if tests:
                variants[name] = {
                    "modalities": runs[0]["variants"][name]["modalities"],
                    "test": summarize(tests, classes, task),
                }
    paper_part = paper_section(system, corpus, classes, ours["test"], metrics)
    proto = head["protocol"]
    declared = cfg.get("protocol", {})
    select = cfg.train.select_metric
    # "mae (lower is better)": a reader of "best validation mae" would otherwise assume the
    # highest was kept.
    select_text = f"{select} (lower is better)" if select in LOWER_IS_BETTER else select
    examples_per_s = _stats(r["timing"].get("train_examples_per_s") for r in runs)
    timing = {
        "seed_wall_s": [r["timing"].get("wall_s") for r in runs],
        "seed_train_wall_s": [r["timing"].get("train_wall_s") for r in runs],
        "total_seed_wall_s": float(sum(r["timing"].get("wall_s") or 0.0 for r in runs)),
        "harness_wall_s": harness_wall_s,
        "train_examples_per_s": examples_per_s,
        "example_unit": proto.get("unit", "utterance"),
    }
    if proto.get("unit") == "dialogue" and examples_per_s["mean"]:
        per_unit = proto["utterances"]["train"] / max(proto["examples"]["train"], 1)
        timing["train_utterances_per_s"] = examples_per_s["mean"] * per_unit
    env = head.get("environment", {})
    report = {
        "system": system,
        "corpus": corpus,
        "task": task,
        "config": os.path.relpath(config_path, REPO)
        if config_path.startswith(REPO)
        else config_path,
        "seeds": [r["protocol"].get("seed") for r in runs],
        "overrides": list(overrides),
        "protocol": {
            "corpus": cfg.data.corpus,
            "corpus_config": cfg.data.config,
            "classes": classes,
            "split": proto.get("split") or declared.get("split"),
            "fold": proto.get("fold"),
            "speaker_independent": declared.get("speaker_independent"),
            "speaker_independent_measured": proto.get("speaker_independent"),
            "selection_rule": proto.get("selection_rule")
            or f"best validation {select_text} "
            "epoch per seed; test scored once at that checkpoint",
            **({"regression_loss": head.get("regression_loss")
                or proto.get("regression_loss")} if regression else {}),
            "unit": proto.get("unit", "utterance"),
            "feature_normalisation": feature_normalisation(
                from_section(DataConfig, cfg.data, "data"))
            if "audio" in (head.get("modalities") or []) else None,
            "examples": proto.get("examples"),
            "utterances": proto.get("utterances"),
            "seeds": len(runs),
        },
        "ours": ours,
        "variants": variants,
        **paper_part,
        # Both are classification scores (accuracy, weighted F1).
        "baselines_same_harness": {} if regression else baseline_rows(
            system, corpus, out_dir, proto.get("split") or declared.get("split")),
        "floors": [] if regression else floors(corpus),
        "environment": {
            "device": env.get("device"),
            "device_kind": env.get("device_kind"),
            "device_count": env.get("device_count"),
            "jax": env.get("jax"),
            "hosts": env.get("hosts"),
            "python": env.get("python"),
        },
        "timing": timing,
        # commit, config sha256, packages, the runs' builds, the files read: written once here
        "provenance": report_provenance.report_block(
            cfg, config_path, runs, [] if regression else baseline_paths(
                system, corpus, out_dir, proto.get("split") or declared.get("split"))),
        "confusion": None if regression else {
            "summed_over_seeds": ours["test"]["confusion_sum"],
            "png": f"{stem}_confusion.png",
        },
        "runs": [
            {
                "seed": r["protocol"].get("seed"),
                **({"fold": r["_fold"]} if "_fold" in r else {}),
                "workdir": r["_workdir"],
                "selection": r["protocol"].get("selection"),
                "test": {m: r["test"].get(m) for m in metrics},
                "validation": {m: r["validation"].get(m) for m in metrics},
                "num_params": r.get("num_params"),
            }
            for r in runs
        ],
    }
    if regression:
        groups = scatter_groups(report["runs"], main)
        report["scatter"] = {
            "png": f"{stem}_scatter.png" if groups else None,
            "variant": main,
            "runs_with_predictions": len(groups),
            "points": sum(len(t) for _, t, _ in groups),
        }
        report["class_views"] = {}
    else:
        confusions = {n: v["test"]["confusion_sum"] for n, v in variants.items()} or {
            main: ours["test"]["confusion_sum"]
        }
        if len(variants) > 1:
            report["confusion"]["variants_png"] = f"{stem}_confusion_variants.png"
        views = {k: list(v) for k, v in (cfg.get("class_views") or {}).items()}
        report["class_views"] = {
            name: {"variants": by_variant, "png": f"{stem}_view_{name}.png"}
            for name, by_variant in views_of_report(views, classes, confusions).items()
        }
    curves = validation_curves(report["runs"], main)
    if curves is not None:
        report["validation_curves"] = {**curves, "png": f"{stem}_validation_curves.png"}
    if stem != corpus:
        report["stem"] = stem
    # A pretrained-encoder system's encoder, layer weights and other encoders' figures.
    report.update(encoder_report.report_parts(system, corpus, cfg, runs, folds, stem))
    if folds is not None:
        report["folds"] = folds
        report["protocol"].update(
            split=folds["description"],
            fold=f"{folds['protocol']}: folds {', '.join(map(str, folds['folds']))} of "
            f"{folds['num_folds']}",
            fold_protocol=folds["protocol"],
            examples=None,  # they differ per fold: folds.per_fold[i].examples
            utterances=None,
            speaker_independent=folds["speaker_independent"],
            speaker_independent_measured=all(
                r["protocol"].get("speaker_independent") for r in runs),
        )
    return report


def scatter_groups(runs: list[dict], variant: str) -> list[tuple[str, list, list]]:
    """``[(run label, true scores, predicted scores)]`` of every run entry (``workdir``,
    ``seed``, optional ``fold``) whose ``variants/<variant>/predictions_test.json`` exists;
    runs without saved predictions (written before runs saved them) are left out."""
    from mmer_jax.train.report import read_predictions

    groups = []
    for r in runs:
        saved = read_predictions(os.path.join(r["workdir"], "variants", variant))
        if saved is None:
            continue
        label = (f"fold {r['fold']} · " if r.get("fold") is not None else "") + f"seed {r['seed']}"
        groups.append((label, saved["true"], saved["pred"]))
    return groups


def _confusion_figures(report: dict, d: str) -> dict[str, str]:
    """Per-variant confusion panels (S001's Figs. 5-7 show audio, video and fused) and one
    figure per class view, each with a panel per variant."""
    from mmer_jax.train.report_common import plot_confusion_panels

    paths = {}
    classes = report["protocol"]["classes"]
    where = f"{report['system']} · {report['corpus']} · test, {len(report['runs'])} seed(s)"
    variants = report.get("variants") or {}
    name = (report.get("confusion") or {}).get("variants_png")
    if name:
        panels = [
            (v, s["test"]["confusion_sum"], classes, classes)
            for v, s in variants.items()
            if s["test"].get("confusion_sum") is not None
        ]
        paths["variants_png"] = plot_confusion_panels(panels, os.path.join(d, name), where)
    for view, spec in (report.get("class_views") or {}).items():
        panels = [
            (f"{v} (acc {100 * cv['accuracy']:.1f}%)", cv["matrix"], cv["classes"], cv["columns"])
            for v, cv in spec["variants"].items()
        ]
        paths[f"view_{view}_png"] = plot_confusion_panels(
            panels, os.path.join(d, spec["png"]), f"{where} · view {view!r}"
        )
    return paths


def write_outputs(report: dict, out_dir: str) -> dict[str, str]:
    """Writes ``<out_dir>/<system>/<stem>.json`` and ``.md`` and the report's figures.

    Returns:
      ``{"json", "md"}`` paths, ``"png"`` (the summed confusion matrix, or a regression
      report's predicted-vs-true scatter) and the other figures written (``variants_png``,
      ``view_<name>_png``, ``layer_weights_png``, ``curves_png``).
    """
    from mmer_jax.io_utils import atomic_write_text

    d = os.path.join(out_dir, report["system"])
    os.makedirs(d, exist_ok=True)
    paths = {}
    scatter = report.get("scatter") or {}
    if scatter.get("png"):
        from mmer_jax.train.report import plot_scatter

        paths["png"] = plot_scatter(
            scatter_groups(report["runs"], scatter["variant"]),
            os.path.join(d, scatter["png"]),
            title=f"{report['system']} · {report['corpus']} · test predictions of "
            f"{plural(scatter['runs_with_predictions'], 'run')}")
    cm = (report.get("confusion") or {}).get("summed_over_seeds")
    if cm is not None:
        from mmer_jax.train.report_common import plot_confusion

        paths["png"] = plot_confusion(
            cm,
            report["protocol"]["classes"],
            os.path.join(d, report["confusion"]["png"]),
            title=f"{report['system']} · {report['corpus']} · test, summed over "
            f"{plural(len(report['runs']), 'fold run' if report.get('folds') else 'seed')}",
        )
    paths.update(_confusion_figures(report, d))
    weights = report.get("layer_weights")
    if weights:
        paths["layer_weights_png"] = encoder_report.plot_layer_weights(
            weights, os.path.join(d, weights["png"]),
            f"{report['system']} · {report['corpus']} · layer weights at the selected "
            f"checkpoint, {plural(len(weights['runs']), 'run')}")
    curves = report.get("validation_curves")
    if curves:
        paths["curves_png"] = plot_validation_curves(
            curves, os.path.join(d, curves["png"]),
            f"{report['system']} · {report['corpus']} · validation, {len(report['runs'])} run(s)")
    stem = report.get("stem", report["corpus"])
    paths["json"] = atomic_write_json(os.path.join(d, f"{stem}.json"), report)
    paths["md"] = atomic_write_text(os.path.join(d, f"{stem}.md"), report_markdown(report))
    return paths


def report_markdown(report: dict) -> str:
    """The ``.md`` text of a report dict (tables, model profile, validation curves' section)."""
    from mmer_jax.reproduce.report import render_markdown

    md = render_markdown(report)
    if report.get("model_profile"):
        from mmer_jax.reproduce.model_profile import markdown as profile_markdown

        md = md.rstrip() + "\n\n" + profile_markdown(report["model_profile"])
    curves = report.get("validation_curves")
    if curves:
        md = md.rstrip() + "\n\n" + curves_markdown(curves, curves["png"])
    if report.get("provenance"):  # reports from before it was recorded have none
        md = md.rstrip() + "\n\n" + "\n".join(markdown_lines(report["provenance"])) + "\n"
    return md


def _headline(t: dict, task: str) -> str:
    """The test scores the harness logs per corpus (mean ± std)."""
    def pm(m: str, scale: float = 100.0, digits: int = 1) -> str:
        return (f"{scale * t[m]['mean']:.{digits}f} ± {scale * (t[m]['std'] or 0):.{digits}f}"
                if t[m]["mean"] is not None else "—")

    if task == "regression":
        return (f"test Acc-2 (non-0) {pm('acc2_non0')}, MAE {pm('mae', 1.0, 3)}, "
                f"Corr {pm('corr', 1.0, 3)}")
    return f"test accuracy {pm('accuracy')}, weighted F1 {pm('weighted_f1')}"


# ------------------------------------------------------------------------------------ entry


def reproduce(
    system: str,
    corpus: str | None = None,
    seeds: int = 3,
    workdir: str = "runs/reproduce",
    out_dir: str | None = None,
    overrides: Iterable[str] = (),
    experiments_dir: str | None = None,
    update_reference: bool = False,
    folds: str | None = None,
    launch: LaunchOptions | None = None,
) -> dict:
    """Runs and reports ``system`` on ``corpus`` (every available corpus when None).

    Args:
      system: a system with ``experiments/<system>_<corpus>.py`` configs, any case.
      corpus: one corpus key; every corpus whose data is available when None.
      seeds: seeds 0..seeds-1.
      workdir: the seed runs go to ``<workdir>/<system>/<corpus>/seed<k>``.
      out_dir: the report directory; default ``<workdir>/reports``, or the committed
        :data:`REFERENCE_DIR` with ``update_reference``.
      overrides: ``--config.KEY=VALUE`` overrides (recorded in every report).
      experiments_dir: where the configs are (default: the repository's ``experiments/``).
      update_reference: write the committed reference reports (``reproductions/``).
      folds: "all" or fold numbers ("1,3") of the build's fold protocol
        (``data.fold_protocol``, default the build's first): every fold × seed is trained from
        one build in ``<workdir>/<system>/<corpus>/<protocol>_fold<k>/seed<s>`` and reported
        as ``<corpus>_<protocol>_folds.{json,md}`` with per-fold results and mean ± std over
        the folds. None: the config's own split.
      launch: how the seed (× fold) runs are launched (:mod:`mmer_jax.reproduce.launch`):
        one after another in this process by default; submitit local processes or SLURM jobs.

    Returns:
      {corpus: {"json": path, "md": path, "png": path}} for the corpora reported ("png": the
      confusion matrix, or a regression report's predicted-vs-true scatter; absent when a
      regression report has no saved predictions) and {corpus: {"skipped": reason}} for those
      whose data is unavailable.

    Raises:
      UsageError: ``seeds`` < 1; no such system or corpus config; an explicitly named corpus
        whose data is unavailable; ``update_reference`` with overrides, or ``out_dir`` naming
        the reference directory without ``update_reference``.
    """
    from mmer_jax import config as config_lib

    overrides = list(overrides)
    if seeds < 1:
        raise UsageError(f"--seeds must be >= 1, got {seeds}")
    reference = os.path.realpath(REFERENCE_DIR)
    if update_reference:
        if overrides:
            raise UsageError(
                "--update-reference refuses --config.* overrides (got --config."
                f"{overrides[0]}): the reference reports are the configs as committed"
            )
        if out_dir and os.path.realpath(out_dir) != reference:
            raise UsageError(f"--update-reference writes {REFERENCE_DIR}; drop --out {out_dir}")
        out_dir = REFERENCE_DIR
    elif out_dir and os.path.realpath(out_dir) == reference:
        raise UsageError(
            f"--out {out_dir} is the committed reference directory; pass --update-reference "
            "to rewrite it (without overrides), or choose another --out"
        )
    out_dir = out_dir or os.path.join(workdir, "reports")
    system = system_name(system)
    if corpus:  # either spelling: "generated_emotion" -> "generated", "iemocap/text"
        corpus = config_lib.experiment_corpus_key(corpus)
    configs = find_configs(system, corpus, experiments_dir)
    done: dict[str, dict] = {}
    for name, path in configs.items():
        cfg = config_lib.load(path, list(overrides))
        _log(config_lib.resolve_data_dirs(cfg))
        ok, why = data_available(cfg.data)
        if not ok:
            if corpus:
                raise UsageError(f"{system}/{name}: {why}")
            _log(f"skipping {system}/{name}: {why}")
            done[name] = {"skipped": why}
            continue
        t0 = time.time()
        from mmer_jax.registry import SYSTEMS

        if folds and SYSTEMS[cfg.model.name].reporter:
            raise UsageError(f"--folds: {system} writes a report of its own over seeds (its "
                             "registry entry's reporter), not a k-fold report")
        if folds:
            plan = fold_plan(cfg, folds)
            _log(f"{system}/{name}: {plan['protocol']!r} folds "
                 f"{', '.join(map(str, plan['folds']))} of {plan['num_folds']} × "
                 f"{plural(seeds, 'seed')}, one build in {plan['data_dir']}")
            runs = run_folds(cfg, os.path.join(workdir, system, name), seeds, plan, launch)
            report = build_report(system, name, path, cfg, runs, out_dir, time.time() - t0,
                                  overrides, folds=fold_summary(plan, runs, seeds),
                                  stem=fold_stem(name, plan))
        else:
            runs = run_seeds(cfg, os.path.join(workdir, system, name), seeds, launch)
            if SYSTEMS[cfg.model.name].reporter:  # a report with tables of its own
                dirs = [d for _, d in seed_jobs(cfg, os.path.join(workdir, system, name), seeds)]
                done[name] = SYSTEMS[cfg.model.name].part("reporter")(
                    system, name, path, cfg, dirs, out_dir, time.time() - t0)
                _log(f"{system}/{name}: {plural(len(runs), 'seed')} -> {done[name]['md']}")
                continue
            report = build_report(system, name, path, cfg, runs, out_dir, time.time() - t0,
                                  overrides)
        from mmer_jax.reproduce.model_profile import profile_config

        if SYSTEMS[cfg.model.name].gradient:  # others have no network to profile
            profiled = cfg
            if folds:  # a build read only through fold views has no split of its own: fold 1
                profiled = copy.deepcopy(cfg)
                profiled.data.fold = plan["folds"][0]
                profiled.data.fold_protocol = plan["protocol"]
            report["model_profile"] = profile_config(profiled)
        done[name] = write_outputs(report, out_dir)
        t = report["ours"]["test"]
        over = plural(len(runs), "seed")
        if folds:
            t = report["folds"]["test_over_folds"]
            over = f"{plural(len(report['folds']['folds']), 'fold')} ({plural(seeds, 'seed')} each)"
        _log(f"{system}/{name}: {_headline(t, report['task'])} over {over} -> {done[name]['md']}")
    return done
