"""``darkmap assess`` on a workspace: assess every listing, then sales and jurisdictions.

Reads the latest ``listing_observations`` row of each listing, writes one
``listing_assessments`` row per listing (the table is rebuilt in one transaction, so a
rerun gives the same rows: idempotent), then ``sales_monthly`` / ``sales_summary`` and
``jurisdictions`` for every account and persona. The SQL lives in
:mod:`darkmap.store.assessment`.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypedDict

from darkmap.assess.fx import load_fx
from darkmap.assess.jurisdiction import TextMemo, infer_jurisdiction
from darkmap.assess.lexicon import load_lexicon
from darkmap.assess.listing import METHOD, Assessment, assess_listing
from darkmap.assess.sales import SalesCounts, SalesParams, compute_sales
from darkmap.store import assessment as store
from darkmap.store.assessment import JurisdictionRow, LatestObservation, QuarantineRow
from darkmap.store.personas import persona_map
from darkmap.store.workspace import Workspace, utcnow
from darkmap.store.writer import row_id

__all__ = ["JURISDICTION_METHOD", "AssessSummary", "JurisdictionCounts", "assess_workspace",
           "compute_jurisdictions"]

JURISDICTION_METHOD = "darkmap.jurisdiction@1"
_FLAG_COUNTS = ("fentanyl_risk", "counterfeit_pill")
# columns taken from the Assessment, in store order (after listing_id, obs_id, account_id)
_ASSESSED = store.ASSESSMENT_COLUMNS[3:17]
_DEFAULT_PARAMS = SalesParams()  # frozen, so one shared default is safe


class AssessSummary(TypedDict):
    """What ``darkmap assess --json`` prints."""

    listings_assessed: int
    quarantined: int
    by_class: dict[str, int]
    fentanyl_risk: int
    counterfeit_pill: int
    listings_per_second: float | None
    sales_monthly: int
    sales_summary: int
    jurisdictions: int
    fx_table: str
    method: str


class JurisdictionCounts(TypedDict):
    """Rows written by :func:`compute_jurisdictions`."""

    jurisdictions: int


PROGRESS_EVERY = 10_000
"""Listings classified between two progress reports."""


def assess_workspace(ws: Workspace, params: SalesParams = _DEFAULT_PARAMS,
                     progress: Callable[[str], None] | None = None) -> AssessSummary:
    """Assess every listing of ``ws`` and recompute sales and jurisdictions.

    ``progress`` is called with what the run is about to do (each stage, and the
    listings classified so far every :data:`PROGRESS_EVERY`): an assessment of 100,000
    listings takes a minute or more."""
    say = progress or _quiet
    t0 = time.perf_counter()
    con = ws.con
    lex, fx = load_lexicon(), load_fx(workspace=ws.path)
    store.require_drug_tables(con)
    rows = store.latest_observations(con)
    rates = store.page_rates(con)
    now = utcnow()
    columns: dict[str, list[Any]] = {c: [] for c in store.ASSESSMENT_COLUMNS}
    counts: dict[str, int] = defaultdict(int)
    failed: list[QuarantineRow] = []
    say(f"classifying {len(rows):,} listings")
    for k, obs in enumerate(rows, 1):
        if k % PROGRESS_EVERY == 0:
            say(f"classifying listings: {k:,} of {len(rows):,}")
        try:
            a = assess_listing(obs.title, obs.description, list(obs.category_path or []),
                               obs.price, obs.currency, obs.price_text, obs.observed_at,
                               lexicon=lex, fx=fx, page_rates=rates.get(obs.capture_sha256 or ""))
        except Exception as exc:  # noqa: BLE001 - one hostile listing must not stop the run
            failed.append(_quarantine_row(obs, exc))
            continue
        counts[a.drug_class] += 1
        counts["fentanyl_risk"] += a.fentanyl_risk
        counts["counterfeit_pill"] += a.counterfeit_pill
        _append(columns, obs, a, now)
    elapsed = time.perf_counter() - t0
    with store.transaction(con):
        say(f"storing {len(rows) - len(failed):,} assessments")
        store.replace_assessments(con, columns)
        if failed:
            store.replace_quarantine(con, METHOD, failed)
        say("estimating orders, units and customers of every account and persona")
        sales = compute_sales(ws, params, fx, now)
        say("inferring jurisdictions")
        juris = compute_jurisdictions(ws, now)
    return _summary(len(rows), len(failed), counts, elapsed, sales, juris, fx.source)


def _quiet(_text: str) -> None:
    """No progress wanted."""


def _append(columns: dict[str, list[Any]], obs: LatestObservation, a: Assessment,
            now: datetime) -> None:
    """Add one assessed listing to the column lists."""
    for c, v in (("listing_id", obs.listing_id), ("obs_id", obs.obs_id),
                 ("account_id", obs.account_id), ("observed_at", obs.observed_at),
                 ("method", METHOD), ("assessed_at", now)):
        columns[c].append(v)
    for c in _ASSESSED:
        columns[c].append(getattr(a, c))


def _quarantine_row(obs: LatestObservation, exc: Exception) -> QuarantineRow:
    """The quarantine record of a listing whose assessment raised ``exc``."""
    lid = obs.listing_id
    return QuarantineRow(
        row_id("assess", lid, obs.obs_id), lid.split(":", 1)[0],
        f"{obs.locator or lid}#listing {lid}", "title",
        f"{obs.source}: listing {lid}: assessment failed: {type(exc).__name__}: {exc}"[:500],
        (obs.title or "")[:200], obs.capture_sha256, obs.source, METHOD, None)


def _summary(n_rows: int, n_failed: int, counts: dict[str, int], elapsed: float,
             sales: SalesCounts, juris: JurisdictionCounts, fx_source: str) -> AssessSummary:
    """The run's summary, keys in the order the CLI prints them."""
    return {"listings_assessed": n_rows - n_failed, "quarantined": n_failed,
            "by_class": {k: v for k, v in counts.items() if k not in _FLAG_COUNTS},
            "fentanyl_risk": counts["fentanyl_risk"],
            "counterfeit_pill": counts["counterfeit_pill"],
            "listings_per_second": round(n_rows / elapsed, 1) if elapsed > 0 else None,
            "sales_monthly": sales["sales_monthly"], "sales_summary": sales["sales_summary"],
            "jurisdictions": juris["jurisdictions"], "fx_table": fx_source, "method": METHOD}


