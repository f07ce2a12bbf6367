"""The findings of the user-level audit of `darkmap crawl` (2026-12): each against a real
hostile HTTP server on loopback, reached through the real SOCKS5 proxy of the test market
(tests/test_crawl_market.py), the way the crawler reaches a market through Tor.

:class:`RawSite` answers with raw bytes (a slow-loris, a rotating session, redirects
anywhere, endless answers): what a hostile market can send, not what an HTTP server
library would let a test send.
"""

from __future__ import annotations

import gzip
import socket
import socketserver
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from conftest import table_snapshot
from test_crawl_market import SocksProxy
from warcio.archiveiterator import ArchiveIterator

from darkmap.collect.crawl import CrawlOptions, crawl
from darkmap.simulate.world import market_onion
from darkmap.store.workspace import Workspace

MARKET = "nightshade"  # a classic market: the sim_classic plan (listing.php?id=...)
ONION = market_onion(MARKET)
Route = Callable[["RawSite", str, dict[str, str], socket.socket], None]


class RawSite:
    """A loopback server that reads one GET per connection and lets ``route`` answer it
    with raw bytes on the socket (then closes). Every request is recorded."""

    def __init__(self, route: Route) -> None:
        self.route = route
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.server: socketserver.ThreadingTCPServer | None = None

    def start(self) -> int:
        site = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock = self.request
                sock.settimeout(30)
                head = b""
                try:
                    while b"\r\n\r\n" not in head and len(head) < 65536:
                        chunk = sock.recv(4096)
                        if not chunk:
                            return
                        head += chunk
                    lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
                    path = lines[0].split(" ")[1]
                    headers = {k.strip().lower(): v.strip() for k, _, v in
                               (line.partition(":") for line in lines[1:])}
                    with site.lock:
                        site.requests.append((path, headers))
                    site.route(site, path, headers, sock)
                except OSError:
                    pass

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return int(self.server.server_address[1])

    def stop(self) -> None:
        self.stopping.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def paths(self) -> list[str]:
        with self.lock:
            return [p for p, _ in self.requests]


def page(title: str, *hrefs: str) -> bytes:
    links = "".join(f'<li><a href="{h}">{h}</a></li>' for h in hrefs)
    return (f"<html><head><title>{title}</title></head><body><ul>{links}</ul></body>"
            "</html>").encode()


def answer(body: bytes, status: str = "200 OK", headers: tuple[str, ...] = (),
           ctype: str = "text/html; charset=utf-8") -> bytes:
    head = "".join(f"{h}\r\n" for h in headers)
    return (f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            f"{head}Connection: close\r\n\r\n").encode("latin-1") + body


@contextmanager
def hostile(route: Route, names: tuple[str, ...] = (ONION,)
            ) -> Iterator[tuple[RawSite, str, SocksProxy]]:
    """The hostile site as the market's onion (or ``names``) behind the test SOCKS5
    proxy; yields (site, proxy URL, proxy)."""
    site = RawSite(route)
    port = site.start()
    proxy = SocksProxy(dict.fromkeys(names, port))
    try:
        yield site, f"socks5h://127.0.0.1:{proxy.start()}", proxy
    finally:
        proxy.stop()
        site.stop()


def opts(proxy: str, **kw: Any) -> CrawlOptions:
    base: dict[str, Any] = {"start_url": f"http://{ONION}/", "proxy": proxy, "rate": 0.0,
                            "concurrency": 2, "backoff": 0.01, "timeout": 3.0, "retries": 0,
                            "seed": 1}
    base.update(kw)
    return CrawlOptions(MARKET, **base)


def outcomes(ws: Workspace) -> Counter[str]:
    return Counter(dict(ws.con.execute(
        "SELECT outcome, count(*) FROM crawl_fetches GROUP BY 1").fetchall()))


def warc_bytes(ws: Workspace) -> bytes:
    return b"".join(gzip.decompress(p.read_bytes())
                    for p in sorted((ws.path / "crawl").rglob("*.warc.gz")))


# -- 1. a slow-loris on the response headers -----------------------------------------------

def _slow_headers(site: RawSite, path: str, _h: dict[str, str], sock: socket.socket) -> None:
    if "listing.php" not in path:
        sock.sendall(answer(page("Home", *[f"/listing.php?id={i}" for i in range(3)])))
        return
    sock.sendall(b"HTTP/1.1 200 OK\r\n")
    t0 = time.monotonic()  # a header byte every 0.3 s (each read's timeout never passes),
    while time.monotonic() - t0 < 15 and not site.stopping.is_set():  # for 15 s at most
        for ch in b"X-Drip: a\r\n":
            sock.sendall(bytes([ch]))
            time.sleep(0.3)


def test_headers_sent_a_byte_at_a_time_end_at_the_total_deadline(tmp_path: Path) -> None:
    """The deadline bounded the body only, and each read's timeout restarts with every
    byte: a market dripping its headers held the request (and, one per worker, the whole
    crawl) without end. Now the whole request ends at the deadline, the URL fails with
    outcome ``timeout`` naming it, and N such URLs at --concurrency N end together."""
    with hostile(_slow_headers) as (site, proxy, _):
        with Workspace.init(tmp_path / "ws") as ws:
            o = opts(proxy, concurrency=3, timeout=1.0)
            o.deadline = 2.0
            t0 = time.monotonic()
            rep = crawl(ws, o)
            took = time.monotonic() - t0
            errors = [e for (e,) in ws.con.execute(
                "SELECT error FROM crawl_frontier WHERE state = 'failed'").fetchall()]
            assert outcomes(ws) == Counter(ok=1, timeout=3)
    assert took < 12, took  # three 2 s deadlines at once, not 15 s of drip (slack: a busy CI)
    assert rep.fetched == 4 and len(errors) == 3
    assert all("no response within 2 s (the total deadline of a request" in e for e in errors)
    assert sorted(site.paths())[-3:] == [f"/listing.php?id={i}" for i in range(3)]


