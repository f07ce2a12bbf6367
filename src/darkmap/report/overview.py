"""The report's first sections: what was collected, from where, and what was skipped."""

from __future__ import annotations

from darkmap.report.sections import Figure, Section, Table, register_section
from darkmap.store.workspace import Workspace

__all__ = ["collection_section", "markets_section"]


@register_section(10, "collection")
def collection_section(ws: Workspace) -> Section:
    """Captures, units read/stored/quarantined/skipped, by importer."""
    rows = ws.con.execute(
        "SELECT importer, count(*), sum(read_count), sum(stored_count), sum(quarantined), "
        "sum(skipped) FROM processed GROUP BY 1 ORDER BY 1").fetchall()
    skipped = ws.con.execute(
        "SELECT coalesce(market_id, '?'), page_type, reason, count(*) FROM skipped_pages "
        "GROUP BY ALL ORDER BY 4 DESC LIMIT 30").fetchall()
    quarantined = ws.con.execute(
        "SELECT source, locator, coalesce(field, ''), reason FROM quarantine "
        "ORDER BY source, locator LIMIT 30").fetchall()
    n_q = ws.con.execute("SELECT count(*) FROM quarantine").fetchone()[0]
    counts = ws.table_counts()
    sec = Section("collection", "Collection and provenance",
                  summary="Every fact below points to a raw capture (SHA-256) in the "
                          "workspace's capture store, the importer that read it, and when "
                          "it was observed.",
                  facts={"captures": counts.get("captures", 0),
                         "markets": counts.get("markets", 0),
                         "accounts": counts.get("accounts", 0),
                         "listings": counts.get("listings", 0),
                         "listing observations": counts.get("listing_observations", 0),
                         "feedback": counts.get("feedback", 0),
                         "PGP keys": counts.get("pgp_keys", 0),
                         "identifiers": counts.get("identifiers", 0),
                         "quarantined records": n_q})
    sec.tables.append(Table(["importer", "files", "read", "stored", "quarantined", "skipped"],
                            rows, "Units read = stored + quarantined + skipped"))
    if skipped:
        sec.tables.append(Table(["market", "page type", "reason", "pages"], skipped,
                                "Pages skipped on purpose"))
    if quarantined:
        sec.tables.append(Table(["source", "record", "field", "reason"], quarantined,
                                f"Quarantined records (first 30 of {n_q})"))
    return sec


@register_section(20, "markets")
def markets_section(ws: Workspace) -> Section:
    """Per market: accounts, listings, feedback, and when it was observed."""
    rows = ws.con.execute("""
        SELECT m.market_id, m.name,
               (SELECT count(*) FROM accounts a WHERE a.market_id = m.market_id),
               (SELECT count(*) FROM listings l WHERE l.market_id = m.market_id),
               (SELECT count(*) FROM feedback f WHERE f.market_id = m.market_id),
               (SELECT min(o.observed_at)::DATE FROM listing_observations o
                  JOIN listings l USING (listing_id) WHERE l.market_id = m.market_id),
               (SELECT max(o.observed_at)::DATE FROM listing_observations o
                  JOIN listings l USING (listing_id) WHERE l.market_id = m.market_id)
        FROM markets m ORDER BY 4 DESC, 1""").fetchall()
    sec = Section("markets", "Markets, accounts and listings")
    sec.tables.append(Table(["market", "name", "accounts", "listings", "feedback",
                             "first observed", "last observed"], rows))
    top = ws.con.execute("""
        SELECT a.market_id || ':' || a.handle, count(DISTINCT l.listing_id)
        FROM listings l JOIN accounts a USING (account_id)
        GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 15""").fetchall()
    if top:
        sec.figures.append(Figure("Vendors with the most listings",
                                  [t[0] for t in top], [float(t[1]) for t in top]))
    return sec
