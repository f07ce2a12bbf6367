"""GEXF and GraphML labels show bidi, zero-width and control characters as the CSV and
the report do (exports audit, finding 7).

A label ``abc<U+202E>gpj.exe`` was written raw, and Gephi and yEd draw it ``abcexe.jpg``;
a handle holding a zero-width space or a BOM drew exactly as the vendor it imitates. A
label is now shown one to one (escapes, a backslash doubled) with the look-alike mark
the report and the terminal give; node ids stay as they were.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import networkx as nx
import pytest
from export_workspaces import text_capture

import darkmap
from darkmap.export import run_export
from darkmap.export.graph import node_id
from darkmap.model.display import lookalike_mark
from darkmap.model.records import AccountRecord
from darkmap.plugins import exporters
from darkmap.store.workspace import Workspace

HANDLES = ("abc\u202egpj.exe", "emoji\U0001F600\ufeffbom", "zero\u200bwidth", "zerowidth",
           "bel\x07x", "bel\\x07x")
RAW = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e"
                 "\u2060-\u2064\u2066-\u2069\ufeff]")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("labels") / "ws"
    t0 = datetime(2020, 1, 2, 3, 4, 5)
    with darkmap.init_workspace(path) as ws:
        w, prov = text_capture(ws, HANDLES, "hostile.txt", t0)
        for i, handle in enumerate(HANDLES):
            w.add(AccountRecord(market_id="dream", handle=handle, role="vendor",
                                observed_at=t0, locator=f"row {i}"), prov)
        w.flush()
        darkmap.link(ws)
    return path


@pytest.mark.parametrize("fmt", ["gexf", "graphml"])
def test_labels_show_what_a_reader_cannot_see(workspace: Path, tmp_path: Path,
                                             fmt: str) -> None:
    out = tmp_path / f"g.{fmt}"
    with Workspace.open(workspace, read_only=True) as ws:
        run_export(exporters()[fmt], ws, out)
    g = nx.read_gexf(out) if fmt == "gexf" else nx.read_graphml(out)
    labels = {n: d.get("label", n) for n, d in g.nodes(data=True)}
    accounts = {n: labels[n] for n in labels if n.startswith("account:")}
    # ids as they were: the raw account id
    assert set(accounts) == {node_id("account", f"dream:{h}") for h in HANDLES}
    for label in labels.values():
        assert not RAW.search(label), repr(label)
    shown = {h: accounts[node_id("account", f"dream:{h}")] for h in HANDLES}
    mark = lookalike_mark(HANDLES[0], account_id=False)
    assert shown[HANDLES[0]] == "abc\\u202egpj.exe " + mark
    assert shown["abc\u202egpj.exe"].startswith("abc\\u202egpj.exe [!invisible: U+202E")
    assert shown["zero\u200bwidth"].startswith("zero\\u200bwidth [!invisible")
    assert shown["zerowidth"] == "zerowidth"
    assert shown["emoji\U0001F600\ufeffbom"].startswith("emoji\U0001F600\\ufeffbom [!")
    assert shown["bel\x07x"] == "bel\\x07x" and shown["bel\\x07x"] == "bel\\\\x07x"
    assert len(set(shown.values())) == len(HANDLES)
