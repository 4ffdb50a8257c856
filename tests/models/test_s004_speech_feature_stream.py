"""``s004_speech`` on a stored feature-frame stream (``audio_feat``, CMU-MOSI's COVAREP frames):
the same network as on log-mels under another input key, and padded frames (their values, their
number) change no output and get no gradient."""

from __future__ import annotations

import functools

import jax
import numpy as np
import pytest

from mmer_jax.errors import UsageError
from mmer_jax.models import build_model

TINY = {"name": "s004_speech", "audio": {"filters": 3, "hidden": 8}}
B, T, F = 5, 11, 7  # odd lengths: the time pool's last window is half padding


def _model(modality: str, num_classes: int = 1):
    return build_model({**TINY, "modalities": [modality]}, num_classes=num_classes, vocab_size=0)


def _batch(key: str = "audio_feat", seed: int = 0, t: int = T) -> dict:
    rng = np.random.default_rng(seed)
    lengths = np.array([t, 1, 2, 6, 9])[:B]  # one full row, a single frame, odd and even
    mask = np.arange(t) < lengths[:, None]
    x = np.where(mask[..., None], rng.normal(size=(B, t, F)), 0.0).astype(np.float32)
    return {key: x, f"{key}_mask": mask}


def _padded(batch: dict, extra: int, seed: int) -> dict:
    """``batch`` with noise in its padded frames and ``extra`` more padded frames of noise."""
    rng = np.random.default_rng(seed)
    x, mask = batch["audio_feat"], batch["audio_feat_mask"]
    mask = np.pad(mask, ((0, 0), (0, extra)))
    x = np.pad(x, ((0, 0), (0, extra), (0, 0)))
    noise = rng.normal(scale=10.0, size=x.shape).astype(np.float32)
    return {"audio_feat": np.where(mask[..., None], x, noise), "audio_feat_mask": mask}


# Jitted, the model a static argument (equal modules share one program): eager init/apply
# compiles one tiny program per op and shape. "rbg" keys compile in a fraction of threefry's time.
@functools.partial(jax.jit, static_argnums=0)
def _init(model, batch, seed):
    return model.init({"params": jax.random.key(seed, impl="rbg")}, batch, train=False)


@functools.partial(jax.jit, static_argnums=(0, 3))
def _apply(model, variables, batch, train=False):
    rngs = {"dropout": jax.random.key(3, impl="rbg")} if train else None
    return model.apply(variables, batch, train=train, rngs=rngs)


def test_reads_audio_feat_like_a_spectrogram():
    feat, logmel = _model("audio_feat"), _model("audio")
    x = _batch()
    variables = _init(feat, x, 0)
    out, aux = _apply(feat, variables, x)
    assert out.shape == (B, 1) and aux["feat_audio"].shape == (B, 8)
    assert np.all(np.isfinite(np.asarray(out)))
    # The same parameters under the default key ("audio") give the same numbers.
    as_audio = {"audio": x["audio_feat"], "audio_mask": x["audio_feat_mask"]}
    np.testing.assert_allclose(_apply(logmel, variables, as_audio)[0], out, atol=1e-6)
    with pytest.raises(KeyError, match="audio_feat"):
        _apply(feat, variables, as_audio)  # the stream is read under its own name only


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("extra", [0, 1, 6])
def test_padded_frames_change_no_output(extra, train):
    model = _model("audio_feat", num_classes=3)
    x = _batch()
    variables = _init(model, x, 1)
    out, aux = _apply(model, variables, x, train)
    got, got_aux = _apply(model, variables, _padded(x, extra, seed=extra), train)
    np.testing.assert_allclose(got, out, atol=1e-5)
    np.testing.assert_allclose(got_aux["feat_audio"], aux["feat_audio"], atol=1e-5)
    # Each row alone, cut to its own length, is the row of the padded batch.
    row = 3
    n = int(x["audio_feat_mask"][row].sum())
    alone = {"audio_feat": x["audio_feat"][row:row + 1, :n],
             "audio_feat_mask": x["audio_feat_mask"][row:row + 1, :n]}
    np.testing.assert_allclose(_apply(model, variables, alone)[0][0],
                               _apply(model, variables, x)[0][row], atol=1e-5)


def test_padded_frames_get_no_gradient():
    model = _model("audio_feat")
    x = _padded(_batch(seed=2), 3, seed=7)
    variables = _init(model, x, 2)

    def total(frames):
        return _apply(model, variables, dict(x, audio_feat=frames))[0].sum()

    grad = np.asarray(jax.jit(jax.grad(total))(x["audio_feat"]))
    mask = x["audio_feat_mask"]
    assert np.all(grad[~mask] == 0.0)
    assert np.abs(grad[mask]).sum() > 0.0  # the valid frames do reach the output


@pytest.mark.parametrize("modalities", [["audio", "audio_feat"], ["vision_feat"], []])
def test_other_inputs_are_named(modalities):
    with pytest.raises(UsageError, match=r"must be \('audio',\) or \('audio_feat',\)"):
        build_model({**TINY, "modalities": modalities}, num_classes=1, vocab_size=0)
