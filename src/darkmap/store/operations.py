"""The SQL of the operational tables (issue #13): agencies, users, compartments, grants,
records and what hangs off them, deconfliction selectors, events and notices, and the
reported figures of past operations.

Only this module writes the ``ops_`` tables (the audit trail aside: :mod:`.audit`).
Every read of operational records takes the acting user's id and agency and filters by
the grants in SQL (:data:`READABLE`): no function here returns a record without them.
Access decisions and their audit live in :mod:`darkmap.ops`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any, NamedTuple

import duckdb
import pyarrow as pa

__all__ = [
    "AgencyRow", "CompartmentRow", "EventRow", "GrantRow", "NoticeRow", "RecordRow",
    "SelectorMatch", "UserRow", "access_level", "ack_notice", "agencies", "agency", "any_user",
    "compartment", "country_personas", "delete_grant", "events_in_window", "fentanyl_evidence",
    "grants_of", "insert_agency", "insert_compartment", "insert_event", "insert_notice",
    "insert_notices", "insert_record", "insert_selectors", "insert_user", "lab_results",
    "links_of", "notices_for", "persona_listings", "put_grant", "readable_records",
    "replace_reported", "reported", "seizure_items", "selector_matches", "transaction", "user",
    "users",
]

READABLE = ("compartment_id IN (SELECT compartment_id FROM ops_grants WHERE "
            "(grantee_kind = 'user' AND grantee = $user) OR "
            "(grantee_kind = 'agency' AND grantee = $agency) OR grantee_kind = 'taskforce')")
"""The grant filter: a record's compartment is readable by the user ``$user`` of agency
``$agency`` (any grant, read or write)."""


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


class SelectorMatch(NamedTuple):
    """A selector held by another compartment of another agency."""

    selector_hmac: str
    kind: str
    compartment_id: str
    agency_id: str
    other_compartment: str
    other_agency: str


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


class NoticeRow(NamedTuple):
    """A deconfliction notice to one agency."""

    notice_id: str
    kind: str
    to_agency: str
    other_agency: str
    other_contact: str
    subject: str
    created_at: datetime
    acked_by: str | None
    acked_at: datetime | None


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection,
                keep: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Run the block in one transaction: a record and its audit entry land together. An
    exception of a type in ``keep`` commits what was done before it (a refusal's audit
    entry), any other rolls everything back."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except keep:
        con.execute("COMMIT")
        raise
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except duckdb.TransactionException:
            pass
        raise
    con.execute("COMMIT")


# -- agencies, users, compartments, grants ----------------------------------------------


def insert_agency(con: duckdb.DuckDBPyConnection, row: AgencyRow, by: str,
                  at: datetime) -> None:
    """Add an agency."""
    con.execute("INSERT INTO ops_agencies VALUES (?, ?, ?, ?, ?, ?)", [*row, by, at])


def agency(con: duckdb.DuckDBPyConnection, agency_id: str) -> AgencyRow | None:
    """One agency, ``None`` if unknown."""
    row = con.execute("SELECT agency_id, name, country, contact FROM ops_agencies "
                      "WHERE agency_id = ?", [agency_id]).fetchone()
    return AgencyRow(*row) if row else None


def agencies(con: duckdb.DuckDBPyConnection) -> list[AgencyRow]:
    """Every agency (the task force's directory: names, countries and contacts)."""
    return [AgencyRow(*r) for r in con.execute(
        "SELECT agency_id, name, country, contact FROM ops_agencies ORDER BY agency_id"
    ).fetchall()]


def insert_user(con: duckdb.DuckDBPyConnection, user_id: str, agency_id: str, role: str,
                by: str, at: datetime) -> None:
    """Add a user."""
    con.execute("INSERT INTO ops_users VALUES (?, ?, ?, ?, ?)",
                [user_id, agency_id, role, by, at])


def user(con: duckdb.DuckDBPyConnection, user_id: str) -> UserRow | None:
    """One user with the agency's country, ``None`` if unknown."""
    row = con.execute("SELECT u.user_id, u.agency_id, u.role, a.country FROM ops_users u "
                      "JOIN ops_agencies a USING (agency_id) WHERE u.user_id = ?",
                      [user_id]).fetchone()
    return UserRow(*row) if row else None


def users(con: duckdb.DuckDBPyConnection) -> list[UserRow]:
    """Every user."""
    return [UserRow(*r) for r in con.execute(
        "SELECT u.user_id, u.agency_id, u.role, a.country FROM ops_users u "
        "JOIN ops_agencies a USING (agency_id) ORDER BY u.user_id").fetchall()]


def any_user(con: duckdb.DuckDBPyConnection) -> bool:
    """True once the task force has a user (before that, set-up is open)."""
    return con.execute("SELECT count(*) FROM ops_users").fetchone() != (0,)


def insert_compartment(con: duckdb.DuckDBPyConnection, row: CompartmentRow, by: str,
                       at: datetime) -> None:
    """Add a compartment."""
    con.execute("INSERT INTO ops_compartments VALUES (?, ?, ?, ?, ?, ?)", [*row, by, at])


def compartment(con: duckdb.DuckDBPyConnection, compartment_id: str) -> CompartmentRow | None:
    """One compartment, ``None`` if unknown."""
    row = con.execute("SELECT compartment_id, kind, name, owner_agency FROM ops_compartments "
                      "WHERE compartment_id = ?", [compartment_id]).fetchone()
    return CompartmentRow(*row) if row else None


def put_grant(con: duckdb.DuckDBPyConnection, row: GrantRow, by: str, at: datetime) -> None:
    """Add a grant (or change its access)."""
    con.execute("INSERT OR REPLACE INTO ops_grants VALUES (?, ?, ?, ?, ?, ?)", [*row, by, at])


def delete_grant(con: duckdb.DuckDBPyConnection, compartment_id: str, grantee_kind: str,
                 grantee: str) -> int:
    """Remove a grant; the number removed (0 or 1)."""
    row = con.execute("DELETE FROM ops_grants WHERE compartment_id = ? AND grantee_kind = ? "
                      "AND grantee = ? RETURNING 1", [compartment_id, grantee_kind, grantee]
                      ).fetchall()
    return len(row)


def grants_of(con: duckdb.DuckDBPyConnection, compartment_id: str) -> list[GrantRow]:
    """The grants on a compartment."""
    return [GrantRow(*r) for r in con.execute(
        "SELECT compartment_id, grantee_kind, grantee, access FROM ops_grants "
        "WHERE compartment_id = ? ORDER BY grantee_kind, grantee", [compartment_id]).fetchall()]


def access_level(con: duckdb.DuckDBPyConnection, user_id: str, agency_id: str,
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


def insert_record(con: duckdb.DuckDBPyConnection, row: RecordRow,
                  links: Iterable[tuple[str, str]] = (),
                  items: Iterable[Sequence[Any]] = (),
                  lab: Sequence[Any] | None = None) -> None:
    """Add a record with its links (kind, id), seizure items (item, substance, grams,
    count, currency, amount, usd, address) and lab result (substance, purity, net g,
    pills, imprint, fentanyl)."""
    con.execute("INSERT INTO ops_records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [*row[:-1], json.dumps(row.data, sort_keys=True)])
    for kind, ref in links:
        con.execute("INSERT OR IGNORE INTO ops_links VALUES (?, ?, ?)",
                    [row.record_id, kind, ref])
    for item in items:
        con.execute("INSERT INTO ops_seizure_items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [row.record_id, *item])
    if lab is not None:
        con.execute("INSERT INTO ops_lab_results VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [row.record_id, *lab])


def readable_records(con: duckdb.DuckDBPyConnection, user_id: str, agency_id: str,
                     kind: str | None = None, record_id: str | None = None,
                     operation: str | None = None,
                     case_id: str | None = None) -> list[RecordRow]:
    """The records the user may read, filtered by kind, id, operation or case."""
    sql = ("SELECT record_id, kind, compartment_id, agency_id, author, created_at, case_id, "
           f"operation, occurred_on, country, provenance, data FROM ops_records WHERE {READABLE}")
    params: dict[str, str] = {"user": user_id, "agency": agency_id}
    for column, value in (("kind", kind), ("record_id", record_id),
                          ("operation", operation), ("case_id", case_id)):
        if value is not None:
            sql += f" AND {column} = ${column}"
            params[column] = value
    rows = con.execute(sql + " ORDER BY created_at, record_id", params).fetchall()
    return [RecordRow._make([*r[:-1], json.loads(r[-1])]) for r in rows]


def links_of(con: duckdb.DuckDBPyConnection, user_id: str, agency_id: str,
             record_ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    """record id -> its links (kind, id), for the readable ones among ``record_ids``."""
    rows = con.execute(
        "SELECT record_id, ref_kind, ref_id FROM ops_links WHERE list_contains($ids, record_id)"
        f" AND record_id IN (SELECT record_id FROM ops_records WHERE {READABLE}) "
        "ORDER BY record_id, ref_kind, ref_id",
        {"ids": list(record_ids), "user": user_id, "agency": agency_id}).fetchall()
    out: dict[str, list[tuple[str, str]]] = {}
    for rid, kind, ref in rows:
        out.setdefault(rid, []).append((kind, ref))
    return out


def seizure_items(con: duckdb.DuckDBPyConnection, user_id: str, agency_id: str,
                  operation: str | None = None) -> list[tuple[Any, ...]]:
    """(record id, item, substance, grams, count, currency, amount, usd, address) of the
    seizures the user may read, of one operation if given."""
    sql = ("SELECT i.record_id, item, substance, grams, count, currency, amount, usd, address "
           "FROM ops_seizure_items i JOIN ops_records r USING (record_id) "
           f"WHERE r.{READABLE}")
    params = {"user": user_id, "agency": agency_id}
    if operation is not None:
        sql += " AND r.operation = $op"
        params["op"] = operation
    return con.execute(sql + " ORDER BY i.record_id, item", params).fetchall()


def lab_results(con: duckdb.DuckDBPyConnection, user_id: str, agency_id: str,
                record_ids: Sequence[str]) -> dict[str, tuple[Any, ...]]:
    """buy record id -> (substance, purity, net g, pills, imprint, fentanyl), readable ones."""
    rows = con.execute(
        "SELECT record_id, substance, purity_pct, net_weight_g, pill_count, imprint, fentanyl "
        "FROM ops_lab_results WHERE list_contains($ids, record_id) AND record_id IN "
        f"(SELECT record_id FROM ops_records WHERE {READABLE})",
        {"ids": list(record_ids), "user": user_id, "agency": agency_id}).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def fentanyl_evidence(con: duckdb.DuckDBPyConnection, user_id: str,
                      agency_id: str) -> list[tuple[str, str, str, str]]:
    """(ref kind, ref id, buy record id, substance): the listings and personas that a
    readable buy's lab result shows to sell fentanyl; the persona of a linked listing's
    account (``persona_members``) is marked too."""
    return con.execute(f"""
        WITH buys AS (
            SELECT record_id, substance FROM ops_lab_results
            WHERE fentanyl AND record_id IN (SELECT record_id FROM ops_records WHERE {READABLE})),
        direct AS (
            SELECT l.ref_kind, l.ref_id, b.record_id, b.substance
            FROM buys b JOIN ops_links l USING (record_id)
            WHERE l.ref_kind IN ('listing', 'persona', 'account')),
        via AS (
            SELECT 'persona' AS ref_kind, pm.persona_id AS ref_id, d.record_id, d.substance
            FROM direct d JOIN listings li ON d.ref_kind = 'listing' AND li.listing_id = d.ref_id
            JOIN persona_members pm ON pm.account_id = li.account_id
            UNION
            SELECT 'persona', pm.persona_id, d.record_id, d.substance
            FROM direct d JOIN persona_members pm
              ON d.ref_kind = 'account' AND pm.account_id = d.ref_id)
        SELECT * FROM direct UNION SELECT * FROM via ORDER BY 1, 2, 3""",
        {"user": user_id, "agency": agency_id}).fetchall()


# -- deconfliction ----------------------------------------------------------------------


def insert_selectors(con: duckdb.DuckDBPyConnection, rows: pa.Table) -> None:
    """Add selectors (columns as ``ops_selectors``); one already held is kept as is."""
    con.register("_ops_new_selectors", rows)
    try:
        con.execute("INSERT OR IGNORE INTO ops_selectors SELECT * FROM _ops_new_selectors")
    finally:
        con.unregister("_ops_new_selectors")


def selector_matches(con: duckdb.DuckDBPyConnection, rows: pa.Table) -> list[SelectorMatch]:
    """The selectors of ``rows`` (hmac, kind, compartment, agency) that a compartment of
    another agency holds already."""
    con.register("_ops_probe", rows)
    try:
        found = con.execute("""
            SELECT DISTINCT p.selector_hmac, p.kind, p.compartment_id, p.agency_id,
                   s.compartment_id, s.agency_id
            FROM _ops_probe p JOIN ops_selectors s
              ON s.selector_hmac = p.selector_hmac AND s.kind = p.kind
             AND s.agency_id <> p.agency_id
            ORDER BY 1, 2, 3, 5""").fetchall()
    finally:
        con.unregister("_ops_probe")
    return [SelectorMatch(*r) for r in found]


def insert_event(con: duckdb.DuckDBPyConnection, row: EventRow, by: str, at: datetime) -> None:
    """Add a planned action."""
    con.execute("INSERT INTO ops_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [*row, by, at])


def events_in_window(con: duckdb.DuckDBPyConnection, starts_at: datetime, ends_at: datetime,
                     other_than_agency: str) -> list[EventRow]:
    """Planned actions of other agencies whose window overlaps [starts_at, ends_at]."""
    return [EventRow(*r) for r in con.execute(
        "SELECT event_id, kind, compartment_id, agency_id, lat, lon, postal_area, starts_at, "
        "ends_at FROM ops_events WHERE agency_id <> ? AND starts_at <= ? AND ends_at >= ? "
        "ORDER BY event_id", [other_than_agency, ends_at, starts_at]).fetchall()]


def insert_notice(con: duckdb.DuckDBPyConnection, row: NoticeRow) -> None:
    """Add a notice (one already sent with the same id is kept)."""
    con.execute("INSERT OR IGNORE INTO ops_notices VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                list(row))


def insert_notices(con: duckdb.DuckDBPyConnection, rows: Sequence[NoticeRow]) -> None:
    """Add notices in one statement (those already sent are kept)."""
    if not rows:
        return
    table = pa.table({
        **{f: pa.array([getattr(r, f) for r in rows], pa.string())
           for f in ("notice_id", "kind", "to_agency", "other_agency", "other_contact",
                     "subject")},
        "created_at": pa.array([r.created_at for r in rows], pa.timestamp("us")),
        "acked_by": pa.array([r.acked_by for r in rows], pa.string()),
        "acked_at": pa.array([r.acked_at for r in rows], pa.timestamp("us"))})
    con.register("_ops_new_notices", table)   # one statement: executemany is per row
    try:
        con.execute("INSERT OR IGNORE INTO ops_notices SELECT * FROM _ops_new_notices")
    finally:
        con.unregister("_ops_new_notices")


def notices_for(con: duckdb.DuckDBPyConnection, agency_id: str) -> list[NoticeRow]:
    """The notices to one agency, oldest first."""
    return [NoticeRow(*r) for r in con.execute(
        "SELECT * FROM ops_notices WHERE to_agency = ? ORDER BY created_at, notice_id",
        [agency_id]).fetchall()]


def ack_notice(con: duckdb.DuckDBPyConnection, notice_id: str, agency_id: str, by: str,
               at: datetime) -> int:
    """Acknowledge a notice of one's own agency; the number acknowledged (0 or 1)."""
    return len(con.execute(
        "UPDATE ops_notices SET acked_by = ?, acked_at = ? WHERE notice_id = ? "
        "AND to_agency = ? AND acked_by IS NULL RETURNING 1",
        [by, at, notice_id, agency_id]).fetchall())


# -- reported figures -------------------------------------------------------------------


def replace_reported(con: duckdb.DuckDBPyConnection, operation: str,
                     rows: Iterable[Sequence[Any]]) -> None:
    """Replace the reported figures of one operation with ``rows`` (metric, low, high,
    text, source)."""
    con.execute("DELETE FROM ops_reported WHERE operation = ?", [operation])
    for r in rows:
        con.execute("INSERT INTO ops_reported VALUES (?, ?, ?, ?, ?, ?)", [operation, *r])


def reported(con: duckdb.DuckDBPyConnection, operation: str) -> list[tuple[Any, ...]]:
    """(metric, low, high, text, source) of one operation (public figures: no grant)."""
    return con.execute("SELECT metric, low, high, text, source FROM ops_reported "
                       "WHERE operation = ? ORDER BY metric, source, low", [operation]
                       ).fetchall()


# -- reference data for a country's package ------------------------------------------------


def country_personas(con: duckdb.DuckDBPyConnection, country: str) -> list[tuple[Any, ...]]:
    """(persona id, label, confidence, evidence JSON, method) of the personas attributed
    to ``country`` (shared reference data: the assess stage's jurisdictions)."""
    return con.execute(
        "SELECT j.entity_id, p.label, j.confidence, j.evidence, j.method FROM jurisdictions j "
        "LEFT JOIN personas p ON p.persona_id = j.entity_id "
        "WHERE j.entity_kind = 'persona' AND j.country = ? ORDER BY j.confidence DESC, 1",
        [country]).fetchall()


def persona_listings(con: duckdb.DuckDBPyConnection, persona_ids: Sequence[str]
                     ) -> list[tuple[Any, ...]]:
    """(persona, account, listing, substance, drug class, fentanyl risk, capture sha256,
    source) of the personas' accounts' listings with their drug assessment."""
    return con.execute(
        "SELECT pm.persona_id, pm.account_id, l.listing_id, a.substance, a.drug_class, "
        "a.fentanyl_risk, l.capture_sha256, l.source FROM persona_members pm "
        "LEFT JOIN listings l ON l.account_id = pm.account_id "
        "LEFT JOIN listing_assessments a ON a.listing_id = l.listing_id "
        "WHERE list_contains($ids, pm.persona_id) ORDER BY 1, 2, 3",
        {"ids": list(persona_ids)}).fetchall()
