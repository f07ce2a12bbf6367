"""Issue 18: one hostile file must never stop, hang or silently thin an ingest.

Every case of :mod:`darkmap.simulate.hostile` is built in a temp folder and ingested by
the CLI (``darkmap ingest --json``) in a subprocess under a 4 GiB address-space cap and
a 60 s timeout. Each run must exit 0, take under 10 s, stay under the case's memory
bound, reconcile (read = stored + quarantined + skipped), match the case's exact
expectation (counts, the units lost, the limit named, proposed summary fields), and
capture nothing that is not a regular file inside the folder. Seconds, CPU seconds and
peak memory are printed per case (``-s`` or ``-rA``) and, when ``DARKMAP_HOSTILE_LOG``
names a file, appended to it as JSON lines.

A property test damages one row tuple of the real Dream dump at a random byte (a quote,
backslash, paren or comma) and checks that exactly that row can be lost, and is then
counted, while every other row is stored.

These tests fail on the code of issue 18's report; they drive its fixes.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

import duckdb
import pytest
from conftest import DATA
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from darkmap.errors import DarkmapError
from darkmap.simulate import hostile
from darkmap.store.workspace import Workspace

CASES = hostile.cases(DATA)


class Baselines:
    """Outcomes of the clean twins, each ingested once per session, on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.done: dict[str, hostile.Outcome | RuntimeError] = {}

    def get(self, name: str) -> hostile.Outcome:
        """The clean twin's outcome (summary, quarantine rows, ``darkmap keys`` failures).

        A baseline that does not ingest is a broken harness, not a hostile finding: its
        error is remembered and raised for every case that needs it.
        """
        if name not in self.done:
            folder, ws = self.root / name / "in", self.root / name / "ws"
            try:
                folder.mkdir(parents=True)
                hostile.BASELINES[name].build(folder)
                run = hostile.run_ingest([folder], ws)
                summary = run.summary
                if run.exit_code != 0 or summary is None:
                    self.done[name] = RuntimeError(
                        f"baseline {name} did not ingest: {run.last_error_line()}")
                else:
                    facts = ws_facts(ws, keys=True)
                    self.done[name] = hostile.Outcome(summary, facts.quarantine_rows,
                                                facts.keys_failed)
            finally:
                hostile.rmtree(self.root / name)
        got = self.done[name]
        if isinstance(got, RuntimeError):
            raise got
        return got


@pytest.fixture(scope="session")
def baselines(tmp_path_factory: pytest.TempPathFactory) -> Baselines:
    """The clean twins' outcomes (lazy)."""
    return Baselines(tmp_path_factory.mktemp("hostile-baselines"))


def quarantine_rows(ws: Path) -> tuple[str, ...] | None:
    """``locator | field | reason`` of every quarantine row, or None if unreadable."""
    try:
        w = Workspace.open(ws, read_only=True)
    except (duckdb.Error, DarkmapError, OSError):
        return None
    try:
        return tuple(f"{loc} | {fld} | {why}" for loc, fld, why in w.con.execute(
            "SELECT locator, field, reason FROM quarantine ORDER BY ALL").fetchall())
    finally:
        w.close()


def stored_units(ws: Path) -> set[str]:
    """Units (locator before '#') with an account observation: the SQL rows stored."""
    w = Workspace.open(ws, read_only=True)
    try:
        return {r[0] for r in w.con.execute(
            "SELECT DISTINCT split_part(locator, '#', 1) FROM account_observations").fetchall()}
    finally:
        w.close()


def ws_facts(ws: Path, keys: bool) -> hostile.WsFacts:
    """Quarantine rows, `darkmap keys` failures (when asked) and captures of a workspace."""
    failed = None
    if keys:
        run = hostile.run_cli(["keys", "-w", str(ws), "--json"])
        doc = run.summary
        failed = int(doc["failed"]) if doc and "failed" in doc else None
    return hostile.WsFacts(quarantine_rows(ws), failed, hostile.capture_shas(ws))


