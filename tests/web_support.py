"""Shared by the web tests: a workbench on a small demo world with two agencies, served
for real by uvicorn on loopback (in a thread), with an injectable clock.

Two stores (:data:`STORES`): ``duckdb`` keeps users, sign-ins and operational records in
the workspace; ``postgres`` keeps them on a real team server (a throw-away database on
``$DARKMAP_TEST_PG``, the ``web_pg`` fixture of tests/conftest.py), the same agencies,
users and records made there through the library, and the workbench reads the workspace
read-only, as ``darkmap serve --server`` does."""

from __future__ import annotations

import csv
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import uvicorn

import darkmap
from darkmap.ops.access import add_agency, add_compartment, add_user, grant
from darkmap.ops.audit import show
from darkmap.ops.records import Arrest, Case, Seizure, add_record
from darkmap.pipeline import DemoContext, run_stages
from darkmap.store import operations as ops_store
from darkmap.store.operations import Con, Space
from darkmap.store.team import open_web_server
from darkmap.store.workspace import Workspace
from darkmap.web.app import Workbench, create_app
from darkmap.web.auth import create_login, totp

PASSWORD = "correct horse battery staple"  # noqa: S105 - the test users' password
STORES = ("duckdb", "postgres")


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
    server: str | None = None   # postgres: the workbench's login (darkmap_ops_service)
    store: str = "duckdb"


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
        # the demo's operation stage set up its own agencies: one of their admins onboards
        # the two agencies of these tests (as a task force onboards a partner)
        demo_admin = next(u.user_id for u in ops_store.users(ws.con) if u.role == "admin")
        top = darkmap.targets(ws, limit=1)[0]["persona_id"]
        world = _onboard(ws, demo_admin, path, top)
    finally:
        ws.close()
    return world


def build_server_world(duck: World, server: str) -> World:
    """The same agencies, users, records and sign-ins made on the team server (``server``:
    the workbench's service login, on a database with the team schema and no user yet:
    ``ana`` sets it up), over the workspace of ``duck`` as reference data."""
    with Workspace.open(duck.path) as ws, open_web_server(server, ws) as ops:
        world = _onboard(ops, "ana", duck.path, duck.persona)
    world.server, world.store = server, "postgres"
    return world


def _onboard(space: Space, by: str, path: Path, top: str) -> World:
    """t-nca (ana admin, alice officer, rita reader) and t-bka (bert admin, bob officer),
    onboarded by ``by``; a case of t-nca and a seizure of t-bka on the top target
    ``top``; workbench sign-ins for ana, alice, bob and rita."""
    con = space.con
    add_agency(con, by, "t-nca", "National Crime Agency", "GB", "nca desk")
    add_user(con, by, "ana", "t-nca", "admin")
    add_user(con, "ana", "alice", "t-nca", "officer")
    add_agency(con, "ana", "t-bka", "Bundeskriminalamt", "DE", "bka desk")
    add_user(con, "ana", "bert", "t-bka", "admin")
    add_user(con, "bert", "bob", "t-bka", "officer")
    add_user(con, "ana", "rita", "t-nca", "reader")
    case_a = add_record(space, "alice", Case("Operation A case", "nca only"),
                        provenance="test", links=[("persona", top)]).record_id
    comp = add_compartment(con, "bob", "agency", "bka ops").compartment_id
    seizure_b = add_record(space, "bob", Seizure(drugs_g={"cocaine": 120.0}),
                           compartment=comp, country="DE", provenance="test",
                           links=[("persona", top)]).record_id
    add_record(space, "bob", Arrest("someone"), compartment=comp, country="DE",
               provenance="test")
    grant(con, "ana", add_compartment(con, "ana", "agency", "nca x").compartment_id,
          "user", "rita", "read")
    secrets = {u: create_login(con, "ana" if u in ("alice", "rita", "ana") else "bert",
                               u, PASSWORD, role)
               for u, role in (("ana", "admin"), ("alice", "analyst"),
                               ("bob", "analyst"), ("rita", "analyst"))}
    return World(path, secrets, top, case_a, seizure_b)


