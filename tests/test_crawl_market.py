"""The test market of the crawler: the simulator's world served over real HTTP, reached
through a real SOCKS5 proxy on loopback.

:class:`MarketSite` serves the saved pages of one simulated market at the URLs its pages
link to (``listing.php?id=...``, ``/vendor/<name>``...), plus a home page linking every
category, with what live markets do to crawlers: a session cookie required (else the
login page), sessions that expire after N requests ("session expired"), a CAPTCHA page
and an anti-DDoS queue at chosen requests, and faults injected on the first request of
chosen URLs (a timeout: no answer at all; 503; 429; a body cut short; a slow body sent
in pieces; a redirect whose ``Location`` is no URL). :class:`SocksProxy` is a SOCKS5
server (RFC 1928, CONNECT, no authentication) mapping onion names to loopback ports and
recording every name asked.

The tests at the end check the harness itself; tests/test_crawl.py crawls it. bench/crawl.py
imports this module.
"""

from __future__ import annotations

import html
import re
import select
import shutil
import socket
import socketserver
import struct
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import pytest

from darkmap.simulate.params import SimParams
from darkmap.simulate.run import simulate
from darkmap.simulate.world import market_onion

__all__ = ["BAD_LOCATION", "BAD_REDIRECT_BODY", "MarketSite", "SocksProxy", "make_world",
           "page_files"]

WORLD_PARAMS = SimParams(vendors=30, markets=4, chain=False, orders_per_listing=25,
                         listings_per_account=6)
WORLD_SEED = 7
INTERSTITIAL_FILES = {"login.html", "captcha.html", "signin.html", "queue.html"}
DEFAULTS = {("page", "1"), ("p", "1")}
EXPIRED_NOTE = b'<p class="notice">Your session has expired. Please log in again.</p>'
BAD_LOCATION = "http://[::1/x"
"""The ``Location`` of the ``bad_redirect`` fault: no URL (an IPv6 address left open)."""
BAD_REDIRECT_BODY = b"<html><head><title>302 Found</title></head><body>moved</body></html>"


def make_world(out: Path) -> Path:
    """Simulate the test world into ``out`` (once per folder); return its pages folder."""
    if not (out / "pages").exists():
        if out.exists():
            shutil.rmtree(out)
        simulate(out, WORLD_SEED, WORLD_PARAMS)
    return out / "pages"


def page_files(pages: Path, market: str) -> list[Path]:
    """The market's saved pages that carry evidence (login and CAPTCHA pages left out)."""
    return sorted(p for p in (pages / market).rglob("*.html") if p.name not in INTERSTITIAL_FILES)


