"""What an analyst opens cannot attack them (issue #18, item 5).

A workspace is built by real ingests of hostile input (``hostile_ws`` of tests/conftest.py:
the hostile corpus's CSV and page cases, a Hansa slice where one fentanyl listing has a
200,000-character title and its vendor a handle with a right-to-left override, an escape
sequence and a bell, and an Agora slice of hostile vendors and feedback). Then:

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
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from click.testing import CliRunner, Result
from conftest import EVIL, FORMULA_HANDLES, MARKUP, RAW
from web_support import PASSWORD, FakeClock, login, serving

from darkmap.cli import main
from darkmap.cli.cmd_assess import _CSV_FIELDS
from darkmap.cli.cmd_report import DEMO_MARKER, prepare_demo_folder
from darkmap.cli.common import DarkmapError
from darkmap.export.graph import label_text
from darkmap.model.display import CSV_CELL_CHARS, lookalike_mark
from darkmap.ops.access import add_agency, add_user
from darkmap.report.html import CELL_CHARS, FULL_CHARS
from darkmap.store.workspace import Workspace
from darkmap.web.auth import create_login

CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
"""Control characters: never in an XML file's text (XML 1.0 forbids the C0 ones and
discourages the C1 ones; a terminal that shows the file obeys them)."""


def _cli(*args: str) -> Result:
    res = CliRunner().invoke(main, list(args), prog_name="darkmap")
    assert res.exit_code == 0, (args, res.output, res.exception)
    return res


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
    for name in ("search", "show"):
        assert "evil\\u202egnp.exe\\x1b[2J\\x07" in outputs[name], name
    # the targets table fits in 100 columns: a long label or account id is cut, its
    # escapes still shown
    assert "evil\\u202egnp.exe\\x1b" in outputs["targets"]
    assert "red\\x1b[31m\\x1b]0;pwn" in outputs["targets"]
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


# ------------------------------------------------------- more commands on a terminal


def test_every_read_command_shows_escapes(hostile_ws: Path) -> None:
    """The commands the first terminal test leaves out, text and --json: persona show of a
    persona whose links join hostile accounts, the review queue, status --fields, keys,
    verify; the JSON parses and holds the handles exactly."""
    w = ["-w", str(hostile_ws)]
    pair = "agora:evil\u202egnp.exe"
    runs = {
        "show-linked": ("persona", "show", pair), "review": ("review", "-n", "10000"),
        "estimate": ("review", "--estimate"), "fields": ("status", "--fields"),
        "keys": ("keys",), "verify": ("verify",), "targets": ("targets", "--limit", "0"),
    }
    for name, args in runs.items():
        for fmt in ([], ["--json"]):
            out = _cli(*args, *w, *fmt).stdout
            assert not RAW.search(out), (name, fmt, RAW.findall(out)[:5])
            if fmt:
                json.loads(out)
    shown = json.loads(_cli("persona", "show", pair, *w, "--json").stdout)
    assert {a["account_id"] for a in shown["accounts"]} == {pair, "hansa:evil\u202egnp.exe"}
    assert "hansa:evil\\u202egnp.exe" in _cli("persona", "show", pair, *w).stdout
    targets = json.loads(_cli("targets", *w, "--limit", "0", "--json").stdout)
    assert EVIL in {t["label"] for t in targets}


def test_review_prints_judge_lines_a_shell_runs_as_given(hostile_ws: Path,
                                                         tmp_path: Path) -> None:
    """``darkmap review`` prints a ``darkmap judge A B`` line per pair for the analyst to
    paste: with the ids quoted, bash runs exactly that command with exactly the stored ids
    (a handle holding ``|`` or a right-to-left override runs nothing and changes
    nothing), and the line shows no hidden character."""
    w = ["-w", str(hostile_ws)]
    pairs = [(q["a"], q["b"]) for q in json.loads(
        _cli("review", "-n", "10000", *w, "--json").stdout)]
    out = _cli("review", "-n", "10000", *w).stdout
    assert not RAW.search(out)
    lines = [ln.strip() for ln in out.splitlines() if ln.startswith("  darkmap judge ")]
    assert len(lines) == len(pairs)
    assert ("agora:+cmd|' /c calc'!a0", "hansa:+cmd|' /c calc'!a0") in pairs
    assert ("agora:evil\u202egnp.exe", "hansa:evil\u202egnp.exe") in pairs
    for line, (a, b) in zip(lines, pairs, strict=True):
        assert line.endswith(" --same|--different")
        command = line.removesuffix(" --same|--different") + " --same"
        # darkmap stood in for by a function printing its arguments, NUL-separated
        ran = subprocess.run(
            ["bash", "-c", 'darkmap() { printf "%s\\0" "$@"; }; ' + command], cwd=tmp_path,
            capture_output=True, env={"LC_ALL": "C.UTF-8", "PATH": "/usr/bin:/bin"},
            check=True, timeout=30)
        assert ran.stdout.decode("utf-8").split("\0") == ["judge", a, b, "--same", ""], line
        assert ran.stderr == b"" and not list(tmp_path.iterdir()), line


# -------------------------------------------------------------------------- exports


def _xml_texts(path: Path) -> list[str]:
    """Every text node and attribute value of an XML file (it must parse)."""
    root = ET.parse(path).getroot()  # noqa: S314 - a file this test had darkmap write
    return [t for el in root.iter() for t in (el.text, *el.attrib.values()) if t]


def _strings(value: object) -> set[str]:
    """Every string inside a parsed JSON value."""
    if isinstance(value, str):
        return {value}
    items = value.values() if isinstance(value, dict) else value if isinstance(
        value, list) else ()
    return set().union(*map(_strings, items)) if items else set()


def test_exports_hold_hostile_text_as_data(hostile_ws: Path, tmp_path: Path) -> None:
    """``darkmap export`` in every format over the hostile workspace: GEXF and GraphML
    parse and hold no control character (escapes instead), the JSON formats parse and
    keep the handles, every CSV cell of --all is text a spreadsheet will not run, holds no
    control or bidi character and fits in a cell."""
    w = ["-w", str(hostile_ws)]
    for fmt in ("gexf", "graphml"):
        out = tmp_path / f"g.{fmt}"
        _cli("export", fmt, "-o", str(out), *w)
        texts = _xml_texts(out)
        controls = [t[:80] for t in texts if CONTROL.search(t)]
        assert not controls, (fmt, controls[:3])
        # the handle's label as the CSV and the report show it, marked (exports audit,
        # finding 7: the bidi override was drawn raw)
        shown = label_text(EVIL)
        assert f"{shown} {lookalike_mark(EVIL, account_id=False)}" in texts, fmt
        assert "\\x1b[2J\\x07" in shown and "\\u202e" in shown, fmt
        assert MARKUP in texts, fmt  # markup is a value, not elements
        assert "nul\\x01\\x02\\x7f\\x9b" in texts, fmt
        assert "\x7f" not in out.read_text(encoding="utf-8"), fmt
    for fmt in ("stix", "misp"):
        out = tmp_path / f"{fmt}.json"
        _cli("export", fmt, "-o", str(out), *w)
        assert EVIL in _strings(json.loads(out.read_text(encoding="utf-8"))), fmt
    for extended in ([], ["--extended"]):
        out = tmp_path / f"ftm{len(extended)}.json"
        _cli("export", "ftm", "-o", str(out), *w, *extended)
        values = _strings([json.loads(line)
                           for line in out.read_text(encoding="utf-8").splitlines()])
        assert any(MARKUP in v for v in values) and any("gnp.exe" in v for v in values)
    _cli("export", "csv", "-o", str(tmp_path / "csv"), *w, "--all")
    seen = ""
    for table in sorted((tmp_path / "csv").glob("*.csv")):
        with open(table, encoding="utf-8", newline="") as fh:
            for row in csv.reader(fh):
                for cell in row:
                    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell[:80]
                    assert not RAW.search(cell), (table.name, cell[:80])
                    assert len(cell) <= CSV_CELL_CHARS, table.name
                    if "evil" in cell or "calc" in cell:
                        seen += cell + "\n"
    assert "evil\\u202egnp.exe\\x1b[2J\\x07" in seen and "'+cmd|' /C calc'!A0" in seen


# -------------------------------------------------------------------------- package


def _copy(ws: Path, to: Path) -> Path:
    """A copy of the shared workspace for a test that writes (users, audit trail)."""
    shutil.copytree(ws, to)
    return to


def test_the_country_package_shows_escapes(hostile_ws: Path, tmp_path: Path) -> None:
    """``darkmap package``: package.html holds no control or bidi character in any text
    or attribute and markup from market text stays text; package.json and
    entities.ftm.json parse and keep the handles."""
    ws = _copy(hostile_ws, tmp_path / "ws")
    w = ["-w", str(ws)]
    _cli("ops", "agency", "add", "bka", "--country", "DE", "--contact", "desk", "--as", "ana",
         *w)
    _cli("ops", "user", "add", "ana", "--agency", "bka", "--role", "admin", "--as", "ana", *w)
    found = ""
    for country in ("DE", "US"):
        out = tmp_path / f"pkg-{country}"
        _cli("package", "--country", country, "--out", str(out), "--as", "ana", *w)
        page = _Page()
        text = (out / "package.html").read_text(encoding="utf-8")
        page.feed(text)
        page.close()
        assert not [t for t in page.texts if RAW.search(t)], country
        assert "img" not in page.tags and "<script" not in text.lower()
        found += "\n".join(page.texts)
        bundle = json.loads((out / "package.json").read_text(encoding="utf-8"))
        found += json.dumps(bundle, ensure_ascii=False)
        for line in (out / "entities.ftm.json").read_text(encoding="utf-8").splitlines():
            json.loads(line)
    assert "hansa:evil\\u202egnp.exe" in found  # shown as the escape in the page
    assert "hansa:evil\u202egnp.exe" in found  # kept exactly in package.json
    assert "hansa:" + MARKUP.lower() in found


# ------------------------------------------------------------------------------ web


class _ShownPage(_Page):
    """What a page shows: :class:`_Page` without the values of hidden form fields (the
    review queue posts the exact account ids back; a browser never draws them)."""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "input" and ("type", "hidden") in attrs:
            attrs = [(k, v) for k, v in attrs if k != "value"]
        super().handle_starttag(tag, attrs)


def test_workbench_pages_and_graph_show_escapes(hostile_ws: Path, tmp_path: Path) -> None:
    """The web workbench (served by uvicorn) over the hostile workspace: no page holds a
    control or bidi character in any text or attribute, the link chart's labels (drawn on
    a canvas, where a right-to-left override reorders text) are escaped, the /api/ JSON
    parses and keeps the ids exact, so the chart still expands every hostile node."""
    ws = _copy(hostile_ws, tmp_path / "ws")
    with Workspace.open(ws) as opened:
        add_agency(opened.con, "eve", "ag", "Agency", "GB", "desk")
        add_user(opened.con, "eve", "eve", "ag", "officer")
        secret = create_login(opened.con, "eve", "eve", PASSWORD, "supervisor")
    clock = FakeClock()
    with serving(ws, clock) as srv, httpx.Client(base_url=srv.url, timeout=120) as c:
        clock.advance(seconds=31)
        assert login(c, "eve", secret, clock).status_code == 303
        accounts = [a for (a,) in srv.sql("SELECT account_id FROM accounts WHERE account_id "
                                          "NOT SIMILAR TO '[a-z0-9:_.-]*' ORDER BY 1")]
        personas = [p for (p,) in srv.sql(
            "SELECT DISTINCT persona_id FROM persona_members WHERE account_id "
            "NOT SIMILAR TO '[a-z0-9:_.-]*' ORDER BY 1")]
        assert "hansa:" + EVIL.lower() in accounts and len(personas) > 5
        urls = ["/", "/targets", "/review", "/search?q=evil", "/search?q=great",
                "/search?q=fentanyl", "/listing/hansa%3A990001", "/listing/hansa%3A990002"]
        urls += [f"/account/{quote(a, safe='')}" for a in accounts]
        urls += [f"/persona/{quote(p, safe='')}" for p in personas]
        urls += [f"/graph?node={quote('account:' + a, safe='')}" for a in accounts]
        for url in urls:
            r = c.get(url)
            assert r.status_code == 200, url
            page = _ShownPage()
            page.feed(r.text)
            assert not [t[:80] for t in page.texts if RAW.search(t)], url
            assert "img" not in page.tags, url
            assert len(r.text) < 100_000, url
        for ref in [f"account:{a}" for a in accounts] + [f"persona:{p}" for p in personas]:
            r = c.get("/api/graph/expand", params={"node": ref})
            assert r.status_code == 200, ref
            elements = r.json()["elements"]
            assert ref in {e["data"]["id"] for e in elements}  # the exact id, to expand
            labels = [e["data"]["label"] for e in elements if "label" in e["data"]]
            assert not [x for x in labels if RAW.search(x)], (ref, labels)


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
