"""The main job: train every variant of a config, then write results.json and report.md.

A variant is a set of modalities trained as its own model (e.g. audio-only, video-only, text-only
and fused), so one run shows unimodal vs fused side by side. Finished variants are recorded in
``variants/<name>/result.json``; running the same command again skips them and resumes the
unfinished one from its latest checkpoint.
"""

from __future__ import annotations

import json
import os
import platform
import time
from typing import Any

import jax
import ml_collections

from mmer_jax.data.pipeline import UnitPipeline, make_pipeline
from mmer_jax.errors import UsageError
from mmer_jax.io_utils import atomic_write_json
from mmer_jax.schema import SPLITS, sections

CONFIG_FILE = "config.json"


def variants_of(cfg: ml_collections.ConfigDict) -> dict[str, list[str]]:
    """The variants a config trains, in order: ``{name: modalities}``.

    A config without ``variants`` has one variant, ``primary_variant`` (default "main"), on all
    of ``model.modalities``.
    """
    if cfg.get("variants"):
        return {k: list(v) for k, v in cfg.variants.items()}
    return {cfg.get("primary_variant", "main"): list(cfg.model.modalities)}


def config_for_variant(cfg: ml_collections.ConfigDict, name: str) -> ml_collections.ConfigDict:
    """``cfg`` with ``variant_overrides[name]`` applied, e.g. a fused run at another dropout.

    Overrides are nested like the config (``{"model": {"dropout": 0.5}}``) and may only change keys
    the config already has, so a typo is an error naming the key rather than a silent no-op.

    Returns:
      ``cfg`` itself when the variant has no overrides, else a changed copy.

    Raises:
      UsageError: an override names a key the config does not have.
    """
    overrides = (cfg.get("variant_overrides") or {}).get(name)
    if not overrides:
        return cfg
    out = ml_collections.ConfigDict(cfg.to_dict())

    def apply(node, changes, prefix):
        for key, value in changes.items():
            path = f"{prefix}{key}"
            if key not in node:
                raise UsageError(f"config key 'variant_overrides.{name}.{path}': no such key")
            if isinstance(value, (dict, ml_collections.ConfigDict)):
                apply(node[key], value, path + ".")
            else:
                node[key] = value

    apply(out, overrides, "")
    return out


def primary_variant(cfg: ml_collections.ConfigDict) -> str:
    """The variant whose scores head results.json: ``primary_variant`` if it is one, else the
    last variant."""
    names = list(variants_of(cfg))
    wanted = cfg.get("primary_variant")
    return wanted if wanted in names else names[-1]


def prepare_workdir(workdir: str, cfg: ml_collections.ConfigDict) -> None:
    """Creates ``workdir``, checks it is writable and holds no run of a different config.

    Writes ``cfg`` as ``workdir/config.json`` (what ``mmer eval`` reads). A stored config may
    differ from ``cfg`` only in ``stop_after_steps`` and ``progress``, and in keys it lacks.

    Raises:
      UsageError: ``workdir`` is not writable, or holds a run of a different config.
    """
    try:
        os.makedirs(workdir, exist_ok=True)
        probe = os.path.join(workdir, ".write_test")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as exc:
        raise UsageError(f"--workdir {workdir!r} is not writable: {exc.strerror or exc}") from exc
    path = os.path.join(workdir, CONFIG_FILE)
    new = json.loads(cfg.to_json_best_effort())
    if os.path.exists(path):
        with open(path) as f:
            old = json.load(f)
        ignore = {"stop_after_steps", "progress"}
        diff = _first_difference(_strip(old, ignore), _strip(new, ignore))
        if diff:
            raise UsageError(
                f"--workdir {workdir!r} holds a run of a different config ({diff}); "
                f"use a new --workdir to start afresh"
            )
    atomic_write_json(path, new)


def _strip(d, ignore):
    if isinstance(d, dict):
        return {k: _strip(v, ignore) for k, v in d.items() if k not in ignore}
    return d


