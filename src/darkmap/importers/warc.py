"""The ``warc`` importer: market pages kept in WARC files (ISO 28500), re-extracted.

A crawl (:mod:`darkmap.collect.crawl`) writes every request and response to WARC files
and stores each response body as a capture of its own. :func:`store_page` is the one
way a fetched page becomes evidence, used by the crawler while it crawls and by this
importer when ``darkmap ingest crawl.warc.gz`` reads a WARC later: the body goes into the
capture store by its sha256, the page goes through the same market templates as a saved
page (method ``pages@1``), and its records point to that capture, with the canonical URL
as source and the response's UTC time (``WARC-Date``) as observation time. Ingesting
the WARC files of a crawl into a new workspace therefore gives the crawl's records,
without fetching anything.

The importer writes those per-page rows itself (a :class:`~darkmap.plugins.TableImporter`)
and yields one ``UnitRecord`` per response page stored, so ingest's counts reconcile. A
response that is not a 2xx HTML page (an error, a redirect, an image), a request record
and a ``warcinfo`` record are skipped with the reason; a record whose payload does not
hash to its ``WARC-Payload-Digest``, a damaged record (the reading then resumes with the
next record: :func:`_responses`), and the tail of a WARC cut short by a killed crawler,
are quarantined.

warcio and the template engine are imported when a WARC or a page is read, not with this
module: choosing the importer of any file loads every importer (:mod:`darkmap.plugins`).
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tempfile
import zlib
from collections import Counter
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO

import duckdb

from darkmap.capture.content_store import CaptureStore
from darkmap.extract.decode import DEFAULT_MAX_BYTES, binary_kind, looks_like_html
from darkmap.model.records import (
    CutRecord,
    MarketRecord,
    QuarantineRecord,
    Record,
    SkipRecord,
    UnitRecord,
)
from darkmap.plugins import SourceFile
from darkmap.store.runs import processed_files
from darkmap.store.workspace import utcnow
from darkmap.store.writer import Provenance, RecordWriter

__all__ = ["CANONICAL_HEADER", "MIRROR_HEADER", "PAGES_METHOD", "PROXY_HEADER", "PageOutcome",
           "WarcImporter", "payload_digest", "processed_pages", "store_page"]

PAGES_METHOD = "pages@1"
"""The method of every record of a crawled page: the same templates as a saved page."""
_PAGES = "pages"
CANONICAL_HEADER = "WARC-X-Canonical-URI"
"""The page's canonical URL (the market's own onion), whatever mirror served it."""
MIRROR_HEADER = "WARC-X-Mirror"
PROXY_HEADER = "WARC-X-Proxy"
_WARC_MAGIC = b"WARC/"
_HTML_TYPES = ("text/html", "application/xhtml")


def payload_digest(body: bytes) -> str:
    """``WARC-Payload-Digest`` of ``body``: ``sha256:`` and the base32 digest."""
    return "sha256:" + base64.b32encode(hashlib.sha256(body).digest()).decode("ascii")


@dataclass
class PageOutcome:
    """What :func:`store_page` did with one body."""

    sha256: str
    page_type: str
    market_id: str | None = None
    already: bool = False
    read: int = 0
    stored: int = 0
    quarantined: int = 0
    skipped: int = 0
    records: Counter[str] = field(default_factory=Counter)


def _extract(body: bytes, source: str) -> tuple[str, str | None, list[Record]]:
    """(page type, market, records) of a page, as the ``pages`` importer reads it."""
    from darkmap.extract.engine import extract_page  # noqa: PLC0415 - see the docstring

    data = body[:DEFAULT_MAX_BYTES + 1]
    try:
        res = extract_page(data, source, max_bytes=DEFAULT_MAX_BYTES)
    except Exception as exc:  # noqa: BLE001 - hostile pages: keep the unit, say why
        return "unparsed", None, [QuarantineRecord(
            locator="page", excerpt=data[:200].decode("utf-8", "replace"),
            reason=f"{source}: page extraction failed: {type(exc).__name__}: {exc}"[:500])]
    return res.page_type, res.market_id, res.records


def store_page(writer: RecordWriter, captures: CaptureStore, done: set[str], body: bytes,
               source: str, observed_at: datetime, run_id: str) -> PageOutcome:
    """Capture ``body`` and buffer its records in ``writer``; return what was done.

    ``done`` holds the captures already processed as pages (read with
    :func:`processed_pages`; this function adds to it): their records are not written
    again, but the page is still read, since the caller needs its type. ``observed_at``
    is the UTC time of the response (naive). The caller commits ``writer``'s rows after
    :meth:`CaptureStore.sync`.
    """
    sha = captures.put_bytes(body)
    page_type, market_id, records = _extract(body, source)
    out = PageOutcome(sha, page_type, market_id)
    if sha in done:
        out.already = True
        return out
    done.add(sha)
    prov = Provenance(sha, source, PAGES_METHOD, observed_at, run_id)
    units: dict[str, str] = {}
    for rec in records:
        outcome = writer.add(rec, prov)
        if isinstance(rec, (MarketRecord, CutRecord)):
            continue
        unit = (getattr(rec, "locator", "") or "page").split("#", 1)[0]
        if units.get(unit) != "stored":
            units[unit] = outcome
        if outcome == "stored":
            out.records[type(rec).__name__.removesuffix("Record").lower()] += 1
    counts = Counter(units.values())
    out.read = len(units)
    out.stored, out.quarantined, out.skipped = (counts["stored"], counts["quarantined"],
                                                counts["skipped"])
    now = utcnow()
    writer.add_row("captures", (sha, len(body), source, "text/html", now))
    writer.add_row("processed", (sha, _PAGES, run_id, source, out.read, out.stored,
                                 out.quarantined, out.skipped, market_id, None, now))
    return out


def processed_pages(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The captures already processed by the ``pages`` importer (or a crawl)."""
    return {sha for sha, imp in processed_files(con) if imp == _PAGES}


