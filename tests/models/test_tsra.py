"""TSRA (S000 §3.2): config checks, every modality kind builds, 4-device mesh = 1 device, overfits 8
examples, padding invariance, the three loss terms (each weight 0 removes exactly its term; values
of hand-made inputs) and the regression build's loss through the train step's loss function."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from mmer_jax.models import build_model
from mmer_jax.models.systems.tsra import TSRAConfig, build, pool_steps
from mmer_jax.models.systems.tsra import losses as tsra_losses
from mmer_jax.registry import SYSTEMS
from mmer_jax.schema import ProtocolConfig, TrainConfig
from mmer_jax.train.steps import make_loss_fn, weighted_xent

C, VOCAB = 4, 20
TERMS = ("similarity", "difference", "reconstruction")
TINY = dict(hidden=8, dim=8, frame_widths=(4, 8), frame_dim=8, text_embed=8, text_hidden=4,
            recognizer_hidden=8, head_hidden=8, dropout=0.0)
ALL = ("text", "audio", "frames", "text_feat", "audio_feat", "vision_feat")
DIMS = {"audio": 5, "text_feat": 6, "audio_feat": 3, "vision_feat": 4}
KEY = {"text": "tokens"}


def _cfg(modalities=("text", "audio", "frames"), **kw) -> TSRAConfig:
    return TSRAConfig(modalities=tuple(modalities), **{**TINY, **kw})


def _batch(n=8, seed=0, lengths=None, modalities=ALL, pad_steps=0, garbage=0.0):
    """A model batch of ``n`` rows; each sequence has its own valid length within 6 steps, then
    ``pad_steps`` more steps; every padded position holds ``garbage`` (0 for the tokens). The
    valid values depend on ``seed`` only, not on the padding."""
    rng = np.random.default_rng(seed)
    t = 6
    lens = rng.integers(1, t + 1, n) if lengths is None else np.asarray(lengths)
    mask = np.arange(t + pad_steps)[None] < lens[:, None]  # [n, T]
    b = {"weight": np.ones(n, np.float32), "label": (np.arange(n) % C).astype(np.int32),
         "score": rng.uniform(-3, 3, n).astype(np.float32)}
    for m in modalities:
        key = KEY.get(m, m)
        if m == "text":
            x = rng.integers(1, VOCAB, (n, t)).astype(np.int32)
        elif m == "frames":
            x = rng.uniform(size=(n, t, 8, 8, 3)).astype(np.float32)
        else:
            x = rng.normal(size=(n, t, DIMS[m])).astype(np.float32)
        x = np.concatenate([x, np.zeros((n, pad_steps) + x.shape[2:], x.dtype)], axis=1)
        keep = mask.reshape(mask.shape + (1,) * (x.ndim - 2))
        b[key], b[f"{key}_mask"] = np.where(keep, x, 0 if m == "text" else garbage), mask
    return {k: jnp.asarray(v) for k, v in b.items()}


def _init(model, batch):
    # An "rbg" key: eager threefry draws compile a program per parameter shape (0.3 s each on a
    # CPU), rbg ones a fraction of that.
    return model.init(jax.random.key(0, impl="rbg"), batch, train=False)["params"]


# -- config and build ----------------------------------------------------------------------------
def test_registered_and_config_errors_name_the_value():
    assert SYSTEMS["tsra"].config_class is TSRAConfig
    for bad, msg in [(dict(modalities=()), "non-empty subset"),
                     (dict(modalities=("face",)), "modalities=\\('face',\\)"),
                     (dict(modalities=("audio", "audio")), "twice"),
                     (dict(similarity=-1.0), "similarity=-1.0"),
                     (dict(similarity_kind="kl"), "similarity_kind='kl'"),
                     (dict(recognizer_layers=0), "recognizer_layers=0"),
                     (dict(dropout=1.0), "dropout=1.0")]:
        with pytest.raises(ValueError, match=msg):
            TSRAConfig(**bad)
    with pytest.raises(ValueError, match="vocab_size=0"):
        build(TSRAConfig(modalities=("text",)), num_classes=C, vocab_size=0)


# The raw streams (text, audio, frames) are built and run by the padding and mesh tests.
@pytest.mark.parametrize("modalities", [("audio",), ("text_feat", "audio_feat", "vision_feat")],
                         ids=["one", "feat"])
def test_builds_from_a_model_section(modalities):
    section = {"name": "tsra", **TINY, "frame_widths": [4, 8]}
    model = build_model(section, num_classes=C, vocab_size=VOCAB, modalities=modalities)
    batch = _batch(modalities=modalities)
    logits, aux = model.apply({"params": _init(model, batch)}, batch, train=False)
    assert logits.shape == (8, C)
    assert {f"feat_{m}" for m in modalities} <= set(aux) and aux["fused"].shape == (8, 8)
    # Similarity needs two shared vectors; the other two terms exist for any modality set.
    expect = set(TERMS) if len(modalities) > 1 else {"difference", "reconstruction"}
    assert set(aux["loss_terms"]) == expect
    for v in aux["loss_terms"].values():
        assert v.dtype == jnp.float32 and v.shape == () and np.isfinite(float(v))
        assert float(v) > 0


def test_pool_steps_is_a_masked_window_mean():
    x = jnp.arange(10.0).reshape(1, 5, 2)
    mask = jnp.asarray([[True, True, True, False, False]])
    y, m = pool_steps(x, mask, 2)
    np.testing.assert_allclose(np.asarray(y[0, :2]), [[1.0, 2.0], [4.0, 5.0]])
    assert m.tolist() == [[True, True, False]]


# -- the loss functions on hand-made inputs ------------------------------------------------------
def test_difference_loss_is_zero_for_orthogonal_subspaces():
    rng = np.random.default_rng(0)
    w = jnp.ones(6)
    # Shared vectors in span(e0, e1), private ones in span(e2, e3) and span(e4, e5).
    sh = [jnp.asarray(np.pad(rng.normal(size=(6, 2)), ((0, 0), (0, 4)))) for _ in range(2)]
    pr = [jnp.asarray(np.pad(rng.normal(size=(6, 2)), ((0, 0), (2 + 2 * i, 2 - 2 * i))))
          for i in range(2)]
    assert float(tsra_losses.difference_loss(sh, pr, w)) == pytest.approx(0.0, abs=1e-10)
    # The same private vectors as the shared ones: fully correlated, far from 0.
    assert float(tsra_losses.difference_loss(sh, sh, w)) > 0.1
    assert float(tsra_losses.orthogonality(sh[0], sh[0], w)) > 0.1


def test_similarity_loss_is_zero_for_equal_shared_vectors():
    rng = np.random.default_rng(1)
    a = jnp.asarray(rng.uniform(size=(5, 4)), jnp.float32)
    b = jnp.asarray(rng.uniform(size=(5, 4)), jnp.float32)
    w = jnp.ones(5)
    for kind in ("cmd", "mse"):
        assert float(tsra_losses.similarity_loss([a, a, a], w, kind)) == pytest.approx(0, abs=1e-6)
        assert float(tsra_losses.similarity_loss([a, b], w, kind)) > 1e-3
        # Equal inputs are where a plain norm has a NaN gradient; ours is finite (zero).
        g = jax.grad(lambda x, k=kind: tsra_losses.similarity_loss([x, a], w, k))(a)
        assert np.isfinite(np.asarray(g)).all() and float(jnp.abs(g).max()) < 1e-3
    # CMD of order 1 is the distance of the means; order 2 adds that of the variances.
    d_mean = np.linalg.norm(np.asarray(a).mean(0) - np.asarray(b).mean(0))
    d_var = np.linalg.norm(np.asarray(a).var(0) - np.asarray(b).var(0))
    assert float(tsra_losses.cmd(a, b, w, order=1)) == pytest.approx(d_mean, rel=1e-4)
    assert float(tsra_losses.cmd(a, b, w, order=2)) == pytest.approx(d_mean + d_var, rel=1e-4)
    # MSE: the mean squared difference per example, averaged over the real rows.
    want = np.mean((np.asarray(a) - np.asarray(b)) ** 2)
    assert float(tsra_losses.similarity_loss([a, b], w, "mse")) == pytest.approx(want, rel=1e-5)
    with pytest.raises(ValueError, match="two modalities"):
        tsra_losses.similarity_loss([a], w)


def test_losses_ignore_padding_rows():
    rng = np.random.default_rng(2)
    x = [jnp.asarray(rng.uniform(size=(4, 3)), jnp.float32) for _ in range(4)]
    junk = [jnp.concatenate([v, 50.0 * jnp.ones((2, 3))]) for v in x]
    w, wj = jnp.ones(4), jnp.asarray([1.0, 1, 1, 1, 0, 0])
    pairs = [
        (lambda v, w: tsra_losses.similarity_loss(v[:2], w, "cmd")),
        (lambda v, w: tsra_losses.similarity_loss(v[:2], w, "mse")),
        (lambda v, w: tsra_losses.difference_loss(v[:2], v[2:], w)),
        (lambda v, w: tsra_losses.reconstruction_loss(v[:2], v[2:], w)),
    ]
    for f in pairs:
        assert float(f(junk, wj)) == pytest.approx(float(f(x, w)), rel=1e-5)
    assert float(tsra_losses.reconstruction_loss(x[:2], x[:2], w)) == 0.0


# -- the model -----------------------------------------------------------------------------------
def test_each_zero_weight_removes_exactly_its_term():
    mods = ("audio_feat", "vision_feat")
    full_model = build(_cfg(mods), C, VOCAB)
    batch = _batch(modalities=mods)
    params = _init(full_model, batch)
    full_logits, full = full_model.apply({"params": params}, batch, train=False)
    full = full["loss_terms"]
    assert set(full) == set(TERMS)
    for term in TERMS:
        model = build(_cfg(mods, **{term: 0.0}), C, VOCAB)
        logits, aux = model.apply({"params": params}, batch, train=False)
        assert set(aux["loss_terms"]) == set(TERMS) - {term}
        for k, v in aux["loss_terms"].items():
            assert float(v) == pytest.approx(float(full[k]), rel=1e-6)
        np.testing.assert_allclose(np.asarray(logits), np.asarray(full_logits), rtol=1e-6)
    # A weight scales its term linearly.
    doubled = build(_cfg(mods, difference=0.6), C, VOCAB).apply({"params": params}, batch,
                                                                 train=False)
    assert float(doubled[1]["loss_terms"]["difference"]) == pytest.approx(
        2 * float(full["difference"]), rel=1e-5)


def test_invariant_to_padding():
    """Longer padding filled with large values and an extra weight-0 row: same logits for the real
    rows and the same loss terms."""
    model = build(_cfg(ALL, audio_pool=2), C, VOCAB)
    lengths = [6, 3, 1, 5]
    ref = _batch(4, lengths=lengths)
    params = _init(model, ref)
    apply = jax.jit(lambda b: model.apply({"params": params}, b, train=False))
    logits, aux = apply(ref)
    padded = _batch(4, lengths=lengths, pad_steps=3, garbage=1e3)
    extra = _batch(1, seed=7, lengths=[4], pad_steps=3, garbage=1e3)
    both = {k: jnp.concatenate([padded[k], extra[k]]) for k in padded}
    both["weight"] = both["weight"].at[-1].set(0.0)
    logits2, aux2 = apply(both)
    np.testing.assert_allclose(np.asarray(logits2[:4]), np.asarray(logits), rtol=1e-5, atol=1e-5)
    assert set(aux2["loss_terms"]) == set(TERMS)
    for k, v in aux["loss_terms"].items():
        assert float(aux2["loss_terms"][k]) == pytest.approx(float(v), rel=1e-4, abs=1e-7)


def _total_loss(model):
    def loss(p, b):
        logits, aux = model.apply({"params": p}, b, train=False)
        return weighted_xent(logits, b["label"], b["weight"]) + sum(aux["loss_terms"].values())

    return loss


@pytest.mark.slow  # ~20 s of compilation; the trainer's 4-device path stays in the default run
# (tests/train/test_parallel.py, and the fusions' mesh tests)
def test_forward_and_backward_on_a_four_device_mesh():
    if jax.device_count() < 4:
        pytest.skip("needs XLA_FLAGS=--xla_force_host_platform_device_count=4")
    model = build(_cfg(), C, VOCAB)
    batch = _batch(8, modalities=("text", "audio", "frames"))
    batch["weight"] = batch["weight"].at[-1].set(0.0)  # a padding row on the last device
    params = _init(model, batch)
    # Auto axes, as the harness's mesh (mmer_jax.train.sharding.make_mesh) has them.
    mesh = jax.make_mesh((4,), ("data",), (jax.sharding.AxisType.Auto,))
    data, rep = NamedSharding(mesh, P("data")), NamedSharding(mesh, P())
    fn = jax.jit(jax.value_and_grad(_total_loss(model)), in_shardings=(rep, data))
    xs = jax.device_put(batch, data)
    assert all(len(x.sharding.device_set) == 4 for x in xs.values())  # 2 rows per device
    l4, g4 = fn(jax.device_put(params, rep), xs)
    l1, g1 = jax.jit(jax.value_and_grad(_total_loss(model)))(params, batch)
    assert float(l4) == pytest.approx(float(l1), rel=1e-5)
    for a, b in zip(jax.tree.leaves(g4), jax.tree.leaves(g1), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    for part in ("shared", "enc_audio", "cnn_frames", "enc_text", "recognizer", "decoder_text"):
        leaves = jax.tree.leaves(g4[part])
        assert all(np.isfinite(np.asarray(g)).all() for g in leaves)
        assert sum(float(jnp.abs(g).sum()) for g in leaves) > 0, part


@pytest.mark.slow  # 9 s; TSRA's losses and padding stay fast
def test_overfits_eight_examples():
    """Random labels: only a model that carries the inputs through the three spaces and the
    recogniser can fit them; the loss terms stay on."""
    mods = ("audio", "text_feat")
    model = build(_cfg(mods, hidden=16, dim=16), C, VOCAB)
    batch = _batch(8, seed=3, modalities=mods)
    batch["label"] = jnp.asarray(np.random.default_rng(4).integers(0, C, 8), jnp.int32)
    params = _init(model, batch)
    tx = optax.adam(1e-2)
    loss = _total_loss(model)

    def step(carry, _):
        p, s = carry
        value, g = jax.value_and_grad(loss)(p, batch)
        u, s = tx.update(g, s, p)
        return (optax.apply_updates(p, u), s), value

    (params, _), losses = jax.jit(lambda p: jax.lax.scan(step, (p, tx.init(p)), None, 250))(
        params)
    logits, aux = model.apply({"params": params}, batch, train=False)
    xent = float(weighted_xent(logits, batch["label"], batch["weight"]))
    assert xent < 0.05 < float(losses[0])
    assert (np.asarray(logits.argmax(-1)) == np.asarray(batch["label"])).all()


def test_regression_build_loss_includes_the_terms():
    mods = ("audio", "vision_feat")
    model = build_model({"name": "tsra", **TINY}, num_classes=1, vocab_size=0, modalities=mods)
    batch = _batch(6, seed=5, modalities=mods)
    params = _init(model, batch)
    logits, aux = model.apply({"params": params}, batch, train=False)
    assert logits.shape == (6, 1) and set(aux["loss_terms"]) == set(TERMS)
    protocol = ProtocolConfig(task="regression", regression_loss="l1")
    loss_fn = make_loss_fn(model, lambda b: b, TrainConfig(), protocol)
    loss, _ = loss_fn(params, {}, batch, jax.random.PRNGKey(0))
    l1 = float(jnp.mean(jnp.abs(logits[:, 0] - batch["score"])))
    terms = sum(float(v) for v in aux["loss_terms"].values())
    assert float(loss) == pytest.approx(l1 + terms, rel=1e-5)
    # With every weight 0 the loss is the L1 alone.
    bare = build_model({"name": "tsra", **TINY, "similarity": 0.0, "difference": 0.0,
                        "reconstruction": 0.0}, num_classes=1, vocab_size=0, modalities=mods)
    loss0, _ = make_loss_fn(bare, lambda b: b, TrainConfig(), protocol)(
        params, {}, batch, jax.random.PRNGKey(0))
    assert float(loss0) == pytest.approx(l1, rel=1e-5)
    assert terms > 1e-3
