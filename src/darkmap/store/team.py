"""A team server on PostgreSQL: analysts on several workspaces share their judgements.

Each analyst keeps an embedded workspace; ``sync`` pushes the workspace's judgements to
the shared server and pulls everyone else's. Judgements are immutable events keyed by
``judgement_id``; a withdrawal only ever sets ``withdrawn_at``, so syncing in any order,
any number of times, converges to the same state everywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import psycopg

from darkmap.errors import DarkmapError
from darkmap.store.personas import JUDGEMENT_COLUMNS, all_judgements, apply_shared_judgements
from darkmap.store.workspace import Workspace, table_exists

__all__ = ["SyncResult", "TeamServerError", "default_server", "init_server", "sync_judgements"]

_SCHEMA = """
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
"""

_COLS = JUDGEMENT_COLUMNS


class TeamServerError(DarkmapError):
    """The team server cannot be reached or refused the operation."""


@dataclass
class SyncResult:
    """What one sync moved."""

    pushed: int
    pulled: int
    withdrawals_pulled: int
    server_total: int


def default_server() -> str | None:
    """``$DARKMAP_SERVER`` (a PostgreSQL URL), if set."""
    return os.environ.get("DARKMAP_SERVER")


def _connect(dsn: str) -> psycopg.Connection:
    try:
        return psycopg.connect(dsn, connect_timeout=10)
    except psycopg.Error as exc:
        raise TeamServerError(f"cannot reach team server: {exc}".strip()) from exc


def init_server(dsn: str) -> None:
    """Create the team tables on the server (idempotent)."""
    with _connect(dsn) as pg:
        pg.execute(_SCHEMA)


def sync_judgements(ws: Workspace, dsn: str) -> SyncResult:
    """Push this workspace's judgements to the server, then pull everyone's."""
    if not table_exists(ws.con, "judgements"):
        raise TeamServerError("this workspace has no judgements table (run `darkmap link`)")
    local = all_judgements(ws.con)
    with _connect(dsn) as pg:
        pg.execute(_SCHEMA)
        with pg.cursor() as cur:
            cur.executemany(
                f"INSERT INTO team_judgements ({', '.join(_COLS)}, pushed_from) "
                f"VALUES ({', '.join(['%s'] * len(_COLS))}, %s) "
                "ON CONFLICT (judgement_id) DO UPDATE SET withdrawn_at = "
                "COALESCE(team_judgements.withdrawn_at, EXCLUDED.withdrawn_at)",
                [(*row, str(ws.path)) for row in local])
        remote = pg.execute(f"SELECT {', '.join(_COLS)} FROM team_judgements").fetchall()
    known = {r[0]: r[7] for r in local}
    new = [r for r in remote if r[0] not in known]
    withdrawn = [r for r in remote if r[0] in known and r[7] is not None and known[r[0]] is None]
    apply_shared_judgements(ws.con, new, [(r[0], r[7]) for r in withdrawn])
    return SyncResult(pushed=len(local), pulled=len(new), withdrawals_pulled=len(withdrawn),
                      server_total=len(remote))
