"""FollowTheMoney export: the stock output passes followthemoney's own `ftm validate` with
the stock model, the extended output with the model darkmap ships, both unchanged, on the
demo workspace and on the real data; every reference resolves and every derived entity
points at its capture."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import followthemoney
import networkx as nx
import pytest
from export_workspaces import (
    HOSTILE_HANDLE,
    LONG_DESCRIPTION,
    LONG_HANDLE,
    LONG_TITLE,
    built,
    open_ro,
)
from followthemoney.model import Model

import darkmap
from darkmap.errors import BadInputError, NotFoundError
from darkmap.export.ftm import FtmExporter, entity_id
from darkmap.export.options import ExportOptions
from darkmap.model.display import exact_display
from darkmap.store.workspace import Workspace

STOCK_DIR = Path(followthemoney.__file__).parent / "schema"
EXT_DIR = Path(__file__).resolve().parents[1] / "src" / "darkmap" / "model" / "schema"
FTM = str(Path(sys.executable).with_name("ftm"))
WORKSPACES = ["demo", "real"]


@pytest.fixture(scope="module")
def stock_model() -> Model:
    return Model(str(STOCK_DIR))


@pytest.fixture(scope="module")
def extended_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder as `ftm` reads it (FTM_MODEL_PATH): the stock schemata plus the
    extension schemata darkmap ships in darkmap/model/schema."""
    folder = tmp_path_factory.mktemp("ftm-model")
    for src in [*STOCK_DIR.glob("*.yaml"), *EXT_DIR.glob("*.yaml")]:
        (folder / src.name).write_bytes(src.read_bytes())
    return folder


def _export(name: str, factory: pytest.TempPathFactory, data: Path, out: Path,
            options: ExportOptions | None = None) -> dict[str, int]:
    ws = open_ro(built(name, factory, data))
    try:
        return FtmExporter().export(ws, out, options)
    finally:
        ws.close()


def _ftm_validate(path: Path, model_dir: Path | None) -> subprocess.CompletedProcess[str]:
    """followthemoney's own `ftm validate` (re-parses and re-cleans every value)."""
    env = {k: v for k, v in os.environ.items() if k != "FTM_MODEL_PATH"}
    if model_dir is not None:
        env["FTM_MODEL_PATH"] = str(model_dir)
    out = path.with_suffix(".validated.json")
    return subprocess.run([FTM, "validate", "-i", str(path), "-o", str(out)], env=env,
                          capture_output=True, text=True, timeout=600, check=False)


