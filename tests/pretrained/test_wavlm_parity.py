"""WavLM against transformers' WavLMModel, and the Pallas attention kernel (interpret mode) against
XLA inside a WavLM-base-wide encoder, where the gated relative position bias reaches the loss only
through the kernel's bias gradient.

The parity cases are as in ``test_wav2vec2_parity`` (small random-initialised references with
randomised norms, weight-norm magnitudes, biases and gate constants; every hidden state at 1e-4,
unpadded and padded; gradients against torch autograd). They skip without torch/transformers;
the kernel test needs neither.
"""

from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmer_jax.models.pretrained.wavlm import WavLMConfig, WavLMEncoder, relative_position_buckets
from tests.pretrained.reference import assert_states_close, import_dir, max_abs_diff

SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
             conv_dim=(16, 24, 20), conv_kernel=(10, 3, 2), conv_stride=(5, 2, 2),
             num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
             num_buckets=32, max_bucket_distance=40)  # 79 frames: every bucket regime
LENGTHS = (1600, 1130)  # samples: 79 and 55 frames
# transformers' WavLM hands torch a float position bias and a bool padding mask
pytestmark = pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")


@pytest.fixture(scope="module")
def ref_libs():
    torch = pytest.importorskip("torch", reason="parity tests need the ref extra (torch)")
    transformers = pytest.importorskip("transformers", reason="parity tests need transformers")
    return torch, transformers


@dataclasses.dataclass
class Built:
    stable: bool
    torch: object
    ref: object  # transformers' WavLMModel (eval mode)
    enc: object  # our ImportedEncoder
    run: object  # jitted (params, x, mask, w) -> (EncoderOutput, grads)


def loss_and_outputs(module):
    """jitted (params, x, mask, w) -> (outputs, d sum(w * valid last_hidden_state) / d params)."""

    def run(params, x, mask, w):
        def loss(p):
            out = module.apply({"params": p}, x, mask)
            return jnp.sum(jnp.where(out.mask[..., None], out.last_hidden_state, 0.0) * w), out

        (_, out), grads = jax.value_and_grad(loss, has_aux=True)(params)
        return out, grads

    return jax.jit(run)


@pytest.fixture(scope="module", params=[False, True], ids=["group-postLN", "layer-preLN"])
def built(request, ref_libs, tmp_path_factory) -> Built:
    """wavlm-base's layout (group norm, post-LN) saved by ``save_pretrained``, or
    wavlm-large's (layer norm, pre-LN) saved from WavLMForSequenceClassification (tensors under
    "wavlm.", the classifier left)."""
    torch, transformers = ref_libs
    stable = request.param
    cfg = transformers.WavLMConfig(**SMALL, feat_extract_norm="layer" if stable else "group",
                                   do_stable_layer_norm=stable, conv_bias=stable, num_labels=3)
    torch.manual_seed(0)
    model = (transformers.WavLMForSequenceClassification if stable
             else transformers.WavLMModel)(cfg).eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ("norm" in name or "original0" in name or name.endswith("bias")
                    or "gru_rel_pos_const" in name):
                p.add_(0.3 * torch.randn(p.shape, generator=gen))
    root = tmp_path_factory.mktemp("wavlm")
    model.save_pretrained(root / "hf")
    enc = import_dir("hf", root / "hf", root)
    ref = model.wavlm if stable else model
    return Built(stable, torch, ref, enc, loss_and_outputs(enc.module(normalize_input=False)))


W = np.random.default_rng(9).normal(size=(2, 79, SMALL["hidden_size"])).astype(np.float32)


def waveforms(seed: int, lengths=LENGTHS):
    rng = np.random.default_rng(seed)
    raw = [(0.5 * rng.normal(size=n)).astype(np.float32) for n in lengths]
    x = np.full((len(raw), max(lengths)), 3.0, np.float32)  # padding must not reach valid frames
    for i, r in enumerate(raw):
        x[i, : len(r)] = r
    return raw, x, np.arange(x.shape[1])[None] < np.array(lengths)[:, None]


def ref_states(b: Built, x: np.ndarray, mask=None) -> list[np.ndarray]:
    """The reference's hidden states with ``last_hidden_state`` as the last (transformers 5.x
    puts the pre-LN stack's output before the final LayerNorm in ``hidden_states[-1]``)."""
    torch = b.torch
    with torch.no_grad():
        out = b.ref(torch.from_numpy(x), attention_mask=None if mask is None
                    else torch.from_numpy(mask.astype(np.int64)), output_hidden_states=True)
    states = [h.numpy() for h in out.hidden_states]
    if not b.stable:
        np.testing.assert_array_equal(states[-1], out.last_hidden_state.numpy())
    return states[:-1] + [out.last_hidden_state.numpy()]


