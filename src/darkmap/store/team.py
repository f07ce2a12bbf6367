"""A team server on PostgreSQL: analysts on several workspaces share their judgements.

Each analyst keeps an embedded workspace; ``sync`` pushes the workspace's judgements to
the shared server and pulls everyone else's. Judgements are immutable events keyed by
``judgement_id``; a withdrawal only ever sets ``withdrawn_at``, so syncing in any order,
any number of times, converges to the same state everywhere.

The server trusts no one (issue #18):

- **TLS off loopback.** A server that is not on this machine (loopback address, Unix
  socket) is reached with ``sslmode=verify-full`` only: set when the address gives no
  ``sslmode``, and a weaker one is refused before any connection is tried
  (:func:`secure_conninfo`).
- **The author is the database role.** The server writes ``author`` itself: the role the
  connection authenticated as (``session_user``); clients may not even name the column.
  A judgement is withdrawn only by its author or a member of ``darkmap_supervisor``; no
  other column ever changes and nothing is deleted. Row-level security, column
  privileges and a trigger enforce this on the server (:func:`init_server`).
- **Invalid rows are quarantined.** A server row that is not a valid judgement (NULL
  field, unknown verdict, malformed account id, text over its cap) is skipped by every
  sync, counted, and kept in the workspace's ``team_quarantine`` table with the reason;
  the sync goes on (:func:`check_row`).
- **Nothing about the analyst's machine is sent**: only the judgement's own columns.

``init`` creates the schema or upgrades an older one in place (idempotent, under a lock).
It installs the operational tables of issue #13 too (:data:`darkmap.store.operations.
PG_SCHEMA`); :func:`open_ops_server` connects to them for :mod:`darkmap.ops`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from darkmap.errors import DarkmapError
from darkmap.model.display import for_display
from darkmap.store import ops_guards
from darkmap.store.audit import install_server_audit
from darkmap.store.operations import (
    OPS_SCHEMA_VERSION,
    SERVICE_ROLE,
    OpsServer,
    PgOps,
    install_server_schema,
)
from darkmap.store.personas import JUDGEMENT_COLUMNS, all_judgements, apply_shared_judgements
from darkmap.store.web import install_server_web
from darkmap.store.workspace import Workspace, table_exists, utcnow

__all__ = [
    "ANALYST_ROLE", "ID_CHARS", "NOTE_CHARS", "SCHEMA_VERSION", "SUPERVISOR_ROLE",
    "ServerInit", "SyncResult", "TeamServerError", "check_row", "default_server",
    "push_judgement_for", "team_judgements",
    "init_server", "is_loopback", "open_ops_server", "open_web_server", "secure_conninfo",
    "sync_judgements",
]

SCHEMA_VERSION = 2
"""The team schema this darkmap writes: 1 was the first (client-written author, the
workspace path in ``pushed_from``), 2 binds the author to the database role."""
ANALYST_ROLE = "darkmap_analyst"
"""Grant this role to each analyst's login role: read, add judgements, withdraw own."""
SUPERVISOR_ROLE = "darkmap_supervisor"
"""Grant this role to supervisors: an analyst who may also withdraw anyone's judgement."""
ID_CHARS = 1024
"""Longest judgement id, account id or author a shared judgement may have."""
NOTE_CHARS = 10_000
"""Longest note a shared judgement may have."""
_VERDICTS = ("same", "different", "unsure")
_MARKET_CHARS = 64
_PROBLEMS_KEPT = 20
_LOCK = 0x6461726B  # pg_advisory_xact_lock key of `team init`

# --- the server schema ------------------------------------------------------------------

