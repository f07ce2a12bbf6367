"""The SQL of the operational audit trail: ``ops_audit``, ``ops_audit_head`` and
``ops_audit_archives``.

Only this module writes them, and only by appending: an entry is inserted with its
sequence number, the previous entry's hash and its own; the head row names the newest
entry. The one removal is retention (:func:`archive_prefix`): the oldest entries leave,
in one transaction with the row that records their archive file. Hashing and checking
are done by :mod:`darkmap.ops.audit`.

Both backends (a workspace's DuckDB, the team server): on the server an append happens
under the operational lock (:data:`darkmap.store.operations.OPS_LOCK`, :func:`appending`),
so concurrent users extend one chain, never two branches of it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import psycopg

from darkmap.store.operations import OPS_ROLE, SERVICE_ROLE, Con, PgOps, take_ops_lock
from darkmap.store.ops_guards import SAFE_PATH

__all__ = ["NOT_AN_OBJECT", "PG_AUDIT_SCHEMA", "ArchiveRow", "AuditRow", "ChainLink",
           "append_entry", "appending", "archive_prefix", "audit_archives", "audit_head",
           "audit_rows", "install_server_audit", "reads_whole_trail", "records_exist",
           "server_agencies", "server_links", "server_roles"]

PG_AUDIT_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS ops_audit (
    seq BIGINT PRIMARY KEY, entry TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ops_audit_head (
    id INTEGER PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ops_audit_archives (
    seq_from BIGINT PRIMARY KEY, seq_to BIGINT NOT NULL, hash_before TEXT NOT NULL,
    hash_last TEXT NOT NULL, entries BIGINT NOT NULL, oldest_at TEXT NOT NULL,
    newest_at TEXT NOT NULL, file_name TEXT NOT NULL, file_sha256 TEXT NOT NULL,
    archived_at TEXT NOT NULL, archived_by TEXT NOT NULL);
REVOKE ALL ON ops_audit, ops_audit_head, ops_audit_archives FROM PUBLIC;
GRANT SELECT, INSERT ON ops_audit, ops_audit_head TO {OPS_ROLE};
GRANT UPDATE (seq, hash) ON ops_audit_head TO {OPS_ROLE};
GRANT SELECT ON ops_audit_archives TO {OPS_ROLE};

-- who wrote an entry and what it did, beside its text, for row-level security
ALTER TABLE ops_audit ADD COLUMN IF NOT EXISTS actor TEXT;
ALTER TABLE ops_audit ADD COLUMN IF NOT EXISTS action TEXT;
-- the login role that appended the entry, as the server authenticated it (whatever the
-- entry's text claims; NULL for entries appended before this column)
ALTER TABLE ops_audit ADD COLUMN IF NOT EXISTS db_role TEXT;
CREATE OR REPLACE FUNCTION ops_audit_field(entry TEXT, field TEXT) RETURNS TEXT
LANGUAGE plpgsql IMMUTABLE {SAFE_PATH} AS $$
BEGIN
    RETURN entry::jsonb ->> field;
EXCEPTION WHEN others THEN
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION ops_audit_fill() RETURNS trigger
LANGUAGE plpgsql {SAFE_PATH} AS $$
BEGIN
    NEW.actor := ops_audit_field(NEW.entry, 'actor');
    NEW.action := ops_audit_field(NEW.entry, 'action');
    NEW.db_role := session_user::text;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS ops_audit_fill ON ops_audit;
CREATE TRIGGER ops_audit_fill BEFORE INSERT ON ops_audit
    FOR EACH ROW EXECUTE FUNCTION ops_audit_fill();
-- the record.add entries by the record they name: each record a member adds is looked
-- up here when its transaction commits (darkmap.store.ops_guards, ops_records_audited)
CREATE INDEX IF NOT EXISTS ops_audit_record_add ON ops_audit
    (ops_audit_field(entry, 'record')) WHERE action = 'record.add';
UPDATE ops_audit SET actor = ops_audit_field(entry, 'actor'),
                     action = ops_audit_field(entry, 'action')
    WHERE actor IS NULL AND action IS NULL;

-- whose an entry is: the agency of the login role that appended it (db_role), whatever
-- its text says, when that role is a member's: a refused `--as` typo by one agency's
-- officer (an actor that is no user) showed another agency its role and host:pid. An
-- entry the owner or the service role appended (or one from before db_role) is its
-- actor's agency's, or everyone's when the actor is no user (set-up, a name tried at
-- the workbench's sign-in) or it is an archive entry (the custody of the whole trail).
-- '*' is everyone's, NULL no agency's; a member is answered only '*', its own agency
-- or NULL (it reads no other agency's users)
CREATE OR REPLACE FUNCTION ops_audit_agency(who TEXT, what TEXT, writer TEXT) RETURNS TEXT
LANGUAGE sql STABLE SECURITY DEFINER {SAFE_PATH} AS $$
    WITH trusted AS (
        SELECT writer IS NULL OR EXISTS (
            SELECT 1 FROM pg_roles r WHERE r.rolname = writer
               AND (pg_has_role(r.oid, '{SERVICE_ROLE}', 'MEMBER')
                    OR NOT pg_has_role(r.oid, '{OPS_ROLE}', 'MEMBER'))) AS yes),
    whose AS (
        SELECT CASE
            WHEN NOT (SELECT yes FROM trusted)
                THEN (SELECT u.agency_id FROM ops_users u WHERE u.user_id = writer)
            WHEN what IS NOT DISTINCT FROM 'audit.archive' THEN '*'
            ELSE coalesce((SELECT u.agency_id FROM ops_users u WHERE u.user_id = who), '*')
            END AS agency)
    SELECT CASE
        WHEN pg_has_role(session_user, '{SERVICE_ROLE}', 'MEMBER')
             OR NOT pg_has_role(session_user, '{OPS_ROLE}', 'MEMBER') THEN w.agency
        WHEN w.agency = '*' OR w.agency = ops_my_agency() THEN w.agency END
    FROM whose w
$$;
CREATE OR REPLACE FUNCTION ops_audit_visible(who TEXT, what TEXT, writer TEXT)
RETURNS BOOLEAN LANGUAGE sql STABLE SECURITY DEFINER {SAFE_PATH} AS $$
    SELECT pg_has_role(session_user, '{SERVICE_ROLE}', 'MEMBER')
        OR coalesce(ops_audit_agency(who, what, writer) IN ('*', ops_my_agency()), false)
$$;
ALTER TABLE ops_audit ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS ops_read ON ops_audit;
CREATE POLICY ops_read ON ops_audit FOR SELECT
    USING (ops_audit_visible(actor, action, db_role));
DROP FUNCTION IF EXISTS ops_audit_visible(TEXT, TEXT);
REVOKE ALL ON FUNCTION ops_audit_agency(TEXT, TEXT, TEXT) FROM PUBLIC;
REVOKE ALL ON FUNCTION ops_audit_visible(TEXT, TEXT, TEXT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops_audit_agency(TEXT, TEXT, TEXT) TO {OPS_ROLE};
GRANT EXECUTE ON FUNCTION ops_audit_visible(TEXT, TEXT, TEXT) TO {OPS_ROLE};
DROP POLICY IF EXISTS ops_add ON ops_audit;
-- a suspended user's login role appends only refusals (operational schema 11)
CREATE POLICY ops_add ON ops_audit FOR INSERT WITH CHECK (
    NOT ops_suspended_me() OR (ops_audit_field(entry, 'action') = 'authenticate'
                               AND ops_audit_field(entry, 'outcome') = 'denied'));

-- an entry extends the chain or is refused, and the head names the newest entry: a
-- member once inserted a junk entry after the head, or moved the head, and broke the
-- chain for every agency for good (found by testing). Checked as the owner (row-level
-- security hides other agencies' entries from the member)
CREATE OR REPLACE FUNCTION ops_audit_extends() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER {SAFE_PATH} AS $$
DECLARE
    h RECORD;
    j JSONB;
BEGIN
    SELECT x.seq, x.hash INTO h FROM ops_audit_head x WHERE x.id = 1;
    IF NOT FOUND THEN
        IF NEW.seq <> 1 OR NEW.prev_hash <> repeat('0', 64) THEN
            RAISE EXCEPTION 'audit entry % is not the first of the trail', NEW.seq
                USING ERRCODE = 'check_violation';
        END IF;
    ELSIF NEW.seq <> h.seq + 1 OR NEW.prev_hash <> h.hash THEN
        RAISE EXCEPTION 'audit entry % does not follow the head (entry %)', NEW.seq, h.seq
            USING ERRCODE = 'check_violation';
    END IF;
    IF encode(sha256(convert_to(NEW.prev_hash || NEW.entry, 'UTF8')), 'hex') <> NEW.hash THEN
        RAISE EXCEPTION 'audit entry %: its hash is not that of its content', NEW.seq
            USING ERRCODE = 'check_violation';
    END IF;
    -- an entry `audit verify` would reject (no JSON object, or one that does not state its
    -- own number) is refused too: a member's well-chained junk entry broke the trail for
    -- every agency for good (review of the suspension, finding 2)
    BEGIN
        j := NEW.entry::jsonb;
    EXCEPTION WHEN others THEN
        j := NULL;
    END;
    IF j IS NULL OR jsonb_typeof(j) <> 'object'
       OR (j -> 'seq') IS DISTINCT FROM to_jsonb(NEW.seq) THEN
        RAISE EXCEPTION 'audit entry %: not a JSON object stating its own number', NEW.seq
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS ops_audit_extends ON ops_audit;
CREATE TRIGGER ops_audit_extends BEFORE INSERT ON ops_audit
    FOR EACH ROW EXECUTE FUNCTION ops_audit_extends();
-- the server moves the head to each entry appended (an entry appended in psql without
-- moving it once left the next append colliding with it, for every agency)
CREATE OR REPLACE FUNCTION ops_audit_move_head() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER {SAFE_PATH} AS $$
BEGIN
    INSERT INTO ops_audit_head VALUES (1, NEW.seq, NEW.hash)
        ON CONFLICT (id) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS ops_audit_move_head ON ops_audit;
CREATE TRIGGER ops_audit_move_head AFTER INSERT ON ops_audit
    FOR EACH ROW EXECUTE FUNCTION ops_audit_move_head();
CREATE OR REPLACE FUNCTION ops_audit_head_newest() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER {SAFE_PATH} AS $$
BEGIN
    IF NEW.id <> 1
       OR NOT EXISTS (SELECT 1 FROM ops_audit a WHERE a.seq = NEW.seq AND a.hash = NEW.hash)
       OR EXISTS (SELECT 1 FROM ops_audit a WHERE a.seq > NEW.seq) THEN
        RAISE EXCEPTION 'the audit head names only the newest entry (not entry %)', NEW.seq
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS ops_audit_head_newest ON ops_audit_head;
CREATE TRIGGER ops_audit_head_newest BEFORE INSERT OR UPDATE ON ops_audit_head
    FOR EACH ROW EXECUTE FUNCTION ops_audit_head_newest();

-- the chain's links for a member's `audit verify`: each entry's number, hashes, the
-- number its JSON states and whether its hash matches its content, checked here, never
-- its content (the hash is sha256 over the previous hash and the entry's UTF-8)
CREATE OR REPLACE FUNCTION ops_audit_links()
RETURNS TABLE (link_seq BIGINT, link_prev TEXT, link_hash TEXT, stated_seq TEXT,
               is_object BOOLEAN, hash_ok BOOLEAN)
LANGUAGE plpgsql STABLE SECURITY DEFINER {SAFE_PATH} AS $$
DECLARE
    r RECORD;
    j JSONB;
BEGIN
    FOR r IN SELECT a.seq, a.entry, a.prev_hash, a.hash FROM ops_audit a ORDER BY a.seq LOOP
        BEGIN
            j := r.entry::jsonb;
        EXCEPTION WHEN others THEN
            j := NULL;
        END;
        link_seq := r.seq;
        link_prev := r.prev_hash;
        link_hash := r.hash;
        is_object := COALESCE(jsonb_typeof(j) = 'object', false);
        stated_seq := CASE WHEN is_object THEN (j -> 'seq')::text END;
        hash_ok := encode(sha256(convert_to(r.prev_hash || r.entry, 'UTF8')), 'hex')
                   = r.hash;
        RETURN NEXT;
    END LOOP;
END $$;
-- which of the ids are stored records, readable or not, of those a record.add entry the
-- caller may read names: a member's `audit verify` tells a deleted record from one it
-- may no longer read (found by an audit: a deleted record went unnoticed), and learns
-- nothing of ids its agency's entries do not name
CREATE OR REPLACE FUNCTION ops_records_exist(ids TEXT[]) RETURNS SETOF TEXT
LANGUAGE sql STABLE SECURITY DEFINER {SAFE_PATH} AS $$
    SELECT r.record_id FROM ops_records r WHERE r.record_id = ANY(ids)
       AND EXISTS (SELECT 1 FROM ops_audit a WHERE a.action = 'record.add'
                   AND ops_audit_field(a.entry, 'record') = r.record_id
                   AND ops_audit_visible(a.actor, a.action, a.db_role))
$$;
REVOKE ALL ON FUNCTION ops_records_exist(TEXT[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops_records_exist(TEXT[]) TO {OPS_ROLE};
REVOKE ALL ON FUNCTION ops_audit_links() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops_audit_links() TO {OPS_ROLE};
"""
"""The trail on the team server: members of ``darkmap_ops`` append entries and move the
head; no one but the owner may change or delete an entry, or archive (retention).
Row-level security keeps another agency's entries from a member, even in ``psql`` (as
:func:`darkmap.ops.audit.entries_for` does in the library): an entry a member's login
role appended is its agency's, whatever its text says; the archive entries the owner
appended stay readable by all. A member checks the whole chain through ``ops_audit_links()``, which
runs as the owner and returns each entry's links and content checks, not its text."""


