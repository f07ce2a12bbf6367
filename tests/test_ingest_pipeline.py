"""The ingest pipeline: provenance, idempotence, reconciliation, unknown files."""

from __future__ import annotations

from pathlib import Path

from darkmap.collect.ingest import ingest
from darkmap.store.workspace import Workspace

EVIDENCE_TABLES = ("markets", "accounts", "account_observations", "listings",
                   "listing_observations", "feedback", "pgp_keys", "identifiers",
                   "skipped_pages", "quarantine")


def _real_inputs(data_dir: Path) -> list[Path]:
    return [data_dir / "pages" / "hansa", data_dir / "operations",
            data_dir / "seized"]


def test_every_file_is_accounted_for_and_counts_reconcile(ws: Workspace,
                                                          data_dir: Path) -> None:
    summary = ingest(ws, _real_inputs(data_dir))
    files = [p for d in _real_inputs(data_dir) for p in d.rglob("*")
             if p.is_file() and not p.name.startswith(".")]
    assert len(summary.files) == len(files)
    t = summary.totals()
    assert t["read"] == t["stored"] + t["quarantined"] + t["skipped"]
    for f in summary.files:
        assert f.read == f.stored + f.quarantined + f.skipped, f.source
        assert f.read >= 1, f"{f.source}: nothing read and nothing explained"


def test_every_row_has_provenance_back_to_a_verified_capture(ws: Workspace,
                                                             data_dir: Path) -> None:
    ingest(ws, _real_inputs(data_dir))
    for table in EVIDENCE_TABLES:
        missing = ws.con.execute(
            f"SELECT count(*) FROM {table} t LEFT JOIN captures c "
            f"ON c.sha256 = t.capture_sha256 WHERE c.sha256 IS NULL "
            f"OR t.source IS NULL OR t.method IS NULL").fetchone()[0]
        assert missing == 0, table
    for (sha,) in ws.con.execute("SELECT sha256 FROM captures").fetchall():
        assert ws.captures.verify(sha)


def test_reingest_is_a_no_op(ws: Workspace, data_dir: Path) -> None:
    ingest(ws, _real_inputs(data_dir))
    before = ws.table_counts()
    again = ingest(ws, _real_inputs(data_dir))
    after = ws.table_counts()
    assert all(f.already for f in again.files)
    before.pop("ingest_runs"), after.pop("ingest_runs")
    assert before == after


def test_unrecognised_file_is_skipped_with_a_reason(ws: Workspace, tmp_path: Path) -> None:
    odd = tmp_path / "notes.bin"
    odd.write_bytes(b"\x00\x01\x02 not a market file \xff")
    summary = ingest(ws, [odd])
    assert summary.totals()["skipped"] == 1
    reason = ws.con.execute("SELECT reason FROM skipped_pages").fetchone()[0]
    assert "no importer" in reason