# Version 1, exactly as first shipped: an upgrade starts from it, a new server too.
_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS team_judgements (
    judgement_id  TEXT PRIMARY KEY,
    a             TEXT NOT NULL,
    b             TEXT NOT NULL,
    verdict       TEXT NOT NULL CHECK (verdict IN ('same', 'different', 'unsure')),
    author        TEXT NOT NULL,
    note          TEXT,
    created_at    TIMESTAMP NOT NULL,
    withdrawn_at  TIMESTAMP,
    pushed_from   TEXT,
    pushed_at     TIMESTAMP NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')
);
CREATE INDEX IF NOT EXISTS team_judgements_pair ON team_judgements (a, b);
CREATE TABLE IF NOT EXISTS team_schema (version INTEGER NOT NULL);
"""

# Authors written before version 2 were whatever a client sent: kept, marked as claims.
_MARK_LEGACY = ("UPDATE team_judgements SET author = 'unverified:' || author "
                "WHERE author NOT LIKE 'unverified:%'")

# Version 2: every statement idempotent, so `init` on any server leaves the same schema.
_SCHEMA_V2 = f"""
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ANALYST_ROLE}') THEN
        BEGIN CREATE ROLE {ANALYST_ROLE} NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{SUPERVISOR_ROLE}') THEN
        BEGIN CREATE ROLE {SUPERVISOR_ROLE} NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END;
    END IF;
    IF NOT pg_has_role('{SUPERVISOR_ROLE}', '{ANALYST_ROLE}', 'MEMBER') THEN
        GRANT {ANALYST_ROLE} TO {SUPERVISOR_ROLE};
    END IF;
END $$;

ALTER TABLE team_judgements DROP COLUMN IF EXISTS pushed_from;
ALTER TABLE team_judgements ADD COLUMN IF NOT EXISTS withdrawn_by TEXT;
ALTER TABLE team_judgements ALTER COLUMN author SET DEFAULT session_user;
ALTER TABLE team_judgements DROP CONSTRAINT IF EXISTS team_judgements_shape;
ALTER TABLE team_judgements ADD CONSTRAINT team_judgements_shape CHECK (
    a COLLATE "C" < b COLLATE "C"
    AND length(judgement_id) <= {ID_CHARS} AND length(a) <= {ID_CHARS}
    AND length(b) <= {ID_CHARS} AND length(author) <= {ID_CHARS}
    AND (note IS NULL OR length(note) <= {NOTE_CHARS})) NOT VALID;

CREATE OR REPLACE FUNCTION team_judgements_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- the author is the database role, except for the workbench's service role,
        -- which signs users in itself and names the user it judges for
        IF NEW.author IS NULL OR NOT pg_has_role(session_user, '{SERVICE_ROLE}', 'MEMBER')
        THEN
            NEW.author := session_user;
        END IF;
        NEW.withdrawn_by := CASE WHEN NEW.withdrawn_at IS NULL THEN NULL ELSE session_user END;
        NEW.pushed_at := now() AT TIME ZONE 'UTC';
        RETURN NEW;
    END IF;
    IF ROW(NEW.judgement_id, NEW.a, NEW.b, NEW.verdict, NEW.author, NEW.note,
           NEW.created_at, NEW.pushed_at)
       IS DISTINCT FROM ROW(OLD.judgement_id, OLD.a, OLD.b, OLD.verdict, OLD.author,
                            OLD.note, OLD.created_at, OLD.pushed_at) THEN
        RAISE EXCEPTION 'team judgement % is immutable: only a withdrawal is recorded',
            OLD.judgement_id USING ERRCODE = '42501';
    END IF;
    IF OLD.withdrawn_at IS NOT NULL OR NEW.withdrawn_at IS NULL THEN
        RAISE EXCEPTION 'team judgement %: a withdrawal is recorded once, never undone',
            OLD.judgement_id USING ERRCODE = '42501';
    END IF;
    IF OLD.author <> session_user::text
       AND NOT pg_has_role(session_user, '{SUPERVISOR_ROLE}', 'MEMBER') THEN
        RAISE EXCEPTION 'team judgement % is by %: only its author or a supervisor '
            'may withdraw it', OLD.judgement_id, OLD.author USING ERRCODE = '42501';
    END IF;
    NEW.withdrawn_by := session_user;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS team_judgements_guard ON team_judgements;
CREATE TRIGGER team_judgements_guard BEFORE INSERT OR UPDATE ON team_judgements
    FOR EACH ROW EXECUTE FUNCTION team_judgements_guard();

