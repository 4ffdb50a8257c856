"""Training one model variant: jitted steps, validation, best/latest checkpoints, test once.

Model selection uses the validation split only (``train.select_metric``); the test split is
evaluated exactly once, after training, at the best-by-validation checkpoint.

:class:`VariantTrainer` is the boundary every caller uses (``mmer train``, ``mmer eval``,
``mmer bench``, the reproduction harness)::

    trainer = VariantTrainer(cfg, pipeline, "fused", ["audio", "frames", "text"], workdir)
    result = trainer.run()                       # train, select, test; resumes from `latest`

or piece by piece: :meth:`~VariantTrainer.init_state`, :meth:`~VariantTrainer.batches`,
:meth:`~VariantTrainer.train_epoch`, :meth:`~VariantTrainer.validate`,
:meth:`~VariantTrainer.evaluate`, :meth:`~VariantTrainer.restore`,
:meth:`~VariantTrainer.final_test`.
"""

from __future__ import annotations

import functools
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import ml_collections
import numpy as np

from mmer_jax.data.device import make_feature_step
from mmer_jax.data.pipeline import UnitPipeline
from mmer_jax.errors import RunError, UsageError
from mmer_jax.models import build_model, model_config
from mmer_jax.schema import DataConfig, ProtocolConfig, TrainConfig, from_section
from mmer_jax.train import determinism, regression
from mmer_jax.train import imports as imports_lib
from mmer_jax.train import sharding as sh
from mmer_jax.train import state as state_lib
from mmer_jax.train import steps as steps_lib
from mmer_jax.train.checkpoint import Checkpoints
from mmer_jax.train.hooks import CheckpointEvery, Interrupted, StopAfterSteps
from mmer_jax.train.metrics import classification_metrics, per_speaker_of
from mmer_jax.train.profiling import ProfileSteps
from mmer_jax.train.progress import MetricsLog, Throughput, progress_bar
from mmer_jax.train.state import TrainState

__all__ = ["Interrupted", "VariantTrainer"]

Hook = Callable[[int, TrainState], None]


def check_batch_layout(train: TrainConfig, data: DataConfig, n_dev: int) -> None:
    """Checks that a global batch splits over ``n_dev`` devices and ``train.grad_accum_steps``
    micro-batches (run before anything is written, and by every trainer).

    Raises:
      UsageError: ``train.batch_size`` is not a multiple of ``n_dev`` x ``grad_accum_steps``, or
        micro-batches are asked for together with ``data.pack_utterances``.
    """
    batch, k = train.batch_size, train.grad_accum_steps
    if batch % n_dev:
        raise UsageError(f"train.batch_size={batch} must be a multiple of the {n_dev} devices")
    if k > 1 and data.pack_utterances:
        raise UsageError("config key 'train.grad_accum_steps': micro-batches cannot split "
                         "the packed utterances of data.pack_utterances; set one of them off")
    if batch % (n_dev * k):
        raise UsageError(
            f"config key 'train.grad_accum_steps': {k} micro-batches per device need "
            f"train.batch_size={batch} to be a multiple of {n_dev * k} ({n_dev} devices x {k})"
        )


def _fresh_meta() -> dict[str, Any]:
    return {"epoch": 0, "best": None, "best_epoch": None, "best_step": None}


