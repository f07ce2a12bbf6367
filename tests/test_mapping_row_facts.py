"""Every record of a mapped row carries what the row states (docs/data-formats.md).

A plain ``feedback`` record (no ``split``) takes the vendor, listing and listing title
of its row's listing unless it maps them, as feedback cut from one cell does; every
record of a row (feedback, account) takes the row's ``observed_at`` unless it maps its
own; ``scale:`` on a ``rating`` field sets ``rating_scale`` on whatever record maps it.
Checked on real Agora rows, on the simulated Nightshade dump and its built-in mapping,
and on both CSV paths (row by row and column by column).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from darkmap.collect.ingest import ingest
from darkmap.importers.csv_mapped import MappedCsvReader
from darkmap.importers.mappings import (
    ColumnMapper,
    MappingError,
    RowMapper,
    forget_added_mappings,
    load_mapping,
)
from darkmap.model.records import AccountRecord, FeedbackRecord, ListingRecord
from darkmap.simulate import SimParams, simulate
from darkmap.store.workspace import Workspace

ROWS = 120

AGORA_PLAIN_FEEDBACK = """\
format: csv
name: test-agora-plain-feedback
market: {id: agora, name: Agora}
recognise:
  filename: 'agora-plain\\.csv$'
  header: [list, date, vendor, product, price, feedback]
records:
  - type: listing
    fields:
      listing_ref: {column: list, required: true}
      vendor_handle: {column: vendor, required: true}
      title: {column: product, parse: line, required: true}
      price: {column: price, parse: price_range, currency: BTC}
      observed_at: {column: date, parse: date, required: true}
  - type: account
    fields:
      handle: {column: vendor, required: true}
      rating: {column: stars, parse: float, scale: 5}
  - type: feedback
    fields:
      text: {column: feedback, parse: line, required: true}
      rating: {column: stars, parse: float, scale: 5}
