"""The train state pytree and the optimizer built from config."""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax


@flax.struct.dataclass
class TrainState:
    step: jnp.ndarray  # int32 scalar; the dropout rng is derived from it, so resume is exact
    params: Any
    batch_stats: Any  # {} when the model has no BatchNorm
    opt_state: Any


def make_optimizer(
    train_cfg: ml_collections.ConfigDict, total_steps: int
) -> optax.GradientTransformation:
    """Adam(W) with optional warmup + cosine decay and global-norm clipping."""
    lr = train_cfg.lr
    warmup = int(train_cfg.get("warmup_steps", 0))
    kind = train_cfg.get("schedule", "constant")
    if kind == "cosine":
        schedule = optax.warmup_cosine_decay_schedule(
            0.0 if warmup else lr, lr, max(warmup, 1), max(total_steps, warmup + 1), lr * 0.01
        )
    elif kind == "constant":
        schedule = optax.linear_schedule(0.0, lr, warmup) if warmup else lr
        if warmup:
            schedule = optax.join_schedules([schedule, optax.constant_schedule(lr)], [warmup])
    else:
        raise ValueError(f"train.schedule={kind!r} must be 'constant' or 'cosine'")
    parts = []
    if train_cfg.get("grad_clip", 0.0):
        parts.append(optax.clip_by_global_norm(train_cfg.grad_clip))
    wd = train_cfg.get("weight_decay", 0.0)
    name = train_cfg.get("optimizer", "adamw")
    if name == "adamw":
        parts.append(optax.adamw(schedule, weight_decay=wd))
    elif name == "adam":  # L2 penalty added to the gradient, as in PyTorch's Adam(weight_decay=)
        if wd:
            parts.append(optax.add_decayed_weights(wd))
        parts.append(optax.adam(schedule))
    elif name == "sgd":
        parts.append(optax.sgd(schedule, momentum=0.9))
    else:
        raise ValueError(f"train.optimizer={name!r} must be adamw, adam or sgd")
    return optax.chain(*parts)


def init_state(model, optimizer, example_inputs: dict, seed: int) -> TrainState:
    """Initialises parameters from ``seed`` on an example model batch."""
    key = jax.random.PRNGKey(seed)
    variables = model.init(
        {"params": key, "dropout": jax.random.fold_in(key, 1)}, example_inputs, train=False
    )
    params = variables["params"]
    batch_stats = variables.get("batch_stats", {})
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        batch_stats=batch_stats,
        opt_state=optimizer.init(params),
    )
