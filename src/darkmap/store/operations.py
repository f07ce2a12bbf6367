"""The SQL of the operational tables (issue #13): agencies, users, compartments, grants,
records and what hangs off them, deconfliction selectors, events and notices, and the
reported figures of past operations.

Two backends, one set of functions: the embedded workspace (a DuckDB connection) and the
task force's PostgreSQL server (:class:`PgOps`, a psycopg connection in the subset of
DuckDB's interface used here: ``?`` and ``$name`` parameters are rewritten for psycopg,
and the few statements whose dialects differ are written twice). :data:`PG_SCHEMA` is
the server's schema (installed by :func:`darkmap.store.team.init_server`). On the server
every write transaction takes one advisory lock first (:func:`transaction`), so the audit
chain and deconfliction see the writes of concurrent users in one order and nothing is
lost. Reference data (listings, personas, jurisdictions) stays in the analyst's DuckDB
workspace: :func:`reference` gives the connection that holds it.

Only this module writes the ``ops_`` tables (the audit trail aside: :mod:`.audit`).
Every read of operational records takes the acting user's id and agency and filters by
the grants in SQL (:data:`READABLE`): no function here returns a record without them.
Access decisions and their audit live in :mod:`darkmap.ops`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import psycopg
import pyarrow as pa

from darkmap.errors import WorkspaceStateError
from darkmap.store.workspace import Workspace, table_exists

__all__ = [
    "AgencyRow", "CompartmentRow", "Con", "EventRow", "GrantRow", "NoticeRow", "OPS_LOCK",
    "OPS_LOCK_WAIT_S", "OPS_ROLE", "OPS_SCHEMA_VERSION", "OpsServer", "PG_SCHEMA", "PgOps",
    "RecordRow", "SERVICE_ROLE", "SuspensionRow", "delete_suspension", "insert_suspension",
    "suspension", "suspensions", "end_connections", "SelectorMatch", "Space", "UserRow",
    "access_level",
    "ack_notice", "acts_for", "agencies", "agency", "agency_has_users", "agency_users",
    "any_user", "compartment", "compartment_taken", "country_personas", "delete_grant",
    "demo_target", "event_clashes", "events_in_window", "fentanyl_evidence",
    "granted_compartments", "grants_of", "grants_on", "insert_agency", "insert_compartment",
    "insert_event", "insert_notice", "insert_notices", "insert_record", "insert_selectors",
    "insert_user", "install_server_schema", "is_server", "lab_results", "links_of",
    "live_selector", "agency_like", "user_like", "my_agency", "record_contents", "BARE_MATCH",
    "UNPLACED", "SELECTOR_FORMS", "selector_subject", "WITHIN_AGENCY", "WITHIN_TAIL",
    "compartment_creator",
    "listing_vendor", "notices_for", "persona_addresses", "persona_listings", "persona_successors",
    "put_grant",
    "ACTIVE", "WithdrawalRow", "insert_withdrawal", "withdrawals_of",
    "readable_operations", "readable_records", "reference", "reference_holds",
    "replace_reported", "reported",
    "reported_operations", "seizure_items", "selector_matches", "server_key", "session_role",
    "take_ops_lock", "transaction", "user", "user_exists", "users"
]

def readable(column: str = "compartment_id") -> str:
    """The grant filter: the compartment in ``column`` is readable by the user ``$user``
    of agency ``$agency`` (any grant, read or write)."""
    return (f"{column} IN (SELECT compartment_id FROM ops_grants WHERE "
            "(grantee_kind = 'user' AND grantee = $user) OR "
            "(grantee_kind = 'agency' AND grantee = $agency) OR grantee_kind = 'taskforce')")


READABLE = readable()
"""A record's compartment is readable by the user ``$user`` of agency ``$agency``."""

ACTIVE = "record_id NOT IN (SELECT record_id FROM ops_withdrawals)"
"""A record not withdrawn (:func:`insert_withdrawal`): what the totals, packages, marks
and exports count."""

OPS_SCHEMA_VERSION = 11
"""The operational schema on the team server (table ``ops_schema``); 2 adds the audit
trail's archives (retention), 3 lets the workbench's service role add judgements for the
user signed in, 4 row-level security on the audit trail, 5 on every write and on
compartments, grants, selectors and events (:mod:`darkmap.store.ops_guards`), 6 closes
what a test of the server as a member found (2026-12-07: functions that a temporary
table could mislead, an audit entry or head that did not extend the chain, a notice
planted acknowledged, an event asked again with other radii, the reported figures
without row-level security), 7 lets a record's links, seizure items and lab result in
only with the record (its own transaction, its author, still a writer of its
compartment; items on a seizure, a lab result on a buy) and a member's record only with
its audit entry, 8 adds withdrawals (``ops_withdrawals``: a record corrected or withdrawn
by its author or an admin of its agency who may still write its compartment, with its
``record.withdraw`` audit entry; never updated or deleted), 9 keeps every record's
registration of a selector (one row per selector, compartment, agency and record, or
direct submission: ``ops_selectors_once`` in the place of the key on selector and
compartment, which kept the first record's only) and matches only the rows of records
not withdrawn; a member registers selectors for a record only with the record (its
author, in its transaction, in its compartment), and records each row's form (``exact``
or ``bare``: a bare handle, whose match a notice calls the weaker one), 10 flags
overlaps within one agency: a notice may be addressed to one compartment
(``ops_notices.to_compartment``, read and acknowledged only by those who may read that
compartment), and the server's comparisons tell two compartments of one agency of a
shared selector or clashing event when the user who stored it may not read the other
compartment, 11 suspends users (``ops_suspended``, written only by the service role):
a suspended user's own login role reads and writes nothing but their own user row and
suspension, and appends audit entries (a refused attempt stays on record). `darkmap team
init` upgrades a server in place."""
OPS_LOCK = 0x6F707331
"""The advisory lock every write transaction on the server takes first (``ops1``)."""
OPS_ROLE = "darkmap_ops"
"""Grant to the login role of every operational user on the server."""
SERVICE_ROLE = "darkmap_ops_service"
"""Grant to a front end that authenticates users itself: it may act for any user."""
_TABLE_NAMES = ("ops_agencies", "ops_users", "ops_compartments", "ops_grants", "ops_records",
                "ops_links", "ops_seizure_items", "ops_lab_results", "ops_selectors",
                "ops_events", "ops_notices", "ops_reported", "ops_withdrawals", "ops_server_key",
                "ops_schema")

SELECTOR_FORMS = ("exact", "bare")
"""The form a selector row was registered in: ``exact`` as written (normalised), ``bare``
the bare handle of a ``market:handle`` (:func:`darkmap.ops.deconflict.forms`), which
matches the same name on any market."""
_FORM_CHECK = "form IN ('exact', 'bare') AND (form = 'exact' OR kind = 'handle')"
UNPLACED = "place not compared: coordinates against a postal area; call to check"
"""What an event conflict says when the two places could not be compared (one event given
by coordinates only, the other by postal area only). The library and the server write
the same subjects."""

WITHIN_AGENCY = "another compartment of your agency"
"""Who holds the other side of a notice between two compartments of one agency (its
``other_agency`` is the agency's own): never the compartment itself."""
WITHIN_TAIL = f" ({WITHIN_AGENCY})"
"""What a notice's subject ends with when the match is in another compartment of the
agency (the planner's event notice, and both sides' selector notices)."""

BARE_MATCH = " (bare handle: the same name on any market)"
"""What a selector notice's subject adds when either side's row of the match was a bare
handle: the weaker match (the same name on two markets may be two vendors). The library
and the server write the same subject (:func:`selector_subject`)."""


def selector_subject(kind: str, selector_hmac: str, exact: bool) -> str:
    """A selector notice's subject: the kind and the hash's first 12 hex digits, and
    :data:`BARE_MATCH` unless the match was exact on both sides.

    >>> selector_subject("handle", "ab" * 32, exact=False)
    'handle abababababab (bare handle: the same name on any market)'
    """
    return f"{kind} {selector_hmac[:12]}" + ("" if exact else BARE_MATCH)


PG_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS ops_agencies (
    agency_id TEXT PRIMARY KEY, name TEXT NOT NULL, country TEXT NOT NULL,
    contact TEXT NOT NULL, created_by TEXT NOT NULL, created_at TIMESTAMP NOT NULL);
CREATE TABLE IF NOT EXISTS ops_users (
    user_id TEXT PRIMARY KEY, agency_id TEXT NOT NULL, role TEXT NOT NULL,
    created_by TEXT NOT NULL, created_at TIMESTAMP NOT NULL);
