"""The single-stream face systems at tiny sizes: the survey's VGG16 (``vgg16_face``) and S004's
Inception-ResNet-v2 (``s004_face``) build, run forward and backward, fit 8 examples and ignore
padded frames; VGG16 has the paper's size at 224 x 224 and skips pools once a map is 1 x 1."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mmer_jax.errors import UsageError
from mmer_jax.models import build_model
from mmer_jax.models.encoders.inception_resnet_v2 import TAPS
from mmer_jax.models.encoders.vgg16 import VGG16, VGG16Config, _pool_to_grid

from .jax_test_util import key

C = 4
TINY = {
    # 4 ... 32 channels, FC 16: 8 x 8 inputs reach 1 x 1 after three pools, the last two skip.
    "vgg16_face": dict(face=dict(width=1 / 16, fc_dims=(16, 16), dropout=0.1, batch_norm=True)),
    # One Inception-ResNet-C block only: the -A and -B blocks compile for long and are covered
    # by tests/models/test_inception_resnet_v2.py; the overfit test (slow) has one of each.
    "s004_face": dict(face=dict(width=1 / 16, blocks=(0, 0, 1), padding="SAME", dropout=0.1)),
}



def build(name: str, num_classes: int = C, stream: str = "face", dropout_free: bool = False):
    section = {"name": name, "modalities": [stream], **TINY[name]}
    if dropout_free:
        section["face"] = {**section["face"], "dropout": 0.0}
        if name == "s004_face":
            section["face"]["blocks"] = (1, 1, 1)
    return build_model(section, num_classes=num_classes, vocab_size=0)


def batch(seed: int = 0, b: int = 8, t: int = 3, s: int = 8, stream: str = "face"):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, t + 1, size=b)
    lengths[0] = t
    mask = np.arange(t) < lengths[:, None]
    x = np.where(mask[:, :, None, None, None], rng.uniform(size=(b, t, s, s, 3)), 0.0)
    return {stream: x.astype(np.float32), f"{stream}_mask": mask,
            "label": rng.integers(0, C, size=b).astype(np.int32)}


def init(model, x):
    return jax.jit(lambda b: model.init({"params": key(0), "dropout": key(1)}, b, train=False))(x)


def test_vgg16_has_the_papers_size_at_224():
    net = VGG16()
    x = jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32)
    out, variables = jax.eval_shape(lambda x: net.init_with_output(
        {"params": key(0), "dropout": key(1)}, x, train=False), x)
    assert out.shape == (1, 4096)
    # VGG16's 138,357,544 parameters less its 1000-way classifier (4096 x 1000 + 1000).
    assert sum(int(np.prod(a.shape)) for a in jax.tree.leaves(variables)) == 134_260_544
    assert variables["params"]["fc6"]["kernel"].shape == (7 * 7 * 512, 4096)


def test_pool_to_grid_averages_windows_and_names_bad_sizes():
    y = jnp.arange(2 * 14 * 14 * 3, dtype=jnp.float32).reshape(2, 14, 14, 3)
    got = _pool_to_grid(y, 7)
    assert got.shape == (2, 7, 7, 3)
    np.testing.assert_allclose(got[1, 2, 3], y[1, 4:6, 6:8].mean(axis=(0, 1)))
    assert _pool_to_grid(y[:, :5, :5], 7).shape == (2, 5, 5, 3)  # smaller than the grid: kept
    with pytest.raises(ValueError, match="10x10 cannot be averaged to 7x7"):
        _pool_to_grid(y[:, :10, :10], 7)


def _with_padding(x, stream, extra=0, fill=None):
    """x with noise in its padded frames (and ``extra`` more padded frames of ``fill``)."""
    mask = x[f"{stream}_mask"]
    pad = np.random.default_rng(5).normal(scale=3.0, size=x[stream].shape)
    frames = np.where(mask[:, :, None, None, None], x[stream], pad).astype(np.float32)
    widths = ((0, 0), (0, extra), (0, 0), (0, 0), (0, 0))
    return dict(x, **{stream: np.pad(frames, widths, constant_values=fill or 0.0),
                      f"{stream}_mask": np.pad(mask, ((0, 0), (0, extra)))})


def _train_step(model, tx):
    @jax.jit
    def step(params, stats, opt, x, rng):
        def loss_fn(p):
            (out, _), new = model.apply({"params": p, "batch_stats": stats}, x, train=True,
                                        rngs={"dropout": rng}, mutable=["batch_stats"])
            return optax.softmax_cross_entropy_with_integer_labels(out, x["label"]).mean(), new
        (loss, new), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt = tx.update(grads, opt, params)
        return (optax.apply_updates(params, updates), new["batch_stats"], opt, loss,
                optax.global_norm(grads))
    return step


# S004's face branch (15 s of compilation) with -m slow; its parts stay fast in test_s004_crnn.
@pytest.mark.parametrize("name, stream", [
    ("vgg16_face", "face"), pytest.param("s004_face", "frames", marks=pytest.mark.slow)])
def test_forward_backward_and_padding_frames_change_nothing(name, stream):
    model = build(name, stream=stream)
    x = batch(stream=stream)
    variables = init(model, x)
    predict = jax.jit(lambda v, b: model.apply(v, b, train=False))
    logits, aux = predict(variables, x)
    assert logits.shape == (8, C) and np.all(np.isfinite(np.asarray(logits)))
    assert aux[f"feat_{stream}"].shape[0] == 8
    if name == "s004_face":  # every tap is exported; the head reads face.tap (fc)
        assert {f"tap_{t}" for t in TAPS} <= set(aux)
        np.testing.assert_allclose(aux[f"feat_{stream}"], aux["tap_fc"])
        np.testing.assert_allclose(aux["tap_dropout"], aux["tap_avgpool"])  # eval: identity
    # Noise in padded frames, or 2 more padded frames, changes no output.
    np.testing.assert_allclose(predict(variables, _with_padding(x, stream))[0], logits, atol=1e-5)
    longer = _with_padding(x, stream, extra=2, fill=2.0)
    np.testing.assert_allclose(predict(variables, longer)[0], logits, atol=1e-5)
    # Backward, in training mode: BatchNorm statistics come from valid frames only, so the
    # padded frames change neither the loss nor the new statistics.
    tx = optax.sgd(0.0)
    step = _train_step(model, tx)
    args = (variables["params"], variables["batch_stats"], tx.init(variables["params"]))
    _, stats, _, loss, gnorm = step(*args, x, key(3))
    _, stats_noisy, _, loss_noisy, _ = step(*args, _with_padding(x, stream), key(3))
    assert np.isfinite(float(gnorm)) and float(gnorm) > 0
    np.testing.assert_allclose(loss_noisy, loss, atol=1e-5)
    for a, b in zip(jax.tree.leaves(stats_noisy), jax.tree.leaves(stats), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def _predict_with_batch_statistics(model, x):
    """Logits with BatchNorm normalising by the batch's own statistics (dropout off)."""
    def predict(params, stats):
        (out, _), _ = model.apply({"params": params, "batch_stats": stats}, x, train=True,
                                  rngs={"dropout": key(0)}, mutable=["batch_stats"])
        return out
    return jax.jit(predict)


