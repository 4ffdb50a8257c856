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
import sys
import time
from typing import Any

import jax
import ml_collections

from mmer_jax.data.batching import ENCODER_STREAM, FEATURE_STREAMS
from mmer_jax.data.pipeline import UnitPipeline, make_pipeline
from mmer_jax.errors import UsageError
from mmer_jax.io_utils import atomic_write_json
from mmer_jax.schema import SPLITS, sections
from mmer_jax.train import determinism, provenance

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


# Keys a stored config may differ in without being another run: how it is shown and where the
# data is read from, not what is trained.
RESUME_IGNORES = frozenset({"stop_after_steps", "progress", "data_dir", "manual_dir",
                            "profile_steps"})
LOCK_FILE = ".lock"
# What a run writes into its workdir; ``--force`` removes these (and nothing else).
WALL_FILE = "wall_time.json"  # seconds spent by every call of the job, resumes included
RUN_FILES = (CONFIG_FILE, "results.json", "report.md", "metrics.jsonl", "vocab.json", "curves.png",
             "variants", "augmented", "tensorboard", WALL_FILE, provenance.FILE)
RUN_GLOBS = ("confusion_test*.png", "scatter_test*.png", "eval_*.json")
# A variant's per-example test outputs, in ``variants/<name>/`` (see :func:`write_predictions`).
PREDICTIONS_FILE = "predictions_test.json"
TASKS = ("classification", "regression")


def task_of(results: dict) -> str:
    """The task of a results.json-shaped dict (or a reproduction report's run entry):
    ``results["task"]``, else ``results["protocol"]["task"]``; results written before runs
    recorded their task read as "classification"."""
    task = results.get("task") or (results.get("protocol") or {}).get("task")
    return task if task in TASKS else "classification"


def write_predictions(variant_dir: str, outputs, task: str, classes, probs=None,
                      split: str = "test") -> str | None:
    """Writes a variant's per-example outputs of ``split`` to
    ``<variant_dir>/predictions_<split>.json`` (``predictions_test.json``: the test split).

    Args:
      variant_dir: ``<workdir>/variants/<name>``.
      outputs: ``(true, pred, weight)`` arrays of the split as the trainer evaluated them at the
        chosen checkpoint (``VariantTrainer.outputs[split]``), or None for a trainer that keeps
        none.
      task: "classification" (class indices) or "regression" (scores).
      classes: the class names (indices of a classification run refer to them).
      probs: [N, K] float softmax of the same rows (``VariantTrainer.probs[split]``), or None.
      split: "test" or "validation".

    Returns:
      The path written: ``{"split", "task", "classes", "true": [...], "pred": [...]}`` (and
      ``"probs"``: [N][K] floats rounded to 6 decimals, when given) with the padding rows
      (weight 0) dropped, floats for a regression run and int class indices for a
      classification one; None when ``outputs`` is None or on a process other than 0.
    """
    if outputs is None or jax.process_index() != 0:
        return None
    import numpy as np

    y, p, w = (np.asarray(a) for a in outputs)
    keep = w > 0
    cast = float if task == "regression" else int
    saved = {"split": split, "task": task, "classes": list(classes or []),
             "true": [cast(v) for v in y[keep]], "pred": [cast(v) for v in p[keep]]}
    if probs is not None:
        saved["probs"] = np.round(np.asarray(probs, np.float64)[keep], 6).tolist()
    name = PREDICTIONS_FILE if split == "test" else f"predictions_{split}.json"
    return atomic_write_json(os.path.join(variant_dir, name), saved)


def check_workdir(workdir: str, cfg: ml_collections.ConfigDict) -> bool:
    """Checks that ``workdir`` holds no run of a different config; writes nothing.

    A stored config may differ from ``cfg`` only in :data:`RESUME_IGNORES` and in keys it lacks.

    Returns:
      True when ``workdir`` holds a run of this config (the run resumes), False when it holds none.

    Raises:
      UsageError: ``workdir`` holds a run of a different config.
    """
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        return False
    with open(path) as f:
        old = json.load(f)
    new = json.loads(_as_stored(cfg).to_json_best_effort())
    diff = _first_difference(_strip(old, RESUME_IGNORES), _strip(new, RESUME_IGNORES))
    if diff:
        raise UsageError(
            f"--workdir {workdir!r} holds a run of a different config ({diff}); "
            f"use a new --workdir, or --force to delete that run and start afresh"
        )
    return True


