"""Re-evaluating a finished (or interrupted) run: by its system's evaluator (registry entry), for a
system trained by gradient from each variant's best-by-validation checkpoint."""

from __future__ import annotations

import json
import os

import ml_collections

from mmer_jax.data.pipeline import make_pipeline
from mmer_jax.errors import UsageError
from mmer_jax.io_utils import atomic_write_json
from mmer_jax.schema import SPLITS, DataConfig, from_section
from mmer_jax.train.run import CONFIG_FILE, WorkdirLock, config_for_variant, variants_of
from mmer_jax.train.state import eval_params


def load_run_config(workdir: str) -> ml_collections.ConfigDict:
    """The config a run was trained with, as ``mmer train`` stored it in ``config.json``.

    Raises:
      UsageError: ``workdir`` holds no ``config.json``.
    """
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.exists(path):
        raise UsageError(f"--workdir {workdir!r} holds no run ({CONFIG_FILE} missing)")
    with open(path) as f:
        return ml_collections.ConfigDict(json.load(f))


def load_run_variant(workdir: str, variant: str | None
                     ) -> tuple[ml_collections.ConfigDict, dict, str]:
    """A run's stored config, its variants (name -> modalities) and the variant to use
    (``variant``, default the run's primary one), for the predictors of every system.

    Raises:
      UsageError: ``workdir`` holds no run, or ``variant`` is not one of its variants.
    """
    from mmer_jax.train.run import primary_variant

    cfg = load_run_config(workdir)
    variants = variants_of(cfg)
    chosen = variant or primary_variant(cfg)
    if chosen not in variants:
        raise UsageError(f"--variant {chosen!r}: the run has {', '.join(variants)}")
    return cfg, variants, chosen


def evaluate_run(workdir: str, split: str = "test") -> dict:
    """Evaluates each variant on ``split`` with the evaluator of the run's system (for a system
    trained by gradient, :func:`evaluate_checkpoints`); writes ``eval_<split>.json``.

    The workdir is locked while it evaluates (:class:`~mmer_jax.train.run.WorkdirLock`), so it
    cannot run beside a training process on the same run.

    Args:
      workdir: the run directory of ``mmer train``.
      split: "train", "validation" or "test".

    Returns:
      ``{variant: {"epoch": best epoch, split: metrics}}``, or ``{variant: {"error": ...}}`` for
      a variant without a best checkpoint yet (no finished epoch).

    Raises:
      UsageError: an unknown ``split``, ``workdir`` holds no run, a run of an unknown system or
        a system without an evaluator, or another mmer process (a training run) holds the
        workdir; and what the evaluator raises.
      CheckpointError: a variant's best checkpoint cannot be read (the message names its step
        directory and the file at fault).
    """
    if split not in SPLITS:
        raise UsageError(f"--split {split!r} must be train, validation or test")
    cfg = load_run_config(workdir)
    from mmer_jax.registry import SYSTEMS

    try:
        evaluator = SYSTEMS[cfg.model.name].part("evaluator")
    except (KeyError, ImportError, AttributeError, ValueError) as exc:
        raise UsageError(f"--workdir {workdir!r}: no evaluator for system "
                         f"{cfg.model.get('name')!r} ({exc})") from exc
    with WorkdirLock(workdir):
        out = evaluator(workdir, split, cfg)
        atomic_write_json(os.path.join(workdir, f"eval_{split}.json"), out)
    return out


def evaluate_checkpoints(workdir: str, split: str, cfg: ml_collections.ConfigDict) -> dict:
    """The evaluator of a system trained by gradient: each variant's best checkpoint on
    ``split``, ``{variant: {"epoch": best epoch, split: metrics}}`` (``{"error": ...}`` for a
    variant without a best checkpoint yet).

    Raises:
      CheckpointError: a variant's best checkpoint cannot be read.
    """
    from mmer_jax.train.loop import VariantTrainer

    variants = variants_of(cfg)
    data = from_section(DataConfig, cfg.data, "data")
    pipeline = make_pipeline(data, sorted({m for v in variants.values() for m in v}), cfg.seed,
                             workdir)
    out = {}
    for name, modalities in variants.items():
        # As trained: with the variant's overrides (a fused run at another width, say).
        trainer = VariantTrainer(config_for_variant(cfg, name), pipeline, name, modalities, workdir)
        try:
            if trainer.ckpt.latest_step("best") is None:
                out[name] = {"error": "no best checkpoint yet"}
                continue
            # A best checkpoint that cannot be read raises CheckpointError: one line naming it.
            best, meta = trainer.restore("best")
            out[name] = {
                "epoch": meta.get("best_epoch"),
                split: trainer.evaluate(eval_params(best), best.batch_stats, split),
            }
        finally:
            trainer.ckpt.close()
    return out


def summary_line(name: str, split: str, result: dict) -> str:
    """The line ``mmer eval`` prints for one variant of :func:`evaluate_run`'s output.

    A classification variant shows accuracy, weighted F1 and UAR; a regression variant (its
    metrics have ``mae``) Acc-2 and F1 (has-0 and non-0), Acc-7, MAE and Corr. Fractions are
    printed as percent, MAE in score units and Corr as a number in [-1, 1].

    Args:
      name: the variant.
      split: the evaluated split.
      result: ``{"epoch", split: metrics}`` or ``{"error": text}``.
    """
    m = result.get(split)
    if m is None:
        return f"{name}: {result.get('error')}"

    def pct(key: str) -> str:
        return "-" if m.get(key) is None else f"{100 * float(m[key]):.1f}"

    epoch = result.get("epoch")
    # A non-gradient system (survey_text) has no epochs: say so instead of "epoch None".
    chosen = f"best epoch {epoch}" if epoch is not None else "no epochs: fitted, not trained"
    if "mae" in m:  # percent for the accuracies and F1 only: MAE is in score units
        return (f"{name}: {split} Acc-2 has0 {pct('acc2_has0')} non0 {pct('acc2_non0')}  "
                f"F1 has0 {pct('f1_has0')} non0 {pct('f1_non0')}  Acc-7 {pct('acc7')} (%)  "
                f"MAE {float(m['mae']):.3f}  Corr {float(m['corr']):.3f} ({chosen})")
    return (f"{name}: {split} accuracy {pct('accuracy')}  weighted F1 {pct('weighted_f1')}  "
            f"UAR {pct('uar')} (%, {chosen})")
