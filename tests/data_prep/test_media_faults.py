"""Faults 2, 3 and 7 by kind, in the shared decoder every builder uses (``_common.media``) and in
the build report: which audio stream, out-of-range float audio, silent and too-short clips,
minutes-long video, duration outliers."""

import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

sys.path.insert(0, str(Path(__file__).parent))
import fixtures_av as fx  # noqa: E402

from data_prep._common.media import MediaError, read_audio, read_video  # noqa: E402
from data_prep._common.report import BuildReport  # noqa: E402


def write_two_stream_mp4(path: Path, sr: int = 16000) -> np.ndarray:
    """An mp4 whose first audio stream is silent and whose second, marked default, is a tone."""
    import av

    x = (0.3 * np.sin(2 * np.pi * 440 * np.arange(sr) / sr)).astype(np.float32)
    with av.open(str(path), "w") as out:
        streams = [out.add_stream("aac", rate=sr) for _ in range(2)]
        for st in streams:
            st.layout = "mono"
        streams[0].disposition = 0
        streams[1].disposition = av.stream.Disposition.default
        for st, sig in zip(streams, (np.zeros_like(x), x), strict=True):
            for start in range(0, sr, 1024):
                fr = av.AudioFrame.from_ndarray(sig[None, start:start + 1024].copy(),
                                                format="flt", layout="mono")
                fr.sample_rate, fr.pts = sr, start
                for pkt in st.encode(fr):
                    out.mux(pkt)
            for pkt in st.encode():
                out.mux(pkt)
    return x


def test_the_default_audio_stream_is_read_and_the_choice_recorded(tmp_path):
    x = write_two_stream_mp4(tmp_path / "two.mp4")
    audio, info = read_audio(tmp_path / "two.mp4")
    assert info["audio_stream"] == 1 and info["audio_streams"] == 2
    assert "multi_stream" in info["flags"] and "silent" not in info["flags"]
    # The tone, not the silent first stream: RMS within AAC's error of the source's.
    rms = np.sqrt(np.mean((audio[2048:-2048] / 32767.0) ** 2))
    assert abs(rms - np.sqrt(np.mean(x**2))) < 0.02


def test_silent_audio_is_kept_and_flagged(tmp_path):
    sf.write(tmp_path / "s.wav", np.zeros(8000, np.int16), 16000, subtype="PCM_16")
    audio, info = read_audio(tmp_path / "s.wav")
    assert audio.size == 8000 and info["flags"] == {"silent": "every sample is 0"}


def test_out_of_range_float_audio_is_scaled_by_its_peak_not_clipped(tmp_path):
    t = np.arange(16000) / 16000
    x = (4.0 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)  # peak 4.0
    sf.write(tmp_path / "loud.wav", x, 16000, subtype="FLOAT")
    audio, info = read_audio(tmp_path / "loud.wav")
    np.testing.assert_array_equal(audio, np.round(x / 4.0 * 32767).astype(np.int16))
    assert np.mean(np.abs(audio) >= 32767) < 0.05  # only the sine crests; clipping: 84 %
    assert info["repairs"] == {"rescaled_out_of_range": 1}
    assert info["flags"]["out_of_range"].startswith("peak 4 (FLOAT)")
    # In-range float audio is untouched and unflagged.
    sf.write(tmp_path / "ok.wav", x / 8, 16000, subtype="FLOAT")
    _, info = read_audio(tmp_path / "ok.wav")
    assert info["flags"] == {} and info["repairs"] == {}


@pytest.mark.parametrize("n, sr", [(1, 48000), (1000, 48000), (399, 16000)])
def test_clips_shorter_than_one_window_after_resampling_are_errors(tmp_path, n, sr):
    sf.write(tmp_path / "short.wav", np.full(n, 1000, np.int16), sr, subtype="PCM_16")
    with pytest.raises(MediaError, match="too short.*after resampling"):
        read_audio(tmp_path / "short.wav")


def test_short_and_silent_clips_in_a_build_report(tmp_path):
    """Through a real builder (EmoDB layout): the one-sample file is a skip with its reason, the
    silent one is stored and flagged."""
    from data_prep.emodb import emodb

    wav = tmp_path / "emodb" / "wav"
    for i, spk in enumerate(emodb.SPEAKERS):
        fx.write_wav(wav / f"{spk}a01{'WLEAFTN'[i % 7]}a.wav", 0.1, 22050, freq=200 + 10 * i)
    sf.write(wav / "03a02Wa.wav", np.zeros(1, np.int16), 48000, subtype="PCM_16")
    sf.write(wav / "15a02Na.wav", np.zeros(3200, np.int16), 16000, subtype="PCM_16")
    _, ex, rep = fx.build_and_read("emodb", "default", tmp_path / "tfds", tmp_path / "emodb")
    assert sum(len(v) for v in ex.values()) == 11
    (skip,) = rep["skipped"]["train"]
    assert skip["path"].endswith("03a02Wa.wav") and "too short" in skip["reason"]
    (flag,) = rep["flags"]["silent"]
    assert flag["path"].endswith("15a02Na.wav") and flag["split"] == "test"


def test_duration_outliers_are_flagged():
    rep = BuildReport("x", "y", "1")
    for i in range(10):
        rep.add("train", "a", "s", 2.0 + 0.1 * i, 16000, path=f"c{i}.wav")
    rep.add("train", "a", "s", 240.0, 16000, path="long.wav")
    (flag,) = rep.to_dict()["flags"]["duration_outlier"]
    assert flag["path"] == "long.wav" and flag["detail"].startswith("240.00 s")


def test_long_video_memory_does_not_grow_with_length(tmp_path):
    """Only the sampled frames are converted and kept: a 30 s clip read at 180x320 peaks at a few
    MB (holding every frame, as before, took 300 x 173 kB = 52 MB)."""
    path = fx.write_mp4(tmp_path / "long.mp4", seconds=30.0, fps=10, size=(72, 128))
    tracemalloc.start()
    frames, info = read_video(path, 8, size=(180, 320))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert info["total_frames"] == 300 and frames.shape == (8, 180, 320, 3)
    assert info["indices"] == np.linspace(0, 299, 8).round().astype(int).tolist()
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    # The same frames as converting every frame and picking afterwards.
    import av

    with av.open(str(path)) as c:
        every = [f.to_ndarray(width=320, height=180, format="rgb24")
                 for f in c.decode(c.streams.video[0])]
    np.testing.assert_array_equal(frames, np.stack([every[i] for i in info["indices"]]))