CREATE TABLE IF NOT EXISTS ops_compartments (
    compartment_id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL,
    owner_agency TEXT NOT NULL, created_by TEXT NOT NULL, created_at TIMESTAMP NOT NULL);
CREATE TABLE IF NOT EXISTS ops_grants (
    compartment_id TEXT NOT NULL, grantee_kind TEXT NOT NULL, grantee TEXT NOT NULL,
    access TEXT NOT NULL, granted_by TEXT NOT NULL, granted_at TIMESTAMP NOT NULL,
    PRIMARY KEY (compartment_id, grantee_kind, grantee));
CREATE TABLE IF NOT EXISTS ops_records (
    record_id TEXT PRIMARY KEY, kind TEXT NOT NULL, compartment_id TEXT NOT NULL,
    agency_id TEXT NOT NULL, author TEXT NOT NULL, created_at TIMESTAMP NOT NULL,
    case_id TEXT, operation TEXT, occurred_on DATE, country TEXT, provenance TEXT NOT NULL,
    data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS ops_records_compartment ON ops_records (compartment_id);
CREATE TABLE IF NOT EXISTS ops_links (
    record_id TEXT NOT NULL, ref_kind TEXT NOT NULL, ref_id TEXT NOT NULL,
    PRIMARY KEY (record_id, ref_kind, ref_id));
CREATE TABLE IF NOT EXISTS ops_seizure_items (
    record_id TEXT NOT NULL, item TEXT NOT NULL, substance TEXT, grams DOUBLE PRECISION,
    count BIGINT, currency TEXT, amount DOUBLE PRECISION, usd DOUBLE PRECISION,
    address TEXT);
CREATE INDEX IF NOT EXISTS ops_seizure_items_record ON ops_seizure_items (record_id);
CREATE TABLE IF NOT EXISTS ops_lab_results (
    record_id TEXT PRIMARY KEY, substance TEXT NOT NULL, purity_pct DOUBLE PRECISION,
    net_weight_g DOUBLE PRECISION, pill_count BIGINT, imprint TEXT, fentanyl BOOLEAN NOT NULL);
CREATE TABLE IF NOT EXISTS ops_selectors (
    selector_hmac TEXT NOT NULL, kind TEXT NOT NULL, compartment_id TEXT NOT NULL,
    agency_id TEXT NOT NULL, record_id TEXT, submitted_by TEXT NOT NULL,
    submitted_at TIMESTAMP NOT NULL, form TEXT NOT NULL DEFAULT 'exact',
    CONSTRAINT ops_selectors_form CHECK ({_FORM_CHECK}));
-- schema 9: the form each row was registered in, 'exact' (as written) or 'bare' (the bare
-- handle of a `market:handle`); rows stored before do not say, and a handle among them is
-- taken as bare, the weaker match (a notice never claims more than is known)
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM information_schema.columns WHERE table_schema =
                   current_schema() AND table_name = 'ops_selectors' AND column_name = 'form')
    THEN
        ALTER TABLE ops_selectors ADD COLUMN form TEXT NOT NULL DEFAULT 'exact';
        UPDATE ops_selectors SET form = 'bare' WHERE kind = 'handle';
        ALTER TABLE ops_selectors ADD CONSTRAINT ops_selectors_form CHECK ({_FORM_CHECK});
    END IF;
END $$;
-- schema 9: one row per selector, compartment, agency and record (or direct submission,
-- without a record), not one per selector and compartment (the first record's only, so
-- a withdrawn record's stood for the compartment's other records too); existing rows kept
ALTER TABLE ops_selectors DROP CONSTRAINT IF EXISTS ops_selectors_pkey;
CREATE UNIQUE INDEX IF NOT EXISTS ops_selectors_once ON ops_selectors
    (selector_hmac, kind, compartment_id, agency_id, (coalesce(record_id, '')));
CREATE TABLE IF NOT EXISTS ops_events (
    event_id TEXT PRIMARY KEY, kind TEXT NOT NULL, compartment_id TEXT NOT NULL,
    agency_id TEXT NOT NULL, lat DOUBLE PRECISION, lon DOUBLE PRECISION, postal_area TEXT,
    starts_at TIMESTAMP NOT NULL, ends_at TIMESTAMP NOT NULL, created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL);
CREATE TABLE IF NOT EXISTS ops_notices (
    notice_id TEXT PRIMARY KEY, kind TEXT NOT NULL, to_agency TEXT NOT NULL,
    other_agency TEXT NOT NULL, other_contact TEXT NOT NULL, subject TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL, acked_by TEXT, acked_at TIMESTAMP,
    to_compartment TEXT);
-- schema 10: a notice between two compartments of one agency is addressed to one of
-- them (NULL: to the whole agency, as every notice between agencies)
ALTER TABLE ops_notices ADD COLUMN IF NOT EXISTS to_compartment TEXT;
CREATE TABLE IF NOT EXISTS ops_reported (
    operation TEXT NOT NULL, metric TEXT NOT NULL, low DOUBLE PRECISION,
    high DOUBLE PRECISION, text TEXT NOT NULL, source TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ops_withdrawals (
    record_id TEXT PRIMARY KEY, withdrawn_by TEXT NOT NULL, withdrawn_at TIMESTAMP NOT NULL,
    why TEXT NOT NULL, replaced_by TEXT);
CREATE TABLE IF NOT EXISTS ops_server_key (
    id INTEGER PRIMARY KEY CHECK (id = 1), key BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS ops_schema (version INTEGER NOT NULL);
-- schema 11: suspended users; only the front end (the service role) suspends and
-- reinstates, after the library's checks (an admin of the user's agency)
CREATE TABLE IF NOT EXISTS ops_suspended (
    user_id TEXT PRIMARY KEY, suspended_by TEXT NOT NULL, suspended_at TIMESTAMP NOT NULL);

DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{OPS_ROLE}') THEN
        BEGIN CREATE ROLE {OPS_ROLE} NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{SERVICE_ROLE}') THEN
        BEGIN CREATE ROLE {SERVICE_ROLE} NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END;
    END IF;
    IF NOT pg_has_role('{SERVICE_ROLE}', '{OPS_ROLE}', 'MEMBER') THEN
        GRANT {OPS_ROLE} TO {SERVICE_ROLE};
    END IF;
END $$;
REVOKE ALL ON {", ".join(_TABLE_NAMES)} FROM PUBLIC;
GRANT SELECT, INSERT ON {", ".join(_TABLE_NAMES[:-2])} TO {OPS_ROLE};
GRANT SELECT ON ops_server_key, ops_schema TO {OPS_ROLE};
GRANT UPDATE (access, granted_by, granted_at), DELETE ON ops_grants TO {OPS_ROLE};
GRANT UPDATE (acked_by, acked_at) ON ops_notices TO {OPS_ROLE};
GRANT DELETE ON ops_reported TO {OPS_ROLE};
REVOKE ALL ON ops_suspended FROM PUBLIC;
GRANT SELECT ON ops_suspended TO {OPS_ROLE};
GRANT INSERT, DELETE ON ops_suspended TO {SERVICE_ROLE};

DELETE FROM ops_schema;
INSERT INTO ops_schema VALUES ({OPS_SCHEMA_VERSION});
"""
"""The operational tables on the team server: the workspace's (migration 009) in
PostgreSQL types, plus the task force's key and the schema version (the audit trail's
are :data:`darkmap.store.audit.PG_AUDIT_SCHEMA`). Members of ``darkmap_ops`` add rows;
they never update or delete an audit entry, a record or a selector (the trail is
append-only on the server too). Row-level security repeats the grants on the server for
every read and write, even in ``psql`` (:mod:`darkmap.store.ops_guards`, installed after
this); a member of ``darkmap_ops_service`` (a front end that authenticates users itself)
passes it and the library filters for the user it acts for."""


class PgOps:
    """A connection to the team server in the subset of DuckDB's interface the ops store
    uses (``execute(sql, params).fetchall()``). ``ref`` is the analyst's workspace that
    holds the reference data (listings, personas), if any."""

    def __init__(self, pg: psycopg.Connection[Any],
                 ref: duckdb.DuckDBPyConnection | None = None) -> None:
        pg.autocommit = True  # transactions are explicit (:func:`transaction`)
        self.pg = pg
        self.ref = ref

    def execute(self, sql: str, params: Any = None) -> psycopg.Cursor[Any]:
        """Run DuckDB-style SQL (``?`` and ``$name`` parameters) on the server."""
        return self.pg.execute(_pg_sql(sql), params)

    def in_transaction(self) -> bool:
        """True inside an explicit transaction."""
        return bool(self.pg.info.transaction_status != psycopg.pq.TransactionStatus.IDLE)

    def close(self) -> None:
        """Close the server connection (not the reference workspace)."""
        self.pg.close()


Con = duckdb.DuckDBPyConnection | PgOps
"""Where the operational records live: a workspace's DuckDB or the team server."""