def install_server_audit(pg: psycopg.Connection[Any]) -> None:
    """Create (or complete) the trail's tables on the server (after the operational
    schema, which makes the role); the caller holds the transaction."""
    pg.execute(PG_AUDIT_SCHEMA)


class AuditRow(NamedTuple):
    """One stored entry: its number, canonical JSON text, previous hash and hash."""

    seq: int
    entry: str
    prev_hash: str
    hash: str


class ArchiveRow(NamedTuple):
    """Entries ``seq_from..seq_to`` moved to an archive file (retention)."""

    seq_from: int
    seq_to: int
    hash_before: str
    hash_last: str
    entries: int
    oldest_at: str
    newest_at: str
    file_name: str
    file_sha256: str
    archived_at: str
    archived_by: str


NOT_AN_OBJECT = object()
"""A :class:`ChainLink`'s ``stated_seq`` when the entry is not a JSON object."""


class ChainLink(NamedTuple):
    """What checking one entry's place in the chain needs: its number, previous hash and
    hash, the number its JSON states (:data:`NOT_AN_OBJECT` when it is no JSON object)
    and whether its hash matches its content."""

    seq: int
    prev_hash: str
    hash: str
    stated_seq: Any
    hash_ok: bool


def server_links(con: PgOps) -> list[ChainLink]:
    """The whole chain's links on the team server, every agency's entries included,
    checked there (``ops_audit_links()``, run as the owner) without their text."""
    rows = con.execute("SELECT link_seq, link_prev, link_hash, stated_seq, is_object, "
                       "hash_ok FROM ops_audit_links()").fetchall()
    return [ChainLink(int(s), str(p), str(h),
                      (json.loads(stated) if stated is not None else None) if is_object
                      else NOT_AN_OBJECT, bool(ok))
            for s, p, h, stated, is_object, ok in rows]


