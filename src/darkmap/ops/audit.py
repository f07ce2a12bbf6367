"""The audit trail of the operational layer: append-only and hash-chained.

Every read and write of operational records and every change of users and grants is
appended as one entry: who (``actor``), what (``action``, ``record`` or ``records``),
when (UTC to 1/100 s), from where (host and process) and the outcome (``ok``,
``denied``, ``not_found``). Entry *n* is stored as its canonical JSON (keys sorted, no
spaces, UTF-8) with ``hash_n = sha256(hash_{n-1} + canonical_json_n)``; the head row
names the newest entry, so a deleted tail is seen too. :func:`verify_chain` walks the
entries and names the first that does not hold.

Retention (:func:`archive_trail`): entries older than the retention period (at least a
year, as the CJIS Security Policy asks of audit records) move to an archive file of JSON
lines with their hashes; the live trail then starts after them, at a cut recorded in
``ops_audit_archives`` and attested by the ``audit.archive`` entry that follows it.
:func:`verify` checks the live trail from the cut, :func:`verify_archives` the files:
together they are the whole chain from the first entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from darkmap.errors import BadInputError
from darkmap.model.outputs import partial_file, place_new, sync_file
from darkmap.ops.vocabulary import RETENTION_DAYS
from darkmap.store.audit import (
    NOT_AN_OBJECT,
    ArchiveRow,
    AuditRow,
    ChainLink,
    append_entry,
    appending,
    archive_prefix,
    audit_archives,
    audit_head,
    audit_rows,
    reads_whole_trail,
    records_exist,
    server_agencies,
    server_links,
    server_roles,
)
from darkmap.store.operations import (
    Con,
    PgOps,
    UserRow,
    agencies,
    any_user,
    my_agency,
    record_contents,
    transaction,
    users,
)

__all__ = ["GENESIS", "RETENTION_DAYS", "ArchiveRow", "AuditProblem", "archive_trail", "canonical",
           "RecordCheck", "chain_hash", "entries_for", "export_trail", "log", "read_archive",
           "read_export", "record_digest", "verify_records",
           "private_file", "show", "stamp", "storable", "strangers_apart", "verify",
           "verify_archives", "verify_chain", "verify_links", "whole_trail_refusal"]


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


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
"""What an entry cannot hold: NUL (PostgreSQL's jsonb refuses it, so the team server took
an entry holding one for a tampered one, for good: found by testing) and lone surrogates
(no UTF-8 holds them: a command-line argument that is not UTF-8 arrives as one)."""


def _escape_unstorable(m: re.Match[str]) -> str:
    code = ord(m.group())
    if 0xDC80 <= code <= 0xDCFF:      # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def storable(value: Any) -> Any:
    """``value`` with every text in it written so that an entry can hold it: NUL and lone
    surrogates as visible escapes (``\\x00``, ``\\xff``, ``\\ud800``)."""
    if isinstance(value, str):
        return _UNSTORABLE.sub(_escape_unstorable, value)
    if isinstance(value, Mapping):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [storable(v) for v in value]
    return value


def chain_hash(prev_hash: str, entry_json: str) -> str:
    """The hash of an entry: sha256 over the previous hash and its canonical JSON."""
    return hashlib.sha256((prev_hash + entry_json).encode("utf-8")).hexdigest()


def private_file(path: Path) -> TextIO:
    """A new text file at ``path`` that only its owner may read (mode 0600: the trail,
    a package, hold other agencies' and the operation's facts; written with the
    default mode they were readable by every local user: found by testing); raises
    :class:`FileExistsError` when there is one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(fd, "w", encoding="utf-8")


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
        entry = storable({"seq": seq, "at": stamp(), "actor": actor, "action": action,
                          "outcome": outcome, "from": _where(), **what})
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


def verify_chain(rows: Sequence[AuditRow], head: tuple[int, str] | None,
                 start: tuple[int, str] = (0, GENESIS)) -> AuditProblem | None:
    """Check a trail: numbers in order from ``start[0] + 1``, each entry's ``seq`` inside
    its JSON, each ``prev_hash`` the hash before (``start[1]`` for the first: the genesis
    hash, or the last archived entry's), each hash recomputed, and the head naming the
    last. ``None`` when it holds, else the first bad entry (by the number it should have).
    """
    return verify_links([_link(r) for r in rows], head, start)


