"""Sign-in and sessions of the web workbench, to the CJIS Security Policy figures.

- Passwords are hashed with argon2id (``argon2-cffi``, its default RFC 9106 parameters).
- Every user has a TOTP second factor (RFC 6238: HMAC-SHA-1, 30 s steps, 6 digits; one
  step of clock drift either way). A code's time step is accepted once only: the newest
  step used is stored and an older or equal one is refused (no replay).
- :data:`LOCKOUT_FAILURES` failed sign-ins within :data:`LOCKOUT_WINDOW` lock the user
  out for :data:`LOCKOUT_WINDOW` from the last of them (sign-ins during the lock are
  refused without being checked).
- A session is locked after :data:`IDLE_LIMIT` without a request and must be signed in
  again after :data:`REAUTH_LIMIT` whatever the activity.
- Every state change carries the session's CSRF token (compared in constant time).

Logons, failures and lockouts go to the hash-chained audit trail
(:mod:`darkmap.ops.audit`). The clock is injectable (``clock``: naive UTC ``datetime``),
so the tests move time instead of waiting.

Credentials, failures, tokens and the trail are where the operational records are
(``con``: the workspace's DuckDB or the team server, :data:`darkmap.store.operations.Con`),
so several workbench processes on one team server share users, lockouts and the trail.
Over a workspace the sessions live in the server's memory (:class:`Sessions`); on the team
server they are stored there (:class:`ServerSessions`), so any workbench process serves
any signed-in browser. A failed sign-in, and the check-and-store of a TOTP step, run in
one transaction under the operational lock: concurrent processes count every failure
and accept a code once.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import hmac
import secrets
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from darkmap.errors import BadInputError, NotFoundError
from darkmap.ops.access import AccessDenied, acting
from darkmap.ops.audit import log
from darkmap.store import operations as ops_store
from darkmap.store import web as store
from darkmap.store.operations import Con, PgOps, UserRow, transaction
from darkmap.web import WEB_ROLES

__all__ = ["IDLE_LIMIT", "LOCKOUT_FAILURES", "LOCKOUT_WINDOW", "REAUTH_LIMIT",
           "TOKEN_LABEL_CHARS", "WEB_ROLES", "Clock", "LoginFailed", "ServerSessions", "Session",
           "SessionInfo", "Sessions", "check_manager", "create_login", "create_token", "hotp",
           "locked_until", "new_totp_secret", "revoke_tokens", "sign_in", "token_user", "totp",
           "utc_clock", "verify_totp"]

LOCKOUT_FAILURES = 5
LOCKOUT_WINDOW = timedelta(minutes=15)
IDLE_LIMIT = timedelta(minutes=30)
REAUTH_LIMIT = timedelta(hours=12)
TOTP_STEP = 30

Clock = Callable[[], datetime]
_HASHER = PasswordHasher()  # argon2id


def utc_clock() -> datetime:
    """Now, naive UTC (how darkmap stores times)."""
    return datetime.now(UTC).replace(tzinfo=None)


class LoginFailed(AccessDenied):
    """A sign-in was refused (the message never says which factor was wrong)."""


# -- TOTP (RFC 4226 / RFC 6238) -----------------------------------------------------------


def new_totp_secret() -> str:
    """A fresh 160-bit TOTP secret in base32 (what authenticator apps take)."""
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii")


def _key(secret_b32: str) -> bytes:
    """The secret's bytes (base32, padding optional, case-insensitive)."""
    s = secret_b32.strip().replace(" ", "").upper()
    return base64.b32decode(s + "=" * (-len(s) % 8))


def hotp(key: bytes, counter: int, digits: int = 6,
         digest: str = "sha1") -> str:
    """RFC 4226 HOTP of ``counter`` (dynamic truncation, ``digits`` decimal digits)."""
    mac = hmac.new(key, struct.pack(">Q", counter), digest).digest()
    offset = mac[-1] & 0x0F
    code = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(code % 10 ** digits).zfill(digits)


def totp(secret_b32: str, at: datetime, digits: int = 6) -> str:
    """RFC 6238 TOTP (SHA-1, 30 s) of the base32 secret at the naive-UTC time ``at``."""
    return hotp(_key(secret_b32), _step(at), digits)


