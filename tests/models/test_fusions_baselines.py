"""Fusion baselines TFN, LMF, MulT and late fusion: registry, shapes, 4-device mesh, overfitting,
padding invariance, LMF = TFN at full rank, MulT's kernel path = its XLA path."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmer_jax.models.fusion.late import LateFusion
from mmer_jax.models.fusion.lmf import LowRankFusion
from mmer_jax.models.fusion.mult import MulTFusion
from mmer_jax.models.fusion.tfn import TensorFusion, fused_dim, tensor_product
from mmer_jax.registry import FUSIONS

from .fusion_checks import (
    Classifier,
    check_mesh_matches_one_device,
    check_overfits_eight_examples,
    init,
    random_feats,
)
from .fusion_checks import xent as _xent

DIMS = {"audio": 6, "frames": 5, "face": 4}
# Small knobs per fusion (each module's defaults are the paper-sized ones).
SMALL = {
    "tfn": dict(features=16),
    "lmf": dict(features=16, rank=4),
    "mult": dict(width=8, num_heads=2, layers=1, self_layers=1, dropout=0.0),
    "late": dict(features=16),
}


def _feats(n: int, seed: int = 0) -> dict:
    return random_feats(n, DIMS, seed)


def test_baselines_are_registered_and_selectable_by_s001_s003():
    from mmer_jax.models.systems.s001 import S001Config
    from mmer_jax.models.systems.s003 import S003Config

    assert FUSIONS["tfn"] is TensorFusion and FUSIONS["lmf"] is LowRankFusion
    assert FUSIONS["mult"] is MulTFusion and FUSIONS["late"] is LateFusion
    for name in ("tfn", "lmf", "mult", "late", "dynconv_gate"):
        assert S001Config(fusion=name).fusion == name
        assert S003Config(fusion=name).fusion == name
    with pytest.raises(ValueError, match="fusion='tfm'"):
        S003Config(fusion="tfm")


def test_tfn_fused_dim_is_product_of_d_plus_one():
    feats = _feats(3)
    vs = [feats[m] for m in DIMS]
    z = jax.jit(tensor_product)(vs)  # one program, not one per eager op
    assert z.shape == (3, math.prod(d + 1 for d in DIMS.values())) == (3, 7 * 6 * 5)
    assert fused_dim(list(DIMS.values())) == 210
    # Entries are products of [h; 1]: the appended ones keep the unimodal terms and the constant.
    ref = np.einsum("bi,bj,bk->bijk", *[np.concatenate([v, np.ones((3, 1))], 1) for v in vs])
    np.testing.assert_allclose(np.asarray(z), ref.reshape(3, -1), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(z[:, -1]), 1.0)
    np.testing.assert_allclose(np.asarray(z.reshape(3, 7, 6, 5)[:, :6, -1, -1]), vs[0], rtol=1e-6)
    params = init(TensorFusion(features=16), feats, train=False)["params"]
    assert params["fuse"]["kernel"].shape == (210, 16)
    with pytest.raises(ValueError, match="vectors"):
        tensor_product([np.ones((2, 3, 4), np.float32)])


@pytest.mark.parametrize("dims", [(3, 2), (2, 1, 2)], ids=["two", "three"])
def test_lmf_at_full_rank_computes_tfn(dims):
    """Factors built from a TFN weight: W_k = sum over the first M-1 indices of one-hot
    vectors ⊗ the last modality's slice, i.e. rank prod_{m<M}(d_m+1), exact."""
    names = [f"m{i}" for i in range(len(dims))]
    rng = np.random.default_rng(1)
    feats = {m: jnp.asarray(rng.normal(size=(5, d)), jnp.float32)
             for m, d in zip(names, dims, strict=True)}
    f = 6
    tfn = TensorFusion(features=f, post_layers=1)
    tp = init(tfn, feats, train=False)["params"]
    sizes = [d + 1 for d in dims]
    rank = math.prod(sizes[:-1])
    w = np.asarray(tp["fuse"]["kernel"]).reshape(*sizes, f)  # [d1+1, ..., dM+1, F]
    factors = {}
    for i, m in enumerate(names[:-1]):  # one-hot in the rank index's i-th coordinate
        fac = np.zeros((rank, sizes[i], f), np.float32)
        for r, idx in enumerate(np.ndindex(*sizes[:-1])):
            fac[r, idx[i], :] = 1.0
        factors[f"factor_{m}"] = fac
    factors[f"factor_{names[-1]}"] = w.reshape(rank, sizes[-1], f)
    lmf = LowRankFusion(features=f, rank=rank, post_layers=1)
    lp = init(lmf, feats, seed=2, train=False)["params"]
    lp = {**lp, **factors, "bias": np.asarray(tp["fuse"]["bias"]),
          "rank_weight": np.ones(rank, np.float32), "post": tp["post"]}
    def apply(model, variables):  # jitted: an eager apply compiles each of its ops
        return np.asarray(jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, feats))

    out_t = apply(tfn, {"params": tp})
    out_l = apply(lmf, {"params": lp})
    assert float(np.abs(out_t).max()) > 0.1  # not a trivially zero comparison
    np.testing.assert_allclose(out_l, out_t, rtol=1e-4, atol=1e-5)
    # A low-rank LMF with its own (random) factors computes something else.
    low = LowRankFusion(features=f, rank=1, post_layers=1)
    lo = apply(low, init(low, feats, seed=3, train=False))
    assert not np.allclose(lo, out_t, atol=1e-3)


@pytest.mark.parametrize("name", ["tfn", "lmf", pytest.param("mult", marks=pytest.mark.slow),
                                  "late"])
