"""The workbench in a real browser (issue #14): Debian's chromium driven by Playwright
(``executable_path=/usr/bin/chromium``; ``make test`` installs the package where missing,
Playwright's own browser download is never used).

- Hostile content: listings whose vendor handles, titles and categories carry script
  payloads (``<script>``, ``<img onerror>``, ``javascript:`` URLs, attribute-breaking
  quotes, ``</style>``, bidi overrides) are ingested from a CSV through the real importer,
  feedback and PGP keys (user ids) with the same payloads are stored through the writer,
  and every page that
  shows them is browsed: a payload that ran would call the sentinel ``__pwned`` or set
  ``document.title``; any Content-Security-Policy violation fails the test too.
- The analyst's flow: sign in with TOTP, search, open a persona, confirm a link in the
  review queue, open the graph, expand a node, download PNG and GraphML exports.
  Screenshots of the main pages are saved as artefacts (``$DARKMAP_ARTEFACTS/web``,
  default ``build/artefacts/web``; docs/workbench.md shows copies).
"""

from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from web_support import (
    FakeClock,
    Served,
    World,
    add_eve,
    browser_sign_in,
    listings_csv,
    listings_workspace,
    next_clock,
    serving,
    shared_world,
)

import darkmap
from darkmap.export.graph import xml_text
from darkmap.model.records import FeedbackRecord, PgpKeyRecord
from darkmap.store.writer import Provenance, RecordWriter

CHROMIUM = "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[1]
ARTEFACTS = Path(os.environ.get("DARKMAP_ARTEFACTS", REPO / "build" / "artefacts")) / "web"

PAYLOADS = [
    '<script>window.__pwned("script")</script>',
    '<img src=x onerror="window.__pwned(\'img\')">',
    'javascript:window.__pwned("js-url")',
    '"><svg onload=window.__pwned("dq")>',
    "'><img src=x onerror=window.__pwned('sq')>",
    '</style><script>document.title="PWNED"</script>',
    '\u202egnp.exe<script>window.__pwned("bidi")</script>',
    '</pre></textarea><script>window.__pwned("pre")</script>',
]

# Defined before any page script runs; a payload that executes calls these.
SENTINEL = """
window.__pwned = function (x) { window.__pwned_py(String(x)); };
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp_py(e.violatedDirective + " " + e.blockedURI + " " + e.sourceFile);
});
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: apt-get install -y chromium (make test does)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


class Watch:
    """What fired in a page: sentinel calls, CSP violations, console errors, titles."""

    def __init__(self, page: Page) -> None:
        self.fired: list[str] = []
        self.csp: list[str] = []
        self.errors: list[str] = []
        # playwright cannot wrap a builtin method: the lambdas are needed
        page.expose_function("__pwned_py", lambda x: self.fired.append(x))  # noqa: PLW0108
        page.expose_function("__csp_py", lambda x: self.csp.append(x))  # noqa: PLW0108
        page.add_init_script(SENTINEL)
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def clean(self, where: str) -> None:
        assert not self.fired, f"{where}: payload executed: {self.fired}"
        assert not self.csp, f"{where}: CSP violation: {self.csp}"
        assert not self.errors, f"{where}: console errors: {self.errors}"


def _hostile_world(base: Path) -> tuple[Path, str]:
    """A workspace holding only hostile listings (CSV through the real importer) and
    hostile feedback; a user with a sign-in. The user's TOTP secret."""
    src = listings_csv(base, [["2026-01-02 03:04:05", "cerberus", f"L{i}", f"Pills {p} 10mg",
                               f"v{i}{p}", "10.5", "USD", f"Drugs / {p}", p, "Worldwide", "3"]
                              for i, p in enumerate(PAYLOADS)])
    path = base / "ws"
    with darkmap.init_workspace(path) as ws:
        summary = darkmap.ingest(ws, [src])
        assert summary.totals()["stored"] >= len(PAYLOADS), summary.totals()
        raw = "\n".join(PAYLOADS).encode()
        sha = ws.captures.put_bytes(raw)
        ws.con.execute("INSERT INTO captures VALUES (?, ?, ?, 'text/plain', ?)",
                       [sha, len(raw), "hostile-feedback.txt", datetime(2026, 1, 2)])
        writer = RecordWriter(ws.con)
        prov = Provenance(sha, "hostile-feedback.txt", "test@1", datetime(2026, 1, 2))
        handles = [r[0] for r in ws.con.execute(
            "SELECT handle FROM accounts ORDER BY handle").fetchall()]
        for i, (h, p) in enumerate(zip(handles, PAYLOADS, strict=False)):
            writer.add(PgpKeyRecord(fingerprint=f"{i:040X}", key_id=f"{i:016X}",
                                    algorithm="RSA", bits=4096, created_at=None,
                                    user_ids=[f"{p} <x@example.org>", p], subkeys=[],
                                    armored=p, market_id="cerberus", account_handle=h,
                                    field="pgp", locator=f"pgp {h}"), prov)
            writer.add(FeedbackRecord(market_id="cerberus", vendor_handle=h,
                                      text=f"great {p}", buyer_masked=p, rating=5.0,
                                      left_at=datetime(2026, 1, 3), locator=f"fb {h}"), prov)
        writer.flush()
        darkmap.link(ws)
        darkmap.assess_listings(ws)
        secret = add_eve(ws.con)
    return path, secret


