"""The audit trail (issue #13): every read and write of operational records and every
grant change is appended, hash-chained; any single edit, deletion, insertion or swap of
entries is detected and the first bad entry named (property-based), by the library and by
`darkmap audit verify`; the trails on both homes of the records (workspace and team
server)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from ops_backends import Backend

from darkmap.cli import main
from darkmap.errors import BadInputError
from darkmap.ops import access, audit, records
from darkmap.ops.audit import GENESIS, canonical, chain_hash, stamp, verify_chain
from darkmap.ops.records import Case, Seizure
from darkmap.store.audit import AuditRow, append_entry, audit_archives, audit_rows
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


def test_an_admin_of_another_agency_reviews_only_their_agency(ws_path: Path,
                                                             backend: Backend) -> None:
    """`audit show` by an admin of another agency shows none of bka's entries (they name
    bka's records, kinds, compartments and times): not the whole trail, not those of
    one of its users, not those naming one of its records."""
    with backend.open(ws_path) as ws:
        case = records.read_records(ws, "ben", kind="case")[0].row.record_id
        access.add_agency(ws.con, "ana", "politie", "Politie", "NL", "desk NL")
        access.add_user(ws.con, "ana", "piet", "politie", "admin")
        access.add_compartment(ws.con, "piet", "agency", "nl", compartment_id="nl")
    bka = {"ana", "ben"}
    for args in ([], ["--user", "ben"], ["--record", case]):
        code, out = _run("audit", "show", *args, "--json", "--as", "piet", "-w",
                         str(ws_path))
        assert code == 0, out
        entries = json.loads(out)
        assert not [e for e in entries if e["actor"] in bka], args
        assert case not in out, args
    code, out = _run("audit", "show", "--json", "--as", "piet", "-w", str(ws_path))
    assert {(e["actor"], e["action"]) for e in json.loads(out)} >= {
        ("piet", "compartment.add"), ("setup", "agency.add")}
    code, out = _run("audit", "show", "--record", case, "--json", "--as", "ana",
                     "-w", str(ws_path))
    assert code == 0 and {e["actor"] for e in json.loads(out)} == bka


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


# -- retention -----------------------------------------------------------------------------

_LATER = datetime.now(UTC) + timedelta(days=800)
"""An injected clock two years on: every entry written now is past the retention."""
_CUT = datetime.now(UTC) + timedelta(days=1)
"""A cut after every entry a test writes."""


def test_archive_moves_old_entries_and_the_chain_still_verifies(ws_path: Path, tmp_path: Path,
                                                                backend: Backend) -> None:
    first, second = tmp_path / "a1.jsonl", tmp_path / "a2.jsonl"
    with backend.open(ws_path) as ws:
        n, problem = audit.verify(ws.con)
        assert problem is None
        whole = audit_rows(ws.con)
        arc = audit.archive_trail(ws.con, first, _CUT, "ana", now=_LATER)
        assert (arc.seq_from, arc.seq_to, arc.entries) == (1, n, n)
        assert arc.hash_before == GENESIS and arc.hash_last == whole[-1].hash
        live = audit_rows(ws.con)
        assert [r.seq for r in live] == [n + 1]  # the audit.archive entry that attests it
        assert json.loads(live[0].entry)["action"] == "audit.archive"
        assert audit.verify(ws.con) == (1, None)
        assert audit.verify_archives([first], ws.con) == (n, None)
        rows, info, _ = audit.read_archive(first)
        assert rows == whole and info["seq_to"] == n
        # more activity, a second archive: the two files and the trail are the whole chain
        records.read_records(ws, "ben")
        arc2 = audit.archive_trail(ws.con, second, _CUT, "ana", now=_LATER)
        assert arc2.seq_from == n + 1 and arc2.hash_before == arc.hash_last
        assert audit.verify(ws.con)[1] is None
        assert audit.verify_archives([second, first], ws.con) == (arc2.seq_to, None)
        # without the first file the chain does not start at the first entry
        only = audit.verify_archives([second], ws.con)[1]
        assert only is not None and only.seq == 1 and "file before it is missing" in only.reason
        assert [a.file_name for a in audit_archives(ws.con)] == ["a1.jsonl", "a2.jsonl"]


def test_archive_refuses_young_entries_a_broken_trail_and_overwriting(
        ws_path: Path, tmp_path: Path, backend: Backend) -> None:
    out = tmp_path / "a.jsonl"
    with backend.open(ws_path) as ws:
        before = audit_rows(ws.con)
        with pytest.raises(BadInputError, match="at least 365 days"):
            audit.archive_trail(ws.con, out, datetime.now(UTC), "ana")
        with pytest.raises(BadInputError, match="at least 400 days"):
            audit.archive_trail(ws.con, out, datetime.now(UTC) - timedelta(days=390), "ana",
                                min_days=400)
        with pytest.raises(BadInputError, match="no live audit entry is older"):
            audit.archive_trail(ws.con, out, datetime(2020, 1, 1, tzinfo=UTC), "ana")
        out.write_text("something else", encoding="utf-8")
        with pytest.raises(BadInputError, match="never overwritten"):
            audit.archive_trail(ws.con, out, _CUT, "ana", now=_LATER)
        assert out.read_text(encoding="utf-8") == "something else"
        out.unlink()
        victim = before[2]
        ws.con.execute("UPDATE ops_audit SET entry = ? WHERE seq = 3",
                       [victim.entry.replace('"ok"', '"denied"')])
        with pytest.raises(BadInputError, match="does not verify"):
            audit.archive_trail(ws.con, out, _CUT, "ana", now=_LATER)
        assert not out.exists() and audit_archives(ws.con) == []


def test_a_forged_cut_and_an_edited_archive_are_detected(ws_path: Path, tmp_path: Path,
                                                         backend: Backend) -> None:
    out = tmp_path / "a.jsonl"
    with backend.open(ws_path) as ws:
        rows = audit_rows(ws.con)
        k = 4
        # entries deleted straight in the database and an archive row added to cover them
        ws.con.execute("DELETE FROM ops_audit WHERE seq <= ?", [k])
        ws.con.execute("INSERT INTO ops_audit_archives VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       [1, k, GENESIS, rows[k - 1].hash, k, "x", "y", "gone.jsonl", "0" * 64,
                        stamp(), "mallory"])
        problem = audit.verify(ws.con)[1]
        assert problem is not None and problem.seq == k + 1 and "not attested" in problem.reason
    fresh = tmp_path / "ws2"
    Workspace.init(fresh).close()
    backend.reset()
    with backend.open(fresh) as ws:  # a real archive, then its file edited
        access.add_agency(ws.con, "setup", "bka", "BKA", "DE", "desk")
        access.add_user(ws.con, "setup", "ana", "bka", "admin")
        audit.archive_trail(ws.con, out, _CUT, "ana", now=_LATER)
        lines = out.read_text(encoding="utf-8").splitlines()
        row = json.loads(lines[0])
        row["entry"] = row["entry"].replace('"setup"', '"eve"')
        lines[0] = json.dumps(row)
        out.write_text("\n".join(lines) + "\n", encoding="utf-8")
        problem = audit.verify_archives([out], ws.con)[1]
        assert problem is not None and problem.seq == 1 and "a.jsonl" in problem.reason


def test_cli_archive_of_an_old_trail(tmp_path: Path, backend: Backend) -> None:
    """A trail whose first entries are from 2024 (written as darkmap writes them), then
    today's set-up: the CLI archives the old ones with the real clock."""
    path = tmp_path / "ws"
    Workspace.init(path).close()
    backend.reset()
    with backend.open(path) as ws:
        prev = GENESIS
        for seq in range(1, 6):
            text = canonical({"seq": seq, "at": f"2024-03-0{seq}T10:00:00.00Z",
                              "actor": "setup", "action": "record.read", "outcome": "ok"})
            row = AuditRow(seq, text, prev, chain_hash(prev, text))
            append_entry(ws.con, row)
            prev = row.hash
        access.add_agency(ws.con, "setup", "bka", "BKA", "DE", "desk")
        access.add_user(ws.con, "setup", "ana", "bka", "admin")
        access.add_user(ws.con, "ana", "ben", "bka", "officer")
    out = tmp_path / "audit-2024.jsonl"
    code, text = _run("audit", "archive", "--before", "2025-01-01", "--out", str(out),
                      "--as", "ben", "-w", str(path))
    assert code == 1 and "only an admin" in text and not out.exists()
    code, text = _run("audit", "archive", "--before", "2099-01-01", "--out", str(out),
                      "--as", "ana", "-w", str(path))
    assert code == 1 and "at least 365 days" in text and len(text.strip().splitlines()) == 1
    code, text = _run("audit", "archive", "--before", "2024-03-03", "--out", str(out),
                      "--as", "ana", "-w", str(path))
    assert code == 0 and "2 audit entries (1-2" in text, text
    code, text = _run("audit", "verify", "-w", str(path), "--archive", str(out))
    assert code == 0 and "and 2 archived entries in 1 files" in text, text
    # the second cut leaves the first archive's attesting entry (appended today) live
    out2 = tmp_path / "audit-2024b.jsonl"
    code, text = _run("audit", "archive", "--before", "2025-01-01", "--out", str(out2),
                      "--as", "ana", "-w", str(path))
    assert code == 0 and "3 audit entries (3-5" in text, text
    code, text = _run("audit", "verify", "-w", str(path), "--archive", str(out2),
                      "--archive", str(out))
    assert code == 0 and "and 5 archived entries in 2 files" in text, text
    with backend.open(path) as ws:
        assert [a.entries for a in audit_archives(ws.con)] == [2, 3]
        assert min(r.seq for r in audit_rows(ws.con)) == 6


