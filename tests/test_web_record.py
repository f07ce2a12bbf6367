"""Recording from the workbench (``/record``, ``POST /api/records``): over a workspace
the workbench holds it, so ``darkmap ops KIND add`` could not run beside it. What is typed
is read as the CLI reads it, recorded through the library (grants, provenance, audit,
deconfliction), and a refusal gives the form back with what was typed. Against the real
application served by uvicorn on loopback, over a workspace and a real team server."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from web_support import FakeClock, Served, World, csrf_of, signed_in

from darkmap.ops import records
from darkmap.ops.access import list_compartments
from darkmap.web.auth import create_token

Srv = tuple[Served, FakeClock]


def _writable(html: str) -> list[str]:
    """The compartments the form offers (those the user may write)."""
    block = html[html.index('<datalist id="compartments">'):]
    return re.findall(r'<option value="([^"]+)">', block[:block.index("</datalist>")])


def _post(c: httpx.Client, fields: dict[str, str], csrf: bool = True) -> httpx.Response:
    page = c.get("/record")
    data = {**fields, **({"csrf": csrf_of(page.text)} if csrf else {})}
    return c.post("/record", data=data)


def _count(store_srv: Srv, user: str) -> int:
    wb = store_srv[0].wb
    return len(wb.call(lambda: records.read_records(wb.ops, user, withdrawn=True)))


def _writer(store_srv: Srv, label: str) -> tuple[dict[str, str], str]:
    """An API token of alice's (as the header) and a compartment she may write."""
    wb = store_srv[0].wb
    token = wb.call(lambda: create_token(wb.con, "alice", label))
    comp = wb.call(lambda: [c.compartment_id for c in list_compartments(wb.con, "alice")
                            if c.access == "write"])[0]
    return {"Authorization": f"Bearer {token}"}, comp


def test_an_officer_records_a_seizure_and_sees_what_its_links_lead_to(
        store_srv: Srv, store_world: World) -> None:
    wb = store_srv[0].wb
    with signed_in(store_srv, store_world, "alice") as alice:
        form = alice.get("/record?kind=seizure")
        assert form.status_code == 200 and 'name="drugs"' in form.text
        mine = wb.call(lambda: [c.compartment_id for c in list_compartments(wb.con, "alice")
                                if c.access == "write"])
        assert sorted(_writable(form.text)) == sorted(mine) and mine
        r = _post(alice, {"kind": "seizure", "drugs": "fentanyl:500\nFentanyl:20\nheroin:1.5",
                          "pills": "1000", "cash": "EUR:20000@21700\nEUR:500@540",
                          "crypto": "BTC:0.5@30000", "place": "Harbour <b>7</b>",
                          "compartment": mine[0], "occurred_on": "2026-11-30",
                          "provenance": "PV 88", "operation": "Web test",
                          "links": f"persona:{store_world.persona}\npersona:p-nobody"})
        assert r.status_code == 303, r.text
        added = r.headers["location"]
        assert re.fullmatch(r"/cases\?added=seizure-[0-9a-f]{12}", added)
        page = alice.get(added).text
    rid = added.split("=")[1]
    assert f"Recorded: seizure {rid} in compartment" in page
    assert "warning: link persona:p-nobody: no persona of that id" in page
    assert "Harbour &lt;b&gt;7&lt;/b&gt;" in page and "<b>7</b>" not in page
    rec = wb.call(lambda: records.show_record(wb.ops, "alice", rid))
    assert rec.row.author == "alice" and rec.row.compartment_id == mine[0]
    assert rec.row.data["drugs_g"] == {"fentanyl": 520.0, "heroin": 1.5}
    assert rec.row.data["pills"] == 1000 and str(rec.row.occurred_on) == "2026-11-30"
    assert ("persona", store_world.persona) in rec.links
    entry = [e for e in store_srv[0].audit("alice") if e["action"] == "record.add"
             and e["record"] == rid]
    assert len(entry) == 1 and entry[0]["outcome"] == "ok"


