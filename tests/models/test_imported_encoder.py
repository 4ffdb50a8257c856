"""The ``imported`` / ``imported_lstm`` encoders over a tiny random Whisper import: output shapes
per pooling and state choice, padding invariance, the sub-module named after the import, frozen
imports passing no gradient, time masks in training only, one-line errors for a wrong input, and
the layer table of every architecture (what layer-wise learning rates read)."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmer_jax.models.encoders import imported as imp
from mmer_jax.registry import ARCHITECTURES, ENCODERS
from tests.pretrained import tiny_imports


@pytest.fixture(scope="module")
def whisper_dir(tmp_path_factory):
    return tiny_imports.whisper(tmp_path_factory.mktemp("imp"))


# Compilation dominates here: numpy inputs (an eager jax.random draw compiles a threefry program),
# and the encoders run jitted (eagerly, each op and shape is a program of its own), with "rbg"
# keys where the values drawn do not matter.
def _inputs(b=3, t=60, seed=0):
    x = jnp.asarray(np.random.default_rng(seed).standard_normal((b, t, 80)), jnp.float32)
    lengths = np.array([t, 40, 17][:b])
    return x, jnp.asarray(np.arange(t)[None] < lengths[:, None])


def _init(cfg, x, mask, cls="imported", *args):
    module = ENCODERS[cls](cfg, *args)
    variables = jax.jit(lambda x, m: module.init(
        {"params": jax.random.key(0, impl="rbg"), "dropout": jax.random.key(1, impl="rbg")},
        x, m, train=False))(x, mask)
    return module, variables


def _eval(module):
    return jax.jit(lambda v, x, m: module.apply(v, x, m, train=False))


@pytest.mark.parametrize("states,pooling,width", [("weighted", "stats", 32),
                                                  ("-1", "mean", 16), (1, "first", 16)])
def test_shapes_padding_and_submodule(whisper_dir, states, pooling, width):
    cfg = imp.ImportedEncoderConfig(path=whisper_dir, states=states, pooling=pooling)
    x, mask = _inputs()
    module, variables = _init(cfg, x, mask)
    sha12 = json.load(open(f"{whisper_dir}/encoder.json"))["source"]["sha256"][:12]
    assert f"imported_{sha12}" in variables["params"]
    assert ("state_logits" in variables["params"]) == (states == "weighted")
    apply = _eval(module)
    y = apply(variables, x, mask)
    assert y.shape == (3, width) and y.dtype == jnp.float32
    noisy = jnp.where(mask[..., None], x, 7.0)  # padded frames changed
    np.testing.assert_allclose(apply(variables, noisy, mask), y, atol=1e-5)


def test_lstm_variant(whisper_dir):
    cfg = imp.ImportedEncoderConfig(path=whisper_dir, states="-1")
    x, mask = _inputs()
    module, variables = _init(cfg, x, mask, "imported_lstm", 8, "audio")
    assert _eval(module)(variables, x, mask).shape == (3, 8)


def test_freeze_passes_no_gradient_and_masks_only_train(whisper_dir):
    cfg = imp.ImportedEncoderConfig(path=whisper_dir, freeze=True, time_masks=2,
                                    time_mask_width=10)
    x, mask = _inputs()
    module, variables = _init(cfg, x, mask)

    def loss(params):
        rngs = {"dropout": jax.random.PRNGKey(2)}
        return module.apply({"params": params}, x, mask, train=True, rngs=rngs).sum()

    grads = jax.jit(jax.grad(loss))(variables["params"])
    name = next(k for k in grads if imp.is_submodule(k))
    assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(grads[name]))
    assert float(jnp.abs(grads["state_logits"]).max()) > 0  # the head still learns
    evald = _eval(module)(variables, x, mask)

    def train(module):
        return jax.jit(lambda v, x, m: module.apply(v, x, m, train=True,
                                                    rngs={"dropout": jax.random.PRNGKey(2)}))

    masked = train(module)(variables, x, mask)
    assert not np.allclose(evald, masked)  # time masks drawn in training
    unmasked = dataclasses.replace(cfg, time_masks=0)
    m2 = ENCODERS["imported"](unmasked)
    np.testing.assert_allclose(  # frozen: no dropout, so training = inference without masks
        train(m2)(variables, x, mask), evald, atol=1e-6)


def test_record_and_errors(whisper_dir, tmp_path):
    cfg = imp.ImportedEncoderConfig(path=whisper_dir)
    rec = imp.read_record(cfg)
    assert rec["architecture"] == "whisper" and rec["config"]["encoder_layers"] == 2
    # With the record in the config, the directory is not read.
    held = imp.ImportedEncoderConfig(path=str(tmp_path / "gone"), record=json.dumps(rec))
    assert imp.read_record(held) == rec
    with pytest.raises(ValueError, match="gone.*not a readable import.*mmer encoders import"):
        imp.read_record(dataclasses.replace(held, record=""))
    with pytest.raises(ValueError, match="states='all' must be 'weighted' or a state index"):
        imp.ImportedEncoderConfig(states="all")
    wave = jnp.zeros((2, 1600))
    with pytest.raises(ValueError, match=r"whisper import reads Whisper log-mel features \[B, T, "
                                         r"80\] \(data.frontend='whisper'\); got audio of shape "
                                         r"\(2, 1600\)"):
        _init(cfg, wave, jnp.ones((2, 1600), bool))


def test_every_architecture_has_a_layer_table():
    for name in ARCHITECTURES:
        arch = ARCHITECTURES[name]
        acfg = arch.config_class()
        x, mask = arch.dummy_input(acfg, 1)
        tree = jax.eval_shape(lambda a=arch, c=acfg, x=x, m=mask: a.module(c).init(
            jax.random.PRNGKey(0), x, m))["params"]
        record = {"architecture": name, "config": dataclasses.asdict(acfg), "sha256": "0" * 64}
        places = {k: imp.layer_of(record, k) for k in tree}
        n = {v[1] for v in places.values()}
        assert len(n) == 1, (name, n)
        (n,) = n
        ks = sorted({v[0] for v in places.values()})
        assert ks[0] == 0 and ks[-1] <= n and set(range(1, n)) <= set(ks), (name, places)
    whisper = {"architecture": "whisper", "config": {"encoder_layers": 6}}
    assert imp.layer_of(whisper, "conv2") == (0, 6, True)
    assert imp.layer_of(whisper, "embed_positions") == (0, 6, False)
    assert imp.layer_of(whisper, "layers_5") == (6, 6, False)
    assert imp.layer_of(whisper, "layer_norm") == (6, 6, False)
