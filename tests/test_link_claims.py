"""Claims: a vendor's own statement that it sells elsewhere under a name.

The Dream seller table in ../shared/data links Dream vendors' own Hansa shops
(``hansamkt2rr6nfg3.onion/vendor/TheHappyCrew``) and says "i'm on Agora, HANSA"
(klosterbier), "seller on Dreammarket, Alphabay, Hansamarket" (WowDeal); Cryptonia's
profile, listing, category and search pages show where the market verified a vendor
("Dream: 34000 deals, 4.82/5"). Such a claim that agrees with another account (its
market and handle) is "shared contact"; a market named elsewhere in text, or a claim
naming no one, is nothing. The claims are written by the people under
investigation: hostile probes at the end.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA

from darkmap.collect.ingest import ingest
from darkmap.extract.engine import extract_page
from darkmap.model.records import AccountRecord
from darkmap.resolve.claims import (
    BRIEF,
    MAX_CLAIMS,
    account_claims,
    market_names,
    verification_claims,
)
from darkmap.resolve.features import SIGNALS, claimed_pairs, compare
from darkmap.resolve.link import link
from darkmap.resolve.profiles import Profiles, load_profiles
from darkmap.store import exports
from darkmap.store.workspace import Workspace

NAMES = market_names(["agora", "dream", "hansa"])


@pytest.fixture(scope="module")
def real_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The saved pages, the seized Dream table, the Hansa and Agora listings, linked
    once."""
    path = tmp_path_factory.mktemp("claims") / "ws"
    ws = Workspace.init(path)
    ingest(ws, [DATA / "pages", DATA / "listings", DATA / "seized"])
    link(ws)
    ws.close()
    return path


@pytest.fixture(scope="module")
def real(real_ws: Path) -> Profiles:
    ws = Workspace.open(real_ws)
    profiles = load_profiles(ws.con)
    ws.close()
    return profiles


def _contact(p: Profiles, a: str, b: str) -> str:
    f = compare(p, np.array([p.index[a]]), np.array([p.index[b]]), ("contact",))
    return SIGNALS["contact"][int(f.level["contact"][0])]


@pytest.mark.parametrize(("a", "b"), [
    # shop links in the Dream description
    ("dream:thehappycrew", "hansa:thehappycrew"),
    ("dream:sacdirtycrew", "hansa:sacdirtycrew"),
    ("dream:toys-r-us", "hansa:toys-r-us"),
    ("dream:obststand", "hansa:obststand"),
    ("dream:hollanddutch2.0", "hansa:hollanddutch"),
    # first-person statements
    ("dream:klosterbier", "hansa:klosterbier"),
    ("dream:klosterbier", "agora:klosterbier"),
    ("dream:wowdeal", "hansa:wowdeal"),
])
def test_a_claim_that_names_the_other_account_is_a_shared_contact(
        real: Profiles, a: str, b: str) -> None:
    assert _contact(real, a, b) == "shared contact"
    assert _contact(real, b, a) == "shared contact"


def test_a_claim_is_evidence_for_the_account_it_names_only(real: Profiles) -> None:
    """TheHappyCrew's link to its Hansa shop says nothing about SacDirtyCrew's."""
    assert _contact(real, "dream:thehappycrew", "hansa:sacdirtycrew") != "shared contact"
    assert _contact(real, "hansa:thehappycrew", "hansa:sacdirtycrew") != "shared contact"


def test_claimed_pairs_are_scored_and_the_explanation_says_what_was_claimed(
        real_ws: Path) -> None:
    ws = Workspace.open(real_ws)
    try:
        members = dict(ws.con.execute(
            "SELECT account_id, persona_id FROM persona_members").fetchall())
        for a, b in (("dream:thehappycrew", "hansa:thehappycrew"),
                     ("dream:sacdirtycrew", "hansa:sacdirtycrew"),
                     ("dream:toys-r-us", "hansa:toys-r-us")):
            assert members[a] == members[b], (a, b)
        (signals,) = ws.con.execute(
            "SELECT signals FROM account_links WHERE a = 'dream:toys-r-us' "
            "AND b = 'hansa:toys-r-us'").fetchone()
    finally:
        ws.close()
    contact = json.loads(signals)["contact"]
    assert contact["level"] == "shared contact (claim: hansa shop Toys-R-Us)"
    assert contact["claims"] == [("dream:toys-r-us's own text links its shop "
                                  "hansamkt2rr6nfg3.onion/vendor/Toys-R-Us")]


