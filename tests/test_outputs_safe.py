"""What an analyst opens cannot attack them (issue #18, item 5).

A workspace is built by real ingests of hostile input (the hostile corpus's CSV and page
cases, and a Hansa slice where one fentanyl listing has a 200,000-character title and its
vendor a handle with a right-to-left override, an escape sequence and a bell). Then:

- ``darkmap targets --csv`` read back with the csv module: no cell a spreadsheet would
  run as a formula, no control or bidi character, no cell over 32,000 characters;
- the terminal output of the commands shows escapes (``\\u202e``), never the characters;
- the HTML report is bounded in size, holds no control or bidi character in any text or
  attribute, cuts the long title with its length stated and its first 20,000 characters
  one click away, and autoescaping still turns markup in market text into text;
- ``darkmap demo`` deletes only a folder it created and marked.
"""

from __future__ import annotations

import csv
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from darkmap.cli import main
from darkmap.cli.cmd_assess import _CSV_FIELDS
from darkmap.cli.cmd_report import DEMO_MARKER, prepare_demo_folder
from darkmap.cli.common import DarkmapError
from darkmap.model.display import CSV_CELL_CHARS
from darkmap.report.html import CELL_CHARS, FULL_CHARS
from darkmap.simulate.hostile import cases

RAW = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029"
                 "\u202a-\u202e\u2066-\u2069]")
