"""TagPacks through `darkmap ingest`: tags stored with provenance, bad tags quarantined."""

from __future__ import annotations

from pathlib import Path

from darkmap.collect.ingest import ingest
from darkmap.simulate.hostile import TAGPACK
from darkmap.store.workspace import Workspace


def test_tagpack_ingest_reconciles_and_keeps_provenance(ws: Workspace, tmp_path: Path) -> None:
    pack = tmp_path / "exchanges.yaml"
    pack.write_text(TAGPACK)
    summary = ingest(ws, [pack])
    f = summary.files[0]
    assert f.importer == "tagpack"
    assert (f.read, f.stored, f.quarantined) == (3, 2, 1)
    rows = ws.con.execute(
        "SELECT t.address, t.category, c.source FROM btc_tags t "
        "JOIN captures c ON c.sha256 = t.capture_sha256 ORDER BY 1").fetchall()
    assert [r[0] for r in rows] == ["1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",
                                    "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"]
    assert {r[1] for r in rows} == {"exchange"} and rows[0][2] == str(pack)
    field, reason = ws.con.execute("SELECT field, reason FROM quarantine").fetchone()
    assert field == "address" and "not a valid Bitcoin address" in reason
    assert ingest(ws, [pack]).files[0].already  # idempotent
    assert ws.con.execute("SELECT count(*) FROM btc_tags").fetchone()[0] == 2
