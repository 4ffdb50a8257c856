"""The two-stage trainer (and ``mmer eval``'s evaluator) of S004's hybrid
(``model.name = "s004_hybrid"``).

Same constructor and :meth:`S004HybridTrainer.run` result as
:class:`~mmer_jax.train.loop.VariantTrainer`, so ``mmer train``, ``results.json``, ``report.md``
and ``mmer reproduce`` treat it like any other system. Stage one is two finished encoder runs
(``model.speech.run``, ``model.face.run``; by default seed k of ``s004_speech`` and ``s004_face``
in the same ``mmer reproduce`` workdir); stage two, here: their features exported from each best
checkpoint into ``<run_dir>/features/<system>/``, then every row of S004's tables fitted and
scored (:func:`.fit.seed_results`), written to ``variants/<variant>/hybrid.json`` for the
report. The row ``model.served_row`` (chi-square on, no context stage) is the run's headline
(``results.json``'s test and validation metrics) and is saved as arrays
(:class:`~.saved.SavedHybrid`, no pickle) for ``mmer predict`` / ``serve`` / ``eval``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from typing import Any

import ml_collections
import numpy as np

from mmer_jax.errors import UsageError
from mmer_jax.fitted.s004_hybrid import fit
from mmer_jax.fitted.s004_hybrid.classifier import join_channels
from mmer_jax.fitted.s004_hybrid.fit import HYBRID_FILE
from mmer_jax.fitted.s004_hybrid.saved import SavedHybrid
from mmer_jax.io_utils import atomic_write_json
from mmer_jax.models import model_config
from mmer_jax.train.export_features import MANIFEST
from mmer_jax.train.metrics import classification_metrics
from mmer_jax.train.run import variants_of


def encoder_run(template: str, system: str, run_dir: str, seed: int) -> str:
    """An encoder run's directory: ``template`` with ``{root}``, ``{system}``, ``{corpus}`` and
    ``{seed}`` filled in, where ``run_dir`` = ``<root>/<hybrid system>/<corpus>/seed<k>`` (the
    layout of ``mmer reproduce``)."""
    here = os.path.abspath(run_dir)
    corpus_dir = os.path.dirname(here)
    root = os.path.dirname(os.path.dirname(corpus_dir))
    return template.format(root=root, system=system, corpus=os.path.basename(corpus_dir),
                           seed=seed)


class S004HybridTrainer:
    """Fits every row of S004's hybrid for one variant on two finished encoder runs.

    Args:
      cfg: the run config; reads ``model`` (an ``s004_hybrid`` section) and ``seed``.
      pipeline: the run's pipeline (its ``class_names``).
      variant: the variant's name (its directory under ``variants/``).
      modalities: the encoders' modalities.
      run_dir: the run's working directory.

    Raises:
      UsageError: a bad ``model`` section, or an encoder run without ``results.json`` (one line
        naming every missing run and the ``mmer reproduce`` commands that train them), before
        anything is written.
    """

    def __init__(self, cfg: ml_collections.ConfigDict, pipeline, variant: str,
                 modalities: Sequence[str], run_dir: str):
        self.cfg, self.pipeline, self.variant = cfg, pipeline, variant
        self.modalities = list(modalities)
        self.model_cfg = model_config(cfg.model, modalities)
        self.seed = int(cfg.seed)
        m = self.model_cfg
        self.runs = {name: encoder_run(enc.run, enc.system, run_dir, self.seed)
                     for name, enc in (("speech", m.speech), ("face", m.face))}
        missing = [r for r in self.runs.values()
                   if not os.path.isfile(os.path.join(r, "results.json"))]
        if missing:
            raise UsageError(
                f"s004_hybrid: no finished encoder run in {', '.join(missing)}; train them with "
                f"`mmer reproduce {m.speech.system} --corpus C --seeds N` and `mmer reproduce "
                f"{m.face.system} --corpus C --seeds N` in the same --workdir, or set "
                "model.speech.run / model.face.run")
        self.run_dir = run_dir
        self.dir = os.path.join(run_dir, "variants", variant)
        os.makedirs(self.dir, exist_ok=True)

    def run(self) -> dict[str, Any]:
        """Exports both runs' features, fits every row, saves the served row, scores it.

        Returns:
          As :meth:`VariantTrainer.run <mmer_jax.train.loop.VariantTrainer.run>`: ``modalities``,
          ``validation`` and ``test`` metrics of the served row, ``selection``,
          ``selection_rule``, ``best_epoch`` (None), ``train_examples_per_s``, ``train_wall_s``
          and ``num_params`` (support vectors x width + calibrators of the served row's SVCs).

        Raises:
          ValueError: the two exports disagree on ids, labels or groups.
        """
        m, t0 = self.model_cfg, time.time()
        served: dict = {}
        rows = fit.seed_results(m, self.runs["speech"], self.runs["face"],
                                os.path.join(self.run_dir, "features"), self.seed, served)
        atomic_write_json(os.path.join(self.dir, HYBRID_FILE), rows)
        saved = SavedHybrid.from_model(served["model"], m.served_row)
        # What the predictor opens: the encoder runs as resolved here, and their channels.
        saved.meta["encoders"] = {
            name: {"run": os.path.abspath(self.runs[name]), "key": enc.key}
            for name, enc in (("speech", m.speech), ("face", m.face))}
        saved.save(self.dir)
        names = self.pipeline.class_names
        metrics = {}
        for split in ("validation", "test"):
            sp = served["splits"][split]
            pred = saved.scores(sp.channels).argmax(1)
            metrics[split] = classification_metrics(np.asarray(sp.labels), pred, names)
        wall = time.time() - t0
        settings = served["model"].settings_
        chosen = ", ".join(f"{n}: C={settings[n]['c']:g}, gamma={settings[n]['gamma']:.3g}"
                           for n in saved.meta["svms"])
        num_params = sum(v.size for k, v in saved.arrays.items() if k.startswith("svm."))
        return {
            "modalities": self.modalities,
            "validation": metrics["validation"],
            "test": metrics["test"],
            "selection": f"{m.served_row} row, chi-square {m.chi2_keep}, no context; {chosen}",
            "selection_rule": ("encoders: each run's best checkpoint by validation; SVC C and "
                               "gamma by validation weighted F1, fuzzy densities by validation "
                               "accuracy; test scored once per classifier (every row of the "
                               f"report in {HYBRID_FILE})"),
            "best_epoch": None,
            "train_examples_per_s": self.pipeline.num_examples("train") / max(wall, 1e-9),
            "train_wall_s": wall,
            "num_params": int(num_params),
        }


def evaluate_saved(workdir: str, split: str, cfg: ml_collections.ConfigDict) -> dict[str, Any]:
    """``mmer eval`` of an ``s004_hybrid`` run: each variant's saved row on ``split`` of the
    features it was fitted on (``<workdir>/features``).

    Returns:
      ``{variant: {"epoch": None, split: metrics}}``, or ``{variant: {"error": ...}}`` for a
      variant without a saved row.
    """
    m = model_config(cfg.model)
    features = os.path.join(workdir, "features")
    exports = {"speech": fit.channel(os.path.join(features, m.speech.system), m.speech.key),
               "face": fit.channel(os.path.join(features, m.face.system), m.face.key)}
    sp = join_channels({name: e[split] for name, e in exports.items()})
    names = _class_names(features, m.face.system)
    out: dict[str, Any] = {}
    for name in variants_of(cfg):
        directory = os.path.join(workdir, "variants", name)
        try:
            saved = SavedHybrid.load(directory)
        except FileNotFoundError:
            out[name] = {"error": "no saved row (variants/<variant>/hybrid_model.npz)"}
            continue
        pred = saved.scores(sp.channels).argmax(1)
        out[name] = {"epoch": None,
                     split: classification_metrics(np.asarray(sp.labels), pred, names)}
    return out


def _class_names(features: str, system: str) -> list[str]:
    """The class names an export's manifest recorded."""
    with open(os.path.join(features, system, MANIFEST)) as f:
        return list(json.load(f)["class_names"])
