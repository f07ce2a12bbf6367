"""The crawler: a polite, resumable crawl of one market through Tor, kept as evidence.

``crawl(ws, CrawlOptions(...))`` runs one crawl job of one market (``darkmap crawl``):

* **Frontier.** Starting from the start URL, it follows the links the market's crawl
  plan (:mod:`darkmap.collect.crawl_plan`) names for the kinds asked for (categories,
  listings, vendors, feedback, and their next pages), breadth first, each canonical URL
  once. The frontier and every request's outcome live in the workspace
  (:mod:`darkmap.store.crawl`); a group of fetched pages commits in one transaction
  with their captures, records and the URLs they linked to, so a crawl killed at any
  point resumes where it stopped: what was stored is not fetched again, no queued URL
  is lost (a page fetched but not committed is fetched again).
* **Evidence.** Every request and response goes to WARC (:mod:`darkmap.collect.crawl_warc`),
  every 2xx HTML body into the capture store by sha256, extracted by the market
  templates exactly as a saved page (:func:`darkmap.importers.warc.store_page`).
* **Politeness.** At most ``rate`` requests per second (each gap drawn at random
  between half and one and a half times ``1/rate``), at most ``concurrency`` at once;
  timeouts, refused connections, 5xx, 429 and truncated bodies are retried with
  exponential backoff and jitter up to ``retries`` times (``Retry-After`` honoured on a
  429 or 503; a 429 holds back every request to the market); a failure to
  reach the market moves to the next of its mirrors; ``max_failures`` consecutive
  failures stop the crawl (status ``stopped``) with the frontier intact.
* **The proxy.** A proxy is required (``direct`` asks for none, never for an onion).
  Before the job is created or changed, the proxy itself is tried (:func:`proxy_problem`):
  when it fails (Tor not running, a wrong ``--proxy``) nothing is written or requested
  (:class:`ProxyUnreachable`). After any request that could not connect it is tried
  again: when it fails then, the crawl stops at once (status ``stopped``, the reason
  naming the proxy and what to do; the report's ``proxy_unreachable`` says why), the
  URL stays queued with its tries uncounted, and no URL is given up for a fault of the
  crawling machine.
* **Sessions.** A login, CAPTCHA, anti-DDoS queue or session-expired page (found by the
  page-type detection of the templates), or a 401/403, pauses the job (status
  ``paused``, the reason says what the analyst must do); the URL stays queued. Running
  the crawl again with a fresh session (``--cookies``) resumes it. The crawler never
  posts a form, solves a CAPTCHA, buys or messages: it only sends GET requests for the
  links of the plan.
"""

from __future__ import annotations

import heapq
import os
import random
import re
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from darkmap.collect.crawl_fetch import (
    RETRYABLE,
    Fetched,
    Fetcher,
    load_cookies,
    proxy_label,
    proxy_problem,
)
from darkmap.collect.crawl_plan import KINDS, CrawlPlan, Link, authority, plans
from darkmap.collect.crawl_warc import WarcLog
from darkmap.errors import BadInputError, DarkmapError, NotFoundError
from darkmap.extract.decode import binary_kind, decode_page, looks_like_html
from darkmap.extract.engine import load_templates
from darkmap.importers.warc import processed_pages, store_page
from darkmap.store import crawl as db
from darkmap.store.runs import finish_run, start_run
from darkmap.store.workspace import Workspace, utcnow
from darkmap.store.writer import RecordWriter, begin, commit, rollback

__all__ = ["INTERSTITIALS", "MAX_REDIRECTS", "CrawlOptions", "CrawlReport", "ProxyUnreachable",
           "crawl", "crawl_status", "limits_line"]

INTERSTITIALS = {
    "login": "a login page: the session is missing or expired; log in with Tor Browser "
             "and run the crawl again with --cookies",
    "captcha": "a CAPTCHA page: solve it in Tor Browser (the crawler never does), then "
               "run the crawl again with the session's --cookies",
    "anti_ddos": "an anti-DDoS queue: pass it in Tor Browser, then run the crawl again "
                 "with the session's --cookies",
    "session_expired": "the market says the session expired: log in again with Tor "
                       "Browser and run the crawl again with --cookies",
}
"""Page types that pause a crawl, and what the analyst is told to do."""
_EXPIRED = re.compile(r"(?i)session (?:has )?(?:expired|timed out)")
_COMMIT_PAGES = 25
_COMMIT_SECONDS = 2.0
_MAX_RETRY_AFTER = 600.0
_NOTHING = "no page was obtained"
MAX_REDIRECTS = 10
"""Redirects followed in a row from one URL (an endless chain once made 5,106 requests
in 60 s)."""
DEFAULT_MAX_DEPTH = 30
DEFAULT_MAX_REQUESTS = 50_000
DEFAULT_MAX_BYTES = 4 << 30
_PROXY_PROBE_SECONDS = 10.0
_PROXY_FIX = ("start Tor (`sudo systemctl start tor`, or run `tor`), or point --proxy "
              "socks5h://HOST:PORT at a SOCKS port that runs")
