"""The audit trail of the operational layer: append-only and hash-chained.

Every read and write of operational records and every change of users and grants is
appended as one entry: who (``actor``), what (``action``, ``record`` or ``records``),
when (UTC to 1/100 s), from where (host and process) and the outcome (``ok``,
``denied``, ``not_found``). Entry *n* is stored as its canonical JSON (keys sorted, no
spaces, UTF-8) with ``hash_n = sha256(hash_{n-1} + canonical_json_n)``; the head row
names the newest entry, so a deleted tail is seen too. :func:`verify_chain` walks the
entries and names the first that does not hold.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb

from darkmap.store.audit import AuditRow, append_entry, audit_head, audit_rows

__all__ = ["GENESIS", "AuditProblem", "canonical", "chain_hash", "log", "show", "stamp",
           "verify", "verify_chain"]

GENESIS = "0" * 64
"""The ``prev_hash`` of the first entry."""


def stamp(at: datetime | None = None) -> str:
    """UTC time to 1/100 s: ``2026-12-03T23:20:25.41Z``."""
    at = at or datetime.now(UTC)
    if at.tzinfo is not None:
        at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 10000:02d}Z"


def canonical(entry: Mapping[str, Any]) -> str:
    """The canonical JSON of an entry: sorted keys, no spaces, non-ASCII kept."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)


def chain_hash(prev_hash: str, entry_json: str) -> str:
    """The hash of an entry: sha256 over the previous hash and its canonical JSON."""
    return hashlib.sha256((prev_hash + entry_json).encode("utf-8")).hexdigest()


def _where() -> str:
    """Where the action came from: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def log(con: duckdb.DuckDBPyConnection, actor: str, action: str, outcome: str = "ok",
        **what: Any) -> AuditRow:
    """Append one entry (the caller's transaction, if any, holds it with the change)."""
    head = audit_head(con)
    seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS)
    entry = {"seq": seq, "at": stamp(), "actor": actor, "action": action,
             "outcome": outcome, "from": _where(), **what}
    text = canonical(entry)
    row = AuditRow(seq, text, prev, chain_hash(prev, text))
    append_entry(con, row)
    return row


@dataclass(frozen=True)
class AuditProblem:
    """The first entry that does not hold, and why."""

    seq: int
    reason: str

    def __str__(self) -> str:
        return f"audit entry {self.seq}: {self.reason}"


def verify_chain(rows: Sequence[AuditRow],
                 head: tuple[int, str] | None) -> AuditProblem | None:
    """Check a trail: numbers 1..n in order, each entry's ``seq`` inside its JSON, each
    ``prev_hash`` the hash before, each hash recomputed, and the head naming the last.
    ``None`` when it holds, else the first bad entry (by position, 1-based)."""
    prev = GENESIS
    for position, row in enumerate(rows, start=1):
        if row.seq != position:
            return AuditProblem(position, f"numbered {row.seq} (missing, inserted or moved)")
        try:
            inner = json.loads(row.entry).get("seq")
        except (ValueError, AttributeError):
            return AuditProblem(position, "not a JSON object")
        if inner != row.seq:
            return AuditProblem(position, f"its content says entry {inner}")
        if row.prev_hash != prev:
            return AuditProblem(position, "does not follow the entry before (previous hash)")
        if chain_hash(prev, row.entry) != row.hash:
            return AuditProblem(position, "content changed (hash does not match)")
        prev = row.hash
    n = len(rows)
    if head is None:
        return AuditProblem(1, "trail has entries but no head") if n else None
    if head[0] != n:
        return AuditProblem(min(head[0], n) + 1,
                            f"head names entry {head[0]} but the trail has {n}")
    if head[1] != prev:
        return AuditProblem(n, "head hash does not match the last entry")
    return None


def verify(con: duckdb.DuckDBPyConnection) -> tuple[int, AuditProblem | None]:
    """Check the workspace's trail: (entries checked, first problem or ``None``)."""
    rows = audit_rows(con)
    return len(rows), verify_chain(rows, audit_head(con))


def show(con: duckdb.DuckDBPyConnection, actor: str | None = None,
         record: str | None = None) -> list[dict[str, Any]]:
    """The entries (decoded) of one user and/or naming one record, with their hashes."""
    out = []
    for row in audit_rows(con, actor, record):
        entry: dict[str, Any] = json.loads(row.entry)
        entry["hash"] = row.hash
        out.append(entry)
    return out