ALTER TABLE team_judgements ENABLE ROW LEVEL SECURITY;
ALTER TABLE team_judgements FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS team_read ON team_judgements;
CREATE POLICY team_read ON team_judgements FOR SELECT USING (true);
DROP POLICY IF EXISTS team_add ON team_judgements;
CREATE POLICY team_add ON team_judgements FOR INSERT
    WITH CHECK (author = session_user::text
                OR pg_has_role(session_user, '{SERVICE_ROLE}', 'MEMBER'));
DROP POLICY IF EXISTS team_withdraw ON team_judgements;
CREATE POLICY team_withdraw ON team_judgements FOR UPDATE
    USING (author = session_user::text
           OR pg_has_role(session_user, '{SUPERVISOR_ROLE}', 'MEMBER'))
    WITH CHECK (true);

REVOKE ALL ON team_judgements, team_schema FROM PUBLIC;
REVOKE ALL ON team_judgements, team_schema FROM {ANALYST_ROLE};
GRANT SELECT ON team_judgements, team_schema TO {ANALYST_ROLE};
GRANT INSERT (judgement_id, a, b, verdict, note, created_at, withdrawn_at)
    ON team_judgements TO {ANALYST_ROLE};
GRANT UPDATE (withdrawn_at) ON team_judgements TO {ANALYST_ROLE};

DELETE FROM team_schema;
INSERT INTO team_schema VALUES ({SCHEMA_VERSION});
"""

# Roles other than darkmap's own (and the owner) holding privileges on the team table.
_DIRECT_GRANTS = f"""
SELECT DISTINCT r.rolname FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) g
JOIN pg_roles r ON r.oid = g.grantee
WHERE c.oid = 'team_judgements'::regclass AND g.grantee <> c.relowner
  AND r.rolname NOT IN ('{ANALYST_ROLE}', '{SUPERVISOR_ROLE}', '{SERVICE_ROLE}')
ORDER BY 1
"""

_SUSPENDED_JUDGE_NOT = f"""
DROP POLICY IF EXISTS team_read ON team_judgements;
CREATE POLICY team_read ON team_judgements FOR SELECT
    USING (NOT ops_suspended_me() OR pg_has_role(session_user, '{SERVICE_ROLE}', 'MEMBER'));
DROP POLICY IF EXISTS team_add ON team_judgements;
CREATE POLICY team_add ON team_judgements FOR INSERT
    WITH CHECK ((author = session_user::text AND NOT ops_suspended_me())
                OR pg_has_role(session_user, '{SERVICE_ROLE}', 'MEMBER'));
DROP POLICY IF EXISTS team_withdraw ON team_judgements;
CREATE POLICY team_withdraw ON team_judgements FOR UPDATE
    USING ((author = session_user::text
            OR pg_has_role(session_user, '{SUPERVISOR_ROLE}', 'MEMBER'))
           AND NOT ops_suspended_me())
    WITH CHECK (true);