def _browse(page: Page, url: str, watch: Watch, where: str) -> None:
    page.goto(url)
    page.wait_for_load_state("load")
    assert page.title() != "PWNED", where        # the payload would set exactly this
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
    assert not [h for h in hrefs if h.strip().lower().startswith("javascript:")], where
    # no element from market text became markup: no <img>, <svg> or inline handler
    assert page.eval_on_selector_all("img, svg, iframe, object, embed",
                                     "els => els.length") == 0, where
    assert page.eval_on_selector_all(
        "script", "els => els.filter(e => !e.src).length") == 0, where
    watch.clean(where)


def test_hostile_content_never_executes(browser: Browser,
                                        tmp_path_factory: pytest.TempPathFactory) -> None:
    path, secret = _hostile_world(tmp_path_factory.mktemp("web-hostile"))
    clock = FakeClock()
    with serving(path, clock) as srv:
        ctx = browser.new_context()
        page = ctx.new_page()
        watch = Watch(page)
        browser_sign_in(page, srv.url, "eve", secret, clock)
        accounts = srv.sql("SELECT account_id FROM accounts ORDER BY 1")
        listings = srv.sql("SELECT listing_id, capture_sha256 FROM listings ORDER BY 1")
        personas = srv.sql("SELECT persona_id FROM personas ORDER BY 1")
        assert len(accounts) >= len(PAYLOADS) - 1 and listings
        urls = ["/", "/targets", "/review", "/cases", "/audit"]
        urls += [f"/search?q={quote(p)}" for p in ("pills", "great", "script", "onerror")]
        urls += [f"/account/{quote(a, safe='')}" for (a,) in accounts]
        urls += [f"/listing/{quote(lid, safe='')}" for lid, _ in listings]
        urls += [f"/capture/{sha}" for _, sha in listings[:2]]
        urls += [f"/persona/{quote(p, safe='')}" for (p,) in personas]
        for u in urls:
            _browse(page, srv.url + u, watch, u)
        # the payload text is on screen, as text (PGP user ids too)
        page.goto(srv.url + f"/account/{quote(accounts[0][0], safe='')}")
        assert "x@example.org" in page.inner_text("ul.pgp")
        page.goto(srv.url + "/search?q=pills")
        body = page.inner_text("body")
        assert "<script>window.__pwned(\"script\")</script>" in body
        assert "\\u202e" in body                    # bidi override shown as an escape
        # the link chart draws hostile labels on a canvas: expand a hostile account
        page.goto(srv.url + "/graph?node=" + quote("account:" + accounts[0][0]))
        page.wait_for_selector("#cy[data-expanded='1']")
        watch.clean("graph")
        ctx.close()
        assert srv.wb.csp_reports == []           # nor did the server get a CSP report


LONG_HANDLE = "w" * 10_000
"""A vendor handle of 10 KB with no place to break."""


def test_a_long_unbroken_handle_does_not_widen_the_page(
        browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> None:
    """A 10 KB handle and title widened /search and /account far past the viewport (the
    text had no place to break): every page that shows them stays as wide as the
    window."""
    path, secret = listings_workspace(
        tmp_path_factory.mktemp("web-long"),
        [["2026-01-02 03:04:05", "cerberus", "L1", "Pills " + "x" * 10_000, LONG_HANDLE,
          "10.5", "USD", "Drugs", "DE", "Worldwide", "3"]])
    with darkmap.open_workspace(path, read_only=True) as ws:
        (account,) = ws.con.execute("SELECT account_id FROM accounts").fetchone()
        (persona,) = ws.con.execute("SELECT persona_id FROM personas").fetchone()
    assert len(account) > 10_000
    clock = FakeClock()
    with serving(path, clock) as srv:
        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        page = ctx.new_page()
        browser_sign_in(page, srv.url, "eve", secret, clock)
        for url in (f"/search?q={'w' * 50}", "/search?q=pills",
                    f"/account/{quote(account, safe='')}", "/listing/cerberus%3AL1",
                    f"/persona/{quote(persona, safe='')}", "/targets"):
            page.goto(srv.url + url)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 1280, (url[:60], width)
        ctx.close()


@pytest.fixture(scope="module")
def flow_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return shared_world(tmp_path_factory)


def _shot(page: Page, name: str) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)


