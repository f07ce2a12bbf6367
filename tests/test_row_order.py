"""What is stored and shown does not depend on the order DuckDB returns rows in.

A query without ORDER BY returns a join's or an aggregate's rows in an order that changes
from one run to the next once a table holds more than one row group (122,880 rows) and
DuckDB scans it on several threads; a plain scan returns the rows in the order they were
stored, which depends on the order files were ingested in. Either way the same evidence
in the store (``scripts/table_hashes.py`` compares sorted rows) must give the same
results. These tests store the same rows in the opposite order, as such a run would
return them, and compare what darkmap computes from them.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import yaml

import darkmap
from darkmap.assess.harm import rank_targets
from darkmap.assess.stage import compute_jurisdictions
from darkmap.chain.cluster import explain_addresses, run_clustering
from darkmap.chain.trace import trace
from darkmap.chain.wallet import wallet_summary
from darkmap.collect.ingest import import_tagpack, load_files
from darkmap.resolve.lookup import search_personas, show_persona
from darkmap.simulate import SimParams, simulate
from darkmap.store import web
from darkmap.store.assessment import latest_observations
from darkmap.store.chain import tags_for_export
from darkmap.store.sales import listing_packs
from darkmap.store.workspace import Workspace


def _reverse_rows(con: duckdb.DuckDBPyConnection, *tables: str) -> None:
    """Store each table's rows again, in the opposite order (the same rows)."""
    for table in tables:
        before = con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
        con.execute(f"CREATE TEMP TABLE _reversed AS SELECT * FROM {table} ORDER BY rowid DESC")
        con.execute(f"DELETE FROM {table}")
        con.execute(f"INSERT INTO {table} SELECT * FROM _reversed")
        con.execute("DROP TABLE _reversed")
        assert con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall() == before


def _csv(tmp_path: Path) -> Path:
    """Hansa-format listings: a vendor with eight counterfeit M30 listings and six
    substances listed once each; another whose two listings ship from two countries."""
    titles = [f"{10 * i}x Pressed M30 blues 30mg batch {i}" for i in range(1, 9)] + [
        "1g colombian cocaine 90%", "1g MDMA crystal", "1g ketamine needles",
        "10x LSD tabs 100ug", "3.5g amnesia haze", "10x Xanax bars 2mg"]
    rows = [(t, "pillvendor", "United States") for t in titles]
    rows += [("speed 1g", "tievendor", "Germany"), ("speed 2g", "tievendor", "Netherlands")]
    csv = tmp_path / "hansa-order.csv"
    csv.write_text("".join(
        f'"2016-12-11 20:13:54 -0500 EST", "{900 + i}", "{t}", "{v}", "USD 10.00", "Drugs", '
        f'"{c}"\n' for i, (t, v, c) in enumerate(rows)), encoding="utf-8")
    return csv


def test_targets_do_not_depend_on_the_order_of_the_stored_rows(tmp_path: Path) -> None:
    ws = darkmap.init_workspace(tmp_path / "ws")
    darkmap.ingest(ws, _csv(tmp_path))
    darkmap.assess_listings(ws)
    before = json.dumps(rank_targets(ws, limit=0), default=str)
    _reverse_rows(ws.con, "listing_assessments", "listing_observations")
    assert json.dumps(rank_targets(ws, limit=0), default=str) == before
    [row] = [r for r in rank_targets(ws, limit=0) if r["label"] == "pillvendor"]
    # the first five flagged listings in id order; of substances listed as often, those
    # whose first listing comes first in id order
    assert [e["listing_id"] for e in row["evidence"]["flagged_listings"]] == [
        f"hansa:{900 + i}" for i in range(5)]
    assert list(row["top_substances"]) == ["oxycodone", "cocaine", "mdma", "ketamine", "lsd"]


def test_jurisdictions_do_not_depend_on_the_order_of_the_stored_rows(tmp_path: Path) -> None:
    ws = darkmap.init_workspace(tmp_path / "ws")
    darkmap.ingest(ws, _csv(tmp_path))
    darkmap.assess_listings(ws)
    query = ("SELECT entity_kind, entity_id, country, confidence, evidence FROM jurisdictions "
             "ORDER BY ALL")
    before = ws.con.execute(query).fetchall()
    _reverse_rows(ws.con, "listing_observations")
    compute_jurisdictions(ws)
    assert ws.con.execute(query).fetchall() == before
    tied = {r[2] for r in before if r[1] == "hansa:tievendor"}
    assert tied == {"DE"}  # a tie between countries goes to the earliest observation


