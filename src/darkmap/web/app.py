"""The workbench's ASGI application (FastAPI): server-rendered pages, the JSON API under
``/api/`` and the local static assets.

Security, for every response: a strict Content-Security-Policy (:data:`CSP`: scripts,
styles, images and fetches from this origin only, no inline script or style, no frames,
no plug-ins), ``nosniff``, no referrer, no caching. Every page is a Jinja2 template with
autoescape on, and every string that came from a market is passed through
``for_display`` (controls and bidi overrides shown as escapes). Raw captures are shown
as text in a ``<pre>``, never as markup.

Sessions: an opaque cookie (HttpOnly, SameSite=Strict, Secure and ``__Host-`` prefixed
when ``tls``); every POST carries the session's CSRF token. ``/api/`` takes a bearer
token (``darkmap serve token``) or, for reads only, the session cookie.

Two homes (docs/workbench.md): over a workspace (``--workspace``) the server holds its
one DuckDB connection, pages read on per-thread cursors and everything that writes
(sign-ins, judgements, the audit entry of every operational read) runs under one lock.
Over a team server (``--server``, :func:`darkmap.store.team.open_web_server`) users,
credentials, lockouts, sessions, tokens, the operational records and the audit trail are
PostgreSQL's, shared by every workbench process on it; the workspace is opened read-only
for the analytical facts (personas, listings, wallets), so several processes may serve
it. A verdict given in the review queue then goes to the team server's judgements under
the signed-in user's name (:func:`darkmap.resolve.judgements.judge_for_team`); every
analyst's workspace takes it at its next ``darkmap team sync``, and the next
``darkmap link`` there holds it.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
from collections.abc import Callable, Iterable
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from markupsafe import Markup, escape
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

import darkmap.api as api
from darkmap.errors import BadInputError, DarkmapError, NotFoundError
from darkmap.model.display import for_display, lookalike_mark, lookalike_pieces
from darkmap.ops.access import AccessDenied, still_acting
from darkmap.ops.audit import entries_for, log, strangers_apart
from darkmap.ops.deconflict import acknowledge
from darkmap.ops.forms import MAX_FIELD_CHARS, check_text
from darkmap.ops.records import withdraw_record
from darkmap.resolve.judgements import judge_for_team
from darkmap.store import web as web_store
from darkmap.store.operations import OpsServer, Space, UserRow
from darkmap.store.web import thread_cursor
from darkmap.store.workspace import Workspace
from darkmap.web import views
from darkmap.web.access import ACTIONS, access_view, act
from darkmap.web.auth import (
    Clock,
    LoginFailed,
    ServerSessions,
    Session,
    Sessions,
    sign_in,
    token_user,
    utc_clock,
)
from darkmap.web.recording import added_view, form_view, record_from_form

__all__ = ["CSP", "CSP_LINE_CHARS", "LOCAL_HOSTS", "LOGGED_CHARS", "Workbench", "create_app",
           "csp_line", "host_allowed", "host_name", "logged"]

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "frame-src 'none'; object-src 'none'; base-uri 'none'; report-uri /csp-report")
VERDICTS = {"confirm": "same", "reject": "different", "unsure": "unsure"}
T = TypeVar("T")


class _Redirect(Exception):
    """Send the browser elsewhere (to sign in)."""

    def __init__(self, to: str) -> None:
        super().__init__(to)
        self.to = to


class _Refused(Exception):
    """Answer with an HTTP error status and one line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_HTTP_ERRORS = {404: "no such page", 405: "this page does not take that method"}
"""What the error page says of the HTTP errors the router raises itself."""
_LOG = logging.getLogger("darkmap.web")
_CSP_REPORT_BYTES = 20_000
"""Bytes of a CSP report read (the rest of the body is not)."""
CSP_LINE_CHARS = 300
"""Characters of a CSP report's line in the server log and on the audit page."""
_CSP_KEPT = 1000
"""CSP reports kept in memory (the newest), of which the audit page shows the last 20."""
CSP_LOGGED_PER_MINUTE = 20
"""CSP reports logged a minute: past them, one line says more came, and the first report
of a later minute is preceded by the count of those not logged (anyone may post them:
unbounded, 500 posts wrote 500 lines)."""
_CSP_FIELDS = ("document-uri", "documentURL", "violated-directive", "effectiveDirective",
               "blocked-uri", "blockedURL", "source-file", "sourceFile", "line-number",
               "lineNumber")
"""The fields of a report that say what was blocked where (report-uri's names, then the
Reporting API's)."""


def csp_line(report: Any) -> str:
    """One CSP violation report as one line of display text: the fields that say what
    was blocked where, else the report's JSON; controls, newlines and bidi overrides
    shown as escapes, cut to :data:`CSP_LINE_CHARS` (anyone may post one)."""
    body = report.get("csp-report", report.get("body", report)) if isinstance(report, dict) \
        else report
    if isinstance(body, dict) and any(k in body for k in _CSP_FIELDS):
        text = " ".join(f"{k}={body[k]}" for k in _CSP_FIELDS if k in body)
    else:
        text = json.dumps(report, ensure_ascii=False, default=str)[:CSP_LINE_CHARS * 2]
    return for_display(text, max_chars=CSP_LINE_CHARS)