def _link(row: AuditRow) -> ChainLink:
    """An entry's place in the chain, its content checked here."""
    try:
        stated = json.loads(row.entry)
    except (ValueError, RecursionError):   # nested past the recursion limit: found by testing
        stated = None
    inner = stated.get("seq") if isinstance(stated, dict) else NOT_AN_OBJECT
    return ChainLink(row.seq, row.prev_hash, row.hash, inner,
                     chain_hash(row.prev_hash, row.entry) == row.hash)


def verify_links(links: Sequence[ChainLink], head: tuple[int, str] | None,
                 start: tuple[int, str] = (0, GENESIS)) -> AuditProblem | None:
    """:func:`verify_chain` over the entries' links, their content checked where they
    were read (here, or by the team server for a member who may not read them all)."""
    first, prev = start
    for position, link in enumerate(links, start=first + 1):
        if link.seq != position:
            return AuditProblem(position, f"numbered {link.seq} (missing, inserted or moved)")
        if link.stated_seq is NOT_AN_OBJECT:
            return AuditProblem(position, "not a JSON object")
        if link.stated_seq != link.seq:
            return AuditProblem(position, f"its content says entry {link.stated_seq}")
        if link.prev_hash != prev:
            return AuditProblem(position, "does not follow the entry before (previous hash)")
        if not link.hash_ok:
            return AuditProblem(position, "content changed (hash does not match)")
        prev = link.hash
    last = first + len(links)
    if head is None:
        return AuditProblem(first + 1, "trail has entries but no head") if last else None
    if head[0] != last:
        return AuditProblem(min(head[0], last) + 1,
                            f"head names entry {head[0]} but the trail has {last}")
    if head[1] != prev:
        return AuditProblem(last, "head hash does not match the last entry")
    return None


def _cut(archives: Sequence[ArchiveRow]) -> tuple[tuple[int, str], AuditProblem | None]:
    """Where the live trail starts after ``archives`` (seq, hash), and the first archive
    row that does not follow the one before."""
    start = (0, GENESIS)
    for a in archives:
        if a.seq_from != start[0] + 1 or a.hash_before != start[1] or a.seq_to < a.seq_from \
                or a.entries != a.seq_to - a.seq_from + 1:
            return start, AuditProblem(a.seq_from, f"archive {a.file_name} (entries "
                                       f"{a.seq_from}-{a.seq_to}) does not follow the "
                                       "one before")
        start = (a.seq_to, a.hash_last)
    return start, None


def _attests(row: AuditRow, archive: ArchiveRow) -> bool:
    """Whether ``row`` is the ``audit.archive`` entry written with ``archive``."""
    try:
        e = json.loads(row.entry)
    except ValueError:
        return False
    return bool(e.get("action") == "audit.archive" and e.get("seq_from") == archive.seq_from
            and e.get("seq_to") == archive.seq_to and e.get("hash_last") == archive.hash_last
            and e.get("sha256") == archive.file_sha256)


def verify(con: Con) -> tuple[int, AuditProblem | None]:
    """Check the live trail (after any archived entries): (entries checked, first
    problem or ``None``). After an archive, an ``audit.archive`` entry naming the cut
    (range, last hash, file sha256) must follow it in the live trail, so a cut forged in
    the database (rows deleted, an archive row added to cover them) shows."""
    archives = audit_archives(con)
    start, problem = _cut(archives)
    rows = audit_rows(con)  # on the server, the entries this member may read
    # on the server the whole chain is checked there: a member does not read every entry
    links = server_links(con) if isinstance(con, PgOps) else [_link(r) for r in rows]
    if problem is not None:
        return len(links), problem
    head = audit_head(con)
    problem = verify_links(links, head, start)
    if problem is None and head is None and not archives and _set_up(con):
        problem = AuditProblem(1, "the trail is empty (no entry, no head), yet agencies or "
                                  "users are recorded, each of which an entry records: "
                                  "entries were deleted")
    if problem is None and archives and not _attested(archives[-1], rows):
        problem = AuditProblem(start[0] + 1, "the cut of the last archive is not attested "
                                             "by an audit.archive entry after it")
    return len(links), problem


