"""BERT and RoBERTa against transformers: small random models saved as Hugging Face directories
(safetensors from ``save_pretrained``; a torch-zip ``pytorch_model.bin`` of a task model, read
without torch), imported through ``mmer encoders import``'s code path, every hidden state
compared on the valid tokens, padded and not; one layer's gradient against torch autograd;
remat; and the import's shape errors."""

import functools
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the parity reference needs torch (the ref extra)")
transformers = pytest.importorskip(
    "transformers", reason="the parity reference needs transformers (the ref extra)")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from mmer_jax.errors import CheckpointError  # noqa: E402
from tests.pretrained import reference  # noqa: E402

VOCAB = 180  # about the size of the tokenizers trained in test_pretrained_tokenizer.py
PAD = {"bert": 0, "roberta": 1}
CASES = [  # (architecture, file written, model class saved)
    ("bert", "safetensors", "BertModel"),
    ("bert", "bin", "BertForMaskedLM"),
    ("roberta", "safetensors", "RobertaModel"),
    ("roberta", "bin", "RobertaForSequenceClassification"),
]


def _hf_config(kind: str):
    common = dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=37, max_position_embeddings=40,
                  # Larger weights than the default 0.02 make attention far from uniform, so a
                  # wrong mask or position shows.
                  initializer_range=0.2)
    if kind == "bert":
        return transformers.BertConfig(**common)
    return transformers.RobertaConfig(**common, type_vocab_size=1, pad_token_id=PAD["roberta"],
                                      layer_norm_eps=1e-5)


def _hf_model(kind: str, cls_name: str):
    torch.manual_seed(0 if kind == "bert" else 1)
    model = getattr(transformers, cls_name)(_hf_config(kind)).eval()
    # Random LayerNorm affine parameters (they initialise to 1 / 0, which would hide a mix-up).
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.2)
    return model


def _save(model, directory, fmt: str):
    if fmt == "safetensors":
        model.save_pretrained(directory)
    else:  # config.json + a plain torch.save state dict, no safetensors beside it
        directory.mkdir(parents=True)
        model.config.save_pretrained(directory)
        torch.save(model.state_dict(), directory / "pytorch_model.bin")
    return directory


