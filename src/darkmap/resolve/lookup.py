"""Reading personas back: show one with its evidence, search by handle or identifier."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, TypedDict, cast

from darkmap.errors import NotFoundError
from darkmap.model.display import for_display, shell_arg
from darkmap.resolve.changes import PersonaChange
from darkmap.resolve.normalise import handle_key
from darkmap.resolve.options import DEFAULT_THRESHOLD
from darkmap.store.evidence import identifiers_of
from darkmap.store.personas import (
    LinkRow,
    PersonaHitRow,
    judgements_touching,
    last_run_id,
    links_between,
    links_left_apart,
    member_accounts,
    persona_changes,
    persona_head,
    persona_id_of,
    persona_rows_with_handles,
    run_options,
    search_persona_rows,
)
from darkmap.store.workspace import Workspace, table_has_rows

__all__ = ["IdentifierHolders", "JudgementView", "LeftApart", "LinkExplanation", "MemberAccount",
           "PersonaDetail", "PersonaHit", "PersonaMatch", "SignalWhy", "left_apart",
           "not_found_message", "persona_of", "search_personas", "show_persona"]


class MemberAccount(TypedDict):
    """A member account of a persona."""

    account_id: str
    market: str
    handle: str | None
    role: str | None
    active_from: datetime | None
    active_to: datetime | None
    listings: int


class IdentifierHolders(TypedDict):
    """An identifier and the persona's accounts that show it."""

    kind: str
    value: str | None
    accounts: list[str]


class SignalWhy(TypedDict, total=False):
    """One signal of a link: stored value, level and log-odds contribution."""

    signal: str
    value: float | None
    level: str
    contribution: float
    claims: list[str]  # a shared contact resting on claims: each in full (resolve.claims)


class LinkExplanation(TypedDict):
    """A stored link with its signals, largest contribution first."""

    a: str
    b: str
    score: float
    method: str
    merged: bool | None
    base_log_odds: float | None
    signals: list[SignalWhy]


class LeftApart(TypedDict):
    """A stored link from a member to an account outside the persona that scored at or
    above the run's merge threshold and was not merged, and why the clustering kept the
    two apart: a lead (docs/linking.md, "Links left apart")."""

    member: str
    other: str
    other_persona: str | None
    score: float
    why: str


class JudgementView(TypedDict):
    """A standing analyst judgement on a pair."""

    a: str
    b: str
    verdict: str
    author: str
    note: str | None
    created_at: datetime
    judgement_id: str


class PersonaDetail(TypedDict):
    """What ``darkmap persona show`` prints (:func:`show_persona`)."""

    persona_id: str
    label: str | None
    n_accounts: int
    n_markets: int | None
    first_seen: datetime | None
    last_seen: datetime | None
    cohesion: float | None
    run_id: str | None
    accounts: list[MemberAccount]
    identifiers: list[IdentifierHolders]
    links: list[LinkExplanation]
    left_apart: list[LeftApart]
    """Stored links to accounts outside the persona at or above the merge threshold."""
    judgements: list[JudgementView]
    changed_in_last_run: list[PersonaChange]
    """What the link run that made this persona changed in it (empty: unchanged, or
    the first run): docs/linking.md, "What a run changed"."""


class PersonaMatch(TypedDict):
    """Why a persona matched a search: which account, on what, with which value."""

    account_id: str
    matched: str
    value: str | None


class PersonaHit(TypedDict):
    """A persona found by :func:`search_personas`."""

    persona_id: str
    label: str | None
    n_accounts: int
    n_markets: int | None
    matches: list[PersonaMatch]


def persona_of(ws: Workspace, ref: str) -> str | None:
    """The persona id for a persona id or an account id, or None."""
    return persona_id_of(ws.con, ref)


