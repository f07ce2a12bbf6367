"""Who holds a sign-in and what it has opened: the workbench's access page (``/access``).

Every user sees their own sign-in: the sessions open in browsers (signed in when, last
request when, which one is asking) and their API tokens (label, made, revoked). An
operational admin sees the same for every user of their agency, with the workbench role
and any lockout. What may be done from it, each checked here and audited:

- **revoke API tokens** (all of a user's, or one label's): the user, or an admin of the
  user's agency (:func:`darkmap.web.auth.revoke_tokens`);
- **end sessions**: sign a user out of every browser (on every process of a team
  server): the user, or an admin of the user's agency;
- **end a lockout** (failed sign-ins): an admin of the user's agency;
- **suspend a user**: their password hash and TOTP secret removed, their tokens revoked,
  their sessions ended and the user suspended, in one step: an admin of the user's
  agency, of another user. A suspended user is refused everything, on a team server in
  ``psql`` too (their own login role). ``darkmap serve-user`` reinstates them with a new
  sign-in (a new password and TOTP secret).

Over a workspace the workbench holds the workspace, so ``darkmap serve-token --revoke``
and ``serve-user`` cannot run beside it: this page stops a leaked token or a stolen
sign-in at once, without stopping the workbench (and ending everyone's sessions).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from darkmap.errors import BadInputError
from darkmap.ops.access import AccessDenied
from darkmap.ops.audit import log
from darkmap.store import operations as ops_store
from darkmap.store import web as store
from darkmap.store.operations import Con, PgOps, UserRow, transaction
from darkmap.web.auth import (
    Clock,
    SessionInfo,
    Sessions,
    check_manager,
    locked_until,
    revoke_tokens,
)

__all__ = ["ACTIONS", "UserAccess", "access_view", "act", "end_sessions", "suspend",
           "unlock"]

ACTIONS = ("revoke-tokens", "end-sessions", "unlock", "suspend")
"""What the access page's form may ask (``action``)."""


@dataclass(frozen=True)
class UserAccess:
    """One user's sign-in as the access page shows it."""

    user_id: str
    role: str                    # the operational role (admin, officer, reader)
    web_role: str | None         # None: no sign-in (never given, or suspended)
    sessions: list[SessionInfo]
    tokens: list[store.TokenRow]
    locked_until: datetime | None
    suspended: ops_store.SuspensionRow | None = None

    @property
    def live_tokens(self) -> list[store.TokenRow]:
        """The tokens not revoked."""
        return [t for t in self.tokens if t.revoked_at is None]


def access_view(con: Con, sessions: Sessions, me: UserRow, current: str | None,
                now: datetime) -> dict[str, Any]:
    """The access page of ``me``: their own sign-in, or, for an admin, that of every user
    of their agency (``me`` first). ``current``: the asking browser's session cookie.
    Audited (``web.access.read``, with how many users were shown)."""
    admin = me.role == "admin"
    people = [me]
    if admin:
        people += [u for u in ops_store.users(con)
                   if u.agency_id == me.agency_id and u.user_id != me.user_id]
    held = ops_store.suspensions(con)
    shown = [_user_access(con, sessions, u, current, now, held.get(u.user_id))
             for u in people]
    log(con, me.user_id, "web.access.read", users=len(shown))
    return {"admin": admin, "users": shown, "agency": me.agency_id}


def _user_access(con: Con, sessions: Sessions, user: UserRow, current: str | None,
                 now: datetime, suspended: ops_store.SuspensionRow | None) -> UserAccess:
    row = store.login(con, user.user_id)
    return UserAccess(user.user_id, user.role, None if row is None else row.web_role,
                      sessions.of_user(user.user_id, current),
                      store.tokens_of(con, user.user_id),
                      locked_until(con, user.user_id, now), suspended)


def _server(con: Con) -> PgOps | None:
    """``con`` when it is the team server's: the sessions are ended in its transaction."""
    return con if isinstance(con, PgOps) else None


