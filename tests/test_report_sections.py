"""The report's sections: one module each, drawn in a fixed order. (That no package but
store/ holds SQL is checked for the whole tree in test_architecture.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from darkmap.report import html
from darkmap.report.sections import sections


def test_sections_are_one_module_each_in_report_order() -> None:
    assert [key for _, key, _ in sections()] == [
        "collection", "markets", "personas", "targets", "money", "operations", "evaluation"]
    for (_, key, fn), module in zip(sections(), html.BUILTIN_SECTIONS, strict=True):
        assert fn.__module__ == module.__name__ == f"darkmap.report.section_{key}", key




def test_the_collection_and_persona_tables_say_what_they_hold(tmp_path: Path,
                                                             data_dir: Path) -> None:
    """Found by a documentation audit: "Quarantined records (first 30 of 20)", rows
    sorted as text (row 10639 before row 1185), and "strongest evidence" listing signals
    that added nothing to the score (``style=15.75 (+0.00)``)."""
    from darkmap.collect.ingest import ingest
    from darkmap.report.section_collection import collection_section
    from darkmap.report.section_personas import _signals_text
    from darkmap.store.workspace import Workspace

    with Workspace.init(tmp_path / "ws") as ws:
        ingest(ws, [data_dir / "listings" / "hansa-2016-12.csv"])
        n = ws.con.execute("SELECT count(*) FROM quarantine").fetchone()[0]
        assert 1 < n < 30
        [table] = [t for t in collection_section(ws).tables if "Quarantined" in t.caption]
        assert table.caption == f"Quarantined records (all {n})"
        numbers = [int(r[1].split()[-1]) for r in table.rows if r[1].startswith("row ")]
        assert len(numbers) > 1 and numbers == sorted(numbers)
        assert any(len(str(a)) < len(str(b)) for a, b in zip(numbers, numbers[1:], strict=False))
    signals = {"handle": {"value": "same", "contribution": 3.1},
               "style": {"value": 15.75, "contribution": 0.0},
               "symbols": {"value": 0.0, "contribution": -0.4}}
    assert _signals_text(signals) == "handle=same (+3.10)"
    assert _signals_text({"style": {"value": 1.0, "contribution": -1.0}}) == "-"


def test_the_target_table_marks_a_harm_resting_on_no_sales(
        tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> None:
    """The report's target table marks ``*`` a harm score without sales evidence, as
    `darkmap targets` does, and its caption says what the mark means (real data: the
    Hansa personas at the top rank on their listings alone)."""
    from export_workspaces import built, open_ro

    from darkmap.assess.harm import NO_SALES
    from darkmap.report.section_targets import targets_section

    ws = open_ro(built("real", tmp_path_factory, data_dir))
    try:
        sec = targets_section(ws)
    finally:
        ws.close()
    assert sec is not None
    [table] = [t for t in sec.tables if t.caption.startswith("Harm-ranked")]
    harm, rests = table.columns.index("harm"), table.columns.index("orders rest on")
    marked = [str(r[harm]).endswith("*") for r in table.rows]
    assert marked == [r[rests] == NO_SALES for r in table.rows] and any(marked)
    assert "*: no sales evidence" in table.caption