"""


@pytest.fixture(autouse=True)
def _no_added_mappings() -> Iterator[None]:
    yield
    forget_added_mappings()


def _agora_rows(data_dir: Path, path: Path) -> list[dict[str, str]]:
    """The first ROWS real Agora rows with a feedback cell, with a made-up star rating
    (the real file has none) in ``stars``: written to ``path``."""
    src = data_dir / "listings" / "agora-2014" / "Ag2014-sscSynth.csv"
    rows = []
    with open(src, encoding="utf-8", newline="") as fh:
        for d in csv.DictReader(fh):
            if d["feedback"].strip():
                rows.append({k: d[k] for k in ("list", "date", "vendor", "product", "price",
                                               "feedback")} | {"stars": str(len(rows) % 5 + 1)})
            if len(rows) == ROWS:
                break
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return rows


def test_plain_feedback_and_accounts_carry_their_rows_listing_time_and_scale(
        data_dir: Path, tmp_path: Path) -> None:
    rows = _agora_rows(data_dir, tmp_path / "agora-plain.csv")
    mapping = tmp_path / "agora-plain.yaml"
    mapping.write_text(AGORA_PLAIN_FEEDBACK, encoding="utf-8")
    m = load_mapping(mapping)
    assert m.rows is not None and not ColumnMapper.eligible(m.rows)
    # the row path and the column path give the same records
    by_row = list(MappedCsvReader(tmp_path / "agora-plain.csv", m))
    by_col = list(MappedCsvReader(tmp_path / "agora-plain.csv", m, columnar=True))
    assert by_row == by_col
    fbs = [r for r in by_row if isinstance(r, FeedbackRecord)]
    accts = [r for r in by_row if isinstance(r, AccountRecord)]
    lsts = {r.locator: r for r in by_row if isinstance(r, ListingRecord)}
    assert len(fbs) == len(accts) == len(lsts) == ROWS
    for fb, acct, row in zip(fbs, accts, rows, strict=True):
        lst = lsts[fb.locator]
        day = datetime.strptime(row["date"], "%Y-%m-%d").replace(tzinfo=UTC)
        assert (fb.vendor_handle, fb.listing_ref, fb.listing_title, fb.observed_at) == (
            row["vendor"], row["list"], lst.title, day)
        assert fb.rating == acct.rating == float(row["stars"])
        assert fb.rating_scale == acct.rating_scale == 5
        assert acct.observed_at == lst.observed_at == day
    # stored so: every feedback attributed and dated, every rating on its scale
    ws = Workspace.init(tmp_path / "ws")
    ingest(ws, [tmp_path / "agora-plain.csv"], mapping_files=[mapping])
    assert ws.con.execute(
        "SELECT count(*), count(f.account_id), count(f.observed_at), count(f.rating_scale), "
        "count(*) FILTER (f.listing_title = o.title AND f.observed_at = o.observed_at "
        "AND f.account_id = o.account_id) FROM feedback f JOIN listing_observations o "
        "ON o.listing_id = f.listing_id AND o.locator = f.locator").fetchone() == (ROWS,) * 5
    assert ws.con.execute(
        "SELECT count(*), count(observed_at), count(rating_scale), count(rating_norm) "
        "FROM account_observations").fetchone() == (ROWS,) * 4
    ws.close()


def _mapper(tmp_path: Path, text: str) -> RowMapper:
    (tmp_path / "m.yaml").write_text(text, encoding="utf-8")
    m = load_mapping(tmp_path / "m.yaml")
    assert m.rows is not None
    return RowMapper(m, m.rows)


def test_what_a_record_maps_itself_wins(tmp_path: Path) -> None:
    text = AGORA_PLAIN_FEEDBACK.replace(
        "      rating: {column: stars, parse: float, scale: 5}\n", "", 1).replace(
        "      text: {column: feedback, parse: line, required: true}\n",
        "      text: {column: feedback, parse: line, required: true}\n"
        "      vendor_handle: {value: someone}\n"
        "      listing_ref: {value: other}\n"
        "      rating_scale: {value: 10}\n"
        "      observed_at: {column: seen, parse: date}\n")
    mapper = _mapper(tmp_path, text)
    row = {"list": "a1", "date": "2014-03-01", "vendor": "v", "product": "Thing",
           "price": "[1.00e-07,1.49e+00)", "feedback": "good", "stars": "4",
           "seen": "2014-04-01"}
    _lst, acct, fb = mapper.map_row(row, "row 2")
    assert isinstance(acct, AccountRecord) and isinstance(fb, FeedbackRecord)
    assert acct.rating is None and acct.rating_scale is None
    assert acct.observed_at == datetime(2014, 3, 1, tzinfo=UTC)
    assert (fb.vendor_handle, fb.listing_ref, fb.listing_title) == ("someone", "other", None)
    assert (fb.rating, fb.rating_scale) == (4, 10)
    assert fb.observed_at == datetime(2014, 4, 1, tzinfo=UTC)
    # no rating, no scale; an undated row stays undated
    _lst, acct, fb = mapper.map_row({**row, "stars": "", "date": "2014-03-01", "seen": ""},
                                    "row 3")
    assert fb.rating is None and fb.observed_at == datetime(2014, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize("scale", ["five", "0", "-5", ".nan", ".inf", "true"])
def test_a_scale_that_is_no_scale_is_refused(tmp_path: Path, scale: str) -> None:
    with pytest.raises(MappingError, match="scale must be a positive number"):
        _mapper(tmp_path, AGORA_PLAIN_FEEDBACK.replace("scale: 5", f"scale: {scale}"))


def test_a_scale_on_another_field_is_refused(tmp_path: Path) -> None:
    text = AGORA_PLAIN_FEEDBACK.replace("text: {column: feedback, parse: line,",
                                        "text: {column: feedback, parse: line, scale: 5,")
    with pytest.raises(MappingError, match="scale is for the rating field"):
        _mapper(tmp_path, text)


def test_simulated_nightshade_dump_stores_every_rating_with_its_scale(tmp_path: Path) -> None:
    # the built-in sim-nightshade-seized mapping says `scale: 5` on its feedback ratings
    simulate(tmp_path / "world", 7, SimParams(vendors=30, chain=False))
    ws = Workspace.init(tmp_path / "ws")
    ingest(ws, [tmp_path / "world" / "seized" / "nightshade.sql"])
    n, rated, scaled = ws.con.execute(
        "SELECT count(*), count(rating), count(*) FILTER (rating_scale = 5) FROM feedback "
        "WHERE market_id = 'nightshade'").fetchone()
    assert n > 0 and rated > 0 and scaled == rated
    ws.close()
