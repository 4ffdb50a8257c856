"""The per-file work of the audio and audio-visual builders, as picklable top-level functions.

Each takes one picklable item and returns plain arrays and dicts, so
:func:`data_prep._common.parallel.ordered_map` can run it in a worker process. This module imports
no TensorFlow Datasets (workers start fast). A :class:`~data_prep._common.media.MediaError` raised
here becomes a skip with its reason in the parent.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import numpy as np

from data_prep._common.media import MediaError, read_audio, read_visual

TARGET_SR = 16000


def audio_clip(path: str | os.PathLike) -> tuple[np.ndarray, dict[str, Any]]:
    """``read_audio(path, 16 kHz)``: ``(int16 audio, info)``."""
    return read_audio(path, target_sr=TARGET_SR)


class AVItem(NamedTuple):
    """One audio-visual clip: audio from ``audio_path``, frames and faces from ``video_path``."""

    audio_path: str
    video_path: str
    num_frames: int
    frame_size: tuple[int, int]
    face_size: tuple[int, int]
    detect_size: tuple[int, int]


class AVClip(NamedTuple):
    audio: np.ndarray
    info: dict[str, Any]
    frames: np.ndarray
    faces: np.ndarray
    face_found: float


def av_clip(item: AVItem) -> AVClip:
    """Audio (16 kHz int16), sampled frames and face crops of one clip (``read_visual``).

    Raises:
      MediaError: unreadable audio, a missing or undecodable video.
    """
    audio, info = read_audio(item.audio_path, target_sr=TARGET_SR)
    if not os.path.isfile(item.video_path):
        raise MediaError(f"{item.video_path}: missing video for "
                         f"{os.path.basename(item.audio_path)}")
    frames, faces, found, vinfo = read_visual(item.video_path, item.num_frames, item.frame_size,
                                              item.face_size, item.detect_size)
    # The video stream's flags (several video streams, which was read) join the audio's.
    info = {**info, "flags": {**info.get("flags", {}), **vinfo.get("flags", {})}}
    return AVClip(audio, info, frames, faces, found)
