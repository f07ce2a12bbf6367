"""`darkmap serve`: the web workbench, and the sign-ins and API tokens of its users.

With ``--server`` (or ``$DARKMAP_OPS_SERVER``, as `darkmap ops`) users, sign-ins,
sessions, tokens, operational records and the audit trail are the team server's
(PostgreSQL, shared by every workbench process on it) and the workspace is only read.

Each command imports the workbench when it runs (#21): the application, uvicorn and the
stores load FastAPI, psycopg, DuckDB and numpy, which ``--help`` does not need.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from darkmap.cli.common import DarkmapError, main, open_ws, say, workspace_option
from darkmap.web import WEB_ROLES

if TYPE_CHECKING:
    from darkmap.store.operations import Con

__all__ = ["serve_cmd", "serve_token_cmd", "serve_user_cmd"]


def _server_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--server`` (default ``$DARKMAP_OPS_SERVER``)."""
    return click.option(
        "--server", envvar="DARKMAP_OPS_SERVER", default=None, metavar="URL",
        help="Team server (postgresql://...; a login role in darkmap_ops_service) holding "
             "users, sessions and records [default: $DARKMAP_OPS_SERVER].")(f)


@contextmanager
def _users(workspace: Path | None, server: str | None) -> Iterator[Con]:
    """Where sign-ins are kept: the team server, else the workspace."""
    from darkmap.store.team import open_web_server  # noqa: PLC0415

    if server:
        with open_web_server(server) as ops:
            yield ops.con
        return
    with open_ws(workspace) as ws:
        yield ws.con


@main.command("serve")
@workspace_option
@_server_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (put TLS in front: docs/workbench.md).")
@click.option("--port", default=8600, show_default=True, type=click.IntRange(1, 65535))
@click.option("--tls-cookies", is_flag=True,
              help="Mark cookies Secure (__Host-): set when a TLS reverse proxy fronts it.")
@click.option("--allowed-host", "allowed_hosts", multiple=True, metavar="NAME",
              help="A name the browser may reach the workbench by (the Host header: the "
                   "TLS proxy's name), besides --host, 127.0.0.1, localhost and [::1]; "
                   "NAME:PORT for that port only; repeatable. Any other Host is refused "
                   "(400).")
def serve_cmd(workspace: Path | None, server: str | None, host: str, port: int,
              tls_cookies: bool, allowed_hosts: tuple[str, ...]) -> None:
    """Run the web workbench over a workspace, or a team server (--server).

    Over a workspace this process holds it. With --server (a PostgreSQL URL) several
    processes share the server's users, sessions, records and audit trail, and the
    workspace is opened read-only for personas, listings and wallets.

    Analysts sign in with password and TOTP code (`darkmap serve-user`); scripts use
    /api/ with a token (`darkmap serve-token`).

    A request is served only under a name the workbench knows (its Host header):
    --host, 127.0.0.1, localhost, [::1], and each --allowed-host, so a web page that
    rebinds its own name to this address (DNS rebinding) is refused.

    Example: darkmap serve -w case-42 --port 8600 --allowed-host workbench.internal
    """
    import uvicorn  # noqa: PLC0415

    from darkmap.store.team import open_web_server  # noqa: PLC0415
    from darkmap.web.app import create_app  # noqa: PLC0415

    sock = _listen(host, port)  # a port in use is said before any work, in one line
    try:
        ws = open_ws(workspace, read_only=bool(server))
        try:
            conns = (open_web_server(server, ws), open_web_server(server)) if server else None
            app = create_app(ws, tls=tls_cookies, server=conns,
                             hosts=(host, *allowed_hosts))
            try:
                where = f"team server, workspace {ws.path} read-only" if server \
                    else f"workspace {ws.path}"
                say(f"darkmap workbench on http://{_url_host(host)}:{port}/ ({where})")
                uvicorn.Server(uvicorn.Config(
                    app, host=host, port=port, log_level="warning", proxy_headers=False,
                    server_header=False)).run(sockets=[sock])
            finally:
                app.state.wb.close()
        finally:
            ws.close()
    finally:
        sock.close()


def _listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host``:``port`` for uvicorn; a port in use or an address
    that is not this machine's is a :class:`DarkmapError` saying what to change (uvicorn
    itself would log it and exit with code 3)."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise DarkmapError(f"--host {host}: not an address of this machine ({exc.strerror}); "
                           "give an IP address or name such as 127.0.0.1") from exc
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise DarkmapError(f"port {port} on {host} is in use by another program (another "
                               "`darkmap serve`?); stop it or choose another --port") from exc
        raise DarkmapError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; give "
                           "another --host or --port") from exc
    sock.set_inheritable(True)
    return sock


def _url_host(host: str) -> str:
    """``host`` as written in a URL (an IPv6 address in brackets)."""
    return f"[{host}]" if ":" in host else host


@main.command("serve-user")
@workspace_option
@_server_option
@click.argument("user")
@click.option("--by", "by", required=True,
              help="The admin doing it: an admin of the user's agency.")
@click.option("--role", "web_role", type=click.Choice(WEB_ROLES), default=None,
              help="Role in the workbench [default: analyst].")
@click.option("--password", default=None, help="The new password (at least 12 characters; "
              "asked for when not given).")
