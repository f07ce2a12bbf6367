"""The CSV bulk path: column-by-column mapping and ListingBatch give the same records,
the same counts and the same stored rows (same ids) as the row-by-row path."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import replace
from datetime import UTC
from pathlib import Path

from conftest import DATA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from darkmap.importers.csv_mapped import MappedCsvReader
from darkmap.importers.mappings import ColumnMapper, load_mapping, mappings
from darkmap.model.records import ListingBatch, MarketRecord, QuarantineRecord
from darkmap.store.workspace import Workspace
from darkmap.store.writer import Provenance, RecordWriter, row_id, row_ids

HANSA = DATA / "listings" / "hansa-2016-12.csv"
AGORA = DATA / "listings" / "agora-2014"

# a headed mapping using every column-safe rule, with a time zone and identifiers
_MAPPING = """\
format: csv
name: test-columnar
market: {id: testmkt, name: Test Market}
null_values: ["", "NA"]
recognise: {header: [when, id, title, vendor, price, cat, from, to, fb, seen]}
csv: {header: true}
records:
  - type: listing
    fields:
      listing_ref: {column: id, parse: int_text, required: true}
      vendor_handle: {column: vendor, required: true}
      title: {column: title, parse: line, required: true}
      price: {column: price, parse: price, currency: EUR}
      category_path: {column: cat, parse: list, sep: /}
      ships_from: {column: from, parse: place}
      ships_to: {column: to, parse: places}
      feedback_count: {column: fb, parse: int}
      observed_at: {column: when, parse: datetime, timezone: "+02:00", required: true}
      url: {column: seen, parse: text}
identifiers:
  - {column: title, field: title}
