"""Numbers out of range in mapped datasets (found by fuzzing, 2026-12-06): a count of
more than 32 bits, or "N days ago" past what a date can hold, in one cell of a real
file. Each used to lose the whole file (the importer failed on it: every row quarantined
as "importer failed"); now that one value is not read, as an unreadable one is not,
and every row is stored."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import pytest

from darkmap.collect.ingest import ingest
from darkmap.store.workspace import Workspace

HUGE = ["999999", "9" * 26, "7" * 5000]  # days past year 1, past a C int, past int()


def _agora(data_dir: Path, out: Path, days: str) -> tuple[int, str]:
    """The first 200 rows of a real Agora file with the first "0 days ago" of its
    feedback made ``days`` days ago: (rows, listing id of that row)."""
    src = data_dir / "listings" / "agora-2014" / "Ag2014-sscPrescription.csv"
    with open(src, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        rows = [next(reader) for _ in range(201)]
    col = rows[0].index("feedback")
    hit = next(r for r in rows[1:] if " 0 days ago " in r[col])
    hit[col] = hit[col].replace(" 0 days ago ", f" {days} days ago ", 1)
    with open(out, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, quoting=csv.QUOTE_ALL).writerows(rows)
    return len(rows) - 1, hit[0]


@pytest.mark.parametrize("days", HUGE, ids=["past-year-1", "26-digits", "5000-digits"])
def test_feedback_days_ago_out_of_range(data_dir: Path, tmp_path: Path, days: str) -> None:
    path = tmp_path / "Ag2014-sscPrescription.csv"
    n, listing = _agora(data_dir, path, days)
    ws = Workspace.init(tmp_path / "ws")
    t = ingest(ws, [path], jobs=1).totals()
    assert (t["read"], t["stored"], t["quarantined"]) == (n, n, 0)
    # the feedback is stored, without the time it cannot have been left at
    left = ws.con.execute("SELECT left_at FROM feedback WHERE listing_id = ? AND text LIKE "
                          "'%thnx%'", [f"agora:{listing}"]).fetchall()
    assert left and all(x is None for (x,) in left), left
    assert ws.con.execute("SELECT count(*) FROM feedback WHERE left_at IS NULL"
                          ).fetchone() == (len(left),)
    ws.close()


@pytest.mark.parametrize("count", ["2147483648", "-2147483648", "9" * 26, "7" * 5000],
                         ids=["int32-plus-one", "int32-minus", "26-digits", "5000-digits"])
def test_count_out_of_range_in_a_columnar_file(data_dir: Path, tmp_path: Path,
                                               count: str) -> None:
    """Real Hansa listings in the columns of a simulated market's CSV (read column by
    column), their feedback counts numbered, one of them ``count``."""
    with open(data_dir / "listings" / "hansa-2016-12.csv", encoding="utf-8",
              newline="") as fh:
        real = list(itertools.islice(csv.reader(fh, skipinitialspace=True), 300))
    path = tmp_path / "cerberus.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["scraped_at", "market", "listing_id", "title", "vendor", "price",
                    "currency", "category", "ships_from", "ships_to", "feedback_count"])
        for i, r in enumerate(real):
            w.writerow(["2016-12-11T20:13:54", "cerberus", r[1], r[2], r[3],
                        r[4].split()[-1], "USD", "Drugs / Other", "DE", "DE",
                        count if i == 7 else str(i)])
    ws = Workspace.init(tmp_path / "ws")
    t = ingest(ws, [path], jobs=1).totals()
    assert (t["read"], t["stored"], t["quarantined"]) == (300, 300, 0)
    got = dict(ws.con.execute("SELECT locator, feedback_count FROM listing_observations"
                              ).fetchall())
    assert got.pop("row 9") is None                   # the eighth row, on line 9
    assert sorted(got.values()) == [i for i in range(300) if i != 7]
    ws.close()


@pytest.mark.parametrize("name", ["hansa-2016-12.csv", "agora-2014/Ag2014-sscSeeds.csv"])
def test_one_nul_in_the_first_row_costs_no_more_than_that_row(
        data_dir: Path, tmp_path: Path, name: str) -> None:
    """A NUL byte in the first 4 KiB made the CSV sniffer refuse the whole file (found by
    fuzzing: the file was "recognised by no importer"); a NUL further in costs only its
    row. A stray NUL is damage; a binary file holds many."""
    lines = (data_dir / "listings" / name).read_bytes().splitlines(keepends=True)[:40]
    k = 1 if name.startswith("agora") else 0  # the first row after Agora's header
    lines[k] = lines[k].replace(b"e", b"e\x00", 1)
    path = tmp_path / Path(name).name
    path.write_bytes(b"".join(lines))
    ws = Workspace.init(tmp_path / "ws")
    summary = ingest(ws, [path], jobs=1)
    assert [f.importer for f in summary.files] == ["csv"]
    t = summary.totals()
    assert t["read"] >= 30 and t["stored"] >= t["read"] - 1
    ws.close()
    noise = tmp_path / "noise.csv"                # a binary file is still no CSV
    noise.write_bytes(b"".join(lines[:3]) + b"\x00\x01" * 2000)
    ws = Workspace.init(tmp_path / "ws2")
    assert [f.importer for f in ingest(ws, [noise], jobs=1).files] == [None]
    ws.close()