def _plain(value: Any) -> Any:
    """``value`` in the one form both stores give it back in: every number a float (a
    count read back as 2000 from one store and 2000.0 from the other), times and dates
    in ISO form, tuples as lists."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


def record_digest(content: Mapping[str, Any]) -> str:
    """The sha256 of what a record says (:func:`darkmap.store.operations.record_contents`:
    its row, links, seizure items, lab result and withdrawal), as canonical JSON: what its
    ``record.add`` and ``record.withdraw`` entries carry, so that ``audit verify`` sees an
    amount, author or lab result changed in the database (found by an audit: only the
    chain was checked)."""
    return hashlib.sha256(canonical(storable(_plain(content))).encode("utf-8")).hexdigest()


_CHANGES = ("record.add", "record.withdraw")
"""The entries that change what a record says; each carries the record's digest after it
(entries written before 2026-12-07 carry none)."""


@dataclass(frozen=True)
class RecordCheck:
    """The records checked against the digests their ``record.add`` entries carry."""

    checked: int
    """Records whose content matches their entry's digest."""
    changed: tuple[str, ...] = ()
    """Records (or their links, items, lab result, withdrawal) changed since the newest
    entry that changed them (``record.add``, ``record.withdraw``)."""
    planted: tuple[str, ...] = ()
    """Records no ``record.add`` entry names."""
    deleted: tuple[str, ...] = ()
    """Records a ``record.add`` entry names that are gone."""
    predating: int = 0
    """Records whose newest changing entry was written before entries carried a digest
    (2026-12-07)."""
    archived: int = 0
    """Records whose entry was archived (retention): checked with the archive files."""
    own_agency_only: bool = False
    """A member of the team server checked its own agency's records only (the others'
    entries are hidden from it: the owner role checks them all)."""

    @property
    def broken(self) -> bool:
        """Whether any record does not match the trail."""
        return bool(self.changed or self.planted or self.deleted)

    def __str__(self) -> str:
        parts = [f"{what} {', '.join(ids[:20])}{' …' if len(ids) > 20 else ''}"
                 for what, ids in (("changed since their record.add entry:", self.changed),
                                   ("planted (no record.add entry):", self.planted),
                                   ("deleted (an entry, no record):", self.deleted)) if ids]
        return "records do not match the trail: " + "; ".join(parts)

    def summary(self) -> str:
        """One line for an intact check: how many records matched, and what was not
        checked."""
        out = f"{self.checked} records match their digests"
        if self.predating:
            out += (f"; {self.predating} records predate the digest (added before "
                    "2026-12-07: their content is not covered)")
        if self.archived:
            out += f"; {self.archived} records' entries are archived"
        if self.own_agency_only:
            out += "; your agency's records only (the owner role checks every agency's)"
        return out


def verify_records(con: Con) -> RecordCheck:
    """Check every record against its ``record.add`` entry, both ways: each record's
    content has the digest its newest changing entry (``record.add``, ``record.withdraw``)
    carries (``changed`` if not), each record has an
    entry (``planted`` if not), each entry's record is stored (``deleted`` if not).
    Entries written before digests count as ``predating``, records whose entry was
    archived as ``archived``. In a workspace and for the server's owner or service role,
    every record; for a member of the team server, its own agency's (it reads no other
    agency's entries)."""
    member = whole_trail_refusal(con) is not None
    mine = my_agency(con) if member and isinstance(con, PgOps) else None
    digests: dict[str, str | None] = {}   # the newest entry that changed each record
    for r in audit_rows(con):
        if '"record.add"' not in r.entry and '"record.withdraw"' not in r.entry:
            continue
        e = json.loads(r.entry)
        if e.get("action") in _CHANGES and e.get("outcome") == "ok" and e.get("record"):
            digests[str(e["record"])] = e.get("digest")
    contents = record_contents(con)
    rows = {rid for rid, c in contents.items() if c["row"] is not None}
    stored = {rid for rid in rows if not member or contents[rid]["row"]["agency_id"] == mine}
    archives = audit_archives(con)
    cut = archives[-1].newest_at if archives else None
    changed, planted, predating, archived, checked = [], [], 0, 0, 0
    for rid in sorted(stored):
        if rid not in digests:
            at = stamp(contents[rid]["row"]["created_at"])
            if cut is not None and at <= cut:
                archived += 1
            else:
                planted.append(rid)
        elif digests[rid] is None:
            predating += 1
        elif digests[rid] != record_digest(contents[rid]):
            changed.append(rid)
        else:
            checked += 1
    # links, items or a lab result of no stored record, which no entry names: planted
    planted += sorted(rid for rid in set(contents) - rows if rid not in digests)
    # an entry's record absent here may be one a member no longer reads: the server says
    missing = sorted(set(digests) - rows)
    gone = set(missing) - records_exist(con, missing) if missing else set()
    return RecordCheck(checked, tuple(changed), tuple(planted), tuple(sorted(gone)),
                       predating, archived, member)


