"""Frames for many time segments of one long video (an IEMOCAP dialogue .avi), in one pass.

IEMOCAP ships one ``.avi`` per dialogue, not per utterance; decoding the whole dialogue once per
utterance would cost ~50 full decodes per file, and holding every decoded frame would cost
gigabytes. This helper streams the video once and keeps only the frames nearest each requested time.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from data_prep._common.media import MediaError


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
            if not container.streams.video:
                raise MediaError(f"{path}: no video stream")
            for frame in container.decode(container.streams.video[0]):
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
