"""`darkmap report` and `darkmap demo`.

Each command imports the library it uses when it runs (#21): the pipeline, the report
and the workbench load numpy, scipy, DuckDB, Jinja2 and psycopg, which ``--help`` does
not need.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from darkmap.cli.common import (
    OPS_SERVER_ENV,
    DarkmapError,
    main,
    open_reference,
    open_ws,
    outside_workspace,
    say,
    short,
    workspace_option,
)
from darkmap.model.display import shell_arg

if TYPE_CHECKING:
    from darkmap.pipeline import StageResult

__all__ = ["DEMO_MARKER", "demo_cmd", "report_cmd"]

DEMO_MARKER = ".darkmap-demo"
"""The file ``darkmap demo`` writes into a folder it creates; only a folder holding it is
ever deleted by a later ``darkmap demo``."""


@main.command("report")
@workspace_option
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="Output HTML file [default: <workspace>/report.html].")
@click.option("--as", "by", default=None, metavar="USER",
              help="Add the operations section as this user may see it (audited).")
def report_cmd(workspace: Path | None, out: Path | None, by: str | None) -> None:
    """Write the HTML report of everything in the workspace.

    Example: darkmap report -w case-42 -o case-42.html
    """
    from darkmap.report.html import write_report  # noqa: PLC0415
    from darkmap.store.team import open_ops_server  # noqa: PLC0415

    outside_workspace(out, workspace)
    server = os.environ.get(OPS_SERVER_ENV) if by else None
    # --as reads operational records, audited: in the workspace (written), or on the team
    # server, the workspace then giving reference data only (read-only, beside `serve`)
    ws = open_reference(workspace) if server else open_ws(workspace, read_only=by is None)
    try:
        if server:
            with open_ops_server(server, ws) as ops:
                path = write_report(ws, out, by, ops)
        else:
            path = write_report(ws, out, by)
    finally:
        ws.close()
    say(f"report: {path}")


def _default_data() -> Path | None:
    env = os.environ.get("DARKMAP_DATA")
    if env:
        return Path(env)
    guess = Path(__file__).resolve().parents[4] / "shared" / "data"
    return guess if guess.is_dir() else None


def prepare_demo_folder(path: Path, fresh: bool) -> None:
    """Make ``path`` ready for the demo, deleting only what an earlier demo created.

    A missing or empty folder is (re)used and marked with :data:`DEMO_MARKER`; a folder
    holding the marker is emptied first when ``fresh``; anything else (a file, a link, a
    folder with other content, a case workspace) is refused with :class:`DarkmapError`
    and left exactly as it was.
    """
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise DarkmapError(f"{path}: exists and is not a folder; choose another -w for the "
                           "demo")
    marked = (path / DEMO_MARKER).is_file()
    if path.is_dir() and not marked and any(path.iterdir()):
        raise DarkmapError(
            f"{path}: folder is not empty and was not created by `darkmap demo` (no "
            f"{DEMO_MARKER} file); nothing was deleted: choose a new or empty folder (or delete "
            "this one yourself)")
    if fresh and marked:
        shutil.rmtree(path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)   # as every new workspace
    from darkmap.store.workspace import utcnow  # noqa: PLC0415

    marker = path / DEMO_MARKER
    if not marker.exists():
        marker.write_text(f"created by darkmap demo at {utcnow():%Y-%m-%d %H:%M:%S} UTC; "
                          "a later `darkmap demo` may delete this folder\n", encoding="utf-8")


@main.command("demo")
@click.option("--workspace", "-w", type=click.Path(path_type=Path), default=None,
              help="The demo's own folder [default: ./demo-workspace; $DARKMAP_WORKSPACE is "
                   "not used, so an analyst's workspace is never taken for it].")
@click.option("--seed", default=7, show_default=True, help="Simulator seed.")
@click.option("--vendors", type=click.IntRange(min=1), default=300, show_default=True,
              help="Simulated vendor accounts.")
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="Real data folder to ingest too [default: $DARKMAP_DATA or ../shared/data].")
@click.option("--fresh/--keep", default=True, show_default=True,
              help="Start from an empty workspace (only a folder an earlier demo created is "
                   "emptied).")
@click.option("--serve", is_flag=True,
              help="Then start the web workbench on it in the background and print its URL, "
                   "a demo user's password and TOTP secret (`make demo` does).")
@click.option("--port", default=8600, show_default=True, type=click.IntRange(1, 65535),
              help="Port of the workbench (with --serve).")
def demo_cmd(workspace: Path | None, seed: int, vendors: int, data: Path | None,
             fresh: bool, serve: bool, port: int) -> None:
    """Run the main job end to end: simulate, ingest, analyse, report.

    The demo works in a folder of its own: a new or empty one (it marks it with a
    .darkmap-demo file) or one an earlier demo created. It refuses any other folder and
    deletes nothing there.

    Example: darkmap demo -w demo-workspace
    """
    from darkmap.pipeline import DemoContext, run_stages  # noqa: PLC0415
    from darkmap.report.html import write_report  # noqa: PLC0415
    from darkmap.web.demo import stop_previous  # noqa: PLC0415

    path = workspace or Path("demo-workspace")
    if serve and stop_previous(path) is not None:
        say("stopped the workbench of the previous demo")
    prepare_demo_folder(path, fresh)
    ws = open_ws(path, create=True)
    ctx = DemoContext(world=path / "world", real_data=data or _default_data(), seed=seed,
                      vendors=vendors)

    def show(res: StageResult) -> None:
        say(f"  {res.name:12s} {res.status:8s} {res.seconds:7.1f}s  {short(res.detail, 110)}")

    say(f"darkmap demo in {path} (seed {seed}, {vendors} vendors, "
        f"real data: {ctx.real_data or 'none'})")
    try:
        run_stages(ws, ctx, show)
        operation = ctx.results.get("operation")
        report = write_report(ws, user=operation.get("lead")
                              if isinstance(operation, dict) else None)
    finally:
        ws.close()
    say(f"report: {report.resolve()}")
    if isinstance(operation, dict):
        _say_ops_users(operation, path)
    # one line: the stage lines above are the ones indented
    say(f"next: darkmap targets -w {shell_arg(str(path))} (personas ranked by harm, with "
        "the ids `darkmap persona show` takes)")
    if serve:
        _serve_demo(path, port)


def _say_ops_users(operation: dict[str, Any], path: Path) -> None:
    """The demo's last lines: the operational users it made, by agency and role, which
    ``--as`` takes (the report's operations section reads as the lead officer)."""
    lead, partner = operation.get("lead"), operation.get("partner")
    say("operational users the demo made (pass one to --as):")
    by_agency: dict[tuple[str, str], list[str]] = {}
    for agency, country, user, role in operation.get("users", []):
        note = ("; the lead: the report reads as them" if user == lead else
                "; the partner on the case team" if user == partner else "")
        by_agency.setdefault((agency, country), []).append(
            f"{short(user, 40)} ({role}{note})")
    for (agency, country), users in by_agency.items():
        say(f"  {short(agency, 30)} ({country}): {', '.join(users)}")
    if lead:
        say(f"  e.g. darkmap ops show --as {shell_arg(str(lead))} -w {shell_arg(str(path))}")


def _serve_demo(path: Path, port: int) -> None:
    """The last step of ``demo --serve``: a demo user, then the workbench in the
    background; print how to sign in."""
    from darkmap.web.demo import current_code, demo_login, start_background  # noqa: PLC0415

    ws = open_ws(path)
    try:
        login = demo_login(ws)
    finally:
        ws.close()
    pid = start_background(path, "127.0.0.1", port, path / "workbench.log")
    say(f"workbench: http://127.0.0.1:{port}/  (pid {pid}; stop it with: kill {pid})")
    say(f"  user {login.user}  password {login.password}")
    say(f"  TOTP secret {login.totp_secret} (RFC 6238: add it to an authenticator app, "
        f"or `oathtool --totp -b {login.totp_secret}`); code now: {current_code(login)}")
