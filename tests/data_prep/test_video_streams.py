"""Issue 32, kind 2, through a whole MELD av build: a clip whose stream 0 is a non-default still
picture and stream 1 the default video is built from stream 1, and the build report flags it."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from fixtures_av import face_image, tone  # noqa: E402
from fixtures_text import MELD_CLIP_DIRS, write_meld  # noqa: E402

from data_prep._common.report import read_report  # noqa: E402
from data_prep.build import build  # noqa: E402


def _still_then_default_video(path: Path, seconds: float = 0.6, fps: int = 10) -> None:
    """H.264/MPEG-4 video in two streams (0: grey still, no disposition; 1: a moving face,
    default) and AAC audio, as MELD's mp4s are written."""
    import av
    from av.stream import Disposition

    h, w = 120, 160
    base = face_image(h, w)
    with av.open(str(path), "w", format="mp4") as out:
        still = out.add_stream("mpeg4", rate=fps)
        main = out.add_stream("mpeg4", rate=fps)
        for st, disp in ((still, Disposition(0)), (main, Disposition.default)):
            st.width, st.height, st.pix_fmt, st.disposition = w, h, "yuv420p", disp
        audio = out.add_stream("aac", rate=48000, layout="mono")
        grey = np.full((h, w, 3), 128, np.uint8)
        for i in range(int(seconds * fps)):
            out.mux(still.encode(av.VideoFrame.from_ndarray(grey, "rgb24")))
            img = np.ascontiguousarray(np.roll(base, 7 * i, axis=1))
            out.mux(main.encode(av.VideoFrame.from_ndarray(img, "rgb24")))
        out.mux(still.encode(None))
        out.mux(main.encode(None))
        x = tone(seconds, 48000).astype(np.float32).reshape(1, -1)
        for start in range(0, x.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[:, start:start + 1024]),
                                               format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 48000, start
            out.mux(audio.encode(frame))
        out.mux(audio.encode(None))


def test_meld_av_build_reads_the_default_video_stream(tmp_path):
    write_meld(tmp_path / "raw", clips=True, missing=None, bad_row=False)
    clip = tmp_path / "raw" / MELD_CLIP_DIRS["release"]["test"] / "dia0_utt1.mp4"
    _still_then_default_video(clip)
    b = build("meld", "av", str(tmp_path / "tfds"), str(tmp_path / "raw"))
    src = b.as_data_source("test")
    ex = next(src[i] for i in range(len(src)) if src[i]["id"].decode() == "test_dia0_utt1")
    frames = ex["frames"].astype(np.float32)
    assert frames.std() > 10  # the still stream would store a flat grey (std 0.0)
    assert np.abs(np.diff(frames, axis=0)).mean() > 1  # the default stream moves
    (flag,) = read_report(b)["flags"]["multi_video_stream"]
    assert flag["path"].endswith("dia0_utt1.mp4") and "read stream 1 (default)" in flag["detail"]
