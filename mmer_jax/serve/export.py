"""A run as a self-contained artefact: ``jax.export`` functions + classes + input settings.

``mmer export --workdir RUN --out DIR`` writes::

    DIR/model.json            classes, modalities, the data settings of the features, the
                              inputs (what each is, its dtype and unit), vocabulary file, and
                              one entry per bucketed input shape
    DIR/forward_<i>.jaxexport one serialized function per input shape: the model's real inputs
                              -> [B, K] probabilities (on-device features such as the log-mel
                              spectrogram + model, parameters baked in)
    DIR/vocab.json            the run's vocabulary (text models)

:func:`load_exported` reads it back with jax, numpy and json only (no config files, schema,
model registry or checkpoint code). :meth:`ExportedModel.predict` takes decoded media —
``audio``: mono PCM at ``features["sample_rate"]`` Hz, int16 or float in [-1, 1];
``frames``/``face``: uint8 RGB [F, H, W, 3] at ``features["frame_size"]``/``["face_size"]``;
``text``: strings — and does the host part of the preprocessing the training path does (the
centre ``max_audio_s`` / ``max_frames`` window, tokenization with the run's vocabulary, padding
to an exported width). Decoding files (resampling, frame sampling, face crops) is
``mmer predict``'s part (``data_prep/decode.py``). A function's inputs, for a direct call: a
subset of ``audio_pcm`` int16 [B, T] + ``audio_len`` int32 [B] (samples), ``frames_u8`` /
``face_u8`` uint8 [B, F, H, W, 3] + ``frames_len`` / ``face_len`` int32 [B] (frames),
``tokens`` int32 [B, L] (0 = padding), exactly as ``model.json`` lists them.
"""

from __future__ import annotations

import json
import os
import re
import shutil

import numpy as np

FORMAT = "mmer-export/2"  # /1 took dummy label and weight inputs
# What each input of an exported function is, for model.json (a reader needs no other file).
INPUTS = {
    "audio_pcm": "int16 [B, T] mono PCM at features.sample_rate Hz, zero-padded after audio_len",
    "audio_len": "int32 [B] samples of audio_pcm that are real (0: no audio)",
    "frames_u8": "uint8 [B, max_frames, H, W, 3] RGB video frames at features.frame_size",
    "frames_len": "int32 [B] real frames of frames_u8 (0: no video)",
    "face_u8": "uint8 [B, max_frames, H, W, 3] RGB face crops at features.face_size",
    "face_len": "int32 [B] real crops of face_u8 (0: no face)",
    "tokens": "int32 [B, L] word ids of vocab.json (0 = padding, 1 = unknown)",
    "audio_norm": "float32 [B, 2, n_mels] the speaker's feature shift and scale",
}
# Training-only inputs of the eval step: filled inside the exported function.
_TARGETS = ("label", "weight", "score")


def export_run(predictor, out_dir: str) -> dict:
    """Writes ``predictor``'s variant to ``out_dir`` (created; existing files replaced).

    Args:
      predictor: a :class:`~mmer_jax.serve.predictor.Predictor`.
      out_dir: the artefact directory.

    Returns:
      The ``model.json`` content.
    """
    import jax
    from jax import export

    os.makedirs(out_dir, exist_ok=True)
    params = jax.device_get(predictor.params)
    stats = jax.device_get(predictor.batch_stats)

    entries = []
    for i, shape in enumerate(predictor.bucket_shapes()):
        (batch, _), = predictor.host_batches([predictor.dummy_record(shape)])
        targets = {k: v for k, v in batch.items() if k in _TARGETS}
        spec = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in batch.items()
                if k not in _TARGETS}

        def forward(inputs, targets=targets):
            # The eval step wants the training targets too; they do not change probabilities.
            filled = {k: jax.numpy.ones(v.shape, v.dtype) if k == "weight"
                      else jax.numpy.zeros(v.shape, v.dtype) for k, v in targets.items()}
            return predictor.eval_step(params, stats, {**inputs, **filled})["probs"]

        blob = export.export(jax.jit(forward))(spec).serialize()
        name = f"forward_{i}.jaxexport"
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(blob)
        entries.append({"file": name, "inputs": {k: [list(v.shape), str(v.dtype)]
                                                 for k, v in spec.items()}})
    vocab = None
    if predictor.tokenizer is not None:
        vocab = "vocab.json"
        shutil.copyfile(os.path.join(predictor.workdir, "vocab.json"),
                        os.path.join(out_dir, vocab))
    d = predictor.data
    meta = {
        "format": FORMAT,
        "system": predictor.cfg.get("system"),
        "variant": predictor.variant,
        "classes": predictor.classes,
        "modalities": predictor.modalities,
        "batch_size": predictor.batch_size,
        "vocab": vocab,
        "features": {
            "sample_rate": d.sample_rate, "frontend": d.frontend, "n_mels": d.n_mels,
            "n_mfcc": d.n_mfcc, "n_fft": d.n_fft, "hop": d.hop, "feature_norm": d.feature_norm,
            "max_audio_s": d.max_audio_s, "audio_bucket_s": d.audio_bucket_s,
            "max_frames": d.max_frames, "max_tokens": d.max_tokens,
            "token_bucket": d.token_bucket, "dtype": predictor.train_cfg.dtype,
            "frame_size": predictor.settings.frame_size, "face_size": predictor.settings.face_size,
        },
        "inputs": {k: INPUTS.get(k, "") for k in entries[0]["inputs"]} if entries else {},
        "functions": entries,
    }
    with open(os.path.join(out_dir, "model.json"), "w") as f:
        json.dump(meta, f, indent=1)
    return meta