def test_a_proxy_dripping_its_handshake_ends_at_the_deadline() -> None:
    """httpcore reads the SOCKS5 replies with no timeout at all: a proxy that accepted
    and then answered a byte every few seconds (or never) held the request forever."""
    from darkmap.collect.crawl_fetch import Fetcher

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    stop = threading.Event()

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            conn.recv(16)
            stop.wait(15)  # no greeting reply for 15 s
    threading.Thread(target=serve, daemon=True).start()
    try:
        f = Fetcher(f"socks5h://127.0.0.1:{srv.getsockname()[1]}", timeout=1.0, deadline=1.5)
        t0 = time.monotonic()
        got = f.fetch(f"http://{ONION}/")
        took = time.monotonic() - t0
    finally:
        stop.set()
        srv.close()
    assert got.outcome == "timeout" and "total deadline" in (got.error or ""), got
    assert took < 12, took  # 1.5 s deadline, not the 15 s silence (slack: a busy CI)


# -- 2. a session the market rotates ----------------------------------------------------------

def _rotating(site: RawSite, path: str, _h: dict[str, str], sock: socket.socket) -> None:
    n = len(site.requests)
    links = [f"/listing.php?id={i}" for i in range(3)] if "listing" not in path else []
    sock.sendall(answer(page(f"Page {n}", *links), headers=(
        f"Set-Cookie: sid=ROTATED-SECRET-{n}; Path=/; HttpOnly",
        f"X-Session-Token: TOKEN-SECRET-{n}", f"WWW-Authenticate: Basic realm=AUTH-SECRET-{n}")))


def test_a_rotated_session_is_never_written(tmp_path: Path) -> None:
    """The crawler adopts the session a market sets (its session refresh), and the
    response records kept ``Set-Cookie: sid=<the new session>`` in clear (only the
    request's ``Cookie`` was redacted). No session value reaches the WARC files or the
    workspace now; the names are kept."""
    cookies = tmp_path / "session.txt"
    cookies.write_text("Cookie: sid=ANALYST-SECRET-1234\n")
    with hostile(_rotating) as (site, proxy, _):
        with Workspace.init(tmp_path / "ws") as ws:
            rep = crawl(ws, opts(proxy, concurrency=1, cookies=cookies))
            assert rep.pages == 4, rep.as_dict()
            snapshot = repr(table_snapshot(ws))
            warc = warc_bytes(ws)
            records = []
            for path in sorted((ws.path / "crawl").rglob("*.warc.gz")):
                with open(path, "rb") as fh:
                    records += [(r.rec_type, r.http_headers) for r in ArchiveIterator(fh)
                                if r.http_headers is not None]
    sent = [h.get("cookie") for _, h in site.requests]
    assert sent[0] == "sid=ANALYST-SECRET-1234" and sent[1] == "sid=ROTATED-SECRET-1"  # adopted
    for secret in (b"SECRET", b"ROTATED", b"ANALYST"):
        assert secret not in warc, secret
        assert secret.decode() not in snapshot, secret
    files = [f for f in (tmp_path / "ws").rglob("*") if f.is_file()]
    assert any(f.suffix == ".duckdb" for f in files), files  # the database, raw bytes too
    assert not [f for f in files if b"SECRET" in f.read_bytes()]
    responses = [h for t, h in records if t == "response"]
    assert len(responses) == 4
    for h in responses:
        assert h.get_header("Set-Cookie") == "[redacted session: sid]; Path=/; HttpOnly"
        assert h.get_header("X-Session-Token") == "[redacted session]"
        assert h.get_header("WWW-Authenticate") == "[redacted session]"
    assert {h.get_header("Cookie") for t, h in records if t == "request"} == {
        "[redacted session: sid]"}


# -- 3. redirects and the crawl plan ----------------------------------------------------------

REDIRECTS = {"1": "/logout.php", "2": "/order.php?buy=1&confirm=yes",
             "3": "/listing.php?id=30&action=logout", "4": "/listing.php?id=40",
             "5": "http://evil.example/listing.php?id=50", "6": "/user.php?id=7",
             "7": "listing.php?id=70&do=send-message", "8": "/listing.php?id=8/"}


def _redirecting(_s: RawSite, path: str, _h: dict[str, str], sock: socket.socket) -> None:
    ref = path.split("id=", 1)[-1] if "listing.php?id=" in path else None
    if ref in REDIRECTS:
        sock.sendall(answer(b"", "302 Found", (f"Location: {REDIRECTS[ref]}",)))
    elif ref is not None:
        sock.sendall(answer(page(f"Listing {ref}")))
    else:
        sock.sendall(answer(page("Home", *[f"/listing.php?id={i}" for i in REDIRECTS])))


