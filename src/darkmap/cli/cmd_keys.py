"""`darkmap keys`: OpenPGP key statistics of the workspace (parsed, shared, failed).

The store (DuckDB) is imported when the command runs (#21)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from darkmap.cli.common import emit_json, main, open_ws, say, short, workspace_option

if TYPE_CHECKING:
    from darkmap.store.evidence import KeyStatistics

__all__ = ["keys_cmd"]


@main.command("keys")
@workspace_option
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True,
              help="Failures to list.")
def keys_cmd(workspace: Path | None, as_json: bool, limit: int) -> None:
    """PGP keys: parsed, distinct fingerprints, keys shared between accounts, failures.

    Example: darkmap keys -w case-42 --json
    """
    from darkmap.store.evidence import key_statistics  # noqa: PLC0415

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
    """The statistics as text: counts, shared keys, failures by reason, failures (file
    names and reasons come from the evidence: escapes shown, long ones cut)."""
    say(f"key blocks parsed       {stats['key_occurrences']:>8,d}")
    say(f"distinct fingerprints   {stats['distinct_fingerprints']:>8,d}")
    say(f"accounts with a key     {stats['accounts_with_keys']:>8,d}")
    say(f"keys shared by accounts {stats['shared_fingerprints']:>8,d}"
        f"  ({stats['accounts_sharing_a_key']} accounts)")
    say(f"key blocks failed       {stats['failed']:>8,d}")
    for s in stats["shared"]:
        say(f"  {s['fingerprint']}  {short(', '.join(s['accounts']), 400)}")
    for reason, n in stats["failed_by_reason"].items():
        say(f"  failed {n:>5d}  {short(reason, 200)}")
    for f in stats["failures"]:
        say(f"  {short(Path(f['source']).name, 80)} {short(f['locator'], 80)}: "
            f"{short(f['reason'], 200)}")