_PROXY_HINT = f"{_PROXY_FIX}; the crawl is kept: run the same command again to resume"


def retry_after(value: str | None) -> float | None:
    """The seconds a ``Retry-After`` of whole seconds asks for (at most
    ``_MAX_RETRY_AFTER``); None for anything else (an HTTP date, "²", which ``isdigit``
    takes for a digit and ``float`` does not: found by fuzzing, it stopped the crawl)."""
    v = (value or "").strip()
    if not (v.isascii() and v.isdigit()) or len(v) > 12:
        return None
    return min(float(v), _MAX_RETRY_AFTER)


@dataclass
class CrawlOptions:
    """What ``darkmap crawl`` was asked (see :mod:`darkmap.collect.crawl`)."""

    market_id: str
    start_url: str | None = None
    proxy: str | None = None
    cookies: Path | None = None
    plan: tuple[str, ...] = KINDS
    max_pages: int | None = None
    max_depth: int | None = DEFAULT_MAX_DEPTH
    """Links followed from the start page, at most (a page's next page is no level
    deeper); None: no limit. A link space without end (a calendar) stops here."""
    max_requests: int | None = DEFAULT_MAX_REQUESTS
    """Requests of one run (retries, redirects and failures included); None: no limit."""
    max_bytes: int | None = DEFAULT_MAX_BYTES
    """Bytes of responses one run receives (what goes to WARC); None: no limit."""
    rate: float = 0.5
    concurrency: int = 2
    retries: int = 4
    max_failures: int = 20
    backoff: float = 5.0
    timeout: float = 60.0
    deadline: float | None = None
    """Seconds one request may take in all (connection, headers, body); None: 4 times
    ``timeout``, at least 30 s."""
    mirrors: tuple[str, ...] = ()
    new: bool = False
    plan_dirs: tuple[Path, ...] = ()
    seed: int | None = None
    direct: bool = False
    """No proxy: requests go out from this machine's own address (a clearnet test site
    only; refused for an ``.onion``). Without it, a missing ``proxy`` is refused."""

    def check(self) -> None:
        """Raise ``BadInputError`` naming the first option out of range."""
        bad = [k for k in self.plan if k not in KINDS]
        if bad:
            raise BadInputError(f"--plan: unknown kind {bad[0]!r} (have {', '.join(KINDS)})")
        if not self.rate >= 0:  # nan too
            raise BadInputError("--rate must be 0 (no limit) or more requests per second")
        if self.concurrency < 1 or self.retries < 0 or self.max_failures < 1:
            raise BadInputError("--concurrency and --max-failures must be at least 1, "
                                "--retries at least 0")
        for name, cap in (("--max-pages", self.max_pages), ("--max-depth", self.max_depth),
                          ("--max-requests", self.max_requests),
                          ("--max-bytes", self.max_bytes)):
            if cap is not None and cap < 0:
                raise BadInputError(f"{name} must be 0 or more")
        if not self.timeout > 0 or not self.backoff >= 0:
            raise BadInputError("--timeout must be more than 0 seconds, --backoff 0 or more")
        if self.deadline is not None and not self.deadline > 0:
            raise BadInputError("--deadline must be more than 0 seconds")
        self._check_route()

    def _check_route(self) -> None:
        """A proxy, or ``direct`` asked for in so many words, and never for an onion."""
        if self.direct:
            if self.proxy:
                raise BadInputError("--direct and --proxy exclude each other: --direct "
                                    "sends requests from this machine's own address")
            onion = next((u for u in (self.start_url or "", *self.mirrors)
                          if _is_onion(u)), None)
            if onion is not None:
                raise BadInputError(f"--direct: {onion} is an onion address; it is reached "
                                    "through Tor only (--proxy socks5h://HOST:PORT)")
            return
        if not self.proxy:
            raise BadInputError(
                "no proxy given (--proxy is empty): the crawl would connect from this "
                "machine's own address; give --proxy socks5h://HOST:PORT (Tor's SOCKS "
                "port), or --direct for a clearnet test site (never an onion)")
        if not self.proxy.startswith("socks5h://"):
            raise BadInputError(f"--proxy {proxy_label(self.proxy)}: use socks5h://host:port "
                                "(the proxy resolves names; the crawling machine must not)")