def server_roles(con: PgOps) -> dict[int, str | None]:
    """Entry number -> the login role the team server authenticated when the entry was
    appended (``None`` for entries from before it kept them), for the entries this
    connection may read."""
    return {int(seq): role for seq, role in
            con.execute("SELECT seq, db_role FROM ops_audit ORDER BY seq").fetchall()}


def server_agencies(con: PgOps) -> dict[int, str | None]:
    """Entry number -> whose entry it is (``ops_audit_agency``): the agency of the member
    login role that appended it, whatever its text says; for an entry the owner or
    service role appended, its actor's agency, ``"*"`` (everyone's) when the actor is no
    user or it is an archive entry; ``None`` for no agency's. A member is answered only
    ``"*"``, its own agency or ``None``. For the entries this connection may read."""
    return {int(seq): agency for seq, agency in con.execute(
        "SELECT seq, ops_audit_agency(actor, action, db_role) FROM ops_audit "
        "ORDER BY seq").fetchall()}


def reads_whole_trail(con: PgOps) -> bool:
    """Whether row-level security leaves this connection every entry (the owner, a role
    that bypasses it, the service role), decided by who connects: a member is refused a
    whole-trail export or archive whatever the trail holds (a count of the entries it
    could not read told it how busy the other agencies were)."""
    row = con.execute(f"SELECT NOT row_security_active('ops_audit') OR "
                      f"pg_has_role(session_user, '{SERVICE_ROLE}', 'MEMBER')").fetchone()
    return bool(row and row[0])


