"""`darkmap link` on worlds it was not built on.

* a small `darkmap simulate` world (seed 41: outside the training range 200-299 and
  the evaluation seeds), ingested through the real importers and linked, scored against
  its truth.json with all evidence and with identifiers withheld;
* the real data: accounts of Dream, Cryptonia and Hansa that publish the same PGP key
  end in one persona, and `persona show` explains the link with the pgp signal.
"""

from __future__ import annotations

import json
import re

import pytest
from conftest import DATA, simulated_workspace

from darkmap.collect.ingest import ingest
from darkmap.evaluate.linking import eval_linking
from darkmap.resolve.link import AGAINST, LinkOptions, link
from darkmap.resolve.lookup import show_persona
from darkmap.store.workspace import Workspace


@pytest.fixture(scope="module")
def sim_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, dict]:
    ws, truth = simulated_workspace(tmp_path_factory.mktemp("simlink"), 41, 400)
    yield ws, truth
    ws.close()


def test_simulated_world_all_evidence_above_measured_floor(sim_world) -> None:
    ws, truth = sim_world
    res = link(ws)
    ev = eval_linking(ws, truth)
    assert ev["accounts_in_workspace"] == ev["accounts"] == res.summary["accounts"]
    # measured on this world: pairwise F1 0.940 (P 1.0, R 0.887), B-cubed F1 0.982
    assert ev["pairwise_f1"] >= 0.93 and ev["bcubed_f1"] >= 0.975, ev
    assert ev["pairwise_precision"] >= 0.95, ev


def test_no_persona_holds_a_pair_whose_own_evidence_is_against_it(sim_world) -> None:
    """Every pair inside a persona is stored with its signals; none sums below
    AGAINST (the chain guard), though such pairs were scored in the personas' blocks."""
    ws, _ = sim_world
    link(ws)
    rows = ws.con.execute("SELECT signals, merged FROM account_links").fetchall()
    def evidence(sig: str) -> float:
        return sum(v["contribution"] for k, v in json.loads(sig).items() if k != "_base")
    inside = [evidence(s) for s, merged in rows if merged]
    assert len(inside) > 100 and min(inside) >= AGAINST
    n_against = ws.con.execute("SELECT count(*) FROM account_links").fetchone()[0]
    assert n_against > len(inside)


def test_simulated_world_without_identifiers_runs_and_scores(sim_world) -> None:
    ws, truth = sim_world
    res = link(ws, LinkOptions(without=("identifiers",)))
    assert not {"pgp", "crypto", "contact"} & set(res.summary["signals"])
    ev = eval_linking(ws, truth)
    # measured on this world: pairwise F1 0.892 (P 1.0, R 0.805), B-cubed F1 0.968
    assert ev["pairwise_f1"] >= 0.87 and ev["bcubed_f1"] >= 0.955, ev
    sig = json.loads(ws.con.execute("SELECT signals FROM account_links WHERE merged LIMIT 1"
                                    ).fetchone()[0])
    assert "pgp" not in sig and {"style", "phrasing", "capitals", "symbols"} <= set(sig)


def test_simulated_world_fellegi_sunter_above_measured_floor(sim_world) -> None:
    ws, truth = sim_world
    res = link(ws, LinkOptions(method="fellegi-sunter"))
    assert res.summary["method"] == "fellegi-sunter"
    ev = eval_linking(ws, truth)
    # measured on this world: pairwise F1 0.971 (P 0.995, R 0.949), B-cubed F1 0.990;
    # with further EM steps it fell to 0.80 on a 10,000-vendor world (docs/linking.md)
    assert ev["pairwise_f1"] >= 0.93 and ev["bcubed_f1"] >= 0.97, ev
    model = json.loads(ws.con.execute(
        "SELECT summary FROM link_runs WHERE run_id = ?", [res.run_id]).fetchone()[0])
    assert model["model"] == "fellegi-sunter", model


