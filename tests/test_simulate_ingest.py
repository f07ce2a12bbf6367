"""A simulated world goes through `ingest` with the shipped sim_* templates and mappings:
every file is read or skipped for a stated reason, and the store holds exactly the
accounts and listings of truth.json."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from darkmap.collect.ingest import ingest
from darkmap.simulate import SimParams, simulate
from darkmap.store.workspace import Workspace


def test_ingest_reads_a_simulated_world_and_matches_truth(tmp_path: Path) -> None:
    out = tmp_path / "world"
    simulate(out, 21, SimParams(vendors=60))
    truth = json.loads((out / "truth.json").read_text(encoding="utf-8"))
    ws = Workspace.init(tmp_path / "ws")
    try:
        summary = ingest(ws, [out])
        by_importer = Counter((f.importer, Path(f.source).relative_to(out).parts[0])
                              for f in summary.files)
        assert by_importer[("pages", "pages")] == len(list((out / "pages").rglob("*.html")))
        assert by_importer[("csv", "listings")] == len(list((out / "listings").glob("*.csv")))
        assert by_importer[("sqldump", "seized")] == 1
        assert by_importer[("bitcoin", "chain")] == len(list((out / "chain").glob("blk*.dat")))
        # only truth.json (the answer key) is not ingested as evidence
        unread = sorted(str(Path(f.source).relative_to(out)) for f in summary.files
                        if f.importer is None)
        assert unread == ["truth.json"]
        assert by_importer[("tagpack", "tags")] == len(list((out / "tags").glob("*.yaml")))
        assert [f.error for f in summary.files if f.error] == []
        totals = summary.totals()
        assert totals["quarantined"] == 0
        assert totals["read"] == totals["stored"] + totals["skipped"]
        skipped = summary.skipped_by_page_type()
        assert any(k.startswith("login") for k in skipped)
        assert any(k.startswith(("captcha", "anti_ddos")) for k in skipped)

        accounts = {r[0] for r in ws.con.execute("SELECT account_id FROM accounts").fetchall()}
        listings = {r[0] for r in ws.con.execute("SELECT listing_id FROM listings").fetchall()}
        assert accounts == set(truth["accounts"])
        assert listings == set(truth["listings"])
        owner = dict(ws.con.execute("SELECT listing_id, account_id FROM listings").fetchall())
        assert all(owner[lid] == x["account"] for lid, x in truth["listings"].items())
        fprs = {r[0] for r in ws.con.execute(
            "SELECT DISTINCT value FROM identifiers WHERE kind = 'pgp_fingerprint'").fetchall()}
        want = {f for a in truth["accounts"].values() for f in a["pgp_fingerprints"]}
        assert fprs == want
        markets = {r[0] for r in ws.con.execute("SELECT market_id FROM markets").fetchall()}
        assert markets == set(truth["markets"])
    finally:
        ws.close()