def test_a_redirect_passes_the_plan_check_of_a_link(tmp_path: Path) -> None:
    """Same-host redirects were followed wherever they pointed: listings redirecting to
    logout.php and order.php?buy=1&confirm=yes had the crawler request both. Now a
    redirect target is requested only when a link rule of a followed kind matches it and
    it names no action; otherwise the URL fails with outcome ``redirect_refused``."""
    with hostile(_redirecting) as (site, proxy, _):
        with Workspace.init(tmp_path / "ws") as ws:
            rep = crawl(ws, opts(proxy, plan=("categories", "listings")))
            errors = dict(ws.con.execute(
                "SELECT url, error FROM crawl_frontier WHERE state = 'failed'").fetchall())
            got = outcomes(ws)
    asked = site.paths()
    assert rep.pages == 3  # the home page, listing 40 (through 4) and listing 8/ (through 8)
    assert "/listing.php?id=40" in asked
    for never in ("logout", "order.php", "action=logout", "user.php", "send-message",
                  "id=50"):
        assert not [p for p in asked if never in p], (never, asked)
    assert got == Counter(ok=3, redirect=2, redirect_refused=6), got
    why = {u.rsplit("id=", 1)[1]: e for u, e in errors.items()}
    assert "names an action ('logout')" in why["1"]
    assert "names an action ('order')" in why["2"]
    assert "names an action ('logout')" in why["3"]
    assert "not an http URL on the market's onions" in why["5"]
    assert "no link rule of the plan's followed kinds (categories, listings)" in why["6"]
    assert "names an action ('send')" in why["7"]
    assert all(e.startswith(f"redirect to {REDIRECTS[k]} not followed: ")
               for k, e in why.items())


# -- 4. no proxy ------------------------------------------------------------------------------

def _leaf(_s: RawSite, path: str, _h: dict[str, str], sock: socket.socket) -> None:
    sock.sendall(answer(page("Home" if path == "/" else "Leaf")))


def _cli(*args: str) -> Any:
    from click.testing import CliRunner

    from darkmap.cli import main
    return CliRunner().invoke(main, ["crawl", *args])


def test_an_empty_proxy_is_refused_and_direct_is_asked_for(tmp_path: Path) -> None:
    """`--proxy ""` (an empty `$TOR`) crawled from the analyst's own address with no
    warning; for an onion the refusal came from a worker thread after the job was
    created (left `running`), once after a direct request had gone out. Now an empty
    proxy is refused before anything: no job, no request; `--direct` is the only way to
    connect without a proxy, and it is refused for an onion (start or mirror). (A crawl
    with --direct: test_the_port_of_start_and_mirrors_is_kept.)"""
    site = RawSite(_leaf)
    port = site.start()
    local = f"http://127.0.0.1:{port}/"
    try:
        Workspace.init(tmp_path / "ws").close()
        ws = str(tmp_path / "ws")
        for start in (local, f"http://{ONION}/"):
            res = _cli(MARKET, "-w", ws, "--start", start, "--proxy", "", "--rate", "0")
            assert res.exit_code == 1 and "no proxy given (--proxy is empty)" in res.stderr, \
                res.output
            assert "--direct for a clearnet test site" in res.stderr
        for args in (("--start", f"http://{ONION}/"),
                     ("--start", local, "--mirror", f"{ONION}")):
            res = _cli(MARKET, "-w", ws, *args, "--direct", "--rate", "0")
            assert res.exit_code == 1 and "is an onion address; it is reached through Tor " \
                "only" in res.stderr, res.output
        res = _cli(MARKET, "-w", ws, "--start", local, "--direct", "--proxy",
                   "socks5h://127.0.0.1:9050")
        assert res.exit_code == 1 and "--direct and --proxy exclude each other" in res.stderr
        assert site.requests == []  # nothing went out
        with Workspace.open(tmp_path / "ws") as w:
            assert w.con.execute("SELECT count(*) FROM crawl_jobs").fetchall() == [(0,)]
    finally:
        site.stop()


# -- 6. a proxy that is no SOCKS5, and errors mid-crawl --------------------------------------

