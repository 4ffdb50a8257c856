"""Feature-stream modalities (``text_feat``, ``audio_feat``, ``vision_feat`` of CMU-MOSI/MOSEI)
through the input pipeline: host keys, bucketed widths, windows, device masks, the errors, and the
``feature_lstm`` encoder's indifference to padding."""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data_prep"))
from fixtures_text import MOSI_DIMS, MOSI_SPLIT_SIZES, mosi_object, write_pickle  # noqa: E402

from mmer_jax.data.batching import bucket, feature_bucket  # noqa: E402
from mmer_jax.data.device import make_feature_step  # noqa: E402
from mmer_jax.data.pipeline import make_pipeline  # noqa: E402
from mmer_jax.errors import RunError, UsageError  # noqa: E402
from mmer_jax.schema import DataConfig  # noqa: E402

STREAMS = ["text_feat", "audio_feat", "vision_feat"]


@pytest.fixture(scope="module")
def unaligned(tmp_path_factory):
    """(data_dir, manual_dir, pickle dict) of a tiny unaligned MMSA MOSI build: audio and vision
    lengths differ per clip (40 - i and 30 - 2i steps), text has 50."""
    from data_prep.build import build

    root = tmp_path_factory.mktemp("mosi")
    obj = mosi_object("mmsa", aligned=False)
    write_pickle(root / "raw" / "MOSI" / "Processed" / "unaligned_50.pkl", obj)
    build("cmu_mosi", "unaligned", str(root / "tfds"), str(root / "raw"))
    return str(root / "tfds"), str(root / "raw"), obj


def _data(unaligned, **kw) -> DataConfig:
    data_dir, raw, _ = unaligned
    return DataConfig(corpus="cmu_mosi", config="unaligned", data_dir=data_dir, manual_dir=raw,
                      read_threads=0, **kw)


def _pipe(unaligned, modalities=STREAMS, **kw):
    return make_pipeline(_data(unaligned, **kw), modalities, seed=0)


def test_host_batch_pads_each_stream_to_its_bucket(unaligned):
    pipe = _pipe(unaligned, max_feat_steps=64)
    step, cap = feature_bucket(64)
    assert (step, cap) == (16, 64)
    batch = next(iter(pipe.batches("test", 4)))
    src = pipe.sources["test"]
    for key, dim in ((f"{m}_feat", d) for m, d in MOSI_DIMS.items()):
        lens = np.array([len(src[i][key]) for i in range(4)])
        assert batch[key + "_len"].dtype == np.int32
        np.testing.assert_array_equal(batch[key + "_len"], lens)
        # audio 40..37 steps -> 48; vision 30..24 -> 32; text 50 -> 64.
        assert batch[key].shape == (4, bucket(lens.max(), step, cap), dim)
        assert batch[key].dtype == np.float32
        for i in range(4):
            np.testing.assert_array_equal(batch[key][i, : lens[i]], src[i][key])
            assert not batch[key][i, lens[i]:].any()
    # Every host of a multi-host run derives the same widths from the records alone.
    widths = pipe.batch_widths("test", [0, 1, 2, 3])
    assert {k: batch[k].shape[1] for k in STREAMS} == {k: widths[k] for k in STREAMS}


def test_windows_centre_at_evaluation_random_in_training(unaligned):
    pipe = _pipe(unaligned, max_feat_steps=8)
    rec = pipe.sources["validation"][0]
    x = np.asarray(rec["audio_feat"])
    ex = pipe.corpus.example(rec, False, np.random.default_rng(0))
    start = (len(x) - 8) // 2
    np.testing.assert_array_equal(ex["audio_feat"], x[start : start + 8])
    starts = set()
    for seed in range(12):
        win = pipe.corpus.example(rec, True, np.random.default_rng(seed))["audio_feat"]
        assert win.shape == (8, MOSI_DIMS["audio"])
        hits = [s for s in range(len(x) - 7) if np.array_equal(x[s : s + 8], win)]
        assert hits
        starts.add(hits[0])
    assert len(starts) > 1
    batch = next(iter(pipe.batches("validation", 2)))
    assert batch["text_feat"].shape[1] == 8 and (batch["text_feat_len"] == 8).all()


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_device_step_gives_masks_and_the_run_dtype(unaligned, dtype):
    pipe = _pipe(unaligned, max_feat_steps=64)
    host = next(iter(pipe.batches("test", 4)))
    host["audio_feat"][:, -1] = 7.0  # junk in the padding (every row is shorter than 48)
    out = jax.jit(make_feature_step(pipe.config, dtype))(host)
    assert set(out) == {"label", "weight", "score", *STREAMS, *(k + "_mask" for k in STREAMS)}
    for key in STREAMS:
        mask = np.asarray(out[key + "_mask"])
        assert mask.dtype == bool and out[key].dtype == jnp.dtype(dtype)
        assert out[key].shape == host[key].shape
        want = np.arange(host[key].shape[1])[None] < host[key + "_len"][:, None]
        np.testing.assert_array_equal(mask, want)
        assert not np.asarray(out[key], np.float32)[~mask].any()
    np.testing.assert_array_equal(out["score"], host["score"])


