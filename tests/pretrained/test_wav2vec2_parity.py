"""wav2vec 2.0 and HuBERT against transformers' Wav2Vec2Model and HubertModel.

Small random-initialised references (LayerNorm / GroupNorm affines, weight-norm magnitudes and
biases randomised so their mappings are tested) are saved by transformers -- safetensors through
``save_pretrained``, or a torch zip ``pytorch_model.bin`` from ``torch.save`` of the state dict,
read by our torch-free unpickler -- and imported through ``mmer encoders import``'s code path.
Every hidden state is compared at 1e-4 (float32), unpadded and on a padded batch against each
waveform run alone, and gradients against torch autograd.

transformers 5.x returns the pre-LN (stable) stacks' last hidden state before the final
LayerNorm in ``hidden_states`` and after it in ``last_hidden_state``; ours gives the latter as the
last entry (see ``mmer_jax.models.pretrained.wav2vec2``), so it is compared with
``last_hidden_state``.
"""

from __future__ import annotations

import dataclasses
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmer_jax.errors import CheckpointError
from mmer_jax.weights import importer
from tests.pretrained.reference import assert_states_close, import_dir, max_abs_diff

torch = pytest.importorskip("torch", reason="parity tests need the ref extra (torch)")
transformers = pytest.importorskip("transformers", reason="parity tests need transformers")

SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
             conv_dim=(16, 24, 20), conv_kernel=(10, 3, 2), conv_stride=(5, 2, 2),
             num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
LENGTHS = (1600, 1130)  # samples: 79 and 55 frames (20 samples per frame)


@dataclasses.dataclass(frozen=True)
class Case:
    kind: str  # "wav2vec2" or "hubert"
    norm: str  # feat_extract_norm
    stable: bool  # do_stable_layer_norm
    fmt: str  # "safetensors" or "bin"
    extra: tuple = ()  # config overrides
    do_normalize: bool | None = None  # preprocessor_config.json's, None: no such file

    @property
    def id(self) -> str:
        return f"{self.kind}-{self.norm}-{'preLN' if self.stable else 'postLN'}-{self.fmt}"


CASES = (
    # wav2vec2-base-960h's layout, saved as a ForCTC model (tensors under "wav2vec2.", lm_head
    # left), with its preprocessor_config.json asking for normalisation
    Case("wav2vec2", "group", False, "safetensors", do_normalize=True),
    # wav2vec2-large-lv60's layout; no preprocessor_config.json: normalised (layer norm)
    Case("wav2vec2", "layer", True, "safetensors", (("conv_bias", True),)),
    # HuBERT without the projection's LayerNorm, from pytorch_model.bin with the legacy
    # weight_g / weight_v names of the positional weight norm
    Case("hubert", "group", False, "bin", (("feat_proj_layer_norm", False),)),
)


def randomise(model) -> None:
    """Norm affines, weight-norm magnitudes and biases away from their 1 / 0 initialisation."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ("norm" in name or "original0" in name or "weight_g" in name
                    or name.endswith("bias") or "gru_rel_pos_const" in name):
                p.add_(0.3 * torch.randn(p.shape, generator=gen))


@dataclasses.dataclass
class Built:
    case: Case
    ref: object  # the transformers base model (eval mode)
    enc: object  # our ImportedEncoder
    run: object  # jitted (params, x, mask, w) -> (EncoderOutput, grads of loss)


def loss_and_outputs(module):
    """jitted (params, x, mask, w) -> (outputs, d sum(w * valid last_hidden_state) / d params):
    one compilation serves every test of a model."""

    def run(params, x, mask, w):
        def loss(p):
            out = module.apply({"params": p}, x, mask)
            return jnp.sum(jnp.where(out.mask[..., None], out.last_hidden_state, 0.0) * w), out

        (_, out), grads = jax.value_and_grad(loss, has_aux=True)(params)
        return out, grads

    return jax.jit(run)


def build(case: Case, root) -> Built:
    """Saves the case's reference into ``root / "hf"`` and imports it."""
    cls = {"wav2vec2": (transformers.Wav2Vec2Config, transformers.Wav2Vec2ForCTC),
           "hubert": (transformers.HubertConfig, transformers.HubertModel)}[case.kind]
    cfg = cls[0](**SMALL, feat_extract_norm=case.norm, do_stable_layer_norm=case.stable,
                 vocab_size=12, **dict(case.extra))
    torch.manual_seed(0)
    model = cls[1](cfg).eval()
    randomise(model)
    src = root / "hf"
    if case.fmt == "safetensors":
        model.save_pretrained(src)
    else:
        src.mkdir(parents=True)
        legacy = {k.replace("parametrizations.weight.original0", "weight_g")
                  .replace("parametrizations.weight.original1", "weight_v"): v
                  for k, v in model.state_dict().items()}
        torch.save(legacy, src / "pytorch_model.bin")
        cfg.to_json_file(src / "config.json")
    if case.do_normalize is not None:
        (src / "preprocessor_config.json").write_text(json.dumps(
            {"feature_extractor_type": "Wav2Vec2FeatureExtractor",
             "do_normalize": case.do_normalize, "sampling_rate": 16000, "padding_value": 0.0}))
    enc = import_dir("hf", src, root)
    ref = model.wav2vec2 if case.kind == "wav2vec2" else model
    return Built(case, ref, enc, loss_and_outputs(enc.module()))


