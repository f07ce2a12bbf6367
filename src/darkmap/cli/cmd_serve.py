"""`darkmap serve`: the web workbench, and the sign-ins and API tokens of its users."""

from __future__ import annotations

from pathlib import Path

import click
import uvicorn

from darkmap.cli.common import main, open_ws, say, workspace_option
from darkmap.web.app import create_app
from darkmap.web.auth import WEB_ROLES, create_login, create_token

__all__ = ["serve_cmd", "serve_token_cmd", "serve_user_cmd"]


@main.command("serve")
@workspace_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (put TLS in front: docs/workbench.md).")
@click.option("--port", default=8600, show_default=True, type=click.IntRange(1, 65535))
@click.option("--tls-cookies", is_flag=True,
              help="Mark cookies Secure (__Host-): set when a TLS reverse proxy fronts it.")
def serve_cmd(workspace: Path | None, host: str, port: int, tls_cookies: bool) -> None:
    """Run the web workbench over a workspace (this process holds it).

    Analysts sign in with password and TOTP code (`darkmap serve-user`); scripts use
    /api/ with a token (`darkmap serve-token`).

    Example: darkmap serve -w case-42 --port 8600
    """
    ws = open_ws(workspace)
    try:
        say(f"darkmap workbench on http://{host}:{port}/ (workspace {ws.path})")
        uvicorn.run(create_app(ws, tls=tls_cookies), host=host, port=port,
                    log_level="warning", proxy_headers=False, server_header=False)
    finally:
        ws.close()


@main.command("serve-user")
@workspace_option
@click.argument("user")
@click.option("--by", "by", required=True, help="The admin doing it (the user's agency).")
@click.option("--role", "web_role", type=click.Choice(WEB_ROLES), default="analyst",
              show_default=True, help="Role in the workbench.")
@click.password_option("--password", help="The new password (at least 12 characters).")
def serve_user_cmd(workspace: Path | None, user: str, by: str, web_role: str,
                   password: str) -> None:
    """Give an operational user (`darkmap ops user add`) a workbench sign-in.

    Prints the new TOTP secret once: enter it in the user's authenticator app.

    Example: darkmap serve-user ana --by ana --role supervisor -w case-42
    """
    with open_ws(workspace) as ws:
        secret = create_login(ws, by, user, password, web_role)
    say(f"{user}: TOTP secret {secret} (RFC 6238, SHA-1, 30 s, 6 digits)")


@main.command("serve-token")
@workspace_option
@click.argument("user")
@click.option("--label", default="api", show_default=True, help="What the token is for.")
def serve_token_cmd(workspace: Path | None, user: str, label: str) -> None:
    """Issue an API token for a user with a sign-in (shown once).

    Example: darkmap serve-token ana --label nightly-export -w case-42
    """
    with open_ws(workspace) as ws:
        token = create_token(ws, user, label)
    say(token)