def _rows(path: Path) -> list[dict[str, Any]]:
    """The entities of a JSON-lines file (id, schema, properties: what `ftm validate`
    re-parses; it adds empty bookkeeping keys of its own)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        out.append({"id": r["id"], "schema": r["schema"], "properties": r["properties"]})
    return out


def _check(path: Path, model: Model, counts: dict[str, int]) -> list[dict[str, Any]]:
    """Every entity re-validates with ``model``, ids are unique, every entity reference
    resolves inside the file, and the counts returned are the counts written."""
    rows = _rows(path)
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids))
    known = set(ids)
    seen: Counter[str] = Counter()
    for r in rows:
        proxy = model.get_proxy(r, cleaned=False)
        proxy.schema.validate(proxy.to_dict())  # required properties, valid values
        for prop, values in proxy.properties.items():
            if proxy.schema.properties[prop].type.name == "entity":
                assert set(values) <= known, (r["id"], prop, values)
        seen[r["schema"]] += 1
    assert dict(seen) == {k: v for k, v in counts.items() if not k.startswith("values_")}
    assert "values_invalid" not in counts
    return rows


@pytest.mark.parametrize("name", WORKSPACES)
def test_stock_export_passes_ftm_validate_unchanged(
        name: str, tmp_path_factory: pytest.TempPathFactory, data_dir: Path,
        tmp_path: Path, stock_model: Model) -> None:
    out = tmp_path / "stock.ftm.json"
    counts = _export(name, tmp_path_factory, data_dir, out)
    rows = _check(out, stock_model, counts)
    assert {r["schema"] for r in rows} <= set(stock_model.schemata)
    done = _ftm_validate(out, None)
    assert done.returncode == 0, done.stderr[-2000:]
    assert _rows(out.with_suffix(".validated.json")) == rows  # nothing dropped or changed
    ws = open_ro(built(name, tmp_path_factory, data_dir))
    try:
        n = dict(ws.con.execute(
            "SELECT 'accounts', count(*) FROM accounts UNION ALL "
            "SELECT 'listings', count(*) FROM listings UNION ALL "
            "SELECT 'captures', count(*) FROM captures "
            "WHERE coalesce(media_type, '') <> 'x-darkmap/not-read' UNION ALL "
            "SELECT 'keys', count(*) FROM pgp_keys UNION ALL "
            "SELECT 'links', count(*) FROM account_links UNION ALL "
            "SELECT 'personas', count(*) FROM personas WHERE n_accounts > 1 UNION ALL "
            "SELECT 'contacts', count(DISTINCT (kind, value)) FROM identifiers "
            "WHERE kind IN ('onion', 'jabber', 'wickr', 'telegram', 'session', 'signal') "
            "UNION ALL SELECT 'wallets', count(DISTINCT value) FROM identifiers "
            "WHERE kind IN ('btc_address', 'xmr_address')").fetchall())
    finally:
        ws.close()
    assert counts["Asset"] == n["listings"]
    assert counts["UserAccount"] == n["accounts"] + n["contacts"]
    assert counts["Document"] == n["captures"] + n["keys"]
    assert counts.get("Person", 0) == n["personas"] > 0
    assert counts.get("Similar", 0) == n["links"]
    clusters = [r for r in rows if r["id"].startswith("dm-btc-wallet-")]
    assert counts.get("CryptoWallet", 0) == n["wallets"] + len(clusters)
    by_schema = Counter(r["schema"] for r in rows)
    assert by_schema["Document"] == n["captures"] + n["keys"]
    if name == "demo":  # the other stock tool: ftm export-gexf reads it too
        gexf = tmp_path / "ftm.gexf"
        done = subprocess.run([FTM, "export-gexf", "-i", str(out), "-o", str(gexf)],
                              capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        assert nx.read_gexf(gexf).number_of_nodes() > counts["UserAccount"]
    captures = [r for r in rows if r["id"].startswith("dm-capture-")]
    assert all(re.fullmatch("[0-9a-f]{40}", r["properties"]["contentHash"][0])
               for r in captures)  # FtM's contentHash is a SHA-1


@pytest.mark.parametrize("name", WORKSPACES)
def test_extended_export_passes_ftm_validate_with_the_shipped_model(
        name: str, tmp_path_factory: pytest.TempPathFactory, data_dir: Path,
        tmp_path: Path, extended_dir: Path) -> None:
    out = tmp_path / "extended.ftm.json"
    counts = _export(name, tmp_path_factory, data_dir, out, ExportOptions(extended=True))
    model = Model(str(extended_dir))
    rows = _check(out, model, counts)
    assert {"Capture", "Listing", "PgpKey"} & {r["schema"] for r in rows}
    done = _ftm_validate(out, extended_dir)
    assert done.returncode == 0, done.stderr[-2000:]
    assert _rows(out.with_suffix(".validated.json")) == rows
    # the stock tools cannot read it: that is what the stock default is for
    stock = _ftm_validate(out, None)
    assert stock.returncode != 0 and "No schema" in stock.stderr


@pytest.mark.parametrize("name", WORKSPACES)
def test_every_derived_entity_points_to_its_capture(
        name: str, tmp_path_factory: pytest.TempPathFactory, data_dir: Path,
        tmp_path: Path) -> None:
    """Every entity but the captures themselves and ``Similar`` (FtM gives it no
    ``proof``) cites captures of the file; a persona cites its accounts' captures, a
    wallet cluster those of its exported addresses and transfers (the demo has them)."""
    out = tmp_path / "e.json"
    _export(name, tmp_path_factory, data_dir, out)
    rows = _rows(out)
    capture_ids = {r["id"] for r in rows if r["id"].startswith("dm-capture-")}
    derived = [r for r in rows
               if not r["id"].startswith("dm-capture-") and r["schema"] != "Similar"]
    kinds = {r["id"].split("-")[1] for r in derived}
    assert {"persona", "account", "listing", "market"} <= kinds
    if name == "demo":
        assert {"btc", "in", "payment"} <= kinds  # wallet clusters, in_wallet, transfers
    for r in derived:
        assert r["properties"].get("proof"), r["id"]
        assert set(r["properties"]["proof"]) <= capture_ids, r["id"]
    by_id = {r["id"]: r for r in rows}
    for person in (r for r in rows if r["schema"] == "Person"):
        accounts = [r for r in rows if r["schema"] == "UserAccount"
                    and r["properties"].get("owner") == [person["id"]]]
        assert len(accounts) >= 2
        expected = {p for a in accounts for p in a["properties"]["proof"]}
        assert set(person["properties"]["proof"]) == expected
    for link in (r for r in rows if r["id"].startswith("dm-in-wallet-")):
        (cluster,) = link["properties"]["object"]
        assert link["properties"]["proof"] == by_id[cluster]["properties"]["proof"]


@pytest.mark.parametrize("name", WORKSPACES)
def test_capture_documents_carry_the_media_type_ingest_recorded(
        name: str, tmp_path_factory: pytest.TempPathFactory, data_dir: Path,
        tmp_path: Path) -> None:
    """Ingest records each capture's media type as its importer tells it; the FtM
    Document carries it as ``mimeType`` (raw chain bytes, octet-stream, FtM reads as
    unknown: left out)."""
    ws = open_ro(built(name, tmp_path_factory, data_dir))
    try:
        types = dict(ws.con.execute(
            "SELECT sha256, media_type FROM captures "
            "WHERE coalesce(media_type, '') <> 'x-darkmap/not-read'").fetchall())
        importers = dict(ws.con.execute(
            "SELECT importer, list(DISTINCT c.media_type) FROM processed p "
            "JOIN captures c USING (sha256) GROUP BY 1").fetchall())
    finally:
        ws.close()
    assert None not in types.values()
    expected = {"pages": ["text/html"], "csv": ["text/csv"], "sqldump": ["application/sql"],
                "tagpack": ["application/yaml"]}
    for importer, kinds in importers.items():
        if importer in expected:
            assert kinds == expected[importer], importer
    if name == "real":
        assert set(importers) >= {"pages", "csv", "sqldump"}
    out = tmp_path / "c.json"
    _export(name, tmp_path_factory, data_dir, out)
    docs = {r["properties"]["keywords"][0].removeprefix("sha256:"): r["properties"]
            for r in _rows(out) if r["id"].startswith("dm-capture-")}
    assert docs.keys() == types.keys()
    for sha, props in docs.items():
        want = [] if types[sha] == "application/octet-stream" else [types[sha]]
        assert props.get("mimeType", []) == want, sha


def test_export_is_the_same_bytes_every_time(
        tmp_path_factory: pytest.TempPathFactory, data_dir: Path, tmp_path: Path) -> None:
    first, again = tmp_path / "a.json", tmp_path / "b.json"
    _export("demo", tmp_path_factory, data_dir, first)
    _export("demo", tmp_path_factory, data_dir, again)
    assert first.read_bytes() == again.read_bytes()


def test_a_persona_export_is_its_subgraph(
        tmp_path_factory: pytest.TempPathFactory, data_dir: Path, tmp_path: Path,
        stock_model: Model) -> None:
    ws = open_ro(built("real", tmp_path_factory, data_dir))
    try:
        pid, members = ws.con.execute(
            "SELECT persona_id, list(account_id ORDER BY account_id) FROM persona_members "
            "GROUP BY 1 HAVING count(*) = 3 ORDER BY 1 LIMIT 1").fetchone()
        out = tmp_path / "p.json"
        counts = FtmExporter().export(ws, out, ExportOptions(personas=(members[0],)))
    finally:
        ws.close()
    rows = _check(out, stock_model, counts)
    assert counts["Person"] == 1
    accounts = {r["properties"]["keywords"][0] for r in rows
                if r["schema"] == "UserAccount" and r["id"].startswith("dm-account-")}
    assert accounts == set(members)
    (person,) = [r for r in rows if r["schema"] == "Person"]
    assert person["id"] == entity_id("persona", pid)


def test_hostile_text_keeps_valid_ids_and_values(
        tmp_path_factory: pytest.TempPathFactory, data_dir: Path, tmp_path: Path,
        stock_model: Model) -> None:
    out = tmp_path / "h.json"
    counts = _export("hostile", tmp_path_factory, data_dir, out)
    rows = _check(out, stock_model, counts)
    assert _ftm_validate(out, None).returncode == 0
    assert _rows(out.with_suffix(".validated.json")) == rows
    handles = {r["properties"]["username"][0] for r in rows if r["schema"] == "UserAccount"
               and r["id"].startswith("dm-account-")}
    # the BEL and the bidi override shown as escapes, one to one (FtM's cleaning stripped
    # the BEL: exports audit, finding 3)
    assert exact_display(HOSTILE_HANDLE) in handles
    assert counts["values_escaped"] > 0
    assert entity_id("account", "alpha:<&\x00>") == entity_id("account", "alpha:<&\x00>")
    assert re.fullmatch(r"dm-account-alpha-[0-9a-f]{12}", entity_id("account", "alpha:<&\x00>"))


def test_a_value_too_long_for_its_type_is_written_whole_in_summary(
        tmp_path_factory: pytest.TempPathFactory, data_dir: Path, tmp_path: Path,
        stock_model: Model) -> None:
    """A 10,000-character title and a 1,500-character handle are cut in ``name`` (384
    characters) and ``username`` (1,024), and written whole in ``summary``; only the text
    past FtM's 65,000 characters of the listing description is lost."""
    out = tmp_path / "long.json"
    counts = _export("long", tmp_path_factory, data_dir, out)
    rows = _check(out, stock_model, counts)
    assert _ftm_validate(out, None).returncode == 0
    (asset,) = [r["properties"] for r in rows if r["schema"] == "Asset"]
    assert asset["name"] == [LONG_TITLE[:384]]
    assert f"name in full: {LONG_TITLE}" in asset["summary"]
    assert asset["description"] == [LONG_DESCRIPTION[:65_000]]
    (account,) = [r["properties"] for r in rows if r["id"].startswith("dm-account-")]
    assert account["username"] == [LONG_HANDLE[:1024]]
    assert f"username, name in full: {LONG_HANDLE}" in account["summary"]
    # the account id (a keyword, cut) is whole in the summary's "account id:" line already
    assert f"account id: alpha:{LONG_HANDLE}" in account["summary"][0]
    assert len(account["summary"]) == 2
    assert counts["values_whole_in_summary"] == 2
    assert counts["values_cut"] == 1  # the description


