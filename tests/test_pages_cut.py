"""A saved page cut short (a save or a copy that stopped part-way) says so: a
quarantined unit naming the file, beside whatever the part that arrived gave, never a
silent "no page type matches" or "main/home page" skip."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import DATA

from darkmap.collect.ingest import ingest
from darkmap.extract.engine import extract_page
from darkmap.model.records import ListingRecord, QuarantineRecord, SkipRecord
from darkmap.store.workspace import Workspace

PAGES = DATA / "pages"


def _pages() -> list[Path]:
    return [p for p in sorted(PAGES.rglob("*")) if p.is_file() and not p.name.startswith("LICENSE")]


def _cut_notes(res: object) -> list[QuarantineRecord]:
    return [r for r in res.records  # type: ignore[attr-defined]
            if isinstance(r, QuarantineRecord) and r.locator == "page#cut"]


def test_a_complete_real_page_is_never_called_cut() -> None:
    complete = [p for p in _pages() if p.read_bytes().rstrip().lower().endswith(b"</html>")]
    assert len(complete) > 100
    called = [p.name for p in complete if _cut_notes(extract_page(p.read_bytes(), str(p)))]
    assert called == []


def test_a_real_page_saved_cut_keeps_its_rows_and_says_it_is_cut() -> None:
    # the real search result page stops inside an <img src=" of its last row
    path = PAGES / "empire/search_results/saved_empire_search_result_1"
    res = extract_page(path.read_bytes(), str(path))
    assert any(isinstance(r, ListingRecord) for r in res.records)
    [note] = _cut_notes(res)
    assert str(path) in note.reason and "cut short" in note.reason
    assert "<img src=" in note.reason  # where it ends, so the analyst can see it


@pytest.mark.parametrize("share", [0.2, 0.5, 0.8])
@pytest.mark.parametrize("name", ["empire/saved_empire_category_index_0",
                                  "empire/listings/saved_empire_listing_0",
                                  "dream/listings/listing_0", "hansa/listing_42171_",
                                  "hansa/category_50_"])
def test_a_real_page_cut_part_way_is_quarantined_naming_the_file(name: str, share: float
                                                                   ) -> None:
    matches = sorted(PAGES.glob(name + "*"))
    if not matches:
        pytest.fail(f"no real page {name}")
    data = matches[0].read_bytes()
    res = extract_page(data[:int(len(data) * share)], str(matches[0]))
    [note] = _cut_notes(res)
    assert str(matches[0]) in note.reason
    if all(isinstance(r, (SkipRecord, QuarantineRecord)) for r in res.records):
        # nothing of it was stored: the unit counts as quarantined, not skipped
        assert res.records[0] is note


def test_the_ingest_counts_a_cut_page_quarantined(tmp_path: Path) -> None:
    data = (PAGES / "empire/saved_empire_category_index_0").read_bytes()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "category.html").write_bytes(data[:len(data) // 2])
    ws = Workspace.init(tmp_path / "ws")
    try:
        [f] = ingest(ws, [tmp_path / "in"]).files
        assert (f.read, f.stored, f.quarantined, f.skipped) == (1, 0, 1, 0)
        reason = ws.con.execute("SELECT reason FROM quarantine").fetchall()
        assert len(reason) == 1 and "category.html" in reason[0][0]
        assert "cut short" in reason[0][0]
    finally:
        ws.close()
