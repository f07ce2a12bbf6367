"""What a test of the operations layer's inputs found (2026-12-07), each on both homes of
the records (a workspace, the team server): text an audit entry cannot hold, a reader
replacing the task force's reported figures, a short CSV row, an empty export taken for
an intact trail, hostile JSON in an export, a record's case not checked when a
compartment is given, amounts that sum to infinity, a reader closing notices, an export
overwritten, arguments that are not UTF-8, and the help's own example refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from ops_backends import Backend

from darkmap.cli import main
from darkmap.errors import BadInputError, NotFoundError
from darkmap.ops import access, audit, deconflict, records, totals
from darkmap.ops.access import AccessDenied
from darkmap.ops.records import Case, Parcel, Seizure
from darkmap.store.operations import Space

REPORTED = Path(__file__).resolve().parents[2] / "shared" / "data" / "operations" / \
    "jcode-operations.csv"


@pytest.fixture
def team(space: Space) -> Space:
    """Two agencies: bka (ana admin, ben officer, compartment ``bka-own``) and nca (olga
    officer, rob reader, compartment ``nca-own`` readable by rob)."""
    con = space.con
    access.add_agency(con, "setup", "bka", "BKA", "DE", "bka desk")
    access.add_user(con, "setup", "ana", "bka", "admin")
    access.add_user(con, "ana", "ben", "bka", "officer")
    access.add_agency(con, "ana", "nca", "NCA", "GB", "nca desk")
    access.add_user(con, "ana", "nelly", "nca", "admin")
    access.add_user(con, "nelly", "olga", "nca", "officer")
    access.add_user(con, "nelly", "rob", "nca", "reader")
    access.add_compartment(con, "ben", "agency", "own", compartment_id="bka-own")
    access.add_compartment(con, "olga", "agency", "own", compartment_id="nca-own")
    return space


def test_text_no_entry_can_hold_is_written_visibly(team: Space) -> None:
    """A NUL in an audited value (an operation name given to the report) made the team
    server take the entry for a tampered one, for good (jsonb holds no NUL); a lone
    surrogate (an argument that was not UTF-8) could not be hashed. Both are written as
    visible escapes; the trail verifies and can be searched by the value as given."""
    with pytest.raises(NotFoundError):
        totals.operation_report(team, "ben", "Op\x00X")
    audit.log(team.con, "ben", "probe", note="caf\udce9 \ud800")
    n, problem = audit.verify(team.con)
    assert problem is None and n > 0
    mine = audit.show(team.con, actor="ben")
    assert any(e.get("operation") == "Op\\x00X" for e in mine)
    assert any(e.get("note") == "caf\\xe9 \\ud800" for e in mine)
    audit.log(team.con, "Op\x00X", "probe")
    assert [e["actor"] for e in audit.show(team.con, actor="Op\x00X")] == ["Op\\x00X"]


def test_a_reader_may_not_replace_the_reported_figures(team: Space, tmp_path: Path) -> None:
    figures = totals.import_reported(team, "ben", REPORTED)
    assert figures["SpecTor"] > 0
    wipe = tmp_path / "wipe.csv"
    wipe.write_text("operation,total_arrests,source_urls\nSpecTor,,\n", encoding="utf-8")
    with pytest.raises(AccessDenied, match="reader"):
        totals.import_reported(team, "rob", wipe)
    assert totals.operation_report(team, "olga", "SpecTor")["reported"]
    assert any(e["action"] == "reported.import" and e["outcome"] == "denied"
               for e in audit.show(team.con, actor="rob"))


@pytest.mark.parametrize(("text", "expect"), [
    ("operation,total_arrests,source_urls\nOpS,5\n", {"OpS": 1}),
    ("total_arrests,operation\n5\n", "row 1: the 'operation' cell is empty"),
    ("operation,total_arrests\nOpT,7,extra,cells\n", {"OpT": 1}),
])
def test_short_and_long_rows_of_reported_figures(team: Space, tmp_path: Path, text: str,
                                                 expect: object) -> None:
    """A row shorter than the header ended in a traceback (DictReader's None)."""
    f = tmp_path / "figures.csv"
    f.write_text(text, encoding="utf-8")
    if isinstance(expect, str):
        with pytest.raises(BadInputError, match=expect):
            totals.import_reported(team, "ben", f)
    else:
        assert totals.import_reported(team, "ben", f) == expect


@pytest.mark.parametrize(("cell", "column"), [
    ("12345678901234567890", "total_arrests"),
    ("1234567890123456.5", "total_arrests"),
    ("a note; 98765432109876543210 pills", "other"),
    ("> $1,234,567,890,123,456,789M", "seized_cash_and_crypto"),
])
def test_a_figure_of_more_digits_than_a_number_holds_is_refused(team: Space, tmp_path: Path,
                                                                cell: str, column: str) -> None:
    """A number of more than 15 significant digits was read as another number (its last
    16 digits, or the float nearest it), stored as the reported figure. The import names
    the row and the column and imports nothing: the figures imported before stay."""
    totals.import_reported(team, "ben", REPORTED)
    before = totals.operation_report(team, "olga", "SpecTor")["reported"]
    f = tmp_path / "figures.csv"
    f.write_text(f'operation,total_arrests,other,seized_cash_and_crypto\nSpecTor,3,,\n'
                 f'SpecTor,"{cell if column == "total_arrests" else "5"}",'
                 f'"{cell if column == "other" else ""}",'
                 f'"{cell if column == "seized_cash_and_crypto" else ""}"\n', encoding="utf-8")
    with pytest.raises(BadInputError, match=rf"row 2, column '{column}': the number "
                                            r"[\d,.]+ has more than 15 significant digits"):
        totals.import_reported(team, "ben", f)
    assert totals.operation_report(team, "olga", "SpecTor")["reported"] == before


@pytest.mark.parametrize(("text", "figures"), [
    ("12,345 pills", [("pills", 12345.0, 12345.0)]),
    ("4,5 pills", [("pills", 45.0, 45.0)]),
    ("20,000,000,000,000,000,000 pills", [("pills", 2e19, 2e19)]),
    ("1.25 pills", [("pills", 1.25, 1.25)]),
    ("> 200,000 pills", [("pills", 200000.0, None)]),
    ("123456789012345 pills", [("pills", 123456789012345.0, 123456789012345.0)]),
])
def test_a_figure_is_read_whole_or_not_at_all(text: str, figures: list[object]) -> None:
    """A number is read whole (its commas and decimals with it), never from the middle
    of a longer one; up to 15 significant digits, whatever its size, are held exactly."""
    _, figs = totals.parse_row({"operation": "Op", "other": text})
    assert [(f.metric, f.low, f.high) for f in figs] == figures


def test_an_export_without_its_head_or_with_hostile_json_is_refused(team: Space,
                                                                    tmp_path: Path) -> None:
    out = tmp_path / "trail.jsonl"
    n = audit.export_trail(team.con, out)
    rows, head = audit.read_export(out)
    assert len(rows) == n and head is not None
    with pytest.raises(BadInputError, match="exists; an export is never overwritten"):
        audit.export_trail(team.con, out)
    lines = out.read_text(encoding="utf-8").splitlines()
    cases = {
        "empty": "",                                    # verified as intact, 0 entries
        "head cut off": "\n".join(lines[:-1]) + "\n",   # verified as a shorter trail
        "deep": "[" * 100_000 + "]" * 100_000 + "\n",   # RecursionError
        "huge seq": json.dumps({"seq": 1, "entry": "", "prev_hash": "", "hash": ""})
        .replace("1", "1e999", 1) + "\n" + lines[-1] + "\n",   # OverflowError
    }
    for name, text in cases.items():
        bad = tmp_path / f"{name}.jsonl"
        bad.write_text(text, encoding="utf-8")
        with pytest.raises(BadInputError, match=r"no head line|not an audit entry"):
            audit.read_export(bad)
    deep_entry = tmp_path / "deep-entry.jsonl"
    row = json.loads(lines[0])
    row["entry"] = "[" * 100_000 + "]" * 100_000
    deep_entry.write_text(json.dumps(row) + "\n" + "\n".join(lines[1:]) + "\n",
                          encoding="utf-8")
    rows, head = audit.read_export(deep_entry)
    problem = audit.verify_chain(rows, head)
    assert problem is not None and problem.seq == 1


def test_a_records_case_is_checked_with_a_compartment_given(team: Space) -> None:
    """With --compartment, --case was not checked: a missing id, a seizure's id, or
    another agency's case was stored as the record's case."""
    theirs = records.add_record(team, "olga", Case("nca case"), compartment="nca-own",
                                provenance="t")
    mine = records.add_record(team, "ben", Case("bka case"), compartment="bka-own",
                              provenance="t")
    seizure = records.add_record(team, "ben", Seizure(firearms=1), compartment="bka-own",
                                 provenance="t", case_id=mine.record_id)
    assert seizure.case_id == mine.record_id
    for case, error in ((theirs.record_id, NotFoundError), ("no-such-case", NotFoundError),
                        (seizure.record_id, BadInputError)):
        with pytest.raises(error):
            records.add_record(team, "ben", Seizure(firearms=1), compartment="bka-own",
                               provenance="t", case_id=case)


def test_a_case_team_with_a_compartment_given_is_refused(team: Space, backend: Backend,
                                                          tmp_path: Path) -> None:
    """``ops case add --member olga --compartment bka-own`` opened the case in bka-own and
    dropped the team without a word: olga was told nothing and could not read it. Members
    name the team of a new case's own compartment; with a compartment given (or on a record
    that is no case) they are refused, saying how to grant access, and nothing is stored."""
    with pytest.raises(BadInputError, match="ops grant bka-own --user USER"):
        records.add_record(team, "ben", Case("with team"), compartment="bka-own",
                           provenance="t", members=["ana"])
    with pytest.raises(BadInputError, match="a seizure takes none"):
        records.add_record(team, "ben", Seizure(firearms=1), compartment="bka-own",
                           provenance="t", members=["ana"])
    res = CliRunner().invoke(main, [
        "ops", "case", "add", "with team", "--member", "ana", "--compartment", "bka-own",
        "--provenance", "p", "--as", "ben", "-w", str(tmp_path / "ws")], env=backend.env)
    assert res.exit_code == 1 and "members name the team" in res.output, res.output
    assert records.read_records(team, "ben", kind="case") == []
    own = records.add_record(team, "ben", Case("own team"), provenance="t", members=["ana"])
    assert own.compartment_id != "bka-own"


def test_amounts_past_any_real_one_are_refused(team: Space) -> None:
    """Two cash amounts of 1e308 summed to infinity in the operation's totals (and the
    report's JSON printed Infinity)."""
    for detail in ({"cash": {"USD": (1e308, None)}}, {"drugs_g": {"heroin": 2e15}}):
        with pytest.raises(BadInputError, match="more than any real seizure"):
            records.add_record(team, "ben", Seizure(**detail), compartment="bka-own",
                               provenance="t")
    records.add_record(team, "ben", Seizure(cash={"USD": (53.4e6, None)}), compartment="bka-own",
                       provenance="t")


def test_a_reader_may_not_acknowledge_the_agencys_notices(team: Space) -> None:
    records.add_record(team, "ben", Parcel(tracking="RR123456789DE"), compartment="bka-own",
                       provenance="t")
    deconflict.submit(team, "olga", "nca-own", [("tracking", "rr 123 456 789 de")])
    [notice] = deconflict.notices(team, "rob")
    with pytest.raises(AccessDenied, match="reader"):
        deconflict.acknowledge(team, "rob", notice.notice_id)
    assert deconflict.notices(team, "olga")[0].acked_by is None
    deconflict.acknowledge(team, "olga", notice.notice_id)


def test_the_cli_refuses_arguments_that_are_not_utf8(team: Space, backend: Backend,
                                                     tmp_path: Path) -> None:
    """A title, a user or an operation that is not UTF-8 (the shell's bytes arrive as
    lone surrogates) ended in a traceback in the store or the audit hash."""
    ws = ["-w", str(tmp_path / "ws")]
    for args in (["ops", "case", "add", "t\udcff", "--provenance", "p", "--compartment",
                  "bka-own", "--as", "ben"],
                 ["ops", "show", "--as", "b\udcffn"],
                 ["ops", "report", "Op\udcff", "--as", "ben"]):
        res = CliRunner().invoke(main, [*args, *ws], env=backend.env)
        assert res.exit_code == 1, (args, res.output, res.exception)
        assert "is not UTF-8 text" in res.output and "Traceback" not in res.output


def test_the_event_helps_own_example_is_taken(team: Space, backend: Backend,
                                              tmp_path: Path) -> None:
    res = CliRunner().invoke(main, [
        "deconflict", "event", "--kind", "search_warrant", "--compartment", "bka-own",
        "--start", "2026-05-01T06:00", "--end", "2026-05-01T09:00", "--lat", "52.37",
        "--lon", "4.89", "--as", "ben", "-w", str(tmp_path / "ws")], env=backend.env)
    assert res.exit_code == 0, res.output
    assert "planned; 0 conflicts" in res.output


def test_what_holds_the_operation_is_its_owners_only(team: Space, tmp_path: Path) -> None:
    """A package, the audit trail's export and the workspace itself hold other agencies'
    and the operation's facts; written with the default mode (0644), every local user
    could read them. The files are 0600, their folders 0700."""
    from darkmap.ops.package import build_package

    def mode(p: Path) -> int:
        return p.stat().st_mode & 0o777

    assert mode(tmp_path / "ws") == 0o700
    out = tmp_path / "packages" / "DE"
    build_package(team, "ben", "DE", out)
    assert mode(out) == 0o700
    assert {p.name: mode(p) for p in out.iterdir()} == {"package.json": 0o600,
                                                       "package.html": 0o600}
    trail = tmp_path / "trail.jsonl"
    audit.export_trail(team.con, trail)
    assert mode(trail) == 0o600