class CspLog:
    """Which CSP reports go to the server's log (:data:`CSP_LOGGED_PER_MINUTE` a minute),
    and the lines saying how many did not. Called on the event loop only."""

    def __init__(self) -> None:
        self.minute: datetime | None = None
        self.logged = 0
        self.held = 0

    def lines(self, now: datetime, n: int, report: Any) -> list[str]:
        """The log lines of report number ``n``, received at ``now`` (naive UTC)."""
        minute = now.replace(second=0, microsecond=0)
        out = []
        if minute != self.minute:
            if self.held:
                out.append(f"CSP violation reports: {self.held} not logged in the minute "
                           f"from {self.minute:%Y-%m-%d %H:%M} UTC (more than "
                           f"{CSP_LOGGED_PER_MINUTE}; the audit page counts them all)")
            self.minute, self.logged, self.held = minute, 0, 0
        if self.logged < CSP_LOGGED_PER_MINUTE:
            self.logged += 1
            out.append(f"CSP violation report {n}: {csp_line(report)}")
        else:
            if not self.held:
                out.append(f"CSP violation reports: more than {CSP_LOGGED_PER_MINUTE} in "
                           "this minute; the rest are counted, not logged")
            self.held += 1
        return out


LOGGED_CHARS = 200
"""Characters of a value a request sent that go to the audit trail (:func:`logged`)."""


def logged(value: str, cap: int = LOGGED_CHARS) -> str:
    """A value a request sent, as the audit trail keeps it: its first ``cap`` characters,
    the cut marked with how long it was (the trail is permanent and hash-chained: a 1 MB
    form field logged whole cost the store 1 MB per refused request)."""
    return value if len(value) <= cap else f"{value[:cap]}…[cut: {len(value):,} chars]"


LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")
"""The names a ``Host`` header may give whatever the operator configured (with the port
the workbench listens on, or none)."""


def host_name(address: str) -> str:
    """An address as a ``Host`` header names it: lower case, an IPv6 one in brackets (a
    name with its port, ``name:443``, as it is)."""
    address = address.strip().lower()
    return f"[{address}]" if address.count(":") > 1 and not address.startswith("[") \
        else address


def host_allowed(host: str | None, allowed: frozenset[str], port: int | None) -> bool:
    """Whether a request's ``Host`` header is one the workbench serves: a name in
    ``allowed``, alone or with the port it listens on (``port``); a name given with a
    port in ``allowed`` (``--allowed-host name:443``) only with that one."""
    if not host:
        return False
    host = host.strip().lower()
    if host in allowed:
        return True
    name, sep, given = host.rpartition(":")
    return bool(sep) and name in allowed and port is not None and given == str(port)


class _Hosts(BaseHTTPMiddleware):
    """Refuse a request whose ``Host`` header is no name the operator configured: a web
    page that rebinds its own name to 127.0.0.1 (DNS rebinding) is then not served,
    though the browser takes it for the page's own origin."""

    def __init__(self, app: Any, allowed: frozenset[str]) -> None:
        super().__init__(app)
        self.allowed = allowed

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        """400 with one line for a foreign ``Host``; else the request as it came."""
        host = request.headers.get("host")
        server = request.scope.get("server")
        if host_allowed(host, self.allowed, server[1] if server else None):
            return await call_next(request)
        shown = for_display(host or "", max_chars=100)
        return Response(f"refused: Host {shown!r} is not a name this workbench serves; "
                        "its operator may add one (darkmap serve --allowed-host NAME)\n",
                        status_code=400, media_type="text/plain")


class _Headers(BaseHTTPMiddleware):
    """The security headers of every response, an error's too."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        """Add CSP, nosniff, no referrer, no framing, no caching. An exception no handler
        took becomes a plain 500 here, with the headers (found by testing: Starlette's
        own 500 is made outside this middleware, without them); it is logged."""
        try:
            resp = await call_next(request)
        except Exception:  # noqa: BLE001 - any fault: an answer with the headers, logged
            _LOG.exception("%s %s failed", request.method, request.url.path)
            resp = Response("Internal Server Error", status_code=500,
                            media_type="text/plain")
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        resp.headers["Cross-Origin-Resource-Policy"] = "same-origin"
        resp.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        if not request.url.path.startswith("/static/"):
            resp.headers["Cache-Control"] = "no-store"
        return resp


def _fmt(value: Any, max_chars: int | None = 400) -> str:
    """A value as safe display text (Jinja2 escapes it for HTML afterwards)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        value = ", ".join(str(v) for v in value)
    return for_display(value, max_chars=max_chars)


_BADGE = Markup(' <span class="lookalike" title="{}">{}</span>')
"""The badge after an id that may print like a name it is not: the mark as visible text
and as its title (not a colour alone)."""


def _ident(value: Any, max_chars: int | None = 400, account_id: bool = True) -> Markup:
    """An account id (a handle when not ``account_id``) as :func:`_fmt` shows it, HTML
    escaped, then the badge of its look-alike mark when it has one
    (:func:`~darkmap.model.display.lookalike_mark`: mixed scripts, invisible or
    confusable characters)."""
    text = escape(_fmt(value, max_chars))
    mark = lookalike_mark(value, account_id) if isinstance(value, str) else ""
    return text + _BADGE.format(mark[2:-1], mark) if mark else text


def _handle(value: Any, max_chars: int | None = 400) -> Markup:
    """A handle or a persona's label with its badge (:func:`_ident`)."""
    return _ident(value, max_chars, account_id=False)


def _mark_text(value: Any, account_id: bool = True) -> str:
    """The look-alike mark of an id as plain text, for where no markup goes (a page's
    title), with a space before it; "" when it has none."""
    mark = lookalike_mark(value, account_id) if isinstance(value, str) else ""
    return f" {mark}" if mark else ""