def _step(at: datetime) -> int:
    """The 30 s time step of a naive-UTC time."""
    return int(at.replace(tzinfo=UTC).timestamp()) // TOTP_STEP


def verify_totp(secret_b32: str, code: str, at: datetime,
                last_step: int | None) -> int | None:
    """The time step ``code`` matches (now or one step either side) that is newer than
    ``last_step``, else None."""
    code = code.strip()
    if not (code.isascii() and code.isdigit() and len(code) == 6):
        return None
    key, now = _key(secret_b32), _step(at)
    for step in (now - 1, now, now + 1):
        if (last_step is None or step > last_step) and hmac.compare_digest(
                hotp(key, step), code):
            return step
    return None


# -- credentials and sign-in ---------------------------------------------------------------


def create_login(con: Con, by: str, user_id: str, password: str,
                 web_role: str = "analyst", clock: Clock = utc_clock) -> str:
    """Give the operational user ``user_id`` a password, a workbench role and a new TOTP
    secret (returned, to show once), or replace them. ``by`` must be an admin of the
    user's agency (of the operational layer): a user may not give themselves a sign-in
    or a higher role, and an admin may not set another agency's users. During set-up,
    while ``user_id`` is the only operational user, they may set their own. A new
    sign-in reinstates a suspended user (:func:`darkmap.web.access.suspend`). Audited
    like the operational layer's writes: the change and its entry in one transaction,
    a refusal with the outcome ``denied``."""
    if web_role not in WEB_ROLES:
        raise BadInputError(f"web role {web_role!r}: one of {', '.join(WEB_ROLES)}")
    if len(password) < 12:
        raise BadInputError("a password needs at least 12 characters")
    with transaction(con, keep=(AccessDenied,)):
        target = acting(con, user_id, suspended_ok=True)
        actor = acting(con, by)
        setup = by == user_id and all(u.user_id == user_id for u in ops_store.users(con))
        if not setup and (actor.role != "admin" or actor.agency_id != target.agency_id):
            log(con, by, "web.login.set", "denied", user=user_id, web_role=web_role)
            raise AccessDenied(f"{by} may not set the sign-in of {user_id}: only an admin "
                               "of the user's agency may (`darkmap ops user list --as "
                               f"{by}` names your agency's admins)")
        secret = new_totp_secret()
        now = clock()
        store.insert_login(con, store.LoginRow(user_id, web_role, _HASHER.hash(password),
                                               secret, None), by, now)
        # a sign-in replaced ends what the old one opened: its API tokens (found by
        # testing: a token outlived a password and TOTP reset) and, on a team server,
        # its sessions (a supervisor demoted kept the role for the session's life)
        revoked = store.revoke_tokens(con, user_id, now)
        if isinstance(con, PgOps):
            store.delete_user_sessions(con, user_id)
        what: dict[str, Any] = {"user": user_id, "web_role": web_role}
        lifted = ops_store.delete_suspension(con, user_id)
        if lifted is not None:   # a new sign-in reinstates a suspended user
            what["reinstated"] = {"suspended_by": lifted.suspended_by,
                                  "suspended_at": lifted.suspended_at.isoformat()}
        if revoked:
            what["tokens_revoked"] = revoked
        if setup:
            what["setup"] = True
        log(con, by, "web.login.set", **what)
    return secret


@functools.cache
def _unknown_user_hash() -> str:
    """A hash of no one's password, verified when the name tried has no sign-in."""
    return _HASHER.hash(secrets.token_urlsafe(24))


def locked_until(con: Con, user_id: str, now: datetime) -> datetime | None:
    """When the lockout of ``user_id`` ends, if it is locked out now."""
    since = store.latest_lockout(con, user_id)
    if since is not None and now < since + LOCKOUT_WINDOW:
        return since + LOCKOUT_WINDOW
    return None


