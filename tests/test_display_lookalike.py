"""Look-alike account ids do not print like real ones (:func:`darkmap.model.display.
lookalike_mark`): "hansa:mezclariо" with a Cyrillic о printed exactly as the real Hansa
vendor hansa:mezclario in `persona show`, `review`, `targets`, `persona search` and the
workbench. The world: the real Hansa listings of December 2016 and the seized Dream
seller table, and the real listings of hansa:mezclario copied under five probes of its
name (Cyrillic о, Greek α, a zero-width joiner, a right-to-left override, and "рор",
wholly Cyrillic letters that print like Latin "pop"), ingested, assessed and linked with
the CLI."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from click.testing import CliRunner
from markupsafe import escape
from web_support import (
    FakeClock,
    Served,
    World,
    _onboard,
    browser_sign_in,
    login,
    next_clock,
    serving,
)

import darkmap
from darkmap.cli import main
from darkmap.model import display
from darkmap.model.display import lookalike_mark, lookalike_reasons
from darkmap.resolve import normalise
from darkmap.store.workspace import Workspace

REAL = "Mezclario"
"""A real Hansa vendor (15 listings), whose listings the probes copy."""
PROBES = {
    "Mezclari\u043e": "[!mixed script: \u043e=U+043E CYRILLIC SMALL LETTER O]",
    "Mezcl\u03b1rio": "[!mixed script: \u03b1=U+03B1 GREEK SMALL LETTER ALPHA]",
    "Mezc\u200dlario": "[!invisible: U+200D ZERO WIDTH JOINER]",
    "Mez\u202eoiralc": "[!invisible: U+202E RIGHT-TO-LEFT OVERRIDE]",
    "\u0440\u043e\u0440": "[!confusable: every letter prints like Latin (pop)]",
}
"""The probe handles and the mark each must print with."""
CYRILLIC, GREEK = "Mezclari\u043e", "Mezcl\u03b1rio"


def _ids(handle: str) -> str:
    return "hansa:" + handle.casefold()


def test_the_mark_names_what_makes_an_id_look_like_another() -> None:
    for handle, mark in PROBES.items():
        assert lookalike_mark(_ids(handle)) == mark, handle
        assert lookalike_mark(handle, account_id=False) == mark, handle
    assert lookalike_mark("hansa:\uff54heshop") == \
        "[!confusable: \uff54=U+FF54 FULLWIDTH LATIN SMALL LETTER T]"
    assert lookalike_mark("hansa:the\U0001d42c\U0001d421op") == (
        "[!confusable: \U0001d42c=U+1D42C MATHEMATICAL BOLD SMALL S, "
        "\U0001d421=U+1D421 MATHEMATICAL BOLD SMALL H]")
    # several kinds in one mark; more than three letters of a kind are counted
    assert lookalike_mark("hansa:\u0440\u0430\u0443\u0440\u0430l\u200b") == (
        "[!mixed script: l=U+006C LATIN SMALL LETTER L; invisible: U+200B ZERO WIDTH SPACE]")
    assert lookalike_mark("agora:\u0442\u0435\u0441\u043d\u043eshopmarketplace") == (
        "[!mixed script: \u0442=U+0442 CYRILLIC SMALL LETTER TE, \u0435=U+0435 CYRILLIC "
        "SMALL LETTER IE, \u0441=U+0441 CYRILLIC SMALL LETTER ES +2 more]")
    # the market part is not the handle: a Russian name on an English-named market is
    # itself, and so are plain names, accented Latin ones and other scripts alone
    for plain in ("hansa:магазин", "hansa:mezclario", "dream:café-crème", "hansa:薬局",
                  "hansa:Ελλάδα", "", "hansa:"):
        assert lookalike_mark(plain) == "", plain
    assert lookalike_reasons("hansa:магазин", account_id=False) == \
        [("mixed script: h=U+0068 LATIN SMALL LETTER H, a=U+0061 LATIN SMALL LETTER A, "
         "n=U+006E LATIN SMALL LETTER N +1 more")]


def test_a_mark_never_holds_a_character_that_hides_or_reorders() -> None:
    for text in ("hansa:a\u202eb", "hansa:\u2066x\u2069y", "hansa:x\u200by\u200cz\u200dw",
                 "hansa:a\u00adb\u2060c\ufeffd", "hansa:e\u034fv\ufe0fil", "hansa:\u3164x"):
        mark = lookalike_mark(text)
        assert mark.startswith("[!invisible: U+"), text
        assert display.for_display(mark) == mark and mark.isprintable(), text


def test_a_sentence_naming_ids_is_marked_after_each_lookalike_and_escaped_on_the_web(
        ) -> None:
    """Why a link was left apart names the accounts of both personas: each look-alike
    id in it is followed by its mark (the CLI) or badge (the workbench), markup and bidi
    overrides in it stay text."""
    from darkmap.model.display import lookalike_pieces
    from darkmap.web.app import _ids_in

    why = (f"kept apart by the clustering: the pair {_ids(CYRILLIC)} ~ "
           "hansa:<script>alert(1)</script>\u202e has no evidence; hansa:x ~ "
           f"{_ids(GREEK)} was judged different")
    pieces = lookalike_pieces(why)
    assert "".join(p for p, _ in pieces) == why
    rtl = PROBES["Mez\u202eoiralc"]
    assert [m for _, m in pieces] == [PROBES[CYRILLIC], rtl, PROBES[GREEK], ""]
    assert pieces[0][0].endswith(_ids(CYRILLIC))
    shown = str(_ids_in(why))
    assert "<script>" not in shown and "&lt;script&gt;" in shown and "\u202e" not in shown
    assert f"{_ids(CYRILLIC)} {_badge(PROBES[CYRILLIC])}" in shown
    assert lookalike_pieces("x" * 100_000 + "\u043e") == [("x" * 100_000 + "\u043e", "")]


def test_the_linker_and_the_mark_share_one_script_test() -> None:
    """The linker's mixed_script (docs/linking.md) is the display's: one script test."""
    assert normalise.mixed_script is display.mixed_script
    assert normalise.as_latin("TheSh\u043ep") == "theshop"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> World:
    """The real data and the probes, through the CLI, with the workbench's agencies and
    users (tests/web_support.py) on it."""
    base = tmp_path_factory.mktemp("lookalike")
    folder = base / "input"
    folder.mkdir()
    hansa = data_dir / "listings" / "hansa-2016-12.csv"
    (folder / hansa.name).write_bytes(hansa.read_bytes())
    sellers = data_dir / "seized" / "dream-2016-sellers.sql"
    (folder / sellers.name).write_bytes(sellers.read_bytes())
    rows = [line for line in hansa.read_text(encoding="utf-8").splitlines(keepends=True)
            if f'"{REAL}"' in line]
    assert len(rows) == 15
    probes = []
    for k, handle in enumerate(PROBES):
        for i, line in enumerate(rows):
            cells = line.split('", "')
            cells[1], cells[3] = f"9{k}{i:03d}", handle
            probes.append('", "'.join(cells))
    (folder / "hansa-2016-12-probes.csv").write_text("".join(probes), encoding="utf-8")
    path = base / "ws"
    for args in (["ingest", "-q", "--init", "--allow-unrecognised", "-w", str(path),
                  str(folder)], ["link", "-w", str(path)], ["assess", "-w", str(path)]):
        res = CliRunner().invoke(main, args, prog_name="darkmap")
        assert res.exit_code == 0, (args, res.output, res.exception)
    with Workspace.open(path) as ws:
        top = darkmap.show_persona(ws, _ids(REAL))["persona_id"]
        return _onboard(ws, "ana", path, top)


def _cli(world: World, *args: str) -> str:
    res = CliRunner().invoke(main, [*args, "-w", str(world.path)], prog_name="darkmap")
    assert res.exit_code == 0, (args, res.output, res.exception)
    return res.output


def _marked_lines(out: str) -> None:
    """Every line of ``out`` that prints a probe's id or handle carries its mark; no line
    holds a raw right-to-left override; the real vendor's own lines carry none."""
    assert "\u202e" not in out
    seen = 0
    for line in out.splitlines():
        if line.lstrip().startswith(("darkmap judge", "judge: darkmap judge")):
            continue  # a command line to paste: the ids as the shell takes them
        for handle, mark in PROBES.items():
            for shown in (display.for_display(_ids(handle)), display.for_display(handle)):
                if shown in line:
                    seen += 1
                    assert line.count(mark) >= line.count(shown), (handle, line)
        if "[!" in line:
            assert any(mark in line for mark in PROBES.values()), line
    assert seen


