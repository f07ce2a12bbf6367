"""Report sections for the analysis stages: personas, targets, drugs, money, evaluation.

Each section reads only stored results (the stage already ran); a stage that has not
run leaves its section out. Every row carries its evidence so the reader can check it.
"""

from __future__ import annotations

import json
from typing import Any

from darkmap.assess import harm
from darkmap.chain import trace as trace_mod
from darkmap.report.sections import Figure, Section, Table, register_section
from darkmap.store.workspace import Workspace, table_has_rows

__all__ = ["evaluation_section", "money_section", "personas_section", "targets_section"]

_TOP = 10


def _signals_text(signals: Any, top: int = 4) -> str:
    data = json.loads(signals) if isinstance(signals, str) else (signals or {})
    parts = []
    for name, s in data.items():
        contrib = s.get("contribution") if isinstance(s, dict) else None
        if contrib is None:
            continue
        parts.append((float(contrib), name, s.get("value") if isinstance(s, dict) else s))
    parts.sort(reverse=True)
    return "; ".join(f"{n}={_short(v)} ({c:+.2f})" for c, n, v in parts[:top])


def _short(v: Any) -> str:
    text = f"{v:.2f}" if isinstance(v, float) else str(v)
    return text if len(text) <= 40 else text[:37] + "..."


@register_section(30, "personas")
def personas_section(ws: Workspace) -> Section | None:
    """The largest and most cross-market personas, with the links that made them."""
    if not table_has_rows(ws.con, "personas"):
        return None
    con = ws.con
    n, multi, cross = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE n_accounts > 1), "
        "count(*) FILTER (WHERE n_markets > 1) FROM personas").fetchone()
    top = con.execute("""
        SELECT p.persona_id, p.label, p.n_accounts, p.n_markets, p.cohesion,
               string_agg(m.account_id, ', ' ORDER BY m.account_id)
        FROM personas p JOIN persona_members m USING (persona_id)
        WHERE p.n_accounts > 1 GROUP BY ALL
        ORDER BY p.n_markets DESC, p.n_accounts DESC, p.cohesion DESC, 1 LIMIT 15""").fetchall()
    sec = Section("personas", "Personas: accounts linked into the people behind them",
                  summary="Accounts are linked by hard identifiers (PGP keys, addresses, "
                          "contacts) and soft signals (handles, writing style, products, "
                          "prices, shipping, timing). Scores are calibrated match "
                          "probabilities; analysts confirm or reject with `darkmap judge`.",
                  facts={"personas": n, "with several accounts": multi,
                         "across markets": cross})
    sec.tables.append(Table(["persona", "label", "accounts", "markets", "cohesion", "members"],
                            top, "Most cross-market personas"))
    ids = [t[0] for t in top[:8]]
    links = con.execute("""
        SELECT m.persona_id, l.a, l.b, l.score, l.signals FROM account_links l
        JOIN persona_members m ON m.account_id = l.a
        JOIN persona_members m2 ON m2.account_id = l.b AND m2.persona_id = m.persona_id
        WHERE m.persona_id IN (SELECT unnest(?::VARCHAR[]))
        QUALIFY row_number() OVER (PARTITION BY m.persona_id ORDER BY l.score DESC) <= 3
        ORDER BY m.persona_id, l.score DESC""", [ids]).fetchall()
    sec.tables.append(Table(
        ["persona", "account", "account", "match probability", "strongest evidence"],
        [(p, a, b, s, _signals_text(sig)) for p, a, b, s, sig in links],
        "Why: the strongest links inside those personas"))
    return sec


@register_section(40, "targets")
def targets_section(ws: Workspace) -> Section | None:
    """Harm-ranked personas, flagged listings and orders per month."""
    if not table_has_rows(ws.con, "listing_assessments"):
        return None
    con = ws.con
    rows = harm.rank_targets(ws, limit=20)
    by_class = con.execute("SELECT drug_class, count(*) FROM listing_assessments "
                           "GROUP BY 1 ORDER BY 2 DESC").fetchall()
    sec = Section("targets", "Targets: what is sold, how much, by whom",
                  summary="Personas ranked by harm score (fentanyl and counterfeit pills "
                          "weigh most; then volume, reach and duration). Orders are feedback "
                          "counts corrected for orders that leave none; ranges show the "
                          "uncertainty of that correction.",
                  facts={"listings assessed": sum(n for _, n in by_class),
                         "fentanyl-risk listings": con.execute(
                             "SELECT count(*) FROM listing_assessments WHERE fentanyl_risk"
                         ).fetchone()[0],
                         "counterfeit-pill listings": con.execute(
                             "SELECT count(*) FROM listing_assessments WHERE counterfeit_pill"
                         ).fetchone()[0]})
    sec.tables.append(Table(
        ["rank", "persona", "label", "harm", "country", "fentanyl", "counterfeit",
         "orders (range)", "revenue USD (range)", "accounts", "evidence"],
        [(i + 1, r["persona_id"], r["label"], r["harm_score"], r["country"],
          r["fentanyl_listings"], r["counterfeit_listings"],
          f"{r['orders_est']:.0f} ({r['orders_range'][0]:.0f}-{r['orders_range'][1]:.0f})",
          _money_range(r), ", ".join(r["accounts"][:4]),
          "; ".join(f"{e['title']} [{', '.join(e['flags'])}]"
                    for e in r["evidence"]["flagged_listings"][:2]))
         for i, r in enumerate(rows)], "Harm-ranked target list"))
    sec.figures.append(Figure("Listings by drug class", [c for c, _ in by_class],
                              [float(n) for _, n in by_class]))
    flagged = con.execute("""
        SELECT a.listing_id, o.title, a.substance, a.counterfeit_pill, a.fentanyl_risk,
               a.units, a.unit_kind, a.dose_mg, a.unit_price_usd, a.flag_evidence
        FROM listing_assessments a LEFT JOIN listing_observations o USING (obs_id)
        WHERE a.fentanyl_risk OR a.counterfeit_pill
        ORDER BY a.fentanyl_risk DESC, a.listing_id LIMIT 40""").fetchall()
    sec.tables.append(Table(
        ["listing", "title", "substance", "counterfeit pill", "fentanyl risk", "units", "kind",
         "dose mg", "USD/unit", "words that raised the flags"],
        [(*r[:9], _flag_words(r[9])) for r in flagged],
        "Fentanyl and counterfeit-pill listings (first 40)"))
    _monthly_figures(ws, sec, [r["persona_id"] for r in rows[:3]])
    return sec


