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

from mmer_jax.schema import ProtocolConfig, TrainConfig
from mmer_jax.train import mixup, regression
from mmer_jax.train import sharding as sh
from mmer_jax.train.state import TrainState, ema_update

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


def model_loss_terms(aux: dict) -> jnp.ndarray:
    """The sum of the model's own training losses, ``aux["loss_terms"]`` (0 when absent).

    A model that trains with objectives beside the task loss (a reconstruction, a KL term)
    returns them there as a dict of float32 scalars, each already weighted and already averaged
    over the real examples only (``batch["weight"] > 0``); they are summed in float32.
    """
    terms = aux.get("loss_terms") or {}
    return sum((jnp.asarray(v, jnp.float32) for v in terms.values()), jnp.float32(0.0))


def make_loss_fn(model, feature_step: FeatureStep, train: TrainConfig,
                 protocol: ProtocolConfig | None = None):
    """The training loss of ``model`` on a host batch, with train-mode dropout and BatchNorm.

    Args:
      model: a Flax module returning ``(logits, aux)``; ``aux["aux_logits"]`` is used when
        ``train.aux_loss_weight > 0``; ``aux["loss_terms"]`` (a dict of float32 scalars, each
        already weighted by the model's own config, e.g. TSRA's similarity/difference/
        reconstruction losses or MGMNet's information bottleneck) is added to the loss as is.
      feature_step: host batch -> model batch (features in ``train.dtype``).
      train: the ``train`` section (``dtype``, ``label_smoothing``, ``aux_loss_weight``,
        ``mixup_alpha``: :mod:`mmer_jax.train.mixup`).
      protocol: the ``protocol`` section; ``task = "regression"`` trains a 1-output model on the
        batch's ``score`` (:func:`mmer_jax.train.regression.train_objective`). None: classification.

    Returns:
      ``loss_fn(params, batch_stats, batch, rng) -> (loss, (batch_stats, accuracy))``: a float32
      scalar loss (weighted mean cross-entropy, or ``protocol.regression_loss``), the updated
      BatchNorm statistics and the weighted accuracy of the batch in [0, 1] (regression: sign
      agreement, Acc-2 has0).
    """
    dtype = DTYPES[train.dtype]
    smoothing = train.label_smoothing
    aux_weight = train.aux_loss_weight
    regress = protocol is not None and protocol.task == "regression"
    mix_alpha = train.mixup_alpha

    def loss_fn(params, batch_stats, batch, rng):
        inputs = feature_step(batch)
        mix = None
        if mix_alpha:  # train.mixup_alpha: features mixed here, targets in the loss below
            inputs, mix = mixup.mix_inputs(inputs, jax.random.fold_in(rng, 0x6D6978), mix_alpha)
        variables = {"params": _cast_floats(params, dtype) if dtype != jnp.float32 else params}
        mutable = []
        if batch_stats:
            variables["batch_stats"] = batch_stats
            mutable = ["batch_stats"]
        out, updates = model.apply(
            variables, inputs, train=True, rngs={"dropout": rng}, mutable=mutable
        )
        logits, aux = out
        if regress:
            loss, acc = regression.train_objective(logits, aux, inputs, protocol.regression_loss,
                                                   aux_weight)
            return loss + model_loss_terms(aux), (updates.get("batch_stats", batch_stats), acc)
        if mix is None:
            loss = weighted_xent(logits, inputs["label"], inputs["weight"], smoothing)
        else:
            loss = mixup.mixed_xent(logits, inputs["label"], inputs["weight"], mix, smoothing)
        if aux_weight and "aux_logits" in aux:
            # Deep supervision: an auxiliary classifier on the utterance encoder's output gives a
            # from-scratch encoder a direct signal before the context layers learn to pass one.
            loss = loss + aux_weight * weighted_xent(
                aux["aux_logits"], inputs["label"], inputs["weight"], smoothing
            )
        loss = loss + model_loss_terms(aux)
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
    protocol: ProtocolConfig | None = None,
    *,
    state_sharding=None,
):
    """The jitted data-parallel training step.

    The dropout key of a step is ``fold_in(PRNGKey(seed), state.step)``; the loss is the weighted
    mean over the global batch, so any number of devices computes the gradients of one.

    ``train.grad_accum_steps = k > 1`` splits the batch into k micro-batches (rows ``i, i + k,
    ...``, so each device splits only its own rows) whose gradients are summed, each weighted by
    its share of the batch's weight, inside the step (``lax.scan``): one optimizer step on the
    whole batch's gradient with the activations of ``batch_size / k`` rows alive at a time. The
    parameters after the step equal those of one batch (up to float rounding) for a model
    without BatchNorm or dropout; BatchNorm normalises each micro-batch by its own statistics and
    updates the running ones k times, dropout draws a key per micro-batch.

    Under bfloat16 compute (``train.dtype``) the parameters are cast inside the differentiated
    function, so gradients, parameters, optimizer state and BatchNorm statistics stay float32,
    as does the loss.

    Args:
      model: the Flax module (see :func:`make_loss_fn`).
      optimizer: the transformation from :func:`mmer_jax.train.state.make_optimizer`.
      feature_step: host batch -> model batch.
      train: the ``train`` section (see :func:`make_loss_fn`).
      seed: the run's seed.
      mesh: the run mesh (:func:`mmer_jax.train.sharding.make_mesh`); the batch is split over
        its batch axes.
      protocol: the ``protocol`` section (its ``task``; see :func:`make_loss_fn`).
      state_sharding: where the state lives: None (replicated) or the tree of
        :func:`mmer_jax.train.sharding.state_sharding` (FSDP: the parameters are gathered whole
        for the step's compute and their gradients reduce-scattered back to the shards, so the
        optimizer update runs on the shards).

    Returns:
      ``step(state, batch) -> (state, {"loss", "accuracy", "grad_norm"})`` with float32 scalar
      metrics. The input state is donated: do not use it after the call.

    Raises:
      ValueError (when called): the batch's rows per device do not divide by
        ``train.grad_accum_steps``.
    """
    loss_fn = make_loss_fn(model, feature_step, train, protocol)
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    accum = train.grad_accum_steps
    rep, data = sh.replicated(mesh), sh.data_sharding(mesh)
    if state_sharding is None:
        state_sharding = rep
    sharded = not isinstance(state_sharding, jax.sharding.Sharding)

    def step(state: TrainState, batch, base_key):
        rng = jax.random.fold_in(base_key, state.step)
        params = state.params
        if sharded:  # FSDP: gather the shards for the forward and backward passes
            params = jax.lax.with_sharding_constraint(params, rep)
        if accum == 1:
            (loss, (batch_stats, acc)), grads = grad_fn(params, state.batch_stats, batch, rng)
        else:
            loss, batch_stats, acc, grads = _accumulate(
                grad_fn, params, state.batch_stats, batch, rng, accum, mesh
            )
        if sharded:  # each device keeps the summed gradient of its own shards
            grads = jax.lax.with_sharding_constraint(grads, state_sharding.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        ema = state.ema_params
        if ema is not None:
            ema = ema_update(ema, params, state.step, train.ema_decay)
        new_state = TrainState(
            step=state.step + 1, params=params, opt_state=opt_state,
            batch_stats=_like(batch_stats, state.batch_stats), ema_params=ema,
        )
        return new_state, {"loss": loss, "accuracy": acc, "grad_norm": optax.global_norm(grads)}

    jitted = jax.jit(step, in_shardings=(state_sharding, data, rep),
                     out_shardings=(state_sharding, rep), donate_argnums=0)
    # The key is an argument, not a constant of the program: every seed of a reproduction
    # shares one compiled step (and one entry of the persistent compilation cache).
    return under_mesh(KeyBound(jitted, jax.device_put(jax.random.PRNGKey(seed), rep)), mesh)


class KeyBound:
    """A jitted ``fn(*args, key)`` with its last argument bound, used like the jitted function of
    the other arguments it stands for: called, lowered (``.lower(*args)``, whose ``.compile()``
    is again key-bound), and inspected (``.as_text()``, ``.cost_analysis()``,
    ``._cache_size()``: every other attribute is the wrapped object's)."""

    def __init__(self, fn, key: jax.Array):
        self._fn, self._key = fn, key

    def __call__(self, *args):
        return self._fn(*args, self._key)

    def lower(self, *args):
        """``fn.lower(*args, key)``, key-bound: ``.as_text()``, ``.compile()``."""
        return KeyBound(self._fn.lower(*args, self._key), self._key)

    def compile(self, *args, **kwargs):
        """The lowered program compiled (on a ``.lower`` result), key-bound: called with the
        other arguments only."""
        return KeyBound(self._fn.compile(*args, **kwargs), self._key)

    def __getattr__(self, name):
        if name in ("_fn", "_key"):  # not set yet (a copy being made): no recursion
            raise AttributeError(name)
        return getattr(self._fn, name)


def _like(tree, reference):
    """``tree`` with every leaf cast to the dtype of the same leaf of ``reference``."""
    return jax.tree.map(lambda x, r: x.astype(r.dtype), tree, reference)


def _accumulate(grad_fn, params, batch_stats, batch, rng, k: int, mesh):
    """Loss, BatchNorm statistics, accuracy and gradient of ``batch`` from ``k`` micro-batches.

    Micro-batch ``i`` holds rows ``i, i + k, i + 2k, ...`` of the batch: with the rows split
    contiguously over the devices, every device splits its own rows (no data moves). Each
    micro-batch's weighted means (loss, accuracy, gradient) are scaled by its share of the
    batch's weight, so the sums are the whole batch's weighted means.
    """
    n_rows = batch["weight"].shape[0]
    n_dev = mesh.devices.size
    other = sorted(name for name, v in batch.items() if v.shape[:1] != (n_rows,))
    if other:  # e.g. data.pack_utterances's rows of real utterances only
        raise ValueError(f"train.grad_accum_steps={k}: batch key {other[0]!r} is not split by "
                         f"batch rows ({n_rows}), so it cannot be split into micro-batches")
    if n_rows % (k * n_dev):
        raise ValueError(
            f"train.grad_accum_steps={k}: a batch of {n_rows} rows on {n_dev} devices does not "
            f"split into {k} micro-batches per device; use a train.batch_size divisible by "
            f"{k * n_dev}"
        )
    axes = sh.batch_axes(mesh)
    micro_sharding = jax.sharding.NamedSharding(
        mesh, jax.sharding.PartitionSpec(None, axes[0] if len(axes) == 1 else axes)
    )

    def split(x):  # [B, ...] -> [k, B / k, ...]
        x = jnp.swapaxes(x.reshape((x.shape[0] // k, k) + x.shape[1:]), 0, 1)
        return jax.lax.with_sharding_constraint(x, micro_sharding)

    micro = jax.tree.map(split, batch)
    total = jnp.maximum(jnp.sum(batch["weight"].astype(jnp.float32)), 1.0)

    def body(carry, xs):
        grads, stats, loss, acc = carry
        i, mb = xs
        (l_i, (new_stats, a_i)), g_i = grad_fn(params, stats, mb, jax.random.fold_in(rng, i))
        # loss_fn divides by max(micro weight, 1); rescale to a share of the batch's weight
        share = jnp.maximum(jnp.sum(mb["weight"].astype(jnp.float32)), 1.0) / total
        grads = jax.tree.map(lambda a, b: a + share * b, grads, g_i)
        return (grads, _like(new_stats, stats), loss + share * l_i, acc + share * a_i), None

    zero = jnp.zeros((), jnp.float32)
    init = (jax.tree.map(jnp.zeros_like, params), batch_stats, zero, zero)
    (grads, batch_stats, loss, acc), _ = jax.lax.scan(body, init, (jnp.arange(k), micro))
    return loss, batch_stats, acc, grads


def under_mesh(fn, mesh: jax.sharding.Mesh):
    """``fn`` called (so traced) with ``mesh`` as the context mesh, so the Pallas kernels inside
    the step partition over its ``data`` axis (``mmer_kernels.Partition``) instead of running the
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


def make_eval_step(model, feature_step: FeatureStep, dtype: str, mesh: jax.sharding.Mesh,
                   protocol: ProtocolConfig | None = None, *, state_sharding=None):
    """The jitted evaluation step: eval-mode forward pass, predictions and the summed loss.

    Args:
      model: the Flax module (see :func:`make_loss_fn`).
      feature_step: host batch -> model batch.
      dtype: "float32" or "bfloat16", the compute dtype the parameters are cast to.
      mesh: the run mesh; the batch is split over its batch axes.
      protocol: the ``protocol`` section; ``task = "regression"`` gives the outputs of
        :func:`mmer_jax.train.regression.eval_outputs` (float scores) under the same keys.
      state_sharding: where the train state lives (see :func:`make_train_step`); its
        ``params`` and ``batch_stats`` entries are the step's input shardings. None: replicated.

    Returns:
      ``step(params, batch_stats, batch) -> dict`` with ``pred`` [B] (or [B, U]) int class ids,
      ``label`` and ``weight`` of the batch, ``probs`` [..., K] softmax, and ``loss_sum``, the
      float32 scalar sum of weight x cross-entropy (divide by the summed weight for the mean).

    Raises:
      KeyError: ``dtype`` is not "float32" or "bfloat16".
    """
    dtype = DTYPES[dtype]
    regress = protocol is not None and protocol.task == "regression"

    rep, data = sh.replicated(mesh), sh.data_sharding(mesh)
    sharded = state_sharding is not None and not isinstance(state_sharding,
                                                            jax.sharding.Sharding)
    params_in, stats_in = (
        (state_sharding.params, state_sharding.batch_stats) if sharded else (rep, rep)
    )

    def step(params, batch_stats, batch):
        inputs = feature_step(batch)
        if sharded:  # FSDP: gathered whole for the forward pass
            params = jax.lax.with_sharding_constraint(params, rep)
        variables = {"params": _cast_floats(params, dtype) if dtype != jnp.float32 else params}
        if batch_stats:
            variables["batch_stats"] = batch_stats
        logits, _ = model.apply(variables, inputs, train=False)
        logits = logits.astype(jnp.float32)
        if regress:
            return regression.eval_outputs(logits, inputs, protocol.regression_loss)
        loss = weighted_xent(logits, inputs["label"], inputs["weight"])
        return {
            "pred": jnp.argmax(logits, -1),
            "label": inputs["label"],
            "weight": inputs["weight"],
            "loss_sum": loss * jnp.sum(inputs["weight"]),
            "probs": jax.nn.softmax(logits, -1),
        }

    return under_mesh(jax.jit(
        step,
        in_shardings=(params_in, stats_in, data),
        out_shardings={"pred": data, "label": data, "weight": data, "loss_sum": rep, "probs": data},
    ), mesh)