def test_the_real_ids_carry_no_mark_and_every_probe_does(world: World) -> None:
    with Workspace.open(world.path, read_only=True) as ws:
        ids = [r[0] for r in ws.con.execute("SELECT account_id FROM accounts").fetchall()]
    probes = {_ids(h) for h in PROBES}
    assert len(ids) > 1000 and probes <= set(ids)
    assert {i for i in ids if lookalike_mark(i)} == probes


def test_persona_show_marks_the_lookalike_members_and_links(world: World) -> None:
    out = _cli(world, "persona", "show", _ids(REAL))
    _marked_lines(out)
    for handle in ("Mezclari\u043e", "Mezcl\u03b1rio", "Mezc\u200dlario"):
        assert f"{display.for_display(_ids(handle))} {PROBES[handle]}" in out
    # the accounts table: the real vendor's row unmarked
    row = next(line for line in out.splitlines() if line.startswith(f"  {_ids(REAL)} "))
    assert "[!" not in row
    rtl = _cli(world, "persona", "show", _ids("Mez\u202eoiralc"))
    _marked_lines(rtl)
    assert "hansa:mez\\u202eoiralc [!invisible: U+202E RIGHT-TO-LEFT OVERRIDE]" in rtl
    # JSON keeps the raw ids
    data = json.loads(_cli(world, "persona", "show", _ids(REAL), "--json"))
    assert {a["account_id"] for a in data["accounts"]} >= {_ids("Mezclari\u043e")}


