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