def _same_time_csv(tmp_path: Path) -> Path:
    """One listing observed twice at the same time under two titles (a scrape that met it
    twice): bars without, then with, a pharmacy claim."""
    csv = tmp_path / "hansa-same-time.csv"
    csv.write_text("".join(
        f'"2016-12-11 20:13:54 -0500 EST", "950", "{t}", "barvendor", "USD 30.00", "Drugs", '
        '"Germany"\n' for t in ("10x Xanax bars 2mg", "10x Xanax bars 2mg genuine pfizer")),
        encoding="utf-8")
    return csv


def test_a_listings_newest_title_does_not_depend_on_the_order_of_the_stored_rows(
        tmp_path: Path) -> None:
    ws = darkmap.init_workspace(tmp_path / "ws")
    darkmap.ingest(ws, _same_time_csv(tmp_path))
    darkmap.assess_listings(ws)
    before = listing_packs(ws.con)
    _reverse_rows(ws.con, "listing_observations")
    assert listing_packs(ws.con) == before
    # the title of the observation the assessment read (the newest, then by obs_id)
    [latest] = latest_observations(ws.con)
    assert [p.title for p in before] == [latest.title]


def test_the_web_pages_do_not_depend_on_the_order_of_the_stored_rows(tmp_path: Path) -> None:
    csv = tmp_path / "hansa-web.csv"
    csv.write_text("".join(
        f'"2016-12-11 20:13:54 -0500 EST", "{i}", "{t}", "barvendor", "{p}", "Drugs", "{c}"\n'
        for i, t, p, c in [(950, "10x Xanax bars 2mg", "USD 30.00", "Germany"),
                           (950, "10x Xanax bars 2mg genuine", "USD 35.00", "Netherlands"),
                           (951, "20x Xanax bars 2mg", "USD 50.00", "Germany"),
                           (952, "30x Xanax bars 2mg", "USD 70.00", "Germany")]),
        encoding="utf-8")
    ws = darkmap.init_workspace(tmp_path / "ws")
    darkmap.ingest(ws, csv)
    darkmap.assess_listings(ws)

    def pages() -> list[object]:
        return [web.search_listings(ws.con, "xanax", None, None, limit=2),
                web.account_listings(ws.con, ["hansa:barvendor"]),
                web.listing_observations(ws.con, "hansa:950", limit=1)]

    before = pages()
    _reverse_rows(ws.con, "listing_observations", "listings", "listing_assessments")
    assert pages() == before
    hits = before[0]
    assert isinstance(hits, web.ListingHits) and hits.total == 3
    assert [h["listing_id"] for h in hits.rows] == ["hansa:950", "hansa:951"]


def test_persona_show_and_search_do_not_depend_on_the_order_of_the_stored_rows(
        tmp_path: Path) -> None:
    # six accounts judged one vendor: many of their links score the same
    csv = tmp_path / "hansa-ties.csv"
    csv.write_text("".join(
        f'"2016-12-11 20:13:54 -0500 EST", "{900 + i}", "speed {i}g", "tie{i}", '
        f'"USD 10.00", "Drugs", "{c}"\n'
        for i, c in enumerate(["Germany", "Netherlands", "Poland", "Spain", "France"])),
        encoding="utf-8")
    ws = darkmap.init_workspace(tmp_path / "ws")
    darkmap.ingest(ws, csv)
    for i in range(1, 5):
        darkmap.judge(ws, "hansa:tie0", f"hansa:tie{i}", "same")
    darkmap.link(ws)
    scores = [r[0] for r in ws.con.execute("SELECT score FROM account_links").fetchall()]
    assert len(set(scores)) < len(scores)

    def pages() -> list[object]:
        return [show_persona(ws, "hansa:tie0"), search_personas(ws, "tie", limit=1)]

    before = pages()
    _reverse_rows(ws.con, "account_links", "accounts", "persona_members", "personas",
                  "identifiers")
    assert pages() == before
    links = [(x["a"], x["b"]) for x in before[0]["links"]]  # type: ignore[index]
    assert links == sorted(links, key=lambda ab: (-next(
        x["score"] for x in before[0]["links"]  # type: ignore[index]
        if (x["a"], x["b"]) == ab), ab))


