"""Pure train and eval steps, jitted with explicit shardings.

``train_step(state, batch) -> (state, metrics)`` is a pure function of its inputs: the dropout
key is ``fold_in(PRNGKey(seed), step)``, so a resumed run replays exactly the keys of an
uninterrupted one, and the data-parallel version computes the same loss and gradients as one device
(the weighted mean is taken over the global batch, not averaged per device).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import optax

from mmer_jax.data import device as device_data
from mmer_jax.train import sharding as sh
from mmer_jax.train.state import TrainState

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def _cast_floats(tree, dtype):
    return jax.tree.map(
        lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree
    )


def weighted_xent(logits, labels, weight, label_smoothing: float = 0.0):
    """Mean cross-entropy over examples with weight > 0; any leading shape ([B] or [B, U])."""
    logits = logits.astype(jnp.float32)
    n = logits.shape[-1]
    onehot = jax.nn.one_hot(labels, n)
    if label_smoothing:
        onehot = onehot * (1 - label_smoothing) + label_smoothing / n
    per = -jnp.sum(onehot * jax.nn.log_softmax(logits), axis=-1)
    return jnp.sum(per * weight) / jnp.maximum(jnp.sum(weight), 1.0)


def make_loss_fn(model, data_cfg: ml_collections.ConfigDict, train_cfg: ml_collections.ConfigDict):
    dtype = DTYPES[train_cfg.get("dtype", "float32")]
    smoothing = train_cfg.get("label_smoothing", 0.0)
    aux_weight = train_cfg.get("aux_loss_weight", 0.0)

    def loss_fn(params, batch_stats, batch, rng):
        inputs = device_data.prepare(batch, data_cfg, dtype)
        variables = {"params": _cast_floats(params, dtype) if dtype != jnp.float32 else params}
        mutable = []
        if batch_stats:
            variables["batch_stats"] = batch_stats
            mutable = ["batch_stats"]
        out, updates = model.apply(
            variables, inputs, train=True, rngs={"dropout": rng}, mutable=mutable
        )
        logits, aux = out
        loss = weighted_xent(logits, inputs["label"], inputs["weight"], smoothing)
        if aux_weight and "aux_logits" in aux:
            # Deep supervision: an auxiliary classifier on the utterance encoder's output gives a
            # from-scratch encoder a direct signal before the context layers learn to pass one.
            loss = loss + aux_weight * weighted_xent(
                aux["aux_logits"], inputs["label"], inputs["weight"], smoothing
            )
        correct = (jnp.argmax(logits, -1) == inputs["label"]) * inputs["weight"]
        acc = jnp.sum(correct) / jnp.maximum(jnp.sum(inputs["weight"]), 1.0)
        return loss, (updates.get("batch_stats", batch_stats), acc)

    return loss_fn


def make_train_step(model, optimizer, data_cfg, train_cfg, seed: int, mesh):
    loss_fn = make_loss_fn(model, data_cfg, train_cfg)
    base_key = jax.random.PRNGKey(seed)

    def step(state: TrainState, batch):
        rng = jax.random.fold_in(base_key, state.step)
        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (loss, (batch_stats, acc)), grads = grad_fn(state.params, state.batch_stats, batch, rng)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        new_state = TrainState(
            step=state.step + 1, params=params, batch_stats=batch_stats, opt_state=opt_state
        )
        return new_state, {"loss": loss, "accuracy": acc, "grad_norm": optax.global_norm(grads)}

    rep, data = sh.replicated(mesh), sh.data_sharding(mesh)
    return jax.jit(step, in_shardings=(rep, data), out_shardings=(rep, rep), donate_argnums=0)


def make_eval_step(model, data_cfg, train_cfg, mesh):
    dtype = DTYPES[train_cfg.get("dtype", "float32")]

    def step(params, batch_stats, batch):
        inputs = device_data.prepare(batch, data_cfg, dtype)
        variables = {"params": _cast_floats(params, dtype) if dtype != jnp.float32 else params}
        if batch_stats:
            variables["batch_stats"] = batch_stats
        logits, _ = model.apply(variables, inputs, train=False)
        logits = logits.astype(jnp.float32)
        loss = weighted_xent(logits, inputs["label"], inputs["weight"])
        return {
            "pred": jnp.argmax(logits, -1),
            "label": inputs["label"],
            "weight": inputs["weight"],
            "loss_sum": loss * jnp.sum(inputs["weight"]),
            "probs": jax.nn.softmax(logits, -1),
        }

    rep, data = sh.replicated(mesh), sh.data_sharding(mesh)
    return jax.jit(
        step,
        in_shardings=(rep, rep, data),
        out_shardings={"pred": data, "label": data, "weight": data, "loss_sum": rep, "probs": data},
    )
