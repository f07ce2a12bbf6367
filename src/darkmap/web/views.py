"""What each page and each ``/api/`` endpoint shows, as plain dicts: one function per
page, used by both the HTML page and its JSON twin, so both inherit the same access
control. Analytical facts (personas, accounts, listings, wallets) come from the library
(:mod:`darkmap.api`) and :mod:`darkmap.store.web` over the workspace ``ws``; operational
records only through :func:`darkmap.api.ops_records` over ``ops`` (the same workspace, or
the team server), which returns what the user's grants reach and audits the read.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import darkmap.api as api
from darkmap.assess.harm import NO_SALES_LEGEND, harm_mark
from darkmap.errors import BadInputError, NotFoundError, WorkspaceStateError
from darkmap.model.countries import check_country
from darkmap.model.display import for_display, lookalike_mark
from darkmap.model.values import clean_btc_address
from darkmap.ops.deconflict import notices
from darkmap.ops.records import Record, show_record
from darkmap.ops.vocabulary import RECORD_KINDS
from darkmap.resolve.judgements import active_judgements, awaiting_sync, standing_with
from darkmap.resolve.review import judged_estimate, left_apart_queue, review_queue
from darkmap.store import web as store
from darkmap.store.operations import OpsServer, Space, UserRow
from darkmap.store.personas import links_between
from darkmap.store.team import team_judgements
from darkmap.store.workspace import Workspace

__all__ = ["CASES_PAGE", "FEEDBACK_HITS", "LISTINGS_PAGE", "OPS_LOCK", "REVIEW_BAND",
           "REVIEW_LIMIT", "REVIEW_PAGE", "REVIEW_QUEUES", "SEARCH_PAGE", "TARGETS_PAGE",
           "account_page", "cases_page", "dashboard", "graph_expand", "listing_page",
           "page_number", "paging", "persona_page", "raw_capture", "records_touching",
           "review_page", "search_page", "standing_judgements", "targets_page",
           "wallet_page"]

OPS_LOCK = threading.RLock()
"""Held around every call that writes the workspace (operational reads append to the
audit trail, whose hash chain needs one writer at a time)."""
REVIEW_BAND = (0.2, 0.95)
"""Scores of proposed links the "uncertain" review queue shows (the linker merges at 0.3;
links up to 0.95 still deserve a look), most uncertain first."""
REVIEW_QUEUES = ("learn", "uncertain")
"""The review page's queues: ``learn`` (the default) proposes what ``darkmap review``
proposes, the pairs whose judgement teaches the estimate most, drawn at random within
their stratum; ``uncertain`` lists the scored pairs of :data:`REVIEW_BAND`, those nearest
0.5 first."""
REVIEW_PAGE = 20
"""Pairs the ``learn`` queue proposes at a time (``darkmap review``'s default batch)."""
RAW_CAP = 256 * 1024
"""Bytes of a raw capture shown (as text)."""
SEARCH_PAGE = 50
"""Listings a search page shows (then a link to the next); also the personas a search
lists and, with :data:`FEEDBACK_HITS`, the feedback (each says when more match)."""
FEEDBACK_HITS = 30
"""Feedback a search lists."""
TARGETS_PAGE = 100
"""Targets a page of ``/targets`` ranks."""
CASES_PAGE = 100
"""Records a page of ``/cases`` shows, and the cases a persona page lists at a time."""
LISTINGS_PAGE = 200
"""Listings a persona or account page lists at a time."""
_MAX_PAGE_DIGITS = 6


def page_number(text: str | None, what: str = "page") -> int:
    """The 1-based page a query parameter asks for (none: the first). Anything but a
    positive number in ASCII digits is refused: a page the lists cannot have."""
    if text is None or text == "":
        return 1
    if not (text.isascii() and text.isdigit() and len(text) <= _MAX_PAGE_DIGITS
            and int(text) >= 1):
        raise BadInputError(f"{what} {for_display(text, max_chars=20)!r}: a page number "
                            "(1, 2, ...)")
    return int(text)


def paging(page: int, size: int, total: int, shown: int, what: str = "page"
           ) -> dict[str, int]:
    """Where one page of a list stands, for its "showing N–M of T" line and its
    previous and next links: a page past the last is refused (one that would show
    nothing of a list that has rows)."""
    pages = max(1, -(-total // size))
    if page > pages:
        raise BadInputError(f"{what} {page}: the list has {pages} page"
                            f"{'s' if pages != 1 else ''} of {size}")
    first = (page - 1) * size
    return {"page": page, "pages": pages, "size": size, "total": total,
            "first": first + 1 if shown else 0, "last": first + shown}


def _record(r: Record) -> dict[str, Any]:
    """A record as the pages show it."""
    d = r.as_dict()
    if d["withdrawn"] is not None:
        d["withdrawn"] = {**d["withdrawn"], "at": _utc(d["withdrawn"]["at"])}
    d["data"] = json.dumps(r.row.data, ensure_ascii=False, default=str, sort_keys=True)
    return d


def records_touching(ops: Space, user: UserRow,
                     refs: set[tuple[str, str]]) -> list[dict[str, Any]]:
    """The operational records ``user`` may read that link to any of ``refs``
    (``(kind, id)``); the read is audited by the library. When no record the user may
    read links to them, nothing is read (and nothing audited): whether an entry is
    written depends on the user's grants only."""
    with OPS_LOCK:
        if not store.any_record_links(ops.con, sorted(refs), user.user_id, user.agency_id):
            return []
        recs = api.ops_records(ops, user.user_id)
    out = []
    for r in recs:
        if any(link in refs for link in r.links):
            out.append(_record(r))
    return out


def dashboard(ws: Workspace, ops: Space, user: UserRow) -> dict[str, Any]:
    """The case and operation dashboard: the user's readable records by kind and by
    country (arrests and seizures), top targets (each harm with its mark, from
    :func:`~darkmap.assess.harm.harm_mark`, and what it rests on), deconfliction
    notices."""
    with OPS_LOCK:
        recs = api.ops_records(ops, user.user_id)
        notes = notices(ops, user.user_id)
    by_kind = Counter(r.row.kind for r in recs)
    countries: dict[str, dict[str, int]] = {}
    for r in recs:
        if r.row.kind in ("arrest", "seizure"):
            c = countries.setdefault(r.row.country or "??", {"arrest": 0, "seizure": 0})
            c[r.row.kind] += 1
    try:
        top = api.targets(ws, limit=10)
    except (NotFoundError, WorkspaceStateError):
        top = []
    return {"user": user.user_id, "agency": user.agency_id,
            "records_by_kind": dict(sorted(by_kind.items())),
            "countries": dict(sorted(countries.items())),
            "cases": [_record(r) for r in recs if r.row.kind == "case"],
            "targets": [{"persona_id": t["persona_id"], "label": t["label"],
                         "harm_score": t["harm_score"], "harm_mark": harm_mark(t),
                         "harm_rests_on": t["harm_rests_on"]} for t in top],
            "harm_legend": NO_SALES_LEGEND,
            "notices": [n._asdict() for n in notes]}


def search_page(ws: Workspace, q: str, market: str | None = None,
                drug_class: str | None = None, page: str | None = None) -> dict[str, Any]:
    """Global search: personas by handle, fingerprint, address or contact; listings
    and feedback by free text, :data:`SEARCH_PAGE` listings a page (``page``), with
    facets by market and drug class (each counted within the other's choice)."""
    q = q.strip()[:200]
    n = page_number(page)
    if not q:
        return {"q": q, "market": market, "drug_class": drug_class, "personas": [],
                "more_personas": False, "listings": [], "feedback": [],
                "more_feedback": False, "facets": {}, "listings_paging": paging(n, 1, 0, 0)}
    hits = store.search_listings(ws.con, q, market, drug_class, limit=SEARCH_PAGE,
                                 offset=(n - 1) * SEARCH_PAGE)
    personas = list(api.search_personas(ws, q, limit=SEARCH_PAGE + 1))
    feedback = store.search_feedback(ws.con, q, limit=FEEDBACK_HITS + 1)
    return {"q": q, "market": market, "drug_class": drug_class,
            "personas": personas[:SEARCH_PAGE], "more_personas": len(personas) > SEARCH_PAGE,
            "listings": hits.rows, "facets": hits.facets,
            "listings_paging": paging(n, SEARCH_PAGE, hits.total, len(hits.rows)),
            "feedback": feedback[:FEEDBACK_HITS],
            "more_feedback": len(feedback) > FEEDBACK_HITS}


def persona_page(ws: Workspace, ops: Space, user: UserRow, ref: str,
                 listings_page: str | None = None,
                 cases_page: str | None = None) -> dict[str, Any]:
    """A persona: accounts, identifiers, links with their signals, judgements, listings
    with drugs and doses (:data:`LISTINGS_PAGE` a page), orders and revenue per month,
    wallets, readable cases (:data:`CASES_PAGE` a page)."""
    p: dict[str, Any] = dict(api.show_persona(ws, ref))
    ids = [a["account_id"] for a in p["accounts"]]
    p["listings"], p["listings_paging"] = _listings(ws, ids, listings_page)
    p["pgp_keys"] = store.pgp_keys_of(ws.con, ids)
    p["sales"] = store.persona_sales(ws.con, p["persona_id"])
    peak = max((s["orders_est"] for s in p["sales"]), default=0.0)
    p["sales_peak"] = peak or 1.0
    p["wallets"] = sorted({i["value"] for i in p["identifiers"]
                           if i["kind"] == "btc_address" and i["value"]})
    refs = {("persona", p["persona_id"])} | {("account", a) for a in ids}
    p["cases"], p["cases_paging"] = _page_of(records_touching(ops, user, refs),
                                             page_number(cases_page, "cases_page"),
                                             CASES_PAGE, "cases_page")
    p["judgements"] = _standing(_judgements_over_server(ws, ops, p["judgements"], set(ids))
                                if isinstance(ops, OpsServer)
                                else [_marked(j) for j in p["judgements"]])
    p["left_apart"] = _with_signals(ws, p["left_apart"])
    return p


def _with_signals(ws: Workspace, apart: list[Any]) -> list[dict[str, Any]]:
    """The links left apart of :func:`darkmap.api.show_persona` (docs/linking.md, "Links
    left apart"), each with the signals of its stored link that spoke (``signals``: name
    and log-odds contribution, largest first), as the review page shows a pair's."""
    ends = sorted({x["member"] for x in apart} | {x["other"] for x in apart})
    stored = {(r.a, r.b): r.signals for r in links_between(ws.con, ends)} if ends else {}
    out = []
    for x in apart:
        a, b = sorted((x["member"], x["other"]))
        out.append({**x, "signals": _spoke(stored.get((a, b)))})
    return out


def _spoke(signals: Any) -> list[tuple[str, float | None]]:
    """The signals of a stored link (JSON text or a dict) that moved its score, by the
    size of their contribution: not the model's base log-odds (``_base``)."""
    sig: dict[str, Any] = (json.loads(signals) if isinstance(signals, str)
                           else dict(signals or {}))
    sig.pop("_base", None)
    return sorted(((k, v.get("contribution")) for k, v in sig.items()
                   if isinstance(v, dict) and v.get("contribution")),
                  key=lambda kv: -abs(kv[1] or 0))


def _listings(ws: Workspace, account_ids: list[str], page: str | None
              ) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """One page (``listings_page``) of the accounts' listings, and where it stands."""
    n = page_number(page, "listings_page")
    rows = store.account_listings(ws.con, account_ids, limit=LISTINGS_PAGE,
                                  offset=(n - 1) * LISTINGS_PAGE)
    total = store.count_account_listings(ws.con, account_ids)
    return rows, paging(n, LISTINGS_PAGE, total, len(rows), "listings_page")


def _page_of(rows: list[dict[str, Any]], page: int, size: int, what: str = "page"
             ) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Page ``page`` of ``rows`` (all read: the records a user may read are read and
    audited whole), and where it stands."""
    shown = rows[(page - 1) * size:page * size]
    return shown, paging(page, size, len(rows), len(shown), what)


def _marked(j: Mapping[str, Any], unsynced: bool = False,
            withdrawn_on_server: bool = False) -> dict[str, Any]:
    """A judgement as the persona page lists it, with both marks in either home: the
    page's template is strict, and a mark only the team server set made every persona
    with a judgement a 500 over a workspace (found by an audit)."""
    return {**j, "unsynced": unsynced, "withdrawn_on_server": withdrawn_on_server}


def _utc(value: Any) -> Any:
    """A time as naive UTC (the team server's come with their zone; the workspace's are
    naive UTC already); anything else as it is."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _standing(judgements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The judgements, their times as naive UTC, each marked ``stands``: whether it is
    the latest of its pair (by time; one withdrawn on the team server never is), the
    verdict ``darkmap link`` holds. The others of its pair are superseded by it."""
    out = [{**j, "created_at": _utc(j.get("created_at"))} for j in judgements]
    latest: dict[tuple[str, ...], int] = {}
    for i, j in enumerate(out):
        if j["withdrawn_on_server"] or j["created_at"] is None:
            continue
        key = tuple(sorted((str(j["a"]), str(j["b"]))))
        if key not in latest or j["created_at"] >= out[latest[key]]["created_at"]:
            latest[key] = i
    return [{**j, "stands": i in latest.values()} for i, j in enumerate(out)]


def _judgements_over_server(ws: Workspace, ops: OpsServer, held: list[dict[str, Any]],
                            ids: set[str]) -> list[dict[str, Any]]:
    """The persona's judgements as the next ``darkmap team sync`` leaves them, marked:
    the workspace's (``held``), each withdrawn on the team server marked
    ``withdrawn_on_server``, then the server's standing ones touching ``ids`` that the
    read-only workspace does not hold yet, oldest first, marked ``unsynced`` (a verdict
    just given on the review page shows on the persona at once)."""
    with OPS_LOCK:
        shared = team_judgements(ops.con)
    pending = awaiting_sync(ws, shared, ids)
    return [*(_marked(j, withdrawn_on_server=j.get("judgement_id") in pending.withdrawn)
              for j in held),
            *(_marked({"a": r[1], "b": r[2], "verdict": r[3], "author": r[4],
                       "note": r[5], "created_at": r[6], "judgement_id": r[0]},
                      unsynced=True)
              for r in pending.new)]


def account_page(ws: Workspace, ops: Space, user: UserRow, account_id: str,
                 listings_page: str | None = None) -> dict[str, Any]:
    """An account: what the captures showed, its listings (:data:`LISTINGS_PAGE` a
    page), identifiers and feedback."""
    head = store.account_head(ws.con, account_id)
    if head is None:
        raise NotFoundError(f"no account {account_id!r}")
    listings, listings_paging = _listings(ws, [account_id], listings_page)
    return {"account": head,
            "observations": store.account_observations(ws.con, account_id),
            "listings": listings, "listings_paging": listings_paging,
            "identifiers": store.identifiers_of_accounts(ws.con, [account_id]),
            "pgp_keys": store.pgp_keys_of(ws.con, [account_id]),
            "feedback": store.feedback_of(ws.con, "account_id", account_id),
            "cases": records_touching(ops, user, {("account", account_id)})}


def listing_page(ws: Workspace, ops: Space, user: UserRow, listing_id: str) -> dict[str, Any]:
    """A listing: its observations with their captures, assessment and feedback."""
    head = store.listing_head(ws.con, listing_id)
    if head is None:
        raise NotFoundError(f"no listing {listing_id!r}")
    return {"listing": head,
            "observations": store.listing_observations(ws.con, listing_id),
            "feedback": store.feedback_of(ws.con, "listing_id", listing_id),
            "cases": records_touching(ops, user, {("listing", listing_id)})}


def raw_capture(ws: Workspace, sha256: str) -> dict[str, Any]:
    """A capture's bytes decoded as text (never as markup), cut at :data:`RAW_CAP`."""
    if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
        raise NotFoundError(f"no capture {sha256!r}")
    if sha256 not in ws.captures:
        raise NotFoundError(f"no capture {sha256}")
    data = ws.captures.read_bytes(sha256)
    return {"sha256": sha256, "size": len(data), "cut": len(data) > RAW_CAP,
            "text": data[:RAW_CAP].decode("utf-8", errors="replace")}


def targets_page(ws: Workspace, country: str | None = None,
                 page: str | None = None) -> dict[str, Any]:
    """The harm-ranked target list, :data:`TARGETS_PAGE` a page, each with its rank and
    its harm's mark (:func:`~darkmap.assess.harm.harm_mark`), and what the mark means.
    ``country`` is checked as ``darkmap targets --country`` checks it (a name such as
    "Germany" is refused with the code meant: it matched no persona and read as "none")."""
    n = page_number(page)
    country = check_country(country) if country else None
    ranked = [{**t, "rank": i, "harm_mark": harm_mark(t)} for i, t in
              enumerate(api.targets(ws, country=country, limit=None), start=1)]
    rows, where = _page_of(ranked, n, TARGETS_PAGE)
    return {"country": country, "targets": rows, "paging": where,
            "harm_legend": NO_SALES_LEGEND}


def review_page(ws: Workspace, queue: str = "learn", ops: Space | None = None
                ) -> dict[str, Any]:
    """Proposed links to confirm or reject, from one of :data:`REVIEW_QUEUES`, and what
    the standing judgements say of the linking. Over a team server (``ops``), where the
    workbench's verdicts go, the standing judgements are the workspace's and the
    server's together (:func:`standing_judgements`)."""
    if queue not in REVIEW_QUEUES:
        raise BadInputError(f"no review queue {for_display(queue, max_chars=40)!r} (the "
                            f"queues: {', '.join(REVIEW_QUEUES)})")
    judged = standing_judgements(ws, ops)
    if queue == "learn":
        rows = [{"a": q.a, "b": q.b, "score": q.score, "merged": q.merged,
                 "stratum": q.stratum, "signals": q.evidence}
                for q in review_queue(ws, n=REVIEW_PAGE, judgements=judged)]
    else:
        rows = _uncertain(ws, judged if isinstance(ops, OpsServer) else None)
    apart = [{"a": q.a, "b": q.b, "score": q.score, "stratum": q.stratum,
              "signals": q.evidence}
             for q in left_apart_queue(ws, n=REVIEW_PAGE, judgements=judged)]
    return {"queue": queue, "band": REVIEW_BAND, "links": rows, "left_apart": apart,
            "estimate": _estimate(ws, judged)}


def standing_judgements(ws: Workspace, ops: Space | None) -> dict[tuple[str, str], str]:
    """The standing verdict of every judged pair as the review page counts it: the
    workspace's, and over a team server (``ops``) the server's too, as they will stand
    after the next ``darkmap team sync`` (a verdict given here is on the server at once,
    in the workspace only then)."""
    if not isinstance(ops, OpsServer):
        return active_judgements(ws)
    with OPS_LOCK:
        shared = team_judgements(ops.con)
    return standing_with(ws, shared)


REVIEW_LIMIT = 50
"""Links the ``uncertain`` queue lists."""


def _uncertain(ws: Workspace, judged: Mapping[tuple[str, str], str] | None
               ) -> list[dict[str, Any]]:
    """The unjudged links of :data:`REVIEW_BAND`, nearest 0.5 first, their signals by the
    size of their contribution. The workspace's judgements are left out by the query;
    ``judged`` are those of the team server too (None: none)."""
    judged = judged or {}
    rows = [r for r in store.review_queue(ws.con, *REVIEW_BAND,
                                          limit=REVIEW_LIMIT + len(judged))
            if (r["a"], r["b"]) not in judged][:REVIEW_LIMIT]
    for r in rows:
        sig: dict[str, Any] = (json.loads(r["signals"]) if isinstance(r["signals"], str)
                               else dict(r["signals"] or {}))
        sig.pop("_base", None)
        r["signals"] = sorted(((k, v.get("contribution")) for k, v in sig.items()),
                              key=lambda kv: -abs(kv[1] or 0))
        r["stratum"] = None
    return rows


def _estimate(ws: Workspace, judged: Mapping[tuple[str, str], str]
              ) -> dict[str, Any] | None:
    """What the standing judgements (``judged``) say of the linking (``darkmap review
    --estimate``), or None before the first judgement (then without the estimate's
    draws)."""
    if not judged:
        return None
    est = judged_estimate(ws, judgements=judged)
    if not est.judged:  # judgements, but none of the last link run's pairs
        return None
    return {**est.as_dict(), "as_judged": est.calibration.as_judged()}


def wallet_page(ws: Workspace, ident: str) -> dict[str, Any]:
    """A wallet cluster: addresses, why merged, flows, counterparties and cash-outs
    (``unclustered`` false). A Bitcoin address in no cluster that the workspace holds
    tags on or that an account published (a vendor's address no loaded block pays) is
    shown with those (``unclustered`` true): the persona page links every address a
    vendor published, and those links were dead (found by an audit)."""
    try:
        return {**api.wallet(ws, ident, limit=50), "unclustered": False}
    except NotFoundError:
        address = clean_btc_address(ident.strip())
        if address is None:
            raise
        known = store.address_evidence(ws.con, address)
        if not (known["tags"] or known["linked_accounts"]):
            raise
        return {"unclustered": True, "address": address, **known}


def cases_page(ops: Space, user: UserRow, kind: str | None = None,
               page: str | None = None) -> dict[str, Any]:
    """The operational records the user may read (audited), :data:`CASES_PAGE` a page,
    of one of :data:`~darkmap.ops.vocabulary.RECORD_KINDS` (another kind is refused, as
    an unknown review queue is: it read as "none"). Withdrawn records are listed too,
    each with its ``withdrawn`` (by, at, why, replaced_by), as ``darkmap ops show`` lists
    them (they were left out without a word), and counted (``withdrawn``)."""
    if kind is not None and kind not in RECORD_KINDS:
        raise BadInputError(f"no record kind {for_display(kind, max_chars=40)!r} (the "
                            f"kinds: {', '.join(RECORD_KINDS)})")
    n = page_number(page)
    with OPS_LOCK:
        recs = api.ops_records(ops, user.user_id, kind=kind, withdrawn=True)
    rows, where = _page_of([_record(r) for r in recs], n, CASES_PAGE)
    return {"kind": kind, "records": rows, "paging": where,
            "withdrawn": sum(r.withdrawal is not None for r in recs)}


GRAPH_LABEL_CHARS = 120
"""Longest node label of the link chart."""


def _node(kind: str, ref: str, label: str | None = None) -> dict[str, Any]:
    """A graph node: its id exact (the chart expands it by id), its label, drawn on a
    canvas where a right-to-left override would reorder it, with control and bidi
    characters shown as escapes and cut; an account's (or a persona's label) that may
    print like a name it is not ends in its mark, given apart too (``mark``: canvas
    text holds no badge)."""
    mark = (lookalike_mark(ref) if kind == "account" else
            lookalike_mark(label, account_id=False) if kind == "persona" and label else "")
    shown = for_display(label or ref, max_chars=GRAPH_LABEL_CHARS)
    return {"data": {"id": f"{kind}:{ref}", "kind": kind, "mark": mark,
                     "label": f"{shown} {mark}" if mark else shown}}


def _edge(a: str, b: str, kind: str) -> dict[str, Any]:
    """A graph edge."""
    return {"data": {"id": f"{a}|{b}|{kind}", "source": a, "target": b, "kind": kind}}


Elements = tuple[list[dict[str, Any]], list[dict[str, Any]]]
"""Nodes and edges of one expansion."""


def graph_expand(ws: Workspace, ops: Space, user: UserRow, node: str) -> dict[str, Any]:
    """The neighbours of one node of the link chart (``persona:ID``, ``account:ID``,
    ``listing:ID``, ``case:RECORD`` (any operational record: a case, buy, seizure...),
    ``pgp_fingerprint:FPR``, ``btc_address:ADDR``, ...): nodes and edges, each edge of a
    kind (member, identifier, case) so the chart can filter by evidence kind."""
    kind, _, ref = node.partition(":")
    if kind == "persona":
        nodes, edges = _expand_persona(ws, ops, user, ref)
    elif kind == "account":
        nodes, edges = _expand_account(ws, ops, user, ref)
    elif kind == "listing":
        nodes, edges = _expand_listing(ws, ops, user, ref)
    elif kind == "case":
        nodes, edges = _expand_record(ops, user, ref)
    else:
        nodes, edges = _expand_identifier(ws, node, kind, ref)
    uniq: dict[str, dict[str, Any]] = {}
    for n in nodes:
        uniq.setdefault(n["data"]["id"], n)
    return {"node": node, "elements": [*uniq.values(), *edges]}


def _case_elements(ops: Space, user: UserRow, at: str,
                   refs: set[tuple[str, str]]) -> Elements:
    """The records ``user`` may read that link to ``refs``, as case nodes joined to the
    node ``at`` (read and audited only when there are such records)."""
    recs = records_touching(ops, user, refs)
    return ([_node("case", r["record_id"], f"{r['kind']} {r['record_id']}") for r in recs],
            [_edge(at, f"case:{r['record_id']}", "case") for r in recs])


def _expand_persona(ws: Workspace, ops: Space, user: UserRow, ref: str) -> Elements:
    """A persona: its accounts and the readable records linked to it or them."""
    p = api.show_persona(ws, ref)
    pid = f"persona:{p['persona_id']}"
    nodes = [_node("persona", p["persona_id"], p["label"])]
    edges = []
    for a in p["accounts"]:
        nodes.append(_node("account", a["account_id"], a["account_id"]))
        edges.append(_edge(pid, f"account:{a['account_id']}", "member"))
    refs = {("persona", p["persona_id"])} | {("account", a["account_id"])
                                             for a in p["accounts"]}
    cases, case_edges = _case_elements(ops, user, pid, refs)
    return nodes + cases, edges + case_edges


def _expand_account(ws: Workspace, ops: Space, user: UserRow, ref: str) -> Elements:
    """An account: its persona, the identifiers it published (up to 60) and the readable
    records linked to it."""
    head = store.account_head(ws.con, ref)
    if head is None:
        raise NotFoundError(f"no account {ref!r}")
    aid = f"account:{ref}"
    nodes = [_node("account", ref)]
    edges = []
    if head["persona_id"]:
        nodes.append(_node("persona", head["persona_id"]))
        edges.append(_edge(f"persona:{head['persona_id']}", aid, "member"))
    for i in store.identifiers_of_accounts(ws.con, [ref])[:60]:
        nodes.append(_node(i["kind"], i["value"]))
        edges.append(_edge(aid, f"{i['kind']}:{i['value']}", "identifier"))
    cases, case_edges = _case_elements(ops, user, aid, {("account", ref)})
    return nodes + cases, edges + case_edges


def _expand_listing(ws: Workspace, ops: Space, user: UserRow, ref: str) -> Elements:
    """A listing: the account that sells it and the readable records linked to it (a
    buy's listing is drawn by a case node's expansion)."""
    head = store.listing_head(ws.con, ref)
    if head is None:
        raise NotFoundError(f"no listing {ref!r}")
    lid = f"listing:{ref}"
    nodes = [_node("listing", ref)]
    edges = []
    if head["account_id"]:
        nodes.append(_node("account", head["account_id"]))
        edges.append(_edge(f"account:{head['account_id']}", lid, "member"))
    cases, case_edges = _case_elements(ops, user, lid, {("listing", ref)})
    return nodes + cases, edges + case_edges


def _link_node(kind: str, ref: str) -> str:
    """The chart's node kind of an operational record's link: an ``address`` link is
    the chart's ``btc_address`` or ``xmr_address`` (the identifiers' kinds), so it
    meets the accounts that published it."""
    if kind != "address":
        return kind
    return "btc_address" if clean_btc_address(ref) else "xmr_address"


def _expand_record(ops: Space, user: UserRow, ref: str) -> Elements:
    """An operational record (drawn as a ``case`` node whatever its kind): the personas,
    accounts, listings, wallets and addresses it links, as ``user`` may see them. A
    record ``user`` may not read answers exactly as one that does not exist (the
    library's NotFoundError; both reads audited). A withdrawn record is labelled so."""
    with OPS_LOCK:
        rec = show_record(ops, user.user_id, ref)
    cid = f"case:{ref}"
    # a withdrawn record (`ops withdraw`) is still drawn, marked: nothing disappears
    gone = f" (withdrawn by {rec.withdrawal.withdrawn_by})" if rec.withdrawal else ""
    nodes = [_node("case", ref, f"{rec.row.kind} {ref}{gone}")]
    edges = []
    for kind, target in rec.links:
        nk = _link_node(kind, target)
        nodes.append(_node(nk, target))
        edges.append(_edge(cid, f"{nk}:{target}", "case"))
    return nodes, edges


def _expand_identifier(ws: Workspace, node: str, kind: str, ref: str) -> Elements:
    """An identifier (``pgp_fingerprint``, ``btc_address``, ...): the accounts that
    published it."""
    holders = store.identifier_holders(ws.con, kind, ref)
    if not holders:
        raise NotFoundError(f"no identifier {node!r}")
    return ([_node(kind, ref), *(_node("account", h) for h in holders)],
            [_edge(f"account:{h}", node, "identifier") for h in holders])
