"""Host (librosa) vs device (JAX) audio front ends: same frames, masks and values."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mmer_jax.data import features as F

SR = 16000
# Every framing case: multiple of hop, ragged, short, just above n_fft / 2.
LENGTHS = np.array([16000, 12345, 7001, 260])


@pytest.fixture(scope="module")
def librosa():
    librosa = pytest.importorskip("librosa")
    F.logmel_host(np.zeros(800, np.float32) + 0.1)  # pay numba/lazy-import cost once
    return librosa


@pytest.fixture(scope="module")
def batch():
    """[B, N] noise/sine waves with garbage past each length, plus the clean per-wave cuts."""
    rng = np.random.default_rng(0)
    n = int(LENGTHS.max())
    t = np.arange(n) / SR
    cuts = [
        0.3 * rng.standard_normal(LENGTHS[0]),
        0.5 * np.sin(2 * np.pi * 440.0 * t[: LENGTHS[1]]),
        0.2 * rng.standard_normal(LENGTHS[2]) + 0.4 * np.sin(2 * np.pi * 1234.5 * t[: LENGTHS[2]]),
        0.8 * np.sin(2 * np.pi * 3000.0 * t[: LENGTHS[3]]),
    ]
    cuts = [c.astype(np.float32) for c in cuts]
    wave = np.full((len(cuts), n), 7.0, np.float32)  # loud padding: must not leak into valid frames
    for i, c in enumerate(cuts):
        wave[i, : len(c)] = c
    return wave, cuts


# librosa warns that n_fft exceeds the 260-sample wave; that short case is deliberate.
@pytest.mark.filterwarnings("ignore:n_fft=.*is too large")
@pytest.mark.parametrize("kind", ["logmel", "mfcc"])
@pytest.mark.parametrize("top_db", [None, 20.0])
def test_jax_matches_host(librosa, batch, kind, top_db):
    wave, cuts = batch
    if kind == "logmel":
        feats, mask = F.logmel_jax(jnp.asarray(wave), jnp.asarray(LENGTHS), top_db=top_db)
        host = [F.logmel_host(c, SR, top_db=top_db) for c in cuts]
    else:
        feats, mask = F.mfcc_jax(jnp.asarray(wave), jnp.asarray(LENGTHS), top_db=top_db)
        host = [F.mfcc_host(c, SR, top_db=top_db) for c in cuts]
    feats, mask = np.asarray(feats), np.asarray(mask)
    assert feats.shape[:2] == mask.shape == (4, F.num_frames(wave.shape[1], 160))
    for i, ref in enumerate(host):
        t = ref.shape[0]
        assert t == F.num_frames(LENGTHS[i], 160)
        np.testing.assert_array_equal(mask[i], np.arange(mask.shape[1]) < t)
        assert not feats[i, t:].any(), "masked frames must be zero"
        # Measured ~6e-5 (log-mel) / ~4e-5 (MFCC); 1e-3 leaves room for other BLAS/FFT backends.
        np.testing.assert_allclose(feats[i, :t], ref, rtol=0, atol=1e-3)


def test_host_matches_librosa_conventions(librosa, batch):
    _, cuts = batch
    logmel = F.logmel_host(cuts[0], SR)
    mel = librosa.feature.melspectrogram(
        y=cuts[0], sr=SR, n_fft=400, hop_length=160, n_mels=64, pad_mode="reflect"
    )
    np.testing.assert_allclose(logmel, np.log(mel + F.EPS).T, atol=1e-5)
    ref_mfcc = librosa.feature.mfcc(S=logmel.T, n_mfcc=40).T  # librosa's DCT on our log-mel
    np.testing.assert_allclose(F.mfcc_host(cuts[0], SR), ref_mfcc, atol=1e-4)


@pytest.mark.parametrize(
    "sr,n_fft,n_mels,fmin,fmax",
    [(16000, 400, 64, 0.0, None), (16000, 512, 40, 50.0, 7600.0), (22050, 2048, 128, 0.0, None)],
)
def test_mel_filterbank_matches_librosa(librosa, sr, n_fft, n_mels, fmin, fmax):
    ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    fb = F.mel_filterbank(sr, n_fft, n_mels, fmin, fmax)
    assert fb.shape == (n_fft // 2 + 1, n_mels)
    np.testing.assert_allclose(fb, ref.T, rtol=1e-5, atol=1e-8)


def test_dct_matrix_is_orthonormal_dct2():
    import scipy.fft

    x = np.random.default_rng(1).standard_normal((5, 64)).astype(np.float32)
    np.testing.assert_allclose(
        x @ F.dct_matrix(64, 40), scipy.fft.dct(x, type=2, norm="ortho")[:, :40], atol=1e-5
    )
    d = F.dct_matrix(64, 64)
    np.testing.assert_allclose(d.T @ d, np.eye(64), atol=1e-5)


def test_padding_is_irrelevant_and_shapes_static(batch):
    wave, _ = batch
    front = jax.jit(F.LogMel(n_mfcc=13))
    a, mask_a = front(jnp.asarray(wave), jnp.asarray(LENGTHS))
    garbage = np.where(np.arange(wave.shape[1]) < LENGTHS[:, None], wave, -3.0).astype(np.float32)
    b, mask_b = front(jnp.asarray(garbage), jnp.asarray(LENGTHS))
    assert a.shape == (4, 101, 13) and a.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(np.asarray(mask_a), np.asarray(mask_b))


def test_no_lengths_means_full_and_empty_wave_is_all_masked():
    wave = jnp.ones((2, 1000), jnp.float32) * 0.1
    _, mask = F.logmel_jax(wave)
    assert bool(mask.all())
    feats, mask = F.logmel_jax(wave, jnp.array([0, 1000]))
    assert not bool(mask[0].any()) and not bool(feats[0].any())


def test_num_frames_and_pcm16():
    assert F.num_frames(16000, 160) == 101
    assert F.num_frames(159, 160) == 1
    assert F.num_frames(0, 160) == 0
    np.testing.assert_array_equal(F.num_frames(np.array([0, 159, 160]), 160), [0, 1, 2])
    np.testing.assert_array_equal(F.num_frames(jnp.array([0, 160]), 160), [0, 2])
    pcm = np.array([-32768, 0, 16384, 32767], np.int16)
    out = F.pcm16_to_float(pcm)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [-1.0, 0.0, 0.5, 32767 / 32768])
    assert F.pcm16_to_float(jnp.asarray(pcm)).dtype == jnp.float32
    # The host front end takes int16 directly and agrees with the float path.
    np.testing.assert_allclose(F.logmel_host(pcm.repeat(200)), F.logmel_host(out.repeat(200)))


def test_device_module_does_not_import_librosa():
    code = "import sys, mmer_jax.data.features; assert 'librosa' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
