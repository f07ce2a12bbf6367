"""The workbench on real data (tests/web_support.py, :func:`build_real_world`: the seized
Dream seller table and 14,755 Hansa listings): what a browser audit found on pages of a
real workspace. Against the real application served by uvicorn on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from web_support import (
    FakeClock,
    Served,
    World,
    harm_marks_shown,
    next_clock,
    serving,
    shared_real_world,
    signed_in,
)

import darkmap


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> World:
    return shared_real_world(tmp_path_factory, data_dir)


@pytest.fixture(scope="module")
def srv(world: World) -> Iterator[tuple[Served, FakeClock]]:
    clock = next_clock()
    with serving(world, clock) as s:
        yield s, clock


DR_OHNO_ADDRESS = "1NGb6Cesn2tJ3wCP4um2UjBKSHiouc7XXR"
"""A Bitcoin address the Dream seller dr.ohno published; the world loads no chain data."""


def test_a_published_address_outside_the_chain_data_has_a_wallet_page(srv, world) -> None:
    """The persona page links every address a vendor published; one no loaded block pays
    was a dead link (404). Its page names the account that published it and says that the
    chain data do not hold it; an address nobody published is still not found."""
    with signed_in(srv, world, "alice") as c:
        persona = c.get("/persona/dream%3Adr.ohno")
        assert f'href="/wallet/{DR_OHNO_ADDRESS}"' in persona.text
        page = c.get(f"/wallet/{DR_OHNO_ADDRESS}")
        assert page.status_code == 200, page.text[:300]
        assert "Not in the loaded chain data" in page.text
        assert 'href="/account/dream%3Adr.ohno"' in page.text
        data = c.get(f"/api/wallet/{DR_OHNO_ADDRESS}").json()
        assert data["unclustered"] is True and data["in_chain"] is False
        assert data["linked_accounts"] == ["dream:dr.ohno"]
        assert [p["persona_id"] for p in data["linked_personas"]] == \
            [c.get("/api/persona/dream%3Adr.ohno").json()["persona_id"]]
        # a valid address nobody published, and no address at all: not found
        for ident in ("1BoatSLRHtKNngkdXEeobR76b53LETtpyT", quote("not an address")):
            assert c.get(f"/wallet/{ident}").status_code == 404


def _paging(html: str, pager: str) -> str:
    """The text of a page's "showing N–M of T" line ``pager`` (its id)."""
    line = html.split(f'id="{pager}"')[1].split("</p>")[0]
    return line.split(">", 1)[1]


def test_a_persona_pages_its_514_listings_and_its_cases(srv, world) -> None:
    """The persona of hansa:pckabml sells 514 listings (the page showed 200 and said
    nothing) and is linked by 131 records alice may read (all were listed): each list
    says what it shows of how many and pages through all of them."""
    served, _ = srv
    listings = {r[0] for r in served.sql(
        "SELECT listing_id FROM listings WHERE account_id = 'hansa:pckabml'")}
    assert len(listings) == 514
    here = f"/persona/{quote(world.persona, safe='')}"
    with signed_in(srv, world, "alice") as c:
        page = c.get(here).text
        assert _paging(page, "listings-paging").startswith("showing 1–200 of 514")
        assert f'href="{here}?cases_page=1&amp;listings_page=2"' in page
        assert _paging(page, "cases-paging").startswith("showing 1–100 of 131")
        last = c.get(f"{here}?listings_page=3&cases_page=2").text
        assert _paging(last, "listings-paging").startswith("showing 401–514 of 514 · ")
        assert 'rel="next"' not in last.split('id="listings-paging"')[1].split("</p>")[0]
        assert _paging(last, "cases-paging").startswith("showing 101–131 of 131")
        seen: set[str] = set()
        cases: set[str] = set()
        for n in (1, 2, 3):
            d = c.get(f"/api{here}?listings_page={n}&cases_page={min(n, 2)}").json()
            seen |= {r["listing_id"] for r in d["listings"]}
            cases |= {r["record_id"] for r in d["cases"]}
            assert d["listings_paging"]["total"] == 514
        assert seen == listings and len(cases) == 131 and world.case_a in cases
        for bad in ("listings_page=4", "listings_page=0", "listings_page=x",
                    "cases_page=3", "cases_page=-1", "listings_page=%C2%B2"):
            r = c.get(f"{here}?{bad}")
            assert r.status_code == 400 and "page" in r.text, bad
        account = c.get("/account/hansa%3Apckabml?listings_page=2").text
        assert _paging(account, "listings-paging").startswith("showing 201–400 of 514")


def test_cases_and_targets_page_through_everything(srv, world) -> None:
    served, _ = srv
    with signed_in(srv, world, "alice") as c:
        first = c.get("/cases").text
        assert _paging(first, "records-paging").startswith("showing 1–100 of 131")
        assert first.count("<tr><td>") == 100
        ids = {r["record_id"] for n in (1, 2)
               for r in c.get(f"/api/records?page={n}").json()["records"]}
        assert len(ids) == 131 and world.seizure_b not in ids
        seizures = c.get("/cases?kind=seizure&page=2").text
        assert _paging(seizures, "records-paging").startswith("showing 101–130 of 130")
        assert 'href="/cases?kind=seizure&amp;page=1"' in seizures
        assert c.get("/cases?page=3").status_code == 400
        ranked = c.get("/api/targets").json()
        total = ranked["paging"]["total"]
        assert total == served.wb.read(lambda w, _: len(darkmap.targets(w, limit=None))) > 1000
        assert [t["rank"] for t in ranked["targets"]] == list(range(1, 101))
        last = (total + 99) // 100
        page = c.get(f"/targets?page={last}").text
        assert _paging(page, "targets-paging").startswith(
            f"showing {100 * (last - 1) + 1}–{total} of {total}")
        everyone = {t["persona_id"] for n in range(1, last + 1)
                    for t in c.get(f"/api/targets?page={n}").json()["targets"]}
        assert len(everyone) == total


