"""Deconfliction within one agency: two case compartments of one agency whose members
differ, holding one vendor's selector or planning actions at one address, are both told
(each naming the user who created the other compartment, nothing of it); a user who may
read both compartments is told nothing (they see both already); overlaps between
agencies are as before. On the workspace (DuckDB) and the team server (PostgreSQL, the
library and a member in psql)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from ops_backends import Backend, ServerDb

from darkmap.cli import main
from darkmap.errors import NotFoundError
from darkmap.ops import access, deconflict, records
from darkmap.ops.records import Case
from darkmap.store.operations import WITHIN_AGENCY, WITHIN_TAIL, Space, is_server
from darkmap.store.team import open_ops_server

PGP = "AB12 CD34 EF56 7890 AB12 CD34 EF56 7890 AB12 CD34"
T0 = datetime(2027, 4, 6, 5, 0)
BERLIN = (52.5200, 13.4050)
CASE_A = "Operation Falke: informant R. buys from the vendor"
CASE_B = "Operation Reiher: undercover account on the market"


@pytest.fixture
def bka(space: Space) -> Space:
    """bka: admin ana; officers otto (case compartment ``falke``) and uwe (case
    compartment ``reiher``), neither a member of the other's; politie (piet, ``nl``)."""
    access.add_agency(space.con, "setup", "bka", "BKA", "DE", "BKA SO41 +49 611 55-0")
    access.add_user(space.con, "setup", "ana", "bka", "admin")
    for user in ("otto", "uwe", "ida"):
        access.add_user(space.con, "ana", user, "bka", "officer")
    access.add_agency(space.con, "ana", "politie", "Politie", "NL", "Team HTC +31 88 1234")
    access.add_user(space.con, "ana", "piet", "politie", "admin")
    access.add_compartment(space.con, "otto", "case", "Falke", members=["ida"],
                           compartment_id="falke")
    access.add_compartment(space.con, "uwe", "case", "Reiher", compartment_id="reiher")
    access.add_compartment(space.con, "piet", "agency", "nl-own", compartment_id="nl")
    return space


def _notices(ws: Space, user: str) -> list[deconflict.NoticeRow]:
    return deconflict.notices(ws, user)


def test_one_vendor_in_two_case_compartments_tells_both_teams(bka: Space) -> None:
    records.add_record(bka, "otto", Case(CASE_A), compartment="falke",
                       provenance="informant file 3")
    assert deconflict.submit(bka, "otto", "falke", [("pgp", PGP)]).notices == 0
    out = deconflict.submit(bka, "uwe", "reiher", [("pgp", PGP.lower())])
    assert out.notices == 2
    to_uwe, to_otto = _notices(bka, "uwe"), _notices(bka, "otto")
    assert len(to_uwe) == len(to_otto) == 1
    assert to_uwe[0].other_contact == "otto" and to_otto[0].other_contact == "uwe"
    for n, own in ((to_uwe[0], "reiher"), (to_otto[0], "falke")):
        assert n.kind == "selector" and n.other_agency == n.to_agency == "bka"
        assert n.subject.startswith("pgp ") and n.subject.endswith(WITHIN_TAIL)
        assert n.to_compartment == own
        other = "falke" if own == "reiher" else "reiher"
        text = json.dumps(n._asdict(), default=str)
        for secret in (other, other.title(), CASE_A, CASE_B, "AB12", "ab12"):
            assert secret not in text, text
    assert _notices(bka, "ida") == to_otto            # ida is of otto's team: told
    assert _notices(bka, "ana") == []                 # the admin reads neither case
    assert _notices(bka, "piet") == []                # no other agency is told
    # each side acknowledges its own notice, as a notice between agencies
    with pytest.raises(NotFoundError):
        deconflict.acknowledge(bka, "uwe", to_otto[0].notice_id)
    deconflict.acknowledge(bka, "ida", to_otto[0].notice_id)
    assert _notices(bka, "otto")[0].acked_by == "ida"
    assert _notices(bka, "uwe")[0].acked_by is None
    # submitted again: nothing new
    assert deconflict.submit(bka, "uwe", "reiher", [("pgp", PGP)]).notices == 2
    assert len(_notices(bka, "uwe")) == len(_notices(bka, "otto")) == 1


def test_two_records_naming_one_persona_meet_within_the_agency(bka: Space) -> None:
    """A record registers its selectors (a persona link here): the second case team's
    record meets the first's as a submission does."""
    records.add_record(bka, "otto", Case(CASE_A), compartment="falke",
                       provenance="file 3", links=[("persona", "p-4711")])
    records.add_record(bka, "uwe", Case(CASE_B), compartment="reiher",
                       provenance="file 9", links=[("persona", "p-4711")])
    for user, contact, own in (("otto", "uwe", "falke"), ("uwe", "otto", "reiher")):
        got = _notices(bka, user)
        assert [(n.subject.split()[0], n.other_contact, n.to_compartment) for n in got] == [
            ("persona", contact, own)]
        assert "p-4711" not in json.dumps(got[0]._asdict(), default=str)


