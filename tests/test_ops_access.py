"""The access matrix (issue #13): users of three agencies in two countries × records in
each compartment kind × every read path (library list, library show, fentanyl marks,
operation totals, CLI list, CLI show, CLI ops report, per-country package, HTML
report): what each user sees is what the grants give, and nothing else (0 leaks).
Writes are checked the same way. Every test runs on both homes of the records: the
workspace (DuckDB) and the team server (a real PostgreSQL, tests/ops_backends.py). The
export read path is in tests/test_ops_export.py."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from collections.abc import Iterator as _Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from ops_backends import Backend

from darkmap.cli import main
from darkmap.errors import BadInputError, NotFoundError
from darkmap.ops import access, records, totals
from darkmap.ops.access import AccessDenied
from darkmap.ops.records import Arrest, Buy, Case, LabResult, Parcel, Seizure
from darkmap.store.operations import Space
from darkmap.store.workspace import Workspace

AGENCIES = {"bka": "DE", "lka-bw": "DE", "fbi": "US"}
ROLES = ("admin", "officer", "reader")
USERS = {f"{a}-{r}": (a, r) for a in AGENCIES for r in ROLES}
KINDS = ("case", "buy", "parcel", "seizure", "arrest")


@dataclass(frozen=True)
class Compartment:
    """A compartment of the matrix and the grants it should end up with."""

    cid: str
    kind: str
    owner: str          # the creating user
    members: tuple[str, ...] = ()
    extra: tuple[tuple[str, str, str], ...] = ()   # (grantee kind, grantee, access)


COMPARTMENTS = (
    Compartment("own-bka", "agency", "bka-officer"),
    Compartment("own-fbi", "agency", "fbi-officer",
                extra=(("user", "lka-bw-reader", "read"),)),
    Compartment("own-lka", "agency", "lka-bw-admin"),
    Compartment("grp-de-us", "group", "bka-admin", members=("fbi",)),
    Compartment("grp-de", "group", "lka-bw-officer", members=("bka",),
                extra=(("agency", "fbi", "read"),)),
    Compartment("tf", "taskforce", "fbi-admin"),
    Compartment("case-lka", "case", "lka-bw-officer", members=("bka-officer",)),
)


def expected_access(user: str, comp: Compartment) -> str | None:
    """The grants, computed independently of the library: 'write', 'read' or None."""
    agency, role = USERS[user]
    owner_agency = USERS[comp.owner][0]
    levels = []
    if comp.kind == "agency" and agency == owner_agency:
        levels.append("write")
    if comp.kind == "group" and agency in {owner_agency, *comp.members}:
        levels.append("write")
    if comp.kind == "taskforce":
        levels.append("write")
    if comp.kind == "case" and user in {comp.owner, *comp.members}:
        levels.append("write")
    for kind, who, level in comp.extra:
        if (kind == "user" and who == user) or (kind == "agency" and who == agency):
            levels.append(level)
    if not levels:
        return None
    return "write" if "write" in levels else "read"


def can_write(user: str, comp: Compartment) -> bool:
    """A write grant and a role that writes."""
    return expected_access(user, comp) == "write" and USERS[user][1] != "reader"


@dataclass
class World:
    """The workspace path, the backend and the record ids by compartment."""

    path: Path
    ids: dict[str, list[str]]
    backend: Backend

    @contextmanager
    def open(self) -> _Iterator[Space]:
        """What the ops functions act on (the workspace, or the server)."""
        with self.backend.open(self.path) as ws:
            yield ws

    @property
    def env(self) -> dict[str, str | None]:
        """The CLI's environment for the same records."""
        return self.backend.env


def _details(cid: str) -> list[records.Detail]:
    """One record of each kind (the buy with a fentanyl lab result, the seizure and
    arrest in the operation)."""
    return [Case(f"case in {cid}"),
            Buy(f"mkt:{cid}-listing", lab=LabResult("fentanyl", 10.0, 1.0)),
            Parcel("DHL", f"TRK-{cid}"),
            Seizure({"heroin": 1000.0}, firearms=1, cash={"USD": (100.0, None)}),
            Arrest(f"person of {cid}")]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, backend: Backend) -> Iterator[World]:
    path = tmp_path_factory.mktemp("ops") / "ws"
    Workspace.init(path).close()
    with backend.open(path) as ws:
        _populate(ws, ids := {})
    yield World(path, ids, backend)


