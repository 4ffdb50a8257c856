"""Tiny random imports for the tests of models that hold an imported encoder (encoders
``imported`` / ``imported_lstm``, systems ``ssl_finetune`` and the seed systems' pretrained
branches): written with numpy (Whisper) or the reference packages when installed (BERT / RoBERTa
with a trained tokenizer.json, torchvision ResNet-18), imported through ``mmer encoders
import``'s code path."""

from __future__ import annotations

import pathlib

from mmer_jax.weights import importer
from tests.pretrained.reference import write_hf_whisper

WHISPER = dict(d=16, ffn=32, heads=2, layers=2, mels=80, positions=200)


def whisper(root: pathlib.Path, seed: int = 0) -> str:
    """A 2-layer, 16-wide random Whisper import (positions for 4 s of audio)."""
    write_hf_whisper(root / "hf-whisper", seed=seed, **WHISPER)
    return str(importer.import_checkpoint("hf", root / "hf-whisper", root / "whisper-tiny"))


SENTENCES = ["the cat sat on the mat", "i am so happy today", "why would you say that",
             "this is terrible news", "okay fine whatever", "what a wonderful surprise",
             "I feel angry and sad", "neutral words in a row"] * 4


def roberta(root: pathlib.Path) -> str:
    """A 2-layer, 32-wide random RoBERTa import with a byte-level BPE ``tokenizer.json`` trained
    on a few sentences (needs torch, transformers and tokenizers)."""
    import tokenizers
    import torch
    import transformers
    from tokenizers import decoders, models, pre_tokenizers, processors, trainers

    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(SENTENCES, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    hf = root / "hf-roberta"
    hf.mkdir(parents=True, exist_ok=True)
    tok.save(str(hf / "tokenizer.json"))
    torch.manual_seed(0)
    cfg = transformers.RobertaConfig(vocab_size=tok.get_vocab_size(), hidden_size=32,
                                     num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=37, max_position_embeddings=80,
                                     type_vocab_size=1, pad_token_id=1, layer_norm_eps=1e-5)
    transformers.RobertaModel(cfg).eval().save_pretrained(hf)
    return str(importer.import_checkpoint("hf", hf, root / "roberta-tiny"))


def resnet18(root: pathlib.Path) -> str:
    """A random torchvision ResNet-18 import (needs torch and torchvision)."""
    import torch
    import torchvision

    torch.manual_seed(0)
    path = root / "resnet18.pth"
    root.mkdir(parents=True, exist_ok=True)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    return str(importer.import_checkpoint("torchvision", path, root / "resnet18-tiny",
                                          arch="resnet18"))
