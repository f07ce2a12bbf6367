"""CSV and Parquet: every analytical table with its provenance columns, read back with
the csv module and pyarrow and compared with the store; CSV cells that a spreadsheet
would run as formulas are neutralised; the CLI offers exactly the formats that work."""

from __future__ import annotations

import csv
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from export_workspaces import HOSTILE_TITLE, built, open_ro

from darkmap.cli import main
from darkmap.errors import BadInputError, NotFoundError
from darkmap.export.options import ExportOptions
from darkmap.export.tables import CsvExporter, ParquetExporter, csv_value
from darkmap.plugins import exporters
from darkmap.store.exports import TABLES

FORMULA = ("=", "+", "-", "@", "\t", "\r")
PROVENANCE = {"capture_sha256", "source", "method"}


def _run(exporter: CsvExporter | ParquetExporter, name: str,
         factory: pytest.TempPathFactory, data: Path, out: Path,
         options: ExportOptions) -> dict[str, int]:
    ws = open_ro(built(name, factory, data))
    try:
        return exporter.export(ws, out, options)
    finally:
        ws.close()


def _store_rows(name: str, factory: pytest.TempPathFactory, data: Path) -> dict[str, int]:
    ws = open_ro(built(name, factory, data))
    try:
        return {t: ws.con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    finally:
        ws.close()


@pytest.mark.parametrize("name", ["demo", "real"])
def test_csv_all_tables_read_back_and_no_cell_is_a_formula(
        name: str, tmp_path_factory: pytest.TempPathFactory, data_dir: Path,
        tmp_path: Path) -> None:
    counts = _run(CsvExporter(), name, tmp_path_factory, data_dir, tmp_path / "csv",
                  ExportOptions(all_tables=True))
    assert counts == _store_rows(name, tmp_path_factory, data_dir)
    for table, n in counts.items():
        with open(tmp_path / "csv" / f"{table}.csv", encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh))
        assert len(rows) == n + 1, table
        header = rows[0]
        if table != "captures":  # the captures are the provenance
            assert "method" in header or "evidence_method" in header, table
        bad = [c for r in rows for c in r if c.startswith(FORMULA)]
        assert not bad, (table, bad[:3])
    listings = (tmp_path / "csv" / "listing_observations.csv").read_text(encoding="utf-8")
    assert "capture_sha256" in listings.splitlines()[0]


@pytest.mark.parametrize("name", ["demo", "real"])
def test_parquet_all_tables_equal_the_store(
        name: str, tmp_path_factory: pytest.TempPathFactory, data_dir: Path,
        tmp_path: Path) -> None:
    counts = _run(ParquetExporter(), name, tmp_path_factory, data_dir, tmp_path / "pq",
                  ExportOptions(all_tables=True))
    assert counts == _store_rows(name, tmp_path_factory, data_dir)
    ws = open_ro(built(name, tmp_path_factory, data_dir))
    try:
        for table in ("listing_observations", "accounts", "listing_assessments"):
            read = pq.read_table(tmp_path / "pq" / f"{table}.parquet")
            cur = ws.con.execute(f"SELECT * FROM {table} ORDER BY ALL")
            cols = [d[0] for d in cur.description]
            stored = cur.fetchall()
            assert stored, table
            times = [f.name for f in read.schema if pa.types.is_timestamp(f.type)]
            assert times and all(read.schema.field(c).type.tz == "UTC" for c in times), table
            # the same instants: the store's naive times are UTC
            rows = sorted(zip(*([_naive(v) for v in read.column(c).to_pylist()]
                                for c in cols), strict=True), key=repr)
            assert rows == sorted(stored, key=repr), table
            assert PROVENANCE <= set(read.column_names) | {"method"}, table
    finally:
        ws.close()


def test_hostile_cells_are_neutralised_and_parquet_keeps_them(
        tmp_path_factory: pytest.TempPathFactory, data_dir: Path, tmp_path: Path) -> None:
    for table in ("listing_observations", "accounts", "identifiers"):
        out = tmp_path / f"{table}.csv"
        _run(CsvExporter(), "hostile", tmp_path_factory, data_dir, out,
             ExportOptions(tables=(table,)))
        with open(out, encoding="utf-8", newline="") as fh:
            cells = [c for r in csv.reader(fh) for c in r]
        assert not [c for c in cells if c.startswith(FORMULA)], table
        assert not [c for c in cells if re.search("[\x00-\x08\x1b\u202e]", c)], table
    cells = (tmp_path / "listing_observations.csv").read_text(encoding="utf-8")
    assert "'=HYPERLINK(" in cells and "\\x1b[2J" in cells and "\\x00" in cells
    assert '""=cmd|' in cells  # inside a list: a JSON text cell, starting with [
    handles = (tmp_path / "accounts.csv").read_text(encoding="utf-8")
    assert "'-2+3" in handles and "'@SUM(A1)" in handles and "\\u202e" in handles
    _run(ParquetExporter(), "hostile", tmp_path_factory, data_dir, tmp_path / "l.parquet",
         ExportOptions(tables=("listing_observations",)))
    titles = pq.read_table(tmp_path / "l.parquet").column("title").to_pylist()
    assert titles == [HOSTILE_TITLE] * 3  # Parquet: the exact text


