"""Dataset mappings as a new user meets them (issue #17, "Datasets and the command line").

A CSV of several markets (real Hansa and Agora rows) with a market column and day-number
dates ingests through one mapping file given with ``ingest --mapping``, with the right
markets and dates; a dataset without a date column stores no observation time (NULL)
and adds nothing to activity windows; a file no importer recognises makes ``ingest``
exit 3 naming it, unless ``--allow-unrecognised``; ``darkmap importers`` lists the
mappings loaded; other date forms (unix times, lists of formats) and bad mappings.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from darkmap.cli import main
from darkmap.importers.mappings import (
    MappingError,
    RowMapper,
    forget_added_mappings,
    load_mapping,
    parse_datetime,
)
from darkmap.store.evidence import evidence_windows
from darkmap.store.workspace import Workspace

ROWS = 150  # of each real file

MAPPING = """\
format: csv
name: test-multi-market
description: listings of several markets, one market column, dates as day numbers
market: {column: market}
recognise:
  header: [market, listing, vendor, title, price, day]
csv:
  header: true
records:
  - type: listing
    fields:
      listing_ref: {column: listing, required: true}
      vendor_handle: {column: vendor, required: true}
      title: {column: title, parse: line, required: true}
      price_text: {column: price}
      observed_at: {column: day, parse: day_number, epoch: 1970-01-01}
"""

NO_DATE = """\
format: csv
name: test-multi-market-undated
market: {column: market}
recognise:
  header: [market, listing, vendor, title, price]
csv:
  header: true
records:
  - type: listing
    fields:
      listing_ref: {column: listing, required: true}
      vendor_handle: {column: vendor, required: true}
      title: {column: title, parse: line, required: true}
      price_text: {column: price}
