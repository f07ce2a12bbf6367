"""The SQL of the operational audit trail: ``ops_audit`` and ``ops_audit_head``.

Only this module writes them, and only by appending: an entry is inserted with its
sequence number, the previous entry's hash and its own; the head row names the newest
entry. Hashing and checking are done by :mod:`darkmap.ops.audit`.
"""

from __future__ import annotations

from typing import NamedTuple

import duckdb

__all__ = ["AuditRow", "append_entry", "audit_head", "audit_rows"]


class AuditRow(NamedTuple):
    """One stored entry: its number, canonical JSON text, previous hash and hash."""

    seq: int
    entry: str
    prev_hash: str
    hash: str


def audit_head(con: duckdb.DuckDBPyConnection) -> tuple[int, str] | None:
    """(seq, hash) of the newest entry, ``None`` while the trail is empty."""
    row = con.execute("SELECT seq, hash FROM ops_audit_head WHERE id = 1").fetchone()
    return (int(row[0]), str(row[1])) if row else None


def append_entry(con: duckdb.DuckDBPyConnection, row: AuditRow) -> None:
    """Append one entry and move the head to it (the caller holds the transaction)."""
    con.execute("INSERT INTO ops_audit VALUES (?, ?, ?, ?)", list(row))
    con.execute("INSERT OR REPLACE INTO ops_audit_head VALUES (1, ?, ?)", [row.seq, row.hash])


def audit_rows(con: duckdb.DuckDBPyConnection, actor: str | None = None,
               record: str | None = None) -> list[AuditRow]:
    """The entries in order; only those of ``actor`` and/or naming ``record`` if given."""
    sql = "SELECT seq, entry, prev_hash, hash FROM ops_audit WHERE 1 = 1"
    params: list[str] = []
    if actor is not None:
        sql += " AND json_extract_string(entry, '$.actor') = ?"
        params.append(actor)
    if record is not None:
        sql += (" AND (json_extract_string(entry, '$.record') = ?"
                " OR list_contains(CAST(json_extract(entry, '$.records') AS VARCHAR[]), ?))")
        params += [record, record]
    rows = con.execute(sql + " ORDER BY seq", params).fetchall()
    return [AuditRow(int(s), str(e), str(p), str(h)) for s, e, p, h in rows]
