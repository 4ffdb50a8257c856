"""Decoding raw files into corpus records (no model): windows, frames, missing modalities."""

from __future__ import annotations

import numpy as np
import pytest

from mmer_jax.serve.inputs import InputError, MediaSettings, decode, kind_of, records

from .media import write_avi

SETTINGS = MediaSettings(modalities=("audio", "frames", "text"), sample_rate=16000,
                         max_frames=4, frame_size=(16, 16), max_audio_s=1.0)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """3 s: a 440 Hz tone and 24 frames at 8 fps whose brightness is the frame index."""
    t = np.arange(48000) / 16000
    pcm = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
    frames = np.stack([np.full((16, 16, 3), 10 * i, np.uint8) for i in range(24)])
    return write_avi(tmp_path_factory.mktemp("c") / "clip.avi", frames, pcm), pcm


def test_decode_video_with_audio_track(clip):
    path, pcm = clip
    d = decode(path, SETTINGS, text="hello")
    np.testing.assert_array_equal(d.audio, pcm)
    assert d.frames.shape == (24, 16, 16, 3) and d.duration_s == pytest.approx(3.0)
    np.testing.assert_allclose(d.frame_times, np.arange(24) / 8)
    assert d.missing == {}


def test_windows_take_their_own_audio_and_frames(clip):
    path, pcm = clip
    d = decode(path, SETTINGS)
    assert d.missing == {"text": "no transcript given (--text or a .txt file)"}
    spans = records(d, SETTINGS, window_s=1.0, hop_s=0.5)
    assert [(s, e) for s, e, _ in spans] == [(0.0, 1.0), (0.5, 1.5), (1.0, 2.0), (1.5, 2.5),
                                             (2.0, 3.0)]
    _, _, second = spans[1]
    np.testing.assert_array_equal(second["audio"], pcm[8000:24000])
    # 8 frames in [0.5, 1.5) -> max_frames = 4 uniformly spaced: 4 + round(0, 2.33, 4.67, 7).
    assert [int(f[0, 0, 0]) // 10 for f in second["frames"]] == [4, 6, 9, 11]
    assert second["text"] == ""  # missing text is an empty input, as a padded row carries it


def test_whole_clip_frames_follow_the_centre_audio_window(clip):
    path, _ = clip
    (_, _, rec), = records(decode(path, SETTINGS), SETTINGS)
    # audio 3 s > max_audio_s 1 s: the corpus path keeps the centre second, frames from [1, 2).
    assert [int(f[0, 0, 0]) // 10 for f in rec["frames"]] == [8, 10, 13, 15]


def test_unusable_inputs(tmp_path):
    with pytest.raises(InputError, match="unsupported file type"):
        kind_of("a.exe")
    faceless = write_avi(tmp_path / "noface.avi", np.full((4, 64, 64, 3), 128, np.uint8), None)
    face_only = MediaSettings(modalities=("face",), sample_rate=16000, max_frames=4,
                              face_size=(32, 32))
    with pytest.raises(InputError, match="no face found"):
        decode(faceless, face_only)
    with pytest.raises(InputError, match="no video in an audio file"):
        decode(str(tmp_path / "x.wav"), MediaSettings(("frames",), 16000, 4, (16, 16)))
