"""`darkmap export --case CASE --as USER` (issue #15): the subgraph of the personas and
accounts a case's records link to, read through the user's grants, on the real Hansa
pages. It equals the export narrowed by `--persona` to the same subjects; a user whose
grants do not reach the case gets a one-line refusal and no file; the read is audited."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import darkmap
from darkmap.cli import main
from darkmap.ops import access, audit, records
from darkmap.ops.records import Case, Seizure
from darkmap.store.workspace import Workspace


@pytest.fixture(scope="module")
def case_ws(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[
        tuple[Path, str, str, str, str]]:
    """Real Hansa pages linked; agency A's case links one persona, a seizure in that case
    links an account of another persona; agency B exists with an officer."""
    path = tmp_path_factory.mktemp("exportcase") / "ws"
    with darkmap.init_workspace(path) as ws:
        darkmap.ingest(ws, [data_dir / "pages" / "hansa"])
        darkmap.link(ws)
        (p1, _), (_, a2) = ws.con.execute(
            "SELECT persona_id, min(account_id) FROM persona_members GROUP BY 1 "
            "ORDER BY 1 LIMIT 2").fetchall()
        access.add_agency(ws.con, "setup", "aa", "Agency A", "DE", "a desk")
        access.add_user(ws.con, "setup", "ann", "aa", "admin")
        access.add_agency(ws.con, "ann", "bb", "Agency B", "NL", "b desk")
        access.add_user(ws.con, "ann", "ben", "bb", "officer")
        comp = access.add_compartment(ws.con, "ann", "agency", "A only").compartment_id
        case = records.add_record(ws, "ann", Case("case", "on two vendors"), compartment=comp,
                                  provenance="test", links=[("persona", p1)]).record_id
        records.add_record(ws, "ann", Seizure({"cocaine": 5.0}), compartment=comp,
                           case_id=case, country="DE", provenance="test",
                           links=[("account", a2)])
        empty = records.add_record(ws, "ann", Case("empty", "no links"), compartment=comp,
                                   provenance="test").record_id
    yield path, case, empty, p1, a2


def _export(path: Path, out: Path, *extra: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, ["export", "ftm", "--out", str(out), "-w", str(path),
                                    *extra])
    return res.exit_code, res.output


def test_case_export_is_the_subgraph_of_its_subjects(case_ws: tuple[Path, str, str, str, str],
                                                     tmp_path: Path) -> None:
    path, case, _, persona, account = case_ws
    code, out = _export(path, tmp_path / "case.ftm", "--case", case, "--as", "ann")
    assert code == 0, out
    code, out = _export(path, tmp_path / "subjects.ftm", "--persona", persona,
                        "--persona", account)
    assert code == 0, out
    by_case = (tmp_path / "case.ftm").read_bytes()
    assert by_case == (tmp_path / "subjects.ftm").read_bytes()
    code, _ = _export(path, tmp_path / "all.ftm")
    assert code == 0
    assert 0 < len(by_case.splitlines()) < len((tmp_path / "all.ftm").read_bytes().splitlines())
    with Workspace.open(path) as ws:
        entries = audit.show(ws.con, actor="ann", record=case)
        assert any(e.get("action") == "record.read" for e in entries), entries


def test_a_case_beyond_the_users_grants_is_refused(case_ws: tuple[Path, str, str, str, str],
                                                   tmp_path: Path) -> None:
    path, case, empty, _, _ = case_ws
    code, out = _export(path, tmp_path / "b.ftm", "--case", case, "--as", "ben")
    assert code == 1 and f"no record {case!r}" in out and out.count("\n") == 1
    assert not (tmp_path / "b.ftm").exists()
    code, out = _export(path, tmp_path / "e.ftm", "--case", empty, "--as", "ann")
    assert code == 1 and "links no persona or account" in out
    code, out = _export(path, tmp_path / "n.ftm", "--case", case)
    assert code == 1 and "--case needs --as" in out


def test_case_and_persona_keep_what_both_select(case_ws: tuple[Path, str, str, str, str],
                                                tmp_path: Path) -> None:
    """`--case` with `--persona` (or `--country`) is the accounts both select, as
    `--persona` with `--country` is: a persona outside the case never leaves with it
    (exports audit, finding 6: it was the union)."""
    path, case, _, persona, account = case_ws
    code, out = _export(path, tmp_path / "cp.ftm", "--case", case, "--as", "ann",
                        "--persona", persona)
    assert code == 0, out
    code, out = _export(path, tmp_path / "p.ftm", "--persona", persona)
    assert code == 0, out
    assert (tmp_path / "cp.ftm").read_bytes() == (tmp_path / "p.ftm").read_bytes()
    code, out = _export(path, tmp_path / "c.ftm", "--case", case, "--as", "ann")
    assert code == 0, out
    assert len((tmp_path / "cp.ftm").read_bytes()) < len((tmp_path / "c.ftm").read_bytes())
    with Workspace.open(path) as ws:
        row = ws.con.execute(
            "SELECT min(persona_id) FROM persona_members WHERE persona_id <> ? AND persona_id "
            "NOT IN (SELECT persona_id FROM persona_members WHERE account_id = ?)",
            [persona, account]).fetchone()
    assert row is not None and row[0]
    code, out = _export(path, tmp_path / "x.ftm", "--case", case, "--as", "ann",
                        "--persona", row[0])
    assert code == 1 and "no account of this workspace matches" in out, out
    assert "the case's 2 subject(s)" in out
    assert not (tmp_path / "x.ftm").exists()
