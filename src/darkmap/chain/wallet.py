"""Summarise a cluster ("wallet"): addresses, flows over time, counterparties, tags,
linked market accounts and personas, and why its addresses were merged."""

from __future__ import annotations

from typing import Any

from darkmap.chain.cluster import explain
from darkmap.chain.tags import sync_evidence_tags
from darkmap.store.workspace import Workspace, table_exists

__all__ = ["wallet_summary"]


def _cluster_id(ws: Workspace, ident: str) -> int:
    t = ident.strip()
    if t.lower().startswith("cluster:"):
        t = t.split(":", 1)[1]
    if t.isdigit():
        cid = int(t)
        if ws.con.execute("SELECT 1 FROM btc_clusters WHERE cluster_id = ? LIMIT 1",
                          [cid]).fetchone() is None:
            raise KeyError(f"no cluster {cid} (run `darkmap chain cluster` first)")
        return cid
    addr = t.lower() if t[:3].lower() == "bc1" else t
    row = ws.con.execute(
        "SELECT c.cluster_id FROM btc_address a JOIN btc_clusters c USING (address_id) "
        "WHERE a.address = ?", [addr]).fetchone()
    if row is None:
        raise KeyError(f"{ident}: not a clustered address or cluster id")
    return int(row[0])


def wallet_summary(ws: Workspace, ident: str, limit: int = 50) -> dict[str, Any]:
    """Everything known about the cluster ``ident`` (cluster id, ``cluster:N`` or address)."""
    sync_evidence_tags(ws)
    cid = _cluster_id(ws, ident)
    con = ws.con
    con.execute("CREATE OR REPLACE TEMP TABLE _w AS SELECT address_id FROM btc_clusters "
                "WHERE cluster_id = ?", [cid])
    n_addr = con.execute("SELECT count(*) FROM _w").fetchone()[0]
    addresses = con.execute(
        "SELECT a.address, a.script_type, "
        " (SELECT coalesce(sum(value), 0) FROM btc_txout o WHERE o.address_id = a.address_id),"
        " (SELECT coalesce(sum(value), 0) FROM btc_txin i WHERE i.address_id = a.address_id) "
        "FROM btc_address a JOIN _w USING (address_id) ORDER BY a.address_id LIMIT ?",
        [limit]).fetchall()
    totals = con.execute(
        "SELECT (SELECT coalesce(sum(o.value), 0) FROM btc_txout o JOIN _w USING (address_id)),"
        " (SELECT coalesce(sum(i.value), 0) FROM btc_txin i JOIN _w USING (address_id)),"
        " (SELECT count(DISTINCT tx_id) FROM (SELECT tx_id FROM btc_txout JOIN _w USING (address_id)"
        "   UNION ALL SELECT tx_id FROM btc_txin JOIN _w USING (address_id)))").fetchone()
    monthly = con.execute(
        "WITH r AS (SELECT strftime(t.block_time, '%Y-%m') m, sum(o.value) v FROM btc_txout o "
        "  JOIN _w USING (address_id) JOIN btc_tx t USING (tx_id) GROUP BY 1), "
        "s AS (SELECT strftime(t.block_time, '%Y-%m') m, sum(i.value) v FROM btc_txin i "
        "  JOIN _w USING (address_id) JOIN btc_tx t USING (tx_id) GROUP BY 1) "
        "SELECT coalesce(r.m, s.m) m, coalesce(r.v, 0), coalesce(s.v, 0) FROM r "
        "FULL JOIN s ON r.m IS NOT DISTINCT FROM s.m ORDER BY m").fetchall()
    # who the cluster paid (outputs of its spends to other clusters) and who paid it
    sent_to = con.execute(
        "WITH sp AS (SELECT DISTINCT i.tx_id FROM btc_txin i JOIN _w USING (address_id)) "
        "SELECT coalesce(c.cluster_id, o.address_id) cp, sum(o.value), count(DISTINCT o.tx_id), "
        " min(a.address) FROM btc_txout o JOIN sp USING (tx_id) "
        "LEFT JOIN btc_clusters c ON c.address_id = o.address_id "
        "LEFT JOIN btc_address a ON a.address_id = o.address_id "
        "WHERE o.address_id IS NOT NULL AND o.address_id NOT IN (SELECT address_id FROM _w) "
        "GROUP BY 1 ORDER BY 2 DESC LIMIT ?", [limit]).fetchall()
    recv_from = con.execute(
        "WITH rc AS (SELECT DISTINCT o.tx_id FROM btc_txout o JOIN _w USING (address_id)) "
        "SELECT coalesce(c.cluster_id, i.address_id) cp, sum(i.value), count(DISTINCT i.tx_id), "
        " min(a.address) FROM btc_txin i JOIN rc USING (tx_id) "
        "LEFT JOIN btc_clusters c ON c.address_id = i.address_id "
        "LEFT JOIN btc_address a ON a.address_id = i.address_id "
        "WHERE i.address_id IS NOT NULL AND i.address_id NOT IN (SELECT address_id FROM _w) "
        "GROUP BY 1 ORDER BY 2 DESC LIMIT ?", [limit]).fetchall()
    cp_ids = {r[0] for r in sent_to} | {r[0] for r in recv_from}
    cp_tags = _cluster_tags(ws, cp_ids)
    tags = con.execute(
        "SELECT t.address, t.label, t.category, t.confidence, t.source, t.actor, t.origin, "
        "t.account_id, t.tagpack_title FROM btc_tags t JOIN btc_address a ON a.address = t.address "
        "JOIN _w USING (address_id) ORDER BY t.origin, t.label").fetchall()
    accounts = sorted({t[7] for t in tags if t[7]})
    personas = _personas(ws, accounts)
    merges = explain(ws, cid, None, limit)
    by_heur = con.execute(
        "SELECT m.heuristic, count(*), count(DISTINCT m.tx_id) FROM btc_cluster_merges m "
        "JOIN _w ON _w.address_id = m.address_a GROUP BY 1 ORDER BY 1").fetchall()
    con.execute("DROP TABLE IF EXISTS _w")

    def cp_rows(rows: list[tuple[Any, ...]], amount_key: str) -> list[dict[str, Any]]:
        return [{"cluster_id": int(r[0]), amount_key: int(r[1] or 0), "transactions": int(r[2]),
                 "example_address": r[3], "tags": cp_tags.get(int(r[0]), [])} for r in rows]

    return {
        "cluster_id": cid, "n_addresses": int(n_addr),
        "received_sat": int(totals[0]), "sent_sat": int(totals[1]),
        "balance_sat": int(totals[0]) - int(totals[1]), "transactions": int(totals[2]),
        "addresses": [{"address": a, "script_type": st, "received_sat": int(r),
                       "sent_sat": int(s)} for a, st, r, s in addresses],
        "by_month": [{"month": m, "received_sat": int(r), "sent_sat": int(s)}
                     for m, r, s in monthly],
        "paid_to": cp_rows(sent_to, "sent_sat"), "paid_by": cp_rows(recv_from, "received_sat"),
        "tags": [dict(zip(("address", "label", "category", "confidence", "source", "actor",
                           "origin", "account_id", "tagpack"), t)) for t in tags],
        "linked_accounts": accounts, "linked_personas": personas,
        "merge_reasons": {h: {"edges": int(n), "transactions": int(t)} for h, n, t in by_heur},
        "merges": merges["merges"], "n_merges": merges["n_merges"],
    }


def _cluster_tags(ws: Workspace, cluster_ids: set[int]) -> dict[int, list[str]]:
    if not cluster_ids:
        return {}
    rows = ws.con.execute(
        "SELECT c.cluster_id, list(DISTINCT t.label) FROM btc_tags t "
        "JOIN btc_address a ON a.address = t.address JOIN btc_clusters c USING (address_id) "
        "WHERE c.cluster_id IN (SELECT unnest(?)) GROUP BY 1", [sorted(cluster_ids)]).fetchall()
    return {int(c): sorted(labels) for c, labels in rows}


def _personas(ws: Workspace, accounts: list[str]) -> list[dict[str, Any]]:
    if not accounts:
        return []
    if not (table_exists(ws.con, "personas") and table_exists(ws.con, "persona_members")):
        return []
    rows = ws.con.execute(
        "SELECT p.persona_id, p.label, p.n_accounts, list(DISTINCT m.account_id) "
        "FROM persona_members m JOIN personas p USING (persona_id) "
        "WHERE m.account_id IN (SELECT unnest(?)) GROUP BY 1, 2, 3", [accounts]).fetchall()
    return [{"persona_id": p, "label": lab, "n_accounts": n, "via_accounts": sorted(acc)}
            for p, lab, n, acc in rows]
