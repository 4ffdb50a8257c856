"""A finished run as a predictor: raw files in, per-class probabilities out.

The path from a record to probabilities is the training/evaluation one, reused, not re-written:
:meth:`mmer_jax.data.corpus.Corpus.example` (evaluation mode: centre window, no augmentation),
the utterance collate (:class:`mmer_jax.data.utterance.Pipeline`, bucketed padding), and the
jitted eval step of :mod:`mmer_jax.train.steps` built on
:func:`mmer_jax.data.device.make_feature_step` — so serving cannot compute features differently
from training.

    p = Predictor("runs/quickstart")               # primary variant, best checkpoint
    p.warmup()                                      # compile every bucketed input shape
    p.predict_file("clip.mp4", text="...", window_s=1.5, hop_s=0.5)
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from mmer_jax.data.batching import ENCODER_STREAM, bucket
from mmer_jax.data.corpus import Corpus
from mmer_jax.data.device import make_feature_step
from mmer_jax.data.pretrained_tokenizer import load_vocab
from mmer_jax.data.utterance import Pipeline
from mmer_jax.errors import UsageError
from mmer_jax.metric_table import HEADLINE
from mmer_jax.models import build_model
from mmer_jax.schema import DataConfig, TrainConfig, from_section
from mmer_jax.serve import inputs
from mmer_jax.serve.prediction import FilePrediction
from mmer_jax.train import regression
from mmer_jax.train import sharding as sh
from mmer_jax.train import steps as steps_lib
from mmer_jax.train.checkpoint import Checkpoints
from mmer_jax.train.evaluate import load_run_variant
from mmer_jax.train.run import config_for_variant

VISUAL = ("frames", "face")


class _RunCorpus(Corpus):
    """The corpus of a finished run without its records: what :meth:`Corpus.example` reads.

    ``Corpus.__init__`` opens the builder and every split; prediction needs none of them, only the
    data section, the modalities and the run's saved vocabulary, so it is not called.
    """

    def __init__(self, data: DataConfig, modalities, tokenizer, class_names):  # noqa: D107
        self.data = data
        self.modalities = list(modalities)
        self.builder = None
        self.class_names = list(class_names)
        self.sources = {}
        self._augment = None  # evaluation never augments
        self.tokenizer = tokenizer
        self.speaker_norm = None  # Predictor refuses speaker-normalised runs (no statistics)
        self.feature_dims = {}  # pre-extracted feature streams are not read from raw files


class _RunPipeline(Pipeline):
    """The utterance pipeline of a run, for its collate only (no splits are opened)."""

    def __init__(self, data: DataConfig, corpus: _RunCorpus, seed: int):  # noqa: D107
        self.config = data
        self.modalities = corpus.modalities
        self.seed = seed
        self.corpus = corpus


def _corpus_shapes(data: DataConfig, keys: Sequence[str]) -> dict[str, tuple]:
    """``{key: (H, W)}`` of stored visual features, read from the prepared corpus' metadata."""
    from data_prep import build as build_lib

    try:
        builder = build_lib.get_builder(data.corpus, data.config or None,
                                        os.path.expanduser(data.data_dir))
        feats = builder.info.features
        return {k: tuple(int(d) for d in feats[k].shape[1:3]) for k in keys}
    except Exception as exc:  # noqa: BLE001 - any failure means the sizes are unknown
        raise UsageError(
            f"the run uses {', '.join(keys)}: their stored size is read from corpus "
            f"{data.corpus!r}/{data.config!r} in {data.data_dir!r}, which cannot be opened ({exc})"
        ) from exc


def _own_predictor(system: str | None) -> str | None:
    """The predictor a registered system names when it is not :class:`Predictor`, else None."""
    from mmer_jax.registry import NETWORK_PREDICTOR, SYSTEMS

    if system in SYSTEMS and SYSTEMS[system].predictor != NETWORK_PREDICTOR:
        return SYSTEMS[system].predictor
    return None