def end_sessions(con: Con, sessions: Sessions, by: str, user_id: str) -> int:
    """Sign ``user_id`` out of every browser: by the user or an admin of the user's
    agency. Audited (``web.session.end``); how many open sessions ended."""
    with transaction(con, keep=(AccessDenied,)):
        check_manager(con, by, user_id, "web.session.end", self_ok=True,
                      what="end the sessions")
        n = sessions.end_user(user_id, _server(con))
        log(con, by, "web.session.end", user=user_id, ended=n)
    return n


def unlock(con: Con, by: str, user_id: str, clock: Clock) -> bool:
    """End the lockout of ``user_id`` (and forget their failed sign-ins): by an admin of
    the user's agency. Audited (``web.login.unlock``); whether a lockout held."""
    with transaction(con, keep=(AccessDenied,)):
        check_manager(con, by, user_id, "web.login.unlock", self_ok=False,
                      what="end the lockout")
        held = locked_until(con, user_id, clock()) is not None
        store.clear_failures(con, user_id)
        log(con, by, "web.login.unlock", user=user_id, locked=held)
    return held


def suspend(con: Con, sessions: Sessions, by: str, user_id: str,
            clock: Clock) -> dict[str, int | bool | str | None]:
    """Suspend the sign-in of ``user_id``: its credentials removed, its API tokens
    revoked, its sessions ended and the user suspended, one audited step
    (``web.login.suspend``, with the workbench role it had, which ``darkmap serve-user
    --role`` gives back with the new sign-in that reinstates them): by an admin of the
    user's agency, not of their own. A suspended user is refused every step of the
    library (:func:`darkmap.ops.access.acting`); on a team server their own database
    login role reads and writes nothing either (row-level security, operational schema
    11), and its open connections are ended once the suspension is committed
    (``connections_ended``; ``connections_refused`` those the server's owner may not
    end, without ``pg_signal_backend``)."""
    with transaction(con, keep=(AccessDenied,)):
        check_manager(con, by, user_id, "web.login.suspend", self_ok=False,
                      what="suspend the sign-in")
        row = store.login(con, user_id)
        now = clock()
        store.delete_login(con, user_id)
        revoked = store.revoke_tokens(con, user_id, now)
        ended = sessions.end_user(user_id, _server(con))
        newly = ops_store.insert_suspension(con, user_id, by, now)
        was = None if row is None else row.web_role
        log(con, by, "web.login.suspend", user=user_id, had_sign_in=row is not None,
            web_role=was, tokens_revoked=revoked, sessions_ended=ended,
            already_suspended=not newly)
    done: dict[str, int | bool | str | None] = {
        "had_sign_in": row is not None, "web_role": was, "tokens_revoked": revoked,
        "sessions_ended": ended, "already_suspended": not newly}
    server = _server(con)
    if server is not None:
        # after the commit: a transaction of the user's own login role that began before
        # it read its snapshot without the suspension (review of the suspension, 1)
        done["connections_ended"], done["connections_refused"] = \
            ops_store.end_connections(server, user_id)
        with transaction(con):
            log(con, by, "web.login.suspend.connections", user=user_id,
                ended=done["connections_ended"], refused=done["connections_refused"])
    return done


def act(con: Con, sessions: Sessions, by: str, action: str, user_id: str,
        token_id: str | None, clock: Clock) -> int:
    """Carry out one action of the access page's form: how many tokens were revoked
    (``revoke-tokens``: all of the user's, or the one named ``token_id``), sessions
    ended (``end-sessions``, ``suspend``), or whether a lockout held (``unlock``)."""
    if action == "revoke-tokens":
        return revoke_tokens(con, by, user_id, None, clock, token_id)
    if action == "end-sessions":
        return end_sessions(con, sessions, by, user_id)
    if action == "unlock":
        return int(unlock(con, by, user_id, clock))
    if action == "suspend":
        return int(suspend(con, sessions, by, user_id, clock)["sessions_ended"] or 0)
    raise BadInputError(f"action {action!r}: one of {', '.join(ACTIONS)}")
