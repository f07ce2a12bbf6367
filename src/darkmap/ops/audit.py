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
from pathlib import Path
from typing import Any

from darkmap.errors import BadInputError
from darkmap.store.audit import AuditRow, append_entry, appending, audit_head, audit_rows
from darkmap.store.operations import Con

__all__ = ["GENESIS", "AuditProblem", "canonical", "chain_hash", "export_trail", "log",
           "read_export", "show", "stamp", "verify", "verify_chain"]

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


def log(con: Con, actor: str, action: str, outcome: str = "ok",
        **what: Any) -> AuditRow:
    """Append one entry (the caller's transaction, if any, holds it with the change; on
    the server the append holds the operational lock, so concurrent users chain in one
    order)."""
    with appending(con):
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


def verify(con: Con) -> tuple[int, AuditProblem | None]:
    """Check the workspace's trail: (entries checked, first problem or ``None``)."""
    rows = audit_rows(con)
    return len(rows), verify_chain(rows, audit_head(con))


def show(con: Con, actor: str | None = None,
         record: str | None = None) -> list[dict[str, Any]]:
    """The entries (decoded) of one user and/or naming one record, with their hashes."""
    out = []
    for row in audit_rows(con, actor, record):
        entry: dict[str, Any] = json.loads(row.entry)
        entry["hash"] = row.hash
        out.append(entry)
    return out


def export_trail(con: Con, out: Path) -> int:
    """Write the whole trail for a court or an archive: one JSON object a line (seq,
    entry, prev_hash, hash), then the head; :func:`read_export` and
    :func:`verify_chain` check it anywhere, without darkmap's database. Entries written."""
    rows = audit_rows(con)
    head = audit_head(con)
    with out.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r._asdict(), ensure_ascii=False) + "\n")
        f.write(json.dumps({"head": None if head is None else
                            {"seq": head[0], "hash": head[1]}}) + "\n")
    return len(rows)


def read_export(path: Path) -> tuple[list[AuditRow], tuple[int, str] | None]:
    """The entries and head of an exported trail (a line that is not an entry is an
    error naming the line)."""
    rows: list[AuditRow] = []
    head: tuple[int, str] | None = None
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"{path}: cannot read the exported trail: {exc}") from exc
    for n, line in enumerate(lines, start=1):
        try:
            obj = json.loads(line)
            if "head" in obj:
                h = obj["head"]
                head = None if h is None else (int(h["seq"]), str(h["hash"]))
            else:
                rows.append(AuditRow(int(obj["seq"]), str(obj["entry"]),
                                     str(obj["prev_hash"]), str(obj["hash"])))
        except (ValueError, TypeError, KeyError) as exc:
            raise BadInputError(f"{path}: line {n}: not an audit entry ({exc})") from exc
    return rows, head
