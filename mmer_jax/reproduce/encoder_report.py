"""The parts of a reproduction report that only a pretrained-encoder system has.

- ``encoder``: the imported encoder the runs read (``data.encoder``): its architecture, the
  import directory, the source format and ``source.sha256`` from its ``encoder.json``, the number
  of hidden states and the encoder-feature cache's store mode (``data.encoder_store``);
- ``layer_weights``: the softmax layer weights each run reports (``model_summary.layer_weights``,
  ``ssl_probe``) at its validation-chosen checkpoint: per run, per fold the mean over its seeds,
  and the mean ± std over the folds (over the runs of a single-split report), with a bar plot
  ``<stem>_layer_weights.png``;
- ``encoder_context``: published and measured figures of other encoders or protocols
  (:func:`mmer_jax.reproduce.papers.encoder_context`), set beside ours as context.

A report whose runs carry none of these has none of the keys and none of the sections.
"""

from __future__ import annotations

import numpy as np

from mmer_jax.errors import RunError, UsageError
from mmer_jax.reproduce import papers
from mmer_jax.train.report_common import MISSING, cell, markdown_table, num, pct

STORE_TEXT = {
    "frames": "frames (every hidden state's frames of every clip)",
    "pooled": "pooled (per hidden state, the mean and std over each clip's frames)",
}


def report_parts(system: str, corpus: str, cfg, runs: list[dict], folds: dict | None,
                 stem: str) -> dict:
    """``encoder``, ``layer_weights`` and ``encoder_context`` of a report, where they apply.

    Args:
      system, corpus: the report's.
      cfg: the runs' config (``data.encoder``, ``data.encoder_store``).
      runs: the run results (``_workdir``; ``_fold`` in a k-fold report).
      folds: the report's ``folds`` block, or None for a single split.
      stem: the report's file stem (names the plot).

    Raises:
      RunError: the runs report layer weights of different lengths.
    """
    out = {}
    weights = layer_weights(runs, folds)
    if weights is not None:
        out["layer_weights"] = {**weights, "png": f"{stem}_layer_weights.png"}
    data = cfg.get("data") or {}
    # The encoder a probe reads from the feature cache (data.encoder), or the one a fine-tuned
    # model holds (model.audio.path of an "imported" encoder).
    audio = (cfg.get("model") or {}).get("audio")
    tuned = audio.get("path") if hasattr(audio, "get") else None
    if data.get("encoder") or tuned:
        source = data if data.get("encoder") else {"encoder": tuned, "encoder_store": None}
        out["encoder"] = encoder_info(source, (weights or {}).get("states"))
        out["encoder"]["fine_tuned"] = not data.get("encoder")
        # What the runs themselves recorded (results.json "encoder"): it wins over the import
        # directory as it is now, which may have been replaced since they trained.
        recorded = sorted({r["encoder"]["source_sha256"] for r in runs
                           if (r.get("encoder") or {}).get("source_sha256")})
        if recorded:
            now = out["encoder"].get("source_sha256")
            out["encoder"]["source_sha256"] = ", ".join(recorded)
            out["encoder"]["runs_recorded_sha256"] = True
            if now and now not in recorded:
                out["encoder"]["replaced"] = (
                    f"the import at {data.get('encoder')} now has source sha256 {now}, not the "
                    "one the runs read (replaced since they trained)")
    context = context_rows(system, corpus, (folds or {}).get("protocol"))
    if context:
        out["encoder_context"] = context
    return out


def context_rows(system: str, corpus: str, fold_protocol: str | None) -> list[dict]:
    """:func:`papers.encoder_context` with fractions for percent and ``same_test_folds``: whether
    the figure tested the same speakers per fold as a report on ``fold_protocol``."""
    rows = []
    for row in papers.encoder_context(system, corpus):
        rows.append({**row, "metrics": {k: float(v) / 100.0 for k, v in row["metrics"].items()},
                     "same_test_folds": bool(fold_protocol) and row["folds"] == fold_protocol})
    return rows


