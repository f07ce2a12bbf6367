"""`darkmap demo --serve`'s last step (issue #14): the demo user signs in with the
printed password and TOTP secret on a workbench started in the background, and the next
demo stops it. On a small demo world."""

from __future__ import annotations

from pathlib import Path

import httpx
from web_support import csrf_of, free_port

from darkmap.pipeline import DemoContext, run_stages
from darkmap.store.workspace import Workspace
from darkmap.web.auth import totp, utc_clock
from darkmap.web.demo import PID_FILE, demo_login, start_background, stop_previous


def test_demo_user_signs_in_on_the_background_workbench(tmp_path: Path) -> None:
    path = tmp_path / "ws"
    with Workspace.init(path) as ws:
        results = run_stages(ws, DemoContext(world=tmp_path / "world", real_data=None,
                                             seed=3, vendors=20))
        assert {r.status for r in results} == {"ok"}
        login = demo_login(ws)
    port = free_port()
    pid = start_background(path, "127.0.0.1", port, tmp_path / "workbench.log")
    try:
        assert (path / PID_FILE).read_text(encoding="ascii") == str(pid)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
            form = c.get("/login").text
            r = c.post("/login", data={"user": login.user, "password": login.password,
                                       "csrf": csrf_of(form),
                                       "code": totp(login.totp_secret, utc_clock())})
            assert r.status_code == 303
            page = c.get("/").text
            assert "Demo case on the top target" in page and login.user in page
    finally:
        stopped = stop_previous(path)
    assert stopped == pid
    assert not Path(f"/proc/{pid}").exists()