"""


@pytest.fixture(autouse=True)
def _no_added_mappings() -> Iterator[None]:
    yield
    forget_added_mappings()


def _real_rows(data_dir: Path) -> list[dict[str, str]]:
    """The first ROWS rows of the real Hansa CSV and of one real Agora CSV, with their
    market and the UTC day of their own date."""
    out = []
    with open(data_dir / "listings" / "hansa-2016-12.csv", encoding="utf-8", newline="") as fh:
        for i, r in enumerate(csv.reader(fh, skipinitialspace=True)):
            if i >= ROWS:
                break
            day = parse_datetime(r[0]).date()
            out.append({"market": "Hansa Market", "listing": r[1], "vendor": r[3],
                        "title": r[2], "price": r[4], "day": day})
    path = data_dir / "listings" / "agora-2014" / "Ag2014-sscSynth.csv"
    with open(path, encoding="utf-8", newline="") as fh:
        for i, d in enumerate(csv.DictReader(fh)):
            if i >= ROWS:
                break
            out.append({"market": "Agora", "listing": d["list"], "vendor": d["vendor"],
                        "title": d["product"], "price": d["price"],
                        "day": datetime.strptime(d["date"], "%Y-%m-%d").date()})
    return out


def _write(path: Path, rows: list[dict[str, str]], with_day: bool) -> None:
    epoch = datetime(1970, 1, 1).date()
    cols = ["market", "listing", "vendor", "title", "price"] + (["day"] if with_day else [])
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for r in rows:
            cells = [r["market"], r["listing"], r["vendor"], r["title"], r["price"]]
            w.writerow(cells + ([str((r["day"] - epoch).days)] if with_day else []))


def _query(ws: Path, sql: str) -> list[tuple[object, ...]]:
    with Workspace.open(ws, read_only=True) as w:
        return w.con.execute(sql).fetchall()


def test_multi_market_csv_with_day_numbers_one_mapping(data_dir: Path, tmp_path: Path) -> None:
    rows = _real_rows(data_dir)
    _write(tmp_path / "listings.csv", rows, with_day=True)
    (tmp_path / "multi.yaml").write_text(MAPPING, encoding="utf-8")
    ws = tmp_path / "ws"
    res = CliRunner().invoke(main, ["ingest", "--init", "-q", "--json", "-w", str(ws),
                                    "--mapping", str(tmp_path / "multi.yaml"),
                                    str(tmp_path / "listings.csv")])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["unrecognised"] == []
    assert summary["totals"]["read"] == len(rows)
    assert summary["totals"]["stored"] + summary["totals"]["quarantined"] == len(rows)
    assert summary["totals"]["quarantined"] == 0
    assert sorted(_query(ws, "SELECT market_id, name FROM markets")) == [
        ("agora", "Agora"), ("hansa-market", "Hansa Market")]
    got = {(lid, loc): obs for lid, loc, obs in _query(
        ws, "SELECT listing_id, locator, observed_at FROM listing_observations")}
    assert len(got) == len(rows)
    for line, r in enumerate(rows, start=2):
        mid = "hansa-market" if r["market"] == "Hansa Market" else "agora"
        want = datetime(r["day"].year, r["day"].month, r["day"].day)
        assert got[(f"{mid}:{r['listing']}", f"row {line}")] == want, (line, r)
    # accounts and listings belong to their row's market
    markets = dict(_query(ws, "SELECT market_id, count(*) FROM listings GROUP BY 1"))
    assert markets["hansa-market"] == len({r["listing"] for r in rows[:ROWS]})
    assert markets["agora"] == len({r["listing"] for r in rows[ROWS:]})
    vendors = _query(ws, "SELECT account_id FROM accounts WHERE market_id = 'agora'")
    assert {v for (v,) in vendors} == {f"agora:{r['vendor'].casefold()}" for r in rows[ROWS:]}


def test_the_summary_counts_each_row_under_its_own_market(data_dir: Path,
                                                          tmp_path: Path) -> None:
    rows = _real_rows(data_dir)
    rows[3] = {**rows[3], "title": ""}  # a Hansa row and an Agora row quarantined
    rows[ROWS + 7] = {**rows[ROWS + 7], "title": " "}
    rows[ROWS + 9] = {**rows[ROWS + 9], "market": ""}  # a row of no market
    _write(tmp_path / "listings.csv", rows, with_day=True)
    with open(tmp_path / "listings.csv", "a", encoding="utf-8") as fh:
        fh.write("Agora,short row\n")  # the wrong number of fields, of Agora still
    (tmp_path / "multi.yaml").write_text(MAPPING, encoding="utf-8")
    ws = tmp_path / "ws"
    args = ["ingest", "-q", "--json", "-w", str(ws), "--mapping", str(tmp_path / "multi.yaml"),
            str(tmp_path / "listings.csv")]
    res = CliRunner().invoke(main, [args[0], "--init", *args[1:]])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    by_market = summary["by_market"]
    # the row of no market counts under the file's market, Hansa (most of its records)
    assert by_market == {
        "hansa-market": {"files": 1, "already_ingested": 0, "read": ROWS + 1,
                         "stored": ROWS - 1, "quarantined": 2, "skipped": 0},
        "agora": {"files": 1, "already_ingested": 0, "read": ROWS, "stored": ROWS - 2,
                  "quarantined": 2, "skipped": 0}}
    for k in ("read", "stored", "quarantined", "skipped"):
        assert sum(c[k] for c in by_market.values()) == summary["totals"][k], k
    assert dict(_query(ws, "SELECT market_id, count(*) FROM quarantine GROUP BY 1")) == {
        "hansa-market": 1, "agora": 2, None: 1}
    text = CliRunner().invoke(main, ["ingest", "--init", "-w", str(tmp_path / "ws2"),
                                     *args[5:]]).output
    assert [line.split()[:5] for line in text.splitlines()
            if line.startswith(("hansa-market", "agora"))] == [
        ["agora", "1", str(ROWS), str(ROWS - 2), "2"],
        ["hansa-market", "1", str(ROWS + 1), str(ROWS - 1), "2"]]
    # a file already ingested is counted under its market (its processed row keeps one)
    again = json.loads(CliRunner().invoke(main, args).output)
    assert again["by_market"] == {"hansa-market": {
        "files": 1, "already_ingested": 1, "read": 2 * ROWS + 1, "stored": 2 * ROWS - 3,
        "quarantined": 4, "skipped": 0}}


def test_undated_dataset_states_no_time(data_dir: Path, tmp_path: Path) -> None:
    rows = _real_rows(data_dir)
    _write(tmp_path / "undated.csv", rows, with_day=False)
    (tmp_path / "undated.yaml").write_text(NO_DATE, encoding="utf-8")
    ws = tmp_path / "ws"
    res = CliRunner().invoke(main, ["ingest", "--init", "-q", "-w", str(ws), "--mapping",
                                    str(tmp_path / "undated.yaml"), str(tmp_path / "undated.csv")])
    assert res.exit_code == 0, res.output
    for table in ("listing_observations", "listings", "accounts", "markets"):
        n, known = _query(ws, f"SELECT count(*), count(observed_at) FROM {table}")[0]
        assert n > 0 and known == 0, table  # not the file's time, not the ingest time
    with Workspace.open(ws, read_only=True) as w:
        assert evidence_windows(w.con) == []  # no activity on the day of ingest


def test_dream_dump_accounts_have_no_invented_time(data_dir: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    res = CliRunner().invoke(main, ["ingest", "--init", "-q", "-w", str(ws),
                                    str(data_dir / "seized" / "dream-2016-sellers.sql")])
    assert res.exit_code == 0, res.output
    n, known, joined = _query(ws, "SELECT count(*), count(observed_at), count(joined_at) "
                                  "FROM account_observations")[0]
    assert n > 500 and known == 0 and joined > 0  # the dump states joins, not when seen


def test_unrecognised_files_fail_the_run_unless_allowed(data_dir: Path, tmp_path: Path) -> None:
    rows = _real_rows(data_dir)
    _write(tmp_path / "listings.csv", rows[:5], with_day=True)
    ws = tmp_path / "ws"
    res = CliRunner().invoke(main, ["ingest", "--init", "-q", "-w", str(ws),
                                    str(tmp_path / "listings.csv")])
    assert res.exit_code == 3
    assert "not recognised by any importer: 1 file(s)" in res.output
    # the run's last line is the one `Error:` line every failing command ends with
    assert res.stderr.splitlines()[-1].startswith("Error: 1 file(s) recognised by no importer")
    assert str(tmp_path / "listings.csv") in res.output
    again = CliRunner().invoke(main, ["ingest", "-q", "--json", "--allow-unrecognised",
                                      "-w", str(ws), str(tmp_path / "listings.csv")])
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["unrecognised"] == [str(tmp_path / "listings.csv")]
    # with the mapping, the same capture is read by the csv importer
    (tmp_path / "multi.yaml").write_text(MAPPING, encoding="utf-8")
    third = CliRunner().invoke(main, ["ingest", "-q", "--json", "-w", str(ws), "--mapping",
                                      str(tmp_path / "multi.yaml"),
                                      str(tmp_path / "listings.csv")])
    assert third.exit_code == 0, third.output
    assert json.loads(third.output)["totals"]["stored"] == 5


def test_importers_lists_the_mappings(tmp_path: Path) -> None:
    (tmp_path / "multi.yaml").write_text(MAPPING, encoding="utf-8")
    res = CliRunner().invoke(main, ["importers", "--mapping", str(tmp_path / "multi.yaml")])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert any("hansa-2016-12" in x and "hansa" in x for x in lines)
    assert any("dream-2016-sellers" in x and "sql" in x for x in lines)
    mine = [x for x in lines if "test-multi-market" in x]
    assert len(mine) == 1 and "column 'market'" in mine[0] and "multi.yaml" in mine[0]


def test_a_bad_mapping_stops_ingest_before_reading(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(MAPPING.replace(", epoch: 1970-01-01", ""), encoding="utf-8")
    ws = tmp_path / "ws"
    res = CliRunner().invoke(main, ["ingest", "--init", "-w", str(ws), "--mapping", str(bad),
                                    str(tmp_path)])
    assert res.exit_code == 1
    assert "day_number needs an epoch" in res.output and str(bad) in res.output
    assert not ws.exists()
    both = tmp_path / "both.yaml"
    both.write_text(MAPPING.replace("{column: market}", "{column: market, id: x}"),
                    encoding="utf-8")
    with pytest.raises(MappingError, match=r"one of market\.id or market\.column"):
        load_mapping(both)


def _mapper(tmp_path: Path, fields: str) -> RowMapper:
    text = MAPPING.split("    fields:\n")[0] + "    fields:\n" + fields
    (tmp_path / "m.yaml").write_text(text, encoding="utf-8")
    m = load_mapping(tmp_path / "m.yaml")
    assert m.rows is not None
    return RowMapper(m, m.rows)


def test_other_date_forms(tmp_path: Path) -> None:
    base = ("      listing_ref: {column: listing, required: true}\n"
            "      title: {column: title, required: true}\n")
    row = {"market": "Agora", "listing": "1", "title": "t"}
    unix = _mapper(tmp_path, base + "      observed_at: {column: day, parse: unix_time}\n")
    rec = unix.map_row({**row, "day": "1481505234"}, "row 2")
    assert rec[-1].observed_at == datetime(2016, 12, 12, 1, 13, 54, tzinfo=UTC)
    ms = _mapper(tmp_path, base + "      observed_at: {column: day, parse: unix_time, "
                                  "unit: ms}\n")
    assert ms.map_row({**row, "day": "1481505234500"}, "row 2")[-1].observed_at == datetime(
        2016, 12, 12, 1, 13, 54, 500000, tzinfo=UTC)
    excel = _mapper(tmp_path, base + "      observed_at: {column: day, parse: day_number, "
                                     "epoch: 1899-12-30, required: true}\n")
    assert excel.map_row({**row, "day": "42715"}, "row 2")[-1].observed_at == datetime(
        2016, 12, 11, tzinfo=UTC)
    forms = _mapper(tmp_path, base + "      observed_at: {column: day, parse: date, "
                                     "format: ['%d/%m/%Y', '%Y%m%d', '%b %d, %Y'], "
                                     "required: true}\n")
    for text in ("11/12/2016", "20161211", "Dec 11, 2016"):
        got = forms.map_row({**row, "day": text}, "row 2")[-1].observed_at
        assert got == datetime(2016, 12, 11, tzinfo=UTC), text
    with pytest.raises(ValueError, match="not a date in any of the formats"):
        forms.map_row({**row, "day": "2016-12-11"}, "row 2")
    with pytest.raises(ValueError, match="out of range"):
        excel.map_row({**row, "day": "1e300"}, "row 2")
    # an empty market cell fails the row, naming the field
    with pytest.raises(ValueError, match="field 'market'"):
        excel.map_row({**row, "market": " ", "day": "1"}, "row 2")


NIGHTFALL_MAPPING = """\
format: csv
name: nightfall-2021
market: {id: nightfall, name: Nightfall Market}
null_values: ["", "-"]
recognise:
  filename: 'nightfall.*\\\\.csv$'
  header: [erfasst, angebot_id, titel, haendler, preis]