"""Characters that must never reach a terminal, a CSV cell or the report's text."""
FORMULA_HANDLES = ('=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)")
EVIL = "evil\u202egnp.exe\x1b[2J\x07"
LONG_TITLE = "Fentanyl pressed M30 blues " + "X" * 200_000
MARKUP = '<img src=x onerror="alert(1)">'


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


def _cli(*args: str) -> Result:
    res = CliRunner().invoke(main, list(args), prog_name="darkmap")
    assert res.exit_code == 0, (args, res.output, res.exception)
    return res


@pytest.fixture(scope="module")
def hostile_ws(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A workspace of hostile input, ingested, assessed and linked with the CLI."""
    base = tmp_path_factory.mktemp("outputs")
    folders = []
    for case in cases(data_dir):
        if case.name in ("csv_formula_handles", "csv_rtl_control_handles", "pages_title_200k",
                         "pages_rtl_control_handle"):
            folder = base / "input" / case.name
            folder.mkdir(parents=True)
            case.build(folder)
            folders.append(folder)
    assert len(folders) == 4
    _crafted_hansa(data_dir, base / "input" / "crafted")
    ws = base / "ws"
    _cli("ingest", "-q", "--init", "--allow-unrecognised", "-w", str(ws), *map(str, folders),
         str(base / "input" / "crafted"))
    _cli("assess", "-w", str(ws))
    _cli("link", "-w", str(ws))
    return ws


# ------------------------------------------------------------------------------ CSV


def test_targets_csv_is_safe_in_a_spreadsheet(hostile_ws: Path) -> None:
    text = _cli("targets", "-w", str(hostile_ws), "--limit", "0", "--csv").stdout
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert tuple(rows[0]) == _CSV_FIELDS
    body = rows[1:]
    assert len(body) > 100
    for row in body:
        assert len(row) == len(_CSV_FIELDS)
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell[:80]
            assert not RAW.search(cell), cell[:80]
            assert len(cell) <= CSV_CELL_CHARS
    labels = {row[2] for row in body}
    for handle in FORMULA_HANDLES:
        assert "'" + handle in labels, handle  # the handle is kept, as text
    assert "evil\\u202egnp.exe\\x1b[2J\\x07" in labels
    # the vendor of the 200,000-character title: its evidence cell is cut at 32,000
    evil = next(row for row in body if row[2] == "evil\\u202egnp.exe\\x1b[2J\\x07")
    evidence = evil[_CSV_FIELDS.index("evidence")]
    assert len(evidence) == CSV_CELL_CHARS and evidence.endswith("…")
    assert "Fentanyl pressed M30 blues XXXX" in evidence


# ------------------------------------------------------------------------- terminal


def test_terminal_output_shows_escapes_not_characters(hostile_ws: Path) -> None:
    w = ["-w", str(hostile_ws)]
    outputs = {
        "targets": _cli("targets", *w, "--limit", "0").stdout,
        "search": _cli("persona", "search", "evil", *w).stdout,
        "show": _cli("persona", "show", f"hansa:{EVIL.lower()}", *w).stdout,
        "keys": _cli("keys", *w).stdout,
        "status": _cli("status", *w).stdout,
    }
    for name, out in outputs.items():
        assert not RAW.search(out), (name, RAW.findall(out)[:5])
    for name in ("targets", "search", "show"):
        assert "evil\\u202egnp.exe\\x1b[2J\\x07" in outputs[name], name
    assert "red\\x1b[31m\\x1b]0;pwned\\x07" in outputs["targets"]
    # JSON keeps the value exactly (a program reading it gets the handle as stored), and
    # writes the characters as \\u escapes: inert on a terminal
    raw = _cli("persona", "search", "evil", *w, "--json").stdout
    assert not RAW.search(raw)
    assert EVIL in {h["label"] for h in json.loads(raw)}


# --------------------------------------------------------------------------- report


class _Page(HTMLParser):
    """Every text node, attribute value and tag of an HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self.tags: set[str] = set()
        self.stack: list[str] = []
        self.details: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.texts += [v for _, v in attrs if v]
        if tag == "details":
            self.details.append([])
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.stack and self.stack[-1] == tag:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.texts.append(data)
        if self.details and "details" in self.stack:
            self.details[-1].append(data)


def test_the_report_is_bounded_and_shows_no_hidden_characters(hostile_ws: Path,
                                                               tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    _cli("report", "-w", str(hostile_ws), "-o", str(out))
    text = out.read_text(encoding="utf-8")
    # the long title appears twice (flagged listings, the target's evidence): each time
    # cut, so the report stays small though the evidence holds 400,000 characters of it
    assert len(text) < 200_000, len(text)
    page = _Page()
    page.feed(text)
    page.close()
    for piece in page.texts:
        assert not RAW.search(piece), piece[:120]
        assert len(piece) <= FULL_CHARS + 100
    assert "<script" not in text.lower() and "img" not in page.tags  # autoescape holds
    assert any(MARKUP in piece for piece in page.texts)  # the markup is shown as text
    assert any("evil\\u202egnp.exe\\x1b[2J\\x07" in piece for piece in page.texts)
    long_cells = [d for d in page.details if any("Fentanyl pressed M30 blues" in t for t in d)]
    assert len(long_cells) == 2
    for cell in long_cells:
        summary, full = cell[0].rstrip(), cell[2]
        assert summary.startswith("Fentanyl pressed M30 blues XXX")
        assert len(summary) <= CELL_CHARS + 1 and summary.endswith("…")
        assert re.fullmatch(r"\(200,0\d\d characters\)", cell[1].strip()), cell[1]
        assert len(full) == FULL_CHARS and full.startswith(summary[:-1])
        assert "The first 20,000 of 200,0" in cell[3]


def test_only_long_values_are_cut(hostile_ws: Path, tmp_path: Path) -> None:
    """Every other value is shown whole: the only <details> are the long title's."""
    out = tmp_path / "report.html"
    _cli("report", "-w", str(hostile_ws), "-o", str(out))
    page = _Page()
    page.feed(out.read_text(encoding="utf-8"))
    assert len(page.details) == 2
    assert all(d[0].startswith("Fentanyl pressed M30 blues XXX") for d in page.details)
    assert "Fentanyl patches " + MARKUP in page.texts


# ----------------------------------------------------------------------------- demo


def test_demo_refuses_a_folder_it_did_not_create(tmp_path: Path) -> None:
    mine = tmp_path / "case-42"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes\n", encoding="utf-8")
    res = CliRunner().invoke(main, ["demo", "-w", str(mine), "--vendors", "5"],
                             prog_name="darkmap")
    assert res.exit_code == 1
    assert res.stderr.strip().splitlines() == [(
        f"Error: {mine}: folder is not empty and was not created by `darkmap demo` (no "
        f"{DEMO_MARKER} file); nothing was deleted: choose a new or empty folder (or delete "
        "this one yourself)")]
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    assert (mine / "notes.txt").read_text(encoding="utf-8") == "my notes\n"
    # --keep does not make it acceptable: the demo would write into the case
    res = CliRunner().invoke(main, ["demo", "-w", str(mine), "--keep"], prog_name="darkmap")
    assert res.exit_code == 1 and sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def test_demo_folder_rules(tmp_path: Path) -> None:
    new = tmp_path / "new"
    prepare_demo_folder(new, fresh=True)
    assert [p.name for p in new.iterdir()] == [DEMO_MARKER]
    (new / "earlier-run.txt").write_text("x", encoding="utf-8")
    prepare_demo_folder(new, fresh=False)  # --keep: the earlier run stays
    assert (new / "earlier-run.txt").exists()
    prepare_demo_folder(new, fresh=True)  # marked: emptied
    assert [p.name for p in new.iterdir()] == [DEMO_MARKER]
    empty = tmp_path / "empty"
    empty.mkdir()
    prepare_demo_folder(empty, fresh=True)
    assert (empty / DEMO_MARKER).is_file()
    link = tmp_path / "link"
    link.symlink_to(new, target_is_directory=True)
    with pytest.raises(DarkmapError, match="is not a folder"):
        prepare_demo_folder(link, fresh=True)
    assert (new / DEMO_MARKER).is_file()


def test_demo_reruns_in_its_own_folder(tmp_path: Path) -> None:
    """The demo marks the folder it creates and, run again, replaces only that."""
    demo, empty = tmp_path / "demo", tmp_path / "no-real-data"
    empty.mkdir()
    args = ["demo", "-w", str(demo), "--vendors", "8", "--data", str(empty)]
    _cli(*args)
    assert (demo / DEMO_MARKER).is_file() and (demo / "report.html").is_file()
    (demo / "leftover.txt").write_text("from the first run", encoding="utf-8")
    res = _cli(*args)
    assert not (demo / "leftover.txt").exists() and (demo / "report.html").is_file()
    assert not RAW.search(res.stdout)
