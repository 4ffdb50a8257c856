"""Raw files -> the records the corpus stores (int16 audio, uint8 frames / face crops, text).

A decoded file becomes one record per window in the layout of a stored corpus record
(``audio`` int16 [N], ``frames`` / ``face`` uint8 [T, H, W, 3], ``text`` str, ``label``), so the
rest of the path is the training one: :meth:`mmer_jax.data.corpus.Corpus.example`, the utterance
collate and the on-device feature step.

Decoding uses the builders' own decoders (:mod:`data_prep.decode`): audio mixed to mono and
resampled to the run's ``data.sample_rate``; the default video stream (never cover art), frames
resized to the corpus' frame size; face crops by the builders' Haar-cascade path.

Windows (:func:`plan`): with ``window_s`` the input is cut into windows of that length every
``hop_s``; without it, an input no longer than ``data.max_audio_s`` is one window, and a longer
one (for a model with audio) is covered by evenly spaced windows of ``max_audio_s`` whose
probabilities are averaged, so the whole file is scored, never only its centre. Every
prediction says what it scored (``Decoded.coverage``).

Frames: a window gets every video frame in it when there are at most ``data.max_frames``, else
``max_frames`` uniformly spaced ones; only those frames are converted and kept, whatever the
file's length, so every window of a long video gets the number of frames the model was trained
with.

Limits (:class:`Limits`): window and hop must be finite and within bounds, the number of windows
is bounded, and a duration limit is checked from the file's header before decoding (and while
decoding when the header does not say).
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
# Faces are detected on frames of this size (H, W) before cropping (as the builders do).
DETECT_SIZE = (240, 320)
# Window and hop bounds (seconds): shorter windows hold a handful of 25-ms analysis frames.
MIN_WINDOW_S, MAX_WINDOW_S = 0.1, 3600.0
MIN_HOP_S = 0.05


class InputError(UsageError):
    """An input cannot be used; ``status`` is the HTTP status the server answers with."""

    status = 400


class UnsupportedMedia(InputError):
    """The file's type is not one the predictor reads (HTTP 415)."""

    status = 415


