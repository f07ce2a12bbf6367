"""The link tables: personas, their members, account links, link runs, what each run
changed, and judgements.

This module is the only one that writes ``personas``, ``persona_members``,
``account_links``, ``link_runs``, ``persona_changes`` and ``judgements`` (``darkmap
link`` and ``darkmap judge``), and it holds the SQL that reads them back.

Which persona each account belongs to: every account is its own persona by default.
Personas are built by ``darkmap link``. When those tables are missing or empty, or an
account is not a member of any persona, the account stands alone and its persona id is
its account id (:func:`persona_map`).

The Arrow writer (numpy, pyarrow) is imported by the one function that stores a link
run: ``darkmap persona show`` and ``darkmap judge`` read and write without it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb

from darkmap.store.workspace import table_exists, table_has_rows

__all__ = [
    "CHANGE_COLUMNS", "LINK_COLUMNS", "MEMBER_COLUMNS", "PERSONA_COLUMNS", "JudgementRow",
    "LinkRow", "LinkTables", "MemberRow", "PersonaHead", "PersonaHitRow", "PreviousRun",
    "JUDGEMENT_COLUMNS", "active_judgements", "all_judgements", "apply_shared_judgements",
    "finish_link_run", "insert_judgement", "judgements_since", "judgements_touching",
    "link_scores", "links_between", "links_left_apart", "member_accounts", "persona_changes",
    "persona_head", "persona_id_of", "persona_labels", "persona_map",
    "persona_rows_with_handles", "last_run_id", "previous_run", "run_options",
    "search_persona_rows", "store_link_run", "withdraw_judgements",
]

PersonaHitRow = tuple[str, str | None, int, int | None, str, str, str | None]
"""``(persona_id, label, n_accounts, n_markets, account_id, matched, value)``."""


# --- persona of an account ----------------------------------------------------------


def persona_map(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """account_id -> persona_id for every account in the store."""
    accounts = [r[0] for r in con.execute("SELECT account_id FROM accounts").fetchall()]
    accounts += [r[0] for r in con.execute(
        "SELECT DISTINCT account_id FROM listing_observations WHERE account_id IS NOT NULL"
    ).fetchall()]
    out = {a: a for a in accounts}
    if table_has_rows(con, "persona_members"):
        for pid, aid in con.execute(
                "SELECT persona_id, account_id FROM persona_members").fetchall():
            out[aid] = pid
    return out


def persona_labels(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """persona_id -> label (the personas table's label, else the account handle)."""
    out: dict[str, str] = dict(con.execute(
        "SELECT account_id, handle FROM accounts").fetchall())
    if table_has_rows(con, "personas"):
        for pid, label in con.execute("SELECT persona_id, label FROM personas").fetchall():
            if label:
                out[pid] = label
    return out


def persona_id_of(con: duckdb.DuckDBPyConnection, ref: str) -> str | None:
    """The persona id for a persona id or a member account id (``ref`` as given, or
    case-folded when it looks like an account id), or None (also before the link
    tables exist: a workspace opened read-only is not migrated)."""
    if not table_exists(con, "personas"):
        return None
    row = con.execute("SELECT persona_id FROM personas WHERE persona_id = ?",
                      [ref]).fetchone()
    if row:
        return str(row[0])
    row = con.execute("SELECT persona_id FROM persona_members WHERE account_id = ?",
                      [ref.strip().casefold() if ":" in ref else ref]).fetchone()
    return str(row[0]) if row else None


# --- one persona --------------------------------------------------------------------


@dataclass(frozen=True)
class PersonaHead:
    """A row of ``personas``."""

    persona_id: str
    label: str | None
    n_accounts: int
    n_markets: int | None
    first_seen: datetime | None
    last_seen: datetime | None
    cohesion: float | None
    run_id: str | None


@dataclass(frozen=True)
class MemberRow:
    """A member account of a persona with its activity window and listing count."""

    account_id: str
    market_id: str
    handle: str | None
    role: str | None
    active_from: datetime | None
    active_to: datetime | None
    listings: int


@dataclass(frozen=True)
class LinkRow:
    """A row of ``account_links`` (``signals`` as stored: JSON text, or already parsed)."""

    a: str
    b: str
    score: float
    signals: str | dict[str, Any]
    method: str
    merged: bool | None


@dataclass(frozen=True)
class JudgementRow:
    """A standing row of ``judgements``."""

    a: str
    b: str
    verdict: str
    author: str
    note: str | None
    created_at: datetime
    judgement_id: str = ""


def persona_head(con: duckdb.DuckDBPyConnection, persona_id: str) -> PersonaHead | None:
    """The ``personas`` row of ``persona_id``, or None."""
    row = con.execute(
        "SELECT persona_id, label, n_accounts, n_markets, first_seen, last_seen, cohesion,"
        " run_id FROM personas WHERE persona_id = ?", [persona_id]).fetchone()
    return PersonaHead(*row) if row else None


def member_accounts(con: duckdb.DuckDBPyConnection, persona_id: str) -> list[MemberRow]:
    """The member accounts of ``persona_id`` by market and handle, each with the first
    and last time of any evidence and its number of listings."""
    rows = con.execute("""
        SELECT a.account_id, a.market_id, a.handle, a.role,
               (SELECT min(t) FROM (SELECT joined_at t FROM account_observations o
                    WHERE o.account_id = a.account_id UNION ALL
                    SELECT observed_at FROM listing_observations l
                    WHERE l.account_id = a.account_id UNION ALL
                    SELECT left_at FROM feedback f WHERE f.account_id = a.account_id)),
               (SELECT max(t) FROM (SELECT last_seen_at t FROM account_observations o
                    WHERE o.account_id = a.account_id UNION ALL
                    SELECT observed_at FROM listing_observations l
                    WHERE l.account_id = a.account_id UNION ALL
                    SELECT left_at FROM feedback f WHERE f.account_id = a.account_id)),
               (SELECT count(*) FROM listings l WHERE l.account_id = a.account_id)
        FROM persona_members m JOIN accounts a USING (account_id)
        WHERE m.persona_id = ? ORDER BY a.market_id, a.handle""", [persona_id]).fetchall()
    return [MemberRow(*r) for r in rows]


def links_between(con: duckdb.DuckDBPyConnection, account_ids: list[str]) -> list[LinkRow]:
    """Stored links with both ends in ``account_ids``, highest score first (equal
    scores by their ends: a sort keeps no order among ties)."""
    rows = con.execute("""
        SELECT a, b, score, signals, method, merged FROM account_links
        WHERE a IN (SELECT unnest(?::VARCHAR[])) AND b IN (SELECT unnest(?::VARCHAR[]))
        ORDER BY score DESC, a, b""", [account_ids, account_ids]).fetchall()
    return [LinkRow(*r) for r in rows]


def links_left_apart(con: duckdb.DuckDBPyConnection, account_ids: list[str],
                     min_score: float) -> list[LinkRow]:
    """Stored links from an account in ``account_ids`` to one outside it that score at
    least ``min_score`` and were not merged, highest score first."""
    rows = con.execute("""
        SELECT a, b, score, signals, method, merged FROM account_links
        WHERE (a IN (SELECT unnest(?::VARCHAR[])))
              <> (b IN (SELECT unnest(?::VARCHAR[])))
          AND score >= ? AND NOT coalesce(merged, false)
        ORDER BY score DESC, a, b""", [account_ids, account_ids, min_score]).fetchall()
    return [LinkRow(*r) for r in rows]


def link_scores(con: duckdb.DuckDBPyConnection) -> tuple[list[str], list[str],
                                                         list[float], list[bool]]:
    """Every stored candidate pair: (a, b, score, merged), ordered by (a, b)."""
    rows = con.execute("SELECT a, b, score, coalesce(merged, false) FROM account_links "
                       "ORDER BY a, b").fetchall()
    return ([str(r[0]) for r in rows], [str(r[1]) for r in rows],
            [float(r[2]) for r in rows], [bool(r[3]) for r in rows])


def judgements_touching(con: duckdb.DuckDBPyConnection,
                        account_ids: list[str]) -> list[JudgementRow]:
    """Standing judgements with either end in ``account_ids``, oldest first."""
    rows = con.execute("""
        SELECT a, b, verdict, author, note, created_at, judgement_id FROM judgements
        WHERE withdrawn_at IS NULL AND (a IN (SELECT unnest(?::VARCHAR[]))
              OR b IN (SELECT unnest(?::VARCHAR[]))) ORDER BY created_at""",
        [account_ids, account_ids]).fetchall()
    return [JudgementRow(*r) for r in rows]


# --- search -------------------------------------------------------------------------


def search_persona_rows(con: duckdb.DuckDBPyConnection, handle_part: str, account_id: str,
                        identifier_part: str, limit: int) -> list[PersonaHitRow]:
    """Personas of accounts whose handle contains ``handle_part`` or whose id is
    ``account_id``, or that hold an identifier whose value without spaces contains
    ``identifier_part``, both compared in lower case, lowered by the database on both
    sides (a fold in Python, ``ß`` to ``ss``, matched what the data's ``lower()`` never
    gives) and as literal text (``%`` and ``_`` are no wildcards: ``%`` matched every
    handle); largest personas first, at most ``limit`` rows (none before the link
    tables exist)."""
    if not table_exists(con, "personas"):
        return []
    return con.execute("""
        WITH hits AS (
          SELECT account_id, 'handle' AS matched, handle AS value FROM accounts
            WHERE contains(lower(handle), lower(?)) OR account_id = ?
          UNION ALL
          SELECT coalesce(i.account_id, l.account_id), i.kind, i.value
            FROM identifiers i LEFT JOIN listings l ON i.listing_id = l.listing_id
            WHERE contains(lower(replace(i.value, ' ', '')), lower(?))
        )
        SELECT m.persona_id, p.label, p.n_accounts, p.n_markets, h.account_id, h.matched,
               h.value
        FROM hits h JOIN persona_members m USING (account_id)
        JOIN personas p USING (persona_id)
        WHERE h.account_id IS NOT NULL
        ORDER BY p.n_accounts DESC, m.persona_id, h.account_id, h.matched, h.value LIMIT ?""",
        [handle_part, account_id, identifier_part, limit]).fetchall()


def persona_rows_with_handles(con: duckdb.DuckDBPyConnection
                              ) -> list[tuple[str, str | None, int, int | None, str, str]]:
    """``(persona_id, label, n_accounts, n_markets, account_id, handle)`` of every
    member account, largest personas first as :func:`search_persona_rows` (none before
    the link tables exist)."""
    if not table_exists(con, "personas"):
        return []
    return con.execute(
        "SELECT m.persona_id, p.label, p.n_accounts, p.n_markets, a.account_id, a.handle"
        " FROM accounts a JOIN persona_members m USING (account_id)"
        " JOIN personas p USING (persona_id)"
        " ORDER BY p.n_accounts DESC, m.persona_id, a.account_id").fetchall()


# --- judgements ---------------------------------------------------------------------


def insert_judgement(con: duckdb.DuckDBPyConnection, judgement_id: str, a: str, b: str,
                     verdict: str, author: str, note: str | None,
                     created_at: datetime) -> None:
    """Store a standing judgement on the pair ``a < b``."""
    con.execute("INSERT INTO judgements VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                [judgement_id, a, b, verdict, author, note, created_at])


def withdraw_judgements(con: duckdb.DuckDBPyConnection, a: str, b: str,
                        at: datetime) -> int:
    """Stamp ``withdrawn_at`` on every standing judgement of the pair; return how many."""
    row = con.execute(
        "SELECT count(*) FROM judgements WHERE a = ? AND b = ? AND withdrawn_at IS NULL",
        [a, b]).fetchone()
    con.execute(
        "UPDATE judgements SET withdrawn_at = ? WHERE a = ? AND b = ? AND withdrawn_at IS NULL",
        [at, a, b])
    return int(row[0]) if row else 0


def active_judgements(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], str]:
    """The latest standing verdict of every judged pair."""
    rows = con.execute(
        """SELECT a, b, arg_max(verdict, created_at) FROM judgements
           WHERE withdrawn_at IS NULL GROUP BY a, b""").fetchall()
    return {(a, b): v for a, b, v in rows}


JUDGEMENT_COLUMNS = ("judgement_id", "a", "b", "verdict", "author", "note", "created_at",
                     "withdrawn_at")


def all_judgements(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    """Every judgement, withdrawn or not, as tuples in ``JUDGEMENT_COLUMNS`` order."""
    return con.execute(f"SELECT {', '.join(JUDGEMENT_COLUMNS)} FROM judgements").fetchall()


def apply_shared_judgements(con: duckdb.DuckDBPyConnection, new: list[tuple[Any, ...]],
                            withdrawn: list[tuple[str, datetime]]) -> None:
    """Add judgements made elsewhere (``JUDGEMENT_COLUMNS`` tuples) and stamp
    ``(judgement_id, withdrawn_at)`` withdrawals, in one transaction."""
    con.execute("BEGIN TRANSACTION")
    try:
        if new:
            con.executemany(
                f"INSERT INTO judgements ({', '.join(JUDGEMENT_COLUMNS)}) VALUES "
                f"({', '.join(['?'] * len(JUDGEMENT_COLUMNS))})", [list(r) for r in new])
        for judgement_id, at in withdrawn:
            con.execute("UPDATE judgements SET withdrawn_at = ? WHERE judgement_id = ?",
                        [at, judgement_id])
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


# --- a link run ---------------------------------------------------------------------

PERSONA_COLUMNS = ("persona_id", "label", "n_accounts", "n_markets", "first_seen",
                   "last_seen", "cohesion", "run_id", "created_at")
CHANGE_COLUMNS = ("run_id", "persona_id", "side", "kind", "change")
MEMBER_COLUMNS = ("persona_id", "account_id")
LINK_COLUMNS = ("a", "b", "score", "signals", "method", "merged", "run_id", "created_at")


@dataclass
class LinkTables:
    """The rows of one link run, as tuples in the column order of ``PERSONA_COLUMNS``,
    ``MEMBER_COLUMNS`` and ``LINK_COLUMNS``."""

    personas: list[tuple[Any, ...]]
    members: list[tuple[Any, ...]]
    links: list[tuple[Any, ...]]
    changes: list[tuple[Any, ...]] = field(default_factory=list)
    """What the run changed, as ``CHANGE_COLUMNS`` tuples (kept beside the earlier
    runs' changes)."""


_LINK_TABLES = {"personas": "DROP TABLE personas",
                "persona_members": "DROP TABLE persona_members",
                "account_links": "DROP TABLE account_links"}
"""A link run's own tables, each with its drop statement (by name, never a table named
at run time)."""


def _empty_link_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Empty the link run's tables inside the caller's transaction by dropping and
    creating them again from their own definitions (DuckDB's ``duckdb_tables().sql``).

    A ``DELETE`` of every row maintains the primary-key indexes row by row and the
    commit then writes the deletions: replacing the 230,000 rows of a 100,000-account
    link run took 17-20 s that way, against 2-3 s for a drop and create. The schema is
    the same afterwards: keys and constraints, and any index on them (dropped with its
    table, created again from its own definition)."""
    where = ("WHERE database_name = current_database() AND schema_name = current_schema()"
             " AND list_contains(?, table_name)")
    tables = list(_LINK_TABLES)
    ddl = dict(con.execute(f"SELECT table_name, sql FROM duckdb_tables() {where}",
                           [tables]).fetchall())
    indexes = [r[0] for r in con.execute(
        f"SELECT sql FROM duckdb_indexes() {where} AND sql IS NOT NULL ORDER BY index_name",
        [tables]).fetchall()]
    for table, drop in _LINK_TABLES.items():
        con.execute(drop)
        con.execute(ddl[table])
    for sql in indexes:
        con.execute(sql)


def store_link_run(con: duckdb.DuckDBPyConnection, run_id: str, started_at: datetime,
                   args_json: str, rows: LinkTables) -> None:
    """Record the run and replace personas, members and links with ``rows``, in one
    transaction."""
    from darkmap.store.writer import insert_rows  # noqa: PLC0415 - see the module docstring

    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("INSERT INTO link_runs (run_id, started_at, args) VALUES (?, ?, ?)",
                    [run_id, started_at, args_json])
        _empty_link_tables(con)
        insert_rows(con, "personas", PERSONA_COLUMNS, rows.personas)
        insert_rows(con, "persona_members", MEMBER_COLUMNS, rows.members)
        insert_rows(con, "account_links", LINK_COLUMNS, rows.links)
        if rows.changes:
            con.executemany("INSERT INTO persona_changes VALUES (?, ?, ?, ?, ?)",
                            [list(r) for r in rows.changes])
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def finish_link_run(con: duckdb.DuckDBPyConnection, run_id: str, finished_at: datetime,
                    summary_json: str) -> None:
    """Stamp the run's end and store its summary."""
    con.execute("UPDATE link_runs SET finished_at = ?, summary = ? WHERE run_id = ?",
                [finished_at, summary_json, run_id])


@dataclass(frozen=True)
class PreviousRun:
    """The link run whose personas the workspace holds: its id, when it started, and
    account id -> persona id of every member."""

    run_id: str
    started_at: datetime | None
    membership: dict[str, str]


def previous_run(con: duckdb.DuckDBPyConnection) -> PreviousRun | None:
    """The run that wrote the stored personas, with their membership (None before the
    first link run)."""
    if not table_has_rows(con, "personas"):
        return None
    row = con.execute("SELECT p.run_id, r.started_at FROM personas p LEFT JOIN link_runs r"
                      " USING (run_id) LIMIT 1").fetchone()
    if row is None or row[0] is None:
        return None
    members = dict(con.execute("SELECT account_id, persona_id FROM persona_members"
                               ).fetchall())
    return PreviousRun(str(row[0]), row[1], members)


def judgements_since(con: duckdb.DuckDBPyConnection, at: datetime | None
                     ) -> list[tuple[str, str, str, datetime | None]]:
    """``(a, b, verdict, withdrawn_at)`` of every judgement made or withdrawn at or after
    ``at`` (every judgement when ``at`` is None), by pair and time."""
    if at is None:
        return con.execute("SELECT a, b, verdict, withdrawn_at FROM judgements"
                           " ORDER BY a, b, created_at, judgement_id").fetchall()
    return con.execute(
        "SELECT a, b, verdict, withdrawn_at FROM judgements WHERE created_at >= ? OR"
        " withdrawn_at >= ? ORDER BY a, b, created_at, judgement_id", [at, at]).fetchall()


def persona_changes(con: duckdb.DuckDBPyConnection, run_id: str, persona_id: str,
                    side: str = "after") -> list[str]:
    """The changes (JSON text) of run ``run_id`` with ``persona_id`` on ``side``
    (``after``: the persona it made; ``before``: one it replaced). None stored before
    the table exists (a workspace opened read-only is not migrated)."""
    if not table_exists(con, "persona_changes"):
        return []
    return [str(r[0]) for r in con.execute(
        "SELECT change FROM persona_changes WHERE run_id = ? AND persona_id = ? AND side = ?",
        [run_id, persona_id, side]).fetchall()]


def run_options(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any]:
    """The options link run ``run_id`` was given (empty when unknown)."""
    row = con.execute("SELECT args FROM link_runs WHERE run_id = ?", [run_id]).fetchone()
    if not row or row[0] is None:
        return {}
    args = json.loads(row[0]) if isinstance(row[0], str) else row[0]
    return args if isinstance(args, dict) else {}


def last_run_id(con: duckdb.DuckDBPyConnection) -> str | None:
    """The run that wrote the stored personas (None before the first)."""
    if not table_has_rows(con, "personas"):
        return None
    row = con.execute("SELECT run_id FROM personas LIMIT 1").fetchone()
    return str(row[0]) if row and row[0] is not None else None
