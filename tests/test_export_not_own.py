"""A market's or a service's onion, or a value many accounts name, is no vendor's
indicator (exports audit, finding 2).

On the real data the STIX bundle made the Grams search engine's onion an "attribution"
indicator that ``indicates`` 80 threat actors, AlphaBay's 62 and Dream's 61: loaded
into OpenCTI or MISP, any visit to those markets would alert as dozens of vendors. The
linker compares none of these values (a market's or a service's onion, an onion named
by accounts of several handles, a value on more than five accounts); the exports now
judge them by the same rule (``darkmap.resolve.profiles.not_own_values``): no indicator,
and the accounts are related to them (STIX ``related-to``, MISP ``mentions``) with a
description saying whose address it is.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from export_workspaces import built, open_ro

from darkmap.export import run_export
from darkmap.plugins import exporters
from darkmap.resolve.profiles import not_own_values

GRAMS, ALPHABAY, DREAM = ("grams7enufi7jmdl.onion", "pwoah7foa6au2pul.onion",
                          "lchudifyeqm4ldjj.onion")


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    return built("real", tmp_path_factory, data_dir)


def _export(real: Path, fmt: str, out: Path) -> dict:  # type: ignore[type-arg]
    with open_ro(real) as ws:
        run_export(exporters()[fmt], ws, out)
    result: dict = json.loads(out.read_text(encoding="utf-8"))  # type: ignore[type-arg]
    return result


def test_the_linker_judges_the_market_and_search_onions_not_own(real: Path) -> None:
    with open_ro(real) as ws:
        not_own = not_own_values(ws.con)
        holders = dict(ws.con.execute(
            "SELECT i.value, count(DISTINCT coalesce(i.account_id, l.account_id)) FROM "
            "identifiers i LEFT JOIN listings l USING (listing_id) WHERE i.kind = 'onion' "
            "GROUP BY ALL").fetchall())
    assert holders[GRAMS] >= 50 and holders[ALPHABAY] >= 50 and holders[DREAM] >= 50
    for host in (GRAMS, ALPHABAY, DREAM, "hansamkt2rr6nfg3.onion"):
        assert f"onion:{host}" in not_own, host


def test_stix_makes_no_indicator_of_a_market_or_service_onion(real: Path,
                                                              tmp_path: Path) -> None:
    bundle = _export(real, "stix", tmp_path / "b.stix")
    objs = bundle["objects"]
    indicators = {o["id"]: o for o in objs if o["type"] == "indicator"}
    patterns = " ".join(o["pattern"] for o in indicators.values())
    for host in (GRAMS, ALPHABAY, DREAM):
        assert host not in patterns
    with open_ro(real) as ws:
        not_own = not_own_values(ws.con)
    shared = {k.partition(":")[2] for k in not_own}
    for o in indicators.values():
        value = o["pattern"].split("'")[1].removeprefix("http://").rstrip("/").casefold()
        assert value not in shared, o["pattern"]
    indicates = Counter(r["source_ref"] for r in objs if r["type"] == "relationship"
                        and r["relationship_type"] == "indicates")
    assert indicates and max(indicates.values()) <= 5, indicates.most_common(3)
    # the onions stay, related to the accounts that advertised them, saying whose they are
    grams = next(o["id"] for o in objs if o["type"] == "url" and GRAMS in o["value"])
    related = [r for r in objs if r["type"] == "relationship"
               and r.get("target_ref") == grams]
    assert len(related) >= 50
    assert all(r["relationship_type"] == "related-to"
               and "not the account's own" in r["description"] for r in related)


def test_misp_accounts_mention_a_market_onion_and_use_their_own(real: Path,
                                                                tmp_path: Path) -> None:
    event = _export(real, "misp", tmp_path / "e.json")["Event"]
    objs = event["Object"]
    onion = {o["uuid"]: o for o in objs if o["name"] == "tor-hiddenservice"}
    by_host = {a["value"]: u for u, o in onion.items() for a in o["Attribute"]
               if a["object_relation"] == "address"}
    refs = [r for o in objs for r in o.get("ObjectReference", [])
            if r["referenced_uuid"] in onion]
    grams = [r for r in refs if r["referenced_uuid"] == by_host[GRAMS]]
    assert len(grams) >= 50 and {r["relationship_type"] for r in grams} == {"mentions"}
    assert any(r["relationship_type"] == "uses" for r in refs)  # a vendor's own onion
    desc = next(a["value"] for a in onion[by_host[GRAMS]]["Attribute"]
                if a["object_relation"] == "description")
    assert "onion" in desc and ";" in desc