class InputTooLong(InputError):
    """An input longer than the duration limit (HTTP 413)."""

    status = 413


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one input may cost.

    Attributes:
      max_duration_s: longest input in seconds (None: no limit); checked from the header before
        decoding where the file states its length, else while decoding.
      max_windows: most windows one input is cut into (each is one forward pass).
    """

    max_duration_s: float | None = None
    max_windows: int = 2048


@dataclasses.dataclass
class Decoded:
    """One input file (plus text), decoded; ``None`` for a modality the file does not give.

    Attributes:
      audio: int16 [N] at the run's sample rate.
      frames: uint8 [K, H, W, 3] whole frames, only those some window uses.
      face: uint8 [K, h, w, 3] face crops of the same frames.
      frame_index: int [K] each kept frame's index in the video (decoding order).
      fps: the video's frame rate; ``video_frames``: its number of frames.
      text: the transcript.
      duration_s: the input's length in seconds (audio, else the video).
      spans: ``[(start_s, end_s)]`` the windows scored (:func:`plan`).
      coverage: one line saying what the spans cover.
      missing: ``{modality: reason}`` for modalities the model uses that this input lacks.
    """

    audio: np.ndarray | None = None
    frames: np.ndarray | None = None
    face: np.ndarray | None = None
    frame_index: np.ndarray | None = None
    fps: float = 0.0
    video_frames: int = 0
    text: str | None = None
    duration_s: float = 0.0
    spans: list = dataclasses.field(default_factory=list)
    coverage: str = ""
    missing: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class MediaSettings:
    """How to decode for one run: the model's modalities and the corpus' stored shapes."""

    modalities: tuple
    sample_rate: int
    max_frames: int
    frame_size: tuple | None = None  # (H, W) of "frames", when the model uses them
    face_size: tuple | None = None  # (H, W) of "face", when the model uses it
    max_audio_s: float = 0.0  # > 0: whole inputs longer than this are scored in such windows


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


def check_window(window_s: float | None, hop_s: float | None) -> tuple:
    """Validates a window and hop (seconds); returns ``(window_s, hop_s)`` with the hop defaulted
    to the window. Runs before anything is decoded.

    Raises:
      InputError: a hop without a window, or a value that is not a finite number in
        [``MIN_WINDOW_S``, ``MAX_WINDOW_S``] (window) or [``MIN_HOP_S``, ``MAX_WINDOW_S``] (hop).
    """
    if window_s is None:
        if hop_s is not None:
            raise InputError("a hop needs a window")
        return None, None
    hop_s = window_s if hop_s is None else hop_s
    for name, value, low in (("window", window_s, MIN_WINDOW_S), ("hop", hop_s, MIN_HOP_S)):
        if not (isinstance(value, (int, float)) and math.isfinite(value)
                and low <= value <= MAX_WINDOW_S):
            raise InputError(f"{name} must be a finite number of seconds in "
                             f"[{low:g}, {MAX_WINDOW_S:g}], got {value!r}")
    return float(window_s), float(hop_s)


def plan(duration_s: float, settings: MediaSettings, window_s: float | None,
         hop_s: float | None, max_windows: int) -> tuple[list[tuple[float, float]], str]:
    """The windows an input of ``duration_s`` is scored in, and a line saying what they cover.

    Raises:
      InputError: explicit windows that would number more than ``max_windows``.
    """
    dur = float(duration_s)
    if window_s is not None:
        n = max(1, math.ceil(max(dur - window_s, 0.0) / hop_s - 1e-9) + 1)
        left = ""
        # With overlapping windows, a last, shorter window adding under half a hop after the
        # previous one's end (3.01 s in 1.5-s windows every 0.5 s: 2.00-3.01 after 1.50-3.00)
        # is left out: it would mostly score the previous window again; the line says what is
        # not scored. Without overlap (hop >= window) the last window is new input: kept.
        tail = dur - ((n - 2) * hop_s + window_s)
        if (n > 1 and hop_s < window_s and (n - 1) * hop_s + window_s > dur + 1e-9
                and tail < hop_s / 2):
            n -= 1
            left = f"; the last {tail:.2f} s (under half a hop) is in no window"
        if n > max_windows:
            raise InputError(
                f"window {window_s:g} s every {hop_s:g} s on a {dur:.1f}-s input gives {n} "
                f"windows, more than the limit of {max_windows}; use a larger hop")
        spans = [(i * hop_s, min(i * hop_s + window_s, dur)) for i in range(n)]
        return spans, (f"{n} window(s) of {window_s:g} s every {hop_s:g} s over {dur:.2f} s"
                       f"{left}")
    w = settings.max_audio_s
    if dur <= 0:
        return [(0.0, 0.0)], "the transcript"
    if "audio" not in settings.modalities or not 0 < w < dur:
        return [(0.0, dur)], f"the whole input ({dur:.2f} s) in one window"
    need = math.ceil(dur / w - 1e-9)
    n = min(need, max_windows)
    step = (dur - w) / (n - 1) if n > 1 else 0.0
    spans = [(i * step, i * step + w) for i in range(n)]
    if n == need:
        how = f"the whole input ({dur:.2f} s) as {n} evenly spaced windows"
    else:
        how = (f"{n} evenly spaced windows over {dur:.2f} s ({100 * n * w / dur:.0f}% of it: "
               f"at most {max_windows} windows)")
    return spans, (f"{how} of {w:g} s (the model's data.max_audio_s), probabilities averaged")


def _clean(msg: str, path: str, shown: str) -> str:
    return msg.replace(path, shown)


def read_transcript(path: str, shown: str, notes=None) -> str:
    """A ``.txt`` file's text through the builders' decoder (encodings and repairs).

    Args:
      path: the file; ``shown``: its name in messages.
      notes: a text stream (``sys.stderr`` for ``mmer predict``) that gets one line when the
        decoder repaired the text (e.g. cp1252 bytes in UTF-8); None: repaired silently.

    Raises:
      InputError: unreadable, or in no encoding the decoder accepts (the message names ``shown``).
    """
    from data_prep import decode as media

    try:
        decoded = media.read_text(path)  # the builders' decoder (encodings, repairs)
    except OSError as exc:
        raise InputError(f"{shown}: cannot read ({exc.strerror})") from exc
    except media.TextDecodeError as exc:
        raise InputError(_clean(str(exc), path, shown)) from exc
    if notes is not None and decoded.repairs:
        fixes = ", ".join(f"{k} {n}" for k, n in sorted(decoded.repairs.items()))
        print(f"note: {shown}: transcript's encoding repaired (read as {decoded.encoding}; "
              f"{fixes})", file=notes)
    return decoded.text


def decode(path: str | None, settings: MediaSettings, text: str | None = None,
           shown_name: str | None = None, window_s: float | None = None,
           hop_s: float | None = None, limits: Limits | None = None) -> Decoded:
    """Decodes ``path`` for a model of ``settings.modalities``, for the windows it will be scored
    in (:func:`plan`).

    Args:
      path: the file (its extension says what it is: :func:`kind_of`); None: no file, only
        ``text`` (``mmer predict --text`` for a text model).
      settings: what to decode and at which sizes.
      text: a transcript for models that use text (a ``.txt`` file is read instead).
      shown_name: the name used in messages instead of ``path`` (uploads: never the temp path).
      window_s, hop_s: sliding windows (seconds); None: the whole input (see the module doc).
      limits: duration and window limits (default: :class:`Limits`' defaults).

    Raises:
      UnsupportedMedia: an unknown extension.
      InputTooLong: longer than ``limits.max_duration_s`` (the message says how it is known).
      InputError: a bad window or hop, too many windows, a file that cannot be decoded, or one
        where nothing the model uses is (empty file, silent audio, no face, ...); the message
        says which.
    """
    from data_prep import decode as media

    limits = limits or Limits()
    window_s, hop_s = check_window(window_s, hop_s)
    shown = shown_name or (os.path.basename(path) if path is not None else "--text")
    kind = kind_of(shown_name or path) if path is not None else "transcript"
    mods = set(settings.modalities)
    out = Decoded()
    if kind == "text":
        text = read_transcript(path, shown)
    if "text" in mods:
        if text is not None and text.strip():
            out.text = text
        else:
            out.missing["text"] = "no transcript given (--text, or a .txt of the clip's name)"
    try:
        if kind in ("audio", "video") and limits.max_duration_s is not None:
            media.check_duration(path, limits.max_duration_s)
        if kind in ("audio", "video") and "audio" in mods:
            _decode_audio(path, kind, settings, limits, out, media)
        elif "audio" in mods:
            out.missing["audio"] = f"no audio in a {'text file' if kind == 'text' else kind}"
        visual = [m for m in ("frames", "face") if m in mods]
        video = None
        if visual and kind == "video":
            try:
                video = media.scan_video(path)
            except media.MediaError as exc:
                if "no video stream" not in str(exc):
                    raise
                for m in visual:  # e.g. an audio file with cover art: use what it has
                    out.missing[m] = str(exc).replace(f"{path}: ", "")
        if video is not None:
            if not out.duration_s and video["fps"]:
                out.duration_s = video["total_frames"] / video["fps"]
                if limits.max_duration_s is not None and out.duration_s > limits.max_duration_s:
                    raise media.TooLong(f"{path}: {out.duration_s:.1f} s of video, over the "
                                        f"limit of {limits.max_duration_s:g} s")
        elif visual and kind != "video":
            for m in visual:
                out.missing[m] = f"no video in a{'n' if kind == 'audio' else ''} {kind} file"
        out.spans, out.coverage = plan(out.duration_s, settings, window_s, hop_s,
                                       limits.max_windows)
        if video is not None:
            _decode_visual(path, video, settings, out, media)
    except media.TooLong as exc:
        raise InputTooLong(_clean(str(exc), path, shown)) from exc
    except media.MediaError as exc:
        raise InputError(_clean(str(exc), path, shown)) from exc
    used = [m for m in settings.modalities if m not in out.missing]
    if not used:
        reasons = "; ".join(f"{m}: {r}" for m, r in out.missing.items())
        raise InputError(f"{shown}: nothing this model can use ({reasons})")
    return out


def _decode_audio(path, kind, settings: MediaSettings, limits: Limits, out: Decoded,
                  media) -> None:
    try:
        # Bounded: read and resampled block by block, never held at the file's own rate.
        max_s = limits.max_duration_s if limits.max_duration_s is not None else math.inf
        pcm, info = media.read_audio(path, settings.sample_rate, max_duration_s=max_s)
    except media.TooLong:
        raise
    except media.MediaError as exc:
        if kind == "audio" or "no audio stream" not in str(exc):
            raise
        out.missing["audio"] = "the video has no audio track"
        return
    out.duration_s = float(info["duration_s"])
    peak = max(int(pcm.max()), -int(pcm.min())) if pcm.size else 0  # no int32 copy
    if peak < SILENCE_PEAK:
        out.missing["audio"] = (
            f"the audio is silent (peak {20 * math.log10(max(peak, 1) / 32768):.0f} dBFS)"
        )
    else:
        out.audio = pcm


def _pick(n: int, k: int) -> np.ndarray:
    """Indices of at most ``k`` of ``n`` items: all of them, or ``k`` uniformly spaced."""
    if n <= k:
        return np.arange(n)
    return np.linspace(0, n - 1, k).round().astype(int)


def window_frames(total: int, fps: float, start: float, end: float, max_frames: int,
                  whole: bool = False) -> np.ndarray:
    """Indices of the frames a window [start, end) s uses: every frame in it, or ``max_frames``
    uniformly spaced ones; ``whole``: the window is the whole input (every frame counts)."""
    if whole:
        return _pick(total, max_frames)
    times = np.arange(total) / (fps or 25.0)
    lo, hi = np.searchsorted(times, [start, end], side="left")
    return lo + _pick(int(hi - lo), max_frames)


def _decode_visual(path, video: dict, settings: MediaSettings, out: Decoded, media) -> None:
    """Decodes only the frames some window uses, converting each as it comes (memory: the kept
    frames at their stored sizes, whatever the video's length)."""
    mods = settings.modalities
    total, fps = int(video["total_frames"]), float(video["fps"]) or 25.0
    whole = len(out.spans) == 1 and out.spans[0] == (0.0, out.duration_s)
    wanted = sorted({int(i) for s, e in out.spans
                     for i in window_frames(total, fps, s, e, settings.max_frames, whole)})
    size = DETECT_SIZE if "face" in mods else settings.frame_size
    frames, faces, index = [], [], []
    found = 0
    import cv2

    for n, img in media.iter_video_frames(path, video["video_stream"], set(wanted), tuple(size)):
        index.append(n)
        if "face" in mods:
            face, ratio = media.crop_faces(img[None], size=tuple(settings.face_size))
            faces.append(face[0])
            found += ratio > 0
        if "frames" in mods:
            if tuple(img.shape[:2]) != tuple(settings.frame_size):
                fh, fw = settings.frame_size
                img = cv2.resize(img, (fw, fh), interpolation=cv2.INTER_AREA)
            frames.append(img.astype(np.uint8))
    if not index:
        raise media.MediaError(f"{path}: no decodable video frames")
    out.fps, out.video_frames = fps, total
    out.frame_index = np.asarray(index)
    if "face" in mods:
        if not found:
            out.missing["face"] = "no face found in the video"
        else:
            out.face = np.stack(faces)
    if "frames" in mods:
        out.frames = np.stack(frames)


def records(decoded: Decoded, settings: MediaSettings) -> list[tuple[float, float, dict]]:
    """``decoded`` as corpus records, one per window of ``decoded.spans``.

    A modality the model uses but the input lacks is given empty (zero length), the way a padded
    batch row carries it; the model never receives a modality it was not trained with.

    Returns:
      ``[(start_s, end_s, record)]``.
    """
    sr = settings.sample_rate
    mods = settings.modalities
    whole = len(decoded.spans) == 1 and decoded.spans[0] == (0.0, decoded.duration_s)
    out = []
    for start, end in decoded.spans:
        rec: dict = {"label": 0}
        if "audio" in mods:
            a = decoded.audio
            if a is None:
                rec["audio"] = np.zeros(0, np.int16)
            else:
                rec["audio"] = a if whole else a[int(round(start * sr)): int(round(end * sr))]
        for key, size in (("frames", settings.frame_size), ("face", settings.face_size)):
            if key not in mods:
                continue
            arr = getattr(decoded, key)
            if arr is None:
                rec[key] = np.zeros((0, *size, 3), np.uint8)
                continue
            want = window_frames(decoded.video_frames, decoded.fps, start, end,
                                 settings.max_frames, whole)
            # Frames past a damaged tail were never decoded: the window has fewer.
            want = want[np.isin(want, decoded.frame_index)]
            rec[key] = arr[np.searchsorted(decoded.frame_index, want)]
        if "text" in mods:
            rec["text"] = decoded.text or ""
        out.append((float(start), float(end), rec))
    return out
