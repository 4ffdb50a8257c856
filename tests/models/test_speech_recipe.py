"""The speech recipe's parts: the ``speech_cnn`` encoder (builds, trains, ignores padding, fits 8
clips), its on-device SpecAugment (masks only valid cells, within the configured widths, never in
evaluation) and mixup in the train loss (alpha 0 is the plain loss; lam 1 is the plain loss)."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mmer_jax.models.encoders.speech_cnn import (
    SpecAugmentConfig,
    SpeechCNN,
    SpeechCNNConfig,
    masked_stats,
    spec_augment,
)
from mmer_jax.models.systems.speech_recipe import SpeechRecipe, SpeechRecipeConfig
from mmer_jax.registry import ENCODERS, SYSTEMS
from mmer_jax.schema import TrainConfig
from mmer_jax.train import mixup
from mmer_jax.train.steps import make_loss_fn, weighted_xent

from .jax_test_util import key

SMALL = SpeechCNNConfig(channels=(4, 8), groups=2, embed_dim=16, attention_hidden=8)


# Compilation dominates these tests on CPU: eager init/apply compiles one tiny XLA program per op
# and shape (and eager threefry draws one per parameter shape), so the models run jitted, with
# "rbg" keys (a fraction of threefry's compile time) where the values drawn do not matter. The
# module is a static argument: equal modules share one compiled program.
@functools.partial(jax.jit, static_argnums=(0,), static_argnames=("train",))
def _init(model, batch, train=False):
    return model.init(key(0), batch, train=train)


@functools.partial(jax.jit, static_argnums=(0,), static_argnames=("train",))
def _apply(model, variables, batch, train=False, key=None):
    return model.apply(variables, batch, train=train,
                       rngs=None if key is None else {"dropout": key})


def _batch(b=4, t=40, f=16, lengths=None, seed=0):
    rng = np.random.default_rng(seed)
    lengths = np.full(b, t) if lengths is None else np.asarray(lengths)
    mask = np.arange(t)[None, :] < lengths[:, None]
    x = rng.standard_normal((b, t, f)).astype(np.float32) * mask[..., None]
    return {"audio": jnp.asarray(x), "audio_mask": jnp.asarray(mask),
            "label": jnp.asarray(rng.integers(0, 3, b), jnp.int32),
            "weight": jnp.ones((b,), jnp.float32)}


def test_registered_and_system_builds():
    assert ENCODERS.get("speech_cnn") is SpeechCNN
    system = SYSTEMS["speech_recipe"]
    model = system.build(system.config_class(), 7)
    batch = _batch(2, 101, 64)
    logits, aux = jax.jit(lambda b: model.apply(_init(model, b), b, train=False))(batch)
    assert logits.shape == (2, 7) and aux["feat_audio"].shape == (2, 128)
    assert np.all(np.isfinite(np.asarray(logits)))


# Every norm with stats pooling and attentive pooling with one norm by default (each pair compiles
# a model: 3-13 s on two cores); the other pairs with -m slow.
_SLOW = pytest.mark.slow
@pytest.mark.parametrize("norm, pooling", [
    ("layer", "stats"), ("batch", "stats"), ("none", "stats"), ("layer", "attentive"),
    pytest.param("group", "stats", marks=_SLOW), pytest.param("group", "attentive", marks=_SLOW),
    pytest.param("batch", "attentive", marks=_SLOW), pytest.param("none", "attentive", marks=_SLOW),
], ids=lambda x: x)
def test_forward_backward_finite(norm, pooling):
    cfg = SpeechRecipeConfig(audio=dataclasses.replace(SMALL, norm=norm, pooling=pooling))
    model = SpeechRecipe(cfg, 3)
    batch = _batch(4, 40, 16, lengths=[40, 25, 9, 1])

    @jax.jit  # init and gradient in one program: one compilation
    def value_and_grad(batch):
        variables = model.init(key(0), batch, train=False)

        def loss(params):
            out, _ = model.apply({**variables, "params": params}, batch, train=True,
                                 rngs={"dropout": key(1)}, mutable=["batch_stats"])
            return weighted_xent(out[0], batch["label"], batch["weight"])

        return jax.value_and_grad(loss)(variables["params"])

    value, grads = value_and_grad(batch)
    norms = [float(np.linalg.norm(np.asarray(g))) for g in jax.tree.leaves(grads)]
    assert np.isfinite(float(value)) and all(np.isfinite(norms)) and max(norms) > 0


@pytest.mark.parametrize("norm", [pytest.param("group", marks=pytest.mark.slow), "layer", "batch"])
@pytest.mark.parametrize("pooling", ["stats", "attentive", "mean"])
def test_padding_does_not_change_the_output(norm, pooling):
    cfg = dataclasses.replace(SMALL, norm=norm, pooling=pooling)
    enc = SpeechCNN(cfg)
    lengths = [37, 23]
    short = _batch(2, 37, 16, lengths=lengths)
    x_long = jnp.pad(short["audio"], ((0, 0), (0, 27), (0, 0)))
    x_long = x_long.at[:, 37:].set(5.0)  # garbage in the padded frames must not leak either
    m_long = jnp.pad(short["audio_mask"], ((0, 0), (0, 27)))
    x_one, m_one = short["audio"][1:, :23], short["audio_mask"][1:, :23]

    @jax.jit  # init and the three inputs in one program: one compilation
    def run(x, m, x_long, m_long, x_one, m_one):
        variables = enc.init(key(0), x, m, train=False)
        return [enc.apply(variables, *xm, train=False)
                for xm in ((x, m), (x_long, m_long), (x_one, m_one))]

    a, b, c = run(short["audio"], short["audio_mask"], x_long, m_long, x_one, m_one)
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
    # and one row alone equals that row in the batch (statistics are per utterance)
    if norm != "batch":
        np.testing.assert_allclose(np.asarray(a[1:]), np.asarray(c), rtol=1e-4, atol=1e-5)


def test_overfits_eight_clips():
    cfg = SpeechRecipeConfig(audio=SMALL, spec_augment=SpecAugmentConfig(0, 0, 0, 0), dropout=0.0)
    model = SpeechRecipe(cfg, 4)
    batch = _batch(8, 32, 16, seed=3)
    batch["label"] = jnp.asarray([0, 1, 2, 3, 0, 1, 2, 3], jnp.int32)
    # The threefry key of the original draw: whether 150 steps fit depends on the start.
    params = jax.jit(lambda b: model.init(jax.random.PRNGKey(0), b, train=False))(batch)["params"]
    opt = optax.adam(1e-2)
    state = opt.init(params)

    @jax.jit
    def step(params, state, key):
        def loss(p):
            logits, _ = model.apply({"params": p}, batch, train=True, rngs={"dropout": key})
            return weighted_xent(logits, batch["label"], batch["weight"])

        value, grads = jax.value_and_grad(loss)(params)
        updates, state = opt.update(grads, state)
        return optax.apply_updates(params, updates), state, value

    first = None
    for i in range(150):
        params, state, value = step(params, state, jax.random.PRNGKey(i))
        first = float(value) if first is None else first
    logits, _ = _apply(model, {"params": params}, batch)
    assert float(value) < 0.1 * first
    assert np.array_equal(np.argmax(np.asarray(logits), -1), np.asarray(batch["label"]))


def test_spec_augment_masks_only_valid_cells_within_bounds():
    cfg = SpecAugmentConfig(freq_masks=2, freq_width=4, time_masks=2, time_width=10, time_frac=0.2)
    b, t, f = 64, 60, 16
    lengths = np.random.default_rng(0).integers(5, t + 1, b)
    mask = np.arange(t)[None] < lengths[:, None]
    feats = np.where(mask[..., None], 1.0 + np.arange(f, dtype=np.float32), 0.0).astype(np.float32)
    augment = jax.jit(spec_augment, static_argnums=3)  # one program, not one per op
    out = np.asarray(augment(jax.random.PRNGKey(0), feats, mask, cfg))
    assert out.shape == (b, t, f) and out.dtype == np.float32
    hit = (out == 0) & np.asarray(mask)[..., None]
    assert np.all(out[~np.asarray(mask)] == 0)  # padding untouched (it was 0 and stays 0)
    assert np.all((out == np.asarray(feats)) | hit)  # a cell is either kept or zeroed
    # bounds: at most 2 x 4 bins and 2 x min(10, 0.2 T) frames per row
    for i in range(b):
        rows = hit[i, : lengths[i]]
        full_bins = np.all(rows, axis=0).sum() if lengths[i] else 0
        full_frames = np.all(rows, axis=1).sum()
        assert full_bins <= 8
        if full_bins < f:
            assert full_frames <= 2 * min(10, int(0.2 * lengths[i]))
    frac = hit.sum() / (np.asarray(mask).sum() * f)
    assert 0.05 < frac < 0.6  # masks are drawn, and they leave most of the clip
    # off: identity
    off = augment(jax.random.PRNGKey(0), feats, mask, SpecAugmentConfig(0, 8, 0, 20))
    np.testing.assert_array_equal(np.asarray(off), np.asarray(feats))


def test_spec_augment_only_in_training():
    model = SpeechRecipe(SpeechRecipeConfig(audio=dataclasses.replace(SMALL, block_dropout=0.0),
                                            dropout=0.0), 3)
    batch = _batch(4, 40, 16)
    variables = _init(model, batch)
    e1, _ = _apply(model, variables, batch)
    e2, _ = _apply(model, variables, batch)
    np.testing.assert_array_equal(np.asarray(e1), np.asarray(e2))
    t1, _ = _apply(model, variables, batch, train=True, key=key(3))
    assert not np.allclose(np.asarray(t1), np.asarray(e1))  # training masks (no dropout here)


def _loss_fn(alpha, smoothing=0.0):
    model = SpeechRecipe(SpeechRecipeConfig(audio=SMALL), 3)
    batch = _batch(6, 30, 16)
    params = _init(model, batch)["params"]
    train = TrainConfig(mixup_alpha=alpha, label_smoothing=smoothing)
    return make_loss_fn(model, lambda b: b, train), params, batch, model


def test_mixup_alpha_zero_is_the_plain_loss():
    loss_fn, params, batch, model = _loss_fn(0.0, 0.1)
    mixed_fn = _loss_fn(0.4, 0.1)[0]
    rng = jax.random.PRNGKey(5)

    @jax.jit  # one compilation for the three
    def run(params, batch, rng):
        logits, _ = model.apply({"params": params}, batch, train=True, rngs={"dropout": rng})
        return loss_fn(params, {}, batch, rng)[0], logits, mixed_fn(params, {}, batch, rng)[0]

    loss, logits, mixed = run(params, batch, rng)
    expect = weighted_xent(logits, batch["label"], batch["weight"], 0.1)
    np.testing.assert_allclose(float(loss), float(expect), rtol=1e-6)
    assert abs(float(mixed) - float(loss)) > 1e-4


def test_mixup_mixes_features_and_targets():
    batch = _batch(6, 30, 16)
    batch["weight"] = batch["weight"].at[5].set(0.0)  # a padded row is never a partner
    mixed, mix = mixup.mix_inputs(batch, jax.random.PRNGKey(2), 0.4)
    lam, p = float(mix["lam"]), np.asarray(mix["partner"])
    assert 0.0 <= lam <= 1.0 and 5 not in p[p != np.arange(6)]
    np.testing.assert_allclose(np.asarray(mixed["audio"]),
                               lam * np.asarray(batch["audio"])
                               + (1 - lam) * np.asarray(batch["audio"])[p], rtol=1e-5, atol=1e-6)
    logits = jnp.asarray(np.random.default_rng(1).standard_normal((6, 3)), jnp.float32)
    one = {"partner": mix["partner"], "lam": jnp.float32(1.0)}
    np.testing.assert_allclose(
        float(mixup.mixed_xent(logits, batch["label"], batch["weight"], one, 0.1)),
        float(weighted_xent(logits, batch["label"], batch["weight"], 0.1)), rtol=1e-6)
    both = float(mixup.mixed_xent(logits, batch["label"], batch["weight"], mix))
    a = weighted_xent(logits, batch["label"], batch["weight"])
    b = weighted_xent(logits, batch["label"][p], batch["weight"])
    np.testing.assert_allclose(both, lam * float(a) + (1 - lam) * float(b), rtol=1e-5)
    with pytest.raises(ValueError, match="alpha"):
        mixup.mix_inputs(batch, jax.random.PRNGKey(2), 0.0)


def test_masked_stats_ignores_zero_weights():
    x = jnp.asarray([[[1.0], [3.0], [100.0]]])
    out = masked_stats(x, jnp.asarray([[1.0, 1.0, 0.0]]))
    np.testing.assert_allclose(np.asarray(out), [[2.0, np.sqrt(1.0 + 1e-5)]], rtol=1e-6)