def test_a_trail_deleted_whole_is_broken_while_the_records_remain(ws_path: Path,
                                                                  backend: Backend) -> None:
    """Deleting every entry and the head verified as "intact: 0 entries" while the
    agencies, users, compartments and records stayed (audit ops, finding 3): an empty
    trail, or one without its head, is broken when the operational tables hold anything."""
    with backend.open(ws_path) as ws:
        ws.con.execute("DELETE FROM ops_audit_head")
        problem = audit.verify(ws.con)[1]
        assert problem is not None and "no head" in problem.reason, problem
        ws.con.execute("DELETE FROM ops_audit")
        n, problem = audit.verify(ws.con)
        assert n == 0 and problem is not None and problem.seq == 1, problem
        assert "empty" in problem.reason, problem
    code, out = _run("audit", "verify", "-w", str(ws_path))
    assert code == 1 and "audit trail broken at audit entry 1:" in out, out
    fresh = ws_path.parent / "fresh"
    Workspace.init(fresh).close()
    backend.reset()
    with backend.open(fresh) as ws:   # a new workspace, nothing set up: empty and intact
        assert audit.verify(ws.con) == (0, None)


def _record_ids(ws_path: Path, backend: Backend) -> tuple[str, str]:
    with backend.open(ws_path) as ws:
        rows = ws.con.execute("SELECT record_id, kind FROM ops_records").fetchall()
    ids = {k: r for r, k in rows}
    return ids["case"], ids["seizure"]


