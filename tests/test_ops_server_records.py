"""What hangs off a record on the team server (its links, seizure items and lab result)
goes in with the record, and the record with its audit entry: a test of the server as
a member's own login role in psql (2026-12) added a tonne of fentanyl to an officer's
own old seizure, a lab result to a case and a link that took a seizure into another
country's package, each after the record's transaction, unaudited, with `audit verify`
still passing. Each is refused now, against a real PostgreSQL on loopback."""

from __future__ import annotations

import psycopg
import pytest
from ops_backends import ServerDb, two_agencies

from darkmap.ops import access, audit, records
from darkmap.ops.records import Buy, Case, LabResult, Seizure
from darkmap.store.team import open_ops_server


@pytest.fixture(scope="module")
def roles(server: ServerDb) -> dict[str, str]:
    """Agency ``a`` with an officer (a case and a seizure in ``a-own``) and agency ``b``
    with an officer (``b-own``): role name -> dsn, by part."""
    out = two_agencies(server, (("a_off", "a", "officer"), ("b_off", "b", "officer")))
    with open_ops_server(out["a_off"]) as ops:
        a = out["a_off_name"]
        access.add_compartment(ops.con, a, "agency", "a own", compartment_id="a-own")
        records.add_record(ops, a, Case("a's case"), compartment="a-own", provenance="t")
        records.add_record(ops, a, Seizure(firearms=2), compartment="a-own", provenance="t")
    with open_ops_server(out["b_off"]) as ops:
        access.add_compartment(ops.con, out["b_off_name"], "agency", "b own",
                               compartment_id="b-own")
    return out


_AFTERWARDS = {
    "a tonne of fentanyl on one's own old seizure":
        "INSERT INTO ops_seizure_items VALUES (%(seizure)s, 'drug', 'fentanyl', 1000000, "
        "NULL, NULL, NULL, NULL, NULL)",
    "a link taking one's own old seizure to a persona":
        "INSERT INTO ops_links VALUES (%(seizure)s, 'persona', 'p-elsewhere')",
    "a lab result on one's own old case":
        "INSERT INTO ops_lab_results VALUES (%(case)s, 'fentanyl', 99, 1000, NULL, NULL, true)",
    "another listing on one's own old buy":
        "INSERT INTO ops_links VALUES (%(buy)s, 'listing', 'mkt:another')",
}


@pytest.mark.parametrize("what", sorted(_AFTERWARDS))
def test_no_member_adds_to_a_record_after_its_own_transaction(
        server: ServerDb, roles: dict[str, str], what: str) -> None:
    """A record's links, seizure items and lab result go in with the record, in the
    transaction that inserted it: its author in psql adds nothing to it afterwards (the
    totals jumped by a tonne, a lab result hung on a case, a link took a seizure into
    another country's package, unaudited, and `audit verify` passed)."""
    a = roles["a_off_name"]
    with open_ops_server(roles["a_off"]) as ops:
        buy = records.add_record(ops, a, Buy("mkt:1", lab=LabResult("heroin", 40.0)),
                                 compartment="a-own", provenance="t",
                                 links=[("persona", "p-1")])
    ids = dict(server.sql("SELECT kind, record_id FROM ops_records WHERE author = %s "
                          "AND kind IN ('case', 'seizure')", [a]))
    before = server.sql("SELECT (SELECT count(*) FROM ops_seizure_items), "
                        "(SELECT count(*) FROM ops_links), (SELECT count(*) FROM ops_lab_results)")
    with psycopg.connect(roles["a_off"], autocommit=True) as pg:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level"):
            pg.execute(_AFTERWARDS[what], {**ids, "buy": buy.record_id})
    assert server.sql("SELECT (SELECT count(*) FROM ops_seizure_items), "
                      "(SELECT count(*) FROM ops_links), "
                      "(SELECT count(*) FROM ops_lab_results)") == before
    with open_ops_server(roles["a_off"]) as ops:
        assert audit.verify(ops.con)[1] is None
        shown = records.show_record(ops, a, buy.record_id)
    assert set(shown.links) == {("listing", "mkt:1"), ("persona", "p-1")}
    assert shown.lab is not None and shown.lab["substance"] == "heroin"


_WITH_THE_RECORD = {
    "a lab result on a case": (
        "case", ("INSERT INTO ops_lab_results VALUES ('r-new', 'fentanyl', 99, 1, NULL, NULL, "
                 "true)")),
    "seizure items on a buy": (
        "buy", ("INSERT INTO ops_seizure_items VALUES ('r-new', 'drug', 'fentanyl', 1000000, "
                "NULL, NULL, NULL, NULL, NULL)")),
    "a link of a kind that is none": (
        "seizure", "INSERT INTO ops_links VALUES ('r-new', 'compartment', 'b-own')"),
    "a link to nothing": ("seizure", "INSERT INTO ops_links VALUES ('r-new', 'persona', '')"),
}