def _money_range(r: dict[str, Any]) -> str:
    if not r.get("revenue_usd"):
        return ""
    lo, hi = r["revenue_usd_range"]
    return f"{r['revenue_usd']:,.0f} ({(lo or 0):,.0f}-{(hi or 0):,.0f})"


def _flag_words(evidence: Any) -> str:
    data = json.loads(evidence) if isinstance(evidence, str) else (evidence or {})
    words = []
    for key in ("fentanyl_risk", "counterfeit_pill"):
        words += [str(w) for w in data.get(key, [])][:3]
    return ", ".join(dict.fromkeys(words))


def _monthly_figures(ws: Workspace, sec: Section, persona_ids: list[str]) -> None:
    for pid in persona_ids:
        months = ws.con.execute(
            "SELECT strftime(month, '%Y-%m'), orders_est FROM sales_monthly "
            "WHERE entity_kind = 'persona' AND entity_id = ? ORDER BY month", [pid]).fetchall()
        if months:
            sec.figures.append(Figure(f"Estimated orders per month: persona {pid}",
                                      [m for m, _ in months], [float(v) for _, v in months]))


@register_section(50, "money")
def money_section(ws: Workspace) -> Section | None:
    """Each top persona's wallets, flows and cash-out points."""
    if not table_has_rows(ws.con, "btc_clusters"):
        return None
    con = ws.con
    n_tx, n_addr, n_clusters = con.execute(
        "SELECT (SELECT count(*) FROM btc_tx), (SELECT count(*) FROM btc_address), "
        "(SELECT count(DISTINCT cluster_id) FROM btc_clusters)").fetchone()
    sec = Section("money", "Follow the money: wallets, flows and cash-out points",
                  summary="Addresses published by vendors (profiles, listings, seized "
                          "databases) tie wallets to personas; the multi-input heuristic "
                          "(CoinJoins skipped) groups addresses into wallets; forward "
                          "tracing (haircut) stops at tagged services. Cash-outs at exchanges "
                          "are where a legal request can be sent.",
                  facts={"transactions": n_tx, "addresses": n_addr, "wallets (clusters)": n_clusters})
    order = [r["persona_id"] for r in harm.rank_targets(ws, limit=50)] if harm else []
    wallets = con.execute("""
        SELECT t.actor, c.cluster_id, count(DISTINCT t.address), min(t.account_id)
        FROM btc_tags t JOIN btc_address a ON a.address = t.address
        JOIN btc_clusters c ON c.address_id = a.address_id
        WHERE t.origin = 'evidence' AND t.actor IS NOT NULL GROUP BY 1, 2""").fetchall()
    rank = {p: i for i, p in enumerate(order)}
    wallets.sort(key=lambda w: (rank.get(w[0], len(rank)), w[0], w[1]))
    ctx = trace_mod.TraceContext.load(ws)
    wallet_rows, cash_rows = [], []
    for persona, cid, n_known, account in wallets[:_TOP]:
        res = trace_mod.trace(ws, f"cluster:{cid}", "forward", hops=12, method="haircut", ctx=ctx)
        wallet_rows.append((persona, account, cid, res["addresses"], n_known,
                            res["source_received_sat"] / 1e8, len(res["peel_chains"]),
                            ", ".join(f"{k}: {v / 1e8:.4f}" for k, v in
                                      list(res["by_service_sat"].items())[:3])))
        for h in res["cashouts"][:4]:
            cash_rows.append((persona, h["service"], h["address"], h["amount_btc"], h["txid"],
                              h["time"], h["hop"]))
    sec.tables.append(Table(["persona", "account", "wallet", "addresses", "published by vendor",
                             "received BTC", "peel chains", "flows to services (BTC)"],
                            wallet_rows, "Wallets of the top personas"))
    sec.tables.append(Table(["persona", "exchange", "deposit address", "BTC", "txid", "time",
                             "hops"], cash_rows, "Cash-out points (legal request targets)"))
    return sec


@register_section(90, "evaluation")
def evaluation_section(ws: Workspace) -> Section | None:
    """How the stages score against the simulated world's ground truth."""
    rows = ws.con.execute("SELECT key, result FROM evaluations ORDER BY key").fetchall()
    if not rows:
        return None
    sec = Section("evaluation", "Evaluation against the simulated ground truth",
                  summary="The demo's simulated world comes with truth.json (who is behind "
                          "each account, who owns each address); these figures measure the "
                          "stages against it.")
    for key, result in rows:
        data = json.loads(result)
        flat = [(k, v) for k, v in data.items() if isinstance(v, (int, float, str))]
        for k, v in data.items():
            if isinstance(v, dict):
                flat += [(f"{k}.{k2}", v2) for k2, v2 in v.items()
                         if isinstance(v2, (int, float, str))]
        sec.tables.append(Table(["metric", "value"], flat[:40], key))
    return sec
