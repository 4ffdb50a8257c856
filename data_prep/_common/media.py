"""Decoding of audio and video files into the arrays the builders store.

Every failure on a single file raises :class:`MediaError` whose message starts with the path, so a
builder can skip the file and record why (see :mod:`data_prep._common.report`).

Rules every builder gets from here (the build report lists what they did, see
:meth:`data_prep._common.report.BuildReport.add`):

* **Which audio stream**: the one ffmpeg picks by default: a stream marked ``default`` wins, then
  the most channels, then the lowest index. The choice is in ``info["audio_stream"]``; a file with
  several audio streams is flagged ``multi_stream``.
* **Out-of-range float audio** (a float file whose peak exceeds 1.0): the whole clip is scaled by
  ``1 / peak`` (its shape is kept; hard clipping would flatten the loud parts), counted as the
  repair ``rescaled_out_of_range`` and flagged ``out_of_range`` with the peak. Integer PCM cannot
  exceed full scale.
* **Silent audio** (every stored sample 0): kept, flagged ``silent``.
* **Too short**: a clip with fewer than ``min_samples`` samples *after* resampling (default one
  25 ms analysis window at 16 kHz) is a :class:`MediaError` (a skip with the reason).
* **Video**: frames are decoded one at a time and only the sampled ones are converted and kept,
  so memory does not grow with the clip's length.

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
# One 25 ms analysis window at 16 kHz (the feature front end's n_fft): shorter clips carry no frame.
MIN_SAMPLES = 400
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


def _read_soundfile(path: str) -> tuple[np.ndarray, int, dict[str, Any]]:
    import soundfile as sf

    reason = _wav_truncation(path) if path.lower().endswith(".wav") else None
    if reason:
        raise MediaError(f"{path}: {reason}")
    try:
        subtype = sf.info(path).subtype
        data, sr = sf.read(path, dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile raises LibsndfileError / RuntimeError variants.
        raise MediaError(f"{path}: unreadable audio ({exc})") from exc
    return data.mean(axis=1), int(sr), {"subtype": subtype}


def _default_audio_stream(streams) -> Any:
    """The audio stream ffmpeg picks by default: ``default`` disposition, then most channels,
    then the lowest index."""
    def score(st):
        disp = int(getattr(st, "disposition", 0) or 0)
        channels = int(getattr(st.codec_context, "channels", 0) or 0)
        return (-(disp & 1), -channels, st.index)  # 1 = AV_DISPOSITION_DEFAULT

    return min(streams, key=score)


def _read_container_audio(path: str) -> tuple[np.ndarray, int, dict[str, Any]]:
    import av

    try:
        with av.open(path) as container:
            if not container.streams.audio:
                raise MediaError(f"{path}: no audio stream")
            stream = _default_audio_stream(container.streams.audio)
            meta = {"audio_stream": int(stream.index),
                    "audio_streams": len(container.streams.audio)}
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
    meta["subtype"] = "container"
    return x, sr, meta


def read_audio(path: str | os.PathLike, target_sr: int = 16000,
               min_samples: int = MIN_SAMPLES) -> tuple[np.ndarray, dict[str, Any]]:
    """Reads a file's audio as mono int16 at ``target_sr`` (rules in the module docstring).

    Args:
      path: a .wav/.flac file (soundfile) or a video container (.mp4/.avi/.flv, PyAV).
      target_sr: output sample rate in Hz.
      min_samples: fewest samples at ``target_sr`` a usable clip has.

    Returns:
      ``(audio, info)``: ``audio`` int16 [N]; ``info`` has ``sr`` (= target_sr), ``orig_sr``,
      ``resampled`` (bool), ``num_samples``, ``duration_s``, ``flags`` (kind -> detail, e.g.
      ``silent``, ``out_of_range``, ``multi_stream``), ``repairs`` (kind -> count) and, for
      containers, ``audio_stream`` (the index read) and ``audio_streams``.

    Raises:
      MediaError: missing, empty, unreadable, corrupt or truncated file; no audio; NaN/inf samples;
        fewer than ``min_samples`` samples after resampling.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MediaError(f"{path}: no such file")
    if os.path.getsize(path) == 0:
        raise MediaError(f"{path}: zero-length file")
    if path.lower().endswith(SOUNDFILE_EXTS):
        x, sr, meta = _read_soundfile(path)
    else:
        x, sr, meta = _read_container_audio(path)
    if x.size == 0:
        raise MediaError(f"{path}: no audio samples")
    if not np.all(np.isfinite(x)):
        raise MediaError(f"{path}: non-finite (NaN/inf) samples")
    flags: dict[str, str] = {}
    repairs: dict[str, int] = {}
    if meta.get("audio_streams", 1) > 1:
        flags["multi_stream"] = (f"{meta['audio_streams']} audio streams; read stream "
                                 f"{meta['audio_stream']} (ffmpeg's default)")
    peak = float(np.max(np.abs(x)))
    if peak > 1.0:  # only float files can get here: integer PCM decodes into [-1, 1)
        x = x / np.float32(peak)
        flags["out_of_range"] = f"peak {peak:.4g} ({meta.get('subtype')}); scaled by 1/peak"
        repairs["rescaled_out_of_range"] = 1
    resampled = sr != target_sr
    if resampled:
        import soxr

        x = soxr.resample(x.astype(np.float32), sr, target_sr, quality="HQ")
    if x.size < min_samples:
        raise MediaError(
            f"{path}: too short: {x.size} samples at {target_sr} Hz after resampling "
            f"(from {sr} Hz), fewer than one analysis window ({min_samples})")
    audio = _to_int16(path, x)
    if not np.any(audio):
        flags["silent"] = "every sample is 0"
    info = {"sr": target_sr, "orig_sr": sr, "resampled": resampled, "num_samples": int(audio.size),
            "duration_s": audio.size / float(target_sr), "flags": flags, "repairs": repairs,
            **{k: v for k, v in meta.items() if k.startswith("audio_stream")}}
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
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise MediaError(f"{path}: no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate) if stream.average_rate else 0.0
            orig = (stream.codec_context.height, stream.codec_context.width)
            # Header frame counts are unreliable (0 for FLV): count the packets (no decoding).
            counted = 0
            try:
                for pkt in container.demux(stream):
                    counted += bool(pkt.size)
            except Exception:  # a damaged tail: decoding below finds how many frames are usable
                pass
    except MediaError:
        raise
    except Exception as exc:
        raise MediaError(f"{path}: cannot decode video ({exc})") from exc
    frames, total = _decode_sampled(path, av, counted, num_frames, w, h)
    if total and total != counted:  # packets != frames (damaged tail, odd muxing): sample again
        frames, total = _decode_sampled(path, av, total, num_frames, w, h)
    if not total:
        raise MediaError(f"{path}: no decodable video frames")
    idx = _sample_indices(total, num_frames)
    info = {"fps": fps, "total_frames": total, "orig_size": orig, "indices": idx.tolist()}
    return np.stack([frames[i] for i in idx]).astype(np.uint8), info


def _sample_indices(total: int, num_frames: int) -> np.ndarray:
    return np.linspace(0, max(total, 1) - 1, num_frames).round().astype(int)


def _decode_sampled(path: str, av, expected: int, num_frames: int, w: int,
                    h: int) -> tuple[dict[int, np.ndarray], int]:
    """Decodes every frame but converts and keeps only those :func:`_sample_indices` picks for
    ``expected`` frames; returns ``({index: frame}, frames decoded)``."""
    wanted = set(_sample_indices(expected, num_frames).tolist()) if expected else set()
    kept: dict[int, np.ndarray] = {}
    n = 0
    try:
        with av.open(path) as container:
            for frame in container.decode(container.streams.video[0]):
                if n in wanted:
                    kept[n] = frame.to_ndarray(width=w, height=h, format="rgb24")
                n += 1
    except Exception as exc:
        if not n:
            raise MediaError(f"{path}: cannot decode video ({exc})") from exc
        # A damaged tail still leaves usable frames; keep them rather than drop the clip.
    return kept, n


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