def _flow(page: Page, srv: Served, world: World, clock: FakeClock,
          downloads: Path) -> dict[str, Any]:
    watch = Watch(page)
    browser_sign_in(page, srv.url, "alice", world.secrets["alice"], clock)
    assert page.locator("#top-targets li").count() == 10
    assert "no sales evidence" in page.inner_text("#harm-legend")
    _shot(page, "dashboard")
    label = srv.sql(f"SELECT label FROM personas WHERE persona_id = '{world.persona}'")[0][0]
    page.fill("header input[name=q]", label)
    page.press("header input[name=q]", "Enter")
    page.wait_for_selector("#persona-hits a.persona")
    _shot(page, "search")
    page.click(f"#persona-hits a[href='/persona/{world.persona}']")
    page.wait_for_selector("#persona-label")
    assert world.case_a in page.inner_text("#persona-cases")
    _shot(page, "persona")
    page.click("nav >> text=Review queue")
    first = page.locator("tr.proposal").first
    a = first.locator("input[name=a]").get_attribute("value")
    b = first.locator("input[name=b]").get_attribute("value")
    first.locator("button.confirm").click()
    page.wait_for_selector("#done")
    _shot(page, "review")
    page.goto(srv.url + "/graph?node=" + quote(f"persona:{world.persona}"))
    page.wait_for_selector("#cy[data-expanded='1']")
    n_before = page.evaluate("window.darkmapGraph.nodes().length")
    account = page.evaluate("window.darkmapGraph.nodes('[kind = \"account\"]')[0].id()")
    page.evaluate(f"window.darkmapGraph.getElementById({account!r}).emit('tap')")
    page.wait_for_selector("#cy[data-expanded='2']")
    n_after = page.evaluate("window.darkmapGraph.nodes().length")
    _shot(page, "graph")
    with page.expect_download() as png:
        page.click("#export-png")
    with page.expect_download() as gml:
        page.click("#export-graphml")
    png_path, gml_path = downloads / "graph.png", downloads / "graph.graphml"
    png.value.save_as(png_path)
    gml.value.save_as(gml_path)
    watch.clean("flow")
    return {"a": a, "b": b, "before": n_before, "after": n_after, "png": png_path,
            "graphml": gml_path, "account": account}