def test_a_user_who_reads_both_compartments_is_not_told(bka: Space) -> None:
    access.add_compartment(bka.con, "ida", "case", "Ida's", members=["otto"],
                           compartment_id="ida-own")
    deconflict.submit(bka, "ida", "ida-own", [("email", "vendor@example.org")])
    # otto reads ida-own (a member): he knows already
    assert deconflict.submit(bka, "otto", "falke", [("email", "vendor@example.org")]
                             ).notices == 0
    assert _notices(bka, "otto") == _notices(bka, "ida") == []
    # a compartment the whole agency reads is no secret to any of its users
    access.add_compartment(bka.con, "ana", "agency", "BKA all", compartment_id="bka-all")
    deconflict.submit(bka, "ana", "bka-all", [("phone", "+49 30 1234567")])
    assert deconflict.submit(bka, "uwe", "reiher", [("phone", "0049301234567")]
                             ).notices == 0


def test_overlaps_between_agencies_are_as_before(bka: Space) -> None:
    deconflict.submit(bka, "otto", "falke", [("tracking", "JJD0012")])
    out = deconflict.submit(bka, "piet", "nl", [("tracking", "jjd 0012")])
    assert out.notices == 2
    to_otto, to_piet = _notices(bka, "otto"), _notices(bka, "piet")
    assert [(n.other_agency, n.other_contact, n.to_compartment) for n in to_otto] == [
        ("politie", "Team HTC +31 88 1234", None)]
    assert [(n.other_agency, n.other_contact, n.to_compartment) for n in to_piet] == [
        ("bka", "BKA SO41 +49 611 55-0", None)]
    assert to_otto[0].subject == to_piet[0].subject and WITHIN_AGENCY not in to_piet[0].subject
    assert _notices(bka, "uwe") == to_otto            # to the whole agency, as before
    # then uwe: politie and otto's compartment both hold it
    out = deconflict.submit(bka, "uwe", "reiher", [("tracking", "JJD0012")])
    assert out.notices == 4
    to_uwe = _notices(bka, "uwe")
    assert sorted((n.other_agency, n.other_contact) for n in to_uwe) == [
        ("bka", "otto"), ("politie", "Team HTC +31 88 1234")]


def test_an_event_at_one_address_in_two_compartments_clashes(bka: Space) -> None:
    lat, lon = BERLIN
    mine, found = deconflict.add_event(bka, "otto", "search_warrant", "falke", T0,
                                       T0 + timedelta(hours=3), lat, lon)
    assert found == []
    theirs, found = deconflict.add_event(bka, "uwe", "arrest", "reiher",
                                         T0 + timedelta(hours=1), T0 + timedelta(hours=2),
                                         lat + 0.001, lon)
    assert found == [deconflict.Conflict("bka", "otto", True, within_agency=True)]
    to_uwe, to_otto = _notices(bka, "uwe"), _notices(bka, "otto")
    assert [(n.kind, n.other_contact, n.to_compartment) for n in to_uwe] == [
        ("event", "otto", "reiher")]
    assert [(n.kind, n.other_contact, n.to_compartment) for n in to_otto] == [
        ("event", "uwe", "falke")]
    assert theirs in to_uwe[0].subject and mine not in to_uwe[0].subject
    assert mine in to_otto[0].subject and theirs not in to_otto[0].subject
    assert WITHIN_AGENCY in to_otto[0].subject and "1 of bka's events" in to_otto[0].subject
    for n in (*to_uwe, *to_otto):
        assert "falke" not in n.subject and "reiher" not in n.subject
    # ida (of otto's team) plans there too: otto's warrant she reads already, uwe's
    # arrest she may not read
    _, found = deconflict.add_event(bka, "ida", "surveillance", "falke", T0,
                                    T0 + timedelta(hours=1), lat, lon)
    assert found == [deconflict.Conflict("bka", "uwe", True, within_agency=True)]
    # otto plans beside his own warrant: nothing
    _, found = deconflict.add_event(bka, "otto", "surveillance", "falke",
                                    T0 + timedelta(hours=2, minutes=30), T0 + timedelta(hours=5),
                                    lat, lon + 0.001)
    assert found == []
    # elsewhere or another day: none
    _, found = deconflict.add_event(bka, "uwe", "arrest", "reiher", T0 + timedelta(days=3),
                                    T0 + timedelta(days=3, hours=1), lat, lon)
    assert found == []