def _ids_in(value: Any, max_chars: int = 1000) -> Markup:
    """A sentence naming account ids (why a link was left apart) with the badge after
    each id that has a mark (:func:`~darkmap.model.display.lookalike_pieces`)."""
    out = Markup("")
    for piece, mark in lookalike_pieces("" if value is None else str(value)):
        out += escape(_fmt(piece, max_chars))
        if mark:
            out += _BADGE.format(mark[2:-1], mark)
    return out


def _pre(value: Any, max_chars: int | None = None) -> str:
    """Multi-line attacker text for a ``<pre>``: newlines kept, controls and bidi
    overrides shown as escapes."""
    return "" if value is None else for_display(value, max_chars=max_chars, newlines=True)


def _pathseg(value: Any) -> str:
    """A value as one URL path segment: every character but letters, digits and
    ``-._~`` percent-encoded, ``/`` too (Jinja's ``urlencode`` leaves ``/``, so a
    market-written id such as ``x/../../audit`` became a link the browser resolved to
    another page). The routes that take an id (``{ref:path}``) get it back decoded."""
    return quote("" if value is None else str(value), safe="")


def _jsonable(value: Any) -> Any:
    """Plain JSON values (times as ISO text, tuples as lists)."""
    return json.loads(json.dumps(value, default=str, ensure_ascii=False))


class Workbench:
    """The state of one server: workspace (and its lock), where the operational records,
    users and audit trail are (``ops``: the workspace itself, or the team server),
    sessions, templates, clock."""

    def __init__(self, ws: Workspace, clock: Clock = utc_clock, tls: bool = False,
                 server: tuple[OpsServer, OpsServer] | None = None) -> None:
        self.ws = ws
        self.lock = views.OPS_LOCK
        self._local = threading.local()
        self.clock = clock
        self.server = server[0] if server is not None else None
        self.ops: Space = self.server if self.server is not None else ws
        self.sessions: Sessions = (ServerSessions(server[1].con, clock) if server is not None
                                   else Sessions(clock))
        self.tls = tls
        self.cookie = "__Host-dm_session" if tls else "dm_session"
        # the sign-in form's CSRF cookie, prefixed as the session's: a __Host- cookie
        # must have Path=/ (a browser drops one set for /login), so it is sent to every
        # path over TLS; it is deleted at sign-in
        self.pre_cookie, self.pre_path = (("__Host-dm_pre", "/") if tls
                                          else ("dm_pre", "/login"))
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("darkmap.web", "templates"),
            autoescape=True, undefined=jinja2.StrictUndefined)
        self.env.filters["d"] = _fmt
        self.env.filters["pre"] = _pre
        self.env.filters["ident"] = _ident
        self.env.filters["handle"] = _handle
        self.env.filters["mark"] = _mark_text
        self.env.filters["ids_in"] = _ids_in
        self.env.filters["pathseg"] = _pathseg
        self.csp_reports: list[Any] = []      # the newest _CSP_KEPT
        self.csp_count = 0                     # every report since the process started
        self.csp_log = CspLog()                # which of them go to the log

    def call(self, fn: Callable[[], T]) -> T:
        """Run library calls that write (sign-in, judgements, audit) under the one lock."""
        with self.lock:
            return fn()

    @property
    def con(self) -> Any:
        """The connection of users, credentials and the audit trail (use in :meth:`call`)."""
        return self.ops.con

    def read(self, fn: Callable[[Workspace, Space], T]) -> T:
        """Run a page's library calls on this thread's own cursor of the workspace, so
        pages are read concurrently, with where the operational records are (this
        cursor, or the team server); the operational calls inside them (which append to
        the audit trail) take :data:`views.OPS_LOCK`, the same lock as :meth:`call`."""
        ws = getattr(self._local, "ws", None)
        if ws is None:
            with self.lock:
                ws = thread_cursor(self.ws)
            self._local.ws = ws
        return fn(ws, self.server if self.server is not None else ws)

    def close(self) -> None:
        """Close the team server's connections (the workspace is the caller's)."""
        if self.server is not None:
            self.server.close()
            if isinstance(self.sessions, ServerSessions):
                self.sessions.close()

    def render(self, name: str, session: Session | None, status: int = 200,
               **ctx: Any) -> HTMLResponse:
        """A page from its template."""
        html = self.env.get_template(name).render(
            me=session.user if session else None, role=session.web_role if session else None,
            csrf=session.csrf if session else "", **ctx)
        return HTMLResponse(html, status_code=status)

    def session(self, request: Request) -> Session:
        """The live session of the request, else redirect to sign in (saying why)."""
        s, why = self.sessions.get(request.cookies.get(self.cookie))
        if s is None:
            raise _Redirect("/login" + ("" if why == "none" else f"?why={why}"))
        return s

    def check_csrf(self, s: Session, given: str | None) -> None:
        """Refuse a state change without the session's CSRF token (audited)."""
        if not Sessions.csrf_ok(s, given):
            self.call(lambda: log(self.con, s.user.user_id, "web.csrf", "denied"))
            raise _Refused(403, "refused: missing or wrong CSRF token")

    def api_user(self, request: Request, write: bool = False) -> tuple[UserRow, str]:
        """The user of an API request: bearer token, or the session cookie for reads."""
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            found = self.call(lambda: token_user(self.con, auth[7:].strip()))
            if found is None:
                raise _Refused(401, "invalid API token")
            return found
        if not write:
            s, _ = self.sessions.get(request.cookies.get(self.cookie))
            if s is not None:
                return s.user, s.web_role
        raise _Refused(401, "give an API token: Authorization: Bearer <token>")


