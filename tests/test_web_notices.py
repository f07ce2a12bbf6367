"""Deconfliction notices on the workbench's dashboard: listed with when they came and
whether someone acknowledged them, acknowledged from the page (or ``POST /api/notice``)
by an officer or admin of the agency, never by a reader; audited. Against the real
application served by uvicorn on loopback, over a workspace and a real team server."""

from __future__ import annotations

import re

import httpx
from web_support import (
    PASSWORD,
    FakeClock,
    Served,
    World,
    csrf_of,
    login,
    signed_in,
)

from darkmap.ops.access import list_compartments
from darkmap.ops.deconflict import submit
from darkmap.store.operations import notices_for
from darkmap.web.app import Workbench
from darkmap.web.auth import create_token


def _writable(wb: Workbench, user: str) -> str:
    """A compartment ``user`` may write."""
    return next(c.compartment_id for c in wb.call(lambda: list_compartments(wb.con, user))
                if c.access == "write")


def _shared_selector(store_srv: tuple[Served, FakeClock], value: str) -> None:
    """alice (t-nca) and bob (t-bka) submit the same vendor handle: a notice to each
    agency."""
    wb = store_srv[0].wb
    for user in ("alice", "bob"):
        comp = _writable(wb, user)
        wb.call(lambda u=user, c=comp: submit(wb.ops, u, c, [("handle", value)]))


def _notice_items(html: str) -> list[str]:
    block = html.split('<ul id="notices">')[1].split("</ul>")[0]
    return re.findall(r"<li[^>]*>(.*?)</li>", block, re.S)


def test_an_officer_acknowledges_a_notice_from_the_dashboard(store_srv, store_world: World) -> None:
    value = f"ackvendor{store_srv[1].now:%j%H%M%S}"
    with signed_in(store_srv, store_world, "rita") as rita:
        before = len(_notice_items(rita.get("/").text))
    _shared_selector(store_srv, value)
    # a reader sees it, and may not close it
    with signed_in(store_srv, store_world, "rita") as rita:
        items = _notice_items(rita.get("/").text)
        assert len(items) == before + 1
        assert "contact t-bka (bka desk)" in items[-1] and "<b>open</b>" in items[-1]
        assert "Acknowledge" not in items[-1]
        wb = store_srv[0].wb
        notice = wb.call(lambda: notices_for(wb.con, "t-nca", "alice"))[-1].notice_id
        r = rita.post("/notice", data={"csrf": csrf_of(rita.get("/").text),
                                       "notice": notice})
        assert r.status_code == 403 and "reader" in r.text
    with signed_in(store_srv, store_world, "alice") as alice:
        page = alice.get("/").text
        item = _notice_items(page)[-1]
        assert "Acknowledge" in item
        form_id = re.search(r'name="notice" value="([^"]+)"', item)
        assert form_id is not None and form_id.group(1) == notice
        r = alice.post("/notice", data={"csrf": csrf_of(page.split("<main>")[1]),
                                        "notice": notice})
        assert r.status_code == 303 and r.headers["location"] == "/?acknowledged=1#notices"
        after = alice.get("/?acknowledged=1").text
        assert 'id="acknowledged"' in after
        item = _notice_items(after)[-1]
        assert "acknowledged by alice at" in item and "Acknowledge<" not in item
        # acknowledged once, for the agency: again is "not found", as in the CLI
        again = alice.post("/notice", data={"csrf": csrf_of(after.split("<main>")[1]),
                                            "notice": notice})
        assert again.status_code == 404 and "no open notice" in again.text
    with signed_in(store_srv, store_world, "bob") as bob:        # the other agency's stays open
        assert "Acknowledge" in _notice_items(bob.get("/").text)[-1]
    entries = store_srv[0].audit("alice") + store_srv[0].audit("rita")
    assert any(e["action"] == "notice.ack" and e["outcome"] == "ok"
               and e["notice"] == notice for e in entries)
    assert any(e["action"] == "notice.ack" and e["outcome"] == "denied" for e in entries)


def test_a_notice_is_acknowledged_through_the_api_with_a_token(store_srv,
                                                               store_world: World) -> None:
    value = f"apivendor{store_srv[1].now:%j%H%M%S}"
    store_srv[1].advance(seconds=1)
    _shared_selector(store_srv, value)
    wb = store_srv[0].wb
    notice = wb.call(lambda: [n for n in notices_for(wb.con, "t-bka", "bob")
                              if n.acked_at is None])[-1]
    token = wb.call(lambda: create_token(wb.con, "bob", "notices"))
    with httpx.Client(base_url=store_srv[0].url, timeout=60) as api:
        r = api.post("/api/notice", params={"notice": notice.notice_id},
                     headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json() == {"acknowledged": notice.notice_id}
        with signed_in(store_srv, store_world, "bob") as bob:   # a session cookie does not write
            r = bob.post("/api/notice", params={"notice": notice.notice_id})
            assert r.status_code == 401
        # another agency's notice is no notice of the caller's
        other = wb.call(lambda: notices_for(wb.con, "t-nca", "alice"))[-1]
        r = api.post("/api/notice", params={"notice": other.notice_id},
                     headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 404
    assert wb.call(lambda: [n.acked_by for n in notices_for(wb.con, "t-bka", "bob")
                            if n.notice_id == notice.notice_id]) == ["bob"]


def test_acknowledging_without_the_csrf_token_is_refused(store_srv, store_world: World) -> None:
    with signed_in(store_srv, store_world, "alice") as alice:
        r = alice.post("/notice", data={"notice": "whatever"})
        assert r.status_code == 403 and "CSRF" in r.text


def test_a_notice_within_the_agency_names_the_other_teams_contact(store_srv,
                                                                  store_world: World) -> None:
    """Two compartments of t-nca that do not read each other hold one selector: the
    dashboard of each team says whom to call inside the agency, not the agency's desk."""
    from darkmap.ops.access import add_compartment, add_user
    from darkmap.web.auth import create_login

    wb, clock = store_srv[0].wb, store_srv[1]
    stamp = f"{clock.now:%j%H%M%S}"
    one, two = f"cara{stamp}", f"dave{stamp}"
    secrets = {}
    for user in (one, two):
        wb.call(lambda u=user: add_user(wb.con, "ana", u, "t-nca", "officer"))
        secrets[user] = wb.call(lambda u=user: create_login(wb.con, "ana", u, PASSWORD,
                                                            "analyst"))
    comps = {u: wb.call(lambda u=u: add_compartment(wb.con, u, "case", f"team {u}",
                                                    members=[]).compartment_id)
             for u in (one, two)}
    value = f"inside{stamp}"
    for u in (one, two):
        wb.call(lambda u=u: submit(wb.ops, u, comps[u], [("handle", value)]))
    clock.advance(seconds=31)
    with httpx.Client(base_url=store_srv[0].url, timeout=60) as c:
        assert login(c, one, secrets[one], clock).status_code == 303
        item = _notice_items(c.get("/").text)[-1]
    assert f"contact {two} (another compartment of your agency" in item
    assert comps[two] not in item and "nca desk" not in item and "Acknowledge" in item
