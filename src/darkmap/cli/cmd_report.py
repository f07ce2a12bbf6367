"""`darkmap report` and `darkmap demo`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import click

from darkmap.cli.common import main, open_ws, workspace_option
from darkmap.pipeline import DemoContext, StageResult, run_stages
from darkmap.report.html import write_report

__all__ = ["demo_cmd", "report_cmd"]


@main.command("report")
@workspace_option
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="Output HTML file [default: <workspace>/report.html].")
def report_cmd(workspace: Path | None, out: Path | None) -> None:
    """Write the HTML report of everything in the workspace.

    Example: darkmap report -w case-42 -o case-42.html
    """
    ws = open_ws(workspace)
    try:
        path = write_report(ws, out)
    finally:
        ws.close()
    click.echo(f"report: {path}")


def _default_data() -> Path | None:
    env = os.environ.get("DARKMAP_DATA")
    if env:
        return Path(env)
    guess = Path(__file__).resolve().parents[4] / "shared" / "data"
    return guess if guess.is_dir() else None


@main.command("demo")
@workspace_option
@click.option("--seed", default=7, show_default=True, help="Simulator seed.")
@click.option("--vendors", default=300, show_default=True, help="Simulated vendor accounts.")
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="Real data folder to ingest too [default: $DARKMAP_DATA or ../shared/data].")
@click.option("--fresh/--keep", default=True, show_default=True,
              help="Start from an empty workspace.")
def demo_cmd(workspace: Path | None, seed: int, vendors: int, data: Path | None,
             fresh: bool) -> None:
    """Run the main job end to end: simulate, ingest, analyse, report.

    Example: darkmap demo -w demo-workspace
    """
    path = workspace or Path("demo-workspace")
    if fresh and path.exists():
        shutil.rmtree(path)
    ws = open_ws(path, create=True)
    ctx = DemoContext(world=path / "world", real_data=data or _default_data(), seed=seed,
                      vendors=vendors)

    def show(res: StageResult) -> None:
        click.echo(f"  {res.name:12s} {res.status:8s} {res.seconds:7.1f}s  "
                   f"{_short(res.detail)}")

    click.echo(f"darkmap demo in {path} (seed {seed}, {vendors} vendors, "
               f"real data: {ctx.real_data or 'none'})")
    run_stages(ws, ctx, show)
    report = write_report(ws)
    ws.close()
    click.echo(f"report: {report.resolve()}")


def _short(detail: object) -> str:
    text = str(detail) if detail is not None else ""
    return text if len(text) < 110 else text[:107] + "..."
