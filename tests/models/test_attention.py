"""The multi-head attention module and its attention op against a plain numpy reference."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmer_jax.models.attention import MultiHeadAttention
from mmer_jax.models.ops import ATTENTION_IMPLEMENTATIONS, lookup
from mmer_kernels import attention_reference as reference_attention


def numpy_attention(q, k, v, q_mask, kv_mask, bias=None, causal=False):
    """Loop-per-(batch, head, query) attention; rows with no valid key are zeros."""
    b, lq, h, d = q.shape
    out = np.zeros_like(q)
    for bi in range(b):
        for hi in range(h):
            for i in range(lq):
                ok = kv_mask[bi].copy()
                if causal:
                    ok &= np.arange(k.shape[1]) <= i
                if not q_mask[bi, i] or not ok.any():
                    continue
                s = k[bi, :, hi] @ q[bi, i, hi] / np.sqrt(d)
                if bias is not None:
                    s = s + bias[bi, hi, i]
                w = np.exp(s[ok] - s[ok].max())
                out[bi, i, hi] = (w / w.sum()) @ v[bi, ok, hi]
    return out


def _inputs(seed=0, b=2, lq=5, lk=7, h=2, d=16):
    rng = np.random.default_rng(seed)
    q, k, v = (rng.normal(size=(b, n, h, d)).astype(np.float32) for n in (lq, lk, lk))
    q_mask = np.arange(lq)[None] < np.array([lq, 3])[:, None]
    kv_mask = np.arange(lk)[None] < np.array([lk, 2])[:, None]
    kv_mask[0, 1] = False  # a hole, not only a padded suffix
    return q, k, v, q_mask, kv_mask


@pytest.mark.parametrize("causal", [False, True])
def test_reference_matches_numpy(causal):
    q, k, v, qm, km = _inputs()
    bias = np.random.default_rng(1).normal(size=(2, 2, 5, 7)).astype(np.float32)
    got = reference_attention(q, k, v, q_mask=qm, kv_mask=km, bias=bias, causal=causal)
    np.testing.assert_allclose(got, numpy_attention(q, k, v, qm, km, bias, causal), atol=1e-5)


def test_fully_masked_rows_are_zero_and_padding_is_ignored():
    q, k, v, qm, km = _inputs()
    km[1] = False  # the whole second example has no valid key
    out = np.asarray(reference_attention(q, k, v, q_mask=qm, kv_mask=km))
    assert np.all(out[1] == 0) and np.all(out[0, ~qm[0]] == 0) and np.all(np.isfinite(out))
    k2 = np.where(km[..., None, None], k, 1e3)
    v2 = np.where(km[..., None, None], v, -1e3)
    out2 = reference_attention(q, k2, v2, q_mask=qm, kv_mask=km)
    np.testing.assert_allclose(out2, out, atol=1e-6)


def test_module_matches_projections_plus_reference():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 6, 12)).astype(np.float32)
    mask = np.arange(6)[None] < np.array([6, 4])[:, None]
    mha = MultiHeadAttention(num_heads=3, qkv_features=12, out_features=8)
    variables = mha.init(jax.random.key(0), x, q_mask=mask)
    got = mha.apply(variables, x, q_mask=mask)
    p = jax.tree_util.tree_map(np.asarray, variables["params"])
    proj = lambda n: np.einsum("bld,dhk->blhk", x, p[n]["kernel"]) + p[n]["bias"]  # noqa: E731
    o = numpy_attention(proj("query"), proj("key"), proj("value"), mask, mask)
    want = np.einsum("blhk,hko->blo", o, p["out"]["kernel"]) + p["out"]["bias"]
    assert got.shape == (2, 6, 8)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_unknown_implementation_is_rejected_naming_the_known_ones():
    known = "auto, cudnn, interpret, mosaic, pallas, xla"
    with pytest.raises(ValueError, match=f"implementation='cuda'.*{known}"):
        lookup(ATTENTION_IMPLEMENTATIONS, "cuda")
    x = np.zeros((1, 3, 4), np.float32)
    with pytest.raises(ValueError, match="implementation='cuda'"):
        MultiHeadAttention(num_heads=2, implementation="cuda").init(jax.random.key(0), x)


@pytest.mark.parametrize("impl", ["xla", "interpret"])
def test_kernel_paths_match_reference(impl):
    q, k, v, qm, km = _inputs(3)
    f = ATTENTION_IMPLEMENTATIONS[impl]
    got = f(*(jnp.asarray(a) for a in (q, k, v)), q_mask=qm, kv_mask=km, bias=None, causal=False)
    np.testing.assert_allclose(got, numpy_attention(q, k, v, qm, km), atol=1e-4, rtol=1e-4)
