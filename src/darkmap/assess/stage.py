"""``darkmap assess`` on a workspace: assess every listing, then sales and jurisdictions.

Reads the latest ``listing_observations`` row of each listing, writes one
``listing_assessments`` row per listing (the table is rebuilt in one transaction, so a
rerun gives the same rows: idempotent), then ``sales_monthly`` / ``sales_summary`` and
``jurisdictions`` for every account and persona.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from typing import Any

import pyarrow as pa

from darkmap.assess.listing import METHOD, assess_listing
from darkmap.assess.dbutil import insert_rows
from darkmap.assess.jurisdiction import infer_jurisdiction
from darkmap.assess.lexicon import load_lexicon
from darkmap.assess.fx import load_fx
from darkmap.store.personas import persona_map
from darkmap.assess.sales import SalesParams, compute_sales
from darkmap.store.writer import row_id
from darkmap.store.workspace import utcnow

__all__ = ["assess_workspace", "compute_jurisdictions"]

_COLS = ("listing_id", "obs_id", "account_id", "drug_class", "substance", "class_confidence",
         "counterfeit_pill", "fentanyl_risk", "flag_evidence", "units", "unit_kind",
         "dose_mg", "pack_price_usd", "unit_price_usd", "price_per_gram_usd",
         "parse_confidence", "parse_note", "observed_at", "method", "assessed_at")


def assess_workspace(ws: Any, params: SalesParams = SalesParams()) -> dict[str, Any]:
    """Assess every listing of ``ws`` and recompute sales and jurisdictions."""
    t0 = time.perf_counter()
    con = ws.con
    lex, fx = load_lexicon(), load_fx(workspace=getattr(ws, "path", None))
    _require_tables(con)
    rows = con.execute("""
        SELECT listing_id, obs_id, account_id, title, description, category_path, price,
               currency, price_text, observed_at, locator, capture_sha256, source
        FROM listing_observations
        QUALIFY row_number() OVER (PARTITION BY listing_id
                                   ORDER BY observed_at DESC NULLS LAST, obs_id) = 1
    """).fetchall()
    now = utcnow()
    out: dict[str, list[Any]] = {c: [] for c in _COLS}
    counts: dict[str, int] = defaultdict(int)
    failed: list[tuple[Any, ...]] = []
    for lid, oid, aid, title, desc, cats, price, cur, ptext, obs, loc, sha, src in rows:
        try:
            a = assess_listing(title, desc, list(cats or []), price, cur, ptext, obs,
                               lexicon=lex, fx=fx)
        except Exception as exc:  # hostile text must not stop the run: quarantine it
            failed.append((row_id("assess", lid, oid), lid.split(":", 1)[0],
                           f"{loc or lid}#listing {lid}", "title",
                           f"{src}: listing {lid}: assessment failed: "
                           f"{type(exc).__name__}: {exc}"[:500],
                           (title or "")[:200], sha, src, METHOD, None))
            continue
        counts[a.drug_class] += 1
        counts["fentanyl_risk"] += a.fentanyl_risk
        counts["counterfeit_pill"] += a.counterfeit_pill
        for c, v in (("listing_id", lid), ("obs_id", oid), ("account_id", aid),
                     ("observed_at", obs), ("method", METHOD), ("assessed_at", now)):
            out[c].append(v)
        for c in _COLS[3:17]:
            out[c].append(getattr(a, c))
    elapsed = time.perf_counter() - t0
    table = pa.table({c: pa.array(v) if v else pa.array([], type=pa.string())
                      for c, v in out.items()}) if rows else None
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DELETE FROM listing_assessments")
        if table is not None:
            con.register("_assess_batch", table)
            con.execute(f"INSERT INTO listing_assessments ({', '.join(_COLS)}) "
                        f"SELECT {', '.join(_COLS)} FROM _assess_batch")
            con.unregister("_assess_batch")
        if failed:
            con.execute("DELETE FROM quarantine WHERE method = ?", [METHOD])
            insert_rows(con, "quarantine", ("quarantine_id", "market_id", "locator", "field",
                                            "reason", "excerpt", "capture_sha256", "source",
                                            "method", "run_id"), failed)
        sales = compute_sales(ws, params, fx, now)
        juris = compute_jurisdictions(ws, now)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return {"listings_assessed": len(rows) - len(failed), "quarantined": len(failed),
            "by_class": {k: v for k, v in counts.items()
                                                         if k not in ("fentanyl_risk",
                                                                      "counterfeit_pill")},
            "fentanyl_risk": counts["fentanyl_risk"],
            "counterfeit_pill": counts["counterfeit_pill"],
            "listings_per_second": round(len(rows) / elapsed, 1) if elapsed > 0 else None,
            **sales, **juris, "fx_table": fx.source, "method": METHOD}


def _require_tables(con: Any) -> None:
    have = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema='main'").fetchall()}
    missing = {"listing_assessments", "sales_monthly", "sales_summary", "jurisdictions"} - have
    if missing:
        raise ValueError(
            f"workspace lacks the drug tables ({', '.join(sorted(missing))}): it was migrated "
            "past version 4 before migration 004_drugs.sql existed; re-create the workspace "
            "(darkmap init + ingest) to get them")


def compute_jurisdictions(ws: Any, now: Any = None) -> dict[str, int]:
    """Fill ``jurisdictions`` for every account and persona from the stored evidence."""
    con = ws.con
    now = now or utcnow()
    pmap = persona_map(con)
    ev: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for aid, ships, title, desc, cur in con.execute("""
            SELECT account_id, ships_from, title, description, currency
            FROM listing_observations WHERE account_id IS NOT NULL""").fetchall():
        e = ev[aid]
        e["ships"].append(ships)
        e["texts"].append(title)
        if desc:
            e["texts"].append(desc[:4000])
        e["cur"].append(cur)
    for aid, ships, prof, terms in con.execute("""
            SELECT account_id, ships_from, profile_text, terms_text FROM account_observations
            """).fetchall():
        e = ev[aid]
        e["ships"].append(ships)
        e["texts"].extend(t[:4000] for t in (prof, terms) if t)
    for aid, text in con.execute(
            "SELECT account_id, text FROM feedback WHERE account_id IS NOT NULL").fetchall():
        ev[aid]["fb"].append((text or "")[:1000])
    con.execute("DELETE FROM jurisdictions")
    rows = []
    groups: dict[str, list[str]] = defaultdict(list)
    for aid in set(ev) | set(pmap):
        groups[pmap.get(aid, aid)].append(aid)
    entities = [("account", a, [a]) for a in set(ev) | set(pmap)] + [
        ("persona", p, accs) for p, accs in groups.items()]
    for kind, eid, accs in entities:
        merged: dict[str, list[Any]] = defaultdict(list)
        for a in accs:
            for k, v in ev.get(a, {}).items():
                merged[k].extend(v)
        j = infer_jurisdiction(merged["ships"], merged["texts"], merged["cur"], merged["fb"])
        rows.append((kind, eid, j.country, j.confidence, json.dumps(j.evidence[:20]),
                     "darkmap.jurisdiction@1", now))
    insert_rows(con, "jurisdictions", ("entity_kind", "entity_id", "country", "confidence",
                                       "evidence", "method", "computed_at"), rows)
    return {"jurisdictions": len(rows)}