def _fail(con: Con, user_id: str, now: datetime, reason: str) -> LoginFailed:
    """Record and audit a failed sign-in; audit the lockout it causes (one transaction
    under the operational lock: processes sharing a server count every failure, and the
    fifth locks once)."""
    with transaction(con):
        store.insert_failure(con, user_id, now, reason)
        log(con, user_id, "web.logon", "denied", reason=reason)
        n, _ = store.count_failures(con, user_id, now - LOCKOUT_WINDOW)
        if n >= LOCKOUT_FAILURES and locked_until(con, user_id, now) is None:
            store.insert_failure(con, user_id, now, "lockout")
            log(con, user_id, "web.lockout", "denied", failures=n,
                window_minutes=int(LOCKOUT_WINDOW.total_seconds() // 60))
    return LoginFailed("sign-in refused: wrong user, password or code")


def sign_in(con: Con, user_id: str, password: str, code: str,
            clock: Clock = utc_clock,
            lock: contextlib.AbstractContextManager[Any] | None = None) -> tuple[UserRow, str]:
    """Check password and TOTP code: the operational user and web role, or
    :class:`LoginFailed` (counted towards the lockout, audited). ``lock`` (the web
    server's operational lock) is held to read the sign-in and to write the outcome, not
    during the password check: held through it, a flood of made-up names stalled every
    request that takes the lock (review, M2)."""
    held = lock if lock is not None else contextlib.nullcontext()
    now = clock()
    with held:
        until = locked_until(con, user_id, now)
        if until is not None:
            log(con, user_id, "web.logon", "denied", reason="locked out")
            raise _locked_out(until)
        row = store.login(con, user_id)
    if row is None:
        # the same work as for a user with a sign-in: the time taken does not tell which
        # names have one (found by testing: about 10 ms against 150-200 ms)
        with contextlib.suppress(VerificationError, InvalidHashError):
            _HASHER.verify(_unknown_user_hash(), password)
        with held:
            raise _fail(con, user_id, now, "unknown user")
    try:
        _HASHER.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        with held:
            raise _fail(con, user_id, now, "password") from None
    with held:
        return _second_factor(con, user_id, code, now, row.web_role)


def _locked_out(until: datetime) -> LoginFailed:
    return LoginFailed(f"sign-in refused: locked out until {until:%H:%M} UTC "
                       f"after {LOCKOUT_FAILURES} failures")


def _second_factor(con: Con, user_id: str, code: str, now: datetime,
                   web_role: str) -> tuple[UserRow, str]:
    """The TOTP check of a sign-in whose password was right (under the lock): refused if a
    lockout began while the password was checked."""
    with transaction(con):          # read, check and store the step as one: no replay
        until = locked_until(con, user_id, now)
        fresh = store.login(con, user_id)
        step = None if fresh is None or until is not None else verify_totp(
            fresh.totp_secret, code, now, fresh.totp_last_step)
        if step is not None:
            store.set_totp_step(con, user_id, step)
            store.clear_failures(con, user_id)
    if until is not None:
        log(con, user_id, "web.logon", "denied", reason="locked out")
        raise _locked_out(until)
    if step is None:
        raise _fail(con, user_id, now, "totp")
    user = acting(con, user_id)
    log(con, user_id, "web.logon", agency=user.agency_id)
    return user, web_role


TOKEN_LABEL_CHARS = 200
"""The longest label a token may have (the Access page names tokens by it)."""


def create_token(con: Con, user_id: str, label: str = "api",
                 clock: Clock = utc_clock) -> str:
    """A new API token for ``user_id`` (shown once; only its SHA-256 is stored)."""
    if len(label) > TOKEN_LABEL_CHARS:
        raise BadInputError(f"a token's label has at most {TOKEN_LABEL_CHARS} characters "
                            f"(this one {len(label):,})")
    acting(con, user_id)
    if store.login(con, user_id) is None:
        raise NotFoundError(f"{user_id} has no sign-in (`darkmap serve-user` first)")
    token = "dm_" + secrets.token_urlsafe(32)
    store.insert_token(con, _sha256(token), user_id, label, clock())
    log(con, user_id, "web.token.add", label=label)
    return token


def check_manager(con: Con, by: str, user_id: str, action: str, *, self_ok: bool,
                  what: str) -> None:
    """Refuse, audited under ``by`` (``denied``), unless ``by`` is an admin of
    ``user_id``'s agency or, where ``self_ok``, ``user_id`` themself; an admin never
    does a step that is not ``self_ok`` to themself. A name that is no user and a user
    of another agency get the same answer: the refusal does not tell which names are
    another agency's users (review of the Access page, M2)."""
    actor = acting(con, by)
    if by == user_id:
        if self_ok:
            return
        log(con, by, action, "denied", user=user_id)
        raise AccessDenied(f"{by} may not {what} of their own account: another admin of "
                           "the agency may")
    target = ops_store.user(con, user_id)
    if target is None or actor.role != "admin" or actor.agency_id != target.agency_id:
        log(con, by, action, "denied", user=user_id)
        whom = "the user or an admin" if self_ok else "an admin"
        raise AccessDenied(f"{by} may not {what} of {user_id}: {whom} of the user's "
                           "agency may")


def revoke_tokens(con: Con, by: str, user_id: str, label: str | None = None,
                  clock: Clock = utc_clock, token_id: str | None = None) -> int:
    """Revoke the API tokens of ``user_id`` (those of ``label``, or the one named
    ``token_id`` on the Access page, when given): by the user, or by an admin of the
    user's agency. Audited; how many were revoked."""
    with transaction(con, keep=(AccessDenied,)):
        check_manager(con, by, user_id, "web.token.revoke", self_ok=True,
                      what="revoke the tokens")
        n = store.revoke_tokens(con, user_id, clock(), label, token_id)
        what: dict[str, Any] = {"label": label}
        if token_id is not None:
            what["token"] = token_id
        log(con, by, "web.token.revoke", user=user_id, revoked=n, **what)
    return n


def token_user(con: Con, token: str) -> tuple[UserRow, str] | None:
    """The user and web role an API token stands for, or None."""
    uid = store.token_user(con, _sha256(token))
    if uid is None:
        return None
    row = store.login(con, uid)
    return (acting(con, uid), row.web_role) if row is not None else None


def _sha256(secret: str) -> str:
    """The hex SHA-256 under which a token or session id is stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


# -- sessions --------------------------------------------------------------------------


@dataclass
class Session:
    """A signed-in browser: who, since when, last seen, CSRF token."""

    user: UserRow
    web_role: str
    signed_in: datetime
    last_seen: datetime
    csrf: str


@dataclass(frozen=True)
class SessionInfo:
    """An open session as the access page shows it: never its cookie value."""

    signed_in: datetime
    last_seen: datetime
    current: bool   # the session of the browser asking


class Sessions:
    """The sessions of this server, by opaque cookie value."""

    def __init__(self, clock: Clock = utc_clock) -> None:
        self.clock = clock
        self._by_id: dict[str, Session] = {}
        self._lock = threading.Lock()

    def start(self, user: UserRow, web_role: str) -> str:
        """A new session (its cookie value)."""
        sid = secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock:
            self._by_id[sid] = Session(user, web_role, now, now, secrets.token_urlsafe(24))
        return sid

    def get(self, sid: str | None) -> tuple[Session | None, str]:
        """The live session of ``sid`` (touched), or None and why: ``none``, ``idle``
        (30 min without a request) or ``reauth`` (12 h since sign-in)."""
        if not sid:
            return None, "none"
        now = self.clock()
        with self._lock:
            s = self._by_id.get(sid)
            if s is None:
                return None, "none"
            if now - s.signed_in >= REAUTH_LIMIT:
                del self._by_id[sid]
                return None, "reauth"
            if now - s.last_seen >= IDLE_LIMIT:
                del self._by_id[sid]
                return None, "idle"
            s.last_seen = now
            return s, "ok"

    def end(self, sid: str | None) -> None:
        """Sign out."""
        with self._lock:
            self._by_id.pop(sid or "", None)

    def of_user(self, user_id: str, current: str | None = None) -> list[SessionInfo]:
        """The open sessions of ``user_id`` (not idle, not past re-authentication), the
        newest sign-in first; ``current`` marks the asking browser's."""
        now = self.clock()
        with self._lock:
            found = [SessionInfo(s.signed_in, s.last_seen, sid == current)
                     for sid, s in self._by_id.items()
                     if s.user.user_id == user_id and _live(s.signed_in, s.last_seen, now)]
        return sorted(found, key=lambda i: i.signed_in, reverse=True)

    def end_user(self, user_id: str, con: PgOps | None = None) -> int:
        """Sign ``user_id`` out of every browser; how many open sessions that ended
        (``con``: for :class:`ServerSessions`)."""
        now = self.clock()
        with self._lock:
            gone = [sid for sid, s in self._by_id.items() if s.user.user_id == user_id]
            live = sum(_live(self._by_id[sid].signed_in, self._by_id[sid].last_seen, now)
                       for sid in gone)
            for sid in gone:
                del self._by_id[sid]
        return live

    @staticmethod
    def csrf_ok(session: Session, given: str | None) -> bool:
        """Whether ``given`` is the session's CSRF token (constant-time)."""
        return given is not None and hmac.compare_digest(session.csrf.encode(),
                                                         given.encode())


def _live(signed_in: datetime, last_seen: datetime, now: datetime) -> bool:
    """Whether a session may still be used: not idle, not past re-authentication."""
    return now - signed_in < REAUTH_LIMIT and now - last_seen < IDLE_LIMIT


class ServerSessions(Sessions):
    """The sessions of every workbench process on one team server, stored there
    (``web_sessions``, the cookie value only as its SHA-256). ``con`` is a connection of
    the sessions' own (one statement at a time, under this object's lock)."""

    def __init__(self, con: PgOps, clock: Clock = utc_clock) -> None:
        super().__init__(clock)
        self.con = con

    def start(self, user: UserRow, web_role: str) -> str:
        """A new session (its cookie value). Sessions long past use (idle for 12 hours,
        signed in over 24 hours ago) are forgotten; a recently expired one stays, so its
        browser is told why it must sign in again."""
        sid = secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock:
            store.purge_sessions(self.con, now - REAUTH_LIMIT, now - 2 * REAUTH_LIMIT)
            store.insert_session(self.con, _sha256(sid), store.SessionRow(
                user.user_id, web_role, now, now, secrets.token_urlsafe(24)))
        return sid

    def get(self, sid: str | None) -> tuple[Session | None, str]:
        """The live session of ``sid`` (touched), or None and why (as
        :meth:`Sessions.get`)."""
        if not sid:
            return None, "none"
        now, key = self.clock(), _sha256(sid)
        with self._lock:
            row = store.session_row(self.con, key)
            user = None if row is None else ops_store.user(self.con, row.user_id)
            if row is None or user is None:
                return None, "none"
            why = ("reauth" if now - row.signed_in >= REAUTH_LIMIT
                   else "idle" if now - row.last_seen >= IDLE_LIMIT else "ok")
            if why != "ok":
                store.delete_session(self.con, key)
                return None, why
            store.touch_session(self.con, key, now)
        return Session(user, row.web_role, row.signed_in, max(now, row.last_seen),
                       row.csrf), "ok"

    def end(self, sid: str | None) -> None:
        """Sign out (on every process)."""
        with self._lock:
            store.delete_session(self.con, _sha256(sid or ""))

    def of_user(self, user_id: str, current: str | None = None) -> list[SessionInfo]:
        """The open sessions of ``user_id`` on every process (as :meth:`Sessions.of_user`)."""
        now, mine = self.clock(), _sha256(current) if current else None
        with self._lock:
            rows = store.user_sessions(self.con, user_id)
        return [SessionInfo(signed_in, last_seen, key == mine)
                for key, signed_in, last_seen in rows if _live(signed_in, last_seen, now)]

    def end_user(self, user_id: str, con: PgOps | None = None) -> int:
        """Sign ``user_id`` out of every browser, on every process; how many open
        sessions that ended. ``con``: the caller's connection, inside its transaction
        (a suspension's credentials, tokens and sessions go together), else the
        sessions' own."""
        now, on = self.clock(), con if con is not None else self.con
        with self._lock:
            live = sum(_live(s, seen, now) for _, s, seen in store.user_sessions(on, user_id))
            store.delete_user_sessions(on, user_id)
        return live

    def close(self) -> None:
        """Close the sessions' connection."""
        self.con.close()
