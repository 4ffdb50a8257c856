"""``mmer reproduce --ablation fusion``: one model, one config key varied, every other thing equal.

For every ``experiments/ablation_<name>_<corpus>.py`` whose data is available (or the one named
by ``corpus``), each row value (for ``fusion``: concat, dynconv_gate, tfn, lmf, mult, late) is
set at the ablation's config key (``model.fusion``) and trained for seeds 0..N-1 with the
harness's :func:`~mmer_jax.reproduce.harness.run_seeds` in
``<workdir>/ablation_<name>/<corpus>/<row>/seed<k>`` (resumable: finished seeds are read back).
Encoders, head, data, budget and seeds are those of the corpus's config for every row. Then
``<out_dir>/ablation_<name>/<name>.json`` and ``.md`` are written: one row per value, one column
per corpus, test weighted F1 and accuracy as mean ± std over seeds (ddof 1), and the cost of
each row, measured once per (corpus, row) on this process's devices:

- parameters (all, and the fusion's own: the ``fusion`` subtree);
- FLOPs of one compiled train step (XLA's cost analysis of the jitted step on one training batch;
  XLA counts a loop body once, so the LSTMs' steps are undercounted alike in every row) and of
  the fusion's eval-mode forward per example (matmul FLOPs from the jaxpr, as
  :mod:`mmer_jax.models.profile` counts them);
- step time: median wall time of the compiled train step over a few steps on one batch.

Every number in those files comes from the seed runs and measurements listed in them.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from typing import Iterable

import jax

from mmer_jax.errors import UsageError
from mmer_jax.io_utils import atomic_write_json, atomic_write_text
from mmer_jax.models.fused import FusionOnly
from mmer_jax.reproduce import report_provenance
from mmer_jax.reproduce.harness import (
    METRICS,
    REFERENCE_DIR,
    REPO,
    _stats,
    data_available,
    find_configs,
    plural,
    run_seeds,
)
from mmer_jax.train.provenance import markdown_lines


@dataclasses.dataclass(frozen=True)
class Ablation:
    """An ablation: the config key it varies, its row values and what the rows are.

    Attributes:
      name: ``mmer reproduce --ablation NAME``; its configs are
        ``experiments/ablation_<name>_<corpus>.py``.
      key: the dotted config key set to each row value, e.g. "model.fusion".
      rows: the values, in table order.
      descriptions: one line per value for the report.
    """

    name: str
    key: str
    rows: tuple[str, ...]
    descriptions: tuple[tuple[str, str], ...] = ()


ABLATIONS = {
    "fusion": Ablation(
        "fusion",
        "model.fusion",
        ("concat", "dynconv_gate", "tfn", "lmf", "mult", "late", "bridge", "bilinear"),
        (
            ("concat", "concatenation of the modality vectors (S001/S003's own fusion)"),
            ("dynconv_gate", "dynamic convolution across modalities + residual gate (S000 MI)"),
            ("tfn", "tensor fusion: outer product of [h_m; 1], then MLP (Zadeh et al. 2017)"),
            ("lmf", "low-rank fusion, rank 4 modality factors (Liu et al. 2018)"),
            ("mult", "crossmodal transformers, vectors as length-1 sequences (Tsai et al. 2019)"),
            ("late", "per-modality scorers, softmax-weighted sum (decision-level fusion)"),
            ("bridge", "the text modality (else the first by name) queries the others by "
                       "cross-attention (MGMNet's Bridge Transformer, S000 §3.3)"),
            ("bilinear", "low-rank bilinear shift vectors added to the bridge vector with a "
                         "bounded scale (MGMNet, S000 §3.3)"),
        ),
    ),
}
DEFAULT_WORKDIR = "runs/ablation"
STEP_TIMING_STEPS = 5


def _log(msg: str) -> None:
    print(f"[ablation] {msg}", file=sys.stderr, flush=True)


def get_ablation(name: str) -> Ablation:
    """The registered ablation ``name`` (any case).

    Raises:
      UsageError: no such ablation (the message lists the known ones).
    """
    from mmer_jax.config import did_you_mean

    found = ABLATIONS.get(str(name).lower())
    if found is None:
        raise UsageError(f"--ablation {name!r}: unknown ablation"
                         + did_you_mean(str(name), sorted(ABLATIONS))
                         + f" (known: {', '.join(sorted(ABLATIONS))})")
    return found


def _set_key(cfg, key: str, value) -> None:
    *parents, leaf = key.split(".")
    node = cfg
    for p in parents:
        node = node[p]
    node[leaf] = value


# ------------------------------------------------------------------------------------ cost


def measure_cost(cfg, fusion_scope: str = "fusion", steps: int = STEP_TIMING_STEPS) -> dict:
    """Size, FLOPs and step time of the primary variant of ``cfg``, on one training batch.

    Args:
      cfg: a run config (``mmer_jax.config.load``) whose data is available.
      fusion_scope: the parameter subtree counted as the fusion's own.
      steps: timed train steps (after one compiling call).

    Returns:
      {"params", "fusion_params", "step_flops_xla", "fusion_flops_per_example",
      "step_ms", "step_ms_all", "global_batch", "devices", "note"}; a FLOP figure is None when
      the backend gives no cost analysis.

    Raises:
      UsageError, RunError: as :class:`mmer_jax.train.loop.VariantTrainer`.
    """
    from mmer_jax.data.pipeline import make_pipeline
    from mmer_jax.models import profile
    from mmer_jax.train import sharding as sh
    from mmer_jax.train.loop import VariantTrainer
    from mmer_jax.train.run import config_for_variant, primary_variant, variants_of

    name = primary_variant(cfg)
    modalities = variants_of(cfg)[name]
    cfg = config_for_variant(cfg, name)
    pipeline = make_pipeline(cfg.data, modalities, cfg.seed)
    with tempfile.TemporaryDirectory(prefix="mmer_ablation_cost_") as tmp:
        trainer = VariantTrainer(cfg, pipeline, f"cost_{name}", modalities, tmp)
        state = trainer.init_state()
        host = next(iter(trainer.batches("train", epoch=0, train=True)))
        batch = sh.to_global(host, trainer.mesh)
        params = jax.device_get(state.params)
        n_params = profile.count_params(params)
        n_fusion = profile.count_params(params.get(fusion_scope, {}))
        step_flops = None
        with jax.set_mesh(trainer.mesh):
            compiled = trainer.train_step.jitted.lower(state, batch).compile()
        cost = compiled.cost_analysis()
        if isinstance(cost, (list, tuple)):
            cost = cost[0] if cost else None
        if cost and cost.get("flops") is not None:
            step_flops = float(cost["flops"])
        times = []
        for i in range(steps + 1):
            t0 = time.perf_counter()
            with jax.set_mesh(trainer.mesh):
                state, m = compiled(state, batch)  # donates the state, like the train step
            jax.block_until_ready(m)
            if i:  # the first call may still pay dispatch set-up
                times.append(1e3 * (time.perf_counter() - t0))
        # The fusion alone, on the encoder features the model hands it (its aux).
        inputs = trainer.features(host)
        variables = {"params": params, **({"batch_stats": state.batch_stats}
                                           if state.batch_stats else {})}
        _, feats = jax.jit(lambda v, x: trainer.model.apply(v, x, train=False))(variables,
                                                                                 inputs)
        feats = {k: v for k, v in feats.items() if k.startswith("feat_")}
        fusion_flops = None
        if feats:
            # The model's own modality order: the aux dict came back through jax.jit, whose
            # keys are sorted.
            order = tuple(getattr(trainer.model, "order", ()))
            fusion_flops = profile.flops_per_example(
                FusionOnly(cfg.model.fusion, order if set(order) == set(feats) else ()),
                {"params": {"fusion": params.get(fusion_scope, {})}}, feats)
    return {
        "params": n_params,
        "fusion_params": n_fusion,
        "step_flops_xla": step_flops,
        "fusion_flops_per_example": fusion_flops,
        "step_ms": statistics.median(times),
        "step_ms_all": times,
        "global_batch": trainer.global_batch,
        "devices": int(trainer.mesh.devices.size),
        "note": f"train step (forward + backward + update) on one training batch of "
        f"{trainer.global_batch}, median of {steps} steps after compiling, this process's "
        f"devices; XLA's FLOP count of the compiled step counts loop bodies once; fusion FLOPs: "
        f"eval-mode forward of the fusion alone, matmuls only",
    }


# ------------------------------------------------------------------------------------ report


def _row_summary(runs: list[dict]) -> dict:
    return {
        "test": {m: _stats(r["test"].get(m) for r in runs) for m in METRICS},
        "validation": {m: _stats(r["validation"].get(m) for r in runs) for m in METRICS},
        "best_epoch": [r.get("best_epoch") for r in runs],
        "num_params": runs[0].get("num_params"),
        "seed_wall_s": [r["timing"].get("wall_s") for r in runs],
        "train_examples_per_s": _stats(r["timing"].get("train_examples_per_s") for r in runs),
        "workdirs": [r["_workdir"] for r in runs],
        "seeds": [r["protocol"].get("seed") for r in runs],
    }


def _protocol(cfg, config_path: str, runs: list[dict]) -> dict:
    head = runs[0]
    p = head["protocol"]
    return {
        "config": os.path.relpath(config_path, REPO) if config_path.startswith(REPO)
        else config_path,
        "system": head.get("system"),
        "corpus": cfg.data.corpus,
        "corpus_config": cfg.data.config,
        "modalities": head.get("modalities"),
        "classes": p.get("classes"),
        "split": p.get("split"),
        "examples": p.get("examples"),
        "speaker_independent_measured": p.get("speaker_independent"),
        "epochs": cfg.train.epochs,
        "batch_size": cfg.train.batch_size,
        "selection_rule": f"best validation {cfg.train.select_metric} epoch per seed; test "
        "scored once at that checkpoint",
    }


def _winner(cells: dict, metric: str = "weighted_f1") -> str | None:
    scored = {r: c["test"][metric]["mean"] for r, c in cells.items()
              if c["test"][metric]["mean"] is not None}
    return max(scored, key=scored.get) if scored else None


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.1f}"


def _pm(s: dict) -> str:
    if s.get("mean") is None:
        return "—"
    return _pct(s["mean"]) + ("" if s.get("std") is None else f" ± {_pct(s['std'])}")


def _si(x, unit: str = "") -> str:
    if x is None:
        return "—"
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.2f} {suffix}{unit}"
    return f"{x:.0f} {unit}".strip()


def render_markdown(rep: dict) -> str:
    """The ablation's markdown report from its JSON dict (:func:`ablation`'s report)."""
    corpora = rep["corpora"]
    n = len(rep["seeds"])
    lines = [
        f"# Ablation: {rep['ablation']} (`{rep['key']}`)",
        "",
        f"Command: `{rep['command']}`. One row per `{rep['key']}` value, one column per corpus; "
        "everything else (encoders, head, data, budget, seeds) is the corpus's config. Test "
        f"split, percent, mean ± standard deviation over {plural(n, 'seed')} "
        f"({', '.join(map(str, rep['seeds']))}; ddof 1). Bold: the best mean weighted F1 of a "
        "column. Every number below comes from the runs listed in the JSON beside this file.",
        "",
    ]
    if rep["overrides"]:
        lines += ["Overrides: " + ", ".join(f"`{o}`" for o in rep["overrides"]) + ".", ""]
    lines += [f"## Weighted F1 (accuracy), {plural(n, 'seed')}", ""] + score_table(rep)
    for c in corpora:
        measured = {r: cell for r, cell in rep["results"][c].items() if cell.get("cost")}
        if not measured:
            continue
        lines += ["", f"## Cost on {c}", ""]
        crow = []
        for row, cell in measured.items():
            k = cell["cost"]
            crow.append([f"`{row}`", f"{k['params']:,}", f"{k['fusion_params']:,}",
                         _si(k["step_flops_xla"], "FLOP"), _si(k["fusion_flops_per_example"],
                                                               "FLOP"),
                         f"{k['step_ms']:.1f}", _pct_free(cell["train_examples_per_s"])])
        lines += _table(["fusion", "parameters", "fusion parameters", "FLOPs per train step "
                         "(XLA)", "fusion FLOPs per example", "step ms (median)",
                         "train examples/s (runs)"], "lrrrrrr", crow)
        lines += ["", f"_{next(iter(measured.values()))['cost']['note']}._"]
    lines += ["", "## Protocol", ""]
    for c in corpora:
        p = rep["protocol"][c]
        ex = p.get("examples") or {}
        sizes = "/".join(str(ex.get(s, "—")) for s in ("train", "validation", "test"))
        lines += [f"- **{c}**: config `{p['config']}` (system {p['system']}, modalities "
                  f"{', '.join(p['modalities'] or [])}), corpus {p['corpus']}/"
                  f"{p['corpus_config'] or 'default'}, {len(p['classes'] or [])} classes, "
                  f"train/validation/test {sizes}, split {p['split']}; {p['epochs']} epochs, "
                  f"batch {p['batch_size']}; {p['selection_rule']}."]
    for c, why in rep["skipped"].items():
        lines += [f"- {c}: not run ({why})."]
    if rep["descriptions"]:
        lines += ["", "## Rows", ""]
        lines += [f"- `{k}`: {v}" for k, v in rep["descriptions"].items()]
    env = rep["environment"]
    lines += ["", "## Environment", "",
              f"jax {env.get('jax')}, {env.get('device')} ({env.get('device_kind')}), "
              f"{env.get('device_count')} device(s); harness wall time "
              f"{rep['timing']['harness_wall_s']:.0f} s.", ""]
    for c, block in (rep.get("provenance") or {}).items():  # none in reports from before it
        lines += markdown_lines(block, f"## Provenance ({c})") + [""]
    return "\n".join(lines)


def score_table(rep: dict) -> list[str]:
    """The markdown lines of the ablation's main table (rows x corpora: test weighted F1 and
    accuracy, mean ± std; bold: a column's best mean weighted F1), e.g. for a README block."""
    corpora = rep["corpora"]
    header = [rep["ablation"]] + [f"{c} ({', '.join(rep['protocol'][c]['modalities'] or [])})"
                                  for c in corpora]
    rows = []
    for row in rep["rows"]:
        cells = [f"`{row}`"]
        for c in corpora:
            cell = rep["results"][c].get(row)
            if cell is None:
                cells.append("—")
                continue
            t = cell["test"]
            text = f"{_pm(t['weighted_f1'])} ({_pm(t['accuracy'])})"
            cells.append(f"**{text}**" if rep["best"].get(c) == row else text)
        rows.append(cells)
    return _table(header, "l" + "r" * len(corpora), rows)


