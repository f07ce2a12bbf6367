"""Corrections: a wrong operational record (a seizure typed in g for kg, the wrong
operation, a duplicate) is withdrawn, never changed or deleted (found by an audit: one
mistyped seizure stayed in the totals, reports and packages for good). The withdrawal
is audited and final; the record leaves the totals, packages, fentanyl marks and
exports by case, and `ops show` still shows it, marked. On both homes of the records,
and on the team server against a member's own login role in psql."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from ops_backends import Backend, ServerDb, two_agencies

from darkmap.cli import main
from darkmap.errors import BadInputError, NotFoundError
from darkmap.ops import access, audit, deconflict, records, totals
from darkmap.ops.access import AccessDenied
from darkmap.ops.package import build_package
from darkmap.ops.records import Arrest, Buy, Case, LabResult, Seizure
from darkmap.store.operations import Space
from darkmap.store.team import open_ops_server


def _setup(space: Space) -> None:
    """BKA (ana admin, ben and cleo officers, rita reader), FBI (bob admin); compartment
    tf (every agency writes), de (BKA only)."""
    con = space.con
    access.add_agency(con, "setup", "bka", "BKA", "DE", "BKA desk")
    access.add_user(con, "setup", "ana", "bka", "admin")
    for user, role in (("ben", "officer"), ("cleo", "officer"), ("rita", "reader")):
        access.add_user(con, "ana", user, "bka", role)
    access.add_agency(con, "ana", "fbi", "FBI", "US", "JCODE desk")
    access.add_user(con, "ana", "bob", "fbi", "admin")
    access.add_compartment(con, "ana", "taskforce", "tf", compartment_id="tf")
    access.grant(con, "ana", "tf", "taskforce", "*", "write")
    access.add_compartment(con, "ana", "agency", "de", compartment_id="de")


def test_a_withdrawn_seizure_leaves_the_totals_and_is_shown_marked(space: Space) -> None:
    _setup(space)
    add = records.add_record
    good = add(space, "ben", Seizure({"heroin": 2.5}, firearms=1), compartment="tf",
               operation="Op", provenance="PV 1")
    typo = add(space, "ben", Seizure({"heroin": 2500.0}), compartment="tf", operation="Op",
               provenance="PV 2 (kg typed as g)")
    arrest = add(space, "bob", Arrest("x"), compartment="tf", operation="Op", country="US",
                 provenance="302")
    before = totals.recorded_totals(space, "ana", "Op")
    assert before["drugs_kg"] == 2.5025 and before["arrests"] == 1
    fixed = add(space, "ben", Seizure({"heroin": 2.5}), compartment="tf", operation="Op",
                provenance="PV 2")
    w = records.withdraw_record(space, "ben", typo.record_id, " kg typed  as g ",
                                replaced_by=fixed.record_id)
    assert (w.withdrawn_by, w.why, w.replaced_by) == ("ben", "kg typed as g", fixed.record_id)
    after = totals.recorded_totals(space, "ana", "Op")
    assert after["drugs_kg"] == 0.005 and after["drugs_kg_by_substance"] == {"heroin": 0.005}
    assert (after["firearms"], after["arrests"]) == (1, 1)
    records.withdraw_record(space, "bob", arrest.record_id, "duplicate of another arrest")
    gone = totals.recorded_totals(space, "ana", "Op")
    assert (gone["arrests"], gone["countries"]) == (0, 0) and gone["drugs_kg"] == 0.005
    # lists leave it out unless asked; one record is shown, marked
    listed = [r.row.record_id for r in records.read_records(space, "ana", "seizure")]
    assert listed == [good.record_id, fixed.record_id]
    every = {r.row.record_id: r.withdrawal for r in
             records.read_records(space, "ana", "seizure", withdrawn=True)}
    assert every[typo.record_id] is not None and every[good.record_id] is None
    shown = records.show_record(space, "cleo", typo.record_id)
    assert shown.withdrawal is not None and shown.withdrawal.replaced_by == fixed.record_id
    assert shown.as_dict()["withdrawn"]["why"] == "kg typed as g"
    assert shown.row.data["drugs_g"] == {"heroin": 2500.0}   # the record itself unchanged
    # audited, and the trail intact
    mine = [e for e in audit.show(space.con) if e["action"] == "record.withdraw"
            and e["outcome"] == "ok"]
    assert [(e["actor"], e["record"], e.get("replaced_by")) for e in mine] == [
        ("ben", typo.record_id, fixed.record_id), ("bob", arrest.record_id, None)]
    assert audit.verify(space.con)[1] is None


def test_who_may_withdraw(space: Space) -> None:
    _setup(space)
    seizure = records.add_record(space, "ben", Seizure(firearms=2), compartment="tf",
                                 provenance="PV")
    own = records.add_record(space, "ben", Case("own case"), compartment="de",
                             provenance="file")
    with pytest.raises(AccessDenied, match="only its author"):
        records.withdraw_record(space, "cleo", seizure.record_id, "not mine")  # same agency
    with pytest.raises(AccessDenied, match="only its author"):
        records.withdraw_record(space, "bob", seizure.record_id, "other agency's admin")
    with pytest.raises(AccessDenied):
        records.withdraw_record(space, "rita", seizure.record_id, "a reader")
    # unreadable is exactly missing
    with pytest.raises(NotFoundError) as unreadable:
        records.withdraw_record(space, "bob", own.record_id, "x")
    with pytest.raises(NotFoundError) as missing:
        records.withdraw_record(space, "bob", "case-000000000000", "x")
    assert str(unreadable.value).replace(own.record_id, "ID") == str(
        missing.value).replace("case-000000000000", "ID")
    with pytest.raises(BadInputError, match="reason"):
        records.withdraw_record(space, "ben", seizure.record_id, "  ")
    # the agency's admin may, while still a writer of the compartment
    access.revoke(space.con, "ana", "tf", "taskforce", "*")
    access.grant(space.con, "ana", "tf", "agency", "bka", "read")
    with pytest.raises(AccessDenied, match="may not write"):
        records.withdraw_record(space, "ana", seizure.record_id, "duplicate")
    access.grant(space.con, "ana", "tf", "agency", "bka", "write")
    records.withdraw_record(space, "ana", seizure.record_id, "duplicate")
    with pytest.raises(BadInputError, match="withdrawn already"):
        records.withdraw_record(space, "ben", seizure.record_id, "again")
    assert audit.verify(space.con)[1] is None


def test_a_withdrawn_buy_marks_nothing_and_leaves_the_package(space: Space,
                                                              tmp_path: Path) -> None:
    _setup(space)
    buy = records.add_record(space, "ben", Buy("dream:1", lab=LabResult("fentanyl", 9.0)),
                             compartment="tf", country="DE", provenance="lab 12",
                             links=[("persona", "p-1")])
    arrest = records.add_record(space, "ben", Arrest("courier"), compartment="tf",
                                country="DE", provenance="arrest 1")
    assert {m["buy"] for m in records.fentanyl_marks(space, "ana")} == {buy.record_id}
    build_package(space, "ana", "DE", tmp_path / "before")
    bundle = json.loads((tmp_path / "before" / "package.json").read_text(encoding="utf-8"))
    assert {r["record_id"] for r in bundle["records"]} == {buy.record_id, arrest.record_id}
    records.withdraw_record(space, "ben", buy.record_id, "wrong listing")
    assert records.fentanyl_marks(space, "ana") == []
    build_package(space, "ana", "DE", tmp_path / "after")
    text = (tmp_path / "after" / "package.json").read_text(encoding="utf-8")
    assert [r["record_id"] for r in json.loads(text)["records"]] == [arrest.record_id]
    assert buy.record_id not in text


def test_cli_withdraw_and_show(backend: Backend, tmp_path: Path) -> None:
    from darkmap.store.workspace import Workspace
    backend.reset()
    path = tmp_path / "ws"
    Workspace.init(path).close()
    with backend.open(path) as space:
        _setup(space)
        typo = records.add_record(space, "ben", Seizure({"heroin": 1000.0}),
                                  compartment="tf", operation="Op", provenance="PV")
    env = backend.env
    run = CliRunner().invoke
    res = run(main, ["ops", "withdraw", typo.record_id, "--why", "kg typed as g", "--as",
                     "ben", "-w", str(path)], env=env)
    assert res.exit_code == 0, res.output
    assert f"{typo.record_id} withdrawn by ben" in res.output
    res = run(main, ["ops", "show", "--kind", "seizure", "--as", "ana", "-w", str(path)],
              env=env)
    assert "WITHDRAWN by ben" in res.output and "why: kg typed as g" in res.output
    res = run(main, ["ops", "show", "--hide-withdrawn", "--as", "ana", "-w", str(path)],
              env=env)
    assert typo.record_id not in res.output
    res = run(main, ["ops", "report", "Op", "--json", "--as", "ana", "-w", str(path)],
              env=env)
    assert json.loads(res.output)["recorded"]["drugs_kg"] == 0
    res = run(main, ["ops", "withdraw", typo.record_id, "--why", "again", "--as", "ben",
                     "-w", str(path)], env=env)
    assert res.exit_code != 0 and "withdrawn already" in res.output


# -- the team server, as members' own login roles --------------------------------------


@pytest.fixture(scope="module")
def roles(server: ServerDb) -> dict[str, str]:
    """Agency a: admin a_adm, officers a_off and a_two; agency b: officer b_off.
    Compartment tf (task force, write). a_off's seizure in tf."""
    out = two_agencies(server, (("a_adm", "a", "admin"), ("a_off", "a", "officer"),
                                ("a_two", "a", "officer"), ("b_off", "b", "officer")))
    with open_ops_server(server.admin) as ops:
        access.add_compartment(ops.con, "root", "taskforce", "tf", compartment_id="tf")
        access.grant(ops.con, "root", "tf", "taskforce", "*", "write")
    return out


