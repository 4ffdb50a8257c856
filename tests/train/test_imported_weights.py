"""An imported encoder inside a trained model (``ssl_finetune`` over a tiny random Whisper on the
tiny generated corpus): the import's weights at step 0 (jitted, FSDP-sharded, with EMA), a
one-line error when they do not fit, a frozen import left bit-identical by training, and the
layer-wise learning rates of a fine-tuned one measured on the first Adam step."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from mmer_jax import config as config_lib
from mmer_jax.data.pipeline import make_pipeline
from mmer_jax.errors import CheckpointError
from mmer_jax.models.encoders.imported import is_submodule
from mmer_jax.train import imports
from mmer_jax.train import sharding as sh
from mmer_jax.train.loop import VariantTrainer
from mmer_jax.weights import store
from tests.pretrained import tiny_imports

CONFIG = "experiments/ssl_finetune_generated.py"


@pytest.fixture(scope="module")
def whisper_dir(tmp_path_factory):
    return tiny_imports.whisper(tmp_path_factory.mktemp("imp"))


def _trainer(tmp_path, data_dir, encoder, **overrides):
    items = {"data.config": "tiny", "data.data_dir": data_dir, "data.read_threads": 0,
             "model.audio.path": encoder, "train.epochs": 1, "train.batch_size": 16,
             "train.progress": False, "model.dropout": 0.0, **overrides}
    cfg = config_lib.load(CONFIG, [f"{k}={v}" for k, v in items.items()])
    pipe = make_pipeline(cfg.data, ["audio"], cfg.seed, str(tmp_path))
    return VariantTrainer(cfg, pipe, "audio", ["audio"], str(tmp_path))


def _encoder(params):
    (name,) = [k for k in params["enc_audio"] if is_submodule(k)]
    return params["enc_audio"][name]


def _same(a, b):
    jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)


def test_step0_encoder_is_the_import_sharded_with_ema(tiny_generated, whisper_dir, tmp_path):
    trainer = _trainer(tmp_path, tiny_generated, whisper_dir, **{
        "train.ema_decay": 0.9, "train.fsdp": 2, "train.fsdp_min_size": 64})
    assert dict(trainer.mesh.shape) == {"data": 2, "fsdp": 2}
    state = trainer.init_state()
    want = store.load(whisper_dir).variables["params"]
    _same(jax.device_get(_encoder(state.params)), want)
    _same(jax.device_get(_encoder(state.ema_params)), want)
    conv = _encoder(state.params)["conv1"]["kernel"]  # [3, 80, 16]: sharded over fsdp
    assert len({str(s.index) for s in conv.addressable_shards}) == 2
    abstract = trainer._abstract_state()  # the same shapes without reading the import
    assert jax.tree.structure(abstract) == jax.tree.structure(state)
    assert all(a.shape == b.shape and a.dtype == b.dtype for a, b in
               zip(jax.tree.leaves(abstract), jax.tree.leaves(state), strict=True))


def test_a_misfit_names_the_import_and_variable(whisper_dir):
    want = store.load(whisper_dir).variables
    name = "imported_0123456789ab"
    model = {"params": {"enc": {name: jax.tree.map(np.zeros_like, want["params"])}}}
    bad = jax.tree.map(np.copy, want)
    bad["params"]["layers_1"]["ffn"]["fc1"]["kernel"] = np.zeros((16, 33), np.float32)
    with pytest.raises(CheckpointError) as err:
        imports.graft(model, {name: bad})
    assert str(err.value) == (f"import {name}: params/layers_1/ffn/fc1/kernel: the import has "
                              "shape (16, 33), the model (16, 32)")
    with pytest.raises(CheckpointError, match="no import was loaded for this sub-module"):
        imports.graft(model, {"imported_ffffffffffff": want})


def test_frozen_import_is_untouched(tiny_generated, whisper_dir, tmp_path):
    trainer = _trainer(tmp_path, tiny_generated, whisper_dir, **{
        "model.audio.freeze": True, "train.lr": 1e-3, "train.warmup_steps": 0})
    state = trainer.train_epoch(trainer.init_state(), 0)
    assert int(state.step) == trainer.steps_per_epoch >= 3
    params = jax.device_get(state.params)
    _same(_encoder(params), store.load(whisper_dir).variables["params"])
    fresh = jax.device_get(trainer.init_state().params)
    assert float(np.abs(params["head_out"]["kernel"] - fresh["head_out"]["kernel"]).max()) > 1e-4
    assert float(np.abs(params["enc_audio"]["state_logits"]
                        - fresh["enc_audio"]["state_logits"]).max()) > 1e-5


def test_layer_decay_and_frozen_stem_on_the_first_step(tiny_generated, whisper_dir, tmp_path):
    """Adam's first step moves each element by lr x factor (|m / sqrt(v)| = 1 up to eps): the
    largest move of every group, over lr, is its factor."""
    lr, decay = 1e-2, 0.5
    trainer = _trainer(tmp_path, tiny_generated, whisper_dir, **{
        "train.lr": lr, "train.layer_lr_decay": decay, "train.freeze_stem": True,
        "train.weight_decay": 0.0, "train.grad_clip": 0.0, "train.warmup_steps": 0,
        "train.schedule": "constant", "model.audio.time_masks": 0})
    state = trainer.init_state()
    before = jax.device_get(state.params)
    host = next(iter(trainer.batches("train", epoch=0, train=True)))
    state, _ = trainer.train_step(state, sh.to_global(host, trainer.mesh))
    after = jax.device_get(state.params)

    def factor(tree_a, tree_b):
        moves = [np.abs(a - b).max() for a, b in zip(jax.tree.leaves(tree_a),
                                                      jax.tree.leaves(tree_b), strict=True)]
        return float(max(moves)) / lr

    enc_a, enc_b = _encoder(after), _encoder(before)
    n = 2  # layers of the tiny Whisper
    got = {k: factor(enc_a[k], enc_b[k]) for k in enc_a}
    want = {"conv1": 0.0, "conv2": 0.0, "embed_positions": decay ** n, "layers_0": decay,
            "layers_1": 1.0, "layer_norm": 1.0}
    assert set(got) == set(want)
    for k, w in want.items():
        assert got[k] == pytest.approx(w, rel=2e-3, abs=1e-9), (k, got)
    assert factor(after["head_out"], before["head_out"]) == pytest.approx(1.0, rel=2e-3)
