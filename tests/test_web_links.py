"""Links built from market-written ids (audit of the workbench, 2026-12-07, finding 3).

Listing and account ids are the market's: a crafted CSV gave a listing the id
``x/../../audit`` and a vendor the handle ``zz/../../listing/cerberus:honest-1``. The
templates put such ids in paths with Jinja's ``urlencode``, which leaves ``/`` as it is,
so the browser resolved the dot segments and the link opened another page (``/audit``,
or another vendor's listing). Every id in a path is now one encoded segment
(``pathseg``) and the routes take it back decoded. Links are resolved here as a browser
does (``urljoin``: RFC 3986 dot-segment removal), then followed on the real server."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from urllib.parse import quote, urljoin, urlsplit

import httpx
import pytest
from web_support import (
    FakeClock,
    Served,
    World,
    listings_workspace,
    next_clock,
    serving,
    signed_in,
)

import darkmap

HOSTILE_IDS = ["x/../../audit", "../../logout", "..", "a/b", "%2e%2e%2fcases"]
"""Listing ids of the hostile vendor (each listing is titled ``Pills <n>``)."""
SPOOF = "zz/../../listing/cerberus:honest-1"
"""The hostile vendor's handle: its account link resolved to the honest listing."""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    rows = [["2026-01-02 03:04:05", "cerberus", "honest-1", "Honest pills", "honest", "10.5",
             "USD", "Drugs", "DE", "Worldwide", "3"]]
    rows += [["2026-01-02 03:04:05", "cerberus", lid, f"Pills {n}", SPOOF, "10.5", "USD",
              "Drugs", "DE", "Worldwide", "3"] for n, lid in enumerate(HOSTILE_IDS)]
    path, secret = listings_workspace(tmp_path_factory.mktemp("web-links"), rows)
    with darkmap.open_workspace(path, read_only=True) as ws:
        stored = {r[0] for r in ws.con.execute("SELECT listing_id FROM listings").fetchall()}
        persona = darkmap.show_persona(ws, f"cerberus:{SPOOF}")["persona_id"]
    assert {f"cerberus:{i}" for i in HOSTILE_IDS} <= stored, stored
    return World(path, {"eve": secret}, persona, "", "")


@pytest.fixture
def client(world: World) -> Iterator[httpx.Client]:
    clock: FakeClock = next_clock()
    with serving(world, clock) as srv:
        served: Served = srv
        with signed_in((served, clock), world, "eve") as c:
            yield c


def _links(page: httpx.Response) -> dict[str, str]:
    """The page's links to its own server: text (tags stripped) -> href as written."""
    out = {}
    for href, text in re.findall(r'<a [^>]*?href="(/[^"]*)"[^>]*>(.*?)</a>', page.text):
        out[html.unescape(re.sub(r"<[^>]*>", "", text))] = html.unescape(href)
    return out


def _follow(c: httpx.Client, page: httpx.Response, href: str) -> httpx.Response:
    """Where a browser goes from ``page`` on ``href`` (dot segments resolved)."""
    url = urljoin(str(page.url), href)
    assert urlsplit(url).path == urlsplit(href).path, f"{href} resolves to {url}"
    return c.get(url)


def test_no_link_of_a_page_has_a_dot_segment(client: httpx.Client, world: World) -> None:
    """On every page that shows the hostile ids, each link stays the path it was
    written as (a browser resolves none of it to another page)."""
    spoof = quote(f"cerberus:{SPOOF}", safe="")
    pages = ["/search?q=pills", "/targets", "/", "/review", f"/persona/{world.persona}",
             f"/account/{spoof}"]
    for path in pages:
        page = client.get(path)
        assert page.status_code == 200, (path, page.status_code)
        for href in _links(page).values():
            url = urljoin(str(page.url), href)
            assert urlsplit(url).path == urlsplit(href).path, (path, href, url)


def test_a_listing_link_opens_that_listing(client: httpx.Client) -> None:
    """The search result for ``x/../../audit`` linked to /audit; now each hostile
    listing's link opens that listing."""
    search = client.get("/search?q=pills")
    links = _links(search)
    for n, lid in enumerate(HOSTILE_IDS):
        got = _follow(client, search, links[f"Pills {n}"])
        assert got.status_code == 200, (lid, got.status_code)
        assert f"<h1>Listing {html.escape(lid)} on cerberus</h1>" in got.text, lid


def test_the_vendor_link_opens_the_vendor_not_another_page(client: httpx.Client) -> None:
    """The vendor link of the hostile listing resolved to the honest vendor's listing;
    it opens the hostile vendor's account, whose listing links open its listings."""
    listing = client.get("/listing/cerberus%3Ax%2F..%2F..%2Faudit")
    assert listing.status_code == 200
    account = _follow(client, listing, _links(listing)[f"cerberus:{SPOOF}"])
    assert account.status_code == 200
    assert f'<span id="handle">{html.escape(SPOOF)}' in account.text
    got = _follow(client, account, _links(account)["Pills 1"])
    assert "<h1>Listing ../../logout on cerberus</h1>" in got.text


def test_a_wallet_id_with_a_slash_reaches_the_wallet_page(client: httpx.Client) -> None:
    """``/wallet/{ident}`` took one raw segment: an encoded ``/`` (decoded before
    routing) missed the route and gave the router's "no such page"; the wallet page
    now takes it and says what it is not."""
    for path in ("/wallet/x%2F..%2Fy", "/api/wallet/x%2F..%2Fy"):
        r = client.get(path)
        assert r.status_code == 404 and "not a clustered address or cluster id" in r.text, \
            (path, r.text[:200])