def _is_warc(head: bytes) -> bool:
    """True for a WARC file, plain or gzip-compressed (member by member)."""
    if head.startswith(_WARC_MAGIC):
        return True
    if head[:2] != b"\x1f\x8b":
        return False
    try:
        return zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(head, 16).startswith(
            _WARC_MAGIC)
    except zlib.error:
        return False


def _warc_time(value: str | None) -> datetime:
    """``WARC-Date`` (ISO 8601, UTC) as a naive UTC datetime; now if absent or bad."""
    if value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(
                UTC).replace(tzinfo=None)
        except ValueError:
            pass
    return utcnow()


@dataclass
class _Response:
    """One response record of a WARC, as far as the importer needs it."""

    locator: str
    url: str
    status: int
    media_type: str
    date: datetime
    digest: str | None
    body: bytes
    truncated: str | None = None
    raw: bytes = b""
    """The payload as the record stores it (what ``WARC-Payload-Digest`` is of)."""


_CHUNK = 1 << 16
"""Bytes read at a time when a WARC is scanned (for damage, or a record start)."""
_OUT = 1 << 20
"""Most decompressed bytes held at a time while a gzip WARC is scanned."""
_GZIP_MAGIC = b"\x1f\x8b\x08"
_PROBE = 1024
"""Input bytes a candidate gzip member may take to show that it starts a WARC record."""
_RECORD_START = b"\r\n\r\nWARC/"
"""The end of an uncompressed record (its block, then two CRLF) and the next one's start."""
_RESYNC_BLOCK = 4096
"""warcio's read size after a resynchronisation (what it read ahead is read again)."""
_SLACK = 1 << 20


class _TooDense(Exception):
    """The file's damage made its reading re-read too much (see :class:`_Budget`)."""


class _Budget:
    """Bytes a WARC's reading may decompress or hand to warcio, in all: three times the
    file and 1 MiB. Resynchronising after damage reads some bytes again (what warcio read
    ahead, a member found inside damage); the budget keeps that linear in the file's size
    whatever an attacker wrote (nested member starts, a damaged record every few bytes):
    past it the rest of the file is not read."""

    def __init__(self, size: int) -> None:
        self.limit = 3 * size + _SLACK
        self.left = self.limit

    def spend(self, n: int) -> None:
        """Count ``n`` bytes read; :class:`_TooDense` past the budget."""
        self.left -= n
        if self.left < 0:
            raise _TooDense(f"damaged too densely to resynchronise (its reading passed "
                            f"{self.limit} bytes: three times the file, and 1 MiB)")


