"""DuckDB's buffer pool is held down while files are ingested, and given back after (#21:
a big file's ingest grew by the blocks DuckDB kept cached)."""

from __future__ import annotations

import pytest
from conftest import DATA

from darkmap.collect.ingest import ingest
from darkmap.store.workspace import Workspace
from darkmap.store.writer import INGEST_BUFFER_MB, buffer_limit


def _limit(ws: Workspace) -> str:
    row = ws.con.execute("SELECT current_setting('memory_limit')").fetchone()
    assert row is not None
    return str(row[0])


def _bytes(text: str) -> float:
    value, unit = text.split()
    return float(value) * {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}[unit]


def test_limit_held_inside_and_restored(ws: Workspace) -> None:
    ws.con.execute("SET memory_limit = '3GiB'")
    with buffer_limit(ws.con, 256):
        assert _limit(ws) == "256.0 MiB"
    assert _limit(ws) == "3.0 GiB"
    with pytest.raises(ZeroDivisionError), buffer_limit(ws.con, 256):
        _ = 1 / 0
    assert _limit(ws) == "3.0 GiB"


def test_lower_limit_kept(ws: Workspace) -> None:
    ws.con.execute("SET memory_limit = '100MiB'")
    with buffer_limit(ws.con, 256):
        assert _limit(ws) == "100.0 MiB"
    assert _limit(ws) == "100.0 MiB"


def test_ingest_runs_under_the_cap_and_gives_the_limit_back(ws: Workspace) -> None:
    before = _bytes(_limit(ws))
    seen: list[float] = []
    summary = ingest(ws, [DATA / "listings" / "hansa-2016-12.csv"],
                     progress=lambda _f: seen.append(_bytes(_limit(ws))))
    [f] = summary.files
    assert f.read == f.stored + f.quarantined > 14_000
    assert seen and max(seen) <= INGEST_BUFFER_MB * 2**20
    assert abs(_bytes(_limit(ws)) - before) / before < 0.01  # restored (to DuckDB's rounding)