"""

_HEADER = ["when", "id", "title", "vendor", "price", "cat", "from", "to", "fb", "seen"]
_CELLS = [
    "2016-12-11 20:13:54.654635085 -0500 EST", "2016-12-11T20:13:54Z", "2016-12-11 20:13",
    "2016-02-30 10:00:00", "2016-02-29 23:59:59.1 +2359", "1999-12-31 23:59", "2016-13-01 00:00",
    "\u0662\u0660\u0661\u0666-12-11 20:13:54", " 2016-12-11 20:13:54 UTC", "2016-12-11",
    "18365", " 42 ", "\u0663\u0664", "12a", "", "NA", " NA ", "USD 340.00", "$1,320.31",
    "0.05 BTC", "3", "x", "Title  with  spaces", " lead", "trail ", "tab\there",
    "\u00e9migr\u00e9", "\u0130stanbul wickr: dealer99", "\u017ftuff", "a&amp;b", "back\\slash",
    "jabber me@jabber.de", "1BoatSLRHtKNngkdXEeobR76b53LETtpyT", "Drugs/Cannabis/ Weed ",
    "Ships from: Germany", "\x1ccontrol", "\u00a0nbsp\u00a0", "DE, NL,NA", "7", "1,200",
    # the fixed-offset timestamp shape, and near misses of it
    "2016-02-30 10:00:00.123456789 +0100 CET", "2016-12-11T23:59:59.999999999 +2359",
    "2100-01-01 00:00:00.000000500 -0000 UTC", "2016-12-11 20:13:54.65463508 -0500 EST",
    "2016-12-11 20:13:54.654635085 -0500 ESTXYZ", "2016-12-11 20:13:54.654635085 -0500",
    "2016-12-11 20:13:54.654635085 -05:00 EST", "2016-12-11 24:13:54.654635085 -0500 EST",
]


def _expand(recs: list) -> list:
    out = []
    for r in recs:
        out.extend(r.records() if isinstance(r, ListingBatch) else [r])
    return out


def _key(r: object) -> tuple:
    return (getattr(r, "locator", ""), type(r).__name__, repr(r))


def _both(path: Path, mapping, block: int | None = None) -> tuple:  # type: ignore[no-untyped-def]
    row = MappedCsvReader(path, mapping)
    col = MappedCsvReader(path, mapping, columnar=True)
    if block:
        row.BLOCK = col.BLOCK = block
    return row, list(row), col, list(col)


def test_hansa_columnar_equals_row_path() -> None:
    m = next(x for x in mappings("csv") if x.name == "hansa-2016-12")
    row, a, col, b = _both(HANSA, m)
    assert col.columns is not None  # the bulk path really ran
    batches = [r for r in b if isinstance(r, ListingBatch)]
    assert batches and sum(len(x) for x in batches) == col.stats.stored_rows == 14755
    assert sorted(a, key=_key) == sorted(_expand(b), key=_key)
    assert row.stats.as_dict() == col.stats.as_dict()


def test_agora_is_left_to_the_row_path() -> None:
    m = next(x for x in mappings("csv") if x.name == "agora-2014")
    assert not ColumnMapper.eligible(m.rows)  # feedback split, multi-column fields
    path = AGORA / "Ag2014-sscSeeds.csv"
    row, a, col, b = _both(path, m)
    assert not any(isinstance(r, ListingBatch) for r in b)
    assert a == b and row.stats.as_dict() == col.stats.as_dict()


def _write(tmp: Path, rows: list[list[str]], extra: str = "") -> Path:
    path = tmp / "rows.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, quoting=csv.QUOTE_ALL)
        w.writerow(_HEADER)
        w.writerows(rows)
        fh.write(extra)
    return path


_row = st.lists(st.one_of(st.sampled_from(_CELLS), st.text(max_size=6)), min_size=8,
                max_size=11)


@given(st.lists(_row, max_size=25), st.sampled_from([None, 2, 5]),
       st.sampled_from(["", "\n\n", '"broken,"quote\n', '"open quote\nline two",x\n']))
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_hostile_rows_columnar_equals_row_path(tmp_path: Path, rows: list[list[str]],
                                               block: int | None, tail: str) -> None:
    mapping = load_mapping(_mapping_file(tmp_path))
    path = _write(tmp_path, rows, tail)
    row, a, col, b = _both(path, mapping, block)
    assert col.columns is not None
    assert sorted(a, key=_key) == sorted(_expand(b), key=_key)
    assert row.stats.as_dict() == col.stats.as_dict()
    s = col.stats
    assert s.rows == s.stored_rows + s.quarantined_rows
    units = {r.locator.split("#")[0] for r in _expand(b) if not isinstance(r, MarketRecord)}
    assert len(units) == s.rows


def _mapping_file(tmp: Path) -> Path:
    p = tmp / "test-columnar.yaml"
    p.write_text(_MAPPING, encoding="utf-8")
    return p


def test_rows_are_located_by_their_first_line_across_blocks(tmp_path: Path) -> None:
    mapping = load_mapping(_mapping_file(tmp_path))
    good = ["2016-12-11 20:13:54 +0000", "1", "t", "v", "EUR 1", "a", "DE", "NL", "2", "u"]
    path = tmp_path / "lines.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, quoting=csv.QUOTE_ALL)
        w.writerow(_HEADER)                                   # line 1
        w.writerow(good)                                      # line 2
        fh.write("\n")                                        # line 3: blank
        w.writerow(good[:2] + ["two\nlines"] + good[3:])      # lines 4-5
        w.writerow(good[:3])                                  # line 6: 3 fields
        fh.write('"bad"quote",x\n')                           # line 7: 2 fields
        w.writerow(good)                                      # line 8
    with open(path, newline="", encoding="utf-8") as fh:  # reference: csv's own line count
        reader, starts, prev = csv.reader(fh), [], 0
        for rec in reader:
            if rec:
                starts.append(prev + 1)
            prev = reader.line_num
    for block in (1, 2, 3, 100):
        r = MappedCsvReader(path, mapping, columnar=True)
        r.BLOCK = block
        recs = _expand(list(r))
        units = sorted({int(x.locator.split()[1]) for x in recs
                        if not isinstance(x, MarketRecord)})
        assert units == starts[1:] == [2, 4, 6, 7, 8]
        q = {x.locator: x for x in recs if isinstance(x, QuarantineRecord)}
        assert set(q) == {"row 6", "row 7"} and "found 3" in q["row 6"].reason


def _snapshot(ws: Workspace) -> dict[str, list[tuple]]:
    out = {}
    for t in ("accounts", "listings", "listing_observations", "identifiers", "quarantine",
              "markets"):
        out[t] = ws.con.execute(f"SELECT * EXCLUDE (run_id) FROM {t} ORDER BY ALL"
                                if t == "quarantine" else
                                f"SELECT * FROM {t} ORDER BY ALL").fetchall()
    return out


def _store(path: Path, recs: list, before: list) -> dict[str, list[tuple]]:  # type: ignore[type-arg]
    ws = Workspace.init(path)
    prov = Provenance("ab" * 32, "hansa.csv", "csv@1", None, "run")
    w = RecordWriter(ws.con, autoflush=False)
    for r in before + recs:
        w.add(r, prov)
    w.flush()
    again = RecordWriter(ws.con)  # re-ingest of the same capture: nothing new
    for r in recs:
        again.add(r, prov)
    again.flush()
    out = _snapshot(ws)
    ws.close()
    return out


def test_batches_store_the_same_rows_and_ids(tmp_path: Path) -> None:
    m = next(x for x in mappings("csv") if x.name == "hansa-2016-12")
    rows = list(MappedCsvReader(HANSA, m))
    cols = list(MappedCsvReader(HANSA, m, columnar=True))
    # rows already buffered for the same accounts and listings must still win
    before = [replace(r, locator="early " + r.locator)
              for r in rows[1:400] if not isinstance(r, QuarantineRecord)]
    a = _store(tmp_path / "a", rows, before)
    b = _store(tmp_path / "b", cols, before)
    assert a == b
    assert len(a["listing_observations"]) == 14755 + len(before)


def test_buffer_rollback_drops_a_batch_and_later_rows(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    m = next(x for x in mappings("csv") if x.name == "hansa-2016-12")
    recs = list(MappedCsvReader(HANSA, m, columnar=True))
    prov = Provenance("cd" * 32, "hansa.csv", "csv@1", None, "run")
    w = RecordWriter(ws.con, autoflush=False)
    w.add(recs[0], prov)  # the market row
    mark = w.mark()
    for r in recs:
        w.add(r, prov)
    w.rollback_to(mark)
    assert w.pending == 1
    w.flush()
    assert ws.con.execute("SELECT count(*) FROM listing_observations").fetchone()[0] == 0
    assert ws.con.execute("SELECT count(*) FROM markets").fetchone()[0] == 1
    ws.close()


@given(st.lists(st.tuples(st.text(), st.one_of(st.text(), st.integers(), st.none())),
                min_size=1, max_size=20), st.text())
@settings(max_examples=50, deadline=None)
def test_row_ids_equal_row_id(rows: list[tuple], const: str) -> None:  # type: ignore[type-arg]
    a = [r[0] for r in rows]
    b = [r[1] for r in rows]
    assert row_ids("lst", a, const, b) == [row_id("lst", x, const, y) for x, y in rows]
    assert row_ids(a, "k") == [row_id(x, "k") for x in a]


@given(st.lists(st.one_of(st.text(), st.integers(), st.floats(allow_nan=False), st.none(),
                         st.datetimes()), max_size=9))
@settings(max_examples=200, deadline=None)
def test_row_id_is_each_part_hashed_with_its_separator(parts: list[object]) -> None:
    h = hashlib.blake2b(digest_size=16)
    for p in parts:  # the definition: each part's text, then a unit separator
        h.update(str(p).encode("utf-8", "surrogatepass"))
        h.update(b"\x1f")
    assert row_id(*parts) == h.hexdigest()


_FIXED_PARTS = st.tuples(
    st.integers(1890, 2230), st.integers(0, 13), st.integers(0, 32), st.sampled_from("T "),
    st.integers(0, 24), st.integers(0, 60), st.integers(0, 60), st.integers(0, 10**9 - 1),
    st.sampled_from("+-"), st.integers(0, 24), st.integers(0, 60),
    st.sampled_from(["", " EST", " UTC", " CEST", " X", " ABCDEF"]))


@given(st.lists(_FIXED_PARTS, min_size=1, max_size=30), st.sampled_from(["+00:00", "+02:00"]))
@settings(max_examples=80, deadline=None)
def test_fixed_offset_timestamps_equal_the_row_rule(parts: list[tuple], tz: str) -> None:
    """Cells cut at fixed offsets give the row rule's instant, or fail where it fails."""
    from darkmap.importers.mappings import RowMapper

    cells = [f"{y:04d}-{mo:02d}-{d:02d}{sep}{h:02d}:{mi:02d}:{s:02d}.{f:09d} "
             f"{sg}{oh:02d}{om:02d}{zone}"
             for y, mo, d, sep, h, mi, s, f, sg, oh, om, zone in parts]
    m = load_mapping_text(_MAPPING.replace('timezone: "+02:00"', f'timezone: "{tz}"'))
    cm = ColumnMapper(RowMapper(m, m.rows))
    spec = next(f for f in cm.fields if f.target == "observed_at")
    got, gone = cm._datetime(spec, cells)
    one = cm._one(spec)
    for cell, value, absent in zip(cells, got.to_pylist(), gone.tolist(), strict=True):
        want = one(cell)
        if want is None or type(want) is object:
            assert absent, cell
        else:
            assert not absent and value == want.astimezone(UTC).replace(tzinfo=None), cell


def load_mapping_text(text: str):  # type: ignore[no-untyped-def]
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "test-columnar.yaml"
        p.write_text(text, encoding="utf-8")
        return load_mapping(p)
