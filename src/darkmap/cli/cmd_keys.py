"""`darkmap keys`: OpenPGP key statistics of the workspace (parsed, shared, failed)."""

from __future__ import annotations

from pathlib import Path

import click

from darkmap.cli.common import emit_json, main, open_ws, workspace_option
from darkmap.store.evidence import KeyStatistics, key_statistics

__all__ = ["keys_cmd"]


@main.command("keys")
@workspace_option
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
@click.option("--limit", default=50, show_default=True, help="Failures to list.")
def keys_cmd(workspace: Path | None, as_json: bool, limit: int) -> None:
    """PGP keys: parsed, distinct fingerprints, keys shared between accounts, failures.

    Example: darkmap keys -w case-42 --json
    """
    ws = open_ws(workspace, read_only=True)
    try:
        stats = key_statistics(ws.con, limit)
    finally:
        ws.close()
    if as_json:
        emit_json(stats)
        return
    _print_keys(stats)


def _print_keys(stats: KeyStatistics) -> None:
    """The statistics as text: counts, shared keys, failures by reason, failures."""
    click.echo(f"key blocks parsed       {stats['key_occurrences']:>8,d}")
    click.echo(f"distinct fingerprints   {stats['distinct_fingerprints']:>8,d}")
    click.echo(f"accounts with a key     {stats['accounts_with_keys']:>8,d}")
    click.echo(f"keys shared by accounts {stats['shared_fingerprints']:>8,d}"
               f"  ({stats['accounts_sharing_a_key']} accounts)")
    click.echo(f"key blocks failed       {stats['failed']:>8,d}")
    for s in stats["shared"]:
        click.echo(f"  {s['fingerprint']}  {', '.join(s['accounts'])}")
    for reason, n in stats["failed_by_reason"].items():
        click.echo(f"  failed {n:>5d}  {reason}")
    for f in stats["failures"]:
        click.echo(f"  {Path(f['source']).name} {f['locator']}: {f['reason']}")