@dataclass
class CrawlReport:
    """What one crawl run did and where the job stands."""

    crawl_id: str
    market_id: str
    status: str
    reason: str | None
    fetched: int = 0
    pages: int = 0
    received: int = 0
    """Bytes of responses received by this run."""
    too_deep: int = 0
    """Links not followed: deeper than ``max_depth``."""
    outcomes: Counter[str] = field(default_factory=Counter)
    frontier: dict[str, int] = field(default_factory=dict)
    warc: str = ""
    proxy_unreachable: str | None = None
    """Why the proxy could not be reached, when that stopped the run (else None)."""

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values."""
        return {"crawl_id": self.crawl_id, "market": self.market_id, "status": self.status,
                "reason": self.reason, "requests": self.fetched, "pages_stored": self.pages,
                "outcomes": dict(sorted(self.outcomes.items())), "frontier": self.frontier,
                "bytes": self.received, "too_deep": self.too_deep, "warc": self.warc}


@dataclass(order=True)
class _Item:
    """A URL to fetch (ordered by when it may be fetched, then discovery order)."""

    ready: float
    seq: int
    url: str = field(compare=False)
    kind: str = field(compare=False)
    depth: int = field(compare=False)
    attempts: int = field(compare=False, default=0)


class _Crawl:
    """The state of one crawl run (one process)."""

    def __init__(self, ws: Workspace, opts: CrawlOptions, plan: CrawlPlan, job: db.Job,
                 hosts: list[str]) -> None:
        self.ws, self.opts, self.plan, self.job = ws, opts, plan, job
        self.host = hosts[0]
        self.hosts = hosts
        # the addresses requests go to: every onion of the market, none with --direct
        self.rotation = _request_hosts(hosts, opts.direct)
        start_host = authority(opts.start_url or "")
        # requests go first to the onion the analyst gave; records name the canonical one
        self.mirror = self.rotation.index(start_host) if start_host in self.rotation else 0
        self.rng = random.Random(opts.seed)
        self.run_id = uuid.uuid4().hex[:12]
        self.report = CrawlReport(job.crawl_id, job.market_id, "running", None)
        self.batch = db.CrawlBatch()
        self.writer = RecordWriter(ws.con, autoflush=False)
        self.done = processed_pages(ws.con)
        self.queue: deque[_Item] = deque()
        self.delayed: list[_Item] = []
        self.seen: set[str] = set()
        self.seq = db.max_seq(ws.con, job.crawl_id)
        self.failures = 0
        self.stop: tuple[str, str] | None = None
        self.cap: str | None = None  # the run's limit reached, when one was
        self.hops: dict[str, int] = {}  # redirects in a row that led to a queued URL
        self.next_at = 0.0
        self.pending_pages = 0
        self.last_commit = time.monotonic()
        cookies = load_cookies(opts.cookies, [_hostname(h) for h in hosts]) \
            if opts.cookies else None
        self.fetcher = Fetcher(opts.proxy, cookies, timeout=opts.timeout,
                               deadline=opts.deadline)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        name = f"{stamp}-{os.getpid()}-{self.run_id[:6]}.warc.gz"
        self.warc = WarcLog(
            ws.path / "crawl" / job.market_id / job.crawl_id / name,
            proxy_label(opts.proxy),
            {"crawl-id": job.crawl_id, "market": job.market_id, "start-url": job.start_url,
             "plan": job.plan, "proxy": proxy_label(opts.proxy)})
        self.report.warc = str(self.warc.path)

    # -- frontier ------------------------------------------------------------------------

    def load(self) -> None:
        """The job's frontier from the workspace: what is queued, what is known."""
        # a job that obtained nothing: its failed URLs are tried again
        retry = self.job.status == "failed" and (self.job.reason or "").startswith(_NOTHING)
        for row in db.frontier(self.ws.con, self.job.crawl_id):
            self.seen.add(row.url)
            if row.state == "failed" and retry:
                self.batch.requeued.append((self.job.crawl_id, row.url))
                self.queue.append(_Item(0.0, row.seq, row.url, row.kind, row.depth))
            elif row.state == "queued":
                self.queue.append(_Item(0.0, row.seq, row.url, row.kind, row.depth, row.attempts))

    def add(self, links: list[Link], depth: int) -> None:
        """Queue the links not seen before (their rows commit with the page that had them);
        a link deeper than ``max_depth`` is counted, not queued (a page's next page is
        at the page's own depth)."""
        for link in links:
            if link.url in self.seen:
                continue
            at = depth - 1 if link.next_page else depth
            if self.opts.max_depth is not None and at > self.opts.max_depth:
                self.report.too_deep += 1
                continue
            depth_of = at
            self.seen.add(link.url)
            self.seq += 1
            self.batch.new.append((self.job.crawl_id, link.url, link.kind, depth_of, self.seq,
                                   "queued", 0, None, None, None, None))
            self.queue.append(_Item(0.0, self.seq, link.url, link.kind, depth_of))

    def finish(self, item: _Item, state: str, got: Fetched | None, sha: str | None,
               error: str | None = None) -> None:
        """The URL is finished: ``done`` (its page stored), ``redirected`` (a redirect
        followed: its target is a URL of its own), ``skipped`` (an answer that is no
        page), ``gone`` or ``failed`` (for good; a redirect not followed too)."""
        self.batch.finished.append((state, item.attempts, got.status if got else None, sha,
                                    got.started_at if got else None, error, self.job.crawl_id,
                                    item.url))

    # -- the loop ------------------------------------------------------------------------

    def run(self) -> None:
        """Fetch until the frontier is empty, the job pauses or stops, or the page cap."""
        pool = ThreadPoolExecutor(max_workers=self.opts.concurrency,
                                  thread_name_prefix="darkmap-crawl")
        inflight: dict[Future[Fetched], tuple[_Item, str]] = {}
        try:
            while True:
                now = time.monotonic()
                while self.delayed and self.delayed[0].ready <= now:
                    self.queue.appendleft(heapq.heappop(self.delayed))
                if self.stop is None:
                    # the cap is checked per request: pages stored + requests in flight
                    while self.queue and len(inflight) < self.opts.concurrency \
                            and not self._cap_reached(len(inflight)):
                        if now < self.next_at:  # the rate, or a 429's wait
                            break
                        item = self.queue.popleft()
                        target = self._target(item.url)
                        inflight[pool.submit(self.fetcher.fetch, target)] = (item, target)
                        if self.opts.rate > 0:
                            gap = self.rng.uniform(0.5, 1.5) / self.opts.rate
                            self.next_at = max(now, self.next_at) + gap
                if not inflight:
                    if self.stop is not None or self._cap_reached(0):
                        break
                    if not self.queue and not self.delayed:
                        break
                    wake = ([self.next_at] if self.queue else []) + [
                        d.ready for d in self.delayed[:1]]
                    pause = min(wake) - now
                    time.sleep(min(max(pause, 0.01), 1.0))
                    continue
                timeout = max(self.next_at - now, 0.0) if self.queue and self.stop is None \
                    else None
                finished, _ = wait(list(inflight), timeout=timeout, return_when=FIRST_COMPLETED)
                for fut in finished:
                    item, target = inflight.pop(fut)
                    self.handle(item, target, fut.result())
                self._maybe_commit()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        self.commit()

    def _cap_reached(self, inflight: int) -> bool:
        """Whether one of the run's limits forbids another request (pages stored and
        requests made, counting those in flight; bytes received)."""
        o, r = self.opts, self.report
        for name, cap, used in (("--max-pages", o.max_pages, r.pages + inflight),
                                ("--max-requests", o.max_requests, r.fetched + inflight),
                                ("--max-bytes", o.max_bytes, r.received)):
            if cap is not None and used >= cap:
                self.cap = self.cap or f"{name} {cap} reached"
                return True
        return False

    def _target(self, url: str) -> str:
        """``url`` on the mirror in use."""
        mirror = self.rotation[self.mirror % len(self.rotation)]
        if mirror == self.host:
            return url
        p = urlsplit(url)
        return urlunsplit((p.scheme, mirror, p.path, p.query, ""))

    def handle(self, item: _Item, target: str, got: Fetched) -> None:
        """Log and keep one response (or failure), and decide what follows from it."""
        mirror = authority(target)
        offset = self.warc.write(got, item.url, mirror)
        self.report.fetched += 1
        self.report.received += len(got.body)
        item.attempts += 1
        sha = None
        outcome = got.outcome
        if outcome == "ok":
            sha, outcome = self._page(item, got)
        elif outcome == "connect" and self._proxy_down(item):
            outcome = "proxy"
        elif outcome in RETRYABLE:
            self._retry(item, got)
        elif outcome == "redirect":
            self.failures = 0
            outcome = self._redirect(item, target, got)
        elif outcome == "refused":
            self._pause(item, f"HTTP {got.status}: the market refused the session; log in "
                              "with Tor Browser and run the crawl again with --cookies")
        else:  # gone, other 4xx, too big, bad_redirect, bad_encoding, bad_response: the
            # URL is finished without a page (the answer is in WARC), not retried
            self.failures = 0
            self.finish(item, "gone" if outcome == "gone" else "failed", got, None,
                        got.error or f"HTTP {got.status}")
        self.batch.fetches.append((
            self.job.crawl_id, item.url, target, item.attempts, got.started_at, got.seconds,
            got.status, outcome, len(got.body), sha, self.warc.path.name, offset))
        self.report.outcomes[outcome] += 1

    def _redirect(self, item: _Item, target: str, got: Fetched) -> str:
        """A 3xx: its target is queued when it passes the plan's check as a link does
        (outcome ``redirect``); else the URL fails, nothing more is requested for it,
        and the error says why (outcome ``redirect_refused``)."""
        where = got.header("Location") or ""
        link, why = self.plan.redirect_target(where, target, item.kind, self.opts.plan,
                                              self.hosts, self.host)
        hops = self.hops.pop(item.url, 0) + 1
        if link is not None and hops > MAX_REDIRECTS:
            link, why = None, f"more than {MAX_REDIRECTS} redirects in a row"
        if link is None:
            self.finish(item, "failed", got, None,
                        f"redirect to {where[:200]} not followed: {why}")
            return "redirect_refused"
        if link.url not in self.seen:
            self.hops[link.url] = hops
        self.add([link], item.depth)
        self.finish(item, "redirected", got, None, f"redirect to {where[:200]}")
        return "redirect"

    def _page(self, item: _Item, got: Fetched) -> tuple[str | None, str]:
        """A 2xx response: store it (HTML) and follow its links, or pause on a session page."""
        self.failures = 0
        why = _not_html(got)
        if why is not None:
            self.finish(item, "skipped", got, None, why)
            return None, "not_html"
        page = store_page(self.writer, self.ws.captures, self.done, got.body, item.url,
                          got.started_at, self.run_id)
        ptype = page.page_type
        if ptype == "login" and _EXPIRED.search(decode_page(got.body[:65536]).text):
            ptype = "session_expired"
        if ptype in INTERSTITIALS:
            self._pause(item, f"{item.url} answered with {INTERSTITIALS[ptype]}")
            return page.sha256, f"interstitial_{ptype}"
        links = self.plan.links_of(got.body, got.target, item.kind, self.opts.plan,
                                   self.hosts, self.host)
        self.add(links, item.depth + 1)
        self.finish(item, "done", got, page.sha256)
        self.report.pages += 1
        self.pending_pages += 1
        return page.sha256, "ok"

    def _proxy_down(self, item: _Item) -> bool:
        """After a request that could not connect: when the proxy itself does not
        answer, stop the crawl (the URL stays queued, the try uncounted) and say so."""
        problem = proxy_problem(self.opts.proxy, min(self.opts.timeout, _PROXY_PROBE_SECONDS))
        if problem is None:
            return False
        item.attempts -= 1  # the market was never asked
        self.queue.appendleft(item)
        self.proxy_stop(problem)
        return True

    def proxy_stop(self, problem: str) -> None:
        """Stop the run because the proxy is unreachable (``problem`` says how)."""
        if self.report.proxy_unreachable is None:
            self.report.proxy_unreachable = problem
        pages = self.report.pages
        done = "no page was fetched" if not pages else \
            f"stopped after {pages} page{'s' if pages > 1 else ''} stored by this run"
        self._halt("stopped", f"{problem}: {done}; {_PROXY_HINT}")

    def _retry(self, item: _Item, got: Fetched) -> None:
        """A failure worth another try: back off (or give up on the URL), maybe rotate."""
        self.failures += 1
        if got.outcome in ("connect", "timeout") and len(self.rotation) > 1:
            self.mirror += 1  # the next of the market's onions
        if self.failures >= self.opts.max_failures:
            self._halt("stopped", f"{self.failures} consecutive failures (last: "
                                  f"{got.outcome}: {(got.error or '')[:200]}); the frontier "
                                  "is kept: run the crawl again to resume")
        if item.attempts > self.opts.retries:
            self.finish(item, "failed", got, None, f"{got.outcome} after {item.attempts} tries: "
                                                   f"{(got.error or '')[:300]}")
            return
        self.batch.attempts.append((item.attempts, self.job.crawl_id, item.url))
        wait_s = self.opts.backoff * (2 ** (item.attempts - 1)) * self.rng.uniform(0.5, 1.5)
        after = retry_after(got.header("Retry-After"))
        if got.outcome in ("http_429", "http_5xx") and after is not None:
            wait_s = max(wait_s, after)  # at most _MAX_RETRY_AFTER (10 minutes)
        if got.outcome == "http_429":
            # "too many requests" is the server's, not this URL's: no request at all to
            # the market before the wait is over (12 others once went at full rate)
            self.next_at = max(self.next_at, time.monotonic() + wait_s)
        item.ready = time.monotonic() + wait_s
        heapq.heappush(self.delayed, item)

    def _pause(self, item: _Item, reason: str) -> None:
        """Stop sending requests; the URL stays queued for the resumed crawl."""
        item.attempts -= 1  # a session page is not a failed try of the URL
        self.queue.appendleft(item)
        self._halt("paused", reason)

    def crashed(self, status: str, reason: str) -> None:
        """The run ended on an exception: what was not committed is dropped (as after a
        kill: those pages are fetched again), the job ends ``status``."""
        self.writer = RecordWriter(self.ws.con, autoflush=False)  # never flushed
        self.batch = db.CrawlBatch()
        self.pending_pages = 0
        self.stop = None
        self._halt(status, reason)

    def _halt(self, status: str, reason: str) -> None:
        if self.stop is None:
            self.stop = (status, reason)

    # -- commits -------------------------------------------------------------------------

    def _maybe_commit(self) -> None:
        if self.pending_pages >= _COMMIT_PAGES or (
                len(self.batch) and time.monotonic() - self.last_commit >= _COMMIT_SECONDS):
            self.commit()

    def commit(self) -> None:
        """WARC and captures to disk, then the pages, records and frontier in one commit."""
        self.warc.sync()
        self.ws.captures.sync()
        con = self.ws.con
        begin(con)
        try:
            self.writer.flush()
            db.apply_batch(con, self.batch)
            commit(con)
        except BaseException:
            rollback(con)
            raise
        self.batch = db.CrawlBatch()
        self.pending_pages = 0
        self.last_commit = time.monotonic()

    def close(self) -> None:
        self.fetcher.close()
        self.warc.close()


