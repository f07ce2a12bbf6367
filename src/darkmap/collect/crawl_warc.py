"""The crawl's WARC files (ISO 28500, WARC/1.1, one gzip member per record; ``warcio``).

Each crawler process writes a new file (``<crawl>/<UTC time>-<pid>-<run>.warc.gz``) that opens
with a ``warcinfo`` record and holds, per request made: the ``request`` record, then the
``response`` record as received, or a ``metadata`` record naming the error
when no response came (a timeout, a refused connection). In both, the value of every
session header (``Cookie``, ``Set-Cookie``, ``Authorization``, a header whose name says
session, token or auth: :func:`redact_header`) is replaced by a note naming the cookies:
the session is the analyst's secret, not evidence, and a market rotating it with
``Set-Cookie`` once had the new session written in clear. Every record carries the UTC
time of the request (``WARC-Date``, microseconds), the URL requested (the mirror used,
``WARC-Target-URI``), the canonical URL (``WARC-X-Canonical-URI``), the mirror and the
proxy (``WARC-X-Mirror``, ``WARC-X-Proxy``), and SHA-256 block and payload digests; a
response whose payload is not all that was sent is marked ``WARC-Truncated`` with the
WARC 1.1 reason (:attr:`Fetched.cut`: ``length`` over the cap, ``time`` at the
deadline, ``disconnect``); an answer kept whole is not, whatever its outcome (a
decompression bomb sent whole: ``too_big``, its compressed body all there). A body
whose content encoding was undone by the client is stored decoded (the original header kept as
``X-Archive-Orig-Content-Encoding``), so the payload digest is the sha256 of the
capture.

:meth:`WarcLog.sync` flushes and fsyncs the file; the crawler calls it before each commit
of the frontier, so the database never records a fetch whose WARC records could still
be lost.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from io import BytesIO
from pathlib import Path
from typing import Any, BinaryIO

from warcio.statusandheaders import StatusAndHeaders
from warcio.utils import Digester
from warcio.warcwriter import WARCWriter

from darkmap.collect.crawl_fetch import Fetched
from darkmap.importers.warc import CANONICAL_HEADER, MIRROR_HEADER, PROXY_HEADER

__all__ = ["WarcLog", "redact_header", "warc_date"]

_HOP_BY_HOP = frozenset({"transfer-encoding"})
_DECODED = frozenset({"content-encoding", "content-length"})


class _Sha256Writer(WARCWriter):  # type: ignore[misc]  # warcio has no type hints
    """``warcio``'s writer with SHA-256 digests (it defaults to SHA-1)."""

    @staticmethod
    def _create_digester() -> Digester:
        return Digester("sha256")


def warc_date(at: datetime) -> str:
    """``WARC-Date`` of a naive UTC time: ISO 8601 with microseconds and ``Z``."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class WarcLog:
    """Appends the records of one crawler process to one new WARC file."""

    def __init__(self, path: Path, proxy: str, info: dict[str, str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.proxy = proxy
        self._fh: BinaryIO = open(path, "xb")
        self._writer = _Sha256Writer(self._fh, gzip=True, warc_version="WARC/1.1")
        fields = {"software": "darkmap crawl", "format": "WARC File Format 1.1", **info}
        rec = self._writer.create_warcinfo_record(path.name, fields)
        self._writer.write_record(rec)

    def write(self, got: Fetched, canonical: str, mirror: str) -> int:
        """Write the records of one request; return the offset of its first record."""
        offset = self._fh.tell()
        common = {"WARC-Date": warc_date(got.started_at), CANONICAL_HEADER: canonical,
                  MIRROR_HEADER: mirror, PROXY_HEADER: self.proxy}
        req_headers = [(k, redact_header(k, v)) for k, v in got.request_headers] or [
            ("Host", mirror)]
        path = got.target.split(mirror, 1)[-1] or "/"
        req = self._writer.create_warc_record(
            got.target, "request", payload=BytesIO(b""), length=0, warc_headers_dict=dict(common),
            http_headers=StatusAndHeaders(f"GET {path} HTTP/1.1", req_headers,
                                          is_http_request=True))
        self._writer.write_record(req)
        req_id = req.rec_headers.get_header("WARC-Record-ID")
        if got.status is not None:
            # the record holds the body without its transfer coding, and without its
            # content coding when the crawler decoded it (then its length is another too)
            moved = _HOP_BY_HOP | _DECODED if got.decoded else _HOP_BY_HOP
            headers = [(f"X-Archive-Orig-{k}" if k.lower() in moved else k,
                        redact_header(k, v)) for k, v in got.headers]
            extra: dict[str, Any] = {**common, "WARC-Concurrent-To": req_id}
            if got.cut is not None:  # the payload is not all that was sent
                extra["WARC-Truncated"] = got.cut
            resp = self._writer.create_warc_record(
                got.target, "response", payload=BytesIO(got.body), length=len(got.body),
                warc_headers_dict=extra,
                http_headers=StatusAndHeaders(f"{got.status} {got.reason}", headers,
                                              protocol=got.http_version))
            self._writer.write_record(resp)
        else:
            note = (f"outcome: {got.outcome}\nerror: {got.error}\nseconds: {got.seconds:.3f}\n"
                    ).encode("utf-8", "replace")
            meta = self._writer.create_warc_record(
                got.target, "metadata", payload=BytesIO(note), length=len(note),
                warc_headers_dict={**common, "WARC-Concurrent-To": req_id,
                                   "Content-Type": "text/plain; charset=utf-8"})
            self._writer.write_record(meta)
        return offset

    def sync(self) -> None:
        """Flush the file to disk (before the frontier that refers to it commits)."""
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        """Sync and close the file."""
        if not self._fh.closed:
            self.sync()
            self._fh.close()


_SESSION_HEADERS = frozenset({"cookie", "cookie2", "set-cookie", "set-cookie2",
                              "authorization", "proxy-authorization", "www-authenticate"})
_SESSION_WORDS = re.compile(r"(?i)session|token|auth|csrf|xsrf")


def redact_header(name: str, value: str) -> str:
    """A header as written to WARC: a session header's value left out.

    ``Cookie`` keeps the cookies' names (``[redacted session: sid, lang]``), ``Set-Cookie``
    the cookie's name and attributes (``[redacted session: sid]; Path=/; HttpOnly``);
    ``Authorization`` and any header whose name says session, token, auth, csrf or xsrf
    keep nothing but the note (``[redacted session]``)."""
    low = name.lower()
    if low in ("cookie", "cookie2"):
        names = [p.split("=", 1)[0].strip() for p in value.split(";")]
        return "[redacted session: " + ", ".join(n for n in names if n) + "]"
    if low in ("set-cookie", "set-cookie2"):
        first, sep, attributes = value.partition(";")
        cookie = first.split("=", 1)[0].strip()
        return f"[redacted session: {cookie}]" + (f";{attributes}" if sep else "")
    if low in _SESSION_HEADERS or _SESSION_WORDS.search(low):
        return "[redacted session]"
    return value