@pytest.fixture(scope="module", params=CASES, ids=lambda c: c.id)
def built(request, tmp_path_factory) -> Built:
    return build(request.param, tmp_path_factory.mktemp(request.param.id))


def waveforms(seed: int, lengths=LENGTHS, pad_value: float = 3.0):
    """Raw waveforms (list), their padded batch [B, S] (``pad_value`` in the padding, which must
    not reach a valid frame) and its mask."""
    rng = np.random.default_rng(seed)
    raw = [(0.5 * rng.normal(size=n) + 0.2).astype(np.float32) for n in lengths]
    s = max(lengths)
    x = np.full((len(raw), s), pad_value, np.float32)
    for i, r in enumerate(raw):
        x[i, : len(r)] = r
    return raw, x, np.arange(s)[None] < np.array(lengths)[:, None]


def ref_input(b: Built, raw: list, mask=None) -> np.ndarray:
    """What Hugging Face's feature extractor hands the model: the (padded) waveforms,
    standardised per utterance when the import's config asks for it."""
    s = max(len(r) for r in raw)
    if b.enc.config.normalize_input:
        raw = transformers.Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm(
            [np.pad(r, (0, s - len(r))) for r in raw],
            None if mask is None else mask.astype(np.int32))
    return np.stack([np.pad(r, (0, s - len(r))) for r in raw]).astype(np.float32)


def ref_states(b: Built, x: np.ndarray, mask=None) -> list[np.ndarray]:
    """The reference's hidden states, the last one after the final LayerNorm."""
    with torch.no_grad():
        out = b.ref(torch.from_numpy(x), attention_mask=None if mask is None
                    else torch.from_numpy(mask.astype(np.int64)), output_hidden_states=True)
    states = [h.numpy() for h in out.hidden_states]
    if b.case.stable:  # transformers 5.x: hidden_states[-1] precedes the final LayerNorm
        np.testing.assert_allclose(
            torch.nn.functional.layer_norm(
                out.hidden_states[-1], (states[-1].shape[-1],),
                b.ref.encoder.layer_norm.weight, b.ref.encoder.layer_norm.bias,
                b.ref.config.layer_norm_eps).detach().numpy(),
            out.last_hidden_state.numpy(), atol=1e-6)
    else:
        np.testing.assert_array_equal(states[-1], out.last_hidden_state.numpy())
    return states[:-1] + [out.last_hidden_state.numpy()]


def test_import_record(built):
    enc, case = built.enc, built.case
    assert enc.record["architecture"] == case.kind
    assert enc.config.do_stable_layer_norm == case.stable
    assert enc.config.feat_extract_norm == case.norm
    # preprocessor_config.json's do_normalize where present, else feat_extract_norm == "layer"
    want = case.norm == "layer" if case.do_normalize is None else case.do_normalize
    assert enc.config.normalize_input == want
    ignored = enc.record["ignored_tensors"]
    assert any(n.endswith("masked_spec_embed") for n in ignored)
    if case.kind == "wav2vec2" and not case.stable:
        assert "lm_head.weight" in ignored  # saved from Wav2Vec2ForCTC
    ckpt = importer.read_checkpoint("hf", enc.record["source"]["path"])
    assert importer.convert(ckpt).name == f"{case.kind}-32x2"  # "-base" at (768, 12)
    names = [f["name"] for f in enc.record["source"]["files"]]
    assert ("pytorch_model.bin" if case.fmt == "bin" else "model.safetensors") in names


W = np.random.default_rng(9).normal(size=(2, 79, SMALL["hidden_size"])).astype(np.float32)


def ours_of(b: Built, x, mask):
    """Our outputs and gradients (same shapes in every test, so one compilation)."""
    return b.run(b.enc.variables["params"], x, mask, W)


def test_unpadded_every_hidden_state(built):
    raw, x, mask = waveforms(0, (LENGTHS[0], LENGTHS[0]))
    ours, _ = ours_of(built, x, mask)
    ref = ref_states(built, ref_input(built, raw))
    assert_states_close(ours.hidden_states, ref, atol=1e-4)


