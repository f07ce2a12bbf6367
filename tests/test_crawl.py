"""The crawler against the test market (tests/test_crawl_market.py): the simulator's
world on a real HTTP server, reached through a real SOCKS5 proxy on loopback.

What is checked: every page of the market stored exactly once and extracted to the same
records as the simulator's saved pages; faults retried and counted; sessions (login,
CAPTCHA, anti-DDoS queue, expiry) pause the crawl and a new session resumes it; mirror
rotation; the stop after consecutive failures; WARC records with digests, times, proxy
and mirror, the session cookie left out; a WARC re-ingested gives the crawl's records;
SIGKILL at random points (real subprocesses) leaves a store equal to an uninterrupted
crawl; no ``.onion`` name reaches the system resolver.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from test_crawl_market import (
    BAD_LOCATION,
    BAD_REDIRECT_BODY,
    HTTPCORE_SOCKS_LEAK,
    MarketSite,
    SocksProxy,
    make_world,
    page_files,
)
from warcio.archiveiterator import ArchiveIterator

from darkmap.api import ingest
from darkmap.collect.crawl import CrawlOptions, CrawlReport, ProxyUnreachable, crawl
from darkmap.collect.crawl_fetch import Fetcher, load_cookies
from darkmap.collect.crawl_plan import plans
from darkmap.errors import BadInputError
from darkmap.importers.warc import WarcImporter, payload_digest
from darkmap.plugins import importers, register_importer
from darkmap.store.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
CLASSIC = "nightshade"
MODERN = "atlas"
OBSERVATIONS = ("account_observations", "listing_observations", "feedback", "identifiers",
                "skipped_pages", "quarantine", "field_cuts")
ENTITY_KEYS = {"markets": "market_id, name, onion",
               "accounts": "account_id, market_id, handle, role",
               "listings": "listing_id, market_id, listing_ref, account_id",
               "pgp_keys": "fingerprint, key_id, algorithm, bits, created_at, armored"}
VOLATILE = {"run_id", "processed_at", "captured_at"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_world(tmp_path_factory.mktemp("crawl-world") / "world")


@pytest.fixture(autouse=True)
def _warc_importer() -> None:
    # the shared test venv may hold darkmap's entry points from before this importer
    # existed; pyproject declares it (test_warc_importer_is_declared) as installs see it
    if "warc" not in importers():
        register_importer(WarcImporter())


@contextmanager
def market(world: Path, name: str = CLASSIC, routes: dict[str, str] | None = None,
           **site_kw: Any) -> Iterator[tuple[MarketSite, str, SocksProxy]]:
    """The market site and a SOCKS5 proxy to it; yields (site, proxy URL, proxy)."""
    site = MarketSite(world, name, **site_kw)
    port = site.start()
    with _closed_port() as closed:
        table = {"site": port, "closed": closed}
        mapping = routes or {"onion": "site"}
        names = {"onion": site.onion, "mirror": site.mirror}
        proxy = SocksProxy({names[k]: table[v] for k, v in mapping.items()})
        try:
            yield site, f"socks5h://127.0.0.1:{proxy.start()}", proxy
        finally:
            proxy.stop()
            site.stop()


@contextmanager
def _closed_port() -> Iterator[int]:
    """A loopback port that refuses connections while the block runs: bound, never
    listening, so no server started meanwhile can take it (a port bound and freed once
    became the market proxy's own, and a "closed" route reached the proxy)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


def _opts(site: MarketSite, proxy: str, **kw: Any) -> CrawlOptions:
    base: dict[str, Any] = {"start_url": f"http://{site.onion}/", "proxy": proxy, "rate": 0.0,
                            "concurrency": 2, "backoff": 0.01, "timeout": 3.0, "seed": 1}
    base.update(kw)
    return CrawlOptions(site.market, **base)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rows(ws: Workspace, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    return ws.con.execute(sql, params or []).fetchall()


def _columns(ws: Workspace, table: str, leave_out: set[str]) -> str:
    cols = [r[0] for r in _rows(ws, "SELECT column_name FROM information_schema.columns "
                                     "WHERE table_name = ? ORDER BY ordinal_position", [table])]
    return ", ".join(f'"{c}"' for c in cols if c not in leave_out)


def evidence(ws: Workspace, shas: set[str], leave_out: set[str]) -> dict[str, list[Any]]:
    """Sorted rows of every evidence table, of the captures ``shas`` only."""
    out: dict[str, list[Any]] = {}
    for table in OBSERVATIONS:
        cols = _columns(ws, table, leave_out | VOLATILE)
        rows = _rows(ws, f"SELECT {cols}, capture_sha256 FROM {table}")
        out[table] = sorted((r[:-1] for r in rows if r[-1] in shas), key=repr)
    for table, cols in ENTITY_KEYS.items():
        out[table] = sorted(_rows(ws, f"SELECT DISTINCT {cols} FROM {table}"), key=repr)
    return out


def done_pages(ws: Workspace) -> dict[str, str]:
    """URL -> sha256 of every page the market's latest crawl stored."""
    return dict(_rows(ws, "SELECT url, sha256 FROM crawl_frontier WHERE state = 'done' "
                          "AND kind <> 'start' AND sha256 IS NOT NULL"))


def fetch_outcomes(ws: Workspace) -> Counter[str]:
    return Counter(dict(_rows(ws, "SELECT outcome, count(*) FROM crawl_fetches GROUP BY 1")))


def assert_every_page_once(ws: Workspace, world: Path, name: str) -> None:
    """The crawl stored each saved page of the market once, and nothing else."""
    expected = sorted(_sha(p) for p in page_files(world, name))
    stored = done_pages(ws)
    assert sorted(stored.values()) == expected
    ok = _rows(ws, "SELECT url, count(*) FROM crawl_fetches WHERE outcome = 'ok' GROUP BY 1")
    assert ok and all(n == 1 for _, n in ok), [u for u, n in ok if n != 1]


def warc_records(ws: Workspace) -> list[Any]:
    """(type, headers, payload) of every record of the workspace's WARC files."""
    out = []
    for path in sorted((ws.path / "crawl").rglob("*.warc.gz")):
        with open(path, "rb") as fh:
            for rec in ArchiveIterator(fh):
                out.append((rec.rec_type, rec.rec_headers, rec.http_headers,
                            rec.content_stream().read()))
    return out


# -- the whole market, with faults ---------------------------------------------------------

FAULTS = ("timeout", "5xx", "429", "truncated", "slow")


def test_crawl_stores_every_page_once_like_the_saved_pages(world: Path, tmp_path: Path) -> None:
    rng = random.Random(19)
    urls = sorted(MarketSite(world, CLASSIC).urls)
    faults = {u: FAULTS[i % len(FAULTS)] for i, u in enumerate(rng.sample(urls, 10))}
    with market(world, faults=faults) as (site, proxy, socks):
        with Workspace.init(tmp_path / "crawl") as ws:
            rep = crawl(ws, _opts(site, proxy))
            assert rep.status == "done" and rep.reason is None
            assert_every_page_once(ws, world, CLASSIC)
            outcomes = fetch_outcomes(ws)
            # every injected fault was seen, counted under its outcome and retried
            assert site.injected == Counter(dict.fromkeys(FAULTS, 2))
            for fault, outcome in (("timeout", "timeout"), ("5xx", "http_5xx"),
                                   ("429", "http_429"), ("truncated", "truncated")):
                assert outcomes[outcome] == site.injected[fault], outcome
            assert outcomes["ok"] == len(urls) + 1  # the pages and the home page
            assert rep.outcomes == outcomes
            assert _rows(ws, "SELECT count(*) FROM crawl_frontier WHERE state <> 'done'") == [(0,)]
            retried = _rows(ws, "SELECT max(attempts) FROM crawl_frontier")[0][0]
            assert retried == 2
            assert site.posts == 0
            assert all(atyp == 3 for atyp, _ in socks.asked)  # names, resolved by the proxy
            page_shas = set(done_pages(ws).values())
            crawled = evidence(ws, page_shas, {"source", "observed_at"})
            crawled_full = evidence(ws, page_shas, set())
            warcs = warc_records(ws)
            warc_files = sorted((ws.path / "crawl").rglob("*.warc.gz"))
            sources = {r[0] for r in _rows(ws, "SELECT DISTINCT source FROM listing_observations")}
    assert all(s.startswith(f"http://{site.onion}/") for s in sources)

    # the same records as the simulator's saved pages read by `darkmap ingest`
    with Workspace.init(tmp_path / "saved") as saved:
        ingest(saved, page_files(world, CLASSIC))
        shas = {_sha(p) for p in page_files(world, CLASSIC)}
        assert evidence(saved, shas, {"source", "observed_at"}) == crawled
        assert sum(len(v) for v in crawled.values()) > 500

    # WARC: every response with its sha256 payload digest, UTC time, proxy and mirror
    responses = [r for r in warcs if r[0] == "response"]
    assert len(responses) == sum(outcomes[o] for o in ("ok", "http_5xx", "http_429",
                                                       "truncated"))
    for _, head, _http, body in responses:
        assert head.get_header("WARC-Date").endswith("Z")
        assert head.get_header("WARC-X-Proxy") == proxy
        assert head.get_header("WARC-X-Mirror") == site.onion
        if not head.get_header("WARC-Truncated"):
            assert head.get_header("WARC-Payload-Digest") == payload_digest(body)
    assert {r[0] for r in warcs} == {"warcinfo", "request", "response", "metadata"}

    # `darkmap ingest` of the WARC files gives the crawl's records without fetching
    with Workspace.init(tmp_path / "fromwarc") as again:
        summary = ingest(again, warc_files)
        assert summary.totals()["quarantined"] == 0
        assert evidence(again, page_shas, set()) == crawled_full


def test_a_redirect_to_no_url_fails_that_url_only_and_is_kept(world: Path,
                                                              tmp_path: Path) -> None:
    """A 302 whose ``Location`` is no URL (found by fuzzing): the HTTP client raised on it
    while making the redirect's request it never sends, so the answer was counted as
    ``connect``, retried as a network failure, failed, and only a metadata record naming
    the error reached WARC. Now: outcome ``bad_redirect``, one request, that URL failed,
    every other page stored, and the 302 as received kept in WARC."""
    urls = sorted(MarketSite(world, CLASSIC).urls)
    bad = next(u for u in urls if u.startswith("listing.php"))
    with market(world, faults={bad: "bad_redirect"}) as (site, proxy, _):
        with Workspace.init(tmp_path / "ws") as ws:
            rep = crawl(ws, _opts(site, proxy))
            assert rep.status == "done" and rep.reason is None
            assert site.injected == Counter(bad_redirect=1)
            outcomes = fetch_outcomes(ws)
            assert outcomes == Counter(ok=len(urls), bad_redirect=1)  # home page in, one out
            failed = _rows(ws, "SELECT url, attempts, http_status, sha256, error "
                               "FROM crawl_frontier WHERE state <> 'done'")
            assert len(failed) == 1, failed
            url, attempts, status, sha, error = failed[0]
            assert (attempts, status, sha) == (1, 302, None)
            assert error == f"Location {BAD_LOCATION!r} is no URL: InvalidURL: Invalid port: ':1'"
            assert _rows(ws, "SELECT state FROM crawl_frontier WHERE url = ?", [url]) == [
                ("failed",)]
            stored = set(done_pages(ws).values())
            assert stored == {_sha(p) for u, p in site.urls.items() if u != bad}
            warcs = warc_records(ws)
    assert not [r for r in warcs if r[0] == "metadata"]  # no request ended without answer
    redirects = [r for r in warcs if r[0] == "response" and r[2].get_statuscode() == "302"]
    assert len(redirects) == 1
    _, head, http, body = redirects[0]
    assert head.get_header("WARC-X-Canonical-URI") == url
    assert http.get_header("Location") == BAD_LOCATION
    assert body == BAD_REDIRECT_BODY
    assert head.get_header("WARC-Payload-Digest") == payload_digest(body)


def test_modern_market_plan_reaches_every_page(world: Path, tmp_path: Path) -> None:
    """The modern layout: clean URLs, review pages derived from the vendor URL, p=N."""
    with market(world, MODERN) as (site, proxy, _):
        with Workspace.init(tmp_path / "ws") as ws:
            rep = crawl(ws, _opts(site, proxy, concurrency=3))
            assert rep.status == "done"
            assert_every_page_once(ws, world, MODERN)
            kinds = dict(_rows(ws, "SELECT kind, count(*) FROM crawl_frontier GROUP BY 1"))
            assert kinds["feedback"] == len(list((world / MODERN / "reviews").glob("*.html")))


def test_plan_limits_what_is_followed(world: Path, tmp_path: Path) -> None:
    """--plan categories,listings: no vendor or feedback page is requested."""
    with market(world) as (site, proxy, _):
        with Workspace.init(tmp_path / "ws") as ws:
            rep = crawl(ws, _opts(site, proxy, plan=("categories", "listings")))
            assert rep.status == "done"
            kinds = dict(_rows(ws, "SELECT kind, count(*) FROM crawl_frontier GROUP BY 1"))
    assert set(kinds) == {"start", "categories", "listings"}
    assert kinds["listings"] == len(list((world / CLASSIC / "listing").glob("*.html")))
    assert not any(u.startswith(("user.php", "feedback.php")) for u in site.served)


# -- sessions --------------------------------------------------------------------------------

SECRET = "tok3n-analyst-secret"  # noqa: S105 - a test session, not a credential


def test_session_pages_pause_and_a_new_session_resumes(world: Path, tmp_path: Path) -> None:
    with market(world, session=SECRET, expire_after=40, captcha_at=frozenset({10}),
                queue_at=frozenset({20})) as (site, proxy, _):
        netscape = tmp_path / "cookies.txt"
        netscape.write_text("# Netscape HTTP Cookie File\n"
                            f"{site.onion}\tFALSE\t/\tFALSE\t0\tsid\t{SECRET}\n"
                            f"other.onion\tFALSE\t/\tFALSE\t0\tsid\tnot-this-one\n")
        with Workspace.init(tmp_path / "ws") as ws:
            seen: list[CrawlReport] = [crawl(ws, _opts(site, proxy, concurrency=1))]
            for _ in range(3):
                seen.append(crawl(ws, _opts(site, proxy, concurrency=1, cookies=netscape,
                                            start_url=None)))
            header = tmp_path / "header.txt"
            header.write_text(f"Cookie: sid={site.new_session()}; theme=dark\n")
            seen.append(crawl(ws, _opts(site, proxy, concurrency=1, cookies=header,
                                        start_url=None)))
            assert [r.status for r in seen] == ["paused"] * 4 + ["done"]
            assert "login page" in (seen[0].reason or "")
            assert "CAPTCHA" in (seen[1].reason or "")
            assert "anti-DDoS" in (seen[2].reason or "")
            assert "session expired" in (seen[3].reason or "")
            assert len({r.crawl_id for r in seen}) == 1  # one job, resumed
            assert_every_page_once(ws, world, CLASSIC)
            outcomes = fetch_outcomes(ws)
            assert outcomes["interstitial_login"] == 1
            assert outcomes["interstitial_captcha"] == 1
            assert outcomes["interstitial_anti_ddos"] == 1
            assert outcomes["interstitial_session_expired"] == 1
            warc = b"".join(p.read_bytes() for p in (ws.path / "crawl").rglob("*.warc.gz"))
            requests = [r for r in warc_records(ws) if r[0] == "request"]
    assert site.posts == 0
    assert SECRET.encode() not in gzip.decompress(warc)
    assert any("[redacted session: sid" in (h.get_header("Cookie") or "")
               for _, _, h, _ in requests)


def test_forbidden_pauses_too(world: Path, tmp_path: Path) -> None:
    """A 403 (the market refusing the session) pauses the crawl like a login page."""
    with market(world, forbid_at=frozenset({3})) as (site, proxy, _):
        with Workspace.init(tmp_path / "ws") as ws:
            first = crawl(ws, _opts(site, proxy, concurrency=1))
            assert first.status == "paused" and "HTTP 403" in (first.reason or "")
            assert fetch_outcomes(ws)["refused"] == 1
            assert crawl(ws, _opts(site, proxy, start_url=None)).status == "done"
            assert_every_page_once(ws, world, CLASSIC)


def test_cookie_files() -> None:
    """Netscape files keep the market's cookies; a header line applies as given."""
    hosts = ["abc.onion", "mirror.onion"]
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "c.txt"
        p.write_text("# Netscape HTTP Cookie File\n#HttpOnly_.abc.onion\tTRUE\t/\tFALSE\t0\t"
                     "sid\tA\nx.onion\tFALSE\t/\tFALSE\t0\tsid\tB\n")
        assert load_cookies(p, hosts) == {"sid": "A"}
        p.write_text("Cookie: sid=A; lang=en\n")
        assert load_cookies(p, hosts) == {"sid": "A", "lang": "en"}
        p.write_text("# Netscape HTTP Cookie File\nx.onion\tFALSE\t/\tFALSE\t0\tsid\tB\n")
        with pytest.raises(BadInputError, match=r"no cookie for abc\.onion"):
            load_cookies(p, hosts)


# -- robustness ------------------------------------------------------------------------------

@HTTPCORE_SOCKS_LEAK
def test_mirror_rotation(world: Path, tmp_path: Path) -> None:
    """The canonical onion refuses connections: the crawl moves to the mirror; records
    keep the canonical URL, WARC names the mirror used."""
    with market(world, routes={"onion": "closed", "mirror": "site"}) as (site, proxy, _):
        with Workspace.init(tmp_path / "ws") as ws:
            rep = crawl(ws, _opts(site, proxy, mirrors=(site.mirror,), concurrency=1))
            assert rep.status == "done"
            assert_every_page_once(ws, world, CLASSIC)
            assert fetch_outcomes(ws)["connect"] == 1
            mirrors = {h.get_header("WARC-X-Mirror") for t, h, _, _ in warc_records(ws)
                       if t == "response"}
            sources = {s for (s,) in _rows(ws, "SELECT DISTINCT source FROM feedback")}
    assert mirrors == {site.mirror}
    assert set(site.hosts_seen) == {site.mirror}
    assert sources and all(s.startswith(f"http://{site.onion}/") for s in sources)


@HTTPCORE_SOCKS_LEAK
def test_stops_after_consecutive_failures_and_resumes(world: Path, tmp_path: Path) -> None:
    with market(world, routes={"mirror": "site"}) as (site, proxy, _):
        with Workspace.init(tmp_path / "ws") as ws:
            rep = crawl(ws, _opts(site, proxy, max_failures=3))
            assert rep.status == "stopped" and "3 consecutive failures" in (rep.reason or "")
            assert _rows(ws, "SELECT state, attempts FROM crawl_frontier") == [("queued", 3)]
            rep = crawl(ws, _opts(site, proxy, start_url=None, mirrors=(site.mirror,)))
            assert rep.status == "done"
            assert_every_page_once(ws, world, CLASSIC)


def test_no_proxy_running_stops_at_once_and_resumes(world: Path, tmp_path: Path) -> None:
    """Nothing listens at --proxy (Tor not started): the crawl stopped "done" with 0
    pages after giving the start URL up (5 tries, exit 0, nothing left to resume). Now it
    is refused before any request and before a job is created (a job was once left
    `stopped`, and a proxy that is no SOCKS5 left it `running`), naming the proxy and
    what to do; once the proxy runs, the same command crawls the market."""
    with market(world) as (site, proxy, _), _closed_port() as port:
        # a port that refuses while the market's proxy runs: taken and freed before, it
        # could become the proxy's own (it did once, and the crawl went on)
        dead = f"socks5h://127.0.0.1:{port}"
        assert dead != proxy
        with Workspace.init(tmp_path / "ws") as ws:
            with pytest.raises(ProxyUnreachable) as exc:
                crawl(ws, _opts(site, dead))
            assert str(exc.value).startswith(
                f"the proxy at {dead.removeprefix('socks5h://')} refused the connection "
                "(nothing listens there): no request was made, no crawl was started; "
                "start Tor")
            assert "--proxy socks5h://HOST:PORT" in str(exc.value)
            assert _rows(ws, "SELECT count(*) FROM crawl_jobs") == [(0,)]
            assert _rows(ws, "SELECT count(*) FROM crawl_frontier") == [(0,)]
            assert site.requests == 0
            rest = crawl(ws, _opts(site, proxy))
            assert (rest.status, rest.proxy_unreachable) == ("done", None)
            assert_every_page_once(ws, world, CLASSIC)


def test_the_proxy_going_away_mid_crawl_stops_it(world: Path, tmp_path: Path) -> None:
    """Tor stops after a few pages: the run stops at the first request that cannot
    connect (no URL is given up for it) and says how far it got; the next run with a
    proxy finishes the market."""
    with market(world) as (site, proxy, socks):
        def stop_soon() -> None:
            while site.requests < 3:
                time.sleep(0.01)
            socks.kill()

        watcher = threading.Thread(target=stop_soon, daemon=True)
        watcher.start()
        with Workspace.init(tmp_path / "ws") as ws:
            first = crawl(ws, _opts(site, proxy, concurrency=1))
            watcher.join(timeout=30)
            assert first.status == "stopped" and first.proxy_unreachable, first.as_dict()
            assert first.pages >= 2 and "refused the connection" in first.proxy_unreachable
            assert f"stopped after {first.pages} pages stored by this run" in (first.reason
                                                                               or "")
            assert first.outcomes["proxy"] == 1
            states = dict(_rows(ws, "SELECT state, count(*) FROM crawl_frontier GROUP BY 1"))
            assert states.get("queued", 0) >= 1 and "failed" not in states
    with market(world) as (site, proxy, _):
        with Workspace.open(tmp_path / "ws") as ws:
            rest = crawl(ws, _opts(site, proxy, start_url=None))
            assert (rest.crawl_id, rest.status) == (first.crawl_id, "done")
            assert_every_page_once(ws, world, CLASSIC)


def test_max_pages_then_resume(world: Path, tmp_path: Path) -> None:
    with market(world) as (site, proxy, _):
        with Workspace.init(tmp_path / "ws") as ws:
            # no fault is injected here: a generous timeout keeps a loaded machine's slow
            # answer from becoming a retry or a pause that this test is not about
            first = crawl(ws, _opts(site, proxy, max_pages=5, timeout=30.0))
            assert (first.status, first.pages) == ("stopped", 5), (first.status, first.reason)
            assert "--max-pages 5" in (first.reason or "")
            rest = crawl(ws, _opts(site, proxy, start_url=None, timeout=30.0))
            assert rest.status == "done", (rest.status, rest.reason, rest.outcomes)
            assert rest.status == "done" and rest.crawl_id == first.crawl_id
            assert first.pages + rest.pages == len(page_files(world, CLASSIC)) + 1
            assert_every_page_once(ws, world, CLASSIC)
            again = crawl(ws, _opts(site, proxy))  # finished: the next run is a re-crawl
            assert again.crawl_id != first.crawl_id and again.status == "done"
            assert len(_rows(ws, "SELECT * FROM crawl_jobs")) == 2


def test_the_page_cap_holds_with_several_requests_in_flight(world: Path, tmp_path: Path
                                                            ) -> None:
    """After the home page (1 page, nothing in flight, many links queued) the crawler may
    start only one more request under --max-pages 2, not one per free worker: the cap
    counts pages stored plus requests in flight at each request (it was checked once per
    round, and a loaded CI machine stored 6 pages under --max-pages 5)."""
    with market(world) as (site, proxy, _):
        with Workspace.init(tmp_path / "ws") as ws:
            rep = crawl(ws, _opts(site, proxy, max_pages=2, concurrency=4, timeout=30.0))
            assert (rep.status, rep.pages) == ("stopped", 2), rep.as_dict()
            assert rep.fetched == 2


def test_recrawl_adds_observations_of_what_changed(world: Path, tmp_path: Path) -> None:
    """A re-crawl after a price change: the changed page is a new capture and a new
    observation of the listing; unchanged pages add nothing."""
    import re as _re
    with market(world) as (site, proxy, _):
        with Workspace.init(tmp_path / "ws") as ws:
            assert crawl(ws, _opts(site, proxy)).status == "done"
            before = _rows(ws, "SELECT count(*) FROM listing_observations")[0][0]
            key = next(k for k in site.pages if k[0] == "listing.php")
            site.pages[key] = _re.sub(rb'(class="value price">)USD [0-9.,]+',
                                      rb"\g<1>USD 999.00", site.pages[key], count=1)
            again = crawl(ws, _opts(site, proxy))
            assert again.status == "done" and again.pages == len(site.pages) + 1
            rows = _rows(ws, "SELECT listing_id, price FROM listing_observations "
                             "WHERE locator = 'page'")
            after = _rows(ws, "SELECT count(*) FROM listing_observations")[0][0]
    assert after == before + 1
    ref = dict(key[1])["id"]
    prices = [p for lid, p in rows if lid == f"{CLASSIC}:{ref}"]
    # (the page's server time did not change here, so the two observations share it)
    assert len(prices) == 2 and 999.0 in prices and len(set(prices)) == 2


def test_rate_and_concurrency_caps(world: Path, tmp_path: Path) -> None:
    """At most N requests at once (counted by the server); the gaps between requests add
    up to at least half of 1/rate each (a lower bound: load only makes it longer)."""
    with market(world) as (site, proxy, _):
        with Workspace.init(tmp_path / "ws") as ws:
            t0 = time.monotonic()
            rep = crawl(ws, _opts(site, proxy, rate=20.0, concurrency=2, max_pages=12))
            took = time.monotonic() - t0
    assert rep.fetched >= 12
    assert took >= (rep.fetched - 1) * 0.5 / 20.0
    assert 1 <= site.max_inflight <= 2


def test_cli_status_and_audit_trail(world: Path, tmp_path: Path) -> None:
    """`darkmap crawl` through the library call; `--status`; the run is in the audit trail."""
    from click.testing import CliRunner

    from darkmap.api import verify_audit
    from darkmap.cli import main
    ws_path = tmp_path / "ws"
    with market(world) as (site, proxy, _):
        res = CliRunner().invoke(main, ["crawl", CLASSIC, "--init", "-w", str(ws_path), "--start",
                                        f"http://{site.onion}/", "--proxy", proxy, "--rate",
                                        "0", "--max-pages", "3", "--json"])
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["status"] == "stopped"  # the start message: stderr
        assert res.stderr.startswith(f"new crawl {CLASSIC}-") and "--max-pages 3" in res.stderr
    res = CliRunner().invoke(main, ["crawl", CLASSIC, "-w", str(ws_path), "--status", "--json"])
    assert res.exit_code == 0, res.output
    status = json.loads(res.output)
    assert status["status"] == "stopped" and status["frontier"]["done"] == 3
    with Workspace.open(ws_path) as ws:
        entries = [json.loads(e) for (e,) in _rows(ws, "SELECT entry FROM ops_audit")]
        assert verify_audit(ws)[1] is None
    assert [(e["action"], e["outcome"], e["market"], e["pages"]) for e in entries] == [
        ("crawl", "stopped", CLASSIC, 3)]


def test_refuses_local_resolution() -> None:
    with pytest.raises(BadInputError, match="socks5h"):
        Fetcher("socks5://127.0.0.1:9050")
    with pytest.raises(BadInputError, match="needs --proxy"):
        Fetcher(None).fetch("http://abcdef.onion/")


def test_canonical_urls() -> None:
    plan = plans()[CLASSIC]
    canon = plan.canonical
    host = "abc.onion"
    assert canon("http://MIRROR.onion/feedback.php?page=1&id=5#x", host) == \
        "http://abc.onion/feedback.php?id=5"
    assert canon("http://m.onion/a/../listing.php?sid=XYZ&id=7", host) == \
        "http://abc.onion/listing.php?id=7"
    assert canon("javascript:alert(1)", host) is None
    assert plan.resolve("http://elsewhere.onion/listing.php?id=1", "http://abc.onion/",
                        ["abc.onion"], host) is None


# -- WARC ------------------------------------------------------------------------------------

def test_warc_importer_is_declared() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert 'warc = "darkmap.importers.warc:WarcImporter"' in text


def _gzip_members(data: bytes) -> list[tuple[int, int, bytes]]:
    """(offset, length, decompressed) of every gzip member of a .warc.gz."""
    import zlib
    out, pos = [], 0
    while pos < len(data):
        d = zlib.decompressobj(31)
        text = d.decompress(data[pos:])
        used = len(data) - pos - len(d.unused_data)
        out.append((pos, used, text))
        pos += used
    return out


@pytest.mark.parametrize("kind", ["response", "request"])
def test_cut_warc_is_quarantined_not_lost(world: Path, tmp_path: Path, kind: str) -> None:
    """A WARC cut short (a crawler killed mid-write) inside a response or inside a request
    record: the whole records before it are read, the cut record is one quarantined unit,
    and the counts reconcile. (A cut request once read as a whole one: the cut was not
    reported.)"""
    with market(world) as (site, proxy, _):
        with Workspace.init(tmp_path / "ws") as ws:
            crawl(ws, _opts(site, proxy, max_pages=6, timeout=30.0))
            path = next((ws.path / "crawl").rglob("*.warc.gz"))
    data = path.read_bytes()
    members = _gzip_members(data)
    whole = [m for m in members if f"WARC-Type: {kind}".encode() in m[2]]
    off, length, _ = whole[len(whole) // 2]
    before = members.index(next(m for m in members if m[0] == off))
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(data[:off + length // 2])
    with Workspace.init(tmp_path / "again") as ws:
        summary = ingest(ws, [cut])
        t = summary.totals()
        assert t["quarantined"] == 1, t
        assert t["read"] == t["stored"] + t["quarantined"] + t["skipped"] == before + 1, t
        responses_before = sum(1 for m in members[:before] if b"WARC-Type: response" in m[2])
        assert t["stored"] == responses_before, t
        problems = summary.files[0].problems
        assert any("cut short" in p for p in problems), problems


def _tables(ws: Workspace) -> dict[str, list[str]]:
    """Every row of every table of the workspace, as sorted text."""
    names = [n for (n,) in _rows(ws, "SELECT table_name FROM information_schema.tables "
                                     "WHERE table_schema = 'main' ORDER BY 1")]
    return {n: sorted(map(repr, _rows(ws, f'SELECT * FROM "{n}"'))) for n in names}


def test_a_warc_ingested_again_stores_nothing_new(world: Path, tmp_path: Path) -> None:
    """Pages an earlier run stored are not stored anew (found by fuzzing): the crawl's WARC
    ingested into its own workspace, whose pages the crawl stored, reported every page as
    stored by the run (``stored_new``) though no row of them changed. The second ingest
    of a WARC changes no table (but the run log)."""
    with market(world) as (site, proxy, _):
        with Workspace.init(tmp_path / "ws") as ws:
            rep = crawl(ws, _opts(site, proxy, max_pages=6, timeout=30.0))
            assert rep.pages == 6 and rep.outcomes == Counter(ok=6)
            path = next((ws.path / "crawl").rglob("*.warc.gz"))
            before = _tables(ws)
            t = ingest(ws, [path]).totals()
            assert (t["read"], t["stored"], t["skipped"], t["quarantined"]) == (13, 6, 7, 0), t
            assert (t["stored_new"], t["already_stored"]) == (0, 6), t
            after = _tables(ws)
            # the WARC file's own capture, processed row and skipped records, the run
            changed = {n for n in after if after[n] != before.get(n)}
            assert changed == {"captures", "processed", "skipped_pages", "ingest_runs"}
            for name in ("captures", "processed"):
                assert len(after[name]) == len(before[name]) + 1
            assert len(after["skipped_pages"]) == len(before["skipped_pages"]) + 7
    with Workspace.init(tmp_path / "new") as ws:
        first = ingest(ws, [path])
        t = first.totals()
        assert (t["stored"], t["stored_new"], t["already_stored"]) == (6, 6, 0), t
        assert first.records() == {"unit": 6}
        before = _tables(ws)
        again = ingest(ws, [path])
        t = again.totals()
        assert (t["files_already_ingested"], t["stored_new"], t["already_stored"]) == (1, 0, 6)
        after = _tables(ws)
        assert {n for n in after if after[n] != before[n]} == {"ingest_runs"}
        # the same pages in another WARC file (recompressed: other bytes, same records)
        other = tmp_path / "other.warc"
        other.write_bytes(gzip.decompress(path.read_bytes()))
        third = ingest(ws, [other])
        t = third.totals()
        assert (t["files_already_ingested"], t["stored"], t["stored_new"],
                t["already_stored"]) == (0, 6, 0, 6), t
        assert third.records() == {}
        assert _tables(ws)["listing_observations"] == after["listing_observations"]


def _warc_of_pages(path: Path, pages: list[Path]) -> None:
    """A gzip WARC (warcio's writer, one member per record) of real pages as responses."""
    from io import BytesIO

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter
    with open(path, "wb") as fh:
        w = WARCWriter(fh, gzip=True)
        w.write_record(w.create_warcinfo_record("x.warc.gz", {"software": "test"}))
        for k, page in enumerate(pages):
            body = page.read_bytes()
            w.write_record(w.create_warc_record(
                f"http://{'a' * 56}.onion/page/{k}", "response", payload=BytesIO(body),
                length=len(body), http_headers=StatusAndHeaders(
                    "200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")))


@pytest.mark.parametrize("which", [1, 2])
def test_a_warc_member_failing_its_check_is_quarantined_not_stored_cut(
        tmp_path: Path, which: int) -> None:
    """A response whose gzip member fails its CRC (found by fuzzing): warcio printed a
    message and stopped as if the file ended, so the record was stored cut short as a
    whole page, and the records after it were lost, without a word. The damaged record
    is quarantined, and the records after it are read."""
    from conftest import DATA

    from darkmap.collect.ingest import ingest as ingest_files
    # pages larger than warcio's reads, as in the case found (an Empire listing of 108 KB)
    pages = sorted(p for p in (DATA / "pages" / "empire").rglob("*")
                   if p.is_file() and p.stat().st_size > 60_000)[:3]
    assert len(pages) == 3
    whole = tmp_path / "whole.warc.gz"
    _warc_of_pages(whole, pages)
    data = whole.read_bytes()
    members = _gzip_members(data)
    assert len(members) == 4
    off, length, _ = members[1 + which]          # the response of pages[which]
    end = off + length                           # its CRC32 is at end - 8
    damaged = tmp_path / "crc.warc.gz"
    damaged.write_bytes(data[:end - 8] + b"\0\0\0\0" + data[end - 4:])
    with Workspace.init(tmp_path / "ws") as ws:
        t = ingest_files(ws, [damaged]).totals()
        assert (t["read"], t["stored"], t["quarantined"], t["skipped"]) == (4, 2, 1, 1), t
        reasons = [r for (r,) in ws.con.execute("SELECT reason FROM quarantine").fetchall()]
        assert reasons == [
            f"WARC record {which + 2} is damaged: its compressed data (byte {off}) fails its "
            "check (Error -3 while decompressing data: incorrect data check); what reads of "
            "it is not what was written; " + (
                f"the reading resumes with the next record (byte {end})" if which == 1 else
                "no record found after it: the rest of the file is not read")]
        sizes = sorted(n for (n,) in ws.con.execute(
            "SELECT size FROM captures WHERE media_type = 'text/html'").fetchall())
        kept = [p for k, p in enumerate(pages) if k != which]
        assert sizes == sorted(p.stat().st_size for p in kept)  # none cut short, none lost


def _damage_gzip_magic(data: bytes, off: int, length: int) -> bytes:
    return data[:off] + b"\0\0" + data[off + 2:]


def _damage_deflate(data: bytes, off: int, length: int) -> bytes:
    return data[:off + 200] + b"\xff" * 100 + data[off + 300:]


def _damage_insert(data: bytes, off: int, length: int) -> bytes:
    return data[:off] + b"not gzip " * 40 + data[off:]


def _damage_warc_header(data: bytes, off: int, length: int) -> bytes:
    text = gzip.decompress(data[off:off + length]).replace(b"WARC/1.1", b"WXRC/1.1", 1)
    return data[:off] + gzip.compress(text) + data[off + length:]


_GZIP_BAD = ("is damaged: its compressed data (byte {off}) fails its check (Error -3 while "
             "decompressing data: {what}); what reads of it is not what was written")


@pytest.mark.parametrize(("damage", "why"), [
    (_damage_gzip_magic, _GZIP_BAD.replace("{what}", "incorrect header check")),
    # zlib's words depend on what the damage meets (the WARC's dates move it): any of them
    (_damage_deflate, _GZIP_BAD.replace("{what}", "...")),
    (_damage_insert, _GZIP_BAD.replace("{what}", "incorrect header check")),
    (_damage_warc_header, ("(byte {off}) is unreadable: ArchiveLoadFailed: Unknown archive "
                          "format, first line: ['WXRC/1.1']")),
    (None, ("(byte {off}) is unreadable: ArchiveLoadFailed: Invalid WARC record, first line: "
           "WXRC/1.1")),
], ids=["gzip_header", "deflate_data", "bytes_inserted", "warc_header_in_member",
        "plain_first_line"])
def test_one_damaged_warc_record_costs_that_record_only(world: Path, tmp_path: Path, damage: Any,
                                                       why: str) -> None:
    """A crawl's WARC with one damaged record (found by fuzzing: the records after it were
    quarantined as one unit, not read). The reading resumes with the next record: the
    next gzip member, or (``None``: the WARC uncompressed, a record's first line damaged)
    the next ``WARC/`` line after a record's end. Only the damaged record is quarantined,
    with its offset (bytes inserted between two records are one damaged record: the
    record after them is read); every other page is stored; a second ingest changes
    nothing."""
    with market(world) as (site, proxy, _):
        with Workspace.init(tmp_path / "ws") as ws:
            crawl(ws, _opts(site, proxy, max_pages=6, timeout=30.0))
            path = next((ws.path / "crawl").rglob("*.warc.gz"))
            pages = dict(_rows(ws, "SELECT url, sha256 FROM crawl_frontier "
                                   "WHERE sha256 IS NOT NULL"))
    assert len(pages) == 6
    data = path.read_bytes()
    members = _gzip_members(data)
    assert len(members) == 13  # warcinfo, then 6 times request and response
    k = 6                      # record 7: the response of the third page
    off, length, text = members[k]
    assert b"WARC-Type: response" in text
    url = next(line.split(b": ", 1)[1].decode() for line in text.split(b"\r\n")
               if line.startswith(b"WARC-X-Canonical-URI: "))
    if damage is None:
        plain = b"".join(m[2] for m in members)
        off = sum(len(m[2]) for m in members[:k])
        nxt = off + len(text)
        bad = tmp_path / "damaged.warc"
        bad.write_bytes(plain[:off] + b"WXRC" + plain[off + 4:])
    else:
        bad = tmp_path / "damaged.warc.gz"
        bad.write_bytes(damage(data, off, length))
        grown = len(bad.read_bytes()) - len(data)
        nxt = off + (grown if damage is _damage_insert else length + grown)
    lost = damage is not _damage_insert
    with Workspace.init(tmp_path / "again") as ws:
        summary = ingest(ws, [bad])
        t = summary.totals()
        assert (t["read"], t["stored"], t["quarantined"], t["skipped"]) == (
            (13, 5, 1, 7) if lost else (14, 6, 1, 7)), t
        rows = _rows(ws, "SELECT locator, reason FROM quarantine")
        if damage is _damage_deflate:   # "incorrect data check", "invalid distance ...", ...
            rows = [(loc, re.sub(r"(while decompressing data: )[^)]*\)", r"\1...)", why_))
                    for loc, why_ in rows]
        assert rows == [("record 7", (f"WARC record 7 {why.format(off=off)}; the reading "
                                     f"resumes with the next record (byte {nxt})"))]
        stored = {r[0] for r in _rows(ws, "SELECT sha256 FROM processed WHERE importer = "
                                          "'pages'")}
        assert stored == {sha for u, sha in pages.items() if u != url or not lost}
        before = _tables(ws)
        again = ingest(ws, [bad]).totals()
        assert (again["files_already_ingested"], again["stored_new"]) == (1, 0), again
        after = _tables(ws)
        assert {n for n in after if after[n] != before[n]} == {"ingest_runs"}


def test_a_warc_compressed_as_one_stream_is_read_whole(world: Path, tmp_path: Path) -> None:
    """A WARC gzipped whole (``gzip crawl.warc``, as an analyst may store one) rather than
    one gzip member a record: warcio refuses it after the first record, and the rest was
    quarantined as one unit. It is read decompressed, every page as from the original;
    one that expands past 50 times its size is not read further."""
    with market(world) as (site, proxy, _):
        with Workspace.init(tmp_path / "ws") as ws:
            crawl(ws, _opts(site, proxy, max_pages=6, timeout=30.0))
            path = next((ws.path / "crawl").rglob("*.warc.gz"))
    plain = b"".join(m[2] for m in _gzip_members(path.read_bytes()))
    one = tmp_path / "crawl-one-stream.warc.gz"
    one.write_bytes(gzip.compress(plain))
    results = {}
    for f in (path, one):
        with Workspace.init(tmp_path / f"in-{f.name}") as ws:
            t = ingest(ws, [f]).totals()
            results[f.name] = ((t["read"], t["stored"], t["quarantined"], t["skipped"]),
                               _rows(ws, "SELECT sha256 FROM processed WHERE importer = "
                                         "'pages' ORDER BY 1"))
    assert results[one.name] == results[path.name]
    assert results[one.name][0] == (13, 6, 0, 7)
    bomb = tmp_path / "bomb.warc.gz"
    bomb.write_bytes(gzip.compress(plain + b"\r\n" * 2_000_000))
    with Workspace.init(tmp_path / "bomb") as ws:
        ingest(ws, [bomb])
        assert any("expands past 50 times" in r for (r,) in _rows(
            ws, "SELECT reason FROM quarantine"))


def test_warc_damage_that_is_not_resynchronised(tmp_path: Path) -> None:
    """What the reader does not resynchronise, said in the quarantine: damage with no
    record start after it, and damage so dense that its reading would pass three times
    the file's size (a record start every few bytes that does not read: linear, not
    quadratic, in what an attacker writes)."""
    from conftest import DATA

    from darkmap.importers.warc import _responses
    pages = sorted(p for p in (DATA / "pages" / "empire").rglob("*") if p.is_file())[:2]
    whole = tmp_path / "whole.warc.gz"
    _warc_of_pages(whole, pages)
    plain = gzip.decompress(whole.read_bytes())
    last = plain.rindex(b"WARC/1.0\r\n")
    tail = tmp_path / "tail.warc"
    tail.write_bytes(plain[:last] + b"WXRC" + plain[last + 4:])
    dense = tmp_path / "dense.warc"
    dense.write_bytes(plain + b"\r\n\r\nWARC/x\r\n" * 200_000)
    for path, reason in [
            (tail, (f"WARC record 3 (byte {last}) is unreadable: ArchiveLoadFailed: Invalid "
                   "WARC record, first line: WXRC/1.0; no record found after it: the rest of "
                   "the file is not read")),
            (dense, ("damaged too densely to resynchronise (its reading passed "
                    f"{3 * dense.stat().st_size + (1 << 20)} bytes: three times the file, and "
                    "1 MiB); no record found after it: the rest of the file is not read"))]:
        with open(path, "rb") as fh:
            items = list(_responses(fh))
        kinds = Counter(type(i).__name__ for i in items)
        assert kinds["_Response"] == (1 if path is tail else 2), kinds
        assert items[-1].reason.endswith(reason), items[-1].reason  # type: ignore[union-attr]


def _plain_warc(pages: list[Path], payloads: list[bytes] | None = None) -> bytes:
    """An uncompressed WARC (warcio's writer, with block and payload digests): a warcinfo
    record, then a response of each page (or of each of ``payloads``)."""
    from io import BytesIO

    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter
    out = BytesIO()
    w = WARCWriter(out, gzip=False)
    w.write_record(w.create_warcinfo_record("x.warc", {"software": "test"}))
    for k, body in enumerate(payloads or [p.read_bytes() for p in pages]):
        w.write_record(w.create_warc_record(
            f"http://{'c' * 56}.onion/page/{k}", "response", payload=BytesIO(body),
            length=len(body), http_headers=StatusAndHeaders(
                "200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")))
    return out.getvalue()


def _record_starts(plain: bytes) -> list[int]:
    return [0] + [m.start() + 4 for m in re.finditer(rb"\r\n\r\nWARC/1\.[01]\r\n", plain)]


def _raise_length(plain: bytes, start: int, by: int) -> tuple[bytes, int]:
    """``plain`` with the Content-Length of the record at ``start`` raised by ``by``; and
    how many bytes longer the file became (the number's new digits)."""
    m = re.compile(rb"Content-Length: (\d+)\r\n").search(plain, start)
    assert m is not None
    new = str(int(m.group(1)) + by).encode()
    return plain[:m.start(1)] + new + plain[m.end(1):], len(new) - len(m.group(1))


@pytest.mark.parametrize("swallow", ["part", "whole", "past_the_end"])
def test_a_raised_content_length_costs_that_record_only(tmp_path: Path, swallow: str,
                                                       capfd: pytest.CaptureFixture[str]
                                                       ) -> None:
    """An uncompressed WARC in which one record's Content-Length was raised (found by a
    test of hostile input): warcio read the records after it as that record's block, so
    a record it swallowed whole was lost without a word (the counts reconciled over the
    records seen), and one swallowed in part was lost with a quarantine naming bytes of
    the wrong record. The record whose length runs over another record's start, and is
    shown false (no blank lines after it, or its digest fails), is quarantined, and the
    reading resumes with the record inside it: only that record is lost. warcio's warning,
    written to stderr with the record's bytes, is not written."""
    from conftest import DATA

    from darkmap.collect.ingest import ingest as ingest_files
    pages = sorted(p for p in (DATA / "pages" / "empire").rglob("*") if p.is_file())[:4]
    plain = _plain_warc(pages)
    starts = _record_starts(plain)
    assert len(starts) == 5 and starts[-1] < len(plain)
    by = {"part": starts[3] - starts[2] - 100,      # ends inside record 3
          "whole": starts[3] - starts[2],           # ends where record 3 ended: whole
          "past_the_end": len(plain)}[swallow]      # every record after it
    bad_bytes, grown = _raise_length(plain, starts[1], by)
    length = int(re.findall(rb"Content-Length: (\d+)", bad_bytes[starts[1]:])[0])
    bad = tmp_path / "raised.warc"
    bad.write_bytes(bad_bytes)
    why = ("its block does not hash to its digest" if swallow == "whole" else
           "the bytes after it are not the blank lines that end a record")
    with Workspace.init(tmp_path / "ws") as ws:
        t = ingest_files(ws, [bad]).totals()
        assert (t["read"], t["stored"], t["quarantined"], t["skipped"]) == (5, 3, 1, 1), t
        assert _rows(ws, "SELECT locator, field, reason FROM quarantine") == [(
            "record 2", "Content-Length",
            (f"WARC record 2 (byte {starts[1]}) is damaged: its Content-Length ({length}) "
             f"runs over the start of another record (byte {starts[2] + grown}) and {why}; "
             f"the reading resumes with the next record (byte {starts[2] + grown})"))]
        sizes = sorted(n for (n,) in ws.con.execute(
            "SELECT size FROM captures WHERE media_type = 'text/html'").fetchall())
        assert sizes == sorted(p.stat().st_size for p in pages[1:])  # none lost but page 0
    assert "Content-Length" not in capfd.readouterr().err


def test_a_warc_inside_a_response_is_not_taken_apart(tmp_path: Path) -> None:
    """A response whose payload is itself a WARC (record starts inside its block) and whose
    length is true is one record: only a length shown false is read as running over other
    records."""
    from conftest import DATA

    from darkmap.importers.warc import _responses
    pages = sorted(p for p in (DATA / "pages" / "empire").rglob("*") if p.is_file())[:2]
    inner = _plain_warc(pages)
    path = tmp_path / "nested.warc"
    path.write_bytes(_plain_warc([], payloads=[inner, pages[0].read_bytes()]))
    with open(path, "rb") as fh:
        items = list(_responses(fh))
    assert [type(i).__name__ for i in items] == ["SkipRecord", "_Response", "_Response"]
    assert [i.body for i in items[1:]] == [inner, pages[0].read_bytes()]  # type: ignore[union-attr]


def test_a_coded_response_of_another_writer_is_not_called_tampered(tmp_path: Path) -> None:
    """warcio's own writer, with a gzip-coded and a chunked response (found by fuzzing):
    their WARC-Payload-Digest is of the payload as stored, and darkmap checked it on the
    decoded content, so both were quarantined as tampered with. Now both are pages, and a
    payload changed after the digest still is quarantined."""
    from io import BytesIO

    from conftest import DATA
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    from darkmap.collect.ingest import ingest as ingest_files
    pages = sorted(p for p in (DATA / "pages" / "empire").rglob("*")
                   if p.is_file() and p.stat().st_size > 60_000)[:2]
    gz = gzip.compress(pages[0].read_bytes())
    body = pages[1].read_bytes()
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 5000]), body[i:i + 5000])
                       for i in range(0, len(body), 5000)) + b"0\r\n\r\n"
    path = tmp_path / "other.warc.gz"
    with open(path, "wb") as fh:
        w = WARCWriter(fh, gzip=True)
        for k, (payload, headers) in enumerate([
                (gz, [("Content-Type", "text/html"), ("Content-Encoding", "gzip")]),
                (chunked, [("Content-Type", "text/html"), ("Transfer-Encoding", "chunked")])]):
            w.write_record(w.create_warc_record(
                f"http://{'b' * 56}.onion/p/{k}", "response", payload=BytesIO(payload),
                length=len(payload), http_headers=StatusAndHeaders("200 OK", headers,
                                                                   protocol="HTTP/1.1")))
    with Workspace.init(tmp_path / "ws") as ws:
        t = ingest_files(ws, [path]).totals()
        assert (t["stored"], t["quarantined"]) == (2, 0), t
        sizes = sorted(n for (n,) in ws.con.execute(
            "SELECT size FROM captures WHERE media_type = 'text/html'").fetchall())
        assert sizes == sorted(p.stat().st_size for p in pages)
    # the same file with one payload byte changed after its digest was written
    data = path.read_bytes()
    members = _gzip_members(data)
    off, length, text = members[0]
    at = text.index(b"\r\n\r\n", text.index(b"HTTP/1.1 200")) + 4 + 100
    changed = text[:at] + bytes([text[at] ^ 1]) + text[at + 1:]
    bad = tmp_path / "changed.warc.gz"
    bad.write_bytes(gzip.compress(changed) + data[off + length:])
    with Workspace.init(tmp_path / "ws2") as ws:
        t = ingest_files(ws, [bad]).totals()
        reasons = [r for (r,) in ws.con.execute("SELECT reason FROM quarantine").fetchall()]
        assert t["stored"] == 1 and any("WARC-Payload-Digest" in r for r in reasons), reasons


# -- processes: SIGKILL and the resolver -----------------------------------------------------

def _cli(ws: Path, site: MarketSite, proxy: str, *extra: str, hook: Path | None = None
         ) -> list[str]:
    code = "from darkmap.cli import main; main()"
    if hook is not None:
        code = f"exec(open({str(hook)!r}).read()); " + code
    return [sys.executable, "-c", code, "crawl", site.market, "--init", "-w", str(ws),
            "--start", f"http://{site.onion}/", "--proxy", proxy, "--backoff", "0.01",
            "--timeout", "5", "--concurrency", "1", "--json", *extra]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src")
    return env


def _store(ws_path: Path) -> dict[str, Any]:
    """What a finished crawl stored, volatile columns and fetch times left out."""
    with Workspace.open(ws_path, read_only=True) as ws:
        shas = set(done_pages(ws).values())
        out: dict[str, Any] = evidence(ws, shas, {"observed_at"})
        out["frontier"] = sorted(_rows(ws, "SELECT url, kind, depth, state, http_status, "
                                           "sha256 FROM crawl_frontier"))
        out["captures"] = sorted(_rows(ws, "SELECT sha256, size, source FROM captures"))
        out["processed"] = sorted(_rows(ws, "SELECT sha256, importer, source, read_count, "
                                            "stored_count, quarantined, skipped, market_id "
                                            "FROM processed"))
        out["jobs"] = _rows(ws, "SELECT market_id, start_url, plan, status FROM crawl_jobs")
    return out


def _warc_bytes(ws_path: Path) -> int:
    return sum(p.stat().st_size for p in (ws_path / "crawl").rglob("*.warc.gz")) \
        if (ws_path / "crawl").exists() else 0


def _kill_after(proc: subprocess.Popen[bytes], ws_path: Path, grown: int) -> bool:
    """SIGKILL ``proc`` once its WARC files grew by ``grown`` bytes (a point in the crawl's
    progress, not in time); False when it ended before."""
    start = _warc_bytes(ws_path)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if _warc_bytes(ws_path) - start >= grown:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait()
    return proc.returncode == -signal.SIGKILL


def test_sigkill_at_random_points_then_resume_equals_one_crawl(world: Path,
                                                                tmp_path: Path) -> None:
    rng = random.Random(1919)
    with market(world) as (site, proxy, _):
        clean = tmp_path / "clean"
        done = subprocess.run(_cli(clean, site, proxy, "--rate", "25"), env=_env(),
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["status"] == "done"
        total = _warc_bytes(clean)
        killed = tmp_path / "killed"
        for _ in range(5):
            proc = subprocess.Popen(_cli(killed, site, proxy, "--rate", "25"), env=_env(),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # at most 5 x 15% of a whole crawl's WARC: every kill lands mid-crawl
            assert _kill_after(proc, killed, int(total * rng.uniform(0.02, 0.15)))
            with Workspace.open(killed, read_only=True) as ws:
                assert _rows(ws, "SELECT count(*) FROM crawl_frontier WHERE state = 'queued'"
                             )[0][0] > 0
        final = subprocess.run(_cli(killed, site, proxy, "--rate", "0"), env=_env(),
                               capture_output=True, text=True, timeout=300, check=False)
        assert final.returncode == 0, final.stderr
    assert json.loads(final.stdout)["status"] == "done"
    assert _store(killed) == _store(clean)
    with Workspace.open(killed, read_only=True) as ws:
        assert_every_page_once(ws, world, CLASSIC)


_HOOK = """
import socket as _s
_log = open({log!r}, "a", buffering=1)
def _wrap(name, fn):
    def hooked(host, *a, **k):
        _log.write(name + " " + str(host) + "\\n")
        return fn(host, *a, **k)
    return hooked
for _n in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "getnameinfo"):
    setattr(_s, _n, _wrap(_n, getattr(_s, _n)))
"""


def test_no_onion_name_reaches_the_system_resolver(world: Path, tmp_path: Path) -> None:
    """Every resolver entry point of the crawler process is watched: the proxy's address
    is looked up, no .onion name ever is; the proxy is asked for the names."""
    log = tmp_path / "resolver.log"
    hook = tmp_path / "hook.py"
    hook.write_text(_HOOK.format(log=str(log)))
    with market(world) as (site, proxy, socks):
        res = subprocess.run(_cli(tmp_path / "ws", site, proxy, "--rate", "0",
                                  "--max-pages", "8", hook=hook),
                             env=_env(), capture_output=True, text=True, timeout=300,
                             check=False)
        assert res.returncode == 0, res.stderr
    looked_up = log.read_text().splitlines()
    assert any(line.endswith(" 127.0.0.1") for line in looked_up)  # the hook sees lookups
    assert not [line for line in looked_up if ".onion" in line.lower()]
    assert json.loads(res.stdout)["pages_stored"] == 8
    assert (3, site.onion) in socks.asked
    # the control: the same hook records an .onion lookup when one is made
    control = subprocess.run(
        [sys.executable, "-c", (f"exec(open({str(hook)!r}).read())\nimport socket\n"
                                "try:\n    socket.getaddrinfo('control.onion', 80)\n"
                                "except OSError:\n    pass")],
        capture_output=True, text=True, timeout=60, check=False)
    assert control.returncode == 0, control.stderr
    assert "getaddrinfo control.onion" in log.read_text()
