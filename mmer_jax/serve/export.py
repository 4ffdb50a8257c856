"""A run as a self-contained artefact: ``jax.export`` functions + classes + input settings.

``mmer export --workdir RUN --out DIR`` writes::

    DIR/model.json            classes, modalities, the data settings of the features, vocabulary
                              file, and one entry per bucketed input shape
    DIR/forward_<i>.jaxexport one serialized function per input shape: host batch -> [B, K]
                              probabilities (on-device features + model, parameters baked in)
    DIR/vocab.json            the run's vocabulary (text models)

:func:`load_exported` reads it back with jax, numpy and json only — no config files, schema,
model registry or checkpoint code — and calls the function whose shape matches the batch.
The host batch is the training layout (``docs/contracts.md``; ``mmer_jax.data.utterance``):
``audio_pcm`` int16 [B, T], ``audio_len`` [B], ``frames_u8`` uint8 [B, F, H, W, 3],
``frames_len``, ``tokens`` int32 [B, L], ``label`` and ``weight``. A batch of exactly
``batch_size`` rows padded to one of the exported widths is what the predictor's collate makes.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np

FORMAT = "mmer-export/1"


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

    def forward(batch):
        return predictor.eval_step(params, stats, batch)["probs"]

    fn = jax.jit(forward)
    entries = []
    for i, shape in enumerate(predictor.bucket_shapes()):
        (batch, _), = predictor.host_batches([predictor.dummy_record(shape)])
        spec = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in batch.items()}
        blob = export.export(fn)(spec).serialize()
        name = f"forward_{i}.jaxexport"
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(blob)
        entries.append({"file": name, "inputs": {k: [list(v.shape), str(v.dtype)]
                                                 for k, v in batch.items()}})
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
        "functions": entries,
    }
    with open(os.path.join(out_dir, "model.json"), "w") as f:
        json.dump(meta, f, indent=1)
    return meta


class ExportedModel:
    """An artefact of :func:`export_run`, loaded.

    Attributes:
      meta: ``model.json``; ``classes``, ``modalities`` and ``features`` are also attributes.
      vocab: the id -> word list of a text model, else None.
    """

    def __init__(self, directory: str):
        from jax import export

        with open(os.path.join(directory, "model.json")) as f:
            self.meta = json.load(f)
        if self.meta.get("format") != FORMAT:
            raise ValueError(f"{directory}: not an {FORMAT} artefact")
        self.classes = self.meta["classes"]
        self.modalities = self.meta["modalities"]
        self.features = self.meta["features"]
        self.vocab = None
        if self.meta.get("vocab"):
            with open(os.path.join(directory, self.meta["vocab"])) as f:
                # None for a pretrained tokenizer's vocab.json (its tokenizer.json inside).
                self.vocab = json.load(f).get("vocab")
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
        """[B, K] float32 probabilities of a host batch of one of :meth:`shapes`.

        Raises:
          ValueError: no exported function takes the batch's shapes.
        """
        key = tuple(sorted((k, tuple(np.shape(v))) for k, v in batch.items()))
        fn = self._fns.get(key)
        if fn is None:
            raise ValueError(f"no exported function for input shapes {dict(key)}")
        return np.asarray(fn.call({k: np.asarray(v) for k, v in batch.items()}))


def load_exported(directory: str) -> ExportedModel:
    """Loads an artefact written by :func:`export_run` (jax, numpy and json only).

    Raises:
      OSError: missing files. ValueError: not an artefact of this format.
    """
    return ExportedModel(directory)
