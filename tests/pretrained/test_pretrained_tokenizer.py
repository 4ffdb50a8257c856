"""The pretrained-encoder tokenizer against transformers: a WordPiece (BERT) and a byte-level BPE
(RoBERTa) tokenizer trained here on a few dozen sentences with non-ASCII text, saved through
transformers, read back by :class:`PretrainedTokenizer`; ids and masks must equal transformers'
exactly. Then an imported encoder carries the tokenizer.json, and the tokens it gives run
through the imported RoBERTa as transformers' run through the reference model."""

import subprocess
import sys

import numpy as np
import pytest

tokenizers = pytest.importorskip("tokenizers", reason="needs the tokenizers package")
transformers = pytest.importorskip(
    "transformers", reason="the reference tokenizers need transformers (the ref extra)")

from mmer_jax.data.pretrained_tokenizer import PretrainedTokenizer  # noqa: E402
from mmer_jax.errors import CheckpointError  # noqa: E402

CORPUS = [
    "The café was closed, so we didn’t stay long.",
    "Ich möchte Äpfel und Öl kaufen, bitte schön!",
    "Don’t you think it's über-cool?",
    "I am so happy today, everything went right!",
    "Why would you do that to me?",
    "She screamed in fear when the lights went out.",
    "Größe, Straße, Fußball und Käse.",
    "A naïve résumé about coöperation.",
    "He's furious: \"Never again,\" he said.",
    "We can't believe it — it's wonderful news!",
    "Das Wetter ist heute wirklich schrecklich.",
    "I feel sad and tired, I don't know why.",
    "Oh no… that's disgusting!",
    "What a surprise to see you here!",
    "Okay. Fine. Whatever you say.",
    "Je suis très content de vous voir, ça va?",
]
TEXTS = [
    "The café was closed; I didn’t mind.",
    "Über Größe spricht man nicht!",
    "",
    "ok",
    "Unseen words: zygote, quixotic, ωμέγα, 日本語, emoji 😀.",
    "A rather long sentence that goes on and on so that truncation has to cut it somewhere "
    "before its end, with Äpfel and café thrown in.",
]


def _bert_tokenizer():
    from tokenizers import decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = tokenizers.Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(CORPUS * 2, trainers.WordPieceTrainer(vocab_size=200,
                                                                  special_tokens=specials))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    tok.decoder = decoders.WordPiece()
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]")


def _roberta_tokenizer():
    from tokenizers import decoders, models, pre_tokenizers, processors, trainers

    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(CORPUS * 2, trainers.BpeTrainer(
        vocab_size=320, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
        pad_token="<pad>", cls_token="<s>", sep_token="</s>", mask_token="<mask>")


BUILD = {"bert": _bert_tokenizer, "roberta": _roberta_tokenizer}


@pytest.fixture(scope="module", params=["bert", "roberta"])
def saved(request, tmp_path_factory):
    """(kind, directory holding the saved tokenizer, transformers' tokenizer loaded from it)."""
    directory = tmp_path_factory.mktemp(f"{request.param}-tokenizer")
    BUILD[request.param]().save_pretrained(directory)
    return request.param, directory, transformers.AutoTokenizer.from_pretrained(directory)


@pytest.mark.parametrize("max_length", [3, 7, 16, 64])
def test_ids_and_masks_equal_transformers(saved, max_length):
    kind, directory, hf = saved
    ours = PretrainedTokenizer.from_file(directory / "tokenizer.json")
    ids, mask = ours.encode(TEXTS, max_length)
    ref = hf(TEXTS, padding=True, truncation=True, max_length=max_length)
    assert ids.dtype == np.int32 and mask.dtype == bool
    np.testing.assert_array_equal(ids, np.asarray(ref["input_ids"]))
    np.testing.assert_array_equal(mask, np.asarray(ref["attention_mask"], bool))
    assert ours.pad_id == hf.pad_token_id == {"bert": 0, "roberta": 1}[kind]
    first = {"bert": "[CLS]", "roberta": "<s>"}[kind]
    assert (ids[:, 0] == ours.token_to_id(first)).all()

    fixed, fixed_mask = ours.encode(TEXTS, max_length, pad_to_max_length=True)
    assert fixed.shape == (len(TEXTS), max_length)
    np.testing.assert_array_equal(fixed[:, :ids.shape[1]], ids)
    assert (fixed[:, ids.shape[1]:] == ours.pad_id).all() and not fixed_mask[:, ids.shape[1]:].any()


def test_reads_a_directory_and_counts_special_tokens(saved):
    _, directory, hf = saved
    ours = PretrainedTokenizer.from_file(directory)  # a directory: its tokenizer.json
    assert ours.num_special_tokens == 2
    assert ours.vocab_size == len(hf)


def test_errors_are_clear(saved, tmp_path):
    _, directory, _ = saved
    ours = PretrainedTokenizer.from_directory(directory)
    with pytest.raises(ValueError, match="no texts"):
        ours.encode([], 8)
    with pytest.raises(TypeError, match="not a str"):
        ours.encode(["fine", b"caf\xc3\xa9"], 8)
    with pytest.raises(ValueError, match="max_length=2"):
        ours.encode(["fine"], 2)
    missing = tmp_path / "nowhere" / "tokenizer.json"
    with pytest.raises(CheckpointError, match=str(missing)):
        PretrainedTokenizer.from_file(missing)
    with pytest.raises(CheckpointError, match=f"{tmp_path}: no tokenizer.json"):
        PretrainedTokenizer.from_directory(tmp_path)
    bad = tmp_path / "tokenizer.json"
    bad.write_text("{not json")
    with pytest.raises(CheckpointError, match="not a readable tokenizer.json"):
        PretrainedTokenizer.from_file(bad)


def test_importable_without_jax_or_transformers():
    code = ("import sys, mmer_jax.data.pretrained_tokenizer as m; "
            "bad = {'jax', 'torch', 'transformers', 'flax'} & set(sys.modules); "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_imported_encoder_carries_the_tokenizer_and_matches_end_to_end(tmp_path):
    torch = pytest.importorskip("torch", reason="the reference model needs torch")
    import jax.numpy as jnp

    from tests.pretrained import reference

    hf_tok = _roberta_tokenizer()
    torch.manual_seed(0)
    model = transformers.RobertaModel(transformers.RobertaConfig(
        vocab_size=len(hf_tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=37, max_position_embeddings=66, type_vocab_size=1,
        pad_token_id=hf_tok.pad_token_id, layer_norm_eps=1e-5, initializer_range=0.2)).eval()
    src = tmp_path / "hf"
    model.save_pretrained(src)
    hf_tok.save_pretrained(src)
    enc = reference.import_dir("hf", src, tmp_path)
    assert (enc.path / "tokenizer.json").is_file()
    assert enc.record["assets"] == ["tokenizer.json"]
    assert "tokenizer.json" in [f["name"] for f in enc.record["source"]["files"]]

    tok = PretrainedTokenizer.from_directory(enc.path)
    ids, mask = tok.encode(TEXTS, enc.config.max_positions)
    ref_tok = transformers.AutoTokenizer.from_pretrained(src)(
        TEXTS, padding=True, truncation=True, max_length=enc.config.max_positions,
        return_tensors="pt")
    np.testing.assert_array_equal(ids, ref_tok["input_ids"].numpy())
    out = enc.module().apply(enc.variables, jnp.asarray(ids), jnp.asarray(mask))
    with torch.no_grad():
        ref = model(**ref_tok, output_hidden_states=True).hidden_states
    reference.assert_states_close(out.hidden_states, tuple(h.numpy() for h in ref), mask)