def create_app(ws: Workspace, clock: Clock = utc_clock, tls: bool = False,
               server: tuple[OpsServer, OpsServer] | None = None,
               hosts: Iterable[str] = ()) -> FastAPI:
    """The workbench over the open workspace ``ws`` (the server holds its connection).
    ``clock`` (naive UTC) is injectable for tests; ``tls`` marks cookies Secure.
    ``server``: two connections to the team server (its operational records, users and
    audit trail; its sessions), from :func:`darkmap.store.team.open_web_server`; the app
    closes them in :meth:`Workbench.close`, the caller closes ``ws``. ``hosts``: the
    names a request's ``Host`` may give besides :data:`LOCAL_HOSTS` (the address the
    server listens on, the proxy's name); any other is refused (400)."""
    wb = Workbench(ws, clock, tls, server)
    app = FastAPI(title="darkmap workbench API", docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json")
    app.state.wb = wb
    app.add_middleware(_Hosts, allowed=frozenset(host_name(h) for h in (*LOCAL_HOSTS, *hosts)))
    app.add_middleware(_Headers)          # added last: outermost, the 400's headers too
    static = Path(str(resources.files("darkmap.web").joinpath("static")))
    app.mount("/static", StaticFiles(directory=static), name="static")
    _errors(app, wb)
    _auth_routes(app, wb)
    _pages(app, wb)
    _access_routes(app, wb)
    _record_routes(app, wb)
    _api(app, wb)
    return app


def _errors(app: FastAPI, wb: Workbench) -> None:
    """Library errors as pages (HTML) or JSON (under /api/). The handlers are plain
    functions, which Starlette runs in its thread pool: the error page looks the session
    up, a query of the team server."""

    def answer(request: Request, status: int, message: str) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=status)
        s, _ = wb.sessions.get(request.cookies.get(wb.cookie))
        return wb.render("error.html", s, status, status_code=status, message=message)

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # an unknown path or method: the error page for a browser, as every other error
        # (it was FastAPI's JSON {"detail": "Not Found"}); under /api/ JSON as there
        resp = answer(request, exc.status_code, _HTTP_ERRORS.get(exc.status_code,
                                                                  str(exc.detail)))
        resp.headers.update(exc.headers or {})
        return resp

    @app.exception_handler(_Redirect)
    def redirect(request: Request, exc: _Redirect) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": "sign in again"}, status_code=401)
        return RedirectResponse(exc.to, status_code=303)

    @app.exception_handler(_Refused)
    def refused(request: Request, exc: _Refused) -> Response:
        return answer(request, exc.status, exc.message)

    @app.exception_handler(NotFoundError)
    def not_found(request: Request, exc: NotFoundError) -> Response:
        return answer(request, 404, str(exc.args[0] if exc.args else exc))

    @app.exception_handler(AccessDenied)
    def denied(request: Request, exc: AccessDenied) -> Response:
        return answer(request, 403, str(exc))

    @app.exception_handler(DarkmapError)
    def bad(request: Request, exc: DarkmapError) -> Response:
        return answer(request, 400, str(exc))


def _form_route(app: FastAPI, wb: Workbench, path: str,
                handle: Callable[[Request, Session, FormData], Response]) -> None:
    """A form posted by a signed-in browser to ``path``: the form is read on the event
    loop; then, in the thread pool (it writes: on the loop it would hold up every other
    request), the session is looked up, its CSRF token checked (a refusal audited) and
    ``handle`` called with both."""

    def checked(request: Request, form: FormData) -> Response:
        s = wb.session(request)
        wb.check_csrf(s, str(form.get("csrf", "")))
        return handle(request, s, form)

    async def post(request: Request) -> Response:
        form = await request.form()
        return await run_in_threadpool(checked, request, form)

    app.add_api_route(path, post, methods=["POST"], include_in_schema=False)