def test_the_cli_says_whom_to_call_and_nothing_of_the_other_compartment(
        bka: Space, backend: Backend) -> None:
    deconflict.submit(bka, "otto", "falke", [("pgp", PGP)])
    bka.close()
    assert bka.path is not None
    runner = CliRunner()
    w = ["-w", str(bka.path)]
    event = runner.invoke(main, ["deconflict", "event", "--kind", "arrest", "--compartment",
                                 "reiher", "--start", "2027-04-06T05:00", "--end",
                                 "2027-04-06T06:00", "--lat", "52.52", "--lon", "13.405",
                                 "--as", "otto", *w], env=backend.env)
    assert event.exit_code == 1   # otto may not write reiher
    res = runner.invoke(main, ["deconflict", "notices", "--as", "uwe", *w], env=backend.env)
    assert res.exit_code == 0 and res.output == ""
    with backend.open(bka.path) as ws:
        deconflict.submit(ws, "uwe", "reiher", [("pgp", PGP)])
        deconflict.add_event(ws, "otto", "search_warrant", "falke", T0,
                             T0 + timedelta(hours=3), *BERLIN)
    event = runner.invoke(main, ["deconflict", "event", "--kind", "arrest", "--compartment",
                                 "reiher", "--start", "2027-04-06T05:00", "--end",
                                 "2027-04-06T06:00", "--lat", "52.52", "--lon", "13.405",
                                 "--as", "uwe", *w], env=backend.env)
    assert event.exit_code == 0, event.output
    assert ("conflict with an event of another compartment of bka (you may not read it); "
            "contact otto") in event.output
    res = runner.invoke(main, ["deconflict", "notices", "--as", "uwe", *w], env=backend.env)
    assert res.exit_code == 0
    said = " ".join(res.output.split())   # lines wrapped at 100 columns
    assert said.count("another compartment of bka has an interest; contact otto") == 2
    assert "falke" not in said.lower() and CASE_A not in said


# -- the team server, as a member in psql -------------------------------------------------


@pytest.fixture(scope="module")
def team(server: ServerDb) -> dict[str, str]:
    """bka on the team server: two officers, each a login role with a case compartment
    the other is no member of; user id -> dsn."""
    out: dict[str, str] = {}
    with open_ops_server(server.admin) as ops:
        access.add_agency(ops.con, "setup", "bka", "BKA", "DE", "BKA desk")
        access.add_user(ops.con, "setup", "root-admin", "bka", "admin")
    for name in ("falke", "reiher"):
        role, dsn = server.role(f"{name}_lead")
        with open_ops_server(server.admin) as ops:
            access.add_user(ops.con, "root-admin", role, "bka", "officer")
        with open_ops_server(dsn) as ops:
            access.add_compartment(ops.con, role, "case", name.title(), compartment_id=name)
        out[name] = dsn
    return out


def _role(server: ServerDb, name: str) -> str:
    return f"dm_{server.tag}_{name}_lead"


