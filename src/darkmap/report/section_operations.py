"""Report section "operations": the operation totals as one user may see them.

Operational records are compartmented, so this section is drawn only for a named reader
(``darkmap report --as USER``; ``darkmap demo`` names its lead officer): the totals of
each operation of the records that user may read, as a press release gives them (arrests
by country, drugs by substance in kg, fentanyl kg, pills, firearms, cash and crypto in
USD), the fentanyl marks a buy's lab result put on listings and personas (with the buy
as evidence), and the reported figures of past operations (public; each with its
source, ranges where sources disagree). Every read is audited as that user's. A report
written without a reader holds nothing operational.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from darkmap.ops import records, totals
from darkmap.report.sections import Section, Table, register_section
from darkmap.store import operations as store
from darkmap.store.operations import Space, is_server
from darkmap.store.workspace import Workspace, table_has_rows

__all__ = ["operations_section", "reading_as"]

_READER: ContextVar[tuple[str, Space | None] | None] = ContextVar("darkmap_report_reader",
                                                                  default=None)
_TOTALS = ("arrests", "countries", "drugs_kg", "fentanyl_kg", "pills", "firearms", "cash_usd",
           "crypto_usd", "cash_crypto_usd", "seizures")


@contextmanager
def reading_as(user: str | None, ops: Space | None = None) -> Iterator[None]:
    """Draw the report's operational section as ``user`` (``None``: leave it out), from
    ``ops`` (the team server) or else the workspace's own records."""
    token = _READER.set(None if user is None else (user, ops))
    try:
        yield
    finally:
        _READER.reset(token)


def _num(value: float) -> str:
    """``31,600,000``, ``152.1``."""
    return f"{value:,.0f}" if abs(value) >= 1000 or value == int(value) else f"{value:,.4g}"


def _range(low: Any, high: Any) -> str:
    """A reported figure or range: ``153``, ``153 – 155``, ``> 2,000``."""
    if high is None:
        return f"> {_num(low)}" if low is not None else ""
    if low is None:
        return f"< {_num(high)}"
    return _num(low) if low == high else f"{_num(low)} – {_num(high)}"


@register_section(80, "operations")
def operations_section(ws: Workspace) -> Section | None:
    """Operation totals, fentanyl marks and reported figures, as the reader sees them."""
    reader = _READER.get()
    if reader is None:
        return None
    user, ops = reader[0], reader[1] or ws
    if not is_server(ops.con) and not table_has_rows(ws.con, "ops_users"):
        return None
    readable = records.read_records(ops, user)
    operations = sorted({r.row.operation for r in readable if r.row.operation})
    sec = Section("operations", f"Operations (as {user} may see them)",
                  summary="Totals computed from the seizures and arrests this reader may "
                          "read (values in USD as recorded at the seizure date); other "
                          "compartments are not counted. Reported figures are those of "
                          "past operations as the press gave them, each with its source.",
                  facts={"records readable": len(readable),
                         "operations": len(operations)})
    for op in operations:
        t = totals.recorded_totals(ops, user, op)
        rows: list[tuple[Any, ...]] = [(m, t[m]) for m in _TOTALS]
        rows += [(f"arrests in {cc}", n) for cc, n in t["arrests_by_country"].items()]
        rows += [(f"{s} kg", kg) for s, kg in t["drugs_kg_by_substance"].items()]
        rows += [(f"{k} without a USD value", n)
                 for k, n in t["items_without_usd_value"].items()]
        sec.tables.append(Table(["total", "recorded"], rows, f"Operation {op}"))
    marks = records.fentanyl_marks(ops, user)
    if marks:
        sec.tables.append(Table(
            ["marked", "id", "lab result", "evidence (buy)"],
            [(m["ref_kind"], m["ref_id"], m["substance"], m["buy"]) for m in marks],
            "Listings and personas a controlled buy's lab result shows selling fentanyl"))
    for op in store.reported_operations(ops.con):
        summary = totals.operation_report(ops, user, op)["reported"]
        sec.tables.append(Table(
            ["metric", "reported", "sources disagree", "sources"],
            [(m, _range(v["low"], v["high"]), "yes" if v["sources_disagree"] else "",
              "; ".join(sorted({f["source"][:120] for f in v["figures"]})))
             for m, v in summary.items()],
            f"Reported figures: {op}"))
    return sec
