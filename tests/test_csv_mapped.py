"""Listing datasets through declarative mappings: real Hansa and Agora files."""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import DATA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from darkmap.collect.ingest import ingest
from darkmap.importers.csv_mapped import (
    MappedCsvReader,
    _cap_line,
    best_mapping,
    sniffing_head,
)
from darkmap.importers.mappings import MappingError, load_mapping, mappings, parse_datetime
from darkmap.importers.mappings import split_cell as mapping_split
from darkmap.model.limits import MAX_FIELD_CHARS
from darkmap.model.records import (
    CutRecord,
    FeedbackRecord,
    ListingBatch,
    ListingRecord,
    MarketRecord,
    QuarantineRecord,
)
from darkmap.plugins import SourceFile, best_importer

HANSA = DATA / "listings" / "hansa-2016-12.csv"
AGORA = DATA / "listings" / "agora-2014"


def _src(path: Path) -> SourceFile:
    with open(path, "rb") as fh:
        return SourceFile(path=path, source=str(path), sha256="0" * 64, head=fh.read(65536))


def _mapping(name: str):  # type: ignore[no-untyped-def]
    return next(m for m in mappings("csv") if m.name == name)


def test_sniff_picks_the_mapping() -> None:
    m, score = best_mapping(_src(HANSA))
    assert m is not None and m.name == "hansa-2016-12" and score >= 0.85
    m, _ = best_mapping(_src(AGORA / "Ag2014-sscSeeds.csv"))
    assert m is not None and m.name == "agora-2014"
    imp = best_importer(_src(HANSA))
    assert imp is not None and imp.name == "csv"


def test_hansa_rows_reconcile() -> None:
    with open(HANSA, newline="", encoding="utf-8") as fh:
        lines = sum(1 for _ in fh)
    reader = MappedCsvReader(HANSA, _mapping("hansa-2016-12"))
    recs = list(reader)
    s = reader.stats
    listings = [r for r in recs if isinstance(r, ListingRecord)]
    quarantined = [r for r in recs if isinstance(r, QuarantineRecord)]
    assert s.rows == lines == 14773
    assert s.rows == s.stored_rows + s.quarantined_rows
    assert len(listings) == s.stored_rows and len(quarantined) == s.quarantined_rows
    # hand-checked: 17 rows with 3-4 fields, line 4690 has no title (price column = "Drugs")
    assert s.quarantine_reasons == {"wrong field count": 17, "field: price": 1}
    q = {r.locator: r for r in quarantined}
    assert "hansa-2016-12.csv line 1185: expected 6-7 fields, found 3" in q["row 1185"].reason
    assert q["row 4690"].field == "price" and "line 4690" in q["row 4690"].reason
    # repeated listing ids are kept as observations, and counted
    refs = [r.listing_ref for r in listings]
    assert s.repeated_listing_rows == len(refs) - len(set(refs)) > 0
    first = listings[0]
    assert (first.listing_ref, first.vendor_handle, first.title, first.price, first.currency,
            first.price_text, first.ships_from, first.category_path, first.locator) == (
        "18365", "ALaurizen", "50gr. FUB-AKB", 340.0, "USD", "USD 340.00", "China",
        ["Drugs"], "row 1")
    assert first.observed_at == datetime(2016, 12, 12, 1, 13, 54, 654635, tzinfo=UTC)
    no_ship = next(r for r in listings if r.locator == "row 2")
    assert no_ship.ships_from is None and no_ship.price == 11.99


def test_hansa_ingest_counts(ws) -> None:  # type: ignore[no-untyped-def]
    summary = ingest(ws, [HANSA])
    [f] = summary.files
    assert f.importer == "csv" and f.error is None
    assert (f.read, f.stored, f.quarantined) == (14773, 14755, 18)
    n_obs, n_listings = ws.con.execute(
        "SELECT count(*), count(DISTINCT listing_id) FROM listing_observations").fetchone()
    assert n_obs == 14755 and n_listings < n_obs
    q = ws.con.execute("SELECT count(*) FROM quarantine WHERE source = ?", [str(HANSA)]).fetchone()
    assert q[0] == 18
    again = ingest(ws, [HANSA]).files[0]
    assert again.already