@dataclass(frozen=True)
class _Damage:
    """A stretch of a gzip WARC that does not decompress: the member at ``start`` fails
    (``bad``: not gzip, or fails its check), or the file ends inside it (``cut``), or
    the budget ran out there (``dense``); ``resume`` is the next member that starts a
    WARC record, None when there is none (or it was not looked for)."""

    start: int
    resume: int | None
    kind: str
    why: str = ""


def _inflate(d: Any, data: bytes) -> None:
    """Feed ``data`` to the decompressor ``d``, the output dropped, at most :data:`_OUT`
    bytes of it at a time (a bomb is never expanded in memory)."""
    d.decompress(data, _OUT)
    while d.unconsumed_tail:
        d.decompress(d.unconsumed_tail, _OUT)


def _gzip_parts(fd: int, size: int, budget: _Budget) -> Iterator[tuple[int, int] | _Damage]:
    """The members of a gzip WARC (one per record), in file order: ``(start, end)`` of
    each whole one, a :class:`_Damage` for each stretch that does not decompress.

    Each member is decompressed (its CRC checked by zlib) before warcio reads it: warcio
    alone may read a cut member as a whole record, or stop without a word at one that
    fails its check (found by fuzzing: a record stored cut short, those after it lost).
    After a damaged member the next member that decompresses to ``WARC/`` is looked for
    (:func:`_next_member`) and the scan goes on from there, reading
    :data:`_RESYNC_BLOCK` bytes at a time at first (what was read past the damage is
    read again). Bounded memory (:data:`_CHUNK` of input, :data:`_OUT` of output); every
    byte read is spent from ``budget``."""
    start = offset = 0  # the member being decompressed; the input fed so far
    d = zlib.decompressobj(31)
    fed = False
    step = _CHUNK
    while chunk := os.pread(fd, step, offset):
        try:
            budget.spend(len(chunk))
        except _TooDense as exc:
            yield _Damage(start, None, "dense", str(exc))
            return
        offset += len(chunk)
        data = chunk
        try:
            while data:
                _inflate(d, data)
                fed = True
                if not d.eof:
                    break
                data = d.unused_data
                yield start, offset - len(data)
                start = offset - len(data)
                d, fed = zlib.decompressobj(31), False
                step = min(2 * step, _CHUNK)
        except zlib.error as exc:
            resume = _next_member(fd, start + 1, size)
            yield _Damage(start, resume, "bad", str(exc))
            if resume is None:
                return
            start = offset = resume
            d, fed = zlib.decompressobj(31), False
            step = _RESYNC_BLOCK
    if fed:
        yield _Damage(start, None, "cut")


def _starts_record(head: memoryview) -> bool:
    """True when ``head`` (at most :data:`_PROBE` bytes) starts a gzip member whose
    content starts ``WARC/``."""
    if len(head) < 10 or head[3] & 0xE0:  # reserved flag bits are zero
        return False
    try:
        return bool(zlib.decompressobj(31).decompress(head, 5) == _WARC_MAGIC)
    except zlib.error:
        return False


def _next_member(fd: int, frm: int, size: int) -> int | None:
    """The offset of the first gzip member at or after ``frm`` that starts a WARC record,
    or None. One pass over the bytes (:data:`_CHUNK` at a time), each candidate (the
    gzip magic) tried on at most :data:`_PROBE` bytes: linear in the bytes scanned."""
    pos = frm
    while pos < size:
        block = os.pread(fd, _CHUNK + _PROBE, pos)
        view = memoryview(block)
        bound = _CHUNK + len(_GZIP_MAGIC) - 1  # matches starting in this chunk only
        i = block.find(_GZIP_MAGIC, 0, bound)
        while i >= 0:
            if _starts_record(view[i:i + _PROBE]):
                return pos + i
            i = block.find(_GZIP_MAGIC, i + 1, bound)
        pos += _CHUNK
    return None


