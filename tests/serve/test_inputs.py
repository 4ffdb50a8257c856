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
    assert d.duration_s == pytest.approx(3.0) and d.missing == {}
    # 3 s > max_audio_s 1 s: the whole clip is scored as 3 windows of 1 s; only the 4 frames
    # each window uses (of 8) are decoded and kept.
    assert d.spans == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]
    assert "3 evenly spaced windows of 1 s" in d.coverage
    assert d.frames.shape == (12, 16, 16, 3) and d.video_frames == 24 and d.fps == 8.0
    np.testing.assert_array_equal(d.frame_index, [0, 2, 5, 7, 8, 10, 13, 15, 16, 18, 21, 23])


def test_windows_take_their_own_audio_and_frames(clip):
    path, pcm = clip
    d = decode(path, SETTINGS, window_s=1.0, hop_s=0.5)
    assert d.missing == {"text": "no transcript given (--text, or a .txt of the clip's name)"}
    spans = records(d, SETTINGS)
    assert [(s, e) for s, e, _ in spans] == [(0.0, 1.0), (0.5, 1.5), (1.0, 2.0), (1.5, 2.5),
                                             (2.0, 3.0)]
    _, _, second = spans[1]
    np.testing.assert_array_equal(second["audio"], pcm[8000:24000])
    # 8 frames in [0.5, 1.5) -> max_frames = 4 uniformly spaced: 4 + round(0, 2.33, 4.67, 7).
    assert [int(f[0, 0, 0]) // 10 for f in second["frames"]] == [4, 6, 9, 11]
    assert second["text"] == ""  # missing text is an empty input, as a padded row carries it


def test_whole_clip_is_covered_not_only_its_centre(clip):
    path, pcm = clip
    recs = records(decode(path, SETTINGS), SETTINGS)
    # Every second of the 3-s clip is scored: audio and frames of each window are its own.
    np.testing.assert_array_equal(np.concatenate([r["audio"] for _, _, r in recs]), pcm)
    assert [[int(f[0, 0, 0]) // 10 for f in r["frames"]] for _, _, r in recs] == [
        [0, 2, 5, 7], [8, 10, 13, 15], [16, 18, 21, 23]]


def test_whole_clip_windows_are_full_length_and_span_the_file(tmp_path):
    """Variant: 4 s with 1.5-s windows: 3 evenly spaced full windows, first at 0, last at 4."""
    from .media import write_wav

    pcm = (np.sin(np.arange(64000) / 7.0) * 8000).astype(np.int16)
    audio_only = MediaSettings(("audio",), 16000, 4, max_audio_s=1.5)
    d = decode(write_wav(tmp_path / "four.wav", pcm), audio_only)
    assert d.spans == [(0.0, 1.5), (1.25, 2.75), (2.5, 4.0)]
    assert [len(r["audio"]) for _, _, r in records(d, audio_only)] == [24000] * 3
    short = decode(write_wav(tmp_path / "short.wav", pcm[:16000]), audio_only)
    assert short.spans == [(0.0, 1.0)] and "in one window" in short.coverage


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


def test_face_and_frames_of_each_window(tmp_path):
    """A face model's windows: crops of the frames each window uses, aligned with the whole
    frames (resized to the corpus' frame size)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "data_prep"))
    from fixtures_av import face_image

    frames = np.stack([np.roll(face_image(120, 160), i, axis=1) for i in range(16)])
    path = write_avi(tmp_path / "face.avi", frames, None, fps=8)
    both = MediaSettings(("frames", "face"), 16000, 3, frame_size=(12, 16), face_size=(24, 24))
    d = decode(path, both, window_s=1.0)
    assert d.missing == {} and d.spans == [(0.0, 1.0), (1.0, 2.0)]
    assert d.face.shape == (6, 24, 24, 3) and d.frames.shape == (6, 12, 16, 3)
    np.testing.assert_array_equal(d.frame_index, [0, 4, 7, 8, 12, 15])
    recs = records(d, both)
    assert [r["face"].shape[0] for _, _, r in recs] == [3, 3]
    np.testing.assert_array_equal(recs[1][2]["face"], d.face[3:])


def test_whole_input_past_the_window_limit_says_what_it_scored():
    from mmer_jax.serve.inputs import plan

    audio = MediaSettings(("audio",), 16000, 4, max_audio_s=1.5)
    spans, how = plan(100.0, audio, None, None, max_windows=10)
    assert len(spans) == 10 and spans[0] == (0.0, 1.5) and spans[-1] == (98.5, 100.0)
    assert "10 evenly spaced windows over 100.00 s (15% of it: at most 10 windows)" in how
    with pytest.raises(InputError, match="gives 199 windows, more than the limit of 10"):
        plan(100.0, audio, 1.0, 0.5, max_windows=10)