@contextmanager
def not_socks(after: int = 0, socks: SocksProxy | None = None) -> Iterator[str]:
    """A port answering like an HTTP server (Tor's HTTPTunnelPort, Privoxy) and closing;
    its first ``after`` connections are relayed to ``socks`` (a proxy that turns bad)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    stop = threading.Event()

    def relay(conn: socket.socket) -> None:
        assert socks is not None and socks.server is not None
        up = socket.create_connection(socks.server.server_address[:2])
        def pump(a: socket.socket, b: socket.socket) -> None:
            try:
                while data := a.recv(65536):
                    b.sendall(data)
            except OSError:
                pass
            finally:
                b.close()
        threading.Thread(target=pump, args=(up, conn), daemon=True).start()
        pump(conn, up)

    def serve() -> None:
        n = 0
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            n += 1
            if n <= after:
                threading.Thread(target=relay, args=(conn,), daemon=True).start()
                continue
            with conn:
                try:
                    conn.recv(100)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass
    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"socks5h://127.0.0.1:{srv.getsockname()[1]}"
    finally:
        stop.set()
        srv.close()


def _jobs(ws: Workspace) -> list[tuple[Any, ...]]:
    return ws.con.execute("SELECT status, reason FROM crawl_jobs").fetchall()


def _audit(ws: Workspace) -> list[tuple[str, str]]:
    import json
    return [(e["action"], e["outcome"]) for (e,) in (
        (json.loads(r),) for (r,) in ws.con.execute("SELECT entry FROM ops_audit").fetchall())]


def test_a_proxy_that_is_no_socks5_is_refused_before_the_job(tmp_path: Path) -> None:
    """A --proxy port answering like an HTTP server crashed the crawler with socksio's
    ProtocolError traceback, the job left `running`, no audit entry. The pre-flight check
    now speaks SOCKS5 (a greeting) and refuses it before any job exists."""
    from darkmap.api import crawl_market
    from darkmap.errors import DarkmapError

    with hostile(_leaf) as (site, _proxy, _), not_socks() as bad:
        with Workspace.init(tmp_path / "ws") as ws:
            try:
                rep = crawl_market(ws, opts(bad))
            except DarkmapError as exc:
                assert type(exc).__name__ == "ProxyUnreachable"
                assert str(exc).startswith(
                    f"the proxy at {bad.removeprefix('socks5h://')} did not answer as a "
                    "SOCKS5 proxy (it answered b'HT'): --proxy must be Tor's "
                    "SocksPort, not its HTTPTunnelPort or an HTTP proxy: no request was "
                    "made, no crawl was started"), str(exc)
            else:
                raise AssertionError(f"not refused: {rep.as_dict()}")
            assert _jobs(ws) == [] and site.requests == []


def test_a_proxy_turning_bad_mid_crawl_stops_the_job_with_a_reason(tmp_path: Path) -> None:
    """The same answer in the middle of a crawl (a proxy closing during the handshake)
    raised out of the crawl; it is now a failed connection, after which the proxy check
    stops the job (`stopped`, resumable), audited."""
    from darkmap.api import crawl_market

    with hostile(_home_and_leaves) as (site, _proxy, socks):
        with not_socks(after=3, socks=socks) as flaky:  # the pre-flight and two requests
            with Workspace.init(tmp_path / "ws") as ws:
                rep = crawl_market(ws, opts(flaky, concurrency=1))
                assert rep.status == "stopped" and rep.proxy_unreachable, rep.as_dict()
                assert "did not answer as a SOCKS5 proxy" in (rep.reason or "")
                assert rep.outcomes["proxy"] == 1 and rep.pages == 2
                assert _jobs(ws) == [("stopped", rep.reason)]
                assert _audit(ws) == [("crawl", "stopped")]


def _home_and_leaves(_s: RawSite, path: str, _h: dict[str, str], sock: socket.socket) -> None:
    links = [f"/listing.php?id={i}" for i in range(4)] if path == "/" else []
    sock.sendall(answer(page("Home" if links else "Leaf", *links)))


def test_an_error_mid_crawl_ends_the_job_failed_and_audited(tmp_path: Path,
                                                             monkeypatch: Any) -> None:
    """Any exception out of the crawl left the job `running` with no audit entry. Now an
    error ends it `failed` (the reason naming the error) and Ctrl-C `interrupted`, both
    in the audit trail; the next run resumes the job."""
    import darkmap.collect.crawl as crawler
    from darkmap.api import crawl_market

    real = crawler.store_page
    calls = Counter[str]()

    def failing(*args: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk on fire")
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(crawler, "store_page", failing)
    with hostile(_home_and_leaves) as (_site, proxy, _):
        with Workspace.init(tmp_path / "ws") as ws:
            rep = crawl_market(ws, opts(proxy, concurrency=1))
            assert rep.status == "failed"
            assert (rep.reason or "").startswith(
                "the crawl ended on an error: RuntimeError: disk on fire; the frontier is kept")
            assert _jobs(ws) == [("failed", rep.reason)]
            try:
                crawl_market(ws, opts(proxy, concurrency=1, start_url=None))
            except KeyboardInterrupt:
                pass
            else:
                raise AssertionError("Ctrl-C swallowed")
            assert [s for s, _ in _jobs(ws)] == ["interrupted"]
            last = crawl_market(ws, opts(proxy, concurrency=1, start_url=None))
            assert (last.crawl_id, last.status) == (rep.crawl_id, "done")
            assert _audit(ws) == [("crawl", "failed"), ("crawl", "interrupted"),
                                  ("crawl", "done")]


# -- 7. ports ---------------------------------------------------------------------------------

def _ported(_s: RawSite, path: str, headers: dict[str, str], sock: socket.socket) -> None:
    host = headers.get("host", "")
    links = ["/listing.php?id=1", f"http://{host}/listing.php?id=2",
             f"http://{ONION}/listing.php?id=80", f"http://{ONION}:22/listing.php?id=22"]
    sock.sendall(answer(page(f"Home at {host}", *links) if path == "/" else page(f"L {host}")))


def _wrong_service(_s: RawSite, _p: str, _h: dict[str, str], sock: socket.socket) -> None:
    sock.sendall(answer(page("Port 80: not the market")))


def test_the_port_of_start_and_mirrors_is_kept(tmp_path: Path) -> None:
    """``--start http://X.onion:8080/`` was crawled as port 80 (the proxy asked for
    X.onion:80, another service stored as the market's): the port is kept in the
    market's addresses, the requests, the canonical URLs and the WARC; a link to
    another port of the onion is another service, not followed. --direct crawls a
    clearnet test site at its port."""
    other = RawSite(_wrong_service)
    other_port = other.start()
    try:
        with hostile(_ported, names=(f"{ONION}:8080", f"{ONION}:8081")) as (site, proxy, socks):
            socks.routes[ONION] = other_port  # every other port of the onion
            with Workspace.init(tmp_path / "ws") as ws:
                rep = crawl(ws, opts(proxy, start_url=f"http://{ONION}:8080/",
                                     mirrors=(f"{ONION}:8081",), concurrency=1))
                urls = sorted(u for (u,) in ws.con.execute(
                    "SELECT url FROM crawl_frontier").fetchall())
                warc = warc_bytes(ws)
        assert rep.status == "done" and rep.pages == 3, rep.as_dict()
        assert {p for _, p in socks.asked_ports} == {8080}
        assert other.requests == []
        assert urls == [f"http://{ONION}:8080/", f"http://{ONION}:8080/listing.php?id=1",
                        f"http://{ONION}:8080/listing.php?id=2"]
        assert f"WARC-Target-URI: http://{ONION}:8080/listing.php?id=2".encode() in warc
        assert f"WARC-X-Mirror: {ONION}:8080".encode() in warc
        assert {h.get("host") for _, h in site.requests} == {f"{ONION}:8080"}
    finally:
        other.stop()

    # --direct: a clearnet test site at its own port (it went to port 80)
    local = RawSite(_leaf)
    port = local.start()
    try:
        from darkmap.api import crawl_market
        with Workspace.init(tmp_path / "direct") as ws:
            rep = crawl_market(ws, opts(None, start_url=f"http://127.0.0.1:{port}/",
                                        direct=True))
            assert (rep.status, rep.pages) == ("done", 1), rep.as_dict()
            assert b"WARC-X-Proxy: direct" in warc_bytes(ws)
        assert local.paths() == ["/"]
    finally:
        local.stop()


# -- 5. limits: redirect chains, requests, bytes, endless link spaces ------------------------

def _chain(_s: RawSite, path: str, _h: dict[str, str], sock: socket.socket) -> None:
    if "listing.php?id=" not in path:
        sock.sendall(answer(page("Home", "/listing.php?id=1")))
        return
    n = int(path.rsplit("=", 1)[1])
    if n < 300:  # endless for the crawler (ends here so that the old code ends too)
        sock.sendall(answer(b"", "302 Found", (f"Location: /listing.php?id={n + 1}",)))
    else:
        sock.sendall(answer(page("End")))


def test_an_endless_redirect_chain_stops_after_ten_hops(tmp_path: Path) -> None:
    """Each listing.php?id=N answering 302 to id=N+1 made 5,106 requests in 60 s, with
    --max-pages 5 (redirects were no pages, and had no hop limit)."""
    with hostile(_chain) as (site, proxy, _):
        with Workspace.init(tmp_path / "ws") as ws:
            rep = crawl(ws, opts(proxy, concurrency=1, max_pages=5))
            got = outcomes(ws)
            errors = [e for (e,) in ws.con.execute(
                "SELECT error FROM crawl_frontier WHERE state = 'failed'").fetchall()]
    assert got == Counter(ok=1, redirect=10, redirect_refused=1), got
    assert len(site.requests) == 12 and rep.status == "done"
    assert errors == [("redirect to /listing.php?id=12 not followed: more than 10 redirects "
                       "in a row")]
    from darkmap.collect.crawl import MAX_REDIRECTS
    assert MAX_REDIRECTS == 10


def _big(_s: RawSite, path: str, _h: dict[str, str], sock: socket.socket) -> None:
    if "listing.php" in path:
        sock.sendall(answer(b"\0" * (2 << 20), ctype="application/octet-stream"))
    else:
        sock.sendall(answer(page("Home", *[f"/listing.php?id={i}" for i in range(10)])))


def test_requests_and_bytes_of_a_run_are_bounded(tmp_path: Path) -> None:
    """--max-pages counted stored pages only: 10 answers of 17 MiB (too big, not HTML,
    no page) wrote 161 MB of WARC under --max-pages 2. --max-requests and --max-bytes
    bound every request and every byte of a run (defaults 50,000 and 4 GiB), and the
    run stops resumable, saying which limit."""
    with hostile(_big) as (_site, proxy, _):
        with Workspace.init(tmp_path / "bytes") as ws:
            rep = crawl(ws, opts(proxy, concurrency=1, max_pages=2, max_bytes=5 << 20))
            size = sum(p.stat().st_size for p in (ws.path / "crawl").rglob("*.warc.gz"))
        assert (rep.status, rep.fetched, rep.outcomes["not_html"]) == ("stopped", 4, 3)
        assert (rep.reason or "").startswith("--max-bytes 5242880 reached (this run: 4 "
                                             "requests, 629"), rep.reason
        assert size < 8 << 20
        with Workspace.init(tmp_path / "requests") as ws:
            rep = crawl(ws, opts(proxy, concurrency=3, max_requests=4))
            assert (rep.status, rep.fetched) == ("stopped", 4)
            assert (rep.reason or "").startswith("--max-requests 4 reached")
            rest = crawl(ws, opts(proxy, start_url=None, max_requests=4))  # resumes
            assert (rest.crawl_id, rest.fetched) == (rep.crawl_id, 4)
    defaults = CrawlOptions(MARKET)
    assert (defaults.max_depth, defaults.max_requests, defaults.max_bytes) == (
        30, 50_000, 4 << 30)


def _calendar(_s: RawSite, path: str, _h: dict[str, str], sock: socket.socket) -> None:
    d = int(path.rsplit("d=", 1)[1]) if "d=" in path else 0
    links = [f"/category.php?c=cal&d={d + 1}", f"/category.php?c=cal&d={d - 1}"] \
        if abs(d) < 60 else []  # endless for the crawler (ends here for the old code)
    sock.sendall(answer(page(f"Day {d}", *links)))


def test_an_endless_link_space_stops_at_the_default_depth(tmp_path: Path) -> None:
    """A calendar (links to the next and the previous day, without end) was crawled
    without end: 1,409 pages in 30 s, nothing bounded a crawl by default. Links are
    followed --max-depth deep (30 by default, stated in the start message)."""
    started: list[str] = []
    with hostile(_calendar) as (_site, proxy, _):
        with Workspace.init(tmp_path / "ws") as ws:
            rep = crawl(ws, opts(proxy, max_depth=3), on_start=started.append)
            depth = ws.con.execute("SELECT max(depth) FROM crawl_frontier").fetchall()
        with Workspace.init(tmp_path / "default") as ws:
            default = crawl(ws, opts(proxy))
    assert (rep.status, rep.pages, rep.too_deep) == ("done", 8, 2)  # / and d = -3 .. 3
    assert rep.reason == "2 links deeper than --max-depth 3 not followed"
    assert depth == [(3,)]
    assert "--max-depth 3" in started[0] and "--max-requests 50000" in started[0]
    assert started[0].endswith("--max-bytes 4 GiB (raise them to go further)")
    assert (default.pages, default.too_deep) == (62, 2)  # / and d = -30 .. 30


# -- 8. politeness and honest outcomes ----------------------------------------------------------

def test_429_pauses_the_whole_market_and_503_honours_retry_after(tmp_path: Path) -> None:
    """A 429's Retry-After held back that URL only (12 other requests went to the market
    at full rate meanwhile), and a 503's Retry-After was ignored (retried after 0.47 s).
    Now a 429 pauses every request to the market for its wait, and a 503's Retry-After
    (at most 10 minutes) sets its retry."""
    times: list[tuple[float, str]] = []
    answered: Counter[str] = Counter()

    def route(_s: RawSite, path: str, _h: dict[str, str], sock: socket.socket) -> None:
        times.append((time.monotonic(), path))
        answered[path] += 1
        if path.endswith("id=429") and answered[path] == 1:
            sock.sendall(answer(b"slow down", "429 Too Many Requests", ("Retry-After: 2",)))
        elif path.endswith("id=503") and answered[path] == 1:
            sock.sendall(answer(b"busy", "503 Service Unavailable", ("Retry-After: 2",)))
        elif path == "/":
            sock.sendall(answer(page("Home", "/listing.php?id=429",
                                     *[f"/listing.php?id={i}" for i in range(6)])))
        else:
            sock.sendall(answer(page("Leaf")))

    with hostile(route) as (_site, proxy, _):
        with Workspace.init(tmp_path / "ws") as ws:
            # one worker: a request already on its way when the 429 is read would reach
            # the market in the wait with two (a loaded CI machine showed it); the old code
            # went on at full rate with one worker as with two
            rep = crawl(ws, opts(proxy, concurrency=1, retries=2))
        assert rep.status == "done" and rep.outcomes["http_429"] == 1
        t429 = next(t for t, p in times if p.endswith("id=429"))
        during = [p for t, p in times if t429 < t < t429 + 1.9]
        assert during == [], during  # the whole market waited
        assert len(times) == 9, times  # home, 429 twice, six leaves
        with Workspace.init(tmp_path / "ws503") as ws:
            times.clear()
            rep = crawl(ws, opts(proxy, concurrency=1, retries=2,
                                 start_url=f"http://{ONION}/listing.php?id=503"))
        assert rep.status == "done" and rep.outcomes["http_5xx"] == 1
        (first, _), (second, _) = times
        assert second - first >= 1.9, second - first


def test_a_transfer_coding_not_read_is_a_bad_response(tmp_path: Path) -> None:
    """``Transfer-Encoding: gzip, chunked`` (which the HTTP parser refuses) was counted
    ``connect`` and retried as a network failure."""
    from darkmap.collect.crawl_fetch import Fetcher

    def route(_s: RawSite, _p: str, _h: dict[str, str], sock: socket.socket) -> None:
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: "
                     b"gzip, chunked\r\n\r\n0\r\n\r\n")

    with hostile(route) as (_site, proxy, _):
        got = Fetcher(proxy, timeout=5).fetch(f"http://{ONION}/")
    assert got.outcome == "bad_response", got
    assert "Only Transfer-Encoding: chunked is supported" in (got.error or "")


def test_a_crawl_that_obtained_nothing_is_failed_and_retried(tmp_path: Path) -> None:
    """A start URL failing for good ended the job `done` with 0 pages: the next run
    started a new job and the failed URL was never tried again. Now the job is `failed`
    ("no page was obtained"), and the next run retries its URLs in the same job."""
    broken = threading.Event()
    broken.set()

    def route(_s: RawSite, _p: str, _h: dict[str, str], sock: socket.socket) -> None:
        if broken.is_set():
            sock.sendall(answer(b"oops", "500 Internal Server Error"))
        else:
            sock.sendall(answer(page("Home")))

    with hostile(route) as (_site, proxy, _):
        with Workspace.init(tmp_path / "ws") as ws:
            first = crawl(ws, opts(proxy))
            assert first.status == "failed", first.as_dict()
            assert (first.reason or "").startswith("no page was obtained (frontier: failed 1)")
            broken.clear()
            again = crawl(ws, opts(proxy, start_url=None))
            assert (again.crawl_id, again.status, again.pages) == (first.crawl_id, "done", 1)


# -- 9. leftovers: answers that are no page, honest marks and counts ---------------------------

def _png(text: bytes = b"") -> bytes:
    """A real PNG (1x1), with ``text`` in a tEXt chunk: a market can hide "<html>" in it."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + (chunk(b"tEXt", b"Comment\0" + text) if text else b"")
            + chunk(b"IDAT", zlib.compress(b"\0\xff\0\0")) + chunk(b"IEND", b""))