"""
"""A suspended user (operational schema 11, :mod:`darkmap.store.ops_guards`) neither reads,
adds nor withdraws team judgements with their own login role (review of the suspension,
finding 3); installed after the operational guards, which define ``ops_suspended_me``."""

_SERVICE_JUDGES = (
    f"REVOKE ALL ON team_judgements FROM {SERVICE_ROLE}; "
    f"GRANT SELECT ON team_judgements TO {SERVICE_ROLE}; "
    "GRANT INSERT (judgement_id, a, b, verdict, author, note, created_at) "
    f"ON team_judgements TO {SERVICE_ROLE}")
"""The workbench judges for the user signed in to it (after the operational schema, which
makes the service role): it reads the team's judgements and adds new ones naming their
author, and may withdraw none."""

# Columns a client sends: never the author, nothing about its machine.
_PUSH_COLS = ("judgement_id", "a", "b", "verdict", "note", "created_at", "withdrawn_at")
_PUSH = (f"INSERT INTO team_judgements ({', '.join(_PUSH_COLS)}) "
         "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], "
         "%s::timestamp[], %s::timestamp[]) "
         "ON CONFLICT (judgement_id) DO NOTHING RETURNING judgement_id")
_WITHDRAW = ("UPDATE team_judgements t SET withdrawn_at = w.at "
             "FROM unnest(%s::text[], %s::timestamp[]) AS w(id, at) "
             "WHERE t.judgement_id = w.id AND t.withdrawn_at IS NULL")
# Text columns are cut on the server one past their cap: a huge value costs nothing here
# and still fails the check.
_PULL = (f"SELECT left(judgement_id::text, {ID_CHARS + 1}), left(a::text, {ID_CHARS + 1}), "
         f"left(b::text, {ID_CHARS + 1}), left(verdict::text, 64), "
         f"left(author::text, {ID_CHARS + 1}), left(note::text, {NOTE_CHARS + 1}), "
         "created_at, withdrawn_at FROM team_judgements")

# --- the workspace's own team tables ----------------------------------------------------

_LOCAL_SCHEMA = """
CREATE TABLE IF NOT EXISTS team_pulled (
    judgement_id  VARCHAR NOT NULL,
    pulled_at     TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS team_quarantine (
    row_sha256    VARCHAR NOT NULL,
    judgement_id  VARCHAR,
    reason        VARCHAR NOT NULL,
    first_seen    TIMESTAMP NOT NULL
);
"""


class TeamServerError(DarkmapError):
    """The team server cannot be reached or refused the operation."""


@dataclass
class SyncResult:
    """What one sync moved, and what it refused."""

    pushed: int
    """Judgements of this workspace new on the server."""
    pulled: int
    """Judgements of others new in this workspace."""
    withdrawals_pulled: int
    server_total: int
    role: str = ""
    """The database role the server recorded this workspace's judgements under."""
    withdrawals_pushed: int = 0
    withdrawals_refused: int = 0
    """Local withdrawals of someone else's judgement: only its author or a supervisor may."""
    quarantined: int = 0
    """Server rows that are not valid judgements: skipped, kept in ``team_quarantine``."""
    not_pushed: int = 0
    """Local judgements the server would refuse (a field over its cap)."""
    problems: list[str] = field(default_factory=list)
    """One line per quarantined row or unpushed judgement (the first 20)."""


@dataclass
class ServerInit:
    """What ``init`` found and left on the server."""

    version: int
    upgraded_from: int
    """0 for a new server, else the schema version found."""
    legacy_marked: int
    """Judgements from before version 2 whose author was prefixed ``unverified:``."""
    direct_grants: list[str]
    """Roles holding privileges on the team table directly, not through darkmap's roles."""
    ops_version: int = OPS_SCHEMA_VERSION
    """The operational tables' schema now (:data:`darkmap.store.operations.OPS_SCHEMA_VERSION`)."""
    ops_upgraded_from: int = 0
    """0 when the server had no operational tables, else the version found."""


def default_server() -> str | None:
    """``$DARKMAP_SERVER`` (a PostgreSQL URL), if set."""
    return os.environ.get("DARKMAP_SERVER")


# --- TLS --------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """True for a Unix socket (a path, ``@abstract``), ``localhost``, 127.0.0.0/8 and ::1."""
    host = host.strip()
    if not host or host.startswith(("/", "@")) or host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def secure_conninfo(dsn: str, environ: Mapping[str, str] | None = None) -> str:
    """The connection string to reach the team server at ``dsn``: unchanged on loopback,
    else with ``sslmode=verify-full`` (a weaker ``sslmode`` is refused).

    Where the connection goes is read as libpq would: ``host`` and ``hostaddr`` (every
    entry of a list) or ``$PGHOST`` / ``$PGHOSTADDR``; a service name hides the host, so
    it counts as off loopback. Raises :class:`TeamServerError` without connecting.
    """
    env = os.environ if environ is None else environ
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error as exc:
        raise TeamServerError(f"the team server address is not a PostgreSQL URL: "
                              f"{_first_line(exc)}") from exc
    targets = [h for key, var in (("host", "PGHOST"), ("hostaddr", "PGHOSTADDR"))
               for h in str(params.get(key) or env.get(var) or "").split(",") if h.strip()]
    service = params.get("service") or env.get("PGSERVICE")
    remote = [h for h in targets if not is_loopback(h)]
    if not remote and not service:
        return dsn
    where = for_display(remote[0] if remote else f"service {service}", max_chars=80)
    mode = str(params.get("sslmode") or "verify-full")
    if mode != "verify-full":
        raise TeamServerError(
            f"team server {where}: sslmode={for_display(mode, max_chars=20)} is refused off "
            "loopback; use sslmode=verify-full (and sslrootcert=<your CA> if needed)")
    return make_conninfo(dsn, sslmode="verify-full")


# --- the connection ---------------------------------------------------------------------


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


def _connect(dsn: str) -> psycopg.Connection[Any]:
    conninfo = secure_conninfo(dsn)
    try:
        return psycopg.connect(conninfo, connect_timeout=10)
    except psycopg.Error as exc:
        raise TeamServerError(f"cannot reach team server: {_first_line(exc)}") from exc


def _server_version(pg: psycopg.Connection[Any]) -> int:
    """The team schema version on the server: 0 none, 1 the first (no version table)."""
    row = pg.execute("SELECT to_regclass('team_schema') IS NOT NULL, "
                     "to_regclass('team_judgements') IS NOT NULL").fetchone()
    has_version, has_table = (bool(row[0]), bool(row[1])) if row else (False, False)
    if has_version:
        got = pg.execute("SELECT max(version) FROM team_schema").fetchone()
        if got and got[0] is not None:
            return int(got[0])
    return 1 if has_table else 0


def _ops_version(pg: psycopg.Connection[Any]) -> int:
    """The operational tables' schema version on the server, 0 when it has none."""
    row = pg.execute("SELECT to_regclass('ops_schema') IS NOT NULL").fetchone()
    if not (row and row[0]):
        return 0
    got = pg.execute("SELECT max(version) FROM ops_schema").fetchone()
    return int(got[0]) if got and got[0] is not None else 0


def init_server(dsn: str) -> ServerInit:
    """Create the team schema on the server, or upgrade an older one in place.

    Idempotent and safe to run concurrently (one transaction under an advisory lock). Needs
    a role that owns the team table (or may create it) and may create roles.
    """
    try:
        with _connect(dsn) as pg:
            pg.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK])
            before = _server_version(pg)
            if before > SCHEMA_VERSION:
                raise TeamServerError(_newer(before))
            ops_before = _ops_version(pg)
            pg.execute(_SCHEMA_V1)
            marked = 0
            if 0 < before < 2:
                marked = pg.execute(_MARK_LEGACY).rowcount
            pg.execute(_SCHEMA_V2)
            install_server_schema(pg)
            ops_guards.install(pg)
            pg.execute(_SUSPENDED_JUDGE_NOT)
            install_server_audit(pg)
            install_server_web(pg)
            pg.execute(_SERVICE_JUDGES)
            grants = [r[0] for r in pg.execute(_DIRECT_GRANTS).fetchall()]
    except psycopg.Error as exc:
        raise TeamServerError(f"team server refused init: {_first_line(exc)}") from exc
    return ServerInit(version=SCHEMA_VERSION, upgraded_from=before, legacy_marked=marked,
                      direct_grants=grants, ops_upgraded_from=ops_before)


