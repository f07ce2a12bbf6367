"""Migration 007: evidence tables without primary keys keep every id unique and upgrade."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from conftest import DATA, table_snapshot

from darkmap.collect.ingest import ingest
from darkmap.model.records import IdentifierRecord, QuarantineRecord
from darkmap.store import workspace as workspace_mod
from darkmap.store import writer as writer_mod
from darkmap.store.workspace import Workspace
from darkmap.store.writer import _COLUMNS, KEYLESS, UNKEYED_ENTITIES, Provenance, RecordWriter


def _columns(ws: Workspace, table: str) -> list[tuple]:
    return ws.con.execute("SELECT column_name, data_type, is_nullable FROM "
                          "information_schema.columns WHERE table_name = ? "
                          "ORDER BY ordinal_position", [table]).fetchall()


def _keyed(ws: Workspace) -> set[str]:
    return {r[0] for r in ws.con.execute(
        "SELECT table_name FROM duckdb_constraints() WHERE constraint_type = 'PRIMARY KEY'"
    ).fetchall()}


def _assert_ids_unique(ws: Workspace) -> None:
    for table in KEYLESS | UNKEYED_ENTITIES:
        key = _COLUMNS[table][0]
        n, distinct = ws.con.execute(
            f"SELECT count(*), count(DISTINCT {key}) FROM {table}").fetchone()
        assert n == distinct, f"{table}: {n - distinct} repeated {key}"


def _writer_before_011(monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer as it was before migration 011: account_observations without its five
    new columns (nor 020's sales_floor), no feedback_counts rows (nor 021's page_rates)."""
    monkeypatch.setitem(writer_mod._COLUMNS, "account_observations",
                        writer_mod._COLUMNS["account_observations"][:17])
    put = writer_mod.RecordWriter._put
    monkeypatch.setattr(writer_mod.RecordWriter, "_put", lambda self, table, row: None
                        if table in ("feedback_counts", "page_rates")
                        else put(self, table, row))


def test_workspace_at_006_with_data_upgrades_to_007_with_the_same_rows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inputs = [DATA / "pages", DATA / "listings" / "hansa-2016-12.csv"]
    # the store and writer as they were at 007 (008 added quarantine.limit_name)
    shipped = [m for m in workspace_mod.migrations() if m[0] <= 7]
    assert shipped[-1][0] == 7
    monkeypatch.setitem(writer_mod._COLUMNS, "quarantine",
                        writer_mod._COLUMNS["quarantine"][:-1])
    _writer_before_011(monkeypatch)
    monkeypatch.setattr(workspace_mod, "migrations", lambda: [m for m in shipped if m[0] <= 6])
    old = Workspace.init(tmp_path / "old")
    at_007 = (KEYLESS - {"field_cuts", "feedback_counts", "page_rates"}) | UNKEYED_ENTITIES
    assert old.schema_version() == 6 and at_007 <= _keyed(old)
    ingest(old, inputs)
    before = table_snapshot(old)
    old.close()
    assert len(before["listing_observations"]) > 14_000 and len(before["feedback"]) > 1000

    monkeypatch.setattr(workspace_mod, "migrations", lambda: shipped)
    ws = Workspace.open(tmp_path / "old")
    assert ws.schema_version() == 7
    assert not (at_007 & _keyed(ws))
    assert {"markets", "pgp_keys", "captures", "processed"} <= _keyed(ws)
    assert table_snapshot(ws) == before
    ingest(ws, inputs)  # a rerun on the upgraded store adds nothing
    assert table_snapshot(ws) == before
    fresh = Workspace.init(tmp_path / "fresh")
    for table in at_007:  # same columns, types, NOT NULLs as born at 007
        assert _columns(ws, table) == _columns(fresh, table)
    ingest(fresh, inputs)
    assert table_snapshot(fresh) == before
    ws.close()
    fresh.close()


def test_migration_008_adds_limit_name_and_field_cuts_keeping_rows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = workspace_mod.migrations()
    assert [m[0] for m in shipped if m[0] >= 8][:1] == [8]
    monkeypatch.setitem(writer_mod._COLUMNS, "quarantine",
                        writer_mod._COLUMNS["quarantine"][:-1])
    _writer_before_011(monkeypatch)
    monkeypatch.setattr(workspace_mod, "migrations", lambda: [m for m in shipped if m[0] <= 7])
    old = Workspace.init(tmp_path / "old")
    ingest(old, [DATA / "listings" / "hansa-2016-12.csv"])
    rows = old.con.execute("SELECT * FROM quarantine ORDER BY quarantine_id").fetchall()
    old.close()
    assert rows
    monkeypatch.undo()
    ws = Workspace.open(tmp_path / "old")
    assert ws.schema_version() >= 8
    after = ws.con.execute("SELECT * FROM quarantine ORDER BY quarantine_id").fetchall()
    assert [r[:-1] for r in after] == rows and {r[-1] for r in after} == {None}
    assert ws.con.execute("SELECT count(*) FROM field_cuts").fetchone() == (0,)
    ws.close()


