"""DynamicConv layer and the "dynconv_gate" fusion: reference match, masks, kernel path vs XLA."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from mmer_jax.models import build_model
from mmer_jax.models.dynconv import DynamicConv
from mmer_jax.models.fusion.dynconv_gate import DynConvGateFusion
from mmer_jax.registry import FUSIONS

IMPLS = ("xla", "interpret")
B, T, C, H, K = 2, 7, 8, 2, 3


def einsum_dynamic_conv(params, x, mask, *, heads, taps, padding="centered"):
    """The layer by hand: logits Dense, softmax over taps, windowed einsum, out Dense."""
    b, t, c = x.shape
    x = np.where(mask[..., None], x, 0.0)
    logits = x @ params["weight"]["kernel"] + params["weight"]["bias"]
    w = jax.nn.softmax(jnp.asarray(logits.reshape(b, t, heads, taps)), axis=-1)  # [B, T, H, K]
    off = (taps - 1) // 2 if padding == "centered" else taps - 1
    idx = np.arange(t)[:, None] - off + np.arange(taps)[None, :]  # [T, K] source positions
    inside = (idx >= 0) & (idx < t)
    win = np.where(inside[None, :, :, None], x[:, np.clip(idx, 0, t - 1)], 0.0)  # [B, T, K, C]
    win = win.reshape(b, t, taps, heads, c // heads)
    y = jnp.einsum("btkhr,bthk->bthr", win, w).reshape(b, t, c)
    y = y @ params["out"]["kernel"] + params["out"]["bias"]
    return np.where(mask[..., None], y, 0.0)


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(B, T, C)).astype(np.float32)
    mask = np.ones((B, T), bool)
    mask[0, 5:] = False
    mask[1, :2] = False  # a hole at the front too
    return x, mask


@pytest.mark.parametrize("padding", ["centered", "causal"])
@pytest.mark.parametrize("impl", IMPLS)
def test_dynamic_conv_matches_einsum(impl, padding):
    x, mask = _inputs()
    layer = DynamicConv(features=6, num_heads=H, kernel_size=K, padding=padding,
                        implementation=impl)
    params = layer.init(jax.random.PRNGKey(0), x, mask)["params"]
    got = layer.apply({"params": params}, x, mask)
    want = einsum_dynamic_conv(jax.tree.map(np.asarray, params), x, mask, heads=H, taps=K,
                               padding=padding)
    assert got.shape == (B, T, 6)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("impl", IMPLS)
def test_dynamic_conv_padding_irrelevant(impl):
    x, mask = _inputs(1)
    layer = DynamicConv(num_heads=H, kernel_size=K, implementation=impl)
    params = layer.init(jax.random.PRNGKey(1), x, mask)
    y = layer.apply(params, x, mask)
    x2 = np.where(mask[..., None], x, 1e3 * np.random.default_rng(2).normal(size=x.shape))
    y2 = layer.apply(params, x2.astype(np.float32), mask)
    np.testing.assert_allclose(np.asarray(y2), np.asarray(y), rtol=1e-6, atol=1e-6)
    assert not np.asarray(y)[~mask].any()  # padded rows are exactly zero


def test_unknown_impl_raises():
    x, mask = _inputs()
    with pytest.raises(ValueError, match="implementation='cuda'"):
        DynamicConv(implementation="cuda").init(jax.random.PRNGKey(0), x, mask)


def _tiny_model_and_batch(impl):
    """The quickstart model with fusion "dynconv_gate" running on ``impl``, all from config."""
    cfg = ml_collections.ConfigDict(dict(
        name="quickstart",
        modalities=["audio", "text"],
        encoders=dict(
            audio=dict(name="resnet2d", depth=(1,), width=8, norm="group", stem_stride=2,
                       stem_pool=False),
            text=dict(name="bilstm", embed_dim=8, hidden=8),
        ),
        fusion="dynconv_gate",
        fusion_options=dict(width=8, num_heads=2, implementation=impl),
        head_hidden=8, dropout=0.0,
    ))
    model = build_model(cfg, num_classes=4, vocab_size=20)
    rng = np.random.default_rng(0)
    audio_mask = np.arange(12)[None] < np.array([[12], [7]])
    tokens_mask = np.arange(5)[None] < np.array([[5], [3]])
    batch = {
        "audio": rng.normal(size=(2, 12, 8)).astype(np.float32),
        "audio_mask": audio_mask,
        "tokens": np.where(tokens_mask, rng.integers(1, 20, size=(2, 5)), 0).astype(np.int32),
        "tokens_mask": tokens_mask,
        "label": np.array([1, 3], np.int32),
    }
    return model, batch


def _logits_loss_grads(model, batch, params):
    """Jitted (one compile per path): logits, cross-entropy and its gradient w.r.t. params."""

    def loss(params):
        logits, _ = model.apply({"params": params}, batch, train=False)
        logp = jax.nn.log_softmax(logits)
        return -jnp.take_along_axis(logp, batch["label"][:, None], axis=1).mean(), logits

    (value, logits), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(params)
    return logits, value, grads


def test_multimodal_kernel_path_matches_xla():
    model_x, batch = _tiny_model_and_batch("xla")
    variables = jax.jit(functools.partial(model_x.init, train=False))(jax.random.PRNGKey(0), batch)
    assert set(variables) == {"params"}  # group norm: no batch_stats
    params = variables["params"]
    logits_x, loss_x, grads_x = _logits_loss_grads(model_x, batch, params)
    # Same parameters through the Pallas kernel (interpret mode): impl adds no parameters.
    model_i, _ = _tiny_model_and_batch("interpret")
    logits_i, loss_i, grads_i = _logits_loss_grads(model_i, batch, params)
    assert logits_x.shape == (2, 4)
    np.testing.assert_allclose(np.asarray(logits_i), np.asarray(logits_x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(float(loss_i), float(loss_x), rtol=1e-5, atol=1e-6)
    # jax.grad works on both paths (custom_vjp on the kernel path), reaches the encoders, agrees.
    for grads in (grads_x, grads_i):
        assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))
        assert np.abs(np.asarray(grads["fusion"]["dynconv"]["weight"]["kernel"])).sum() > 0
        assert np.abs(np.asarray(grads["enc_text"]["embed"]["embedding"])).sum() > 0
    jax.tree.map(lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b),
                                                         rtol=1e-4, atol=1e-5),
                 grads_i, grads_x)


def test_fusion_default_is_registered():
    assert FUSIONS["dynconv_gate"] is DynConvGateFusion
    feats = {"text": jnp.ones((3, 5)), "audio": jnp.zeros((3, 7))}
    fusion = DynConvGateFusion(width=8, num_heads=2)
    out, _ = fusion.init_with_output(jax.random.PRNGKey(0), feats, train=False)
    assert out.shape == (3, 8)