def _next_plain_record(fd: int, frm: int, end: int) -> int | None:
    """The start of the first uncompressed record after ``frm`` (a ``WARC/`` line right
    after the two CRLF that end a record), before ``end``; None when there is none.
    One pass, :data:`_CHUNK` at a time, the chunks overlapping by the pattern's length."""
    pos = frm
    keep = len(_RECORD_START) - 1
    while pos < end:
        block = os.pread(fd, min(_CHUNK + keep, end - pos), pos)
        if not block:
            return None
        i = block.find(_RECORD_START)
        if i >= 0:
            return pos + i + 4
        pos += max(len(block) - keep, 1)
    return None


_NOT_A_NUMBER = "it is not a number"
_HEADER_MAX = 1 << 16
"""Most bytes a record's WARC header is looked for in (:func:`_overrun`)."""


@dataclass(frozen=True)
class _Overrun:
    """An uncompressed record whose ``Content-Length`` (``length``, as written) runs over
    the start of another record (at ``inner``), or is no number (``inner``: the next
    record's start, None when there is none): found by :func:`_overrun`, with why the
    length is not what was written."""

    length: str
    inner: int | None
    why: str


def _header_fields(head: bytes) -> dict[bytes, bytes]:
    """The fields of a WARC header block (names lower-cased, the first of each kept)."""
    fields: dict[bytes, bytes] = {}
    for line in head.split(b"\r\n")[1:]:
        name, colon, value = line.partition(b":")
        if colon:
            fields.setdefault(name.strip().lower(), value.strip())
    return fields


def _overrun(fd: int, start: int, end: int, budget: _Budget) -> _Overrun | None:
    """The record at ``start`` of an uncompressed WARC, when its ``Content-Length``
    reaches over the start of another record and the length is shown false: the bytes
    after the block it claims are not the two CRLF that end a record, or the block does
    not hash to its ``WARC-Block-Digest`` (or its payload to its
    ``WARC-Payload-Digest``). None otherwise: a record read as written, or one whose
    block holds a record start but nothing says it is not its own (a WARC stored in a
    WARC). Found by a test: a raised length swallowed the records after it, unseen.

    The block is scanned up to the first record start in it, so every byte is scanned
    about once; the bytes hashed are spent from ``budget`` (lengths raised on many
    records would otherwise hash the rest of the file for each)."""
    head = os.pread(fd, _HEADER_MAX, start)
    cut = head.find(b"\r\n\r\n")
    if cut < 0:
        return None
    fields = _header_fields(head[:cut])
    block = start + cut + 4
    text = fields.get(b"content-length")
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()):
        # warcio reads such a length as 0, and the block as the records after it
        return _Overrun(text.decode("ascii", "backslashreplace")[:40],
                        _next_plain_record(fd, block - 4, end), _NOT_A_NUMBER)
    length = int(text)
    if length == 0:
        return None
    inner = _next_plain_record(fd, block, min(block + length, end))
    if inner is None:
        return None
    if block + length + 4 > end or os.pread(fd, 4, block + length) != b"\r\n\r\n":
        why = "the bytes after it are not the blank lines that end a record"
    elif not _block_digests_ok(fd, block, length, fields, budget):
        why = "its block does not hash to its digest"
    else:
        return None
    return _Overrun(str(length), inner, why)


def _block_digests_ok(fd: int, block: int, length: int, fields: dict[bytes, bytes],
                      budget: _Budget) -> bool:
    """True unless the block ``[block, block + length)`` fails its ``WARC-Block-Digest``,
    or its payload (after the HTTP header) its ``WARC-Payload-Digest``."""
    digests = []
    for name in (b"warc-block-digest", b"warc-payload-digest"):
        value = fields.get(name, b"").decode("ascii", "replace")
        algo, colon, _ = value.partition(":")
        if not colon:
            continue
        try:
            digests.append((name, value, hashlib.new(algo.lower())))
        except ValueError:
            continue  # an algorithm this Python does not know: not checkable
    if not digests:
        return True
    payload = None
    if any(name == b"warc-payload-digest" for name, _, _ in digests):
        http_end = os.pread(fd, min(length, _HEADER_MAX), block).find(b"\r\n\r\n")
        payload = None if http_end < 0 else block + http_end + 4
    budget.spend(length)
    pos, stop = block, block + length
    while pos < stop:
        chunk = os.pread(fd, min(_CHUNK, stop - pos), pos)
        if not chunk:
            break
        for name, _, h in digests:
            if name == b"warc-block-digest":
                h.update(chunk)
            elif payload is not None and pos + len(chunk) > payload:
                h.update(chunk[max(payload - pos, 0):])
        pos += len(chunk)
    for name, value, h in digests:
        if name == b"warc-payload-digest" and payload is None:
            continue
        raw = h.digest()
        if value.partition(":")[2] not in (base64.b32encode(raw).decode("ascii"), raw.hex()):
            return False
    return True