def _auth_routes(app: FastAPI, wb: Workbench) -> None:
    """Sign in, sign out, CSP reports."""

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form(request: Request, why: str = "") -> Response:
        pre = secrets.token_urlsafe(24)
        resp = wb.render("login.html", None, why=why, pre=pre, error="")
        resp.set_cookie(wb.pre_cookie, pre, httponly=True, samesite="strict", secure=wb.tls,
                        path=wb.pre_path)
        return resp

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        # the form is read here, on the event loop; the password check (argon2id, 64 MiB,
        # some 100 ms) and the writes of a failure run in the thread pool: on the loop
        # they held up every other request, a static file's too (web audit, finding 1)
        form = await request.form()
        return await run_in_threadpool(signing_in, request, form)

    def signing_in(request: Request, form: FormData) -> Response:
        user = str(form.get("user", ""))[:64]
        pre_cookie = request.cookies.get(wb.pre_cookie)
        pre = str(form.get("csrf", ""))
        if not pre_cookie or not secrets.compare_digest(pre_cookie.encode(), pre.encode()):
            raise _Refused(403, "refused: missing or wrong CSRF token")
        try:
            # the lock is taken inside, for the reads and writes only: the password
            # check runs without it (review, M2)
            found = sign_in(wb.con, user, str(form.get("password", "")),
                            str(form.get("code", "")), wb.clock, lock=wb.lock)
        except LoginFailed as exc:
            return wb.render("login.html", None, 401, why="", pre=pre, error=str(exc))

        def start() -> str | None:
            # under the lock every suspension takes: a sign-in that finished while the
            # user was suspended starts no session (review of the Access page, M1; on
            # a team server the stored session is also read only with its sign-in)
            return None if web_store.login(wb.con, user) is None else wb.sessions.start(*found)

        sid = wb.call(start)
        if sid is None:
            return wb.render("login.html", None, 401, why="", pre=pre,
                             error="sign-in refused: wrong user, password or code")
        resp = RedirectResponse("/", status_code=303)
        resp.set_cookie(wb.cookie, sid, httponly=True, samesite="strict", secure=wb.tls,
                        path="/")
        resp.delete_cookie(wb.pre_cookie, path=wb.pre_path, secure=wb.tls, httponly=True,
                           samesite="strict")
        return resp

    def signing_out(request: Request, s: Session, form: FormData) -> Response:
        wb.sessions.end(request.cookies.get(wb.cookie))
        wb.call(lambda: log(wb.con, s.user.user_id, "web.logoff"))
        resp = RedirectResponse("/login", status_code=303)
        # deleted with the flags it was set with: a browser ignores a __Host- cookie
        # without Secure, so the deletion did nothing over TLS (found by testing)
        resp.delete_cookie(wb.cookie, path="/", secure=wb.tls, httponly=True,
                           samesite="strict")
        return resp

    _form_route(app, wb, "/logout", signing_out)

    @app.post("/csp-report", include_in_schema=False)
    async def csp_report(request: Request) -> Response:
        body = b""
        async for chunk in request.stream():    # read to the cap, not the whole body
            body += chunk[:_CSP_REPORT_BYTES - len(body)]
            if len(body) >= _CSP_REPORT_BYTES:
                break
        try:
            report = json.loads(body or b"{}")
        except (ValueError, RecursionError):    # deep nesting (found by testing: a 500)
            report = {"unreadable": True}
        # each logged (one line, escaped, cut) and counted for the audit page; the newest
        # kept (the first 1,000 were, and nothing read them: web audit, finding 9)
        wb.csp_count += 1
        wb.csp_reports.append(report)
        del wb.csp_reports[:-_CSP_KEPT]
        # the first CSP_LOGGED_PER_MINUTE of a minute, then a count (review, L3: every
        # anonymous post wrote a line)
        for line in wb.csp_log.lines(wb.clock(), wb.csp_count, report):
            _LOG.warning("%s", line)
        return Response(status_code=204)


def _pages(app: FastAPI, wb: Workbench) -> None:
    """The HTML pages."""

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home(request: Request, acknowledged: str = "") -> Response:
        s = wb.session(request)
        return wb.render("dashboard.html", s, d=wb.read(lambda w, o: views.dashboard(w, o, s.user)),
                         acknowledged=bool(acknowledged), may_ack=s.user.role != "reader")

    def acknowledging(request: Request, s: Session, form: FormData) -> Response:
        notice = str(form.get("notice", ""))[:200]
        wb.call(lambda: acknowledge(wb.ops, s.user.user_id, notice))
        return RedirectResponse("/?acknowledged=1#notices", status_code=303)

    _form_route(app, wb, "/notice", acknowledging)

    @app.get("/search", response_class=HTMLResponse, include_in_schema=False)
    def search(request: Request, q: str = "", market: str | None = None,
               drug_class: str | None = None, page: str = "") -> Response:
        s = wb.session(request)
        d = wb.read(lambda w, _: views.search_page(w, q, market or None, drug_class or None,
                                                   page))
        return wb.render("search.html", s, d=d)

    @app.get("/persona/{ref:path}", response_class=HTMLResponse, include_in_schema=False)
    def persona(request: Request, ref: str, listings_page: str = "",
                cases_page: str = "", judged: str = "") -> Response:
        s = wb.session(request)
        p = wb.read(lambda w, o: views.persona_page(w, o, s.user, ref, listings_page,
                                                    cases_page))
        return wb.render("persona.html", s, p=p, may_judge=_may_judge(s.user),
                         judged=bool(judged))

    @app.get("/account/{ref:path}", response_class=HTMLResponse, include_in_schema=False)
    def account(request: Request, ref: str, listings_page: str = "") -> Response:
        s = wb.session(request)
        d = wb.read(lambda w, o: views.account_page(w, o, s.user, ref, listings_page))
        return wb.render("account.html", s, d=d)

    @app.get("/listing/{ref:path}", response_class=HTMLResponse, include_in_schema=False)
    def listing(request: Request, ref: str) -> Response:
        s = wb.session(request)
        d = wb.read(lambda w, o: views.listing_page(w, o, s.user, ref))
        return wb.render("listing.html", s, d=d)

    @app.get("/capture/{sha}", response_class=HTMLResponse, include_in_schema=False)
    def capture(request: Request, sha: str) -> Response:
        s = wb.session(request)
        return wb.render("capture.html", s, c=wb.read(lambda w, _: views.raw_capture(w, sha)))

    @app.get("/targets", response_class=HTMLResponse, include_in_schema=False)
    def targets(request: Request, country: str = "", page: str = "") -> Response:
        s = wb.session(request)
        d = wb.read(lambda w, _: views.targets_page(w, country, page))
        return wb.render("targets.html", s, d=d)

    @app.get("/review", response_class=HTMLResponse, include_in_schema=False)
    def review(request: Request, done: str = "", queue: str = "learn") -> Response:
        s = wb.session(request)
        d = wb.read(lambda w, o: views.review_page(w, queue, o))
        return wb.render("review.html", s, d=d, done=done, may_judge=_may_judge(s.user))

    def judging(request: Request, s: Session, form: FormData) -> Response:
        a, b = str(form.get("a", "")), str(form.get("b", ""))
        _judge(wb, s.user, a, b, str(form.get("verdict", "")), str(form.get("note", "")))
        return RedirectResponse(_judged_from(str(form.get("queue", "")),
                                             str(form.get("back", ""))), status_code=303)

    _form_route(app, wb, "/review", judging)

    @app.get("/wallet/{ident:path}", response_class=HTMLResponse, include_in_schema=False)
    def wallet(request: Request, ident: str) -> Response:
        s = wb.session(request)
        return wb.render("wallet.html", s, w=wb.read(lambda w, _: views.wallet_page(w, ident)))

    @app.get("/cases", response_class=HTMLResponse, include_in_schema=False)
    def cases(request: Request, kind: str = "", page: str = "", added: str = "",
              withdrew: str = "") -> Response:
        s = wb.session(request)
        d = wb.read(lambda w, o: views.cases_page(o, s.user, kind or None, page))

        def just_added(_: Workspace, ops: Space) -> dict[str, Any] | None:
            with views.OPS_LOCK:
                return added_view(ops, s.user, added[:40])
        gone = next((r["record_id"] for r in d["records"] if r["record_id"] == withdrew
                     and r["withdrawn"] is not None), None) if withdrew else None
        return wb.render("cases.html", s, d=d, added=wb.read(just_added) if added else None,
                         may_record=s.user.role != "reader", withdrew=gone)

    def withdrawing(request: Request, s: Session, form: FormData) -> Response:
        record = str(form.get("record", ""))[:40]
        why = str(form.get("why", ""))[:4000]
        replaced = str(form.get("replaced_by", "")).strip()[:40] or None
        for name, text in (("record", record), ("why", why), ("replaced_by", replaced or "")):
            check_text(name, text)   # a NUL failed on the team server (500)
        wb.call(lambda: withdraw_record(wb.ops, s.user.user_id, record, why, replaced))
        return RedirectResponse(f"/cases?withdrew={quote(record, safe='')}", status_code=303)

    _form_route(app, wb, "/withdraw", withdrawing)

    @app.get("/graph", response_class=HTMLResponse, include_in_schema=False)
    def graph(request: Request, node: str = "") -> Response:
        s = wb.session(request)
        return wb.render("graph.html", s, node=node)

    @app.get("/audit", response_class=HTMLResponse, include_in_schema=False)
    def audit(request: Request, actor: str = "", strangers: bool = False) -> Response:
        s = wb.session(request)
        if s.web_role not in ("supervisor", "admin"):
            raise _Refused(403, f"{s.user.user_id} is {s.web_role}: the audit trail is for "
                           "supervisors and admins")
        d = wb.call(lambda: _audit_view(wb, s.user, actor or None, strangers))
        return wb.render("audit.html", s, d=d)