def _populate(ws: Space, ids: dict[str, list[str]]) -> None:
    """Agencies, users, the compartments with their grants and five records in each."""
    for agency, country in AGENCIES.items():
        access.add_agency(ws.con, "setup", agency, agency.upper(), country, f"{agency} desk")
    access.add_user(ws.con, "setup", "bka-admin", "bka", "admin")    # set-up
    for agency in ("fbi", "lka-bw"):                                   # onboarding
        access.add_user(ws.con, "bka-admin", f"{agency}-admin", agency, "admin")
    for user, (agency, role) in USERS.items():
        if role != "admin":
            access.add_user(ws.con, f"{agency}-admin", user, agency, role)
    for comp in COMPARTMENTS:
        access.add_compartment(ws.con, comp.owner, comp.kind, comp.cid, comp.members, comp.cid)
        admin = f"{USERS[comp.owner][0]}-admin"
        for kind, who, level in comp.extra:
            access.grant(ws.con, admin, comp.cid, kind, who, level)
        ids[comp.cid] = [records.add_record(
            ws, comp.owner, d, compartment=comp.cid, operation="Matrix",
            provenance=f"test {comp.cid}", links=[("persona", f"p-{comp.cid}")]).record_id
            for d in _details(comp.cid)]


def _visible(user: str) -> set[str]:
    """The record ids ``user`` should read."""
    return {cid for comp in COMPARTMENTS if expected_access(user, comp) for cid in [comp.cid]}


def test_the_matrix_has_every_case() -> None:
    """Each user sees some compartments and misses others; all kinds are in it."""
    assert {c.kind for c in COMPARTMENTS} == set(access.COMPARTMENT_KINDS)
    assert len(set(AGENCIES.values())) == 2 and len(AGENCIES) == 3
    for user in USERS:
        assert 0 < len(_visible(user)) < len(COMPARTMENTS), user


@pytest.mark.parametrize("user", sorted(USERS))
def test_library_reads_match_the_grants(world: World, user: str) -> None:
    visible = _visible(user)
    with world.open() as ws:
        listed = records.read_records(ws, user)
        assert sorted(r.row.record_id for r in listed) == sorted(
            rid for cid in visible for rid in world.ids[cid])
        assert {r.row.compartment_id for r in listed} == visible
        for cid, rids in world.ids.items():
            for rid in rids:
                if cid in visible:
                    assert records.show_record(ws, user, rid).row.record_id == rid
                else:
                    with pytest.raises(NotFoundError):
                        records.show_record(ws, user, rid)
        marks = records.fentanyl_marks(ws, user)
        assert {m["ref_id"] for m in marks} == (
            {f"mkt:{c}-listing" for c in visible} | {f"p-{c}" for c in visible})
        rec = totals.recorded_totals(ws, user, "Matrix")
        assert rec["arrests"] == len(visible)
        assert rec["firearms"] == len(visible)
        assert rec["drugs_kg"] == pytest.approx(1.0 * len(visible))
        assert rec["cash_usd"] == pytest.approx(100.0 * len(visible))


@pytest.mark.parametrize("user", sorted(USERS))
def test_library_writes_match_the_grants(world: World, user: str) -> None:
    with world.open() as ws:
        for comp in COMPARTMENTS:
            if can_write(user, comp):
                row = records.add_record(ws, user, Case("w"), compartment=comp.cid,
                                         provenance="write test")
                assert row.compartment_id == comp.cid
            else:
                with pytest.raises(AccessDenied):
                    records.add_record(ws, user, Case("w"), compartment=comp.cid,
                                       provenance="write test")


