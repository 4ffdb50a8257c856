"""Decoding and repair of corpus text files (CSV transcripts, label lists).

Rules (every repair is counted, so a builder can put the counts in its build report):

* Bytes are decoded as UTF-8 **per byte run**: a byte sequence that is not valid UTF-8 is decoded as
  cp1252 on its own (``cp1252_bytes``), so one stray ``0x92`` in an otherwise UTF-8 file no longer
  turns every correct character of the file into mojibake (``é`` stays ``é``). A UTF-8 BOM is
  dropped.
* C1 control code points (U+0080-U+009F) in decoded text are what cp1252 punctuation becomes when
  cp1252 bytes were once read as Latin-1 (the MELD release carries U+0092 for ``’``). Each is
  replaced by the cp1252 character of the same byte value (``c1_code_points``); the five byte
  values cp1252 leaves undefined (0x81 0x8D 0x8F 0x90 0x9D) are removed (``c1_undefined``).
"""

from __future__ import annotations

import codecs
import collections

_C1 = {cp: bytes([cp]).decode("cp1252", errors="replace") for cp in range(0x80, 0xA0)}
_C1_UNDEFINED = {cp for cp, ch in _C1.items() if ch == "\ufffd"}
_ERROR_HANDLER = "mmer-cp1252-fallback"


def _cp1252_fallback(exc: UnicodeError):
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    bad = exc.object[exc.start:exc.end]
    # cp1252 leaves 5 byte values undefined; Latin-1 gives them their C1 code point, which
    # repair_c1 then removes and counts.
    return bad.decode("cp1252", errors="strict") if all(
        b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D) for b in bad) else bad.decode("latin-1"), exc.end


codecs.register_error(_ERROR_HANDLER, _cp1252_fallback)


def _count_invalid(raw: bytes) -> int:
    """Bytes of ``raw`` that are not part of valid UTF-8."""
    n = 0

    def handler(exc):
        nonlocal n
        if not isinstance(exc, UnicodeDecodeError):
            raise exc
        n += exc.end - exc.start
        return "", exc.end

    name = "mmer-count-invalid"
    codecs.register_error(name, handler)
    raw.decode("utf-8", errors=name)
    return n


def repair_c1(text: str, repairs: collections.Counter | None = None) -> str:
    """Replaces C1 control code points by the cp1252 characters they stand for (see module doc).

    ``repairs`` (when given) is incremented by ``c1_code_points`` / ``c1_undefined``.
    """
    if not any(0x80 <= ord(c) < 0xA0 for c in text):
        return text
    out = []
    for c in text:
        cp = ord(c)
        if 0x80 <= cp < 0xA0:
            if cp in _C1_UNDEFINED:
                if repairs is not None:
                    repairs["c1_undefined"] += 1
                continue
            if repairs is not None:
                repairs["c1_code_points"] += 1
            out.append(_C1[cp])
        else:
            out.append(c)
    return "".join(out)


def decode_text(raw: bytes, repairs: collections.Counter | None = None) -> str:
    """Decodes a text file's bytes by the rules in the module docstring.

    Args:
      raw: the file's bytes.
      repairs: a counter incremented by ``cp1252_bytes``, ``c1_code_points`` and
        ``c1_undefined`` (created when None; pass one to read the counts).

    Returns:
      The decoded, repaired text.
    """
    if repairs is None:
        repairs = collections.Counter()
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        repairs["cp1252_bytes"] += _count_invalid(raw)
        text = raw.decode("utf-8", errors=_ERROR_HANDLER)
    return repair_c1(text, repairs)
