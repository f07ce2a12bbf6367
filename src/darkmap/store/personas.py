"""Which persona each account belongs to (every account is its own persona by default).

Personas are built by ``darkmap link`` (tables ``personas`` / ``persona_members``). When
those tables are missing or empty, or an account is not a member of any persona, the
account stands alone and its persona id is its account id.
"""

from __future__ import annotations

from typing import Any

from darkmap.store.workspace import table_has_rows

__all__ = ["persona_labels", "persona_map"]


def persona_map(con: Any) -> dict[str, str]:
    """account_id -> persona_id for every account in the store."""
    accounts = [r[0] for r in con.execute("SELECT account_id FROM accounts").fetchall()]
    accounts += [r[0] for r in con.execute(
        "SELECT DISTINCT account_id FROM listing_observations WHERE account_id IS NOT NULL"
    ).fetchall()]
    out = {a: a for a in accounts}
    if table_has_rows(con, "persona_members"):
        for pid, aid in con.execute("SELECT persona_id, account_id FROM persona_members").fetchall():
            out[aid] = pid
    return out


def persona_labels(con: Any) -> dict[str, str]:
    """persona_id -> label (the personas table's label, else the account handle)."""
    out = {aid: handle for aid, handle in con.execute(
        "SELECT account_id, handle FROM accounts").fetchall()}
    if table_has_rows(con, "personas"):
        for pid, label in con.execute("SELECT persona_id, label FROM personas").fetchall():
            if label:
                out[pid] = label
    return out
