"""The subword tokenizer a pretrained text encoder (BERT, RoBERTa) was trained with, read from
the ``tokenizer.json`` that Hugging Face saves beside a model (and that ``mmer encoders import``
copies into the imported encoder's directory).

It runs the file's own pipeline through the ``tokenizers`` package (no transformers at run time):
normalizer, pre-tokenizer, WordPiece or byte-level BPE model, and the post-processor that adds
the special tokens (``[CLS] ... [SEP]`` for BERT, ``<s> ... </s>`` for RoBERTa). Truncation
keeps the special tokens (``max_length`` counts them), padding is on the right with the file's
pad id: the ids and mask equal those of transformers' ``tokenizer(texts, padding=True,
truncation=True, max_length=max_length)``.

Unlike :mod:`mmer_jax.data.text` (a word vocabulary fitted to the training split), the vocabulary
here is the checkpoint's and never changes. Text comes in as ``str``; decoding bytes is the
caller's job. :class:`PretrainedVocab` puts it in the pipeline (``data.tokenizer``), with ids
shifted by one so that 0 stays the padding; :func:`load_vocab` reads a run's ``vocab.json`` of
either kind.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from mmer_jax.errors import CheckpointError

TOKENIZER_JSON = "tokenizer.json"
# Pad tokens of the usual vocabularies, looked for when the file sets no padding.
PAD_TOKENS = ("[PAD]", "<pad>", "<PAD>", "<|pad|>", "[pad]")


class PretrainedTokenizer:
    """A ``tokenizer.json`` pipeline with the encoder's padding convention.

    Build one with :meth:`from_file` (a ``tokenizer.json``) or :meth:`from_directory` (an
    imported encoder or a Hugging Face model directory).

    Args:
      tokenizer: a ``tokenizers.Tokenizer``.
      pad_id: the id padded positions get.
      source: the file it was read from (named in errors).
    """

    def __init__(self, tokenizer, pad_id: int, source: str = "<tokenizer>"):
        self._tokenizer = tokenizer
        self.pad_id = int(pad_id)
        self.source = source
        # Padding is done here, and truncation per call, so whatever the saved file enables
        # (transformers saves its last call's settings) does not leak into our encodings.
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        self._truncation: Optional[int] = None

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "PretrainedTokenizer":
        """Reads a ``tokenizer.json`` (a directory: its ``tokenizer.json``, as
        :meth:`from_directory`).

        The pad id is the file's padding setting when it has one, else the id of the first of
        ``PAD_TOKENS`` in its vocabulary, else ``pad_token`` of a ``tokenizer_config.json``
        beside it.

        Raises:
          CheckpointError: the file is missing or not a tokenizer the ``tokenizers`` package
            reads, or no pad token can be found.
          ImportError: the ``tokenizers`` package is not installed.
        """
        path = Path(path).expanduser()
        if path.is_dir():
            return cls.from_directory(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: no such tokenizer file (a pretrained text encoder "
                                  f"needs the {TOKENIZER_JSON} saved with its checkpoint)")
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ImportError("reading tokenizer.json needs the `tokenizers` package "
                              "(pip install tokenizers)") from exc
        try:
            tokenizer = Tokenizer.from_file(str(path))
            spec = json.loads(path.read_text(encoding="utf-8"))
        except Exception as exc:  # the Rust side raises plain Exception on a malformed file
            raise CheckpointError(f"{path}: not a readable tokenizer.json ({exc})") from None
        return cls(tokenizer, _pad_id(tokenizer, spec, path), str(path))

    @classmethod
    def from_directory(cls, path: str | os.PathLike) -> "PretrainedTokenizer":
        """Reads ``<path>/tokenizer.json`` (an imported encoder, or a Hugging Face model
        directory).

        Raises:
          CheckpointError: as :meth:`from_file`; the message says the directory has no
            tokenizer.json when it is missing.
        """
        path = Path(path).expanduser()
        if not (path / TOKENIZER_JSON).is_file():
            raise CheckpointError(f"{path}: no {TOKENIZER_JSON} (an encoder imported from a "
                                  f"Hugging Face directory carries it when that directory has "
                                  "one)")
        return cls.from_file(path / TOKENIZER_JSON)

    @property
    def vocab_size(self) -> int:
        """Ids the tokenizer can produce, added (special) tokens included."""
        return self._tokenizer.get_vocab_size(with_added_tokens=True)

    @property
    def num_special_tokens(self) -> int:
        """Special tokens the post-processor adds to one text (2 for BERT and RoBERTa)."""
        return self._tokenizer.num_special_tokens_to_add(False)

    def token_to_id(self, token: str) -> Optional[int]:
        """The id of ``token`` (e.g. ``"[CLS]"``), or None when the vocabulary lacks it."""
        return self._tokenizer.token_to_id(token)

    def encode(self, texts: Sequence[str], max_length: int,
               pad_to_max_length: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Tokenizes a batch of texts.

        Args:
          texts: the texts, one per row (``str``, not bytes; a lone ``str`` is one row).
          max_length: at most this many ids per row, special tokens included (longer texts
            lose their end, as transformers' default truncation does).
          pad_to_max_length: pad every row to ``max_length`` (fixed shapes, one compilation)
            instead of to the batch's longest row.

        Returns:
          ``(ids, mask)``: int32 [B, L] ids, right-padded with :attr:`pad_id`, and bool [B, L]
          True on the tokens (a prefix of each row); L is the longest row's length, or
          ``max_length`` with ``pad_to_max_length``.

        Raises:
          ValueError: no texts, or ``max_length`` too small to hold the special tokens.
          TypeError: a text that is not a ``str``.
        """
        texts = list(texts) if not isinstance(texts, str) else [texts]
        if not texts:
            raise ValueError("encode() got no texts (an empty batch)")
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"text {i} is a {type(t).__name__}, not a str (decode bytes "
                                "before tokenizing)")
        if max_length <= self.num_special_tokens:
            raise ValueError(f"max_length={max_length} leaves no room for text beside the "
                             f"{self.num_special_tokens} special tokens")
        if self._truncation != max_length:
            self._tokenizer.enable_truncation(max_length)
            self._truncation = max_length
        rows = [e.ids for e in self._tokenizer.encode_batch(texts, add_special_tokens=True)]
        length = max_length if pad_to_max_length else max(len(r) for r in rows)
        ids = np.full((len(rows), length), self.pad_id, np.int32)
        mask = np.zeros((len(rows), length), bool)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = r
            mask[i, :len(r)] = True
        return ids, mask