def test_persona_show_prints_the_claim_a_shared_contact_rests_on(real_ws: Path) -> None:
    """The contact line of a claimed pair said "(value 0.0)" (the count of contact values
    both hold, none here) and nothing of the claim but its brief; it now prints the claim
    in full under the line."""
    from click.testing import CliRunner

    from darkmap.cli import main

    res = CliRunner().invoke(main, ["persona", "show", "dream:toys-r-us", "-w", str(real_ws)])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    at = next(n for n, line in enumerate(lines)
              if "contact" in line and "(claim: hansa shop Toys-R-Us)" in line)
    assert "(value" not in lines[at]
    assert lines[at + 1].strip() == ("dream:toys-r-us's own text links its shop "
                                     "hansamkt2rr6nfg3.onion/vendor/Toys-R-Us")


def test_every_claimed_pair_is_a_candidate(real: Profiles) -> None:
    pairs = {(real.ids[a], real.ids[b]) for a, b in claimed_pairs(real)}
    assert ("dream:hollanddutch2.0", "hansa:hollanddutch") in pairs
    assert ("agora:klosterbier", "dream:klosterbier") in pairs


# --- a market's verification lines (Cryptonia) ---------------------------------------


@pytest.mark.parametrize(("page", "handle", "line"), [
    ("users/saved_cryptonia_user_profile_0", "terrysukstock", "Dream: 34000 deals, 4.82/5"),
    ("listings/saved_cryptonia_listing_0", "CaliTerps", "Dream: 4300 deals, 4.96/5"),
    ("saved_cryptonia_category_index_0", "bestcoastbud", "Hansa: 3549/2/2"),
    ("search_results/saved_cryptonia_search_result_in_category_0", "DCdutchconnectionUK",
     "Dream: 14,000 deals, 4.98/5"),
    ("search_results/saved_cryptonia_search_result_in_category_3", "Angelina",
     "Agora: 3000 deals, 4.89/5"),
])
def test_cryptonias_verification_lines_are_read(page: str, handle: str, line: str) -> None:
    records = extract_page((DATA / "pages" / "cryptonia" / page).read_bytes(), page).records
    lines = {r.handle: r.verified_on for r in records if isinstance(r, AccountRecord)}
    assert line in lines[handle]


@pytest.mark.parametrize(("a", "b"), [
    ("cryptonia:terrysukstock", "dream:terrysukstock"),   # "Dream: 34000 deals"
    ("cryptonia:theshop", "dream:theshop"),               # "Dream: 31,000 deals"
    ("cryptonia:theshop", "hansa:theshop"),               # "Hansa: 1399/47/47"
    ("cryptonia:bestcoastbud", "hansa:bestcoastbud"),     # "Hansa: 3549/2/2", category page
    ("cryptonia:angelina", "agora:angelina"),             # "Agora: 3000 deals", search page
])
def test_a_market_verification_names_the_vendors_account_there(
        real: Profiles, a: str, b: str) -> None:
    assert _contact(real, a, b) == "shared contact"
    (c,) = [c for c in real.claims[real.index[a]] if c.market == b.split(":")[0]]
    assert c.kind == "market verification"
    assert c.wording(a).startswith(f"{a}'s market verified it on {c.market}: ")


def test_a_verification_beside_a_search_row_makes_one_persona(real_ws: Path) -> None:
    """Cryptonia's Angelina (2019, Seroquel) is verified on Agora ("Agora: 3000 deals,
    4.89/5"), a line shown only beside its search result row; Agora's Angelina (2014,
    THC suckers) is that account. The products alone left them apart (p 0.22)."""
    ws = Workspace.open(real_ws, read_only=True)
    try:
        (row,) = ws.con.execute(
            "SELECT score, merged FROM account_links WHERE a = 'agora:angelina' "
            "AND b = 'cryptonia:angelina'").fetchall()
        same = ws.con.execute(
            "SELECT count(DISTINCT persona_id) FROM persona_members WHERE account_id "
            "IN ('agora:angelina', 'cryptonia:angelina')").fetchone()
    finally:
        ws.close()
    assert row[1] is True and row[0] > 0.9
    assert same == (1,)


