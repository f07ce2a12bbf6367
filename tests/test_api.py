"""The Python API: its public names are pinned, typed and documented, help(darkmap) lists
them, and the worked example of docs/python-api.md runs on the real data."""

from __future__ import annotations

import inspect
import os
import pkgutil
import pydoc
import re
import subprocess
import sys
import tempfile
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import darkmap
from darkmap import api
from darkmap.api import ExportOptions
from darkmap.assess import stage
from darkmap.plugins import exporters

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "python-api.md"
SRC = Path(darkmap.__file__).resolve().parents[1]

# The API functions in the order of the job (the order of help(darkmap)'s table of contents).
FUNCTIONS = [
    "init_workspace", "open_workspace",
    "simulate_world", "ingest", "verify_captures",
    "link", "judge", "withdraw_judgement", "search_personas", "show_persona",
    "assess_listings", "targets",
    "cluster_addresses", "trace", "wallet",
    "evaluate_linking", "evaluate_drugs", "evaluate_chain",
    "evaluate_sales",
    "write_report", "export_evidence", "run_demo_pipeline",
    "ops_records", "operation_report", "verify_audit",
]
CLASSES = ["LinkOptions", "SalesParams", "SimParams", "Workspace"]
ERRORS = ["DarkmapError", "NotFoundError", "BadInputError", "WorkspaceStateError"]
PUBLIC = [
    "init_workspace", "open_workspace",
    "simulate_world", "ingest", "verify_captures",
    "link", "judge", "withdraw_judgement", "search_personas", "show_persona",
    "assess_listings", "targets",
    "cluster_addresses", "trace", "wallet",
    "evaluate_linking", "evaluate_drugs", "evaluate_chain",
    "evaluate_sales",
    "write_report", "export_evidence", "run_demo_pipeline",
    "ops_records", "operation_report", "verify_audit",
    "LinkOptions", "SalesParams", "SimParams",
    "Workspace",
    "DarkmapError", "NotFoundError", "BadInputError", "WorkspaceStateError",
    "__version__",
]


