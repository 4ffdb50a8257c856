"""Tiny synthetic media files in the real corpora's formats, for builder tests.

Everything is generated (sine tones, drawn shapes), so tests need no corpus and run in seconds.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def tone(seconds: float, sr: int, freq: float = 220.0, amp: float = 0.3) -> np.ndarray:
    """A float32 sine tone; ``freq`` varies per file so examples differ."""
    t = np.arange(int(round(seconds * sr)), dtype=np.float64) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_wav(path: str | os.PathLike, seconds: float, sr: int, freq: float = 220.0) -> Path:
    """Writes a 16-bit PCM mono WAV at ``sr`` (the corpus's native rate)."""
    import soundfile as sf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone(seconds, sr, freq), sr, subtype="PCM_16")
    return path


def write_zero_length(path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def write_corrupt(path: str | os.PathLike, nbytes: int = 2048, seed: int = 0) -> Path:
    """Random bytes under a media file name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(seed).bytes(nbytes))
    return path


def write_truncated_wav(path: str | os.PathLike, seconds: float, sr: int) -> Path:
    """A valid WAV cut to half its length, as an interrupted copy leaves it."""
    path = write_wav(path, seconds, sr)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def face_image(h: int, w: int) -> np.ndarray:
    """An RGB frame with a drawn face (skin oval, dark eyes and brows, mouth) on a grey wall."""
    import cv2

    img = np.full((h, w, 3), 90, np.uint8)
    cy, cx, fh = h // 2, w // 2, int(h * 0.7)
    fw = int(fh * 0.75)
    cv2.ellipse(img, (cx, cy), (fw // 2, fh // 2), 0, 0, 360, (215, 180, 150), -1)
    ey, ex, er = cy - fh // 8, fw // 5, max(2, fh // 14)
    for sx in (-1, 1):
        cv2.ellipse(img, (cx + sx * ex, ey), (er * 2, er), 0, 0, 360, (40, 30, 30), -1)
        cv2.line(img, (cx + sx * ex - 2 * er, ey - 2 * er), (cx + sx * ex + 2 * er, ey - 2 * er),
                 (60, 40, 30), max(1, er // 2))
    cv2.line(img, (cx, ey + er), (cx, cy + fh // 10), (180, 140, 120), max(1, er // 2))
    cv2.ellipse(img, (cx, cy + fh // 4), (fw // 5, er), 0, 0, 360, (120, 50, 50), -1)
    return img


def write_mp4(path: str | os.PathLike, seconds: float = 1.0, fps: int = 10,
              size: tuple[int, int] = (120, 160), audio_sr: int = 48000, face: bool = True,
              freq: float = 330.0, vcodec: str | None = None) -> Path:
    """Writes an H.264 + AAC clip (the RAVDESS mp4), with or without a drawn face.

    ``vcodec="flv"`` with an ``.flv`` path gives a Sorenson-FLV clip like CREMA-D's VideoFlash.
    """
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = size
    base = face_image(h, w) if face else np.full((h, w, 3), 90, np.uint8)
    with av.open(str(path), "w") as out:
        vcodec = vcodec or ("libx264" if "libx264" in av.codecs_available else "mpeg4")
        vs = out.add_stream(vcodec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        as_ = out.add_stream("aac", rate=audio_sr)
        as_.layout = "stereo"
        for i in range(int(seconds * fps)):
            img = np.roll(base, i % 3, axis=1)  # slight motion so frames differ
            for pkt in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(pkt)
        for pkt in vs.encode():
            out.mux(pkt)
        x = tone(seconds, audio_sr, freq)
        stereo = np.stack([x, x])  # planar float, 2 channels
        step = 1024
        for start in range(0, x.size, step):
            chunk = np.ascontiguousarray(stereo[:, start:start + step])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            frame.sample_rate = audio_sr
            frame.pts = start
            for pkt in as_.encode(frame):
                out.mux(pkt)
        for pkt in as_.encode():
            out.mux(pkt)
    return path


def build_and_read(name: str, config: str, data_dir, manual_dir):
    """Builds ``name/config`` with ``data_prep.build.build`` and reads every split back.

    A per-fold alias (``speech_fold3``, :data:`data_prep.folds.FOLD_ALIASES`) builds its base
    config and reads the examples of the fold view it names, as a run does.

    Returns:
      ``(builder, {split: [example, ...]}, report_dict)``.
    """
    from data_prep import folds
    from data_prep._common.report import read_report
    from data_prep.build import build

    builder = build(name, config, str(data_dir), str(manual_dir))
    sources = builder.as_data_source()
    examples = {s: [src[i] for i in range(len(src))] for s, src in sources.items()}
    alias = folds.resolve_alias(name, config)
    if alias is not None:
        view = folds.fold_view(builder.data_dir, alias[2], alias[1])
        stored = [e for exs in examples.values() for e in exs]
        examples = {s: [e for e in stored if text(e["id"]) in ids]
                    for s, ids in view["ids"].items()}
    return builder, examples, read_report(builder)


def text(x) -> str:
    """TFDS returns Text features as bytes from array_record sources."""
    return x.decode() if isinstance(x, bytes) else str(x)


def speakers_by_split(examples) -> dict[str, set[str]]:
    return {s: {text(e["speaker"]) for e in exs} for s, exs in examples.items()}


def assert_speaker_disjoint(examples) -> None:
    by = speakers_by_split(examples)
    splits = list(by)
    for i, a in enumerate(splits):
        for b in splits[i + 1:]:
            assert not by[a] & by[b], f"speakers {by[a] & by[b]} in both {a} and {b}"