def test_padded_batch_equals_each_waveform_alone(built):
    raw, x, mask = waveforms(1)
    ours, _ = ours_of(built, x, mask)
    frames = [int(n) for n in np.asarray(ours.mask).sum(-1)]
    assert frames == [(((n - 10) // 5 + 1 - 3) // 2 + 1 - 2) // 2 + 1 for n in LENGTHS]
    for i, r in enumerate(raw):
        ref = ref_states(built, ref_input(built, [r]))
        t = ref[0].shape[1]
        assert t == frames[i]
        assert_states_close([np.asarray(h[i:i + 1, :t]) for h in ours.hidden_states], ref,
                            atol=1e-4)
    if built.case.norm == "layer":
        # no leak in the layer-norm extractor: the reference's own padded batch agrees too
        ref = ref_states(built, ref_input(built, raw, mask), mask)
        assert_states_close(ours.hidden_states, ref, valid=ours.mask, atol=1e-4)


def _ref_grads(b: Built, raw: list, w: np.ndarray) -> dict:
    """d sum(w * last_hidden_state) / d(a few tensors), each waveform run alone (summed)."""
    b.ref.zero_grad()
    for i, r in enumerate(raw):
        out = b.ref(torch.from_numpy(ref_input(b, [r]))).last_hidden_state
        (out * torch.from_numpy(w[i:i + 1, : out.shape[1]])).sum().backward()
    fe, enc = b.ref.feature_extractor, b.ref.encoder
    wn = enc.pos_conv_embed.conv.parametrizations.weight
    grads = {
        ("layers_0", "ffn", "fc1", "kernel"):
            enc.layers[0].feed_forward.intermediate_dense.weight.grad.numpy().T,
        ("layers_1", "attention", "query", "kernel"):
            enc.layers[1].attention.q_proj.weight.grad.numpy().T.reshape(32, 4, 8),
        ("feature_extractor", "conv_0", "kernel"):
            fe.conv_layers[0].conv.weight.grad.numpy().transpose(2, 1, 0),
        ("feature_extractor", "norm_0", "scale"): fe.conv_layers[0].layer_norm.weight.grad.numpy(),
        ("pos_conv", "weight_g"): wn.original0.grad.numpy().reshape(-1),
        ("pos_conv", "weight_v"): wn.original1.grad.numpy().transpose(2, 1, 0),
    }
    b.ref.zero_grad()
    return grads


def _pick(tree, path):
    for k in path:
        tree = tree[k]
    return np.asarray(tree)


def test_gradients_padded_batch(built):
    """Gradients of a padded batch's valid outputs against torch autograd on each waveform
    alone (the masked GroupNorm statistics and the frame mask in the backward pass)."""
    raw, x, mask = waveforms(2)
    _, ours = ours_of(built, x, mask)
    refs = _ref_grads(built, raw, W)
    # relative to each tensor's largest gradient, with a floor for a tensor whose gradient is
    # itself at the rounding level of the rest (a near-uniform attention's query kernel)
    floor = 1e-2 * max(np.abs(r).max() for r in refs.values())
    for path, ref in refs.items():
        rel = max_abs_diff(_pick(ours, path), ref) / max(np.abs(ref).max(), floor)
        assert rel <= 1e-4, (path, rel)


def test_hidden_size_disagreeing_with_tensors(built, tmp_path):
    """A config.json whose hidden_size the tensors do not have: one line naming the weight
    file and the tensor."""
    if built.case != CASES[0]:
        pytest.skip("once is enough")
    src = built.enc.record["source"]["path"]
    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(f"{src}/model.safetensors", bad / "model.safetensors")
    with open(f"{src}/config.json") as f:
        cfg = json.load(f)
    cfg["hidden_size"] = 48
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError) as err:
        import_dir("hf", bad, tmp_path)
    msg = str(err.value)
    assert "\n" not in msg
    assert str(bad / "model.safetensors") in msg
    assert "wav2vec2.feature_projection.projection.weight" in msg


def test_positional_weight_without_weight_norm(built, tmp_path):
    """A state dict whose positional convolution has its weight norm folded into a plain
    ``weight`` imports as g = ||weight|| per tap, v = weight: the same outputs."""
    if built.case != CASES[0]:
        pytest.skip("once is enough")
    name = "wav2vec2.encoder.pos_conv_embed.conv"
    state = built.ref.state_dict()
    with torch.no_grad():
        folded = {("wav2vec2." + k): v for k, v in state.items() if "parametrizations" not in k}
        folded[f"{name}.weight"] = built.ref.encoder.pos_conv_embed.conv.weight.detach().clone()
    src = tmp_path / "folded"
    src.mkdir()
    torch.save(folded, src / "pytorch_model.bin")
    built.ref.config.to_json_file(src / "config.json")
    enc = import_dir("hf", src, tmp_path)
    _, x, mask = waveforms(1)
    ours, _ = ours_of(built, x, mask)
    plain, _ = built.run(enc.variables["params"], x, mask, W)
    assert_states_close(plain.hidden_states, ours.hidden_states, valid=ours.mask, atol=1e-5)