def test_a_stream_with_another_width_is_named(unaligned):
    pipe = _pipe(unaligned)
    rec = dict(pipe.sources["train"][2])
    rec["vision_feat"] = np.zeros((5, MOSI_DIMS["vision"] + 1), np.float32)
    with pytest.raises(RunError, match=r"record 'vid01\$_\$2': feature stream 'vision_feat' has "
                                       r"shape \[5, 21\], expected \[T, 20\]"):
        pipe.corpus.example(rec, False, np.random.default_rng(0))


def test_streams_need_a_corpus_that_stores_them_and_utterance_units(unaligned, tiny_generated):
    with pytest.raises(UsageError, match="'audio_feat', a field corpus 'generated_emotion' does "
                                         "not store"):
        make_pipeline(DataConfig(config="tiny", data_dir=tiny_generated, read_threads=0),
                      ["audio_feat"], 0)
    with pytest.raises(UsageError, match="need data.unit='utterance'"):
        _pipe(unaligned, unit="dialogue")


def test_feature_lstm_ignores_padding():
    from mmer_jax.models.encoders.feature_stream import FeatureLSTM

    rng = np.random.default_rng(0)
    lens = np.array([5, 2, 7])
    x = rng.normal(size=(3, 7, 6)).astype(np.float32)
    mask = np.arange(7)[None] < lens[:, None]
    enc = FeatureLSTM(hidden=4, proj=5)
    params = enc.init(jax.random.PRNGKey(0), x, mask, train=False)
    apply = jax.jit(lambda x, m: enc.apply(params, x, m, train=False))
    y = apply(x, mask)
    assert y.shape == (3, 16) and (np.abs(y).max(axis=1) > 0).all()
    # Other padded values, and a wider padded axis, give the same features.
    junk = np.where(mask[..., None], x, 100.0 * rng.normal(size=x.shape)).astype(np.float32)
    wide = np.concatenate([junk, np.full((3, 9, 6), -50.0, np.float32)], axis=1)
    wide_mask = np.arange(16)[None] < lens[:, None]
    np.testing.assert_allclose(apply(junk, mask), y, atol=1e-6)
    np.testing.assert_allclose(apply(wide, wide_mask), y, atol=1e-6)
    # A valid step does change them.
    moved = x.copy()
    moved[1, 0, 0] += 1.0  # one feature: a shift of the whole step is what LayerNorm removes
    assert not np.allclose(apply(moved, mask)[1], y[1])


def test_quickstart_reads_the_streams(unaligned):
    from mmer_jax.models import build_model
    from mmer_jax.models.systems.quickstart import FEATURE_STREAM_ENCODERS

    pipe = _pipe(unaligned, max_feat_steps=16)
    batch = make_feature_step(pipe.config)(next(iter(pipe.batches("test", 4))))
    section = {"name": "quickstart", "modalities": STREAMS, "head_hidden": 8,
               "encoders": {m: {**FEATURE_STREAM_ENCODERS[m], "hidden": 4, "proj": 4}
                            for m in STREAMS}}
    model = build_model(section, num_classes=1, vocab_size=0)
    variables = jax.jit(lambda b: model.init(jax.random.PRNGKey(0), b, train=False))(batch)
    logits, aux = jax.jit(lambda v, b: model.apply(v, b, train=False))(variables, batch)
    assert logits.shape == (4, 1) and set(aux["features"]) == set(STREAMS)
    assert len(pipe.sources["test"]) == MOSI_SPLIT_SIZES["test"]
