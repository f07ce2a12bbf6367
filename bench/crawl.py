"""Benchmark: the crawler against the local test market, rate limit off.

The test market of tests/test_crawl_market.py (the simulator's world on a real HTTP
server, through a real SOCKS5 proxy on loopback) runs in a child process, so that the
crawler's process time is the crawler's alone. Two figures, each the median of
``--rounds`` runs:

* ``crawl``: a whole market crawled into a fresh workspace (``--rate 0``, ``--concurrency``
  requests at once): pages per second (wall), and process CPU per page (the fetch
  threads, WARC, capture, extraction, link finding and the commits together);
* ``per_page_cpu_ms``: CPU of each step on the same pages without the network: capture
  (sha256 + atomic write), WARC (request + response records, gzip, SHA-256 digests),
  extraction (the market template: records buffered), links (crawl plan), and the commit
  of the group's rows.

Prints JSON; never passes or fails.

    .venv/bin/python bench/crawl.py [--rounds 3] [--market velvet] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_crawl_market import MarketSite, SocksProxy, make_world, page_files  # noqa: E402

from darkmap.collect.crawl import CrawlOptions, crawl  # noqa: E402
from darkmap.collect.crawl_fetch import Fetched  # noqa: E402
from darkmap.collect.crawl_plan import plans  # noqa: E402
from darkmap.collect.crawl_warc import WarcLog  # noqa: E402
from darkmap.extract.engine import load_templates  # noqa: E402
from darkmap.importers.warc import store_page  # noqa: E402
from darkmap.store.workspace import Workspace  # noqa: E402
from darkmap.store.writer import RecordWriter, begin, commit  # noqa: E402


def _serve(pages: str, market: str, out: Any, stop: Any) -> None:
    """Child process: the market site and the proxy; sends (onion, proxy port)."""
    site = MarketSite(Path(pages), market)
    proxy = SocksProxy({site.onion: site.start()})
    out.put((site.onion, proxy.start()))
    stop.wait()


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def bench_crawl(pages: Path, market: str, rounds: int, concurrency: int) -> dict[str, Any]:
    """Whole-market crawls through the proxy: pages/s and CPU ms per page."""
    ctx = mp.get_context("fork")
    out, stop = ctx.Queue(), ctx.Event()
    child = ctx.Process(target=_serve, args=(str(pages), market, out, stop), daemon=True)
    child.start()
    onion, port = out.get(timeout=60)
    runs = []
    try:
        for _ in range(rounds):
            with tempfile.TemporaryDirectory() as tmp, Workspace.init(Path(tmp) / "ws") as ws:
                t0, c0 = time.perf_counter(), _cpu()
                rep = crawl(ws, CrawlOptions(market, start_url=f"http://{onion}/",
                                             proxy=f"socks5h://127.0.0.1:{port}", rate=0.0,
                                             concurrency=concurrency, seed=1))
                wall, cpu = time.perf_counter() - t0, _cpu() - c0
                assert rep.status == "done", rep.as_dict()
                runs.append({"pages": rep.pages, "seconds": wall, "cpu": cpu})
    finally:
        stop.set()
        child.join(10)
    n = runs[0]["pages"]
    return {"market": market, "pages": n, "concurrency": concurrency,
            "pages_per_s_median": round(statistics.median(n / r["seconds"] for r in runs), 1),
            "cpu_ms_per_page_median": round(statistics.median(
                1000 * r["cpu"] / n for r in runs), 2),
            "seconds": [round(r["seconds"], 2) for r in runs]}


def bench_steps(pages: Path, market: str, rounds: int) -> dict[str, Any]:
    """CPU of capture, WARC, extraction, links and commit per page, no network."""
    files = page_files(pages, market)
    bodies = [p.read_bytes() for p in files]
    plan = plans()[market]
    host = "bench.onion"
    per: dict[str, list[float]] = {k: [] for k in ("capture", "warc", "extract", "links",
                                                   "commit")}
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as tmp, Workspace.init(Path(tmp) / "ws") as ws:
            warc = WarcLog(Path(tmp) / "b.warc.gz", "socks5h://127.0.0.1:9050", {})
            writer = RecordWriter(ws.con, autoflush=False)
            done: set[str] = set()
            ws.captures.durable = False
            t = dict.fromkeys(per, 0.0)
            for i, body in enumerate(bodies):
                url = f"http://{host}/page{i}"
                got = Fetched(url, datetime.now(UTC).replace(tzinfo=None), status=200,
                              reason="OK", headers=[("Content-Type", "text/html")],
                              request_headers=[("Host", host)], body=body)
                c = time.process_time()
                ws.captures.put_bytes(body)
                t["capture"] += time.process_time() - c
                c = time.process_time()
                warc.write(got, url, host)
                t["warc"] += time.process_time() - c
                c = time.process_time()
                store_page(writer, ws.captures, done, body, url, got.started_at, "bench")
                t["extract"] += time.process_time() - c
                c = time.process_time()
                plan.links_of(body, url, "categories", ("categories", "listings", "vendors",
                                                        "feedback"), [host], host)
                t["links"] += time.process_time() - c
            c = time.process_time()
            warc.sync()
            ws.captures.sync()
            begin(ws.con)
            writer.flush()
            commit(ws.con)
            t["commit"] += time.process_time() - c
            warc.close()
            for k in per:
                per[k].append(1000 * t[k] / len(bodies))
    out = {k: round(statistics.median(v), 3) for k, v in per.items()}
    out["total"] = round(sum(out.values()), 3)
    out["pages"] = len(bodies)
    out["note"] = ("extract includes a second sha256 and the capture's existence check "
                   "(store_page captures too: the capture figure is the write alone)")
    return out


def main() -> None:
    """Run both benchmarks and print JSON."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--market", default="velvet")
    ap.add_argument("--concurrency", type=int, default=4)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pages = make_world(Path(tmp) / "world")
        load_templates()
        result = {
            "bench": "crawl",
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "crawl": bench_crawl(pages, args.market, args.rounds, args.concurrency),
            "per_page_cpu_ms": bench_steps(pages, args.market, args.rounds),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