def show_persona(ws: Workspace, ref: str) -> PersonaDetail:
    """A persona's accounts, markets, active periods, identifiers and links with why.

    Raises :class:`~darkmap.errors.NotFoundError` when ``ref`` is neither a persona nor
    a member account; its message says what to give instead (:func:`not_found_message`).
    """
    pid = persona_of(ws, ref)
    head = persona_head(ws.con, pid) if pid is not None else None
    if head is None:
        raise NotFoundError(not_found_message(ws, ref))
    members = member_accounts(ws.con, head.persona_id)
    ids = [m.account_id for m in members]
    by_value: dict[tuple[str, str | None], list[str]] = {}
    for aid, kind, value in identifiers_of(ws.con, ids):
        by_value.setdefault((kind, value), []).append(aid)
    return {
        "persona_id": head.persona_id, "label": head.label, "n_accounts": head.n_accounts,
        "n_markets": head.n_markets, "first_seen": head.first_seen,
        "last_seen": head.last_seen, "cohesion": head.cohesion, "run_id": head.run_id,
        "accounts": [{"account_id": m.account_id, "market": m.market_id, "handle": m.handle,
                      "role": m.role, "active_from": m.active_from, "active_to": m.active_to,
                      "listings": m.listings} for m in members],
        "identifiers": [{"kind": k, "value": v, "accounts": sorted(a)}
                        for (k, v), a in by_value.items()],
        "links": [_explain(r) for r in links_between(ws.con, ids)],
        "left_apart": left_apart(ws, ids, head.run_id),
        "judgements": [{"a": j.a, "b": j.b, "verdict": j.verdict, "author": j.author,
                        "note": j.note, "created_at": j.created_at,
                        "judgement_id": j.judgement_id}
                       for j in judgements_touching(ws.con, ids)],
        "changed_in_last_run": _changes(ws, head.run_id, head.persona_id, "after"),
    }


def left_apart(ws: Workspace, ids: list[str], run_id: str | None) -> list[LeftApart]:
    """The stored links from ``ids`` (a persona's accounts) to accounts outside it that
    scored at or above run ``run_id``'s merge threshold and were not merged, each with
    the pairs between the two personas that weigh against joining them."""
    opts = run_options(ws.con, run_id) if run_id else {}
    threshold = float(opts.get("threshold", DEFAULT_THRESHOLD))
    store_min = float(opts.get("store_min", 0.1))
    mine = set(ids)
    out: list[LeftApart] = []
    for r in links_left_apart(ws.con, ids, threshold):
        member, other = (r.a, r.b) if r.a in mine else (r.b, r.a)
        opid = persona_of(ws, other)
        others = [m.account_id for m in member_accounts(ws.con, opid)] if opid else []
        why = _why_apart(ws, ids, others or [other], (member, other), threshold, store_min)
        out.append({"member": member, "other": other, "other_persona": opid,
                    "score": r.score, "why": why})
    return out


def _why_apart(ws: Workspace, ids: list[str], others: list[str], link: tuple[str, str],
               threshold: float, store_min: float, most: int = 3) -> str:
    """Why the clustering left ``link`` apart: the pairs between the two personas'
    accounts (``ids``, ``others``) that weigh against a merge, judged different first,
    then those without a stored link, then those below ``threshold``, lowest first."""
    stored = {(x.a, x.b): x.score for x in links_between(ws.con, [*ids, *others])}
    different = {(j.a, j.b) for j in judgements_touching(ws.con, ids)
                 if j.verdict == "different"}
    weigh: list[tuple[int, float, str]] = []
    for x in ids:
        for y in others:
            if (x, y) == link:
                continue
            key = (min(x, y), max(x, y))
            score = stored.get(key)
            if key in different or key[::-1] in different:
                weigh.append((0, 0.0, f"{x} ~ {y} was judged different"))
            elif score is None:
                said = (f"the pair {x} ~ {y} has no evidence (no stored link: p under "
                        f"{store_min:g} or never compared)")
                weigh.append((1, 0.0, said))
            elif score < threshold:
                weigh.append((2, score, f"the pair {x} ~ {y} scores p={score:.3f}"))
    if not weigh:
        return ("kept apart by the clustering: no other pair between the two personas "
                "weighs against; a pair whose own evidence is against a match may stand "
                "between them through others")
    weigh.sort()
    more = f"; and {len(weigh) - most} more" if len(weigh) > most else ""
    return "kept apart by the clustering: " + "; ".join(w for _, _, w in weigh[:most]) + more