def encoder_info(data, states_reported: int | None = None) -> dict:
    """What a report says of ``data.encoder``; its ``encoder.json`` is read now, so a report
    re-rendered later needs no encoder directory.

    Args:
      data: the config's ``data`` section.
      states_reported: the length of the runs' layer weights, when they report them.

    Returns:
      ``{"path", "store", "window_s", "architecture", "parameters", "source_format",
      "source_kind", "source_path", "source_sha256" (the sha256 of the source files' sha256s,
      concatenated: the import's key), "source_files" ([{"name", "bytes", "sha256"}] each file
      read), "hidden_states", "hidden_states_reported"}``;
      ``record_error`` in place of the record's fields when ``encoder.json`` cannot be read.
    """
    from mmer_jax.data.encoder_cache import encoder_record, encoder_states

    # "store" None: no feature cache (the encoder is inside the trained model)
    info = {"path": data.get("encoder"), "store": data.get("encoder_store", "frames"),
            "window_s": data.get("encoder_window_s")}
    try:
        record = encoder_record(info["path"])
    except UsageError as exc:
        info["record_error"] = str(exc)
        record = None
    if record is not None:
        src = record.get("source") or {}
        try:
            states = encoder_states(info["path"])
        except UsageError:
            states = None
        info.update(architecture=record.get("architecture"), parameters=record.get("parameters"),
                    source_format=src.get("format"), source_kind=src.get("kind"),
                    source_path=src.get("path"), source_sha256=src.get("sha256"),
                    source_files=[{k: f.get(k) for k in ("name", "bytes", "sha256")}
                                  for f in src.get("files") or []],
                    hidden_states=states)
    if states_reported is not None:
        info["hidden_states_reported"] = states_reported
    return info


def _mean_std(rows: list[list[float]]) -> tuple[list[float], list[float] | None]:
    a = np.asarray(rows, np.float64)
    return a.mean(0).tolist(), (a.std(0, ddof=1).tolist() if len(a) > 1 else None)


def layer_weights(runs: list[dict], folds: dict | None) -> dict | None:
    """The runs' ``model_summary.layer_weights``: per run, per fold and overall.

    Returns:
      None when no run reports them; else ``{"states", "runs": [{"seed", ["fold"], "workdir",
      "weights"}], "runs_total", "mean_over_runs"}`` plus, in a k-fold report, ``"per_fold":
      [{"fold", "runs", "mean", "std"}]`` (std over the fold's seeds, None for one seed),
      ``"mean_over_folds"`` and ``"std_over_folds"`` (of the per-fold means, ddof 1; None for
      one fold), or in a single-split report ``"std_over_runs"``.

    Raises:
      RunError: two runs report different numbers of hidden states.
    """
    per_run = []
    for r in runs:
        w = (r.get("model_summary") or {}).get("layer_weights")
        if w is None:
            continue
        if per_run and len(w) != len(per_run[0]["weights"]):
            raise RunError(f"{r['_workdir']}: {len(w)} layer weights, but "
                           f"{per_run[0]['workdir']} has {len(per_run[0]['weights'])}: "
                           "the runs read different encoders")
        per_run.append({"seed": r["protocol"].get("seed"),
                        **({"fold": r["_fold"]} if "_fold" in r else {}),
                        "workdir": r["_workdir"], "weights": [float(x) for x in w]})
    if not per_run:
        return None
    out = {"states": len(per_run[0]["weights"]), "runs": per_run, "runs_total": len(runs),
           "mean_over_runs": _mean_std([p["weights"] for p in per_run])[0]}
    if folds is None:
        out["std_over_runs"] = _mean_std([p["weights"] for p in per_run])[1]
        return out
    out["per_fold"] = []
    for k in folds["folds"]:
        ws = [p["weights"] for p in per_run if p.get("fold") == k]
        if ws:
            mean, std = _mean_std(ws)
            out["per_fold"].append({"fold": k, "runs": len(ws), "mean": mean, "std": std})
    out["mean_over_folds"], out["std_over_folds"] = _mean_std(
        [f["mean"] for f in out["per_fold"]])
    return out


def central(lw: dict) -> tuple[list[float], list[float] | None, str]:
    """(mean, std, what they are over) of a ``layer_weights`` block: over the folds' means in a
    k-fold report, over the runs of a single split."""
    if "per_fold" in lw:
        return lw["mean_over_folds"], lw["std_over_folds"], "folds"
    return lw["mean_over_runs"], lw["std_over_runs"], "runs"