def test_unknown_persona_and_missing_workspace(
        tmp_path_factory: pytest.TempPathFactory, data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="needs a Workspace"):
        FtmExporter().export(tmp_path, tmp_path / "out.json")
    ws = open_ro(built("demo", tmp_path_factory, data_dir))
    try:
        with pytest.raises(NotFoundError, match="no persona or account"):
            FtmExporter().export(ws, tmp_path / "x.json", ExportOptions(personas=("nope",)))
    finally:
        ws.close()
    assert isinstance(ws, Workspace)


def test_a_persons_harm_score_says_what_it_rests_on(
        tmp_path_factory: pytest.TempPathFactory, data_dir: Path, tmp_path: Path) -> None:
    """A Person's summary gives, beside its harm score, what the score rests on and its
    listing and activity points, as `darkmap targets` does."""
    out = tmp_path / "stock.ftm.json"
    _export("real", tmp_path_factory, data_dir, out)
    ws = open_ro(built("real", tmp_path_factory, data_dir))
    try:
        targets = {t["persona_id"]: t for t in darkmap.targets(ws, limit=None)}
    finally:
        ws.close()
    persons = [r for r in _rows(out) if r["schema"] == "Person"]
    scored = 0
    for r in persons:
        t = targets.get(r["properties"]["keywords"][0])
        if t is None:
            continue
        scored += 1
        summary = r["properties"]["summary"][0]
        assert f"harm score: {t['harm_score']}\n" in summary
        assert f"harm rests on: {t['harm_rests_on']}\n" in summary
        assert (f"harm from listings: {t['harm_parts']['listings']}\n"
                f"harm from activity: {t['harm_parts']['activity']}") in summary
    assert scored > 100