LISTINGS_HEADER = ["scraped_at", "market", "listing_id", "title", "vendor", "price",
                   "currency", "category", "ships_from", "ships_to", "feedback_count"]
"""The columns of the listings CSV :func:`listings_csv` writes (what the importer reads)."""


def listings_csv(base: Path, rows: list[list[str]]) -> Path:
    """The folder ``base/src`` holding ``cerberus.csv``: ``rows`` under
    :data:`LISTINGS_HEADER`."""
    src = base / "src"
    src.mkdir()
    with (src / "cerberus.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(LISTINGS_HEADER)
        w.writerows(rows)
    return src


def add_eve(con: Con) -> str:
    """Agency ``ag`` and its officer ``eve``, a supervisor in the workbench signing in
    with :data:`PASSWORD`: her TOTP secret."""
    add_agency(con, "eve", "ag", "Agency", "GB", "desk")
    add_user(con, "eve", "eve", "ag", "officer")
    return create_login(con, "eve", "eve", PASSWORD, "supervisor")


def listings_workspace(base: Path, rows: list[list[str]]) -> tuple[Path, str]:
    """A workspace at ``base/ws`` of the listings ``rows`` (:func:`listings_csv`),
    ingested, linked and assessed, with the sign-in of :func:`add_eve`: the workspace's
    folder and eve's TOTP secret."""
    src = listings_csv(base, rows)
    path = base / "ws"
    with darkmap.init_workspace(path) as ws:
        darkmap.ingest(ws, [src])
        darkmap.link(ws)
        darkmap.assess_listings(ws)
        secret = add_eve(ws.con)
    return path, secret


REAL_SEIZURES = 130
"""Seizures alice records on the real world's top persona (more than a page of records)."""


def build_real_world(base: Path, data: Path) -> World:
    """The workbench's world on real data: the seized Dream seller table and the Hansa
    listings of December 2016 ingested, assessed and linked with the CLI (1,197 accounts,
    14,755 listings; ``hansa:pckabml`` sells 514), the agencies of :func:`_onboard` set
    up on the empty workspace by ana, and :data:`REAL_SEIZURES` seizures of t-nca's case
    linked to the persona of ``hansa:pckabml`` (``World.persona``)."""
    from click.testing import CliRunner

    from darkmap.cli import main

    folder = base / "input"
    folder.mkdir(parents=True)
    for name in ("seized/dream-2016-sellers.sql", "listings/hansa-2016-12.csv"):
        (folder / Path(name).name).write_bytes((data / name).read_bytes())
    path = base / "ws"
    for args in (["ingest", "-q", "--init", "--allow-unrecognised", "-w", str(path),
                  str(folder)], ["assess", "-w", str(path)], ["link", "-w", str(path)]):
        res = CliRunner().invoke(main, args, prog_name="darkmap")
        assert res.exit_code == 0, (args, res.output, res.exception)
    with Workspace.open(path) as ws:
        top = darkmap.show_persona(ws, "hansa:pckabml")["persona_id"]
        world = _onboard(ws, "ana", path, top)
        for n in range(REAL_SEIZURES):
            add_record(ws, "alice", Seizure(drugs_g={"mdma": float(n + 1)}), country="GB",
                       case_id=world.case_a, provenance="test", links=[("persona", top)])
    return world


_SHARED: dict[str, World] = {}


def shared_real_world(factory: pytest.TempPathFactory, data: Path) -> World:
    """One :func:`build_real_world` per test session."""
    if "real" not in _SHARED:
        _SHARED["real"] = build_real_world(factory.mktemp("web-real"), data)
    return _SHARED["real"]


def shared_world(factory: pytest.TempPathFactory, store: str = "duckdb",
                 request: pytest.FixtureRequest | None = None) -> World:
    """One :func:`build_world` per test session (the web tests share it; each test that
    signs in moves its own clock, so TOTP steps never repeat), and with ``store``
    ``postgres`` one :func:`build_server_world` of it on the ``web_pg`` server (fixture
    taken through ``request``)."""
    if "duckdb" not in _SHARED:
        _SHARED["duckdb"] = build_world(factory.mktemp("web-world"))
    if store == "postgres" and store not in _SHARED:
        assert request is not None
        _SHARED[store] = build_server_world(_SHARED["duckdb"],
                                            request.getfixturevalue("web_pg"))
    return _SHARED[store]


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
        """The audit entries of ``actor``, read through the server's connection (the
        workspace's, or the team server's)."""
        return self.wb.call(lambda: show(self.wb.con, actor=actor))

    def sql(self, query: str) -> list[tuple]:
        """A read of the workspace through the server's connection (test set-up only)."""
        return self.wb.call(lambda: self.wb.ws.con.execute(query).fetchall())


@contextmanager
def serving(world: World | Path, clock: FakeClock | None = None,
            tls: bool = False) -> Iterator[Served]:
    """The workbench on the world's workspace served by uvicorn on loopback (``tls``:
    cookies marked as behind a TLS proxy); for a ``postgres`` world over its team server
    with the workspace read-only, as ``darkmap serve --server`` runs."""
    dsn = world.server if isinstance(world, World) else None
    path = world.path if isinstance(world, World) else world
    ws = Workspace.open(path, read_only=dsn is not None)
    conns = (open_web_server(dsn, ws), open_web_server(dsn)) if dsn else None
    app = create_app(ws, clock=clock, tls=tls, server=conns) if clock is not None \
        else create_app(ws, tls=tls, server=conns)
    try:
        with served_app(app) as url:
            yield Served(url, app.state.wb)
    finally:
        app.state.wb.close()
        ws.close()


@contextmanager
def served_app(app: Any, log_level: str = "warning") -> Iterator[str]:
    """``app`` served by uvicorn on a free loopback port; its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level=log_level, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def signed_in(srv: tuple[Served, FakeClock], world: World, user: str) -> Iterator[httpx.Client]:
    """A client of the served workbench signed in as ``user`` (a fresh TOTP step each)."""
    served, clock = srv
    clock.advance(seconds=31)
    with httpx.Client(base_url=served.url, timeout=60) as c:
        assert login(c, user, world.secrets[user], clock).status_code == 303
        yield c


def browser_sign_in(page: Any, url: str, user: str, secret: str, clock: FakeClock) -> None:
    """Sign ``user`` in on a chromium ``page`` (Playwright) of the workbench at ``url``."""
    clock.advance(seconds=31)  # a fresh TOTP step
    page.goto(url + "/login")
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=code]", totp(secret, clock()))
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")


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


def harm_marks_shown(html: str, element_id: str, rows: list[Any]) -> None:
    """Assert that the list or table ``element_id`` of a workbench page shows ``rows``
    (target rows, in order) with their harm score, marked ``*`` in an ``abbr`` whose
    title explains it exactly when the row has no sales evidence, and that the page's
    legend (``harm-legend``) says what the mark means."""
    tag = "ol" if html.count(f'<ol id="{element_id}"') else "table"
    body = html.split(f'<{tag} id="{element_id}"', 1)[1].split(f"</{tag}>", 1)[0]
    shown = body.split("<li>" if tag == "ol" else "<tr><td>")[1:]
    assert len(shown) == len(rows), (element_id, len(shown), len(rows))
    for row, part in zip(rows, shown, strict=True):
        assert quote(row["persona_id"], safe="") in part
        assert str(row["harm_score"]) in part
        marked = '<abbr class="no-sales" title="no sales evidence' in part
        assert marked == ("*</abbr>" in part) == (not row["sales_evidence"]), part
    legend = html.split('id="harm-legend"', 1)[1].split("</p>", 1)[0]
    assert "*" in legend and "no sales evidence" in legend and "volume" in legend
