"""The encoder-feature cache (``data.encoder``) and the ``ssl_probe`` system on the tiny
generated corpus, with a small random Whisper imported from a numpy-written checkpoint (no torch).

What is checked: the encoder runs once per build whatever the number of runs (seeds, folds)
reading it; the cached features of a clip equal the encoder run on that clip alone; a partial
cache resumes from its closed shards; other settings get another directory and a cache whose
record disagrees is refused; windows of a long clip are encoded apart and concatenated.
"""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from mmer_jax import config as config_lib
from mmer_jax.data import encoder_cache, sources
from mmer_jax.data.whisper_features import whisper_log_mel
from mmer_jax.errors import RunError
from mmer_jax.schema import DataConfig, from_section
from mmer_jax.train import encoder_features
from mmer_jax.train.run import run
from mmer_jax.weights import importer, store
from tests.pretrained.reference import write_hf_whisper

CONFIG = "experiments/ssl_probe_generated.py"


@pytest.fixture(scope="module")
def whisper_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_whisper")
    write_hf_whisper(root / "hf", d=16, ffn=32, heads=2, layers=2, mels=80, positions=100)
    return str(importer.import_checkpoint("hf", root / "hf", root / "whisper-tiny-abc"))


def _cfg(data_dir, encoder, **extra):
    items = {"data.config": "tiny", "data.data_dir": data_dir, "data.read_threads": 0,
             "data.encoder": encoder, "train.epochs": 2, "train.batch_size": 16,
             "train.progress": False, **extra}
    return config_lib.load(CONFIG, [f"{k}={v}" for k, v in items.items()])


@pytest.fixture
def counted(monkeypatch):
    """The encoder's invocations, counted across every run of the test."""
    calls = []
    real = encoder_features._Encoder.encode

    def encode(self, waves, lengths):
        calls.append(len(lengths))
        return real(self, waves, lengths)

    monkeypatch.setattr(encoder_features._Encoder, "encode", encode)
    return calls


def _builder(cfg):
    return sources.open_builder(from_section(DataConfig, cfg.data, "data"))


@pytest.mark.slow  # 19 s; the cache's reuse stays fast in the partial-cache test
def test_two_seeds_encode_once(tiny_generated, whisper_dir, tmp_path, counted):
    cfg = _cfg(tiny_generated, whisper_dir, **{"train.epochs": 1})
    assert cfg.model.encoder_states == 3  # filled in from encoder.json: 2 layers + 1
    first = run(cfg, str(tmp_path / "seed0"))
    n = len(counted)
    builder = _builder(cfg)
    clips = sum(s.num_examples for s in builder.info.splits.values())
    assert n > 0 and sum(counted) == clips  # every stored clip encoded once
    cfg1 = _cfg(tiny_generated, whisper_dir, **{"train.epochs": 1})
    cfg1.seed = 1
    second = run(cfg1, str(tmp_path / "seed1"))
    assert len(counted) == n  # the second run read the cache
    for res in (first, second):
        w = res["model_summary"]["layer_weights"]
        assert len(w) == 3 and abs(sum(w) - 1) < 1e-5
    directory = encoder_cache.cache_dir(builder.data_dir, from_section(DataConfig, cfg.data,
                                                                        "data"))
    meta = json.loads((directory / "meta.json").read_text())
    assert meta["clips"] == clips and meta["layers"] == 3 and meta["hidden_size"] == 16