@pytest.fixture(scope="module")
def real_ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    ws = Workspace.init(tmp_path_factory.mktemp("reallink") / "ws")
    ingest(ws, [DATA / "pages", DATA / "listings", DATA / "seized"])
    link(ws)
    yield ws
    ws.close()


def _pgp_pairs(ws: Workspace) -> list[tuple[str, str]]:
    rows = ws.con.execute("""
        SELECT list(DISTINCT account_id ORDER BY account_id) FROM identifiers
        WHERE kind = 'pgp_fingerprint' AND account_id IS NOT NULL
          AND split_part(account_id, ':', 1) IN ('dream', 'cryptonia', 'hansa')
        GROUP BY value HAVING count(DISTINCT account_id) > 1""").fetchall()
    return [(a, b) for (accts,) in rows for k, a in enumerate(accts) for b in accts[k + 1:]]


def test_real_accounts_sharing_a_pgp_key_end_in_one_persona(real_ws: Workspace) -> None:
    pairs = _pgp_pairs(real_ws)
    assert len(pairs) >= 3, pairs
    assert any(a.split(":")[0] != b.split(":")[0] for a, b in pairs), pairs
    persona = dict(real_ws.con.execute(
        "SELECT account_id, persona_id FROM persona_members").fetchall())
    apart = [(a, b) for a, b in pairs if persona[a] != persona[b]]
    assert apart == [], apart


def test_persona_show_explains_real_pgp_link(real_ws: Workspace) -> None:
    for a, b in _pgp_pairs(real_ws):
        d = show_persona(real_ws, a)
        assert b in {x["account_id"] for x in d["accounts"]}
        lk = [x for x in d["links"] if {x["a"], x["b"]} == {a, b}]
        assert lk, (a, b)
        pgp = [s for s in lk[0]["signals"] if s["signal"] == "pgp"]
        assert pgp and pgp[0]["level"] == "same key" and pgp[0]["contribution"] > 3, lk[0]
        assert any(i["kind"] == "pgp_fingerprint" and {a, b} <= set(i["accounts"])
                   for i in d["identifiers"])


def test_real_personas_do_not_grow_from_language_or_pasted_keys(real_ws: Workspace) -> None:
    # Once text was compared as shared evidence against chance, Dream sellers whose
    # profile is their pasted PGP key (key fragments match other keys' fragments) and
    # German-writing sellers (German words are rare in an English workspace) fell into
    # personas of 8-28 accounts. Key blocks are not writing, words weigh within their
    # language: the largest real persona is small again and those pairs stay apart.
    persona = dict(real_ws.con.execute(
        "SELECT account_id, persona_id FROM persona_members").fetchall())
    largest = real_ws.con.execute("SELECT max(n_accounts) FROM personas").fetchone()[0]
    assert largest <= 5, largest
    for a, b in (("dream:amelia77", "dream:troycapo185"),
                 ("dream:germanapotheke", "dream:kraut_ling"),
                 ("dream:germanapotheke", "dream:greenroad")):
        assert a in persona and b in persona, (a, b)
        assert persona[a] != persona[b], (a, b)


TWINS = ("toys-r-us", "blackhand", "dutchdopemasters", "mrgaia1", "smart666tiger")
"""Dream accounts that a same-market merge holds, each with its same-handle twin on
Hansa (stored links 0.55-0.66; the audit judged every one the same vendor)."""


def test_a_cross_market_twin_joins_its_account_merged_on_one_market(
        real_ws: Workspace) -> None:
    # dream:toys-r-us is in one persona with dream:supercoop; hansa:toys-r-us (same
    # rare handle, p 0.657) has no evidence either way with dream:supercoop. Weighed as
    # an unscored pair (-2) that pair outweighed the twin and hansa:toys-r-us was left
    # alone (docs/linking.md, "A twin beside a second account").
    persona = dict(real_ws.con.execute(
        "SELECT account_id, persona_id FROM persona_members").fetchall())
    size = dict(real_ws.con.execute("SELECT persona_id, n_accounts FROM personas").fetchall())
    for h in TWINS:
        assert size[persona[f"dream:{h}"]] >= 2, h   # the same-market merge is there
        assert persona[f"dream:{h}"] == persona[f"hansa:{h}"], h