def test_a_newer_search_row_keeps_the_profile_in_the_exports(real_ws: Path) -> None:
    """greensupreme's newest observation is a search result row (2019-11-02): its
    verification lines, no profile; the exports keep its profile page's text, join date
    and rating (2019-10-30)."""
    ws = Workspace.open(real_ws, read_only=True)
    try:
        obs = ws.con.execute(
            "SELECT source, profile_text, joined_at, rating, verified_on "
            "FROM account_observations WHERE account_id = 'cryptonia:greensupreme' "
            "ORDER BY observed_at DESC, obs_id").fetchall()
        (a,) = exports.accounts(ws.con, ["cryptonia:greensupreme"])
    finally:
        ws.close()
    assert "search_result" in obs[0][0] and obs[0][4] and obs[0][1] is None
    profile = next(o for o in obs if "user_profile" in o[0])
    assert (a.profile_text, a.joined_at, a.rating) == profile[1:4]
    assert a.profile_text and a.n_observations == len(obs)


def test_a_verification_line_naming_no_known_market_or_its_own_is_none() -> None:
    lines = ["Wallstreet: 354 deals", "Cryptonia: 5 deals", ": 3 deals", "Dream 34000",
             "A" * 10_000 + ": 1 deal"]
    assert verification_claims(lines, "cryptonia", "x", market_names(
        ["cryptonia", "dream"])) == ()


# --- what is not a claim --------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "ships like on Dream, fast and discreet",
    "Dream Market is down? We never were on Hansa.",
    "register on hansa: http://hansamkt2rr6nfg3.onion/affiliate/44428",
    "Hansa invite http://hansamkt2rr6nfg3.onion/register/E3we",
    "my feedback is on dream, my friend is a vendor on the forum",
    "Beware of the fake seller on Hansa, he copies our name",
    "we are not a vendor on Dream",
])
def test_a_market_named_elsewhere_in_text_is_no_claim(text: str) -> None:
    assert account_claims(text, "agora", "someone", NAMES) == ()


def test_a_claim_of_the_accounts_own_market_is_none() -> None:
    text = "we are on Dream http://hansamkt2rr6nfg3.onion/vendor/Me"
    assert account_claims(text, "dream", "Me", NAMES)[0].market == "hansa"
    assert len(account_claims(text, "dream", "Me", NAMES)) == 1


# --- hostile probes -------------------------------------------------------------------


def test_a_claimed_handle_of_10000_characters_is_no_claim() -> None:
    text = "http://hansamkt2rr6nfg3.onion/vendor/" + "A" * 10_000
    assert account_claims(text, "dream", "x", NAMES) == ()
    escaped = "http://hansamkt2rr6nfg3.onion/vendor/" + "%41" * 3_000
    assert account_claims(escaped, "dream", "x", NAMES) == ()


def test_percent_escapes_are_read_and_lookalikes_are_not_the_name() -> None:
    (plain,) = account_claims("hansamkt2rr6nfg3.onion/vendor/%54oys-R-Us", "dream", "x",
                              NAMES)
    assert (plain.market, plain.handle) == ("hansa", "toysrus")
    # Cyrillic "о" written as itself and as a %-escape: not the Latin name
    for path in ("T\u043eys-R-Us", "T%D0%BEys-R-Us"):
        claims = account_claims(f"hansamkt2rr6nfg3.onion/vendor/{path}", "dream", "x",
                                NAMES)
        assert [c.handle for c in claims] != ["toysrus"], path
    # an escape that is no character, and a path with markup, are no name
    assert account_claims("hansamkt2rr6nfg3.onion/vendor/%FF%FE", "dream", "x",
                          NAMES) == ()
    assert account_claims("hansamkt2rr6nfg3.onion/vendor/a%3Cscript%3E", "dream", "x",
                          NAMES) == ()


