"""Report section "markets": per market its accounts, listings and feedback, and the
vendors with the most listings."""

from __future__ import annotations

from darkmap.report.sections import Figure, Section, Table, register_section
from darkmap.store import entities as store
from darkmap.store.workspace import Workspace

__all__ = ["markets_section"]


@register_section(20, "markets")
def markets_section(ws: Workspace) -> Section:
    """Per market: accounts, listings, feedback, and when it was observed."""
    sec = Section("markets", "Markets, accounts and listings")
    sec.tables.append(Table(["market", "name", "accounts", "listings", "feedback",
                             "first observed", "last observed"], store.market_overview(ws.con)))
    top = store.top_vendors(ws.con, 15)
    if top:
        sec.figures.append(Figure("Vendors with the most listings",
                                  [v for v, _ in top], [float(n) for _, n in top]))
    return sec
