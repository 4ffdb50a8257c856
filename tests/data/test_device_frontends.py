"""The pretrained encoders' front ends on the device (``data.frontend`` "whisper" and
"waveform"): what the feature step gives, per-row lengths, dtypes under bfloat16, and the
normalisation options refused with them."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from mmer_jax.data.device import make_feature_step
from mmer_jax.data.whisper_features import whisper_log_mel
from mmer_jax.errors import UsageError
from mmer_jax.schema import DataConfig, from_section


def _batch(n=16000, lengths=(16000, 9000, 321)):
    rng = np.random.default_rng(0)
    pcm = (rng.normal(size=(len(lengths), n)) * 3000).astype(np.int16)
    for i, k in enumerate(lengths):
        pcm[i, k:] = 0
    return {"audio_pcm": pcm, "audio_len": np.array(lengths, np.int32),
            "label": np.zeros(len(lengths), np.int32), "weight": np.ones(len(lengths), np.float32)}


def _data(**kw):
    return from_section(DataConfig, {"feature_norm": False, **kw}, "data")


def test_whisper_frontend_is_whisper_log_mel_per_row():
    batch = _batch()
    out = make_feature_step(_data(frontend="whisper"))(batch)
    wave = batch["audio_pcm"].astype(np.float32) / 32768.0
    want, mask = whisper_log_mel(wave, batch["audio_len"])
    assert out["audio"].shape == (3, 100, 80) and out["audio"].dtype == jnp.float32
    np.testing.assert_array_equal(out["audio_mask"], mask)
    assert [int(m.sum()) for m in out["audio_mask"]] == [100, 56, 2]
    np.testing.assert_allclose(out["audio"], want, atol=1e-6)
    alone, _ = whisper_log_mel(wave[1:2, :9000])  # row 1 at its own length
    np.testing.assert_allclose(out["audio"][1, :56], alone[0], atol=1e-4)
    bf16 = make_feature_step(_data(frontend="whisper"), "bfloat16")(batch)
    assert bf16["audio"].dtype == jnp.bfloat16


def test_waveform_frontend_keeps_float32_samples():
    batch = _batch()
    for dtype in ("float32", "bfloat16"):
        out = make_feature_step(_data(frontend="waveform"), dtype)(batch)
        assert out["audio"].shape == (3, 16000) and out["audio"].dtype == jnp.float32
        np.testing.assert_array_equal(out["audio"], batch["audio_pcm"] / np.float32(32768.0))
        assert [int(m.sum()) for m in out["audio_mask"]] == [16000, 9000, 321]


@pytest.mark.parametrize("frontend", ["whisper", "waveform"])
def test_normalisation_refused(frontend):
    with pytest.raises(UsageError, match=f"frontend='{frontend}' is a pretrained encoder's own "
                                         "input, which feature_norm=True would change"):
        from_section(DataConfig, {"frontend": frontend}, "data")
    with pytest.raises(UsageError, match="speaker_norm='mean' would change"):
        _data(frontend=frontend, speaker_norm="mean")
    with pytest.raises(UsageError, match="reads 16 kHz audio"):
        _data(frontend=frontend, sample_rate=8000)
