"""Access through the workbench (issue #14): users of two agencies see only the
operational records their grants allow, page by page and through ``/api/``; every page
renders for a signed-in analyst; the review queue feeds ``judge``; a reader may not
judge. Against the real application served by uvicorn on loopback."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import quote

import httpx
from psycopg.conninfo import conninfo_to_dict
from web_support import (
    PASSWORD,
    FakeClock,
    Served,
    World,
    csrf_of,
    harm_marks_shown,
    signed_in,
)

import darkmap
from darkmap.api import ops_withdraw
from darkmap.ops.records import Case, Seizure, add_record
from darkmap.resolve.review import review_queue
from darkmap.web.auth import create_login, create_token
from darkmap.web.views import REVIEW_BAND, REVIEW_PAGE


def _token(store_srv: tuple[Served, FakeClock], user: str) -> dict[str, str]:
    wb = store_srv[0].wb
    return {"Authorization": "Bearer " + wb.call(lambda: create_token(wb.con, user))}


def _pages(store_world: World) -> list[str]:
    p = quote(store_world.persona, safe="")
    return [f"/persona/{p}", "/", "/cases", "/cases?kind=case", "/cases?kind=seizure"]


def test_each_agency_sees_only_its_records_page_by_page(store_srv, store_world: World) -> None:
    with signed_in(store_srv, store_world, "alice") as alice, \
            signed_in(store_srv, store_world, "bob") as bob:
        for page in _pages(store_world):
            a, b = alice.get(page), bob.get(page)
            assert a.status_code == b.status_code == 200, page
            if "seizure" not in page:
                assert store_world.case_a in a.text, page
            assert store_world.seizure_b not in a.text, page
            assert store_world.case_a not in b.text, page
        assert store_world.seizure_b in bob.get(_pages(store_world)[0]).text
        assert store_world.seizure_b in bob.get("/cases").text
        # the dashboard's country table counts only readable arrests and seizures
        assert "DE" in bob.get("/").text.split('id="countries"')[1].split("</table>")[0]
        assert "DE" not in alice.get("/").text.split('id="countries"')[1].split("</table>")[0]


def test_each_agency_sees_only_its_records_through_the_api(store_srv, store_world: World) -> None:
    pid = quote(store_world.persona, safe="")
    with httpx.Client(base_url=store_srv[0].url) as api:
        ha, hb = _token(store_srv, "alice"), _token(store_srv, "bob")
        ids_a = {r["record_id"] for r in api.get("/api/records", headers=ha).json()["records"]}
        ids_b = {r["record_id"] for r in api.get("/api/records", headers=hb).json()["records"]}
        assert store_world.case_a in ids_a and store_world.seizure_b not in ids_a
        assert store_world.seizure_b in ids_b and store_world.case_a not in ids_b
        pa = api.get(f"/api/persona/{pid}", headers=ha).json()
        pb = api.get(f"/api/persona/{pid}", headers=hb).json()
        assert [c["record_id"] for c in pa["cases"]] == [store_world.case_a]
        assert [c["record_id"] for c in pb["cases"]] == [store_world.seizure_b]
        da = api.get("/api/dashboard", headers=ha).json()
        assert "DE" not in da["countries"] and da["records_by_kind"] == {"case": 1}
        # no token, a wrong token: refused
        assert api.get("/api/records").status_code == 401
        assert api.get("/api/records",
                       headers={"Authorization": "Bearer dm_forged"}).status_code == 401
    # every read of records went to the audit trail, with the ids returned
    entries = store_srv[0].audit("bob")
    assert any(e["action"] == "record.list" and store_world.seizure_b in e["records"]
               for e in entries)


def test_every_page_renders_for_an_analyst(store_srv, store_world: World) -> None:
    served, _ = store_srv
    acc, lst, sha, addr = served.sql(
        "SELECT l.account_id, l.listing_id, l.capture_sha256, i.value FROM listings l, "
        "identifiers i WHERE i.kind = 'btc_address' AND l.account_id IS NOT NULL "
        "ORDER BY l.listing_id LIMIT 1")[0]
    handle = served.sql(f"SELECT handle FROM accounts WHERE account_id = '{acc}'")[0][0]
    with signed_in(store_srv, store_world, "alice") as c:
        for url, expect in [
                (f"/search?q={quote(handle)}", "persona-hits"),
                (f"/account/{quote(acc, safe='')}", "Observations"),
                (f"/listing/{quote(lst, safe='')}", "Provenance"),
                (f"/capture/{sha}", 'id="raw"'),
                ("/targets", 'id="targets"'),
                ("/review", 'id="queue"'),
                (f"/wallet/{addr}", "Wallet cluster"),
                (f"/graph?node=persona:{quote(store_world.persona)}", 'id="cy"')]:
            r = c.get(url)
            assert r.status_code == 200 and expect in r.text, url
        assert c.get("/persona/no-such-persona").status_code == 404
        nowhere = c.get("/no/such/page")                   # the error page, not JSON
        assert nowhere.status_code == 404 and 'id="error">no such page' in nowhere.text
        assert nowhere.headers["content-type"].startswith("text/html")
        assert c.get("/api/no-such").json() == {"error": "no such page"}
        assert c.put("/review").status_code == 405
        bogus = c.get("/cases?kind=bogus")                # as /review?queue=bogus
        assert bogus.status_code == 400 and "seizure" in bogus.text
        assert c.get("/api/records?kind=bogus").status_code == 400
        assert c.get("/capture/" + "0" * 64).status_code == 404
        assert c.get("/audit").status_code == 403          # analysts do not read the trail
        graph = c.get(f"/api/graph/expand?node=persona:{store_world.persona}").json()
        kinds = {e["data"].get("kind") for e in graph["elements"]}
        assert {"persona", "account", "member", "case"} <= kinds


def test_a_record_node_of_the_chart_expands_to_what_it_links(store_srv, store_world: World) -> None:
    """A case node (any operational record: case, seizure, buy) expands to the personas,
    accounts and listings its record links, for a user who may read it; another agency's
    record answers exactly as one that does not exist (the chart said "could not
    expand" for every case node)."""
    def expand(c: httpx.Client, node: str) -> httpx.Response:
        return c.get("/api/graph/expand", params={"node": node})

    persona = f"persona:{store_world.persona}"
    with signed_in(store_srv, store_world, "alice") as alice, \
            signed_in(store_srv, store_world, "bob") as bob:
        for c, own, other in ((alice, store_world.case_a, store_world.seizure_b),
                              (bob, store_world.seizure_b, store_world.case_a)):
            r = expand(c, f"case:{own}")
            assert r.status_code == 200, r.text
            ids = {e["data"]["id"] for e in r.json()["elements"]}
            assert {f"case:{own}", persona, f"case:{own}|{persona}|case"} <= ids, ids
            hidden, missing = expand(c, f"case:{other}"), expand(c, "case:rec-no-such")
            assert hidden.status_code == missing.status_code == 404
            assert hidden.json()["error"].replace(other, "X") == \
                missing.json()["error"].replace("rec-no-such", "X")
            assert other not in hidden.text.replace(f"'{other}'", "")
        # a listing node (what a buy links) expands to the account selling it
        lst, acc = store_srv[0].sql("SELECT listing_id, account_id FROM listings WHERE "
                              "account_id IS NOT NULL ORDER BY listing_id LIMIT 1")[0]
        ids = {e["data"]["id"] for e in expand(alice, f"listing:{lst}").json()["elements"]}
        assert f"account:{acc}" in ids


def test_a_wallets_counterparties_fill_their_columns(store_srv, store_world: World) -> None:
    """The "Paid to" table had two headers and one cell a row (the counterparty's dict);
    each row now has a cell under each header, the counterparty a link to its wallet."""
    served, _ = store_srv
    addresses = [a for (a,) in served.sql(
        "SELECT a.address FROM btc_address a JOIN btc_clusters USING (address_id) "
        "ORDER BY a.address_id LIMIT 40")]
    with signed_in(store_srv, store_world, "alice") as c:
        paying = next(a for a in addresses
                      if c.get(f"/api/wallet/{a}").json()["paid_to"])
        data = c.get(f"/api/wallet/{paying}").json()
        table = c.get(f"/wallet/{paying}").text.split('id="paid-to"')[1].split("</table>")[0]
    head, *rows = table.split("<tr>")[1:]
    assert len(rows) == len(data["paid_to"])
    for row, cp in zip(rows, data["paid_to"], strict=True):
        assert row.count("<td") == head.count("<th>") == 4
        assert f'href="/wallet/{cp["example_address"]}"' in row
        assert f"<td>{cp['sent_sat']}</td>" in row


def _confirm_first_proposed(c: httpx.Client) -> tuple[str, str, str, httpx.Response]:
    """Confirm the review queue's first pair as the signed-in user: (page, a, b, reply)."""
    page = c.get("/review").text
    a = page.split('name="a" value="')[1].split('"')[0]
    b = page.split('name="b" value="')[1].split('"')[0]
    r = c.post("/review", data={"csrf": csrf_of(page), "a": a, "b": b,
                                "verdict": "confirm", "note": "same PGP key"})
    return page, a, b, r


def test_review_queue_confirm_feeds_judge_and_a_reader_may_not(
        store_srv, store_world: World) -> None:
    served, _ = store_srv
    if store_world.server:
        _judging_on_the_team_server(store_srv, store_world)
        return
    with signed_in(store_srv, store_world, "alice") as c:
        page, a, b, r = _confirm_first_proposed(c)
        assert r.status_code == 303
        assert f'name="a" value="{a}"><input type="hidden" name="b" value="{b}"' in page
        assert 'id="estimate">No judgement' in page
        after = c.get("/review").text
        assert f'name="a" value="{a}"><input type="hidden" name="b" value="{b}"' \
            not in after                        # judged: off the queue
        # and the page says what the judgement makes of the linking
        assert 'id="estimate">What 1 judgement of the last link run' in after
        assert c.get("/api/review").json()["estimate"]["judged"] == 1
    rows = served.sql(f"SELECT verdict, author, note FROM judgements WHERE a = '{a}' "
                      f"AND b = '{b}' AND withdrawn_at IS NULL")
    assert rows == [("same", "alice", "same PGP key")]
    with signed_in(store_srv, store_world, "rita") as r:
        page = r.get("/review").text
        # a reader is offered no verdict buttons, but the queue, and the POST refuses her
        assert 'id="reader"' in page and 'class="proposal"' in page
        assert 'action="/review"' not in page and 'value="confirm"' not in page
        a2, b2 = served.sql("SELECT a, b FROM account_links ORDER BY score DESC LIMIT 1")[0]
        resp = r.post("/review", data={"csrf": csrf_of(page), "a": a2, "b": b2,
                                       "verdict": "reject"})
        assert resp.status_code == 403 and "reader" in resp.text
    assert served.sql(f"SELECT count(*) FROM judgements WHERE a = '{a2}' AND b = '{b2}'") \
        == [(0,)]


def test_the_personas_of_a_judged_pair_list_the_judgement(store_srv, store_world: World) -> None:
    """A pair judged on the review page is listed on the persona page of either account,
    in both homes (over a workspace every such page was a 500: the template read a mark
    only the team server set)."""
    with signed_in(store_srv, store_world, "alice") as c:
        page = c.get("/review").text
        a, b = _proposed(page)[0]
        r = c.post("/review", data={"csrf": csrf_of(page), "a": a, "b": b,
                                    "verdict": "reject", "note": "two sellers"})
        assert r.status_code == 303, r.text
        for account in (a, b):
            persona = c.get(f"/persona/{quote(account, safe='')}")
            assert persona.status_code == 200, (account, persona.text[:300])
            judged = persona.text.split('id="persona-judgements"')[1].split("</ul>")[0]
            assert re.search(rf"{re.escape(f'{a} / {b}: different by alice at ')}"
                             r"[-\d]{10} \d\d:\d\d UTC — <strong>stands</strong>; "
                             "note: “two sellers”", judged), judged
            api = c.get(f"/api/persona/{quote(account, safe='')}").json()
            mine = [j for j in api["judgements"] if (j["a"], j["b"]) == (a, b)]
            assert [(j["unsynced"], j["withdrawn_on_server"]) for j in mine] == \
                [(store_world.server is not None, False)]


def test_a_persona_page_says_which_verdict_stands_and_when_each_was_given(
        store_srv, store_world: World) -> None:
    """A pair confirmed, then rejected, was listed twice with no time and no sign of which
    verdict counts, and the note ran on after the author's name (web audit, finding 7).
    Each verdict now shows its time (UTC) and whether it stands (the latest, which
    ``darkmap link`` holds) or is superseded, and the note is labelled."""
    with signed_in(store_srv, store_world, "alice") as c:
        page = c.get("/review").text
        a, b = _proposed(page)[-1]
        for verdict, note in (("confirm", "same PGP <b>x</b> by supervisor carol"),
                              ("reject", "")):
            r = c.post("/review", data={"csrf": csrf_of(c.get("/review").text), "a": a,
                                        "b": b, "verdict": verdict, "note": note})
            assert r.status_code == 303, r.text[:300]
        persona = c.get(f"/persona/{quote(a, safe='')}").text
        judged = persona.split('id="persona-judgements"')[1].split("</ul>")[0]
        mine = [li for li in judged.split("<li ")[1:] if f"{a} / {b}:" in li]
        api = [j for j in c.get(f"/api/persona/{quote(a, safe='')}").json()["judgements"]
               if (j["a"], j["b"]) == (a, b)]
    assert [(j["verdict"], j["stands"]) for j in api] == [("same", False), ("different", True)]
    first, last = (str(j["created_at"])[:16] for j in api)
    assert len(mine) == 2, judged
    assert mine[0].startswith('class="superseded">') and mine[1].startswith('class="stands">')
    assert (f"same by alice at {first} UTC — <em>superseded</em> by a later verdict on this "
            "pair; note: “same PGP &lt;b&gt;x&lt;/b&gt; by supervisor carol”") in mine[0]
    assert f"different by alice at {last} UTC — <strong>stands</strong>" in mine[1]
    assert "note:" not in mine[1]


def _proposed(page: str) -> list[tuple[str, str]]:
    """The (a, b) pairs a review page proposes, in order."""
    return re.findall(r'name="a" value="([^"]*)"><input type="hidden" name="b" '
                      r'value="([^"]*)"', page)


def test_review_page_proposes_what_darkmap_review_proposes(store_srv, store_world: World) -> None:
    """The default queue is the library's (`darkmap review`): the same pairs in the same
    order, with their strata; `?queue=uncertain` lists the band nearest 0.5 first; a
    pair judged unsure leaves both queues; an unknown queue is refused."""
    served, _ = store_srv
    if store_world.server:
        return  # the team server's judgements: test_review_queue_confirm_feeds_judge...
    library = served.wb.read(lambda w, _: review_queue(w, n=REVIEW_PAGE))
    assert library, "the world has scored pairs to review"
    with signed_in(store_srv, store_world, "alice") as c:
        page = c.get("/review").text
        assert _proposed(page) == [(q.a, q.b) for q in library]
        assert 'data-queue="learn"' in page and library[0].stratum in page
        api_rows = c.get("/api/review").json()["links"]
        assert [(r["a"], r["b"], r["stratum"]) for r in api_rows] == \
            [(q.a, q.b, q.stratum) for q in library]
        band = c.get("/review?queue=uncertain").text
        scores = served.sql(f"SELECT a, b, score FROM account_links WHERE score >= "
                            f"{REVIEW_BAND[0]} AND score < {REVIEW_BAND[1]}")
        near = {(a, b): abs(sc - 0.5) for a, b, sc in scores}
        shown = _proposed(band)
        assert shown and set(shown) <= set(near)
        assert [near[p] for p in shown] == sorted(near[p] for p in shown)
        assert c.get("/review?queue=nearest").status_code == 400
        # judged unsure from the uncertain queue: back to that queue, and the pair is
        # proposed by neither queue again
        a, b = shown[0]
        r = c.post("/review", data={"csrf": csrf_of(band), "a": a, "b": b,
                                    "verdict": "unsure", "queue": "uncertain"})
        assert r.status_code == 303 and r.headers["location"].endswith("queue=uncertain")
        assert (a, b) not in _proposed(c.get("/review?queue=uncertain").text)
        assert (a, b) not in _proposed(c.get("/review").text)
        after = served.wb.read(lambda w, _: review_queue(w, n=len(near) + 50))
        assert (a, b) not in {(q.a, q.b) for q in after}


def test_supervisor_reads_the_audit_trail(store_srv, store_world: World) -> None:
    with signed_in(store_srv, store_world, "ana") as c:
        r = c.get("/audit")
        assert r.status_code == 200 and "the hash chain holds" in r.text
        assert "web.logon" in r.text
        # on the team server each entry names the login role the server authenticated
        # (the workbench's own, acting for its users); a workspace has no such column
        assert ("Connected as" in r.text) == (store_world.store == "postgres")
        if store_world.store == "postgres":
            role = conninfo_to_dict(store_world.server or "")["user"]
            assert f"<td>web.logon</td><td>ok</td><td>{role}</td>" in r.text


def test_an_audit_reviewer_sees_only_their_agency(store_srv, store_world: World) -> None:
    """The audit page of an admin of t-bka (bert) lists no entry of a t-nca user: those
    tell what t-nca's users record, read and when, through grants bert does not hold."""
    wb = store_srv[0].wb
    if "bert" not in store_world.secrets:
        store_world.secrets["bert"] = wb.call(lambda: create_login(wb.con, "bert", "bert",
                                                             PASSWORD, "admin"))
    with signed_in(store_srv, store_world, "alice") as alice:
        assert store_world.case_a in alice.get("/cases").text       # t-nca's newest entries
    with signed_in(store_srv, store_world, "bob") as bob:
        bob.get("/cases")
    with signed_in(store_srv, store_world, "bert") as bert:
        page = bert.get("/audit")
        assert page.status_code == 200 and "the hash chain holds" in page.text
        actors = set(re.findall(r"<tr><td>\d+</td><td>[^<]*</td><td>([^<]*)</td>", page.text))
        assert "bob" in actors and "bert" in actors
        assert not actors & {"alice", "ana", "rita"}, actors
        only = bert.get("/audit?actor=alice")
        assert only.status_code == 200 and "<td>alice</td>" not in only.text
    with signed_in(store_srv, store_world, "ana") as ana:      # t-nca's admin still reviews alice
        assert "<td>alice</td>" in ana.get("/audit?actor=alice").text


def test_sessions_expire_on_the_server_clock(store_srv, store_world: World) -> None:
    served, clock = store_srv
    with signed_in(store_srv, store_world, "bob") as c:
        clock.now += timedelta(minutes=31)
        assert c.get("/", follow_redirects=False).headers["location"] == "/login?why=idle"


def _judging_on_the_team_server(store_srv: tuple[Served, FakeClock], store_world: World) -> None:
    """Over a team server the workspace is read-only: a verdict goes to the team's
    judgements under the signed-in user's name (every analyst's workspace takes it at its
    next `team sync`); the workspace is not written; a reader is still refused."""
    served, _ = store_srv
    before = served.sql("SELECT count(*) FROM judgements")
    with signed_in(store_srv, store_world, "alice") as c:
        counted = (c.get("/api/review").json()["estimate"] or {}).get("judged", 0)
        page, a, b, r = _confirm_first_proposed(c)
        assert r.status_code == 303, r.text
        # the verdict is on the server, not yet in the workspace: the page counts it
        # already, and neither queue proposes the pair again
        after = c.get("/api/review").json()
        assert after["estimate"]["judged"] == counted + 1
        assert (a, b) not in {(x["a"], x["b"]) for x in after["links"]}
        assert (a, b) not in _proposed(c.get("/review?queue=uncertain").text)
        # and the persona of either account shows it, marked as not yet in the workspace
        judged = c.get(f"/persona/{quote(a, safe='')}").text.split(
            'id="persona-judgements"')[1].split("</ul>")[0]
        assert "same PGP key" in judged and 'class="unsynced"' in judged
    team = served.wb.call(lambda: served.wb.con.execute(
        "SELECT verdict, author, note FROM team_judgements WHERE a = ? AND b = ?",
        [min(a, b), max(a, b)]).fetchall())
    assert [tuple(t) for t in team] == [("same", "alice", "same PGP key")]
    with signed_in(store_srv, store_world, "rita") as r:
        page = r.get("/review").text
        resp = r.post("/review", data={"csrf": csrf_of(page), "a": a, "b": b,
                                       "verdict": "reject"})
        assert resp.status_code == 403 and "reader" in resp.text
    assert served.sql("SELECT count(*) FROM judgements") == before
    assert len(served.wb.call(lambda: served.wb.con.execute(
        "SELECT 1 FROM team_judgements WHERE a = ? AND b = ?",
        [min(a, b), max(a, b)]).fetchall())) == 1


def test_no_audit_entry_tells_that_another_agency_holds_a_record(
        store_srv, store_world: World) -> None:
    """A persona page, its JSON twin and its graph expansion read operational records
    (and write a `record.list` entry, which the reader's agency reviews) only when a
    record the reader may read links there: whether bob's entry appears must not tell
    that a t-nca case, which bob may not read, links the persona. (Last in this module:
    it adds a case of alice.)"""
    served, _ = store_srv
    wb = served.wb
    other = served.sql(f"SELECT persona_id FROM personas WHERE persona_id <> "
                       f"'{store_world.persona}' ORDER BY persona_id LIMIT 1")[0][0]
    case = wb.call(lambda: add_record(wb.ops, "alice", Case("A-only case", "nca only"),
                                      provenance="test", links=[("persona", other)]))
    p = quote(other, safe="")

    def lists(user: str) -> list[dict]:
        return [e for e in served.audit(user) if e["action"] == "record.list"]

    before = len(lists("bob"))
    with signed_in(store_srv, store_world, "bob") as bob:
        for url in (f"/persona/{p}", f"/api/persona/{p}",
                    f"/api/graph/expand?node=persona:{p}"):
            r = bob.get(url)
            assert r.status_code == 200 and case.record_id not in r.text, url
    assert len(lists("bob")) == before
    with signed_in(store_srv, store_world, "alice") as alice:          # alice may read it: audited
        assert case.record_id in alice.get(f"/persona/{p}").text
    assert case.record_id in lists("alice")[-1]["records"]


def test_dashboard_and_targets_mark_only_a_harm_without_sales_evidence(
        store_srv, store_world) -> None:
    """Every persona of the simulated world has sales evidence (feedback or a counter):
    the dashboard's top ten and the targets page mark no score, where on real data
    (tests/test_web_real.py) every score is marked ``*``."""
    served, _ = store_srv
    ranked = served.wb.read(lambda w, _: darkmap.targets(w, limit=None))
    marked = [not t["sales_evidence"] for t in ranked]
    assert 10 < len(ranked) <= 100 and not any(marked)
    with signed_in(store_srv, store_world, "alice") as c:
        harm_marks_shown(c.get("/").text, "top-targets", ranked[:10])
        harm_marks_shown(c.get("/targets").text, "targets", ranked)


def test_cases_lists_a_withdrawn_record_marked_with_who_when_and_why(
        store_srv, store_world) -> None:
    """A seizure recorded as 1,000,000 g and withdrawn ("mistyped") was left out of
    /cases and /api/records without a word, where `darkmap ops show` lists it WITHDRAWN
    with who, when and why (web audit, finding 8). Both list it so, and count it; another
    agency still sees nothing of it."""
    wb = store_srv[0].wb
    rec = wb.call(lambda: add_record(wb.ops, "alice", Seizure(drugs_g={"heroin": 1_000_000.0}),
                                     country="GB", case_id=store_world.case_a,
                                     provenance="test")).record_id
    wb.call(lambda: ops_withdraw(wb.ops, "alice", rec, "mistyped <b>g</b> for mg"))
    with signed_in(store_srv, store_world, "alice") as c:
        page = c.get("/cases", params={"kind": "seizure"}).text
        row = next(r for r in page.split("<tr")[1:] if rec in r)
        api = c.get("/api/records", params={"kind": "seizure"}).json()
    assert row.startswith(' class="withdrawn">')
    assert re.search(rf"{rec}<br><strong>WITHDRAWN</strong> by alice at "
                     r"[-\d]{10} \d\d:\d\d UTC; why: mistyped &lt;b&gt;g&lt;/b&gt; for mg",
                     row), row
    assert 'id="withdrawn-count">Of these records, 1 was withdrawn: each is listed' in page
    (mine,) = [r for r in api["records"] if r["record_id"] == rec]
    assert (mine["withdrawn"]["by"], mine["withdrawn"]["why"]) == ("alice",
                                                                   "mistyped <b>g</b> for mg")
    assert api["withdrawn"] == 1
    with signed_in(store_srv, store_world, "bob") as b:
        assert rec not in b.get("/cases").text
        assert rec not in str(b.get("/api/records").json())
