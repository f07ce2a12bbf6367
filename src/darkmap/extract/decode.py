"""Turn the bytes of a saved page into text, whatever the page claims about itself.

Saved market pages come with BOMs, wrong or missing charset declarations, UTF-8 that
was decoded as cp1252 and re-encoded (mojibake such as ``QualitÃ¤t``), and even Python
``bytes`` reprs written by scrapers (``b'<html>\\n...'``). Decoding never fails: the
worst case is a replacement character.
"""

from __future__ import annotations

import ast
import codecs
import re
from dataclasses import dataclass

import numpy as np

__all__ = ["DEFAULT_MAX_BYTES", "DecodedPage", "binary_kind", "decode_page", "fix_mojibake",
           "looks_like_html"]

DEFAULT_MAX_BYTES = 8 * 1024 * 1024
"""Pages larger than this are cut (market pages are well under 1 MB)."""

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_CHARSET_RE = re.compile(
    rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{1,40})""", re.I
)
_BYTES_REPR_RE = re.compile(r"""^\s*b(['"])""")
_MOJIBAKE_RE = re.compile(
    r"[\u00c2-\u00f4]"
    r"[\u0080-\u00bf\u2018-\u203a\u20ac\u2122\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc]"
)
_HTML_HINT_RE = re.compile(
    rb"<\s*(!doctype\s+html|html|head|body|title|meta|div|table|p|a)\b", re.I
)


@dataclass(slots=True)
class DecodedPage:
    """Decoded text of a page and how it was obtained."""

    text: str
    encoding: str
    truncated: bool = False
    size: int = 0
    notes: tuple[str, ...] = ()
    utf8: bytes | None = None
    """``text`` in UTF-8 when that is the input itself (valid UTF-8, nothing removed or
    repaired), so that a parser need not encode ``text`` again."""


_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image", "image/png"),
    (b"\xff\xd8\xff", "a JPEG image", "image/jpeg"),
    (b"GIF87a", "a GIF image", "image/gif"),
    (b"GIF89a", "a GIF image", "image/gif"),
    (b"%PDF-", "a PDF document", "application/pdf"),
    (b"PK\x03\x04", "a ZIP archive", "application/zip"),
    (b"PK\x05\x06", "a ZIP archive", "application/zip"),
    (b"\x1f\x8b", "gzip data", "application/gzip"),
    (b"\x7fELF", "an ELF executable", "application/x-executable"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", "application/x-7z-compressed"),
    (b"\xfd7zXZ\x00", "xz data", "application/x-xz"),
    (b"\x28\xb5\x2f\xfd", "zstd data", "application/zstd"),
)
"""Magic numbers of binary formats: (first bytes, what they are, media type)."""
_NUL_HEAD = 1024


def binary_kind(head: bytes) -> tuple[str, str] | None:
    """What binary format the first bytes of a body are ("a PNG image", "image/png"),
    or None for text. A known magic number at the start (PNG, JPEG, GIF, WebP, PDF,
    ZIP, gzip, ELF, 7-Zip, xz, zstd, bzip2), or a NUL byte in the first 1 KiB before
    any HTML tag (``"binary data", "application/octet-stream"``; text in UTF-16 or
    UTF-32 with its BOM is text). A market labels anything ``text/html``, and an image
    may carry "<html>" in its metadata: such bytes are never a page."""
    for magic, what, media in _MAGIC:
        if head.startswith(magic):
            return what, media
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "a WebP image", "image/webp"
    if head.startswith(b"BZh") and head[4:10] == b"1AY&SY":
        return "bzip2 data", "application/x-bzip2"
    sample = head[:_NUL_HEAD]
    if any(sample.startswith(bom) for bom, _ in _BOMS):
        return None
    nul = sample.find(b"\0")
    if nul >= 0 and not _HTML_HINT_RE.search(sample[:nul]):
        return "binary data", "application/octet-stream"
    return None


def looks_like_html(head: bytes) -> bool:
    """True when the first bytes look like an HTML document (or a repr of one), and
    are no binary format (:func:`binary_kind`) that holds a tag somewhere."""
    sample = head[:4096]
    if binary_kind(head) is not None:
        return False
    for bom, enc in _BOMS:
        if sample.startswith(bom):
            try:
                sample = sample.decode(enc, "replace").encode("utf-8", "replace")
            except LookupError:
                pass
            break
    return bool(_HTML_HINT_RE.search(sample))


def _declared(data: bytes) -> str | None:
    m = _CHARSET_RE.search(data[:4096])
    if not m:
        return None
    name = m.group(1).decode("ascii", "replace").lower()
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _decode_mixed(data: bytes) -> str:
    """UTF-8 where the bytes are UTF-8, cp1252 for the stray bytes in between."""
    out: list[str] = []
    pos = 0
    while pos < len(data):
        try:
            out.append(data[pos:].decode("utf-8"))
            break
        except UnicodeDecodeError as exc:
            out.append(data[pos:pos + exc.start].decode("utf-8"))
            bad = data[pos + exc.start:pos + exc.end]
            out.append(bad.decode("cp1252", "replace"))
            pos = pos + exc.end
    return "".join(out)


_LEAD = "\u00c2-\u00f4"
_TRAIL = (
    "\u0080-\u00bf\u2018-\u203a\u20ac\u2122\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc"
)
_REPAIR_RE = re.compile(f"(?:[{_LEAD}][{_TRAIL}]{{1,3}})+")
_TRAIL_SINGLES = np.array([0x20AC, 0x2122, 0x152, 0x153, 0x160, 0x161, 0x178, 0x17D, 0x17E,
                           0x192, 0x2C6, 0x2DC], dtype=np.uint32)


def _mojibake_starts(text: str) -> list[int]:
    """Positions where ``_MOJIBAKE_RE`` matches, found with numpy.

    A regex scan costs tens of nanoseconds per character; a page with a handful of
    repairs would pay that over all of its text.
    """
    units = text.encode("utf-16-le", "surrogatepass")  # much faster than UTF-32
    if len(units) == 2 * len(text):  # no character outside the BMP: one unit each
        cp: np.ndarray = np.frombuffer(units, dtype="<u2")
    else:
        cp = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    head = cp[:-1]
    lead = np.flatnonzero((head >= 0xC2) & (head <= 0xF4))
    if not len(lead):
        return []
    nxt = cp[lead + 1]  # only the characters after a lead are tested as trails
    trail = (((nxt >= 0x80) & (nxt <= 0xBF)) | ((nxt >= 0x2018) & (nxt <= 0x203A))
             | np.isin(nxt, _TRAIL_SINGLES))
    starts: list[int] = lead[trail].tolist()
    return starts


def _repair(chunk: str) -> str:
    for enc in ("cp1252", "latin-1"):
        try:
            fixed = chunk.encode(enc).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
        # a repair that yields C1 control characters was not mojibake after all
        if not any("\x80" <= ch <= "\x9f" for ch in fixed):
            return fixed
    return chunk


def fix_mojibake(text: str) -> str:
    """Repair UTF-8 that was read as cp1252/latin-1 (``Ã¤`` -> ``ä``), piece by piece."""
    if text.isascii():
        return text
    starts = _mojibake_starts(text)
    if not starts:
        return text
    # exactly what re.sub(_REPAIR_RE, ...) does: every match starts at a candidate
    # (a lead character before a trail character), and matches never overlap
    out: list[str] = []
    pos = 0
    for i in starts:
        if i < pos:
            continue
        m = _REPAIR_RE.match(text, i)
        if m is None:  # cannot happen (a candidate always matches); keep the text
            continue
        out.append(text[pos:i])
        out.append(_repair(m.group(0)))
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)


def _unrepr(text: str) -> str | None:
    """The content of a Python ``b'...'`` repr that a scraper wrote instead of the page."""
    if not _BYTES_REPR_RE.match(text):
        return None
    body = text.strip()
    try:
        value = ast.literal_eval(body)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(value, bytes):
        return None
    return decode_page(value).text


def decode_page(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> DecodedPage:
    """Decode ``data`` (at most ``max_bytes`` of it) into text, never raising."""
    size = len(data)
    truncated = size > max_bytes
    if truncated:
        data = data[:max_bytes]
    notes: list[str] = []
    text: str | None = None
    encoding = "utf-8"
    plain = False  # text is data.decode("utf-8"): its characters are the bytes' characters
    same = True  # ... and nothing removed from it since
    for bom, enc in _BOMS:
        if data.startswith(bom):
            text = data[len(bom):].decode(enc, "replace")
            encoding = enc
            notes.append("bom")
            break
    if text is None:
        declared = _declared(data)
        try:
            text = data.decode("utf-8")
            plain = True
        except UnicodeDecodeError:
            if declared and declared not in ("utf-8", "ascii"):
                text = data.decode(declared, "replace")
                encoding = declared
            else:
                text = _decode_mixed(data)
                encoding = "utf-8+cp1252"
                notes.append("mixed encodings")
    if "\x00" in text:
        text = text.replace("\x00", "")
        same = False
    inner = _unrepr(text) if text[:4].lstrip().startswith("b") else None
    if inner is not None:
        text = inner
        notes.append("python bytes repr")
        plain = False
    # every character a repair starts at (U+00C2-U+00F4) is the byte 0xC3 and one more in
    # UTF-8: bytes without 0xC3 (a byte search) decode to text with nothing to repair
    fixed = text if plain and b"\xc3" not in data else fix_mojibake(text)
    if fixed != text:
        notes.append("mojibake repaired")
        text = fixed
        same = False
    if truncated:
        notes.append(f"truncated at {max_bytes} bytes")
    return DecodedPage(text=text, encoding=encoding, truncated=truncated, size=size,
                       notes=tuple(notes), utf8=data if plain and same else None)