class _Window:
    """The bytes ``[start, end)`` of a file as the file object warcio reads: reads stop at
    ``end``, ``tell`` is the offset in the file, every byte read is spent from the
    budget."""

    def __init__(self, fd: int, start: int, end: int, budget: _Budget) -> None:
        self.fd, self.pos, self.end, self.budget = fd, start, end, budget

    def tell(self) -> int:
        return self.pos

    def read(self, size: int | None = -1) -> bytes:
        n = self.end - self.pos if size is None or size < 0 else min(size, self.end - self.pos)
        if n <= 0:
            return b""
        self.budget.spend(n)
        data = os.pread(self.fd, n, self.pos)
        self.pos += len(data)
        return data


def _record(rec: Any, n: int) -> _Response | QuarantineRecord | SkipRecord:
    """One WARC record: a response, or a skip/quarantine saying why not."""
    loc = f"record {n}"
    if not rec.rec_type or not rec.rec_headers.get_header("WARC-Record-ID"):
        return QuarantineRecord(locator=loc, reason=f"WARC record {n} has no type or "
                                                    "record id (cut short or damaged)")
    if rec.rec_type != "response":
        return SkipRecord(page_type=f"warc_{rec.rec_type}", locator=loc,
                          reason=f"WARC {rec.rec_type} record (not a response)")
    head = rec.rec_headers
    url = head.get_header(CANONICAL_HEADER) or head.get_header("WARC-Target-URI") or ""
    status = int(rec.http_headers.get_statuscode() or 0) if rec.http_headers else 0
    ctype = (rec.http_headers.get_header("Content-Type") or "") if rec.http_headers else ""
    raw = rec.raw_stream.read(_MAX_RAW + 1)
    body = _content(rec, raw)
    return _Response(loc, url, status, ctype.split(";", 1)[0].strip().lower(),
                     _warc_time(head.get_header("WARC-Date")),
                     head.get_header("WARC-Payload-Digest"), body,
                     head.get_header("WARC-Truncated"), raw)


_MAX_RAW = 4 * DEFAULT_MAX_BYTES
"""Most payload bytes read as stored (chunked or compressed) for one record."""


def _content(rec: Any, raw: bytes) -> bytes:
    """The record's content from its payload as stored (``raw``): without its transfer
    chunking and content coding, as warcio's ``content_stream`` reads it, at most
    ``DEFAULT_MAX_BYTES + 1`` bytes. The payload digest is checked on ``raw``, as
    writers compute it (found by fuzzing: checked on the decoded content, a chunked or
    gzip response of another tool's WARC read as tampered with)."""
    from warcio.bufferedreaders import BufferedReader, ChunkedDataReader  # noqa: PLC0415

    http = rec.http_headers
    if not http:
        return raw[:DEFAULT_MAX_BYTES + 1]
    coding = (http.get_header("content-encoding") or "").lower() or None
    if coding not in BufferedReader.get_supported_decompressors():
        coding = None
    stream = io.BytesIO(raw)
    if http.get_header("transfer-encoding") == "chunked":
        reader: Any = ChunkedDataReader(stream, decomp_type=coding)
    elif coding:
        reader = BufferedReader(stream, decomp_type=coding)
    else:
        return raw[:DEFAULT_MAX_BYTES + 1]
    try:
        return bytes(reader.read(DEFAULT_MAX_BYTES + 1))
    except Exception:  # noqa: BLE001 - a coding that does not decode: the bytes as stored
        return raw[:DEFAULT_MAX_BYTES + 1]


_Item = _Response | QuarantineRecord | SkipRecord


