"""Shared fixtures: the real data folder and fresh workspaces."""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from darkmap.store.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
# The real data (see its README): ``DARKMAP_DATA`` when set, else ../shared/data next to the
# repository. The one place tests locate it: modules import ``DATA`` for module-level
# parametrisation, tests take the ``data_dir`` fixture.
DATA = Path(os.environ.get("DARKMAP_DATA", REPO.parent / "shared" / "data"))


# Columns that legitimately differ between two ingests of the same data (run ids,
# wall-clock times), and bookkeeping tables of a run.
VOLATILE = {"run_id", "processed_at", "captured_at", "started_at", "finished_at",
            "summary", "args", "applied_at"}
SKIP_TABLES = {"ingest_runs", "schema_migrations", "btc_conflict_checks"}


def table_snapshot(ws: Workspace) -> dict[str, list[tuple]]:
    """Every table's rows (volatile columns left out), sorted, values as text: two
    workspaces holding the same evidence compare equal."""
    out = {}
    for table in ws.table_counts():
        if table in SKIP_TABLES:
            continue
        cols = [r[0] for r in ws.con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
            "ORDER BY ordinal_position", [table]).fetchall() if r[0] not in VOLATILE]
        if cols:
            col_sql = ", ".join(f'"{c}"::VARCHAR' for c in cols)
            out[table] = ws.con.execute(
                f'SELECT {col_sql} FROM "{table}" ORDER BY ALL').fetchall()
    return out


def simulated_workspace(base: Path, seed: int, vendors: int) -> tuple[Workspace, dict]:
    """A ``darkmap simulate`` world (no chain) ingested through the real importers into
    ``base / "ws"``; the workspace and the world's truth."""
    import json

    from darkmap.collect.ingest import ingest
    from darkmap.simulate import SimParams, simulate

    out = base / "world"
    simulate(out, seed, SimParams(vendors=vendors, chain=False))
    ws = Workspace.init(base / "ws")
    ingest(ws, [out / "pages", out / "listings", out / "seized"])
    return ws, json.loads((out / "truth.json").read_text(encoding="utf-8"))


# The hostile workspace (issue #18): market text built to attack what an analyst opens.
RAW = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029"
                 "\u202a-\u202e\u2066-\u2069]")