PNG = _png(b"<html><head><title>Listing</title></head><body><div>x</div></body></html>")
JPEG = b"\xff\xd8\xff\xe0\0\x10JFIF\0\x01\x01<html><body><p>x</p></body></html>"
UNKNOWN_BINARY = b"\x01\x02\0\0\x7f\0\0\0<html><body><p>x</p></body></html>" + bytes(200)
BOMB = gzip.compress(b"\0" * (17 << 20), compresslevel=9)
"""Sent whole (some 17 KB) with Content-Encoding gzip: 17 MiB once decoded, over 16 MiB."""


def _leftovers(_s: RawSite, path: str, _h: dict[str, str], sock: socket.socket) -> None:
    ref = path.split("id=", 1)[-1] if "listing.php?id=" in path else None
    bodies = {"1": PNG, "6": JPEG, "7": UNKNOWN_BINARY}
    if ref in bodies:
        sock.sendall(answer(bodies[ref]))  # labelled text/html
    elif ref == "2":
        sock.sendall(answer(BOMB, headers=("Content-Encoding: gzip",)))
    elif ref == "3":
        sock.sendall(answer(b"", "302 Found", ("Location: http://evil.example/x",)))
    elif ref == "4":
        sock.sendall(answer(b"", "302 Found", ("Location: /listing.php?id=5",)))
    elif ref is not None:
        sock.sendall(answer(page(f"Listing {ref}")))
    else:
        sock.sendall(answer(page("Home", *[f"/listing.php?id={i}" for i in range(1, 8)])))


