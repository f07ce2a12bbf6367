"""Jurisdiction evidence: shipping fields and phrases, parcels, language, currency."""

from __future__ import annotations

from pathlib import Path

from darkmap.assess.jurisdiction import (
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
