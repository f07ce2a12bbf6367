"""The CLI's shared parts: the ``darkmap`` command group, options and error handling."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from darkmap.errors import DarkmapError as LibraryError
from darkmap.store.workspace import Workspace, default_path

__all__ = ["DarkmapError", "emit_json", "main", "open_ws", "workspace_option"]


class DarkmapError(click.ClickException):
    """A user-facing error raised by the CLI itself: printed as one line, exit code 1."""


class _Group(click.Group):
    """The ``darkmap`` group: an error darkmap raises on purpose (``darkmap.errors``)
    becomes one line on stderr and exit code 1. Anything else is a bug: its traceback
    shows."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LibraryError as exc:
            raise DarkmapError(str(exc)) from exc


def workspace_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--workspace`` (default ``$DARKMAP_WORKSPACE`` or ./darkmap-workspace)."""
    return click.option(
        "--workspace", "-w", type=click.Path(path_type=Path), default=None,
        help="Workspace folder [default: $DARKMAP_WORKSPACE or ./darkmap-workspace].",
    )(f)


def open_ws(path: Path | None, create: bool = False, read_only: bool = False) -> Workspace:
    """Open (``create``: create) the workspace at ``path`` or the default one.

    ``read_only`` is for commands that only answer questions: they work while another
    process reads the workspace too, and can never change it.
    """
    path = path or default_path()
    return Workspace.init(path) if create else Workspace.open(path, read_only=read_only)


def emit_json(data: Any) -> None:
    """Print JSON to stdout."""
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="darkmap")
def main() -> None:
    """darkmap: investigation workbench for darknet drug markets.

    \b
    Example:
      darkmap init case-42 && darkmap ingest -w case-42 saved-pages/
    """


@main.command()
@click.argument("path", type=click.Path(path_type=Path))
def init(path: Path) -> None:
    """Create a workspace folder (DuckDB file + capture store).

    Example: darkmap init case-42
    """
    ws = open_ws(path, create=True)
    click.echo(f"workspace ready: {path} (schema version {ws.schema_version()})")
    ws.close()


@main.command()
@workspace_option
@click.option("--json", "as_json", is_flag=True, help="Print the table counts as JSON.")
def status(workspace: Path | None, as_json: bool) -> None:
    """Row counts of every table in the workspace.

    Example: darkmap status -w case-42
    """
    ws = open_ws(workspace)
    counts = ws.table_counts()
    ws.close()
    if as_json:
        emit_json(counts)
        return
    for name, n in counts.items():
        click.echo(f"{name:28s} {n:>10,d}")