def _not_html(got: Fetched) -> str | None:
    """Why a 2xx answer is no HTML page, or None: its ``Content-Type`` says no HTML and
    its body does not look like HTML, or its body is a binary format whatever the label
    (:func:`binary_kind`: a market labels anything ``text/html``, and PNG bytes so
    labelled were once stored as a page capture)."""
    ctype = (got.header("Content-Type") or "").lower()
    binary = binary_kind(got.body[:65536])
    if binary is not None:
        return f"not HTML: the body is {binary[0]} (Content-Type {ctype[:60]!r})"
    if "html" not in ctype and not looks_like_html(got.body[:65536]):
        return f"not HTML ({ctype[:60]})"
    return None


class ProxyUnreachable(DarkmapError):
    """The proxy (Tor) cannot carry the crawl: found before any request, before a job
    is created or changed."""


def _hostname(host: str) -> str:
    """``host`` (``x.onion:8080``, ``[::1]:80``) without its port."""
    return (urlsplit(f"http://{host}").hostname or "").lower()


def _is_onion(url_or_host: str) -> bool:
    host = urlsplit(url_or_host).hostname or "" if "//" in url_or_host else _hostname(
        url_or_host)
    return host.lower().rstrip(".").endswith(".onion")


def _request_hosts(hosts: list[str], direct: bool) -> list[str]:
    """The market's addresses requests may go to: all of them through a proxy, none
    that is an onion without one."""
    return [h for h in hosts if not (direct and _is_onion(h))]