def test_analyst_flow_in_chromium(browser: Browser, flow_world: World,
                                  tmp_path: Path) -> None:
    clock = next_clock()
    with serving(flow_world.path, clock) as srv:
        ctx = browser.new_context(accept_downloads=True, viewport={"width": 1280,
                                                                   "height": 900})
        page = ctx.new_page()
        out = _flow(page, srv, flow_world, clock, tmp_path)
        ctx.close()
        judged = srv.sql(f"SELECT verdict, author FROM judgements WHERE a = '{out['a']}' "
                         f"AND b = '{out['b']}' AND withdrawn_at IS NULL")
    assert judged == [("same", "alice")]
    assert out["after"] > out["before"]         # expanding the account added its identifiers
    assert out["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    gml = out["graphml"].read_text(encoding="utf-8")
    assert gml.startswith("<?xml") and "<graphml" in gml
    assert f'id="persona:{flow_world.persona}"' in gml
    assert gml.count("<node ") == out["after"]
    for name in ("dashboard", "search", "persona", "review", "graph"):
        assert (ARTEFACTS / f"{name}.png").stat().st_size > 5000
    shutil.copy(out["graphml"], ARTEFACTS / "graph.graphml")


def test_signing_out_everywhere_from_the_access_page_in_chromium(browser: Browser,
                                                                  flow_world: World) -> None:
    """The Access page's forms work under the page's CSP: a user signed in in two
    browsers signs out of both from one."""
    clock = next_clock()
    with serving(flow_world.path, clock) as srv:
        one, two = browser.new_context(), browser.new_context()
        page, other = one.new_page(), two.new_page()
        watch = Watch(page)
        for p in (other, page):
            browser_sign_in(p, srv.url, "rita", flow_world.secrets["rita"], clock)
        page.click("nav >> text=Access")
        row = page.locator("#access tr[id='user-rita']")
        assert row.locator("li", has_text="signed in").count() == 2
        assert row.locator("li", has_text="(this browser)").count() == 1
        _shot(page, "access")
        row.locator("button", has_text="sign out everywhere").click()
        page.wait_for_url(srv.url + "/login")
        other.goto(srv.url + "/cases")
        assert other.url == srv.url + "/login"
        watch.clean("access")
        one.close()
        two.close()
        assert any(e["action"] == "web.session.end" and e["ended"] == 2
                   for e in srv.audit("rita"))


def test_recording_a_seizure_from_the_form_in_chromium(browser: Browser,
                                                       flow_world: World) -> None:
    """The record form works under the page's CSP, without script: an officer picks a
    compartment offered, types the lots, and the cases page says what was recorded."""
    clock = next_clock()
    with serving(flow_world.path, clock) as srv:
        context = browser.new_context()
        page = context.new_page()
        watch = Watch(page)
        browser_sign_in(page, srv.url, "alice", flow_world.secrets["alice"], clock)
        page.click("nav >> text=Record")
        page.click("main >> text=seizure")
        offered = page.locator("#compartments option").first.get_attribute("value")
        assert offered
        page.fill("#f-drugs", "fentanyl:64000\nheroin:500")
        page.fill("#f-compartment", offered)
        page.fill("#f-provenance", "PV 88 <script>alert(1)</script>")
        page.fill("#f-links", f"persona:{flow_world.persona}")
        _shot(page, "record")
        page.click("#record button[type=submit]")
        page.wait_for_selector("#added")
        assert "Recorded: seizure seizure-" in page.inner_text("#added")
        watch.clean("record")
        context.close()
        assert any(e["action"] == "record.add" and e["kind"] == "seizure"
                   for e in srv.audit("alice"))


# what a vendor handle may hold: C0 controls (NUL, BEL), U+FFFE/U+FFFF, a lone surrogate,
# DEL and a C1 control, markup characters, and a character outside the BMP (kept as is)
NASTY_JS = "'v\\u0000n\\u0007d\\ufffe\\uffff\\ud800x\\u007f\\u0085<&>\"\\'\\ud83d\\ude00'"
NASTY = "v\x00n\x07d\ufffe\uffff\ud800x\x7f\x85<&>\"'\U0001f600"


def test_graphml_download_is_valid_xml_keeping_every_character(
        browser: Browser, flow_world: World, tmp_path: Path) -> None:
    """The browser's GraphML export dropped C0 controls and wrote U+FFFE, U+FFFF and lone
    surrogates as they were (no XML parser reads the file). Now each is a visible escape,
    exactly as the server's exporter writes it (export.graph.xml_text): the file parses
    and every label, id and kind reads as the server would write it."""
    clock = next_clock()
    with serving(flow_world.path, clock) as srv:
        ctx = browser.new_context(accept_downloads=True)
        page = ctx.new_page()
        watch = Watch(page)
        browser_sign_in(page, srv.url, "alice", flow_world.secrets["alice"], clock)
        page.goto(srv.url + "/graph?node=" + quote(f"persona:{flow_world.persona}"))
        page.wait_for_selector("#cy[data-expanded='1']")
        start = f"persona:{flow_world.persona}"
        page.evaluate(f"""() => {{
            var nasty = {NASTY_JS};
            window.darkmapGraph.add([
              {{ data: {{ id: "account:m:" + nasty, kind: "account", label: nasty }} }},
              {{ data: {{ id: "e-nasty", source: {start!r}, target: "account:m:" + nasty,
                          kind: nasty }} }}]);
        }}""")
        with page.expect_download() as gml:
            page.click("#export-graphml")
        path = tmp_path / "graph.graphml"
        gml.value.save_as(path)
        watch.clean("graphml export")
        ctx.close()
    root = ET.parse(path).getroot()  # noqa: S314 - a file this test had the browser write
    ns = {"g": "http://graphml.graphdrawing.org/xmlns"}
    shown = xml_text(NASTY)
    assert shown == ("v\\x00n\\x07d\\ufffe\\uffff\\ud800x\\x7f\\x85<&>\"'\U0001f600")
    nodes = {n.get("id"): n for n in root.iterfind(".//g:node", ns)}
    node = nodes[f"account:m:{shown}"]
    assert {d.get("key"): d.text for d in node.iterfind("g:data", ns)} == {
        "kind": "account", "label": shown}
    edges = [e for e in root.iterfind(".//g:edge", ns) if e.get("target") == f"account:m:{shown}"]
    assert len(edges) == 1 and edges[0].get("source") == start
    assert edges[0].find("g:data", ns).text == shown  # type: ignore[union-attr]