@pytest.mark.parametrize("user", sorted(USERS))
def test_cli_reads_match_the_grants(world: World, user: str) -> None:
    visible = _visible(user)
    hidden = {rid for cid, rids in world.ids.items() if cid not in visible for rid in rids}
    runner = CliRunner()
    res = runner.invoke(main, ["ops", "show", "--json", "--kind", "buy", "--as", user,
                               "-w", str(world.path)], env=world.env)
    assert res.exit_code == 0, res.output
    shown = json.loads(res.output)
    assert {r["compartment_id"] for r in shown} == visible
    assert not any(rid in res.output for rid in hidden)
    text = runner.invoke(main, ["ops", "show", "--as", user, "-w", str(world.path)],
                         env=world.env)
    assert text.exit_code == 0 and not any(rid in text.output for rid in hidden)
    assert not any(f"p-{cid}" in text.output for cid in world.ids if cid not in visible)
    for cid, rids in world.ids.items():
        one = runner.invoke(main, ["ops", "show", rids[1], "--as", user, "-w",
                                   str(world.path)], env=world.env)
        assert (one.exit_code == 0) == (cid in visible), (cid, one.output)
        if cid not in visible:
            assert "lab" not in one.output and "fentanyl" not in one.output
    rep = runner.invoke(main, ["ops", "report", "Matrix", "--json", "--as", user, "-w",
                               str(world.path)], env=world.env)
    assert json.loads(rep.output)["recorded"]["arrests"] == len(visible)


def test_an_unknown_user_sees_nothing_and_is_audited(world: World) -> None:
    with world.open() as ws:
        with pytest.raises(AccessDenied):
            records.read_records(ws, "mallory")
        from darkmap.ops import audit
        assert audit.show(ws.con, "mallory")[-1]["outcome"] == "denied"


def test_grant_changes_need_the_owning_agencys_admin(world: World) -> None:
    with world.open() as ws:
        for user in ("bka-officer", "fbi-admin", "lka-bw-reader"):
            with pytest.raises(AccessDenied):
                access.grant(ws.con, user, "own-bka", "agency", "fbi", "read")
        access.grant(ws.con, "bka-admin", "own-bka", "user", "fbi-reader", "read")
        assert len(records.read_records(ws, "fbi-reader", kind="case")) >= 1
        assert any(r.row.compartment_id == "own-bka"
                   for r in records.read_records(ws, "fbi-reader"))
        assert access.revoke(ws.con, "bka-admin", "own-bka", "user", "fbi-reader")
        assert not any(r.row.compartment_id == "own-bka"
                       for r in records.read_records(ws, "fbi-reader"))
        from darkmap.ops import audit
        actions = [e["action"] for e in audit.show(ws.con, "bka-admin")]
        assert "grant.add" in actions and "grant.revoke" in actions


def test_a_grant_refusal_is_true_and_tells_nothing_of_another_agencys_compartment(
        world: World) -> None:
    """`ops grant de-us ... --as ana` on a compartment that did not exist told ana, an
    admin, that she "may not change the grants of compartment 'de-us' (an admin of its
    owning agency may)": untrue, and for an id another agency owns, a confirmation
    that it exists. A missing id and another agency's now get the same answer, and a
    user who is no admin is told that, whatever the compartment."""
    def refusal(user: str, cid: str) -> str:
        with world.open() as ws, pytest.raises(AccessDenied) as err:
            access.grant(ws.con, user, cid, "agency", "bka", "read")
        return str(err.value)

    missing = refusal("fbi-admin", "no-such-compartment")
    assert missing == ("no compartment 'no-such-compartment' that fbi-admin's agency (fbi) "
                       "owns: an admin changes the grants of their own agency's "
                       "compartments (`darkmap ops compartment list` lists those you hold "
                       "a grant on; `ops compartment add --id` makes one)")
    assert refusal("fbi-admin", "own-lka") == missing.replace("no-such-compartment", "own-lka")
    assert refusal("bka-officer", "own-bka") == ("bka-officer is an officer: only an admin "
                                                  "of the agency that owns a compartment "
                                                  "changes its grants")
    assert refusal("bka-officer", "nope") == refusal("bka-officer", "own-bka")
    assert refusal("fbi-reader", "own-fbi").startswith("fbi-reader is a reader: ")
    res = CliRunner().invoke(main, ["ops", "grant", "own-bka", "--agency", "fbi",
                                    "--as", "fbi-admin", "-w", str(world.path)],
                             env=world.env)
    assert res.exit_code == 1 and res.stderr == (
        "Error: " + missing.replace("no-such-compartment", "own-bka") + "\n")


