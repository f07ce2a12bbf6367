"""The linker's evidence on the real data: what each signal claims about real pairs.

An explanation that names evidence the data does not hold ("shared contact" for a
market's onion) is worse than no signal. Each test names real accounts of
../shared/data and checks the signal level the pair gets from
:func:`darkmap.resolve.features.compare`.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DATA

from darkmap.collect.ingest import ingest
from darkmap.resolve.features import SIGNALS, compare
from darkmap.resolve.profiles import Profiles, load_profiles
from darkmap.store.workspace import Workspace


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Profiles:
    ws = Workspace.init(tmp_path_factory.mktemp("realevidence") / "ws")
    ingest(ws, [DATA / "pages", DATA / "listings", DATA / "seized"])
    profiles = load_profiles(ws.con)
    ws.close()
    return profiles


def _label(p: Profiles, signal: str, a: str, b: str) -> str:
    """The level label ``signal`` gives the pair ``a``, ``b``."""
    f = compare(p, np.array([p.index[a]]), np.array([p.index[b]]), (signal,))
    return SIGNALS[signal][int(f.level[signal][0])]


def _compared(p: Profiles, group: str) -> set[str]:
    """The values of an identifier group that are compared and held by two accounts."""
    m = p.idents[group].tocsc()
    held = np.diff(m.indptr)
    return {p.ident_values[group][c] for c in np.flatnonzero(held >= 2)}


def test_market_forum_and_service_onions_and_placeholders_are_no_shared_contact(
        real: Profiles) -> None:
    """Acropolis market, The Hub forum, temp.pm, and the order-form placeholder
    you@you.com were each "shared contact" of two different vendors' accounts."""
    shared = _compared(real, "contact")
    for value in ("onion:acropol4ti6ytzeh.onion", "onion:thehub7gqe43miyc.onion",
                  "onion:temppm7ynp557fn7.onion", "onion:hansamkt2rr6nfg3.onion",
                  "email:you@you.com"):
        assert value not in shared
    for a, b in (("dream:sacdirtycrew", "dream:thehappycrew"),
                 ("dream:mindful-shaman", "dream:mrgaia1"),
                 ("dream:johnnyutah", "dream:pharmville")):
        assert _label(real, "contact", a, b) != "shared contact", (a, b)


def test_a_vendors_own_email_on_two_markets_stays_a_shared_contact(real: Profiles) -> None:
    assert "email:b.business@sigaint.org" in _compared(real, "contact")
    assert _label(real, "contact", "cryptonia:barrybusiness",
                  "dream:barrybusiness") == "shared contact"


@pytest.mark.parametrize(("a", "b", "label"), [
    # "EU" and "Europe (EU)": one place written two ways
    ("agora:klosterbier", "hansa:klosterbier", "same origin"),
    ("agora:pastperfect", "hansa:pastperfect", "same origin"),
    # Austria is in the EU: no disagreement, and no agreement either
    ("agora:flyfelix", "hansa:flyfelix", "unknown"),
    # "Undeclared", "World Wide", "Worldwide" are no origin
    ("agora:idealpills", "hansa:idealpills", "unknown"),
    ("dream:chernobyl", "empire:chernobyl", "unknown"),
    ("dream:color", "hansa:color", "unknown"),
    ("cryptonia:cerberus", "hansa:cerberus", "unknown"),
    # a real disagreement stays one: United States against Netherlands
    ("hansa:sacdirtycrew", "hansa:thehappycrew", "different origin"),
])
def test_origin_compares_places_not_spellings(real: Profiles, a: str, b: str,
                                              label: str) -> None:
    assert _label(real, "ships_from", a, b).startswith(label)


def test_leetspeak_and_dropped_digits_together_are_no_same_handle(real: Profiles) -> None:
    """hansa:gecko99 (Indian pharma) joined dream:g3cko (software) on "gecko": the one
    by reading 3 as e, the other by dropping 99. Either alone still makes a match."""
    assert not _label(real, "handle", "dream:g3cko", "hansa:gecko99").startswith("same")
    assert _label(real, "handle", "dream:greygooseglobal",
                  "dream:greygoosegl0bal").startswith("same normalised handle")


