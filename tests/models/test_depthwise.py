"""The shifted depthwise conv equals XLA's grouped conv, values and gradients."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmer_jax.models.depthwise import DepthwiseConv, depthwise_conv2d


def _grouped(x, w, stride):
    return jax.lax.conv_general_dilated(
        x, w, (stride, stride), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=x.shape[-1],
    )


# One jitted program per shape: run eagerly, the two convolutions and their gradients compile
# dozens of one-op programs each.
@functools.partial(jax.jit, static_argnums=2)
def _values_and_grads(x, w, stride, probe):
    ga = jax.grad(lambda x, w: jnp.sum(depthwise_conv2d(x, w, stride) * probe), (0, 1))(x, w)
    gb = jax.grad(lambda x, w: jnp.sum(_grouped(x, w, stride) * probe), (0, 1))(x, w)
    return depthwise_conv2d(x, w, stride), _grouped(x, w, stride), ga, gb


@pytest.mark.parametrize("hw,k,stride", [((8, 8), 3, 1), ((8, 8), 3, 2), ((7, 9), 3, 2),
                                         ((6, 5), 5, 1), ((9, 9), 5, 3)])
def test_matches_grouped_conv(hw, k, stride):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((2, *hw, 4)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((k, k, 1, 4)), jnp.float32)
    out_shape = jax.eval_shape(lambda x, w: _grouped(x, w, stride), x, w).shape
    probe = jnp.asarray(rng.standard_normal(out_shape), jnp.float32)
    dw, grouped, ga, gb = _values_and_grads(x, w, stride, probe)
    np.testing.assert_allclose(dw, grouped, rtol=1e-5, atol=1e-5)
    for a, b in zip(ga, gb, strict=False):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_module_has_nn_conv_parameter_shape():
    x = jnp.ones((1, 6, 6, 5))
    # Shapes only: traced, not compiled.
    params = jax.eval_shape(DepthwiseConv(3, 2).init, jax.random.PRNGKey(0), x)
    assert params["params"]["kernel"].shape == (3, 3, 1, 5)
    assert jax.eval_shape(DepthwiseConv(3, 2).apply, params, x).shape == (1, 3, 3, 5)