def test_agora_feedback_and_places() -> None:
    path = AGORA / "Ag2014-sscShakeTrim.csv"
    with open(path, newline="", encoding="utf-8") as fh:
        n_rows = sum(1 for _ in csv.reader(fh)) - 1
    reader = MappedCsvReader(path, _mapping("agora-2014"))
    recs = list(reader)
    listings = [r for r in recs if isinstance(r, ListingRecord)]
    fbs = [r for r in recs if isinstance(r, FeedbackRecord)]
    assert reader.stats.rows == n_rows == len(listings) == 244
    first = listings[0]
    assert first.listing_ref == "psiCgYGvo" and first.vendor_handle == "GucciBuds"
    assert first.price is None and first.price_text == "[1.00e-07,1.49e+00)"
    assert first.currency == "BTC"
    assert first.ships_from == "USA" and first.ships_to == []  # " USA ", "NA" in the file
    assert first.category_path == ["Drugs", "Cannabis", "Shake/trim"]
    fb = fbs[0]
    assert fb.locator == "row 2#feedback 1" and fb.rating == 2.0 and fb.rating_scale == 5.0
    assert fb.text.startswith("barley smokeable at all")
    assert fb.left_at == datetime(2014, 6, 19, tzinfo=UTC)  # 117 days before 10-14
    assert fb.vendor_handle == "GucciBuds" and fb.listing_ref == "psiCgYGvo"
    # repeated crawls do not multiply reviews
    assert reader.stats.map.feedback_duplicates_skipped > len(fbs)
    keys = [(f.listing_ref, f.rating, f.text, f.left_at) for f in fbs]
    assert len(keys) - len(set(keys)) < len(keys) // 20


def test_parse_datetime_zones() -> None:
    assert parse_datetime("2016-12-11 20:13:54.654635085 -0500 EST") == datetime(
        2016, 12, 12, 1, 13, 54, 654635, tzinfo=UTC)
    assert parse_datetime("2014-01-09") == datetime(2014, 1, 9, tzinfo=UTC)
    assert parse_datetime("13/07/2016", "%d/%m/%Y") == datetime(2016, 7, 13, tzinfo=UTC)