def test_review_search_and_targets_mark_the_lookalikes(world: World) -> None:
    review = _cli(world, "review", "-n", "10000")
    _marked_lines(review)
    assert f"{_ids(CYRILLIC)} {PROBES[CYRILLIC]}" in review
    search = _cli(world, "persona", "search", "mezc")
    _marked_lines(search)
    assert f"{_ids(GREEK)} {PROBES[GREEK]}" in search
    targets = _cli(world, "targets", "--limit", "0")
    _marked_lines(targets)
    for handle in ("Mez\u202eoiralc", "\u0440\u043e\u0440"):
        assert f"{display.for_display(handle)} {PROBES[handle]}" in targets


def test_judge_marks_the_lookalikes_it_recorded(world: World) -> None:
    """`darkmap judge` says what it recorded and withdrew: the look-alike marked there
    too (the judgement is withdrawn again, the world left as it was)."""
    a, b = _ids(REAL), _ids(CYRILLIC)
    said = _cli(world, "judge", a, b, "--different", "--note", "look-alike")
    _marked_lines(said)
    assert f"{_ids(CYRILLIC)} {PROBES[CYRILLIC]}: different" in said
    gone = _cli(world, "judge", a, b, "--withdraw")
    _marked_lines(gone)
    assert gone.startswith("withdrew 1 judgement(s) on") and PROBES[CYRILLIC] in gone


@pytest.fixture(scope="module")
def served(world: World) -> Iterator[tuple[Served, FakeClock]]:
    clock = next_clock()
    with serving(world, clock) as s:
        yield s, clock


@pytest.fixture(scope="module")
def client(world: World, served: tuple[Served, FakeClock]) -> Iterator[httpx.Client]:
    srv, clock = served
    clock.advance(seconds=31)
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        assert login(c, "alice", world.secrets["alice"], clock).status_code == 303
        yield c


def _badge(mark: str) -> str:
    """The badge the workbench shows after a marked id: the mark as visible text and as
    its title."""
    inner = mark[2:-1]
    return f'<span class="lookalike" title="{escape(inner)}">{escape(mark)}</span>'


def _all_marked(page: str) -> None:
    """Every probe shown as text on ``page`` (not in a link's address or a form's
    value) is followed by its badge, or its mark as text (in the page's title)."""
    for handle, mark in PROBES.items():
        for shown in {str(escape(display.for_display(x))) for x in (_ids(handle), handle)}:
            for m in re.finditer(re.escape(shown) + r"(?=[<\s])", page):
                rest = page[m.end():]
                rest = (rest[4:] if rest.startswith("</a>") else rest).lstrip(" ")
                assert rest.startswith((_badge(mark), str(escape(mark)))), \
                    (handle, page[m.start():m.start() + 300])


def test_the_workbench_marks_the_lookalikes_on_every_page(client: httpx.Client) -> None:
    persona = client.get(f"/persona/{quote(_ids(REAL), safe='')}").text
    _all_marked(persona)
    accounts = persona.split('<table id="accounts"', 1)[1].split("</table>", 1)[0]
    assert accounts.count('class="lookalike"') == 3
    for handle in (CYRILLIC, GREEK, "Mezc\u200dlario"):
        assert _badge(PROBES[handle]) in accounts
    links = persona.split('<table id="links"', 1)[1].split("</table>", 1)[0]
    assert links.count(_badge(PROBES[CYRILLIC])) == 3
    review = client.get("/review?queue=uncertain").text
    _all_marked(review)
    assert _badge(PROBES[CYRILLIC]) in review
    for handle in ("Mez\u202eoiralc", "\u0440\u043e\u0440"):
        acct = client.get(f"/account/{quote(_ids(handle), safe='')}").text
        _all_marked(acct)
        assert _badge(PROBES[handle]) in acct and "\u202e" not in acct
    page = next(n for n in range(1, 30) if any(
        t["label"] == "\u0440\u043e\u0440"
        for t in client.get(f"/api/targets?page={n}").json()["targets"]))
    targets = client.get(f"/targets?page={page}").text
    _all_marked(targets)
    assert _badge(PROBES["\u0440\u043e\u0440"]) in targets
    search = client.get("/search?q=mezc").text
    _all_marked(search)
    assert _badge(PROBES[GREEK]) in search
    data = client.get(f"/api/persona/{quote(_ids(REAL), safe='')}").json()
    assert _ids(CYRILLIC) in {a["account_id"] for a in data["accounts"]}


