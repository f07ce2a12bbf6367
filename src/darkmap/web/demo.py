"""The workbench's demo set-up: an agency, an analyst with a printed password and TOTP
secret, and one case on the top target, so ``darkmap demo --serve`` shows a working
workbench at once. Also the helper that starts the server as a background process."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import darkmap.api as api
from darkmap.errors import WorkspaceStateError
from darkmap.ops.access import add_agency, add_user
from darkmap.ops.records import Case, add_record
from darkmap.store.operations import user, users
from darkmap.store.workspace import Workspace
from darkmap.web.auth import create_login, totp, utc_clock

__all__ = ["DEMO_ADMIN", "DEMO_AGENCY", "DEMO_USER", "PID_FILE", "DemoLogin", "current_code",
           "demo_login", "start_background", "stop_previous"]

DEMO_AGENCY = "demo-agency"
DEMO_USER = "demo-analyst"
DEMO_ADMIN = "demo-admin"
"""The demo agency's admin, who gives the demo user its sign-in."""
PID_FILE = ".workbench.pid"
_STARTED: dict[int, subprocess.Popen[bytes]] = {}
"""Servers this process started (kept, so they are reaped, never left as zombies)."""


@dataclass(frozen=True)
class DemoLogin:
    """What the demo prints: user, password, TOTP secret."""

    user: str
    password: str
    totp_secret: str


def demo_login(ws: Workspace) -> DemoLogin:
    """Create (or reset) the demo analyst, with a fresh password and TOTP secret, and
    a case in its agency's compartment on the top-ranked target."""
    con = ws.con
    if user(con, DEMO_USER) is None:
        # the demo's operation stage may have set up the task force already: one of its
        # admins then onboards the demo agency, as a partner is onboarded
        admins = [u.user_id for u in users(con) if u.role == "admin"]
        by = admins[0] if admins else DEMO_USER
        add_agency(con, by, DEMO_AGENCY, "Demo agency", "NL", "demo desk")
        add_user(con, by, DEMO_ADMIN, DEMO_AGENCY, "admin")
        add_user(con, DEMO_ADMIN, DEMO_USER, DEMO_AGENCY, "officer")
        try:
            top = api.targets(ws, limit=1)
        except WorkspaceStateError:
            top = []
        links = [("persona", t["persona_id"]) for t in top]
        add_record(ws, DEMO_USER, Case("Demo case on the top target",
                                       "created by darkmap demo --serve"),
                   provenance="darkmap demo", links=links)
    password = secrets.token_urlsafe(12)
    # the demo agency's admin gives the sign-in, as an admin does for any user
    secret = create_login(ws.con, DEMO_ADMIN, DEMO_USER, password, "supervisor")
    return DemoLogin(DEMO_USER, password, secret)


def start_background(workspace: Path, host: str, port: int, log: Path) -> int:
    """Start ``darkmap serve`` on ``workspace`` as a detached process (its pid, also
    written to :data:`PID_FILE` in the workspace) and wait until it listens."""
    with log.open("ab") as out:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
            [sys.executable, "-c", "from darkmap.cli import main; main()", "serve",
             "-w", str(workspace), "--host", host, "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    _STARTED[proc.pid] = proc
    (workspace / PID_FILE).write_text(str(proc.pid), encoding="ascii")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise WorkspaceStateError(f"the workbench did not start (see {log})")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return proc.pid
        except OSError:
            time.sleep(0.2)
    raise WorkspaceStateError(f"the workbench did not listen on {host}:{port} (see {log})")


def stop_previous(workspace: Path) -> int | None:
    """Stop the workbench an earlier ``darkmap demo --serve`` started on ``workspace``
    (the pid it recorded, if that process is still a ``darkmap serve``); its pid."""
    pid_file = workspace / PID_FILE
    if not pid_file.is_file():
        return None
    pid = int(pid_file.read_text(encoding="ascii").strip() or 0)
    pid_file.unlink()
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if b"darkmap" not in raw or b"serve" not in raw.split(b"\0"):
        return None
    os.kill(pid, signal.SIGTERM)
    if pid in _STARTED:                  # our own child: reap it
        _STARTED.pop(pid).wait(30)
        return pid
    for _ in range(100):
        if not Path(f"/proc/{pid}").exists():
            break
        time.sleep(0.1)
    return pid


def current_code(login: DemoLogin) -> str:
    """The TOTP code of the demo user right now (valid for this 30 s step)."""
    return totp(login.totp_secret, utc_clock())
