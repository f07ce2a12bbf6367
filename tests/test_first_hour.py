"""The first hour of a new analyst (docs/user-guide.md walked on the real data): each
step's output says what its numbers mean and gives the id or command the next step takes.

One workspace of the real saved pages, listing datasets and seized seller table, linked
and assessed, as the guide builds it; the commands run as the analyst types them.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from darkmap.api import assess_listings, ingest, init_workspace, link
from darkmap.cli import main
from darkmap.model.display import columns


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[Path]:
    """The real pages, listings and seized table: ingested, linked, assessed."""
    path = tmp_path_factory.mktemp("first-hour") / "ws"
    ws = init_workspace(path)
    try:
        ingest(ws, [data_dir / "pages", data_dir / "listings", data_dir / "seized"])
        link(ws)
        assess_listings(ws)
    finally:
        ws.close()
    yield path


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_targets_table_gives_the_persona_id_and_how_sure_the_country_is(real: Path) -> None:
    """The table showed a handle `persona show` refuses, and the country without the
    confidence `--json` has; it now shows the id, the country's confidence, what the
    columns mean and the next command, which runs as printed."""
    rows = json.loads(_run("targets", "-w", str(real), "--limit", "8", "--json").output)
    res = _run("targets", "-w", str(real), "--limit", "8")
    assert res.exit_code == 0
    lines = res.output.splitlines()
    for i, r in enumerate(rows, 1):
        line = lines[i]
        assert line.split()[:3] == [str(i), f"{r['harm_score']:.1f}"
                                    + ("" if r["sales_evidence"] else "*"), r["persona_id"]]
        if r["country"]:
            assert f" {r['country']} {r['country_confidence']:.2f} " in line
    assert any(r["country"] for r in rows)
    assert "how sure" in res.output and "fentanyl-risk" in res.output
    nxt = next(ln for ln in lines if ln.startswith("next: "))
    cmd = shlex.split(nxt.removeprefix("next: ").split(" (")[0])
    assert cmd[:3] == ["darkmap", "persona", "show"] and cmd[3] == rows[0]["persona_id"]
    shown = _run(*cmd[1:], "-w", str(real))
    assert shown.exit_code == 0 and shown.output.startswith(rows[0]["persona_id"])


def test_persona_show_gives_listings_doses_prices_sales_and_the_wallet_commands(
        real: Path) -> None:
    """`persona show` gave accounts, identifiers and links only: its listings, doses,
    prices, estimated sales and where it ships from were in the workbench alone, and an
    address it showed did not lead to `wallet show` or `trace`."""
    w = ["-w", str(real)]
    res = _run("persona", "show", "hansa:wowdeal", *w)
    assert res.exit_code == 0
    out = res.output
    assert "assessment: ships from DE (how sure: 0.80); orders: not captured" in out
    assert "listings (20 of 51; fent: fentanyl risk" in out
    fent = next(ln for ln in out.splitlines() if ln.startswith("  hansa:43406 "))
    assert fent.split()[1:4] == ["fent", "fentanyl", "0.1"] and "x1 patch" in fent
    assert "$55.31 ($55.31/patch)" in fent
    # flagged listings come first, a persona with sales shows them with their ranges
    assert out.index("hansa:43406") < out.index("hansa:43400")
    data = json.loads(_run("persona", "show", "hansa:wowdeal", *w, "--json").output)
    a = data["assessment"]
    assert a["listings_total"] == len(a["listings"]) == 51
    assert a["country"] == "DE" and a["country_evidence"][0]["kind"] == "ships_from"
    terry = _run("persona", "show", "hansa:terrysukstock", *w).output
    # the assessment runs on over two lines when it does not fit in 100 columns
    lines = terry.splitlines()
    at = next(i for i, ln in enumerate(lines) if ln.startswith("assessment: "))
    sales = " ".join(lines[at:at + 2])
    tj = json.loads(_run("persona", "show", "hansa:terrysukstock", *w, "--json").output)
    est, lo, hi = tj["assessment"]["orders"]
    assert lo <= est <= hi and f"orders {est:,.0f} ({lo:,.0f}-{hi:,.0f})" in sales
    assert "revenue USD" in sales and "(90% ranges)" in sales
    # an address of the persona leads to its wallet and the trace to a cash-out
    ohno = _run("persona", "show", "dream:dr.ohno", *w).output
    addr = "1NGb6Cesn2tJ3wCP4um2UjBKSHiouc7XXR"
    assert f"wallet: darkmap wallet show {addr}" in ohno
    assert f"darkmap trace {addr} --forward" in ohno
    pid = data["persona_id"]
    assert f"next: darkmap persona show {pid} --json" in out


def test_persona_show_and_targets_fit_in_100_columns_and_say_what_they_mean(
        real: Path) -> None:
    """`persona show` printed `None` for an end date nobody knows and "cohesion" without
    saying what it is; its listing lines ran to ~160 characters, as did the `targets`
    table. Off a terminal both now fit in 100 columns, with the key values kept."""
    w = ["-w", str(real)]
    out = _run("persona", "show", "hansa:terrysukstock", *w).output
    data = json.loads(_run("persona", "show", "hansa:terrysukstock", *w, "--json").output)
    lines = out.splitlines()
    assert max(columns(ln) for ln in lines) <= 100, max(lines, key=len)
    assert "None" not in out
    dream = next(ln for ln in lines if ln.startswith("  dream:terrysukstock "))
    assert [a["active_to"] for a in data["accounts"]
            if a["account_id"] == "dream:terrysukstock"] == [None]
    assert ".. unknown " in dream
    assert out.count("cohesion: the mean match probability of its accounts' pairs") == 1
    for x in data["assessment"]["listings"]:
        line = next(ln for ln in lines if ln.startswith(f"  {x['listing_id']} "))
        assert x["substance"] in line
        assert f"{x['dose_mg']:g} mg" in line if x["dose_mg"] else " - " in line
        assert f"${x['pack_price_usd']:,.2f}" in line if x["pack_price_usd"] else True
    # a persona with fentanyl listings and long titles: cut, not wrapped
    wow = _run("persona", "show", "hansa:wowdeal", *w).output.splitlines()
    assert max(columns(ln) for ln in wow) <= 100 and any(ln.endswith("…") for ln in wow)
    rows = json.loads(_run("targets", *w, "--limit", "20", "--json").output)
    table = _run("targets", *w, "--limit", "20").output.splitlines()
    assert max(columns(ln) for ln in table) <= 100, max(table, key=len)
    for i, r in enumerate(rows, 1):
        assert table[i].split()[:3] == [str(i), f"{r['harm_score']:.1f}"
                                        + ("" if r["sales_evidence"] else "*"),
                                        r["persona_id"]]
        where = f" {r['country']} {r['country_confidence']:.2f} " if r["country"] else " -- "
        assert where in table[i]


def test_persona_search_and_the_field_report_fit_in_100_columns(real: Path) -> None:
    """`persona search` put every match of a persona on its line (350 columns for one
    with five contacts) and `status --fields` a page type's fields on one (211): each
    match now has a line of its own, the fields are wrapped, and nothing is lost."""
    w = ["-w", str(real)]
    hits = json.loads(_run("persona", "search", "a", *w, "--json").output)
    out = _run("persona", "search", "a", *w).output.splitlines()
    assert max(columns(ln) for ln in out) <= 100, max(out, key=len)
    assert sum(not ln.startswith("  ") for ln in out) == len(hits) == 50  # its limit
    many = next(h for h in hits if len(h["matches"]) > 5)
    assert f"  ... and {len(many['matches']) - 5} more (--json lists all)" in out
    fields = _run("status", "--fields", *w).output.splitlines()
    assert max(columns(ln) for ln in fields) <= 100, max(fields, key=len)
    shown = " ".join(ln.strip() for ln in fields)
    assert "joined_at=" in shown and "sales_count=" in shown


def test_a_title_with_wide_characters_is_cut_at_the_line_s_edge(real: Path) -> None:
    """A real Hansa vendor's titles hold wide characters (the two-column ⚫): `persona
    show` cut them by characters, so the line ran two columns past the 100 of the
    others. Now every line fits in 100 terminal columns and the columns before the
    title stay aligned."""
    out = _run("persona", "show", "hansa:pearla13", "-w", str(real)).output.splitlines()
    assert max(columns(ln) for ln in out) <= 100, max(out, key=columns)
    listing = [ln for ln in out if ln.startswith("  hansa:")
               and not ln.startswith("  hansa:pearla13 ")]
    wide = [ln for ln in listing if "\u26ab" in ln]
    assert wide and all(ln.endswith("…") for ln in wide)
    assert all(columns(ln) == 100 and len(ln) < 100 for ln in wide)
    # the price column ends at the same column on every listing line
    ends = {columns(ln[:ln.index("$")]) + len(ln[ln.index("$"):].split()[0])
            for ln in listing if "$" in ln}
    assert len(ends) == 1, ends


def test_a_buy_says_which_vendor_its_listing_leads_to_or_that_it_leads_nowhere(
        real: Path) -> None:
    """A controlled buy on a mistyped listing id was recorded, and its fentanyl result
    "marked" a listing no capture holds, without a word; the persona was left unmarked.
    `ops buy add` now names the account and persona the listing leads to, or warns."""
    w = ["-w", str(real)]
    assert _run("ops", "agency", "add", "bka", "--country", "DE", "--contact", "desk",
                "--as", "ana", *w).exit_code == 0
    assert _run("ops", "user", "add", "ana", "--agency", "bka", "--role", "admin",
                "--as", "ana", *w).exit_code == 0
    case = _run("ops", "case", "add", "WowDeal", "--provenance", "file 12", "--as", "ana", *w)
    case_id = case.output.split()[1]
    buy = ["ops", "buy", "add", "--substance", "fentanyl", "--case", case_id,
           "--provenance", "lab 7", "--as", "ana", *w]
    pid = json.loads(_run("persona", "show", "hansa:wowdeal", "--json", *w).output)[
        "persona_id"]
    good = _run(*buy, "--listing", "hansa:43406")
    assert good.exit_code == 0 and good.stderr == ""
    assert (f"listing hansa:43406 (account hansa:wowdeal, persona {pid}): marked as "
            "selling fentanyl") in good.stdout
    # a digit dropped is another vendor's listing: the line names that vendor
    other = _run(*buy, "--listing", "hansa:4340")
    assert "(account hansa:color, persona p-" in other.stdout
    typo = _run(*buy, "--listing", "hansa:43406x")
    assert typo.exit_code == 0 and typo.stdout.startswith("buy buy-")
    assert typo.stderr.startswith("warning: listing 'hansa:43406x' is in no capture of this "
                                  "workspace, so its fentanyl result marks no account or "
                                  "persona")


def test_review_gives_the_evidence_persona_show_gives(real: Path) -> None:
    """`darkmap review` listed the model's base log-odds as evidence ("_base -6.8", the
    same for every pair) and signals that added nothing ("pgp +0.0"); its evidence is now
    what `persona show` lists for the pair: the signals that moved the score."""
    w = ["-w", str(real)]
    queue = json.loads(_run("review", "-n", "10", "--json", *w).output)
    assert queue
    text = _run("review", "-n", "10", *w).output
    assert "_base" not in text and "+0.0," not in text and "+0.0]" not in text
    for q in queue:
        assert q["evidence"] and "_base" not in q["evidence"]
        assert all(v for v in q["evidence"].values())
    q = next(x for x in queue if x["merged"])   # a merged pair: persona show has it
    shown = json.loads(_run("persona", "show", q["a"], "--json", *w).output)
    link = next(lk for lk in shown["links"] if {lk["a"], lk["b"]} == {q["a"], q["b"]})
    moved = [s["signal"] for s in link["signals"] if s.get("contribution")]
    assert list(q["evidence"]) == moved[:5]


def test_status_leads_with_the_stage_and_the_next_command(tmp_path: Path) -> None:
    """`darkmap status` listed ~60 raw table counts and, like `assess`, never said what
    to run next. It now leads with what the workspace holds and has been through and the
    next command, which changes as the analyst runs it; the counts follow. Walked on a
    small `darkmap simulate` world with chain data, through the real importers."""
    from darkmap.simulate import SimParams, simulate

    world = tmp_path / "world"
    simulate(world, 3, SimParams(vendors=40))
    path = str(tmp_path / "ws")
    assert _run("init", path).exit_code == 0

    def status() -> tuple[str, list[str]]:
        res = _run("status", "-w", path)
        assert res.exit_code == 0
        lines = res.output.splitlines()
        nxt = next(ln for ln in lines if ln.startswith("next: "))
        # the stage comes first, the table counts after it, every table still counted
        assert lines[0] == "workspace stage:" and lines.index(nxt) < lines.index(
            "tables (rows):")
        return nxt.split("   ")[0].removeprefix("next: "), lines

    assert status()[0] == "darkmap ingest PATH..."
    parts = [str(world / p) for p in ("pages", "listings", "seized", "chain")]
    assert _run("ingest", "-w", path, "-q", *parts).exit_code == 0
    nxt, lines = status()
    assert nxt == "darkmap link" and "  linked      no" in lines
    assert any(ln.startswith("  ingested    ") and " accounts, " in ln for ln in lines)
    data = json.loads(_run("status", "-w", path, "--json").output)
    assert data["next"] == "darkmap link" and data["tables"]["accounts"] > 0
    assert len(data["tables"]) > 50 and all(f"  {t} " in "\n".join(lines) for t in
                                            data["tables"])
    assert _run("link", "-w", path, "-q").exit_code == 0
    assert status()[0] == "darkmap assess"
    a, b = _two_accounts(path)
    assert _run("judge", a, b, "--different", "-w", path).exit_code == 0
    nxt, lines = status()
    assert nxt == "darkmap link" and any("(out of date)" in ln for ln in lines)
    assert _run("link", "-w", path, "-q").exit_code == 0
    assessed = _run("assess", "-w", path, "-q")
    assert assessed.exit_code == 0
    assert assessed.output.splitlines()[-1].startswith("next: darkmap targets")
    assert status()[0] == "darkmap chain cluster"
    assert _run("chain", "cluster", "-w", path).exit_code == 0
    nxt, lines = status()
    assert nxt == "darkmap targets" and any(ln.startswith("  chain       clustered: ")
                                            for ln in lines)


def _two_accounts(path: str) -> tuple[str, str]:
    """Two accounts of the workspace at ``path``."""
    from darkmap.store.workspace import Workspace

    ws = Workspace.open(Path(path), read_only=True)
    try:
        a, b = (r[0] for r in ws.con.execute(
            "SELECT account_id FROM accounts ORDER BY account_id LIMIT 2").fetchall())
    finally:
        ws.close()
    return a, b