def _done(action: str, n: str) -> str:
    """What the access page says after an action, from the redirect's ``done`` and ``n``
    (how many): fixed words and a number, so a link to ``/access?done=...`` cannot make
    the page say anything else."""
    count = int(n) if n.isdigit() and len(n) < 7 else 0
    plural = "" if count == 1 else "s"
    return {"revoke-tokens": f"{count} API token{plural} revoked.",
            "end-sessions": f"{count} session{plural} ended.",
            "unlock": "Lockout ended." if count else "There was no lockout to end.",
            "suspend": f"User suspended: sign-in removed, API tokens revoked, {count} "
                       f"session{plural} ended; every step of theirs is refused until a "
                       "new sign-in (darkmap serve-user) reinstates them."}.get(action, "")


_TOKEN_ID = re.compile(rf"[0-9a-f]{{{web_store.TOKEN_ID_CHARS}}}")
"""A token's id as the Access page names it."""


API_RECORD_BYTES = 65_536
"""The largest body ``POST /api/records`` reads (the form's fields as JSON)."""


def _record_routes(app: FastAPI, wb: Workbench) -> None:
    """Recording a case, buy, parcel, seizure or arrest (:mod:`darkmap.web.recording`):
    the form (``/record``) and its JSON twin (``/api/records``, token only)."""

    def page(s: Session, kind: str, status: int = 200, values: dict[str, str] | None = None,
             error: str = "") -> Response:
        def view(_: Workspace, ops: Space) -> dict[str, Any]:
            with views.OPS_LOCK:
                return form_view(ops, s.user, kind)
        return wb.render("record.html", s, status, d=wb.read(view), values=values or {},
                         error=error, max_chars=MAX_FIELD_CHARS)

    @app.get("/record", response_class=HTMLResponse, include_in_schema=False)
    def record_form(request: Request, kind: str = "case") -> Response:
        return page(wb.session(request), kind)

    def recording(request: Request, s: Session, form: FormData) -> Response:
        kind = str(form.get("kind", ""))[:20]
        fields = {k: v for k, v in form.items() if k not in ("csrf", "kind")
                  and isinstance(v, str)}
        twice = sorted({k for k, _ in form.multi_items() if len(form.getlist(k)) > 1})
        try:
            if twice:   # a script's repeated field kept only its last value (review, 6)
                raise BadInputError(f"field {logged(twice[0], 40)!r} given more than once: "
                                    "give one value per field (one lot per line)")
            row, _ = wb.call(lambda: record_from_form(wb.ops, s.user.user_id, kind, fields))
        except (AccessDenied, NotFoundError, BadInputError) as exc:
            # the form again with what was typed and why it was refused: nothing retyped
            status = (403 if isinstance(exc, AccessDenied) else
                      404 if isinstance(exc, NotFoundError) else 400)
            return page(s, kind, status, fields, str(exc))
        return RedirectResponse(f"/cases?added={row.record_id}", status_code=303)

    _form_route(app, wb, "/record", recording)

    @app.post("/api/records")
    async def api_record(request: Request) -> Any:
        """Record a case, buy, parcel or seizure or arrest (token only; an officer or
        admin): a JSON object of the record form's fields with ``kind``, each a text (a
        field of one value per line may be a list of texts)."""
        body = b""
        async for chunk in request.stream():    # read to the cap, not the whole body
            body += chunk
            if len(body) > API_RECORD_BYTES:
                raise _Refused(413, f"the record is over {API_RECORD_BYTES:,} bytes")
        return await run_in_threadpool(_api_record, wb, request, body)


