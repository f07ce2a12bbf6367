"""Outputs appear whole or not at all: an export, the report, a package and an audit
archive killed or failing mid-write leave no file that looks complete, and an earlier
complete output stays (found by a kill-resilience test: a killed FtM export left whole,
parsing lines; a killed re-export replaced a complete file with a third of it)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from export_workspaces import built, open_ro

import darkmap.export.ftm as ftm_mod
import darkmap.export.graph as graph_mod
import darkmap.export.misp as misp_mod
import darkmap.export.stix as stix_mod
import darkmap.export.tables as tables_mod
from darkmap.export import run_export
from darkmap.export.options import ExportOptions
from darkmap.model.outputs import STALE_SECONDS, atomic_file, atomic_folder, is_partial
from darkmap.plugins import exporters
from darkmap.report.html import write_report

CLI = "import sys; from darkmap.cli import main; sys.exit(main())"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    return built("demo", tmp_path_factory, data_dir)


def _partials(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if is_partial(p)]


def _failing_open(after: int) -> Callable[..., Any]:
    """An ``open`` whose files raise KeyboardInterrupt (Ctrl-C) at the ``after``-th write:
    a failure from inside a writer, part of the output already written."""
    def fake(*args: Any, **kwargs: Any) -> Any:
        fh = open(*args, **kwargs)
        if "w" not in str(args[1] if len(args) > 1 else kwargs.get("mode", "r")):
            return fh
        real, n = fh.write, [0]

        def write(text: Any) -> int:
            n[0] += 1
            if n[0] >= after:
                raise KeyboardInterrupt
            return real(text)
        fh.write = write
        return fh
    return fake


def test_atomic_file_keeps_the_target_on_any_exception_and_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("earlier, complete\n", encoding="utf-8")
    target.chmod(0o600)
    with pytest.raises(KeyboardInterrupt), atomic_file(target) as part:
        part.write_text("half", encoding="utf-8")
        assert part.parent == tmp_path and part.name.startswith(".out.txt.partial-")
        raise KeyboardInterrupt
    assert target.read_text(encoding="utf-8") == "earlier, complete\n"
    assert not _partials(tmp_path)
    with atomic_file(target) as part:
        part.write_text("new\n", encoding="utf-8")
    assert target.read_text(encoding="utf-8") == "new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 and not _partials(tmp_path)
    with atomic_file(tmp_path / "private", mode=0o600) as part:
        part.write_text("x", encoding="utf-8")
    assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o600


@pytest.mark.parametrize(("fmt", "module", "after"), [
    ("ftm", ftm_mod, 20), ("gexf", graph_mod, 200), ("graphml", graph_mod, 200),
    ("stix", stix_mod, 200), ("misp", misp_mod, 200)])
def test_a_failed_re_export_leaves_the_earlier_export(demo: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     fmt: str, module: Any,
                                                     after: int) -> None:
    out = tmp_path / f"out.{fmt}"
    ws = open_ro(demo)
    try:
        run_export(exporters()[fmt], ws, out)
        good = out.read_bytes()
        monkeypatch.setattr(module, "open", _failing_open(after), raising=False)
        with pytest.raises(KeyboardInterrupt):
            run_export(exporters()[fmt], ws, out)
        assert out.read_bytes() == good
        (tmp_path / "new").mkdir()
        with pytest.raises(KeyboardInterrupt):
            run_export(exporters()[fmt], ws, tmp_path / "new" / f"out.{fmt}")
    finally:
        ws.close()
    assert not _partials(tmp_path) and not list((tmp_path / "new").iterdir())


def test_a_failed_report_leaves_the_earlier_report(demo: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "report.html"
    out.write_text("<!doctype html><p>earlier report</p>\n", encoding="utf-8")
    real = Path.write_text

    def half(self: Path, data: str, *args: Any, **kwargs: Any) -> int:
        real(self, data[: len(data) // 2], *args, **kwargs)
        raise KeyboardInterrupt
    monkeypatch.setattr(Path, "write_text", half)
    ws = open_ro(demo)
    try:
        with pytest.raises(KeyboardInterrupt):
            write_report(ws, out)
    finally:
        ws.close()
    assert out.read_text(encoding="utf-8") == "<!doctype html><p>earlier report</p>\n"
    assert not _partials(tmp_path)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_tables_folder_appears_whole_with_its_manifest(demo: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       fmt: str) -> None:
    out = tmp_path / "tables"
    ws = open_ro(demo)
    try:
        counts = run_export(exporters()[fmt], ws, out, ExportOptions(all_tables=True))
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["complete"] and manifest["darkmap_export"] == fmt
        assert set(manifest["tables"]) == set(counts)
        for table, m in manifest["tables"].items():
            assert m["rows"] == counts[table] and _sha(out / m["file"]) == m["sha256"]
        assert sorted(p.name for p in out.iterdir()) == sorted(
            ["manifest.json", *(m["file"] for m in manifest["tables"].values())])
        before = {p.name: p.read_bytes() for p in out.iterdir()}
        written = [0]
        real = tables_mod.CsvExporter._write if fmt == "csv" else \
            tables_mod.ParquetExporter._write

        def fail_at_the_fifth(self: Any, batches: Any, path: Path) -> int:
            written[0] += 1
            if written[0] == 5:
                path.write_bytes(b"cut")
                raise KeyboardInterrupt
            return real(self, batches, path)
        cls = tables_mod.CsvExporter if fmt == "csv" else tables_mod.ParquetExporter
        monkeypatch.setattr(cls, "_write", fail_at_the_fifth)
        with pytest.raises(KeyboardInterrupt):   # over the earlier export: it stays
            run_export(exporters()[fmt], ws, out, ExportOptions(all_tables=True))
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
        written[0] = 0
        with pytest.raises(KeyboardInterrupt):   # a new folder: none appears
            run_export(exporters()[fmt], ws, tmp_path / "fresh", ExportOptions(all_tables=True))
        assert not (tmp_path / "fresh").exists()
    finally:
        ws.close()
    assert not _partials(tmp_path)


def test_tables_into_a_folder_of_other_files_keep_them(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "tables"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n", encoding="utf-8")
    ws = open_ro(demo)
    try:
        run_export(exporters()["csv"], ws, out, ExportOptions(tables=("markets", "accounts")))
        run_export(exporters()["csv"], ws, out, ExportOptions(tables=("markets",)))
    finally:
        ws.close()
    assert sorted(p.name for p in out.iterdir()) == ["accounts.csv", "manifest.json",
                                                     "markets.csv", "notes.txt"]
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert list(manifest["tables"]) == ["markets"]  # the set this export wrote
    assert not _partials(tmp_path)


def _dead_pid() -> int:
    """The process id of a process that has ended (and was reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _age(path: Path, seconds: float) -> None:
    os.utime(path, (time.time() - seconds,) * 2, follow_symlinks=False)


def test_a_killed_writers_old_partials_of_the_same_target_go_at_the_next_write(
        tmp_path: Path) -> None:
    """Only partials of this very target, of a process no longer running, unwritten for
    STALE_SECONDS: a live writer's (this process's, or fresh) and other files stay."""
    dead = _dead_pid()
    old_file = tmp_path / f".out.txt.partial-{dead}"
    old_file.write_text("cut", encoding="utf-8")
    old_folder = tmp_path / f".out.txt.partial-{dead}-2"
    (old_folder / "sub").mkdir(parents=True)
    (old_folder / "sub" / "f").write_text("x", encoding="utf-8")
    fresh = tmp_path / f".out.txt.partial-{dead}-3"
    fresh.write_text("a writer on another machine, still writing", encoding="utf-8")
    live = tmp_path / f".out.txt.partial-{os.getppid()}"
    other = tmp_path / f".out.txt.bak.partial-{dead}"
    lookalike = tmp_path / f".out.txt.partial-{dead}x"
    for p in (live, other, lookalike):
        p.write_text("keep", encoding="utf-8")
    for p in (old_file, old_folder, live, other, lookalike):
        _age(p, STALE_SECONDS + 5)
    _age(fresh, STALE_SECONDS - 60)
    with atomic_file(tmp_path / "out.txt") as part:
        part.write_text("new\n", encoding="utf-8")
    assert (tmp_path / "out.txt").read_text(encoding="utf-8") == "new\n"
    assert sorted(p.name for p in _partials(tmp_path)) == sorted(
        p.name for p in (fresh, live, other, lookalike))
    # a folder output does the same for its own partials
    (tmp_path / f".tables.partial-{dead}").mkdir()
    _age(tmp_path / f".tables.partial-{dead}", STALE_SECONDS + 5)
    with atomic_folder(tmp_path / "tables") as part:
        (part / "a.csv").write_text("a\n", encoding="utf-8")
    assert not (tmp_path / f".tables.partial-{dead}").exists()
    assert (tmp_path / "tables" / "a.csv").is_file()
    # an audited package's partial may be the only copy of what the trail names: kept
    audited = tmp_path / f".pkg.partial-{dead}"
    audited.mkdir()
    _age(audited, STALE_SECONDS + 5)
    with atomic_folder(tmp_path / "pkg", clean=False) as part:
        (part / "package.json").write_text("{}", encoding="utf-8")
    assert audited.is_dir()


def _kill_when(cmd: list[str], ready: Callable[[], bool], cwd: Path) -> int:
    """Run ``cmd``; SIGKILL it as soon as ``ready()``; its return code."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=os.environ.copy(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if ready():
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.002)
    return proc.wait(timeout=60)


def test_a_killed_ftm_re_export_leaves_the_earlier_export(demo: Path, tmp_path: Path) -> None:
    """A real SIGKILL of ``darkmap export ftm`` once its output starts: the complete
    earlier export at the path stays byte for byte, and only a hidden partial file is
    left beside it."""
    out = tmp_path / "out.ftm"
    cmd = [sys.executable, "-c", CLI, "export", "ftm", "-w", str(demo), "-o", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    good = out.read_bytes()
    stamp = out.stat().st_mtime_ns

    def started() -> bool:
        return bool(_partials(tmp_path)) or out.stat().st_mtime_ns != stamp \
            or out.stat().st_size != len(good)
    for _ in range(3):
        if _kill_when(cmd, started, tmp_path) == -signal.SIGKILL:
            break
    else:
        pytest.skip("the export finished before it could be killed three times")
    assert out.read_bytes() == good
    left = _partials(tmp_path)
    assert [p.name.split("partial-")[0] for p in left] in ([], [".out.ftm."])
    # the next export of the same path removes what the killed one left, once it is old
    for p in left:
        os.utime(p, (time.time() - STALE_SECONDS - 5,) * 2)
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    assert out.read_bytes() == good and not _partials(tmp_path)


def test_a_killed_csv_all_leaves_no_folder_that_looks_complete(demo: Path,
                                                               tmp_path: Path) -> None:
    out = tmp_path / "tables"
    cmd = [sys.executable, "-c", CLI, "export", "csv", "--all", "-w", str(demo), "-o", str(out)]

    def started() -> bool:
        return any(p.iterdir() for p in [*_partials(tmp_path), out] if p.is_dir())
    for _ in range(3):
        if _kill_when(cmd, started, tmp_path) == -signal.SIGKILL:
            break
    else:
        pytest.skip("the export finished before it could be killed three times")
    assert not out.exists(), sorted(p.name for p in out.iterdir())
    assert all(p.name.startswith(".tables.partial-") for p in _partials(tmp_path))