def test_cached_features_are_each_clip_alone(tiny_generated, whisper_dir):
    cfg = _cfg(tiny_generated, whisper_dir)
    data = from_section(DataConfig, cfg.data, "data")
    builder = _builder(cfg)
    cache = encoder_cache.EncoderCache(encoder_features.ensure_cache(builder, data, progress=False))
    enc = store.load(whisper_dir)
    apply = jax.jit(enc.module().apply)
    recs = list(sources.iterate(builder.as_data_source(split="test")))[:3]
    for rec in recs:
        wave = np.asarray(rec["audio"], np.float32)[None] / 32768.0
        feats, mask = whisper_log_mel(wave, precision="float64")
        states = np.stack([np.asarray(h)[0] for h in apply(enc.variables, feats, mask)
                           .hidden_states], axis=1)  # [T, L, D]
        got = cache.get(sources.as_str(rec["id"]))
        assert got.dtype == np.float16 and got.shape == states.shape
        np.testing.assert_allclose(got.astype(np.float32), states, rtol=2e-3, atol=2e-3)


def test_partial_cache_resumes(tiny_generated, whisper_dir, monkeypatch, counted, tmp_path):
    monkeypatch.setattr(encoder_features, "SHARD_CLIPS", 64)
    cfg = _cfg(tiny_generated, whisper_dir, **{"data.encoder_window_s": 7.0})  # its own cache
    data = from_section(DataConfig, cfg.data, "data")
    builder = _builder(cfg)
    directory = encoder_features.ensure_cache(builder, data, progress=False)
    full = encoder_cache.EncoderCache(directory)
    ids = sorted(json.loads((directory / "shard-00001.json").read_text()))
    want = {i: full.get(i) for i in ids[:5]}
    total = sum(counted)
    # An interruption: the meta file and shard 1's id list never written, later shards gone.
    (directory / "meta.json").unlink()
    (directory / "shard-00001.json").unlink()
    for later in directory.glob("shard-0000[2-9].*"):
        later.unlink()
    counted.clear()
    encoder_features.ensure_cache(builder, data, progress=False)
    assert 0 < sum(counted) < total  # shard 0 kept, the rest recomputed
    again = encoder_cache.EncoderCache(directory)
    assert len(again) == len(full)
    for i, x in want.items():  # batched differently: equal up to float32 rounding
        np.testing.assert_allclose(again.get(i).astype(np.float32), x.astype(np.float32),
                                   rtol=2e-3, atol=1e-3)


def test_settings_name_the_cache_and_a_foreign_record_is_refused(tiny_generated, whisper_dir):
    cfg = _cfg(tiny_generated, whisper_dir)
    data = from_section(DataConfig, cfg.data, "data")
    builder = _builder(cfg)
    a = encoder_cache.cache_dir(builder.data_dir, data)
    other = from_section(DataConfig, {**cfg.data.to_dict(), "encoder_store": "pooled"}, "data")
    assert encoder_cache.cache_dir(builder.data_dir, other) != a
    a.mkdir(parents=True, exist_ok=True)
    meta = a / "meta.json"
    saved = meta.read_text() if meta.exists() else None
    try:
        meta.write_text(json.dumps({"key": {"format_version": 0}}))
        with pytest.raises(RunError, match="records other settings"):
            encoder_features.ensure_cache(builder, data, progress=False)
    finally:
        if saved is None:
            meta.unlink()
        else:
            meta.write_text(saved)


def test_long_clips_are_windowed(whisper_dir):
    enc = encoder_features._Encoder(whisper_dir)
    data = DataConfig(encoder=whisper_dir, encoder_window_s=0.5)
    rng = np.random.default_rng(0)
    clip = (rng.normal(size=16000 + 4000) * 3000).astype(np.int16)  # 1.25 s: 3 windows
    out = {}
    encoder_features._encode_clips(enc, [("c", clip)], data, lambda cid, x: out.update({cid: x}))
    parts = [clip[:8000], clip[8000:16000], clip[16000:]]
    alone = [enc.encode(p[None].astype(np.float32) / 32768.0, np.array([len(p)]))[0]
             for p in parts]
    np.testing.assert_allclose(out["c"], np.concatenate(alone), rtol=1e-4, atol=1e-4)
    assert out["c"].shape[0] == sum((len(p) // 160 - 1) // 2 + 1 for p in parts)
