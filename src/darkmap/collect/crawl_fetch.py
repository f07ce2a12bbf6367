"""One HTTP request through the market's SOCKS proxy, and the analyst's session.

Requests go through a ``socks5h://`` proxy (Tor's SOCKS port): the proxy resolves the
host name, the crawling machine never does, so an ``.onion`` name never reaches the
system resolver (``socks5://``, which invites local resolution in other tools, and
plain connections to an ``.onion`` are refused with a clear error). Redirects are not
followed by the client (the crawler decides; a ``Location`` that is no URL is the
outcome ``bad_redirect``); bodies are read up to a cap; every outcome, good or bad, is
one :class:`Fetched` that the crawler logs and writes to WARC.

One request as a whole (the connection to the proxy, the SOCKS handshake, the status
line and headers, the body) ends within :attr:`Fetcher.deadline` seconds: every socket
read and write of it waits at most the time left (:class:`_DeadlineBackend`). httpx's
timeouts are per read, so a market sending one byte of its headers every few seconds
once held a request (and with ``--concurrency N``, N such URLs the whole crawl) forever.

Sessions are handed over by the analyst as a cookie file, Netscape format (what
browser extensions and ``curl -c`` write) or one ``Cookie:`` header line
(:func:`load_cookies`). The crawler sends them, keeps what the market sets, and never
logs in, posts a form or solves a CAPTCHA itself.
"""

from __future__ import annotations

import re
import socket
import threading
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpcore
import httpx
import socksio

from darkmap.errors import BadInputError

__all__ = ["RETRYABLE", "Fetched", "Fetcher", "decode_body", "load_cookies", "proxy_label",
           "proxy_problem", "request_deadline"]

RETRYABLE = frozenset({"timeout", "connect", "http_5xx", "http_429", "truncated"})
"""Outcomes retried with backoff (each counts towards the consecutive-failure stop)."""
_USER_AGENT = "Mozilla/5.0 (Windows NT 10.0; rv:128.0) Gecko/20100101 Firefox/128.0"
"""Tor Browser's (the crawl should look like the analyst's browser, not a bot)."""
_MAX_BODY = 16 * 1024 * 1024
_MIN_DEADLINE = 30.0


def request_deadline(timeout: float) -> float:
    """The total seconds one request may take by default: 4 times ``timeout``, at least
    30 s."""
    return max(4 * timeout, _MIN_DEADLINE)


class _DeadlineExpired(httpcore.ReadTimeout):
    """The request's total deadline passed (raised by a socket read or write of it)."""


_request = threading.local()
"""``at``: the monotonic time the request the current thread makes must end by."""