class OpsServer:
    """The team server in the place of a workspace for :mod:`darkmap.ops`: ``con`` holds
    the operational records, ``workspace`` (if given) the reference data."""

    def __init__(self, con: PgOps, workspace: Workspace | None = None) -> None:
        self.con = con
        self.workspace = workspace
        self.path: Path | None = workspace.path if workspace is not None else None

    def close(self) -> None:
        """Close the server connection (the workspace is the caller's to close)."""
        self.con.close()

    def __enter__(self) -> OpsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


Space = Workspace | OpsServer
"""What the ops functions act on: a workspace (DuckDB) or the team server."""

_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")
_NAMED = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]{0,40})")


@lru_cache(maxsize=256)
def _pg_sql(sql: str) -> str:
    """DuckDB's placeholders as psycopg's: ``?`` -> ``%s``, ``$name`` -> ``%(name)s``."""
    return _NAMED.sub(r"%(\1)s", sql.replace("?", "%s"))


def _register(con: duckdb.DuckDBPyConnection, name: str, rows: pa.Table) -> None:
    """Name the Arrow table ``rows`` for the statements that follow, ``pyarrow.dataset``
    loaded first (:func:`darkmap.store.writer.tables_scannable`: DuckDB would import it
    inside the statement, where a Ctrl-C crashed the process)."""
    from darkmap.store.writer import tables_scannable  # noqa: PLC0415 - numpy with it

    tables_scannable()
    con.register(name, rows)


def is_server(con: Con) -> bool:
    """True when ``con`` is the team server."""
    return isinstance(con, PgOps)


def reference(con: Con) -> duckdb.DuckDBPyConnection | None:
    """The connection holding the reference data (the workspace), ``None`` if none."""
    return con.ref if isinstance(con, PgOps) else con


def listing_vendor(con: Con, listing_id: str) -> tuple[bool, str | None, str | None]:
    """(whether the reference data hold listing ``listing_id``, its account, that
    account's persona): ``(True, None, None)`` when there is no reference data to ask."""
    ref = reference(con)
    if ref is None:
        return True, None, None
    row = ref.execute("SELECT l.account_id, pm.persona_id FROM listings l LEFT JOIN "
                      "persona_members pm USING (account_id) WHERE l.listing_id = ?",
                      [listing_id]).fetchone()
    return (False, None, None) if row is None else (True, row[0], row[1])


