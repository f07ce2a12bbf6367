"""A mapping that nearly fits a file: the analyst is told what is missing.

A mapping whose `recognise.header` matched a file but one of whose required fields read a
column the header lacked (a typo, or a column renamed in another dump of the dataset) was
taken for the file, and every row was quarantined ("field 'vendor_handle' (column
'vendor') is empty"); the file then counted as processed, so the rerun with the mapping
corrected read nothing. Now such a mapping does not fit the file: the file is listed as
unrecognised with what keeps the nearest mapping from fitting, nothing is stored, and
the rerun with the corrected mapping reads it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from darkmap.cli import main
from darkmap.cli.cmd_ingest import UNRECOGNISED_EXIT
from darkmap.importers.csv_mapped import missing_columns
from darkmap.importers.mappings import (
    BUILTIN_MAPPINGS,
    MappingError,
    forget_added_mappings,
    load_mapping,
)
from darkmap.store.workspace import Workspace

AGORA = "Ag2014-sscEdibles.csv"


@pytest.fixture(autouse=True)
def _own_mappings() -> Iterator[None]:
    """`--mapping` adds to the process's mappings: each test starts with the built-in."""
    forget_added_mappings()
    yield
    forget_added_mappings()


def _renamed(data_dir: Path, tmp_path: Path) -> Path:
    """The real Agora file with its `vendor` column named `seller` (another layout)."""
    src = (data_dir / "listings" / "agora-2014" / AGORA).read_text(encoding="utf-8")
    head, rest = src.split("\n", 1)
    assert '"vendor"' in head
    out = tmp_path / "sellers.csv"
    out.write_text(head.replace('"vendor"', '"seller"') + "\n" + rest, encoding="utf-8")
    return out


def _mapping(tmp_path: Path, vendor_column: str) -> Path:
    """The built-in Agora mapping for the renamed layout: its own name, no file-name
    pattern, the new header, and the vendor field reading ``vendor_column``."""
    text = (BUILTIN_MAPPINGS / "agora-2014.yaml").read_text(encoding="utf-8")
    text = text.replace("name: agora-2014", "name: agora-sellers")
    text = text.replace("  filename: '(?i)ag(ora)?[-_ ]?2014.*\\.csv$'\n", "")
    text = text.replace("header: [list, date, vendor,", "header: [list, date, seller,")
    text = text.replace("vendor_handle: {column: vendor,",
                        f"vendor_handle: {{column: {vendor_column},")
    assert f"column: {vendor_column}," in text and "seller," in text
    path = tmp_path / "agora-sellers.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _ingest(ws: Path, *args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(main, ["ingest", "--init", "-q", "-w", str(ws), *args])
    return res.exit_code, res.stdout, res.stderr


def test_a_required_column_the_header_lacks_is_named_and_the_fixed_rerun_reads_the_file(
        data_dir: Path, tmp_path: Path) -> None:
    csv = _renamed(data_dir, tmp_path)
    wrong = _mapping(tmp_path, "vendor")
    assert missing_columns(load_mapping(wrong), ["list", "date", "seller", "product"]) == [
        ("vendor", "listing.vendor_handle")]
    ws = tmp_path / "ws"
    code, out, _ = _ingest(ws, "--mapping", str(wrong), str(csv))
    assert code == UNRECOGNISED_EXIT
    assert (f"  {csv}\n    nearly: mapping 'agora-sellers' (agora-sellers.yaml): field "
            "listing.vendor_handle reads column 'vendor', which the file's header lacks "
            "(it has 'list', 'date', 'seller', 'product',") in out
    res = CliRunner().invoke(main, ["ingest", "--json", "-w", str(ws), "--mapping",
                                    str(wrong), str(csv)])
    why = json.loads(res.stdout)["why_unrecognised"]
    assert list(why) == [str(csv)] and "reads column 'vendor'" in why[str(csv)]
    with Workspace.open(ws) as w:
        assert w.con.execute("SELECT count(*) FROM quarantine").fetchone() == (0,)
        assert w.con.execute("SELECT count(*) FROM listings").fetchone() == (0,)
    # the analyst corrects the mapping: the same workspace reads the file now
    code, out, _ = _ingest(ws, "--json", "--mapping", str(_mapping(tmp_path, "seller")),
                           str(csv))
    assert code == 0
    t = json.loads(out)["totals"]
    assert t["read"] == t["stored"] + t["quarantined"] + t["skipped"] and t["stored"] > 100
    # what it stored is what the built-in mapping stores of the original file
    code, out, _ = _ingest(tmp_path / "ref", "--json",
                           str(data_dir / "listings" / "agora-2014" / AGORA))
    ref = json.loads(out)["totals"]
    assert (t["stored"], t["quarantined"]) == (ref["stored"], ref["quarantined"])


