"""The workbench's demo set-up: an agency, an analyst with a printed password and TOTP
secret, and one case on the top target, so ``darkmap demo --serve`` shows a working
workbench at once. Also the helper that starts the server as a background process."""

from __future__ import annotations

import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import darkmap.api as api
from darkmap.errors import WorkspaceStateError
from darkmap.ops.access import add_agency, add_user
from darkmap.ops.records import Case, add_record
from darkmap.store.operations import user
from darkmap.store.workspace import Workspace
from darkmap.web.auth import create_login

__all__ = ["DEMO_AGENCY", "DEMO_USER", "DemoLogin", "demo_login", "start_background"]

DEMO_AGENCY = "demo-agency"
DEMO_USER = "demo-analyst"


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
        add_agency(con, DEMO_USER, DEMO_AGENCY, "Demo agency", "NL", "demo desk")
        add_user(con, DEMO_USER, DEMO_USER, DEMO_AGENCY, "officer")
        try:
            top = api.targets(ws, limit=1)
        except WorkspaceStateError:
            top = []
        links = [("persona", t["persona_id"]) for t in top]
        add_record(ws, DEMO_USER, Case("Demo case on the top target",
                                       "created by darkmap demo --serve"),
                   provenance="darkmap demo", links=links)
    password = secrets.token_urlsafe(12)
    secret = create_login(ws, DEMO_USER, DEMO_USER, password, "supervisor")
    return DemoLogin(DEMO_USER, password, secret)


def start_background(workspace: Path, host: str, port: int, log: Path) -> int:
    """Start ``darkmap serve`` on ``workspace`` as a detached process; its pid."""
    with log.open("ab") as out:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
            [sys.executable, "-m", "darkmap", "serve", "-w", str(workspace), "--host", host,
             "--port", str(port)], stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)
    return proc.pid