def _log(case: hostile.HostileCase, run: hostile.Run, problems: list[hostile.Problem]) -> str:
    line = {"case": case.name, "kind": case.kind, "issue": case.issue, "fix": case.fix,
            "seconds": round(run.seconds, 2), "cpu_seconds": round(run.cpu_seconds, 2),
            "peak_mb": round(run.peak_mb), "exit": run.exit_code, "signal": run.signal,
            "timed_out": run.timed_out, "totals": (run.summary or {}).get("totals"),
            "problems": [str(p) for p in problems]}
    path = os.environ.get("DARKMAP_HOSTILE_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")
    return (f"hostile {case.name}: {run.seconds:.1f} s (cpu {run.cpu_seconds:.1f} s), "
            f"peak {run.peak_mb:.0f} MB, exit {run.exit_code}"
            f"{' TIMEOUT' if run.timed_out else ''}")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_case(case: hostile.HostileCase, tmp_path: Path, baselines: Baselines) -> None:
    folder, ws = tmp_path / "in", tmp_path / "ws"
    folder.mkdir()
    try:
        try:
            case.build(folder)
        except hostile.CaseUnavailable as exc:
            pytest.skip(f"cannot build on this machine: {exc}")
        expects = case.expect(baselines.get(case.baseline) if case.baseline else None)
        allowed = hostile.regular_file_shas(folder)
        run = hostile.run_ingest([folder], ws)
        first = None
        if case.between_runs is not None:
            first = run
            case.between_runs(folder)
            allowed |= hostile.regular_file_shas(folder)
            run = hostile.run_ingest([folder], ws)
        problems = hostile.check(case, expects, run, ws_facts(ws, keys=case.kind == "pgp"), allowed)
        if first is not None and (first.exit_code != 0 or first.timed_out):
            problems.insert(0, hostile.Problem("abort", f"first run: {first.last_error_line()}"))
    finally:
        hostile.rmtree(folder)
        hostile.rmtree(ws)
    print(_log(case, run, problems))
    assert not problems, f"{case.name} ({case.note or case.kind}):\n  " + "\n  ".join(
        map(str, problems))


# ------------------------------------------------------------------ property: one row

_DUMP = DATA / "seized" / "dream-2016-sellers.sql"


@lru_cache(maxsize=1)
def dream_rows() -> tuple[hostile.DumpRow, ...]:
    """The real Dream dump's row tuples, found independently of darkmap's parser."""
    return tuple(hostile.dump_rows(_DUMP.read_bytes()))


@settings(max_examples=20, derandomize=True, deadline=None, database=None,
          phases=(Phase.explicit, Phase.generate),
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(index=st.integers(0, 689), column=st.integers(0, 10), where=st.floats(0.0, 1.0),
       byte=st.sampled_from(b"'\\(),"))
def test_one_damaged_dream_row_is_all_that_is_lost(
        index: int, column: int, where: float, byte: int,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """Replace one byte of one value token (quotes included) of one row tuple."""
    raw, dump_rows = _DUMP.read_bytes(), dream_rows()
    assert len(dump_rows) == 690
    row = dump_rows[index]
    a, b = hostile.tuple_value_spans(raw[row.start:row.end])[column]
    pos = row.start + a + min(int(where * (b - a)), b - a - 1)
    if raw[pos] == byte:
        byte = ord(",") if byte != ord(",") else ord("'")
    damaged = raw[:pos] + bytes([byte]) + raw[pos + 1:]
    vals = hostile.tuple_values(damaged[row.start:row.end])
    may_survive = vals is not None and len(vals) == 11
    base = tmp_path_factory.mktemp("dream-row")
    folder, ws = base / "in", base / "ws"
    folder.mkdir()
    (folder / "dream-2016-sellers.sql").write_bytes(damaged)
    try:
        run = hostile.run_ingest([folder], ws)
        assert not run.timed_out and run.exit_code == 0, \
            f"{row.unit} byte {pos} -> {chr(byte)!r}: {run.last_error_line()} ({run.seconds:.0f} s)"
        totals = (run.summary or {}).get("totals", {})
        stored = stored_units(ws)
        rows = quarantine_rows(ws) or ()
    finally:
        hostile.rmtree(base)
    others = {r.unit for r in dump_rows} - {row.unit}
    where_ = f"{row.unit}, byte {pos - row.start} of the tuple -> {chr(byte)!r}"
    assert totals.get("read") == 690, f"{where_}: read {totals.get('read')} of 690 rows"
    assert others <= stored, f"{where_}: {len(others - stored)} untouched rows lost " \
                             f"(e.g. {sorted(others - stored)[:3]})"
    lost_units = {r.split(" | ")[0].split("#")[0] for r in rows} - stored
    if row.unit in stored:
        assert may_survive, f"{where_}: a broken tuple was stored"
        assert totals.get("stored") == 690 and totals.get("quarantined") == 0, where_
    else:
        assert lost_units == {row.unit}, f"{where_}: quarantined units {sorted(lost_units)[:3]}"
        assert (totals.get("stored"), totals.get("quarantined")) == (689, 1), \
            f"{where_}: totals {totals}"