@pytest.mark.parametrize("what", sorted(_WITH_THE_RECORD))
def test_what_hangs_off_a_record_fits_its_kind(server: ServerDb, roles: dict[str, str],
                                              what: str) -> None:
    """Even in the record's own transaction: items only on a seizure, a lab result only on
    a buy, links of a kind the library knows (as :data:`darkmap.ops.vocabulary.LINK_KINDS`)."""
    from darkmap.ops.vocabulary import LINK_KINDS
    from darkmap.store import ops_guards
    assert ops_guards.LINK_KINDS == LINK_KINDS
    kind, child = _WITH_THE_RECORD[what]
    with psycopg.connect(roles["a_off"]) as pg:
        pg.execute("INSERT INTO ops_records VALUES ('r-new', %s, 'a-own', 'a', session_user, "
                   "now(), NULL, NULL, NULL, 'DE', 'p', '{}')", [kind])
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level"):
            pg.execute(child)
    assert server.sql("SELECT count(*) FROM ops_records WHERE record_id = 'r-new'") == [(0,)]


def test_a_members_record_goes_in_only_with_its_audit_entry(server: ServerDb,
                                                            roles: dict[str, str]) -> None:
    """A record its author writes in psql, with items that fit, commits only with its
    ``record.add`` entry appended by the same login role; darkmap's own path still
    writes a record with its items, links and lab result."""
    a = roles["a_off_name"]
    with psycopg.connect(roles["a_off"]) as pg:
        pg.execute("INSERT INTO ops_records VALUES ('r-quiet', 'seizure', 'a-own', 'a', "
                   "session_user, now(), NULL, 'Op', NULL, 'DE', 'p', '{}')")
        pg.execute("INSERT INTO ops_seizure_items VALUES ('r-quiet', 'drug', 'fentanyl', "
                   "1000000, NULL, NULL, NULL, NULL, NULL)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="without its audit"):
            pg.commit()
    assert server.sql("SELECT count(*) FROM ops_seizure_items WHERE record_id = 'r-quiet'") \
        == [(0,)]
    with open_ops_server(roles["a_off"]) as ops:
        row = records.add_record(ops, a, Seizure(drugs_g={"heroin": 5.0}), compartment="a-own",
                                 provenance="t", links=[("persona", "p-2")])
        assert audit.verify(ops.con)[1] is None
    assert server.sql("SELECT substance, grams FROM ops_seizure_items WHERE record_id = %s",
                      [row.record_id]) == [("heroin", 5.0)]


def test_team_init_upgrades_a_schema_6_server(roles: dict[str, str]) -> None:
    """`darkmap team init` on a server of operational schema 6 (no record stamped with its
    transaction): its records take nothing more, and darkmap's path adds records with
    their items, links and lab result as before."""
    from darkmap.store.operations import OPS_SCHEMA_VERSION
    from darkmap.store.team import init_server
    db = ServerDb()
    try:
        name, dsn = db.role("off")
        with open_ops_server(db.admin) as ops:
            access.add_agency(ops.con, "setup", "a", "A", "DE", "a desk")
            access.add_user(ops.con, "setup", "root", "a", "admin")
            access.add_user(ops.con, "root", name, "a", "officer")
        with open_ops_server(dsn) as ops:
            access.add_compartment(ops.con, name, "agency", "own", compartment_id="own")
        db.sql("DROP TRIGGER ops_records_stamp ON ops_records; DROP TRIGGER "
               "ops_records_audited ON ops_records; ALTER TABLE ops_records DROP COLUMN "
               "created_xact")
        with open_ops_server(db.admin) as ops:   # a record of the officer's, as of schema 6
            old = records.add_record(ops, "root", Seizure(firearms=1), compartment="own",
                                     provenance="t")
        db.sql("UPDATE ops_records SET author = %s", [name])
        db.sql("UPDATE ops_schema SET version = 6")
        done = init_server(db.admin)
        assert (done.ops_upgraded_from, done.ops_version) == (6, OPS_SCHEMA_VERSION) == (6, 11)
        with psycopg.connect(dsn, autocommit=True) as pg:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level"):
                pg.execute("INSERT INTO ops_seizure_items VALUES (%s, 'drug', 'fentanyl', "
                           "1000000, NULL, NULL, NULL, NULL, NULL)", [old.record_id])
        with open_ops_server(dsn) as ops:
            buy = records.add_record(ops, name, Buy("mkt:9", lab=LabResult("fentanyl", 5.0)),
                                     compartment="own", provenance="t")
        assert db.sql("SELECT substance FROM ops_lab_results WHERE record_id = %s",
                      [buy.record_id]) == [("fentanyl",)]
    finally:
        db.drop()