def _responses(ws: Workspace) -> dict[str, Any]:
    """The WARC response records of the crawl by the listing id they answer."""
    out: dict[str, Any] = {}
    for p in sorted((ws.path / "crawl").rglob("*.warc.gz")):
        with p.open("rb") as fh:
            for rec in ArchiveIterator(fh):
                if rec.rec_type == "response":
                    uri = rec.rec_headers.get_header("WARC-Target-URI")
                    out[uri.rsplit("id=", 1)[-1] if "id=" in uri else "/"] = (
                        rec.rec_headers, rec.http_headers, rec.raw_stream.read())
    return out


def test_binary_bodies_labelled_html_are_kept_in_warc_but_are_no_pages(tmp_path: Path) -> None:
    """PNG bytes served as text/html were stored as a page capture, media type text/html
    (a market labels anything text/html). Now a body whose first bytes are a known
    binary format (or hold NUL bytes before any tag) is ``not_html``: in the WARC as
    fetched, never a capture, and a re-ingest of that WARC skips it saying why."""
    from darkmap.collect.ingest import ingest

    with hostile(_leftovers) as (_site, proxy, _):
        with Workspace.init(tmp_path / "ws") as ws:
            rep = crawl(ws, opts(proxy, plan=("listings",)))
            fetched = dict(ws.con.execute(
                "SELECT url, outcome FROM crawl_fetches").fetchall())
            captured = {r[0] for r in ws.con.execute("SELECT sha256 FROM captures").fetchall()}
            records = _responses(ws)
            warcs = sorted((ws.path / "crawl").rglob("*.warc.gz"))
    by_id = {u.rsplit("id=", 1)[1]: o for u, o in fetched.items() if "id=" in u}
    assert (by_id["1"], by_id["6"], by_id["7"]) == ("not_html",) * 3, by_id
    import hashlib
    for body in (PNG, JPEG, UNKNOWN_BINARY):
        assert hashlib.sha256(body).hexdigest() not in captured
    assert records["1"][2] == PNG and records["6"][2] == JPEG  # kept as fetched
    assert rep.pages == 2  # the home page and listing 5 (also 4's redirect target)
    with Workspace.init(tmp_path / "again") as ws:
        summary = ingest(ws, warcs)
    reasons = " | ".join(r for f in summary.files for r in f.skip_reasons)
    assert "a PNG image" in reasons and "a JPEG image" in reasons, reasons
    assert summary.totals()["stored"] == 2, summary.totals()