def _seizure(roles: dict[str, str]) -> str:
    with open_ops_server(roles["a_off"]) as ops:
        return records.add_record(ops, roles["a_off_name"], Seizure(firearms=1),
                                  compartment="tf", provenance="t").record_id


_FORGED = "INSERT INTO ops_withdrawals VALUES (%s, %s, now(), 'forged', NULL)"


@pytest.mark.parametrize("who", ["b_off", "a_two"])
def test_no_member_withdraws_a_record_not_theirs_in_psql(server: ServerDb,
                                                         roles: dict[str, str],
                                                         who: str) -> None:
    """Another agency's officer, or another officer of the author's agency (no admin),
    inserting the withdrawal in psql (with a forged audit entry's worth of nothing) is
    refused by row-level security."""
    rid = _seizure(roles)
    with psycopg.connect(roles[who], autocommit=True) as pg:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level"):
            pg.execute(_FORGED, [rid, roles[f"{who}_name"]])
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            pg.execute("DELETE FROM ops_records WHERE record_id = %s", [rid])
    assert server.sql("SELECT count(*) FROM ops_withdrawals WHERE record_id = %s",
                      [rid]) == [(0,)]


def test_the_author_in_psql_needs_the_audit_entry(server: ServerDb,
                                                  roles: dict[str, str]) -> None:
    rid = _seizure(roles)
    with psycopg.connect(roles["a_off"], autocommit=True) as pg:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="audit entry"):
            pg.execute(_FORGED, [rid, roles["a_off_name"]])
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level"):
            pg.execute(_FORGED, [rid, roles["a_adm_name"]])   # in another's name
    with open_ops_server(roles["a_adm"]) as ops:   # the agency's admin, through darkmap
        w = records.withdraw_record(ops, roles["a_adm_name"], rid, "duplicate")
    assert w.withdrawn_by == roles["a_adm_name"]
    with psycopg.connect(roles["a_adm"], autocommit=True) as pg:
        for sql in ("UPDATE ops_withdrawals SET why = 'x'", "DELETE FROM ops_withdrawals"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                pg.execute(sql)
    with open_ops_server(server.admin) as ops:
        assert audit.verify(ops.con)[1] is None


def test_a_withdrawn_record_names_no_subject_of_its_case(space: Space) -> None:
    """`darkmap export --case` narrows to the case's subjects: a withdrawn record's
    links, and a withdrawn case's own, are left out."""
    _setup(space)
    case = records.add_record(space, "ben", Case("x"), compartment="tf", provenance="f",
                              links=[("persona", "p-case")])
    kept = records.add_record(space, "ben", Arrest("a"), case_id=case.record_id,
                              provenance="r", links=[("persona", "p-kept")])
    wrong = records.add_record(space, "ben", Arrest("b"), case_id=case.record_id,
                               provenance="r", links=[("account", "m:wrong")])
    assert kept.case_id == case.record_id
    assert records.case_subjects(space, "ana", case.record_id) == [
        "m:wrong", "p-case", "p-kept"]
    records.withdraw_record(space, "ben", wrong.record_id, "wrong person")
    assert records.case_subjects(space, "ana", case.record_id) == ["p-case", "p-kept"]
    records.withdraw_record(space, "ana", case.record_id, "opened twice")
    assert records.case_subjects(space, "ana", case.record_id) == ["p-kept"]


def test_team_init_upgrades_a_schema_7_server() -> None:
    """`darkmap team init` on a server of operational schema 7 (no ops_withdrawals)
    upgrades it in place (to 9 now); a member then withdraws their own record."""
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
            rid = records.add_record(ops, name, Seizure(firearms=1), compartment="own",
                                     provenance="t").record_id
        db.sql("DROP TABLE ops_withdrawals; UPDATE ops_schema SET version = 7")
        done = init_server(db.admin)
        assert (done.ops_upgraded_from, done.ops_version) == (7, OPS_SCHEMA_VERSION) == (7, 11)
        with open_ops_server(dsn) as ops:
            records.withdraw_record(ops, name, rid, "duplicate")
            shown = records.show_record(ops, name, rid)
            assert shown.withdrawal is not None and shown.withdrawal.why == "duplicate"
        assert db.sql("SELECT withdrawn_by, why FROM ops_withdrawals") == [(name, "duplicate")]
    finally:
        db.drop()


def test_nothing_is_added_to_a_withdrawn_case(space: Space) -> None:
    """A record given a withdrawn case is refused, naming the case that replaces it."""
    _setup(space)
    old = records.add_record(space, "ben", Case("Op typo"), compartment="tf",
                             provenance="opened twice")
    new = records.add_record(space, "ben", Case("Op"), compartment="tf", provenance="memo")
    records.withdraw_record(space, "ben", old.record_id, "opened twice",
                            replaced_by=new.record_id)
    with pytest.raises(BadInputError, match=f"{old.record_id} was withdrawn.*{new.record_id}"):
        records.add_record(space, "ben", Arrest("x"), case_id=old.record_id,
                           provenance="302")
    kept = records.add_record(space, "ben", Arrest("x"), case_id=new.record_id,
                              provenance="302")
    assert kept.case_id == new.record_id


# -- deconfliction: a withdrawn record's selectors stop matching ---------------------------


def _with_fbi_compartment(space: Space) -> None:
    """:func:`_setup` and compartment ``us`` (FBI only)."""
    _setup(space)
    access.add_compartment(space.con, "bob", "agency", "us", compartment_id="us")


def test_a_withdrawn_records_selectors_raise_no_notice(space: Space) -> None:
    """A selector was stored once per compartment, under the first record that named it,
    and still matched after that record was withdrawn (found by an audit). A withdrawn
    record's selectors no longer match; notices sent before stay."""
    _with_fbi_compartment(space)
    wrong = records.add_record(space, "ben", Case("wrong vendor"), compartment="de",
                               provenance="file 1", links=[("persona", "p-wrong")])
    sent = records.add_record(space, "ben", Arrest("x"), compartment="de",
                              provenance="file 2", links=[("persona", "p-sent")])
    assert deconflict.submit(space, "bob", "us", [("persona", "p-sent")]).notices == 2
    records.withdraw_record(space, "ben", wrong.record_id, "wrong vendor")
    records.withdraw_record(space, "ben", sent.record_id, "wrong vendor too")
    out = deconflict.submit(space, "bob", "us", [("persona", "p-wrong")])
    assert out.notices == 0
    assert [n.subject.split()[0] for n in deconflict.notices(space, "ana")] == ["persona"]
    assert len(deconflict.notices(space, "bob")) == 1       # the one sent before stays
    # and the other way round: FBI registered first, BKA's withdrawn record named it
    records.add_record(space, "bob", Case("us case"), compartment="us", provenance="f",
                       links=[("persona", "p-later")])
    late = records.add_record(space, "ben", Case("typo"), compartment="de", provenance="f",
                              links=[("persona", "p-later")])
    records.withdraw_record(space, "ben", late.record_id, "typo")
    assert deconflict.submit(space, "bob", "us", [("persona", "p-later")]).notices == 0


def test_a_selector_stands_while_a_live_record_or_submission_holds_it(space: Space) -> None:
    """A second live record of the compartment that names the selector keeps it matching
    (its registration used to be dropped: the first record's row stood for both); so does
    a direct submission."""
    _with_fbi_compartment(space)
    first = records.add_record(space, "ben", Case("first"), compartment="de",
                               provenance="file 1", links=[("persona", "p-2")])
    records.add_record(space, "cleo", Arrest("y"), compartment="de", provenance="file 2",
                       links=[("persona", "p-2")])
    records.withdraw_record(space, "ben", first.record_id, "duplicate")
    out = deconflict.submit(space, "bob", "us", [("persona", "p-2")])
    assert out.notices == 2
    [(to_bka,), (to_fbi,)] = [[n.other_agency for n in deconflict.notices(space, u)]
                             for u in ("ana", "bob")]
    assert (to_bka, to_fbi) == ("fbi", "bka")
    only = records.add_record(space, "ben", Case("third"), compartment="de", provenance="f",
                              links=[("persona", "p-3")])
    deconflict.submit(space, "ana", "de", [("persona", "p-3")])   # submitted directly too
    records.withdraw_record(space, "ben", only.record_id, "wrong")
    assert deconflict.submit(space, "bob", "us", [("persona", "p-3")]).notices == 2
    # one row per selector, compartment and record: a submission again adds none
    deconflict.submit(space, "ana", "de", [("persona", "p-3")])
    rows = space.con.execute("SELECT record_id FROM ops_selectors WHERE compartment_id = 'de' "
                             "AND kind = 'persona' ORDER BY record_id NULLS FIRST"
                             ).fetchall()
    assert [r[0] for r in rows].count(None) == 1 and len(rows) == 4


def test_no_member_registers_selectors_for_a_record_not_theirs_in_psql(
        server: ServerDb, roles: dict[str, str]) -> None:
    """Row-level security: a member's selector row names no record, or a record of his
    own inserted in the same transaction in the row's compartment; a direct submission
    in a compartment he may write goes in as before."""
    rid = _seizure(roles)   # a_off's, in tf
    row = ("INSERT INTO ops_selectors (selector_hmac, kind, compartment_id, agency_id, "
           "record_id, submitted_by, submitted_at) VALUES (%s, 'phone', 'tf', %s, %s, %s, "
           "now())")
    for who, agency, record in (("a_two", "a", rid), ("b_off", "b", rid),
                                ("a_off", "a", rid)):   # the author, after the fact
        with psycopg.connect(roles[who], autocommit=True) as pg:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level"):
                pg.execute(row, ["ab" * 32, agency, record, roles[f"{who}_name"]])
    with psycopg.connect(roles["b_off"], autocommit=True) as pg:
        pg.execute(row, ["cd" * 32, "b", None, roles["b_off_name"]])
    assert server.sql("SELECT selector_hmac FROM ops_selectors WHERE selector_hmac IN "
                      "(%s, %s)", ["ab" * 32, "cd" * 32]) == [("cd" * 32,)]


def test_team_init_upgrades_a_schema_8_server_keeping_its_selectors() -> None:
    """`darkmap team init` on a server of operational schema 8 (a selector once per
    compartment: the key on selector, kind and compartment; no form) upgrades it in place
    to 9: the rows are kept, a second record's registration is stored, and a withdrawn
    record's selector stops matching."""
    from darkmap.store.operations import OPS_SCHEMA_VERSION
    from darkmap.store.team import init_server
    db = ServerDb()
    try:
        names = {}
        with open_ops_server(db.admin) as ops:
            for agency in ("a", "b"):
                access.add_agency(ops.con, "setup", agency, agency.upper(), "DE", f"{agency} d")
            access.add_user(ops.con, "setup", "root", "a", "admin")
            access.add_user(ops.con, "root", "b-root", "b", "admin")
        for agency in ("a", "b"):
            names[agency], dsn = db.role(f"off_{agency}")
            names[f"{agency}_dsn"] = dsn
            with open_ops_server(db.admin) as ops:
                access.add_user(ops.con, "root" if agency == "a" else "b-root",
                                names[agency], agency, "officer")
            with open_ops_server(dsn) as ops:
                access.add_compartment(ops.con, names[agency], "agency", f"own-{agency}",
                                       compartment_id=f"own-{agency}")
        with open_ops_server(names["a_dsn"]) as ops:
            first = records.add_record(ops, names["a"], Case("first"), compartment="own-a",
                                       provenance="t", links=[("persona", "p-1"),
                                                              ("account", "m:old")])
            deconflict.submit(ops, names["a"], "own-a", [("persona", "p-kept")])
        db.sql("DROP INDEX ops_selectors_once; ALTER TABLE ops_selectors DROP COLUMN form; "
               "ALTER TABLE ops_selectors ADD PRIMARY KEY (selector_hmac, kind, "
               "compartment_id); UPDATE ops_schema SET version = 8")
        before = db.sql("SELECT * FROM ops_selectors ORDER BY 1")
        done = init_server(db.admin)
        assert (done.ops_upgraded_from, done.ops_version) == (8, OPS_SCHEMA_VERSION) == (8, 11)
        # kept; the form was not stored: a handle is taken as bare (the weaker match)
        assert db.sql("SELECT * FROM ops_selectors ORDER BY 1") == [
            (*r, "bare" if r[1] == "handle" else "exact") for r in before]
        assert {k for k, in db.sql("SELECT kind FROM ops_selectors")} == {"handle", "persona"}

        assert db.sql("SELECT count(*) FROM pg_constraint WHERE conname = "
                      "'ops_selectors_pkey'") == [(0,)]
        with open_ops_server(names["a_dsn"]) as ops:
            records.add_record(ops, names["a"], Arrest("x"), compartment="own-a",
                               provenance="t", links=[("persona", "p-1")])
            records.withdraw_record(ops, names["a"], first.record_id, "duplicate")
        assert db.sql("SELECT count(*) FROM ops_selectors WHERE kind = 'persona' AND "
                      "record_id IS NOT NULL") == [(2,)]
        with open_ops_server(names["b_dsn"]) as ops:
            out = deconflict.submit(ops, names["b"], "own-b",
                                    [("persona", "p-1"), ("persona", "p-kept")])
        assert out.notices == 4     # p-1 through the second record; p-kept as before
        with open_ops_server(names["b_dsn"]) as ops:
            deconflict.submit(ops, names["b"], "own-b", [("handle", "new-name")])
        assert init_server(db.admin).ops_upgraded_from == 11   # again: no row relabelled
        assert db.sql("SELECT form FROM ops_selectors WHERE agency_id = 'b' AND kind = "
                      "'handle'") == [("exact",)]
    finally:
        db.drop()


def test_a_withdrawal_removed_in_the_database_is_seen_by_verify(space: Space) -> None:
    """A withdrawal deleted straight in the database put a mistyped seizure back in the
    totals, unseen by `audit verify` (audit ops, finding 1): the record.withdraw entry
    carries the record's digest with its withdrawal, which verify holds it to."""
    _setup(space)
    typo = records.add_record(space, "ben", Seizure({"heroin": 2500.0}), compartment="tf",
                              operation="Op", provenance="PV 2")
    records.withdraw_record(space, "ben", typo.record_id, "kg typed as g")
    check = audit.verify_records(space.con)
    assert (check.checked, check.broken) == (1, False), check
    space.con.execute("DELETE FROM ops_withdrawals WHERE record_id = ?", [typo.record_id])
    check = audit.verify_records(space.con)
    assert check.changed == (typo.record_id,), check
