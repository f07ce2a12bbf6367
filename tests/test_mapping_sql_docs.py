"""SQL mappings as docs/data-formats.md shows them, on the real seized Dream dump.

A mapping given with ``--mapping`` reads the tables it names before a built-in mapping
naming the same tables; the SQL mapping example of the doc, copied as it stands, reads
the real dump as the built-in ``dream-2016-sellers`` does (the 690 sellers, each with
its rating out of 5) under a name of its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from darkmap.cli import main
from darkmap.importers.mappings import BUILTIN_MAPPINGS, forget_added_mappings
from darkmap.store.workspace import Workspace

SELLERS = 690  # rows of dnm_dream in the real dump


@pytest.fixture(autouse=True)
def _no_added_mappings() -> Iterator[None]:
    yield
    forget_added_mappings()


def _ingest(ws: Path, dump: Path, *mapping: Path) -> dict:  # type: ignore[type-arg]
    args = ["ingest", "--init", "-q", "--json", "-w", str(ws)]
    for m in mapping:
        args += ["--mapping", str(m)]
    res = CliRunner().invoke(main, [*args, str(dump)])
    assert res.exit_code == 0, res.output
    return dict(json.loads(res.output))


def _rows(ws: Path, sql: str) -> list[tuple]:  # type: ignore[type-arg]
    with Workspace.open(ws, read_only=True) as w:
        return w.con.execute(sql).fetchall()


def test_a_given_mapping_reads_a_table_before_the_built_in(data_dir: Path,
                                                           tmp_path: Path) -> None:
    raw = yaml.safe_load((BUILTIN_MAPPINGS / "dream-2016-sellers.yaml").read_text("utf-8"))
    raw["name"] = "my-dream-sellers"
    raw["market"] = {"id": "dream-copy", "name": "Dream Market (copy)"}
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump(raw), encoding="utf-8")
    ws = tmp_path / "ws"
    summary = _ingest(ws, data_dir / "seized" / "dream-2016-sellers.sql", mine)
    assert summary["totals"]["stored"] == SELLERS
    assert _rows(ws, "SELECT market_id, count(*) FROM accounts GROUP BY 1") == [
        ("dream-copy", SELLERS)]
    # without it, the built-in reads the dump
    forget_added_mappings()
    _ingest(tmp_path / "ws2", data_dir / "seized" / "dream-2016-sellers.sql")
    assert _rows(tmp_path / "ws2", "SELECT market_id, count(*) FROM accounts GROUP BY 1") == [
        ("dream", SELLERS)]

