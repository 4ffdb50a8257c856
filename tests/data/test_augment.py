"""Augmentation ops: SNR, masks, crops, offline pitch/tempo copies, config composition."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmer_jax.data import augment as A

SR = 16000


def _sine(freq, seconds=1.0, amp=0.5):
    t = np.arange(int(SR * seconds)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _snr_db(clean, noisy):
    clean = clean.astype(np.float64)
    return 10 * np.log10(np.mean(clean**2) / np.mean((noisy.astype(np.float64) - clean) ** 2))


def _dominant_hz(wave):
    spec = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return np.fft.rfftfreq(len(wave), 1 / SR)[np.argmax(spec)]


# --------------------------------------------------------------------------------------------------
# additive noise
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("color", ["white", "pink"])
def test_noise_hits_requested_snr(color):
    clean = _sine(300.0) + 0.05 * np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    op = A.additive_noise(snr_db=20.0, color=color)
    out = op({"audio": clean, "label": 3}, np.random.default_rng(1))
    assert out["label"] == 3 and out["audio"].dtype == np.float32
    assert abs(_snr_db(clean, out["audio"]) - 20.0) < 0.05  # exact up to float32 rounding
    if color == "pink":  # 1/f: far more power in the lowest octave band than in a high one
        p = np.abs(np.fft.rfft(out["audio"] - clean)) ** 2
        assert p[20:40].mean() > 20 * p[4000:4020].mean()


def test_noise_int16_and_range():
    clean = (_sine(440.0) * 32767).astype(np.int16)
    op = A.additive_noise(snr_db=(10, 30))
    rng = np.random.default_rng(2)
    snrs = []
    for _ in range(5):
        out = op({"audio": clean}, rng)["audio"]
        assert out.dtype == np.int16
        snrs.append(_snr_db(clean, out))
    assert all(9.8 < s < 30.2 for s in snrs) and np.ptp(snrs) > 1.0  # drawn, not fixed
    loud = A.additive_noise(snr_db=-20)({"audio": clean}, rng)["audio"]  # must clip, not wrap
    assert loud.min() == -32768 and loud.max() == 32767


def test_noise_respects_mask_and_silence():
    wave = np.concatenate([_sine(200.0, 0.5), np.zeros(4000, np.float32)])
    mask = np.arange(len(wave)) < 8000
    ex = {"audio": wave.copy(), "audio_mask": mask}
    out = A.additive_noise(snr_db=15)(ex, np.random.default_rng(3))["audio"]
    np.testing.assert_array_equal(out[8000:], 0.0)
    assert abs(_snr_db(wave[:8000], out[:8000]) - 15) < 0.05  # power over valid samples only
    np.testing.assert_array_equal(ex["audio"], wave)  # input untouched
    silent = A.additive_noise()({"audio": np.zeros(100, np.int16)}, np.random.default_rng(0))
    np.testing.assert_array_equal(silent["audio"], 0)


def test_noise_jax():
    wave = jnp.asarray(np.stack([_sine(300.0), _sine(900.0, amp=0.1)]))
    lengths = jnp.array([SR, SR // 2])
    out = np.asarray(A.additive_noise_jax(jax.random.key(0), wave, lengths, snr_db=(20.0, 20.0)))
    np.testing.assert_array_equal(out[1, SR // 2 :], np.asarray(wave)[1, SR // 2 :])
    assert abs(_snr_db(np.asarray(wave[0]), out[0]) - 20) < 0.05
    assert abs(_snr_db(np.asarray(wave[1, : SR // 2]), out[1, : SR // 2]) - 20) < 0.05


# --------------------------------------------------------------------------------------------------
# SpecAugment
# --------------------------------------------------------------------------------------------------
def test_spec_augment_host_valid_region_and_determinism():
    feats = np.random.default_rng(0).standard_normal((50, 20)).astype(np.float32) + 5.0
    mask = np.arange(50) < 30
    ex = {"audio": feats, "audio_mask": mask}
    op = A.spec_augment(freq_masks=2, freq_width=6, time_masks=3, time_width=8, fill=-1.0)
    a = op(ex, np.random.default_rng(7))["audio"]
    b = op(ex, np.random.default_rng(7))["audio"]
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[30:], feats[30:])  # padded frames untouched
    changed = a != feats
    assert changed.any() and (a[changed] == -1.0).all()
    assert not np.array_equal(a, op(ex, np.random.default_rng(8))["audio"])
    mean_fill = A.spec_augment(time_masks=0)(ex, np.random.default_rng(1))["audio"]
    assert np.allclose(mean_fill[mean_fill != feats], feats[:30].mean())


def test_spec_augment_jax_valid_region_and_determinism():
    feats = np.random.default_rng(0).standard_normal((3, 40, 16)).astype(np.float32) + 5.0
    mask = np.arange(40)[None, :] < np.array([40, 25, 3])[:, None]
    # One static config (one compile); row 2 has fewer valid frames than time_width.
    kw = dict(freq_masks=2, freq_width=5, time_masks=2, time_width=8)
    a = np.asarray(A.spec_augment_jax(jax.random.key(1), feats, mask, **kw))
    b = np.asarray(A.spec_augment_jax(jax.random.key(1), feats, mask, **kw))
    c = np.asarray(A.spec_augment_jax(jax.random.key(2), feats, mask, **kw))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    changed = a != feats
    assert changed.any()
    assert not (changed & ~mask[..., None]).any()  # padded frames are never masked
    for i in range(3):  # default fill: the example's mean over its valid frames
        np.testing.assert_allclose(a[i][changed[i]], feats[i, mask[i]].mean(), rtol=1e-5)


# --------------------------------------------------------------------------------------------------
# frame crops
# --------------------------------------------------------------------------------------------------
def _video(t):
    frames = np.arange(t, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 3), np.uint8)
    face = np.arange(t, dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    return {"frames": frames, "face": face, "face_mask": np.ones(t, bool), "label": 1}


def test_crop_keeps_frames_and_face_aligned():
    op = A.random_crop_frames(8)
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(20):
        out = op(_video(30), rng)
        idx_f, idx_c = out["frames"][:, 0, 0, 0], out["face"][:, 0, 0, 0]
        assert len(idx_f) == len(out["face_mask"]) == 8
        np.testing.assert_array_equal(idx_f, idx_c)
        np.testing.assert_array_equal(np.diff(idx_f), 1)  # contiguous
        starts.add(int(idx_f[0]))
    assert len(starts) > 3


def test_crop_eval_is_centre_and_short_is_untouched():
    out = A.random_crop_frames(8, train=False)(_video(30), None)
    np.testing.assert_array_equal(out["frames"][:, 0, 0, 0], np.arange(11, 19))
    short = A.random_crop_frames(8)(_video(5), np.random.default_rng(0))
    assert len(short["frames"]) == 5
    bad = {**_video(10), "face": _video(9)["face"]}
    with pytest.raises(ValueError, match="differ in length"):
        A.random_crop_frames(4)(bad, np.random.default_rng(0))


# --------------------------------------------------------------------------------------------------
# offline copies
# --------------------------------------------------------------------------------------------------
def test_pitch_shift_and_time_stretch_copies():
    pytest.importorskip("librosa")
    wave = _sine(440.0)
    pcm = (wave * 32767).astype(np.int16)
    copies = A.precompute_augmented_copies(
        [wave, pcm[:8000]],
        SR,
        ops=[("pitch_shift", {"n_steps": 2}), ("time_stretch", {"rate": 0.8})],
        progress=False,
    )
    assert [name for name, _ in copies] == ["pitch_shift_n_steps_2", "time_stretch_rate_0.8"]
    (_, shifted), (_, stretched) = copies
    assert shifted[0].shape == wave.shape and shifted[1].dtype == np.int16
    expected = 440.0 * 2 ** (2 / 12)  # 493.9 Hz; FFT bins are 1 Hz apart on 1 s
    assert abs(_dominant_hz(shifted[0]) - expected) < 0.01 * expected
    assert abs(len(stretched[0]) - SR / 0.8) < 0.01 * SR and stretched[1].dtype == np.int16
    assert abs(_dominant_hz(stretched[0]) - 440.0) < 5  # tempo changes, pitch does not
    assert A.copy_name("pitch_shift", {"n_steps": -2}) == "pitch_shift_n_steps_m2"
    with pytest.raises(KeyError, match="reverb"):
        A.precompute_augmented_copies([wave], SR, ops=[("reverb", {})], progress=False)


# --------------------------------------------------------------------------------------------------
# compose
# --------------------------------------------------------------------------------------------------
def test_compose_chains_ops_from_config():
    pipeline = A.compose(
        [
            {"name": "additive_noise", "snr_db": [20, 20]},
            {"name": "random_crop_frames", "num_frames": 4},
        ]
    )
    ex = {**_video(10), "audio": _sine(300.0)}
    out = pipeline(ex, np.random.default_rng(0))
    assert len(out["frames"]) == 4 and abs(_snr_db(ex["audio"], out["audio"]) - 20) < 0.05
    assert A.compose([])(ex, None) is ex


def test_compose_unknown_name_errors_clearly():
    with pytest.raises(KeyError) as err:
        A.compose([{"name": "addative_noise"}])
    msg = str(err.value)
    assert "addative_noise" in msg and all(k in msg for k in A.AUGMENTATIONS)
    with pytest.raises(KeyError, match="offline op"):
        A.compose([{"name": "pitch_shift", "n_steps": 2}])
    with pytest.raises(KeyError, match="no 'name'"):
        A.compose([{"snr_db": 3}])


# --------------------------------------------------------------------------------------------------
# spatial random crop
# --------------------------------------------------------------------------------------------------
def test_random_crop_images_is_one_shift_per_clip():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, size=(5, 12, 10, 3), dtype=np.uint8)
    op = A.random_crop_images(padding=3, keys=("frames",))
    seen_shift = False
    for seed in range(6):
        out = op({"frames": frames, "label": 1}, np.random.default_rng(seed))["frames"]
        assert out.shape == frames.shape and out.dtype == np.uint8
        # Every frame moved by the same (dy, dx): find it on frame 0's interior, check the rest.
        matches = [
            (dy, dx)
            for dy in range(-3, 4)
            for dx in range(-3, 4)
            if np.array_equal(out[0, 3:-3, 3:-3], frames[0, 3 + dy : 9 + dy, 3 + dx : 7 + dx])
        ]
        assert len(matches) == 1, matches
        dy, dx = matches[0]
        seen_shift |= (dy, dx) != (0, 0)
        shifted = frames[:, 3 + dy : 9 + dy, 3 + dx : 7 + dx]
        np.testing.assert_array_equal(out[:, 3:-3, 3:-3], shifted)
    assert seen_shift
    same = A.random_crop_images(padding=0)({"frames": frames}, np.random.default_rng(0))
    np.testing.assert_array_equal(same["frames"], frames)
    with pytest.raises(ValueError, match="padding"):
        A.random_crop_images(padding=-1)
