"""A file that another command reads: `darkmap ingest` of the J-CODE operations CSV exited
3 "not recognised" and said nothing more. A kind of file read by another command is
declared (:class:`darkmap.plugins.ReadElsewhere`), recognised by its content, and named
with the file when no importer takes it; it is still not ingested."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from darkmap.cli import main
from darkmap.cli.cmd_ingest import UNRECOGNISED_EXIT
from darkmap.collect.ingest import ingest
from darkmap.model.reported import OPERATION_FIGURES
from darkmap.plugins import SourceFile, read_elsewhere, readers_elsewhere
from darkmap.store.workspace import Workspace


def _ingest(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(main, ["ingest", "--init", "-q", "-w", str(tmp_path / "ws"),
                                    *args])
    return res.exit_code, res.stdout, res.stderr


def test_ingest_of_the_operations_csv_names_the_command_that_reads_it(
        data_dir: Path, tmp_path: Path) -> None:
    csv = data_dir / "operations" / "jcode-operations.csv"
    code, out, err = _ingest(tmp_path, str(csv))
    assert code == UNRECOGNISED_EXIT            # not ingested: a script still sees it
    assert f"  {csv}\n    not for ingest: darkmap ops import-reported {csv} --as USER\n" in out
    assert err.splitlines()[-1].endswith(
        "; 1 of them for another command, not ingest: darkmap ops import-reported")
    res = CliRunner().invoke(main, ["ingest", "--json", "-w", str(tmp_path / "ws"), str(csv)])
    summary = json.loads(res.stdout)   # the second run too (the file is known by then)
    assert summary["read_elsewhere"] == {
        str(csv): "darkmap ops import-reported FILE --as USER"}
    assert summary["unrecognised"] == [str(csv)]
    with Workspace.open(tmp_path / "ws") as ws:
        assert ws.con.execute("SELECT count(*) FROM listings").fetchone() == (0,)


def test_it_is_the_content_not_the_name(data_dir: Path, tmp_path: Path) -> None:
    """A copy under another name is named the same; a CSV no importer and no other
    command reads gets no pointer."""
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(data_dir / "operations" / "jcode-operations.csv", folder / "figures.txt")
    (folder / "jcode-operations.csv").write_text("operation,notes\nSpecTor,x\n",
                                                 encoding="utf-8")
    with Workspace.init(tmp_path / "ws") as ws:
        summary = ingest(ws, [folder])
    assert sorted(Path(s).name for s in summary.unrecognised()) == [
        "figures.txt", "jcode-operations.csv"]
    assert {Path(s).name for s in summary.read_elsewhere()} == {"figures.txt"}
    reasons = summary.skipped_by_page_type()
    assert reasons == {
        "unknown: no importer recognises this file": 1,
        "unknown: no importer recognises this file (reported figures of past operations: "
        "`darkmap ops import-reported FILE --as USER` reads it)": 1}, reasons


class _Seizures:
    """A third party's kind of file (a seizure inventory another tool reads)."""

    name = "inventory"
    what = "a seizure inventory"
    command = "inventory-tool load FILE"

    def recognises(self, head: bytes) -> bool:
        return head.startswith(b"INVENTORY v1\n")


def test_any_declared_reader_is_named(tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from darkmap import plugins
    monkeypatch.setitem(plugins._ELSEWHERE, "inventory", _Seizures())
    assert set(readers_elsewhere()) == {"inventory", OPERATION_FIGURES.name}
    f = tmp_path / "exhibit-7.dat"
    f.write_bytes(b"INVENTORY v1\nitem 1: 500 g\n")
    code, out, _ = _ingest(tmp_path, str(f))
    assert code == UNRECOGNISED_EXIT and f"not for ingest: inventory-tool load {f}\n" in out
    head = b"operation;total_arrests;drugs_kg\n"   # ; separated: not the figures' header
    assert read_elsewhere(SourceFile(f, str(f), "0" * 64, head)) is None
    bom = "\ufeffOperation, total_arrests, firearms\r\n".encode()
    assert read_elsewhere(SourceFile(f, str(f), "0" * 64, bom)) is OPERATION_FIGURES
