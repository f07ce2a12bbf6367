"""The unit tally counts exactly what one dict of every unit counted (issue #21: the dict
held a string per row, about a gigabyte at ten million rows)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from conftest import DATA

from darkmap.collect.units import UnitTally, unit_of
from darkmap.importers.csv_mapped import CsvImporter
from darkmap.model.records import ListingBatch, QuarantineRecord, Record
from darkmap.plugins import SourceFile


def _reference(events: list[tuple[str, object]]) -> tuple[int, Counter[str]]:
    """The accounting the ingest pipeline did before: one dict entry per unit."""
    units: dict[str, str] = {}
    for kind, payload in events:
        if kind == "batch":
            assert isinstance(payload, list)
            units.update(dict.fromkeys(map(unit_of, payload), "stored"))
        else:
            assert isinstance(payload, tuple)
            unit, outcome = unit_of(str(payload[0])), str(payload[1])
            prior = units.get(unit)
            if prior != "stored":
                units[unit] = outcome if prior is None or outcome == "stored" else prior
    return len(units), Counter(units.values())


def _tally(events: list[tuple[str, object]]) -> tuple[int, Counter[str]]:
    t = UnitTally()
    for kind, payload in events:
        if kind == "batch":
            assert isinstance(payload, list)
            t.add_stored(payload)
        else:
            assert isinstance(payload, tuple)
            t.add(unit_of(str(payload[0])), str(payload[1]))
    return t.counts()


def _same(events: list[tuple[str, object]]) -> tuple[int, Counter[str]]:
    got, ref = _tally(events), _reference(events)
    assert got[0] == ref[0]
    assert +got[1] == +ref[1]
    return got


def _events(recs: list[Record]) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for r in recs:
        if isinstance(r, ListingBatch):
            out.append(("batch", list(r.locators)))
        elif isinstance(r, QuarantineRecord):
            out.append(("one", (unit_of(r.locator), "quarantined")))
    return out


def test_real_csv_counts_reconcile_as_before() -> None:
    path = DATA / "listings" / "hansa-2016-12.csv"
    src = SourceFile(path=path, source=str(path), sha256="0" * 64,
                     head=path.read_bytes()[:65536])
    events = _events(list(CsvImporter().read(src)))
    read, outcomes = _same(events)
    assert read == 14773  # every line of the file is a unit
    assert outcomes["quarantined"] > 0
    assert outcomes["stored"] + outcomes["quarantined"] == read


def test_outcomes_across_batches_and_records() -> None:
    events: list[tuple[str, object]] = [
        ("one", ("row 7", "quarantined")),        # quarantined first, then stored: stored
        ("batch", ["row 5", "row 6", "row 7"]),
        ("one", ("row 5#feedback 2", "quarantined")),  # a sub-record of a stored row
        ("batch", ["row 6", "row 9#feedback 1"]),  # a row in two batches counts once
        ("one", ("row 10", "skipped")),
        ("one", ("row 10", "quarantined")),       # the first outcome of an unstored unit
        ("one", ("page", "stored")),
        ("batch", ["row 007", "insert 1 row 2"]),  # not plain row numbers: kept by name
        ("one", ("row 11", "quarantined")),
    ]
    read, outcomes = _same(events)
    assert read == 9
    assert outcomes == Counter({"stored": 7, "skipped": 1, "quarantined": 1})


@pytest.mark.parametrize("locs", [[], ["row 1"], ["row 0"], ["row 99999999999999999999"],
                                  ["row 1", "row -2"], ["file"]])
def test_odd_batches(locs: list[str]) -> None:
    _same([("batch", locs), ("one", ("row 1", "quarantined"))])


def test_file_of_a_million_rows_holds_numbers_not_strings(tmp_path: Path) -> None:
    t = UnitTally()
    for start in range(1, 1_000_001, 50_000):
        t.add_stored([f"row {n}" for n in range(start, start + 50_000)])
    t.add("row 1000001", "quarantined")
    read, outcomes = t.counts()
    assert read == 1_000_001
    assert outcomes["stored"] == 1_000_000 and outcomes["quarantined"] == 1
    assert not t._other.keys() - {"row 1000001"}  # the rows are numbers, not dict keys