def test_a_refusal_gives_the_form_back_with_what_was_typed(store_srv: Srv,
                                                           store_world: World) -> None:
    before = _count(store_srv, "alice")
    with signed_in(store_srv, store_world, "alice") as alice:
        comp = _writable(alice.get("/record?kind=seizure").text)[0]
        typed = {"kind": "seizure", "drugs": "fentanyl", "compartment": comp,
                 "provenance": 'exhibit "12" <x>'}
        r = _post(alice, typed)
        assert r.status_code == 400
        assert "Drugs &#39;fentanyl&#39;: give NAME:NUMBER" in r.text
        assert 'value="exhibit &#34;12&#34; &lt;x&gt;"' in r.text   # kept, escaped
        assert "<x>" not in r.text
        r = _post(alice, {**typed, "drugs": "fentanyl:5", "provenance": " "})
        assert r.status_code == 400 and "needs its provenance" in r.text
        r = _post(alice, {**typed, "drugs": "fentanyl:5", "occurred_on": "30/11/2026"})
        assert r.status_code == 400 and "give YYYY-MM-DD" in r.text
        r = _post(alice, {"kind": "buy", "listing": "x:1", "purity": "12", "provenance": "p",
                          "compartment": comp})
        assert r.status_code == 400 and "without the substance found" in r.text
        r = _post(alice, {**typed, "kind": "vessel"})
        assert r.status_code == 400 and "record kind" in r.text
    assert _count(store_srv, "alice") == before


def test_a_reader_records_nothing_nor_does_anyone_elsewhere_or_without_csrf(
        store_srv: Srv, store_world: World) -> None:
    wb = store_srv[0].wb
    before = {u: _count(store_srv, u) for u in ("alice", "bob", "rita")}
    bka = wb.call(lambda: [c.compartment_id for c in list_compartments(wb.con, "bob")
                           if c.access == "write"])
    with signed_in(store_srv, store_world, "rita") as rita:
        page = rita.get("/record").text
        assert 'id="reader"' in page and 'id="record"' not in page
        r = _post(rita, {"kind": "arrest", "person": "x", "provenance": "p",
                         "compartment": bka[0]})
        assert r.status_code == 403
    with signed_in(store_srv, store_world, "alice") as alice:
        r = _post(alice, {"kind": "arrest", "person": "x", "provenance": "p",
                          "compartment": bka[0]})          # another agency's compartment
        assert r.status_code in (403, 404) and "Record a arrest" in r.text
        r = _post(alice, {"kind": "arrest", "person": "x", "provenance": "p"}, csrf=False)
        assert r.status_code == 403 and "CSRF" in r.text
    assert {u: _count(store_srv, u) for u in before} == before


def test_a_case_with_its_team_then_a_buy_in_it(store_srv: Srv, store_world: World) -> None:
    wb = store_srv[0].wb
    with signed_in(store_srv, store_world, "alice") as alice:
        r = _post(alice, {"kind": "case", "title": "Web case", "members": "ana\n",
                          "provenance": "briefing 3"})
        assert r.status_code == 303, r.text
        case = r.headers["location"].split("=")[1]
        assert case.startswith("case-")
        assert case in alice.get("/record?kind=buy").text     # offered in the case list
        r = _post(alice, {"kind": "buy", "listing": "nowhere:1", "substance": "fentanyl",
                          "purity": "12", "case_id": case, "provenance": "lab 7"})
        assert r.status_code == 303, r.text
        page = alice.get(r.headers["location"]).text
    assert "warning: listing &#39;nowhere:1&#39; is in no capture of this workspace" in page
    buy = wb.call(lambda: records.read_records(wb.ops, "ana", "buy", case_id=case))
    assert len(buy) == 1 and buy[0].lab is not None and buy[0].lab["fentanyl"] is True