def _set_up(con: Con) -> bool:
    """Whether the operational tables hold anything: an agency or a user (nothing else
    is made before them; agencies are every member's directory, and whether a user
    exists the server answers). Deleting the whole trail, entries and head, verified as
    an intact trail of 0 entries while the records stayed (found by an audit)."""
    return bool(agencies(con)) or any_user(con)


def _attested(archive: ArchiveRow, later: Sequence[AuditRow]) -> bool:
    """Whether an entry of ``later`` is the ``audit.archive`` entry of ``archive`` (it
    was appended at the head when the archive was made, so it lies after the cut)."""
    return any(_attests(r, archive) for r in later
               if r.seq > archive.seq_to and '"audit.archive"' in r.entry)


def archive_trail(con: Con, out: Path, before: datetime, actor: str, *,
                  min_days: int = RETENTION_DAYS, now: datetime | None = None) -> ArchiveRow:
    """Move the live entries stamped before ``before`` to the archive file ``out``.

    Refused (:class:`BadInputError`) when ``before`` is less than ``min_days`` (at least
    :data:`RETENTION_DAYS`) ago, when the live trail does not verify, when ``out``
    exists, or when no entry is that old. The file is written and synced first under a
    partial name (``.NAME.partial-PID``: the entries with their hashes, then an
    ``archive`` line); then, in one transaction, the archive row is recorded, the
    entries removed and an ``audit.archive`` entry appended naming the range, the last
    hash and the file's sha256; only then is the file given its name. A failure before
    the commit removes the partial file; a kill leaves it, and no trail records it. The
    caller checks that ``actor`` may (an admin).
    """
    now = now or datetime.now(UTC)
    min_days = max(int(min_days), RETENTION_DAYS)
    if before.tzinfo is None:
        before = before.replace(tzinfo=UTC)
    newest_allowed = now - timedelta(days=min_days)
    if before > newest_allowed:
        raise BadInputError(
            f"--before {before:%Y-%m-%d}: audit entries are kept at least {min_days} days "
            f"(CJIS Security Policy: one year); the latest cut allowed now is "
            f"{newest_allowed:%Y-%m-%d}")
    if out.exists():
        raise BadInputError(f"{out}: exists; an archive is never overwritten")
    refusal = whole_trail_refusal(con)
    if refusal is not None:
        raise PermissionError(f"{refusal}: archiving the audit trail on the team server "
                              "needs the server's owner role")
    n, problem = verify(con)
    if problem is not None:
        raise BadInputError(f"the audit trail does not verify ({problem}); nothing archived")
    cut = stamp(before)
    rows = audit_rows(con)
    take: list[AuditRow] = []
    for r in rows:
        if str(json.loads(r.entry).get("at", "")) >= cut:
            break
        take.append(r)
    if not take:
        raise BadInputError(f"no live audit entry is older than {cut} (of {n})")
    first, last = json.loads(take[0].entry), json.loads(take[-1].entry)
    info = {"seq_from": take[0].seq, "seq_to": take[-1].seq, "hash_before": take[0].prev_hash,
            "hash_last": take[-1].hash, "entries": len(take), "oldest_at": first["at"],
            "newest_at": last["at"]}
    # written and synced under a partial name, recorded, then given its name: a kill
    # before the commit leaves only the partial file, which no trail claims
    part = partial_file(out, 0o600)
    try:
        sha = _write_archive(part, take, info)
        arc = ArchiveRow(take[0].seq, take[-1].seq, take[0].prev_hash, take[-1].hash,
                         len(take), str(first["at"]), str(last["at"]), out.name, sha,
                         stamp(now), actor)
        _record_archive(con, arc, take[0].seq)
    except BaseException:
        part.unlink(missing_ok=True)  # nothing was archived: no file claims otherwise
        raise
    _name_archive(part, out)
    return arc


