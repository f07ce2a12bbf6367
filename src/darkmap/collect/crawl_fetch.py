"""One HTTP request through the market's SOCKS proxy, and the analyst's session.

Requests go through a ``socks5h://`` proxy (Tor's SOCKS port): the proxy resolves the
host name, the crawling machine never does, so an ``.onion`` name never reaches the
system resolver (``socks5://``, which invites local resolution in other tools, and
plain connections to an ``.onion`` are refused with a clear error). Redirects are not
followed by the client (the crawler decides); bodies are read up to a cap; every
outcome, good or bad, is one :class:`Fetched` that the crawler logs and writes to WARC.

Sessions are handed over by the analyst as a cookie file, Netscape format (what
browser extensions and ``curl -c`` write) or one ``Cookie:`` header line
(:func:`load_cookies`). The crawler sends them, keeps what the market sets, and never
logs in, posts a form or solves a CAPTCHA itself.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from darkmap.errors import BadInputError

__all__ = ["RETRYABLE", "Fetched", "Fetcher", "load_cookies", "proxy_label", "proxy_problem"]

RETRYABLE = frozenset({"timeout", "connect", "http_5xx", "http_429", "truncated"})
"""Outcomes retried with backoff (each counts towards the consecutive-failure stop)."""
_USER_AGENT = "Mozilla/5.0 (Windows NT 10.0; rv:128.0) Gecko/20100101 Firefox/128.0"
"""Tor Browser's (the crawl should look like the analyst's browser, not a bot)."""
_MAX_BODY = 16 * 1024 * 1024


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
    """Why nothing can be fetched through ``proxy``, or None when it takes connections.

    A TCP connection to the proxy's own address (never to a market's): refused (nothing
    listens there: Tor is not running), no answer within ``timeout`` seconds, a proxy
    host name that does not resolve. ``None`` for no proxy.
    """
    if not proxy:
        return None
    p = urlsplit(proxy)
    where = f"{p.hostname}:{p.port or 1080}"
    try:
        with socket.create_connection((p.hostname or "", p.port or 1080), timeout=timeout):
            return None
    except ConnectionRefusedError:
        return f"the proxy at {where} refused the connection (nothing listens there)"
    except TimeoutError:
        return f"the proxy at {where} did not answer within {timeout:g} s"
    except socket.gaierror as exc:
        return f"the proxy at {where} was not found ({exc.strerror})"
    except OSError as exc:
        return f"the proxy at {where} was unreachable ({exc.strerror or exc})"


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
                 user_agent: str = _USER_AGENT) -> None:
        if proxy is not None and not proxy.startswith("socks5h://"):
            raise BadInputError(f"--proxy {proxy_label(proxy)}: use socks5h://host:port (the "
                                "proxy resolves names; the crawling machine must not)")
        self.proxy = proxy
        self.max_body = max_body
        self.cookies = dict(cookies or {})
        self.client = httpx.Client(
            proxy=proxy, timeout=httpx.Timeout(timeout, connect=timeout),
            follow_redirects=False, trust_env=False,
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
        try:
            with self.client.stream("GET", url, headers=headers) as resp:
                out.request_headers = list(resp.request.headers.items())
                out.status, out.reason = resp.status_code, resp.reason_phrase
                out.http_version = resp.http_version
                out.headers = list(resp.headers.items())
                self._keep_cookies(resp)
                out.body = self._read(resp, out, chunks)
        except httpx.TimeoutException as exc:
            out.outcome, out.error = "timeout", f"{type(exc).__name__}: {exc}"
            out.body = b"".join(chunks)
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            out.outcome = "truncated" if out.status is not None else "connect"
            out.error = f"{type(exc).__name__}: {exc}"
            out.body = b"".join(chunks)
        except (httpx.TransportError, OSError) as exc:  # refused, proxy said no, unreachable
            out.outcome, out.error = "connect", f"{type(exc).__name__}: {exc}"
        out.seconds = time.monotonic() - t0
        if out.outcome == "ok" and out.status is not None:
            out.outcome = _status_outcome(out.status)
        return out

    def _read(self, resp: httpx.Response, out: Fetched, chunks: list[bytes]) -> bytes:
        """The body, at most ``max_body`` bytes; a short body is ``truncated``."""
        size = 0
        for chunk in resp.iter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size > self.max_body:
                out.outcome, out.error = "too_big", f"body over {self.max_body} bytes"
                break
        body = b"".join(chunks)
        declared = resp.headers.get("Content-Length")
        if out.outcome == "ok" and declared and declared.isdigit() and int(declared) != len(body):
            out.outcome = "truncated"
            out.error = f"body of {len(body)} bytes, Content-Length {declared}"
        return body

    def _keep_cookies(self, resp: httpx.Response) -> None:
        """Session cookies the market sets (its session refresh) are sent from then on."""
        for value in resp.headers.get_list("set-cookie"):
            name, eq, rest = value.partition("=")
            if eq and name.strip():
                self.cookies[name.strip()] = rest.split(";", 1)[0]


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