def _vendor_evidence(ws: Workspace) -> dict[str, dict[str, list[Any]]]:
    """account_id -> {"ships": [...], "texts": [...], "cur": [...], "fb": [...]}."""
    con = ws.con
    ev: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for lo in store.listing_place_evidence(con):
        e = ev[lo.account_id]
        e["ships"].append(lo.ships_from)
        e["texts"].append(lo.title)
        if lo.description:
            e["texts"].append(lo.description[:4000])
        e["cur"].append(lo.currency)
    for ao in store.account_place_evidence(con):
        e = ev[ao.account_id]
        e["ships"].append(ao.ships_from)
        e["texts"].extend(t[:4000] for t in (ao.profile_text, ao.terms_text) if t)
    for fb in store.feedback_texts(con):
        ev[fb.account_id]["fb"].append((fb.text or "")[:1000])
    return ev


def compute_jurisdictions(ws: Workspace, now: datetime | None = None) -> JurisdictionCounts:
    """Fill ``jurisdictions`` for every account and persona from the stored evidence."""
    now = now or utcnow()
    pmap = persona_map(ws.con)
    ev = _vendor_evidence(ws)
    # in a fixed order (a set's order changes from one process to the next): evidence of
    # equal weight is listed, and a tie between countries broken, the same way every run
    accounts = sorted(set(ev) | set(pmap))
    groups: dict[str, list[str]] = defaultdict(list)
    for aid in accounts:
        groups[pmap.get(aid, aid)].append(aid)
    entities = [("account", a, [a]) for a in accounts] + [
        ("persona", p, accs) for p, accs in groups.items()]
    rows = []
    memo = TextMemo()  # each text read once, for its account and again for its persona
    for kind, eid, accs in entities:
        merged: dict[str, list[Any]] = defaultdict(list)
        for a in accs:
            for k, v in ev.get(a, {}).items():
                merged[k].extend(v)
        j = infer_jurisdiction(merged["ships"], merged["texts"], merged["cur"], merged["fb"],
                               memo)
        rows.append(JurisdictionRow(kind, eid, j.country, j.confidence,
                                    json.dumps(j.evidence[:20]), JURISDICTION_METHOD, now))
    return {"jurisdictions": store.replace_jurisdictions(ws.con, rows)}