"""Characters that must never reach a terminal, a CSV cell or the report's text."""
FORMULA_HANDLES = ('=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)")
EVIL = "evil\u202egnp.exe\x1b[2J\x07"
LONG_TITLE = "Fentanyl pressed M30 blues " + "X" * 200_000
MARKUP = '<img src=x onerror="alert(1)">'
AGORA_VENDORS = ("+cmd|' /C calc'!A0", "evil\u202egnp.exe", "x;touch pwned #")
"""Vendors of the Agora slice: the first two also sell on Hansa, from the same country
(through the hostile corpus's CSV cases), so the linker scores a cross-market pair of
each; the third holds shell syntax."""
AGORA_FEEDBACK = f"great {MARKUP} \x1b[2J\u202eevil"
"""Feedback text of the Agora slice's hostile rows."""


def _hansa_field(line: bytes, index: int, value: str) -> bytes:
    fields = line.rstrip(b"\r\n").split(b'", "')
    fields[index] = value.replace('"', '""').encode("utf-8")
    return b'", "'.join(fields) + b"\n"


def _crafted_hansa(data: Path, folder: Path) -> None:
    """300 real Hansa lines; line 5 a fentanyl listing with a 200,000-character title sold
    by ``EVIL``; line 4 a fentanyl listing whose title and vendor are markup (both given ids of
    their own: the hostile corpus's CSV cases hold the same lines)."""
    lines = (data / "listings" / "hansa-2016-12.csv").read_bytes().splitlines(
        keepends=True)[:300]
    lines[4] = _hansa_field(_hansa_field(_hansa_field(lines[4], 1, "990001"), 2, LONG_TITLE),
                            3, EVIL)
    lines[3] = _hansa_field(_hansa_field(_hansa_field(lines[3], 1, "990002"), 2,
                                         f"Fentanyl patches {MARKUP}"), 3, MARKUP)
    folder.mkdir(parents=True)
    (folder / "hansa-2016-12.csv").write_bytes(b"".join(lines))


def _crafted_agora(data: Path, folder: Path) -> None:
    """The first 200 records of a real Agora file; three of them sold by
    ``AGORA_VENDORS`` (fentanyl, with markup and a formula in the titles) and carrying
    ``AGORA_FEEDBACK``."""
    with open(data / "listings" / "agora-2014" / "Ag2014-sscSynth.csv", encoding="utf-8",
              newline="") as fh:
        rows = [row for _, row in zip(range(200), csv.reader(fh), strict=False)]
    head = rows[0]
    vendor, product, feedback, origin = (head.index(c) for c in ("vendor", "product",
                                                                  "feedback", "from"))
    titles = (f"Fentanyl patches =cmd|' /C calc'!A0 {MARKUP}", "10g Marocco Hash",
              "Fentanyl powder 5g")
    for row, handle, title, country in zip(rows[5:8], AGORA_VENDORS, titles,
                                           ("USA", "Germany", "USA"), strict=True):
        row[vendor], row[product], row[origin] = handle, title, f" {country} "
        row[feedback] = f" Feedbacks: 5/5 {AGORA_FEEDBACK} 3 days ago anon [0 deals] "
    folder.mkdir(parents=True)
    with open(folder / "Ag2014-sscSynth.csv", "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, quoting=csv.QUOTE_ALL).writerows(rows)


def build_hostile_workspace(base: Path, data: Path) -> Path:
    """A workspace of hostile input in ``base / "ws"``, ingested, assessed and linked with
    the CLI: the hostile corpus's CSV and page cases, the crafted Hansa and Agora slices."""
    from click.testing import CliRunner

    from darkmap.cli import main
    from darkmap.simulate.hostile import cases

    folders = []
    for case in cases(data):
        if case.name in ("csv_formula_handles", "csv_rtl_control_handles", "pages_title_200k",
                         "pages_rtl_control_handle"):
            folder = base / "input" / case.name
            folder.mkdir(parents=True)
            case.build(folder)
            folders.append(folder)
    assert len(folders) == 4
    _crafted_hansa(data, base / "input" / "crafted")
    _crafted_agora(data, base / "input" / "agora")
    folders += [base / "input" / "crafted", base / "input" / "agora"]
    ws = base / "ws"
    for args in (["ingest", "-q", "--init", "--allow-unrecognised", "-w", str(ws),
                  *map(str, folders)], ["assess", "-w", str(ws)], ["link", "-w", str(ws)]):
        res = CliRunner().invoke(main, args, prog_name="darkmap")
        assert res.exit_code == 0, (args, res.output, res.exception)
    return ws


@pytest.fixture(scope="session")
def hostile_ws(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """The hostile workspace (:func:`build_hostile_workspace`), built once per session:
    tests only read it (a test that writes works on a copy)."""
    return build_hostile_workspace(tmp_path_factory.mktemp("hostile"), data_dir)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Stop at once, with one clear line, when the real data folder is missing (tests
    parametrised over its files would otherwise collect nothing and pass)."""
    if not DATA.is_dir():
        raise pytest.UsageError(f"real data folder {DATA} is missing; set DARKMAP_DATA")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data in ../shared/data (see its README)."""
    if not DATA.is_dir():
        raise RuntimeError(f"real data folder {DATA} is missing; set DARKMAP_DATA")
    return DATA


@pytest.fixture(scope="session")
def hansa_listings(data_dir: Path) -> dict[str, Any]:
    """The real Hansa listings (``darkmap.evaluate.drugs.read_listings``), keyed by
    listing id: read once for every assessment test that quotes real rows."""
    from darkmap.evaluate.drugs import read_listings
    return read_listings(data_dir / "listings" / "hansa-2016-12.csv")


def assess_row(row: Any) -> Any:
    """``assess_listing`` of a listing row as ``read_listings`` gives it (title,
    categories, price text and observation time; no description)."""
    from darkmap.assess.listing import assess_listing
    return assess_listing(row["title"], None, row["category_path"], None, None,
                          row["price_text"], row["observed_at"])


def quantity_of(row: Any) -> tuple[float | None, str, float | None, str]:
    """(units, unit kind, dose in mg, parse note) that :func:`assess_row` gives."""
    a = assess_row(row)
    return a.units, a.unit_kind, a.dose_mg, a.parse_note


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    """A fresh workspace in a temp folder."""
    w = Workspace.init(tmp_path / "ws")
    yield w
    w.close()


@pytest.fixture(scope="module", params=("duckdb", "postgres"))
def backend(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The operational records' home under test (tests/ops_backends.py): the workspace
    (DuckDB), then the team server (a throw-away PostgreSQL database for the module)."""
    from ops_backends import Backend
    b = Backend(request.param)
    yield b
    b.close()


@pytest.fixture
def space(backend: Any, tmp_path: Path) -> Iterator[Any]:
    """A new workspace at ``tmp_path / 'ws'`` and, on the server, empty operational
    tables: what the ops functions act on."""
    backend.reset()
    path = tmp_path / "ws"
    Workspace.init(path).close()
    with backend.open(path) as s:
        yield s


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One local Spark session (local[2], loopback, no UI, 2 shuffle partitions) for every
    Spark test: starting the JVM costs seconds, so it is shared."""
    from darkmap.chain.spark import spark_session
    s = spark_session("local[2]", "darkmap-tests", {"spark.sql.shuffle.partitions": "2",
                                                     "spark.default.parallelism": "2"})
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    """A throw-away PostgreSQL database with darkmap's team-server schema on
    ``$DARKMAP_TEST_PG`` (tests/ops_backends.py) for one test module, dropped after it."""
    from ops_backends import ServerDb
    db = ServerDb()
    try:
        yield db
    finally:
        db.drop()


@pytest.fixture(scope="session")
def web_pg_db() -> Iterator[Any]:
    """A team server for the web tests: a throw-away PostgreSQL database with darkmap's
    schema on ``$DARKMAP_TEST_PG`` (tests/ops_backends.py), dropped at the end."""
    from ops_backends import ServerDb
    db = ServerDb()
    try:
        yield db
    finally:
        db.drop()


@pytest.fixture(scope="session")
def web_pg(web_pg_db: Any) -> str:
    """The workbench's own login role on ``web_pg_db`` (a member of
    ``darkmap_ops_service``), as a connection URL."""
    return str(web_pg_db.role("workbench", service=True)[1])


@pytest.fixture(scope="module", params=("duckdb", "postgres"))
def store_world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The web tests' shared world (tests/web_support.py), with users and records in the
    workspace (duckdb), then on the team server (postgres)."""
    from web_support import shared_world
    return shared_world(tmp_path_factory, request.param, request)


@pytest.fixture(scope="module")
def store_srv(store_world: Any) -> Iterator[tuple[Any, Any]]:
    """The workbench served over ``store_world`` for the module, with its clock."""
    from web_support import next_clock, serving
    clock = next_clock()
    with serving(store_world, clock) as s:
        yield s, clock