def open_ops_server(dsn: str, workspace: Workspace | None = None) -> OpsServer:
    """The team server's operational tables, for :mod:`darkmap.ops` in the place of a
    workspace (``workspace`` supplies the reference data: listings, personas). The
    connection's database role is the acting user (see :func:`darkmap.ops.access.acting`).
    Refused, with a line asking for ``darkmap team init``, when the server lacks them."""
    pg = _connect(dsn)
    pg.autocommit = True
    try:
        row = pg.execute("SELECT to_regclass('ops_schema') IS NOT NULL").fetchone()
        version = 0
        if row and row[0]:
            got = pg.execute("SELECT max(version) FROM ops_schema").fetchone()
            version = int(got[0]) if got and got[0] is not None else 0
    except psycopg.Error as exc:
        pg.close()
        raise TeamServerError(f"team server refused the connection: {_first_line(exc)}") \
            from exc
    if version != OPS_SCHEMA_VERSION:
        pg.close()
        raise TeamServerError(f"the team server has operational schema {version}; this "
                              f"darkmap needs {OPS_SCHEMA_VERSION}: an administrator runs "
                              "`darkmap team init` on it")
    return OpsServer(PgOps(pg, workspace.con if workspace is not None else None), workspace)


def open_web_server(dsn: str, workspace: Workspace | None = None) -> OpsServer:
    """The team server for a workbench process (:func:`open_ops_server`), checked: the
    workbench's tables are installed (else a line asking for ``darkmap team init``) and
    the login role is a member of ``darkmap_ops_service`` (the workbench authenticates
    its users itself and acts for them; an analyst's own role may not)."""
    ops = open_ops_server(dsn, workspace)
    try:
        row = ops.con.execute(
            "SELECT to_regclass('web_sessions') IS NOT NULL, session_user::text, "
            f"pg_has_role(session_user, '{SERVICE_ROLE}', 'MEMBER')").fetchone()
    except psycopg.Error as exc:
        ops.close()
        raise TeamServerError(f"team server refused the connection: {_first_line(exc)}") \
            from exc
    if not row or not row[0]:
        ops.close()
        raise TeamServerError("the team server has no workbench tables: an administrator "
                              "runs `darkmap team init` on it")
    if not row[2]:
        ops.close()
        raise TeamServerError(f"role {for_display(row[1], max_chars=60)!r} is not a member of "
                              f"{SERVICE_ROLE}: the workbench needs a login role of its own "
                              f"(GRANT {SERVICE_ROLE} TO <role>; docs/workbench.md)")
    return ops


