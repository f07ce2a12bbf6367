"""The store never holds a number that is not finite (exports audit, finding 8).

A Hansa row priced "USD 1" and 400 zeros was stored with price ``inf`` and came out of
the GEXF/GraphML and FtM exports as ``inf``. Whatever reads it, a number too large for
a float is now quarantined with its record and field named: a CSV mapping's price (the
real Hansa file's format), a page template's price (a real saved Dream listing page);
an optional field of a mapping (the real Dream seller dump's rating) is left out, as
every optional value a mapping cannot read. Below every importer the ingest pipeline
quarantines any record still holding one.
"""

from __future__ import annotations

import csv
import json
import re
from datetime import datetime
from pathlib import Path

import pytest

import darkmap
from darkmap.collect.ingest import _finite_only
from darkmap.export import ExportOptions, run_export
from darkmap.model.records import AccountRecord, ListingBatch, ListingRecord, non_finite
from darkmap.plugins import exporters
from darkmap.store.workspace import Workspace
from darkmap.store.writer import Provenance, RecordWriter

HUGE = "1" + "0" * 400
"""400 digits: ``float()`` of it is ``inf``."""


def _ingest(tmp_path: Path, name: str, data: bytes) -> Workspace:
    src = tmp_path / "in"
    src.mkdir()
    (src / name).write_bytes(data)
    ws = darkmap.init_workspace(tmp_path / "ws")
    darkmap.ingest(ws, [src])
    return ws


def _non_finite_rows(ws: Workspace) -> int:
    row = ws.con.execute(
        "SELECT (SELECT count(*) FROM listing_observations WHERE NOT isfinite(price))"
        " + (SELECT count(*) FROM account_observations WHERE NOT isfinite(rating)"
        "    OR NOT isfinite(rating_scale) OR NOT isfinite(rating_norm))"
        " + (SELECT count(*) FROM feedback WHERE NOT isfinite(rating) OR NOT isfinite(amount))"
    ).fetchone()
    assert row is not None
    return int(row[0])


def _quarantined(ws: Workspace) -> list[tuple[str, str, str]]:
    return [(str(a), str(b), str(c)) for a, b, c in ws.con.execute(
        "SELECT locator, field, reason FROM quarantine ORDER BY locator").fetchall()]


def test_a_csv_price_too_large_is_quarantined(tmp_path: Path, data_dir: Path) -> None:
    real = (data_dir / "listings" / "hansa-2016-12.csv").read_bytes().splitlines(True)[:3]
    hostile = (b'"2016-12-11 20:13:54.654635085 -0500 EST", "900010", "fentanyl 100ug", '
               b'"hugeprice", "USD ' + HUGE.encode() + b'.00", "Drugs", "China"\n')
    with _ingest(tmp_path, "hansa-2016-12.csv", b"".join([*real, hostile])) as ws:
        assert _non_finite_rows(ws) == 0
        rows = ws.con.execute("SELECT count(*) FROM listing_observations").fetchone()
        assert rows == (3,)  # the real rows are stored
        [(locator, fld, reason)] = _quarantined(ws)
        assert (locator, fld) == ("row 4", "price")
        assert "not a finite number" in reason


def test_a_page_price_too_large_is_quarantined(tmp_path: Path, data_dir: Path) -> None:
    page = (data_dir / "pages" / "dream" / "listings" / "listing_0.html").read_bytes()
    assert page.count(b"<span>$50.96</span>") == 1
    page = page.replace(b"<span>$50.96</span>", b"<span>$" + HUGE.encode() + b".00</span>")
    with _ingest(tmp_path, "listing_0.html", page) as ws:
        assert _non_finite_rows(ws) == 0
        assert ws.con.execute("SELECT count(*) FROM listing_observations").fetchone() == (0,)
        [(locator, fld, reason)] = _quarantined(ws)
        assert (locator, fld) == ("page", "listings.price")
        assert "not a finite number" in reason
        # the vendor the page shows is kept
        assert ws.con.execute("SELECT count(*) FROM accounts").fetchone() == (1,)


def test_a_dump_rating_too_large_is_left_out(tmp_path: Path, data_dir: Path) -> None:
    """The Dream dump's rating is an optional field: one that cannot be read (too large,
    as one that is no number) is left out and the vendor kept, as the mapping does with
    every optional value it cannot read (an integer out of range too)."""
    dump = (data_dir / "seized" / "dream-2016-sellers.sql").read_bytes()
    head = dump[:dump.index(b"INSERT INTO `dnm_dream` VALUES")]
    rows = [f"(1,'hugerating','01/02/2016','12','-','-','-','a vendor','{HUGE}','-','Dream')",
            "(2,'plainvendor','01/02/2016','12','-','-','-','a vendor','4.5','-','Dream')"]
    sql = head + b"INSERT INTO `dnm_dream` VALUES " + ",".join(rows).encode() + b";\n"
    with _ingest(tmp_path, "dream-2016-sellers.sql", sql) as ws:
        assert _non_finite_rows(ws) == 0
        ratings = ws.con.execute(
            "SELECT a.handle, o.rating FROM account_observations o JOIN accounts a"
            " USING (account_id) ORDER BY a.handle").fetchall()
        assert ratings == [("hugerating", None), ("plainvendor", 4.5)]