def _as_stored(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """``cfg`` as :func:`run` stores it in ``config.json``: the imported encoders' records filled
    in from their ``encoder.json`` (a copy; ``cfg`` is unchanged). Without this, a fresh config
    never matches the run it should resume; an import that cannot be read now is compared as
    the config gives it."""
    import copy

    from mmer_jax.train.imports import fill_records

    stored = copy.deepcopy(cfg)
    try:
        fill_records(stored)
    except UsageError:
        pass
    return stored


def _make_writable_dir(workdir: str) -> bool:
    """Creates ``workdir`` if needed and checks it is writable; True when it was created."""
    created = not os.path.isdir(workdir)
    try:
        os.makedirs(workdir, exist_ok=True)
        probe = os.path.join(workdir, ".write_test")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as exc:
        raise UsageError(f"--workdir {workdir!r} is not writable: {exc.strerror or exc}") from exc
    return created


def prepare_workdir(workdir: str, cfg: ml_collections.ConfigDict) -> None:
    """Creates ``workdir``, checks it is writable and holds no run of a different config, and
    writes ``cfg`` as ``workdir/config.json`` (what ``mmer eval`` reads).

    :func:`run` does these steps itself, writing ``config.json`` only once the data is open and
    the models are built.

    Raises:
      UsageError: ``workdir`` is not writable, or holds a run of a different config.
    """
    _make_writable_dir(workdir)
    check_workdir(workdir, cfg)
    atomic_write_json(os.path.join(workdir, CONFIG_FILE), json.loads(cfg.to_json_best_effort()))


def never_stepped(workdir: str) -> bool:
    """Whether the run in ``workdir`` never took a training step: no variant finished
    (``variants/*/result.json``), no checkpoint was written (``variants/*/ckpt/*/*``) and
    ``metrics.jsonl`` holds no record. Such a run has nothing to resume; a workdir without a
    run counts as never stepped."""
    import glob

    if glob.glob(os.path.join(workdir, "variants", "*", "result.json")):
        return False
    if glob.glob(os.path.join(workdir, "variants", "*", "ckpt", "*", "*")):
        return False
    metrics = os.path.join(workdir, "metrics.jsonl")
    return not (os.path.exists(metrics) and os.path.getsize(metrics) > 0)


def check_modalities(variants: dict[str, list[str]], data) -> None:
    """Checks, before anything is written, that the corpus stores every modality a variant asks
    for (a pretrained encoder's features, ``encoder_feat``, are computed from its audio).

    Args:
      variants: ``{name: modalities}`` (:func:`variants_of`).
      data: the run's typed ``data`` section.

    Raises:
      UsageError: a variant asks for a modality the corpus lacks; the message names the
        modality, the variants asking for it, what the corpus stores and the fix.
    """
    from data_prep import build as build_lib

    try:
        builder = build_lib.get_builder(data.corpus, data.config or None,
                                        os.path.expanduser(data.data_dir) or None)
    except build_lib.BuildError as exc:  # check_data has named it already; not this check's
        raise UsageError(f"config key 'data.corpus': {exc}") from exc
    fields = set(builder.info.features.keys())
    stored = [m for m in ("audio", "frames", "face", "text", *FEATURE_STREAMS) if m in fields]
    usable = set(stored) | ({ENCODER_STREAM} if "audio" in fields else set())
    missing: dict[str, list[str]] = {}  # modality -> the variants asking for it
    for name, modalities in variants.items():
        for m in modalities:
            if m not in usable:
                missing.setdefault(m, []).append(name)
    if not missing:
        return
    corpus = repr(data.corpus) + (f" (config {data.config})" if data.config else "")
    asks = "; ".join(f"{m!r} (variant{'s' if len(v) > 1 else ''} {', '.join(v)})"
                     for m, v in missing.items())
    trainable = [v for v, mods in variants.items() if set(mods) <= usable]
    fix = ""
    if trainable:
        one = json.dumps({trainable[0]: variants[trainable[0]]})
        fold, why = _fold_suggestion(builder, data)
        fix = (f"keep only the variants it can train ({', '.join(trainable)}), e.g. "
               f"--config.variants='{one}' --config.primary_variant={trainable[0]}{fold}{why}; or ")
    fix += f"train a config whose variants use only {', '.join(stored) or 'what it stores'}"
    if stored == ["audio"]:
        fix += (", e.g. --config experiments/speech_recipe_folder.py (README.md, 'Bringing a "
                "corpus we have no builder for')")
    raise UsageError(
        f"this config asks for modalit{'ies' if len(missing) > 1 else 'y'} {asks}, which corpus "
        f"{corpus} does not store (its modalities: {', '.join(stored) or 'none'}); {fix}"
    )


def _fold_suggestion(builder, data) -> tuple[str, str]:
    """(`` --config.data.fold=1``, why) when the run names no fold and the corpus is read only
    through fold views (a build, or a folder spec without a manifest, holding no train split);
    ("", "") otherwise, or when that is not known before the build."""
    if data.fold:
        return "", ""
    from data_prep import folds

    splits = set(builder.info.splits.keys())
    if splits:  # built: its folds.json names the protocols
        if "train" in splits:
            return "", ""
        protocols = folds.protocols_of(builder.data_dir)
    else:  # not built yet: a folder spec without a manifest split stores speaker folds only
        spec = builder.builder_config
        if getattr(spec, "manifest", None) != "" or not hasattr(spec, "num_folds"):
            return "", ""
        protocols = {"loso" if not spec.num_folds else f"speakers{spec.num_folds}": 0}
    if not protocols:
        return "", ""
    name, k = next(iter(protocols.items()))
    if data.fold_protocol in protocols:
        name, k = data.fold_protocol, protocols[name]
    count = f"1..{k}" if k else "1..K, K = its speaker groups"
    return (" --config.data.fold=1",
            f" (the corpus holds no train split, only the folds of its {name!r} protocol: "
            f"one run per fold {count})")


def check_batch_fits(pipeline, batch_size: int, variant: str) -> None:
    """Checks that the train split holds at least one batch (before anything is written).

    Raises:
      UsageError: ``train.batch_size`` exceeds the train split; the message gives the split's
        size and a batch size that fits.
    """
    n = pipeline.num_examples("train")
    if pipeline.steps_per_epoch(batch_size) == 0:
        raise UsageError(
            f"config key 'train.batch_size': {batch_size} is larger than the train split "
            f"({n} examples; variant {variant!r}); set --config.train.batch_size={_fitting(n)} "
            f"or smaller"
        )


def _fitting(n: int) -> int:
    """The largest power of two not above ``n`` (at least 1): a batch the split holds, and one
    a few devices divide."""
    return 1 << max(0, n.bit_length() - 1)


def _remove_failed_start(workdir: str, created: bool, lock_existed: bool, lock) -> None:
    """Removes what a start that failed before its first step wrote: the run files, the lock
    file when it was this start's, and the workdir when this start created it."""
    if jax.process_index() != 0:
        return
    clear_run(workdir)
    if not lock_existed:
        lock.remove()
    if created and not os.listdir(workdir):
        os.rmdir(workdir)


def clear_run(workdir: str) -> list[str]:
    """Deletes the files a run writes into ``workdir`` (:data:`RUN_FILES`, :data:`RUN_GLOBS`);
    other files are left alone. Returns the names removed."""
    import glob
    import shutil

    removed = []
    paths = [os.path.join(workdir, n) for n in RUN_FILES]
    for pattern in RUN_GLOBS:
        paths += sorted(glob.glob(os.path.join(workdir, pattern)))
    for path in paths:
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
        else:
            continue
        removed.append(os.path.basename(path))
    return removed


class WorkdirLock:
    """An advisory lock (``fcntl.flock``) on ``<workdir>/.lock`` for the duration of a run, so a
    second process on the same workdir is refused instead of interleaving checkpoints.

    The lock is released when the process ends, however it ends (the kernel drops it), so a
    killed run never leaves a stale lock behind. Only process 0 of a multi-host run locks.

    Raises:
      UsageError (on ``__enter__``): another process holds the lock.
    """

    def __init__(self, workdir: str):
        self.workdir = workdir
        self.path = os.path.join(workdir, LOCK_FILE)
        self._fd = None

    def __enter__(self) -> "WorkdirLock":
        if jax.process_index() != 0:
            return self
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise UsageError(
                f"--workdir {self.workdir!r} is in use by another mmer process (pid {holder}, "
                f"lock {self.path}); wait for it to end or use another --workdir"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # the file was removed (see remove) after we opened it: lock the new one
            os.close(fd)
            return self.__enter__()
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def remove(self) -> None:
        """Deletes the lock file while still holding it (a failed start leaves no ``.lock``);
        a process that opened the old file meanwhile sees it gone and locks a new one."""
        if self._fd is not None and os.path.exists(self.path):
            os.remove(self.path)

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            import fcntl

            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


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
    Python version and machine architecture; on CPU also the CPU model, its vector extensions and
    any ``--xla_cpu_max_isa`` cap (XLA's CPU numerics depend on them)."""
    dev = jax.devices()[0]
    return {
        "jax": jax.__version__,
        "device": dev.platform,
        "device_kind": getattr(dev, "device_kind", dev.platform),
        "device_count": jax.device_count(),
        "hosts": jax.process_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        **(determinism.cpu_environment() if dev.platform == "cpu" else {}),
    }


def feature_normalisation(data) -> str:
    """How a run normalises its audio features, in words for the protocol (per speaker: the
    held-out speakers' statistics come from their own unlabelled clips)."""
    if data.speaker_norm != "none":
        what = "mean" if data.speaker_norm == "mean" else "mean and variance"
        return (f"per speaker ({what} of each speaker's features over all of that speaker's "
                "clips in every split, labels unused: the held-out speakers' statistics come "
                "from their own unlabelled clips)")
    if data.feature_norm:
        return "per utterance (mean and variance over the clip's frames)"
    return "none"


def _builder_config(pipeline):
    return getattr(getattr(pipeline, "builder", None), "builder_config", None)


def _build_config_split(pipeline) -> str | None:
    """The run's splits named from its builder config and example counts, without reading
    records, e.g. ``crema_d/av_fold3 (Audio-visual, actor fold 3 of 5.): examples 4961/1236/1245
    (train/validation/test)``; None without a builder config."""
    bc = _builder_config(pipeline)
    if bc is None:
        return None
    counts = "/".join(str(pipeline.num_examples(s)) for s in SPLITS)
    about = f" ({bc.description})" if getattr(bc, "description", "") else ""
    return (f"{pipeline.builder.name}/{bc.name}{about}: examples {counts} "
            "(train/validation/test; speakers not read: data.cache=False)")


def protocol(
    cfg: ml_collections.ConfigDict, pipeline: UnitPipeline, selection: str
) -> dict[str, Any]:
    """The ``protocol`` block of results.json: how the reported numbers were obtained.

    Where the corpus stores speaker ids (and ``data.cache`` and ``protocol.measure_speakers``
    allow reading them), the split text and speaker independence are derived from the builder
    config, the fold view and the speakers actually read, never from a declaration (a declared
    ``protocol.split`` could go stale under ``--config.data.config=lso_fold3``). With
    ``data.cache`` off the split is named from the builder config and example counts (speakers
    unread) when the run reads the build's own splits; only with ``protocol.measure_speakers``
    false are the config's declarations reported.

    Args:
      cfg: the run config (its ``data`` and ``protocol`` sections and ``seed``).
      pipeline: the run's pipeline (classes, split sizes, speakers).
      selection: how the reported checkpoint was chosen, e.g. "best validation weighted_f1 @
        epoch 3".

    Returns:
      ``{"task", "classes", "split", "fold", "speaker_independent", "selection", "seed",
      "corpus_config", "examples"}``, ``"regression_loss"`` ("l1" or "mse") of a regression
      run, ``"feature_normalisation"`` when the run reads audio and, for dialogue units,
      ``"unit"`` and ``"utterances"``.

    Raises:
      UsageError: an unknown or ill-typed ``data`` or ``protocol`` key.
    """
    data, _, declared = sections(cfg)
    independent, split, fold = declared.speaker_independent, declared.split, declared.fold
    view = pipeline.fold
    if view is not None:
        independent = view["speaker_independent"]
        fold = f"{view['protocol']} {view['fold']}/{view['num_folds']}"
    measure = data.cache and declared.measure_speakers
    speakers = pipeline.split_speakers if measure else None
    if speakers is not None:
        # Measured, not declared: no speaker id shared between train and validation/test.
        independent = not (set(speakers["train"])
                           & (set(speakers["validation"]) | set(speakers["test"])))
        split = pipeline.split_description
    elif view is not None or not split:
        split = pipeline.split_description
    elif declared.measure_speakers and (built := _build_config_split(pipeline)) is not None:
        # data.cache=False: speakers are not read (that would decode every record), but the
        # split is still the builder config's; a declaration may name another config's.
        split = built
    return {
        "task": declared.task,
        **({"regression_loss": declared.regression_loss} if declared.task == "regression"
           else {}),
        "classes": pipeline.class_names,
        "split": split,
        "fold": fold,
        "speaker_independent": independent,
        "selection": selection,
        "seed": cfg.seed,
        "corpus_config": data.config,
        **({"feature_normalisation": feature_normalisation(data)} if "audio" in
           getattr(pipeline, "modalities", ()) else {}),
        "examples": {s: pipeline.num_examples(s) for s in SPLITS},
        **(
            {"unit": "dialogue", "utterances": {s: pipeline.num_utterances(s) for s in SPLITS}}
            if hasattr(pipeline, "num_utterances")
            else {}
        ),
    }


def _log(msg: str) -> None:
    if jax.process_index() == 0:
        print(f"[run] {msg}", file=sys.stderr, flush=True)


def best_epoch(result: dict) -> int | None:
    """A variant result's selected epoch (1-based): ``best_epoch``, or parsed from the
    ``selection`` text of results written before that field existed."""
    if result.get("best_epoch") is not None:
        return int(result["best_epoch"])
    tail = str(result.get("selection", "")).rsplit("@ epoch", 1)
    return int(tail[1]) if len(tail) == 2 and tail[1].strip().isdigit() else None


def run(
    cfg: ml_collections.ConfigDict,
    workdir: str,
    *,
    data_dir: str | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Trains every variant of ``cfg`` and writes ``results.json`` and ``report.md``.

    Variants with a ``variants/<name>/result.json`` are finished and skipped; the unfinished one
    resumes from its ``latest`` checkpoint.

    Nothing is written to ``workdir`` before the run has started: the config is validated, the
    data directories resolved (and printed), the data checked and opened and every variant's
    model built first; only then is ``config.json`` written. A start that fails leaves a fresh
    ``workdir`` as it found it. While the run lasts, ``workdir`` is locked against a second
    process.

    Args:
      cfg: the run config (``mmer_jax.config.load``); its ``data.data_dir`` and
        ``data.manual_dir`` are set to the resolved directories.
      workdir: the run directory (created if missing).
      data_dir: the prepared-corpus directory, overriding the config (``mmer train --data_dir``);
        see :func:`mmer_jax.config.resolve_data_dir` for the order.
      force: delete the run ``workdir`` holds (its files only) and start afresh.

    Returns:
      The results dict also written to ``results.json``: ``system``, ``corpus``, ``task``
      ("classification" or "regression", with ``regression_loss`` for the latter), ``variant``,
      ``modalities``, ``protocol``, ``test``, ``validation``, ``environment``, ``timing``,
      ``num_params``, ``best_epoch`` and, with several variants, ``variants``.

    Raises:
      UsageError: a config error (unknown key, a ``variant_overrides`` entry naming no variant,
        an imported-encoder section whose ``path`` is not an import,
        unusable data paths, a different run in ``workdir``, ``workdir`` in use by another
        process, ``train.deterministic`` in a process whose JAX backend already started
        without its XLA flags).
      RunError: the data cannot be read or the loss diverged.
      Interrupted: ``train.stop_after_steps`` was reached; the same call resumes.
    """
    from mmer_jax import config as config_lib
    from mmer_jax.models import build_model
    from mmer_jax.registry import SYSTEMS
    from mmer_jax.train import regression
    from mmer_jax.train import sharding as sh
    from mmer_jax.train.imports import fill_records
    from mmer_jax.train.loop import check_batch_layout

    t0 = time.time()
    config_lib.validate(cfg)
    # The imported encoders' encoder.json into the config (and so config.json): prediction
    # then rebuilds the model from the run alone.
    fill_records(cfg)
    if sections(cfg)[1].deterministic:  # before anything below starts JAX's backend
        from mmer_jax.train.determinism import enable_deterministic_ops

        enable_deterministic_ops()
    variants = variants_of(cfg)
    unknown = sorted(set(cfg.get("variant_overrides") or {}) - set(variants))
    if unknown:
        raise UsageError(
            f"config key 'variant_overrides.{unknown[0]}': no such variant "
            f"(variants: {', '.join(variants)})"
        )
    _log(config_lib.resolve_data_dirs(cfg, data_dir=data_dir))
    all_modalities = sorted({m for mods in variants.values() for m in mods})
    data, _, _ = sections(cfg)  # every section checked before the first variant trains
    how = config_lib.check_data(data)
    check_modalities(variants, data)
    created = _make_writable_dir(workdir)
    lock_existed = os.path.exists(os.path.join(workdir, LOCK_FILE))
    with WorkdirLock(workdir) as lock:
        if force:
            removed = clear_run(workdir)
            if removed:
                _log(f"--force: removed {', '.join(removed)} from {workdir}")
        try:
            resuming = check_workdir(workdir, cfg)
        except UsageError:
            if not never_stepped(workdir):
                raise
            # A start of another config that failed or was killed before its first step:
            # nothing of it is worth keeping, so the corrected command is not refused.
            removed = clear_run(workdir) if jax.process_index() == 0 else []
            _log(f"{workdir} held a start of another config that never took a step; removed "
                 f"{', '.join(removed) or 'nothing'}")
            resuming = False
        _log(f"{'resuming' if resuming else 'starting'} {cfg.system} in {workdir}; data {how}")
        try:
            if ENCODER_STREAM in all_modalities:  # a pretrained encoder's features, once
                from mmer_jax.data.sources import open_builder
                from mmer_jax.train.encoder_features import ensure_cache

                ensure_cache(open_builder(data), data, log=_log, progress=cfg.train.progress)
            pipeline = make_pipeline(data, all_modalities, cfg.seed, workdir)
            trainer_cls = trainer_class(cfg)
            for name, modalities in variants.items():  # a model the system rejects fails here
                variant_cfg = config_for_variant(cfg, name)
                build_model(variant_cfg.model,
                            num_classes=regression.head_size(cfg, pipeline.num_classes),
                            vocab_size=pipeline.vocab_size, modalities=modalities)
                # ... and so does a batch the mesh or the micro-batches cannot split, or one
                # larger than the train split.
                v_data, v_train, _ = sections(variant_cfg)
                mesh = sh.make_mesh(v_train.num_devices or None, fsdp=v_train.fsdp)
                check_batch_layout(v_train, v_data, mesh.devices.size)
                if SYSTEMS[cfg.model.name].gradient:  # trained in batches
                    check_batch_fits(pipeline, v_train.batch_size, name)
            if jax.process_index() == 0:
                atomic_write_json(os.path.join(workdir, CONFIG_FILE),
                                  json.loads(cfg.to_json_best_effort()))
                # commit, packages, encoders, build: once at the first start, resumes appended
                provenance.record_start(workdir, cfg, getattr(pipeline, "builder", None))
        except BaseException:
            if not resuming:  # a failed start leaves nothing behind
                _remove_failed_start(workdir, created, lock_existed, lock)
            raise
        try:
            return _train_variants(cfg, workdir, pipeline, variants, t0, trainer_cls)
        except BaseException:
            # A start that failed (or was stopped) before its first step leaves nothing either:
            # the corrected command then starts afresh instead of being refused.
            if not resuming and never_stepped(workdir):
                _remove_failed_start(workdir, created, lock_existed, lock)
            raise


def trainer_class(cfg: ml_collections.ConfigDict) -> type:
    """The class that fits ``cfg``'s system, as its registry entry names it
    (:class:`~mmer_jax.train.loop.VariantTrainer` for a system trained by gradient).

    Raises:
      UsageError: the system names a trainer that cannot be imported.
    """
    from mmer_jax.registry import SYSTEMS

    system = SYSTEMS[cfg.model.name]
    try:
        return system.part("trainer")
    except (ImportError, AttributeError, ValueError) as exc:
        raise UsageError(f"system {cfg.model.name!r}: its trainer {system.trainer!r} cannot be "
                         f"imported ({type(exc).__name__}: {exc})") from exc


def _encoder_provenance(path: str) -> dict[str, Any]:
    """What a run read its pretrained encoder from: the import directory, its architecture and the
    sha256 over its source files (``encoder.json``), so a report never re-reads a replaced one."""
    from mmer_jax.data.encoder_cache import encoder_record

    rec = encoder_record(path)
    return {"path": os.path.abspath(os.path.expanduser(path)),
            "architecture": rec.get("architecture"),
            "source_format": rec.get("source", {}).get("format"),
            "source_sha256": rec.get("source", {}).get("sha256"),
            "parameters": rec.get("parameters")}


def _finished_results(workdir: str, variants) -> dict[str, Any] | None:
    """The stored results of a job whose every variant has finished, else None."""
    path = os.path.join(workdir, "results.json")
    done = all(os.path.exists(os.path.join(workdir, "variants", v, "result.json"))
               for v in variants)
    if not (done and os.path.exists(path)):
        return None
    with open(path) as f:
        return json.load(f)


def _add_wall_time(workdir: str, seconds: float) -> float:
    """Adds this call's ``seconds`` to the job's wall time (``wall_time.json``); returns the
    total over every call, so an interrupted and resumed job reports all the time it took."""
    path = os.path.join(workdir, WALL_FILE)
    total = seconds
    if os.path.exists(path):
        with open(path) as f:
            total += float(json.load(f)["wall_s"])
    if jax.process_index() == 0:
        atomic_write_json(path, {"wall_s": total})
    return total


def _train_variants(cfg, workdir, pipeline, variants, t0, trainer_cls) -> dict[str, Any]:
    finished = _finished_results(workdir, variants)
    if finished is not None:  # results.json is written once: a re-run reports it unchanged
        _log(f"{workdir} holds a finished run; its results.json is kept as written")
        return finished
    results_by_variant = {}
    try:
        for name, modalities in variants.items():
            done = os.path.join(workdir, "variants", name, "result.json")
            if os.path.exists(done):
                with open(done) as f:
                    results_by_variant[name] = json.load(f)
                continue
            vcfg = config_for_variant(cfg, name)
            trainer = trainer_cls(vcfg, pipeline, name, modalities, workdir)
            result = trainer.run()
            # Before result.json: a finished variant always has its predictions beside it.
            for split in ("validation", "test"):
                write_predictions(os.path.dirname(done),
                                  getattr(trainer, "outputs", {}).get(split),
                                  sections(vcfg)[2].task, pipeline.class_names,
                                  getattr(trainer, "probs", {}).get(split), split)
            atomic_write_json(done, result)
            results_by_variant[name] = result
    finally:
        wall_s = _add_wall_time(workdir, time.time() - t0)
    main = primary_variant(cfg)
    head = results_by_variant[main]
    declared = sections(cfg)[2]
    results = {
        "system": cfg.system,
        # The fusion layer, when the system has one: runs of one system differ by it.
        **({"fusion": cfg.model.fusion} if cfg.model.get("fusion") else {}),
        "corpus": cfg.data.corpus,
        "task": declared.task,
        **({"regression_loss": declared.regression_loss} if declared.task == "regression"
           else {}),
        "variant": main,
        "modalities": head["modalities"],
        "protocol": {**protocol(cfg, pipeline, head["selection"]),
                     # a non-gradient trainer says how it selects (no epochs, no checkpoints)
                     **({"selection_rule": head["selection_rule"]}
                        if head.get("selection_rule") else {})},
        "test": head["test"],
        "validation": head["validation"],
        "environment": environment(),
        "provenance": provenance.read(workdir),
        "timing": {
            "wall_s": wall_s,
            "train_examples_per_s": head["train_examples_per_s"],
            "train_wall_s": head["train_wall_s"],
            # the rate covers every process of the run (1 + resumes), not the last one only
            "train_rate_processes": head.get("train_rate_processes", 1),
        },
        "num_params": head["num_params"],
        "best_epoch": best_epoch(head),
        **({"model_summary": head["model_summary"]} if "model_summary" in head else {}),
        **({"encoder": _encoder_provenance(cfg.data.encoder)} if cfg.data.encoder else {}),
    }
    if len(results_by_variant) > 1:
        results["variants"] = {
            k: {
                "modalities": v["modalities"],
                "test": v["test"],
                "validation": v["validation"],
                "selection": v["selection"],
                "best_epoch": best_epoch(v),
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
