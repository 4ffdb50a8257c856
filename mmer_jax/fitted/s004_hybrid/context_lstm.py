"""S004's context LSTMs over the utterances of one video, on exported per-utterance features.

Source: seed paper S004 (``shared/papers/S004_*``), "Feature Selection" (an LSTM over the matrix
X_i [L_i, h] of the L_i utterance vectors of video i, within each modality, and one LSTM over the
spliced modalities) and "Experiment and Analysis" (Eq. 2: cross-entropy averaged over the real
utterances of all videos; zero padding for videos of different lengths; mini-batches of 50).

Input per split: features X [N, D], labels [N], a group id per row (the video / dialogue) and an
order within the group (``turn`` or position, :mod:`mmer_jax.train.export_features`). One
sequence per group, utterances in order, zero-padded with a mask. An LSTM with a per-utterance
softmax head is trained on the train split; the epoch is chosen by validation weighted F1 (the
validation split only; no test label is read); the output is the LSTM's hidden state at every
utterance, [N, H] in the input row order, for every split given.

Invariances the tests check: padding (more padded steps, or padded sequences in a mini-batch)
changes no output, since the LSTM stops at each sequence's length, the loss counts real
utterances only and dropout masks are drawn per (sequence, step), independently of the padded
length; the order of the input rows changes nothing but the output order, since groups are
sorted by id and utterances by their order.

On a corpus without videos (every group one utterance) the LSTM sees sequences of length 1: it is
then a learned per-utterance transform, not context. jax, flax, optax and numpy only.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from mmer_jax.models.layers import LSTM
from mmer_jax.train.metrics import classification_metrics


@dataclasses.dataclass(frozen=True)
class ContextConfig:
    """Settings of one context LSTM.

    Attributes:
      hidden: LSTM width H, the width of the returned features (S004's LSTMs: 256).
      epochs: passes over the training groups; the best by validation weighted F1 is kept.
      batch_size: groups (videos) per step (S004: mini-batches of 50).
      learning_rate: Adam step size.
      dropout: drop rate on the hidden states before the softmax head (training only). S004
        writes "dropout 0.99", which as a drop rate would erase the signal; 0.5 is used.
      bidirectional: also run the LSTM backwards (H doubles); S004 says "LSTM", so off.
    """

    hidden: int = 256
    epochs: int = 30
    batch_size: int = 50
    learning_rate: float = 1e-3
    dropout: float = 0.5
    bidirectional: bool = False


@dataclasses.dataclass(frozen=True)
class GroupedSplit:
    """One split's rows for the context stage.

    Attributes:
      x: [N, D] features (any float dtype).
      labels: [N] int class indices (unused for splits other than train and validation).
      groups: [N] group ids (str or int): the video / dialogue of each row.
      order: [N] int position of each row within its group (ties are an error).
    """

    x: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    order: np.ndarray


def sequences(groups: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of one sequence per group, groups sorted by id, rows by ``order``.

    Args:
      groups: [N] group ids.
      order: [N] int order within each group.

    Returns:
      ``(index [G, T] int64, mask [G, T] bool)``: ``index[g, t]`` is the row of step t of group
      g (0 where ``mask`` is False), T the longest group.

    Raises:
      ValueError: lengths differ, or two rows of one group share an order value.
    """
    groups, order = np.asarray(groups).astype(str), np.asarray(order, np.int64)
    if groups.shape != order.shape or groups.ndim != 1:
        raise ValueError(f"groups {groups.shape} and order {order.shape} must be equal [N]")
    names, code = np.unique(groups, return_inverse=True)
    rows = np.lexsort((order, code))  # by group, then by order within it
    code_sorted, order_sorted = code[rows], order[rows]
    dup = (code_sorted[1:] == code_sorted[:-1]) & (order_sorted[1:] == order_sorted[:-1])
    if dup.any():
        g = str(names[code_sorted[1:][dup][0]])
        raise ValueError(f"group {g!r}: two rows with order {int(order_sorted[1:][dup][0])}")
    counts = np.bincount(code, minlength=len(names))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    step = np.arange(len(rows)) - starts[code_sorted]
    t = int(counts.max()) if len(counts) else 0
    index = np.zeros((len(names), t), np.int64)
    mask = np.zeros((len(names), t), bool)
    index[code_sorted, step] = rows
    mask[code_sorted, step] = True
    return index, mask


class ContextLSTM(nn.Module):
    """LSTM over a video's utterances with a per-utterance softmax head.

    ``__call__(x [G, T, D], mask [G, T] bool, keep=None)`` -> ``(logits [G, T, C], h [G, T, H])``;
    ``keep`` ([G, T, H] float, 0 or 1/(1 - rate)) is the dropout mask applied to ``h`` before the
    head (None: no dropout). Padded steps of ``h`` are zero.
    """

    hidden: int
    num_classes: int
    bidirectional: bool = False

    @nn.compact
    def __call__(self, x, mask, keep=None):
        h = LSTM(self.hidden, bidirectional=self.bidirectional, name="lstm")(x, mask)
        return nn.Dense(self.num_classes, name="head")(h if keep is None else h * keep), h


def _dropout_keep(rng, rate: float, shape: tuple[int, int, int]) -> jnp.ndarray:
    """Inverted-dropout multipliers [B, T, H], one key per step so a step's mask does not
    depend on how many padded steps follow it."""
    b, t, h = shape
    keys = jax.vmap(lambda i: jax.random.fold_in(rng, i))(jnp.arange(t))
    kept = jax.vmap(lambda k: jax.random.bernoulli(k, 1.0 - rate, (b, h)))(keys)  # [T, B, H]
    return jnp.swapaxes(kept, 0, 1).astype(jnp.float32) / (1.0 - rate)


def _standardise(splits: Mapping[str, GroupedSplit]) -> dict[str, np.ndarray]:
    """Every split's x scaled by the train rows' mean and standard deviation (constant
    features keep scale 1), so channels of different magnitudes train alike."""
    train = np.asarray(splits["train"].x, np.float64)
    mean, std = train.mean(0), train.std(0)
    std = np.where(std > 0, std, 1.0)
    return {s: ((np.asarray(sp.x, np.float64) - mean) / std).astype(np.float32)
            for s, sp in splits.items()}


def _batches(index: np.ndarray, mask: np.ndarray, size: int, perm: np.ndarray):
    """Groups ``perm`` in chunks of ``size``; the last chunk filled with empty sequences."""
    for i in range(0, len(perm), size):
        sel = perm[i:i + size]
        pad = size - len(sel)
        idx = np.concatenate([index[sel], np.zeros((pad, index.shape[1]), index.dtype)])
        m = np.concatenate([mask[sel], np.zeros((pad, mask.shape[1]), bool)])
        yield sel, idx, m


# The jitted steps live at module level, keyed by a static ``spec`` = (hidden, classes,
# bidirectional, learning rate, dropout), so repeated calls with equal shapes compile once.


def _model(spec) -> ContextLSTM:
    return ContextLSTM(spec[0], spec[1], spec[2])


@functools.partial(jax.jit, static_argnames="spec")
def _init(key, x, mask, *, spec):
    return _model(spec).init(key, x, mask)["params"]


@functools.partial(jax.jit, static_argnames="spec")
def _forward(params, x, mask, *, spec):
    return _model(spec).apply({"params": params}, x, mask)


@functools.partial(jax.jit, static_argnames="spec")
def _train_step(params, opt_state, x, labels, mask, key, step, *, spec):
    """One Adam step on the mean cross-entropy over the real utterances (S004 Eq. 2)."""
    model, rate = _model(spec), spec[4]
    tx = optax.adam(spec[3])
    width = spec[0] * (2 if spec[2] else 1)

    def loss_fn(p):
        keep = None
        if rate > 0:
            keep = _dropout_keep(jax.random.fold_in(key, step), rate, (*mask.shape, width))
        logits, _ = model.apply({"params": p}, x, mask, keep)
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)  # [B, T]
        w = mask.astype(jnp.float32)
        return jnp.sum(ce * w) / jnp.maximum(jnp.sum(w), 1.0)

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss


def contextual_features(
    splits: Mapping[str, GroupedSplit],
    cfg: ContextConfig = ContextConfig(),
    seed: int = 0,
    *,
    max_len: int | None = None,
) -> tuple[dict[str, np.ndarray], dict]:
    """Trains one context LSTM (module docstring) and returns its hidden states.

    Args:
      splits: ``{split: GroupedSplit}`` with at least ``train`` and ``validation``; any other
        split (``test``) is only run forward, its labels unread.
      cfg: the LSTM's settings.
      seed: initialisation, batch order and dropout; equal seeds give equal outputs.
      max_len: pad every sequence to this length (default: the longest group over all
        splits); outputs do not depend on it.

    Returns:
      ``(features, info)``: ``{split: [N, H] float32}`` in each split's input row order, and
      ``{"best_epoch" (1-based), "val_weighted_f1" (per epoch), "groups" (per split),
      "max_group" (longest group)}``.

    Raises:
      ValueError: ``train`` or ``validation`` missing, mismatched lengths or widths, a repeated
        order within a group, or ``max_len`` shorter than the longest group.
    """
    if not {"train", "validation"} <= set(splits):
        raise ValueError(f"splits {sorted(splits)} must include 'train' and 'validation'")
    width = {np.shape(sp.x)[1] if np.ndim(sp.x) == 2 else None for sp in splits.values()}
    if len(width) != 1 or None in width:
        raise ValueError(f"every split's x must be [N, D] of one width; got "
                         f"{ {s: np.shape(sp.x) for s, sp in splits.items()} }")
    for s, sp in splits.items():
        if not len(sp.x) == len(sp.labels) == len(sp.groups) == len(sp.order):
            raise ValueError(f"split {s!r}: x, labels, groups and order differ in length")
    seqs = {s: sequences(sp.groups, sp.order) for s, sp in splits.items()}
    longest = max(m.shape[1] for _, m in seqs.values())
    t = longest if max_len is None else max_len
    if t < longest:
        raise ValueError(f"max_len={max_len} is shorter than the longest group ({longest})")
    seqs = {s: (np.pad(i, ((0, 0), (0, t - i.shape[1]))), np.pad(m, ((0, 0), (0, t - m.shape[1]))))
            for s, (i, m) in seqs.items()}
    xs = _standardise(splits)
    y = {s: np.asarray(splits[s].labels, np.int32) for s in ("train", "validation")}
    num_classes = int(max(y["train"].max(), y["validation"].max())) + 1
    names = [str(c) for c in range(num_classes)]

    spec = (cfg.hidden, num_classes, cfg.bidirectional, cfg.learning_rate, cfg.dropout)
    d, b = xs["train"].shape[1], cfg.batch_size
    init_key, drop_key = jax.random.split(jax.random.PRNGKey(seed))
    # Parameter shapes do not depend on B or T: one init compile per (D, spec).
    params = _init(init_key, jnp.zeros((1, 1, d)), jnp.ones((1, 1), bool), spec=spec)
    opt_state = optax.adam(cfg.learning_rate).init(params)
    h_width = cfg.hidden * (2 if cfg.bidirectional else 1)

    def run(p, split):
        """(logits, h) of every real row of ``split``, in input row order."""
        index, mask = seqs[split]
        x = xs[split]
        n = len(x)
        logits = np.zeros((n, num_classes), np.float32)
        hidden = np.zeros((n, h_width), np.float32)
        for sel, idx, m in _batches(index, mask, b, np.arange(len(index))):
            lo, h = _forward(p, jnp.asarray(np.where(m[..., None], x[idx], 0.0)),
                             jnp.asarray(m), spec=spec)
            keep = m[: len(sel)]
            logits[idx[: len(sel)][keep]] = np.asarray(lo)[: len(sel)][keep]
            hidden[idx[: len(sel)][keep]] = np.asarray(h)[: len(sel)][keep]
        return logits, hidden

    rng = np.random.default_rng(seed)
    index, mask = seqs["train"]
    history, best, best_params = [], -1.0, params
    step = 0
    for _ in range(cfg.epochs):
        for _, idx, m in _batches(index, mask, b, rng.permutation(len(index))):
            x = jnp.asarray(np.where(m[..., None], xs["train"][idx], 0.0))
            labels = jnp.asarray(np.where(m, y["train"][idx], 0))
            params, opt_state, _ = _train_step(params, opt_state, x, labels, jnp.asarray(m),
                                               drop_key, step, spec=spec)
            step += 1
        logits, _ = run(params, "validation")
        f1 = classification_metrics(y["validation"], logits.argmax(-1), names)["weighted_f1"]
        history.append(float(f1))
        if f1 > best:  # ties keep the earlier epoch
            best, best_params = f1, jax.device_get(params)
    features = {s: run(best_params, s)[1] for s in splits}
    info = {"best_epoch": int(np.argmax(history)) + 1, "val_weighted_f1": history,
            "groups": {s: int(len(seqs[s][0])) for s in splits}, "max_group": int(longest)}
    return features, info