def test_a_seized_dump_account_was_active_up_to_the_dump(real: Profiles) -> None:
    """dream:donpericos joined Dream on 2015-09-01 and is in the seized seller table,
    whose newest account joined on 2016-12-01; Hansa listed DonPericos on 2016-12-11.
    Timing read the Dream account as active on its join date only: "gap >1y"."""
    i = real.index["dream:donpericos"]
    assert real.active_end is not None
    assert str(np.datetime64(int(real.active_end[i]), "D")) == "2016-12-01"
    assert _label(real, "timing", "dream:donpericos", "hansa:donpericos") in (
        "succession (gap <90d)", "overlap >30d")


_ODD = ("Parcels leave the lighthouse every second Tuesday wrapped in three layers of "
        "kelp, and the keeper signs each one with a drawing of a small blue crab. ")


def _handles_world(ws: Workspace, handles: list[tuple[str, str]]) -> Profiles:
    """Profiles of accounts ``(market, handle)`` with the same odd text each (so that
    every pair is compared)."""
    import hashlib
    from datetime import datetime

    from darkmap.model.records import AccountRecord, MarketRecord
    from darkmap.store.writer import Provenance, RecordWriter

    prov = Provenance(hashlib.sha256(b"homoglyphs").hexdigest(), "test", "test@1",
                      datetime(2020, 1, 1))
    w = RecordWriter(ws.con)
    for mid in sorted({m for m, _ in handles}):
        w.add(MarketRecord(mid, mid), prov)
    for mid, handle in handles:
        w.add(AccountRecord(mid, handle, profile_text=_ODD * 2, locator=f"acct {handle}"),
              prov)
    w.flush()
    return load_profiles(ws.con)


def test_identical_non_latin_handles_are_the_same_handle_and_lookalikes_are_not(
        ws: Workspace) -> None:
    p = _handles_world(ws, [("agora", "магазин"), ("hansa", "магазин"),
                            ("agora", "TheShop"), ("hansa", "TheSh\u043ep")])
    assert _label(p, "handle", "agora:магазин", "hansa:магазин") == \
        "same handle, rare (<=3 accounts)"
    assert not _label(p, "handle", "agora:theshop", "hansa:thesh\u043ep").startswith("same")


def test_a_stored_link_flags_a_handle_that_mixes_scripts(ws: Workspace) -> None:
    """"TheShоp" (Cyrillic о) prints exactly as "TheShop": the explanation says which
    account's handle mixes scripts, a possible impersonation."""
    import json

    from darkmap.resolve.link import LinkOptions, link
    _handles_world(ws, [("agora", "TheShop"), ("hansa", "TheSh\u043ep"),
                        ("hansa", "TheShop")])
    link(ws, LinkOptions(store_min=0.0))
    rows = ws.con.execute("SELECT a, b, signals FROM account_links").fetchall()
    flags = {(a, b): json.loads(s)["handle"].get("mixed_script") for a, b, s in rows}
    assert flags[("agora:theshop", "hansa:thesh\u043ep")] == ["hansa:thesh\u043ep"]
    assert flags[("agora:theshop", "hansa:theshop")] is None


def test_explanations_say_when_a_same_handle_differs_as_written(ws: Workspace) -> None:
    """dream:bud_central ~ hansa:budcentral read "same handle": an analyst checking an
    impersonation lead must see that the names differ as written; and a mixed-script
    handle is named a possible impersonation in the level `persona show` prints."""
    import json

    from darkmap.resolve.link import LinkOptions, link
    _handles_world(ws, [("dream", "Bud_Central"), ("hansa", "BudCentral"),
                        ("agora", "BudCentral"), ("agora", "TheShop"),
                        ("hansa", "TheSh\u043ep")])
    link(ws, LinkOptions(store_min=0.0))
    rows = ws.con.execute("SELECT a, b, signals FROM account_links").fetchall()
    level = {(a, b): json.loads(s)["handle"]["level"] for a, b, s in rows}
    assert level[("dream:bud_central", "hansa:budcentral")].startswith("same handle")
    assert "written differently" in level[("dream:bud_central", "hansa:budcentral")]
    assert "written differently" not in level[("agora:budcentral", "hansa:budcentral")]
    assert "possible impersonation" in level[("agora:theshop", "hansa:thesh\u043ep")]
