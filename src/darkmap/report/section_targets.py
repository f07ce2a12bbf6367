"""Report section "targets": harm-ranked personas, flagged listings and orders per month.

Reads only stored results (``darkmap assess`` already ran; the section is left out
otherwise); the ranking is :func:`darkmap.assess.harm.rank_targets`. Every row carries
its evidence so the reader can check it.
"""

from __future__ import annotations

import json
from typing import Any

from darkmap.assess.harm import NO_SALES, NO_SALES_LEGEND, TargetRow, harm_mark, rank_targets
from darkmap.model.display import with_lookalike_mark
from darkmap.report.sections import Figure, Section, Table, register_section
from darkmap.store import assessment as store
from darkmap.store.sales import feedback_rates
from darkmap.store.workspace import Workspace, table_has_rows

__all__ = ["targets_section"]


@register_section(40, "targets")
def targets_section(ws: Workspace) -> Section | None:
    """Harm-ranked personas, flagged listings and orders per month."""
    if not table_has_rows(ws.con, "listing_assessments"):
        return None
    rows = rank_targets(ws, limit=20)
    by_class = store.count_by_class(ws.con)
    n_fentanyl, n_counterfeit = store.count_flagged(ws.con)
    sec = Section("targets", "Targets: what is sold, how much, by whom",
                  summary="Personas ranked by harm score (fentanyl and counterfeit pills "
                          "weigh most, each full at 3 flagged listings; then volume, reach "
                          "and duration; a persona with no sales evidence ranks on its "
                          "listings alone, which is no measure of volume). Orders come from "
                          "the "
                          "sales counters markets display, else from feedback divided by the "
                          "market's feedback rate (calibrated on the counters markets show); "
                          "pills are orders times the pack each listing sells; customers "
                          "are estimated from masked buyer names. Ranges are 90% intervals "
                          "(docs/sales.md says how often they held on simulated worlds).",
                  facts={"listings assessed": sum(n for _, n in by_class),
                         "fentanyl-risk listings": n_fentanyl,
                         "counterfeit-pill listings": n_counterfeit})
    sec.tables.append(Table(
        ["rank", "persona", "label", "harm", "country", "fentanyl", "counterfeit",
         "orders (90% range)", "pills (range)", "counterfeit / fentanyl-risk pills",
         "customers (range)", "revenue USD (range)", "orders rest on",
         "harm from listings / activity", "accounts", "evidence"],
        [_target_cells(i, r) for i, r in enumerate(rows)],
        f"Harm-ranked target list (harm 0-100; {NO_SALES_LEGEND})"))
    rates = feedback_rates(ws.con)
    if rates:
        sec.tables.append(Table(
            ["market", "feedback rate", "90% interval", "from", "accounts with counters",
             "orders shown", "feedback shown"],
            [(r.market_id, f"{r.rate:.2f}", f"{r.rate_low:.2f}-{r.rate_high:.2f}", r.source,
              r.n_accounts, r.n_orders, r.n_feedback) for r in rates],
            "Share of orders that leave feedback, per market (from the counters markets "
            "display; 'borrowed': none shown, taken from the others with a wider range)"))
    sec.figures.append(Figure("Listings by drug class", [c for c, _ in by_class],
                              [float(n) for _, n in by_class]))
    flagged = store.flagged_listings(ws.con, 40)
    sec.tables.append(Table(
        ["listing", "title", "substance", "counterfeit pill", "fentanyl risk", "units", "kind",
         "dose mg", "USD/unit", "words that raised the flags"],
        [(*r[:9], _flag_words(r.flag_evidence)) for r in flagged],
        "Fentanyl and counterfeit-pill listings (first 40)"))
    _monthly_figures(ws, sec, [r["persona_id"] for r in rows[:3]])
    return sec


def _target_cells(i: int, r: TargetRow) -> tuple[Any, ...]:
    """One row of the target table (rank ``i + 1``)."""
    return (i + 1, r["persona_id"], with_lookalike_mark(r["label"]),
            f"{r['harm_score']:g}{harm_mark(r)}",
            r["country"],
            r["fentanyl_listings"], r["counterfeit_listings"],
            "-" if r["sales_basis"] == "not captured" else
            f"{r['orders_est']:.0f} ({r['orders_range'][0]:.0f}-{r['orders_range'][1]:.0f})",
            _range(r["pills"]), " / ".join(_range(r[k]) or "-" for k in
                                           ("counterfeit_pills", "fentanyl_risk_pills")),
            _range(r["customers"]), _money_range(r),
            (r["sales_basis"] or "") if r["sales_evidence"] else NO_SALES,
            f"{r['harm_parts']['listings']:.1f} / {r['harm_parts']['activity']:.1f}",
            ", ".join(r["accounts"][:4]),
            "; ".join(f"{e['title']} [{', '.join(e['flags'])}]"
                      for e in r["evidence"]["flagged_listings"][:2]))


def _range(v: list[float] | None) -> str:
    """"est (low-high)" of a [estimate, low, high] triple, "" when there is none."""
    if not v:
        return ""
    return f"{v[0]:,.0f} ({v[1]:,.0f}-{v[2]:,.0f})"


def _money_range(r: TargetRow) -> str:
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
        months = store.monthly_orders(ws.con, pid)
        if months:
            sec.figures.append(Figure(f"Estimated orders per month: persona {pid}",
                                      [m for m, _ in months], [v for _, v in months]))