def _damaged(dmg: _Damage, k: int) -> QuarantineRecord:
    """The quarantine of record ``k``, whose gzip member is ``dmg``."""
    if dmg.kind == "cut":
        reason = (f"WARC cut short inside record {k} (byte {dmg.start}: its compressed data "
                  "ends early): the record is incomplete")
    elif dmg.kind == "dense":
        reason = f"WARC unreadable from record {k} (byte {dmg.start}): {dmg.why}"
    else:
        reason = (f"WARC record {k} is damaged: its compressed data (byte {dmg.start}) fails "
                  f"its check ({dmg.why}); what reads of it is not what was written")
    return QuarantineRecord(locator=f"record {k}", limit=None, reason=_then(reason, dmg.resume))


def _overran(k: int, at: int, over: _Overrun) -> QuarantineRecord:
    """The quarantine of record ``k`` (at byte ``at``), whose length runs over another
    record or is no number (:func:`_overrun`)."""
    what = (f"its Content-Length ({over.length!r}) is not a number"
            if over.why == _NOT_A_NUMBER else
            f"its Content-Length ({over.length}) runs over the start of another record "
            f"(byte {over.inner}) and {over.why}")
    return QuarantineRecord(locator=f"record {k}", field="Content-Length", limit=None,
                            reason=_then(f"WARC record {k} (byte {at}) is damaged: {what}",
                                         over.inner))


def _then(reason: str, resume: int | None) -> str:
    """``reason``, and where the reading goes on (or that it does not)."""
    if resume is None:
        return f"{reason}; no record found after it: the rest of the file is not read"[:500]
    return f"{reason}; the reading resumes with the next record (byte {resume})"[:500]


_NOT_CHUNKED = "non-chunked gzip"
"""What warcio says of a gzip WARC compressed as one stream (not one member a record)."""
_STREAM_RATIO = 50
"""How many times its compressed size a WARC compressed as one stream may expand to."""