class ExportedModel:
    """An artefact of :func:`export_run`, loaded.

    Attributes:
      meta: ``model.json``; ``classes``, ``modalities`` and ``features`` are also attributes.
      vocab: the id -> word list of a text model, else None (also for a pretrained
        tokenizer's vocabulary: pass ``tokens`` to :meth:`__call__` then).
    """

    def __init__(self, directory: str):
        from jax import export

        with open(os.path.join(directory, "model.json")) as f:
            self.meta = json.load(f)
        if self.meta.get("format") != FORMAT:
            raise ValueError(f"{directory}: not an {FORMAT} artefact (format "
                             f"{self.meta.get('format')!r}); export the run again with "
                             "`mmer export`")
        self.classes = self.meta["classes"]
        self.modalities = self.meta["modalities"]
        self.features = self.meta["features"]
        self.batch_size = int(self.meta["batch_size"])
        self.vocab = None
        if self.meta.get("vocab"):
            with open(os.path.join(directory, self.meta["vocab"])) as f:
                # None for a pretrained tokenizer's vocab.json (its tokenizer.json inside).
                self.vocab = json.load(f).get("vocab")
        self._index = {w: i for i, w in enumerate(self.vocab)} if self.vocab else None
        self._fns = {}
        for e in self.meta["functions"]:
            with open(os.path.join(directory, e["file"]), "rb") as f:
                fn = export.deserialize(bytearray(f.read()))
            key = tuple(sorted((k, tuple(s)) for k, (s, _) in e["inputs"].items()))
            self._fns[key] = fn

    def shapes(self) -> list[dict]:
        """The input shapes the artefact accepts, one dict ``{key: shape}`` per function."""
        return [dict(k) for k in self._fns]

    def __call__(self, batch: dict) -> np.ndarray:
        """[B, K] float32 probabilities of a batch of one of :meth:`shapes` (module docstring;
        a training-layout host batch's ``label``/``weight``/``score`` are ignored).

        Raises:
          ValueError: no exported function takes the batch's shapes.
        """
        batch = {k: v for k, v in batch.items() if k not in _TARGETS}
        key = tuple(sorted((k, tuple(np.shape(v))) for k, v in batch.items()))
        fn = self._fns.get(key)
        if fn is None:
            raise ValueError(f"no exported function for input shapes {dict(key)}; it takes "
                             f"{self.shapes()}")
        return np.asarray(fn.call({k: np.asarray(v) for k, v in batch.items()}))

    def predict(self, audio=None, frames=None, face=None, text=None) -> np.ndarray:
        """[N, K] float32 class probabilities (order :attr:`classes`) of N examples.

        Each argument is a list of N entries (or None: that modality absent from every example;
        an entry None: absent from that example, given to the model empty, as ``mmer predict``
        does). A modality the model was not trained with is ignored.

        Args:
          audio: 1-D mono PCM at ``features["sample_rate"]`` Hz: int16, or float in [-1, 1].
          frames: uint8 RGB [F, H, W, 3] video frames at ``features["frame_size"]``.
          face: uint8 RGB [F, H, W, 3] face crops at ``features["face_size"]``.
          text: transcripts (str).

        Returns:
          [N, K] float32 probabilities.

        Raises:
          ValueError: the lists differ in length, an input has the wrong shape, or the model
            needs an input this method cannot make (a pretrained tokenizer's text, speaker
            statistics): call the artefact with a batch then (:meth:`__call__`).
        """
        given = {"audio": audio, "frames": frames, "face": face, "text": text}
        lengths = {len(v) for v in given.values() if v is not None}
        if len(lengths) > 1:
            raise ValueError(f"audio/frames/face/text lists differ in length: "
                             f"{ {k: len(v) for k, v in given.items() if v is not None} }")
        n = lengths.pop() if lengths else 0
        needed = set(self.meta["functions"][0]["inputs"]) if self.meta["functions"] else set()
        unknown = needed - {"audio_pcm", "audio_len", "frames_u8", "frames_len", "face_u8",
                            "face_len", "tokens"}
        if unknown:
            raise ValueError(f"this model also needs {sorted(unknown)}, which predict() cannot "
                             "make; call the artefact with a batch (ExportedModel.__call__)")
        if "tokens" in needed and self._index is None:
            raise ValueError("this model's text uses a pretrained tokenizer: call the artefact "
                             "with a batch holding its token ids (ExportedModel.__call__)")
        rows = [self._example({k: (v[i] if v is not None else None) for k, v in given.items()})
                for i in range(n)]
        out = []
        for i in range(0, n, self.batch_size):
            group = rows[i : i + self.batch_size]
            out.append(self(self._collate(group, needed))[: len(group)])
        k = len(self.classes)
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, k), np.float32)

    # -- the host preprocessing of the training path (Corpus.example, the utterance collate) --
    def _example(self, given: dict) -> dict:
        f = self.features
        ex = {}
        if "audio" in self.modalities:
            x = np.asarray(given["audio"] if given["audio"] is not None else np.zeros(0))
            if x.ndim != 1:
                raise ValueError(f"audio: expected 1-D mono PCM, got shape {list(x.shape)}")
            if np.issubdtype(x.dtype, np.floating):  # [-1, 1] -> int16, as the builders do
                x = np.round(np.clip(x, -1.0, 1.0) * 32767.0)
            ex["audio_pcm"] = _centre(x.astype(np.int16),
                                      int(f["max_audio_s"] * f["sample_rate"]))
        for key, size in (("frames", f["frame_size"]), ("face", f["face_size"])):
            if key in self.modalities:
                x = given[key]
                x = np.zeros((0, *size, 3), np.uint8) if x is None else np.asarray(x, np.uint8)
                if x.ndim != 4 or tuple(x.shape[1:]) != (*size, 3):
                    raise ValueError(f"{key}: expected uint8 [F, {size[0]}, {size[1]}, 3], got "
                                     f"shape {list(x.shape)}")
                ex[key + "_u8"] = _centre(x, int(f["max_frames"]))
        if "text" in self.modalities and self._index is not None:
            words = _split_words(given["text"] or "")
            ids = [self._index.get(w, 1) for w in words][: int(f["max_tokens"])]
            ex["tokens"] = np.asarray(ids, np.int32)
        return ex

    def _collate(self, group: list[dict], needed: set) -> dict:
        f, b = self.features, self.batch_size
        widths = {}  # the exported widths, smallest first
        for shape in self.shapes():
            for key, dims in shape.items():
                widths.setdefault(key, set()).add(dims[1] if len(dims) > 1 else None)
        batch: dict = {}
        if "audio_pcm" in needed:
            lens = np.array([len(e["audio_pcm"]) for e in group] + [0] * (b - len(group)),
                            np.int32)
            width = _smallest(widths["audio_pcm"], int(lens.max(initial=0)), "audio samples")
            pcm = np.zeros((b, width), np.int16)
            for i, e in enumerate(group):
                pcm[i, : lens[i]] = e["audio_pcm"]
            batch["audio_pcm"], batch["audio_len"] = pcm, lens
        for key in ("frames_u8", "face_u8"):
            if key in needed:
                size = tuple(f["frame_size" if key == "frames_u8" else "face_size"])
                arr = np.zeros((b, int(f["max_frames"]), *size, 3), np.uint8)
                lens = np.zeros(b, np.int32)
                for i, e in enumerate(group):
                    lens[i] = len(e[key])
                    arr[i, : lens[i]] = e[key]
                batch[key], batch[key.replace("_u8", "_len")] = arr, lens
        if "tokens" in needed:
            longest = max([len(e["tokens"]) for e in group] + [1])
            width = _smallest(widths["tokens"], longest, "tokens")
            tok = np.zeros((b, width), np.int32)
            for i, e in enumerate(group):
                tok[i, : len(e["tokens"])] = e["tokens"]
            batch["tokens"] = tok
        return batch


