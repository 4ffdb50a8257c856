"""Issue 32, kind 2 (media: which stream, and how much of it), through the builders' decoder
(``data_prep.decode``, which the MELD av build reads clips with) and the predictor's decoding
(:mod:`mmer_jax.serve.inputs`). No model: seconds."""

from __future__ import annotations

import numpy as np
import pytest

from data_prep import decode as media
from mmer_jax.serve.inputs import MediaSettings, decode, records

from .media import (
    frame_ids,
    index_frames,
    write_audio_with_cover_art,
    write_avi,
    write_two_video_streams,
    write_wav,
)

FRAMES_ONLY = MediaSettings(("frames",), 16000, 10, frame_size=(8, 8))


def _ramp(n: int, size: int = 32) -> np.ndarray:
    return np.stack([np.full((size, size, 3), 10 * i, np.uint8) for i in range(n)])


def test_default_video_stream_not_the_still_before_it(tmp_path):
    """The issue's example: stream 0 a non-default still, stream 1 the default video."""
    path = write_two_video_streams(tmp_path / "two.mp4", _ramp(20))
    frames, info = media.read_video(path, 5, size=(32, 32))  # the MELD av build's decoder
    assert info["video_stream"] == 1
    assert "read stream 1 (default)" in info["flags"]["multi_video_stream"]
    assert frames.std() > 20  # the still would give std 0.0
    assert np.all(np.diff(frames[:, 16, 16, 0].astype(int)) > 0)  # the ramp, in order
    # The av build's per-clip function records the flag for the build report.
    from data_prep._common.clips import AVItem, av_clip

    wav = write_wav(tmp_path / "two.wav", (np.sin(np.arange(16000) / 5) * 8000).astype(np.int16))
    clip = av_clip(AVItem(wav, path, 4, (16, 16), (16, 16), (32, 32)))
    assert "multi_video_stream" in clip.info["flags"] and clip.frames.std() > 20
    # mmer predict's decoding reads the same stream.
    d = decode(path, MediaSettings(("frames",), 16000, 20, frame_size=(32, 32)))
    assert d.frames.shape[0] == 20 and np.all(np.diff(d.frames[:, 16, 16, 0].astype(int)) > 0)


def test_cover_art_is_never_read_as_video(tmp_path):
    """Variant: an MP4 of audio plus a cover picture (a podcast or music file)."""
    pcm = (np.sin(np.arange(32000) / 5) * 8000).astype(np.int16)
    path = write_audio_with_cover_art(tmp_path / "song.mp4", pcm)
    with pytest.raises(media.MediaError, match="1 attached picture such as cover art"):
        media.read_video(path, 4, size=(16, 16))
    d = decode(path, MediaSettings(("audio", "frames"), 16000, 4, frame_size=(16, 16)))
    assert d.audio is not None and d.frames is None
    assert "cover art" in d.missing["frames"]


def test_long_video_every_window_gets_the_trained_frames(tmp_path):
    """The issue's example: a 30-min video with --window 2 (trained with max_frames = 10)."""
    n = 30 * 60 * 8  # 8 fps: 16 frames per 2-s window, 14,400 in all (MAX was 1,024 per file)
    path = write_avi(tmp_path / "long.avi", index_frames(n), None, fps=8)
    d = decode(path, FRAMES_ONLY, window_s=2.0)
    recs = records(d, FRAMES_ONLY)
    assert len(recs) == 900
    for start, end, rec in recs:
        ids = frame_ids(rec["frames"])
        assert len(ids) == 10
        assert min(ids) == round(start * 8) and max(ids) == round(end * 8) - 1, (start, ids)
    assert d.frames.shape[0] == 9000  # only the frames the windows use were kept


def test_overlapping_windows_far_into_a_video(tmp_path):
    """Variant: 10 min at 25 fps, 1.5-s windows every 0.5 s, ending mid-window: each window's
    frames are its own (in time), the last partial window has what it holds."""
    n = 10 * 60 * 25 + 10
    path = write_avi(tmp_path / "talk.avi", index_frames(n), None, fps=25)
    d = decode(path, FRAMES_ONLY, window_s=1.5, hop_s=0.5)
    recs = records(d, FRAMES_ONLY)
    assert len(recs) == 1199 and recs[-1][1] == pytest.approx(n / 25)
    t = np.arange(n) / 25
    for start, end, rec in recs:
        ids = frame_ids(rec["frames"])
        inside = np.nonzero((t >= start) & (t < end))[0].tolist()
        assert len(ids) == min(10, len(inside))
        assert set(ids) <= set(inside) and ids[0] == inside[0] and ids[-1] == inside[-1]


def test_bounded_audio_reading_gives_the_same_samples(tmp_path):
    """The duration-limited reader (block by block, streamed resampling) equals the builders'
    whole-file reader, for a 48-kHz stereo FLAC and a container."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    flac = str(tmp_path / "s.flac")
    sf.write(flac, (rng.standard_normal((48000 * 3, 2)) * 0.2).astype(np.float32), 48000)
    avi = write_avi(tmp_path / "a.avi", None, (rng.standard_normal(40000) * 3000).astype(np.int16),
                    sr=22050)
    for path in (flac, avi):
        whole, _ = media.read_audio(path, 16000)
        bounded, info = media.read_audio(path, 16000, max_duration_s=100.0)
        np.testing.assert_array_equal(bounded, whole)
        assert info["resampled"]
    with pytest.raises(media.TooLong, match="3.0 s long, over the limit of 2 s"):
        media.read_audio(flac, 16000, max_duration_s=2.0)
    # A float file past full scale is scaled by 1/peak after resampling, not before: the same
    # samples up to one int16 step of float rounding, and the same repair recorded.
    loud = str(tmp_path / "loud.wav")
    sf.write(loud, (rng.standard_normal(44100) * 0.8).astype(np.float32), 44100, subtype="FLOAT")
    (whole, wi), (bounded, bi) = (media.read_audio(loud, 16000, max_duration_s=m)
                                  for m in (None, 100.0))
    assert np.abs(whole.astype(int) - bounded).max() <= 1
    assert wi["repairs"] == bi["repairs"] == {"rescaled_out_of_range": 1}
