"""Public decoders of raw media and text files: the ones the builders use, for code outside
``data_prep``.

Serving (``mmer predict`` / ``mmer serve``) decodes uploads with exactly the functions that turned
the corpora's files into records, so a file is read the same way at build and at prediction time.
See :mod:`data_prep._common.media` for the media decoders and :mod:`data_prep._common.text` for
the text decoder (encodings, repairs, errors).
"""

from data_prep._common.media import (
    CONTAINER_EXTS,
    SOUNDFILE_EXTS,
    MediaError,
    TooLong,
    check_duration,
    crop_faces,
    default_video_stream,
    iter_video_frames,
    probe_duration,
    read_audio,
    read_video,
    scan_video,
)
from data_prep._common.text import DecodedText, TextDecodeError, read_text

__all__ = [
    "CONTAINER_EXTS",
    "DecodedText",
    "TextDecodeError",
    "SOUNDFILE_EXTS",
    "MediaError",
    "TooLong",
    "check_duration",
    "crop_faces",
    "default_video_stream",
    "iter_video_frames",
    "probe_duration",
    "read_audio",
    "read_text",
    "read_video",
    "scan_video",
]
