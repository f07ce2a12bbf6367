"""When saved pages were captured: ``ingest --captured-at``, the page's own time first,
and the warning when the files' times are much later than anything the pages show (the
real pages' files were copied in 2026; the audit of the market figures, finding 4)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from click.testing import CliRunner

from darkmap.cli import main
from darkmap.pipeline import REAL_PAGES_CAPTURED, DemoContext, assess_listings, ingest_all
from darkmap.store.workspace import Workspace


def _run(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(main, list(args), prog_name="darkmap")
    return res.exit_code, res.stdout, res.stderr


def _times(db: Path, market: str) -> list[tuple[str, datetime]]:
    ws = Workspace.open(db, read_only=True)
    try:
        return ws.con.execute(
            "SELECT DISTINCT method, observed_at FROM listing_observations WHERE listing_id "
            "LIKE ? || ':%' UNION SELECT DISTINCT method, observed_at FROM account_observations"
            " WHERE account_id LIKE ? || ':%' ORDER BY ALL", [market, market]).fetchall()
    finally:
        ws.close()


def test_stated_capture_time_replaces_the_files_time(data_dir: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    pages = data_dir / "pages"
    code, out, err = _run("ingest", "--init", "-q", "-w", str(ws), "--captured-at",
                          "2019-11-18", str(pages / "empire"), str(pages / "cryptonia"))
    assert code == 0, out + err
    assert "warning" not in err
    db = ws
    # Empire's pages state no time: the stated one, and the method says it was stated
    empire = _times(db, "empire")
    assert empire == [("pages@1; capture time stated 2019-11-18T00:00:00",
                       datetime(2019, 11, 18))]
    # Cryptonia's pages state their "Server Time": it comes first
    crypt = _times(db, "cryptonia")
    assert len({t for _, t in crypt}) > 5
    assert all(datetime(2019, 5, 1) < t < datetime(2019, 12, 1) for _, t in crypt)
    w = Workspace.open(db, read_only=True)
    try:
        args, stated = w.con.execute("SELECT args, summary->>'captured_at' FROM "
                                     "ingest_runs").fetchone()
    finally:
        w.close()
    assert json.loads(args)[0] == "--captured-at=2019-11-18T00:00:00"
    assert stated == "2019-11-18T00:00:00"
    # re-ingesting with another time is a no-op, as any re-ingest
    code, out, err = _run("ingest", "-q", "--json", "-w", str(ws), "--captured-at",
                          "2021-01-01T12:00:00+02:00", str(pages / "empire"))
    assert code == 0 and json.loads(out)["totals"]["stored_new"] == 0
    assert _times(db, "empire") == empire
    code, _, err = _run("ingest", "-q", "-w", str(ws), "--captured-at", "2019-13-01",
                        str(pages / "empire"))
    assert code == 2 and "not an ISO date" in err


def test_copied_pages_are_warned_of_in_ingest_and_status(data_dir: Path,
                                                        tmp_path: Path) -> None:
    """The files' times are the day they were copied (2026): years after the newest
    date the Empire pages show (2019-11-18)."""
    ws = tmp_path / "ws"
    empire = data_dir / "pages" / "empire"
    code, out, err = _run("ingest", "--init", "-q", "--json", "-w", str(ws), str(empire))
    assert code == 0, err
    assert "warning: 21 empire page(s) are observed at" in err
    assert "the newest date the market's pages show (2019-11-18)" in " ".join(err.split())
    assert "--captured-at" in err and "warning" not in out   # the JSON is what it was
    code, out, err = _run("status", "-w", str(ws))
    assert code == 0 and "warning: 21 empire page(s)" in out
    code, out, _ = _run("status", "-w", str(ws), "--json")
    doubts = json.loads(out)["page_time_warnings"]
    assert [(d["market_id"], d["pages"], d["newest_shown"][:10]) for d in doubts] == [
        ("empire", 21, "2019-11-18")]
    # Hansa's pages state their own times: nothing to warn of
    code, out, err = _run("ingest", "-q", "-w", str(ws), str(data_dir / "pages" / "hansa"))
    assert code == 0 and "hansa" not in err


def test_demo_ingests_the_real_pages_at_their_capture_times(data_dir: Path,
                                                            tmp_path: Path) -> None:
    """The demo's real pages convert at their era's rates and end their activity then
    (before: observed 2026-12-07, 35 Dream BTC listings 13.4 times too high, 281
    accounts and personas active until 2026)."""
    assert set(REAL_PAGES_CAPTURED) == {p.name for p in (data_dir / "pages").iterdir()
                                        if p.is_dir()}
    ws = Workspace.init(tmp_path / "ws")
    try:
        ctx = DemoContext(world=None, real_data=data_dir)
        ingest_all(ws, ctx)
        assess_listings(ws, ctx)
        con = ws.con
        late = sum(con.execute(f"SELECT count(*) FROM {t} WHERE observed_at >= '2021-01-01'"
                               ).fetchone()[0]
                   for t in ("listing_observations", "account_observations", "feedback"))
        dream = con.execute("SELECT pack_price_usd, observed_at FROM listing_assessments "
                            "WHERE listing_id = 'dream:115176.827038'").fetchone()
        last = con.execute("SELECT max(last_active), max(active_days) FROM sales_summary"
                           ).fetchone()
        from darkmap.store.page_times import page_time_doubts
        doubts = page_time_doubts(con)
    finally:
        ws.close()
    assert late == 0 and doubts == []
    # 0.01967 BTC: $2,085 at the 2026 rate; the page's own rate gives $156
    assert dream[1] == datetime(2018, 11, 19) and 50 < dream[0] < 300
    assert last[0] < datetime(2021, 1, 1) and last[1] < 2000