def _newer(version: int) -> str:
    return (f"the team server's schema is version {version}, newer than this darkmap's "
            f"({SCHEMA_VERSION}): upgrade darkmap")


# --- rows -------------------------------------------------------------------------------


def _quote(value: object, max_chars: int = 40) -> str:
    """``value`` in quotes, safe to print (control and bidi characters escaped, cut)."""
    return f"'{for_display(value, max_chars=max_chars)}'"


def _text_problem(name: str, value: object, cap: int) -> str | None:
    if value is None:
        return f"{name} is NULL"
    if not isinstance(value, str):
        return f"{name} is a {type(value).__name__}, not text"
    if not value.strip():
        return f"{name} is empty"
    if len(value) > cap:
        return f"{name} has over {cap:,} characters"
    return None


def _account_problem(name: str, value: object) -> str | None:
    bad = _text_problem(name, value, ID_CHARS)
    if bad or not isinstance(value, str):
        return bad
    market, sep, handle = value.partition(":")
    if not sep or not market or not handle or len(market) > _MARKET_CHARS \
            or any(c.isspace() for c in market):
        return f"{name} {_quote(value)} is not an account id (market:handle)"
    return None


def _time_problem(name: str, value: object, nullable: bool) -> str | None:
    if value is None:
        return None if nullable else f"{name} is NULL"
    if not isinstance(value, datetime) or value.tzinfo is not None:
        return f"{name} is not a timestamp"
    return None


def push_judgement_for(con: PgOps, row: Sequence[object]) -> bool:
    """Add one judgement (``JUDGEMENT_COLUMNS`` order) to the team server on behalf of
    the user it names as author: only the workbench's service role may (the server keeps
    any other role's own name). Refused with :class:`TeamServerError` when the row cannot
    be shared (:func:`check_row`). True when it was new."""
    problem = check_row(row)
    if problem is not None:
        raise TeamServerError(f"judgement not shared: {problem}")
    jid, a, b, verdict, author, note, created_at, _ = row
    cur = con.pg.execute(
        "INSERT INTO team_judgements (judgement_id, a, b, verdict, author, note, created_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (judgement_id) DO NOTHING "
        "RETURNING author", [jid, a, b, verdict, author, note, created_at])
    got = cur.fetchone()
    if got is not None and got[0] != author:
        raise TeamServerError(f"the team server recorded the judgement as {got[0]!r}, not "
                              f"{author!r}: connect as the workbench's service role")
    return got is not None