@pytest.mark.parametrize("name, size, lr", [
    ("vgg16_face", 8, 1e-2),
    # IRv2's BatchNorm momentum is 0.99: after 200 steps its running averages still hold 13 % of
    # their initial (0, 1), so the fit is judged with batch statistics. ~1 min to compile and fit.
    pytest.param("s004_face", 16, 3e-3, marks=pytest.mark.slow),
])
def test_overfits_eight_examples(name, size, lr):
    model = build(name, dropout_free=name == "s004_face")
    x = batch(3, s=size)
    variables = init(model, x)
    tx = optax.adam(lr)
    step = _train_step(model, tx)
    params, stats, opt = variables["params"], variables["batch_stats"], tx.init(variables["params"])
    if name == "s004_face":
        predict = _predict_with_batch_statistics(model, x)
    else:
        predict = jax.jit(lambda p, s: model.apply({"params": p, "batch_stats": s}, x,
                                                   train=False)[0])
    losses, acc = [], 0.0
    for i in range(200):
        params, stats, opt, loss, _ = step(params, stats, opt, x, key(10 + i))
        losses.append(float(loss))
        if i % 10 == 9:
            acc = float(np.mean(np.argmax(predict(params, stats), -1) == x["label"]))
            if acc == 1.0:
                break
    assert np.mean(losses[-3:]) < losses[0]
    assert acc == 1.0, f"{name}: train accuracy {acc:.2f} after {len(losses)} steps"


def test_regression_head_has_one_output():
    model = build("vgg16_face", num_classes=1)
    x = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), batch(2))
    out, _ = jax.eval_shape(lambda b: model.init_with_output(
        {"params": key(0), "dropout": key(1)}, b, train=False)[0], x)
    assert out.shape == (8, 1)


@pytest.mark.parametrize("section, message", [
    ({"name": "vgg16_face", "modalities": ["audio"]}, "must be \\('face',\\) or \\('frames',\\)"),
    ({"name": "s004_face", "modalities": ["face", "frames"]}, "single-stream face model"),
    ({"name": "vgg16_face", "face": {"width": 0.0}}, "width=0.0 must be > 0"),
    ({"name": "vgg16_face", "face": {"fc_dims": []}}, "fc_dims=\\(\\) must be"),
    ({"name": "vgg16_face", "dropout": 1.0}, "dropout=1.0 must be in"),
    ({"name": "vgg16_face", "encoder": "nosuch"}, "encoder='nosuch'"),
    ({"name": "s004_face", "face": {"tap": "pool5"}}, "tap='pool5'"),
])
def test_bad_settings_are_named(section, message):
    with pytest.raises(UsageError, match=message):
        build_model(section, num_classes=C, vocab_size=0)


def test_default_config_is_the_paper_layout():
    cfg = VGG16Config()
    assert (cfg.width, cfg.fc_dims, cfg.fc_grid, cfg.dropout, cfg.batch_norm) == (
        1.0, (4096, 4096), 7, 0.5, False)