def _left(timeout: float | None) -> float | None:
    """``timeout`` capped by what is left of the current request's deadline; raises
    :class:`_DeadlineExpired` when nothing is left."""
    at: float | None = getattr(_request, "at", None)
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise _DeadlineExpired("the request's total deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every read and write waits at most until the deadline of
    the request made by the calling thread (a pooled connection serves the request of
    whichever thread uses it)."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _left(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname,
                                                     _left(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.SyncBackend):
    """httpcore's socket backend with every connect, read and write bounded by the
    current request's deadline (the SOCKS handshake included: httpcore reads the
    proxy's replies with no timeout at all)."""

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(super().connect_tcp(host, port, _left(timeout), local_address,
                                                   socket_options))


@dataclass
class Fetched:
    """What one request gave: a response (maybe cut short) or the error instead."""

    target: str
    started_at: datetime
    seconds: float = 0.0
    status: int | None = None
    reason: str = ""
    http_version: str = "HTTP/1.1"
    headers: list[tuple[str, str]] = field(default_factory=list)
    request_headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    outcome: str = "ok"
    error: str | None = None
    decoded: bool = False
    """``body`` is the response's content decoded from its ``Content-Encoding`` (the WARC
    record then says so); False when it is the bytes as sent."""
    cut: str | None = None
    """Why ``body`` is not all the response sent, as ``WARC-Truncated`` says it
    (``length``: over the cap, ``time``: the deadline, ``disconnect``: the connection
    ended early or the body is shorter than its ``Content-Length``); None when ``body``
    is the whole answer as sent (a bomb sent whole is ``too_big`` once decoded, yet its
    record holds every byte that came)."""

    def header(self, name: str) -> str | None:
        """The first response header ``name`` (case-insensitive)."""
        low = name.lower()
        return next((v for k, v in self.headers if k.lower() == low), None)


def proxy_label(proxy: str | None) -> str:
    """The proxy as written to WARC and logs: credentials (Tor stream isolation) left out."""
    if not proxy:
        return "direct"
    p = urlsplit(proxy)
    return urlunsplit((p.scheme, f"{p.hostname}:{p.port}" if p.port else p.hostname or "",
                       "", "", ""))


def proxy_problem(proxy: str | None, timeout: float = 10.0) -> str | None:
    """Why nothing can be fetched through ``proxy``, or None when it speaks SOCKS5.

    A TCP connection to the proxy's own address (never to a market's) and a SOCKS5
    greeting (RFC 1928: the methods offered, no-authentication or user/password when the
    URL has credentials; the proxy must choose one of them), within ``timeout`` seconds:
    refused (nothing listens there: Tor is not running), no answer, a proxy host name
    that does not resolve, or an answer that is no SOCKS5 (Tor's HTTPTunnelPort, an HTTP
    proxy: a request through it once crashed the crawler). ``None`` for no proxy.
    """
    if not proxy:
        return None
    p = urlsplit(proxy)
    where = f"{p.hostname}:{p.port or 1080}"
    methods = b"\x00\x02" if p.username is not None else b"\x00"
    try:
        with socket.create_connection((p.hostname or "", p.port or 1080),
                                      timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(b"\x05" + bytes([len(methods)]) + methods)
            reply = b""
            deadline = time.monotonic() + timeout
            while len(reply) < 2 and time.monotonic() < deadline:
                chunk = sock.recv(2 - len(reply))
                if not chunk:
                    break
                reply += chunk
    except ConnectionRefusedError:
        return f"the proxy at {where} refused the connection (nothing listens there)"
    except TimeoutError:
        return f"the proxy at {where} did not answer within {timeout:g} s"
    except socket.gaierror as exc:
        return f"the proxy at {where} was not found ({exc.strerror})"
    except OSError as exc:
        return f"the proxy at {where} was unreachable ({exc.strerror or exc})"
    if len(reply) == 2 and reply[0] == 5 and reply[1] in methods:
        return None
    if len(reply) == 2 and reply[0] == 5:
        return (f"the proxy at {where} accepts none of the SOCKS5 authentication methods "
                "offered (none, or user and password from --proxy)")
    return (f"the proxy at {where} did not answer as a SOCKS5 proxy "
            f"({'it closed the connection' if not reply else f'it answered {reply!r}'}): "
            "--proxy must be Tor's SocksPort, not its HTTPTunnelPort or an HTTP proxy")


def load_cookies(path: Path, hosts: list[str]) -> dict[str, str]:
    """The session cookies in ``path`` for the market's ``hosts``.

    Netscape format (tab-separated: domain, subdomains flag, path, secure, expiry, name,
    value; ``#HttpOnly_`` prefixes allowed) keeps the cookies of those hosts; a file
    holding one ``Cookie: a=1; b=2`` line (or just ``a=1; b=2``) applies to all of them.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read the cookie file: {exc.strerror}") from exc
    own = {h.lower() for h in hosts}
    jar: dict[str, str] = {}
    netscape = False
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#HttpOnly_"):
            line = line[len("#HttpOnly_"):]
        if not line or line.startswith("#"):
            netscape = netscape or "Netscape" in line
            continue
        parts = line.split("\t")
        if len(parts) == 7:
            netscape = True
            if parts[0].lstrip(".").lower() in own:
                jar[parts[5]] = parts[6]
            continue
        if not netscape:
            line = line.split(":", 1)[1] if line.lower().startswith("cookie:") else line
            for pair in line.split(";"):
                name, eq, value = pair.strip().partition("=")
                if eq and name:
                    jar[name] = value
    if not jar:
        raise BadInputError(f"{path}: no cookie for {', '.join(sorted(own))} (Netscape cookie "
                            "file or one `Cookie: name=value` line expected)")
    return jar


class Fetcher:
    """GET requests through one proxy with one session (thread-safe: one per crawl)."""

    def __init__(self, proxy: str | None, cookies: dict[str, str] | None = None,
                 timeout: float = 60.0, max_body: int = _MAX_BODY,
                 user_agent: str = _USER_AGENT, deadline: float | None = None) -> None:
        if proxy is not None and not proxy.startswith("socks5h://"):
            raise BadInputError(f"--proxy {proxy_label(proxy)}: use socks5h://host:port (the "
                                "proxy resolves names; the crawling machine must not)")
        self.proxy = proxy
        self.max_body = max_body
        self.deadline = deadline if deadline is not None else request_deadline(timeout)
        """Seconds one request may take in all, from the connection to the proxy to the
        last byte of the body (``timeout`` bounds each read; a body, and response
        headers, sent a byte at a time had no bound)."""
        self.cookies = dict(cookies or {})
        self._held = threading.local()  # a redirect's headers as received (_hold_location)
        transport = httpx.HTTPTransport(proxy=proxy, trust_env=False)
        pool = transport._pool  # httpx takes no network backend itself: set it on its pool
        if not isinstance(getattr(pool, "_network_backend", None), httpcore.SyncBackend):
            raise RuntimeError("httpx/httpcore changed: no network backend to bound requests")
        pool._network_backend = _DeadlineBackend()
        self.client = httpx.Client(
            transport=transport, timeout=httpx.Timeout(timeout, connect=timeout),
            follow_redirects=False, trust_env=False,
            event_hooks={"response": [self._hold_location]},
            headers={"User-Agent": user_agent, "Accept-Encoding": "identity",
                     "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8",
                     "Accept-Language": "en-US,en;q=0.5"})

    def close(self) -> None:
        """Close the connections."""
        self.client.close()

    def fetch(self, url: str) -> Fetched:
        """GET ``url``; never raises for network trouble (it is in ``outcome``)."""
        host = (urlsplit(url).hostname or "").lower()
        if self.proxy is None and host.endswith(".onion"):
            raise BadInputError(f"{host}: an onion address needs --proxy socks5h://... "
                                "(it would otherwise be looked up by the system resolver)")
        out = Fetched(target=url, started_at=datetime.now(UTC).replace(tzinfo=None))
        t0 = time.monotonic()
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} \
            if self.cookies else {}
        chunks: list[bytes] = []  # what came, kept when the body is cut short
        self._held.headers = None
        _request.at = t0 + self.deadline
        try:
            with self.client.stream("GET", url, headers=headers) as resp:
                # each header line as sent, a repeated one (Set-Cookie) as often as it came:
                # .items() joined them with commas, so the WARC held one line for two
                out.request_headers = list(resp.request.headers.multi_items())
                out.status, out.reason = resp.status_code, resp.reason_phrase
                out.http_version = resp.http_version
                out.headers = list((self._held.headers or resp.headers).multi_items())
                self._keep_cookies(resp)
                self.client.cookies.clear()  # the session is ours (above), not httpx's jar
                out.body = self._read(resp, out, chunks)
        except httpx.TimeoutException as exc:
            out.outcome, out.error = "timeout", f"{type(exc).__name__}: {exc}"
            out.body = b"".join(chunks)
            out.cut = "time" if out.status is not None else None
            if isinstance(exc.__cause__, _DeadlineExpired) or (
                    time.monotonic() - t0 >= self.deadline):
                size = len(out.body)
                out.error = (f"no response within {self.deadline:g} s (the total deadline "
                             "of a request: the status line and headers never ended)"
                             if out.status is None else
                             f"body not complete after {self.deadline:g} s ({size} bytes)")
        except socksio.SOCKSError as exc:
            # the proxy's answer is no SOCKS5 (an HTTP proxy, Tor's HTTPTunnelPort, a
            # proxy that closed during the handshake): it escaped httpx and stopped the
            # crawl with a traceback; now a failed connection, after which the crawler
            # checks the proxy itself
            out.outcome = "connect"
            out.error = f"the proxy's answer is no SOCKS5 ({type(exc).__name__}: {exc})"[:500]
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            out.outcome = "truncated" if out.status is not None else (
                "bad_response" if _malformed(exc) else "connect")
            out.error = f"{type(exc).__name__}: {exc}"[:500]
            out.body = b"".join(chunks)
            out.cut = "disconnect" if out.outcome == "truncated" else None
        except (httpx.TransportError, OSError) as exc:  # refused, proxy said no, unreachable
            out.outcome, out.error = "connect", f"{type(exc).__name__}: {exc}"
        except (httpx.HTTPError, UnicodeError, ValueError) as exc:
            # anything else the market's answer makes the client raise (a header it cannot
            # encode or parse): this URL fails, the crawl goes on (found by fuzzing: such an
            # error stopped the crawl, and its resume, for good)
            out.outcome, out.error = "bad_response", f"{type(exc).__name__}: {exc}"[:500]
            out.body = b"".join(chunks)
        finally:
            _request.at = None
        out.seconds = time.monotonic() - t0
        if out.outcome == "ok" and out.status is not None:
            out.outcome = _status_outcome(out.status)
        where = out.header("Location")
        if out.outcome == "redirect" and where is not None:
            problem = location_problem(where, url)
            if problem is not None:
                out.outcome = "bad_redirect"
                out.error = f"Location {where[:200]!r} is no URL: {problem}"[:500]
        return out

    def _hold_location(self, response: httpx.Response) -> None:
        """Response hook: a redirect's ``Location`` is taken out of the response before
        the client reads it, its headers as received kept for :meth:`fetch`. The client
        does not follow redirects, yet it makes the request of one; a ``Location`` that
        is no URL (``http://[::1/x``) made it raise (found by fuzzing: the answer was
        lost, counted ``connect``, retried as a network failure, and not kept in WARC)."""
        if response.has_redirect_location:
            self._held.headers = response.headers.copy()
            del response.headers["Location"]

    def _read(self, resp: httpx.Response, out: Fetched, chunks: list[bytes]) -> bytes:
        """The body as sent, at most ``max_body`` bytes and within :attr:`deadline`
        seconds; a short body is ``truncated``. Then decoded from its
        ``Content-Encoding`` (:func:`decode_body`), the decoded bytes bounded too: a body
        over the cap once decoded is ``too_big``, kept whole as sent (not :attr:`~Fetched.cut`)."""
        size = 0
        for chunk in resp.iter_raw():  # each read bounded by the request's deadline
            chunks.append(chunk)
            size += len(chunk)
            if size > self.max_body:
                out.outcome, out.error = "too_big", f"body over {self.max_body} bytes"
                out.cut = "length"
                break
        body = b"".join(chunks)
        declared = resp.headers.get("Content-Length", "").strip()
        if (out.outcome == "ok" and declared.isascii() and declared.isdigit()
                and int(declared) != len(body)):
            out.outcome = "truncated"
            out.error = f"body of {len(body)} bytes, Content-Length {declared}"
            out.cut = "disconnect"
        if out.outcome != "ok":
            return body
        decoded, problem = decode_body(body, resp.headers.get("Content-Encoding"),
                                       self.max_body)
        if problem is not None:
            out.outcome, out.error = problem
            return body
        out.decoded = decoded is not body
        return decoded

    def _keep_cookies(self, resp: httpx.Response) -> None:
        """Session cookies the market sets (its session refresh) are sent from then on;
        one whose name or value is not printable ASCII is not (no request could carry it:
        found by fuzzing, such a cookie made every later request of the crawl fail)."""
        for value in resp.headers.get_list("set-cookie"):
            name, eq, rest = value.partition("=")
            name, kept = name.strip(), rest.split(";", 1)[0]
            if eq and name and _COOKIE_TEXT.match(name) and _COOKIE_TEXT.match(kept):
                self.cookies[name] = kept


_COOKIE_TEXT = re.compile(r"[!#-+\--:<-\[\]-~]*\Z")
"""A cookie name or value that a request can carry: printable ASCII without space, quote,
comma, semicolon or backslash."""
_CODINGS = {"gzip": 47, "x-gzip": 47, "deflate": 15}  # zlib wbits (47: gzip or zlib)
_MAX_CODINGS = 2


def decode_body(body: bytes, encoding: str | None, limit: int
                ) -> tuple[bytes, tuple[str, str] | None]:
    """``body`` decoded from the codings ``encoding`` lists (the last applied first), and
    None; or ``body`` as it is and (outcome, error) when it cannot be: a coding darkmap
    does not read or more than two (``bad_encoding``), bytes that do not decode
    (``bad_encoding``), or more than ``limit`` bytes once decoded (``too_big``: a
    decompression bomb stops there, never expanded in memory). The crawler asks for
    ``identity``, which a market may ignore."""
    codings = [c.strip().lower() for c in (encoding or "").split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        return body, None
    if len(codings) > _MAX_CODINGS or any(c not in _CODINGS for c in codings):
        return body, ("bad_encoding", f"Content-Encoding {encoding[:80]!r} not read"
                      if encoding else "Content-Encoding not read")
    out = body
    for c in reversed(codings):
        try:
            out = _inflate(out, _CODINGS[c], limit)
        except zlib.error as exc:
            return body, ("bad_encoding", f"Content-Encoding {c}: {exc}"[:300])
        except OverflowError:
            return body, ("too_big", f"body over {limit} bytes once decoded ({c})")
    return out, None


def _inflate(data: bytes, wbits: int, limit: int) -> bytes:
    """``data`` decompressed, member after member; OverflowError past ``limit`` bytes."""
    parts: list[bytes] = []
    size = 0
    while data:
        d = zlib.decompressobj(wbits)
        try:
            piece = d.decompress(data, limit + 1 - size)
        except zlib.error:
            if wbits != 15 or parts:
                raise
            d = zlib.decompressobj(-15)  # "deflate" sent raw, without zlib's wrapper
            piece = d.decompress(data, limit + 1 - size)
        size += len(piece)
        parts.append(piece)
        if size > limit or d.unconsumed_tail:
            raise OverflowError
        if not d.eof:
            raise zlib.error("compressed data cut short")
        data = d.unused_data.lstrip(b"\0") if wbits == 47 else b""
    return b"".join(parts)


_CLOSED = ("closed", "no response line received")
"""Words of h11's errors that say the peer closed the connection, not that it sent
something h11 refuses."""


def _malformed(exc: BaseException) -> bool:
    """Whether the HTTP parser (h11) refused what the market sent, rather than the
    connection failing: an answer, so the URL fails (``bad_response``) without the
    retries a network failure gets. Any refusal of h11's, found among the exception's
    causes (httpx wraps httpcore's error, which wraps h11's): a NUL in a header, a
    ``Transfer-Encoding`` other than ``chunked`` or two of them, two different
    ``Content-Length``, headers over h11's 64 KiB. A peer that closed the connection
    (h11's "peer ... closed" and "no response line received", httpcore's "Server
    disconnected") stays a network failure. (Only messages starting "illegal",
    "Invalid" and "Only Transfer-Encoding" were refusals: the rest were ``connect``,
    retried as network failures.)"""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if type(cause).__module__.split(".", 1)[0] == "h11" and \
                type(cause).__name__.endswith("ProtocolError"):
            return not any(word in str(cause) for word in _CLOSED)
        cause = cause.__cause__ or cause.__context__
    return False


def location_problem(location: str, base: str) -> str | None:
    """Why a redirect's ``location`` (on the page ``base``) is no URL, or None: what the
    HTTP client or the standard library refuses to read as one (a bad IPv6 address or
    port, a control character)."""
    try:
        httpx.URL(base).join(location.strip())
        absolute = urlsplit(urljoin(base, location.strip()))
        absolute.port  # noqa: B018 - it raises on a bad port
    except (httpx.InvalidURL, ValueError, UnicodeError) as exc:
        return f"{type(exc).__name__}: {exc}"[:300]
    return None


def _status_outcome(status: int) -> str:
    """The outcome of a complete response by its status code."""
    if 200 <= status < 300:
        return "ok"
    if status == 429:
        return "http_429"
    if status >= 500:
        return "http_5xx"
    if 300 <= status < 400:
        return "redirect"
    if status in (404, 410):
        return "gone"
    if status in (401, 403):
        return "refused"
    return "http_4xx"