def team_judgements(con: PgOps) -> list[tuple[Any, ...]]:
    """Every judgement on the team server (``JUDGEMENT_COLUMNS`` order) that
    :func:`check_row` accepts: what a sync would take (it quarantines the rest)."""
    rows = con.pg.execute(_PULL).fetchall()
    return [tuple(r) for r in rows if check_row(r) is None]


def check_row(row: Sequence[object]) -> str | None:
    """Why a judgement (a tuple in ``JUDGEMENT_COLUMNS`` order) cannot be shared, or None.

    >>> from datetime import datetime
    >>> ok = ("j1", "dream:a", "hansa:b", "same", "alice", None, datetime(2024, 1, 1), None)
    >>> check_row(ok) is None
    True
    >>> check_row(ok[:3] + ("maybe",) + ok[4:])
    "verdict 'maybe' is not one of same, different, unsure"
    >>> check_row(ok[:1] + ("dream",) + ok[2:])
    "a 'dream' is not an account id (market:handle)"
    """
    if len(row) != len(JUDGEMENT_COLUMNS):
        return f"{len(row)} columns, not {len(JUDGEMENT_COLUMNS)}"
    jid, a, b, verdict, author, note, created_at, withdrawn_at = row
    problem = (_text_problem("judgement_id", jid, ID_CHARS)
               or _account_problem("a", a) or _account_problem("b", b)
               or _text_problem("author", author, ID_CHARS)
               or _time_problem("created_at", created_at, nullable=False)
               or _time_problem("withdrawn_at", withdrawn_at, nullable=True))
    if problem:
        return problem
    if verdict not in _VERDICTS:
        shown = "NULL" if verdict is None else _quote(verdict, 20)
        return f"verdict {shown} is not one of {', '.join(_VERDICTS)}"
    if not str(a) < str(b):
        return "a and b are not two accounts in order (a < b)"
    if note is not None and not isinstance(note, str):
        return f"note is a {type(note).__name__}, not text"
    if isinstance(note, str) and len(note) > NOTE_CHARS:
        return f"note has over {NOTE_CHARS:,} characters"
    return None


