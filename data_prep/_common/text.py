"""The one decoder of every text file the project reads: corpus CSVs and transcripts, the folder
builder's manifests and specs, ``mmer predict``'s ``.txt`` transcripts and uploads (through
:mod:`data_prep.decode`).

Rules, in order (every repair is counted, so a builder can put the counts in its build report):

1. **Encoding.** A byte-order mark decides: UTF-32, UTF-16 (Excel's "Unicode text", Notepad's
   "Unicode") or UTF-8 (the mark is dropped). Without a mark, a file whose every second byte is
   NUL is UTF-16 of that byte order (``utf16_file``). Otherwise the bytes are decoded as UTF-8
   **per byte run**: a run that is not valid UTF-8 is decoded as cp1252 on its own
   (``cp1252_bytes``), so a whole cp1252 file reads right and one stray ``0x92`` in an otherwise
   UTF-8 file does not turn every correct character of the file into mojibake.
2. **C1 code points** (U+0080-U+009F) are what cp1252 punctuation becomes when cp1252 bytes were
   once read as Latin-1 (the MELD release carries U+0092 for ``’``). Each is replaced by the
   cp1252 character of the same byte value (``c1_code_points``); the five byte values cp1252
   leaves undefined (0x81 0x8D 0x8F 0x90 0x9D) are removed (``c1_undefined``).
3. **Mojibake** (UTF-8 once read as cp1252 or Latin-1 and saved again: ``donâ€™t``) is repaired
   line by line by ftfy's ``fix_encoding`` (conservative: text that is plausible as it stands is
   left alone); each repaired line counts once (``mojibake_lines``).

A file that is not text (NUL bytes left after decoding) or whose byte-order mark lies raises
:class:`TextDecodeError` naming the file and the encodings tried.
"""

from __future__ import annotations

import codecs
import collections
import dataclasses
import os

import ftfy

_C1 = {cp: bytes([cp]).decode("cp1252", errors="replace") for cp in range(0x80, 0xA0)}
_C1_UNDEFINED = {cp for cp, ch in _C1.items() if ch == "\ufffd"}
_ERROR_HANDLER = "mmer-cp1252-fallback"
# Longest marks first: the UTF-32-LE mark starts with the UTF-16-LE one.
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
         (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
         (codecs.BOM_UTF16_BE, "utf-16-be"))
_SNIFF = 4096  # bytes looked at for BOM-less UTF-16


class TextDecodeError(ValueError):
    """A file is not text in any encoding tried; the message names the file and the encodings."""


@dataclasses.dataclass(frozen=True)
class DecodedText:
    """A decoded text file.

    Attributes:
      text: the decoded, repaired text (``str``; a BOM is never part of it).
      encoding: how it was decoded, e.g. ``"utf-8"``, ``"utf-16-le (BOM)"``,
        ``"utf-8 with cp1252 for 3 bytes"``.
      repairs: counts per repair kind (module docstring); empty when none was needed.
    """

    text: str
    encoding: str
    repairs: collections.Counter


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
    """Replaces C1 control code points by the cp1252 characters they stand for (module doc).

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


def repair_mojibake(text: str, repairs: collections.Counter | None = None) -> str:
    """Repairs UTF-8 text that was once decoded as cp1252/Latin-1 and re-encoded, line by line
    (ftfy ``fix_encoding``); ``repairs["mojibake_lines"]`` counts the lines changed."""
    if text.isascii():
        return text
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.isascii():
            continue
        fixed = ftfy.fix_encoding(line)
        if fixed != line:
            lines[i] = fixed
            if repairs is not None:
                repairs["mojibake_lines"] += 1
    return "".join(lines)


def _utf16_without_bom(raw: bytes) -> str | None:
    """``utf-16-le``/``-be`` when every second byte of the head of ``raw`` is NUL (BOM-less
    UTF-16 of mostly Latin text), else None."""
    head = raw[:_SNIFF - _SNIFF % 2]
    pairs = len(head) // 2
    if pairs < 2:
        return None
    even = head[0::2].count(0)
    odd = head[1::2].count(0)
    if odd >= 0.6 * pairs and even <= 0.05 * pairs:
        return "utf-16-le"
    if even >= 0.6 * pairs and odd <= 0.05 * pairs:
        return "utf-16-be"
    return None


def decode(raw: bytes, source: str | os.PathLike = "<bytes>") -> DecodedText:
    """Decodes a text file's bytes by the rules in the module docstring.

    Args:
      raw: the file's bytes.
      source: the file's name, for error messages.

    Returns:
      The :class:`DecodedText` (text, encoding used, repair counts).

    Raises:
      TextDecodeError: the bytes are not text (NUL bytes after decoding) or not valid in the
        encoding their byte-order mark or NUL pattern declares; names ``source`` and the
        encodings tried.
    """
    source = os.fspath(source)
    repairs: collections.Counter = collections.Counter()
    declared, how = None, ""
    for bom, enc in _BOMS:
        if raw.startswith(bom):
            declared, how, raw = enc, " (BOM)", raw[len(bom):]
            break
    if declared is None:
        declared = _utf16_without_bom(raw)
        how = " (no BOM: NUL in every second byte)" if declared else ""
    if declared and declared != "utf-8":
        try:
            text = raw.decode(declared)
        except UnicodeDecodeError as exc:
            raise TextDecodeError(
                f"{source}: not valid {declared}{how} ({exc.reason} at byte {exc.start}); "
                f"tried {declared}") from None
        if declared.startswith("utf-16"):
            repairs["utf16_file"] += 1
        encoding = declared + how
    else:
        try:
            text, encoding = raw.decode("utf-8"), "utf-8" + how
        except UnicodeDecodeError:
            n = _count_invalid(raw)
            repairs["cp1252_bytes"] += n
            text = raw.decode("utf-8", errors=_ERROR_HANDLER)
            encoding = f"utf-8 with cp1252 for {n} bytes"
    if "\x00" in text:
        raise TextDecodeError(
            f"{source}: not a text file (NUL bytes after decoding as {encoding}); tried a "
            "byte-order mark, UTF-16 by NUL pattern, UTF-8 with cp1252 for invalid bytes")
    text = repair_mojibake(repair_c1(text, repairs), repairs)
    return DecodedText(text, encoding, repairs)


def decode_text(raw: bytes, repairs: collections.Counter | None = None,
                source: str | os.PathLike = "<bytes>") -> str:
    """:func:`decode`'s text; its repair counts are added to ``repairs`` when given.

    Raises:
      TextDecodeError: as :func:`decode`.
    """
    out = decode(raw, source)
    if repairs is not None:
        repairs.update(out.repairs)
    return out.text


def read_text(path: str | os.PathLike) -> DecodedText:
    """Reads and decodes the text file ``path`` (:func:`decode`).

    Raises:
      OSError: the file cannot be read.
      TextDecodeError: as :func:`decode` (names ``path``).
    """
    with open(path, "rb") as f:
        raw = f.read()
    return decode(raw, path)