def test_the_link_chart_labels_carry_the_mark(client: httpx.Client) -> None:
    """The chart draws its labels on a canvas: the mark is part of a look-alike account's
    label (and given apart as ``mark``); the node's id stays the raw account id."""
    pid = client.get(f"/api/persona/{quote(_ids(REAL), safe='')}").json()["persona_id"]
    nodes = {e["data"]["id"]: e["data"] for e in client.get(
        "/api/graph/expand", params={"node": f"persona:{pid}"}).json()["elements"]
        if "source" not in e["data"]}
    for handle in (CYRILLIC, GREEK, "Mezc\u200dlario"):
        node = nodes[f"account:{_ids(handle)}"]
        assert node["label"] == f"{display.for_display(_ids(handle))} {PROBES[handle]}"
        assert node["mark"] == PROBES[handle]
    assert nodes[f"account:{_ids(REAL)}"]["label"] == _ids(REAL)
    assert nodes[f"account:{_ids(REAL)}"]["mark"] == ""


def test_chromium_shows_the_badge_and_the_whole_mark_in_the_chart(
        world: World, served: tuple[Served, FakeClock], client: httpx.Client) -> None:
    """In Debian's chromium: the badge reads as text on the persona page, and the chart
    draws a look-alike account's label with its mark wrapped, not cut; no console error
    or CSP violation."""
    from playwright.sync_api import sync_playwright

    srv, clock = served
    pid = client.get(f"/api/persona/{quote(_ids(REAL), safe='')}").json()["persona_id"]
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        browser_sign_in(page, srv.url, "alice", world.secrets["alice"], clock)
        page.goto(srv.url + f"/persona/{quote(pid, safe='')}")
        accounts = page.inner_text("#accounts")
        assert f"{CYRILLIC} {PROBES[CYRILLIC]}" in accounts
        titles = page.eval_on_selector_all("#accounts .lookalike",
                                           "els => els.map(e => e.getAttribute('title'))")
        assert sorted(titles) == sorted(PROBES[h][2:-1]
                                        for h in (CYRILLIC, GREEK, "Mezc\u200dlario"))
        page.goto(srv.url + "/graph?node=" + quote(f"persona:{pid}"))
        page.wait_for_selector("#cy[data-expanded='1']")
        drawn = page.evaluate("""(id) => {
            var n = window.darkmapGraph.getElementById(id);
            return [n.data("label"), n.style("text-wrap")];
        }""", f"account:{_ids(CYRILLIC)}")
        plain = page.evaluate("(id) => window.darkmapGraph.getElementById(id).style("
                              "'text-wrap')", f"account:{_ids(REAL)}")
        browser.close()
    assert drawn == [f"{_ids(CYRILLIC)} {PROBES[CYRILLIC]}", "wrap"]
    assert plain == "ellipsis"
    assert not errors, errors


def test_a_report_cell_and_a_target_package_mark_the_lookalikes(world: World,
                                                                tmp_path: Path) -> None:
    """`darkmap report`'s cells and `darkmap ops package` printed the probes' ids and
    labels as the real vendor's: each is now followed by its mark (the right-to-left
    override named, never written). The report's tables show the top targets and
    cross-market personas, which no probe is, so its cell function is tried on each
    probe id as a table would hold it (alone, in a list of accounts, in a link's
    explanation); the package is built for the probes' country and read whole."""
    from darkmap.ops.package import build_package
    from darkmap.report.html import shown

    for handle, mark in PROBES.items():
        for cell in (_ids(handle), f"{_ids(REAL)}, {_ids(handle)}",
                     f"the pair {_ids(handle)} ~ {_ids(REAL)} scores p=0.120"):
            text = shown(cell).text
            assert f"{display.for_display(_ids(handle))} {mark}" in text, cell
            assert text.count("[!") == 1 and "\u202e" not in text, text
    assert shown(f"{_ids(REAL)}, hansa:магазин").text == f"{_ids(REAL)}, hansa:магазин"
    with Workspace.open(world.path) as ws:
        (country,) = ws.con.execute(
            "SELECT j.country FROM jurisdictions j JOIN persona_members m "
            "ON j.entity_kind = 'persona' AND j.entity_id = m.persona_id "
            "WHERE m.account_id = ?", [_ids(CYRILLIC)]).fetchone()
        build_package(ws, "ana", country, tmp_path / "pkg")
    package = (tmp_path / "pkg" / "package.html").read_text(encoding="utf-8")
    assert "\u202e" not in package
    assert f"{escape(_ids(CYRILLIC))} {escape(PROBES[CYRILLIC])}" in package
    assert f"{escape(_ids(REAL))}:" in package  # the real vendor's line: no mark