def _row_sha(row: Sequence[object]) -> str:
    h = hashlib.sha256()
    for v in row:
        h.update(repr(v).encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    return h.hexdigest()


def _where(jid: object) -> str:
    return _quote(jid) if isinstance(jid, str) else "with no id"


# --- sync -------------------------------------------------------------------------------


@dataclass
class _Pull:
    """The server's rows, split into valid ones and quarantined ones."""

    valid: list[tuple[Any, ...]]
    bad: list[tuple[str, object, str]]  # (row sha256, judgement_id, reason)
    total: int


def _push(pg: psycopg.Connection[Any], own: list[tuple[Any, ...]],
          withdrawals: list[tuple[str, datetime]]) -> tuple[int, int]:
    """Add ``own`` judgements (those the server lacks) and stamp ``withdrawals``; return
    how many of each the server took."""
    pushed = withdrawn = 0
    with pg.cursor() as cur:
        if own:
            columns = [[r[JUDGEMENT_COLUMNS.index(c)] for r in own] for c in _PUSH_COLS]
            cur.execute(_PUSH, columns)
            pushed = len(cur.fetchall())
        if withdrawals:
            cur.execute(_WITHDRAW, [[w[0] for w in withdrawals], [w[1] for w in withdrawals]])
            withdrawn = cur.rowcount
    return pushed, withdrawn


def _pull(pg: psycopg.Connection[Any]) -> _Pull:
    """Every row of the server, each checked; streamed so a large table is not held twice."""
    out = _Pull([], [], 0)
    seen: set[object] = set()
    with pg.cursor(name="darkmap_team_pull") as cur:
        cur.itersize = 2000
        cur.execute(_PULL)
        for row in cur:
            out.total += 1
            reason = check_row(row)
            if reason is None and row[0] in seen:
                reason = "the judgement id appears twice"
            if reason is None:
                seen.add(row[0])
                out.valid.append(tuple(row))
            else:
                out.bad.append((_row_sha(row), row[0], f"server row {_where(row[0])}: {reason}"))
    return out


def _record_locally(con: duckdb.DuckDBPyConnection, pulled: list[str],
                    bad: list[tuple[str, object, str]]) -> None:
    """Note which judgements came from the server, and quarantine the invalid rows (once
    each: a row seen again is not recorded twice)."""
    con.execute(_LOCAL_SCHEMA)
    now = utcnow()
    if pulled:
        con.executemany("INSERT INTO team_pulled VALUES (?, ?)", [[j, now] for j in pulled])
    known = {r[0] for r in con.execute("SELECT row_sha256 FROM team_quarantine").fetchall()}
    fresh = {sha: (jid, reason) for sha, jid, reason in bad if sha not in known}
    if fresh:
        con.executemany(
            "INSERT INTO team_quarantine VALUES (?, ?, ?, ?)",
            [[sha, jid[:ID_CHARS] if isinstance(jid, str) else None, reason, now]
             for sha, (jid, reason) in fresh.items()])


def _pulled_ids(con: duckdb.DuckDBPyConnection) -> set[str]:
    if not table_exists(con, "team_pulled"):
        return set()
    return {r[0] for r in con.execute("SELECT judgement_id FROM team_pulled").fetchall()}


def _check_server(pg: psycopg.Connection[Any]) -> str:
    """The role this connection authenticated as; the schema must be this darkmap's."""
    version = _server_version(pg)
    if version > SCHEMA_VERSION:
        raise TeamServerError(_newer(version))
    if version < SCHEMA_VERSION:
        state = "has no team schema" if version == 0 else f"has team schema {version}"
        raise TeamServerError(f"the team server {state}; this darkmap needs {SCHEMA_VERSION}: "
                              "an administrator runs `darkmap team init` on it")
    row = pg.execute("SELECT session_user::text").fetchone()
    return str(row[0]) if row else ""


def sync_judgements(ws: Workspace, dsn: str) -> SyncResult:
    """Push this workspace's judgements to the server, then pull everyone's.

    Only judgements made in this workspace are added (never ones pulled from the server,
    which would make this analyst their author); withdrawals are sent for any judgement
    and the server keeps those it allows. Invalid server rows are skipped and quarantined.
    """
    if not table_exists(ws.con, "judgements"):
        raise TeamServerError("this workspace has no judgements table (run `darkmap link`)")
    local = all_judgements(ws.con)
    from_server = _pulled_ids(ws.con)
    problems: list[str] = []
    own: list[tuple[Any, ...]] = []
    for row in local:
        if row[0] in from_server:
            continue
        reason = check_row(row)
        if reason is None:
            own.append(row)
        else:
            problems.append(f"judgement {_where(row[0])} not pushed: {reason}")
    not_pushed = len(problems)
    withdrawals = [(r[0], r[7]) for r in local if r[7] is not None]
    try:
        with _connect(dsn) as pg:
            role = _check_server(pg)
            pushed, withdrawals_pushed = _push(pg, own, withdrawals)
            remote = _pull(pg)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise TeamServerError(f"team server refused the sync: {_first_line(exc)} (an "
                              f"administrator grants {ANALYST_ROLE} to your role)") from exc
    except psycopg.Error as exc:
        raise TeamServerError(f"team server refused the sync: {_first_line(exc)}") from exc
    known = {r[0]: r[7] for r in local}
    new = [r for r in remote.valid if r[0] not in known]
    withdrawn = [r for r in remote.valid
                 if r[0] in known and r[7] is not None and known[r[0]] is None]
    on_server = {r[0]: r[7] for r in remote.valid}
    refused = sum(1 for jid, _ in withdrawals if jid in on_server and on_server[jid] is None)
    _record_locally(ws.con, [r[0] for r in new], remote.bad)
    apply_shared_judgements(ws.con, new, [(r[0], r[7]) for r in withdrawn])
    problems += [reason for _, _, reason in remote.bad]
    return SyncResult(pushed=pushed, pulled=len(new), withdrawals_pulled=len(withdrawn),
                      server_total=remote.total, role=role,
                      withdrawals_pushed=withdrawals_pushed, withdrawals_refused=refused,
                      quarantined=len(remote.bad), not_pushed=not_pushed,
                      problems=problems[:_PROBLEMS_KEPT])
