"""Shared layers: ``on_subsequence`` runs a sequence layer over the selected steps only."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from mmer_jax.models.layers import on_subsequence


def _cumsum(xs, mask):
    return jnp.cumsum(jnp.where(mask[..., None], xs, 0.0), axis=1)


def test_on_subsequence_runs_selected_steps_in_order_and_puts_outputs_back():
    x = jnp.arange(1.0, 6.0)[None, :, None] * jnp.array([1.0, 10.0])  # [1, 5, 2]: 1..5, 10..50
    sel = jnp.array([[True, False, True, False, True]])
    y = np.asarray(on_subsequence(_cumsum, x, sel))
    # Steps 1, 3, 5 are a sequence of their own: running sums 1, 1+3, 1+3+5 at their positions.
    np.testing.assert_allclose(y[0, :, 0], [1, 0, 4, 0, 9])
    np.testing.assert_allclose(y[0, :, 1], [10, 0, 40, 0, 90])


def test_on_subsequence_rows_and_empty_selection():
    x = jnp.ones((2, 4, 1))
    sel = jnp.array([[False, True, True, False], [False, False, False, False]])
    y = np.asarray(on_subsequence(_cumsum, x, sel))[..., 0]
    np.testing.assert_allclose(y, [[0, 1, 2, 0], [0, 0, 0, 0]])