class Predictor(FilePrediction):
    """A run's variant at its best-by-validation checkpoint, ready to predict.

    Args:
      workdir: the run directory of ``mmer train`` (``config.json``, ``vocab.json``,
        ``variants/<name>/ckpt/best``).
      variant: the variant to load; default: the run's primary variant.
      batch_size: rows per forward pass (inputs or windows are grouped; the last group is padded
        with weight-0 copies of its first row, as evaluation pads).

    Attributes:
      classes: class names, index = class id.
      modalities: the variant's modalities (the only ones its model receives).
      data: the run's typed data section.
      settings: the :class:`~mmer_jax.serve.inputs.MediaSettings` decoding uses.

    Raises:
      UsageError: ``workdir`` holds no run, an unknown variant, a dialogue-unit run, a run with
        per-speaker feature normalisation, a variant reading the encoder-feature cache
        (``ssl_probe``: it has no audio path; ``ssl_finetune`` holds its encoder), a
        run of a system with a predictor of its own (e.g. ``survey_text``: its registry entry
        names it, and :func:`~mmer_jax.serve.prediction.open_predictor` opens it),
        a regression run (no class probabilities to serve), or a variant without a best
        checkpoint.
    """

    def __init__(self, workdir: str, variant: str | None = None, batch_size: int = 1):
        self.workdir = workdir
        cfg, variants, self.variant = load_run_variant(workdir, variant)
        own = _own_predictor(cfg.model.get("name"))
        if own:
            raise UsageError(
                f"--workdir {workdir!r} is a {cfg.model.get('name')} run: it is not a JAX "
                f"network but has a predictor of its own ({own}); `mmer predict` and "
                "`mmer serve` load it, `mmer export` does not apply"
            )
        if ENCODER_STREAM in variants[self.variant]:
            raise UsageError(
                f"--workdir {workdir!r} is a {cfg.model.get('name')} run on the encoder-feature "
                f"cache ({ENCODER_STREAM!r}: data.encoder's hidden states computed beforehand "
                "for each clip of the corpus), not on audio: predict, serve and export read raw "
                "files; train ssl_finetune (experiments/ssl_finetune_*.py), whose model holds "
                "the encoder, to serve a pretrained encoder"
            )
        if regression.is_regression(cfg):
            raise UsageError(
                f"--workdir {workdir!r} is a regression run (protocol.task='regression'): "
                "predict, serve and export give class probabilities and do not serve "
                "sentiment scores yet; `mmer eval` scores it"
            )
        self.cfg = config_for_variant(cfg, self.variant)
        self.data = from_section(DataConfig, self.cfg.data, "data")
        self.train_cfg = from_section(TrainConfig, self.cfg.train, "train")
        if self.data.unit != "utterance":
            raise UsageError(
                f"prediction reads single utterances; this run's data.unit is {self.data.unit!r}"
            )
        if self.data.speaker_norm != "none" and "audio" in variants[self.variant]:
            raise UsageError(
                f"--workdir {workdir!r}: the run normalises audio features per speaker "
                f"(data.speaker_norm={self.data.speaker_norm!r}); prediction on single clips "
                "has no speaker statistics (not supported yet); train a deployable run with "
                "--config.data.speaker_norm=none --config.data.feature_norm=False (raw log-mel "
                "features, which validate above per-utterance normalisation in the speech recipe)"
            )
        self.modalities = list(variants[self.variant])
        self.results = self._read_json("results.json")
        run_mods = {m for v in variants.values() for m in v}
        tokenizer = None
        vocab = os.path.join(workdir, "vocab.json")
        if "text" in run_mods:
            if not os.path.exists(vocab):
                raise UsageError(f"--workdir {workdir!r}: vocab.json missing (the run uses text)")
            tokenizer = load_vocab(vocab)  # a word vocabulary or a pretrained tokenizer
        self.tokenizer = tokenizer
        self.classes = self._class_names()
        # As the trainer builds it: the vocabulary of the whole run, this variant's modalities.
        self.model = build_model(self.cfg.model, num_classes=len(self.classes),
                                 vocab_size=len(tokenizer) if tokenizer else 0,
                                 modalities=self.modalities)
        shapes = _corpus_shapes(self.data, [m for m in VISUAL if m in self.modalities])
        self.settings = inputs.MediaSettings(
            modalities=tuple(self.modalities),
            sample_rate=self.data.sample_rate,
            max_frames=self.data.max_frames,
            frame_size=shapes.get("frames"),
            face_size=shapes.get("face"),
            max_audio_s=self.data.max_audio_s,
        )
        self.corpus = _RunCorpus(self.data, self.modalities, tokenizer, self.classes)
        self.pipeline = _RunPipeline(self.data, self.corpus, int(self.cfg.seed))
        self.batch_size = int(batch_size)
        ckpt = Checkpoints(os.path.join(workdir, "variants", self.variant))
        try:
            if ckpt.latest_step("best") is None:
                raise UsageError(
                    f"variant {self.variant!r} of {workdir!r} has no best checkpoint yet"
                )
            # No template: the saved tree comes back on one local device whatever topology
            # trained it (a run trained on 4 devices predicts on 1); a best checkpoint that
            # cannot be read raises CheckpointError, one line naming its step and the fault.
            state, self.meta = ckpt.restore("best", None)
        finally:
            ckpt.close()
        self.mesh = sh.make_mesh(1)
        rep = sh.replicated(self.mesh)
        import jax

        # A run that keeps a moving average of its weights was selected and tested with it.
        self.params = jax.device_put(state.get("ema_params") or state["params"], rep)
        self.batch_stats = jax.device_put(state.get("batch_stats") or {}, rep)
        self.features = make_feature_step(self.data, self.train_cfg.dtype)
        self.eval_step = steps_lib.make_eval_step(self.model, self.features,
                                                  self.train_cfg.dtype, self.mesh)
        self.warm_shapes: list[dict] = []

    def describe(self) -> dict[str, Any]:
        """What ``GET /model`` answers: system, variant, classes, modalities, protocol, test
        metrics (headline numbers) and the input settings."""
        res = self.results or {}
        test = res.get("test") or {}
        variant_test = (res.get("variants") or {}).get(self.variant, {}).get("test") or test
        return {
            "system": self.cfg.get("system"),
            "corpus": f"{self.data.corpus}/{self.data.config}",
            "variant": self.variant,
            "best_epoch": self.meta.get("best_epoch"),
            "classes": self.classes,
            "modalities": self.modalities,
            "protocol": res.get("protocol"),
            "test": {k: variant_test[k] for k in HEADLINE
                     if k in variant_test},
            "inputs": {
                "sample_rate": self.data.sample_rate,
                "max_audio_s": self.data.max_audio_s,
                "max_frames": self.data.max_frames,
                "frame_size": self.settings.frame_size,
                "face_size": self.settings.face_size,
                "extensions": list(inputs.SUPPORTED_EXTS),
            },
        }

    # -- the training path ------------------------------------------------------------------------
    def host_batches(self, records: Sequence[dict]) -> list[tuple[dict, int]]:
        """Records -> ``[(host batch, real rows)]`` through ``Corpus.example`` and the collate."""
        rng = np.random.default_rng(0)  # evaluation mode never draws from it
        examples = [self.corpus.example(r, False, rng) for r in records]
        out = []
        for i in range(0, len(examples), self.batch_size):
            group = examples[i : i + self.batch_size]
            n = len(group)
            pad = dict(group[0], weight=np.float32(0.0))
            out.append((self.pipeline.collate(group + [pad] * (self.batch_size - n)), n))
        return out

    def predict_records(self, records: Sequence[dict]) -> np.ndarray:
        """[N, K] float32 class probabilities of corpus-layout records (``label`` is ignored)."""
        if not records:
            return np.zeros((0, len(self.classes)), np.float32)
        probs = []
        for batch, n in self.host_batches(records):
            out = self.eval_step(self.params, self.batch_stats, sh.to_global(batch, self.mesh))
            probs.append(np.asarray(sh.to_host(out["probs"]))[:n])
        return np.concatenate(probs).astype(np.float32)

    # -- start-up compilation ---------------------------------------------------------------------
    def bucket_shapes(self) -> list[dict[str, int]]:
        """Every padded input shape the collate can produce: ``{"audio", "tokens"}`` widths
        (samples, tokens); visual inputs have one fixed shape."""
        d = self.data
        audio = [None]
        if "audio" in self.modalities:
            step = int(d.audio_bucket_s * d.sample_rate)
            cap = bucket(int(d.max_audio_s * d.sample_rate), step, 1 << 40)
            audio = sorted({bucket(n, step, cap) for n in range(step, cap + step, step)})
        tokens = [None]
        if "text" in self.modalities:
            tokens = sorted({bucket(n, d.token_bucket, d.max_tokens)
                             for n in range(1, d.max_tokens + 1)})
        return [{"audio": a, "tokens": t} for a, t in itertools.product(audio, tokens)]

    def dummy_record(self, shape: dict) -> dict:
        """A record whose collated batch has ``shape`` (see :meth:`bucket_shapes`)."""
        rec: dict = {"label": 0}
        if shape["audio"] is not None:
            rec["audio"] = np.zeros(shape["audio"], np.int16)
        for key, size in (("frames", self.settings.frame_size), ("face", self.settings.face_size)):
            if key in self.modalities:
                rec[key] = np.zeros((1, *size, 3), np.uint8)
        if shape["tokens"] is not None:
            rec["text"] = " ".join(["x"] * shape["tokens"])
        return rec

    def warmup(self) -> float:
        """Compiles the forward pass for every bucketed shape (:meth:`bucket_shapes`), so no
        prediction compiles afterwards. Returns the seconds it took."""
        t0 = time.perf_counter()
        for shape in self.bucket_shapes():
            self.predict_records([self.dummy_record(shape)])
            self.warm_shapes.append(shape)
        return time.perf_counter() - t0
