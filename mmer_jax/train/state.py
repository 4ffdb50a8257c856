"""The train state pytree and the optimizer a ``train`` section describes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

import flax.struct
import jax
import jax.numpy as jnp
import optax

from mmer_jax.schema import TrainConfig


@flax.struct.dataclass
class TrainState:
    """Everything a training step reads and writes; checkpointed as one pytree.

    Attributes:
      step: int32 scalar, the number of optimizer steps taken. The dropout key of a step is
        derived from it, so a resumed run replays exactly the keys of an uninterrupted one.
      params: the model's float32 parameters (master weights, also under bfloat16 compute).
      batch_stats: BatchNorm running statistics; ``{}`` when the model has no BatchNorm.
      opt_state: the optimizer's state (same tree as :func:`make_optimizer` builds).
      ema_params: the exponential moving average of ``params`` (``train.ema_decay > 0``), which
        evaluation uses (:func:`eval_params`); None (no leaves) when off.
    """

    step: jnp.ndarray
    params: Any
    batch_stats: Any
    opt_state: Any
    ema_params: Any = None


def eval_params(state: TrainState) -> Any:
    """The parameters evaluation, selection and prediction use: the moving average when the run
    keeps one, else the trained parameters."""
    return state.params if state.ema_params is None else state.ema_params


def ema_update(ema: Any, params: Any, step: jnp.ndarray, decay: float) -> Any:
    """One moving-average step after optimizer step ``step`` (0-based), float32 trees.

    The decay is ramped, ``min(decay, (1 + step) / (10 + step))``, so the average forgets the
    random initialisation within the first few dozen steps instead of ~1 / (1 - decay) steps.

    Args:
      ema: the average so far (same tree as ``params``).
      params: the parameters after the step.
      step: int scalar, the number of steps taken before this one.
      decay: ``train.ema_decay`` in (0, 1).

    Returns:
      ``d * ema + (1 - d) * params`` per leaf.
    """
    t = step.astype(jnp.float32)
    d = jnp.minimum(decay, (1.0 + t) / (10.0 + t))
    return jax.tree.map(lambda e, p: d * e + (1.0 - d) * p, ema, params)


def make_schedule(train: TrainConfig, total_steps: int) -> optax.Schedule | float:
    """The learning rate per step: linear warmup, then constant or cosine decay to 1% of peak.

    Args:
      train: the run's ``train`` section (``lr``, ``schedule``, ``warmup_steps``).
      total_steps: optimizer steps of the whole run (epochs x steps per epoch).

    Returns:
      An optax schedule ``step -> lr``, or the float ``train.lr`` for a constant rate without
      warmup.

    Raises:
      ValueError: ``train.schedule`` is neither "cosine" nor "constant".
    """
    lr, warmup = train.lr, train.warmup_steps
    if train.schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(
            # optax needs decay_steps > warmup_steps, also for a run of a single step.
            0.0 if warmup else lr, lr, max(warmup, 1), max(total_steps, max(warmup, 1) + 1),
            lr * 0.01
        )
    if train.schedule == "constant":
        if not warmup:
            return lr
        ramp = optax.linear_schedule(0.0, lr, warmup)
        return optax.join_schedules([ramp, optax.constant_schedule(lr)], [warmup])
    raise ValueError(f"train.schedule={train.schedule!r} must be 'constant' or 'cosine'")


def make_optimizer(train: TrainConfig, total_steps: int,
                   factors: Optional[Callable[[tuple], float]] = None
                   ) -> optax.GradientTransformation:
    """Adam(W) or SGD on :func:`make_schedule`, after optional global-norm clipping.

    ``adamw`` decays weights decoupled from the gradient; ``adam`` adds ``weight_decay * param``
    to the gradient (PyTorch's ``Adam(weight_decay=)``); ``sgd`` uses momentum 0.9 and no decay.

    With ``factors`` (:func:`mmer_jax.train.imports.lr_factors`: a parameter's path -> its
    learning-rate factor), parameters of factor 0 are frozen: ``optax.multi_transform`` gives
    them zero updates (weight decay included) and keeps no optimizer state for them; the others
    are clipped together and their final updates multiplied by their factor (a per-parameter
    learning rate, weight decay scaled with it, as per-group learning rates do in PyTorch).

    Args:
      train: the run's ``train`` section (``lr``, ``schedule``, ``warmup_steps``, ``grad_clip``,
        ``weight_decay``, ``optimizer``).
      total_steps: optimizer steps of the whole run, for the cosine decay.
      factors: per-parameter learning-rate factors by path (tuple of tree keys), or None.

    Returns:
      The optax transformation.

    Raises:
      ValueError: unknown ``train.optimizer`` or ``train.schedule``.
    """
    schedule = make_schedule(train, total_steps)
    parts = []
    if train.grad_clip:
        parts.append(optax.clip_by_global_norm(train.grad_clip))
    wd = train.weight_decay
    if train.optimizer == "adamw":
        parts.append(optax.adamw(schedule, weight_decay=wd))
    elif train.optimizer == "adam":
        if wd:
            parts.append(optax.add_decayed_weights(wd))
        parts.append(optax.adam(schedule))
    elif train.optimizer == "sgd":
        parts.append(optax.sgd(schedule, momentum=0.9))
    else:
        raise ValueError(f"train.optimizer={train.optimizer!r} must be adamw, adam or sgd")
    if factors is None:
        return optax.chain(*parts)
    from mmer_jax.train.imports import key_path

    def labels(params):
        return jax.tree_util.tree_map_with_path(
            lambda p, _: "frozen" if factors(key_path(p)) == 0.0 else "trained", params)

    def scale(updates, state, params=None):
        del params
        return jax.tree_util.tree_map_with_path(
            lambda p, u: u if factors(key_path(p)) == 1.0 else u * factors(key_path(p)),
            updates), state

    scaled = optax.GradientTransformation(lambda params: optax.EmptyState(), scale)
    return optax.multi_transform({"trained": optax.chain(*parts, scaled),
                                  "frozen": optax.set_to_zero()}, labels)


def init_state(
    model, optimizer: optax.GradientTransformation, example_inputs: dict, seed: int | jax.Array,
    ema: bool = False, imports: Optional[dict] = None,
) -> TrainState:
    """A step-0 train state with parameters initialised from ``seed``.

    Args:
      model: a Flax module with ``apply(variables, batch, train=...)``.
      optimizer: the transformation whose state is initialised on the parameters.
      example_inputs: one model batch (the output of the feature step); only its shapes and
        dtypes matter to the parameters.
      seed: the run's seed (the parameter key is ``PRNGKey(seed)``), or that key itself (an
        argument of a jitted caller, so the program does not depend on the seed).
      ema: keep a moving average of the parameters (it starts as a copy of them).
      imports: the variables of the imported encoders the model holds
        (:func:`mmer_jax.train.imports.load_imports`), put in place of their random
        initialisation (:func:`mmer_jax.train.imports.graft`) before the optimizer state and
        the moving average are made; pass them as arguments of a jitted caller, not as
        constants. None: none.

    Returns:
      The :class:`TrainState` at step 0.

    Raises:
      CheckpointError: an import does not fit its sub-module (names the import and variable).
    """
    from mmer_jax.train.imports import graft

    key = seed if isinstance(seed, jax.Array) else jax.random.PRNGKey(seed)
    variables = model.init(
        {"params": key, "dropout": jax.random.fold_in(key, 1)}, example_inputs, train=False
    )
    variables = graft(dict(variables), imports)
    params = variables["params"]
    batch_stats = variables.get("batch_stats", {})
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        batch_stats=batch_stats,
        opt_state=optimizer.init(params),
        ema_params=jax.tree.map(jnp.copy, params) if ema else None,
    )

