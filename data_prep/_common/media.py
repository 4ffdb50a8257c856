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
* **Which video stream**: attached pictures (cover art, ``attached_pic``) are never read as
  video; of the others a stream marked ``default`` wins, then one not marked ``still_image``, then
  the largest picture, then the lowest index (ffmpeg's choice). The choice is in
  ``info["video_stream"]``; a file with several candidates is flagged ``multi_video_stream``.
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


class TooLong(MediaError):
    """A file is longer than the caller's duration limit (found before or while decoding)."""


def probe_duration(path: str | os.PathLike) -> float | None:
    """A file's duration in seconds from its header or container, without decoding; None when
    the file does not say (e.g. a streamed WebM or a WAV with an "unknown length" header).

    Raises:
      MediaError: the file cannot be opened as audio or video.
    """
    path = os.fspath(path)
    if path.lower().endswith(SOUNDFILE_EXTS):
        import soundfile as sf

        try:
            info = sf.info(path)
        except Exception as exc:  # noqa: BLE001 - libsndfile's error kinds vary
            raise MediaError(f"{path}: unreadable audio ({exc})") from exc
        # Streaming writers leave the length unknown: libsndfile then reports a huge count.
        if info.samplerate > 0 and 0 < info.frames < (1 << 62):
            return info.frames / float(info.samplerate)
        return None
    import av

    try:
        with av.open(path) as container:
            durations = [float(st.duration * st.time_base) for st in container.streams
                         if st.type in ("audio", "video") and st.duration and st.time_base]
            if container.duration:
                durations.append(container.duration / 1e6)  # AV_TIME_BASE: microseconds
    except Exception as exc:  # noqa: BLE001 - av.error.*
        raise MediaError(f"{path}: cannot open ({exc})") from exc
    return max(durations) if durations else None


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


def check_duration(path: str, max_s: float) -> float | None:
    """:func:`probe_duration`, refused past ``max_s`` seconds; the duration or None (unknown).

    Raises:
      TooLong: the header says the file is longer than ``max_s``.
    """
    duration = probe_duration(path)
    if duration is not None and duration > max_s:
        raise TooLong(f"{path}: {duration:.1f} s long, over the limit of {max_s:g} s "
                      "(from the file's header, before decoding)")
    return duration


def _to_int16(path: str, x: np.ndarray) -> np.ndarray:
    """Float waveform in [-1, 1] -> int16, rejecting non-finite samples."""
    if not np.all(np.isfinite(x)):
        raise MediaError(f"{path}: non-finite (NaN/inf) samples")
    return np.round(np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int16)


def _read_soundfile(path: str, sink=None) -> tuple[np.ndarray, int, dict[str, Any]]:
    """``(mono float32 [N], native rate, meta)``; with a ``sink`` (:class:`_Bounded`) the
    blocks go to it instead and ``[N]`` is empty."""
    import soundfile as sf

    reason = _wav_truncation(path) if path.lower().endswith(".wav") else None
    if reason:
        raise MediaError(f"{path}: {reason}")
    try:
        subtype = sf.info(path).subtype
        if sink is None:
            data, sr = sf.read(path, dtype="float32", always_2d=True)
            return data.mean(axis=1), int(sr), {"subtype": subtype}
        with sf.SoundFile(path) as f:
            sink.start(f.samplerate)
            for block in f.blocks(blocksize=1 << 16, dtype="float32", always_2d=True):
                sink.add(block.mean(axis=1))
            sr = f.samplerate
    except MediaError:
        raise
    except Exception as exc:  # libsndfile raises LibsndfileError / RuntimeError variants.
        raise MediaError(f"{path}: unreadable audio ({exc})") from exc
    return np.zeros(0, np.float32), int(sr), {"subtype": subtype}


class _Bounded:
    """Native-rate mono blocks in, ``target_sr`` float32 kept, block by block, under a duration
    limit: a long file never exists at its native rate in memory. soxr's stream gives the same
    samples as its one-shot ``resample`` (checked by the tests)."""

    def __init__(self, path: str, target_sr: int, max_s: float):
        self.path, self.target_sr, self.max_s = path, target_sr, max_s
        self.parts: list[np.ndarray] = []
        self.n, self.peak, self.sr, self.stream = 0, 0.0, 0, None

    def start(self, sr: int) -> None:
        self.sr = int(sr)
        if self.sr != self.target_sr:
            import soxr

            self.stream = soxr.ResampleStream(self.sr, self.target_sr, 1, dtype="float32",
                                              quality="HQ")

    def add(self, x: np.ndarray) -> None:
        x = np.ascontiguousarray(x, np.float32).reshape(-1)
        self.n += x.size
        if self.n > self.max_s * self.sr:  # the header said less, or nothing
            raise TooLong(f"{self.path}: longer than the limit of {self.max_s:g} s "
                          "(found while decoding)")
        if not x.size:
            return
        if not np.all(np.isfinite(x)):
            raise MediaError(f"{self.path}: non-finite (NaN/inf) samples")
        self.peak = max(self.peak, float(np.max(np.abs(x))))
        self.parts.append(self.stream.resample_chunk(x) if self.stream else x)

    def to_int16(self, peak: float | None) -> np.ndarray:
        """The int16 output (divided by ``peak`` first when given), converted part by part and
        each part freed as it goes: the float output is never copied whole."""
        if self.stream is not None:
            self.parts.append(self.stream.resample_chunk(np.zeros(0, np.float32), last=True))
        out = np.empty(sum(p.size for p in self.parts), np.int16)
        self.parts.reverse()
        i = 0
        while self.parts:
            part = self.parts.pop()
            if peak is not None:
                part = part / np.float32(peak)
            out[i : i + part.size] = _to_int16(self.path, part)
            i += part.size
        return out


def _default_audio_stream(streams) -> Any:
    """The audio stream ffmpeg picks by default: ``default`` disposition, then most channels,
    then the lowest index."""
    def score(st):
        disp = int(getattr(st, "disposition", 0) or 0)
        channels = int(getattr(st.codec_context, "channels", 0) or 0)
        return (-(disp & 1), -channels, st.index)  # 1 = AV_DISPOSITION_DEFAULT

    return min(streams, key=score)


def _read_container_audio(path: str, sink=None) -> tuple[np.ndarray, int, dict[str, Any]]:
    """As :func:`_read_soundfile`, through PyAV (the default audio stream)."""
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
            add = chunks.append if sink is None else sink.add
            if sink is not None:
                sink.start(sr)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    add(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                add(out.to_ndarray().reshape(-1))
    except MediaError:
        raise
    except Exception as exc:  # av.error.* (InvalidDataError, EOFError, ...)
        raise MediaError(f"{path}: cannot decode audio ({exc})") from exc
    x = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    meta["subtype"] = "container"
    return x, sr, meta


def read_audio(path: str | os.PathLike, target_sr: int = 16000,
               min_samples: int = MIN_SAMPLES,
               max_duration_s: float | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Reads a file's audio as mono int16 at ``target_sr`` (rules in the module docstring).

    Args:
      path: a .wav/.flac file (soundfile) or a video container (.mp4/.avi/.flv, PyAV).
      target_sr: output sample rate in Hz.
      min_samples: fewest samples at ``target_sr`` a usable clip has.
      max_duration_s: refuse a longer file (None: no limit): from its header before decoding
        (:func:`probe_duration`), else while decoding. With a limit the file is read and
        resampled block by block (peak memory: the output at ``target_sr``, not the file at its
        native rate); the samples are the same.

    Returns:
      ``(audio, info)``: ``audio`` int16 [N]; ``info`` has ``sr`` (= target_sr), ``orig_sr``,
      ``resampled`` (bool), ``num_samples``, ``duration_s``, ``flags`` (kind -> detail, e.g.
      ``silent``, ``out_of_range``, ``multi_stream``), ``repairs`` (kind -> count) and, for
      containers, ``audio_stream`` (the index read) and ``audio_streams``.

    Raises:
      MediaError: missing, empty, unreadable, corrupt or truncated file; no audio; NaN/inf samples;
        fewer than ``min_samples`` samples after resampling.
      TooLong: longer than ``max_duration_s``.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MediaError(f"{path}: no such file")
    if os.path.getsize(path) == 0:
        raise MediaError(f"{path}: zero-length file")
    sink = None
    if max_duration_s is not None:
        check_duration(path, max_duration_s)
        sink = _Bounded(path, target_sr, max_duration_s)
    read = _read_soundfile if path.lower().endswith(SOUNDFILE_EXTS) else _read_container_audio
    x, sr, meta = read(path, sink)
    if sink is not None:  # resampled block by block already
        peak = sink.peak
        if not sink.n:
            raise MediaError(f"{path}: no audio samples")
    else:
        if x.size == 0:
            raise MediaError(f"{path}: no audio samples")
        if not np.all(np.isfinite(x)):
            raise MediaError(f"{path}: non-finite (NaN/inf) samples")
        peak = float(np.max(np.abs(x)))
    flags: dict[str, str] = {}
    repairs: dict[str, int] = {}
    if meta.get("audio_streams", 1) > 1:
        flags["multi_stream"] = (f"{meta['audio_streams']} audio streams; read stream "
                                 f"{meta['audio_stream']} (ffmpeg's default)")
    if peak > 1.0:  # only float files can get here: integer PCM decodes into [-1, 1)
        if sink is None:
            x = x / np.float32(peak)
        # (The bounded path scales after resampling: resampling is linear, so the two agree up
        # to float rounding.)
        flags["out_of_range"] = f"peak {peak:.4g} ({meta.get('subtype')}); scaled by 1/peak"
        repairs["rescaled_out_of_range"] = 1
    resampled = sr != target_sr
    if sink is not None:
        audio = sink.to_int16(peak if peak > 1.0 else None)
    elif resampled:
        import soxr

        x = soxr.resample(x.astype(np.float32), sr, target_sr, quality="HQ")
    size = audio.size if sink is not None else x.size
    if size < min_samples:
        raise MediaError(
            f"{path}: too short: {size} samples at {target_sr} Hz after resampling "
            f"(from {sr} Hz), fewer than one analysis window ({min_samples})")
    if sink is None:
        audio = _to_int16(path, x)
    if not np.any(audio):
        flags["silent"] = "every sample is 0"
    info = {"sr": target_sr, "orig_sr": sr, "resampled": resampled, "num_samples": int(audio.size),
            "duration_s": audio.size / float(target_sr), "flags": flags, "repairs": repairs,
            **{k: v for k, v in meta.items() if k.startswith("audio_stream")}}
    return audio, info


_ATTACHED_PIC = 1024  # AV_DISPOSITION_ATTACHED_PIC: cover art, one picture, not a video
_STILL_IMAGE = 1 << 20  # AV_DISPOSITION_STILL_IMAGE


def default_video_stream(path: str, streams) -> tuple[Any, dict[str, str]]:
    """The video stream to read (rules in the module docstring) and the flags the choice raises.

    Raises:
      MediaError: no video stream, or only attached pictures (cover art).
    """
    def disp(st) -> int:
        return int(getattr(st, "disposition", 0) or 0)

    video = [st for st in streams if not disp(st) & _ATTACHED_PIC]
    if not video:
        pics = len(streams)
        raise MediaError(f"{path}: no video stream" + (
            f" ({pics} attached picture{'s' * (pics > 1)} such as cover art, never read as video)"
            if pics else ""))

    def score(st):
        cc = st.codec_context
        area = int(getattr(cc, "width", 0) or 0) * int(getattr(cc, "height", 0) or 0)
        return (-(disp(st) & 1), bool(disp(st) & _STILL_IMAGE), -area, st.index)

    chosen = min(video, key=score)
    flags = {}
    if len(streams) > 1:
        flags["multi_video_stream"] = (
            f"{len(video)} video stream(s) and {len(streams) - len(video)} attached picture(s); "
            f"read stream {chosen.index} ({'default' if disp(chosen) & 1 else 'ffmpeg order'})")
    return chosen, flags


def read_video(path: str | os.PathLike, num_frames: int,
               size: tuple[int, int] = (64, 64)) -> tuple[np.ndarray, dict[str, Any]]:
    """Decodes ``num_frames`` uniformly spaced RGB frames, resized to ``size``.

    Args:
      path: a video container readable by PyAV.
      num_frames: how many frames to return; clips shorter than that repeat frames.
      size: output ``(H, W)``.

    Returns:
      ``(frames, info)``: frames uint8 [num_frames, H, W, 3]; info has ``fps``, ``total_frames``,
      ``orig_size`` ``(H, W)``, ``indices`` (decoded-frame indices used), ``video_stream`` (the
      stream read: :func:`default_video_stream`) and ``flags``.

    Raises:
      MediaError: missing/unreadable file, no video stream (attached pictures do not count), or
        no decodable frame.
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
            stream, flags = default_video_stream(path, list(container.streams.video))
            index = int(stream.index)  # read inside: a closed container's streams are freed
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
    frames, total = _decode_sampled(path, av, index, counted, num_frames, w, h)
    if total and total != counted:  # packets != frames (damaged tail, odd muxing): sample again
        frames, total = _decode_sampled(path, av, index, total, num_frames, w, h)
    if not total:
        raise MediaError(f"{path}: no decodable video frames")
    idx = _sample_indices(total, num_frames)
    info = {"fps": fps, "total_frames": total, "orig_size": orig, "indices": idx.tolist(),
            "video_stream": index, "flags": flags}
    return np.stack([frames[i] for i in idx]).astype(np.uint8), info


def scan_video(path: str | os.PathLike) -> dict[str, Any]:
    """The video stream :func:`read_video` reads, counted without decoding a frame.

    Returns:
      ``{"video_stream", "fps", "total_frames" (packets), "orig_size" (H, W), "flags"}``.

    Raises:
      MediaError: missing/unreadable file or no video stream (attached pictures do not count).
    """
    import av

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MediaError(f"{path}: no such file")
    try:
        with av.open(path) as container:
            stream, flags = default_video_stream(path, list(container.streams.video))
            info = {"video_stream": int(stream.index),
                    "fps": float(stream.average_rate) if stream.average_rate else 0.0,
                    "orig_size": (stream.codec_context.height, stream.codec_context.width),
                    "flags": flags}
            counted = 0
            try:
                for pkt in container.demux(stream):
                    counted += bool(pkt.size)
            except Exception:  # noqa: BLE001 - a damaged tail: the frames before it count
                pass
    except MediaError:
        raise
    except Exception as exc:  # noqa: BLE001 - av.error.*
        raise MediaError(f"{path}: cannot decode video ({exc})") from exc
    return {**info, "total_frames": counted}


def iter_video_frames(path: str | os.PathLike, stream_index: int, wanted: set[int],
                      size: tuple[int, int]):
    """Yields ``(index, uint8 [H, W, 3] RGB frame at size (H, W))`` for the decoded frames whose
    index (in decoding order) is in ``wanted``; every frame is decoded, only those are converted,
    so memory is what the caller keeps. A damaged tail ends the frames early (a frame past it is
    never yielded).

    Raises:
      MediaError: not one frame decodes.
    """
    import av

    h, w = size
    n, last = 0, max(wanted, default=-1)
    try:
        with av.open(os.fspath(path)) as container:
            for frame in container.decode(container.streams[stream_index]):
                if n > last:
                    break
                if n in wanted:
                    yield n, frame.to_ndarray(width=w, height=h, format="rgb24")
                n += 1
    except Exception as exc:  # noqa: BLE001 - av.error.*
        if not n:
            raise MediaError(f"{path}: cannot decode video ({exc})") from exc


def _sample_indices(total: int, num_frames: int) -> np.ndarray:
    return np.linspace(0, max(total, 1) - 1, num_frames).round().astype(int)


def _decode_sampled(path: str, av, stream_index: int, expected: int, num_frames: int, w: int,
                    h: int) -> tuple[dict[int, np.ndarray], int]:
    """Decodes every frame of stream ``stream_index`` but converts and keeps only those
    :func:`_sample_indices` picks for ``expected`` frames; returns ``({index: frame}, frames
    decoded)``."""
    wanted = set(_sample_indices(expected, num_frames).tolist()) if expected else set()
    kept: dict[int, np.ndarray] = {}
    n = 0
    try:
        with av.open(path) as container:
            for frame in container.decode(container.streams[stream_index]):
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
