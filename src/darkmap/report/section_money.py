"""Report section "money": each top persona's wallets, flows and cash-out points.

The wallets are those holding addresses a persona published; each is traced forward
(:func:`darkmap.chain.trace.trace`, haircut) to the services it pays.
"""

from __future__ import annotations

from darkmap.assess.harm import rank_targets
from darkmap.chain.trace import TraceContext, trace
from darkmap.report.sections import Section, Table, register_section
from darkmap.store import entities as store
from darkmap.store.workspace import Workspace, table_has_rows

__all__ = ["money_section"]

_TOP = 10


@register_section(50, "money")
def money_section(ws: Workspace) -> Section | None:
    """Each top persona's wallets, flows and cash-out points."""
    if not table_has_rows(ws.con, "btc_clusters"):
        return None
    n = store.chain_counts(ws.con)
    sec = Section("money", "Follow the money: wallets, flows and cash-out points",
                  summary="Addresses published by vendors (profiles, listings, seized "
                          "databases) tie wallets to personas; the multi-input heuristic "
                          "(CoinJoins skipped) groups addresses into wallets; forward "
                          "tracing (haircut) stops at tagged services. Cash-outs at exchanges "
                          "are where a legal request can be sent.",
                  facts={"transactions": n.transactions, "addresses": n.addresses,
                         "wallets (clusters)": n.clusters})
    rank = {r["persona_id"]: i for i, r in enumerate(rank_targets(ws, limit=50))}
    wallets = store.published_wallets(ws.con)
    wallets.sort(key=lambda w: (rank.get(w.actor, len(rank)), w.actor, w.cluster_id))
    ctx = TraceContext.load(ws)
    wallet_rows, cash_rows = [], []
    for w in wallets[:_TOP]:
        res = trace(ws, f"cluster:{w.cluster_id}", "forward", hops=12, method="haircut",
                    ctx=ctx)
        wallet_rows.append((w.actor, w.account_id, w.cluster_id, res["addresses"], w.addresses,
                            res["source_received_sat"] / 1e8, len(res["peel_chains"]),
                            ", ".join(f"{k}: {v / 1e8:.4f}" for k, v in
                                      list(res["by_service_sat"].items())[:3])))
        for h in res["cashouts"][:4]:
            cash_rows.append((w.actor, h["service"], h["address"], h["amount_btc"], h["txid"],
                              h["time"], h["hop"]))
    sec.tables.append(Table(["persona", "account", "wallet", "addresses", "published by vendor",
                             "received BTC", "peel chains", "flows to services (BTC)"],
                            wallet_rows, "Wallets of the top personas"))
    sec.tables.append(Table(["persona", "exchange", "deposit address", "BTC", "txid", "time",
                             "hops"], cash_rows, "Cash-out points (legal request targets)"))
    return sec