def _child_env() -> dict[str, str]:
    """The environment of a child Python that imports this worktree's darkmap."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])}


# -- (a) the public names ---------------------------------------------------------------


def test_public_names_are_pinned() -> None:
    assert darkmap.__all__ == PUBLIC
    assert sorted(PUBLIC) == sorted(FUNCTIONS + CLASSES + ERRORS + ["__version__"])
    assert isinstance(darkmap.__version__, str) and darkmap.__version__


def test_every_public_name_resolves_to_the_api_object() -> None:
    for name in FUNCTIONS + ["LinkOptions", "SalesParams", "SimParams"]:
        assert getattr(darkmap, name) is getattr(api, name), name
    for name in ERRORS:
        assert issubclass(getattr(darkmap, name), darkmap.DarkmapError), name
    with pytest.raises(AttributeError):
        darkmap.no_such_function  # noqa: B018


def test_no_public_name_is_shadowed_by_a_subpackage() -> None:
    """A function named like a subpackage (``darkmap.export``) would be replaced by the
    module the first time that subpackage is imported; none is."""
    submodules = {m.name for m in pkgutil.iter_modules(darkmap.__path__)}
    assert not set(PUBLIC) & submodules
    exporters()  # imports darkmap.export.* through the entry points
    assert callable(darkmap.export_evidence) and callable(darkmap.assess_listings)


def test_every_public_name_has_a_docstring() -> None:
    for name in FUNCTIONS + CLASSES + ERRORS:
        obj = getattr(darkmap, name)
        doc = obj.__doc__
        assert doc and doc.strip(), f"{name} has no docstring"
    for name in FUNCTIONS:
        doc = getattr(darkmap, name).__doc__
        assert "Example::" in doc, f"{name}'s docstring has no example"


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_function_is_fully_typed(name: str) -> None:
    fn = getattr(darkmap, name)
    sig = inspect.signature(fn)
    untyped = [p.name for p in sig.parameters.values() if p.annotation is inspect.Parameter.empty]
    assert not untyped, f"{name}: parameters without a type: {untyped}"
    assert sig.return_annotation is not inspect.Signature.empty, f"{name}: no return type"
    hints = typing.get_type_hints(fn)  # every annotation names a real type
    assert set(hints) == {*sig.parameters, "return"}


@pytest.mark.parametrize("name", FUNCTIONS)
def test_functions_take_a_workspace_first(name: str) -> None:
    params = list(inspect.signature(getattr(darkmap, name)).parameters.values())
    first = typing.get_type_hints(getattr(darkmap, name))[params[0].name]
    if name in ("init_workspace", "open_workspace", "simulate_world"):
        assert first == api.PathLike
    else:
        assert params[0].name == "ws"
        assert darkmap.Workspace in (typing.get_args(first) or (first,))


def test_import_darkmap_does_not_load_the_library() -> None:
    code = ("import sys, darkmap; assert 'darkmap.api' not in sys.modules; "
            "assert 'darkmap.pipeline' not in sys.modules; darkmap.Workspace; "
            "assert 'darkmap.api' not in sys.modules; darkmap.ingest; "
            "assert 'darkmap.api' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, env=_child_env())


# -- (c) help(darkmap) -------------------------------------------------------------------


def test_help_lists_every_function_in_the_order_of_the_job() -> None:
    out = subprocess.run([sys.executable, "-c", "import darkmap; help(darkmap)"], check=True,
                         capture_output=True, text=True, env={**_child_env(), "PAGER": "cat",
                                                              "TERM": "dumb"}).stdout
    contents = out.split("PACKAGE CONTENTS")[0]
    places = [contents.find(f"    {name}(") for name in FUNCTIONS]
    assert -1 not in places, [n for n, p in zip(FUNCTIONS, places, strict=True) if p == -1]
    assert places == sorted(places), "the table of contents is not in the order of the job"
    listed = out.split("FUNCTIONS", 1)[1]
    for name in FUNCTIONS:
        assert re.search(rf"^    {name}\(", listed, re.M), name
    for name in CLASSES + ERRORS:
        assert f"class {name}" in out, name


def test_help_text_in_process_matches() -> None:
    text = pydoc.plain(pydoc.render_doc(darkmap))
    for name in FUNCTIONS:
        assert f"{name}(" in text, name


# -- (b) the worked example ------------------------------------------------------------


def _python_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", markdown, re.S | re.M)


def test_the_doc_names_every_function() -> None:
    doc = DOC.read_text(encoding="utf-8")
    missing = [n for n in FUNCTIONS if f"`{n}(" not in doc]
    assert not missing, f"docs/python-api.md does not describe {missing}"


def test_worked_example_runs(data_dir: Path, tmp_path: Path,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = _python_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 8
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DARKMAP_DATA", str(data_dir))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    ns: dict[str, Any] = {"__name__": "python_api_example"}
    for k, block in enumerate(blocks):
        exec(compile(block, f"docs/python-api.md block {k + 1}", "exec"), ns)  # noqa: S102
    # what the blocks left behind agrees across stages
    summary, linked, written = ns["summary"], ns["linked"], ns["written"]
    assert linked.summary["accounts"] >= summary.records()["account"] > 0
    assert written["UserAccount"] >= linked.summary["accounts"]
    assert written["Person"] == linked.summary["multi_account_personas"]
    assert written["Asset"] == ns["assessed"]["listings_assessed"]
    assert ns["traced"]["source_received_sat"] == 50 * 10**8
    assert not Path(ns["case"]).exists()  # the example cleans up after itself


# -- the API's own checks (errors, reads that do not write) -------------------------------


@pytest.fixture
def hansa_ws(tmp_path: Path, data_dir: Path) -> Iterator[darkmap.Workspace]:
    """A workspace holding the saved Hansa pages, ingested and not yet assessed."""
    ws = darkmap.init_workspace(str(tmp_path / "ws"))
    darkmap.ingest(ws, data_dir / "pages" / "hansa")
    yield ws
    ws.close()


def test_paths_may_be_strings(hansa_ws: darkmap.Workspace) -> None:
    assert isinstance(hansa_ws.path, Path)
    assert hansa_ws.table_counts()["listings"] > 0


def test_open_workspace_refuses_a_folder_that_is_not_one(tmp_path: Path) -> None:
    with pytest.raises(darkmap.WorkspaceStateError, match="not a darkmap workspace"):
        darkmap.open_workspace(tmp_path)


def test_bad_arguments_raise_darkmap_errors(hansa_ws: darkmap.Workspace,
                                            tmp_path: Path) -> None:
    with pytest.raises(darkmap.NotFoundError, match="no such file"):
        darkmap.ingest(hansa_ws, tmp_path / "missing.csv")
    with pytest.raises(darkmap.BadInputError, match="unknown importer"):
        darkmap.ingest(hansa_ws, [tmp_path], importer="nope")
    with pytest.raises(darkmap.BadInputError, match="unknown export format"):
        darkmap.export_evidence(hansa_ws, tmp_path / "out", fmt="nope")
    with pytest.raises(darkmap.NotFoundError, match="no such truth file"):
        darkmap.evaluate_linking(hansa_ws, tmp_path / "truth.json")
    with pytest.raises(KeyError):  # NotFoundError once resolve/ raises it
        darkmap.show_persona(hansa_ws, "hansa:nobody-at-all")


def test_export_takes_the_command_s_options(hansa_ws: darkmap.Workspace, tmp_path: Path) -> None:
    with pytest.raises(darkmap.BadInputError, match="--table"):  # as `darkmap export csv`
        darkmap.export_evidence(hansa_ws, tmp_path / "csv", "csv")
    counts = darkmap.export_evidence(hansa_ws, tmp_path / "csv", "csv",
                                     ExportOptions(tables=("listings",)))
    stored = hansa_ws.table_counts()["listings"]
    assert counts == {"listings": stored} and stored > 0
    lines = (tmp_path / "csv" / "listings.csv").read_text(encoding="utf-8").splitlines()
    assert len(lines) == stored + 1  # the header and one line a listing
    with pytest.raises(darkmap.BadInputError, match="does not take --table"):
        darkmap.export_evidence(hansa_ws, tmp_path / "x.json", "ftm",
                                ExportOptions(tables=("listings",)))


def test_assess_says_what_it_is_doing(hansa_ws: darkmap.Workspace,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stage, "PROGRESS_EVERY", 10)
    told: list[str] = []
    summary = darkmap.assess_listings(hansa_ws, progress=told.append)
    n = summary["listings_assessed"] + summary["quarantined"]
    assert n > 20
    assert told[0] == f"classifying {n:,} listings"
    counts = [t for t in told if t.startswith("classifying listings:")]
    assert counts == [f"classifying listings: {k:,} of {n:,}" for k in range(10, n + 1, 10)]
    rest = told[1 + len(counts):]
    assert [t.split()[0] for t in rest] == ["storing", "estimating", "inferring"]


def test_targets_before_assess_says_so_and_writes_nothing(hansa_ws: darkmap.Workspace) -> None:
    before = hansa_ws.table_counts()
    with pytest.raises(darkmap.WorkspaceStateError, match="assess"):
        darkmap.targets(hansa_ws)
    assert hansa_ws.table_counts() == before
    darkmap.assess_listings(hansa_ws)
    ranked = darkmap.targets(hansa_ws, limit=None)
    assert ranked and all(r["accounts"][0].startswith("hansa:") for r in ranked)
    scores = [r["harm_score"] for r in ranked]
    assert scores == sorted(scores, reverse=True)


def test_evaluate_drugs_on_a_listings_file(data_dir: Path) -> None:
    labels = REPO / "tests" / "data" / "labels" / "agora_sample.csv"
    report = darkmap.evaluate_drugs(None, str(labels), listings=str(
        data_dir / "listings" / "agora-2014" / "Ag2014-sscSynth.csv"))
    assert report["n"] > 0 and report["n"] + len(report["missing"]) == 108
    assert report["drug_class"]["accuracy"] >= 0.9


SATOSHI = "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S"  # block 9's coinbase, spent in block 170
READS = {
    "targets": lambda ws: darkmap.targets(ws, limit=None),
    "search_personas": lambda ws: darkmap.search_personas(ws, "tramapro"),
    "show_persona": lambda ws: darkmap.show_persona(ws, "hansa:tramapro"),
    "trace": lambda ws: darkmap.trace(ws, SATOSHI, hops=5),
    "wallet": lambda ws: darkmap.wallet(ws, SATOSHI),
    "write_report": lambda ws: darkmap.write_report(ws, ws.path.parent / "report.html"),
    "export_evidence": lambda ws: darkmap.export_evidence(ws, ws.path.parent / "e.ftm.json"),
}


@pytest.fixture(scope="module")
def finished_ws(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A workspace (closed) where every stage has run: its folder."""
    path = tmp_path_factory.mktemp("api") / "ws"
    with darkmap.init_workspace(path) as ws:
        darkmap.ingest(ws, [data_dir / "pages" / "hansa", data_dir / "pages" / "dream",
                            data_dir / "bitcoin" / "blocks1-256"])
        darkmap.link(ws)
        darkmap.assess_listings(ws)
        darkmap.cluster_addresses(ws)
    return path


@pytest.mark.parametrize("name", list(READS))
def test_reads_work_on_a_read_only_workspace(finished_ws: Path, name: str) -> None:
    with darkmap.open_workspace(finished_ws, read_only=True) as ws:
        before = ws.table_counts()
        assert READS[name](ws)
        assert ws.table_counts() == before
