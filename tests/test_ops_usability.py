"""The operational commands as a new analyst meets them (usability walk): what `--as`
takes and where to find it, which id `--case` takes, and what the demo left to act as.
On both homes of the records: the workspace (DuckDB) and the team server (PostgreSQL)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from click.testing import CliRunner, Result
from ops_backends import Backend

from darkmap.cli import main
from darkmap.errors import BadInputError
from darkmap.ops import access, records
from darkmap.ops.records import Buy, Case
from darkmap.store.operations import OpsServer, Space


@pytest.fixture
def ws(space: Space) -> Space:
    """Two agencies of two countries: BKA (ana admin, ben officer, rita reader) and the
    FBI (bob admin, fay officer)."""
    access.add_agency(space.con, "setup", "bka", "BKA", "DE", "BKA SO41 desk")
    access.add_user(space.con, "setup", "ana", "bka", "admin")
    access.add_user(space.con, "ana", "ben", "bka", "officer")
    access.add_user(space.con, "ana", "rita", "bka", "reader")
    access.add_agency(space.con, "ana", "fbi", "FBI", "US", "JCODE desk")
    access.add_user(space.con, "ana", "bob", "fbi", "admin")
    access.add_user(space.con, "bob", "fay", "fbi", "officer")
    return space


def _cli(ws: Space, backend: Backend, *args: str) -> Result:
    assert ws.path is not None
    return CliRunner().invoke(main, [*args, "-w", str(ws.path)], env=backend.env)


def test_case_add_says_which_id_is_the_case_and_which_its_compartment(
        ws: Space, backend: Backend) -> None:
    """`ops case add` printed "case case-cc0f... recorded in case-e5a9...": two ids alike,
    and nothing said which one `--case` takes. It now says so; a new compartment's id
    starts with ``cmp-`` (a record's with its kind); a compartment id given to --case is
    named as one; ids of the old form stay valid."""
    ws.close()
    res = _cli(ws, backend, "ops", "case", "add", "Vendor X", "--member", "fay",
               "--provenance", "file 12", "--as", "ben")
    assert res.exit_code == 0, res.output
    m = re.fullmatch(r"case (case-[0-9a-f]{12}) opened \(use --case \1\); its compartment: "
                     r"(cmp-case-[0-9a-f]{10})\n", res.stdout)
    assert m, res.stdout
    case_id, cid = m.groups()
    buy = _cli(ws, backend, "ops", "buy", "add", "--listing", "dream:1", "--case", case_id,
               "--provenance", "lab 7", "--as", "fay")
    assert buy.exit_code == 0, buy.output
    assert re.match(rf"buy buy-[0-9a-f]{{12}} recorded in compartment {cid}\n", buy.stdout)
    wrong = _cli(ws, backend, "ops", "parcel", "add", "--case", cid, "--provenance", "x",
                 "--as", "ben")
    assert wrong.exit_code == 1
    assert (f"Error: {cid} is a compartment, not a case: give it with --compartment, or "
            "give --case the case's record id") in wrong.stderr
    # who holds no grant on it learns nothing of it: the id is "not found" as any other
    hidden = _cli(ws, backend, "ops", "parcel", "add", "--case", cid, "--provenance", "x",
                  "--as", "bob")
    assert hidden.exit_code == 1 and "compartment" not in hidden.stderr, hidden.stderr
    assert hidden.stderr == _cli(ws, backend, "ops", "parcel", "add", "--case", "cmp-nosuch",
                                 "--provenance", "x", "--as", "bob").stderr.replace(
        "cmp-nosuch", cid)


def test_compartment_ids_of_the_old_form_stay_valid(ws: Space) -> None:
    """A compartment made before the ``cmp-`` prefix (``case-`` and 10 hex digits) and
    one given its own id still take records, by --compartment and through their case."""
    old = access.add_compartment(ws.con, "ben", "case", "case team", ["fay"],
                                 compartment_id="case-4a28d3041c")
    case = records.add_record(ws, "ben", Case("old"), compartment=old.compartment_id,
                              provenance="before the prefix")
    buy = records.add_record(ws, "fay", Buy("dream:2"), case_id=case.record_id,
                             provenance="lab 8")
    assert buy.compartment_id == "case-4a28d3041c"
    assert access.add_compartment(ws.con, "ana", "agency", "own").compartment_id.startswith(
        "cmp-agency-")
    with pytest.raises(BadInputError, match="is a compartment, not a case"):
        records.add_record(ws, "ben", Buy("dream:3"), case_id="case-4a28d3041c",
                           provenance="lab 9")


UNKNOWN_AS = ("Error: unknown user 'bne': no user has that id. `darkmap ops user list --as "
              "YOU` lists your agency's users (another agency's: ask its contact, `darkmap "
              "ops agency list`); an admin of your agency adds users (`darkmap ops user add`)")
"""What an `--as` naming no user prints: how to list the users, and no user's id."""


def _compartments(ws: Space) -> None:
    """A case team of ben (BKA) and fay (FBI), an agency compartment of each agency, one
    of the task force."""
    access.add_compartment(ws.con, "ben", "case", "case team", ["fay"],
                           compartment_id="team-1")
    access.add_compartment(ws.con, "ana", "agency", "bka own", compartment_id="bka-own")
    access.add_compartment(ws.con, "bob", "agency", "fbi own", compartment_id="fbi-own")
    access.add_compartment(ws.con, "bob", "taskforce", "all", compartment_id="tf")


def test_each_user_lists_what_the_rules_let_them_see(ws: Space) -> None:
    """There was no way to find the ids `--as` takes. Every user lists the agencies of the
    task force with their contacts, the users of their own agency (an admin every role,
    anyone else the admins and their own role; never another agency's users) and the
    compartments they hold a grant on (with the grants on each); each listing is
    audited."""
    from darkmap.ops import audit
    _compartments(ws)
    for user in ("rita", "fay"):
        assert [(a.agency_id, a.country, a.contact) for a in access.list_agencies(ws.con, user)
                ] == [("bka", "DE", "BKA SO41 desk"), ("fbi", "US", "JCODE desk")]
    assert access.list_users(ws.con, "ana") == [
        ("ana", "bka", "admin"), ("ben", "bka", "officer"), ("rita", "bka", "reader")]
    assert access.list_users(ws.con, "ben") == [
        ("ana", "bka", "admin"), ("ben", "bka", "officer"), ("rita", "bka", None)]
    assert access.list_users(ws.con, "fay") == [("bob", "fbi", "admin"),
                                                ("fay", "fbi", "officer")]
    seen = {u: [(c.compartment_id, c.access, c.grants)
                for c in access.list_compartments(ws.con, u)] for u in ("ben", "fay", "rita")}
    assert seen == {
        "ben": [("bka-own", "write", ("agency:bka:write",)),
                ("team-1", "write", ("user:ben:write", "user:fay:write")),
                ("tf", "write", ("taskforce:*:write",))],
        "fay": [("fbi-own", "write", ("agency:fbi:write",)),
                ("team-1", "write", ("user:ben:write", "user:fay:write")),
                ("tf", "write", ("taskforce:*:write",))],
        "rita": [("bka-own", "read", ("agency:bka:write",)),
                 ("tf", "read", ("taskforce:*:write",))]}
    logged = {(e["actor"], e["action"]) for e in audit.show(ws.con, None)}
    assert {("rita", "agency.list"), ("ana", "user.list"), ("fay", "user.list"),
            ("ben", "compartment.list")} <= logged
    listed = [e for e in audit.show(ws.con, "fay") if e["action"] == "user.list"]
    assert listed[-1]["users"] == ["bob", "fay"]


def test_the_list_commands_and_an_unknown_as(ws: Space, backend: Backend) -> None:
    """`ops agency|user|compartment list` print the same; an `--as` naming no user says so
    and how to list the users, without naming any user (audited as refused)."""
    _compartments(ws)
    ws.close()
    assert ws.path is not None
    users = _cli(ws, backend, "ops", "user", "list", "--as", "ben")
    assert users.exit_code == 0, users.output
    assert [line.split() for line in users.stdout.splitlines()] == [
        ["ana", "bka", "admin"], ["ben", "bka", "officer"], ["rita", "bka"]]
    agencies = _cli(ws, backend, "ops", "agency", "list", "--as", "fay")
    assert agencies.exit_code == 0 and "contact BKA SO41 desk" in agencies.stdout
    comps = _cli(ws, backend, "ops", "compartment", "list", "--as", "fay")
    assert comps.exit_code == 0, comps.output
    assert re.findall(r"^(\S+)\s+(\w+)\s+(\w+) owner (\S+)", comps.stdout, re.M) == [
        ("fbi-own", "agency", "write", "fbi"), ("team-1", "case", "write", "bka"),
        ("tf", "taskforce", "write", "fbi")]
    assert "bka-own" not in comps.stdout and "user:ben:write" in comps.stdout
    for args in (["ops", "show"], ["ops", "user", "list"], ["ops", "compartment", "list"]):
        res = _cli(ws, backend, *args, "--as", "bne")
        assert res.exit_code == 1 and res.stdout == ""
        assert res.stderr.splitlines() == [UNKNOWN_AS]
    from darkmap.ops import audit
    with backend.open(ws.path) as again:
        tried = audit.show(again.con, "bne")
    assert [(e["action"], e["outcome"]) for e in tried] == [("authenticate", "denied")] * 3


def test_a_taken_compartment_id_gets_one_answer_whoever_owns_it(ws: Space,
                                                                backend: Backend) -> None:
    """`compartment add --id` of a taken id answers the same whether the id is the
    user's own agency's or another's, naming no owner, kind or name, and says why ids
    collide (one namespace for the task force: docs/operations.md). Nothing is created
    and the existing compartments keep their ids."""
    _compartments(ws)
    ws.close()
    answers = {}
    for cid in ("bka-own", "fbi-own"):
        res = _cli(ws, backend, "ops", "compartment", "add", "--kind", "agency", "--name",
                   "x", "--id", cid, "--as", "ben")
        assert res.exit_code != 0, res.output
        answers[cid] = res.output.replace(cid, "ID")
        assert "shared by the whole task force" in res.output
        told = answers[cid]
        assert not any(w in told for w in ("fbi", "FBI", "bka", "own", "agency "))
    assert answers["bka-own"] == answers["fbi-own"]
    free = _cli(ws, backend, "ops", "compartment", "add", "--kind", "agency", "--name",
                "x", "--id", "ben-new", "--as", "ben")
    assert free.exit_code == 0 and "compartment ben-new (agency) created" in free.output
    listed = _cli(ws, backend, "ops", "compartment", "list", "--as", "fay")
    assert "fbi-own" in listed.output, listed.output


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)  # a server question only
def test_on_the_team_server_commands_run_beside_a_reader_of_the_workspace(
        ws: Space, backend: Backend) -> None:
    """With ``DARKMAP_OPS_SERVER`` set, every ops, deconflict, audit and package command
    was refused ("workspace ... is in use by another darkmap process") while `darkmap
    serve --server` read the same workspace: each opened it read-write, though only the
    server's records are written. They now open it read-only, as the workbench does; a
    process holding it read-only (here, a child standing in for the workbench) lets
    them read and write the server's records."""
    _compartments(ws)
    ws.close()
    assert isinstance(ws, OpsServer) and ws.workspace is not None and ws.path is not None
    ws.workspace.close()   # this process lets go of the workspace: another process holds it
    hold = ("import sys; from pathlib import Path; "
            "from darkmap.store.workspace import Workspace; "
            "w = Workspace.open(Path(sys.argv[1]), read_only=True); print('held', flush=True); "
            "sys.stdin.read(); w.close()")
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(ws.path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        case = _cli(ws, backend, "ops", "case", "add", "Vendor X", "--compartment", "tf",
                    "--link", "persona:p-1", "--provenance", "file 12", "--as", "ben")
        assert case.exit_code == 0, case.output
        case_id = case.stdout.split()[1]
        for args in (["ops", "show", "--as", "ana"], ["ops", "compartment", "list", "--as",
                                                        "ana"],
                     ["deconflict", "notices", "--as", "ana"], ["audit", "show", "--as", "ana"],
                     ["audit", "verify"], ["package", "--country", "DE", "-o",
                                           str(ws.path.parent / "pkg"), "--as", "ana"],
                     ["report", "--as", "ana", "-o", str(ws.path.parent / "r.html")]):
            res = _cli(ws, backend, *args)
            assert res.exit_code == 0, (args, res.output)
            assert "in use" not in res.output
        # the case is read on the server; this workspace has no personas to export
        export = _cli(ws, backend, "export", "csv", "--case", case_id, "--as", "ana", "-o",
                      str(ws.path.parent / "csv"))
        assert export.stderr == "Error: --persona needs personas: run `darkmap link` first\n"
        assert "Vendor X" in _cli(ws, backend, "ops", "show", "--as", "ben").stdout
    finally:
        holder.communicate("")


def test_an_event_notice_is_listed_whole_with_its_count_of_hits(ws: Space,
                                                                 backend: Backend) -> None:
    """`deconflict notices` cut a notice's subject at 60 characters: an event's lost its
    count of hits ("...overlaps in time and place with an..."), the figure that shows an
    agency fishing for another's action. The line now wraps and shows it all."""
    from datetime import datetime

    from darkmap.ops import deconflict
    _compartments(ws)
    start, end = datetime(2026, 5, 1, 6), datetime(2026, 5, 1, 9)
    mine, _ = deconflict.add_event(ws, "ben", "search_warrant", "bka-own", start, end,
                                   52.52, 13.40, None, 1000.0)
    for lat in (52.521, 52.522):
        deconflict.add_event(ws, "fay", "surveillance", "fbi-own", start, end, lat, 13.40,
                             None, 1000.0)
    ws.close()
    res = _cli(ws, backend, "deconflict", "notices", "--as", "ana")
    assert res.exit_code == 0, res.output
    assert max(len(line) for line in res.stdout.splitlines()) <= 100
    assert res.stdout.count("    ") >= 1   # continued lines are indented
    text = " ".join(res.stdout.split())
    assert text.count(f"event {mine} overlaps in time and place with an event of fbi (2 of "
                      "fbi's events have hit it): fbi has an interest; contact JCODE desk "
                      "[open]") == 2


def test_audit_verify_takes_as_and_show_case_says_when_nothing_is_listed(
        ws: Space, backend: Backend) -> None:
    """`audit verify --as` was refused (every other operational command requires --as);
    `ops show --case` of a case the user may not read, or of none, printed nothing. The
    hint it now prints is one line, the same for a case of another agency and none."""
    _compartments(ws)
    theirs = records.add_record(ws, "bob", Case("FBI only"), compartment="fbi-own",
                                provenance="file 1")
    mine = records.add_record(ws, "ben", Case("BKA"), compartment="bka-own",
                              provenance="file 2")
    ws.close()
    verify = _cli(ws, backend, "audit", "verify", "--as", "ben")
    assert verify.exit_code == 0 and verify.stdout.startswith("audit trail intact: ")
    shown = {}
    for case in (theirs.record_id, "case-000000000000", mine.record_id):
        res = _cli(ws, backend, "ops", "show", "--case", case, "--as", "ben")
        assert res.exit_code == 0 and res.stdout == ""
        shown[case] = res.stderr.replace(case, "X")
    hint = ("no record ben may read belongs to case X; `darkmap ops show --kind case` lists "
            "the cases you may read\n")
    assert set(shown.values()) == {hint}
    help_text = _cli(ws, backend, "ops", "seizure", "add", "--help").stdout
    assert "USD value of the whole lot, not a rate per coin" in " ".join(help_text.split())


def test_a_buys_parcel_is_a_parcel_the_author_may_read(ws: Space, backend: Backend) -> None:
    """`ops buy add --parcel` stored any id as typed: another agency's parcel, or none at
    all (audit ops, finding 10). It is now checked as `--case` is: a parcel record the
    author may read; anything else is refused and nothing is stored."""
    from darkmap.errors import NotFoundError
    from darkmap.ops.records import Parcel
    access.add_compartment(ws.con, "ben", "agency", "bka own", compartment_id="bka-own")
    access.add_compartment(ws.con, "fay", "agency", "fbi own", compartment_id="fbi-own")
    theirs = records.add_record(ws, "ben", Parcel("DHL", "JD0001"), compartment="bka-own",
                                provenance="x")
    mine = records.add_record(ws, "fay", Parcel("UPS", "1Z999"), compartment="fbi-own",
                              provenance="y")
    case = records.add_record(ws, "fay", Case("c"), compartment="fbi-own", provenance="z")
    for wrong, error in ((theirs.record_id, NotFoundError),
                         ("parcel-000000000000", NotFoundError),
                         (case.record_id, BadInputError)):
        with pytest.raises(error):
            records.add_record(ws, "fay", Buy("hansa:1", parcel=wrong),
                               compartment="fbi-own", provenance="y")
    buy = records.add_record(ws, "fay", Buy("hansa:1", parcel=mine.record_id),
                             compartment="fbi-own", provenance="y")
    assert buy.data["parcel"] == mine.record_id
    ws.close()
    res = _cli(ws, backend, "ops", "buy", "add", "--listing", "hansa:1", "--parcel",
               theirs.record_id, "--compartment", "fbi-own", "--provenance", "y", "--as", "fay")
    assert res.exit_code == 1 and "recorded" not in res.stdout, res.output
    assert f"no record {theirs.record_id!r} that fay may read" in res.stderr, res.stderr
    shown = _cli(ws, backend, "ops", "show", "--kind", "buy", "--json", "--as", "fay")
    assert shown.stdout.count('"buy-') == 1, shown.stdout