def test_sales_do_not_depend_on_the_order_of_the_stored_rows(data_dir: Path,
                                                             tmp_path: Path) -> None:
    # real Cryptonia pages: a buyer leaves several feedbacks of other amounts on one day,
    # shown on one page, so their rows tie on (account, day, buyer, capture); summed in
    # another order, the revenue changed in its last digits
    ws = darkmap.init_workspace(tmp_path / "ws")
    darkmap.ingest(ws, data_dir / "pages" / "cryptonia")
    darkmap.assess_listings(ws)

    def sales() -> dict[str, list[tuple[object, ...]]]:
        out = {}
        for table in ("sales_summary", "sales_monthly", "sales_estimates", "feedback_rates"):
            cols = [r[0] for r in ws.con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
                "AND column_name NOT IN ('computed_at', 'run_id') ORDER BY ordinal_position",
                [table]).fetchall()]
            out[table] = ws.con.execute(
                f"SELECT {', '.join(cols)} FROM {table} ORDER BY ALL").fetchall()
        return out

    before = sales()
    assert before["sales_summary"]
    _reverse_rows(ws.con, "feedback")
    darkmap.assess_listings(ws)
    assert sales() == before


def test_the_assess_summary_does_not_depend_on_the_order_of_the_stored_rows(
        tmp_path: Path) -> None:
    ws = darkmap.init_workspace(tmp_path / "ws")
    darkmap.ingest(ws, _csv(tmp_path))
    before = darkmap.assess_listings(ws)
    _reverse_rows(ws.con, "listing_observations")
    after = darkmap.assess_listings(ws)
    # the classes as the listings met them, in listing id order
    assert list(after["by_class"].items()) == list(before["by_class"].items())
    assert list(before["by_class"]) == ["opioid", "stimulant", "empathogen",
                                        "dissociative", "psychedelic", "cannabis", "sedative"]


def test_traces_and_wallets_do_not_depend_on_the_order_of_the_stored_rows(
        tmp_path: Path) -> None:
    # a service's wallet holds several addresses tagged with one label, and a transaction
    # spending several inputs merges several pairs: which tagged address a trace names,
    # the order of a wallet's merges and the path that explains a merge came from the
    # order the rows were stored in
    world = tmp_path / "world"
    simulate(world, 3, SimParams(vendors=20, pages=False))
    ws = Workspace.init(tmp_path / "ws")
    load_files(ws, [world / "chain"])
    for tags in sorted((world / "tags").glob("*.yaml")):
        import_tagpack(ws, tags)
    run_clustering(ws)
    clusters = [int(c) for (c,) in ws.con.execute(
        "SELECT cluster_id FROM btc_clusters GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 4"
    ).fetchall()]
    members = {c: [a for (a,) in ws.con.execute(
        "SELECT a.address FROM btc_clusters JOIN btc_address a USING (address_id) "
        "WHERE cluster_id = ? ORDER BY address_id LIMIT 8", [c]).fetchall()] for c in clusters}

    def answers() -> str:
        out = [trace(ws, f"cluster:{c}", d, hops=10) for c in clusters
               for d in ("forward", "backward")]
        out += [wallet_summary(ws, f"cluster:{c}") for c in clusters]
        out += [explain_addresses(ws, a, b) for c in clusters for a in members[c]
                for b in members[c]]
        return json.dumps(out, default=str)

    before = answers()
    _reverse_rows(ws.con, "btc_tags", "btc_cluster_merges", "btc_clusters", "btc_address")
    assert answers() == before


def test_a_tagpack_export_does_not_depend_on_the_order_of_the_stored_rows(
        tmp_path: Path) -> None:
    # one address tagged with one label from two sources: their order was the stored one
    def pack(name: str, source: str) -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump({
            "title": name, "creator": "test", "is_public": False, "tags": [
                {"address": "34pkGsuAseG2sUNQCrtTMLGDD7mYbxgLQo", "label": "BitHarbor",
                 "category": "exchange", "confidence": "authority_data", "source": source,
                 "currency": "BTC"}]}), encoding="utf-8")
        return path

    ws = Workspace.init(tmp_path / "ws")
    import_tagpack(ws, pack("b", "exchange subpoena return"))
    import_tagpack(ws, pack("a", "exchange proof of reserves"))
    before = tags_for_export(ws.con)
    _reverse_rows(ws.con, "btc_tags")
    assert tags_for_export(ws.con) == before
    assert [t["source"] for t in before] == ["exchange proof of reserves",
                                             "exchange subpoena return"]