def _pct_free(s: dict) -> str:
    if s.get("mean") is None:
        return "—"
    return f"{s['mean']:.1f}" + ("" if s.get("std") is None else f" ± {s['std']:.1f}")


def _table(header: list[str], align: str, rows: list[list[str]]) -> list[str]:
    sep = ["---:" if a == "r" else "---" for a in align]
    return ["| " + " | ".join(r) + " |" for r in [header, sep, *rows]]


# ------------------------------------------------------------------------------------ entry


def ablation(
    name: str,
    corpus: str | None = None,
    seeds: int = 3,
    workdir: str = DEFAULT_WORKDIR,
    out_dir: str | None = None,
    overrides: Iterable[str] = (),
    experiments_dir: str | None = None,
    update_reference: bool = False,
    rows: Iterable[str] | None = None,
    measure: bool = True,
) -> dict:
    """Runs the ablation ``name`` and writes its table.

    Args:
      name: a key of :data:`ABLATIONS` ("fusion"), any case.
      corpus: one corpus (``experiments/ablation_<name>_<corpus>.py``); every corpus whose data
        is available when None.
      seeds: seeds 0..seeds-1 per row.
      workdir: seed runs go to ``<workdir>/ablation_<name>/<corpus>/<row>/seed<k>``.
      out_dir: report directory; default ``<workdir>/reports``, or the committed
        ``reproductions/`` with ``update_reference``.
      overrides: ``--config.KEY=VALUE`` overrides applied to every row (recorded in the
        report); they may not set the ablation's own key.
      experiments_dir: where the configs are (default: the repository's ``experiments/``).
      update_reference: write ``reproductions/ablation_<name>/``.
      rows: a subset of the ablation's rows (default: all, in table order).
      measure: measure each row's cost (parameters, FLOPs, step time); False leaves ``cost``
        None (for tests of the table alone).

    Returns:
      {"json": path, "md": path, "report": the report dict}.

    Raises:
      UsageError: unknown ablation or row; seeds < 1; an override of the ablation's key; no
        config for ``corpus``, or its data unavailable; no corpus available at all;
        ``update_reference`` with overrides.
    """
    from mmer_jax import config as config_lib
    from mmer_jax.train.run import environment

    spec = get_ablation(name)
    overrides = list(overrides)
    if seeds < 1:
        raise UsageError(f"--seeds must be >= 1, got {seeds}")
    bad = [o for o in overrides if o.split("=", 1)[0].strip() == spec.key]
    if bad:
        raise UsageError(f"--config.{bad[0]}: the {spec.name} ablation sets {spec.key} itself, "
                         "once per row")
    rows = list(rows) if rows else list(spec.rows)
    unknown = [r for r in rows if r not in spec.rows]
    if unknown:
        raise UsageError(f"row {unknown[0]!r} is not one of the {spec.name} ablation's rows: "
                         f"{', '.join(spec.rows)}")
    reference = os.path.realpath(REFERENCE_DIR)
    if update_reference:
        if overrides:
            raise UsageError("--update-reference refuses --config.* overrides (got --config."
                             f"{overrides[0]}): the reference reports are the configs as committed")
        out_dir = REFERENCE_DIR
    elif out_dir and os.path.realpath(out_dir) == reference:
        raise UsageError(f"--out {out_dir} is the committed reference directory; pass "
                         "--update-reference to rewrite it (without overrides)")
    out_dir = out_dir or os.path.join(workdir, "reports")
    if corpus:
        corpus = config_lib.experiment_corpus_key(corpus)
    prefix = f"ablation_{spec.name}"
    configs = find_configs(prefix, corpus, experiments_dir)
    t0 = time.time()
    results, protocol, skipped, provenance = {}, {}, {}, {}
    for cname, path in configs.items():
        base = config_lib.load(path, overrides)
        _log(config_lib.resolve_data_dirs(base))
        ok, why = data_available(base.data)
        if not ok:
            if corpus:
                raise UsageError(f"{prefix}/{cname}: {why}")
            _log(f"skipping {cname}: {why}")
            skipped[cname] = why
            continue
        results[cname] = {}
        corpus_runs = []
        for row in rows:
            cfg = copy.deepcopy(base)
            _set_key(cfg, spec.key, row)
            _log(f"{cname}: {spec.key}={row}, {plural(seeds, 'seed')}")
            runs = run_seeds(cfg, os.path.join(workdir, prefix, cname, row), seeds)
            corpus_runs += runs
            cell = _row_summary(runs)
            cell["cost"] = measure_cost(cfg) if measure else None
            results[cname][row] = cell
            protocol.setdefault(cname, _protocol(cfg, path, runs))
            t = cell["test"]
            _log(f"{cname}/{row}: weighted F1 {_pm(t['weighted_f1'])}, accuracy "
                 f"{_pm(t['accuracy'])}")
        # the base config (each row sets spec.key), every row's runs: written once here
        provenance[cname] = report_provenance.report_block(base, path, corpus_runs, [])
    if not results:
        raise UsageError(f"no corpus of the {spec.name} ablation is available: "
                         + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    cmd = f"mmer reproduce --ablation {spec.name}" + (f" --corpus {corpus}" if corpus else "") \
        + f" --seeds {seeds}" + "".join(f" --config.{o}" for o in overrides)
    report = {
        "ablation": spec.name,
        "key": spec.key,
        "command": cmd,
        "rows": rows,
        "corpora": list(results),
        "seeds": list(range(seeds)),
        "overrides": overrides,
        "skipped": skipped,
        "descriptions": {k: v for k, v in spec.descriptions if k in rows},
        "protocol": protocol,
        "results": results,
        "best": {c: _winner(cells) for c, cells in results.items()},
        "environment": environment(),
        "timing": {"harness_wall_s": time.time() - t0},
        "provenance": provenance,
    }
    d = os.path.join(out_dir, prefix)
    os.makedirs(d, exist_ok=True)
    out = {
        "json": atomic_write_json(os.path.join(d, f"{spec.name}.json"), report),
        "md": atomic_write_text(os.path.join(d, f"{spec.name}.md"), render_markdown(report)),
        "report": report,
    }
    for c in report["corpora"]:
        _log(f"{c}: best mean weighted F1: {report['best'][c]}")
    _log(f"-> {out['md']}")
    return out

