"""Decoding of audio and video files into the arrays the builders store.

Every failure on a single file raises :class:`MediaError` whose message starts with the path, so a
builder can skip the file and record why (see :mod:`data_prep._common.report`).

Resampling uses ``soxr`` directly (the library librosa itself uses): it avoids librosa's numba
compilation, which costs ~30 s on the first call.
"""

from __future__ import annotations

import functools
import os
import struct
from typing import Any

import numpy as np

SOUNDFILE_EXTS = (".wav", ".flac")
CONTAINER_EXTS = (".mp4", ".avi", ".flv", ".mkv", ".mov", ".webm")


class MediaError(ValueError):
    """A media file cannot be used; the message starts with the file's path."""


def _wav_truncation(path: str) -> str | None:
    """Returns a reason if a RIFF/WAVE file's data chunk is shorter than its header says.

    libsndfile silently reads what is there when a WAV is cut short, so a truncated download would
    otherwise pass as a shorter clip.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None  # Not plain RIFF (e.g. RF64/W64): let soundfile judge it.
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return "no data chunk (file truncated?)"
            cid, clen = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"data":
                # 0xFFFFFFFF / 0 are used by streaming writers for "unknown length".
                if clen in (0xFFFFFFFF,):
                    return None
                available = size - f.tell()
                if available < clen:
                    return f"truncated: data chunk declares {clen} bytes, {available} present"
                return None
            f.seek(clen + (clen & 1), os.SEEK_CUR)


def _to_int16(path: str, x: np.ndarray) -> np.ndarray:
    """Float waveform in [-1, 1] -> int16, rejecting non-finite samples."""
    if not np.all(np.isfinite(x)):
        raise MediaError(f"{path}: non-finite (NaN/inf) samples")
    return np.round(np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int16)


def _read_soundfile(path: str) -> tuple[np.ndarray, int]:
    import soundfile as sf

    reason = _wav_truncation(path) if path.lower().endswith(".wav") else None
    if reason:
        raise MediaError(f"{path}: {reason}")
    try:
        data, sr = sf.read(path, dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile raises LibsndfileError / RuntimeError variants.
        raise MediaError(f"{path}: unreadable audio ({exc})") from exc
    return data.mean(axis=1), int(sr)


def _read_container_audio(path: str) -> tuple[np.ndarray, int]:
    import av

    try:
        with av.open(path) as container:
            if not container.streams.audio:
                raise MediaError(f"{path}: no audio stream")
            stream = container.streams.audio[0]
            sr = int(stream.rate or stream.codec_context.sample_rate or 0)
            if sr <= 0:
                raise MediaError(f"{path}: audio stream has no sample rate")
            # Mixdown to mono float at the native rate; resampling happens once, below, with soxr.
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sr)
            chunks = []
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except MediaError:
        raise
    except Exception as exc:  # av.error.* (InvalidDataError, EOFError, ...)
        raise MediaError(f"{path}: cannot decode audio ({exc})") from exc
    x = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    return x, sr


def read_audio(path: str | os.PathLike,
               target_sr: int = 16000) -> tuple[np.ndarray, dict[str, Any]]:
    """Reads a file's audio as mono int16 at ``target_sr``.

    Args:
      path: a .wav/.flac file (soundfile) or a video container (.mp4/.avi/.flv, PyAV).
      target_sr: output sample rate in Hz.

    Returns:
      ``(audio, info)``: ``audio`` int16 [N]; ``info`` has ``sr`` (= target_sr), ``orig_sr``,
      ``resampled`` (bool), ``num_samples`` and ``duration_s``.

    Raises:
      MediaError: missing, empty, unreadable, corrupt or truncated file; no audio; NaN/inf samples.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MediaError(f"{path}: no such file")
    if os.path.getsize(path) == 0:
        raise MediaError(f"{path}: zero-length file")
    if path.lower().endswith(SOUNDFILE_EXTS):
        x, sr = _read_soundfile(path)
    else:
        x, sr = _read_container_audio(path)
    if x.size == 0:
        raise MediaError(f"{path}: no audio samples")
    if not np.all(np.isfinite(x)):
        raise MediaError(f"{path}: non-finite (NaN/inf) samples")
    resampled = sr != target_sr
    if resampled:
        import soxr

        x = soxr.resample(x.astype(np.float32), sr, target_sr, quality="HQ")
    audio = _to_int16(path, x)
    info = {"sr": target_sr, "orig_sr": sr, "resampled": resampled, "num_samples": int(audio.size),
            "duration_s": audio.size / float(target_sr)}
    return audio, info