def test_no_read_of_records_without_a_user() -> None:
    """Every store function that returns operational records or what hangs off them
    takes the user and agency; every ops function takes the acting user."""
    import inspect

    from darkmap.store import operations as store
    for name in ("readable_records", "links_of", "seizure_items", "lab_results",
                 "fentanyl_evidence"):
        params = list(inspect.signature(getattr(store, name)).parameters)
        assert params[1:3] == ["user_id", "agency_id"], name
    for fn in (records.add_record, records.read_records, records.show_record,
               records.fentanyl_marks, totals.recorded_totals, totals.operation_report):
        assert list(inspect.signature(fn).parameters)[1] == "by", fn.__name__


@pytest.mark.parametrize("user", sorted(USERS))
def test_packages_match_the_grants(world: World, user: str, tmp_path: Path) -> None:
    """The package read path: each country's package holds the matrix records the user
    may read in that country, and nothing the user may not read."""
    from darkmap.ops.package import build_package

    visible = _visible(user)
    matrix_ids = {rid for rids in world.ids.values() for rid in rids}
    with world.open() as ws:
        readable = {r.row.record_id for r in records.read_records(ws, user)}
        for country in sorted(set(AGENCIES.values())):
            out = tmp_path / f"pkg-{country}"
            build_package(ws, user, country, out)
            bundle = json.loads((out / "package.json").read_text(encoding="utf-8"))
            got = {r["record_id"] for r in bundle["records"]}
            expected = {rid for comp in COMPARTMENTS if comp.cid in visible
                        and AGENCIES[USERS[comp.owner][0]] == country
                        for rid in world.ids[comp.cid]}
            assert got & matrix_ids == expected, (user, country)
            assert got <= readable
            page = (out / "package.html").read_text(encoding="utf-8")
            assert not any(rid in page for rid in matrix_ids - readable)


@pytest.mark.parametrize("user", sorted(USERS))
def test_report_reads_match_the_grants(world: World, user: str, tmp_path: Path) -> None:
    """The report read path (`darkmap report --as USER`): the operations section counts
    what the user may read, names none of the records or personas the user may not read;
    a report written without a reader holds nothing operational."""
    visible = _visible(user)
    every = {rid for rids in world.ids.values() for rid in rids}
    hidden = {rid for cid, rids in world.ids.items() if cid not in visible for rid in rids}
    out = tmp_path / "report.html"
    res = CliRunner().invoke(main, ["report", "--as", user, "-o", str(out), "-w",
                                    str(world.path)], env=world.env)
    assert res.exit_code == 0, res.output
    page = out.read_text(encoding="utf-8")
    assert f"Operations (as {user} may see them)" in page
    with world.open() as ws:   # the matrix records and any the write test added
        readable = len(records.read_records(ws, user))
    assert re.search(rf"<b>{readable:,}</b>records readable<", page), readable
    assert "Operation Matrix" in page
    assert not any(rid in page for rid in hidden)
    assert not any(f"p-{cid}" in page for cid in world.ids if cid not in visible)
    assert any(rid in page for rid in every - hidden)   # the marks name the readable buys
    plain = tmp_path / "plain.html"
    res = CliRunner().invoke(main, ["report", "-o", str(plain), "-w", str(world.path)],
                             env=world.env)
    assert res.exit_code == 0, res.output
    text = plain.read_text(encoding="utf-8")
    assert "Operations (as" not in text and not any(rid in text for rid in every)