def plot_layer_weights(lw: dict, path: str, title: str) -> str:
    """Bars: each hidden state's mean weight (over the folds' means, or the runs), error bars
    the std over the folds (runs), dots the per-fold means, dashed the equal weight 1/L.

    Raises:
      ImportError: matplotlib is not installed.
    """
    from mmer_jax.train.report_common import new_figure, save_png

    mean, std, over = central(lw)
    x = np.arange(lw["states"])
    fig = new_figure(max(4.5, 0.45 * len(x) + 2.0), 3.6)
    ax = fig.subplots()
    ax.bar(x, mean, yerr=std, capsize=3, color="C0", alpha=0.8,
           label=f"mean over {over}" + ("" if std is None else f", ± std over {over}"))
    for f in lw.get("per_fold", []):
        ax.plot(x, f["mean"], "o", color="C1", markersize=3)
    if lw.get("per_fold"):
        ax.plot([], [], "o", color="C1", markersize=3, label="per-fold mean over seeds")
    tops = [np.asarray(mean) + (0 if std is None else np.asarray(std))]
    tops += [np.asarray(f["mean"]) for f in lw.get("per_fold", [])]
    ax.set_ylim(0, 1.4 * float(np.max(tops)))  # room for the legend above the bars
    ax.axhline(1.0 / lw["states"], color="C3", linestyle="--", linewidth=1,
               label=f"equal weights (1/{lw['states']})")
    ax.set_xticks(x)
    ax.set_xlabel("hidden state (0 = input embedding, last = final layer)")
    ax.set_ylabel("softmax layer weight")
    ax.set_title(title, fontsize=9)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper right", ncol=2)
    return save_png(fig, path)


# ----------------------------------------------------------------------------------- markdown


def encoder_lines(r: dict) -> list[str]:
    """The "Encoder" section; [] for a report without one."""
    e = r.get("encoder")
    if not e:
        return []
    states = e.get("hidden_states") or e.get("hidden_states_reported")
    rows = [["Import directory", f"`{e['path']}`"]]
    if "record_error" in e:
        rows.append(["encoder.json", f"not readable when the report was written: "
                                     f"{cell(e['record_error'])}"])
    else:
        rows += [
            ["Architecture", f"{cell(e.get('architecture'))} ("
             + (f"{e['parameters']:,} parameters)" if e.get("parameters") else "parameters —)")],
            ["Source format", f"{cell(e.get('source_format'))}"
             + (f" ({cell(e['source_kind'])})" if e.get("source_kind") else "")
             + (f", imported from `{e['source_path']}`" if e.get("source_path") else "")],
            ["Source sha256", (f"`{e['source_sha256']}` (the sha256 of the source files' "
                               "sha256s, concatenated)") if e.get("source_sha256") else MISSING],
        ]
        for f in e.get("source_files") or []:
            rows.append([f"Source file `{f['name']}`",
                         f"{f['bytes']:,} bytes, sha256 `{f['sha256']}`"])
    if e.get("replaced"):
        rows.append(["Import now", cell(e["replaced"])])
    rows.append(["Hidden states", (f"{states} (0 = the input embedding, {states - 1} = the last "
                                   "layer)") if states else MISSING])
    reported = e.get("hidden_states_reported")
    if reported is not None and e.get("hidden_states") not in (None, reported):
        rows.append(["Layer weights reported", f"{reported} per run: not the encoder's "
                     f"{e['hidden_states']} (the import changed after the runs?)"])
    if e.get("fine_tuned"):
        rows.append(["Use", "inside the model, its weights fine-tuned from the import "
                            "(`model.audio.path`); no feature cache"])
    else:
        rows.append(["Cache store (`data.encoder_store`)",
                     STORE_TEXT.get(e["store"], cell(e["store"]))])
    if e.get("window_s") is not None:
        rows.append(["Encoder window (`data.encoder_window_s`)", f"{num(e['window_s'], 1)} s"])
    return ["## Encoder", ""] + markdown_table(["Field", "Value"], rows, "ll")


def _pm(stats: dict, key: str) -> str:
    v, s = stats.get(key), stats.get(f"{key}_std")
    if v is None:
        return MISSING
    return pct(v) if s is None else f"{pct(v)} ± {pct(s)}"


def _ours_pm(stat: dict | None) -> str:
    if not stat or stat.get("mean") is None:
        return MISSING
    return pct(stat["mean"]) + ("" if stat.get("std") is None else f" ± {pct(stat['std'])}")


