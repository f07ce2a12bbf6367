"""`darkmap keys`: OpenPGP key statistics of the workspace (parsed, shared, failed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import duckdb

from darkmap.cli.common import emit_json, library_errors, main, open_ws, workspace_option

__all__ = ["key_statistics"]

_FAILED_WHERE = "(reason LIKE '%PGP key block%' OR reason LIKE '%PGP column%')"


def key_statistics(con: duckdb.DuckDBPyConnection, limit: int = 50) -> dict[str, Any]:
    """Key counts from a workspace connection.

    ``key_occurrences``: published key blocks parsed (one per block and key, from the
    ``pgp_fingerprint`` identifiers); ``distinct_fingerprints``: rows of ``pgp_keys``;
    ``shared``: fingerprints published by more than one account, with the accounts;
    ``failed``: key blocks quarantined with their reasons.
    """
    occ = con.execute(
        "SELECT count(*), count(DISTINCT value), count(DISTINCT account_id) FROM identifiers "
        "WHERE kind = 'pgp_fingerprint'").fetchone()
    n_keys = con.execute("SELECT count(*) FROM pgp_keys").fetchone()
    algos = con.execute(
        "SELECT algorithm, bits, count(*) FROM pgp_keys GROUP BY ALL ORDER BY 3 DESC, 1, 2"
    ).fetchall()
    shared = con.execute(
        "SELECT value, list(DISTINCT account_id ORDER BY account_id), "
        "count(DISTINCT account_id) AS n FROM identifiers "
        "WHERE kind = 'pgp_fingerprint' AND account_id IS NOT NULL "
        "GROUP BY value HAVING n > 1 ORDER BY n DESC, value").fetchall()
    failed_n = con.execute(f"SELECT count(*) FROM quarantine WHERE {_FAILED_WHERE}").fetchone()
    failed = con.execute(
        f"SELECT source, locator, field, reason FROM quarantine WHERE {_FAILED_WHERE} "
        "ORDER BY source, locator LIMIT ?", [limit]).fetchall()
    by_reason = con.execute(
        f"SELECT regexp_replace(reason, '^.*?PGP key block \\d+ in column ''[^'']*'': ', '')"
        f" AS r, count(*) FROM quarantine WHERE {_FAILED_WHERE} GROUP BY r ORDER BY 2 DESC"
    ).fetchall()
    return {
        "key_occurrences": occ[0] if occ else 0,
        "distinct_fingerprints": n_keys[0] if n_keys else 0,
        "accounts_with_keys": occ[2] if occ else 0,
        "algorithms": [{"algorithm": a, "bits": b, "keys": n} for a, b, n in algos],
        "shared_fingerprints": len(shared),
        "accounts_sharing_a_key": len({a for _, accts, _ in shared for a in accts}),
        "shared": [{"fingerprint": f, "accounts": list(accts)} for f, accts, _ in shared],
        "failed": failed_n[0] if failed_n else 0,
        "failed_by_reason": {r: n for r, n in by_reason},
        "failures": [{"source": s, "locator": loc, "field": f, "reason": r}
                     for s, loc, f, r in failed],
    }


@main.command("keys")
@workspace_option
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
@click.option("--limit", default=50, show_default=True, help="Failures to list.")
@library_errors
def keys_cmd(workspace: Path | None, as_json: bool, limit: int) -> None:
    """PGP keys: parsed, distinct fingerprints, keys shared between accounts, failures.

    Example: darkmap keys -w case-42 --json
    """
    ws = open_ws(workspace)
    try:
        stats = key_statistics(ws.con, limit)
    finally:
        ws.close()
    if as_json:
        emit_json(stats)
        return
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