def test_search_pages_its_listings_and_facets_keep_each_other(srv, world) -> None:
    """q=fentanyl: the facets counted every hit while 50 were shown with no next page,
    and a facet link dropped the other facet's filter."""
    served, _ = srv
    hits = {r[0] for r in served.sql(
        "SELECT DISTINCT listing_id FROM listing_observations WHERE "
        "contains(lower(coalesce(title, '')), 'fentanyl') OR "
        "contains(lower(coalesce(description, '')), 'fentanyl')")}
    assert len(hits) > 100
    with signed_in(srv, world, "alice") as c:
        page = c.get("/search?q=fentanyl").text
        assert _paging(page, "listings-paging").startswith(f"showing 1–50 of {len(hits)}")
        assert 'href="/search?q=fentanyl&amp;page=2"' in page
        seen = set()
        for n in range(1, (len(hits) + 49) // 50 + 1):
            d = c.get(f"/api/search?q=fentanyl&page={n}").json()
            seen |= {r["listing_id"] for r in d["listings"]}
        assert seen == hits
        assert sum(d["facets"]["market"].values()) == len(hits)
        # within one drug class: the market facet counts that class, its links keep it
        cls, n_cls = next(iter(d["facets"]["drug_class"].items()))
        one = c.get(f"/search?q=fentanyl&drug_class={cls}")
        facet = one.text.split('id="facet-market"')[1].split("</ul>")[0]
        assert f"&amp;drug_class={cls}&amp;market=hansa" in facet
        assert sum(c.get(f"/api/search?q=fentanyl&drug_class={cls}").json()
                   ["facets"]["market"].values()) == n_cls
        both = c.get(f"/api/search?q=fentanyl&drug_class={cls}&market=hansa").json()
        assert both["listings_paging"]["total"] == n_cls
        assert c.get("/search?q=fentanyl&page=99").status_code == 400


def test_search_text_is_literal_and_folds_as_the_data_do(srv, world) -> None:
    """`%` and `_` were LIKE wildcards (q=% listed 50 personas, every one), and the query
    was case-folded in Python (ß to ss) but the data only lowered by the database, so
    q=ß found the 49 handles holding "ss". Now both are text, lowered alike."""
    served, _ = srv
    with signed_in(srv, world, "alice") as c:
        def personas(q: str) -> list[dict]:
            return c.get("/api/search", params={"q": q}).json()["personas"]

        assert personas("%") == []
        assert "<li>none</li>" in c.get("/search?q=%25").text.split('id="persona-hits"')[1]
        underscored = personas("_")
        assert underscored and all(
            any("_" in m["value"] for m in p["matches"]) for p in underscored)
        assert personas("ß") == []
        for q in ("ß", "SS", "%", "_"):      # listings: the text, lowered as the data are
            want = served.sql(
                "SELECT count(DISTINCT listing_id) FROM listing_observations WHERE "
                f"contains(lower(coalesce(title, '')), lower('{q}')) OR "
                f"contains(lower(coalesce(description, '')), lower('{q}'))")[0][0]
            got = c.get("/api/search", params={"q": q}).json()["listings_paging"]["total"]
            assert got == want, q
        ss = {p["persona_id"] for p in personas("ss")}
        assert ss and ss == {p["persona_id"] for p in personas("SS")}
        handles = {h for (h,) in served.sql("SELECT handle FROM accounts WHERE "
                                            "contains(lower(handle), 'ss')")}
        assert {m["value"] for p in personas("ss") for m in p["matches"]
                if m["matched"] == "handle"} <= handles


def test_dashboard_and_targets_mark_a_harm_without_sales_evidence(srv, world) -> None:
    """The dashboard's top ten and the targets page mark ``*`` (with its explanation in a
    title and a legend) each harm score that rests on no sales evidence, as `darkmap
    targets` does: on this world no persona has any (Hansa's listings show no feedback,
    the seized Dream table no sales), so every score is marked."""
    served, _ = srv
    ranked = served.wb.read(lambda w, _: darkmap.targets(w, limit=100))
    assert len(ranked) == 100 and not any(t["sales_evidence"] for t in ranked)
    with signed_in(srv, world, "alice") as c:
        harm_marks_shown(c.get("/").text, "top-targets", ranked[:10])
        harm_marks_shown(c.get("/targets").text, "targets", ranked)


def test_a_country_is_checked_as_the_cli_checks_it(srv, world) -> None:
    """``/targets?country=Germany`` answered "none" (read at 2 a.m. as "no German
    targets") where ``darkmap targets --country Germany`` refuses the name with the code
    meant (web audit, finding 6). The page and the API refuse it with the CLI's message;
    ``de`` is taken as ``DE``."""
    wb = srv[0].wb
    german = len(wb.call(lambda: darkmap.targets(wb.ws, country="DE", limit=None)))
    assert german > 0          # the real Hansa listings hold vendors shipping from DE
    with signed_in(srv, world, "alice") as c:
        page = c.get("/targets", params={"country": "Germany"})
        assert page.status_code == 400
        assert "country &#39;Germany&#39;: not an ISO 3166 two-letter code (Germany is DE)" \
            in page.text
        api = c.get("/api/targets", params={"country": "Germany"})
        assert api.status_code == 400
        assert api.json()["error"] == ("country 'Germany': not an ISO 3166 two-letter code "
                                       "(Germany is DE); give one such as DE, GB or US")
        for given in ("DE", "de", " de "):
            assert c.get("/api/targets", params={"country": given}).json()["paging"][
                "total"] == german, given