def _naive(v: object) -> object:
    """A UTC time read from Parquet as the store holds it (naive)."""
    if isinstance(v, datetime) and v.tzinfo is not None:
        assert v.utcoffset() == timedelta(0)
        return v.replace(tzinfo=None)
    return v


def test_csv_value_rules() -> None:
    assert csv_value(datetime(2020, 1, 2, 3, 4, 5)) == "2020-01-02T03:04:05Z"
    assert csv_value(datetime(2020, 1, 2, 4, 4, 5, tzinfo=timezone(timedelta(hours=1)))) \
        == "2020-01-02T03:04:05Z"
    assert csv_value(date(2020, 1, 2)) == "2020-01-02"
    assert csv_value("=1+1") == "'=1+1" and csv_value("-5") == "'-5"
    assert csv_value(-5) == -5 and csv_value(2.5) == 2.5 and csv_value(None) == ""
    assert csv_value(True) == "true" and csv_value(["=a", "b"]) == '["=a", "b"]'
    assert csv_value("x" * 40_000).endswith("…") and len(csv_value("x" * 40_000)) == 32_000


def test_table_choice_and_narrowing(tmp_path_factory: pytest.TempPathFactory,
                                    data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="--table T"):
        _run(CsvExporter(), "demo", tmp_path_factory, data_dir, tmp_path / "x",
             ExportOptions())
    with pytest.raises(BadInputError, match="no exportable table 'nope'"):
        _run(CsvExporter(), "demo", tmp_path_factory, data_dir, tmp_path / "x",
             ExportOptions(tables=("nope",)))
    with pytest.raises(NotFoundError, match="no account of this workspace matches "
                                           "--country ZZ"):
        _run(CsvExporter(), "real", tmp_path_factory, data_dir, tmp_path / "x",
             ExportOptions(tables=("accounts",), countries=("ZZ",)))
    with pytest.raises(BadInputError, match="cannot be narrowed"):
        _run(CsvExporter(), "real", tmp_path_factory, data_dir, tmp_path / "x",
             ExportOptions(tables=("captures",), countries=("GB",)))
    counts = _run(ParquetExporter(), "real", tmp_path_factory, data_dir, tmp_path / "gb",
                  ExportOptions(all_tables=True, countries=("GB",)))
    assert counts["tables_left_out"] == sum(s.narrow is None for s in TABLES.values())
    accounts = pq.read_table(tmp_path / "gb" / "accounts.parquet")
    listings = pq.read_table(tmp_path / "gb" / "listings.parquet")
    assert 0 < accounts.num_rows == counts["accounts"]
    assert set(listings.column("account_id").to_pylist()) <= set(
        accounts.column("account_id").to_pylist())
    one = tmp_path / "one.csv"
    assert _run(CsvExporter(), "demo", tmp_path_factory, data_dir, one,
                ExportOptions(tables=("personas",)))["personas"] > 0
    assert one.is_file()


def test_the_cli_offers_exactly_the_formats_that_work(
        tmp_path_factory: pytest.TempPathFactory, data_dir: Path, tmp_path: Path) -> None:
    ws = built("demo", tmp_path_factory, data_dir)
    runner = CliRunner()
    usage = runner.invoke(main, ["export", "--help"]).output
    offered = re.search(r"\{([a-z|]+)\}", usage).group(1).split("|")  # type: ignore[union-attr]
    assert offered == sorted(exporters())
    assert {"ftm", "gexf", "graphml", "csv", "parquet"} <= set(offered)
    for fmt in offered:
        args = ["export", fmt, "-w", str(ws), "-o", str(tmp_path / fmt), "--country", "US"]
        if fmt in {"csv", "parquet"}:
            args.append("--all")
        done = runner.invoke(main, args)
        assert done.exit_code == 0, (fmt, done.output)
        assert (tmp_path / fmt).exists()
    done = runner.invoke(main, ["export", "nope", "-w", str(ws), "-o", str(tmp_path / "n")])
    assert done.exit_code == 2 and "'nope' is not one of" in done.output
    done = runner.invoke(main, ["export", "gexf", "-w", str(ws), "-o", str(tmp_path / "n"),
                                "--table", "accounts"])
    assert done.exit_code == 1 and "gexf exporter does not take --table/--all" in done.output
