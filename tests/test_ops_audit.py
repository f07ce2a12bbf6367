"""The audit trail (issue #13): every read and write of operational records and every
grant change is appended, hash-chained; any single edit, deletion, insertion or swap of
entries is detected and the first bad entry named (property-based), by the library and by
`darkmap audit verify`; the trails on both homes of the records (workspace and team
server)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from ops_backends import Backend

from darkmap.cli import main
from darkmap.ops import access, audit, records
from darkmap.ops.audit import GENESIS, canonical, chain_hash, stamp, verify_chain
from darkmap.ops.records import Case, Seizure
from darkmap.store.audit import AuditRow
from darkmap.store.workspace import Workspace


def _trail(n: int) -> list[AuditRow]:
    """A valid trail of ``n`` entries."""
    rows, prev = [], GENESIS
    for seq in range(1, n + 1):
        text = canonical({"seq": seq, "at": f"2026-01-01T00:00:{seq % 60:02d}.00Z",
                          "actor": f"user{seq % 3}", "action": "record.read",
                          "outcome": "ok", "record": f"case-{seq}"})
        row = AuditRow(seq, text, prev, chain_hash(prev, text))
        rows.append(row)
        prev = row.hash
    return rows


def _head(rows: list[AuditRow]) -> tuple[int, str]:
    return rows[-1].seq, rows[-1].hash


def test_a_valid_trail_holds() -> None:
    rows = _trail(10)
    assert verify_chain(rows, _head(rows)) is None
    assert verify_chain([], None) is None


@st.composite
def tampered(draw: st.DrawFn) -> tuple[list[AuditRow], tuple[int, str], str, int]:
    """A trail with one edit, deletion, insertion or swap; and where it was made."""
    rows = _trail(draw(st.integers(2, 12)))
    head = _head(rows)
    kind = draw(st.sampled_from(["edit", "delete", "insert", "swap", "rehash"]))
    i = draw(st.integers(0, len(rows) if kind == "insert" else len(rows) - 1))
    out = list(rows)
    if kind == "edit":
        entry = json.loads(rows[i].entry)
        field = draw(st.sampled_from(["actor", "action", "outcome", "record", "at"]))
        new = draw(st.text(min_size=1, max_size=8))
        if new == entry[field]:
            new += "x"
        entry[field] = new
        out[i] = rows[i]._replace(entry=canonical(entry))
    elif kind == "rehash":   # an edit whose own hash is recomputed: the next link breaks
        entry = json.loads(rows[i].entry)
        entry["outcome"] = "denied" if entry["outcome"] != "denied" else "ok"
        text = canonical(entry)
        out[i] = rows[i]._replace(entry=text, hash=chain_hash(rows[i].prev_hash, text))
    elif kind == "delete":
        del out[i]
    elif kind == "insert":
        text = canonical({"seq": i + 1, "at": stamp(), "actor": "mallory",
                          "action": "record.read", "outcome": "ok"})
        prev = rows[i - 1].hash if i else GENESIS
        out.insert(i, AuditRow(i + 1, text, prev, chain_hash(prev, text)))
    else:
        j = draw(st.integers(0, len(rows) - 1).filter(lambda j: j != i))
        out[i], out[j] = out[j], out[i]
        i = min(i, j)
    return out, head, kind, i + 1


@settings(max_examples=400, deadline=None)
@given(tampered())
def test_any_single_tampering_is_detected(case: tuple[list[AuditRow], tuple[int, str],
                                                      str, int]) -> None:
    rows, head, kind, first = case
    problem = verify_chain(rows, head)
    assert problem is not None, kind
    if kind in ("edit", "swap"):
        assert problem.seq == first, (kind, problem)
    elif kind == "insert":  # a well-formed forgery: its successor (or the head) breaks
        assert problem.seq in (first, first + 1), (kind, problem)
    elif kind == "rehash":
        assert problem.seq == first + 1 or (first == len(rows) and problem.seq == first)
    else:  # a deletion: at the gap, or at the end when the last entry went
        assert problem.seq == min(first, len(rows) + 1) or problem.seq == first


def test_stamp_is_utc_to_the_hundredth() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d\dZ", stamp())


@pytest.fixture
def ws_path(tmp_path: Path, backend: Backend) -> Path:
    path = tmp_path / "ws"
    Workspace.init(path).close()
    backend.reset()
    with backend.open(path) as ws:
        access.add_agency(ws.con, "setup", "bka", "BKA", "DE", "desk")
        access.add_user(ws.con, "setup", "ana", "bka", "admin")
        access.add_user(ws.con, "ana", "ben", "bka", "officer")
        comp = access.add_compartment(ws.con, "ana", "agency", "own", compartment_id="own")
        rec = records.add_record(ws, "ben", Case("c"), compartment=comp.compartment_id,
                                 provenance="t")
        records.add_record(ws, "ben", Seizure(firearms=1), compartment="own", provenance="t",
                           case_id=rec.record_id)
        records.read_records(ws, "ben")
        records.show_record(ws, "ana", rec.record_id)
        access.grant(ws.con, "ana", "own", "taskforce", "*", "read")
    return path


def test_every_access_is_logged(ws_path: Path, backend: Backend) -> None:
    with backend.open(ws_path) as ws:
        entries = audit.show(ws.con)
        actions = [(e["actor"], e["action"], e["outcome"]) for e in entries]
        assert ("setup", "agency.add", "ok") in actions
        assert ("ana", "user.add", "ok") in actions
        assert ("ben", "record.add", "ok") in actions
        assert ("ben", "record.list", "ok") in actions
        assert ("ana", "record.read", "ok") in actions
        assert ("ana", "grant.add", "ok") in actions
        assert all(set(e) >= {"seq", "at", "actor", "action", "outcome", "from", "hash"}
                   for e in entries)
        rec = [e for e in entries if e["action"] == "record.read"][0]["record"]
        assert {e["action"] for e in audit.show(ws.con, record=rec)} >= {
            "record.add", "record.read", "record.list"}
        assert audit.verify(ws.con) == (len(entries), None)


_ENV: dict[str, str | None] = {}


def _run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, list(args), env=_ENV)
    return res.exit_code, res.output


@pytest.fixture(autouse=True)
def _cli_backend(backend: Backend) -> None:
    """The CLI reaches the records of the backend under test."""
    _ENV.clear()
    _ENV.update(backend.env)


def test_cli_verify_names_the_first_bad_entry(ws_path: Path, backend: Backend) -> None:
    code, out = _run("audit", "verify", "-w", str(ws_path))
    assert code == 0 and "intact" in out
    with backend.open(ws_path) as ws:
        n = len(audit.show(ws.con))
        from darkmap.store.audit import audit_rows
        victim = audit_rows(ws.con)[3]
        forged = victim.entry.replace('"ok"', '"denied"')
        # a tampering made outside darkmap, straight in the database (file or server)
        ws.con.execute("UPDATE ops_audit SET entry = ? WHERE seq = 4", [forged])
    code, out = _run("audit", "verify", "-w", str(ws_path))
    assert code == 1 and "audit entry 4:" in out and f"{n} entries" in out
    with backend.open(ws_path) as ws:
        ws.con.execute("UPDATE ops_audit SET entry = ? WHERE seq = 4", [victim.entry])
        ws.con.execute("DELETE FROM ops_audit WHERE seq = (SELECT max(seq) FROM ops_audit)")
    code, out = _run("audit", "verify", "-w", str(ws_path))
    assert code == 1 and f"audit entry {n}:" in out


def test_cli_show_is_for_admins_and_filters(ws_path: Path) -> None:
    code, out = _run("audit", "show", "--user", "ben", "--json", "--as", "ana",
                     "-w", str(ws_path))
    assert code == 0
    entries = json.loads(out)
    assert entries and all(e["actor"] == "ben" for e in entries)
    code, out = _run("audit", "show", "--as", "ben", "-w", str(ws_path))
    assert code == 1 and "only an admin" in out


def test_export_for_a_court_verifies_and_shows_tampering(ws_path: Path, tmp_path: Path
                                                         ) -> None:
    out = tmp_path / "trail.jsonl"
    code, text = _run("audit", "export", "--out", str(out), "--as", "ana", "-w", str(ws_path))
    assert code == 0 and "audit entries written" in text
    code, text = _run("audit", "verify", "--file", str(out))
    assert code == 0 and "intact" in text
    lines = out.read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[2])
    row["entry"] = row["entry"].replace('"ana"', '"eve"').replace('"ben"', '"eve"')
    lines[2] = json.dumps(row)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, text = _run("audit", "verify", "--file", str(out))
    assert code == 1 and "audit entry 3:" in text
    code, text = _run("audit", "export", "--out", str(out), "--as", "ben", "-w", str(ws_path))
    assert code == 1 and "only an admin" in text
