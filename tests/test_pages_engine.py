"""The page engine on every real saved page, on hostile input, and through ingest."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import DATA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from darkmap.extract.decode import decode_page, fix_mojibake
from darkmap.extract.engine import Template, TemplateError, extract_page, load_templates
from darkmap.extract.parse import parse_date, parse_float, parse_price
from darkmap.importers.pages import PagesImporter
from darkmap.model.records import (
    AccountRecord,
    ListingRecord,
    QuarantineRecord,
    SkipRecord,
)
from darkmap.plugins import SourceFile

PAGES = DATA / "pages"
MARKETS = ("empire", "cryptonia", "dream", "apollon", "hansa")


def _page_files() -> list[Path]:
    return [p for p in sorted(PAGES.rglob("*")) if p.is_file() and not p.name.startswith("LICENSE")]


def test_templates_load_for_the_five_markets() -> None:
    markets = {t.market for t in load_templates()}
    assert set(MARKETS) <= markets


def test_every_real_page_is_extracted_or_skipped_with_a_reason() -> None:
    files = _page_files()
    assert len(files) > 100
    unexplained = []
    for path in files:
        res = extract_page(path.read_bytes(), str(path))
        assert res.records, path
        for rec in res.records:
            assert getattr(rec, "locator", "page").split("#")[0] == "page", (path, rec)
            if isinstance(rec, (SkipRecord, QuarantineRecord)):
                assert rec.reason.strip(), (path, rec)
        if all(isinstance(r, SkipRecord) for r in res.records):
            if res.page_type == "unknown":
                unexplained.append(path)
    assert unexplained == []


def test_market_detection_uses_the_page_not_the_folder() -> None:
    # an Apollon 404 page saved among Empire pages belongs to Apollon
    res = extract_page((PAGES / "empire/custom_server_errors/apollon_404_0").read_bytes())
    assert res.market_id == "apollon"
    assert res.page_type == "not_found"


@pytest.mark.parametrize("rel,ptype", [
    ("empire/meta_refresh/saved_empire_meta_refresh_0", "redirect"),
    ("empire/login_page/saved_empire_login_page_1", "login"),
    ("cryptonia/ddos/anti_ddos_page", "anti_ddos"),
    ("cryptonia/login_page/saved_cryptonia_login_page_1", "login"),
    ("dream/anti_ddos/anti_ddos_0.html", "anti_ddos"),
    ("dream/item_not_found/not_found_0.html", "not_found"),
    ("dream/main_page/main_page_0.html", "home"),
    ("dream/login_page/login_0.html", "login"),
])
def test_non_evidence_pages_are_skipped_with_their_type(rel: str, ptype: str) -> None:
    res = extract_page((PAGES / rel).read_bytes(), rel)
    assert res.page_type == ptype
    assert [type(r) for r in res.records] == [SkipRecord]


def test_a_login_page_saved_cut_is_still_a_login_page_and_says_it_is_cut() -> None:
    # the real saved_empire_login_page_0 stops after its footer, before </body></html>:
    # a skip rule still names it, and a quarantined note says the copy is incomplete
    rel = "empire/login_page/saved_empire_login_page_0"
    res = extract_page((PAGES / rel).read_bytes(), rel)
    assert res.page_type == "login"
    skip, note = res.records
    assert isinstance(skip, SkipRecord) and skip.reason == "login form"
    assert isinstance(note, QuarantineRecord) and note.locator == "page#cut"
    assert rel in note.reason and "cut short" in note.reason


def test_unknown_html_is_skipped_not_lost() -> None:
    res = extract_page(b"<html><head><title>My blog</title></head><body><p>hello world</p>"
                       b"</body></html>", "blog.html")
    assert res.market_id is None
    assert res.records == [SkipRecord(page_type="unknown", reason="no template matches",
                                      locator="page")]


def test_required_field_missing_is_quarantined_naming_file_type_and_field() -> None:
    # a truncated Cryptonia listing: the title is there, the vendor block is not
    path = PAGES / "cryptonia/listings/saved_cryptonia_listing_15"
    res = extract_page(path.read_bytes(), str(path))
    assert len(res.records) == 1
    q = res.records[0]
    assert isinstance(q, QuarantineRecord)
    assert q.field == "listing.vendor_handle"
    assert str(path) in q.reason and "listing" in q.reason and "vendor_handle" in q.reason


def test_scripts_and_styles_never_reach_extracted_text() -> None:
    html = (b"<html><head><title>Empire Market - X</title></head><body>"
            b"<div class='listDes'><h2>Nice <script>alert('x')</script>item</h2>"
            b"<p>Sold by <b>-<a href='http://empiremktxgjovhm.onion/u/bob'>bob</a></b></p></div>"
            b"<a class='tablinks' href='http://e.onion/Product_List/setTab/77/1/2/desc'>D</a>"
            b"<div class='tabcontent'><p>desc<style>p{color:red}</style> here"
            b"<img src='http://t/x.gif' width='1' height='1'></p></div></body></html>")
    res = extract_page(html, "x")
    listing = next(r for r in res.records if isinstance(r, ListingRecord))
    assert listing.title == "Nice item"
    assert "alert" not in (listing.description or "") and "color" not in (listing.description or "")


def test_decoding_bom_cp1252_mojibake_and_bytes_repr() -> None:
    assert decode_page(b"\xef\xbb\xbf<p>caf\xc3\xa9</p>").text == "<p>café</p>"
    assert "café" in decode_page(b"<p>caf\xe9 \xe2\x82\xac</p>").text  # cp1252 byte + UTF-8
    assert fix_mojibake("QualitÃ¤t 130â‚¬") == "Qualität 130€"
    assert fix_mojibake("Ã\x85land") == "Åland"
    assert decode_page(b"b'<html>\\n<title>x</title></html>'").text.startswith("<html>\n")
    declared = '<meta charset="windows-1251"><p>\u043f\u0440\u0438</p>'.encode("cp1251")
    assert "\u043f\u0440\u0438" in decode_page(declared).text


def test_huge_page_is_capped_and_the_cap_recorded() -> None:
    path = PAGES / "empire/listings/saved_empire_listing_0"
    data = path.read_bytes()
    res = extract_page(data, "big", max_bytes=len(data) // 2)
    notes = [r for r in res.records if isinstance(r, QuarantineRecord)]
    assert any("truncated" in q.reason for q in notes)


def test_prices_and_dates() -> None:
    assert parse_price("T***3 USD 24.01") == (24.01, "USD")
    assert parse_price("87.21 USD/Order") == (87.21, "USD")
    assert parse_price("฿0.000787 (€7.28)") == (0.000787, "BTC")
    assert parse_price("~ $30") == (30.0, "USD")
    from datetime import datetime
    obs = datetime(2018, 11, 19, 12, 0)
    assert parse_date("3 days ago") is None  # no observation time: never invented
    assert parse_date("3 days ago", obs) == datetime(2018, 11, 16, 12, 0)
    assert parse_date("1d 22h", obs) == datetime(2018, 11, 17, 14, 0)
    assert parse_date("Nov 17, 2019 21:24") == datetime(2019, 11, 17, 21, 24)
    assert parse_date("28/06/2018", formats=["%d/%m/%Y"]) == datetime(2018, 6, 28)
    assert parse_date("Within the last 24 hours", obs) is None


def test_a_decimal_comma_is_read_as_one(tmp_path: Path) -> None:
    # "€ 89,50" was 89.0, "89,50 €" 8950 with no currency, "0,0041 BTC" 41 with none
    assert parse_price("€ 89,50") == (89.5, "EUR")
    assert parse_price("89,50 €") == (89.5, "EUR")
    assert parse_price("1.234,50 EUR") == (1234.5, "EUR")
    assert parse_price("0,0041 BTC") == (0.0041, "BTC")
    assert parse_price("EUR 1,250") == (1250.0, "EUR")  # thousands, as before
    assert parse_price("USD 1,250.00") == (1250.0, "USD")
    (tmp_path / "nightfall.yaml").write_text(
        "market: nightfall\nname: Nightfall\ndetect: {rules: [{title: '^Nightfall'}]}\n"
        "pages:\n  - type: index\n    when: {css: tr.hit}\n    listings:\n"
        "      rows: tr.hit\n      fields:\n        listing_ref: {css: a, attr: href}\n"
        "        title: {css: a}\n        price: {css: td.p, type: price}\n",
        encoding="utf-8")
    page = ("<html><head><meta charset='windows-1252'><title>Nightfall</title></head><body>"
            "<table><tr class='hit'><td><a href='/item/1'>3-MMC 10g</a></td>"
            "<td class='p'>89,50 \u20ac</td></tr></table></body></html>").encode("cp1252")
    res = extract_page(page, "p.html", templates=load_templates([tmp_path]))
    listing = next(r for r in res.records if isinstance(r, ListingRecord))
    assert (listing.price, listing.currency, listing.price_text) == (89.5, "EUR", "89,50 €")


def test_a_decimal_comma_in_a_float_field_is_read_as_one(tmp_path: Path) -> None:
    # `type: float` read "4,85" as 485 (a vendor rating of 485 out of 5) and "1.234,5"
    # as 1.234; prices read them right (above), floats now too
    assert parse_float("4,85/5") == 4.85
    assert parse_float("Rating: 4,8 (120 reviews)") == 4.8
    assert parse_float("99,39% positive") == 99.39
    assert parse_float("1.234,5") == 1234.5
    assert parse_float("1,250 sold") == 1250.0  # thousands, as before
    assert parse_float("12,000.5") == 12000.5
    assert parse_float("4.85/5") == 4.85
    assert parse_float("9" * 5000 + ",5") is None  # no float that size; read in one pass
    (tmp_path / "nightfall.yaml").write_text(
        "market: nightfall\nname: Nightfall\ndetect: {rules: [{title: '^Nightfall'}]}\n"
        "pages:\n  - type: vendor\n    when: {css: section.v}\n    account:\n"
        "      handle: {css: h1}\n      rating: {css: span.score, type: float}\n"
        "      rating_scale: {const: 5}\n", encoding="utf-8")
    page = (b"<html><head><title>Nightfall</title></head><body><section class='v'>"
            b"<h1>kaffeeklatsch</h1><span class='score'>4,85/5</span></section></body>"
            b"</html>")
    res = extract_page(page, "v.html", templates=load_templates([tmp_path]))
    account = next(r for r in res.records if isinstance(r, AccountRecord))
    assert (account.handle, account.rating, account.rating_scale) == ("kaffeeklatsch", 4.85, 5)


def test_bad_templates_are_refused_with_the_file_named() -> None:
    with pytest.raises(TemplateError, match=r"t\.yaml"):
        Template.from_dict({"market": "x", "name": "X", "pages": [],
                            "detect": {"rules": [{"bogus": "y"}]}}, "t.yaml")
    with pytest.raises(TemplateError, match="needs one of"):
        Template.from_dict({"market": "x", "name": "X", "detect": {"rules": [{"title": "X"}]},
                            "pages": [{"type": "listing", "when": {"css": "p"},
                                       "listing": {"title": {"regex": "x"}}}]}, "t.yaml")


def test_a_new_market_is_a_yaml_file_only(tmp_path: Path) -> None:
    (tmp_path / "examplemkt.yaml").write_text(
        "market: examplemkt\nname: Example Market\n"
        "detect: {threshold: 2, rules: [{title: '^Example Market', weight: 2}]}\n"
        "observed_at: [{text_regex: 'Server Time: ([0-9: -]+)', type: date}]\n"
        "pages:\n  - type: listing\n    when: {css: 'div.product'}\n"
        "    required: [listing.title, listing.listing_ref]\n    listing:\n"
        "      listing_ref: {css: 'div.product', attr: data-id}\n"
        "      title: {css: 'h1'}\n      vendor_handle: {css: 'a.vendor'}\n"
        "      price: {label: '^Price$', type: price}\n"
        "      ships_to: {label: '^Ships to$', split: ',\\s*'}\n"
        "    feedback:\n      rows: div.review\n      fields:\n"
        "        text: {css: p}\n        left_at: {css: em, type: date}\n", encoding="utf-8")
    html = ("<html><head><title>Example Market - X</title></head><body>"
            "<span>Server Time: 2020-03-01 12:00</span><div class='product' data-id='4711'>"
            "<h1>Blue</h1><a class='vendor'>greenleaf</a><table><tr><th>Price</th>"
            "<td>USD 54.00</td></tr><tr><th>Ships to</th><td>Europe, Worldwide</td></tr></table>"
            "</div><div class='review'><p>great</p><em>2 days ago</em></div></body></html>")
    tpls = load_templates([tmp_path])
    res = extract_page(html.encode(), "x", templates=tpls)
    listing = next(r for r in res.records if isinstance(r, ListingRecord))
    assert (listing.listing_ref, listing.price, listing.currency, listing.ships_to) == (
        "4711", 54.0, "USD", ["Europe", "Worldwide"])
    fb = [r for r in res.records if type(r).__name__ == "FeedbackRecord"][0]
    from datetime import datetime
    assert fb.left_at == datetime(2020, 2, 28, 12, 0) and fb.locator == "page#feedback 1"


# -- hostile input ----------------------------------------------------------------------

_REAL = [p.read_bytes() for p in _page_files()[::9]]


def _check(data: bytes) -> None:
    res = extract_page(data, "fuzz")
    assert res.records
    for rec in res.records:
        assert getattr(rec, "locator", "page").startswith("page")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_REAL), st.integers(0, 10**6), st.integers(0, 10**6))
def test_truncated_real_pages_never_crash(data: bytes, a: int, b: int) -> None:
    cut = a % (len(data) + 1)
    _check(data[:cut])
    start = b % (len(data) + 1)
    _check(data[start:start + 5000])


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(_REAL), st.binary(max_size=64), st.integers(0, 10**6))
def test_mangled_real_pages_never_crash(data: bytes, junk: bytes, pos: int) -> None:
    i = pos % (len(data) + 1)
    _check(data[:i] + junk + data[i:])
    _check(data.decode("utf-8", "replace").encode("utf-16"))
    _check(data.replace(b"<", b"<script>", 3))


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300))
def test_random_text_never_crashes(text: str) -> None:
    _check(text.encode("utf-8", "surrogatepass"))
    _check(("<html><title>Empire Market - " + text + "</title><div class='listDes'><h2>"
            + text + "</h2></div></html>").encode("utf-8", "surrogatepass"))


def test_huge_page_does_not_blow_up() -> None:
    big = b"<html><title>Hi</title><body>" + b"<div>" * 20000 + b"x" * 3_000_000 + b"</body>"
    _check(big)


# -- importer and ingest -----------------------------------------------------------------


def _src(path: Path) -> SourceFile:
    return SourceFile(path=path, source=str(path), sha256="0" * 64, head=path.read_bytes()[:65536])


def test_sniff_is_sure_of_market_pages_and_moderate_for_other_html(tmp_path: Path) -> None:
    imp = PagesImporter()
    assert imp.sniff(_src(PAGES / "hansa/listing_80539_.htm")) >= 0.8
    other = tmp_path / "x.html"
    other.write_bytes(b"<html><body><p>hi</p></body></html>")
    assert 0.5 <= imp.sniff(_src(other)) < 0.8
    csv = tmp_path / "x.csv"
    csv.write_bytes(b"a,b,c\n1,2,3\n")
    assert imp.sniff(_src(csv)) == 0.0


def test_ingest_stores_with_provenance_and_is_idempotent(tmp_path: Path) -> None:
    from darkmap.collect.ingest import ingest
    from darkmap.store.workspace import Workspace

    pages = tmp_path / "pages"
    for rel in ("hansa/listing_80539_feedback_.htm", "hansa/vendor_tramapro_pgp_.htm",
                "empire/login_page/saved_empire_login_page_0",
                "cryptonia/search_results/saved_cryptonia_search_result_in_category_0"):
        dst = pages / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PAGES / rel, dst)
    ws = Workspace.init(tmp_path / "ws")
    first = ingest(ws, [pages])
    t = first.totals()
    assert t["files"] == 4 and t.get("files_failed", 0) == 0
    assert t["read"] == t["stored"] + t["quarantined"] + t["skipped"]
    assert t["skipped"] >= 1
    n = ws.con.execute("SELECT count(*) FROM listing_observations WHERE source LIKE '%hansa%'"
                       " AND method = 'pages@1' AND capture_sha256 IS NOT NULL").fetchone()[0]
    assert n == 1
    rows = ws.con.execute("SELECT count(*) FROM listing_observations WHERE locator LIKE "
                          "'page#row %'").fetchone()[0]
    assert rows >= 10
    assert ws.con.execute("SELECT count(*) FROM feedback").fetchone()[0] >= 1
    assert ws.con.execute("SELECT count(*) FROM skipped_pages WHERE page_type = 'login'"
                          ).fetchone()[0] == 1
    counts = [ws.con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("listing_observations", "feedback", "account_observations",
                        "identifiers", "skipped_pages")]
    second = ingest(ws, [pages])
    assert all(f.already for f in second.files)
    again = [ws.con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
             for t in ("listing_observations", "feedback", "account_observations",
                       "identifiers", "skipped_pages")]
    assert again == counts
