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
hash to its ``WARC-Payload-Digest``, and the tail of a WARC cut short by a killed
crawler, are quarantined.

warcio and the template engine are imported when a WARC or a page is read, not with this
module: choosing the importer of any file loads every importer (:mod:`darkmap.plugins`).
"""

from __future__ import annotations

import base64
import hashlib
import io
import zlib
from collections import Counter
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO

import duckdb

from darkmap.capture.content_store import CaptureStore
from darkmap.extract.decode import DEFAULT_MAX_BYTES, looks_like_html
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


def _gzip_damage(fh: BinaryIO) -> tuple[str, int, str] | None:
    """Damage to a gzip-compressed WARC, as (kind, offset of the member, what): ``cut``
    when the file ends inside its last member (a file cut short, which warcio may read
    as a clean end), ``bad`` when a member does not decompress or fails its check (a
    CRC: warcio then prints a message and stops, as if the file ended there: found by
    fuzzing, a record was stored cut short and those after it lost, without a word).
    None for a whole or uncompressed file. Bounded memory: 16 KiB of input at a time."""
    pos = fh.tell()
    fh.seek(0)
    try:
        if fh.read(2) != b"\x1f\x8b":
            return None
        fh.seek(0)
        d = zlib.decompressobj(31)
        start = offset = 0
        fed = False
        while chunk := fh.read(16384):
            data = chunk
            offset += len(chunk)
            while data:
                try:
                    d.decompress(data)
                except zlib.error as exc:
                    return "bad", start, str(exc)
                fed = True
                if not d.eof:
                    break
                data = d.unused_data
                start = offset - len(data)
                d, fed = zlib.decompressobj(31), False
        return ("cut", start, "") if fed else None
    finally:
        fh.seek(pos)


def _record(rec: Any, n: int) -> _Response | QuarantineRecord | SkipRecord:
    """One WARC record: a response, or a skip/quarantine saying why not."""
    loc = f"record {n}"
    if not rec.rec_type or not rec.rec_headers.get_header("WARC-Record-ID"):
        return QuarantineRecord(locator=loc, reason=f"WARC cut short in record {n} "
                                                    "(no type or record id)")
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


def _responses(fh: BinaryIO) -> Generator[_Response | QuarantineRecord | SkipRecord,
                                          None, None]:
    """Every record of the WARC: responses, or a skip/quarantine saying why not.

    In a file cut short inside its last compressed record (:func:`_gzip_damage`) that
    record is quarantined, whatever its type: warcio may read part of it as a whole
    record, or nothing of it, without an error. Each record is held until the next one
    is read, so the one that started at the cut is known.
    """
    from warcio.archiveiterator import ArchiveIterator  # noqa: PLC0415 - see the docstring

    damage = _gzip_damage(fh)
    cut_at = damage[1] if damage is not None and damage[0] == "cut" else None
    bad = damage if damage is not None and damage[0] == "bad" else None
    it = ArchiveIterator(fh)
    n = 0
    failing = 1  # the record being read when warcio raises
    pending: _Response | QuarantineRecord | SkipRecord | None = None
    pending_at = -1

    def checked(k: int) -> _Response | QuarantineRecord | SkipRecord | None:
        """The held record (number ``k``), or its quarantine when its gzip member is the
        one that fails its check: warcio gave what it could read of it."""
        if bad is None or pending is None or pending_at != bad[1]:
            return pending
        return QuarantineRecord(locator=f"record {k}", limit=None, reason=(
            f"WARC record {k} is damaged: its compressed data (byte {bad[1]}) fails its "
            f"check ({bad[2]}); what reads of it is not what was written")[:500])

    try:
        for rec in it:
            n += 1
            failing = n
            item = _record(rec, n)
            failing = n + 1
            if (held := checked(n - 1)) is not None:
                yield held
            pending, pending_at = item, int(it.get_record_offset())
            if isinstance(item, QuarantineRecord):
                yield item
                return
    except Exception as exc:  # noqa: BLE001 - warcio on a cut record raises anything
        # (ArchiveLoadFailed, zlib.error, EOFError, AttributeError on a header cut off...)
        if (held := checked(failing - 1)) is not None:
            yield held
        yield QuarantineRecord(locator=f"record {failing}", limit=None,
                               reason=f"WARC cut short or unreadable after record "
                                      f"{failing - 1}: {type(exc).__name__}: {exc}"[:500])
        return
    if bad is not None:
        if (held := checked(n)) is not None:
            yield held
        yield QuarantineRecord(locator=f"record {n + 1}", limit=None, reason=(
            f"WARC unreadable from byte {bad[1]} ({bad[2]}): any record after record {n} "
            "is not read")[:500])
        return
    if cut_at is not None and pending is not None and pending_at == cut_at:
        yield QuarantineRecord(locator=f"record {n}", limit=None,
                               reason=f"WARC cut short inside record {n} (its compressed "
                                      "data ends early): the record is incomplete")
        return
    if pending is not None:
        yield pending
    if cut_at is not None:
        yield QuarantineRecord(locator=f"record {n + 1}", limit=None,
                               reason=f"WARC cut short inside record {n + 1} (byte "
                                      f"{cut_at}: its compressed data ends early)")


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
        if not looks_like_html(item.body[:65536]):
            return "body is not HTML"
        return None
