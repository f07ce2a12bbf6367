"""SQL mappings as docs/data-formats.md shows them, on the real seized Dream dump.

A mapping given with ``--mapping`` reads the tables it names before a built-in mapping
naming the same tables; the SQL mapping example of the doc, copied as it stands, reads
the real dump as the built-in ``dream-2016-sellers`` does (the 690 sellers, each with
its rating out of 5) under a name of its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from darkmap.cli import main
from darkmap.importers.mappings import BUILTIN_MAPPINGS, forget_added_mappings, mappings
from darkmap.store.workspace import Workspace

DOC = Path(__file__).resolve().parents[1] / "docs" / "data-formats.md"
SELLERS = 690  # rows of dnm_dream in the real dump


@pytest.fixture(autouse=True)
def _no_added_mappings() -> Iterator[None]:
    yield
    forget_added_mappings()


def _doc_sql_example() -> str:
    """The YAML block of the doc's "SQL mappings" section."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("\n## SQL mappings"):]
    section = section[:section.index("\n## ", 1)]
    blocks = re.findall(r"^```yaml\n(.*?)^```", section, re.S | re.M)
    assert len(blocks) == 1, "one yaml example in the SQL mappings section"
    return str(blocks[0])


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


def test_the_docs_sql_example_reads_the_real_dream_dump(data_dir: Path,
                                                        tmp_path: Path) -> None:
    example = _doc_sql_example()
    raw = yaml.safe_load(example)
    builtin = {m.name for m in mappings() if m.path and m.path.parent == BUILTIN_MAPPINGS}
    assert raw["format"] == "sql" and raw["name"] not in builtin  # replaces nothing
    doc = tmp_path / "doc-sql.yaml"
    doc.write_text(example, encoding="utf-8")
    dump = data_dir / "seized" / "dream-2016-sellers.sql"
    ours = _ingest(tmp_path / "doc", dump, doc)
    forget_added_mappings()
    theirs = _ingest(tmp_path / "builtin", dump)
    assert ours["totals"] == theirs["totals"] and ours["records"] == theirs["records"]
    assert ours["totals"]["stored"] == SELLERS and ours["totals"]["quarantined"] == 0
    n, rated, scaled, low, high = _rows(
        tmp_path / "doc", "SELECT count(*), count(rating), count(*) FILTER (rating_scale = 5 "
        "AND rating_norm = rating / 5), min(rating), max(rating) FROM account_observations")[0]
    assert (n, rated, scaled) == (SELLERS,) * 3 and 4.0 <= low <= high <= 5.0
    # what the built-in stores, the example stores too (and the scale besides)
    same = ("SELECT a.handle, o.joined_at, o.rating, o.level, o.sales_count, o.feedback_count,"
            " o.profile_text FROM account_observations o JOIN accounts a USING (account_id) "
            "ORDER BY ALL")
    assert _rows(tmp_path / "doc", same) == _rows(tmp_path / "builtin", same)
    ids = "SELECT kind, value, account_id, field FROM identifiers ORDER BY ALL"
    assert _rows(tmp_path / "doc", ids) == _rows(tmp_path / "builtin", ids)
