"""Analyst judgements on account pairs: same, different or unsure, with author and time.

Judgements are never deleted: withdrawing one stamps ``withdrawn_at``. The linker reads
the latest standing judgement of each pair as a hard constraint.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict

from darkmap.errors import BadInputError, NotFoundError
from darkmap.store import personas as store
from darkmap.store.evidence import account_exists
from darkmap.store.ids import row_id
from darkmap.store.workspace import Workspace, table_exists, utcnow

if TYPE_CHECKING:
    from darkmap.store.operations import PgOps

__all__ = ["VERDICTS", "AwaitingSync", "Judgement", "active_judgements", "awaiting_sync",
           "check_request", "judge", "judge_for_team", "ordered", "standing_with", "withdraw"]

VERDICTS = ("same", "different", "unsure")


class Judgement(TypedDict):
    """A recorded judgement (:func:`judge`)."""

    judgement_id: str
    a: str
    b: str
    verdict: str
    author: str
    note: str | None
    created_at: str


def ordered(a: str, b: str) -> tuple[str, str]:
    """A pair in canonical order (``a < b``)."""
    return (a, b) if a <= b else (b, a)


def check_request(verdict: str | None, withdraw_: bool) -> None:
    """Refuse a request that gives both a verdict and a withdrawal, or neither, with
    :class:`~darkmap.errors.BadInputError`."""
    if withdraw_ == bool(verdict):
        raise BadInputError("give exactly one of --same, --different, --unsure, --withdraw")


def _default_author() -> str:
    try:
        return os.environ.get("USER") or getpass.getuser() or "unknown"
    except (ImportError, KeyError, OSError):  # no pwd module / no passwd entry (3.13: OSError)
        return "unknown"


def _check_account(ws: Workspace, aid: str) -> None:
    if not account_exists(ws.con, aid):
        raise NotFoundError(f"no account {aid!r} in this workspace (ids look like market:handle)")


def _new_judgement(ws: Workspace, a: str, b: str, verdict: str, author: str,
                   note: str | None) -> tuple[Judgement, datetime]:
    """A checked verdict on ``a`` and ``b`` (ordered) with its id and time, not stored."""
    if verdict not in VERDICTS:
        raise BadInputError(f"verdict must be one of {VERDICTS}, not {verdict!r}")
    if a == b:
        raise BadInputError("a judgement needs two different accounts")
    _check_account(ws, a)
    _check_account(ws, b)
    a, b = ordered(a, b)
    now = utcnow()
    jid = row_id("judgement", a, b, verdict, author, now.isoformat())
    return {"judgement_id": jid, "a": a, "b": b, "verdict": verdict, "author": author,
            "note": note, "created_at": now.isoformat()}, now


def judge(ws: Workspace, a: str, b: str, verdict: str, author: str | None = None,
          note: str | None = None) -> Judgement:
    """Record a verdict on accounts ``a`` and ``b``; earlier standing ones are superseded.

    Raises :class:`~darkmap.errors.BadInputError` for an unknown verdict or one account
    judged against itself, :class:`~darkmap.errors.NotFoundError` for an unknown account.
    """
    j, now = _new_judgement(ws, a, b, verdict, author or _default_author(), note)
    store.insert_judgement(ws.con, j["judgement_id"], j["a"], j["b"], verdict, j["author"],
                           note, now)
    return j


def judge_for_team(ws: Workspace, server: PgOps, a: str, b: str, verdict: str, author: str,
                   note: str | None = None) -> Judgement:
    """Record a verdict on the team server for ``author`` (the workbench's signed-in
    user), checked against ``ws`` (read-only is enough): every analyst's workspace gets it
    at its next ``darkmap team sync``. Only the server's service role may name an author
    (:func:`darkmap.store.team.push_judgement_for`). Same checks as :func:`judge`."""
    j, now = _new_judgement(ws, a, b, verdict, author, note)
    # (psycopg only where a team server is used: `darkmap link` and `judge` stay light)
    from darkmap.store.team import push_judgement_for  # noqa: PLC0415

    push_judgement_for(server, (j["judgement_id"], j["a"], j["b"], verdict, author, note,
                                now, None))
    return j


def withdraw(ws: Workspace, a: str, b: str) -> int:
    """Withdraw every standing judgement on the pair; return how many."""
    a, b = ordered(a, b)
    return store.withdraw_judgements(ws.con, a, b, utcnow())


def active_judgements(ws: Workspace) -> dict[tuple[str, str], str]:
    """The latest standing verdict of every judged pair."""
    return store.active_judgements(ws.con)


def standing_with(ws: Workspace, shared: Iterable[tuple[Any, ...]]
                  ) -> dict[tuple[str, str], str]:
    """The latest standing verdict of every pair judged in ``ws`` or in ``shared`` (the
    team server's judgements, ``JUDGEMENT_COLUMNS`` tuples), as the pairs will stand
    once ``darkmap team sync`` has run: a judgement in both is one, withdrawn when
    either copy is. The workbench over a team server judges there, and reads the
    workspace read-only, so its review page counts both (:func:`active_judgements`
    counts the workspace's alone)."""
    rows = _held(ws)
    for r in shared:
        mine = rows.get(str(r[0]))
        if mine is None:
            rows[str(r[0])] = tuple(r)
        elif mine[7] is None and r[7] is not None:
            rows[str(r[0])] = (*mine[:7], r[7])
    latest: dict[tuple[str, str], tuple[datetime, str]] = {}
    for _, a, b, verdict, _, _, created, withdrawn in rows.values():
        if withdrawn is not None:
            continue
        key = ordered(str(a), str(b))
        if key not in latest or created > latest[key][0]:
            latest[key] = (created, str(verdict))
    return {k: v for k, (_, v) in latest.items()}


@dataclass(frozen=True)
class AwaitingSync:
    """What the next ``darkmap team sync`` changes in a workspace's judgements
    (:func:`awaiting_sync`)."""

    new: list[tuple[Any, ...]]
    """The team server's standing judgements the workspace does not hold yet
    (``JUDGEMENT_COLUMNS`` tuples), oldest first."""
    withdrawn: set[str]
    """Ids of judgements the workspace holds as standing that were withdrawn on the
    server (a supervisor withdrew them there)."""


def awaiting_sync(ws: Workspace, shared: Iterable[tuple[Any, ...]], accounts: set[str]
                  ) -> AwaitingSync:
    """The judgements of ``shared`` (the team server's, ``JUDGEMENT_COLUMNS`` tuples)
    touching ``accounts`` that the next ``darkmap team sync`` brings into ``ws``: those
    it does not hold yet, and the withdrawals of those it holds as standing.
    :func:`standing_with` already counts both."""
    held = _held(ws)
    new, withdrawn = [], set()
    for r in shared:
        if not (r[1] in accounts or r[2] in accounts):
            continue
        mine = held.get(str(r[0]))
        if mine is None and r[7] is None:
            new.append(r)
        elif mine is not None and mine[7] is None and r[7] is not None:
            withdrawn.add(str(r[0]))
    return AwaitingSync(sorted(new, key=lambda r: r[6]), withdrawn)


def _held(ws: Workspace) -> dict[str, tuple[Any, ...]]:
    """Every judgement of ``ws``, withdrawn or not, by judgement id."""
    if not table_exists(ws.con, "judgements"):
        return {}
    return {str(r[0]): tuple(r) for r in store.all_judgements(ws.con)}