class _Reader:
    """Reads the records of a WARC with warcio, stretch by stretch (see :func:`_responses`),
    numbering them across stretches."""

    def __init__(self, fd: int, size: int, budget: _Budget) -> None:
        self.fd, self.size, self.budget = fd, size, budget
        self.n = 0
        self.stopped = False
        """The rest of the file is not read (a record that could not be passed)."""

    def member(self, start: int, end: int) -> Iterator[_Item]:
        """The records of the gzip member ``[start, end)``: one, as WARC writers compress
        them, or several when the whole file was compressed as one stream (``gzip
        file.warc``), which warcio refuses after the first record: that member is then
        read again, decompressed (:meth:`_whole_stream`)."""
        n0 = self.n
        held: list[_Item] = []
        for item in self.window(start, end, member=True):
            if isinstance(item, QuarantineRecord) and _NOT_CHUNKED in item.reason:
                self.n, self.stopped = n0, False
                yield from self._whole_stream(start, end)
                return
            held.append(item)
        yield from held

    def _whole_stream(self, start: int, end: int) -> Iterator[_Item]:
        """The records of one gzip member holding many, decompressed into a temporary
        file (at most :data:`_STREAM_RATIO` times the member) and read as an
        uncompressed WARC (offsets in the reasons are the decompressed stream's)."""
        cap = _STREAM_RATIO * (end - start) + _SLACK
        with tempfile.TemporaryFile() as tmp:
            d = zlib.decompressobj(31)
            pos = start
            while pos < end and not d.eof:
                chunk = os.pread(self.fd, min(_CHUNK, end - pos), pos)
                if not chunk:
                    break
                pos += len(chunk)
                data = d.decompress(chunk, _OUT)
                while True:
                    tmp.write(data)
                    if tmp.tell() > cap:
                        self.n += 1
                        self.stopped = True
                        yield QuarantineRecord(locator=f"record {self.n}", limit=None, reason=(
                            f"WARC compressed as one stream expands past {_STREAM_RATIO} "
                            "times its size: not read further"))
                        return
                    if not d.unconsumed_tail:
                        break
                    data = d.decompress(d.unconsumed_tail, _OUT)
            tmp.flush()
            size = tmp.tell()
            sub = _Reader(tmp.fileno(), size, _Budget(size))
            sub.n = self.n
            yield from sub.window(0, size, member=False)
            self.n, self.stopped = sub.n, sub.stopped

    def _false_length(self, at: int, end: int) -> _Overrun | None:
        """:func:`_overrun` of the record at ``at``, None when the budget is spent."""
        try:
            return _overrun(self.fd, at, end, self.budget)
        except _TooDense:
            return None

    def window(self, pos: int, end: int, member: bool) -> Iterator[_Item]:
        """The records of ``[pos, end)``, one gzip member (``member``) or uncompressed
        records. A record warcio cannot read (it raises) is quarantined with its offset
        and the reading resumes with the next record: the next member, or the next
        ``WARC/`` line after a record's end."""
        from warcio.archiveiterator import ArchiveIterator  # noqa: PLC0415 - see the docstring
        from warcio.utils import BUFF_SIZE  # noqa: PLC0415

        block = BUFF_SIZE
        while pos < end:
            it = ArchiveIterator(_Window(self.fd, pos, end, self.budget), block_size=block)
            k = self.n + 1  # the record being read when warcio raises
            # warcio writes a record not followed by blank lines to stderr, with its
            # bytes: the reasons of the quarantine say it (see _overrun)
            it.INC_RECORD = ""
            inner = None
            try:
                for rec in it:
                    self.n += 1
                    k = self.n
                    at = max(int(it.offset), pos)
                    over = None if member else _overrun(self.fd, at, end, self.budget)
                    if over is not None:
                        yield _overran(k, at, over)
                        if over.inner is None:
                            self.stopped = True
                            return
                        inner = over.inner
                        break
                    item = _record(rec, self.n)
                    k = self.n + 1
                    yield item
                if inner is None:
                    return
                pos, block = inner, _RESYNC_BLOCK
                continue
            except Exception as exc:  # noqa: BLE001 - warcio on a damaged record raises
                # anything (ArchiveLoadFailed, ValueError, EOFError, AttributeError...)
                at = max(int(it.offset), pos)  # where the record that failed starts
                self.n = k
                over = None if member or isinstance(exc, _TooDense) else \
                    self._false_length(at, end)
                if over is not None:  # warcio failed on the length (10**30 overflows)
                    resume = over.inner
                    yield _overran(k, at, over)
                else:
                    resume = None if isinstance(exc, _TooDense) else (
                        end if member else _next_plain_record(self.fd, at, end))
                    yield QuarantineRecord(locator=f"record {k}", limit=None, reason=_then(
                        f"WARC record {k} (byte {at}) is unreadable: {type(exc).__name__}: "
                        f"{' '.join(str(exc).split())[:200]}", resume))
                resume = resume if resume is not None and at < resume < self.size else None
                if resume is None:
                    self.stopped = True
                    return
                pos, block = resume, _RESYNC_BLOCK


def _responses(fh: BinaryIO) -> Iterator[_Item]:
    """Every record of the WARC: responses, or a skip/quarantine saying why not.

    One damaged record costs that record only, where the file's structure allows it. A
    gzip WARC is read member by member (:func:`_gzip_parts`): warcio reads each whole
    member on its own, each damaged member is one quarantined record (with its offset
    and why), and the reading resumes with the next member that starts a record. In an
    uncompressed WARC a record warcio cannot read (a damaged header) is quarantined and
    the reading resumes with the next ``WARC/`` line that follows a record's end
    (:meth:`_Reader.window`). What is not resynchronised: a file that ends inside a
    record (it is the last one), damage after which no record start is found, and a
    file whose damage would have it read again past :class:`_Budget`: the rest of the
    file is then not read, and the quarantine says so.
    """
    fd = fh.fileno()
    size = os.fstat(fd).st_size
    budget = _Budget(size)
    reader = _Reader(fd, size, budget)
    if os.pread(fd, 2, 0) != b"\x1f\x8b":
        yield from reader.window(0, size, member=False)
        return
    for part in _gzip_parts(fd, size, budget):
        if isinstance(part, _Damage):
            reader.n += 1
            yield _damaged(part, reader.n)
            continue
        yield from reader.member(*part)
        if reader.stopped:
            return