def context_lines(r: dict) -> list[str]:
    """The "Other encoders and protocols" section; [] for a report without context rows."""
    rows_in = r.get("encoder_context")
    if not rows_in:
        return []
    folds = r.get("folds")
    ours = folds["test_over_folds"] if folds else r["ours"]["test"]
    e = r.get("encoder") or {}
    states = e.get("hidden_states") or e.get("hidden_states_reported")
    how = {"ssl_probe": "frozen", "ssl_finetune": "fine-tuned end to end"}.get(r["system"])
    encoder = (f"{cell(e.get('architecture') or e.get('path'))}, {how}, all {states} hidden "
               "states, learned softmax weights" if how and e
               else cell(e.get("architecture") or e.get("path")))
    over = (f"mean ± std over {len(folds['per_fold'])} folds" if folds
            else f"mean ± std over {len(r['runs'])} seeds")
    where = (folds["description"] if folds else cell(r["protocol"].get("split")))
    rows = [[f"**{r['system']} (this reproduction)**", encoder,
             f"{where}; epoch chosen on validation, test scored once ({over})", "ours",
             _ours_pm(ours.get("uar")), _ours_pm(ours.get("accuracy")),
             _ours_pm(ours.get("macro_f1")), "the runs under *Runs*"]]
    for c in rows_in:
        same = ("same test speakers per fold as ours (`" + c["folds"] + "`)"
                if c["same_test_folds"] else "other" + (f" (`{c['folds']}`)" if c["folds"] else ""))
        rows.append([f"{c['name']} ({c['kind']})", cell(c["encoder"]),
                     cell(f"{c['corpus']}: {c['protocol']}"), same,
                     _pm(c["metrics"], "uar"), _pm(c["metrics"], "accuracy"),
                     _pm(c["metrics"], "macro_f1"),
                     cell(c["source"] + (f"; {c['note']}" if c.get("note") else ""))])
    lines = ["## Other encoders and protocols (context, test, %)", "",
             "_Context, not targets: every row but ours comes from another encoder, read-out or "
             "feature set, and from its own model selection, so no difference is printed. *Test "
             "folds* says whether a row tested the same speakers per fold as ours. UAR = "
             "unweighted accuracy (EmoBox's UA), accuracy = EmoBox's WA, macro F1 = EmoBox's F1; "
             "± is the std over folds where the source gives one._", ""]
    return lines + markdown_table(
        ["Model", "Encoder", "Corpus and protocol", "Test folds", "UAR", "Accuracy",
         "Macro F1", "Source"], rows, "llllrrrl")


def layer_weight_lines(r: dict) -> list[str]:
    """The "Layer weights" section; [] for a report whose runs report none."""
    lw = r.get("layer_weights")
    if not lw:
        return []
    mean, std, over = central(lw)
    n = lw["states"]
    top = int(np.argmax(mean))
    kfold = "per_fold" in lw
    head = (f"Each run's softmax weight of every hidden state at its validation-chosen "
            f"checkpoint ({len(lw['runs'])} of {lw['runs_total']} runs report them). "
            + ("Per fold the mean over its seeds; the last column mean ± std over the "
               f"{len(lw['per_fold'])} folds (ddof 1) of those means. " if kfold else
               "Per seed, and mean ± std over the seeds (ddof 1). ")
            + f"State 0 is the encoder's input embedding, state {n - 1} its last layer; equal "
            f"weights would be 1/{n} = {1.0 / n:.3f}. Largest mean weight: state {top} "
            f"({mean[top]:.3f}).")
    if kfold:
        cols = [f"Fold {f['fold']}" for f in lw["per_fold"]]
        values = [f["mean"] for f in lw["per_fold"]]
    else:
        cols = [f"Seed {p['seed']}" for p in lw["runs"]]
        values = [p["weights"] for p in lw["runs"]]
    rows = []
    for i in range(n):
        label = f"{i}" + (" (input embedding)" if i == 0 else " (last layer)" if i == n - 1 else "")
        rows.append([label, *(num(v[i]) for v in values),
                     num(mean[i]) + ("" if std is None else f" ± {num(std[i])}")])
    lines = ["## Layer weights (softmax weight per hidden state)", "", head, ""]
    lines += markdown_table(["Hidden state", *cols, f"Mean ± std over {over}"], rows)
    return lines + [f"![layer weights]({lw['png']})", ""]
