"""Raw files -> the records the corpus stores (int16 audio, uint8 frames / face crops, text).

A decoded file becomes one record per window in the layout of a stored corpus record
(``audio`` int16 [N], ``frames`` / ``face`` uint8 [T, H, W, 3], ``text`` str, ``label``), so the
rest of the path is the training one: :meth:`mmer_jax.data.corpus.Corpus.example`, the utterance
collate and the on-device feature step.

Decoding uses the builders' own decoders (:mod:`data_prep.decode`): audio mixed to mono and
resampled to the run's ``data.sample_rate``; video frames resized to the corpus' frame size;
face crops by the builders' Haar-cascade path.

Frames: a window keeps every decoded frame in it when there are at most ``data.max_frames``,
else ``max_frames`` uniformly spaced ones.
"""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np

from mmer_jax.errors import UsageError

AUDIO_EXTS = (".wav", ".flac", ".mp3", ".ogg")
VIDEO_EXTS = (".mp4", ".avi", ".webm", ".mkv", ".mov")
TEXT_EXTS = (".txt",)
SUPPORTED_EXTS = AUDIO_EXTS + VIDEO_EXTS + TEXT_EXTS

# Peak below this (int16 units, about -60 dBFS) counts as silence.
SILENCE_PEAK = 32
# At most this many frames are decoded per file (uniformly spaced over the whole file).
MAX_DECODED_FRAMES = 1024
# Faces are detected on frames of this size (H, W) before cropping (as the builders do).
DETECT_SIZE = (240, 320)


class InputError(UsageError):
    """An input cannot be used; ``status`` is the HTTP status the server answers with."""

    status = 400


class UnsupportedMedia(InputError):
    """The file's type is not one the predictor reads (HTTP 415)."""

    status = 415


@dataclasses.dataclass
class Decoded:
    """One input file (plus text), decoded; ``None`` for a modality the file does not give.

    Attributes:
      audio: int16 [N] at the run's sample rate.
      frames: uint8 [T, H, W, 3] whole frames; ``frame_times`` [T] seconds.
      face: uint8 [T, h, w, 3] face crops aligned with ``frame_times``.
      text: the transcript.
      duration_s: the input's length in seconds (audio, else the video).
      missing: ``{modality: reason}`` for modalities the model uses that this input lacks.
    """

    audio: np.ndarray | None = None
    frames: np.ndarray | None = None
    face: np.ndarray | None = None
    frame_times: np.ndarray | None = None
    text: str | None = None
    duration_s: float = 0.0
    missing: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class MediaSettings:
    """How to decode for one run: the model's modalities and the corpus' stored shapes."""

    modalities: tuple
    sample_rate: int
    max_frames: int
    frame_size: tuple | None = None  # (H, W) of "frames", when the model uses them
    face_size: tuple | None = None  # (H, W) of "face", when the model uses it
    max_audio_s: float = 0.0  # > 0: a whole-input record's frames come from the centre window


def kind_of(name: str) -> str:
    """"audio", "video" or "text" from a file name's extension.

    Raises:
      UnsupportedMedia: any other extension (the message lists the supported ones).
    """
    ext = os.path.splitext(name.lower())[1]
    if ext in AUDIO_EXTS:
        return "audio"
    if ext in VIDEO_EXTS:
        return "video"
    if ext in TEXT_EXTS:
        return "text"
    raise UnsupportedMedia(
        f"unsupported file type {ext or '(no extension)'!r}; supported: "
        f"{', '.join(SUPPORTED_EXTS)}"
    )


def _clean(msg: str, path: str, shown: str) -> str:
    return msg.replace(path, shown)


def decode(path: str | None, settings: MediaSettings, text: str | None = None,
           shown_name: str | None = None) -> Decoded:
    """Decodes ``path`` for a model of ``settings.modalities``.

    Args:
      path: the file (its extension says what it is: :func:`kind_of`); None: no file, only
        ``text`` (``mmer predict --text`` for a text model).
      settings: what to decode and at which sizes.
      text: a transcript for models that use text (a ``.txt`` file is read instead).
      shown_name: the name used in messages instead of ``path`` (uploads: never the temp path).

    Raises:
      UnsupportedMedia: an unknown extension.
      InputError: the file cannot be decoded, or nothing the model uses is in it (empty file,
        silent audio, no face, ...); the message says which.
    """
    from data_prep import decode as media

    shown = shown_name or (os.path.basename(path) if path is not None else "--text")
    kind = kind_of(shown_name or path) if path is not None else "transcript"
    mods = set(settings.modalities)
    out = Decoded()
    if kind == "text":
        try:
            text = media.read_text(path).text  # the builders' decoder (encodings, repairs)
        except OSError as exc:
            raise InputError(f"{shown}: cannot read ({exc.strerror})") from exc
        except media.TextDecodeError as exc:
            raise InputError(_clean(str(exc), path, shown)) from exc
    if "text" in mods:
        if text is not None and text.strip():
            out.text = text
        else:
            out.missing["text"] = "no transcript given (--text or a .txt file)"
    if kind in ("audio", "video") and "audio" in mods:
        try:
            pcm, info = media.read_audio(path, settings.sample_rate)
        except media.MediaError as exc:
            if kind == "audio" or "no audio stream" not in str(exc):
                raise InputError(_clean(str(exc), path, shown)) from exc
            out.missing["audio"] = "the video has no audio track"
        else:
            out.duration_s = float(info["duration_s"])
            peak = int(np.abs(pcm.astype(np.int32)).max()) if pcm.size else 0
            if peak < SILENCE_PEAK:
                out.missing["audio"] = (
                    f"the audio is silent (peak {20 * math.log10(max(peak, 1) / 32768):.0f} dBFS)"
                )
            else:
                out.audio = pcm
    elif "audio" in mods:
        out.missing["audio"] = f"no audio in a {'text file' if kind == 'text' else kind}"
    visual = [m for m in ("frames", "face") if m in mods]
    if visual:
        if kind != "video":
            for m in visual:
                out.missing[m] = f"no video in a{'n' if kind == 'audio' else ''} {kind} file"
        else:
            _decode_visual(path, shown, settings, out, media)
    used = [m for m in settings.modalities if m not in out.missing]
    if not used:
        reasons = "; ".join(f"{m}: {r}" for m, r in out.missing.items())
        raise InputError(f"{shown}: nothing this model can use ({reasons})")
    return out


