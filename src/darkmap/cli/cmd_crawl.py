"""`darkmap crawl`: crawl a market through Tor (one library call: ``crawl_market``).

The crawler is imported when the command runs (#21: ``--help`` loads neither DuckDB
nor the page parsers).

Everything printed about the market (URLs, reasons) goes through ``say`` (control and
bidi characters escaped); ``--json`` prints pure ASCII.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from darkmap.cli.common import (
    DarkmapError,
    init_option,
    main,
    open_ws,
    open_ws_to_write,
    say,
    workspace_option,
)
from darkmap.collect.crawl_plan import KINDS


def _kinds(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in value.split(",") if k.strip())
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise click.BadParameter(f"unknown kind {bad[0] if bad else '(none)'!r}; "
                                 f"have {','.join(KINDS)}")
    return kinds


def _size(_ctx: click.Context, _param: click.Parameter, value: str) -> int:
    text = value.strip().upper().removesuffix("B").removesuffix("I")
    shift = {"K": 10, "M": 20, "G": 30, "T": 40}.get(text[-1:], 0)
    digits = text[:-1] if shift else text
    if not (digits.isascii() and digits.isdigit()):
        raise click.BadParameter(f"{value!r}: a number of bytes, e.g. 500M or 4G")
    return int(digits) << shift


@main.command("crawl")
@click.argument("market")
@workspace_option
@init_option
@click.option("--start", "start", default=None, help="URL the crawl starts from (a new crawl).")
@click.option("--proxy", default="socks5h://127.0.0.1:9050", show_default=True,
              help="Tor SOCKS port; socks5h only (names are resolved by Tor, never locally).")
@click.option("--direct", is_flag=True,
              help="No proxy: connect from this machine's own address (a clearnet test site "
                   "only; refused for .onion).")
@click.option("--cookies", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="The analyst's session: a Netscape cookie file or one `Cookie:` line.")
@click.option("--plan", default=",".join(KINDS), show_default=True, callback=_kinds,
              help="Kinds of page to follow (comma-separated).")
@click.option("--max-pages", type=int, default=None, help="Stop after storing this many pages.")
@click.option("--max-depth", type=int, default=30, show_default=True,
              help="Links followed from the start page, at most (next pages don't count).")
@click.option("--max-requests", type=int, default=50_000, show_default=True,
              help="Requests of one run, retries and redirects included.")
@click.option("--max-bytes", default="4G", show_default=True, callback=_size,
              help="Bytes of responses one run receives (K, M, G suffixes: KiB, MiB, GiB).")
@click.option("--rate", type=float, default=0.5, show_default=True,
              help="Requests per second (random gaps around it); 0: no limit.")
@click.option("--concurrency", type=int, default=2, show_default=True,
              help="Requests at once, at most.")
@click.option("--retries", type=int, default=4, show_default=True,
              help="Tries after the first on timeouts, 5xx, 429 and cut bodies.")
@click.option("--max-failures", type=int, default=20, show_default=True,
              help="Consecutive failures that stop the crawl (resumable).")
@click.option("--backoff", type=float, default=5.0, show_default=True,
              help="Seconds before the first retry (doubling, with jitter).")
@click.option("--timeout", type=float, default=60.0, show_default=True,
              help="Seconds to wait for a connection or for data.")
@click.option("--deadline", type=float, default=None,
              help="Seconds one request may take in all: connection, headers, body "
                   "[default: 4 x --timeout, at least 30].")
@click.option("--mirror", "mirrors", multiple=True, help="Another onion of the market (repeat).")
@click.option("--new", is_flag=True, help="Start a new crawl (a re-crawl) even if one is open.")
@click.option("--status", "status_only", is_flag=True, help="Show the latest crawl; fetch nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def crawl_cmd(market: str, workspace: Path | None, init: bool, start: str | None,
              proxy: str, direct: bool, cookies: Path | None, plan: tuple[str, ...],
              max_pages: int | None, max_depth: int, max_requests: int, max_bytes: int,
              rate: float, concurrency: int, retries: int,
              max_failures: int, backoff: float,
              timeout: float, deadline: float | None, mirrors: tuple[str, ...], new: bool,
              status_only: bool, as_json: bool) -> None:
    """Crawl MARKET through Tor: every page captured, extracted, kept as WARC; resumable.

    A login, CAPTCHA, queue or expired-session page pauses the crawl: log in with Tor
    Browser, export the session's cookies and run the same command with --cookies.
    When nothing answers at --proxy (Tor not running), the crawl stops at once with
    an error (exit 1) and resumes when run again.

    Example: darkmap crawl nightshade --start http://...onion/ --cookies session.txt
    """
    from darkmap.api import CrawlOptions, crawl_market, crawl_status  # noqa: PLC0415

    if status_only:
        with open_ws(workspace, read_only=True) as ws:
            _print(crawl_status(ws, market), as_json)
        return
    if direct and click.get_current_context().get_parameter_source("proxy") in (
            click.core.ParameterSource.DEFAULT, None):
        proxy = ""  # --direct drops the default proxy; one typed out is refused with it
    opts = CrawlOptions(market, start_url=start, proxy=proxy or None, direct=direct,
                        cookies=cookies,
                        plan=plan, max_pages=max_pages, max_depth=max_depth,
                        max_requests=max_requests, max_bytes=max_bytes, rate=rate,
                        concurrency=concurrency,
                        retries=retries, max_failures=max_failures, backoff=backoff,
                        timeout=timeout, deadline=deadline, mirrors=mirrors, new=new)
    opts.check()  # a bad value is refused before a workspace is created or opened
    with open_ws_to_write(workspace, init) as ws:
        rep = crawl_market(ws, opts, on_start=lambda message: say(message, err=True))
    if rep.proxy_unreachable is not None:
        # the proxy (Tor) did not answer: one error line naming it, exit 1; the report
        # too when this run stored pages before it went away
        if rep.pages:
            _print(rep.as_dict(), as_json)
        raise DarkmapError(rep.reason or rep.proxy_unreachable)
    _print(rep.as_dict(), as_json)
    if rep.status == "failed":  # the run ended on an error (the reason says which)
        raise DarkmapError(rep.reason or "the crawl failed")


def _print(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=True))
        return
    for key, value in data.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items()) or "-"
        say(f"{key:>13}: {value}")
