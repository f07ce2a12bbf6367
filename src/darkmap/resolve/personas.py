"""Reading personas back: show one with its evidence, search by handle or identifier."""

from __future__ import annotations

import json
from typing import Any

from darkmap.resolve.normalise import handle_key
from darkmap.store.workspace import Workspace

__all__ = ["persona_of", "search_personas", "show_persona"]


def persona_of(ws: Workspace, ref: str) -> str | None:
    """The persona id for a persona id or an account id, or None."""
    row = ws.con.execute("SELECT persona_id FROM personas WHERE persona_id = ?",
                         [ref]).fetchone()
    if row:
        return str(row[0])
    row = ws.con.execute("SELECT persona_id FROM persona_members WHERE account_id = ?",
                         [ref.strip().casefold() if ":" in ref else ref]).fetchone()
    return str(row[0]) if row else None


def show_persona(ws: Workspace, ref: str) -> dict[str, Any]:
    """A persona's accounts, markets, active periods, identifiers and links with why."""
    pid = persona_of(ws, ref)
    if pid is None:
        raise KeyError(f"no persona or account {ref!r} (run `darkmap link` first?)")
    con = ws.con
    head = con.execute(
        "SELECT persona_id, label, n_accounts, n_markets, first_seen, last_seen, cohesion,"
        " run_id FROM personas WHERE persona_id = ?", [pid]).fetchone()
    members = con.execute("""
        SELECT a.account_id, a.market_id, a.handle, a.role,
               (SELECT min(t) FROM (SELECT joined_at t FROM account_observations o
                    WHERE o.account_id = a.account_id UNION ALL
                    SELECT observed_at FROM listing_observations l
                    WHERE l.account_id = a.account_id UNION ALL
                    SELECT left_at FROM feedback f WHERE f.account_id = a.account_id)),
               (SELECT max(t) FROM (SELECT last_seen_at t FROM account_observations o
                    WHERE o.account_id = a.account_id UNION ALL
                    SELECT observed_at FROM listing_observations l
                    WHERE l.account_id = a.account_id UNION ALL
                    SELECT left_at FROM feedback f WHERE f.account_id = a.account_id)),
               (SELECT count(*) FROM listings l WHERE l.account_id = a.account_id)
        FROM persona_members m JOIN accounts a USING (account_id)
        WHERE m.persona_id = ? ORDER BY a.market_id, a.handle""", [pid]).fetchall()
    ids = [m[0] for m in members]
    idents = con.execute("""
        SELECT DISTINCT coalesce(i.account_id, l.account_id) aid, i.kind, i.value
        FROM identifiers i LEFT JOIN listings l ON i.listing_id = l.listing_id
        WHERE coalesce(i.account_id, l.account_id) IN (SELECT unnest(?::VARCHAR[]))
        ORDER BY kind, value""", [ids]).fetchall()
    by_value: dict[tuple[str, str], list[str]] = {}
    for aid, kind, value in idents:
        by_value.setdefault((kind, value), []).append(aid)
    links = con.execute("""
        SELECT a, b, score, signals, method, merged FROM account_links
        WHERE a IN (SELECT unnest(?::VARCHAR[])) AND b IN (SELECT unnest(?::VARCHAR[]))
        ORDER BY score DESC""", [ids, ids]).fetchall()
    judged = con.execute("""
        SELECT a, b, verdict, author, note, created_at FROM judgements
        WHERE withdrawn_at IS NULL AND (a IN (SELECT unnest(?::VARCHAR[]))
              OR b IN (SELECT unnest(?::VARCHAR[]))) ORDER BY created_at""",
        [ids, ids]).fetchall()
    return {
        "persona_id": pid, "label": head[1], "n_accounts": head[2], "n_markets": head[3],
        "first_seen": head[4], "last_seen": head[5], "cohesion": head[6], "run_id": head[7],
        "accounts": [{"account_id": m[0], "market": m[1], "handle": m[2], "role": m[3],
                      "active_from": m[4], "active_to": m[5], "listings": m[6]}
                     for m in members],
        "identifiers": [{"kind": k, "value": v, "accounts": sorted(a)}
                        for (k, v), a in by_value.items()],
        "links": [_link_row(r) for r in links],
        "judgements": [{"a": r[0], "b": r[1], "verdict": r[2], "author": r[3], "note": r[4],
                        "created_at": r[5]} for r in judged],
    }


def _link_row(r: tuple[Any, ...]) -> dict[str, Any]:
    signals = json.loads(r[3]) if isinstance(r[3], str) else r[3]
    base = signals.pop("_base", {}).get("contribution")
    why = sorted(({"signal": s, **v} for s, v in signals.items()),
                 key=lambda x: -abs(x.get("contribution") or 0))
    return {"a": r[0], "b": r[1], "score": r[2], "method": r[4], "merged": r[5],
            "base_log_odds": base, "signals": why}


def search_personas(ws: Workspace, text: str, limit: int = 50) -> list[dict[str, Any]]:
    """Personas whose accounts match ``text``: handle, handle fragment, account id,
    normalised handle, PGP fingerprint (or its tail), address or contact."""
    q = text.strip()
    if not q:
        return []
    like = f"%{q.casefold()}%"
    key = handle_key(q)
    compact = q.replace(" ", "").casefold()
    rows = ws.con.execute("""
        WITH hits AS (
          SELECT account_id, 'handle' AS matched, handle AS value FROM accounts
            WHERE lower(handle) LIKE ? OR account_id = ?
          UNION ALL
          SELECT coalesce(i.account_id, l.account_id), i.kind, i.value
            FROM identifiers i LEFT JOIN listings l ON i.listing_id = l.listing_id
            WHERE lower(replace(i.value, ' ', '')) LIKE ?
        )
        SELECT m.persona_id, p.label, p.n_accounts, p.n_markets, h.account_id, h.matched,
               h.value
        FROM hits h JOIN persona_members m USING (account_id)
        JOIN personas p USING (persona_id)
        WHERE h.account_id IS NOT NULL
        ORDER BY p.n_accounts DESC, m.persona_id LIMIT ?""",
        [like, q.casefold(), f"%{compact}%", limit * 5]).fetchall()
    if key and len(key) >= 3:
        rows += _by_key(ws, key, limit)
    out: dict[str, dict[str, Any]] = {}
    for pid, label, n, nm, aid, matched, value in rows:
        d = out.setdefault(pid, {"persona_id": pid, "label": label, "n_accounts": n,
                                 "n_markets": nm, "matches": []})
        hit = {"account_id": aid, "matched": matched, "value": value}
        if hit not in d["matches"]:
            d["matches"].append(hit)
    return list(out.values())[:limit]


def _by_key(ws: Workspace, key: str, limit: int) -> list[tuple[Any, ...]]:
    rows = ws.con.execute(
        "SELECT m.persona_id, p.label, p.n_accounts, p.n_markets, a.account_id, a.handle"
        " FROM accounts a JOIN persona_members m USING (account_id)"
        " JOIN personas p USING (persona_id)").fetchall()
    return [(r[0], r[1], r[2], r[3], r[4], "normalised handle", r[5]) for r in rows
            if handle_key(r[5]) == key][:limit]