def _api_record(wb: Workbench, request: Request, body: bytes) -> dict[str, Any]:
    """``POST /api/records``: the caller (a token), then the record."""
    user, _ = wb.api_user(request, write=True)
    def once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        names = [k for k, _ in pairs]
        if len(set(names)) < len(names):   # the last one won without a word (review, 6)
            raise BadInputError("a field is given more than once in the JSON object")
        return dict(pairs)

    try:
        given = json.loads(body, object_pairs_hook=once)
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, BadInputError):
            raise
        given = None
    if not isinstance(given, dict):
        raise BadInputError("give a JSON object of the record form's fields, with kind "
                            '(e.g. {"kind": "seizure", "drugs": "fentanyl:500", '
                            '"compartment": "...", "provenance": "..."})')
    fields: dict[str, str] = {}
    for key, value in given.items():
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = "\n".join(value)
        if not isinstance(value, str):
            raise BadInputError(f"field {logged(str(key), 40)!r}: give a text (or a list of "
                                "texts, one per line)")
        fields[key] = value
    kind = fields.pop("kind", "")
    row, said = wb.call(lambda: record_from_form(wb.ops, user.user_id, kind, fields))
    return {"record_id": row.record_id, "kind": row.kind, "compartment": row.compartment_id,
            "said": said}


def _access_routes(app: FastAPI, wb: Workbench) -> None:
    """The access page: sign-ins, sessions and API tokens, and stopping them
    (:mod:`darkmap.web.access`)."""

    @app.get("/access", response_class=HTMLResponse, include_in_schema=False)
    def access_page(request: Request, done: str = "", n: str = "") -> Response:
        s = wb.session(request)
        d = wb.call(lambda: access_view(wb.con, wb.sessions, s.user,
                                        request.cookies.get(wb.cookie), wb.clock()))
        return wb.render("access.html", s, d=d, done=_done(done, n),
                         team_server=wb.server is not None)

    def changing_access(request: Request, s: Session, form: FormData) -> Response:
        action, user = str(form.get("action", "")), str(form.get("user", ""))[:64]
        token = str(form.get("token", "")).strip().lower() or None
        if action not in ACTIONS:
            raise BadInputError(f"action {logged(action)!r}: one of {', '.join(ACTIONS)}")
        if token is not None and not _TOKEN_ID.fullmatch(token):
            raise BadInputError(f"token {logged(token, 40)!r}: not a token id as the Access "
                                "page shows it")

        def run() -> int:
            # the session was checked before the lock: a user suspended meanwhile (two
            # admins suspending each other) acts no more (review of the Access page, L2)
            if web_store.login(wb.con, s.user.user_id) is None:
                raise AccessDenied(f"{s.user.user_id} has no sign-in now: it was suspended")
            return act(wb.con, wb.sessions, s.user.user_id, action, user, token, wb.clock)

        n = wb.call(run)
        if wb.sessions.get(request.cookies.get(wb.cookie))[0] is None:
            return RedirectResponse("/login", status_code=303)  # signed out everywhere
        return RedirectResponse(f"/access?done={action}&n={n}", status_code=303)

    _form_route(app, wb, "/access", changing_access)


def _audit_view(wb: Workbench, user: UserRow, actor: str | None,
                strangers: bool = False) -> dict[str, Any]:
    """The newest audit entries (of one actor) of the user's agency (and of actors that
    are no user), and whether the whole chain holds. Refused sign-ins under names that
    are no user are counted apart, listed only when asked (``strangers``)."""
    n, problem = api.verify_audit(wb.ops)
    log(wb.con, user.user_id, "audit.read", of_actor=None if actor is None else logged(actor))
    rest, tried = strangers_apart(wb.con, entries_for(wb.con, user, actor=actor))
    shown = (tried if strangers else rest)[-200:]
    return {"checked": n, "problem": problem, "entries": list(reversed(shown)),
            "csp_count": wb.csp_count,
            "csp_latest": [csp_line(c) for c in reversed(wb.csp_reports[-20:])],
            "strangers": len(tried), "showing_strangers": strangers, "actor": actor or "",
            "latest_stranger": tried[-1] if tried else None}


def _judged_from(queue: str, back: str) -> str:
    """Where the browser goes after a verdict: the persona page it was given on
    (``back``, a persona id: only ever a path under ``/persona/``, whatever it holds),
    else the review queue it was given from."""
    if back:
        return f"/persona/{quote(back[:200], safe='')}?judged=1"
    return "/review?done=1" + ("&queue=uncertain" if queue == "uncertain" else "")


def _may_judge(user: UserRow) -> bool:
    """Whether ``user`` may judge links: not an operational reader. The review page
    offers its verdict buttons only then (the POST refuses a reader regardless)."""
    return user.role != "reader"


