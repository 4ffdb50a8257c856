"""Exports a finished run's features (best checkpoint, eval mode) for the classical half of S004.

S004 (``shared/papers/S004_*``, "Feature Extraction" and Table 2) trains its encoders, then feeds
their layer outputs to chi-square selection, one LIBSVM per channel and fuzzy-integral fusion
(:mod:`mmer_jax.classic`, numpy/scikit-learn only). This module is the bridge: it restores a run's
best checkpoint, runs the model with ``train=False`` over every example of each split, and saves
the chosen ``aux`` entries (any ``feat_<modality>`` or ``tap_<layer>``) as plain arrays.

    python -m mmer_jax.train.export_features --workdir RUN --keys tap_fc,tap_conv --out DIR

Output (no pickle anywhere; ``np.load(path, allow_pickle=False)`` reads it):

- ``<split>.npz``: one float32 array [N, D_key] per key, ``label`` [N] int32, ``id`` [N] and
  ``group`` [N] fixed-width unicode, ``order`` [N] int64 (position within the group);
- ``manifest.json``: the run, variant, best epoch, class names, each key's width and each
  split's N.

Rows follow the split's stored order (evaluation batches keep index order), so ``id[i]`` is
``sources[split][i]["id"]``. ``group`` is the record's ``dialogue_id`` (or ``video_id``) when the
corpus stores one, else the example's own id: S004's within-modality context runs over the
utterances of one video, and an utterance without a video is a sequence of one. ``order`` is
the record's ``turn`` when it has one, else its position in the split, so sorting a group's rows
by it gives the utterances in spoken order (:mod:`mmer_jax.fitted.s004_hybrid.context_lstm`).

The export is this module's own layer (``mmer_jax.train``) because restoring a checkpoint needs
jax; :mod:`mmer_jax.classic` stays numpy-only and reads the ``.npz`` files.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

import numpy as np

from mmer_jax.errors import MmerError, UsageError
from mmer_jax.io_utils import atomic_write_json

SPLITS = ("train", "validation", "test")
MANIFEST = "manifest.json"
GROUP_FIELDS = ("dialogue_id", "video_id")  # the first a record has is its group
ORDER_FIELD = "turn"  # a record's position in its dialogue, where the corpus stores it
EXPORTABLE_PREFIXES = ("feat_", "tap_")


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def record_group(record) -> str:
    """A stored record's group: its ``dialogue_id`` / ``video_id`` when present, else its ``id``."""
    for field in GROUP_FIELDS:
        if field in record:
            return _text(record[field])
    return _text(record["id"])


def record_order(record, position: int) -> int:
    """A stored record's order within its group: its ``turn`` when present, else ``position``
    (its index in the split)."""
    return int(record[ORDER_FIELD]) if ORDER_FIELD in record else int(position)


def exportable_keys(aux: dict) -> list[str]:
    """The ``aux`` keys an export may ask for: ``feat_*`` and ``tap_*``, sorted."""
    return sorted(k for k in aux if k.startswith(EXPORTABLE_PREFIXES))


def check_keys(keys: Sequence[str], aux: dict) -> None:
    """Checks that every key is a ``feat_*`` / ``tap_*`` entry of ``aux`` holding [B, D].

    Raises:
      UsageError: a key not in ``aux`` (one line naming the available keys), or an entry that
        is not one vector per example.
    """
    available = exportable_keys(aux)
    unknown = [k for k in keys if k not in available]
    if unknown:
        raise UsageError(f"--keys {','.join(unknown)}: not in this model's aux; available: "
                         f"{', '.join(available) or '(none)'}")
    for k in keys:
        if np.ndim(aux[k]) != 2:
            raise UsageError(f"--keys {k}: aux[{k!r}] has shape {np.shape(aux[k])}, not one "
                             f"vector per example [B, D]")


