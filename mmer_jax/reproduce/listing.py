"""``mmer list`` (what a config can name), ``mmer compare`` (runs side by side) and ``mmer
compare --diff`` (what differs between two runs or reports)."""

from __future__ import annotations

import ast
import glob
import json
import os

from mmer_jax.errors import UsageError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0].strip() if (doc or "").strip() else ""


def systems(experiments_dir: str | None = None) -> list[tuple[str, str]]:
    """``[(model.name, "reproduce --corpus: a, b" or its config class's first doc line)]``."""
    from mmer_jax.registry import SYSTEMS

    exp = experiments_dir or os.path.join(REPO, "experiments")
    out = []
    for n in SYSTEMS.names():
        corpora = [os.path.basename(p)[len(n) + 1: -3]
                   for p in sorted(glob.glob(os.path.join(exp, f"{n}_*.py")))]
        out.append((n, f"reproduce --corpus: {', '.join(corpora)}" if corpora
                    else _first_line(SYSTEMS[n].config_class.__doc__).replace("``", "")))
    return out


def corpora() -> list[tuple[str, list[str], bool]]:
    """``[(data.corpus, builder configs, built from a manual_dir)]``; imports each builder. A
    builder that reads a user's JSON spec lists that first ("a JSON spec (data.config=PATH)")
    and its bundled configs after "bundled: "."""
    from data_prep import CORPORA, folds

    out = []
    for name in CORPORA.names():
        try:
            cls = CORPORA[name]
        except Exception as exc:  # noqa: BLE001 - one broken builder must not hide the others
            out.append((name, [f"(cannot import: {type(exc).__name__})"], False))
            continue
        configs = [c.name for c in getattr(cls, "BUILDER_CONFIGS", [])] or ["default"]
        # Per-fold names read fold views of one build (data_prep.folds.FOLD_ALIASES).
        configs += [f"{prefix}1..{k} (= {base} + data.fold, {protocol})" for prefix, (
            base, protocol, k) in folds.FOLD_ALIASES.get(name, {}).items()]
        if getattr(cls, "config_from_file", None) is not None:  # data_prep.build.get_builder
            configs = ["a JSON spec (data.config=PATH)", f"bundled: {configs[0]}", *configs[1:]]
        out.append((name, configs, bool(getattr(cls, "MANUAL_DOWNLOAD_INSTRUCTIONS", None))))
    return out


def experiments(experiments_dir: str | None = None) -> list[tuple[str, str]]:
    """``[(path relative to the repository, first docstring line)]``; files are parsed, not run."""
    exp = experiments_dir or os.path.join(REPO, "experiments")
    out = []
    for path in sorted(glob.glob(os.path.join(exp, "*.py"))):
        base = os.path.basename(path)
        if base.startswith("_") or base in ("corpora.py", "recipes.py"):
            continue
        try:
            with open(path) as f:
                doc = ast.get_docstring(ast.parse(f.read()))
        except (OSError, SyntaxError):
            doc = None
        out.append((os.path.relpath(path, REPO) if path.startswith(REPO) else path,
                    _first_line(doc)))
    return out


def listing(what: str = "all") -> str:
    """The text ``mmer list [systems|corpora|experiments]`` prints."""
    from mmer_jax.config import DATA_DIR_ENV, DATA_ROOT_ENV, manual_dir_env

    parts = []
    if what in ("all", "systems"):
        rows = systems()
        w = max(len(n) for n, _ in rows)
        parts.append("systems (model.name; `mmer reproduce NAME`, any case):\n" + "\n".join(
            f"  {n:<{w}}  {d}" for n, d in rows))
    if what in ("all", "corpora"):
        rows = corpora()
        w = max(len(n) for n, _, _ in rows)
        lines = []
        for n, configs, manual in rows:
            src = (f"from manual_dir (${manual_dir_env(n)} or ${DATA_ROOT_ENV}/{n})" if manual
                   else "generated")
            lines.append(f"  {n:<{w}}  {src}; configs: {', '.join(configs)}")
        parts.append("corpora (data.corpus; configs: data.config; `mmer data build NAME --config "
                     f"C`; prepared into $${DATA_DIR_ENV} or ~/tensorflow_datasets):\n"
                     .replace("$$", "$") + "\n".join(lines))
    if what in ("all", "experiments"):
        rows = experiments()
        w = max((len(p) for p, _ in rows), default=0)
        parts.append("experiments (`mmer train --config PATH`; `mmer reproduce SYSTEM --corpus "
                     "C` runs experiments/<system>_<C>.py):\n" + "\n".join(
                         f"  {p:<{w}}  {d}" for p, d in rows))
    return "\n\n".join(parts)