def _judge(wb: Workbench, user: UserRow, a: str, b: str, verdict: str,
           note: str) -> dict[str, Any]:
    """Confirm, reject or mark unsure a proposed link (feeds ``judge``); a reader may not."""
    if verdict not in VERDICTS:
        raise BadInputError(f"verdict {verdict!r}: one of {', '.join(VERDICTS)}")
    if not _may_judge(user):
        wb.call(lambda: log(wb.con, user.user_id, "web.judge", "denied", a=logged(a),
                            b=logged(b)))
        raise AccessDenied(f"{user.user_id} is a reader and may not judge links")
    if wb.server is not None:
        server = wb.server

        def on_team() -> dict[str, Any]:
            still_acting(wb.con, user)   # not suspended while the request waited
            j = judge_for_team(wb.ws, server.con, a, b, VERDICTS[verdict],
                               author=user.user_id, note=note[:500] or None)
            log(wb.con, user.user_id, "web.judge", a=logged(a), b=logged(b),
                verdict=VERDICTS[verdict],
                shared="team server")
            return dict(j)

        return wb.call(on_team)

    def run() -> dict[str, Any]:
        still_acting(wb.con, user)   # not suspended while the request waited (review, 5)
        j = api.judge(wb.ws, a, b, VERDICTS[verdict], author=user.user_id,
                      note=note[:500] or None)
        log(wb.con, user.user_id, "web.judge", a=logged(a), b=logged(b),
            verdict=VERDICTS[verdict])
        return dict(j)

    return wb.call(run)


def _api(app: FastAPI, wb: Workbench) -> None:
    """The JSON API: the pages' data, same access control."""

    @app.get("/api/search")
    def api_search(request: Request, q: str, market: str | None = None,
                   drug_class: str | None = None, page: str = "") -> Any:
        """Personas, listings (a page of them) and feedback matching ``q``."""
        wb.api_user(request)
        return _jsonable(wb.read(lambda w, _: views.search_page(w, q, market, drug_class,
                                                                page)))

    @app.get("/api/persona/{ref:path}")
    def api_persona(request: Request, ref: str, listings_page: str = "",
                    cases_page: str = "") -> Any:
        """A persona with its evidence and the cases the caller may read (listings and
        cases a page at a time)."""
        user, _ = wb.api_user(request)
        return _jsonable(wb.read(lambda w, o: views.persona_page(w, o, user, ref,
                                                                 listings_page, cases_page)))

    @app.get("/api/account/{ref:path}")
    def api_account(request: Request, ref: str, listings_page: str = "") -> Any:
        """An account (its listings a page at a time)."""
        user, _ = wb.api_user(request)
        return _jsonable(wb.read(lambda w, o: views.account_page(w, o, user, ref,
                                                                 listings_page)))

    @app.get("/api/listing/{ref:path}")
    def api_listing(request: Request, ref: str) -> Any:
        """A listing."""
        user, _ = wb.api_user(request)
        return _jsonable(wb.read(lambda w, o: views.listing_page(w, o, user, ref)))

    @app.get("/api/targets")
    def api_targets(request: Request, country: str = "", page: str = "") -> Any:
        """The harm-ranked targets, a page at a time."""
        wb.api_user(request)
        return _jsonable(wb.read(lambda w, _: views.targets_page(w, country, page)))

    @app.get("/api/records")
    def api_records(request: Request, kind: str = "", page: str = "") -> Any:
        """Operational records the caller may read (audited), a page at a time."""
        user, _ = wb.api_user(request)
        return _jsonable(wb.read(lambda w, o: views.cases_page(o, user, kind or None,
                                                               page)))

    @app.get("/api/dashboard")
    def api_dashboard(request: Request) -> Any:
        """The case and operation dashboard."""
        user, _ = wb.api_user(request)
        return _jsonable(wb.read(lambda w, o: views.dashboard(w, o, user)))

    @app.get("/api/review")
    def api_review(request: Request, queue: str = "learn") -> Any:
        """The review queue (``learn``, as ``darkmap review`` proposes, or
        ``uncertain``) and the judged estimate."""
        wb.api_user(request)
        return _jsonable(wb.read(lambda w, o: views.review_page(w, queue, o)))

    @app.post("/api/judge")
    def api_judge(request: Request, a: str, b: str, verdict: str, note: str = "") -> Any:
        """Confirm / reject / unsure a proposed link (token only)."""
        user, _ = wb.api_user(request, write=True)
        return _jsonable(_judge(wb, user, a, b, verdict, note))

    @app.post("/api/notice")
    def api_notice(request: Request, notice: str) -> Any:
        """Acknowledge a deconfliction notice to the caller's agency (token only; an
        officer or admin)."""
        user, _ = wb.api_user(request, write=True)
        wb.call(lambda: acknowledge(wb.ops, user.user_id, notice[:200]))
        return {"acknowledged": notice[:200]}

    @app.post("/api/withdraw")
    def api_withdraw(request: Request, record: str, why: str,
                     replaced_by: str = "") -> Any:
        """Withdraw a record (token only; its author, or an admin of its agency, who may
        still write its compartment): by whom, when, why, replaced by what."""
        user, _ = wb.api_user(request, write=True)
        for name, text in (("record", record), ("why", why), ("replaced_by", replaced_by)):
            check_text(name, text)
        row = wb.call(lambda: withdraw_record(wb.ops, user.user_id, record[:40], why[:4000],
                                              replaced_by.strip()[:40] or None))
        return _jsonable(row._asdict())

    @app.get("/api/wallet/{ident:path}")
    def api_wallet(request: Request, ident: str) -> Any:
        """A wallet cluster."""
        wb.api_user(request)
        return _jsonable(wb.read(lambda w, _: views.wallet_page(w, ident)))

    @app.get("/api/graph/expand")
    def api_graph(request: Request, node: str) -> Any:
        """The neighbours of one node of the link chart."""
        user, _ = wb.api_user(request)
        return _jsonable(wb.read(lambda w, o: views.graph_expand(w, o, user, node)))