def _hosts(opts: CrawlOptions, start: str) -> list[str]:
    """The market's addresses (host, and port when not 80): the canonical one (its
    template's onion, with the start URL's port when the start URL is on that onion;
    else the start URL's), then the start URL's and the mirrors'. A port is kept
    everywhere: ``http://x.onion:8080/`` was crawled as port 80, another service."""
    tpl = next((t for t in load_templates() if t.market == opts.market_id), None)
    try:
        start_host = authority(start)
        mirrors = [authority(h if "//" in h else f"http://{h.strip().strip('/')}")
                   for h in opts.mirrors if h.strip()]
    except ValueError as exc:
        raise BadInputError(f"--start or --mirror: a bad port ({exc})") from exc
    first = start_host
    if tpl is not None and tpl.onion:
        onion = tpl.onion.lower()
        first = start_host if _hostname(start_host) == onion else onion
    if not first:
        raise BadInputError(f"--start {start!r}: not an http URL with a host")
    out = [first]
    for h in (start_host, *mirrors):
        if h and h not in out:
            out.append(h)
    return out


def _job(ws: Workspace, opts: CrawlOptions, plan: CrawlPlan) -> tuple[db.Job, bool]:
    """The job to run: the market's unfinished one (resumed), else a new one."""
    last = db.latest_job(ws.con, opts.market_id)
    if last is not None and last.status != "done" and not opts.new:
        return last, False
    if not opts.start_url:
        raise BadInputError(f"{opts.market_id}: no crawl to resume; give --start URL")
    canon = plan.canonical(opts.start_url, _hosts(opts, opts.start_url)[0])
    if canon is None:
        raise BadInputError(f"--start {opts.start_url!r}: not an http(s) URL")
    crawl_id = f"{opts.market_id}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    return db.Job(crawl_id, opts.market_id, canon, ",".join(opts.plan), "running", None), True


