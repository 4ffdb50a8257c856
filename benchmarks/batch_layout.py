"""Training batches of a config without its corpus: the layout of real batches, random content.

A *layout* is what a config's real training batches look like with their content taken out:
every key's shape and dtype, the structure arrays verbatim (masks, weights, speakers, packed
slots, audio and frame lengths) and, for token arrays, each row's number of real tokens. It is
recorded here from the config's own pipeline (``record``; needs the corpus and
tensorflow-datasets) into ``benchmarks/data/train_compare_layout.npz``, and read anywhere
(``GeneratedPipeline``; numpy only), so the GPU machine, which has neither the corpora nor
tensorflow-datasets nor grain, trains on batches of the real shapes and padding: token ids
uniform in [1, vocab), labels uniform over the classes, PCM and frame bytes uniform, each only
inside the recorded lengths (zero beyond, as the pipeline pads).
"""

from __future__ import annotations

import json

import numpy as np

# Kept verbatim: they set which rows, utterances, samples and frames are real.
STRUCTURE = ("utt_mask", "weight", "speaker", "packed_slot", "audio_len", "frames_len",
             "face_len")
TOKENS = ("tokens", "tokens_packed")  # only the count of non-zero ids per row is kept


def layout_of(host_batches: list[dict], vocab_size: int, num_classes: int) -> dict:
    """The layout (flat dict of numpy arrays, JSON meta under ``"meta"``) of host batches.

    Raises:
        ValueError: a batch key is neither structure, tokens, ``label`` nor PCM / frames.
    """
    out = {}
    for i, b in enumerate(host_batches):
        for key, value in b.items():
            value = np.asarray(value)
            out[f"{i}/{key}/shape"] = np.asarray(value.shape, np.int64)
            out[f"{i}/{key}/dtype"] = np.asarray(value.dtype.str)
            if key in STRUCTURE:
                out[f"{i}/{key}"] = value
            elif key in TOKENS:
                out[f"{i}/{key}/lengths"] = (value > 0).sum(-1).astype(np.int32)
            elif key not in ("label", "audio_pcm", "frames_u8", "face_u8"):
                raise ValueError(f"batch key {key!r}: no layout rule for it (batch_layout.py)")
    out["meta"] = np.asarray(json.dumps({"batches": len(host_batches), "vocab_size": vocab_size,
                                         "num_classes": num_classes,
                                         "keys": sorted(host_batches[0])}))
    return out


def generate(layout: dict, index: int, seed: int = 0) -> dict:
    """Host batch ``index`` of a layout: the recorded shapes, dtypes and structure; random
    content inside the recorded lengths.

    Raises:
        KeyError: the layout has no batch ``index``.
    """
    meta = json.loads(str(layout["meta"]))
    rng = np.random.default_rng(seed * 1000 + index)
    batch = {}
    for key in meta["keys"]:
        shape = tuple(int(n) for n in layout[f"{index}/{key}/shape"])
        dtype = np.dtype(str(layout[f"{index}/{key}/dtype"]))
        if key in STRUCTURE:
            batch[key] = np.asarray(layout[f"{index}/{key}"], dtype).reshape(shape)
        elif key in TOKENS:
            ids = rng.integers(1, max(meta["vocab_size"], 2), shape).astype(dtype)
            lengths = layout[f"{index}/{key}/lengths"]
            batch[key] = np.where(np.arange(shape[-1]) < lengths[..., None], ids, 0).astype(dtype)
        elif key == "label":
            batch[key] = rng.integers(0, meta["num_classes"], shape).astype(dtype)
        else:  # audio_pcm [.., T] int16 / frames_u8 [.., Tv, H, W, 3] uint8, zero past lengths
            hi = np.iinfo(dtype)
            value = rng.integers(max(hi.min, -3000), min(hi.max, 3000) + 1, shape, dtype=dtype)
            len_key = "audio_len" if key == "audio_pcm" else key.replace("_u8", "_len")
            axis = len(layout[f"{index}/{len_key}/shape"])  # the time axis follows the lengths
            lengths = np.asarray(layout[f"{index}/{len_key}"])
            t = np.arange(shape[axis]).reshape((1,) * axis + (-1,) + (1,) * (len(shape) - axis - 1))
            valid = t < lengths.reshape(lengths.shape + (1,) * (len(shape) - axis))
            batch[key] = np.where(valid, value, 0).astype(dtype)
    return batch


def load(path: str, model: str) -> dict:
    """Model ``model``'s layout from a layout file (``{model}/...`` keys).

    Raises:
        KeyError: the file holds no layout of ``model`` (the message names the file).
        OSError: the file cannot be read.
    """
    with np.load(path, allow_pickle=False) as f:
        prefix = f"{model}/"
        out = {k[len(prefix):]: f[k] for k in f.files if k.startswith(prefix)}
    if "meta" not in out:
        raise KeyError(f"{path}: no batch layout of {model!r} (record it: "
                       "train_compare_torch.py --record-layout)")
    return out


class GeneratedPipeline:
    """A pipeline (the interface :class:`mmer_jax.train.loop.VariantTrainer` reads) whose
    training batches are :func:`generate`'s, the same every epoch."""

    def __init__(self, layout: dict, n_batches: int, unit: str, seed: int = 0):
        meta = json.loads(str(layout["meta"]))
        self.vocab_size, self.num_classes = meta["vocab_size"], meta["num_classes"]
        self.class_names = [f"class{i}" for i in range(self.num_classes)]
        self.unit = unit
        n = min(n_batches, meta["batches"])
        self._batches = [generate(layout, i, seed) for i in range(n)]

    def num_examples(self, split: str) -> int:
        return sum(len(b["weight"]) for b in self._batches)

    def steps_per_epoch(self, global_batch: int) -> int:
        return len(self._batches)

    def batches(self, split, global_batch=None, **_):
        return iter(list(self._batches))