def test_the_api_records_with_a_token_only(store_srv: Srv, store_world: World) -> None:
    served = store_srv[0]
    wb = served.wb
    auth, comp = _writer(store_srv, "lab-import")
    body = {"kind": "arrest", "person": "J. Doe", "charges": ["trafficking", "laundering"],
            "compartment": comp, "provenance": "arrest report 4", "country": "gb"}
    r = httpx.post(served.url + "/api/records", json=body, headers=auth, timeout=60)
    assert r.status_code == 200, r.text
    got = r.json()
    rec = wb.call(lambda: records.show_record(wb.ops, "alice", got["record_id"]))
    assert rec.row.data["charges"] == ["trafficking", "laundering"]
    assert rec.row.country == "GB" and got["compartment"] == comp
    for bad, status, says in (
            ({**body, "person": {"x": 1}}, 400, "give a text"),
            ([1, 2], 400, "JSON object"),
            ({**body, "provenance": ""}, 400, "provenance"),
            ({**body, "summary": "x" * 70_000}, 413, "bytes")):
        r = httpx.post(served.url + "/api/records", content=json.dumps(bad), headers=auth,
                       timeout=60)
        assert r.status_code == status and says in r.json()["error"], (bad, r.text)
    r = httpx.post(served.url + "/api/records", content=b"{" * 100_000, headers=auth,
                   timeout=60)
    assert r.status_code == 413
    r = httpx.post(served.url + "/api/records", content=b"[" * 30_000, headers=auth,
                   timeout=60)
    assert r.status_code == 400
    with signed_in(store_srv, store_world, "alice") as alice:   # a session cookie is no token
        assert alice.post("/api/records", json=body).status_code == 401


@pytest.mark.parametrize("added", ["junk", "seizure-" + "0" * 12, "<script>"])
def test_a_crafted_added_says_nothing(store_srv: Srv, store_world: World, added: str) -> None:
    with signed_in(store_srv, store_world, "alice") as alice:
        r = alice.get("/cases", params={"added": added})
    assert r.status_code == 200 and 'id="added"' not in r.text and "<script>" not in r.text


def test_another_agencys_record_is_not_announced(store_srv: Srv, store_world: World) -> None:
    with signed_in(store_srv, store_world, "alice") as alice:
        r = alice.get("/cases", params={"added": store_world.seizure_b})
    assert r.status_code == 200 and 'id="added"' not in r.text


def _withdraw(c: httpx.Client, record: str, why: str, replaced_by: str = "",
              csrf: bool = True) -> httpx.Response:
    page = c.get("/cases")
    data = {"record": record, "why": why, "replaced_by": replaced_by,
            **({"csrf": csrf_of(page.text)} if csrf else {})}
    return c.post("/withdraw", data=data)


def test_a_record_made_by_mistake_is_withdrawn_from_the_cases_page(
        store_srv: Srv, store_world: World) -> None:
    """Over a workspace `darkmap ops withdraw` cannot run beside the workbench either:
    the author withdraws a wrong record from the cases page, with why and what replaces
    it; no one else of another agency, no reader, and not without CSRF."""
    wb = store_srv[0].wb
    with signed_in(store_srv, store_world, "alice") as alice:
        comp = _writable(alice.get("/record?kind=seizure").text)[0]
        made = []
        for grams in ("5000", "50"):       # a slip of the keyboard, then the right one
            r = _post(alice, {"kind": "seizure", "drugs": f"fentanyl:{grams}",
                              "compartment": comp, "provenance": "PV 9"})
            made.append(r.headers["location"].split("=")[1])
        wrong, right = made
        page = alice.get("/cases").text
        assert f'name="record" value="{wrong}"' in page       # offered to its author
        assert f'name="record" value="{store_world.seizure_b}"' not in page
        r = _withdraw(alice, wrong, "typed 5000 for 50", right)
        assert r.status_code == 303 and r.headers["location"] == f"/cases?withdrew={wrong}"
        page = alice.get(r.headers["location"]).text
        assert f"Withdrawn: {wrong}." in page and "typed 5000 for 50" in page
        assert f'name="record" value="{wrong}"' not in page    # withdrawn once, for good
        assert 'id="added"' not in alice.get(f"/cases?added={wrong}").text
        again = _withdraw(alice, wrong, "again")
        assert again.status_code == 400 and "withdrawn already" in again.text
        assert _withdraw(alice, right, "x", csrf=False).status_code == 403
    with signed_in(store_srv, store_world, "rita") as rita:
        assert 'action="/withdraw"' not in rita.get("/cases").text
        assert _withdraw(rita, right, "a reader").status_code in (403, 404)
    with signed_in(store_srv, store_world, "bob") as bob:       # another agency's
        assert _withdraw(bob, right, "not mine").status_code == 404
    rec = wb.call(lambda: records.show_record(wb.ops, "alice", wrong))
    assert rec.withdrawal is not None and rec.withdrawal.replaced_by == right
    assert wb.call(lambda: records.show_record(wb.ops, "alice", right)).withdrawal is None