def audit_archives(con: Con) -> list[ArchiveRow]:
    """The archives made so far, oldest first."""
    rows = con.execute("SELECT seq_from, seq_to, hash_before, hash_last, entries, oldest_at, "
                       "newest_at, file_name, file_sha256, archived_at, archived_by "
                       "FROM ops_audit_archives ORDER BY seq_from").fetchall()
    return [ArchiveRow(int(r[0]), int(r[1]), str(r[2]), str(r[3]), int(r[4]), str(r[5]),
                       str(r[6]), str(r[7]), str(r[8]), str(r[9]), str(r[10])) for r in rows]


def archive_prefix(con: Con, row: ArchiveRow) -> int:
    """Record ``row`` and remove the live entries it archived (``seq <= row.seq_to``);
    the caller holds the transaction. On the server only the owner may (members of
    ``darkmap_ops`` have no DELETE): the refusal is raised as :class:`PermissionError`.
    Entries removed."""
    try:
        con.execute("INSERT INTO ops_audit_archives VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    list(row))
        before = con.execute("SELECT count(*) FROM ops_audit WHERE seq <= ?",
                             [row.seq_to]).fetchone()
        con.execute("DELETE FROM ops_audit WHERE seq <= ?", [row.seq_to])
    except psycopg.errors.InsufficientPrivilege as exc:
        raise PermissionError("archiving the audit trail on the team server needs the "
                              "server's owner role (members of darkmap_ops may only "
                              "append)") from exc
    return int(before[0]) if before else 0


def audit_head(con: Con) -> tuple[int, str] | None:
    """(seq, hash) of the newest entry, ``None`` while the trail is empty."""
    row = con.execute("SELECT seq, hash FROM ops_audit_head WHERE id = 1").fetchone()
    return (int(row[0]), str(row[1])) if row else None


def append_entry(con: Con, row: AuditRow) -> None:
    """Append one entry and move the head to it (the caller holds the transaction)."""
    con.execute("INSERT INTO ops_audit VALUES (?, ?, ?, ?)", list(row))
    con.execute("INSERT INTO ops_audit_head VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE "
                "SET seq = EXCLUDED.seq, hash = EXCLUDED.hash", [row.seq, row.hash])


@contextmanager
def appending(con: Con) -> Iterator[None]:
    """Hold what an append needs: on the server, the operational lock inside a
    transaction (the caller's, or one of its own around the block). Nothing in a
    workspace (one process writes it)."""
    if not isinstance(con, PgOps):
        yield
        return
    own = not con.in_transaction()
    if own:
        con.execute("BEGIN")
    try:
        take_ops_lock(con)
        yield
    except BaseException:
        if own:
            con.execute("ROLLBACK")
        raise
    if own:
        con.execute("COMMIT")


def records_exist(con: Con, record_ids: Sequence[str]) -> set[str]:
    """Which of ``record_ids`` are stored, readable or not (on the team server the server
    answers, only of the records a ``record.add`` entry the caller may read names)."""
    if isinstance(con, PgOps):
        return {str(r[0]) for r in con.execute("SELECT * FROM ops_records_exist(?)",
                                               [list(record_ids)]).fetchall()}
    return {str(r[0]) for r in con.execute(
        "SELECT record_id FROM ops_records WHERE record_id = ANY($ids)",
        {"ids": list(record_ids)}).fetchall()}


def audit_rows(con: Con, actor: str | None = None,
               record: str | None = None) -> list[AuditRow]:
    """The entries in order; only those of ``actor`` and/or naming ``record`` if given."""
    sql = "SELECT seq, entry, prev_hash, hash FROM ops_audit WHERE 1 = 1"
    params: list[str] = []
    server = isinstance(con, PgOps)
    if actor is not None:
        sql += (" AND entry::jsonb ->> 'actor' = ?" if server
                else " AND json_extract_string(entry, '$.actor') = ?")
        params.append(actor)
    if record is not None:
        sql += (" AND (entry::jsonb ->> 'record' = ?"
                " OR jsonb_exists(coalesce(entry::jsonb -> 'records', '[]'), ?))" if server
                else " AND (json_extract_string(entry, '$.record') = ?"
                " OR list_contains(CAST(json_extract(entry, '$.records') AS VARCHAR[]), ?))")
        params += [record, record]
    rows = con.execute(sql + " ORDER BY seq", params).fetchall()
    return [AuditRow(int(s), str(e), str(p), str(h)) for s, e, p, h in rows]