def test_bad_mapping_is_reported(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("format: csv\nname: x\nmarket: {id: x}\nrecords:\n  - type: listing\n"
                 "    fields: {colour: {column: a}}\n")
    with pytest.raises(MappingError, match="ListingRecord has no field 'colour'"):
        load_mapping(p)


_cell = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
_good = st.tuples(st.just("2016-12-11 20:13:54.1 -0500 EST"), st.integers(1, 99).map(str),
                  _cell, _cell, st.sampled_from(["USD 1.00", "USD 1,320.31", "EUR 3", "x"]),
                  _cell)


@given(st.lists(st.one_of(_good.map(list), st.lists(_cell, max_size=9)), max_size=30))
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_random_rows_reconcile(tmp_path: Path, rows: list[list[str]]) -> None:
    path = tmp_path / "rand.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, quoting=csv.QUOTE_ALL).writerows(rows)
    reader = MappedCsvReader(path, _mapping("hansa-2016-12"))
    recs = list(reader)
    s = reader.stats
    assert s.rows == s.stored_rows + s.quarantined_rows
    units = {r.locator.split("#")[0] for r in recs if not isinstance(r, MarketRecord)}
    assert isinstance(recs[0], MarketRecord) and recs[0].market_id == "hansa"
    assert len(units) == s.rows
    assert sum(isinstance(r, QuarantineRecord) for r in recs) == s.quarantined_rows


# ---------------------------------------------------------------- hostile files (issue 18)

HANSA_HEAD = HANSA.read_bytes().splitlines(keepends=True)[:300]


def _read_hansa(path: Path) -> tuple[MappedCsvReader, list[Any]]:
    reader = MappedCsvReader(path, _mapping("hansa-2016-12"), columnar=True)
    return reader, list(reader)


def _units(recs: list[Any]) -> tuple[set[str], set[str]]:
    """Units stored (listings) and quarantined."""
    stored: set[str] = set()
    for r in recs:
        if isinstance(r, ListingBatch):
            stored.update(r.locators)
        elif isinstance(r, ListingRecord):
            stored.add(r.locator)
    return stored, {r.locator for r in recs if isinstance(r, QuarantineRecord)}


def test_byte_order_marks_are_read(tmp_path: Path) -> None:
    plain = tmp_path / "plain-hansa.csv"
    plain.write_bytes(b"".join(HANSA_HEAD))
    want = _units(_read_hansa(plain)[1])
    text = b"".join(HANSA_HEAD).decode()
    for name, data in (("bom8-hansa.csv", codecs.BOM_UTF8 + text.encode()),
                       ("bom16-hansa.csv", codecs.BOM_UTF16_LE + text.encode("utf-16-le"))):
        p = tmp_path / name
        p.write_bytes(data)
        m, score = best_mapping(_src(p))
        assert m is not None and m.name == "hansa-2016-12" and score >= 0.85
        assert _units(_read_hansa(p)[1]) == want


def test_long_field_is_cut_not_held(tmp_path: Path) -> None:
    line = HANSA_HEAD[4].decode()
    cells = line.rstrip("\n").split('", "')
    long = 'x""' * 1_000_000  # a quoted field of 2,000,000 characters once read
    cells[2] = long
    p = tmp_path / "long-hansa.csv"
    p.write_text("".join(x.decode() for x in HANSA_HEAD[:4]) + '", "'.join(cells) + "\n"
                 + "".join(x.decode() for x in HANSA_HEAD[5:]), encoding="utf-8")
    reader, recs = _read_hansa(p)
    [cut] = [r for r in recs if isinstance(r, CutRecord)]
    whole = 'x"' * 1_000_000
    assert (cut.locator, cut.field, cut.market_id) == ("row 5", "title", "hansa")
    assert (cut.original_chars, cut.kept_chars) == (2_000_000, MAX_FIELD_CHARS)
    assert cut.value_sha256 == hashlib.sha256(whole.encode()).hexdigest()
    stored, quarantined = _units(recs)
    assert "row 5" in stored and len(stored) + len(quarantined) == 300
    assert reader.stats.rows == 300


def test_a_first_row_longer_than_the_head_is_sniffed_whole(ws, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A headerless file whose first row is longer than the 64 KiB head: sniffing saw
    one torn row, no mapping fitted it, and the file was not read (found by fuzzing).
    Sniffing now reads on until the first rows are whole."""
    cells = HANSA_HEAD[0].decode().rstrip("\n").split('", "')
    cells[2] = "x" * 70_000
    p = tmp_path / "dataset.csv"              # no name a mapping looks for
    p.write_text('", "'.join(cells) + "\n" + "".join(x.decode() for x in HANSA_HEAD[1:]),
                 encoding="utf-8")
    src = _src(p)
    assert len(src.head) == 65536 and b"\n" not in src.head
    m, score = best_mapping(src)
    assert m is not None and m.name == "hansa-2016-12" and score == 0.85
    [f] = ingest(ws, [p]).files
    assert (f.importer, f.error, f.read) == ("csv", None, 300)
    assert f.read == f.stored + f.quarantined and f.stored > 280
    title = ws.con.execute("SELECT title FROM listing_observations WHERE locator = 'row 1'"
                           ).fetchone()
    assert title == ("x" * 70_000,)
    # a first row past what sniffing reads (8 MiB) still leaves the file unrecognised
    cells[2] = "x" * (9 << 20)
    p.write_text('", "'.join(cells) + "\n" + "".join(x.decode() for x in HANSA_HEAD[1:]),
                 encoding="utf-8")
    assert best_mapping(_src(p)) == (None, 0.0)
    # a one-line page or JSON file is not read on (it would be parsed as CSV to 8 MiB at
    # every sniff): a real page with its line breaks taken out, and a one-line JSON
    page = next((DATA / "pages" / "hansa").glob("*.htm")).read_bytes()
    for name, data in (("page.html", page.replace(b"\n", b" ") * 4),
                       ("chain.json", b'[{"txid": "' + b"ab" * 40_000 + b'"}]')):
        p.write_bytes(data)
        src = _src(p)
        assert len(src.head) == 65536 and sniffing_head(src) is src, name


def test_stray_quote_costs_one_row(tmp_path: Path) -> None:
    plain = tmp_path / "plain-hansa.csv"
    plain.write_bytes(b"".join(HANSA_HEAD))
    want, _ = _units(_read_hansa(plain)[1])
    lines = list(HANSA_HEAD)
    lines[99] = lines[99].rstrip(b'"\n') + b"\n"  # line 100 loses its last closing quote
    p = tmp_path / "quote-hansa.csv"
    p.write_bytes(b"".join(lines))
    reader, recs = _read_hansa(p)
    stored, quarantined = _units(recs)
    assert quarantined == {"row 100"} and stored == want - {"row 100"}
    q = next(r for r in recs if isinstance(r, QuarantineRecord))
    assert "a quote is probably missing" in q.reason
    # a quote never closed: the rest of the file is read again, line by line
    lines = list(HANSA_HEAD)
    lines[99] = b'"' + lines[99]
    lines[100:] = [x.replace(b'"', b"") for x in lines[100:]]
    p.write_bytes(b"".join(lines))
    reader, recs = _read_hansa(p)
    stored, quarantined = _units(recs)
    assert "row 100" in quarantined and len(stored) + len(quarantined) == 300
    assert stored >= want - {f"row {n}" for n in range(100, 301)}
    assert reader.stats.rows == 300


def test_agora_feedback_split_is_linear_and_unchanged() -> None:
    """The split stops at the last record end: the same matches as the plain pattern."""
    m = _mapping("agora-2014")
    spec = next(r for r in m.rows.records if r.split is not None)
    plain = re.compile(spec.split.pattern.replace("(?<!\\d)", "").replace(
        "(?:[^ \\d]++|\\d++| )*?", ".*?"), re.S)
    assert ".*?" in plain.pattern and "(?<!" not in plain.pattern  # the pattern of issue 18
    with open(AGORA / "Ag2014-sscSynth.csv", newline="", encoding="utf-8") as fh:
        cells = [row[8] for row in csv.reader(fh)][1:]
    assert sum(1 for c in cells if "days ago" in c) > 100
    for cell in cells:
        assert [x.groupdict() for x in mapping_split(spec, cell)] == \
            [x.groupdict() for x in plain.finditer(cell)]
    hostile_cell = "5/5 x " * 20_000 + "1" * 50_000 + " 3 day ago"
    assert list(mapping_split(spec, hostile_cell)) == []


_DIALECTS = [{"delimiter": ",", "quotechar": '"', "skipinitialspace": s, "escapechar": e,
              "doublequote": dq}
             for s in (False, True) for e in (None, "\\") for dq in (True, False) if dq or e]
_DIALECTS.append({"delimiter": ";", "quotechar": "'", "skipinitialspace": False,
                  "escapechar": "\\", "doublequote": False})


@given(st.text(alphabet="ab,;\"'\\ ", max_size=24), st.sampled_from(["\n", "\r\n", "\r", ""]),
       st.sampled_from(_DIALECTS), st.integers(0, 30))
@settings(max_examples=400, deadline=None)
def test_long_line_fields_split_as_the_csv_module_splits(
        text: str, end: str, dialect: dict[str, Any], cut: int) -> None:
    """A long line is rewritten field by field: the csv module reads it back the same."""
    line = text + end
    parts = [line[:cut], line[cut:]] if 0 < cut < len(line) else [line]
    if not line:
        return
    rewritten, cuts = _cap_line(1, parts, lambda: "", dialect)
    assert list(csv.reader([rewritten], **dialect)) == list(csv.reader([line], **dialect))
    assert cuts == []