def test_what_a_record_says_is_covered_by_the_trail(ws_path: Path, backend: Backend) -> None:
    """An amount, author, lab result or link changed in the database, a record planted or
    deleted: the chain held and `audit verify` said "intact" (audit ops, finding 1). The
    record.add entry carries the digest of the record as stored; verify checks every
    record both ways and names each by id."""
    case, seizure = _record_ids(ws_path, backend)
    with backend.open(ws_path) as ws:
        check = audit.verify_records(ws.con)
        assert (check.checked, check.broken, check.predating) == (2, False, 0), check
        entry = audit.show(ws.con, record=seizure)[0]
        assert entry["action"] == "record.add" and len(entry["digest"]) == 64
    code, out = _run("audit", "verify", "-w", str(ws_path))
    assert code == 0 and "2 records match their digests" in out, out
    with backend.open(ws_path) as ws:
        ws.con.execute("UPDATE ops_seizure_items SET count = 20 WHERE record_id = ?",
                       [seizure])
        ws.con.execute("UPDATE ops_records SET provenance = 'amended' WHERE record_id = ?",
                       [case])
        # a forged seizure: a copy of the real one under a new id, 100 firearms
        ws.con.execute("INSERT INTO ops_records SELECT 'seizure-forged000001', kind, "
                       "compartment_id, agency_id, author, created_at, case_id, operation, "
                       "occurred_on, country, provenance, data FROM ops_records "
                       "WHERE record_id = ?", [seizure])
        ws.con.execute("INSERT INTO ops_seizure_items SELECT 'seizure-forged000001', item, "
                       "substance, grams, 100, currency, amount, usd, address "
                       "FROM ops_seizure_items WHERE record_id = ?", [seizure])
        check = audit.verify_records(ws.con)
        assert check.changed == tuple(sorted([case, seizure])), check
        assert check.planted == ("seizure-forged000001",) and check.deleted == (), check
        ws.con.execute("DELETE FROM ops_seizure_items WHERE record_id = ?", [seizure])
        ws.con.execute("DELETE FROM ops_records WHERE record_id = ?", [seizure])
        check = audit.verify_records(ws.con)
        assert check.deleted == (seizure,) and check.changed == (case,), check
        assert audit.verify(ws.con)[1] is None   # the chain itself still holds
    code, out = _run("audit", "verify", "-w", str(ws_path))
    assert code == 1, out
    assert f"changed since their record.add entry: {case}" in out, out
    assert "planted (no record.add entry): seizure-forged000001" in out, out
    assert f"deleted (an entry, no record): {seizure}" in out, out


def test_records_from_before_the_digest_are_counted_not_failed(ws_path: Path,
                                                               backend: Backend) -> None:
    """A workspace made before entries carried a digest: its records are neither failed
    nor passed in silence; verify says how many predate the digest."""
    from darkmap.ops.records import Case as CaseDetail
    from darkmap.store import operations as store
    with backend.open(ws_path) as ws:   # a record added as darkmap added it until now
        row = store.RecordRow("case-000000old001", "case", "own", "bka", "ben",
                              datetime(2026, 6, 1, 12, 0), None, None, None, "DE", "file 1",
                              {"title": CaseDetail("old").title, "summary": ""})
        store.insert_record(ws.con, row)
        audit.log(ws.con, "ben", "record.add", record=row.record_id, kind="case",
                  compartment="own")
        check = audit.verify_records(ws.con)
        assert (check.checked, check.predating, check.broken) == (2, 1, False), check
    code, out = _run("audit", "verify", "-w", str(ws_path))
    assert code == 0 and "1 records predate the digest" in out, out
