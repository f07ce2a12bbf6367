"""`darkmap team`: share judgements with other analysts through a PostgreSQL server.

Each command imports the team store (psycopg, DuckDB) when it runs (#21)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import click

from darkmap.cli.common import DarkmapError, emit_json, main, open_ws, workspace_option
from darkmap.model.display import for_display

if TYPE_CHECKING:
    from darkmap.store.team import SyncResult

_SERVER_HELP = ("PostgreSQL URL [default: $DARKMAP_SERVER]; off this machine it must use "
                "sslmode=verify-full (set when absent).")


def _server(server: str | None) -> str:
    from darkmap.store.team import default_server  # noqa: PLC0415

    dsn = server or default_server()
    if not dsn:
        raise DarkmapError("no team server: pass --server or set $DARKMAP_SERVER "
                           "(e.g. postgresql://analyst@db.internal/darkmap)")
    return dsn


@main.group("team")
def team_group() -> None:
    """Share analyst judgements through a team PostgreSQL server.

    The server records each judgement under the database role that pushed it; only its
    author or a supervisor may withdraw it. See docs/team-server.md.

    Example: darkmap team sync --server postgresql://analyst@db.internal/darkmap
    """


@team_group.command("init")
@click.option("--server", default=None, help=_SERVER_HELP)
def team_init(server: str | None) -> None:
    """Create the team schema on the server, or upgrade an older one (safe to repeat).

    Run by an administrator (a role that may create roles). Then grant
    darkmap_analyst to each analyst's login role, darkmap_supervisor to supervisors.

    Example: darkmap team init --server postgresql://admin@db.internal/darkmap
    """
    from darkmap.store.team import ANALYST_ROLE, SUPERVISOR_ROLE, init_server  # noqa: PLC0415

    res = init_server(_server(server))
    if res.upgraded_from == 0:
        click.echo(f"team server ready (schema {res.version})")
    elif res.upgraded_from < res.version:
        click.echo(f"team server upgraded from schema {res.upgraded_from} to {res.version}; "
                   f"{res.legacy_marked} earlier judgements keep their author marked "
                   "'unverified:'")
    else:
        click.echo(f"team server ready (schema {res.version}, already current)")
    if 0 < res.ops_upgraded_from < res.ops_version:
        click.echo(f"operational tables upgraded from schema {res.ops_upgraded_from} to "
                   f"{res.ops_version} (docs/operations.md, \"Storage\": what the server "
                   "enforces)")
    click.echo(f"analysts: GRANT {ANALYST_ROLE} TO <role>; supervisors: "
               f"GRANT {SUPERVISOR_ROLE} TO <role>")
    for role in res.direct_grants:
        click.echo(f"warning: role {for_display(role, max_chars=64)} holds privileges on "
                   f"team_judgements directly; revoke them and grant {ANALYST_ROLE} instead",
                   err=True)


def _print_sync(res: SyncResult) -> None:
    click.echo(f"pushed {res.pushed} new as {for_display(res.role, max_chars=64)}, "
               f"pulled {res.pulled} new, {res.withdrawals_pulled} withdrawals; "
               f"server holds {res.server_total}")
    if res.withdrawals_refused:
        click.echo(f"{res.withdrawals_refused} withdrawals refused: only a judgement's author "
                   "or a supervisor may withdraw it", err=True)
    if res.quarantined or res.not_pushed:
        click.echo(f"{res.quarantined} invalid server rows skipped (kept in team_quarantine), "
                   f"{res.not_pushed} judgements not pushed:", err=True)
        for line in res.problems:
            click.echo(f"  {line}", err=True)
        hidden = res.quarantined + res.not_pushed - len(res.problems)
        if hidden > 0:
            click.echo(f"  ... and {hidden} more", err=True)


@team_group.command("sync")
@click.option("--server", default=None, help=_SERVER_HELP)
@workspace_option
@click.option("--json", "as_json", is_flag=True)
def team_sync(server: str | None, workspace: Path | None, as_json: bool) -> None:
    """Push this workspace's judgements and pull everyone else's.

    Invalid rows on the server are skipped, counted and kept in the workspace's
    team_quarantine table; the sync goes on.

    Example: darkmap team sync -w case-42
    """
    from darkmap.store.team import sync_judgements  # noqa: PLC0415

    dsn = _server(server)
    ws = open_ws(workspace)
    try:
        res = sync_judgements(ws, dsn)
    finally:
        ws.close()
    if as_json:
        emit_json(asdict(res))
    else:
        _print_sync(res)
