"""Pure train and eval steps, jitted with explicit shardings.

``train_step(state, batch) -> (state, metrics)`` is a pure function of its inputs: the dropout
key is ``fold_in(PRNGKey(seed), step)``, so a resumed run replays exactly the keys of an
uninterrupted one, and the data-parallel version computes the same loss and gradients as one device
(the weighted mean is taken over the global batch, not averaged per device).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from mmer_jax.schema import TrainConfig
from mmer_jax.train import sharding as sh
from mmer_jax.train.state import TrainState

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}

# host batch (numpy or global arrays) -> model batch; see mmer_jax.data.device.make_feature_step.
FeatureStep = Callable[[dict], dict]


def _cast_floats(tree, dtype):
    return jax.tree.map(
        lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree
    )


def weighted_xent(logits, labels, weight, label_smoothing: float = 0.0):
    """Mean cross-entropy over the examples with weight > 0.

    Args:
      logits: [..., K] scores of K classes, any leading shape ([B] or [B, U]); cast to float32.
      labels: [...] int class ids.
      weight: [...] float, 1 for real examples and 0 for padding.
      label_smoothing: mass in [0, 1) spread uniformly over the K classes.

    Returns:
      A float32 scalar: sum(weight * xent) / max(sum(weight), 1).
    """
    logits = logits.astype(jnp.float32)
    n = logits.shape[-1]
    onehot = jax.nn.one_hot(labels, n)
    if label_smoothing:
        onehot = onehot * (1 - label_smoothing) + label_smoothing / n
    per = -jnp.sum(onehot * jax.nn.log_softmax(logits), axis=-1)
    return jnp.sum(per * weight) / jnp.maximum(jnp.sum(weight), 1.0)


def make_loss_fn(model, feature_step: FeatureStep, train: TrainConfig):
    """The training loss of ``model`` on a host batch, with train-mode dropout and BatchNorm.

    Args:
      model: a Flax module returning ``(logits, aux)``; ``aux["aux_logits"]`` is used when
        ``train.aux_loss_weight > 0``.
      feature_step: host batch -> model batch (features in ``train.dtype``).
      train: the ``train`` section (``dtype``, ``label_smoothing``, ``aux_loss_weight``).

    Returns:
      ``loss_fn(params, batch_stats, batch, rng) -> (loss, (batch_stats, accuracy))``: a float32
      scalar loss (weighted mean cross-entropy), the updated BatchNorm statistics and the
      weighted accuracy of the batch in [0, 1].
    """
    dtype = DTYPES[train.dtype]
    smoothing = train.label_smoothing
    aux_weight = train.aux_loss_weight

    def loss_fn(params, batch_stats, batch, rng):
        inputs = feature_step(batch)
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


def make_train_step(
    model,
    optimizer: optax.GradientTransformation,
    feature_step: FeatureStep,
    train: TrainConfig,
    seed: int,
    mesh: jax.sharding.Mesh,
):
    """The jitted data-parallel training step.

    The dropout key of a step is ``fold_in(PRNGKey(seed), state.step)``; the loss is the weighted
    mean over the global batch, so any number of devices computes the gradients of one.

    Args:
      model: the Flax module (see :func:`make_loss_fn`).
      optimizer: the transformation from :func:`mmer_jax.train.state.make_optimizer`.
      feature_step: host batch -> model batch.
      train: the ``train`` section (see :func:`make_loss_fn`).
      seed: the run's seed.
      mesh: the ``("data",)`` mesh; the state is replicated, the batch split on its axis.

    Returns:
      ``step(state, batch) -> (state, {"loss", "accuracy", "grad_norm"})`` with float32 scalar
      metrics. The input state is donated: do not use it after the call.
    """
    loss_fn = make_loss_fn(model, feature_step, train)
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
    return under_mesh(
        jax.jit(step, in_shardings=(rep, data), out_shardings=(rep, rep), donate_argnums=0), mesh
    )


def under_mesh(fn, mesh: jax.sharding.Mesh):
    """``fn`` called (so traced) with ``mesh`` as the context mesh, so the Pallas kernels inside
    the step partition over its ``data`` axis (``kernels.Partition``) instead of running the
    whole batch on every device. Called inside another trace (``jax.export`` of the serving
    function), where ``jax.set_mesh`` is not allowed, it calls ``fn`` as it is. The jitted
    function stays reachable as ``.jitted`` (for ``.lower``)."""

    def call(*args):
        # The batch (last argument) tells whether we are inside another trace (jax.export):
        # checking it, not the whole train state, keeps the per-step cost to a few leaves.
        if any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(args[-1])):
            return fn(*args)  # its own mesh applies
        with jax.set_mesh(mesh):
            return fn(*args)

    call.jitted = fn
    return call


def make_eval_step(model, feature_step: FeatureStep, dtype: str, mesh: jax.sharding.Mesh):
    """The jitted evaluation step: eval-mode forward pass, predictions and the summed loss.

    Args:
      model: the Flax module (see :func:`make_loss_fn`).
      feature_step: host batch -> model batch.
      dtype: "float32" or "bfloat16", the compute dtype the parameters are cast to.
      mesh: the ``("data",)`` mesh.

    Returns:
      ``step(params, batch_stats, batch) -> dict`` with ``pred`` [B] (or [B, U]) int class ids,
      ``label`` and ``weight`` of the batch, ``probs`` [..., K] softmax, and ``loss_sum``, the
      float32 scalar sum of weight x cross-entropy (divide by the summed weight for the mean).

    Raises:
      KeyError: ``dtype`` is not "float32" or "bfloat16".
    """
    dtype = DTYPES[dtype]

    def step(params, batch_stats, batch):
        inputs = feature_step(batch)
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
    return under_mesh(jax.jit(
        step,
        in_shardings=(rep, rep, data),
        out_shardings={"pred": data, "label": data, "weight": data, "loss_sum": rep, "probs": data},
    ), mesh)