def _first_difference(a, b, prefix="") -> str | None:
    """First key whose value differs; keys absent from the stored config ``a`` are ignored (they
    were added to the schema after that run, at their defaults)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a)):
            d = _first_difference(a.get(k), b.get(k), f"{prefix}{k}.")
            if d:
                return d
        return None
    return None if a == b else f"key {prefix[:-1]!r}: {a!r} vs {b!r}"


def environment() -> dict[str, Any]:
    """The ``environment`` block of results.json: jax version, device kind and count, hosts,
    Python version and machine architecture."""
    dev = jax.devices()[0]
    return {
        "jax": jax.__version__,
        "device": dev.platform,
        "device_kind": getattr(dev, "device_kind", dev.platform),
        "device_count": jax.device_count(),
        "hosts": jax.process_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def speakers_by_split(pipeline) -> dict[str, set] | None:
    """Speaker ids per split, read from the data (None when the corpus stores no speaker)."""
    out = {}
    for split, source in getattr(pipeline, "sources", {}).items():
        if len(source) == 0 or "speaker" not in source[0]:
            return None
        out[split] = {source[i]["speaker"] for i in range(len(source))}
    return out or None


def protocol(
    cfg: ml_collections.ConfigDict, pipeline: UnitPipeline, selection: str
) -> dict[str, Any]:
    """The ``protocol`` block of results.json: how the reported numbers were obtained.

    Speaker independence is measured on the data when the corpus stores speaker ids (and
    ``data.cache`` and ``protocol.measure_speakers`` allow it); otherwise the config's
    declaration is reported.

    Args:
      cfg: the run config (its ``data`` and ``protocol`` sections and ``seed``).
      pipeline: the run's pipeline (classes, split sizes, speakers).
      selection: how the reported checkpoint was chosen, e.g. "best validation weighted_f1 @
        epoch 3".

    Returns:
      ``{"classes", "split", "fold", "speaker_independent", "selection", "seed",
      "corpus_config", "examples"}`` and, for dialogue units, ``"unit"`` and ``"utterances"``.

    Raises:
      UsageError: an unknown or ill-typed ``data`` or ``protocol`` key.
    """
    data, _, declared = sections(cfg)
    independent, split = declared.speaker_independent, declared.split
    speakers = speakers_by_split(pipeline) if data.cache and declared.measure_speakers else None
    if speakers is not None:
        # Measured, not declared: no speaker id shared between train and validation/test.
        independent = not (speakers["train"] & (speakers["validation"] | speakers["test"]))
        counts = "/".join(str(len(speakers[s])) for s in SPLITS)
        split = split or f"speakers {counts} (train/validation/test)"
    return {
        "classes": pipeline.class_names,
        "split": split,
        "fold": declared.fold,
        "speaker_independent": independent,
        "selection": selection,
        "seed": cfg.seed,
        "corpus_config": data.config,
        "examples": {s: pipeline.num_examples(s) for s in SPLITS},
        **(
            {"unit": "dialogue", "utterances": {s: pipeline.num_utterances(s) for s in SPLITS}}
            if hasattr(pipeline, "num_utterances")
            else {}
        ),
    }


def run(cfg: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Trains every variant of ``cfg`` and writes ``results.json`` and ``report.md``.

    Variants with a ``variants/<name>/result.json`` are finished and skipped; the unfinished one
    resumes from its ``latest`` checkpoint.

    Args:
      cfg: the run config (``mmer_jax.config.load``).
      workdir: the run directory (created if missing).

    Returns:
      The results dict also written to ``results.json``: ``system``, ``corpus``, ``variant``,
      ``modalities``, ``protocol``, ``test``, ``validation``, ``environment``, ``timing``,
      ``num_params`` and, with several variants, ``variants``.

    Raises:
      UsageError: a config error (unknown key, a ``variant_overrides`` entry naming no variant,
        a different run in ``workdir``).
      RunError: the data cannot be read or the loss diverged.
      Interrupted: ``train.stop_after_steps`` was reached; the same call resumes.
    """
    from mmer_jax.train.loop import VariantTrainer

    t0 = time.time()
    prepare_workdir(workdir, cfg)
    variants = variants_of(cfg)
    unknown = sorted(set(cfg.get("variant_overrides") or {}) - set(variants))
    if unknown:
        raise UsageError(
            f"config key 'variant_overrides.{unknown[0]}': no such variant "
            f"(variants: {', '.join(variants)})"
        )
    all_modalities = sorted({m for mods in variants.values() for m in mods})
    data, _, _ = sections(cfg)  # every section checked before the first variant trains
    pipeline = make_pipeline(data, all_modalities, cfg.seed, workdir)
    results_by_variant = {}
    for name, modalities in variants.items():
        done = os.path.join(workdir, "variants", name, "result.json")
        if os.path.exists(done):
            with open(done) as f:
                results_by_variant[name] = json.load(f)
            continue
        vcfg = config_for_variant(cfg, name)
        result = VariantTrainer(vcfg, pipeline, name, modalities, workdir).run()
        atomic_write_json(done, result)
        results_by_variant[name] = result
    main = primary_variant(cfg)
    head = results_by_variant[main]
    results = {
        "system": cfg.system,
        "corpus": cfg.data.corpus,
        "variant": main,
        "modalities": head["modalities"],
        "protocol": protocol(cfg, pipeline, head["selection"]),
        "test": head["test"],
        "validation": head["validation"],
        "environment": environment(),
        "timing": {
            "wall_s": time.time() - t0,
            "train_examples_per_s": head["train_examples_per_s"],
            "train_wall_s": head["train_wall_s"],
        },
        "num_params": head["num_params"],
    }
    if len(results_by_variant) > 1:
        results["variants"] = {
            k: {
                "modalities": v["modalities"],
                "test": v["test"],
                "validation": v["validation"],
                "selection": v["selection"],
                "train_examples_per_s": v["train_examples_per_s"],
                "num_params": v["num_params"],
            }
            for k, v in results_by_variant.items()
        }
    if jax.process_index() == 0:
        atomic_write_json(os.path.join(workdir, "results.json"), results)
        from mmer_jax.train.report import write_report

        write_report(workdir, results)
    return results
