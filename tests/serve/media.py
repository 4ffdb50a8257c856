"""Writing test clips: a corpus record as a WAV file or as a lossless AVI (PNG frames + PCM)."""

from __future__ import annotations

import numpy as np


def write_wav(path: str, pcm: np.ndarray, sr: int = 16000) -> str:
    import soundfile as sf

    sf.write(path, np.asarray(pcm, np.int16), sr, subtype="PCM_16")
    return str(path)


def write_avi(path: str, frames: np.ndarray | None, pcm: np.ndarray | None, sr: int = 16000,
              fps: int = 8) -> str:
    """Lossless (PNG-coded) RGB frames and 16-bit PCM in an AVI container (either may be None)."""
    import av

    with av.open(str(path), "w", format="avi") as out:
        if frames is not None:
            vs = out.add_stream("png", rate=fps)
            vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], "rgb24"
        if pcm is not None:
            as_ = out.add_stream("pcm_s16le", rate=sr, layout="mono")
        if frames is not None:
            for f in frames:
                out.mux(vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), "rgb24")))
            out.mux(vs.encode(None))
        if pcm is not None:
            step = 1024
            for i in range(0, len(pcm), step):
                chunk = np.asarray(pcm[i : i + step], np.int16).reshape(1, -1)
                af = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
                af.sample_rate = sr
                out.mux(as_.encode(af))
            out.mux(as_.encode(None))
    return str(path)


def write_two_video_streams(path: str, frames: np.ndarray, fps: int = 10) -> str:
    """An MP4 with two video streams: stream 0 a still grey picture (not marked default),
    stream 1 ``frames`` (marked default), as some cameras and editors write them."""
    import av
    from av.stream import Disposition

    _, h, w, _ = frames.shape
    with av.open(str(path), "w", format="mp4") as out:
        still = out.add_stream("mpeg4", rate=fps)
        main = out.add_stream("mpeg4", rate=fps)
        for st, disp in ((still, Disposition(0)), (main, Disposition.default)):
            st.width, st.height, st.pix_fmt, st.disposition = w, h, "yuv420p", disp
        grey = np.full((h, w, 3), 128, np.uint8)
        for f in frames:
            out.mux(still.encode(av.VideoFrame.from_ndarray(grey, "rgb24")))
            out.mux(main.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), "rgb24")))
        out.mux(still.encode(None))
        out.mux(main.encode(None))
    return str(path)


def write_audio_with_cover_art(path: str, pcm: np.ndarray, sr: int = 16000) -> str:
    """An MP4 holding AAC audio and a cover picture (an ``attached_pic`` video stream)."""
    import av
    from av.stream import Disposition

    with av.open(str(path), "w", format="mp4") as out:
        audio = out.add_stream("aac", rate=sr, layout="mono")
        cover = out.add_stream("png", rate=1)
        cover.width = cover.height = 32
        cover.pix_fmt, cover.disposition = "rgb24", Disposition.attached_pic
        out.mux(cover.encode(av.VideoFrame.from_ndarray(np.full((32, 32, 3), 200, np.uint8),
                                                        "rgb24")))
        out.mux(cover.encode(None))
        for i in range(0, len(pcm), 1024):
            af = av.AudioFrame.from_ndarray(np.asarray(pcm[i : i + 1024], np.int16).reshape(1, -1),
                                            format="s16", layout="mono")
            af.sample_rate = sr
            out.mux(audio.encode(af))
        out.mux(audio.encode(None))
    return str(path)


def index_frames(n: int, size: int = 8) -> np.ndarray:
    """``n`` RGB frames whose pixels encode their index (R = index % 256, G = index // 256), for
    lossless containers (:func:`write_avi`)."""
    idx = np.arange(n)
    frames = np.zeros((n, size, size, 3), np.uint8)
    frames[..., 0] = (idx % 256)[:, None, None]
    frames[..., 1] = (idx // 256)[:, None, None]
    return frames


def frame_ids(frames: np.ndarray) -> list[int]:
    """The indices :func:`index_frames` wrote into ``frames``."""
    return [int(f[0, 0, 0]) + 256 * int(f[0, 0, 1]) for f in frames]
