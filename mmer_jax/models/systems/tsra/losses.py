"""The three representation-space losses of TSRA (S000 §3.2), weighted over real rows.

The survey says only that four losses are weighted and summed; the three beside the task loss
follow the shared/private subspace reading (see :mod:`mmer_jax.models.systems.tsra`):

* :func:`similarity_loss`: the shared vectors of two modalities should follow one distribution:
  central moment discrepancy (CMD) of the two batches, or the mean squared distance per example;
* :func:`difference_loss`: the shared and private subspaces should be orthogonal: the mean
  squared cosine between every centred shared and every centred private vector of the batch;
* :func:`reconstruction_loss`: shared + private should keep the modality vector: a mean squared
  error per example.

Every function takes ``weight`` [B] (``batch["weight"]``: 0 marks a padding row) and uses only the
rows with weight > 0, so a padded last batch or a batch split over devices gives the value of its
real rows. Each returns a float32 scalar, 0 when no row is real.
"""

from __future__ import annotations

import jax.numpy as jnp

_EPS = 1e-12


def _rows(weight: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """weight [B] -> (0/1 float32 mask [B, 1], number of real rows, at least 1)."""
    w = (weight > 0).astype(jnp.float32)[:, None]
    return w, jnp.maximum(jnp.sum(w), 1.0)


def _safe_norm(x: jnp.ndarray) -> jnp.ndarray:
    """Euclidean norm of the last axis, exactly 0 at x = 0 with a finite (zero) gradient there
    (``jnp.linalg.norm`` has a NaN gradient at 0, which equal inputs would reach)."""
    return jnp.sqrt(jnp.sum(x * x, axis=-1) + _EPS) - jnp.sqrt(_EPS)


def weighted_moments(x: jnp.ndarray, weight: jnp.ndarray, order: int) -> list[jnp.ndarray]:
    """Mean and central moments 2..``order`` of x [B, D] over the real rows, each [D] float32."""
    w, n = _rows(weight)
    x = x.astype(jnp.float32)
    mean = jnp.sum(x * w, axis=0) / n
    centred = (x - mean) * w
    return [mean] + [jnp.sum(centred**k, axis=0) / n for k in range(2, order + 1)]


def cmd(x: jnp.ndarray, y: jnp.ndarray, weight: jnp.ndarray, order: int = 5) -> jnp.ndarray:
    """Central moment discrepancy between batches x, y [B, D] (rows paired only by the mask):
    ||mean_x - mean_y|| + sum_{k=2..order} ||c_k(x) - c_k(y)||, moments over the real rows.

    The inputs are assumed bounded in [0, 1] (sigmoid outputs), so no range factor is applied.

    Raises:
      ValueError: ``order`` < 1 or the shapes differ.
    """
    if order < 1:
        raise ValueError(f"{order=} must be >= 1")
    if x.shape != y.shape:
        raise ValueError(f"x.shape={x.shape} and y.shape={y.shape} must match")
    mx, my = weighted_moments(x, weight, order), weighted_moments(y, weight, order)
    return sum((_safe_norm(a - b) for a, b in zip(mx, my, strict=True)), jnp.float32(0.0))


def similarity_loss(shared: list[jnp.ndarray], weight: jnp.ndarray, kind: str = "cmd",
                    order: int = 5) -> jnp.ndarray:
    """Mean over modality pairs of the distance between their shared vectors.

    Args:
      shared: one [B, D] array per modality (at least two).
      weight: [B] float, > 0 for real rows.
      kind: "cmd" (:func:`cmd`, distributions of the two batches) or "mse" (per example: mean
        over real rows of the mean squared difference of the two vectors).
      order: the highest moment of CMD.

    Returns:
      float32 scalar, 0 when every shared vector is equal across modalities.

    Raises:
      ValueError: fewer than two modalities or an unknown ``kind``.
    """
    if len(shared) < 2:
        raise ValueError(f"similarity needs two modalities or more, got {len(shared)}")
    if kind not in ("cmd", "mse"):
        raise ValueError(f"{kind=} must be 'cmd' or 'mse'")
    w, n = _rows(weight)
    total, pairs = jnp.float32(0.0), 0
    for i in range(len(shared)):
        for j in range(i + 1, len(shared)):
            a, b = shared[i].astype(jnp.float32), shared[j].astype(jnp.float32)
            if kind == "cmd":
                total = total + cmd(a, b, weight, order)
            else:
                total = total + jnp.sum(jnp.mean((a - b) ** 2, axis=-1) * w[:, 0]) / n
            pairs += 1
    return total / pairs


def orthogonality(x: jnp.ndarray, y: jnp.ndarray, weight: jnp.ndarray) -> jnp.ndarray:
    """Soft orthogonality of two batches x, y [B, D]: the mean over every pair of real rows (i, j)
    of cos^2(x_i - mean_x, y_j - mean_y), means over the real rows; in [0, 1], and 0 exactly when
    the centred x vectors span a subspace of R^D orthogonal to the one the centred y vectors span.

    Deviation from the Frobenius form ||X^T Y||^2 of domain separation networks (and MISA): that
    one compares feature columns across the batch, which vanishes for uncorrelated features but
    not for vectors in orthogonal subspaces; here the vectors themselves are compared.
    """
    w, n = _rows(weight)

    def prep(z):
        z = z.astype(jnp.float32)
        z = (z - jnp.sum(z * w, axis=0) / n) * w  # padding rows become 0 and drop out
        return z / jnp.sqrt(jnp.sum(z * z, axis=-1, keepdims=True) + _EPS)

    cos = prep(x) @ prep(y).T  # [B, B]
    return jnp.sum(cos * cos) / (n * n)


def difference_loss(shared: list[jnp.ndarray], private: list[jnp.ndarray],
                    weight: jnp.ndarray) -> jnp.ndarray:
    """Mean of :func:`orthogonality` over the pairs (shared_m, private_m) of every modality and
    (private_a, private_b) of every two modalities.

    Args:
      shared, private: one [B, D] array per modality each, in the same order.
      weight: [B] float, > 0 for real rows.

    Raises:
      ValueError: the two lists differ in length or are empty.
    """
    if not shared or len(shared) != len(private):
        raise ValueError(f"{len(shared)} shared and {len(private)} private vectors: need one "
                         f"of each per modality")
    terms = [orthogonality(s, p, weight) for s, p in zip(shared, private, strict=True)]
    terms += [orthogonality(private[i], private[j], weight)
              for i in range(len(private)) for j in range(i + 1, len(private))]
    return sum(terms, jnp.float32(0.0)) / len(terms)


def reconstruction_loss(recon: list[jnp.ndarray], target: list[jnp.ndarray],
                        weight: jnp.ndarray) -> jnp.ndarray:
    """Mean over modalities of the mean over real rows of the mean squared error [B, D] -> scalar.

    Raises:
      ValueError: the two lists differ in length or are empty.
    """
    if not recon or len(recon) != len(target):
        raise ValueError(f"{len(recon)} reconstructions for {len(target)} targets")
    w, n = _rows(weight)
    per = [jnp.sum(jnp.mean((r.astype(jnp.float32) - t.astype(jnp.float32)) ** 2, axis=-1)
                   * w[:, 0]) / n for r, t in zip(recon, target, strict=True)]
    return sum(per, jnp.float32(0.0)) / len(per)