def _left_apart(ws: Workspace) -> list[tuple[str, str, float]]:
    """Stored links at or above the default merge threshold (0.3) that were not merged."""
    return [(a, b, s) for a, b, s in ws.con.execute(
        "SELECT a, b, score FROM account_links WHERE score >= 0.3 AND NOT merged"
        " ORDER BY a, b").fetchall()]


def test_persona_show_lists_the_stored_links_left_apart_and_why(real_ws: Workspace) -> None:
    # stored links at or above the threshold that the clustering left apart are leads:
    # persona show prints each from both sides with the pairs that kept them apart (before,
    # neither side's lead was printed; dream:cerberus ~ hansa:cerberus, p 0.55, was one
    # until the origins compared places and the three cerberus accounts joined)
    apart = _left_apart(real_ws)
    assert apart
    persona = dict(real_ws.con.execute(
        "SELECT account_id, persona_id FROM persona_members").fetchall())
    for a, b, score in apart:
        assert persona[a] != persona[b]
        for one, other in ((a, b), (b, a)):
            shown = {(x["member"], x["other"]): x
                     for x in show_persona(real_ws, one)["left_apart"]}
            assert shown[one, other]["score"] == score
            why = shown[one, other]["why"]
            assert why.startswith("kept apart by the clustering"), shown
            # the pairs it names join a member of one side to a member of the other
            for x, y in re.findall(r"the pair (\S+) ~ (\S+) ", why):
                assert {persona[x], persona[y]} == {persona[a], persona[b]}, why
        # a persona's own links are not leads
        for x in show_persona(real_ws, a)["left_apart"]:
            assert persona[x["other"]] != persona[a]


def test_review_proposes_the_links_left_apart_in_the_first_batch(real_ws: Workspace) -> None:
    # the queue's draw favours large strata: none of the real stored links left apart at
    # or above the threshold is among its first 25; they come beside it, all of them
    # while they are fewer than the batch
    from darkmap.resolve.review import left_apart_queue, review_queue
    apart = {(a, b) for a, b, _ in _left_apart(real_ws)}
    assert 0 < len(apart) <= 25
    got = left_apart_queue(real_ws, n=25)
    assert {(q.a, q.b) for q in got} == apart
    assert all(not q.merged and q.stratum.startswith("apart") for q in got)
    assert not apart & {(q.a, q.b) for q in review_queue(real_ws, n=25)}
    assert len(left_apart_queue(real_ws, n=2)) == 2


def test_accounts_without_text_do_not_merge_on_shipping_alone(real_ws: Workspace) -> None:
    # Agora's listings are titles: no free text. Fitted only on worlds where every
    # account writes, "no text" weighed nothing while every known text level started
    # near -2.3, and seven Australian Agora vendors with seven handles became one
    # persona on "ships from Australia to Australia". Unknown evidence is now fitted
    # as unknown (train.with_missing_evidence).
    persona = dict(real_ws.con.execute(
        "SELECT account_id, persona_id FROM persona_members").fetchall())
    aus = ["agora:aneaglemum", "agora:ozmarket", "agora:ozalpha", "agora:omooq",
           "agora:bubbleboy", "agora:thelittleguys", "agora:prostudioetlabore"]
    assert all(a in persona for a in aus), [a for a in aus if a not in persona]
    assert len({persona[a] for a in aus}) == len(aus)
    # a handle kept across markets with nothing against it is still one vendor
    assert persona["agora:klosterbier"] == persona["dream:klosterbier"]