def _pad_id(tokenizer, spec: dict, path: Path) -> int:
    padding = spec.get("padding") or {}
    if padding.get("pad_token") is not None and tokenizer.token_to_id(padding["pad_token"]) \
            is not None:
        return int(tokenizer.token_to_id(padding["pad_token"]))
    for token in PAD_TOKENS:
        if tokenizer.token_to_id(token) is not None:
            return int(tokenizer.token_to_id(token))
    config = path.with_name("tokenizer_config.json")
    if config.is_file():
        try:
            pad = json.loads(config.read_text(encoding="utf-8")).get("pad_token")
        except ValueError:
            pad = None
        if isinstance(pad, dict):  # older files store an AddedToken as a dict
            pad = pad.get("content")
        if isinstance(pad, str) and tokenizer.token_to_id(pad) is not None:
            return int(tokenizer.token_to_id(pad))
    raise CheckpointError(f"{path}: no pad token (no padding setting, none of {PAD_TOKENS} in "
                          "the vocabulary, no pad_token in a tokenizer_config.json beside it)")


class PretrainedVocab:
    """A pretrained text encoder's tokenizer in the pipeline's word-tokenizer interface
    (``len``, ``encode``, ``save``), for ``data.tokenizer``.

    Ids are the checkpoint's own, shifted by one (``id + 1``), so that 0 stays the pipeline's
    padding (``tokens > 0`` is the mask) whatever the checkpoint's pad id; the ``imported`` text
    encoder subtracts the one again (``mmer_jax.models.encoders.imported``). Special tokens are
    added as the checkpoint's post-processor adds them, within ``max_len``.

    Args:
      tokenizer: the :class:`PretrainedTokenizer`.
      spec: the ``tokenizer.json`` text it was read from (saved with a run).
    """

    def __init__(self, tokenizer: PretrainedTokenizer, spec: str):
        self.tokenizer = tokenizer
        self.spec = spec

    @classmethod
    def from_path(cls, path: str | os.PathLike) -> "PretrainedVocab":
        """From an imported encoder's directory (its ``tokenizer.json``) or the file itself.

        Raises:
          CheckpointError: as :meth:`PretrainedTokenizer.from_file`.
        """
        p = Path(path).expanduser()
        f = p / TOKENIZER_JSON if p.is_dir() else p
        tok = PretrainedTokenizer.from_file(p)
        return cls(tok, f.read_text(encoding="utf-8"))

    def __len__(self) -> int:
        return self.tokenizer.vocab_size + 1

    def encode(self, text: str, max_len: int | None = None) -> np.ndarray:
        """``text`` -> [L] int32 ids + 1 (no padding), special tokens included, at most
        ``max_len`` (default 512) ids."""
        ids, mask = self.tokenizer.encode([text], max_len or 512)
        return (ids[0][mask[0]] + 1).astype(np.int32)

    def save(self, path: str) -> None:
        """Writes ``{"pretrained_tokenizer": <tokenizer.json text>, "pad_id": ...}`` to
        ``path`` (a run's ``vocab.json``), so the run tokenizes identically without the
        import."""
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"pretrained_tokenizer": self.spec, "pad_id": self.tokenizer.pad_id,
                       "source": self.tokenizer.source}, f)


def load_vocab(path: str):
    """A run's saved ``vocab.json``: a :class:`PretrainedVocab` when the run tokenized with a
    pretrained tokenizer (``data.tokenizer``), else the word :class:`~mmer_jax.data.text.Tokenizer`.

    Raises:
      OSError: ``path`` cannot be read. KeyError / ValueError: not a saved vocabulary.
    """
    from mmer_jax.data.text import Tokenizer

    with open(path, encoding="utf-8") as f:
        saved = json.load(f)
    if "pretrained_tokenizer" not in saved:
        return Tokenizer(saved["vocab"])
    from tokenizers import Tokenizer as HFTokenizer

    spec = saved["pretrained_tokenizer"]
    tok = PretrainedTokenizer(HFTokenizer.from_str(spec), saved["pad_id"],
                              saved.get("source", path))
    return PretrainedVocab(tok, spec)