class VariantTrainer:
    """Trains, selects and tests one variant (one set of modalities) of a config.

    Checkpoints and bookkeeping go to ``<run_dir>/variants/<variant>/``; train and validation
    records are appended to ``<run_dir>/metrics.jsonl``.

    Attributes:
      cfg: the run config (with this variant's overrides applied).
      data_cfg: its typed ``data`` section.
      train_cfg: its typed ``train`` section.
      model: the Flax module of this variant.
      mesh: the device mesh, ``("data",)`` or ``("data", "fsdp")`` (``train.fsdp > 1``).
      state_sharding: where the train state lives on the mesh: replicated, or (FSDP) the tree
        of :func:`~mmer_jax.train.sharding.state_sharding`.
      global_batch: examples per step across every device and host (``train.batch_size``);
        with ``train.grad_accum_steps = k`` computed as k micro-batches of ``global_batch / k``.
      steps_per_epoch: optimizer steps per epoch (the train split's full batches).
      total_steps: ``steps_per_epoch * train.epochs``.
      features: the on-device feature step, host batch -> model batch (``train.dtype``).
      optimizer: the optax transformation.
      train_step: jitted ``(state, global batch) -> (state, metrics)``; donates ``state``.
      eval_step: jitted ``(params, batch_stats, global batch) -> outputs``.
      ckpt: the variant's ``latest``/``best`` checkpoints.
      metrics_log: this variant's records in ``metrics.jsonl``.
      throughput: training examples/s of :meth:`run`.
    """

    def __init__(
        self,
        cfg: ml_collections.ConfigDict,
        pipeline: UnitPipeline,
        variant: str,
        modalities: Sequence[str],
        run_dir: str,
        mesh: jax.sharding.Mesh | None = None,
    ):
        """Builds the model, optimizer and jitted steps; creates the variant's directory.

        Args:
          cfg: the run config; reads its ``data``, ``train`` and ``model`` sections and ``seed``.
          pipeline: the corpus pipeline (class names, vocabulary, batches) of the run.
          variant: the variant's name (directory and record label).
          modalities: the modalities this variant's model sees.
          run_dir: the run's working directory.
          mesh: the device mesh; default: ``train.num_devices`` devices (0 = all).

        Raises:
          UsageError: a config key is unknown or ill-typed, ``train.batch_size`` is not a
            multiple of the device count times ``train.grad_accum_steps``, ``train.fsdp`` does
            not divide the device count, or ``train.deterministic`` is asked for in a process
            whose JAX backend started without it.
          RunError: the train split is smaller than one batch.
        """
        self.cfg, self.pipeline, self.variant = cfg, pipeline, variant
        self.data_cfg: DataConfig = from_section(DataConfig, cfg.data, "data")
        self.train_cfg: TrainConfig = from_section(TrainConfig, cfg.train, "train")
        # protocol.task = "regression": a 1-output head on the batch's score (train/regression.py).
        self.protocol_cfg: ProtocolConfig = from_section(ProtocolConfig, cfg.get("protocol"),
                                                         "protocol")
        self.regression = self.protocol_cfg.task == "regression"
        self.seed: int = cfg.seed
        self.modalities = list(modalities)
        self.run_dir = run_dir
        self.dir = os.path.join(run_dir, "variants", variant)
        os.makedirs(self.dir, exist_ok=True)
        train = self.train_cfg
        if train.deterministic:  # a no-op when run() (or the environment) has set the flags
            determinism.enable_deterministic_ops()
        self.mesh = mesh if mesh is not None else sh.make_mesh(train.num_devices or None,
                                                               fsdp=train.fsdp)
        self.model = build_model(cfg.model,
                                 num_classes=regression.head_size(cfg, pipeline.num_classes),
                                 vocab_size=pipeline.vocab_size, modalities=self.modalities)
        # Imported encoders in the model: their weights at init, their learning-rate factors.
        self.model_cfg = model_config(cfg.model, self.modalities)
        self._imported: dict | None = None
        self.global_batch = train.batch_size
        check_batch_layout(train, self.data_cfg, self.mesh.devices.size)
        self.steps_per_epoch = pipeline.steps_per_epoch(self.global_batch)
        if self.steps_per_epoch == 0:
            raise RunError(
                f"train split has {pipeline.num_examples('train')} examples, fewer "
                f"than train.batch_size={self.global_batch}"
            )
        self.total_steps = self.steps_per_epoch * train.epochs
        self.features = make_feature_step(self.data_cfg, train.dtype)
        self.optimizer = state_lib.make_optimizer(train, self.total_steps,
                                                  imports_lib.lr_factors(self.model_cfg, train))
        self.state_sharding = (
            sh.state_sharding(self.mesh, self._abstract_state(), train.fsdp_min_size)
            if sh.fsdp_size(self.mesh) > 1 else sh.replicated(self.mesh)
        )
        self.train_step = steps_lib.make_train_step(
            self.model, self.optimizer, self.features, train, self.seed, self.mesh,
            self.protocol_cfg, state_sharding=self.state_sharding,
        )
        self.eval_step = steps_lib.make_eval_step(self.model, self.features, train.dtype,
                                                  self.mesh, self.protocol_cfg,
                                                  state_sharding=self.state_sharding)
        self.ckpt = Checkpoints(self.dir, keep=train.keep_checkpoints)
        self.metrics_log = MetricsLog(os.path.join(run_dir, "metrics.jsonl"), variant)
        if jax.process_index() != 0:  # one writer of the run's files: process 0
            self.metrics_log = _NoWrites()
        self.throughput = Throughput()

    # -- state and batches ----------------------------------------------------------------------
    def batches(
        self, split: str, *, epoch: int = 0, train: bool = False, skip_batches: int = 0
    ) -> Iterator[dict[str, np.ndarray]]:
        """This host's part of each global batch of ``split`` (host numpy arrays).

        Args:
          split: "train", "validation" or "test".
          epoch: the shuffling epoch (training batches only).
          train: shuffle, augment and drop the remainder; otherwise every example once, the last
            batch padded with weight-0 rows.
          skip_batches: leading batches not yielded (a run resumed inside an epoch).

        Returns:
          An iterator of host batches (see ``docs/contracts.md``); :func:`sharding.to_global`
          makes a batch the steps accept.

        Raises:
          UsageError: ``train.batch_size`` does not divide by the number of hosts.
          RunError: a training split smaller than one batch.
        """
        return self.pipeline.batches(
            split,
            self.global_batch,
            epoch=epoch,
            train=train,
            process_index=jax.process_index(),
            process_count=jax.process_count(),
            skip_batches=skip_batches,
        )

    def _first_batch(self) -> dict[str, np.ndarray]:
        first = next(iter(self.batches("train", epoch=0, train=True)))
        return {k: np.asarray(v) for k, v in first.items()}

    def imports(self) -> dict:
        """The variables of the imported encoders the model holds (read once;
        :func:`mmer_jax.train.imports.load_imports`), ``{}`` when it holds none."""
        if self._imported is None:
            self._imported = imports_lib.load_imports(self.model_cfg)
        return self._imported

    def _abstract_state(self) -> TrainState:
        """The step-0 state's shapes and dtypes (``jax.eval_shape``; nothing is computed).

        The imports are not read: their variables have exactly the shapes and dtypes of the
        sub-modules they replace (:func:`~mmer_jax.train.imports.graft` checks it), so the
        abstract state of :meth:`init_state` is the same with or without them.
        """
        return jax.eval_shape(
            lambda b: state_lib.init_state(self.model, self.optimizer, self.features(b),
                                           self.seed, ema=self.train_cfg.ema_decay > 0),
            self._first_batch(),
        )

    def init_state(self, imports: bool = True) -> TrainState:
        """A fresh step-0 state from ``seed``, on the mesh as :attr:`state_sharding` says.

        The model is initialised on the features of the first training batch of epoch 0; the
        imported encoders it holds get the imports' weights (passed to the jitted
        initialisation as arguments).

        Args:
          imports: put the imports' weights in; False: the random initialisation, e.g. a
            template a checkpoint is restored into (no import directory is read).

        Raises:
          UsageError, CheckpointError: an import named by the model cannot be read or does
            not fit.
        """
        return self.init_program(self.imports() if imports else None,
                                 self.features(self._first_batch()),
                                 jax.random.PRNGKey(self.seed))

    @functools.cached_property
    def init_program(self):
        """The jitted ``(imports, first model batch, PRNGKey(seed)) -> step-0 state`` of
        :meth:`init_state`. The batch and the key are arguments, not constants of the program:
        the compiled initialisation is the same for every seed and holds no copy of the data."""
        return jax.jit(
            lambda imported, inputs, key: state_lib.init_state(
                self.model, self.optimizer, inputs, key, ema=self.train_cfg.ema_decay > 0,
                imports=imported),
            out_shardings=self.state_sharding,
        )

    def restore(self, which: str, like: TrainState | None = None) -> tuple[TrainState, dict]:
        """The state and bookkeeping of the ``latest`` or ``best`` checkpoint, on the mesh.

        Args:
          which: "latest" or "best".
          like: a state with the checkpoint's structure; default: :meth:`init_state` without
            the imports (a restored run reads no import directory).

        Returns:
          ``(state, meta)``; ``meta`` holds ``epoch`` (epochs finished), ``best`` (the best
          validation ``train.select_metric``), ``best_epoch`` and ``best_step``.

        Raises:
          FileNotFoundError: no such checkpoint yet.
        """
        # The template's values are overwritten: no import needs to be read for it.
        template = self.init_state(imports=False) if like is None else like
        state, meta = self.ckpt.restore(which, template)
        return jax.device_put(state, self.state_sharding), meta

    def resume_or_init(self) -> tuple[TrainState, dict]:
        """The ``latest`` checkpoint if there is one, else a fresh state.

        Records of this variant newer than the restored step are dropped from ``metrics.jsonl``
        (all of them on a fresh start): the steps after it are trained, and logged, again.

        Returns:
          ``(state, meta)`` as :meth:`restore` returns them.
        """
        if self.ckpt.latest_step() is None:
            self.metrics_log.truncate(-1)
            return self.init_state(), _fresh_meta()
        state, meta = self.restore("latest")
        # The throughput of the processes before this one: the result's rate covers them all.
        self.throughput.carry_over(meta.get("throughput"))
        self.metrics_log.truncate(int(state.step))
        print(f"[{self.variant}] resuming from step {int(state.step)}", file=sys.stderr)
        return state, meta

    # -- training -------------------------------------------------------------------------------
    def step_hooks(self, meta: dict, start_step: int = 0) -> list[Hook]:
        """The per-step hooks the ``train`` section asks for, in the order they run.

        Args:
          meta: the run's bookkeeping, saved with every checkpoint (read at save time).
          start_step: the step the run starts (or resumes) from.

        Returns:
          A :class:`~mmer_jax.train.profiling.ProfileSteps` when ``train.profile_steps`` is set
          (its trace starts at once when ``start_step`` is inside the window; :meth:`run` closes
          it), then a :class:`~mmer_jax.train.hooks.StopAfterSteps` when
          ``train.stop_after_steps > 0``, then a :class:`~mmer_jax.train.hooks.CheckpointEvery`
          when ``train.checkpoint_every_steps > 0``; an empty list for an ordinary run.
        """

        def save_latest(step: int, state: TrainState) -> None:
            self.ckpt.save("latest", step, state, meta)

        hooks: list[Hook] = []
        if self.train_cfg.profile_steps:
            hooks.append(ProfileSteps(self.train_cfg.profile_steps,
                                      os.path.join(self.run_dir, "profile", self.variant),
                                      start_step))
        if self.train_cfg.stop_after_steps:
            hooks.append(StopAfterSteps(self.train_cfg.stop_after_steps, save_latest))
        if self.train_cfg.checkpoint_every_steps:
            hooks.append(
                CheckpointEvery(self.train_cfg.checkpoint_every_steps, self.steps_per_epoch,
                                save_latest)
            )
        return hooks

    def train_epoch(
        self,
        state: TrainState,
        epoch: int,
        *,
        skip_batches: int = 0,
        hooks: Sequence[Hook] = (),
        bar=None,
    ) -> TrainState:
        """Trains one epoch (0-based ``epoch``) and returns the state after its last step.

        Every ``train.log_every`` steps and at the epoch's last step, the loss, accuracy and
        throughput are appended to ``metrics.jsonl``. After each step the ``hooks`` run in order.

        The loop never waits on the device between logging steps: the step count is kept on the
        host (``state`` must be at step ``epoch * steps_per_epoch + skip_batches``, as
        :meth:`run` guarantees), the next two batches are transferred while a step runs, and
        metrics are fetched (:func:`fetch_metrics`) only on logging steps.

        Args:
          state: the state to train from; donated to the step (do not reuse it).
          epoch: the epoch whose shuffled batches are used.
          skip_batches: leading batches already trained (a resumed run).
          hooks: ``hook(step, state)`` callables, e.g. :meth:`step_hooks`.
          bar: a progress bar (:func:`~mmer_jax.train.progress.progress_bar`); None for none.

        Raises:
          RunError: the logged loss is NaN or infinite.
          Interrupted: raised by a :class:`~mmer_jax.train.hooks.StopAfterSteps` hook.
        """
        self.throughput.start_epoch()
        # The step count lives on the host (no device sync per step); batches are put on the
        # devices two ahead of the step, and metrics are fetched only on logging steps.
        step = epoch * self.steps_per_epoch + skip_batches
        host_batches = self.batches("train", epoch=epoch, train=True, skip_batches=skip_batches)
        profiler = next((h for h in hooks if isinstance(h, ProfileSteps)), None)
        t_first = time.perf_counter()
        for batch in sh.prefetch_to_mesh(host_batches, self.mesh, size=2):
            if profiler is not None and profiler.in_window(step):  # the trace's step markers
                with jax.profiler.StepTraceAnnotation("train", step_num=step + 1):
                    state, metrics = self.train_step(state, batch)
            else:
                state, metrics = self.train_step(state, batch)
            step += 1
            if not getattr(self, "_first_step_reported", False):
                self._report_first_step(metrics, t_first, bar)
            self.throughput.step(state, self.global_batch)
            if step % self.train_cfg.log_every == 0 or step % self.steps_per_epoch == 0:
                self._log_train(step, epoch, fetch_metrics(metrics), bar)
            if bar is not None:
                bar.update(1)
            for hook in hooks:
                hook(step, state)
        self.throughput.end_epoch(state)
        return state

    def _report_first_step(self, metrics, t0: float, bar) -> None:
        """Without a progress bar (a log file, a batch job), says when the first step is done:
        compiling it can take minutes, and a silent log looks hung."""
        self._first_step_reported = True
        if bar is not None and not getattr(bar, "disable", True):
            return
        jax.block_until_ready(metrics)  # once per trainer: the wait is the compile itself
        print(f"[{self.variant}] first train step compiled and ran in "
              f"{time.perf_counter() - t0:.1f} s; {self.steps_per_epoch} steps per epoch",
              file=sys.stderr, flush=True)

    def _log_train(self, step: int, epoch: int, metrics: dict, bar) -> None:
        loss = float(metrics["loss"])
        if not math.isfinite(loss):
            raise RunError(
                f"[{self.variant}] loss became {loss} at step {step} "
                f"(epoch {epoch + 1}); lower train.lr or set train.grad_clip"
            )
        rate = self.throughput.epoch_rate()
        if bar is not None:
            bar.set_postfix(loss=f"{loss:.3f}", ex_s=f"{rate or 0:.0f}")
        self.metrics_log.append("train", step, epoch + 1, loss=loss,
                                accuracy=float(metrics["accuracy"]), examples_per_s=rate)

    # -- evaluation -----------------------------------------------------------------------------
    def evaluate(self, params, batch_stats, split: str, keep_probs: bool = False) -> dict:
        """Classification metrics of the model on every example of ``split``.

        Args:
          params: the model parameters (replicated on the mesh).
          batch_stats: the BatchNorm statistics (``{}`` without BatchNorm).
          split: "train", "validation" or "test".
          keep_probs: also fetch the softmax to the host (the chosen checkpoint's evaluation
            only: per-epoch validation passes need the predicted classes alone).

        Returns:
          :func:`~mmer_jax.train.metrics.classification_metrics` of the split (fractions in
          [0, 1], per-class scores, confusion) plus ``loss``, the weighted mean cross-entropy;
          with ``protocol.task = "regression"``,
          :func:`~mmer_jax.train.regression.regression_metrics` plus ``loss`` (the weighted mean
          ``protocol.regression_loss``).

        Keeps the split's per-example outputs for :mod:`mmer_jax.train.run` to save:
        ``self.outputs[split] = (true, pred, weight)`` and, with ``keep_probs``,
        ``self.probs[split]`` ([N, K] float32 softmax, None for regression).
        """
        keep = ("pred", "label", "weight", "loss_sum") + (
            ("probs",) if keep_probs and not self.regression else ())
        outs = []
        for host in self.batches(split, train=False):
            out = self.eval_step(params, batch_stats, sh.to_global(host, self.mesh))
            # Kept on the device: the loop only dispatches, so the host prepares the next batch
            # while the device computes, instead of waiting for each batch's results.
            outs.append({k: out[k] for k in keep})
        # One fetch for the whole split.
        fetched = (jax.device_get(outs) if jax.process_count() == 1
                   else jax.tree.map(sh.to_host, outs))
        # Flattened per batch: dialogue batches differ in their (bucketed) utterance axis.
        preds = [np.asarray(o["pred"]).reshape(-1) for o in fetched]
        labels = [np.asarray(o["label"]).reshape(-1) for o in fetched]
        weights = [np.asarray(o["weight"]).reshape(-1) for o in fetched]
        # [..., K] softmax, one row per example
        probs = [np.asarray(o["probs"]).reshape(len(p), -1)
                 for o, p in zip(fetched, preds, strict=True) if "probs" in o]
        loss_sum = float(sum(np.float64(o["loss_sum"]) for o in fetched))
        y, p, w = (np.concatenate(a) for a in (labels, preds, weights))
        # The latest per-example outputs of each split: run.py saves them (a regression report
        # draws predicted against true scores; a reproduction averages seeds' probabilities).
        self.outputs = {**getattr(self, "outputs", {}), split: (y, p, w)}
        if keep_probs:
            self.probs = {**getattr(self, "probs", {}),
                          split: np.concatenate(probs) if probs else None}
        if self.regression:  # sentiment scores: MMSA's metrics (no classes, no speakers)
            return {**regression.regression_metrics(y, p, weight=w),
                    "loss": loss_sum / max(float(w.sum()), 1.0)}
        m = classification_metrics(y, p, self.pipeline.class_names, weight=w)
        m["loss"] = loss_sum / max(float(w.sum()), 1.0)
        by_speaker = per_speaker_of(self.pipeline, split, y, p, w, self.cfg)
        if by_speaker is not None:
            m["per_speaker"] = by_speaker
        return m

    def validate(self, state: TrainState, epoch: int, meta: dict) -> dict:
        """End of epoch ``epoch`` (0-based): validation, selection and checkpoints.

        Logs the validation scores, saves ``best`` when ``train.select_metric`` improved, then
        ``latest``; updates ``meta`` in place.

        Returns:
          The validation metrics (as :meth:`evaluate`).
        """
        select = self.train_cfg.select_metric
        val = self.evaluate(state_lib.eval_params(state), state.batch_stats, "validation")
        step = int(state.step)
        self.metrics_log.append("validation", step, epoch + 1, loss=val["loss"],
                                **regression.logged_scores(val))
        meta["epoch"] = epoch + 1
        meta["throughput"] = self.throughput.totals()
        if regression.improved(select, val[select], meta["best"]):  # mae: lower is better
            meta.update(best=val[select], best_epoch=epoch + 1, best_step=step)
            self.ckpt.save("best", step, state, meta)
        self.ckpt.save("latest", step, state, meta)
        return val

    def final_test(self, like: TrainState) -> dict[str, Any]:
        """Validation and test at the best-by-validation checkpoint; the only test evaluation.

        Args:
          like: a state with the checkpoint's structure (e.g. the last trained state).

        Returns:
          ``{"validation", "test", "best_epoch", "num_params"}``, plus ``model_summary`` where
          the system registers a ``summarize`` (see :class:`mmer_jax.registry.System`).

        Raises:
          FileNotFoundError: no ``best`` checkpoint (no epoch finished).
        """
        best, meta = self.restore("best", like)
        from mmer_jax.registry import SYSTEMS

        summarize = SYSTEMS[self.cfg.model.name].summarize
        return {
            **({"model_summary": summarize(jax.device_get(state_lib.eval_params(best)))}
               if summarize else {}),
            "validation": self.evaluate(state_lib.eval_params(best), best.batch_stats,
                                        "validation", keep_probs=True),
            "test": self.evaluate(state_lib.eval_params(best), best.batch_stats, "test",
                                  keep_probs=True),
            "best_epoch": meta["best_epoch"],
            "num_params": _count(best.params),
        }

    # -- main -----------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Trains the remaining epochs (resuming from ``latest``), selects, tests once.

        Returns:
          The variant's result: ``modalities``, ``validation`` and ``test`` metrics at the best
          checkpoint, ``selection``, ``best_epoch``, ``train_examples_per_s``, ``train_wall_s``
          (seconds) and ``num_params``.

        Raises:
          Interrupted: ``train.stop_after_steps`` was reached (``latest`` holds that step).
          RunError: the loss became NaN or infinite.
        """
        train = self.train_cfg
        state, meta = self.resume_or_init()
        start_step = int(state.step)
        hooks = self.step_hooks(meta, start_step)
        bar = progress_bar(self.total_steps, start_step, f"train[{self.variant}]", train.progress)
        try:
            for epoch in range(meta["epoch"], train.epochs):
                # Batches of this epoch trained before an interruption are skipped, not redone.
                skip = max(0, start_step - epoch * self.steps_per_epoch)
                state = self.train_epoch(state, epoch, skip_batches=skip, hooks=hooks, bar=bar)
                val = self.validate(state, epoch, meta)
                bar.write(
                    f"[{self.variant}] epoch {epoch + 1}/{train.epochs}: val "
                    f"{regression.summary(val)} "
                    f"(best {train.select_metric} {meta['best']:.3f} @ {meta['best_epoch']})",
                    file=sys.stderr,
                )
        finally:
            bar.close()
            self.metrics_log.close()
            for hook in hooks:  # a profile trace still running (the run ended inside it)
                if isinstance(hook, ProfileSteps):
                    hook.close()
        result = self.final_test(state)
        self.ckpt.close()
        return {
            "modalities": self.modalities,
            "validation": result["validation"],
            "test": result["test"],
            "selection": f"best validation {train.select_metric} @ epoch {result['best_epoch']}",
            "best_epoch": result["best_epoch"],
            "train_examples_per_s": self.throughput.examples_per_s,
            "train_wall_s": self.throughput.wall_s,
            # how many processes (1 + resumes) the rate and time were measured over
            "train_rate_processes": self.throughput.processes,
            "num_params": result["num_params"],
            **({"model_summary": result["model_summary"]} if "model_summary" in result else {}),
        }


class _NoWrites:
    """Stands in for a writer on processes other than 0: every method does nothing."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def fetch_metrics(metrics: dict) -> dict:
    """The step's metrics as host numpy values: the one explicit device-to-host transfer of a
    logging step (every other step of :meth:`VariantTrainer.train_epoch` transfers nothing back)."""
    return jax.device_get(metrics)


def _count(params) -> int:
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(params)))
