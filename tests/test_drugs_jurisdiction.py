"""Jurisdiction evidence: shipping fields and phrases, parcels, language, currency."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import darkmap
from darkmap.assess.jurisdiction import (
    TextMemo,
    country_code,
    detect_language,
    infer_jurisdiction,
    parcel_countries,
    shipping_countries,
)
from darkmap.evaluate.drugs import read_listings


def test_country_names_and_codes() -> None:
    assert country_code("United States") == "US" and country_code("UK") == "GB"
    assert country_code("Netherlands") == "NL" and country_code("Deutschland") == "DE"
    assert country_code("Europe (EU)") is None and country_code("Worldwide") is None
    assert country_code(None) is None


def test_shipping_phrases_from_real_titles() -> None:
    assert shipping_countries("250 Valium roche(Diazepam 10mg)--Usa to Usa--") == ["US"]
    assert shipping_countries("OXYCODONE 40mg x 3 // UK Domestic Shipping") == ["GB"]
    assert shipping_countries("10 x 16mg Hydromorphon (From Germany to Worldwide)") == ["DE"]
    # product origin is not where the vendor ships from
    assert shipping_countries("4 gr super heroin from pakistaan AAA+++") == []
    assert shipping_countries("50g dolphin MARROC HASH, Dutch quality") == []


def test_parcels_and_language() -> None:
    assert parcel_countries("the package came from the netherlands, stealth ok") == ["NL"]
    assert detect_language("Wir versenden aus Deutschland und die Ware ist nicht gestreckt") == "de"
    assert detect_language("Fast shipping and the product is good, will order again") == "en"
    assert detect_language("ok") is None


def test_combined_evidence_and_confidence() -> None:
    j = infer_jurisdiction(["United States"] * 4 + [None], ["xanax usa to usa"], ["USD"],
                           ["stamp from germany"])
    assert j.country == "US" and 0.5 < j.confidence < 1
    assert {e["kind"] for e in j.evidence} == {"ships_from", "shipping_phrase", "parcel"}
    thin = infer_jurisdiction([], [], ["GBP"], [])
    assert thin.country == "GB" and thin.confidence < 0.5
    none = infer_jurisdiction([None], ["hello"], [None], [])
    assert none.country is None and none.confidence == 0.0


def test_real_hansa_ship_from_column_maps_to_countries(data_dir: Path) -> None:
    import csv
    hansa_csv = data_dir / "listings" / "hansa-2016-12.csv"
    with open(hansa_csv, encoding="utf-8", errors="replace") as fh:
        ships = [r[6] for r in csv.reader(fh, skipinitialspace=True) if len(r) > 6 and r[6]]
    codes = [country_code(s) for s in ships]
    known = [c for c in codes if c]
    assert len(known) / len(codes) > 0.7          # the rest is "Europe (EU)", "Worldwide"
    assert max(set(known), key=known.count) in ("US", "NL", "DE", "GB")
    assert read_listings(hansa_csv)


TIED = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import darkmap
    from darkmap.assess.stage import compute_jurisdictions
    ws = darkmap.open_workspace(Path(sys.argv[1]))
    compute_jurisdictions(ws)
    rows = ws.con.execute("SELECT entity_kind, entity_id, country, confidence, evidence "
                          "FROM jurisdictions ORDER BY ALL").fetchall()
    print(json.dumps(rows))
""")


def test_a_tie_between_countries_is_broken_the_same_way_in_every_process(
        tmp_path: Path) -> None:
    # six vendors, one listing each from another country, judged one persona: its
    # countries tie, and a set's order (which changes with each process's string hashing)
    # once decided the country and the evidence's order
    countries = ["Germany", "Netherlands", "Poland", "Spain", "France", "Canada"]
    csv = tmp_path / "hansa-ties.csv"
    csv.write_text("".join(
        f'"2016-12-11 20:13:54 -0500 EST", "{900 + i}", "speed {i}g", "tie{i}", '
        f'"USD 10.00", "Drugs", "{c}"\n' for i, c in enumerate(countries)), encoding="utf-8")
    ws = darkmap.init_workspace(tmp_path / "ws")
    darkmap.ingest(ws, csv)
    for i in range(1, len(countries)):
        darkmap.judge(ws, "hansa:tie0", f"hansa:tie{i}", "same")
    darkmap.link(ws)
    ws.close()
    seen = set()
    for seed in ("1", "2", "3", "4", "5", "6"):
        out = subprocess.run([sys.executable, "-c", TIED, str(tmp_path / "ws")], check=True,
                             capture_output=True, text=True,
                             env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        seen.add(out)
    assert len(seen) == 1
    rows = json.loads(seen.pop())
    [persona] = [r for r in rows if r[0] == "persona"]
    assert persona[2] == "DE"  # the tie goes to the first account in id order: hansa:tie0
    assert len([r for r in rows if r[0] == "account"]) == len(countries)


def test_a_text_read_once_gives_what_it_gives_read_again() -> None:
    memo = TextMemo()
    german = "Wir versenden aus Berlin und sind der beste Anbieter in der ganzen Stadt"
    texts = ["UK to UK next day", "ships from Germany to EU", german, None, ""]
    feedback = ["stamp from NL, great", None]
    once = infer_jurisdiction(["Germany", None], texts, ["EUR"], feedback)
    for _ in range(2):  # the second call reads every text from the memo
        assert infer_jurisdiction(["Germany", None], texts, ["EUR"], feedback, memo) == once
    assert memo.shipping("UK to UK next day") == shipping_countries("UK to UK next day")
