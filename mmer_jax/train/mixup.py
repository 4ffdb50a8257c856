"""Mixup (Zhang et al. 2018) inside the train step: ``train.mixup_alpha > 0``.

Each training batch is mixed with a random permutation of itself, in feature space (after the
on-device features, before the model): ``x' = lam x + (1 - lam) x[p]`` with one
``lam ~ Beta(alpha, alpha)`` per step, and the loss is the cross-entropy against the same mixture
of the two rows' (optionally smoothed) one-hot targets, i.e. ``lam xent(y) + (1 - lam) xent(y[p])``.
A padded row (weight 0) is never drawn as a partner: such a draw keeps the row unmixed. Masks are
joined (a frame valid in either row is valid); padded frames are zero after per-utterance
normalisation, so a shorter partner contributes nothing past its end. Evaluation never mixes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# Keys of the model batch that pass through unmixed (targets and per-row bookkeeping).
_PASS = ("label", "weight", "score")


def mix_inputs(inputs: dict, rng: jax.Array, alpha: float) -> tuple[dict, dict]:
    """Mixes an utterance model batch with a permutation of itself.

    Args:
      inputs: the model batch (:func:`mmer_jax.data.device.prepare`): float features such as
        ``audio`` [B, T, F] or ``frames`` [B, Tv, H, W, 3] are mixed, boolean ``*_mask`` [B, ...]
        are joined, ``label`` [B] int and ``weight`` [B] float pass through.
      rng: PRNG key of this step's mixing.
      alpha: the Beta distribution's parameter, > 0.

    Returns:
      ``(mixed, mix)``: the mixed batch (same keys, shapes and dtypes) and ``{"partner": [B]
      int32 row index, "lam": float32 scalar in [0, 1]}`` for :func:`mixed_xent`.

    Raises:
      ValueError: ``alpha`` <= 0; a dialogue batch (``utt_mask``) or token ids (``tokens``),
        which cannot be mixed.
    """
    if alpha <= 0:
        raise ValueError(f"mixup alpha={alpha} must be > 0")
    if "utt_mask" in inputs or "tokens" in inputs:
        raise ValueError("train.mixup_alpha > 0 mixes utterance batches of continuous features; "
                         "this batch has dialogue rows or token ids")
    k_lam, k_perm = jax.random.split(rng)
    lam = jax.random.beta(k_lam, alpha, alpha).astype(jnp.float32)
    weight = inputs["weight"]
    b = weight.shape[0]
    own = jnp.arange(b, dtype=jnp.int32)
    perm = jax.random.permutation(k_perm, b).astype(jnp.int32)
    partner = jnp.where(weight[perm] > 0, perm, own)
    out = {}
    for key, x in inputs.items():
        if key in _PASS:
            out[key] = x
        elif x.dtype == jnp.bool_:
            out[key] = x | x[partner]
        elif jnp.issubdtype(x.dtype, jnp.floating):
            out[key] = (lam * x + (1.0 - lam) * x[partner]).astype(x.dtype)
        else:
            out[key] = x
    return out, {"partner": partner, "lam": lam}


def mixed_xent(logits: jnp.ndarray, labels: jnp.ndarray, weight: jnp.ndarray, mix: dict,
               label_smoothing: float = 0.0) -> jnp.ndarray:
    """Weighted mean cross-entropy against mixed targets.

    Args:
      logits: [B, K] scores (cast to float32).
      labels: [B] int class ids of the unmixed rows.
      weight: [B] float, 1 for real rows and 0 for padding.
      mix: ``{"partner": [B] int, "lam": scalar}`` from :func:`mix_inputs`.
      label_smoothing: mass in [0, 1) spread uniformly over the K classes (of both targets).

    Returns:
      A float32 scalar: sum(weight * xent(lam onehot(y) + (1 - lam) onehot(y[p])))
      / max(sum(weight), 1); with ``lam = 1`` exactly the plain weighted cross-entropy.
    """
    logits = logits.astype(jnp.float32)
    n = logits.shape[-1]
    lam = mix["lam"]
    target = lam * jax.nn.one_hot(labels, n) + (1.0 - lam) * jax.nn.one_hot(
        labels[mix["partner"]], n
    )
    if label_smoothing:
        target = target * (1 - label_smoothing) + label_smoothing / n
    per = -jnp.sum(target * jax.nn.log_softmax(logits), axis=-1)
    return jnp.sum(per * weight) / jnp.maximum(jnp.sum(weight), 1.0)
