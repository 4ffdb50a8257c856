"""Tests for data_prep._common: media decoding, reports, speaker folds."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import fixtures_av as fx  # noqa: E402

from data_prep._common import media, report, speakers  # noqa: E402


def test_read_audio_resamples_and_records(tmp_path):
    p = fx.write_wav(tmp_path / "a.wav", 0.5, 22050)
    audio, info = media.read_audio(p)
    assert audio.dtype == np.int16 and audio.shape == (8000,)
    assert info["orig_sr"] == 22050 and info["resampled"] is True and info["sr"] == 16000
    audio, info = media.read_audio(fx.write_wav(tmp_path / "b.wav", 0.5, 16000))
    assert info["resampled"] is False and audio.shape == (8000,)


def test_read_audio_stereo_mixdown(tmp_path):
    import soundfile as sf

    x = fx.tone(0.1, 16000)
    sf.write(tmp_path / "s.wav", np.stack([x, -x], 1), 16000, subtype="PCM_16")
    audio, _ = media.read_audio(tmp_path / "s.wav")
    assert np.abs(audio).max() <= 1  # the two channels cancel


@pytest.mark.parametrize("make,reason", [
    (lambda p: fx.write_zero_length(p), "zero-length"),
    (lambda p: fx.write_corrupt(p), "unreadable"),
    (lambda p: fx.write_truncated_wav(p, 0.5, 16000), "truncated"),
])
def test_read_audio_bad_files(tmp_path, make, reason):
    p = make(tmp_path / "bad.wav")
    with pytest.raises(media.MediaError, match=reason) as err:
        media.read_audio(p)
    assert str(err.value).startswith(str(p))


def test_read_audio_nan(tmp_path):
    import soundfile as sf

    x = fx.tone(0.1, 16000)
    x[5] = np.nan
    sf.write(tmp_path / "n.wav", x, 16000, subtype="FLOAT")
    with pytest.raises(media.MediaError, match="NaN"):
        media.read_audio(tmp_path / "n.wav")


def test_mp4_audio_video_faces(tmp_path):
    p = fx.write_mp4(tmp_path / "f.mp4", seconds=1.0, fps=10, size=(120, 160), face=True)
    audio, info = media.read_audio(p)
    assert info["orig_sr"] == 48000 and abs(audio.size - 16000) < 1600
    frames, vinfo = media.read_video(p, 16, size=(90, 120))
    assert frames.shape == (16, 90, 120, 3) and frames.dtype == np.uint8
    assert vinfo["total_frames"] == 10  # fewer frames than asked: indices repeat
    faces, ratio = media.crop_faces(frames, size=(32, 32))
    assert faces.shape == (16, 32, 32, 3) and ratio > 0.5
    blank = fx.write_mp4(tmp_path / "b.mp4", face=False)
    faces, ratio = media.crop_faces(media.read_video(blank, 4, (90, 120))[0], (32, 32))
    assert ratio == 0.0 and faces.shape == (4, 32, 32, 3)  # whole-frame fallback


def test_read_video_errors(tmp_path):
    with pytest.raises(media.MediaError, match="no video stream"):
        media.read_video(fx.write_wav(tmp_path / "a.wav", 0.1, 16000), 4)
    with pytest.raises(media.MediaError):
        media.read_video(fx.write_corrupt(tmp_path / "c.mp4"), 4)


def test_report_and_skiplog(tmp_path):
    r = report.BuildReport("x", "c", "1.0.0")
    r.add("train", "sad", "01", 1.5, 48000)
    r.add("train", "sad", "02", 0.5, 16000)
    r.skip(tmp_path / "z.wav", f"{tmp_path / 'z.wav'}: zero-length file", "train")
    r.skip("weird.wav", "bad name")
    d = json.loads(r.write(tmp_path).read_text())
    t = d["splits"]["train"]
    assert t["count"] == 2 and t["per_speaker"] == {"01": 1, "02": 1}
    assert t["duration_s"] == {"total": 2.0, "min": 0.5, "max": 1.5}
    assert d["resampled_examples"] == 1 and d["skipped_total"] == 2
    assert d["skipped"]["train"][0]["reason"] == "zero-length file"
    assert d["skipped"][report.UNASSIGNED][0]["path"] == "weird.wav"


def test_speaker_folds():
    folds = speakers.assign_folds([f"{i:02d}" for i in range(24, 0, -1)], 6)
    assert folds[0] == ["01", "02", "03", "04"] and folds[-1] == ["21", "22", "23", "24"]
    assert [len(f) for f in speakers.assign_folds(range(1001, 1092), 5)] == [19, 18, 18, 18, 18]
    s = speakers.fold_splits(folds, 6)
    assert s["test"] == set(folds[5]) and s["validation"] == set(folds[0]) and len(s["train"]) == 16
    speakers.check_disjoint(s)
    with pytest.raises(ValueError, match="'01'"):
        speakers.check_disjoint({"train": {"01"}, "test": {"01"}})
    ids = [str(i) for i in range(100)]
    assert speakers.carve(ids, 0.1, "a") == speakers.carve(reversed(ids), 0.1, "a")
    assert len(speakers.carve(ids, 0.1, "a")) == 10