@click.option("--suspend", is_flag=True, help="Suspend the user instead: password and TOTP "
              "secret removed, API tokens revoked, sessions ended (on a team server, on "
              "every workbench process, and their own login role refused), every step "
              "refused until a new sign-in reinstates them.")
@click.option("--unlock", is_flag=True, help="End the user's lockout (failed sign-ins) "
              "instead.")
def serve_user_cmd(workspace: Path | None, server: str | None, user: str, by: str,
                   web_role: str | None, password: str | None, suspend: bool,
                   unlock: bool) -> None:
    """Give an operational user (`darkmap ops user add`) a workbench sign-in, or suspend
    the user, or end their lockout.

    --by must be an admin of the user's agency, who may also set their own (any other
    user may not give themselves a sign-in or raise their own role; during set-up the
    workspace's only user may); audited. A new sign-in reinstates a suspended user.
    Prints the new TOTP
    secret once: enter it in the user's authenticator app. With --server the sign-in is
    the team server's (run it with the workbench's login role). A running workbench
    does the same from its Access page (`/access`).

    Examples: darkmap serve-user alice --by ana --role analyst -w case-42;
    darkmap serve-user alice --by ana --suspend -w case-42
    """
    if suspend and unlock:
        raise click.UsageError("--suspend or --unlock, not both")
    if (suspend or unlock) and (password is not None or web_role is not None):
        raise click.UsageError("--password and --role go with a new sign-in, not --suspend "
                               "or --unlock")
    if suspend or unlock:
        _suspend_or_unlock(workspace, server, user, by, suspend)
        return
    from darkmap.web.auth import create_login  # noqa: PLC0415

    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    from darkmap.store.operations import suspension  # noqa: PLC0415

    with _users(workspace, server) as con:
        held = suspension(con, user)
        secret = create_login(con, by, user, password, web_role or "analyst")
    if held is not None:
        say(f"{user}: reinstated (suspended by {held.suspended_by} at "
            f"{held.suspended_at:%Y-%m-%d %H:%M} UTC)")
    say(f"{user}: TOTP secret {secret} (RFC 6238, SHA-1, 30 s, 6 digits)")


def _suspend_or_unlock(workspace: Path | None, server: str | None, user: str, by: str,
                       suspend: bool) -> None:
    """``serve-user --suspend`` / ``--unlock``: over a workspace no workbench holds it (no
    session is open); on a team server its stored sessions end."""
    from darkmap.store.operations import PgOps  # noqa: PLC0415
    from darkmap.web.access import suspend as suspend_login  # noqa: PLC0415
    from darkmap.web.access import unlock as end_lockout  # noqa: PLC0415
    from darkmap.web.auth import ServerSessions, Sessions, utc_clock  # noqa: PLC0415

    with _users(workspace, server) as con:
        if not suspend:
            held = end_lockout(con, by, user, utc_clock)
            say(f"{user}: lockout ended" if held else f"{user}: was not locked out")
            return
        sessions = ServerSessions(con) if isinstance(con, PgOps) else Sessions()
        done = suspend_login(con, sessions, by, user, utc_clock)
    was = f" (workbench role {done['web_role']})" if done["web_role"] else " (there was none)"
    again = " (was already suspended)" if done["already_suspended"] else ""
    say(f"{user}: suspended{again}: sign-in removed{was}, {done['tokens_revoked']} token(s) "
        f"revoked, {done['sessions_ended']} session(s) ended; every step of theirs is "
        "refused until `darkmap serve-user --role` gives a new sign-in")
    if server is not None or isinstance(con, PgOps):
        refused = int(done.get("connections_refused") or 0)
        say(f"{user}: their own database login role on the team server (darkmap ops, psql) "
            f"reads and writes nothing now; {done.get('connections_ended') or 0} open "
            "connection(s) of it ended" + (
                f", {refused} not (the server's owner needs pg_signal_backend)"
                if refused else "") + "; `ALTER ROLE ... NOLOGIN` by the owner takes "
            "away the login itself")


@main.command("serve-token")
@workspace_option
@_server_option
@click.argument("user")
@click.option("--label", default=None, help="What the token is for (default: api); with "
              "--revoke, only the tokens of this label.")
@click.option("--revoke", is_flag=True, help="Revoke the user's tokens instead (all, or "
              "those of --label); replacing a sign-in (`serve-user`) revokes them too.")
@click.option("--by", "by", default=None, help="With --revoke: who does it, the user or an "
              "admin of the user's agency (default: the user).")
def serve_token_cmd(workspace: Path | None, server: str | None, user: str,
                    label: str | None, revoke: bool, by: str | None) -> None:
    """Issue an API token for a user with a sign-in (shown once), or revoke them.

    Examples: darkmap serve-token ana --label nightly-export -w case-42;
    darkmap serve-token ana --revoke --by ana -w case-42 (audited)
    """
    from darkmap.web.auth import create_token, revoke_tokens  # noqa: PLC0415

    if by is not None and not revoke:
        raise click.UsageError("--by goes with --revoke")
    with _users(workspace, server) as con:
        if revoke:
            n = revoke_tokens(con, by or user, user, label)
            say(f"{user}: {n} token{'s' if n != 1 else ''} revoked")
            return
        token = create_token(con, user, label or "api")
    say(token)