def limits_line(opts: CrawlOptions) -> str:
    """The limits of a run, as the start message states them."""
    def size(n: int) -> str:
        for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
            if n >= 1 << shift and n % (1 << shift) == 0:
                return f"{n >> shift} {unit}"
        return f"{n} bytes"
    parts = [f"--max-pages {opts.max_pages if opts.max_pages is not None else 'none'}",
             f"--max-depth {opts.max_depth if opts.max_depth is not None else 'none'}",
             f"--max-requests {opts.max_requests if opts.max_requests is not None else 'none'}",
             f"--max-bytes {size(opts.max_bytes) if opts.max_bytes is not None else 'none'}"]
    return "limits of this run: " + ", ".join(parts) + " (raise them to go further)"


def crawl(ws: Workspace, opts: CrawlOptions,
          on_end: Callable[[CrawlReport], None] | None = None,
          on_start: Callable[[str], None] | None = None) -> CrawlReport:
    """Run (or resume) the crawl of ``opts.market_id``; return the run's report.

    ``on_start(message)`` is called once every check passed, before the first request:
    the job and the run's limits (:func:`limits_line`). ``on_end(report)`` is called
    once the job's status is saved, also when the run is
    interrupted (the exception then goes on): the audit entry is written there. An error
    during the run ends the job ``failed`` with the error as its reason (returned, not
    raised); Ctrl-C ends it ``interrupted`` (raised).

    Every check comes before the job's row is created or changed and before any request:
    the options (a proxy, or ``direct`` and no onion), the plan, the market's addresses,
    the session file, and the proxy itself (:func:`proxy_problem`: a SOCKS5 greeting;
    :class:`ProxyUnreachable` when it fails)."""
    opts.check()
    plan = plans(opts.plan_dirs).get(opts.market_id)
    if plan is None:
        raise NotFoundError(f"{opts.market_id}: no crawl plan (see docs/crawling.md: "
                            "adding a market's crawl plan)")
    job, new = _job(ws, opts, plan)
    if not new:
        opts.plan = tuple(job.plan.split(",")) if job.plan else opts.plan
    hosts = _hosts(opts, opts.start_url or job.start_url)
    if not _request_hosts(hosts, opts.direct):
        raise BadInputError(f"--direct: every address of {opts.market_id} is an onion, "
                            "reached through Tor only; give --start with a clearnet URL or "
                            "--proxy socks5h://HOST:PORT")
    problem = proxy_problem(opts.proxy, min(opts.timeout, _PROXY_PROBE_SECONDS))
    if problem is not None:
        kept = "no crawl was started" if new else f"the crawl {job.crawl_id} is kept as it was"
        raise ProxyUnreachable(f"{problem}: no request was made, {kept}; {_PROXY_FIX}, then "
                               "run the same command again")
    state = _Crawl(ws, opts, plan, job, hosts)
    try:
        begin(ws.con)
        try:
            db.save_job(ws.con, job._replace(status="running", reason=None), utcnow())
            start_run(ws.con, state.run_id, [f"crawl {job.market_id}", job.crawl_id])
            if new:
                state.add([Link(job.start_url, "start")], 0)
                db.apply_batch(ws.con, state.batch)
                state.batch = db.CrawlBatch()
            commit(ws.con)
        except BaseException:
            rollback(ws.con)
            raise
        if on_start is not None:
            on_start(f"{'new crawl' if new else 'resuming crawl'} {job.crawl_id} of "
                     f"{job.market_id} from {job.start_url}; {limits_line(opts)}")
        try:
            if not new:
                state.load()
            else:
                state.seen.add(job.start_url)
            state.run()
        except Exception as exc:  # noqa: BLE001 - the job must not stay `running`
            # a fault of the crawler (or of what it met) ends the job `failed`, saying
            # why; the uncommitted group is lost as after a kill, the frontier kept
            state.crashed("failed", f"the crawl ended on an error: {type(exc).__name__}: "
                                    f"{str(exc)[:300]}; the frontier is kept: run the "
                                    "crawl again to resume")
        except BaseException:  # Ctrl-C, SystemExit: recorded, then let through
            state.crashed("interrupted", "the crawl was interrupted (Ctrl-C or a signal); "
                                         "the frontier is kept: run the crawl again to resume")
            state.close()
            rep = _conclude(ws, state)
            if on_end is not None:
                on_end(rep)
            raise
    finally:
        state.close()
    rep = _conclude(ws, state)
    if on_end is not None:
        on_end(rep)
    return rep