def _record_archive(con: Con, arc: ArchiveRow, first_seq: int) -> None:
    """In one transaction: the archive row, the archived entries removed, and the
    ``audit.archive`` entry naming the cut and the file's sha256."""
    with transaction(con):
        head = audit_head(con)
        live = audit_rows(con)
        if not live or live[0].seq != first_seq or head is None:
            raise BadInputError("the audit trail changed while archiving; run it again")
        archive_prefix(con, arc)
        log(con, arc.archived_by, "audit.archive", seq_from=arc.seq_from, seq_to=arc.seq_to,
            hash_last=arc.hash_last, entries=arc.entries, file=arc.file_name,
            sha256=arc.file_sha256)


def _name_archive(part: Path, out: Path) -> None:
    """Give the recorded archive file its name (a hard link: an existing file is never
    replaced), then drop the partial name."""
    try:
        place_new(part, out)
    except OSError as exc:
        raise BadInputError(f"the archive is recorded and its file written to {part}, but "
                            f"it could not be named {out} ({exc}); rename it yourself: "
                            "`darkmap audit verify --archive` checks it") from exc


def _write_archive(out: Path, rows: Sequence[AuditRow], info: Mapping[str, Any]) -> str:
    """Write and sync the archive file (an empty one made for it); its sha256."""
    digest = hashlib.sha256()
    with open(out, "w", encoding="utf-8") as f:
        for r in rows:
            line = json.dumps(r._asdict(), ensure_ascii=False) + "\n"
            f.write(line)
            digest.update(line.encode("utf-8"))
        line = json.dumps({"archive": dict(info)}) + "\n"
        f.write(line)
        digest.update(line.encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())
    return digest.hexdigest()