def test_on_the_server_a_member_learns_no_more_in_psql(server: ServerDb,
                                                      team: dict[str, str]) -> None:
    falke, reiher = _role(server, "falke"), _role(server, "reiher")
    with open_ops_server(team["falke"]) as ops:
        records.add_record(ops, falke, Case(CASE_A), compartment="falke",
                           provenance="file 1")
        deconflict.submit(ops, falke, "falke", [("pgp", PGP)])
        deconflict.add_event(ops, falke, "search_warrant", "falke", T0,
                             T0 + timedelta(hours=2), *BERLIN)
    with open_ops_server(team["reiher"]) as ops:
        assert deconflict.submit(ops, reiher, "reiher", [("pgp", PGP)]).notices == 2
        _, found = deconflict.add_event(ops, reiher, "arrest", "reiher", T0, T0 +
                                        timedelta(hours=1), BERLIN[0] + 0.002, BERLIN[1])
        assert found == [deconflict.Conflict("bka", falke, True, within_agency=True)]
        to_reiher = deconflict.notices(ops, reiher)
    assert sorted((n.kind, n.other_contact, n.to_compartment) for n in to_reiher) == [
        ("event", falke, "reiher"), ("selector", falke, "reiher")]
    with open_ops_server(team["falke"]) as ops:
        to_falke = deconflict.notices(ops, falke)
    assert sorted((n.kind, n.other_contact, n.to_compartment) for n in to_falke) == [
        ("event", reiher, "falke"), ("selector", reiher, "falke")]
    # the server wrote the notices the library would (one each, with the library's ids)
    ids = {n.notice_id for n in (*to_reiher, *to_falke)}
    assert server.sql("SELECT count(*) FROM ops_notices")[0][0] == len(ids) == 4
    # straight to the server: reiher's lead reads only reiher's notices, nothing of falke
    with psycopg.connect(team["reiher"], autocommit=True) as pg:
        seen = pg.execute("SELECT notice_id, to_compartment, other_contact, subject "
                          "FROM ops_notices").fetchall()
        assert {r[0] for r in seen} == {n.notice_id for n in to_reiher}
        text = json.dumps(seen)
        assert "falke" not in text.replace(falke, "") and CASE_A not in text
        for table in ("ops_records", "ops_selectors", "ops_events"):
            assert pg.execute(f"SELECT count(*) FROM {table} WHERE compartment_id = "
                              "'falke'").fetchone() == (0,)
        # the helpers answer no member directly
        for call in ("SELECT ops_compartment_contact('falke')",
                     f"SELECT ops_user_reads('{reiher}', 'falke')"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                pg.execute(call)
        # no notice planted into falke's compartment, none acknowledged there
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level"):
            pg.execute("INSERT INTO ops_notices VALUES ('n-x', 'selector', 'bka', 'bka', "
                       "'BKA desk', 's', now(), NULL, NULL, 'falke')")
        assert pg.execute("UPDATE ops_notices SET acked_by = %s, acked_at = now() WHERE "
                          "to_compartment = 'falke'", [reiher]).rowcount == 0
        # asking the server again answers the contact, never the compartment
        key = pg.execute("SELECT key FROM ops_server_key").fetchone()[0]
        h = deconflict.hash_selector(bytes(key), "pgp", PGP)
        got = pg.execute("SELECT * FROM ops_selector_matches(%s, %s, %s, %s, %s)",
                         [[h], ["pgp"], ["reiher"], ["bka"], falke]).fetchall()
        assert got == [(h, "pgp", "reiher", "bka", "bka", "exact", falke)]
    assert server.sql("SELECT count(*) FROM ops_notices")[0][0] == 4   # nothing new
    audit = server.sql("SELECT entry FROM ops_audit WHERE action = 'deconflict.match'")
    assert any('"within_agency":true' in str(e).replace(" ", "") for (e,) in audit)


def test_on_the_server_a_member_of_both_is_not_told(server: ServerDb,
                                                   team: dict[str, str]) -> None:
    falke, reiher = _role(server, "falke"), _role(server, "reiher")
    with open_ops_server(team["falke"]) as ops:
        shared = access.add_compartment(ops.con, falke, "case", "Joint", members=[reiher])
        deconflict.submit(ops, falke, "falke", [("email", "both@example.org")])
    before = server.sql("SELECT count(*) FROM ops_notices")[0][0]
    with open_ops_server(team["reiher"]) as ops:
        # reiher's lead reads `shared`, where falke's lead now stores the same address
        deconflict.submit(ops, reiher, shared.compartment_id, [("email", "x@example.org")])
    with open_ops_server(team["falke"]) as ops:
        assert deconflict.submit(ops, falke, shared.compartment_id,
                                 [("email", "x@example.org")]).notices == 0
    # falke's lead may not read reiher: the match of both@ in falke is not reiher's
    assert server.sql("SELECT count(*) FROM ops_notices")[0][0] == before


def test_server_upgrade_from_schema_9_adds_the_column(server: ServerDb) -> None:
    """A server of schema 9 (no ``to_compartment``) is upgraded by `team init`: its
    notices kept, to the whole agency."""
    from darkmap.store.operations import OPS_SCHEMA_VERSION
    from darkmap.store.team import init_server
    old = ServerDb()
    try:
        old.sql("INSERT INTO ops_notices VALUES ('n-old', 'selector', 'bka', 'fbi', 'desk', "
                "'pgp abc', now(), NULL, NULL, NULL)")
        old.sql("ALTER TABLE ops_notices DROP COLUMN to_compartment CASCADE")
        old.sql("UPDATE ops_schema SET version = 9")
        done = init_server(old.admin)
        assert (done.ops_upgraded_from, done.ops_version) == (9, OPS_SCHEMA_VERSION) == (9, 11)
        assert old.sql("SELECT notice_id, to_compartment FROM ops_notices") == [
            ("n-old", None)]
    finally:
        old.drop()


def test_a_workspace_notice_has_its_compartment_column(tmp_path: Path) -> None:
    """Migration 029 adds ``to_compartment`` to a workspace's notices, NULL for those
    made before (to the whole agency)."""
    from darkmap.store.workspace import Workspace
    with Workspace.init(tmp_path / "ws") as ws:
        assert not is_server(ws.con)
        cols = [r[0] for r in ws.con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = "
            "'ops_notices' ORDER BY ordinal_position").fetchall()]
        assert cols[-1] == "to_compartment"