def test_a_bomb_that_arrived_whole_is_not_marked_truncated(tmp_path: Path) -> None:
    """A gzip bomb sent whole (17 KB, 17 MiB once decoded) was marked ``WARC-Truncated:
    length``, yet its record held every byte sent. Now it is ``too_big`` and its record
    is the whole answer as sent (Content-Encoding kept, no WARC-Truncated); a record is
    marked only when its payload is cut: ``length`` for a body over the cap,
    ``time`` for one the deadline cut (which was not marked at all)."""
    with hostile(_leftovers) as (_site, proxy, _):
        with Workspace.init(tmp_path / "ws") as ws:
            crawl(ws, opts(proxy, plan=("listings",)))
            outcome, error = ws.con.execute(
                "SELECT f.outcome, c.error FROM crawl_fetches f JOIN crawl_frontier c "
                "USING (crawl_id, url) WHERE url LIKE '%id=2'").fetchone()
            rec_headers, http_headers, payload = _responses(ws)["2"]
    assert outcome == "too_big" and "once decoded" in error, (outcome, error)
    assert rec_headers.get_header("WARC-Truncated") is None
    assert payload == BOMB and http_headers.get_header("Content-Encoding") == "gzip"

    from darkmap.collect.crawl_fetch import Fetcher
    from darkmap.collect.crawl_warc import WarcLog

    def route(_s: RawSite, path: str, _h: dict[str, str], sock: socket.socket) -> None:
        if path == "/big":
            sock.sendall(answer(b"<p>" + b"x" * 5000))
        else:  # 10 bytes of 1000, then nothing until the deadline
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
                         b"1000\r\n\r\n<html><p>x")
            time.sleep(6)

    with hostile(route) as (_site, proxy, _):
        fetcher = Fetcher(proxy, timeout=1, deadline=2, max_body=1000)
        big, slow = (fetcher.fetch(f"http://{ONION}{p}") for p in ("/big", "/slow"))
        fetcher.close()
    assert (big.outcome, slow.outcome) == ("too_big", "timeout"), (big, slow)
    log = WarcLog(tmp_path / "w.warc.gz", "socks5h://127.0.0.1:9", {})
    for got in (big, slow):
        log.write(got, got.target, ONION)
    log.close()
    with (tmp_path / "w.warc.gz").open("rb") as fh:
        marks = {rec.rec_headers.get_header("WARC-Target-URI").rsplit("/", 1)[1]:
                 rec.rec_headers.get_header("WARC-Truncated")
                 for rec in ArchiveIterator(fh) if rec.rec_type == "response"}
    assert marks == {"big": "length", "slow": "time"}, marks



