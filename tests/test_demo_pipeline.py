"""The main job end to end on a small simulated world: every stage runs and reports."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from darkmap.collect.prefetch import default_jobs
from darkmap.errors import NotFoundError
from darkmap.pipeline import DemoContext, run_stages
from darkmap.report.html import render_report, write_report
from darkmap.store.workspace import Workspace


def test_every_stage_runs_and_the_report_shows_it(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    ctx = DemoContext(world=tmp_path / "ws" / "world", real_data=None, seed=5, vendors=40)
    results = {r.name: r for r in run_stages(ws, ctx)}
    assert {n: r.status for n, r in results.items()} == {
        "simulate": "ok", "ingest": "ok", "link": "ok", "assess": "ok", "money": "ok",
        "evaluate": "ok", "operation": "ok"}
    assert results["ingest"].detail["files_failed"] == 0
    # the demo extracts its pages in worker processes wherever there are cores for them
    by_workers = results["ingest"].detail["pages_by_workers"]
    assert by_workers > 100 if default_jobs() > 1 else by_workers == 0
    keys = {k for (k,) in ws.con.execute("SELECT key FROM evaluations").fetchall()}
    assert keys == {"linking", "chain", "drugs", "sales"}
    # truth.json is the answer key: it must never be ingested as evidence
    assert not ws.con.execute(
        "SELECT count(*) FROM captures WHERE source LIKE '%truth.json'").fetchone()[0]
    html = write_report(ws).read_text(encoding="utf-8")
    for title in ("Collection and provenance", "Personas", "Targets", "Follow the money",
                  "Evaluation against the simulated ground truth", "pills (range)",
                  "customers (range)", "accounts.orders.coverage"):
        assert title in html, title
    assert "<script" not in html.lower()
    # the same workspace gives the same report (only the generation time differs)
    stamp = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}")
    assert stamp.sub("", render_report(ws)) == stamp.sub("", html)
    with pytest.raises(NotFoundError, match="no such folder"):
        write_report(ws, tmp_path / "missing" / "report.html")
    _the_operation(ws, results["operation"].detail, html)
    ws.close()


def _the_operation(ws: Workspace, op: dict[str, object], plain_html: str) -> None:
    """The demo's operation: two agencies of two countries, five records tied to a
    simulated persona, notices to both, a package per country, the totals in the report
    of the lead officer only, an intact audit trail."""
    from darkmap.ops import audit, deconflict, records
    lead, partner = str(op["lead"]), str(op["partner"])
    assert len(set(op["countries"])) == 2 and op["records"] == 5   # type: ignore[arg-type]
    kinds = sorted(r.row.kind for r in records.read_records(ws, lead))
    assert kinds == ["arrest", "buy", "case", "parcel", "seizure"]
    marks = {(m["ref_kind"], m["ref_id"]) for m in records.fentanyl_marks(ws, lead)}
    assert ("persona", op["persona"]) in marks and any(k == "listing" for k, _ in marks)
    for user in (lead, partner):
        assert deconflict.notices(ws, user)
    # the second team of the lead agency: the case team is told of it, by whom to call
    inside = [n for n in deconflict.notices(ws, lead) if n.to_compartment]
    assert inside and {n.other_contact for n in inside} == {lead.replace("-officer", "-admin")}
    assert all("another compartment of your agency" in n.subject for n in inside)
    assert not [n for n in deconflict.notices(ws, partner) if n.to_compartment]
    for cc in op["countries"]:  # type: ignore[attr-defined]
        assert (ws.path / "packages" / cc / "package.json").is_file()
    assert "Operations (as" not in plain_html
    ops_report = write_report(ws, ws.path / "ops.html", user=lead)
    html = ops_report.read_text(encoding="utf-8")
    assert f"Operations (as {lead}" in html and "Operation Demo-Nightjar" in html
    # the operations section holds the agency's records: the file is its owner's only
    assert ops_report.stat().st_mode & 0o777 == 0o600
    assert "0.640" in html and "fentanyl" in html     # 640 g of fentanyl seized
    assert audit.verify(ws.con)[1] is None


def test_the_demo_command_runs_in_a_process_of_its_own(tmp_path: Path, data_dir: Path) -> None:
    # `make demo` runs the console script in a fresh process, where modules load in
    # another order than in this test session's: a native crash there (DuckDB's Arrow
    # scan once segfaulted in a new process only, at the demo's default size: 4 of 4 runs)
    # must fail a test, not just the demo
    script = "import sys; from darkmap.cli import run; sys.argv[0] = 'darkmap'; run()"
    out = subprocess.run([sys.executable, "-c", script, "demo", "--workspace",
                          str(tmp_path / "demo"), "--data", str(data_dir)],
                         check=False, capture_output=True, text=True, env=os.environ.copy(),
                         timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    stages = re.findall(r"^\s+(\w+)\s+(\w+)\s", out.stdout, re.M)
    assert stages == [(s, "ok") for s in ("simulate", "ingest", "link", "assess", "money",
                                          "evaluate", "operation")], out.stdout


def test_the_demo_ends_with_the_users_to_act_as(tmp_path: Path) -> None:
    """The demo's last lines ended with a stage line cut at ``'lead': 'fbi-officer'``:
    nothing said which users it made for `--as`. They now list them by agency and role,
    and the lines name exactly the users the workspace holds; the last says what to run
    next."""
    from click.testing import CliRunner

    from darkmap.cli import main
    from darkmap.ops import access

    (tmp_path / "no-data").mkdir()
    res = CliRunner().invoke(main, ["demo", "-w", str(tmp_path / "demo"), "--vendors", "40",
                                    "--data", str(tmp_path / "no-data")])
    assert res.exit_code == 0, res.output
    tail = res.stdout.split("report: ", 1)[1].splitlines()[1:]
    assert tail[0] == "operational users the demo made (pass one to --as):", tail
    agencies = re.findall(r"^  ([\w-]+) \((\w\w)\): (.+)$", "\n".join(tail), re.M)
    assert len(agencies) == 2 and len({cc for _, cc, _ in agencies}) == 2, tail
    listed = {(agency, user, role) for agency, _, users in agencies
              for user, role in re.findall(r"([\w-]+) \((admin|officer)\b", users)}
    with Workspace.open(tmp_path / "demo") as ws:
        lead = next(u for a, _, us in agencies for u in re.findall(
            r"([\w-]+) \(officer; the lead", us))
        held = {(u.agency_id, u.user_id, u.role) for a in access.list_agencies(ws.con, lead)
                for u in access.list_users(ws.con, f"{a.agency_id}-admin")}
    assert listed == held and {r for _, _, r in listed} == {"admin", "officer"}
    assert tail[-2] == f"  e.g. darkmap ops show --as {lead} -w {tmp_path / 'demo'}"
    assert tail[-1].startswith(f"next: darkmap targets -w {tmp_path / 'demo'} "), tail
