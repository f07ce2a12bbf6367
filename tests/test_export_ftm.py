"""FollowTheMoney export: every line reads back and validates with the FtM library."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from followthemoney.model import Model

from darkmap.collect.ingest import ingest
from darkmap.errors import BadInputError
from darkmap.export.ftm import FtmExporter
from darkmap.model.ftm_schema import load_model
from darkmap.store.workspace import Workspace


def test_export_reads_back_and_validates(ws: Workspace, data_dir: Path,
                                         tmp_path: Path) -> None:
    ingest(ws, [data_dir / "pages" / "hansa", data_dir / "seized"])
    out = tmp_path / "entities.ftm.json"
    counts = FtmExporter().export(ws, out)
    model = load_model()
    assert Model.instance() is model
    seen: Counter[str] = Counter()
    ids = set()
    for line in out.read_text(encoding="utf-8").splitlines():
        data = json.loads(line)
        proxy = model.get_proxy(data, cleaned=False)  # full re-validation of values
        proxy.schema.validate(proxy.to_dict())
        assert proxy.id not in ids
        ids.add(proxy.id)
        seen[proxy.schema.name] += 1
    assert dict(seen) == counts
    n_captures = ws.con.execute("SELECT count(*) FROM captures").fetchone()[0]
    assert seen["Capture"] == n_captures
    assert seen.get("UserAccount", 0) == ws.con.execute(
        "SELECT count(*) FROM accounts").fetchone()[0]
    assert seen.get("Listing", 0) == ws.con.execute(
        "SELECT count(*) FROM listings").fetchone()[0]


def test_every_derived_entity_points_to_its_capture(ws: Workspace, data_dir: Path,
                                                    tmp_path: Path) -> None:
    ingest(ws, [data_dir / "pages" / "hansa"])
    out = tmp_path / "e.json"
    FtmExporter().export(ws, out)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    capture_ids = {r["id"] for r in rows if r["schema"] == "Capture"}
    for r in rows:
        if r["schema"] in {"UserAccount", "Listing", "PgpKey", "Organization"}:
            assert set(r["properties"]["proof"]) <= capture_ids, r["id"]


def test_export_is_the_same_bytes_every_time(ws: Workspace, data_dir: Path,
                                            tmp_path: Path) -> None:
    ingest(ws, [data_dir / "pages" / "hansa", data_dir / "seized"])
    first, again = tmp_path / "a.json", tmp_path / "b.json"
    FtmExporter().export(ws, first)
    FtmExporter().export(ws, again)
    assert first.read_bytes() == again.read_bytes()


def test_export_needs_a_workspace(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="needs a Workspace"):
        FtmExporter().export(tmp_path, tmp_path / "out.json")
