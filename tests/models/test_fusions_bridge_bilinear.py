"""MGMNet's fusions ``bridge`` and ``bilinear`` (S000 §3.3): registry, bridge choice, 4-device
mesh, overfitting, padding invariance, the bilinear shift's bound."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from mmer_jax.models.fusion.bilinear import BilinearShiftFusion
from mmer_jax.models.fusion.bridge import BridgeFusion, pick_bridge
from mmer_jax.registry import FUSIONS

from .fusion_checks import (
    Classifier,
    check_mesh_matches_one_device,
    check_overfits_eight_examples,
    init,
    random_feats,
)

DIMS = {"text": 5, "audio": 6, "frames": 4}
SMALL = {
    "bridge": dict(width=8, num_heads=2, layers=1, dropout=0.0),
    "bilinear": dict(width=8, rank=4, dropout=0.0),
}


def _feats(n: int, seed: int = 0, dims=DIMS) -> dict:
    return random_feats(n, dims, seed)


def test_registered_and_selectable_by_s003():
    from mmer_jax.models.systems.s003 import S003Config

    assert FUSIONS["bridge"] is BridgeFusion and FUSIONS["bilinear"] is BilinearShiftFusion
    assert S003Config(fusion="bridge").fusion == "bridge"
    assert S003Config(fusion="bilinear").fusion == "bilinear"


def test_bridge_is_text_else_tokens_else_the_first_sorted_modality():
    assert pick_bridge(["audio", "text", "frames"]) == "text"
    assert pick_bridge(["frames", "tokens"]) == "tokens"
    assert pick_bridge(["feat_frames", "feat_text"]) == "feat_text"  # S001/S003's keys
    # Not the dict's order: jax.jit hands dicts back sorted, and the bridge names parameters.
    assert pick_bridge(["frames", "audio"]) == pick_bridge(["audio", "frames"]) == "audio"
    assert pick_bridge(["frames", "audio"], "frames") == "frames"
    with pytest.raises(ValueError, match="bridge='text' is not one of"):
        pick_bridge(["frames", "audio"], "text")
    with pytest.raises(ValueError, match="at least one"):
        pick_bridge([])
    # Partners get parameters named after the bridge: text queries audio and frames.
    def shapes(module):  # parameter shapes without running the initialisers
        return jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), _feats(2),
                                                  train=False))["params"]

    p = shapes(BridgeFusion(**SMALL["bridge"]))
    assert {k for k in p if k.startswith("bridge_")} == {
        "bridge_text_to_audio_0", "bridge_text_to_frames_0"}
    q = shapes(BilinearShiftFusion(**SMALL["bilinear"]))
    assert {"u_audio", "u_frames", "embed_text"} <= set(q) and "u_text" not in q


@pytest.mark.parametrize("name", ["bridge", "bilinear"])
def test_forward_and_backward_on_a_four_device_mesh(name):
    feats = _feats(8)
    check_mesh_matches_one_device(Classifier(name, tuple(SMALL[name].items())), feats)


@pytest.mark.parametrize("name", [pytest.param("bridge", marks=pytest.mark.slow), "bilinear"])
def test_overfits_eight_examples(name):
    check_overfits_eight_examples(Classifier(name, tuple(SMALL[name].items())), _feats(8, seed=5))


def _sequences(seed=0, lengths=((4, 2), (5, 3), (3, 1))):
    """text, audio, frames as padded sequences [2, T, D] + prefix masks from ``lengths``."""
    rng = np.random.default_rng(seed)
    feats, masks = {}, {}
    for (m, d), lens in zip(DIMS.items(), lengths, strict=True):
        t = max(lens)
        feats[m] = rng.normal(size=(2, t, d)).astype(np.float32)
        masks[m] = np.arange(t)[None] < np.asarray(lens)[:, None]
    return feats, masks


@pytest.mark.parametrize("name", ["bridge", "bilinear"])
def test_invariant_to_padding(name):
    model = FUSIONS[name](**SMALL[name])
    feats, masks = _sequences()
    params = init(model, feats, masks=masks, train=False)
    apply = jax.jit(lambda x, k: model.apply(params, x, masks=k, train=False))
    ref = np.asarray(apply(feats, masks))
    assert ref.shape == (2, 8)
    rng = np.random.default_rng(9)
    padded, pmasks = {}, {}
    for m, x in feats.items():  # more padding, and large garbage where it was
        extra = rng.normal(scale=100.0, size=(2, 3, x.shape[-1])).astype(np.float32)
        padded[m] = np.concatenate([np.where(masks[m][..., None], x, 1e3), extra], axis=1)
        pmasks[m] = np.concatenate([masks[m], np.zeros((2, 3), bool)], axis=1)
    np.testing.assert_allclose(np.asarray(apply(padded, pmasks)), ref, rtol=1e-5, atol=1e-5)
    for b in range(2):  # each example alone, trimmed to its own lengths
        one = {m: x[b:b + 1, : masks[m][b].sum()] for m, x in feats.items()}
        np.testing.assert_allclose(np.asarray(apply(one, None))[0], ref[b], rtol=1e-5,
                                   atol=1e-5)
    # A valid step of a partner does matter (the checks above can fail).
    feats["audio"][0, 0] += 1.0
    assert not np.allclose(np.asarray(apply(feats, masks))[0], ref[0], atol=1e-4)


def test_bridge_alone_is_self_attention_and_vectors_are_length_one_sequences():
    model = BridgeFusion(**SMALL["bridge"])
    only = _feats(3, dims={"text": 5})
    # rbg keys: eager init compiles their random programs several times faster than threefry's
    p = model.init(jax.random.key(0, impl="rbg"), only, train=False)
    assert "bridge_text_to_text_0" in p["params"]
    assert model.apply(p, only, train=False).shape == (3, 8)
    feats = _feats(3)
    p = model.init(jax.random.key(0, impl="rbg"), feats, train=False)
    vec = model.apply(p, feats, train=False)
    seq = model.apply(p, {m: x[:, None] for m, x in feats.items()}, train=False)
    np.testing.assert_allclose(np.asarray(vec), np.asarray(seq), rtol=1e-6)
    with pytest.raises(ValueError, match="mask of audio"):
        model.apply(p, feats, masks={"audio": np.ones((3, 4), bool)}, train=False)


def test_bilinear_shift_is_bounded_by_the_text_vector():
    """out = LN(t + a S) with a = min(softplus(c) ||t|| / ||S||, 1): recomputed by hand."""
    model = BilinearShiftFusion(width=6, rank=3, dropout=0.0, init_scale=0.25)
    feats = _feats(4, seed=3)
    p = init(model, feats, seed=1, train=False)["params"]
    out = model.apply({"params": p}, feats, train=False)
    # The reference in numpy (float32): eager jnp would compile a program per op and shape.
    p, x = jax.tree.map(np.asarray, p), {m: np.asarray(v) for m, v in feats.items()}
    assert float(np.log1p(np.exp(p["scale"]))) == pytest.approx(0.25, rel=1e-5)  # softplus

    def dense(name, v):
        return v @ p[name]["kernel"] + p[name]["bias"]

    def sigmoid(v):
        return 1 / (1 + np.exp(-v))

    t = dense("embed_text", x["text"])
    shift = 0.0
    for n in ("audio", "frames"):
        inter = np.tanh(dense(f"u_{n}", t)) * np.tanh(dense(f"v_{n}", x[n]))
        g = sigmoid(dense(f"gate_{n}", np.concatenate([t, x[n]], -1)))
        shift = shift + g * dense(f"p_{n}", inter)
    ratio = 0.25 * np.linalg.norm(t, axis=-1, keepdims=True) / np.linalg.norm(
        shift, axis=-1, keepdims=True)
    y = t + np.minimum(ratio, 1.0) * shift
    mean, var = y.mean(-1, keepdims=True), y.var(-1, keepdims=True)
    ref = (y - mean) / np.sqrt(var + 1e-6) * p["ln_out"]["scale"] + p["ln_out"]["bias"]
    np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-4, atol=1e-5)
    # With text alone there is no shift: LN of the projected text vector.
    only = {"text": feats["text"]}
    q = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(1), only, train=False))["params"]
    assert set(q) == {"embed_text", "ln_out"}
