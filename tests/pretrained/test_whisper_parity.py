"""Whisper's encoder against transformers' WhisperEncoder and CTranslate2's Whisper.

A small random-initialised Whisper is saved by transformers (safetensors, and a torch zip
``pytorch_model.bin`` from ``WhisperForConditionalGeneration``), converted by CTranslate2's own
converter (float32 and int8), and imported through ``mmer encoders import``'s code path.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.pretrained.reference import assert_states_close, import_dir, max_abs_diff

torch = pytest.importorskip("torch", reason="parity tests need the ref extra (torch)")
transformers = pytest.importorskip("transformers", reason="parity tests need transformers")

N_MELS, D, POSITIONS = 80, 32, 40  # 2 * 40 = 80 log-mel frames per full window


def _randomise_norms(model) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name:
                p.add_(0.3 * torch.randn_like(p))


@pytest.fixture(scope="module")
def hf_whisper(tmp_path_factory):
    """(directory, model) of a small WhisperForConditionalGeneration saved as safetensors."""
    cfg = transformers.WhisperConfig(
        num_mel_bins=N_MELS, d_model=D, encoder_layers=2, encoder_attention_heads=4,
        encoder_ffn_dim=64, decoder_layers=1, decoder_attention_heads=4, decoder_ffn_dim=64,
        max_source_positions=POSITIONS, vocab_size=64, max_target_positions=16, pad_token_id=0,
        bos_token_id=1, eos_token_id=2, decoder_start_token_id=1, suppress_tokens=[],
        begin_suppress_tokens=[])
    torch.manual_seed(0)
    model = transformers.WhisperForConditionalGeneration(cfg).eval()
    _randomise_norms(model)
    path = tmp_path_factory.mktemp("hf_whisper")
    model.save_pretrained(path)
    return path, model


def _ours(enc, x, mask=None, **overrides):
    return _apply(enc.module(**overrides), enc.variables, jnp.asarray(x),
                  None if mask is None else jnp.asarray(mask))


# Jitted, one cache for every test (modules compare by their settings): run eagerly, the
# encoder compiled each of its hundreds of ops apart, ~20 ms each.
@functools.partial(jax.jit, static_argnums=0)
def _apply(module, variables, x, mask):
    return module.apply(variables, x, mask)


def test_hf_every_hidden_state(hf_whisper, tmp_path):
    path, model = hf_whisper
    enc = import_dir("hf", path, tmp_path)
    assert enc.record["architecture"] == "whisper"
    assert any(n.startswith("model.decoder.") for n in enc.record["ignored_tensors"])
    x = np.random.default_rng(0).normal(size=(2, N_MELS, 2 * POSITIONS)).astype(np.float32)
    with torch.no_grad():
        ref = model.model.encoder(torch.from_numpy(x), output_hidden_states=True).hidden_states
    ours = _ours(enc, x.transpose(0, 2, 1))
    assert_states_close(ours.hidden_states, [r.numpy() for r in ref], atol=1e-4)


@pytest.mark.slow  # 11 s; the torch-zip reader stays fast in its own tests
def test_hf_torch_zip_bare_encoder(hf_whisper, tmp_path):
    """A bare WhisperEncoder's state dict written by torch.save (no safetensors) and read by our
    torch-free unpickler; gradients of one layer against torch autograd."""
    _, model = hf_whisper
    enc_ref = model.model.encoder
    d = tmp_path / "bin"
    d.mkdir()
    torch.save(enc_ref.state_dict(), d / "pytorch_model.bin")
    model.config.to_json_file(d / "config.json")
    enc = import_dir("hf", d, tmp_path)
    x = np.random.default_rng(1).normal(size=(1, N_MELS, 2 * POSITIONS)).astype(np.float32)
    w = np.random.default_rng(2).normal(size=(1, POSITIONS, D)).astype(np.float32)
    xt = torch.from_numpy(x)
    out = enc_ref(xt).last_hidden_state
    (out * torch.from_numpy(w)).sum().backward()
    ref_grad = enc_ref.layers[0].fc1.weight.grad.numpy().T  # [D, F] as our kernel
    enc_ref.zero_grad()

    def loss(params):
        o = enc.module().apply({"params": params}, jnp.asarray(x.transpose(0, 2, 1)))
        return jnp.sum(o.hidden_states[-1] * w)

    grad = jax.grad(loss)(enc.variables["params"])["layers_0"]["ffn"]["fc1"]["kernel"]
    assert max_abs_diff(grad, ref_grad) <= 1e-4 * max(1.0, np.abs(ref_grad).max())
    np.testing.assert_allclose(np.asarray(_ours(enc, x.transpose(0, 2, 1)).hidden_states[-1]),
                               out.detach().numpy(), atol=1e-4)


def test_padding_equals_each_clip_alone(hf_whisper, tmp_path):
    """With a mask, valid outputs equal each clip run at its own length, and remat changes
    nothing."""
    enc = import_dir("hf", hf_whisper[0], tmp_path)
    rng = np.random.default_rng(3)
    lengths = [80, 57, 30]
    x = np.zeros((3, 80, N_MELS), np.float32)
    for i, n in enumerate(lengths):
        x[i, :n] = rng.normal(size=(n, N_MELS))
        x[i, n:] = 100.0  # garbage in the padding must not reach valid frames
    mask = np.arange(80)[None] < np.array(lengths)[:, None]
    batch = _ours(enc, x, mask)
    assert batch.mask.sum(-1).tolist() == [(n - 1) // 2 + 1 for n in lengths]
    for i, n in enumerate(lengths):
        alone = _ours(enc, x[i:i + 1, :n])
        valid = np.asarray(batch.mask)[i:i + 1]  # numpy slices: eager ones compile each
        for a, b in zip(alone.hidden_states, batch.hidden_states, strict=True):
            assert max_abs_diff(a, np.asarray(b)[i:i + 1, : a.shape[1]], valid[:, : a.shape[1]]) \
                <= 1e-5
    rem = _ours(enc, x, mask, remat=True)
    for a, b in zip(rem.hidden_states, batch.hidden_states, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_kernel_path_equals_xla(hf_whisper, tmp_path):
    """The Pallas attention kernel (interpret mode) inside the encoder, forward and gradients."""
    enc = import_dir("hf", hf_whisper[0], tmp_path)
    x = np.random.default_rng(4).normal(size=(2, 50, N_MELS)).astype(np.float32)
    mask = np.arange(50)[None] < np.array([50, 33])[:, None]

    def run(impl):
        def loss(params):
            o = enc.module(implementation=impl).apply({"params": params}, x, mask)
            return jnp.sum(jnp.where(o.mask[..., None], o.hidden_states[-1], 0.0) ** 2), o
        (value, out), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(
            enc.variables["params"])  # jitted: eagerly, one compile per op
        return out, grads

    (o_x, g_x), (o_k, g_k) = run("xla"), run("interpret")
    for a, b in zip(o_x.hidden_states, o_k.hidden_states, strict=True):
        assert max_abs_diff(a, b, o_x.mask) <= 1e-5
    for a, b in zip(jax.tree.leaves(g_x), jax.tree.leaves(g_k), strict=True):
        assert max_abs_diff(a, b) <= 1e-4 * max(1.0, float(np.abs(np.asarray(a)).max()))


@pytest.fixture(scope="module")
def ct2_whisper(hf_whisper, tmp_path_factory):
    ctranslate2 = pytest.importorskip("ctranslate2", reason="needs ctranslate2 (ref extra)")
    from ctranslate2.converters import TransformersConverter

    root = tmp_path_factory.mktemp("ct2")
    TransformersConverter(str(hf_whisper[0])).convert(str(root / "f32"))
    TransformersConverter(str(hf_whisper[0])).convert(str(root / "int8"), quantization="int8")
    return ctranslate2, root


def test_ctranslate2_own_length(ct2_whisper, tmp_path):
    """Our import of CTranslate2's model.bin equals ctranslate2's own encode at each clip's own
    length (which Hugging Face's encoder does not accept: it wants the full window)."""
    ctranslate2, root = ct2_whisper
    enc = import_dir("ctranslate2", root / "f32", tmp_path)
    ct = ctranslate2.models.Whisper(str(root / "f32"), device="cpu", compute_type="float32")
    rng = np.random.default_rng(5)
    for n in (80, 46, 13):
        x = rng.normal(size=(1, n, N_MELS)).astype(np.float32)
        ref = np.asarray(ct.encode(ctranslate2.StorageView.from_array(
            np.ascontiguousarray(x.transpose(0, 2, 1))), to_cpu=True))
        assert max_abs_diff(_ours(enc, x).hidden_states[-1], ref) <= 1e-4


def test_ctranslate2_int8_dequantized(ct2_whisper, hf_whisper, tmp_path):
    """int8 weights come back within half a quantisation step of the float weights."""
    _, root = ct2_whisper
    q = import_dir("ctranslate2", root / "int8", tmp_path / "q").variables["params"]
    f = import_dir("hf", hf_whisper[0], tmp_path / "f").variables["params"]
    w_q = q["layers_0"]["ffn"]["fc1"]["kernel"]  # [D, F]
    w_f = f["layers_0"]["ffn"]["fc1"]["kernel"]
    step = np.abs(w_f).max(axis=0, keepdims=True) / 127.0  # per output row of the torch weight
    assert not np.array_equal(w_q, w_f)
    assert np.all(np.abs(w_q - w_f) <= 0.5 * step + 1e-7)