def test_an_operation_the_user_may_not_read_is_not_confirmed(backend: Backend,
                                                              tmp_path: Path) -> None:
    """`ops report` of an operation nobody recorded printed zero totals as if they were
    real, exit 0. Now it is an error listing the operations the user knows of, exit 1;
    an operation recorded only in a compartment the user may not read gets the very same
    message as one that does not exist (its existence is not confirmed), and a name
    differing in case is offered only when the user may read it."""
    backend.reset()
    ws = tmp_path / "ws"
    Workspace.init(ws).close()
    with backend.open(ws) as space:
        access.add_agency(space.con, "setup", "fbi", "FBI", "US", "desk")
        access.add_user(space.con, "setup", "fbi-admin", "fbi", "admin")
        access.add_agency(space.con, "fbi-admin", "bka", "BKA", "DE", "desk")
        access.add_user(space.con, "fbi-admin", "bka-admin", "bka", "admin")
        access.add_compartment(space.con, "fbi-admin", "agency", "fbi own",
                               compartment_id="fbi-own")
        access.add_compartment(space.con, "bka-admin", "agency", "bka own",
                               compartment_id="bka-own")
        records.add_record(space, "fbi-admin", Arrest("x"), compartment="fbi-own",
                           operation="Nightfall", provenance="fbi only")
        records.add_record(space, "bka-admin", Arrest("y"), compartment="bka-own",
                           operation="Morgenrot", provenance="bka only")

    def report(operation: str, user: str) -> Any:
        return CliRunner().invoke(main, ["ops", "report", operation, "--as", user, "-w",
                                         str(ws)], env=backend.env)

    secret, missing = report("Nightfall", "bka-admin"), report("Nosuch", "bka-admin")
    for res, name in ((secret, "Nightfall"), (missing, "Nosuch")):
        assert res.exit_code == 1 and res.stdout == "", res.output
        line = (f"Error: operation '{name}': no record bka-admin may read names it and no "
                "reported figures were imported for it; bka-admin knows of: Morgenrot")
        assert res.stderr.splitlines() == [line]
    assert report("nightfall", "bka-admin").stderr.endswith("knows of: Morgenrot\n")
    assert report("nightfall", "fbi-admin").stderr.endswith("did you mean 'Nightfall'?\n")
    ok = report("Nightfall", "fbi-admin")
    assert ok.exit_code == 0 and "recorded: 1 arrests" in ok.stdout, ok.output
    with backend.open(ws) as space:
        with pytest.raises(NotFoundError, match="knows of: Morgenrot"):
            totals.operation_report(space, "bka-admin", "Nightfall")
        from darkmap.ops import audit
        tried = [e for e in audit.show(space.con, "bka-admin")
                 if e["action"] == "report.recorded"]
    assert [(e["operation"], e["outcome"]) for e in tried] == [
        ("Nightfall", "not_found"), ("Nosuch", "not_found"), ("nightfall", "not_found"),
        ("Nightfall", "not_found")]


def test_ids_that_differ_only_in_case_are_refused(space: Space) -> None:
    """An admin added agency ``FBI`` beside ``fbi`` and its admin ``mole``; a grant typed
    ``--agency FBI`` then went to the look-alike (audit ops, finding 8). Agency and user
    ids are one regardless of case: the refusal names the existing one."""
    con = space.con
    access.add_agency(con, "setup", "fbi", "FBI", "US", "FBI desk")
    access.add_user(con, "setup", "fay", "fbi", "admin")
    access.add_agency(con, "fay", "bka", "BKA", "DE", "BKA desk")
    access.add_user(con, "fay", "ana", "bka", "admin")
    with pytest.raises(BadInputError, match=r"agency FBI: .*'fbi' exists"):
        access.add_agency(con, "ana", "FBI", "FBI", "US", "x")
    with pytest.raises(BadInputError, match=r"user Fay: .*'fay' exists"):
        access.add_user(con, "ana", "Fay", "bka", "officer")
    assert [a.agency_id for a in access.list_agencies(con, "ana")] == ["bka", "fbi"]
    access.add_user(con, "ana", "ben", "bka", "officer")   # other ids are taken as before
