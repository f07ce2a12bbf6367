"""`darkmap team`: share judgements with other analysts through a PostgreSQL server."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from darkmap.cli.common import DarkmapError, emit_json, main, open_ws, workspace_option
from darkmap.store.team import TeamServerError, default_server, init_server, sync_judgements


def _server(server: str | None) -> str:
    dsn = server or default_server()
    if not dsn:
        raise DarkmapError("no team server: pass --server or set $DARKMAP_SERVER "
                           "(e.g. postgresql://analyst@10.0.0.5/darkmap)")
    return dsn


@main.group("team")
def team_group() -> None:
    """Share analyst judgements through a team PostgreSQL server.

    Example: darkmap team sync --server postgresql://analyst@db.internal/darkmap
    """


@team_group.command("init")
@click.option("--server", default=None, help="PostgreSQL URL [default: $DARKMAP_SERVER].")
def team_init(server: str | None) -> None:
    """Create the team tables on the server (safe to repeat).

    Example: darkmap team init --server postgresql://analyst@db.internal/darkmap
    """
    try:
        init_server(_server(server))
    except TeamServerError as exc:
        raise DarkmapError(str(exc)) from exc
    click.echo("team server ready")


@team_group.command("sync")
@click.option("--server", default=None, help="PostgreSQL URL [default: $DARKMAP_SERVER].")
@workspace_option
@click.option("--json", "as_json", is_flag=True)
def team_sync(server: str | None, workspace: Path | None, as_json: bool) -> None:
    """Push this workspace's judgements and pull everyone else's.

    Example: darkmap team sync -w case-42
    """
    ws = open_ws(workspace)
    try:
        res = sync_judgements(ws, _server(server))
    except TeamServerError as exc:
        raise DarkmapError(str(exc)) from exc
    finally:
        ws.close()
    if as_json:
        emit_json(asdict(res))
    else:
        click.echo(f"pushed {res.pushed}, pulled {res.pulled} new, "
                   f"{res.withdrawals_pulled} withdrawals; server holds {res.server_total}")
