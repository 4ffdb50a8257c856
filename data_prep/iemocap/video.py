"""Frames for many time segments of one long video (an IEMOCAP dialogue .avi), in one pass.

IEMOCAP ships one ``.avi`` per dialogue, not per utterance; decoding the whole dialogue once per
utterance would cost ~50 full decodes per file, and holding every decoded frame would cost
gigabytes. This helper streams the video once and keeps only the frames nearest each requested time.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from data_prep._common.media import MediaError, default_video_stream


def segment_times(start: float, end: float, num_frames: int) -> np.ndarray:
    """``num_frames`` times spread uniformly over ``[start, end]`` (centres of equal bins)."""
    if num_frames < 1:
        raise ValueError(f"{num_frames=} must be >= 1")
    edges = np.linspace(start, end, num_frames + 1)
    return (edges[:-1] + edges[1:]) / 2.0


def frames_at(path: str | os.PathLike, segments: Sequence[tuple[float, float]], num_frames: int,
              size: tuple[int, int]) -> list[np.ndarray | None]:
    """Decodes ``path`` once and returns, per segment, uint8 [num_frames, H, W, 3] RGB frames.

    Each requested time takes the first frame whose timestamp is at or after it. A segment that
    starts after the last decoded frame gets ``None`` (the video is shorter than the annotation
    says).

    Args:
      path: a video container readable by PyAV.
      segments: ``(start_s, end_s)`` per utterance.
      num_frames: frames per segment.
      size: output ``(H, W)``.

    Raises:
      MediaError: missing/unreadable file, no video stream, or no decodable frame.
    """
    import av

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MediaError(f"{path}: no such file")
    h, w = size
    wanted = sorted((t, i, j) for i, (s, e) in enumerate(segments)
                    for j, t in enumerate(segment_times(s, e, num_frames)))
    out: list[np.ndarray | None] = [np.zeros((num_frames, h, w, 3), np.uint8) for _ in segments]
    filled = [0] * len(segments)
    k, last_time = 0, None
    try:
        with av.open(path) as container:
            stream, _ = default_video_stream(path, list(container.streams.video))
            for frame in container.decode(stream):
                if k >= len(wanted):
                    break
                t = float(frame.time) if frame.time is not None else 0.0
                last_time = t
                if wanted[k][0] > t:
                    continue
                img = frame.to_ndarray(width=w, height=h, format="rgb24")
                while k < len(wanted) and wanted[k][0] <= t:
                    _, i, j = wanted[k]
                    out[i][j] = img
                    filled[i] += 1
                    k += 1
    except MediaError:
        raise
    except Exception as exc:  # av.error.*; a damaged tail leaves the segments decoded so far.
        if last_time is None:
            raise MediaError(f"{path}: cannot decode video ({exc})") from exc
    if last_time is None:
        raise MediaError(f"{path}: no decodable video frames")
    # Times past the last frame (annotation slightly longer than the video) reuse the segment's
    # last filled frame; a segment with no frame at all is reported as None.
    for i, n in enumerate(filled):
        if n == 0:
            out[i] = None
        elif n < num_frames:
            out[i][n:] = out[i][n - 1]
    return out


class DialogueWork(NamedTuple):
    """One dialogue's per-file work: its utterances' wavs and, for the av configs, its .avi."""

    wavs: tuple[str, ...]
    avi: str | None  # None: no video (audio + text configs)
    segments: tuple[tuple[float, float], ...] = ()
    num_frames: int = 8
    detect_size: tuple[int, int] = (240, 320)
    face_size: tuple[int, int] = (64, 64)
    frame_size: tuple[int, int] = (112, 112)


def dialogue_clips(w: DialogueWork) -> tuple[str | None, list[dict[str, Any]]]:
    """Decodes one dialogue: ``(video_error, per utterance)`` (a picklable top-level function, run
    in a build's worker processes; see ``data_prep._common.parallel``).

    ``video_error`` is the :class:`MediaError` message of an unusable ``.avi`` (then no utterance
    is decoded). Per utterance: ``{"error": reason}`` for unusable audio, else ``audio``, ``info``
    and, with video, ``no_frame`` (the video has no frame in its span) or ``frames``, ``faces``,
    ``face_found``.
    """
    from data_prep._common.media import crop_faces, read_audio

    videos = None
    if w.avi is not None:
        try:
            videos = frames_at(w.avi, list(w.segments), w.num_frames, w.detect_size)
        except MediaError as exc:
            return str(exc), []
    out: list[dict[str, Any]] = []
    for k, wav in enumerate(w.wavs):
        try:
            audio, info = read_audio(wav)
        except MediaError as exc:
            out.append({"error": str(exc)})
            continue
        res: dict[str, Any] = {"audio": audio, "info": info}
        if videos is not None:
            if videos[k] is None:
                res["no_frame"] = True
            else:
                faces, found = crop_faces(videos[k], w.face_size)
                res.update(faces=faces, face_found=np.float32(found),
                           frames=_resize(videos[k], w.frame_size))
        out.append(res)
    return None, out


def _resize(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    h, w = size
    return np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames])