def _ref_list(con: Con, sql: str, ids: Sequence[str]) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` (one ``?`` bound to the list ``ids``) on the reference data; none
    when there is no reference data or no id."""
    ref = reference(con)
    if ref is None or not ids:
        return []
    return ref.execute(sql, [list(ids)]).fetchall()


def account_personas(con: Con, account_ids: Sequence[str]) -> list[str]:
    """The personas that hold any of the accounts ``account_ids`` in the reference data."""
    return [r[0] for r in _ref_list(
        con, "SELECT DISTINCT persona_id FROM persona_members WHERE list_contains(?, "
             "account_id) ORDER BY 1", account_ids)]


def persona_accounts(con: Con, persona_ids: Sequence[str]) -> list[str]:
    """The accounts of the personas ``persona_ids`` in the reference data."""
    return [r[0] for r in _ref_list(
        con, "SELECT DISTINCT account_id FROM persona_members WHERE list_contains(?, "
             "persona_id) ORDER BY 1", persona_ids)]


def account_identifiers(con: Con, account_ids: Sequence[str],
                        kinds: Sequence[str]) -> list[tuple[str, str]]:
    """(kind, value) of the identifiers of ``kinds`` (``pgp_fingerprint``, ``email``...)
    that the accounts ``account_ids`` published, in the reference data."""
    ref = reference(con)
    if ref is None or not account_ids or not kinds:
        return []
    rows = ref.execute("SELECT DISTINCT kind, value FROM identifiers WHERE list_contains(?, "
                       "account_id) AND list_contains(?, kind) ORDER BY 1, 2",
                       [list(account_ids), list(kinds)]).fetchall()
    return [(str(k), str(v)) for k, v in rows]


_HOLDS = {
    "account": "SELECT 1 FROM accounts WHERE account_id = ? LIMIT 1",
    "listing": "SELECT 1 FROM listings WHERE listing_id = ? LIMIT 1",
    "persona": "SELECT 1 FROM personas WHERE persona_id = ? LIMIT 1",
    "wallet": "SELECT 1 FROM btc_clusters WHERE cluster_id = TRY_CAST(? AS BIGINT) LIMIT 1",
    "address": "SELECT 1 FROM btc_address WHERE address = ? UNION ALL SELECT 1 FROM "
               "identifiers WHERE kind IN ('btc_address', 'xmr_address') AND value = ? "
               "LIMIT 1",
}
"""Whether the reference data hold a link's target, per link kind (a wallet is a
cluster id; an address is in the loaded chain data or published in a capture)."""


def reference_holds(con: Con, kind: str, ref: str) -> bool:
    """Whether the reference data (the workspace) hold the target ``ref`` of a link of
    ``kind``; true when there is no reference data to ask."""
    db = reference(con)
    if db is None or kind not in _HOLDS:
        return True
    query = _HOLDS[kind]
    return db.execute(query, [ref] * query.count("?")).fetchone() is not None


def persona_successors(con: Con, persona_id: str) -> list[str]:
    """The personas that now hold the accounts of ``persona_id``, a persona a link run
    replaced (split, merged, renamed: ``persona_changes``), followed through later runs
    to the personas that exist; empty when no run replaced it."""
    db = reference(con)
    if db is None or not table_exists(db, "persona_changes"):
        return []
    now: list[str] = []
    todo, seen = [persona_id], {persona_id}
    while todo:
        gone = todo.pop(0)
        row = db.execute(
            "SELECT c.change FROM persona_changes c LEFT JOIN link_runs r USING (run_id) "
            "WHERE c.persona_id = ? AND c.side = 'before' "
            "ORDER BY r.started_at DESC NULLS LAST LIMIT 1", [gone]).fetchone()
        if row is None:
            continue
        change = json.loads(row[0])
        # where its accounts went (a change may span other personas too)
        went = ({str(m["after"]) for m in change.get("moves", []) if m["before"] == gone}
                or {str(p["persona_id"]) for p in change["after"]})
        for pid in sorted(went):
            if pid in seen:
                continue
            seen.add(pid)
            if reference_holds(con, "persona", pid):
                now.append(pid)
            else:
                todo.append(pid)
    return sorted(now)


def session_role(con: Con) -> str | None:
    """The database role the server authenticated (``None`` in a workspace)."""
    if not isinstance(con, PgOps):
        return None
    row = con.execute("SELECT session_user::text").fetchone()
    return str(row[0]) if row else None


def acts_for(con: Con, user_id: str) -> bool:
    """On the server: whether the connection's role is ``user_id``'s own login role, or a
    member of ``darkmap_ops_service`` (a front end that authenticated the user). Always
    true in a workspace (one analyst's files)."""
    if not isinstance(con, PgOps):
        return True
    row = con.execute(f"SELECT session_user::text = ? OR pg_has_role(session_user, "
                      f"'{SERVICE_ROLE}', 'MEMBER')", [user_id]).fetchone()
    return bool(row and row[0])


def install_server_schema(pg: psycopg.Connection[Any]) -> None:
    """Create (or complete) the operational tables on the server, with the task force's
    HMAC key (32 random bytes, made once). The caller holds the transaction."""
    pg.execute(PG_SCHEMA)
    pg.execute("INSERT INTO ops_server_key VALUES (1, %s) ON CONFLICT DO NOTHING",
               [os.urandom(32)])


def server_key(con: PgOps) -> bytes:
    """The task force's HMAC key kept on the server (made by ``team init``)."""
    row = con.execute("SELECT key FROM ops_server_key WHERE id = 1").fetchone()
    if not row:
        raise psycopg.errors.UndefinedObject("the server has no task-force key: "
                                             "run `darkmap team init`")
    return bytes(row[0])


class AgencyRow(NamedTuple):
    """An agency of the task force."""

    agency_id: str
    name: str
    country: str
    contact: str


class UserRow(NamedTuple):
    """A user: agency, role and the agency's country."""

    user_id: str
    agency_id: str
    role: str
    country: str


class CompartmentRow(NamedTuple):
    """A compartment: kind, name and owning agency."""

    compartment_id: str
    kind: str
    name: str
    owner_agency: str


class GrantRow(NamedTuple):
    """A grant on a compartment."""

    compartment_id: str
    grantee_kind: str
    grantee: str
    access: str


class RecordRow(NamedTuple):
    """An operational record as stored (``data`` decoded)."""

    record_id: str
    kind: str
    compartment_id: str
    agency_id: str
    author: str
    created_at: datetime
    case_id: str | None
    operation: str | None
    occurred_on: date | None
    country: str | None
    provenance: str
    data: dict[str, Any]


class WithdrawalRow(NamedTuple):
    """A record's withdrawal: by whom, when (UTC), why, and the record correcting it."""

    record_id: str
    withdrawn_by: str
    withdrawn_at: datetime
    why: str
    replaced_by: str | None


class SelectorMatch(NamedTuple):
    """A selector held by a compartment of another agency, or by another compartment of
    the same agency (``other_agency`` the agency's own)."""

    selector_hmac: str
    kind: str
    compartment_id: str
    agency_id: str
    other_compartment: str | None
    """``None`` from the team server, which names no other agency's compartment."""
    other_agency: str
    form: str
    """``exact``, or ``bare`` when either side held the selector only as a bare handle
    (:data:`SELECTOR_FORMS`): the weaker match."""
    other_contact: str = ""
    """From the team server: whom to call (the other agency's contact; within one agency
    the user who created the other compartment). Empty from a workspace, where the
    library reads it itself."""


class EventRow(NamedTuple):
    """A planned action."""

    event_id: str
    kind: str
    compartment_id: str
    agency_id: str
    lat: float | None
    lon: float | None
    postal_area: str | None
    starts_at: datetime
    ends_at: datetime
    within_m: float | None = None
    """The radius it was planned with (metres); ``None`` for an event planned before it
    was kept in a workspace (migration 023)."""


class NoticeRow(NamedTuple):
    """A deconfliction notice to one agency (to one compartment of it when
    ``to_compartment`` is set: a match within the agency)."""

    notice_id: str
    kind: str
    to_agency: str
    other_agency: str
    other_contact: str
    subject: str
    created_at: datetime
    acked_by: str | None
    acked_at: datetime | None
    to_compartment: str | None = None
    """Set on a notice between two compartments of one agency: only the users who may
    read this compartment read and acknowledge it; ``None``: the whole agency's."""


OPS_LOCK_WAIT_S = 30
"""Seconds a writer waits for :data:`OPS_LOCK` before it gives up and says why."""


def take_ops_lock(con: PgOps) -> None:
    """Take :data:`OPS_LOCK` for the transaction, waiting at most :data:`OPS_LOCK_WAIT_S`.
    Any role may take an advisory lock: a member holding this one in an idle session
    once made every user's writes and audited reads hang without end (found by
    testing); now they end with a message saying what holds them up."""
    con.execute(f"SET LOCAL lock_timeout = '{OPS_LOCK_WAIT_S}s'")
    try:
        con.execute("SELECT pg_advisory_xact_lock(?)", [OPS_LOCK])
    except psycopg.errors.LockNotAvailable:
        raise WorkspaceStateError(
            f"the team server's operational lock has been held by another session for "
            f"over {OPS_LOCK_WAIT_S} s: try again; if it lasts, the server's owner finds the "
            "session in pg_locks (locktype advisory, objid "
            f"{OPS_LOCK & 0xFFFFFFFF}) and ends it") from None
    con.execute("SET LOCAL lock_timeout = DEFAULT")


@contextmanager
def transaction(con: Con, keep: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Run the block in one transaction: a record and its audit entry land together. An
    exception of a type in ``keep`` commits what was done before it (a refusal's audit
    entry), any other rolls everything back. On the server the transaction first takes
    :data:`OPS_LOCK`: writers go one after the other, so none is lost and the audit
    chain stays one chain."""
    con.execute("BEGIN TRANSACTION")
    if isinstance(con, PgOps):
        try:
            take_ops_lock(con)
        except BaseException:
            con.execute("ROLLBACK")
            raise
    try:
        yield
    except keep:
        con.execute("COMMIT")
        raise
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except (duckdb.Error, psycopg.Error):
            pass
        raise
    con.execute("COMMIT")


# -- agencies, users, compartments, grants ----------------------------------------------


def insert_agency(con: Con, row: AgencyRow, by: str,
                  at: datetime) -> None:
    """Add an agency."""
    con.execute("INSERT INTO ops_agencies VALUES (?, ?, ?, ?, ?, ?)", [*row, by, at])


def agency(con: Con, agency_id: str) -> AgencyRow | None:
    """One agency, ``None`` if unknown."""
    row = con.execute("SELECT agency_id, name, country, contact FROM ops_agencies "
                      "WHERE agency_id = ?", [agency_id]).fetchone()
    return AgencyRow(*row) if row else None


def agencies(con: Con) -> list[AgencyRow]:
    """Every agency (the task force's directory: names, countries and contacts)."""
    return [AgencyRow(*r) for r in con.execute(
        "SELECT agency_id, name, country, contact FROM ops_agencies ORDER BY agency_id"
    ).fetchall()]


def insert_user(con: Con, user_id: str, agency_id: str, role: str,
                by: str, at: datetime) -> None:
    """Add a user."""
    con.execute("INSERT INTO ops_users VALUES (?, ?, ?, ?, ?)",
                [user_id, agency_id, role, by, at])


def user(con: Con, user_id: str) -> UserRow | None:
    """One user with the agency's country, ``None`` if unknown."""
    row = con.execute("SELECT u.user_id, u.agency_id, u.role, a.country FROM ops_users u "
                      "JOIN ops_agencies a USING (agency_id) WHERE u.user_id = ?",
                      [user_id]).fetchone()
    return UserRow(*row) if row else None


class SuspensionRow(NamedTuple):
    """A suspended user: who suspended them, and when (UTC)."""

    user_id: str
    suspended_by: str
    suspended_at: datetime


def suspension(con: Con, user_id: str) -> SuspensionRow | None:
    """The suspension of ``user_id``, ``None`` when they are not suspended."""
    row = con.execute("SELECT user_id, suspended_by, suspended_at FROM ops_suspended "
                      "WHERE user_id = ?", [user_id]).fetchone()
    return SuspensionRow(*row) if row else None


def suspensions(con: Con) -> dict[str, SuspensionRow]:
    """Every suspension this connection reads, by user (on the team server a member reads
    only those of its own agency's users)."""
    return {r[0]: SuspensionRow(*r) for r in con.execute(
        "SELECT user_id, suspended_by, suspended_at FROM ops_suspended").fetchall()}


def end_connections(con: PgOps, user_id: str) -> tuple[int, int]:
    """On the team server, end the open connections of the suspended ``user_id``'s login
    role (``ops_end_connections``; call it after the suspension commits): how many ended,
    and how many the server's owner may not end (it lacks ``pg_signal_backend``)."""
    row = con.execute("SELECT ended, refused FROM ops_end_connections(?)",
                      [user_id]).fetchone()
    return (0, 0) if row is None else (int(row[0]), int(row[1]))


def insert_suspension(con: Con, user_id: str, by: str, at: datetime) -> bool:
    """Suspend ``user_id`` (the first suspension stands); whether they were not already."""
    if suspension(con, user_id) is not None:
        return False
    con.execute("INSERT INTO ops_suspended VALUES (?, ?, ?)", [user_id, by, at])
    return True


def delete_suspension(con: Con, user_id: str) -> SuspensionRow | None:
    """Lift the suspension of ``user_id``: the suspension lifted, ``None`` if none."""
    found = suspension(con, user_id)
    if found is not None:
        con.execute("DELETE FROM ops_suspended WHERE user_id = ?", [user_id])
    return found


def users(con: Con) -> list[UserRow]:
    """Every user."""
    return [UserRow(*r) for r in con.execute(
        "SELECT u.user_id, u.agency_id, u.role, a.country FROM ops_users u "
        "JOIN ops_agencies a USING (agency_id) ORDER BY u.user_id").fetchall()]


def agency_users(con: Con, agency_id: str) -> list[UserRow]:
    """The users of one agency."""
    return [UserRow(*r) for r in con.execute(
        "SELECT u.user_id, u.agency_id, u.role, a.country FROM ops_users u "
        "JOIN ops_agencies a USING (agency_id) WHERE u.agency_id = ? ORDER BY u.user_id",
        [agency_id]).fetchall()]


def any_user(con: Con) -> bool:
    """True once the task force has a user (before that, set-up is open). On the team
    server a member reads only its own agency's users: the server answers."""
    if isinstance(con, PgOps):
        return con.execute("SELECT ops_any_user()").fetchone() == (True,)
    return con.execute("SELECT count(*) FROM ops_users").fetchone() != (0,)


def user_exists(con: Con, user_id: str) -> bool:
    """Whether any agency has a user of this id (a case team or a grant may name a
    partner's user, whom a member of the team server may not read: the server answers
    yes or no)."""
    if isinstance(con, PgOps):
        return con.execute("SELECT ops_user_exists(?)", [user_id]).fetchone() == (True,)
    return con.execute("SELECT count(*) FROM ops_users WHERE user_id = ?",
                       [user_id]).fetchone() != (0,)


def agency_like(con: Con, agency_id: str) -> str | None:
    """The agency whose id is ``agency_id`` regardless of case, ``None`` if none."""
    row = con.execute("SELECT min(agency_id) FROM ops_agencies WHERE lower(agency_id) = "
                      "lower(?)", [agency_id]).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def user_like(con: Con, user_id: str) -> str | None:
    """The user whose id is ``user_id`` regardless of case, of any agency (on the team
    server the server answers: a member reads only its own agency's users)."""
    if isinstance(con, PgOps):
        row = con.execute("SELECT ops_user_like(?)", [user_id]).fetchone()
    else:
        row = con.execute("SELECT min(user_id) FROM ops_users WHERE lower(user_id) = "
                          "lower(?)", [user_id]).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def agency_has_users(con: Con, agency_id: str) -> bool:
    """Whether the agency has a user yet (its first is added by an admin of any agency)."""
    if isinstance(con, PgOps):
        return con.execute("SELECT ops_agency_has_users(?)",
                           [agency_id]).fetchone() == (True,)
    return con.execute("SELECT count(*) FROM ops_users WHERE agency_id = ?",
                       [agency_id]).fetchone() != (0,)


def insert_compartment(con: Con, row: CompartmentRow, by: str,
                       at: datetime) -> None:
    """Add a compartment."""
    con.execute("INSERT INTO ops_compartments VALUES (?, ?, ?, ?, ?, ?)", [*row, by, at])


def compartment(con: Con, compartment_id: str) -> CompartmentRow | None:
    """One compartment, ``None`` if unknown."""
    row = con.execute("SELECT compartment_id, kind, name, owner_agency FROM ops_compartments "
                      "WHERE compartment_id = ?", [compartment_id]).fetchone()
    return CompartmentRow(*row) if row else None


def compartment_creator(con: Con, compartment_id: str) -> str:
    """The user who created a compartment (whom another compartment of the agency calls
    about an overlap), ``""`` if unknown."""
    row = con.execute("SELECT created_by FROM ops_compartments WHERE compartment_id = ?",
                      [compartment_id]).fetchone()
    return str(row[0]) if row else ""


def compartment_taken(con: Con, compartment_id: str) -> bool:
    """Whether any agency's compartment has this id: on the team server a member reads
    only the compartments it holds a grant on or its agency owns, so the server answers
    (``ops_compartment_taken``) with a yes or no and nothing of the compartment."""
    if isinstance(con, PgOps):
        row = con.execute("SELECT ops_compartment_taken(?)", [compartment_id]).fetchone()
        return bool(row and row[0])
    return compartment(con, compartment_id) is not None


def put_grant(con: Con, row: GrantRow, by: str, at: datetime) -> None:
    """Add a grant (or change its access)."""
    con.execute("INSERT INTO ops_grants VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (compartment_id, grantee_kind, grantee) DO UPDATE SET "
                "access = EXCLUDED.access, granted_by = EXCLUDED.granted_by, "
                "granted_at = EXCLUDED.granted_at", [*row, by, at])


def delete_grant(con: Con, compartment_id: str, grantee_kind: str,
                 grantee: str) -> int:
    """Remove a grant; the number removed (0 or 1)."""
    row = con.execute("DELETE FROM ops_grants WHERE compartment_id = ? AND grantee_kind = ? "
                      "AND grantee = ? RETURNING 1", [compartment_id, grantee_kind, grantee]
                      ).fetchall()
    return len(row)


def grants_of(con: Con, compartment_id: str) -> list[GrantRow]:
    """The grants on a compartment."""
    return [GrantRow(*r) for r in con.execute(
        "SELECT compartment_id, grantee_kind, grantee, access FROM ops_grants "
        "WHERE compartment_id = ? ORDER BY grantee_kind, grantee", [compartment_id]).fetchall()]


def granted_compartments(con: Con, user_id: str, agency_id: str
                         ) -> list[tuple[CompartmentRow, str]]:
    """The compartments the user holds a grant on (to the user, the agency or the task
    force), each with the best grant: 'write' or 'read'."""
    rows = con.execute(
        "SELECT c.compartment_id, c.kind, c.name, c.owner_agency, "
        "max(CASE g.access WHEN 'write' THEN 2 ELSE 1 END) FROM ops_compartments c "
        "JOIN ops_grants g USING (compartment_id) WHERE (g.grantee_kind = 'user' AND "
        "g.grantee = $user) OR (g.grantee_kind = 'agency' AND g.grantee = $agency) OR "
        "g.grantee_kind = 'taskforce' GROUP BY 1, 2, 3, 4 ORDER BY 1",
        {"user": user_id, "agency": agency_id}).fetchall()
    return [(CompartmentRow(*r[:4]), "write" if r[4] == 2 else "read") for r in rows]


def grants_on(con: Con, compartment_ids: Sequence[str]) -> list[GrantRow]:
    """The grants on each of ``compartment_ids``."""
    return [GrantRow(*r) for r in con.execute(
        "SELECT compartment_id, grantee_kind, grantee, access FROM ops_grants "
        "WHERE compartment_id = ANY($ids) ORDER BY 1, 2, 3",
        {"ids": list(compartment_ids)}).fetchall()]


def access_level(con: Con, user_id: str, agency_id: str,
                 compartment_id: str) -> str | None:
    """'write', 'read' or ``None``: the best grant the user holds on the compartment."""
    row = con.execute(
        "SELECT max(CASE access WHEN 'write' THEN 2 ELSE 1 END) FROM ops_grants "
        "WHERE compartment_id = $c AND ((grantee_kind = 'user' AND grantee = $user) OR "
        "(grantee_kind = 'agency' AND grantee = $agency) OR grantee_kind = 'taskforce')",
        {"c": compartment_id, "user": user_id, "agency": agency_id}).fetchone()
    best = row[0] if row else None
    return None if best is None else ("write" if best == 2 else "read")


# -- records ----------------------------------------------------------------------------


def insert_record(con: Con, row: RecordRow,
                  links: Iterable[tuple[str, str]] = (),
                  items: Iterable[Sequence[Any]] = (),
                  lab: Sequence[Any] | None = None) -> None:
    """Add a record with its links (kind, id), seizure items (item, substance, grams,
    count, currency, amount, usd, address) and lab result (substance, purity, net g,
    pills, imprint, fentanyl)."""
    con.execute("INSERT INTO ops_records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [*row[:-1], json.dumps(row.data, sort_keys=True)])
    for kind, ref in links:
        con.execute("INSERT INTO ops_links VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    [row.record_id, kind, ref])
    for item in items:
        con.execute("INSERT INTO ops_seizure_items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [row.record_id, *item])
    if lab is not None:
        con.execute("INSERT INTO ops_lab_results VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [row.record_id, *lab])


def record_contents(con: Con, record_ids: Sequence[str] | None = None
                    ) -> dict[str, dict[str, Any]]:
    """record id -> what the record says as stored: its row (``data`` decoded), links,
    seizure items, lab result and withdrawal, in one order; of ``record_ids``, else of every record
    this connection reads (a workspace: all; the team server: what row-level security
    leaves the login role). For the audit trail's digests
    (:func:`darkmap.ops.audit.record_digest`), never shown to a user."""
    where, params = ("WHERE record_id = ANY($ids)", {"ids": list(record_ids)}) \
        if record_ids is not None else ("", {})
    out: dict[str, dict[str, Any]] = {}
    for r in con.execute(
            "SELECT record_id, kind, compartment_id, agency_id, author, created_at, case_id, "
            f"operation, occurred_on, country, provenance, data FROM ops_records {where} "
            "ORDER BY record_id", params).fetchall():
        row = RecordRow._make([*r[:-1], json.loads(r[-1])])
        out[row.record_id] = {"row": row._asdict(), "links": [], "items": [], "lab": None,
                              "withdrawal": None}
    for table, columns in (
            ("ops_links", "ref_kind, ref_id"),
            ("ops_seizure_items", "item, substance, grams, count, currency, amount, usd, address"),
            ("ops_lab_results",
             "substance, purity_pct, net_weight_g, pill_count, imprint, fentanyl"),
            ("ops_withdrawals", "withdrawn_by, withdrawn_at, why, replaced_by")):
        for r in con.execute(f"SELECT record_id, {columns} FROM {table} {where} "
                             f"ORDER BY record_id, {columns}", params).fetchall():
            # a row whose record is gone hangs off nothing: kept under its id, so a
            # record deleted without its items still differs from none
            held = out.setdefault(r[0], {"row": None, "links": [], "items": [], "lab": None,
                                         "withdrawal": None})
            if table in ("ops_lab_results", "ops_withdrawals"):
                held["lab" if table == "ops_lab_results" else "withdrawal"] = list(r[1:])
            else:
                held["links" if table == "ops_links" else "items"].append(list(r[1:]))
    return out


def my_agency(con: PgOps) -> str | None:
    """The agency of the member login role connected to the team server (``None`` for
    the owner or service role)."""
    row = con.execute("SELECT ops_my_agency()").fetchone()
    return None if row is None or row[0] is None else str(row[0])


def readable_records(con: Con, user_id: str, agency_id: str,
                     kind: str | None = None, record_id: str | None = None,
                     operation: str | None = None,
                     case_id: str | None = None,
                     active_only: bool = False) -> list[RecordRow]:
    """The records the user may read, filtered by kind, id, operation or case; with
    ``active_only``, none withdrawn."""
    sql = ("SELECT record_id, kind, compartment_id, agency_id, author, created_at, case_id, "
           f"operation, occurred_on, country, provenance, data FROM ops_records WHERE {READABLE}")
    if active_only:
        sql += f" AND {ACTIVE}"
    params: dict[str, str] = {"user": user_id, "agency": agency_id}
    for column, value in (("kind", kind), ("record_id", record_id),
                          ("operation", operation), ("case_id", case_id)):
        if value is not None:
            sql += f" AND {column} = ${column}"
            params[column] = value
    rows = con.execute(sql + " ORDER BY created_at, record_id", params).fetchall()
    return [RecordRow._make([*r[:-1], json.loads(r[-1])]) for r in rows]


def insert_withdrawal(con: Con, row: WithdrawalRow) -> None:
    """Withdraw a record (its row is never changed; a second withdrawal of it fails on
    the key). The server stamps ``withdrawn_at`` with its own clock."""
    con.execute("INSERT INTO ops_withdrawals VALUES (?, ?, ?, ?, ?)", list(row))


def withdrawals_of(con: Con, user_id: str, agency_id: str,
                   record_ids: Sequence[str]) -> dict[str, WithdrawalRow]:
    """record id -> its withdrawal, for the readable withdrawn ones among ``record_ids``."""
    rows = con.execute(
        "SELECT record_id, withdrawn_by, withdrawn_at, why, replaced_by FROM ops_withdrawals "
        "WHERE record_id = ANY($ids) AND record_id IN "
        f"(SELECT record_id FROM ops_records WHERE {READABLE})",
        {"ids": list(record_ids), "user": user_id, "agency": agency_id}).fetchall()
    return {r[0]: WithdrawalRow(*r) for r in rows}


def links_of(con: Con, user_id: str, agency_id: str,
             record_ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    """record id -> its links (kind, id), for the readable ones among ``record_ids``."""
    rows = con.execute(
        "SELECT record_id, ref_kind, ref_id FROM ops_links WHERE record_id = ANY($ids)"
        f" AND record_id IN (SELECT record_id FROM ops_records WHERE {READABLE}) "
        "ORDER BY record_id, ref_kind, ref_id",
        {"ids": list(record_ids), "user": user_id, "agency": agency_id}).fetchall()
    out: dict[str, list[tuple[str, str]]] = {}
    for rid, kind, ref in rows:
        out.setdefault(rid, []).append((kind, ref))
    return out


def seizure_items(con: Con, user_id: str, agency_id: str,
                  operation: str | None = None) -> list[tuple[Any, ...]]:
    """(record id, item, substance, grams, count, currency, amount, usd, address) of the
    seizures the user may read, of one operation if given; none withdrawn."""
    sql = ("SELECT i.record_id, item, substance, grams, count, currency, amount, usd, address "
           "FROM ops_seizure_items i JOIN ops_records r USING (record_id) "
           f"WHERE r.{READABLE} AND r.{ACTIVE}")
    params = {"user": user_id, "agency": agency_id}
    if operation is not None:
        sql += " AND r.operation = $op"
        params["op"] = operation
    return con.execute(sql + " ORDER BY i.record_id, item", params).fetchall()


def lab_results(con: Con, user_id: str, agency_id: str,
                record_ids: Sequence[str]) -> dict[str, tuple[Any, ...]]:
    """buy record id -> (substance, purity, net g, pills, imprint, fentanyl), readable ones."""
    rows = con.execute(
        "SELECT record_id, substance, purity_pct, net_weight_g, pill_count, imprint, fentanyl "
        "FROM ops_lab_results WHERE record_id = ANY($ids) AND record_id IN "
        f"(SELECT record_id FROM ops_records WHERE {READABLE})",
        {"ids": list(record_ids), "user": user_id, "agency": agency_id}).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def fentanyl_evidence(con: Con, user_id: str,
                      agency_id: str) -> list[tuple[str, str, str, str]]:
    """(ref kind, ref id, buy record id, substance): the listings and personas that a
    readable buy's lab result (not withdrawn) shows to sell fentanyl; the persona of a
    linked listing's or account's account (``persona_members`` of the reference data) is
    marked too."""
    direct = [tuple(r) for r in con.execute(f"""
        SELECT l.ref_kind, l.ref_id, b.record_id, b.substance
        FROM ops_lab_results b JOIN ops_links l USING (record_id)
        WHERE b.fentanyl AND l.ref_kind IN ('listing', 'persona', 'account')
          AND b.record_id IN (SELECT record_id FROM ops_records WHERE {READABLE}
                              AND {ACTIVE})""",
        {"user": user_id, "agency": agency_id}).fetchall()]
    ref = reference(con)
    via: list[tuple[Any, ...]] = []
    if direct and ref is not None:
        probe = pa.table({"ref_kind": [d[0] for d in direct], "ref_id": [d[1] for d in direct],
                          "record_id": [d[2] for d in direct],
                          "substance": [d[3] for d in direct]})
        _register(ref, "_ops_marked", probe)
        try:
            via = ref.execute("""
                SELECT 'persona', pm.persona_id, d.record_id, d.substance
                FROM _ops_marked d JOIN listings li
                  ON d.ref_kind = 'listing' AND li.listing_id = d.ref_id
                JOIN persona_members pm ON pm.account_id = li.account_id
                UNION
                SELECT 'persona', pm.persona_id, d.record_id, d.substance
                FROM _ops_marked d JOIN persona_members pm
                  ON d.ref_kind = 'account' AND pm.account_id = d.ref_id""").fetchall()
        finally:
            ref.unregister("_ops_marked")
    return sorted({(str(k), str(i), str(b), str(s)) for k, i, b, s in [*direct, *via]},
                  key=lambda r: (r[0], r[1], r[2]))


# -- deconfliction ----------------------------------------------------------------------


_SELECTOR_COLUMNS = ("selector_hmac", "kind", "compartment_id", "agency_id", "record_id",
                     "submitted_by", "submitted_at", "form")


def _columns(rows: pa.Table, names: Sequence[str]) -> list[list[Any]]:
    """The columns of an Arrow table as Python lists (arrays for the server)."""
    return [rows.column(n).to_pylist() for n in names]


def _copy_value(value: Any) -> str:
    """One value in PostgreSQL's COPY text format."""
    if value is None:
        return "\\N"
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    if _COPY_SPECIAL.search(text) is None:
        return text
    return (text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            .replace("\r", "\\r"))


def _copy_column(values: list[Any]) -> list[str]:
    """A column in COPY text format (each distinct value escaped once)."""
    seen: dict[Any, str] = {}
    out = []
    for v in values:
        text = seen.get(v)
        if text is None:
            text = seen[v] = _copy_value(v)
        out.append(text)
    return out


def _pg_load(con: PgOps, create: Sequence[str], copy_sql: str, rows: pa.Table,
             names: Sequence[str]) -> None:
    """``rows`` (the columns ``names``) into a new temporary table by COPY (``create``:
    the statements that make it): one stream, where arrays of parameters cost a Python
    call per value."""
    for statement in create:
        con.pg.execute(statement)
    columns = [_copy_column(c) for c in _columns(rows, names)]
    text = "".join("\t".join(row) + "\n" for row in zip(*columns, strict=True))
    with con.pg.cursor() as cur, cur.copy(copy_sql) as copy:
        copy.write(text)


_PG_SELECTORS = ("SELECT * FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::text[], "
                 "?::text[], ?::timestamp[], ?::text[]) AS s(selector_hmac, kind, "
                 "compartment_id, agency_id, record_id, submitted_by, submitted_at, form)")
_COPY_ROWS = 1000
"""From this many rows on, the server gets them by COPY (a temporary table costs more
than arrays of parameters on small batches)."""


def live_selector(alias: str) -> str:
    """SQL: the ``ops_selectors`` row ``alias`` stands, a direct submission or a record's
    registration of a record not withdrawn (:func:`insert_withdrawal`). Only such rows
    match: a selector stops matching for a compartment when only withdrawn records held
    it there."""
    return (f"({alias}.record_id IS NULL OR {alias}.record_id NOT IN "
            "(SELECT w.record_id FROM ops_withdrawals w))")


_SELECTOR_LIST = ", ".join(_SELECTOR_COLUMNS)


def insert_selectors(con: Con, rows: pa.Table) -> None:
    """Add selectors (columns as ``ops_selectors``): one row per selector, compartment,
    agency and record (``record_id`` ``None``: a direct submission); a row already held
    is kept as is. Every record's registration is kept, so a selector still matches
    while any record of the compartment that named it stands."""
    if isinstance(con, PgOps) and rows.num_rows < _COPY_ROWS:
        con.execute(f"INSERT INTO ops_selectors ({_SELECTOR_LIST}) {_PG_SELECTORS} "
                    "ON CONFLICT DO NOTHING", _columns(rows, _SELECTOR_COLUMNS))
        return
    if isinstance(con, PgOps):
        _pg_load(con, ("DROP TABLE IF EXISTS _ops_new_selectors",
                       ("CREATE TEMP TABLE _ops_new_selectors (selector_hmac TEXT, kind TEXT, "
                        "compartment_id TEXT, agency_id TEXT, record_id TEXT, "
                        "submitted_by TEXT, submitted_at TIMESTAMP, form TEXT)")),
                 "COPY _ops_new_selectors FROM STDIN", rows, _SELECTOR_COLUMNS)
        con.execute(f"INSERT INTO ops_selectors ({_SELECTOR_LIST}) SELECT {_SELECTOR_LIST} "
                    "FROM _ops_new_selectors ON CONFLICT DO NOTHING")
        con.execute("DROP TABLE _ops_new_selectors")
        return
    # DuckDB takes ON CONFLICT only from a key or an index on columns, not from the
    # unique index on coalesce(record_id, ''): the rows held are left out by a join
    _register(con, "_ops_new_selectors", rows)
    try:
        con.execute(f"""
            INSERT INTO ops_selectors ({_SELECTOR_LIST})
            SELECT {_SELECTOR_LIST} FROM (
                SELECT DISTINCT ON (selector_hmac, kind, compartment_id, agency_id,
                                    coalesce(record_id, '')) *
                FROM _ops_new_selectors) n
            WHERE NOT EXISTS (
                SELECT 1 FROM ops_selectors s WHERE s.selector_hmac = n.selector_hmac
                   AND s.kind = n.kind AND s.compartment_id = n.compartment_id
                   AND s.agency_id = n.agency_id
                   AND coalesce(s.record_id, '') = coalesce(n.record_id, ''))""")
    finally:
        con.unregister("_ops_new_selectors")


_MATCHES = f"""
    WITH probe AS (
        SELECT p.selector_hmac, p.kind, p.compartment_id, p.agency_id,
               bool_or(o.form = 'exact') AS exact
        FROM (SELECT DISTINCT selector_hmac, kind, compartment_id, agency_id
              FROM _ops_probe) p
        JOIN ops_selectors o
          ON o.selector_hmac = p.selector_hmac AND o.kind = p.kind
         AND o.compartment_id = p.compartment_id AND o.agency_id = p.agency_id
        WHERE {live_selector("o")}
        GROUP BY 1, 2, 3, 4)
    SELECT p.selector_hmac, p.kind, p.compartment_id, p.agency_id,
           s.compartment_id, s.agency_id,
           CASE WHEN bool_or(p.exact AND s.form = 'exact') THEN 'exact' ELSE 'bare' END
    FROM probe p JOIN ops_selectors s
      ON s.selector_hmac = p.selector_hmac AND s.kind = p.kind
     AND (s.agency_id <> p.agency_id OR s.compartment_id <> p.compartment_id)
    WHERE {live_selector("s")}
    GROUP BY 1, 2, 3, 4, 5, 6
    ORDER BY 1, 2, 3, 5"""


def selector_matches(con: Con, rows: pa.Table, user: str = "") -> list[SelectorMatch]:
    """The selectors of ``rows`` (hmac, kind, compartment, agency) that a compartment of
    another agency, or another compartment of the same agency, holds already. The rows
    must be stored first (:func:`insert_selectors`): a selector matches only while a row
    of it stands on both sides (:func:`live_selector`: a direct submission, or a record
    not withdrawn). A match's ``form`` is ``exact`` when a standing row on each side was
    registered as written, else ``bare`` (a bare handle on one side or both:
    :data:`BARE_MATCH`). The team server matches only selectors stored in a compartment
    the caller may write, names no other compartment, and writes the notices to both
    agencies itself (``ops_selector_matches``, :mod:`darkmap.store.ops_guards`); within
    one agency it answers only the compartments ``user`` (who stored the rows) may not
    read, by the contact to call, and writes both compartments' notices (a workspace
    answers every other compartment: the library asks who may read it)."""
    if isinstance(con, PgOps) and rows.num_rows < _COPY_ROWS:
        found = con.execute("SELECT * FROM ops_selector_matches(?::text[], ?::text[], "
                            "?::text[], ?::text[], ?)",
                            [*_columns(rows, _SELECTOR_COLUMNS[:4]), user]).fetchall()
        return [SelectorMatch(h, k, c, a, None, o, f, t) for h, k, c, a, o, f, t in found]
    if isinstance(con, PgOps):
        _pg_load(con, ("DROP TABLE IF EXISTS _ops_probe",
                       ("CREATE TEMP TABLE _ops_probe (selector_hmac TEXT, kind TEXT, "
                        "compartment_id TEXT, agency_id TEXT)")),
                 "COPY _ops_probe FROM STDIN", rows, _SELECTOR_COLUMNS[:4])
        found = con.execute(
            "SELECT m.* FROM (SELECT array_agg(selector_hmac) AS h, array_agg(kind) AS k, "
            "array_agg(compartment_id) AS c, array_agg(agency_id) AS a FROM _ops_probe) t, "
            "LATERAL ops_selector_matches(t.h, t.k, t.c, t.a, ?) m", [user]).fetchall()
        con.execute("DROP TABLE _ops_probe")
        return [SelectorMatch(h, k, c, a, None, o, f, t) for h, k, c, a, o, f, t in found]
    _register(con, "_ops_probe", rows)
    try:
        found = con.execute(_MATCHES).fetchall()
    finally:
        con.unregister("_ops_probe")
    return [SelectorMatch(*r) for r in found]


_EVENT_COLUMNS = ("event_id, kind, compartment_id, agency_id, lat, lon, postal_area, "
                  "starts_at, ends_at")


def insert_event(con: Con, row: EventRow, by: str, at: datetime) -> None:
    """Add a planned action: in a workspace with its radius; on the team server without
    (the server's first comparison fixes it, capped there, :func:`event_clashes`)."""
    columns, values = f"{_EVENT_COLUMNS}, created_by, created_at", [*row[:9], by, at]
    if not isinstance(con, PgOps):
        columns, values = f"{columns}, within_m", [*values, row.within_m]
    con.execute(f"INSERT INTO ops_events ({columns}) VALUES "
                f"({', '.join('?' * len(values))})", values)


def events_in_window(con: Con, starts_at: datetime, ends_at: datetime,
                     other_than_agency: str, other_than_compartment: str = ""
                     ) -> list[EventRow]:
    """Planned actions of other agencies, and of the agency's other compartments than
    ``other_than_compartment``, whose window overlaps [starts_at, ends_at]."""
    return [EventRow(*r) for r in con.execute(
        f"SELECT {_EVENT_COLUMNS}, within_m FROM ops_events WHERE (agency_id <> ? "
        "OR (? <> '' AND compartment_id <> ?)) AND starts_at <= ? AND ends_at >= ? "
        "ORDER BY event_id",
        [other_than_agency, other_than_compartment, other_than_compartment, ends_at,
         starts_at]).fetchall()]


def event_clashes(con: PgOps, event_id: str, within_m: float
                  ) -> list[tuple[str | None, str, bool, str]]:
    """On the team server: (event id, agency, placed, contact) of the other agencies'
    events that the caller's stored event ``event_id`` clashes with, within the larger of
    ``within_m`` metres (capped at the server too) and their own radius, or in the same
    postal area, or whose place could not be compared (``placed`` false), in an
    overlapping window; and of the events in the agency's other compartments that the
    event's planner may not read (the agency its own, the event id ``None``: one per
    contact, the user who created that compartment). The server compares places no member
    may read and writes the notices to both sides itself (``ops_event_clashes``,
    :mod:`darkmap.store.ops_guards`)."""
    return [(None if e is None else str(e), str(a), bool(p), str(c or ""))
            for e, a, p, c in con.execute("SELECT * FROM ops_event_clashes(?, ?)",
                                          [event_id, within_m]).fetchall()]


_NOTICE_COLUMNS = ("notice_id, kind, to_agency, other_agency, other_contact, subject, "
                   "created_at, acked_by, acked_at, to_compartment")


def insert_notice(con: Con, row: NoticeRow) -> None:
    """Add a notice (one already sent with the same id is kept)."""
    con.execute(f"INSERT INTO ops_notices ({_NOTICE_COLUMNS}) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", list(row))


def insert_notices(con: Con, rows: Sequence[NoticeRow]) -> None:
    """Add notices in one statement (those already sent are kept)."""
    if not rows:
        return
    table = pa.table({
        **{f: pa.array([getattr(r, f) for r in rows], pa.string())
           for f in ("notice_id", "kind", "to_agency", "other_agency", "other_contact",
                     "subject")},
        "created_at": pa.array([r.created_at for r in rows], pa.timestamp("us")),
        "acked_by": pa.array([r.acked_by for r in rows], pa.string()),
        "acked_at": pa.array([r.acked_at for r in rows], pa.timestamp("us")),
        "to_compartment": pa.array([r.to_compartment for r in rows], pa.string())})
    if isinstance(con, PgOps):
        con.execute(f"INSERT INTO ops_notices ({_NOTICE_COLUMNS}) SELECT * FROM unnest("
                    "?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], "
                    "?::timestamp[], ?::text[], ?::timestamp[], ?::text[]) "
                    "ON CONFLICT DO NOTHING", _columns(table, table.column_names))
        return
    _register(con, "_ops_new_notices", table)   # one statement: executemany is per row
    try:
        con.execute(f"INSERT INTO ops_notices ({_NOTICE_COLUMNS}) SELECT {_NOTICE_COLUMNS} "
                    "FROM _ops_new_notices ON CONFLICT DO NOTHING")
    finally:
        con.unregister("_ops_new_notices")


_NOTICE_READABLE = f"(to_compartment IS NULL OR {readable('to_compartment')})"
"""A notice the user ``$user`` of ``$agency`` reads: its agency's, and when it is addressed
to one compartment (a match within the agency), one the user may read."""


def notices_for(con: Con, agency_id: str, user_id: str) -> list[NoticeRow]:
    """The notices to one agency that the user may read (those to one of its compartments
    only when the user may read it), oldest first."""
    return [NoticeRow(*r) for r in con.execute(
        f"SELECT {_NOTICE_COLUMNS} FROM ops_notices WHERE to_agency = $agency AND "
        f"{_NOTICE_READABLE} ORDER BY created_at, notice_id",
        {"agency": agency_id, "user": user_id}).fetchall()]


def ack_notice(con: Con, notice_id: str, agency_id: str, by: str,
               at: datetime) -> int:
    """Acknowledge a notice of one's own agency (to one of its compartments: one ``by``
    may read); the number acknowledged (0 or 1)."""
    return len(con.execute(
        "UPDATE ops_notices SET acked_by = $by, acked_at = $at WHERE notice_id = $id "
        f"AND to_agency = $agency AND acked_by IS NULL AND {_NOTICE_READABLE} RETURNING 1",
        {"by": by, "at": at, "id": notice_id, "agency": agency_id, "user": by}).fetchall())


# -- reported figures -------------------------------------------------------------------


def replace_reported(con: Con, operation: str,
                     rows: Iterable[Sequence[Any]]) -> None:
    """Replace the reported figures of one operation with ``rows`` (metric, low, high,
    text, source)."""
    con.execute("DELETE FROM ops_reported WHERE operation = ?", [operation])
    for r in rows:
        con.execute("INSERT INTO ops_reported VALUES (?, ?, ?, ?, ?, ?)", [operation, *r])


def reported(con: Con, operation: str) -> list[tuple[Any, ...]]:
    """(metric, low, high, text, source) of one operation (public figures: no grant)."""
    return con.execute("SELECT metric, low, high, text, source FROM ops_reported "
                       "WHERE operation = ? ORDER BY metric, source, low", [operation]
                       ).fetchall()


# -- reference data for a country's package ------------------------------------------------


def country_personas(con: Con, country: str) -> list[tuple[Any, ...]]:
    """(persona id, label, confidence, evidence JSON, method) of the personas attributed
    to ``country`` (shared reference data: the assess stage's jurisdictions)."""
    ref = reference(con)
    if ref is None:
        return []
    return ref.execute(
        "SELECT j.entity_id, p.label, j.confidence, j.evidence, j.method FROM jurisdictions j "
        "LEFT JOIN personas p ON p.persona_id = j.entity_id "
        "WHERE j.entity_kind = 'persona' AND j.country = ? ORDER BY j.confidence DESC, 1",
        [country]).fetchall()


def persona_listings(con: Con, persona_ids: Sequence[str]
                     ) -> list[tuple[Any, ...]]:
    """(persona, account, listing, substance, drug class, fentanyl risk, capture sha256,
    source) of the personas' accounts' listings with their drug assessment."""
    ref = reference(con)
    if ref is None or not persona_ids:
        return []
    return ref.execute(
        "SELECT pm.persona_id, pm.account_id, l.listing_id, a.substance, a.drug_class, "
        "a.fentanyl_risk, l.capture_sha256, l.source FROM persona_members pm "
        "LEFT JOIN listings l ON l.account_id = pm.account_id "
        "LEFT JOIN listing_assessments a ON a.listing_id = l.listing_id "
        "WHERE list_contains($ids, pm.persona_id) ORDER BY 1, 2, 3",
        {"ids": list(persona_ids)}).fetchall()


def demo_target(con: Con, markets: Sequence[str]) -> tuple[Any, ...] | None:
    """(persona, account, listing, substance, pack price USD, country) of the persona on
    one of ``markets`` the demo operation goes after: one selling a fentanyl-risk listing
    if any, one with a jurisdiction if any (reference data only)."""
    ref = reference(con)
    if ref is None or not markets:
        return None
    row = ref.execute(
        "SELECT pm.persona_id, a.account_id, l.listing_id, coalesce(la.substance, ''), "
        "la.pack_price_usd, j.country FROM persona_members pm "
        "JOIN accounts a ON a.account_id = pm.account_id "
        "JOIN listings l ON l.account_id = a.account_id "
        "LEFT JOIN listing_assessments la ON la.listing_id = l.listing_id "
        "LEFT JOIN jurisdictions j ON j.entity_kind = 'persona' AND j.entity_id = pm.persona_id "
        "WHERE a.market_id = ANY($markets) "
        "ORDER BY coalesce(la.fentanyl_risk, false) DESC, j.country IS NULL, "
        "pm.persona_id, l.listing_id LIMIT 1", {"markets": list(markets)}).fetchone()
    return tuple(row) if row else None


def persona_addresses(con: Con, persona_id: str, limit: int = 3) -> list[str]:
    """Bitcoin addresses the persona's accounts published (reference data)."""
    ref = reference(con)
    if ref is None:
        return []
    return [r[0] for r in ref.execute(
        "SELECT DISTINCT i.value FROM identifiers i JOIN persona_members pm "
        "ON pm.account_id = i.account_id WHERE pm.persona_id = ? AND i.kind = 'btc_address' "
        "ORDER BY 1 LIMIT ?", [persona_id, limit]).fetchall()]


def readable_operations(con: Con, user_id: str, agency_id: str) -> list[str]:
    """The operations named by the records the user may read (no other: an operation
    known only from compartments the user may not read is not confirmed to exist)."""
    return [str(r[0]) for r in con.execute(
        f"SELECT DISTINCT operation FROM ops_records WHERE {READABLE} "
        "AND operation IS NOT NULL ORDER BY 1", {"user": user_id, "agency": agency_id}
    ).fetchall()]


def reported_operations(con: Con) -> list[str]:
    """The operations whose reported figures were imported (public figures)."""
    return [str(r[0]) for r in con.execute(
        "SELECT DISTINCT operation FROM ops_reported ORDER BY 1").fetchall()]