# -- compare -----------------------------------------------------------------------------------
def _load_results(path: str) -> dict:
    file = os.path.join(path, "results.json") if os.path.isdir(path) else path
    if not os.path.isfile(file):
        raise UsageError(f"{path!r} holds no results.json (not a finished run of `mmer train`)")
    with open(file) as f:
        return json.load(f)


def compare(paths: list[str]) -> str:
    """A markdown table: one row per run and variant, its system (and fusion, when it has one),
    test scores in percent, the selected epoch, seed, corpus config and train throughput;
    ``mmer compare RUN...``.

    When a run is a regression run (``results.json``'s ``task``), the table gains its test
    Acc-2 (non-0) in percent, MAE and Corr; classification runs show "—" there, and regression
    runs "—" under accuracy, weighted F1 and UAR.

    Raises:
      UsageError: a path holds no results.json.
    """
    from mmer_jax.train.report_common import markdown_table, num, pct
    from mmer_jax.train.run import best_epoch, task_of

    loaded = [(path, _load_results(path)) for path in paths]
    regression = any(task_of(r) == "regression" for _, r in loaded)
    rows = []
    for path, r in loaded:
        variants = r.get("variants") or {r.get("variant", "main"): {
            "test": r["test"], "best_epoch": r.get("best_epoch"),
            "selection": r.get("protocol", {}).get("selection", ""),
            "train_examples_per_s": r.get("timing", {}).get("train_examples_per_s"),
            "modalities": r.get("modalities")}}
        proto = r.get("protocol", {})
        for name, v in variants.items():
            t = v["test"]
            rate = v.get("train_examples_per_s")
            system = str(r.get("system", "")) + (f" ({r['fusion']})" if r.get("fusion") else "")
            rows.append([
                path, system, f"{name}{' *' if name == r.get('variant') else ''}",
                f"{r.get('corpus')}/{proto.get('corpus_config', '')}",
                str(proto.get("seed", "")),
                pct(t.get("accuracy")), pct(t.get("weighted_f1")), pct(t.get("uar")),
                str(best_epoch(v) or ""), f"{rate:.0f}" if rate else "",
            ])
            if regression:
                rows[-1][8:8] = [pct(t.get("acc2_non0")), num(t.get("mae")), num(t.get("corr"))]
    head = ["run", "system", "variant", "corpus", "seed", "test acc", "test wF1", "test UAR",
            "epoch", "train ex/s"]
    if regression:
        head[8:8] = ["test Acc-2 (non-0)", "test MAE", "test Corr"]
    table = markdown_table(head, rows, "llllrrrrrr" + ("rrr" if regression else ""))
    note = "; MAE in score units, Corr as a number" if regression else ""
    return ("\n".join(table).rstrip()
            + f"\n\n(* the run's primary variant; scores in percent{note})")


# -- compare --diff ----------------------------------------------------------------------------
def _load_any(path: str) -> tuple[str, dict, dict | None]:
    """("run" | "report", the results.json or report dict, the run's config.json or None)."""
    if os.path.isfile(path) and path.endswith(".json"):
        with open(path) as f:
            obj = json.load(f)
        if isinstance(obj, dict) and "ours" in obj and "system" in obj:
            return "report", obj, None
    results = _load_results(path)
    run_dir = path if os.path.isdir(path) else os.path.dirname(path)
    config = os.path.join(run_dir, "config.json")
    stored = None
    if os.path.isfile(config):
        with open(config) as f:
            stored = json.load(f)
    return "run", results, stored


