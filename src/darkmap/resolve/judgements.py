"""Analyst judgements on account pairs: same, different or unsure, with author and time.

Judgements are never deleted: withdrawing one stamps ``withdrawn_at``. The linker reads
the latest standing judgement of each pair as a hard constraint.
"""

from __future__ import annotations

import getpass
import os

from darkmap.store.writer import row_id
from darkmap.store.workspace import Workspace, utcnow

__all__ = ["VERDICTS", "active_judgements", "judge", "ordered", "withdraw"]

VERDICTS = ("same", "different", "unsure")


def ordered(a: str, b: str) -> tuple[str, str]:
    """A pair in canonical order (``a < b``)."""
    return (a, b) if a <= b else (b, a)


def _default_author() -> str:
    try:
        return os.environ.get("USER") or getpass.getuser() or "unknown"
    except Exception:  # getpass fails without a passwd entry
        return "unknown"


def _check_account(ws: Workspace, aid: str) -> None:
    if not ws.con.execute("SELECT 1 FROM accounts WHERE account_id = ?", [aid]).fetchone():
        raise KeyError(f"no account {aid!r} in this workspace (ids look like market:handle)")


def judge(ws: Workspace, a: str, b: str, verdict: str, author: str | None = None,
          note: str | None = None) -> dict[str, object]:
    """Record a verdict on accounts ``a`` and ``b``; earlier standing ones are superseded."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, not {verdict!r}")
    if a == b:
        raise ValueError("a judgement needs two different accounts")
    _check_account(ws, a)
    _check_account(ws, b)
    a, b = ordered(a, b)
    now = utcnow()
    author = author or _default_author()
    jid = row_id("judgement", a, b, verdict, author, now.isoformat())
    ws.con.execute(
        "INSERT INTO judgements VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
        [jid, a, b, verdict, author, note, now])
    return {"judgement_id": jid, "a": a, "b": b, "verdict": verdict, "author": author,
            "note": note, "created_at": now.isoformat()}


def withdraw(ws: Workspace, a: str, b: str) -> int:
    """Withdraw every standing judgement on the pair; return how many."""
    a, b = ordered(a, b)
    n = ws.con.execute(
        "SELECT count(*) FROM judgements WHERE a = ? AND b = ? AND withdrawn_at IS NULL",
        [a, b]).fetchone()[0]
    ws.con.execute(
        "UPDATE judgements SET withdrawn_at = ? WHERE a = ? AND b = ? AND withdrawn_at IS NULL",
        [utcnow(), a, b])
    return int(n)


def active_judgements(ws: Workspace) -> dict[tuple[str, str], str]:
    """The latest standing verdict of every judged pair."""
    rows = ws.con.execute(
        """SELECT a, b, arg_max(verdict, created_at) FROM judgements
           WHERE withdrawn_at IS NULL GROUP BY a, b""").fetchall()
    return {(a, b): v for a, b, v in rows}