def test_done_counts_pages_obtained(tmp_path: Path) -> None:
    """Followed redirects and answers that are no page were recorded frontier ``done``
    (``frontier: done 12`` with 4 pages stored). Now ``done`` is a page stored; a
    followed redirect is ``redirected`` (its target is a URL of its own), an answer that
    is no page ``skipped``, a redirect not followed ``failed``; ``--status`` shows each."""
    with hostile(_leftovers) as (_site, proxy, _):
        with Workspace.init(tmp_path / "ws") as ws:
            rep = crawl(ws, opts(proxy, plan=("listings",)))
            states = dict(ws.con.execute(
                "SELECT url, state FROM crawl_frontier").fetchall())
    by_id = {u.rsplit("id=", 1)[-1] if "id=" in u else "/": s for u, s in states.items()}
    assert by_id == {"/": "done", "1": "skipped", "2": "failed", "3": "failed",
                     "4": "redirected", "5": "done", "6": "skipped", "7": "skipped"}, by_id
    assert rep.frontier == {"done": 2, "failed": 2, "redirected": 1, "skipped": 3}
    assert rep.pages == rep.frontier["done"]
    res = _cli(MARKET, "-w", str(tmp_path / "ws"), "--status")
    assert res.exit_code == 0, res.output
    assert "frontier: done 2, failed 2, redirected 1, skipped 3" in res.output, res.output



def test_parser_refusals_are_bad_responses_not_network_failures(tmp_path: Path) -> None:
    """Answers the HTTP parser (h11) refuses were ``connect`` unless its message began
    with one of three words, so most were retried as network failures. Now every
    refusal of the parser is ``bad_response`` (no retry); a connection closed before
    any answer stays ``connect``."""
    from darkmap.collect.crawl_fetch import Fetcher

    heads = {
        "/te": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        "/two-te": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        "/cl": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        "/bad-cl": b"HTTP/1.1 200 OK\r\nContent-Length: five\r\n\r\nhello",
        "/fold": b"HTTP/1.1 200 OK\r\n Folded: x\r\nContent-Length: 0\r\n\r\n",
        "/huge": b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * (200 << 10) + b"\r\n\r\n",
        "/closed": b"HTTP/1.1 200 OK\r\nContent-Ty",
    }

    def route(_s: RawSite, path: str, _h: dict[str, str], sock: socket.socket) -> None:
        sock.sendall(heads[path])

    with hostile(route) as (_site, proxy, _):
        fetcher = Fetcher(proxy, timeout=5)
        got = {p: fetcher.fetch(f"http://{ONION}{p}") for p in heads}
        fetcher.close()
    kinds = {p: g.outcome for p, g in got.items()}
    assert kinds == {"/te": "bad_response", "/two-te": "bad_response", "/cl": "bad_response",
                     "/bad-cl": "bad_response", "/fold": "bad_response",
                     "/huge": "bad_response", "/closed": "connect"}, (
        kinds, {p: g.error for p, g in got.items()})