def _conclude(ws: Workspace, state: _Crawl) -> CrawlReport:
    """Save the job's status after the run and fill in the report."""
    rep = state.report
    counts = db.frontier_counts(ws.con, state.job.crawl_id)
    if state.stop is not None:
        rep.status, rep.reason = state.stop
    elif counts.get("queued", 0):
        rep.status = "stopped"
        rep.reason = (f"{state.cap or 'a limit of the run'} (this run: {rep.fetched} "
                      f"requests, {rep.received} bytes, {rep.pages} pages); run the crawl "
                      "again to go on")
    elif not db.stored_pages(ws.con, state.job.crawl_id):
        # nothing obtained: the job stays open (the next run retries its failed URLs)
        # instead of "done", after which the next run would be a re-crawl
        rep.status = "failed"
        rep.reason = (f"{_NOTHING} (frontier: "
                      + ", ".join(f"{k} {v}" for k, v in counts.items())
                      + "); see `darkmap crawl MARKET --status`; running the crawl again "
                        "retries the failed URLs")
    else:
        rep.status = "done"
        if rep.too_deep:
            rep.reason = (f"{rep.too_deep} links deeper than --max-depth "
                          f"{state.opts.max_depth} not followed")
    rep.frontier = counts
    begin(ws.con)
    try:
        db.save_job(ws.con, state.job._replace(status=rep.status, reason=rep.reason), utcnow(),
                    finished=rep.status == "done")
        finish_run(ws.con, state.run_id, rep.as_dict())
        commit(ws.con)
    except BaseException:
        rollback(ws.con)
        raise
    return rep


def crawl_status(ws: Workspace, market_id: str) -> dict[str, Any]:
    """The market's latest crawl job: status, reason, frontier and request counts."""
    job = db.latest_job(ws.con, market_id)
    if job is None:
        raise NotFoundError(f"{market_id}: never crawled in this workspace")
    return {"crawl_id": job.crawl_id, "market": job.market_id, "start_url": job.start_url,
            "plan": job.plan, "status": job.status, "reason": job.reason,
            "frontier": db.frontier_counts(ws.con, job.crawl_id),
            "requests": db.fetch_counts(ws.con, job.crawl_id)}