def _changes(ws: Workspace, run_id: str | None, persona_id: str,
             side: str) -> list[PersonaChange]:
    """The changes of ``run_id`` with ``persona_id`` on ``side`` (stored as JSON)."""
    if run_id is None:
        return []
    return [json.loads(c) for c in persona_changes(ws.con, run_id, persona_id, side)]


def not_found_message(ws: Workspace, ref: str) -> str:
    """Why ``ref`` names no persona, and what to give instead: before `darkmap link` the
    command to run; after it the personas a search for ``ref`` finds (a handle such as
    ``KingOpi``, as `darkmap targets` prints it, is neither a persona id nor an account
    id), with their ids to paste, else the search command."""
    if not table_has_rows(ws.con, "personas"):
        return (f"no persona or account {ref!r}: the workspace has no personas yet "
                "(run `darkmap link` first)")
    gone = _changes(ws, last_run_id(ws.con), ref.strip(), "before")
    if gone:
        now = ", ".join(p["persona_id"] for c in gone for p in c["after"])
        return (f"persona {ref!r} is gone: the last link run made it part of {now} "
                f"({gone[0]['kind']}); `darkmap persona show` one of those")
    msg = (f"no persona or account {ref!r}: give a persona id (p-...) or an account id "
           "(market:handle)")
    hits = search_personas(ws, ref, limit=4)
    if not hits:
        return msg + "; `darkmap persona search TEXT` finds one by handle, key or address"
    found = ", ".join(f"{h['persona_id']} ({for_display(h['label'] or '', max_chars=30)})"
                      for h in hits[:3])
    more = (f" and more (`darkmap persona search {shell_arg(ref)}`)" if len(hits) > 3
            else "")
    return f"{msg}; {ref!r} matches {found}{more}"


def _explain(r: LinkRow) -> LinkExplanation:
    """A link with its signals sorted by the size of their contribution."""
    signals: dict[str, Any] = json.loads(r.signals) if isinstance(r.signals, str) else r.signals
    base = signals.pop("_base", {}).get("contribution")
    why = sorted((cast(SignalWhy, {"signal": s, **v}) for s, v in signals.items()),
                 key=lambda x: -abs(x.get("contribution") or 0))
    return {"a": r.a, "b": r.b, "score": r.score, "method": r.method, "merged": r.merged,
            "base_log_odds": base, "signals": why}


def search_personas(ws: Workspace, text: str, limit: int = 50) -> list[PersonaHit]:
    """Personas whose accounts match ``text``: handle, handle fragment, account id,
    normalised handle, PGP fingerprint (or its tail), address or contact."""
    q = text.strip()
    if not q:
        return []
    key = handle_key(q)
    # handles and identifiers are lowered by the database, as the data are (casefold()
    # here made q=ß look for "ss"); an account id is market:handle case-folded
    rows = search_persona_rows(ws.con, q, q.casefold(), q.replace(" ", ""), limit * 5)
    if key and len(key) >= 3:
        rows += _by_key(ws, key, limit)
    out: dict[str, PersonaHit] = {}
    for pid, label, n, nm, aid, matched, value in rows:
        d = out.setdefault(pid, {"persona_id": pid, "label": label, "n_accounts": n,
                                 "n_markets": nm, "matches": []})
        hit: PersonaMatch = {"account_id": aid, "matched": matched, "value": value}
        if hit not in d["matches"]:
            d["matches"].append(hit)
    return list(out.values())[:limit]


def _by_key(ws: Workspace, key: str, limit: int) -> list[PersonaHitRow]:
    """Member accounts whose normalised handle is ``key``."""
    rows: list[PersonaHitRow] = [(r[0], r[1], r[2], r[3], r[4], "normalised handle", r[5])
                                 for r in persona_rows_with_handles(ws.con)
                                 if handle_key(r[5]) == key]
    return rows[:limit]