def load_split(out_dir: str, split: str) -> dict[str, np.ndarray]:
    """``<out_dir>/<split>.npz`` as a dict of arrays, read without pickle.

    Raises:
      FileNotFoundError: no such export.
    """
    with np.load(os.path.join(out_dir, f"{split}.npz"), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def export_features(
    workdir: str,
    keys: Sequence[str],
    out_dir: str,
    *,
    variant: str | None = None,
    splits: Sequence[str] = SPLITS,
    progress: bool = True,
) -> dict:
    """Writes ``<out_dir>/<split>.npz`` and ``manifest.json`` (module docstring) for ``keys``.

    Args:
      workdir: a run directory of ``mmer train`` / ``mmer reproduce`` with a best checkpoint.
      keys: ``aux`` entries to export, each [B, D] (``feat_audio``, ``tap_fc``, ...).
      out_dir: created if missing; existing files of the same names are replaced.
      variant: the variant whose checkpoint is read; default the run's primary variant.
      splits: which splits to export.
      progress: a tqdm bar over each split's batches (on a terminal only).

    Returns:
      The manifest (also written to ``manifest.json``).

    Raises:
      UsageError: no run in ``workdir``, an unknown variant or split, no best checkpoint, an
        unknown key (the message lists the available ones), or another process holds the run.
    """
    # jax-heavy imports here, so `--help` and the error paths stay fast.
    from mmer_jax.data.pipeline import make_pipeline
    from mmer_jax.schema import DataConfig, from_section
    from mmer_jax.train import sharding as sh
    from mmer_jax.train.evaluate import load_run_config
    from mmer_jax.train.loop import VariantTrainer
    from mmer_jax.train.progress import progress_bar
    from mmer_jax.train.run import WorkdirLock, config_for_variant, primary_variant, variants_of
    from mmer_jax.train.state import eval_params

    keys = [k for k in keys if k]
    if not keys:
        raise UsageError("--keys is empty: name at least one feat_* or tap_* entry")
    bad = [s for s in splits if s not in SPLITS]
    if bad:
        raise UsageError(f"--splits {','.join(bad)}: each must be one of {', '.join(SPLITS)}")
    cfg = load_run_config(workdir)
    variants = variants_of(cfg)
    variant = variant or primary_variant(cfg)
    if variant not in variants:
        raise UsageError(f"--variant {variant!r}: the run has {', '.join(sorted(variants))}")
    data = from_section(DataConfig, cfg.data, "data")
    with WorkdirLock(workdir):
        pipeline = make_pipeline(data, variants[variant], cfg.seed, workdir)
        trainer = VariantTrainer(config_for_variant(cfg, variant), pipeline, variant,
                                 variants[variant], workdir)
        if trainer.ckpt.latest_step("best") is None:
            raise UsageError(f"--workdir {workdir!r}: variant {variant!r} has no best checkpoint")
        best, meta = trainer.restore("best")
        variables = {"params": eval_params(best), "batch_stats": best.batch_stats}
        os.makedirs(out_dir, exist_ok=True)
        counts, dims = {}, {}
        for split in splits:
            rows: dict[str, list[np.ndarray]] = {k: [] for k in keys}
            labels = []
            n_batches = -(-pipeline.num_examples(split) // trainer.global_batch)
            bar = progress_bar(n_batches, 0, f"export {split}", progress)
            for host in trainer.batches(split, train=False):
                inputs = trainer.features(sh.to_global(host, trainer.mesh))
                _, aux = trainer.model.apply(variables, inputs, train=False)
                check_keys(keys, aux)
                keep = np.asarray(host["weight"]) > 0  # drop the padding copies
                for k in keys:
                    rows[k].append(np.asarray(aux[k], np.float32)[keep])
                labels.append(np.asarray(host["label"], np.int32)[keep])
                bar.update(1)
            bar.close()
            source = pipeline.sources[split]
            n = sum(len(x) for x in labels)
            records = [source[i] for i in range(n)]  # eval batches keep index order
            arrays = {k: np.concatenate(v) for k, v in rows.items()}
            arrays["label"] = np.concatenate(labels)
            arrays["id"] = np.array([_text(r["id"]) for r in records])
            arrays["group"] = np.array([record_group(r) for r in records])
            arrays["order"] = np.array([record_order(r, i) for i, r in enumerate(records)],
                                       np.int64)
            stored = np.array([int(r["label"]) for r in records])
            if not np.array_equal(stored, arrays["label"]):  # the order assumption, checked
                raise MmerError(f"{split}: batch labels do not follow the stored order")
            np.savez(os.path.join(out_dir, f"{split}.npz"), **arrays)
            counts[split] = n
            dims = {k: int(arrays[k].shape[1]) for k in keys}
        trainer.ckpt.close()
    manifest = {
        "workdir": os.path.abspath(workdir),
        "system": cfg.model.name,
        "corpus": f"{data.corpus}/{data.config}",
        "seed": int(cfg.seed),
        "variant": variant,
        "modalities": list(variants[variant]),
        "best_epoch": meta.get("best_epoch"),
        "class_names": list(pipeline.class_names),
        "keys": dims,
        "examples": counts,
        "groups": "dialogue_id/video_id" if any(
            f in pipeline.sources[splits[0]][0] for f in GROUP_FIELDS) else "id (no groups)",
        "order": ORDER_FIELD if ORDER_FIELD in pipeline.sources[splits[0]][0] else "position",
    }
    atomic_write_json(os.path.join(out_dir, MANIFEST), manifest)
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``--workdir RUN --keys K1,K2 --out DIR [--variant V] [--splits ...]``;
    prints the manifest; returns the exit code (a one-line message on stderr on error)."""
    ap = argparse.ArgumentParser(
        prog="python -m mmer_jax.train.export_features",
        description="Export a run's aux features (best checkpoint, eval mode) per split as .npz "
                    "(no pickle) + manifest.json, for mmer_jax.classic (S004's SVM half).")
    ap.add_argument("--workdir", required=True, help="the run directory")
    ap.add_argument("--keys", required=True,
                    help="comma-separated aux keys (feat_<modality>, tap_<layer>)")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--variant", default=None, help="default: the run's primary variant")
    ap.add_argument("--splits", default=",".join(SPLITS), help="default: %(default)s")
    args = ap.parse_args(argv)
    try:
        manifest = export_features(args.workdir, args.keys.split(","), args.out,
                                   variant=args.variant, splits=args.splits.split(","))
    except MmerError as e:
        print(f"error: {e}", file=sys.stderr)
        return getattr(e, "exit_code", 1)
    print(json.dumps(manifest, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