_WORD = re.compile(r"[a-z0-9']+|[^\sa-z0-9']")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'",
                         "\u2032": "'", "\u201c": '"', "\u201d": '"', "\u201e": '"',
                         "\u201f": '"', "\u2033": '"'})


def _split_words(text: str) -> list[str]:
    """``mmer_jax.data.text.split_words``, repeated so the artefact needs no mmer code
    (tests/serve/test_export_inputs.py checks the two agree)."""
    return _WORD.findall(text.lower().translate(_QUOTES))


def _centre(x: np.ndarray, width: int) -> np.ndarray:
    """At most ``width`` items: all of a shorter ``x``, else its centre window (evaluation)."""
    if len(x) <= width:
        return x
    start = (len(x) - width) // 2
    return x[start : start + width]


def _smallest(widths: set, n: int, what: str) -> int:
    """The smallest exported width holding ``n`` (the training collate's bucket)."""
    fits = sorted(w for w in widths if w is not None and w >= n)
    if not fits:
        raise ValueError(f"{n} {what} exceed the exported widths {sorted(widths)}")
    return fits[0]


def load_exported(directory: str) -> ExportedModel:
    """Loads an artefact written by :func:`export_run` (jax, numpy and json only).

    Raises:
      OSError: missing files. ValueError: not an artefact of this format.
    """
    return ExportedModel(directory)
