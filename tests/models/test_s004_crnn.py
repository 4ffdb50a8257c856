"""S004's speech CNN-LSTM (``s004_speech``) and the survey's CRNN-MA (``crnn_ma``) at tiny sizes:
build, forward + backward, overfit 8 examples, invariance to padding; the recurrent dropout
against a hand-written reference with one mask per sequence; the feature x frame attention."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mmer_jax.errors import UsageError
from mmer_jax.models import build_model
from mmer_jax.models.encoders.cnn_lstm_speech import RecurrentDropoutLSTM
from mmer_jax.models.encoders.crnn_ma import multidim_attention_weights

from .jax_test_util import key

C = 4
TINY = {
    "s004_speech": dict(audio=dict(filters=4, hidden=16)),
    "crnn_ma": dict(audio=dict(channels=(4,), cnn_dim=16, num_heads=2, attn_pool_hidden=8,
                               lstm_hidden=16, md_hidden=8, fusion_dim=16, dropout=0.1,
                               num_self_attention=1)),
}
TINY["crnn_ma_before"] = {"audio": {**TINY["crnn_ma"]["audio"], "md_attention": "before"}}


def build(name: str, num_classes: int = C):
    section = {"name": name.replace("_before", ""), **TINY[name]}
    return build_model(section, num_classes=num_classes, vocab_size=0)


def batch(seed: int = 0, b: int = 8, t: int = 20, f: int = 8):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, t + 1, size=b)
    lengths[0] = t  # one full row
    mask = np.arange(t) < lengths[:, None]
    return {
        "audio": np.where(mask[..., None], rng.normal(size=(b, t, f)), 0.0).astype(np.float32),
        "audio_mask": mask,
        "label": rng.integers(0, C, size=b).astype(np.int32),
    }



def init(model, x):
    rngs = {"params": key(0), "dropout": key(1)}
    return jax.jit(lambda r, b: model.init(r, b, train=False))(rngs, x)


def _ignores_padding(predict, variables, x, logits):
    """Noise in the padded frames, or 7 more padded frames, changes no output."""
    rng = np.random.default_rng(5)
    noisy = dict(x, audio=np.where(x["audio_mask"][..., None], x["audio"],
                                   rng.normal(scale=5.0, size=x["audio"].shape)).astype(np.float32))
    np.testing.assert_allclose(predict(variables, noisy)[0], logits, atol=1e-5)
    longer = {"audio": np.pad(noisy["audio"], ((0, 0), (0, 7), (0, 0)), constant_values=3.0),
              "audio_mask": np.pad(x["audio_mask"], ((0, 0), (0, 7))), "label": x["label"]}
    np.testing.assert_allclose(predict(variables, longer)[0], logits, atol=1e-5)


@pytest.mark.slow  # long for the default run; `pytest -m slow` runs it
def test_crnn_ma_attention_before_the_lstm_ignores_padding():
    model = build("crnn_ma_before")
    x = batch(3)
    variables = init(model, x)
    predict = jax.jit(lambda v, b: model.apply(v, b, train=False))
    logits, _ = predict(variables, x)
    assert logits.shape == (8, C) and np.all(np.isfinite(np.asarray(logits)))
    _ignores_padding(predict, variables, x, logits)


@pytest.mark.parametrize("name", ["s004_speech", "crnn_ma"])
def test_builds_trains_overfits_and_ignores_padding(name):
    model = build(name)
    x = batch()
    variables = init(model, x)
    predict = jax.jit(lambda v, b: model.apply(v, b, train=False))
    logits, aux = predict(variables, x)
    assert logits.shape == (8, C) and aux["feat_audio"].ndim == 2
    assert np.all(np.isfinite(np.asarray(logits)))
    _ignores_padding(predict, variables, x, logits)

    # Forward + backward; then 8 random examples are fitted.
    tx = optax.adam(1e-2)
    params, stats = variables["params"], variables.get("batch_stats", {})
    opt = tx.init(params)

    @jax.jit
    def step(params, stats, opt, b, rng):
        def loss_fn(p):
            v = {"params": p, **({"batch_stats": stats} if stats else {})}
            (out, _), new = model.apply(v, b, train=True, rngs={"dropout": rng},
                                        mutable=["batch_stats"])
            loss = optax.softmax_cross_entropy_with_integer_labels(out, b["label"]).mean()
            return loss, new.get("batch_stats", stats)

        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt = tx.update(grads, opt, params)
        return optax.apply_updates(params, updates), stats, opt, loss, optax.global_norm(grads)

    losses, acc = [], 0.0
    for i in range(150):
        params, stats, opt, loss, gnorm = step(params, stats, opt, x, key(10 + i))
        assert np.isfinite(float(gnorm)) and (i > 0 or float(gnorm) > 0)
        losses.append(float(loss))
        if i % 10 == 9:
            v = {"params": params, **({"batch_stats": stats} if stats else {})}
            acc = float(np.mean(np.argmax(predict(v, x)[0], -1) == x["label"]))
            if acc == 1.0:
                break
    assert np.mean(losses[-3:]) < losses[0]
    assert acc == 1.0, f"{name}: train accuracy {acc:.2f} after {len(losses)} steps"


def test_regression_head_has_one_output():
    model = build("s004_speech", num_classes=1)
    x = batch(1)
    out, _ = model.apply(init(model, x), x, train=False)
    assert out.shape == (8, 1)


def _reference_lstm(params, x, mask, keep):
    """numpy LSTM: gates i, f, g, o; h_{t-1} * keep (one mask for all steps) before the recurrent
    matrix; padded steps keep the state."""
    w, u, bias = (np.asarray(params[k], np.float64) for k in ("kernel", "recurrent_kernel", "bias"))
    b, t, _ = x.shape
    n = u.shape[0]
    c = np.zeros((b, n))
    h = np.zeros((b, n))
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    for s in range(t):
        z = x[:, s] @ w + bias + (h * keep) @ u
        i, f, g, o = np.split(z, 4, axis=-1)
        c2 = sig(f) * c + sig(i) * np.tanh(g)
        h2 = sig(o) * np.tanh(c2)
        m = mask[:, s, None]
        c, h = np.where(m, c2, c), np.where(m, h2, h)
    return h


def test_recurrent_dropout_is_one_mask_per_sequence():
    p, hidden = 0.5, 6
    x = batch(2, b=4, t=9, f=5)
    lstm = RecurrentDropoutLSTM(hidden, p)
    params = lstm.init({"params": key(0)}, x["audio"], x["audio_mask"], train=False)["params"]
    assert float(params["bias"][hidden]) == 1.0 and float(params["bias"][0]) == 0.0  # forget 1
    rng = jax.random.key(7)
    _, h_train = lstm.apply({"params": params}, x["audio"], x["audio_mask"], train=True,
                            rngs={"dropout": rng})
    _, h_eval = lstm.apply({"params": params}, x["audio"], x["audio_mask"], train=False)
    # The module draws its mask from the "dropout" stream once; redraw it the same way.
    mask_rng = lstm.apply({"params": params}, method=lambda m: m.make_rng("dropout"),
                          rngs={"dropout": rng})
    keep = np.asarray(jax.random.bernoulli(mask_rng, 1 - p, (4, hidden)), np.float64) / (1 - p)
    assert 0 < keep.astype(bool).sum() < keep.size  # some units dropped, some kept
    np.testing.assert_allclose(
        h_train, _reference_lstm(params, x["audio"], x["audio_mask"], keep), atol=1e-5)
    np.testing.assert_allclose(
        h_eval, _reference_lstm(params, x["audio"], x["audio_mask"], np.ones((4, hidden))),
        atol=1e-5)
    assert not np.allclose(h_train, h_eval)


def test_multidim_attention_weights():
    scores = jnp.asarray(np.random.default_rng(0).normal(size=(2, 5, 3)), jnp.float32)
    mask = jnp.asarray(np.arange(5) < np.array([[5], [2]]))
    w = np.asarray(multidim_attention_weights(scores, mask))
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-6)  # per example and feature
    assert np.all(w[1, 2:] == 0.0)
    # Each feature has its own softmax over the valid frames.
    np.testing.assert_allclose(w[1, :2, 0], np.asarray(jax.nn.softmax(scores[1, :2, 0])),
                               atol=1e-6)
    empty = multidim_attention_weights(scores, jnp.zeros((2, 5), bool))
    assert np.all(np.asarray(empty) == 0.0)


@pytest.mark.parametrize("section, message", [
    ({"name": "s004_speech", "audio": {"recurrent_dropout": 1.0}}, "recurrent_dropout=1.0"),
    ({"name": "s004_speech", "modalities": ["text"]}, "must be \\('audio',\\)"),
    ({"name": "crnn_ma", "audio": {"md_attention": "middle"}}, "md_attention='middle'"),
    ({"name": "crnn_ma", "audio": {"cnn_dim": 10, "num_heads": 4}}, "cnn_dim=10"),
])
def test_bad_settings_are_named(section, message):
    with pytest.raises(UsageError, match=message):
        build_model(section, num_classes=C, vocab_size=0)
