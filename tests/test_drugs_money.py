"""Price parsing and USD conversion with the shipped and a dropped-in fx table."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

import darkmap
from darkmap.assess.fx import PriceBin, load_fx, parse_price, parse_price_bin, to_usd
from darkmap.assess.lexicon import load_lexicon
from darkmap.assess.listing import assess_listing
from darkmap.errors import BadInputError, NotFoundError
from darkmap.store.workspace import Workspace


@pytest.mark.parametrize("text,amount,ccy", [
    ("USD 340.00", 340.0, "USD"), ("USD 1,500.00", 1500.0, "USD"), ("$1,000", 1000.0, "USD"),
    ("52.50 EUR", 52.5, "EUR"), ("€ 235", 235.0, "EUR"), ("0.0523 BTC", 0.0523, "BTC"),
    ("£40", 40.0, "GBP"), ("BTC 0,5", 0.5, "BTC"), ("12 mBTC", 0.012, "BTC"),
])
def test_parse_price(text: str, amount: float, ccy: str) -> None:
    p = parse_price(text)
    assert p is not None and p.currency == ccy and p.amount == pytest.approx(amount)


def test_unreadable_or_tiered_prices() -> None:
    assert parse_price("") is None and parse_price("call me") is None
    assert parse_price("42") is None            # no currency, no default
    assert parse_price("42", "EUR").currency == "EUR"
    tiered = parse_price("1g $60 / 3.5g $180")
    assert tiered.amount == 60 and tiered.tiered


def test_shipped_table_covers_market_era_and_is_plausible() -> None:
    fx = load_fx()
    assert fx.first_day <= date(2011, 6, 1) and fx.last_day >= date(2025, 1, 1)
    # Hansa scrape day: BTC was in the high hundreds, EUR about 1.05-1.06 USD
    btc, _ = fx.rate("BTC", date(2016, 12, 11))
    eur, _ = fx.rate("EUR", date(2016, 12, 11))
    assert 650 < btc < 900 and 1.0 < eur < 1.1
    # the 2017 bubble and the 2021 peak are in the table
    assert fx.rate("BTC", date(2017, 12, 15))[0] > 10_000
    assert fx.rate("BTC", date(2021, 4, 15))[0] > 50_000
    assert fx.rate("USD", None) == (1.0, "")


def test_conversion_notes_out_of_range_and_unknown() -> None:
    usd, note = to_usd(2.0, "BTC", datetime(2030, 1, 1))
    assert usd is not None and "after fx table" in note
    assert to_usd(5.0, "XYZ", date(2016, 1, 1))[0] is None
    assert to_usd(5.0, "EUR", None) == (None, "listing has no date")


def test_dropped_in_table_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = tmp_path / "fx_daily.csv"
    table.write_text("# my exchange's closes\ndate,btc_usd,eur_usd,gbp_usd\n"
                     "2016-12-10,1000,2.0,1.25\n2016-12-12,1100,2.0,1.25\nbad-row,x,y,z\n",
                     encoding="utf-8")
    fx = load_fx(table)
    assert fx.rate("BTC", date(2016, 12, 11))[0] == 1000
    assert fx.rate("GBP", date(2016, 12, 12))[0] == 1.25
    monkeypatch.setenv("DARKMAP_FX_TABLE", str(table))
    assert load_fx().source == str(table)
    monkeypatch.delenv("DARKMAP_FX_TABLE")
    assert load_fx(workspace=tmp_path).source == str(table)
    bad = tmp_path / "bad.csv"
    bad.write_text("day,rate\n1,2\n", encoding="utf-8")
    with pytest.raises(BadInputError, match="needs a 'date' column"):
        load_fx(bad)
    with pytest.raises(NotFoundError, match="fx table not found"):
        load_fx(tmp_path / "missing.csv")
    with pytest.raises(BadInputError, match="cannot read the fx table"):
        load_fx(tmp_path)                                  # a folder


def test_a_lexicon_that_is_missing(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="lexicon not found"):
        load_lexicon(str(tmp_path / "no-lexicon.tsv"))


def test_listing_prices_per_unit_and_per_gram() -> None:
    a = assess_listing("10gr. Fentanyl HCL", None, ["Drugs"], price_text="USD 500.00",
                       observed_at=datetime(2016, 12, 11))
    assert a.pack_price_usd == 500 and a.price_per_gram_usd == 50 and a.unit_price_usd is None
    b = assess_listing("20x OxyContin 30mg", None, ["Drugs"], price=170.0, currency="EUR",
                       observed_at=datetime(2016, 12, 11))
    eur = load_fx().rate("EUR", date(2016, 12, 11))[0]
    assert b.pack_price_usd == pytest.approx(170 * eur) and b.unit_price_usd == pytest.approx(
        170 * eur / 20)
    c = assess_listing("1g coke", price=0.1, currency="BTC", observed_at=None)
    assert c.pack_price_usd is None and "no date" in c.parse_note


def test_a_price_bin_is_a_range_not_a_price() -> None:
    # Agora gives "[1.00e-07,1.49e+00)" BTC: 0 to 1.49 BTC, not 1.00 BTC (the audit's F2)
    assert parse_price("[1.00e-07,1.49e+00)", "BTC") is None
    assert parse_price_bin("[1.00e-07,1.49e+00)", "BTC") == PriceBin(1e-07, 1.49, "BTC")
    assert parse_price_bin("(0.5, 2]", "eur") == PriceBin(0.5, 2.0, "EUR")
    assert parse_price_bin("USD 340.00") is None and parse_price_bin("[2,1)") is None
    a = assess_listing("Dexamphetamine 5mg x5", None, ["Drugs"],
                       price_text="[1.00e-07,1.49e+00)", currency="BTC",
                       observed_at=datetime(2014, 11, 18))
    assert a.pack_price_usd is None and a.unit_price_usd is None and a.units == 5
    assert "price bin 1e-07 to 1.49 BTC (about $0 to $" in a.parse_note
    assert "tiered" not in a.parse_note and "no price" not in a.parse_note
    # a mapping that asked for the midpoint (``midpoint: true``) keeps it, and says so
    m = assess_listing("Dexamphetamine 5mg x5", None, ["Drugs"], price=0.745, currency="BTC",
                       price_text="[1.00e-07,1.49e+00)", observed_at=datetime(2014, 11, 18))
    assert m.pack_price_usd and "midpoint of a price bin" in m.parse_note


def test_real_agora_bins_give_no_price_and_no_revenue(data_dir: Path, tmp_path: Path) -> None:
    """The 949 real Agora listings are priced only by bins: none gets a USD price, and no
    Agora account a revenue (before: 949 prices, $3.58 M over 260 accounts, "Dexamphetamine
    5mg x5" at $73.38 a pill)."""
    import darkmap

    ws = darkmap.init_workspace(tmp_path / "ws")
    try:
        darkmap.ingest(ws, [data_dir / "listings" / "agora-2014"])
        darkmap.assess_listings(ws)
        n, priced = ws.con.execute(
            "SELECT count(*), count(pack_price_usd) + count(unit_price_usd) "
            "+ count(price_per_gram_usd) FROM listing_assessments").fetchone()
        pill = ws.con.execute("SELECT units, unit_price_usd, parse_note FROM "
                              "listing_assessments WHERE listing_id = 'agora:oDPmMPY'").fetchone()
        accounts, revenue, unvalued = ws.con.execute(
            "SELECT count(*), count(revenue_usd) + count(revenue_usd_low) "
            "+ count(revenue_usd_high), count(*) FILTER (WHERE "
            "evidence->>'value_sources' LIKE '%unvalued%') FROM sales_summary "
            "WHERE entity_kind = 'account'").fetchone()
    finally:
        ws.close()
    assert n == 949 and priced == 0
    assert pill[0] == 5 and pill[1] is None and "price bin" in pill[2]
    assert accounts == 260 and revenue == 0 and unvalued >= 250


def test_price_unit_is_what_the_price_buys() -> None:
    """Cryptonia prices name their unit ("131.25 USD/Ounce"): a title without a pack takes
    it; a per-gram price is not spread over the title's ounce (audit F5f)."""
    a = assess_listing("Hardcore OG - Indoor", price_text="131.25 USD/Ounce")
    assert (a.units, a.unit_kind) == (pytest.approx(28.3495), "gram")
    assert a.price_per_gram_usd == pytest.approx(131.25 / 28.3495, rel=1e-3)
    a = assess_listing("Light Dep Trim - 1 OZ | Trim | Shake", price_text="2.80 USD/gram")
    assert (a.units, a.price_per_gram_usd) == (1.0, 2.8) and "priced per 'gram'" in a.parse_note
    # the title's pack stays when the unit is only a label: 28 g of ketamine for $510.81
    a = assess_listing("28G INDIAN ROCK KETAMINE", price_text="510.81 USD/Gram")
    assert (a.units, a.price_per_gram_usd) == (28.0, pytest.approx(18.2432))
    for unit in ("Each", "Order", "Piece"):  # no quantity: the title decides
        a = assess_listing("Xanax 2mg x 10", price_text=f"20.00 USD/{unit}")
        assert (a.units, a.unit_kind) == (10.0, "pill")
    assert assess_listing("Nice shirt", price_text="5.00 USD/gram").units is None


def test_cryptonia_pages_price_units(data_dir: Path, tmp_path: Path) -> None:
    """On the real pages: "OXYMORPHONE" at 42.50 USD/G is $42.50 a gram (was no pack),
    8244813 "Light Dep Trim - 1 OZ" at 2.80 USD/gram $2.80 a gram (was $0.099)."""
    ws = Workspace.init(tmp_path / "cry")
    try:
        darkmap.ingest(ws, [data_dir / "pages" / "cryptonia"])
        darkmap.assess_listings(ws)
        got = dict(ws.con.execute(
            "SELECT l.listing_ref, a.price_per_gram_usd FROM listing_assessments a "
            "JOIN listings l USING (listing_id)").fetchall())
        no_pack = ws.con.execute(
            "SELECT count(*) FROM listing_assessments WHERE drug_class <> 'non_drug' "
            "AND units IS NULL").fetchone()
    finally:
        ws.close()
    assert got["18756313"] == pytest.approx(42.5) and got["8244813"] == pytest.approx(2.8)
    assert no_pack == (5,)  # of 122 drug listings; 30 before the price units were read