def _digest_ok(digest: str | None, body: bytes) -> bool:
    """True when ``digest`` (any hashlib algorithm, base32 or hex) matches ``body``."""
    if not digest or ":" not in digest:
        return True  # nothing promised
    algo, _, value = digest.partition(":")
    try:
        raw = hashlib.new(algo.lower(), body).digest()
    except ValueError:
        return True  # an algorithm this Python does not know: not checkable
    return value in (base64.b32encode(raw).decode("ascii"), raw.hex())


class WarcImporter:
    """Re-extracts the HTML pages of WARC response records (see the module docstring)."""

    name = "warc"
    version = "1"

    def media_type(self, src: SourceFile) -> str:
        """A WARC file (the capture's ``media_type``); compressed, its bytes are gzip."""
        return "application/gzip" if src.head[:2] == b"\x1f\x8b" else "application/warc"

    def sniff(self, src: SourceFile) -> float:
        """0.95 for a WARC file (plain or gzip), 0 otherwise."""
        return 0.95 if _is_warc(src.head) else 0.0

    def read(self, src: SourceFile) -> Iterable[Record]:
        """Only through :meth:`read_into` (the pages are captures of their own)."""
        yield QuarantineRecord(locator="file", reason="the warc importer writes with "
                                                      "read_into; read alone stores nothing")

    def read_into(self, src: SourceFile, con: duckdb.DuckDBPyConnection,
                  prov: Provenance) -> Generator[Record, None, dict[str, Any]]:
        """Store every 2xx HTML response as a page capture with its records.

        Yields one ``UnitRecord`` (kind ``page``) per response page, a ``SkipRecord`` per
        other record and a ``QuarantineRecord`` per bad one; returns counts.
        """
        captures = CaptureStore(src.path.parents[2], durable=False)
        writer = RecordWriter(con, autoflush=True)
        done = processed_pages(con)
        counts: Counter[str] = Counter()
        with open(src.path, "rb") as fh:
            for item in _responses(fh):
                if not isinstance(item, _Response):
                    yield item
                    continue
                # a payload kept whole is checked against its digest before anything is
                # judged from its content (a changed one may no longer decode at all)
                whole = not item.truncated and len(item.raw) <= _MAX_RAW
                if whole and not _digest_ok(item.digest, item.raw):
                    yield QuarantineRecord(locator=item.locator, field="WARC-Payload-Digest",
                                           reason=f"{item.url}: payload does not hash to "
                                                  f"its WARC-Payload-Digest")
                    continue
                why = self._refused(item)
                if why is not None:
                    counts["skipped"] += 1
                    yield SkipRecord(page_type="warc_response", locator=item.locator,
                                     reason=why)
                    continue
                page = store_page(writer, captures, done, item.body, item.url, item.date,
                                  prov.run_id)
                counts["already" if page.already else "pages"] += 1
                # a page an earlier run stored (the crawl, another WARC) is stored, not
                # stored anew (found by fuzzing: the crawl's WARC ingested into its own
                # workspace reported every page as newly stored)
                yield UnitRecord(locator=item.locator, kind="page", market_id=page.market_id,
                                 already=page.already)
        writer.flush()
        captures.sync()
        return dict(counts)

    @staticmethod
    def _refused(item: _Response) -> str | None:
        """Why a response is not a page to extract, or ``None`` when it is one."""
        if item.truncated:
            return f"response cut short ({item.truncated[:40]})"
        if len(item.raw) > _MAX_RAW:
            return f"payload over {_MAX_RAW} bytes as stored"
        if not 200 <= item.status < 300:
            return f"HTTP {item.status} response"
        if len(item.body) > DEFAULT_MAX_BYTES:
            return f"body over {DEFAULT_MAX_BYTES} bytes"
        if item.media_type and not item.media_type.startswith(_HTML_TYPES):
            return f"not HTML ({item.media_type[:60]})"
        binary = binary_kind(item.body[:65536])
        if binary is not None:  # labelled HTML (a market labels anything text/html)
            return f"not HTML: the body is {binary[0]} (labelled {item.media_type[:60]!r})"
        if not looks_like_html(item.body[:65536]):
            return "body is not HTML"
        return None
