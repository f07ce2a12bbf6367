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