def test_the_excerpt_escapes_unprintable_characters() -> None:
    (c,) = account_claims("i'm on Hansa \u202e\u200b, x\x1b[31m", "dream", "x", NAMES)
    assert "\u202e" not in c.said and "\x1b" not in c.said
    assert "\\u202e" in c.said


def test_a_claim_in_a_level_is_brief() -> None:
    """`persona show` prints the level on a line of 100 columns."""
    long = "i'm on Hansa, " + "x" * 500
    for c in (*account_claims(long, "dream", "x", NAMES),
              *account_claims("hansamkt2rr6nfg3.onion/vendor/" + "W" * 40, "dream", "x",
                              NAMES),
              *verification_claims(["Hansa: " + "9" * 500], "cryptonia", "x", NAMES)):
        assert len(c.brief()) <= BRIEF, c


def test_claims_per_account_are_capped_and_long_text_is_searched_in_bounded_time() -> None:
    text = " ".join(f"hansamkt2rr6nfg3.onion/vendor/v{k}" for k in range(50))
    assert len(account_claims(text, "dream", "x", NAMES)) == MAX_CLAIMS
    # no pattern backtracks over a long run of what almost matches
    for bad in ("i am " + "also " * 5000 + "x", "hansamkt2rr6nfg3.onion/x?" + "a=b&" * 5000,
                "seller on " + ", " * 20000, "a" * 16 + ".onion/" * 5000):
        account_claims(bad, "dream", "x", NAMES)


def test_a_claim_naming_another_vendor_is_one_sided_and_says_who_claimed(
        real: Profiles) -> None:
    """An impersonator's claim of TheHappyCrew's Hansa shop: the pair is evidence to
    review (the explanation names the claimer), and the claim ties the claimer to the
    shop it names only, not to the shop's real Dream account."""
    k = real.index["dream:battista"]
    saved = real.claims[k]
    real.derived.clear()
    try:
        real.claims[k] = account_claims("find us on http://hansamkt2rr6nfg3.onion/vendor/"
                                        "TheHappyCrew", "dream", "Battista", NAMES)
        assert _contact(real, "dream:battista", "hansa:thehappycrew") == "shared contact"
        assert _contact(real, "dream:battista", "dream:thehappycrew") != "shared contact"
        assert _contact(real, "dream:battista", "hansa:battista") != "shared contact"
        (c,) = real.claims[k]
        assert re.fullmatch(r"dream:battista's own text links its shop "
                            r"hansamkt2rr6nfg3\.onion/vendor/TheHappyCrew",
                            c.wording("dream:battista"))
    finally:
        real.claims[k] = saved
        real.derived.clear()


# --- service onions are no contact ----------------------------------------------------


@pytest.mark.parametrize(("host", "before", "service"), [
    # a mixer named next to its address, and in its host
    ("bitmixer2whesjgj.onion", "using a service like Bitmixer http://", True),
    ("abcdefghijklmnop.onion", "mix your coins first at ", True),
    ("thehub7gqe43miyc.onion", "", True),
    ("abcdefghijklmnop.onion", "OFFICIAL REVIEW THREAD on the forum: http://", True),
    ("abcdefghijklmnop.onion", "Wall Street Market: http://", True),
    ("abcdefghijklmnop.onion", "search me on grams: ", True),
    # a vendor's own shop or mail server
    ("ye224web57i3gblr.onion", "now have our own direct WebStore http://", False),
    ("jpdoazbb44eyu7dv.onion", "MY PERSONAL SHOP: http://", False),
])
def test_a_service_onion_is_told_by_its_host_or_the_words_before_it(
        host: str, before: str, service: bool) -> None:
    from darkmap.resolve.profiles import service_onion
    assert service_onion(host, before) is service


def test_a_mixer_onion_is_no_shared_contact(real: Profiles) -> None:
    """dream:dr_seuss and dream:dr_seuss_usa both tell buyers to use Bitmixer
    (bitmixer2whesjgj.onion): their "shared contact" rested on it."""
    m = real.idents["contact"].tocsc()
    held = {real.ident_values["contact"][c] for c in np.flatnonzero(np.diff(m.indptr))}
    assert "onion:bitmixer2whesjgj.onion" not in held
    assert _contact(real, "dream:dr_seuss", "dream:dr_seuss_usa") != "shared contact"