def test_the_nearest_built_in_mapping_says_what_the_renamed_file_lacks(
        data_dir: Path, tmp_path: Path) -> None:
    csv = _renamed(data_dir, tmp_path)
    code, out, _ = _ingest(tmp_path / "ws", str(csv))
    assert code == UNRECOGNISED_EXIT
    assert ("    nearly: mapping 'agora-2014' (agora-2014.yaml): field "
            "listing.vendor_handle reads column 'vendor', which the file's header lacks "
            "(it has 'list', 'date', 'seller',") in out


def test_a_header_name_the_mapping_looks_for_is_named(data_dir: Path,
                                                        tmp_path: Path) -> None:
    """The required columns all there, a `recognise.header` name missing (`to`)."""
    src = (data_dir / "listings" / "agora-2014" / AGORA).read_text(encoding="utf-8")
    head, rest = src.split("\n", 1)
    csv = tmp_path / "sellers.csv"
    csv.write_text(head.replace('"to"', '"dest"') + "\n" + rest, encoding="utf-8")
    code, out, _ = _ingest(tmp_path / "ws", str(csv))
    assert code == UNRECOGNISED_EXIT
    assert ("    nearly: mapping 'agora-2014' (agora-2014.yaml): recognise.header looks "
            "for 'to', which the file's header lacks (it has 'list',") in out


def test_a_hostile_header_is_named_bounded_and_escaped(data_dir: Path,
                                                       tmp_path: Path) -> None:
    csv = _renamed(data_dir, tmp_path)
    head, rest = csv.read_text(encoding="utf-8").split("\n", 1)
    evil = ",".join(f'"col\u202e{i}\x1b[2J' + "x" * 200 + '"' for i in range(3000))
    csv.write_text(head + "," + evil + "\n" + rest, encoding="utf-8")
    code, out, _ = _ingest(tmp_path / "ws", str(csv))
    assert code == UNRECOGNISED_EXIT
    line = next(ln for ln in out.splitlines() if ln.startswith("    nearly: "))
    assert "\u202e" not in line and "\x1b" not in line
    assert len(line) <= 320 and line.endswith("…")


def test_a_column_the_header_lacks_for_an_optional_field_is_noted(
        data_dir: Path, tmp_path: Path) -> None:
    """A mistyped column of a field that is not required (`frm` for `from`) left every
    listing's origin empty without a word; the file is read, and ingest notes the column
    and what reads it."""
    csv = _renamed(data_dir, tmp_path)
    mapping = _mapping(tmp_path, "seller")
    text = mapping.read_text(encoding="utf-8")
    assert "ships_from: {column: from," in text
    mapping.write_text(text.replace("ships_from: {column: from,", "ships_from: {column: frm,"),
                       encoding="utf-8")
    code, out, _ = _ingest(tmp_path / "ws", "--json", "--mapping", str(mapping), str(csv))
    assert code == 0
    summary = json.loads(out)
    assert summary["totals"]["stored"] > 100
    note = ("mapping 'agora-sellers' (agora-sellers.yaml): column 'frm' "
            "(listing.ships_from) is not in the file's header: empty in every row")
    assert summary["notes"] == {str(csv): [note]}
    code, out, _ = _ingest(tmp_path / "ws2", "--mapping", str(mapping), str(csv))
    assert f"notes:\n  {csv}\n    mapping 'agora-sellers'" in out
    # the real files have none: their summaries carry no notes
    code, out, _ = _ingest(tmp_path / "ws3", "--json", str(data_dir / "listings"))
    assert code == 0 and "notes" not in json.loads(out)


def test_a_headerless_mapping_reading_an_undeclared_column_is_refused(
        tmp_path: Path) -> None:
    text = (BUILTIN_MAPPINGS / "hansa-2016-12.yaml").read_text(encoding="utf-8")
    assert "column: vendor" in text
    bad = tmp_path / "hansa-typo.yaml"
    bad.write_text(text.replace("name: hansa-2016-12", "name: hansa-typo")
                   .replace("column: vendor", "column: vendr", 1), encoding="utf-8")
    with pytest.raises(MappingError, match=r"column 'vendr' is read but not among "
                                           r"csv\.columns \(scraped_at, listing_id,"):
        load_mapping(bad)
