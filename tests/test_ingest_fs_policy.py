"""Issue 18: ingest reads only regular files inside the folders given, and one hostile
file (a FIFO, a link out, a deep tree, a name that is not UTF-8, an importer that never
returns or blows the stack) never stops, hangs or silently thins a run."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from darkmap import plugins
from darkmap.cli import main
from darkmap.collect import ingest as ingest_mod
from darkmap.collect.fs_policy import path_bytes, storable_path, walk
from darkmap.collect.ingest import NOT_READ_METHOD, IngestSummary, ingest, not_read_sha256
from darkmap.model.limits import MAX_TREE_DEPTH
from darkmap.model.records import Record
from darkmap.plugins import SourceFile
from darkmap.simulate import hostile
from darkmap.store.workspace import Workspace

DREAM = ("dream/listings/listing_0.html", "dream/sellers/seller_3.html")


def _pages(data_dir: Path, folder: Path) -> list[bytes]:
    """Two real Dream pages under ``folder/good``; their bytes."""
    (folder / "good").mkdir(parents=True)
    out = []
    for rel in DREAM:
        raw = (data_dir / "pages" / rel).read_bytes()
        (folder / "good" / Path(rel).name).write_bytes(raw)
        out.append(raw)
    return out


def _capture_names(ws: Workspace) -> set[str]:
    return {p.name for p in ws.captures.root.rglob("*") if p.is_file()}


def _skips(summary: IngestSummary) -> dict[str, int]:
    return summary.skipped_by_page_type()


@pytest.fixture
def dream(data_dir: Path, tmp_path: Path) -> tuple[Path, list[bytes]]:
    folder = tmp_path / "in"
    return folder, _pages(data_dir, folder)


def test_special_files_and_links_are_skipped_with_the_reason(
        ws: Workspace, dream: tuple[Path, list[bytes]]) -> None:
    folder, raws = dream
    os.mkfifo(folder / "pipe.html")
    os.symlink("/etc/passwd", folder / "passwd.html")
    os.symlink("/dev/zero", folder / "zero.html")
    os.symlink("/etc", folder / "etc")
    os.symlink(".", folder / "loop")
    os.symlink("missing.html", folder / "dangling.html")
    os.symlink("b.html", folder / "a.html")
    os.symlink("a.html", folder / "b.html")
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:  # a socket path is limited to 108 bytes: bind through the folder's descriptor
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(f"/proc/self/fd/{fd}/socket.html")
    finally:
        os.close(fd)
    summary = ingest(ws, [folder])
    t = summary.totals()
    assert (t["read"], t["stored"], t["skipped"], t["quarantined"]) == (11, 2, 9, 0)
    skips = _skips(summary)
    assert skips["file: not a regular file: fifo"] == 1
    assert skips["file: not a regular file: socket"] == 1
    assert skips["file: symlink leaving the folder (not followed)"] == 3  # passwd, zero, etc
    assert skips["file: symlink to a folder (not followed)"] == 1  # loop -> .
    assert skips["file: dangling symlink (its target does not exist)"] == 1
    assert skips["file: symlink loop (too many levels of links)"] == 2
    # only the two pages were captured; every skip points to its not-read row
    assert _capture_names(ws) == {hashlib.sha256(r).hexdigest() for r in raws}
    rows = ws.con.execute(
        "SELECT s.source, s.capture_sha256, s.method, c.media_type, c.size FROM skipped_pages s "
        "JOIN captures c ON c.sha256 = s.capture_sha256 WHERE s.method = ?",
        [NOT_READ_METHOD]).fetchall()
    assert len(rows) == 9
    for source, sha, _, media, size in rows:
        assert sha == not_read_sha256(source) and media and size == 0


def test_device_node_in_the_folder_is_never_read(ws: Workspace,
                                                 dream: tuple[Path, list[bytes]]) -> None:
    folder, _ = dream
    try:
        os.mknod(folder / "zero.html", stat.S_IFCHR | 0o600, os.makedev(1, 5))
    except PermissionError:
        pytest.skip("mknod not permitted here")
    summary = ingest(ws, [folder])
    assert summary.totals()["skipped"] == 1
    assert _skips(summary) == {"file: not a regular file: character device": 1}


def test_link_to_a_page_inside_the_folder_is_the_same_capture(
        ws: Workspace, dream: tuple[Path, list[bytes]]) -> None:
    folder, raws = dream
    os.symlink("good/listing_0.html", folder / "alias.html")
    summary = ingest(ws, [folder])
    t = summary.totals()
    assert (t["read"], t["stored"], t["stored_new"], t["already_stored"]) == (3, 3, 2, 1)
    alias = next(f for f in summary.files if f.source.endswith("alias.html"))
    assert alias.already and alias.sha256 == hashlib.sha256(raws[0]).hexdigest()
    assert summary.files[-1] is alias  # links come after the files they point to


def test_same_content_twice_is_counted_as_already_stored(
        ws: Workspace, dream: tuple[Path, list[bytes]]) -> None:
    folder, raws = dream
    (folder / "copy.html").write_bytes(raws[0])
    t = ingest(ws, [folder]).totals()
    assert (t["stored"], t["stored_new"], t["already_stored"], t["files_already_ingested"]) \
        == (3, 2, 1, 1)
    again = ingest(ws, [folder]).totals()
    assert (again["stored_new"], again["already_stored"], again["files_already_ingested"]) \
        == (0, 3, 3)


def _deep(folder: Path, depth: int, content: bytes, name: str = "d") -> None:
    """``content`` as a page ``depth`` folders below ``folder`` (made with dir fds)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir(name, dir_fd=fd)
            nfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        out = os.open("listing_1.html", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        with os.fdopen(out, "wb") as fh:
            fh.write(content)
    finally:
        os.close(fd)


def test_a_tree_deeper_than_the_limit_is_one_skipped_unit(
        ws: Workspace, data_dir: Path, tmp_path: Path) -> None:
    page = (data_dir / "pages" / DREAM[0]).read_bytes()
    folder = tmp_path / "in"
    (folder / "ok").mkdir(parents=True)
    _deep(folder / "ok", MAX_TREE_DEPTH - 1, page)  # the deepest folder still read
    (folder / "deep").mkdir()
    try:
        _deep(folder / "deep", MAX_TREE_DEPTH + 44, page, "d" * 20)  # beyond PATH_MAX too
        summary = ingest(ws, [folder])
    finally:
        hostile.rmtree(folder)  # iteratively: pytest's own clean-up recurses
    t = summary.totals()
    assert (t["read"], t["stored"], t["skipped"]) == (2, 1, 1)
    [(reason, n)] = _skips(summary).items()
    assert n == 1 and f"deeper than {MAX_TREE_DEPTH} levels" in reason and "tree_depth" in reason


def test_a_name_that_is_not_utf8_is_stored_losslessly(
        ws: Workspace, data_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    raw_name = os.fsencode(folder) + b"/caf\xe9-listing.html"
    with open(raw_name, "wb") as fh:
        fh.write((data_dir / "pages" / DREAM[0]).read_bytes())
    summary = ingest(ws, [folder])
    assert summary.totals()["stored"] == 1
    (source,) = ws.con.execute("SELECT source FROM processed").fetchone()
    assert source.endswith("/caf\\xe9-listing.html")
    assert path_bytes(source) == raw_name and os.path.exists(path_bytes(source))


@given(st.lists(st.binary(min_size=1, max_size=12).filter(lambda b: b"/" not in b
                                                           and b"\0" not in b),
                min_size=1, max_size=3))
def test_storable_path_is_lossless(parts: list[bytes]) -> None:
    raw = b"/".join(parts)
    stored = storable_path(os.fsdecode(raw))
    stored.encode("utf-8")  # any store takes it
    assert path_bytes(stored) == raw


def test_hidden_and_licence_files_are_counted_and_read_when_named(
        ws: Workspace, dream: tuple[Path, list[bytes]]) -> None:
    folder, raws = dream
    (folder / ".listing_9.html").write_bytes(raws[0] + b" ")
    (folder / "LICENSE-vendor.html").write_bytes(raws[1] + b" ")
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    summary = ingest(ws, [folder])
    assert summary.totals()["skipped"] == 3
    assert {k.split(" (")[0] for k in _skips(summary)} == {
        "file: hidden file", "file: licence or read-me file", "file: hidden folder"}
    named = ingest(ws, [folder / ".listing_9.html", folder / "LICENSE-vendor.html"]).totals()
    assert named["stored_new"] == 2


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads through chmod 000")
def test_unreadable_file_is_skipped_with_the_reason(
        ws: Workspace, dream: tuple[Path, list[bytes]]) -> None:
    folder, raws = dream
    (folder / "locked.html").write_bytes(raws[0] + b" ")
    os.chmod(folder / "locked.html", 0)
    summary = ingest(ws, [folder])
    assert _skips(summary) == {"file: cannot read: permission denied": 1}


def test_a_huge_file_no_importer_reads_is_not_captured(
        ws: Workspace, dream: tuple[Path, list[bytes]]) -> None:
    folder, raws = dream
    with open(folder / "huge.html", "wb") as fh:
        fh.truncate(600 << 20)  # sparse: 600 MB of zeros
    summary = ingest(ws, [folder])
    t = summary.totals()
    assert (t["stored"], t["skipped"]) == (2, 1)
    [reason] = _skips(summary)
    assert reason.startswith("unknown: no importer recognises this file")
    assert _capture_names(ws) == {hashlib.sha256(r).hexdigest() for r in raws}


def _old_iter_files(root: Path) -> Iterator[str]:
    """The walk before issue 18 (os.walk; hidden and licence names dropped), as sources."""
    for top, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and not name.upper().startswith(
                    ("LICENSE", "LICENCE", "COPYING")) and name not in ("README", "README.md"):
                yield str(Path(top) / name)


def test_the_walk_reads_the_real_data_in_the_same_order_as_before(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entries = list(walk([data_dir]))
    read = [e.source for e in entries if not e.refused]
    assert read == list(_old_iter_files(data_dir))
    monkeypatch.chdir(data_dir)  # the same paths, as Path(".") / name writes them
    for root in (Path("."), Path("pages")):
        assert [e.source for e in walk([root]) if not e.refused] == list(_old_iter_files(root))
    assert sorted(Path(e.source).name for e in entries if e.refused) == [
        "LICENSE", "LICENSE-empire-cryptonia-dream-apollon", "README.md"]
    assert all(e.ignored for e in entries if e.refused)


# -- the per-file guard: time budget, stack and memory -----------------------------------


class _Misbehaving:
    """An importer (forced by name) that loops forever, recurses without end, or runs
    out of memory on the file named ``bad.html``; it stores nothing from other files."""

    version = "1"

    def __init__(self, name: str) -> None:
        self.name = name

    def sniff(self, src: SourceFile) -> float:
        return 0.0

    def read(self, src: SourceFile) -> Iterator[Record]:
        if src.source.endswith("bad.html"):
            if self.name == "spin":
                while True:
                    try:  # an importer swallowing every Exception cannot stop the budget
                        pass
                    except Exception:  # noqa: BLE001, S110
                        pass
            if self.name == "deep":
                def down(n: int) -> int:
                    return down(n + 1) + 1
                down(0)
            if self.name == "greedy":
                raise MemoryError
        yield from ()


@pytest.fixture
def misbehaving(monkeypatch: pytest.MonkeyPatch) -> None:
    plugins.load_builtin()
    for name in ("spin", "deep", "greedy"):
        monkeypatch.setitem(plugins._IMPORTERS, name, _Misbehaving(name))
    monkeypatch.setattr(ingest_mod, "MAX_FILE_SECONDS", 0.5)


@pytest.mark.parametrize(("importer", "limit"), [("spin", "seconds"), ("deep", "nesting_depth"),
                                                  ("greedy", "memory")])
@pytest.mark.usefixtures("misbehaving")
def test_one_misbehaving_file_is_quarantined_with_the_limit_named(
        ws: Workspace, tmp_path: Path, importer: str, limit: str) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.html", "bad.html", "c.html"):
        (folder / name).write_text(name)
    before = signal.getsignal(signal.SIGALRM)
    summary = ingest(ws, [folder], importer_name=importer)
    assert signal.getsignal(signal.SIGALRM) == before  # the handler is put back
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    t = summary.totals()
    # the other files are read (the importer finds no unit in them) and stored nothing
    assert (t["files"], t["read"], t["quarantined"], t["files_failed"]) == (3, 1, 1, 1)
    assert summary.limits() == {limit: 1}
    (locator, name) = ws.con.execute(
        "SELECT locator, limit_name FROM quarantine WHERE source LIKE '%bad.html'").fetchone()
    assert (locator, name) == ("file", limit)


# -- the command line -----------------------------------------------------------------------


def test_ingest_needs_an_existing_workspace_or_init(tmp_path: Path,
                                                    dream: tuple[Path, list[bytes]]) -> None:
    folder, _ = dream
    runner = CliRunner()
    typo = tmp_path / "case-24"
    res = runner.invoke(main, ["ingest", "-w", str(typo), str(folder)])
    assert res.exit_code == 1 and not typo.exists()
    [line] = res.output.strip().splitlines()
    assert str(typo) in line and "--init" in line and "darkmap init" in line
    res = runner.invoke(main, ["ingest", "-w", str(typo), "--init", "-q", str(folder)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["ingest", "-w", str(typo), "-q", str(folder)])
    assert res.exit_code == 0 and "2 already ingested" in res.output


@pytest.mark.usefixtures("misbehaving")
def test_file_names_never_reach_the_terminal_raw(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    evil = "\x1b[2J\x1b]0;owned\x07\u202egnp.bad.html"
    (folder / evil).write_text("x")
    (folder / "bad.html").write_text("y")
    runner = CliRunner()
    for args in ([], ["--json"]):
        ws = tmp_path / f"ws{len(args)}"
        res = runner.invoke(main, ["ingest", "-w", str(ws), "--init", "-q", "--importer",
                                   "greedy", *args, str(folder)])
        assert res.exit_code == 0, res.output
        out = res.stdout + res.stderr
        assert "bad.html" in out  # the failed file is named...
        assert not any(c in out for c in "\x1b\x07\u202e")  # ...with its controls escaped