def test_forward_and_backward_on_a_four_device_mesh(name):
    feats = _feats(8)
    if name == "mult":  # two modalities: 2 crossmodal transformers instead of 6 (compile time)
        feats.pop("face")
    check_mesh_matches_one_device(Classifier(name, tuple(SMALL[name].items())), feats)


@pytest.mark.parametrize("name", ["tfn", "lmf", pytest.param("mult", marks=pytest.mark.slow),
                                  "late"])
def test_overfits_eight_examples(name):
    check_overfits_eight_examples(Classifier(name, tuple(SMALL[name].items())), _feats(8, seed=5))


def _sequences(seed=0, lengths=((5, 3), (4, 2))):
    """Two modalities as padded sequences: a [2, T, D] + prefix masks from ``lengths``."""
    rng = np.random.default_rng(seed)
    feats, masks = {}, {}
    for (m, d), lens in zip((("audio", 6), ("text", 4)), lengths, strict=True):
        t = max(lens)
        feats[m] = rng.normal(size=(2, t, d)).astype(np.float32)
        masks[m] = np.arange(t)[None] < np.asarray(lens)[:, None]
    return feats, masks


def test_mult_is_invariant_to_padding():
    model = MulTFusion(**SMALL["mult"])
    feats, masks = _sequences()
    # Eager: a jitted MulT init compiles longer; the eager one's programs (one per parameter
    # shape) serve the next test's MulT too.
    params = model.init(jax.random.PRNGKey(0), feats, masks=masks, train=False)
    apply = jax.jit(lambda x, k: model.apply(params, x, masks=k, train=False))
    ref = np.asarray(apply(feats, masks))
    assert ref.shape == (2, 2 * 1 * 8)
    # More padding, filled with large garbage: the same output.
    rng = np.random.default_rng(9)
    padded, pmasks = {}, {}
    for m, x in feats.items():
        extra = rng.normal(scale=100.0, size=(2, 3, x.shape[-1])).astype(np.float32)
        padded[m] = np.concatenate([np.where(masks[m][..., None], x, 1e3), extra], axis=1)
        pmasks[m] = np.concatenate([masks[m], np.zeros((2, 3), bool)], axis=1)
    out = np.asarray(apply(padded, pmasks))
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    # Each example alone, trimmed to its own lengths: the same output as in the padded batch.
    for b in range(2):
        one = {m: x[b:b + 1, : masks[m][b].sum()] for m, x in feats.items()}
        np.testing.assert_allclose(np.asarray(apply(one, None))[0], ref[b], rtol=1e-5, atol=1e-5)
    # Changing a valid step does change it (the check above can fail).
    feats["audio"][0, 0] += 1.0
    assert not np.allclose(np.asarray(apply(feats, masks))[0], ref[0], atol=1e-4)


def test_mult_vectors_are_length_one_sequences():
    model = MulTFusion(**SMALL["mult"])
    feats = {m: np.asarray(x)[:, :2] for m, x in _feats(3).items()}  # numpy: no eager slicing
    # Eager init: see test_mult_is_invariant_to_padding; its ops serve the eager applies too.
    params = model.init(jax.random.PRNGKey(0), feats, train=False)
    vec = model.apply(params, feats, train=False)
    seq = model.apply(params, {m: x[:, None] for m, x in feats.items()}, train=False)
    assert vec.shape == (3, 3 * 2 * 8)
    np.testing.assert_allclose(np.asarray(vec), np.asarray(seq), rtol=1e-6)
    with pytest.raises(ValueError, match="mask of audio"):
        model.apply(params, feats, masks={"audio": np.ones((3, 4), bool)}, train=False)


@pytest.mark.slow  # 7 s; the attention kernel in interpret mode stays fast in tests/kernels
def test_mult_kernel_path_interpret_matches_xla():
    feats, masks = _sequences(seed=2)
    labels = jnp.array([1, 3])
    opts = {**SMALL["mult"], "self_layers": 0}  # the interpreter is slow: two attention calls
    xla = Classifier("mult", tuple(opts.items()))
    params = init(xla, feats, masks=masks, train=False)["params"]
    kern = Classifier("mult", tuple({**opts, "implementation": "interpret"}.items()))

    def run(model):
        def loss(p):
            logits = model.apply({"params": p}, feats, masks=masks, train=False)[0]
            return _xent(logits, labels), logits

        return jax.jit(jax.value_and_grad(loss, has_aux=True))(params)

    (lx, ox), gx = run(xla)
    (li, oi), gi = run(kern)
    np.testing.assert_allclose(np.asarray(oi), np.asarray(ox), rtol=1e-5, atol=1e-5)
    assert float(li) == pytest.approx(float(lx), rel=1e-5)
    for a, b in zip(jax.tree.leaves(gi), jax.tree.leaves(gx), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
    assert float(jnp.abs(gi["fusion"]["cm_text_to_audio_0"]["mha"]["query"]["kernel"]).sum()) > 0


def test_late_fusion_combines_per_modality_scores():
    """Each score sees one modality; the output is their softmax-weighted sum."""
    model = LateFusion(features=5)
    feats = _feats(2)
    p = init(model, feats, train=False)["params"]
    p = {**p, "modality_logits": np.log(np.array([0.2, 0.3, 0.5], np.float32))}  # sorted names
    out = model.apply({"params": p}, feats, train=False)
    names = sorted(feats)
    # The reference in numpy: eager jnp would compile a program per op and shape.
    scores = [np.asarray(feats[m]) @ np.asarray(p[f"score_{m}"]["kernel"])
              + np.asarray(p[f"score_{m}"]["bias"]) for m in names]
    np.testing.assert_allclose(np.asarray(out), 0.2 * scores[0] + 0.3 * scores[1] + 0.5 * scores[2],
                               rtol=1e-5, atol=1e-6)