def _sections(kind: str, obj: dict, stored_config: dict | None) -> dict[str, dict]:
    """The parts ``mmer compare --diff`` compares, each a nested dict."""
    block = obj.get("provenance") or {}
    config = block.get("config") or stored_config or {}
    out = {
        "code": block.get("code") or {},
        "config": config,
        "packages": block.get("packages") or {},
        "encoders": block.get("encoders") or {},
        "build": block.get("build") or {},
    }
    if kind == "report":
        out["overrides"] = {"config file": obj.get("config"), "overrides": obj.get("overrides")}
        out["protocol"] = obj.get("protocol") or {}
        out["baseline rows"] = obj.get("baselines_same_harness") or {}
        out["paper"] = {"paper": obj.get("paper"), "note": obj.get("paper_note")}
        out["runs"] = {str(i): {k: r.get(k) for k in ("commit", "dirty", "config_sha256")}
                       for i, r in enumerate(block.get("runs") or [])}
        out["refreshes"] = {str(i): {"changed": r.get("changed"), "code": r.get("code")}
                            for i, r in enumerate(block.get("refreshes") or [])}
        test = (obj.get("ours") or {}).get("test") or {}
        out["scores"] = {m: (v or {}).get("mean") for m, v in test.items()
                         if isinstance(v, dict) and "mean" in v}
    else:
        out["resumes"] = {str(i): r for i, r in enumerate(block.get("resumes") or [])}
        test = obj.get("test") or {}
        out["scores"] = {m: v for m, v in test.items() if isinstance(v, (int, float))}
    return out


def _short(x) -> str:
    text = json.dumps(x, sort_keys=True) if not isinstance(x, str) else x
    return text if len(text) <= 80 else text[:77] + "..."


# The state only a provenance block records: left out when a side has none (its history,
# refreshes and resumes, is still shown: what B records that A does not).
_PROVENANCE_ONLY = ("code", "packages", "encoders", "build", "runs")


def _scores_heading(kind: str, obj: dict) -> str:
    """Which scores a side's ``scores`` section holds: split, variant and, for a report, over
    what they are averaged."""
    if kind == "report":
        variant = (obj.get("ours") or {}).get("variant")
        return f"test split, variant {variant or '?'}, mean over seeds"
    return f"test split, variant {obj.get('variant') or '?'}"


def _score(metric: str, value) -> str:
    from mmer_jax.metric_table import METRICS

    if metric in METRICS and isinstance(value, (int, float)):
        return METRICS[metric].format(value)
    return _short(value)


def diff(a: str, b: str) -> str:
    """What differs between two runs (run directories or results.json) or two reproduction
    reports (their .json), section by section: code (commit, dirty flag), config keys,
    packages, encoders, build; for reports also overrides, baseline rows, paper figures and the
    runs' commits; then the test scores, formatted as ``mmer compare`` writes them (percent,
    or MAE/Corr as numbers) under the split and variant they are of; ``mmer compare --diff``.

    A run or report from before provenance was recorded (every committed report is) gets one
    line saying so, and the state only a provenance block holds (code, packages, encoders,
    build, the seed runs' commits) is not compared; a run's config is then read from its
    ``config.json`` (a report has none: its config is not compared either).

    Raises:
      UsageError: a path is neither a run nor a reproduction report.
    """
    from mmer_jax.metric_table import NOT_PERCENT
    from mmer_jax.train.provenance import differences

    (ka, oa, ca), (kb, ob, cb) = _load_any(a), _load_any(b)
    lines = [f"A: {a} ({ka})", f"B: {b} ({kb})"]
    sa, sb = _sections(ka, oa, ca), _sections(kb, ob, cb)
    skipped: list[str] = []
    for side, obj, sec in (("A", oa, sa), ("B", ob, sb)):
        if not obj.get("provenance"):
            what = "code/packages/build" + ("" if sec["config"] else "/config")
            lines.append(f"{side} has no provenance block (written before provenance was "
                         f"recorded): {what} not compared")
            skipped += [*_PROVENANCE_ONLY, *([] if sec["config"] else ["config"])]
    same = []
    for name in list(dict.fromkeys([*sa, *sb])):
        if name in skipped:
            continue
        found = differences(sa.get(name), sb.get(name))
        heading = name
        if name == "scores":
            ha, hb = _scores_heading(ka, oa), _scores_heading(kb, ob)
            units = "percent" + (", MAE and Corr as numbers"
                                 if any(k in NOT_PERCENT for k, _, _ in found) else "")
            heading = f"test scores ({ha if ha == hb else f'A: {ha}; B: {hb}'}; {units})"
            found = [(k, _score(k, x), _score(k, y)) for k, x, y in found]
        if not found:
            same.append(name)
            continue
        lines.append(f"\n{heading}: {len(found)} differ{'s' if len(found) == 1 else ''}")
        lines += [f"  {key or '(value)'}: {_short(x)}  ->  {_short(y)}" for key, x, y in found]
    lines.append(f"\nsame: {', '.join(same) if same else 'nothing'}")
    return "\n".join(lines)