def test_the_api_withdraws_with_a_token(store_srv: Srv, store_world: World) -> None:
    served = store_srv[0]
    auth, comp = _writer(store_srv, "fixer")
    rid = httpx.post(served.url + "/api/records", headers=auth, timeout=60, json={
        "kind": "arrest", "person": "wrong person", "compartment": comp,
        "provenance": "p"}).json()["record_id"]
    r = httpx.post(served.url + "/api/withdraw", params={"record": rid, "why": "wrong man"},
                   headers=auth, timeout=60)
    assert r.status_code == 200 and r.json()["withdrawn_by"] == "alice", r.text
    r = httpx.post(served.url + "/api/withdraw", params={"record": rid, "why": "x"},
                   headers=auth, timeout=60)
    assert r.status_code == 400 and "withdrawn already" in r.json()["error"]


def test_what_no_record_can_hold_is_refused_and_stores_nothing(
        store_srv: Srv, store_world: World) -> None:
    """A lone surrogate in a JSON field was stored on the team server, and every page
    listing the record failed for every reader of its compartment (review of the record
    form, 1); a field given twice kept its last value; a refused case left an empty case
    compartment behind (review, 4, 6)."""
    served = store_srv[0]
    wb = served.wb
    auth, comp = _writer(store_srv, "probe")
    auth = {**auth, "Content-Type": "application/json"}
    before = _count(store_srv, "alice")
    rooms = len(wb.call(lambda: list_compartments(wb.con, "alice")))
    for body, says in (
            ('{"kind":"arrest","person":"J \\ud800","provenance":"p","compartment":"CMP"}',
             "not UTF-8 text"),
            ('{"kind":"arrest","person":"J","provenance":"p\\u0000","compartment":"CMP"}',
             "control character"),
            (('{"kind":"arrest","person":"J","person":"K","provenance":"p",'
              '"compartment":"CMP"}'), "more than once"),
            ('{"kind":"case","title":"t","provenance":"p","country":"ZZ"}', "ZZ")):
        body = body.replace("CMP", comp)
        r = httpx.post(served.url + "/api/records", content=body.encode(), headers=auth,
                       timeout=60)
        assert r.status_code == 400 and says in r.json()["error"], (body, r.text)
    with signed_in(store_srv, store_world, "alice") as alice:
        page = alice.get("/record").text
        r = alice.post("/record", data={"csrf": csrf_of(page), "kind": "seizure",
                                        "drugs": ["fentanyl:500", "heroin:5"],
                                        "compartment": comp, "provenance": "p"})
        assert r.status_code == 400 and "given more than once" in r.text
        r = _post(alice, {"kind": "case", "title": "t", "provenance": "p", "country": "ZZ"})
        assert r.status_code == 400
        assert alice.get("/cases").status_code == 200
    assert _count(store_srv, "alice") == before
    assert len(wb.call(lambda: list_compartments(wb.con, "alice"))) == rooms


def test_a_withdrawal_holding_a_nul_is_refused(store_srv: Srv, store_world: World) -> None:
    """A NUL in the reason failed on the team server with a 500 (PostgreSQL text holds
    none): refused as the record form refuses it."""
    with signed_in(store_srv, store_world, "alice") as alice:
        comp = _writable(alice.get("/record?kind=arrest").text)[0]
        rid = _post(alice, {"kind": "arrest", "person": "x", "compartment": comp,
                            "provenance": "p"}).headers["location"].split("=")[1]
        r = _withdraw(alice, rid, "wrong\x00man")
        assert r.status_code == 400 and "control character (U+0000)" in r.text
        assert _withdraw(alice, rid, "wrong man").status_code == 303