def test_writer_keeps_the_first_row_of_an_id_within_and_across_flushes(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    prov = Provenance("a" * 64, "case/file.html", "test@1", datetime(2020, 1, 1), "run")
    rec = IdentifierRecord(kind="email", value="x@example.org", market_id="m",
                           account_handle="h", field="profile", context="first",
                           locator="page")
    again = IdentifierRecord(kind="email", value="x@example.org", market_id="m",
                             account_handle="h", field="profile", context="second",
                             locator="page")
    w = RecordWriter(ws.con, autoflush=False)
    w.fresh.add(prov.capture_sha256)  # vouched fresh: the in-batch repeat is still dropped
    w.add(rec, prov)
    w.add(again, prov)
    w.flush()
    # a later part of the same capture (no longer fresh) repeating the id adds nothing
    w.add(again, prov)
    w.add(QuarantineRecord(locator="row 2", reason="bad"), prov)
    w.flush()
    # the same fact from another capture is another observation
    w.add(again, Provenance("b" * 64, "case/other.html", "test@1", None, "run"))
    w.flush()
    rows = ws.con.execute("SELECT capture_sha256, context FROM identifiers "
                          "ORDER BY capture_sha256").fetchall()
    assert rows == [("a" * 64, "first"), ("b" * 64, "second")]
    assert ws.table_counts()["quarantine"] == 1
    _assert_ids_unique(ws)
    ws.close()


def test_real_data_twice_and_under_another_importer_leaves_ids_unique(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    inputs = [DATA / "pages", DATA / "listings", DATA / "seized"]
    ingest(ws, inputs)
    first = table_snapshot(ws)
    ingest(ws, inputs)
    assert table_snapshot(ws) == first
    page = next(p for p in sorted((DATA / "pages" / "dream").rglob("*")) if p.is_file())
    res = ingest(ws, [page], importer_name="csv")  # same bytes, another importer
    assert res.files[0].quarantined == 1
    _assert_ids_unique(ws)
    ws.close()


def test_writer_without_replacement_scans_stores_the_same(tmp_path: Path) -> None:
    """The writer's fallback (a registered view) when DuckDB may not read its locals."""
    inputs = [DATA / "pages" / "dream", DATA / "listings" / "hansa-2016-12.csv"]
    a = Workspace.init(tmp_path / "a")
    ingest(a, inputs)
    b = Workspace.init(tmp_path / "b")
    b.con.execute("SET python_enable_replacements = false")
    ingest(b, inputs)
    assert table_snapshot(a) == table_snapshot(b)
    a.close()
    b.close()


def test_entities_keep_the_first_row_seen_of_each_key(tmp_path: Path) -> None:
    """Accounts and listings without a key: first seen wins, within and across flushes."""
    from darkmap.model.records import ListingRecord

    ws = Workspace.init(tmp_path / "ws")
    w = RecordWriter(ws.con, autoflush=False)

    def listing(title: str, handle: str) -> ListingRecord:
        return ListingRecord(market_id="m", listing_ref="L1", title=title,
                             vendor_handle=handle, locator="page")

    first = Provenance("a" * 64, "one.html", "test@1", datetime(2020, 1, 1), "run")
    w.add(listing("first", "Vendor"), first)
    w.add(listing("second", "VENDOR"), first)  # same account (case-folded), same listing
    w.flush()
    w.add(listing("third", "vendor"), Provenance("b" * 64, "two.html", "test@1",
                                                   datetime(2021, 1, 1), "run"))
    w.flush()
    assert ws.con.execute("SELECT handle, source FROM accounts").fetchall() == [
        ("Vendor", "one.html")]
    assert ws.con.execute("SELECT listing_id, source FROM listings").fetchall() == [
        ("m:L1", "one.html")]
    assert ws.table_counts()["listing_observations"] == 2  # one per capture
    _assert_ids_unique(ws)
    ws.close()