def _decode_visual(path, shown, settings: MediaSettings, out: Decoded, media) -> None:
    mods = settings.modalities
    size = DETECT_SIZE if "face" in mods else settings.frame_size
    try:
        frames, info = media.read_video(path, MAX_DECODED_FRAMES, size=tuple(size))
    except media.MediaError as exc:
        raise InputError(_clean(str(exc), path, shown)) from exc
    # read_video repeats frames of clips shorter than the number asked for: keep each once.
    idx = np.asarray(info["indices"])
    _, first = np.unique(idx, return_index=True)
    frames, idx = frames[first], idx[first]
    fps = info["fps"] or 25.0
    out.frame_times = idx / fps
    if not out.duration_s:
        out.duration_s = float(info["total_frames"]) / fps
    if "face" in mods:
        import cv2

        faces, ratio = media.crop_faces(frames, size=tuple(settings.face_size))
        if ratio == 0.0:
            out.missing["face"] = "no face found in the video"
        else:
            out.face = faces
        if "frames" in mods:
            fh, fw = settings.frame_size
            frames = np.stack(
                [cv2.resize(f, (fw, fh), interpolation=cv2.INTER_AREA) for f in frames]
            ).astype(np.uint8)
    if "frames" in mods:
        out.frames = frames


def _pick(n: int, k: int) -> np.ndarray:
    """Indices of at most ``k`` of ``n`` items: all of them, or ``k`` uniformly spaced."""
    if n <= k:
        return np.arange(n)
    return np.linspace(0, n - 1, k).round().astype(int)


def records(decoded: Decoded, settings: MediaSettings, window_s: float | None = None,
            hop_s: float | None = None) -> list[tuple[float, float, dict]]:
    """``decoded`` as corpus records: one for the whole input, or one per sliding window.

    A modality the model uses but the input lacks is given empty (zero length), the way a padded
    batch row carries it; the model never receives a modality it was not trained with.

    Args:
      decoded: the decoded input.
      settings: the run's media settings.
      window_s, hop_s: window length and hop in seconds; None: one record for the whole input
        (the corpus path then takes the centre ``data.max_audio_s``, as evaluation does).

    Returns:
      ``[(start_s, end_s, record)]``.

    Raises:
      InputError: a window or hop that is not positive.
    """
    sr = settings.sample_rate
    dur = decoded.duration_s
    if window_s is None:
        spans = [(0.0, dur)]
    else:
        hop_s = window_s if hop_s is None else hop_s
        if not (window_s > 0 and hop_s > 0):
            raise InputError(f"--window {window_s} and --hop {hop_s} must be > 0")
        n = max(1, math.ceil(max(dur - window_s, 0.0) / hop_s - 1e-9) + 1)
        spans = [(i * hop_s, min(i * hop_s + window_s, dur)) for i in range(n)]
    out = []
    for start, end in spans:
        rec: dict = {"label": 0}
        mods = settings.modalities
        if "audio" in mods:
            a = decoded.audio
            if a is None:
                rec["audio"] = np.zeros(0, np.int16)
            else:
                rec["audio"] = a if window_s is None else a[int(start * sr) : int(end * sr)]
        for key, size in (("frames", settings.frame_size), ("face", settings.face_size)):
            if key not in mods:
                continue
            arr = getattr(decoded, key)
            if arr is None:
                rec[key] = np.zeros((0, *size, 3), np.uint8)
                continue
            lo, hi = start, end
            if window_s is None and "audio" in mods and 0 < settings.max_audio_s < dur:
                # The corpus path keeps the centre max_audio_s of the audio: the same span.
                lo = (dur - settings.max_audio_s) / 2
                hi = lo + settings.max_audio_s
            if window_s is not None or hi - lo < dur:
                t = decoded.frame_times
                arr = arr[np.nonzero((t >= lo) & (t < hi))[0]]
            rec[key] = arr[_pick(len(arr), settings.max_frames)]
        if "text" in mods:
            rec["text"] = decoded.text or ""
        out.append((float(start), float(end), rec))
    return out