csv:
  header: true
  delimiter: ";"
records:
  - type: listing
    fields:
      listing_ref: {column: angebot_id, required: true}
      vendor_handle: haendler
      title: {column: titel, parse: line, required: true}
      price: {column: preis, parse: price, required: true}
      observed_at: {column: erfasst, parse: date, format: "%d.%m.%Y"}
  - type: account
    fields:
      handle: haendler
      rating: {column: bewertung, parse: float, scale: 5}
"""


def test_decimal_commas_of_a_european_csv(tmp_path: Path) -> None:
    # "89,50 €" was stored as 8950, "EUR 120,00" as 12000, "0,0041 BTC" as 41, a
    # rating "4,87" of 5 as 487; "1.234,50 EUR" was no price at all
    (tmp_path / "nightfall.yaml").write_text(NIGHTFALL_MAPPING, encoding="utf-8")
    (tmp_path / "nightfall-2021.csv").write_text(
        "erfasst;angebot_id;titel;haendler;preis;bewertung\n"
        "14.03.2021;88213;Gelb Mirror 3-MMC 10g;kräuterhexe;89,50 €;4,87\n"
        "14.03.2021;88214;Ketamin 5g;kräuterhexe;EUR 120,00;4,87\n"
        "15.03.2021;90001;MDMA 84% 10g;dealer;0,0041 BTC;5\n"
        "15.03.2021;90003;Speed 1kg;dealer;1.234,50 EUR;5\n"
        "16.03.2021;90004;Hash 100g;bulkbaron;USD 1,250;4.5\n", encoding="utf-8")
    ws = tmp_path / "ws"
    res = CliRunner().invoke(main, ["ingest", "--init", "-q", "-w", str(ws), "--mapping",
                                    str(tmp_path / "nightfall.yaml"),
                                    str(tmp_path / "nightfall-2021.csv")])
    assert res.exit_code == 0, res.output
    assert sorted(_query(ws, "SELECT l.listing_ref, o.price, o.currency FROM "
                             "listing_observations o JOIN listings l USING (listing_id)")) == [
        ("88213", 89.5, "EUR"), ("88214", 120.0, "EUR"), ("90001", 0.0041, "BTC"),
        ("90003", 1234.5, "EUR"), ("90004", 1250.0, "USD")]
    assert sorted(set(_query(ws, "SELECT account_id, rating FROM account_observations"))) == [
        ("nightfall:bulkbaron", 4.5), ("nightfall:dealer", 5.0),
        ("nightfall:kräuterhexe", 4.87)]