def read_archive(path: Path) -> tuple[list[AuditRow], dict[str, Any], str]:
    """The entries, the ``archive`` line and the sha256 of an archive file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read the archive: {exc}") from exc
    rows: list[AuditRow] = []
    info: dict[str, Any] | None = None
    for n, line in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        try:
            obj = json.loads(line)
            if "archive" in obj:
                info = dict(obj["archive"])
            else:
                rows.append(AuditRow(int(obj["seq"]), str(obj["entry"]),
                                     str(obj["prev_hash"]), str(obj["hash"])))
        except (ValueError, TypeError, KeyError, RecursionError, OverflowError) as exc:
            raise BadInputError(f"{path}: line {n}: not an archived entry ({exc})") from exc
    if info is None:
        raise BadInputError(f"{path}: no archive line (not a darkmap audit archive)")
    return rows, info, hashlib.sha256(data).hexdigest()


def verify_archives(paths: Sequence[Path], con: Con | None = None
                    ) -> tuple[int, AuditProblem | None]:
    """Check archive files: each chain intact from the hash it follows, the files
    contiguous from the first entry, each attested by the ``audit.archive`` entry that
    follows it (in the next file, or the live trail), and, with ``con``, each the file
    its archive row names (sha256, range, last hash). Entries checked."""
    loaded = sorted((read_archive(p) + (p,) for p in paths),
                    key=lambda t: t[0][0].seq if t[0] else 0)
    start: tuple[int, str] = (0, GENESIS)
    checked = 0
    known = {a.seq_from: a for a in audit_archives(con)} if con is not None else {}
    live = audit_rows(con) if con is not None else []
    for i, (rows, info, sha, path) in enumerate(loaded):
        if not rows:
            return checked, AuditProblem(start[0] + 1, f"{path.name}: no entries")
        if rows[0].seq != start[0] + 1:
            return checked, AuditProblem(start[0] + 1, f"{path.name} starts at entry "
                                         f"{rows[0].seq}: the archive file before it is "
                                         "missing (the files must follow one another)")
        last = (rows[-1].seq, rows[-1].hash)
        problem = verify_chain(rows, last, start)
        if problem is None and (info.get("seq_to"), info.get("hash_last")) != last:
            problem = AuditProblem(rows[-1].seq, f"{path.name}: its archive line does not "
                                                 "name its last entry")
        if problem is not None:
            return checked, AuditProblem(problem.seq, f"{path.name}: {problem.reason}")
        row = known.get(rows[0].seq)
        if con is not None and (row is None or row.file_sha256 != sha
                                or (row.seq_to, row.hash_last) != last):
            if verify(con)[1] is None:
                raise BadInputError(_unrecorded(path, sha, rows, known))
            return checked, AuditProblem(rows[0].seq, f"{path.name}: not the archive the "
                                                      "trail records (sha256 or range)")
        # the attesting entry was appended at the head when the file was made: in a later
        # file, or still live (a later archive may have cut before it)
        later = [r for nxt in loaded[i + 1:] for r in nxt[0]] + live
        attested = ArchiveRow(rows[0].seq, last[0], start[1], last[1], len(rows), "", "",
                              path.name, sha, "", "")
        if later and not _attested(attested, later):
            return checked, AuditProblem(last[0] + 1, f"{path.name}: not attested by an "
                                                      "audit.archive entry after it")
        checked += len(rows)
        start = last
    if con is not None:
        live_start, problem = _cut(audit_archives(con))
        if problem is None and live_start != start:
            problem = AuditProblem(start[0] + 1, f"the files end at entry {start[0]} but the "
                                                 f"trail's archives at {live_start[0]}")
        if problem is not None:
            return checked, problem
    return checked, None


def _unrecorded(path: Path, sha: str, rows: Sequence[AuditRow],
                known: Mapping[int, ArchiveRow]) -> str:
    """Why a file whose own chain holds is not checked against an intact trail: the trail
    records no archive of it (an archive run killed between writing the file and
    recording it once left such a file under its final name, and the verdict "audit
    trail broken" read as tampering)."""
    recorded = ", ".join(f"{a.file_name} (entries {a.seq_from}-{a.seq_to}, sha256 "
                         f"{a.file_sha256[:16]}...)" for a in known.values()) or "none"
    return (f"{path.name} is not an archive this trail records (sha256 {sha[:16]}..., "
            f"entries {rows[0].seq}-{rows[-1].seq}): perhaps left by an archive run that "
            f"did not finish; the trail itself is intact (archives it records: {recorded})")


def show(con: Con, actor: str | None = None,
         record: str | None = None) -> list[dict[str, Any]]:
    """The entries (decoded) of one user and/or naming one record, with their hashes; on
    the team server also ``connected_as``, the login role the server authenticated when
    the entry was appended (an entry's ``actor`` is what darkmap wrote: the user it
    acted for, or the name a refused caller claimed)."""
    return [entry for _, entry in _numbered(con, actor, record)]


def _numbered(con: Con, actor: str | None,
              record: str | None) -> list[tuple[int, dict[str, Any]]]:
    """:func:`show`'s entries with the number each is stored under (an entry's text may
    state another, or none)."""
    roles = server_roles(con) if isinstance(con, PgOps) else {}
    out = []
    for row in audit_rows(con, storable(actor), storable(record)):
        entry: dict[str, Any] = json.loads(row.entry)
        entry["hash"] = row.hash
        if row.seq in roles:
            entry["connected_as"] = roles[row.seq]
        out.append((row.seq, entry))
    return out


def entries_for(con: Con, viewer: UserRow, actor: str | None = None,
                record: str | None = None) -> list[dict[str, Any]]:
    """What a reviewer (``viewer``) reads of the trail: the entries of :func:`show` except
    other agencies', which name their records, compartments, kinds, times, login roles
    and hosts (what their grants keep from the viewer). ``audit show`` and the
    workbench's audit page read through this; checking the chain reads it whole.

    On the team server an entry is the agency's whose member login role appended it,
    whatever its text claims (a refused ``--as`` typo by another agency's officer, an
    actor that is no user, showed every agency that officer's role and host:pid); one
    the owner or the service role appended is its actor's agency's, or everyone's when
    the actor is no user (set-up, a name tried at the workbench's sign-in) or it is an
    archive entry (:func:`darkmap.store.audit.server_agencies`, the rule of the server's
    row-level security). In a workspace, which one process writes, by its actor."""
    if isinstance(con, PgOps):
        whose = server_agencies(con)
        return [e for seq, e in _numbered(con, actor, record)
                if whose.get(seq) in ("*", viewer.agency_id)]
    others = {u.user_id for u in users(con) if u.agency_id != viewer.agency_id}
    return [e for e in show(con, actor, record) if e.get("actor") not in others]


def strangers_apart(con: Con, entries: list[dict[str, Any]]
                    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``entries`` as (the rest, refused sign-ins under names that are no user). Anyone
    may try a name at the workbench's sign-in, and each refusal is audited under the
    name tried: kept apart, a flood of them (found by testing: 76 a second, under names
    such as "CALL +1-555-0100") neither pushes the users' own entries off a page nor
    reads as one of them."""
    known = {u.user_id for u in users(con)}
    rest: list[dict[str, Any]] = []
    strangers: list[dict[str, Any]] = []
    for e in entries:
        stranger = (e.get("actor") not in known and e.get("outcome") == "denied"
                    and e.get("action") in ("web.logon", "web.lockout"))
        (strangers if stranger else rest).append(e)
    return rest, strangers


def whole_trail_refusal(con: Con) -> str | None:
    """Why this connection may not read the whole trail (on the team server, row-level
    security keeps other agencies' entries from a member), ``None`` when it may (a
    workspace; the server's owner or service role). Decided by who connects, never by
    what the trail holds: the refusal once counted the entries hidden from the member,
    a running count of the other agencies' activity."""
    if not isinstance(con, PgOps) or reads_whole_trail(con):
        return None
    return ("other agencies' entries, if any, are hidden from you on the team server (a "
            "member's login role reads its own agency's)")


def export_trail(con: Con, out: Path) -> int:
    """Write the whole trail for a court or an archive: one JSON object a line (seq,
    entry, prev_hash, hash; from the team server also ``connected_as``, the login role
    the server authenticated for the entry, outside the hashed text), then the head;
    :func:`read_export` and :func:`verify_chain` check it anywhere, without darkmap's
    database. Entries written."""
    refusal = whole_trail_refusal(con)
    if refusal is not None:
        raise BadInputError(f"{refusal}: an export for a court is the whole trail, made by "
                            "the server's owner role (`darkmap audit show --json` gives "
                            "your agency's entries)")
    rows = audit_rows(con)
    head = audit_head(con)
    roles = server_roles(con) if isinstance(con, PgOps) else {}
    if os.path.lexists(out):
        raise BadInputError(f"{out}: exists; an export is never overwritten")
    # written and synced under a partial name, then linked to its name (never over a
    # file): a killed export left a cut trail under the name asked for, which the next
    # export then refused as existing (found by a kill-resilience test)
    part = partial_file(out, 0o600)
    try:
        with open(part, "w", encoding="utf-8") as f:
            for r in rows:
                line = r._asdict()
                if r.seq in roles:  # beside the chained text: the server's word, not hashed
                    line["connected_as"] = roles[r.seq]
                f.write(json.dumps(line, ensure_ascii=False) + "\n")
            f.write(json.dumps({"head": None if head is None else
                                {"seq": head[0], "hash": head[1]}}) + "\n")
        sync_file(part)
        place_new(part, out)
    except FileExistsError:
        raise BadInputError(f"{out}: exists; an export is never overwritten") from None
    finally:
        part.unlink(missing_ok=True)
    return len(rows)


def read_export(path: Path) -> tuple[list[AuditRow], tuple[int, str] | None]:
    """The entries and head of an exported trail (a line that is not an entry is an
    error naming the line)."""
    rows: list[AuditRow] = []
    head: tuple[int, str] | None = None
    headed = False
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"{path}: cannot read the exported trail: {exc}") from exc
    for n, line in enumerate(lines, start=1):
        try:
            obj = json.loads(line)
            if "head" in obj:
                headed = True
                h = obj["head"]
                head = None if h is None else (int(h["seq"]), str(h["hash"]))
            else:
                rows.append(AuditRow(int(obj["seq"]), str(obj["entry"]),
                                     str(obj["prev_hash"]), str(obj["hash"])))
        except (ValueError, TypeError, KeyError, RecursionError, OverflowError) as exc:
            raise BadInputError(f"{path}: line {n}: not an audit entry ({exc})") from exc
    if not headed:  # an export ends with its head, even of an empty trail (found by testing:
        # an empty file verified as an intact trail of 0 entries)
        raise BadInputError(f"{path}: no head line: the export is cut short, or is no "
                            "export (`darkmap audit export` writes the head last)")
    return rows, head