@pytest.fixture(scope="module", params=CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def imported(request, tmp_path_factory):
    """(architecture, torch encoder, ImportedEncoder)."""
    kind, fmt, cls_name = request.param
    tmp = tmp_path_factory.mktemp(f"{kind}-{fmt}")
    model = _hf_model(kind, cls_name)
    enc = reference.import_dir("hf", _save(model, tmp / "hf", fmt), tmp)
    return kind, model.base_model, enc


def _batch(kind: str, padded: bool):
    rng = np.random.RandomState(3)
    ids = rng.randint(3, VOCAB, (3, 11)).astype(np.int32)  # never a pad id
    lengths = [11, 6, 2] if padded else [11, 11, 11]
    mask = np.arange(11)[None] < np.asarray(lengths)[:, None]
    ids[~mask] = PAD[kind]
    return ids, mask


@functools.partial(jax.jit, static_argnums=0)
def _apply(module, variables, ids, mask):
    # One compiled program per module config: faster here than op-by-op dispatch.
    return module.apply(variables, ids, mask)


def _reference_states(encoder, ids, mask):
    with torch.no_grad():
        out = encoder(torch.tensor(ids, dtype=torch.long),
                      attention_mask=torch.tensor(mask.astype(np.int64)),
                      output_hidden_states=True)
    return tuple(h.numpy() for h in out.hidden_states)


@pytest.mark.parametrize("padded", [True, False], ids=["padded", "unpadded"])
def test_hidden_states_match_transformers(imported, padded):
    kind, encoder, enc = imported
    assert enc.record["architecture"] == kind
    ids, mask = _batch(kind, padded)
    out = _apply(enc.module(), enc.variables, jnp.asarray(ids), jnp.asarray(mask))
    ref = _reference_states(encoder, ids, mask)
    assert len(out.hidden_states) == encoder.config.num_hidden_layers + 1 == len(ref)
    np.testing.assert_array_equal(np.asarray(out.mask), mask)
    diffs = reference.assert_states_close(out.hidden_states, ref, mask, atol=1e-4)
    print(f"{kind} {enc.record['source']['files'][-1]['name']} padded={padded}: {diffs}")


def test_import_leaves_out_heads_and_reads_the_config(imported):
    kind, encoder, enc = imported
    ignored = enc.record["ignored_tensors"]
    assert not any(".encoder.layer." in t or t.startswith("encoder.") for t in ignored), ignored
    assert enc.config.position_scheme == kind
    assert enc.config.layer_norm_eps == encoder.config.layer_norm_eps
    assert enc.config.pad_token_id == encoder.config.pad_token_id
    if enc.record["source"]["files"][-1]["name"] == "pytorch_model.bin":
        assert any(t.startswith(("cls.", "classifier.")) for t in ignored), ignored


@functools.partial(jax.jit, static_argnums=0)
def _ffn_gradient(module, variables, ids, mask, w):
    def loss(params):
        out = module.apply({"params": params}, ids, mask)
        return jnp.sum(w * out.last_hidden_state)

    return jax.grad(loss)(variables["params"])["layers_0"]["ffn"]["fc1"]["kernel"]


@pytest.mark.parametrize("kind", ["bert", "roberta"])
def test_ffn_gradient_matches_torch_autograd(kind, tmp_path):
    model = _hf_model(kind, "BertModel" if kind == "bert" else "RobertaModel")
    enc = reference.import_dir("hf", _save(model, tmp_path / "hf", "safetensors"), tmp_path)
    ids, mask = _batch(kind, padded=True)
    # Padded positions' outputs are unspecified, so they carry no weight.
    w = np.random.RandomState(5).randn(*ids.shape, 32).astype(np.float32) * mask[..., None]

    out = model(torch.tensor(ids, dtype=torch.long),
                attention_mask=torch.tensor(mask.astype(np.int64)))
    (torch.tensor(w) * out.last_hidden_state).sum().backward()
    ref = model.encoder.layer[0].intermediate.dense.weight.grad.numpy().T  # [D, F]

    args = (enc.variables, jnp.asarray(ids), jnp.asarray(mask), jnp.asarray(w))
    ours = np.asarray(_ffn_gradient(enc.module(), *args))
    rel = np.abs(ours - ref).max() / np.abs(ref).max()
    print(f"{kind} d/d layer-0 fc1: relative max difference {rel:.2e}")
    assert rel < 1e-4, rel
    # Rematerialised layers: the same outputs and the same gradient.
    remat = np.asarray(_ffn_gradient(enc.module(remat=True), *args))
    # Up to float32 rounding: XLA fuses the recomputed forward differently.
    np.testing.assert_allclose(remat, ours, rtol=0, atol=1e-5 * np.abs(ours).max())
    plain = _apply(enc.module(), *args[:3])
    again = _apply(enc.module(remat=True), *args[:3])
    for a, b in zip(plain.hidden_states, again.hidden_states, strict=True):
        np.testing.assert_allclose(np.asarray(a)[mask], np.asarray(b)[mask], atol=1e-5)


def test_tensorflow_era_gamma_beta_names_are_read(tmp_path):
    from safetensors.torch import save_file

    model = _hf_model("bert", "BertModel")
    src = tmp_path / "hf"
    src.mkdir()
    model.config.save_pretrained(src)
    renamed = {k.replace("LayerNorm.weight", "LayerNorm.gamma")
               .replace("LayerNorm.bias", "LayerNorm.beta"): v.contiguous()
               for k, v in model.state_dict().items()}
    save_file(renamed, src / "model.safetensors")
    enc = reference.import_dir("hf", src, tmp_path)
    ids, mask = _batch("bert", padded=True)
    out = _apply(enc.module(), enc.variables, jnp.asarray(ids), jnp.asarray(mask))
    reference.assert_states_close(out.hidden_states, _reference_states(model, ids, mask), mask)


def test_hidden_size_disagreeing_with_the_tensors_names_file_and_tensor(tmp_path):
    src = _save(_hf_model("bert", "BertModel"), tmp_path / "hf", "safetensors")
    config = json.loads((src / "config.json").read_text())
    config["hidden_size"] = 48
    (src / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError) as err:
        reference.import_dir("hf", src, tmp_path)
    message = str(err.value)
    assert str(src) in message and "embeddings.word_embeddings.weight" in message, message
    assert "[180, 32]" in message and "[180, 48]" in message, message


def test_input_longer_than_the_position_table_is_refused():
    from mmer_jax.models.pretrained.bert import BertConfig, BertEncoder

    cfg = BertConfig(vocab_size=10, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=16, max_position_embeddings=10, pad_token_id=1,
                     position_scheme="roberta")
    assert cfg.max_positions == 8
    ids = jnp.zeros((1, 9), jnp.int32)
    with pytest.raises(ValueError, match="9 tokens exceed the 8"):
        jax.eval_shape(lambda: BertEncoder(cfg).init(jax.random.PRNGKey(0), ids))


def test_default_names_come_from_the_sizes():
    from mmer_jax.models.pretrained.bert import BertConfig
    from mmer_jax.weights.convert import bert as convert_bert

    base = BertConfig()
    large = BertConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16)
    assert convert_bert._name("bert", base) == "bert-base"
    assert convert_bert._name("roberta", large) == "roberta-large"
    assert convert_bert._name("roberta", BertConfig(hidden_size=32, num_hidden_layers=2,
                                                    num_attention_heads=4)) == "roberta-32x2"