def test_import_record(built):
    assert built.enc.record["architecture"] == "wavlm"
    assert built.enc.config.do_stable_layer_norm == built.stable
    assert (built.enc.config.num_buckets, built.enc.config.max_bucket_distance) == (32, 40)
    # no preprocessor_config.json: normalisation follows feat_extract_norm == "layer"
    assert built.enc.config.normalize_input == built.stable
    ignored = built.enc.record["ignored_tensors"]
    assert any(n.endswith("masked_spec_embed") for n in ignored)
    if built.stable:
        assert "classifier.weight" in ignored


def test_buckets_equal_reference(ref_libs):
    """Our trace-time bucket table against WavLMAttention's at the released sizes, up to
    distances past max_bucket_distance (800 frames = 16 s)."""
    torch, transformers = ref_libs
    attn = transformers.models.wavlm.modeling_wavlm.WavLMAttention(
        32, 4, num_buckets=320, max_distance=800)
    t = 1200
    rel = torch.arange(t)[None, :] - torch.arange(t)[:, None]
    ref = attn._relative_positions_bucket(rel).numpy()
    np.testing.assert_array_equal(relative_position_buckets(t, 320, 800), ref)


def test_unpadded_every_hidden_state(built):
    raw, x, mask = waveforms(0, (LENGTHS[0], LENGTHS[0]))
    ours, _ = built.run(built.enc.variables["params"], x, mask, W)
    assert_states_close(ours.hidden_states, ref_states(built, x), atol=1e-4)


def test_padded_batch_equals_each_waveform_alone(built):
    raw, x, mask = waveforms(1)
    ours, _ = built.run(built.enc.variables["params"], x, mask, W)
    for i, r in enumerate(raw):
        ref = ref_states(built, r[None])
        t = ref[0].shape[1]
        assert t == int(np.asarray(ours.mask[i]).sum())
        assert_states_close([np.asarray(h[i:i + 1, :t]) for h in ours.hidden_states], ref,
                            atol=1e-4)
    if built.stable:  # the layer-norm extractor does not leak: the reference's padded batch
        xr = np.where(mask, x, 0.0).astype(np.float32)
        assert_states_close(ours.hidden_states, ref_states(built, xr, mask), valid=ours.mask,
                            atol=1e-4)


def _pick(tree, path):
    for k in path:
        tree = tree[k]
    return np.asarray(tree)


def test_gradients_padded_batch(built):
    """Gradients (the relative position table and the gates included) against torch autograd
    on each waveform alone."""
    torch = built.torch
    raw, x, mask = waveforms(2)
    _, ours = built.run(built.enc.variables["params"], x, mask, W)
    built.ref.zero_grad()
    for i, r in enumerate(raw):
        out = built.ref(torch.from_numpy(r[None])).last_hidden_state
        (out * torch.from_numpy(W[i:i + 1, : out.shape[1]])).sum().backward()
    layers = built.ref.encoder.layers
    wn = built.ref.encoder.pos_conv_embed.conv.parametrizations.weight
    ref = {
        ("rel_attn_embed",): layers[0].attention.rel_attn_embed.weight.grad,
        ("layers_0", "rel_pos_gate", "const"): layers[0].attention.gru_rel_pos_const.grad,
        ("layers_1", "rel_pos_gate", "linear", "kernel"):
            layers[1].attention.gru_rel_pos_linear.weight.grad.T,
        ("layers_0", "ffn", "fc1", "kernel"): layers[0].feed_forward.intermediate_dense.weight
        .grad.T,
        ("feature_extractor", "conv_0", "kernel"):
            built.ref.feature_extractor.conv_layers[0].conv.weight.grad.permute(2, 1, 0),
        ("pos_conv", "weight_g"): wn.original0.grad.reshape(-1),
    }
    ref = {path: g.numpy().reshape(_pick(ours, path).shape) for path, g in ref.items()}
    floor = 1e-2 * max(np.abs(g).max() for g in ref.values())  # as in test_wav2vec2_parity
    for path, g in ref.items():
        rel = max_abs_diff(_pick(ours, path), g) / max(np.abs(g).max(), floor)
        assert rel <= 1e-4, (path, rel)
    built.ref.zero_grad()


