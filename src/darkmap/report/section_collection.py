"""Report section "collection": what was collected, by which importer, and what was
skipped or quarantined."""

from __future__ import annotations

from darkmap.report.sections import Section, Table, register_section
from darkmap.store import entities as store
from darkmap.store.workspace import Workspace

__all__ = ["collection_section"]

_COUNTED = (("captures", "captures"), ("markets", "markets"), ("accounts", "accounts"),
            ("listings", "listings"), ("listing observations", "listing_observations"),
            ("feedback", "feedback"), ("PGP keys", "pgp_keys"), ("identifiers", "identifiers"))


@register_section(10, "collection")
def collection_section(ws: Workspace) -> Section:
    """Captures, units read/stored/quarantined/skipped, by importer."""
    con = ws.con
    rows = store.importer_counts(con)
    skipped = store.skipped_pages(con, 30)
    quarantined = store.quarantine_sample(con, 30)
    n_q = store.quarantine_count(con)
    counts = ws.table_counts()
    facts: dict[str, int] = {label: counts.get(table, 0) for label, table in _COUNTED}
    facts["quarantined records"] = n_q
    sec = Section("collection", "Collection and provenance",
                  summary="Every fact below points to a raw capture (SHA-256) in the "
                          "workspace's capture store, the importer that read it, and when "
                          "it was observed.",
                  facts=facts)
    sec.tables.append(Table(["importer", "files", "read", "stored", "quarantined", "skipped"],
                            rows, "Units read = stored + quarantined + skipped"))
    if skipped:
        sec.tables.append(Table(["market", "page type", "reason", "pages"], skipped,
                                "Pages skipped on purpose"))
    if quarantined:
        sec.tables.append(Table(["source", "record", "field", "reason"], quarantined,
                                f"Quarantined records (first {len(quarantined)} of {n_q})"
                                if len(quarantined) < n_q else
                                f"Quarantined records (all {n_q})"))
    return sec