def _key(path: str, query: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """How the site matches a request: path unquoted, query sorted, defaults dropped."""
    items = tuple(sorted(set(parse_qsl(query, keep_blank_values=True)) - DEFAULTS))
    return unquote(path).lstrip("/"), items


def _vendor_name(data: bytes) -> str:
    m = re.search(rb'data-vendor="([^"]*)"', data)
    assert m is not None
    return html.unescape(m.group(1).decode("utf-8"))


def _url_of(rel: str, data: bytes) -> str:
    """The URL a saved page lives at on the live market (from its saved path)."""
    patterns = [
        (r"listing/(.+)\.html", lambda m: f"listing.php?id={m[1]}"),
        (r"user/(\d+)\.html", lambda m: f"user.php?id={m[1]}"),
        (r"feedback/(\d+)_(\d+)\.html", lambda m: f"feedback.php?id={m[1]}&page={m[2]}"),
        (r"category/(.+)_(\d+)\.html", lambda m: f"category.php?c={m[1]}&page={m[2]}"),
        (r"product/(.+)\.html", lambda m: f"product/{m[1]}"),
        (r"vendor/\d+\.html", lambda m: f"vendor/{quote(_vendor_name(data))}"),
        (r"reviews/\d+-(\d+)\.html",
         lambda m: f"vendor/{quote(_vendor_name(data))}/reviews?p={m[1]}"),
        (r"browse/(.+)-(\d+)\.html", lambda m: f"browse/{m[1]}?p={m[2]}"),
    ]
    for pat, make in patterns:
        m = re.fullmatch(pat, rel)
        if m:
            return make(m)
    raise AssertionError(f"unknown saved page {rel}")


class MarketSite:
    """One simulated market as a live web site (see the module docstring)."""

    def __init__(self, pages: Path, market: str, *, session: str | None = None,
                 expire_after: int | None = None, captcha_at: frozenset[int] = frozenset(),
                 queue_at: frozenset[int] = frozenset(), forbid_at: frozenset[int] = frozenset(),
                 faults: dict[str, str] | None = None) -> None:
        self.market = market
        self.onion = market_onion(market)
        self.mirror = market_onion(market + "-mirror")
        folder = pages / market
        self.classic = (folder / "login.html").exists()
        self.pages: dict[tuple[str, tuple[tuple[str, str], ...]], bytes] = {}
        self.urls: dict[str, Path] = {}
        for path in page_files(pages, market):
            data = path.read_bytes()
            url = _url_of(path.relative_to(folder).as_posix(), data)
            self.urls[url] = path
            self.pages[_key(*(url.split("?", 1) + [""])[:2])] = data
        self.login = (folder / ("login.html" if self.classic else "signin.html")).read_bytes()
        self.captcha = (folder / ("captcha.html" if self.classic else "queue.html")).read_bytes()
        self.queue_page = (b"<html><head><title>DDoS protection</title></head><body><h1>"
                           b"Checking your browser</h1><p>You are in the queue.</p></body>"
                           b"</html>")
        self.home = self._home()
        self.session = session
        self.expire_after = expire_after
        self.captcha_at, self.queue_at, self.forbid_at = captcha_at, queue_at, forbid_at
        self.faults = {_key(*(u.split("?", 1) + [""])[:2]): f for u, f in (faults or {}).items()}
        self.lock = threading.Lock()
        self.requests = 0
        self.session_uses: Counter[str] = Counter()
        self.expired: set[str] = set()
        self.served: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()
        self.faulted: set[str] = set()
        self.hosts_seen: Counter[str] = Counter()
        self.posts = 0
        self.inflight = self.max_inflight = 0
        self.server: ThreadingHTTPServer | None = None

    def _home(self) -> bytes:
        cats = sorted({u.split("&", 1)[0] for u in self.urls if u.startswith("category.php")}
                      | {u.split("?", 1)[0] for u in self.urls if u.startswith("browse/")})
        links = "".join(f'<li><a href="{html.escape(c if self.classic else "/" + c)}">{c}</a>'
                        "</li>" for c in cats)
        return (f"<html><head><title>Home</title></head><body><h1>Welcome</h1><ul>{links}"
                "</ul></body></html>").encode()

    # -- the site ---------------------------------------------------------------------

    def start(self) -> int:
        """Serve on a free loopback port in a thread; return the port."""
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                site.handle(self)

            def do_POST(self) -> None:  # a crawler must never post (log in, order, message)
                site.posts += 1
                MarketSite._send(self, 405, b"no")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return int(self.server.server_address[1])

    def stop(self) -> None:
        """Stop serving."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def new_session(self) -> str:
        """A fresh valid session token (what the analyst's login gives)."""
        with self.lock:
            self.session = f"s{self.requests}x{len(self.expired)}"
            return self.session

    def _verdict(self, req: BaseHTTPRequestHandler) -> tuple[str, bytes | None]:
        """What to answer: a page, an interstitial, a fault, or 404."""
        parts = urlsplit(req.path)
        url = parts.path.lstrip("/") + (f"?{parts.query}" if parts.query else "")
        with self.lock:
            self.requests += 1
            n = self.requests
            self.hosts_seen[(req.headers.get("Host") or "").split(":")[0]] += 1
            if self.session is not None:
                cookie = req.headers.get("Cookie") or ""
                token = dict(p.strip().partition("=")[::2] for p in cookie.split(";")
                             if "=" in p).get("sid")
                if token in self.expired:
                    return "expired", self.login.replace(b"<body", EXPIRED_NOTE + b"<body", 1)
                if token != self.session:
                    return "login", self.login
                self.session_uses[token] += 1
                if self.expire_after and self.session_uses[token] > self.expire_after:
                    self.expired.add(token)
                    return "expired", self.login.replace(b"<body", EXPIRED_NOTE + b"<body", 1)
            if n in self.captcha_at:
                return "captcha", self.captcha
            if n in self.queue_at:
                return "queue", self.queue_page
            if n in self.forbid_at:
                return "403", b"<html><head><title>Forbidden</title></head></html>"
            if parts.path in ("/", "/index.php"):
                return "page", self.home
            body = self.pages.get(_key(parts.path, parts.query))
            if body is None:
                return "missing", None
            fault = self.faults.get(_key(parts.path, parts.query))
            if fault and url not in self.faulted:
                self.faulted.add(url)
                self.injected[fault] += 1
                return fault, body
            self.served[url] += 1
            return "page", body

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        """Answer one GET (and count how many are answered at once)."""
        with self.lock:
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            self._answer(req)
        finally:
            with self.lock:
                self.inflight -= 1

    def _answer(self, req: BaseHTTPRequestHandler) -> None:
        what, body = self._verdict(req)
        if what == "timeout":
            # no answer at all until the client gives up and closes
            req.connection.settimeout(30)
            try:
                while req.connection.recv(4096):
                    pass
            except OSError:
                pass
            req.close_connection = True
            return
        if what == "missing" or body is None:
            self._send(req, 404, b"<html><head><title>404 Not Found</title></head></html>")
        elif what == "5xx":
            self._send(req, 503, b"<html><head><title>503 Service Unavailable</title></head>"
                                 b"</html>")
        elif what == "403":
            self._send(req, 403, body)
        elif what == "429":
            self._send(req, 429, b"slow down", {"Retry-After": "0"})
        elif what == "bad_redirect":
            self._send(req, 302, BAD_REDIRECT_BODY, {"Location": BAD_LOCATION})
        elif what == "truncated":
            req.send_response(200)
            req.send_header("Content-Type", "text/html; charset=utf-8")
            req.send_header("Content-Length", str(len(body)))
            req.end_headers()
            req.wfile.write(body[:len(body) // 2])
            req.wfile.flush()
            req.close_connection = True
        elif what == "slow":
            req.send_response(200)
            req.send_header("Content-Type", "text/html; charset=utf-8")
            req.send_header("Content-Length", str(len(body)))
            req.end_headers()
            step = len(body) // 4 + 1
            for i in range(0, len(body), step):
                req.wfile.write(body[i:i + step])
                req.wfile.flush()
                time.sleep(0.05)
        else:
            self._send(req, 200, body)

    @staticmethod
    def _send(req: BaseHTTPRequestHandler, status: int, body: bytes,
              extra: dict[str, str] | None = None) -> None:
        req.send_response(status)
        req.send_header("Content-Type", "text/html; charset=utf-8")
        req.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            req.send_header(k, v)
        req.end_headers()
        req.wfile.write(body)


class SocksProxy:
    """A SOCKS5 server on loopback: CONNECT only, no authentication, names routed to
    loopback ports (``routes``: ``name`` for any port, ``name:port`` for one, first);
    every destination asked is recorded in ``asked``, with its port in ``asked_ports``."""

    def __init__(self, routes: dict[str, int]) -> None:
        self.routes = dict(routes)
        self.asked: list[tuple[int, str]] = []  # (address type, name or address)
        self.asked_ports: list[tuple[str, int]] = []  # (name or address, port)
        self.server: socketserver.ThreadingTCPServer | None = None
        self.clients: set[socket.socket] = set()  # the sessions open now

    def start(self) -> int:
        """Serve on a free loopback port in a thread; return the port."""
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy.serve(self.request)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return int(self.server.server_address[1])

    def stop(self) -> None:
        """Stop serving."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def kill(self) -> None:
        """Stop serving and cut every session open (Tor stopped under a crawl)."""
        self.stop()
        for sock in list(self.clients):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @staticmethod
    def _read(sock: socket.socket, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("client closed")
            buf += chunk
        return buf

    def serve(self, sock: socket.socket) -> None:
        """One SOCKS5 session: greeting, CONNECT, then relay both ways."""
        self.clients.add(sock)
        try:
            ver, nmethods = self._read(sock, 2)
            methods = self._read(sock, nmethods)
            if ver != 5 or 0 not in methods:
                sock.sendall(b"\x05\xff")
                return
            sock.sendall(b"\x05\x00")
            ver, cmd, _, atyp = self._read(sock, 4)
            if atyp == 3:
                name = self._read(sock, self._read(sock, 1)[0]).decode("ascii", "replace")
            elif atyp == 1:
                name = socket.inet_ntoa(self._read(sock, 4))
            else:
                name = socket.inet_ntop(socket.AF_INET6, self._read(sock, 16))
            port = struct.unpack("!H", self._read(sock, 2))[0]
            self.asked.append((atyp, name))
            self.asked_ports.append((name, port))
            target = self.routes.get(f"{name.lower()}:{port}", self.routes.get(name.lower()))
            if cmd != 1 or target is None:
                sock.sendall(b"\x05\x04\x00\x01" + bytes(6))  # host unreachable
                return
            try:
                up = socket.create_connection(("127.0.0.1", target), timeout=10)
            except OSError:
                sock.sendall(b"\x05\x05\x00\x01" + bytes(6))  # connection refused
                return
            sock.sendall(b"\x05\x00\x00\x01" + socket.inet_aton("127.0.0.1")
                         + struct.pack("!H", port))
            self._relay(sock, up)
        except (ConnectionError, OSError, ValueError):
            pass
        finally:
            self.clients.discard(sock)
            sock.close()

    @staticmethod
    def _relay(a: socket.socket, b: socket.socket) -> None:
        a.settimeout(None)
        b.settimeout(None)
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 60)
                if not ready:
                    return
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    (b if s is a else a).sendall(data)
        finally:
            b.close()


# -- the harness itself ------------------------------------------------------------------

@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_world(tmp_path_factory.mktemp("crawl-world") / "world")


def test_every_saved_page_has_a_url(world: Path) -> None:
    """Each evidence page of the market is served at exactly one URL, none twice."""
    for market in ("nightshade", "atlas"):
        site = MarketSite(world, market)
        assert len(site.urls) == len(page_files(world, market)) == len(site.pages)
        assert any("page=2" in u or "p=2" in u for u in site.urls), market  # pagination


HTTPCORE_SOCKS_LEAK = pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnraisableExceptionWarning")
"""httpcore 1.0.9 leaves the socket of a SOCKS handshake the proxy refused unclosed (the
garbage collector closes it); tests where the proxy refuses a name allow that warning."""


@HTTPCORE_SOCKS_LEAK
def test_proxy_routes_names_and_refuses_others(world: Path) -> None:
    """Through the SOCKS5 proxy a name reaches the site; an unknown name is refused."""
    site = MarketSite(world, "nightshade")
    proxy = SocksProxy({site.onion: site.start()})
    port = proxy.start()
    try:
        import httpx
        with httpx.Client(proxy=f"socks5h://127.0.0.1:{port}", trust_env=False) as client:
            r = client.get(f"http://{site.onion}/")
            assert r.status_code == 200 and b"category.php?c=" in r.content
            with pytest.raises(httpx.ProxyError):
                client.get("http://unknown.onion/")
        assert (3, site.onion) in proxy.asked and (3, "unknown.onion") in proxy.asked
    finally:
        proxy.stop()
        site.stop()
