"""Shared by the web tests: a workbench on a small demo world with two agencies, served
for real by uvicorn on loopback (in a thread), with an injectable clock."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn

import darkmap
from darkmap.ops.access import add_agency, add_compartment, add_user, grant
from darkmap.ops.audit import show
from darkmap.ops.records import Arrest, Case, Seizure, add_record
from darkmap.pipeline import DemoContext, run_stages
from darkmap.store import operations as ops_store
from darkmap.store.workspace import Workspace
from darkmap.web.app import Workbench, create_app
from darkmap.web.auth import create_login, totp

PASSWORD = "correct horse battery staple"  # noqa: S105 - the test users' password


@dataclass
class FakeClock:
    """A clock the test moves (naive UTC)."""

    now: datetime = field(default_factory=lambda: datetime(2026, 12, 1, 9, 0, 0))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


_LAST_START = [datetime(2026, 12, 1, 9, 0, 0)]


def next_clock() -> FakeClock:
    """A clock starting a day after the previous one handed out in this session: the
    web tests share users, whose newest TOTP step is stored, so time never goes back."""
    _LAST_START[0] += timedelta(days=1)
    return FakeClock(_LAST_START[0])


@dataclass
class World:
    """The workspace and what the tests need to know about it."""

    path: Path
    secrets: dict[str, str]
    persona: str          # the top target (case of agency A links to it)
    case_a: str           # agency A's case
    seizure_b: str        # agency B's seizure


def build_world(base: Path, vendors: int = 40) -> World:
    """Demo pipeline on a small world (its operation stage sets up agencies of its own),
    then two agencies (t-nca: GB, t-bka: DE), each with an officer; t-nca's case links the
    top target, t-bka records a seizure and an arrest."""
    path = base / "ws"
    ws = Workspace.init(path)
    try:
        results = {r.name: r.status for r in run_stages(
            ws, DemoContext(world=base / "world", real_data=None, seed=5, vendors=vendors))}
        assert set(results.values()) == {"ok"}, results
        con = ws.con
        # the demo's operation stage set up its own agencies: one of their admins onboards
        # the two agencies of these tests (as a task force onboards a partner)
        demo_admin = next(u.user_id for u in ops_store.users(con) if u.role == "admin")
        add_agency(con, demo_admin, "t-nca", "National Crime Agency", "GB", "nca desk")
        add_user(con, demo_admin, "ana", "t-nca", "admin")
        add_user(con, "ana", "alice", "t-nca", "officer")
        add_agency(con, "ana", "t-bka", "Bundeskriminalamt", "DE", "bka desk")
        add_user(con, "ana", "bert", "t-bka", "admin")
        add_user(con, "bert", "bob", "t-bka", "officer")
        add_user(con, "ana", "rita", "t-nca", "reader")
        top = darkmap.targets(ws, limit=1)[0]["persona_id"]
        case_a = add_record(ws, "alice", Case("Operation A case", "nca only"),
                            provenance="test", links=[("persona", top)]).record_id
        comp = add_compartment(con, "bob", "agency", "bka ops").compartment_id
        seizure_b = add_record(ws, "bob", Seizure(drugs_g={"cocaine": 120.0}),
                               compartment=comp, country="DE", provenance="test",
                               links=[("persona", top)]).record_id
        add_record(ws, "bob", Arrest("someone"), compartment=comp, country="DE",
                   provenance="test")
        grant(con, "ana", add_compartment(con, "ana", "agency", "nca x").compartment_id,
              "user", "rita", "read")
        secrets = {u: create_login(ws, "ana" if u in ("alice", "rita", "ana") else "bert",
                                   u, PASSWORD, role)
                   for u, role in (("ana", "admin"), ("alice", "analyst"),
                                   ("bob", "analyst"), ("rita", "analyst"))}
    finally:
        ws.close()
    return World(path, secrets, top, case_a, seizure_b)


_SHARED: list[World] = []


def shared_world(factory: pytest.TempPathFactory) -> World:
    """One :func:`build_world` per test session (the web tests share it; each test that
    signs in moves its own clock, so TOTP steps never repeat)."""
    if not _SHARED:
        _SHARED.append(build_world(factory.mktemp("web-world")))
    return _SHARED[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    """A running workbench: its base URL and state (the one workspace connection)."""

    url: str
    wb: Workbench

    def audit(self, actor: str) -> list[dict]:
        """The audit entries of ``actor``, read through the server's connection."""
        return self.wb.call(lambda: show(self.wb.ws.con, actor=actor))

    def sql(self, query: str) -> list[tuple]:
        """A read through the server's connection (test set-up only)."""
        return self.wb.call(lambda: self.wb.ws.con.execute(query).fetchall())


@contextmanager
def serving(path: Path, clock: FakeClock | None = None, tls: bool = False) -> Iterator[Served]:
    """The workbench on ``path`` served by uvicorn on loopback (``tls``: cookies marked
    as behind a TLS proxy)."""
    ws = Workspace.open(path)
    app = create_app(ws, clock=clock, tls=tls) if clock is not None else create_app(ws, tls=tls)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    try:
        yield Served(f"http://127.0.0.1:{port}", app.state.wb)
    finally:
        server.should_exit = True
        thread.join(10)
        ws.close()


def csrf_of(html: str) -> str:
    """The CSRF token in a page's first form."""
    marker = 'name="csrf" value="'
    i = html.index(marker) + len(marker)
    return html[i:html.index('"', i)]


def login(client: httpx.Client, user: str, secret: str, clock: FakeClock,
          password: str = PASSWORD, code: str | None = None) -> httpx.Response:
    """Sign in through the form (fetching its CSRF token first)."""
    form = client.get("/login")
    return client.post("/login", data={
        "user": user, "password": password, "csrf": csrf_of(form.text),
        "code": code if code is not None else totp(secret, clock())})