def read_video(path: str | os.PathLike, num_frames: int,
               size: tuple[int, int] = (64, 64)) -> tuple[np.ndarray, dict[str, Any]]:
    """Decodes ``num_frames`` uniformly spaced RGB frames, resized to ``size``.

    Args:
      path: a video container readable by PyAV.
      num_frames: how many frames to return; clips shorter than that repeat frames.
      size: output ``(H, W)``.

    Returns:
      ``(frames, info)``: frames uint8 [num_frames, H, W, 3]; info has ``fps``, ``total_frames``,
      ``orig_size`` ``(H, W)`` and ``indices`` (decoded-frame indices used).

    Raises:
      MediaError: missing/unreadable file, no video stream, or no decodable frame.
    """
    import av

    path = os.fspath(path)
    if num_frames < 1:
        raise ValueError(f"{num_frames=} must be >= 1")
    if not os.path.isfile(path):
        raise MediaError(f"{path}: no such file")
    if os.path.getsize(path) == 0:
        raise MediaError(f"{path}: zero-length file")
    h, w = size
    decoded = []
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise MediaError(f"{path}: no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate) if stream.average_rate else 0.0
            orig = (stream.codec_context.height, stream.codec_context.width)
            # Frame counts in headers are unreliable (0 for FLV), so decode once and keep small
            # resized copies; a clip is seconds long, so this stays a few tens of MB.
            for frame in container.decode(stream):
                decoded.append(frame.to_ndarray(width=w, height=h, format="rgb24"))
    except MediaError:
        raise
    except Exception as exc:
        if not decoded:
            raise MediaError(f"{path}: cannot decode video ({exc})") from exc
        # A damaged tail still leaves usable frames; keep them rather than drop the clip.
    if not decoded:
        raise MediaError(f"{path}: no decodable video frames")
    idx = np.linspace(0, len(decoded) - 1, num_frames).round().astype(int)
    frames = np.stack([decoded[i] for i in idx]).astype(np.uint8)
    info = {"fps": fps, "total_frames": len(decoded), "orig_size": orig, "indices": idx.tolist()}
    return frames, info


@functools.lru_cache(maxsize=1)
def _face_cascade():
    import cv2

    path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(f"cannot load OpenCV face cascade {path}")
    return cascade


def crop_faces(frames: np.ndarray, size: tuple[int, int] = (64, 64)) -> tuple[np.ndarray, float]:
    """Crops the largest frontal face of each frame (OpenCV Haar cascade).

    Frames without a detected face fall back to the whole frame resized, so every frame yields one
    crop and the face sequence stays aligned with ``frames``.

    Args:
      frames: uint8 [T, H, W, 3] RGB.
      size: output ``(h, w)`` of each crop.

    Returns:
      ``(faces, found_ratio)``: faces uint8 [T, h, w, 3]; the fraction of frames with a face.
    """
    import cv2

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be [T, H, W, 3], got {frames.shape}")
    h, w = size
    cascade = _face_cascade()
    out = np.empty((frames.shape[0], h, w, 3), np.uint8)
    found = 0
    for t, frame in enumerate(frames):
        gray = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
        min_side = max(20, min(gray.shape) // 10)
        boxes = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5,
                                         minSize=(min_side, min_side))
        if len(boxes):
            x, y, bw, bh = max(boxes, key=lambda b: int(b[2]) * int(b[3]))
            crop = frame[y:y + bh, x:x + bw]
            found += 1
        else:
            crop = frame
        out[t] = cv2.resize(np.ascontiguousarray(crop), (w, h), interpolation=cv2.INTER_AREA)
    ratio = found / frames.shape[0] if frames.shape[0] else 0.0
    return out, float(ratio)


def read_visual(path: str | os.PathLike, num_frames: int, frame_size: tuple[int, int],
                face_size: tuple[int, int],
                detect_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, float, dict]:
    """Sampled whole frames plus face crops of one clip.

    Faces are detected at ``detect_size`` (large enough for the Haar cascade, which misses faces
    under ~30 px) before the whole frames are shrunk to ``frame_size`` for storage.

    Returns:
      ``(frames [T, *frame_size, 3], faces [T, *face_size, 3], found_ratio, info)``, uint8 arrays.
    """
    import cv2

    big, info = read_video(path, num_frames, size=detect_size)
    faces, ratio = crop_faces(big, size=face_size)
    fh, fw = frame_size
    frames = np.stack([cv2.resize(f, (fw, fh), interpolation=cv2.INTER_AREA) for f in big])
    return frames.astype(np.uint8), faces, ratio, info
