"""CSV cells and the HTML report show market text one to one, within their bounds
(exports audit, findings 4 and 5).

A vendor whose handle holds a BEL and a NUL (``bel<BEL>nul<NUL>x``) and one whose handle
spells their escapes (``bel\\x07nul\\x00x``) printed identically in the CSV export and
the report: the escape of a control character was text another handle could type. A
backslash is now doubled, so the two rows differ. And a profile of 31,000 control
characters made a 124,003-character CSV cell, the cut coming before each character
became a four-character escape: the cut now applies to the shown text.
"""

from __future__ import annotations

import csv
import re
from datetime import datetime
from pathlib import Path

import pytest

import darkmap
from darkmap.export import ExportOptions, run_export
from darkmap.model.display import CSV_CELL_CHARS, csv_cell, exact_display
from darkmap.model.records import AccountRecord, ListingRecord
from darkmap.plugins import exporters
from darkmap.report.html import CELL_CHARS, FULL_CHARS, shown, write_report
from darkmap.store.workspace import Workspace
from darkmap.store.writer import Provenance, RecordWriter

BEL = "bel\x07nul\x00x"
SPELLED = "bel\\x07nul\\x00x"
CONTROL_FLOOD = "\x01" * 31_000 + "END"
BIDI_FLOOD = "\u202e" * 20_000 + "END"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four Dream vendors, each with a listing: the BEL handle, the handle spelling
    it, and two whose profiles are floods of control and bidi characters."""
    path = tmp_path_factory.mktemp("exact") / "ws"
    t0 = datetime(2020, 1, 2, 3, 4, 5)
    with darkmap.init_workspace(path) as ws:
        raw = "\n".join([BEL, SPELLED, CONTROL_FLOOD, BIDI_FLOOD]).encode()
        sha = ws.captures.put_bytes(raw)
        ws.con.execute("INSERT INTO captures VALUES (?, ?, ?, 'text/plain', ?)",
                       [sha, len(raw), "hostile.txt", t0])
        w = RecordWriter(ws.con)
        prov = Provenance(sha, "hostile.txt", "test@1", t0)
        for handle, profile in ((BEL, "the BEL vendor"), (SPELLED, "the spelling vendor"),
                                ("ctlflood", CONTROL_FLOOD), ("bidiflood", BIDI_FLOOD)):
            w.add(AccountRecord(market_id="dream", handle=handle, role="vendor",
                                profile_text=profile, observed_at=t0,
                                locator=f"profile {len(handle)}"), prov)
            w.add(ListingRecord(market_id="dream", listing_ref=f"ref-{len(handle)}",
                                vendor_handle=handle, title="10g MDMA crystal", price=50.0,
                                currency="USD", ships_from="Netherlands", observed_at=t0,
                                locator=f"listing {len(handle)}"), prov)
        w.flush()
        darkmap.link(ws)  # the report's targets: each persona with its label (the handle)
        darkmap.assess_listings(ws)
    return path


def _csv(hostile: Path, tmp_path: Path, table: str) -> list[dict[str, str]]:
    out = tmp_path / f"{table}.csv"
    with Workspace.open(hostile, read_only=True) as ws:
        run_export(exporters()["csv"], ws, out, ExportOptions(tables=(table,)))
    csv.field_size_limit(10**9)
    with open(out, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_two_handles_never_print_alike_in_the_csv(hostile: Path, tmp_path: Path) -> None:
    rows = _csv(hostile, tmp_path, "accounts")
    ids = sorted(r["account_id"] for r in rows if r["account_id"].startswith("dream:bel"))
    assert ids == ["dream:bel\\\\x07nul\\\\x00x", "dream:bel\\x07nul\\x00x"]
    handles = {r["handle"] for r in rows}
    assert {"bel\\x07nul\\x00x", "bel\\\\x07nul\\\\x00x"} <= handles


def test_a_flood_of_escapes_stays_in_a_spreadsheet_cell(hostile: Path, tmp_path: Path) -> None:
    rows = _csv(hostile, tmp_path, "account_observations")
    cells = {r["account_id"]: r["profile_text"] for r in rows}
    for account, escape in (("dream:ctlflood", "\\x01"), ("dream:bidiflood", "\\u202e")):
        cell = cells[account]
        assert len(cell) <= CSV_CELL_CHARS, (account, len(cell))
        assert cell.endswith("…") and len(cell) > CSV_CELL_CHARS - len(escape) - 1
        assert cell[:-1] == escape * ((len(cell) - 1) // len(escape))  # no escape cut in two
    assert cells["dream:bel\\x07nul\\x00x"] == "the BEL vendor"


def test_two_handles_never_print_alike_in_the_report(hostile: Path, tmp_path: Path) -> None:
    with Workspace.open(hostile, read_only=True) as ws:
        path = write_report(ws, tmp_path / "r.html")
    text = path.read_text(encoding="utf-8")
    # each handle as its cell shows it, the two different
    assert "bel\\x07nul\\x00x" in text and "bel\\\\x07nul\\\\x00x" in text
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\u202e]", text)


def test_a_report_cell_is_bounded_after_its_escapes() -> None:
    cell = shown(CONTROL_FLOOD)
    assert cell.cut and not cell.complete and cell.chars == len(CONTROL_FLOOD)
    assert len(cell.text) <= CELL_CHARS and len(cell.full) <= FULL_CHARS
    assert cell.full.endswith("…") and cell.full[:-1] == "\\x01" * ((len(cell.full) - 1) // 4)
    short = shown("\x01" * 100)  # 100 characters, 400 shown: cut, but whole in `full`
    assert len(short.text) <= CELL_CHARS and short.full == "\\x01" * 100 and short.complete
    assert shown(SPELLED).text == "bel\\\\x07nul\\\\x00x" and not shown(SPELLED).cut


def test_exact_display_is_one_to_one_and_bounded() -> None:
    texts = ["", "\\", "\\\\", "\x07", "\\x07", "\\\\x07", "\u202e", "\\u202e", "a\nb", "a\\nb",
             "\t", "\\t", "é", "x" * 40]
    shown_texts = [exact_display(t) for t in texts]
    assert len(set(shown_texts)) == len(texts)
    for t in texts:
        for limit in range(1, 30):
            s = exact_display(t, max_chars=limit)
            assert len(s) <= limit
            assert s == exact_display(t) or (s.endswith("…")
                                             and exact_display(t).startswith(s[:-1]))
    assert csv_cell("=1+1\x01", max_chars=6) == "'=1+1…"
    assert csv_cell("=\x01\x01", max_chars=10) == "'=\\x01\\x01"
    assert csv_cell("=\x01\x01", max_chars=9) == "'=\\x01…"


def test_a_lone_surrogate_is_shown_as_an_escape_that_encodes() -> None:
    """A lone surrogate (JSON's ``\\ud800`` in a stored record) was shown as it was, and
    the page holding it could not be sent: every reader of the record got an error
    (review of the record form, finding 1)."""
    from darkmap.model.display import exact_display, for_display

    for text in (for_display("J \ud800 \udfff"), exact_display("J \ud800 \udfff")):
        assert text == "J \\ud800 \\udfff"
        text.encode("utf-8")          # raised UnicodeEncodeError before
