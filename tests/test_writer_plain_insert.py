"""Plain INSERT where the writer proves it safe stores what INSERT OR IGNORE stores."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import DATA, table_snapshot

from darkmap.collect.ingest import ingest
from darkmap.store import writer as writer_mod
from darkmap.store.workspace import Workspace


def test_same_store_as_insert_or_ignore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inputs = [DATA / "pages", DATA / "listings"]
    plain: list[str] = []
    real = writer_mod.RecordWriter._no_conflict

    def spy(self, table, tbl):  # type: ignore[no-untyped-def]
        ok = real(self, table, tbl)
        if ok:
            plain.append(table)
        return ok

    monkeypatch.setattr(writer_mod.RecordWriter, "_no_conflict", spy)
    fast = Workspace.init(tmp_path / "fast")
    ingest(fast, inputs)
    assert {"captures", "processed", "listing_observations", "feedback",
            "identifiers"} <= set(plain)
    plain.clear()
    ingest(fast, inputs)  # a rerun writes nothing new, and nothing plainly
    assert plain == []
    slow = Workspace.init(tmp_path / "slow")
    # the slow run proves nothing: INSERT OR IGNORE for entity tables (no anti-join), and
    # for the keyless evidence tables a check of every id against the stored rows
    monkeypatch.setattr(writer_mod.RecordWriter, "_no_conflict", lambda self, t, tbl: False)
    monkeypatch.setattr(writer_mod.RecordWriter, "_stored_rows", lambda self, t: 1 << 62)
    ingest(slow, inputs)
    got, want = table_snapshot(fast), table_snapshot(slow)
    assert got == want
    assert len(want["listing_observations"]) > 10_000 and len(want["feedback"]) > 1000


def test_capture_known_under_another_importer_is_not_fresh(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    page = next(p for p in sorted((DATA / "pages" / "dream").rglob("*")) if p.is_file())
    ws = Workspace.init(tmp_path / "ws")
    first = ingest(ws, [page])
    assert first.files[0].importer == "pages"
    verbs = []
    real = writer_mod.RecordWriter._no_conflict

    def spy(self, table, tbl):  # type: ignore[no-untyped-def]
        ok = real(self, table, tbl)
        verbs.append((table, ok))
        return ok

    monkeypatch.setattr(writer_mod.RecordWriter, "_no_conflict", spy)
    # the same bytes again under another importer: its captures row is already stored
    second = ingest(ws, [page], importer_name="csv")
    assert second.files[0].importer == "csv" and second.files[0].quarantined == 1
    assert ("captures", False) in verbs and ("captures", True) not in verbs
    counts = ws.table_counts()
    assert counts["captures"] == 1 and counts["processed"] == 2