def test_remat_same_outputs_and_gradients(built):
    if built.stable:
        pytest.skip("once is enough")
    _, x, mask = waveforms(3)
    params = built.enc.variables["params"]
    out, grads = built.run(params, x, mask, W)
    out_r, grads_r = loss_and_outputs(built.enc.module(normalize_input=False, remat=True))(
        params, x, mask, W)
    for a, b in zip(out.hidden_states, out_r.hidden_states, strict=True):
        assert max_abs_diff(a, b) <= 1e-5
    for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(grads_r), strict=True):
        assert max_abs_diff(a, b) <= 1e-5 * max(1.0, float(np.abs(np.asarray(a)).max()))


def random_params(module, x, mask, seed: int = 0) -> dict:
    """Random parameters of the module's shapes, drawn in numpy (an eager ``init`` of a
    768-wide encoder costs seconds on CPU): kernels ~ N(0, 1 / fan_in), norm scales and gate
    constants near 1, biases near 0, the relative position table ~ N(0, 1)."""
    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), x, mask))["params"]

    def draw(path, leaf):
        name = jax.tree_util.keystr(path)
        n = rng.normal(size=leaf.shape).astype(np.float32)
        if name.endswith("['scale']") or name.endswith("['const']") or "weight_g" in name:
            return 1.0 + 0.1 * n
        if name.endswith("['bias']"):
            return 0.1 * n
        if "rel_attn_embed" in name:
            return n
        return n / np.sqrt(np.prod(leaf.shape[:-1]))

    return jax.tree_util.tree_map_with_path(draw, shapes)


@pytest.mark.slow  # 9 s; the kernel path stays fast through Whisper's
def test_kernel_path_equals_xla_wavlm_base_width():
    """The Pallas attention kernel (interpret mode) against XLA inside an encoder of WavLM-base
    width (768 wide, 12 heads, FFN 3072; 2 layers; a narrow two-convolution extractor with
    WavLM's 320-sample frames), 1 s and 0.69 s of audio in one batch: every hidden state, and
    the gradients of every parameter, including the relative position table and the gates,
    which reach the loss only through the kernel's bias gradient."""
    cfg = WavLMConfig(conv_dim=(32, 32), conv_kernel=(10, 64), conv_stride=(5, 64),
                      num_hidden_layers=2, num_conv_pos_embeddings=32, normalize_input=True)
    lengths = (16000, 11000)  # 49 and 34 frames
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 16000)).astype(np.float32)
    mask = np.arange(16000)[None] < np.array(lengths)[:, None]
    params = random_params(WavLMEncoder(cfg), x, mask)
    w = rng.normal(size=(2, 49, 768)).astype(np.float32)

    def run(impl):
        module = WavLMEncoder(dataclasses.replace(cfg, implementation=impl))

        def loss(p):
            out = module.apply({"params": p}, x, mask)
            return jnp.sum(jnp.where(out.mask[..., None], out.last_hidden_state, 0.0) * w), out

        return jax.jit(jax.value_and_grad(loss, has_aux=True))(params)

    start = time.perf_counter()
    (_, o_x), g_x = run("xla")
    (_, o_k), g_k = run("interpret")
    print(f"kernel vs xla, WavLM-base width: {time.perf_counter() - start:.1f} s")
    assert o_x.mask.sum(-1).tolist() == [49, 34]
    diffs = [max_abs_diff(a, b, o_x.mask)
             for a, b in zip(o_x.hidden_states, o_k.hidden_states, strict=True)]
    print("hidden-state max abs diffs", diffs)
    assert max(diffs) <= 1e-4
    flat = jax.tree_util.tree_flatten_with_path(g_x)[0]
    overall = max(float(np.abs(np.asarray(a)).max()) for _, a in flat)
    worst = 0.0
    for (path, a), b in zip(flat, jax.tree.leaves(g_k), strict=True):
        name, scale = jax.tree_util.keystr(path), float(np.abs(np.asarray(a)).max())
        if "rel_attn_embed" in name or "rel_pos_gate" in name:
            assert scale > 1e-3 * overall, name  # the bias gradient really reaches them
        # key biases get an exactly zero gradient (softmax ignores a per-row shift): rounding
        # noise on both sides, so a floor relative to the largest gradient
        rel = max_abs_diff(a, b) / max(scale, 1e-3 * overall)
        worst = max(worst, rel)
        assert rel <= 1e-4, (name, rel)
    print(f"gradients: worst relative difference {worst:.2e} (largest gradient {overall:.1f})")
