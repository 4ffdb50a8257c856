"""S004's hybrid for one seed: speech seed k and face seed k -> every row of the report.

Per seed: the best checkpoints of the two encoder runs are exported once
(``<features>/<system>/``, reused when their manifest matches the run's best epoch and has the
``order`` field), then

- Table 2: each face tap alone -> min-max scaling (-> chi-square) -> SVC;
- the fused system: speech and face channels (ids aligned) -> per-channel SVC -> Sugeno and
  Choquet fusion, and the concatenated channels -> one SVC; with and without chi-square; once
  on the raw channels (context "none") and once after the config's ``context`` stage: S004's
  LSTM within each modality over the utterances of a video (:mod:`.context_lstm`), whose
  outputs replace the channels, and with "within+across" one more row, "across": each
  modality's context features -> min-max (-> chi-square, fitted on train) -> spliced -> an LSTM
  across the modalities -> SVC.

The LSTMs' epochs, C, gamma and the fuzzy densities are chosen on validation; the test split is
scored once per classifier. ``cfg`` is the typed ``model`` section
(:class:`~.system.S004HybridConfig`).
"""

from __future__ import annotations

import json
import os

import numpy as np

from mmer_jax.fitted.s004_hybrid.classifier import (
    ChannelFeatures,
    S004Hybrid,
    SplitFeatures,
    join_channels,
)
from mmer_jax.fitted.s004_hybrid.context_lstm import GroupedSplit, contextual_features
from mmer_jax.train.export_features import MANIFEST, SPLITS, export_features, load_split

HYBRID_FILE = "hybrid.json"  # a run's rows (seed_results), per variant, read by the report


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


def fit_rows(splits: dict[str, SplitFeatures], keep, cfg, seed: int,
             fitted: dict | None = None) -> dict:
    """One hybrid fitted on train/validation, scored once on test: ``{row: {...}}``; the fitted
    :class:`S004Hybrid` is also put in ``fitted["model"]`` when ``fitted`` is given."""
    model = S004Hybrid(chi2_keep=keep, c_grid=cfg.c_grid, gamma_scales=cfg.gamma_scales,
                       seed=seed).fit(splits["train"], splits["validation"])
    if fitted is not None:
        fitted["model"] = model
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
    lstm = cfg.context_lstm
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
    feats, info = contextual_features(grouped, cfg.context_lstm, seed)
    splits = {s: SplitFeatures({"across": feats[s]}, sp.labels, sp.ids)
              for s, sp in within.items()}
    return fit_rows(splits, None, cfg, seed)["across"], info


def lstm_summary(info: dict) -> dict:
    """What the report keeps of a context LSTM's ``info``."""
    return {"best_epoch": info["best_epoch"],
            "val_weighted_f1": round(max(info["val_weighted_f1"]), 4),
            "max_group": info["max_group"], "groups": info["groups"]}


def seed_results(cfg, speech_run: str, face_run: str, features: str, seed: int,
                 served: dict | None = None) -> dict:
    """Table 2 and the fused rows of one seed (speech seed k with face seed k).

    Args:
      cfg: the typed ``model`` section.
      speech_run, face_run: the encoder run directories.
      features: where their features are exported (``<features>/<system>/``).
      seed: the seed of the classifiers and the LSTMs.
      served: when given, receives ``"model"`` (the :class:`S004Hybrid` fitted with
        chi-square on the raw channels, context "none": the one a run serves) and ``"splits"``
        (its input :class:`SplitFeatures` per split).

    Raises:
      ValueError: the exports disagree on ids, labels or groups.
    """
    speech_out = os.path.join(features, cfg.speech.system)
    face_out = os.path.join(features, cfg.face.system)
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
    fitted: dict = {}
    fused = {"none": {k: fit_rows(splits, keep, cfg, seed, fitted if k == "on" else None)
                      for k, keep in keeps.items()}}
    if served is not None:
        served.update(model=fitted["model"], splits=splits)
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
