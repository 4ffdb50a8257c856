"""The MI system (S000 §3.1): registry and config checks, segment pooling, the cross-modal dynamic
convolution against a numpy reference, a 4-device mesh = 1 device, overfitting, padding
invariance (raw and pre-extracted streams), the Pallas (interpret) path = the XLA path, gates in
[0, 1], a regression (1-output) build and any subset of modalities."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from mmer_jax.errors import UsageError
from mmer_jax.models import build_model
from mmer_jax.models.systems.mi import MI, MIConfig, interaction_names
from mmer_jax.models.systems.mi.layers import CrossModalDynamicConv, segment_bounds, segment_pool
from mmer_jax.registry import SYSTEMS

VOCAB, C = 20, 4
RAW = ("text", "audio", "frames")
FEAT = ("text_feat", "audio_feat", "vision_feat")
FEAT_DIM = {"text_feat": 6, "audio_feat": 5, "vision_feat": 3}
# Tiny widths: compilation dominates these tests.
TINY = dict(width=8, embed_dim=4, frame_widths=(4,), segments=3, num_heads=2, fc_hidden=8,
            dropout=0.0, stream_dropout=0.0)


def _model(modalities=RAW, num_classes=C, **kw) -> MI:
    return SYSTEMS["mi"].build(MIConfig(modalities=tuple(modalities), **{**TINY, **kw}),
                               num_classes, VOCAB)


def _batch(modalities, n, seed=0, lengths=None, pad=0, fill=0.0):
    """A batch of ``n`` examples; valid lengths per example from ``lengths`` (default: random);
    ``pad`` extra padded steps/tokens/frames holding ``fill`` (padding inside the originals too)."""
    rng = np.random.default_rng(seed)
    full = {"text": 6, "audio": 12, "frames": 4, "text_feat": 5, "audio_feat": 7, "vision_feat": 4}
    out = {}
    for m in modalities:
        t = full[m]
        lens = (np.asarray(lengths[m]) if lengths else rng.integers(1, t + 1, n))
        mask = np.arange(t + pad)[None] < lens[:, None]  # [n, T + pad]
        if m == "text":
            x = rng.integers(1, VOCAB, (n, t + pad)).astype(np.int32)
            out["tokens"], out["tokens_mask"] = np.where(mask, x, 0), mask
            continue
        shape = {"audio": (6,), "frames": (8, 8, 3)}.get(m, (FEAT_DIM.get(m, 0),))
        x = rng.normal(size=(n, t + pad) + shape).astype(np.float32)
        key = "audio" if m == "audio" else "frames" if m == "frames" else m
        out[key] = np.where(mask.reshape(mask.shape + (1,) * len(shape)), x, np.float32(fill))
        out[f"{key}_mask"] = mask
    return out


def _xent(logits, labels):
    return -jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=1).mean()


# -- config and registry -----------------------------------------------------------------------
def test_registered_with_defaults_and_bad_settings_are_named():
    model = build_model(ml_collections.ConfigDict({"name": "mi"}), num_classes=6, vocab_size=10)
    assert isinstance(model, MI) and model.cfg == MIConfig()
    assert model.cfg.modalities == RAW and model.cfg.implementation == "xla"
    for bad, match in [
        (dict(modalities=("text", "face")), "non-empty subset"),
        (dict(modalities=()), "non-empty subset"),
        (dict(modalities=("audio", "audio")), "without repeats"),
        (dict(width=10, num_heads=4), "divisible by num_heads=4"),
        (dict(width=7, num_heads=1), "must be even"),
        (dict(segments=0), "segments=0 must be >= 1"),
        (dict(dropout=1.0), r"dropout=1.0 must be in \[0, 1\)"),
        (dict(implementation="cuda"), "implementation='cuda'"),
        (dict(interactions="pairs"), "interactions='pairs'"),
        (dict(modalities=("audio",), interactions="cross"), "leaves no interaction"),
    ]:
        with pytest.raises(ValueError, match=match):
            MIConfig(**bad)
    with pytest.raises(UsageError, match="modality 'text' needs a vocabulary"):
        build_model(ml_collections.ConfigDict({"name": "mi"}), num_classes=6, vocab_size=0)
    # Without text no vocabulary is needed.
    assert build_model(ml_collections.ConfigDict({"name": "mi", "modalities": ["audio"]}),
                       num_classes=6, vocab_size=0).vocab_size == 0


def test_interaction_names_cover_every_ordered_pair():
    assert interaction_names(("text", "audio")) == (
        "text_text", "text_audio", "audio_text", "audio_audio")
    assert interaction_names(RAW, "cross") == (
        "text_audio", "text_frames", "audio_text", "audio_frames", "frames_text", "frames_audio")
    assert interaction_names(RAW, "intra") == ("text_text", "audio_audio", "frames_frames")
    assert len(interaction_names(RAW)) == 9


# -- blocks ------------------------------------------------------------------------------------
def test_segment_pool_cuts_valid_steps_only():
    pool = jax.jit(segment_pool, static_argnums=2)  # one compilation per shape, not per op
    start, end = jax.jit(segment_bounds, static_argnums=1)(jnp.array([6, 7, 2, 0]), 3)
    np.testing.assert_array_equal(start, [[0, 2, 4], [0, 2, 4], [0, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(end, [[2, 4, 6], [2, 4, 7], [1, 1, 2], [1, 1, 1]])
    x = np.arange(1, 9, dtype=np.float32)[None, :, None].repeat(3, 0)  # steps 1..8
    mask = np.array([[1, 1, 1, 1, 1, 1, 0, 0],   # 6 valid: segments {1,2} {3,4} {5,6}
                     [1, 0, 1, 1, 0, 0, 1, 0],   # not a prefix: valid steps 1, 3, 4, 7
                     [0, 0, 0, 0, 0, 0, 0, 0]], bool)
    pooled, smask = pool(jnp.asarray(x), jnp.asarray(mask), 3)
    np.testing.assert_allclose(pooled[0, :, 0], [1.5, 3.5, 5.5])
    np.testing.assert_allclose(pooled[1, :, 0], [1.0, 3.0, 5.5])  # ranks [0,1) [1,2) [2,4)
    np.testing.assert_allclose(pooled[2], 0.0)
    np.testing.assert_array_equal(smask, [[True] * 3, [True] * 3, [False] * 3])
    # Short rows repeat steps; appended padding with garbage changes nothing.
    garbage = np.concatenate([np.where(mask[..., None], x, 1e6), np.full((3, 4, 1), 1e6)], 1)
    pmask = np.concatenate([mask, np.zeros((3, 4), bool)], 1)
    again, _ = pool(jnp.asarray(garbage), jnp.asarray(pmask), 3)
    np.testing.assert_array_equal(np.asarray(again), np.asarray(pooled))
    two, _ = pool(jnp.asarray(x[:1]), jnp.asarray(np.arange(8)[None] < 2), 5)
    np.testing.assert_allclose(two[0, :, 0], [1, 1, 1, 2, 2])


def test_cross_modal_dynamic_conv_takes_kernels_from_the_source():
    """numpy reference: softmax kernels from src at each position, centred taps over dst."""
    rng = np.random.default_rng(3)
    src = rng.normal(size=(2, 5, 6)).astype(np.float32)
    dst = rng.normal(size=(2, 5, 4)).astype(np.float32)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], bool)
    conv = CrossModalDynamicConv(num_heads=2, kernel_size=3)
    p = jax.jit(conv.init)(jax.random.key(0, impl="rbg"), src, dst, mask)["params"]
    out = np.asarray(jax.jit(conv.apply)({"params": p}, src, dst, mask))
    logits = (src @ np.asarray(p["kernel"]["kernel"]) + np.asarray(p["kernel"]["bias"]))
    w = np.exp(logits.reshape(2, 5, 2, 3))
    w /= w.sum(-1, keepdims=True)  # [B, S, H, K]
    d = np.where(mask[..., None], dst, 0.0)
    ref = np.zeros_like(dst)
    for b, s, c, k in itertools.product(range(2), range(5), range(4), range(3)):
        j = s - 1 + k
        if 0 <= j < 5:
            ref[b, s, c] += w[b, s, c // 2, k] * d[b, j, c]
    ref = ref @ np.asarray(p["out"]["kernel"]) + np.asarray(p["out"]["bias"])
    ref = np.where(mask[..., None], ref, 0.0)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


# -- the whole system --------------------------------------------------------------------------
@pytest.mark.slow  # ~20 s of compilation; the trainer's 4-device path stays in the default run
# (tests/train/test_parallel.py, and the fusions' mesh tests)
def test_forward_and_backward_on_a_four_device_mesh():
    """Text + frames (two of the three streams keep compilation short): the token embedding's
    gather and the per-frame CNN on a batch split over 4 devices, 2 examples each."""
    if jax.device_count() < 4:
        pytest.skip("needs XLA_FLAGS=--xla_force_host_platform_device_count=4")
    mods = ("text", "frames")
    model = _model(mods)
    batch = {k: jnp.asarray(v) for k, v in _batch(mods, 8, seed=1).items()}
    labels = jnp.arange(8) % C
    params = model.init(jax.random.PRNGKey(0), batch, train=False)["params"]

    def loss(p, x, y):
        logits, aux = model.apply({"params": p}, x, train=False)
        return _xent(logits, y), aux["gates"]

    mesh = jax.make_mesh((4,), ("data",), (jax.sharding.AxisType.Auto,))  # as the trainer's
    data, rep = NamedSharding(mesh, P("data")), NamedSharding(mesh, P())
    fn = jax.jit(jax.value_and_grad(loss, has_aux=True), in_shardings=(rep, data, data))
    xs = jax.device_put(batch, data)
    assert all(len(x.sharding.device_set) == 4 for x in jax.tree.leaves(xs))
    (l4, g4_gates), g4 = fn(jax.device_put(params, rep), xs, jax.device_put(labels, data))
    (l1, gates), g1 = jax.jit(jax.value_and_grad(loss, has_aux=True))(params, batch, labels)
    assert float(l4) == pytest.approx(float(l1), rel=1e-5)
    np.testing.assert_allclose(np.asarray(g4_gates), np.asarray(gates), rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(g4), jax.tree.leaves(g1), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    # Gates: one per interaction, strictly inside [0, 1]; every interaction gets a gradient.
    assert gates.shape == (8, 4) and bool(((gates > 0) & (gates < 1)).all())
    for name in interaction_names(mods):
        g = g1[f"dynconv_{name}"]["kernel"]["kernel"]
        assert np.isfinite(np.asarray(g)).all() and float(jnp.abs(g).sum()) > 0, name


@pytest.mark.slow  # ~20 s of compilation on one core
def test_overfits_eight_examples():
    """Random labels: only a model that passes its inputs through can fit them."""
    model = _model(("text", "audio"), width=16)
    batch = {k: jnp.asarray(v) for k, v in _batch(("text", "audio"), 8, seed=5).items()}
    labels = jnp.asarray(np.random.default_rng(6).integers(0, C, 8))
    params = model.init(jax.random.PRNGKey(0), batch, train=False)["params"]
    tx = optax.adam(1e-2)

    def step(carry, _):
        p, s = carry
        loss, g = jax.value_and_grad(
            lambda q: _xent(model.apply({"params": q}, batch, train=False)[0], labels))(p)
        u, s = tx.update(g, s, p)
        return (optax.apply_updates(p, u), s), loss

    (params, _), losses = jax.jit(lambda p: jax.lax.scan(step, (p, tx.init(p)), None, 150))(
        params)
    logits, _ = model.apply({"params": params}, batch, train=False)
    assert float(losses[-1]) < 0.05 < float(losses[0])
    assert (np.asarray(logits.argmax(-1)) == np.asarray(labels)).all()


@pytest.mark.parametrize("modalities, outputs", [
    (RAW, C),
    pytest.param(FEAT, 1, marks=pytest.mark.slow),  # ~10 s of compilation; shapes in the default
], ids=["raw", "feature_streams_regression"])
def test_padding_changes_no_output(modalities, outputs):
    """Extra padded steps/tokens/frames full of garbage: identical logits, gates and features.
    The pre-extracted streams are run as a regression build (``num_classes=1``: one output)."""
    model = _model(modalities, num_classes=outputs)
    rng = np.random.default_rng(2)
    lengths = {m: rng.integers(1, t + 1, 3) for m, t in
               {"text": 6, "audio": 12, "frames": 4, "text_feat": 5, "audio_feat": 7,
                "vision_feat": 4}.items()}
    lengths["audio"][0] = 1  # one audio step: a single strided position
    ref_batch = _batch(modalities, 3, seed=4, lengths=lengths)
    padded = _batch(modalities, 3, seed=4, lengths=lengths, pad=5, fill=1e4)
    for k, v in ref_batch.items():  # same valid values in both
        sl = (slice(None), slice(0, v.shape[1]))
        padded[k][sl] = np.where(_mask_like(ref_batch, k, v), v, padded[k][sl])
    # A valid value does matter (the comparisons below can fail).
    first = "tokens" if modalities == RAW else modalities[0]
    changed = {k: v.copy() for k, v in ref_batch.items()}
    changed[first][:, 0] = (changed[first][:, 0] % (VOCAB - 1)) + 1 if first == "tokens" else 5.0

    # Init and the three batches in one jitted program, with an "rbg" key: eagerly, init
    # compiles a threefry program per parameter shape and every op one program of its own.
    @jax.jit
    def run(ref_batch, padded, changed):
        variables = model.init(jax.random.key(0, impl="rbg"), ref_batch, train=False)
        return [model.apply(variables, b, train=False) for b in (ref_batch, padded, changed)]

    (ref, aux), (out, paux), (changed_out, _) = run(ref_batch, padded, changed)
    assert ref.shape == (3, outputs) and bool(np.isfinite(np.asarray(ref)).all())
    gates = np.asarray(aux["gates"])
    assert gates.shape == (3, 9) and ((gates > 0) & (gates < 1)).all()
    np.testing.assert_allclose(np.asarray(out), np.asarray(ref), rtol=1e-5, atol=1e-5)
    for key in aux:
        np.testing.assert_allclose(np.asarray(paux[key]), np.asarray(aux[key]), rtol=1e-5,
                                   atol=1e-5, err_msg=key)
    assert not np.allclose(np.asarray(changed_out), np.asarray(ref), atol=1e-4)


def _mask_like(batch, key, value):
    if key.endswith("_mask"):
        return np.ones_like(value, bool)
    mask = batch[f"{key}_mask"]
    return mask.reshape(mask.shape + (1,) * (value.ndim - 2))


@pytest.mark.slow  # 11 s; the dynamic-convolution kernel path stays fast in test_dynconv
def test_interpret_kernel_path_matches_xla():
    """The Pallas kernel (interpreted) = the XLA path: the interaction block's outputs and
    gradients (parameters and both sequences), and the whole system's logits."""
    rng = np.random.default_rng(8)
    src = jnp.asarray(rng.normal(size=(2, 5, 6)), jnp.float32)
    dst = jnp.asarray(rng.normal(size=(2, 5, 8)), jnp.float32)
    mask = jnp.asarray(np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], bool))
    xla, kern = (CrossModalDynamicConv(num_heads=2, kernel_size=3, implementation=impl)
                 for impl in ("xla", "interpret"))
    params = xla.init(jax.random.PRNGKey(0), src, dst, mask)["params"]
    target = jnp.asarray(rng.normal(size=(2, 5, 8)), jnp.float32)

    def run(conv):
        def loss(p, a, b):
            y = conv.apply({"params": p}, a, b, mask)
            return jnp.sum((y - target) ** 2), y

        return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True))(params, src,
                                                                                   dst)

    (lx, yx), gx = run(xla)
    (li, yi), gi = run(kern)
    np.testing.assert_allclose(np.asarray(yi), np.asarray(yx), rtol=1e-5, atol=1e-5)
    assert float(li) == pytest.approx(float(lx), rel=1e-5)
    for a, b in zip(jax.tree.leaves(gi), jax.tree.leaves(gx), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
    assert float(jnp.abs(gi[0]["kernel"]["kernel"]).sum()) > 0  # the kernels learn from src
    assert float(jnp.abs(gi[1]).sum()) > 0 and float(jnp.abs(gi[2][1, 2:]).sum()) == 0.0
    # The system passes ``implementation`` to every interaction.
    batch = {k: jnp.asarray(v) for k, v in _batch(("text", "audio"), 2, seed=7).items()}
    sys_x = _model(("text", "audio"), interactions="cross")
    sys_i = _model(("text", "audio"), interactions="cross", implementation="interpret")
    variables = sys_x.init(jax.random.PRNGKey(0), batch, train=False)
    out_x = jax.jit(lambda b: sys_x.apply(variables, b, train=False)[0])(batch)
    out_i = jax.jit(lambda b: sys_i.apply(variables, b, train=False)[0])(batch)
    np.testing.assert_allclose(np.asarray(out_i), np.asarray(out_x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("modalities", [
    s for r in (1, 2) for s in itertools.combinations(RAW, r)
] + [("frames", "vision_feat"), FEAT], ids="+".join)
def test_any_subset_of_modalities_builds(modalities):
    """Shapes only (``jax.eval_shape``: traced, not compiled): every subset has its gates; the
    pre-extracted streams also as a regression build (one output)."""
    model = _model(modalities, interactions="all")
    batch = _batch(modalities, 2)
    variables = jax.eval_shape(lambda b: model.init(jax.random.PRNGKey(0), b, train=False),
                               batch)
    logits, aux = jax.eval_shape(lambda v, b: model.apply(v, b, train=False), variables, batch)
    n = len(modalities)
    assert logits.shape == (2, C) and aux["gates"].shape == (2, n * n)
    assert sorted(k for k in aux if k.startswith("feat_")) == sorted(f"feat_{m}"
                                                                    for m in modalities)
    assert sorted(k for k in variables["params"] if k.startswith("stream_")) == sorted(
        f"stream_{m}" for m in modalities)
    if modalities == FEAT:
        reg = _model(modalities, num_classes=1)
        out, aux = jax.eval_shape(lambda v, b: reg.apply(v, b, train=False), jax.eval_shape(
            lambda b: reg.init(jax.random.PRNGKey(0), b, train=False), batch), batch)
        assert out.shape == (2, 1) and aux["gates"].shape == (2, 9)
