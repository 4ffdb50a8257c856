"""The seed systems with their pretrained parts (issue 29 part 5), on random-initialised imports
(no RoBERTa weights can be had here) and the tiny generated corpus: S003's audio stream as a tiny
random Whisper (frozen), S002's text as a random 2-layer RoBERTa with its own BPE tokenizer
(``data.tokenizer``). Each: the trainer's step-0 parameters hold the import, one training step
runs with finite loss and moves the trained parts. The face branches (S001, S004):
``test_seed_imports_vision.py``."""

from __future__ import annotations

import json
import os

import jax
import numpy as np
import pytest

from mmer_jax import config as config_lib
from mmer_jax.data.pipeline import make_pipeline
from mmer_jax.models.encoders.imported import is_submodule
from mmer_jax.train import sharding as sh
from mmer_jax.train.loop import VariantTrainer
from mmer_jax.weights import store
from tests.pretrained import tiny_imports


def _trainer(tmp_path, path, variant, modalities, **overrides):
    items = {"data.config": "tiny", "data.read_threads": 0, "train.batch_size": 8,
             "train.epochs": 1, "train.progress": False, "train.warmup_steps": 0, **overrides}
    cfg = config_lib.load(path, [f"{k}={v}" for k, v in items.items()])
    cfg.variants = {variant: list(modalities)}
    cfg.primary_variant = variant
    pipe = make_pipeline(cfg.data, modalities, cfg.seed, str(tmp_path))
    return VariantTrainer(cfg, pipe, variant, modalities, str(tmp_path)), pipe


def _find(tree):
    """The (only) imported sub-tree of a parameter tree, wherever it sits."""
    found = []

    def walk(node):
        for k, v in node.items():
            if is_submodule(k):
                found.append(v)
            elif isinstance(v, dict):
                walk(v)

    walk(tree)
    assert len(found) == 1
    return found[0]


def _equal(a, b):
    jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)


def _check(trainer, import_dir, collections=("params",)):
    state = trainer.init_state()
    want = store.load(import_dir).variables
    _equal(jax.device_get(_find(state.params)), want["params"])
    if "batch_stats" in collections:
        _equal(jax.device_get(_find(state.batch_stats)), want["batch_stats"])
    before = jax.device_get(state.params)
    host = next(iter(trainer.batches("train", epoch=0, train=True)))
    state, metrics = trainer.train_step(state, sh.to_global(host, trainer.mesh))
    assert np.isfinite(float(metrics["loss"]))
    after = jax.device_get(state.params)
    assert float(np.abs(after["head_out"]["kernel"] - before["head_out"]["kernel"]).max()) > 0
    return before, after, state


@pytest.mark.slow  # 24 s; imported branches in seeds stay fast through the RoBERTa test
def test_s003_audio_stream_is_an_imported_whisper(tiny_generated, tmp_path):
    whisper = tiny_imports.whisper(tmp_path / "imp")
    trainer, _ = _trainer(tmp_path / "run", "experiments/s003_generated.py", "fused",
                          ["frames", "audio"], **{
                              "data.data_dir": tiny_generated, "data.offline_augment": [],
                              "data.frontend": "whisper", "data.feature_norm": False,
                              "data.max_frames": 4,
                              "model.audio_encoder": "imported",
                              "model.audio_import.path": whisper,
                              "model.audio_import.freeze": True})
    before, after, _ = _check(trainer, whisper)
    _equal(_find(after), _find(before))  # frozen
    assert "enc_frames" not in after  # the image stream keeps its old parameter names
    assert any(k.startswith("frames_") for k in after)


def test_s002_text_through_an_imported_roberta(tiny_generated, tmp_path):
    for name in ("torch", "transformers", "tokenizers"):
        pytest.importorskip(name, reason="the random RoBERTa is written by transformers")
    roberta = tiny_imports.roberta(tmp_path / "imp")
    trainer, pipe = _trainer(tmp_path / "run", "experiments/s002_generated.py", "text",
                             ["text"], **{"data.data_dir": tiny_generated,
                                          "data.tokenizer": roberta,
                                          "model.text_encoder": "imported",
                                          "model.text_import.path": roberta,
                                          "model.text_dim": 24})
    saved = json.load(open(os.path.join(tmp_path / "run", "vocab.json")))
    assert "pretrained_tokenizer" in saved  # the run tokenizes without the import later
    from mmer_jax.data.pretrained_tokenizer import PretrainedTokenizer

    ids, _ = PretrainedTokenizer.from_directory(roberta).encode(["i am so happy"], 16)
    np.testing.assert_array_equal(pipe.tokenizer.encode("i am so happy", 16), ids[0] + 1)
    _check(trainer, roberta)