def test_non_finite_names_each_field() -> None:
    inf, nan = float("inf"), float("nan")
    assert non_finite(ListingRecord("m", "r", "v", "t", price=inf)) == ["listings.price"]
    assert non_finite(ListingRecord("m", "r", "v", "t", price=1e300)) == []
    assert non_finite(AccountRecord("m", "h", rating=nan, rating_scale=-inf)) == [
        "accounts.rating", "accounts.rating_scale"]
    batch = ListingBatch("m", ["row 1", "row 2"], {"price": [1.0, -inf]})
    assert non_finite(batch) == ["listings.price"]
    assert non_finite(ListingBatch("m", ["row 1"], {"price": [2.0]})) == []


@pytest.mark.parametrize("price", [float("inf"), float("nan")])
def test_a_record_from_any_importer_is_quarantined(tmp_path: Path, price: float) -> None:
    """The pipeline's own check, below every importer: a listing batch holding a
    non-finite price is stored row by row, that row quarantined."""
    batch = ListingBatch("m", ["row 1", "row 2"],
                         {"listing_ref": ["a", "b"], "vendor_handle": ["v", "w"],
                          "title": ["x", "y"], "price": [1.5, price]})
    out = list(_finite_only([batch]))
    assert [type(r).__name__ for r in out] == ["ListingRecord", "QuarantineRecord"]
    assert out[1].field == "listings.price" and out[1].locator == "row 2"  # type: ignore[union-attr]


def _stored_non_finite(path: Path) -> None:
    """A workspace holding what an older ingest stored: a listing priced ``inf`` and an
    account rated ``nan`` (written straight to the store, as the ingest now refuses)."""
    t0 = datetime(2020, 1, 2, 3, 4, 5)
    with darkmap.init_workspace(path) as ws:
        raw = b"overflow fixture"
        sha = ws.captures.put_bytes(raw)
        ws.con.execute("INSERT INTO captures VALUES (?, ?, ?, 'text/plain', ?)",
                       [sha, len(raw), "overflow.txt", t0])
        w = RecordWriter(ws.con)
        prov = Provenance(sha, "overflow.txt", "test@1", t0)
        w.add(AccountRecord(market_id="hansa", handle="hugeprice", rating=float("nan"),
                            rating_scale=5.0, observed_at=t0, locator="profile"), prov)
        w.add(ListingRecord(market_id="hansa", listing_ref="900010", vendor_handle="hugeprice",
                            title="fentanyl 100ug", price=float("inf"), currency="USD",
                            observed_at=t0, locator="row 1"), prov)
        w.flush()
        darkmap.link(ws)
        darkmap.assess_listings(ws)


_NUMBER_WORD = re.compile(r"(?i)(?<![a-z])(?:-?inf(?:inity)?|nan)(?![a-z])")


@pytest.mark.parametrize("fmt", ["gexf", "graphml", "ftm", "stix", "misp", "csv"])
def test_the_exports_leave_a_stored_non_finite_number_out(fmt: str, tmp_path: Path) -> None:
    _stored_non_finite(tmp_path / "ws")
    out = tmp_path / ("out" if fmt == "csv" else f"out.{fmt}")
    with Workspace.open(tmp_path / "ws", read_only=True) as ws:
        run_export(exporters()[fmt], ws, out, ExportOptions(all_tables=fmt == "csv"))
    files = sorted(out.glob("*.csv")) if fmt == "csv" else [out]
    values: list[str] = []
    for f in files:
        text = f.read_text(encoding="utf-8")
        assert "hugeprice" in text or f.name != "accounts.csv"
        if fmt == "csv":
            values += [c for row in csv.reader(text.splitlines()) for c in row]
        elif fmt in ("ftm", "stix", "misp"):
            docs = [json.loads(line) for line in text.splitlines()] if fmt == "ftm" \
                else [json.loads(text)]
            values += _strings(docs)
        else:
            values += re.findall(r'(?:value|<data key="[^"]+")[=>]"?([^"<]*)', text)
    assert values
    bad = [v for v in values if _NUMBER_WORD.fullmatch(v.strip())]
    assert not bad, bad
    if fmt == "ftm":
        assert '"amount"' not in "".join(f.read_text() for f in files)


def _strings(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [str(node)] if isinstance(node, float) else []
