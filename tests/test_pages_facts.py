"""Issue #17 page facts against values read off the real pages by hand: per-polarity
feedback counts, profile destinations, sales counts beside level badges, joined dates
inside a label's child, "no feedback yet", relative last-seen, page types, rating scales;
and that the store keeps them (``feedback_counts``, ``account_observations``,
``processed.page_type``) and ``darkmap status --fields`` shows them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_pages_helpers import extract, of

from darkmap.cli import main
from darkmap.collect.ingest import ingest
from darkmap.extract.engine import Template, extract_page
from darkmap.extract.parse import parse_within
from darkmap.model.records import AccountRecord, FeedbackCounts, window_days
from darkmap.store.fieldreport import field_report
from darkmap.store.workspace import Workspace


def _account(path: str) -> AccountRecord:
    (acct,) = of(extract(path), "Account")
    return acct


def test_empire_profile_counts_by_window_and_join_date() -> None:
    acct = _account("empire/users/saved_empire_user_0")
    assert acct.joined_at == datetime(2019, 4, 19)  # <p>Member since: <span>April 19, 2019
    assert acct.feedback_counts == [FeedbackCounts("1m", 76, 0, 1),
                                    FeedbackCounts("6m", 335, 1, 1),
                                    FeedbackCounts("12m", 335, 1, 1)]
    assert (acct.rating, acct.rating_scale) == (99.7, 100)
    acct = _account("empire/users/saved_empire_user_3")
    assert acct.joined_at is not None
    assert acct.feedback_counts[2] == FeedbackCounts("12m", 360, 17, 11)


def test_apollon_counts_level_and_sales_apart() -> None:
    acct = _account("apollon/sellers/seller_0")
    assert acct.feedback_counts == [FeedbackCounts("all", 44, 0, 0)]
    assert acct.level == "Seller Level 1 / Trust Level 3" and acct.sales_count == 93
    res = extract("apollon/listings/listing_0")
    (acct,) = of(res, "Account")
    assert acct.level == "Seller Level 2 / Trust Level 3" and acct.sales_count == 137


def test_apollon_listing_keeps_every_destination() -> None:
    (lst,) = of(extract("apollon/listings/listing_1"), "Listing")
    assert lst.ships_to == ["World Wide", "Europe", "Netherlands", "United Kingdom", "Germany"]
    (lst,) = of(extract("apollon/listings/listing_0"), "Listing")
    assert lst.ships_to == ["United States"]


def test_apollon_feedback_tab_is_a_feedback_page() -> None:
    res = extract("apollon/feedbacks/negative_feedback_0")
    assert res.page_type == "feedback"
    (acct,) = of(res, "Account")
    assert acct.feedback_counts == [FeedbackCounts("all", 433, 16, 11)]
    assert len(of(res, "Feedback")) == 11
    # "Total Positive Feedback : 433" on the positive tab is the positive count of the
    # "Feedback Ratings" (kept in feedback_count too, for the sales estimate's counters)
    acct = _account("apollon/feedbacks/positive_feedback_0")
    assert acct.feedback_counts[0].positive == 433 == acct.feedback_count
    assert extract("apollon/sellers/seller_1").page_type == "vendor"


def test_hansa_profile_counts_badge_and_tab_types() -> None:
    acct = _account("hansa/vendor_tramapro_.htm")
    (counts,) = acct.feedback_counts
    assert counts.window == "all" and counts.positive is not None
    assert _account("hansa/vendor_bitloxer_.htm").feedback_counts == [
        FeedbackCounts("all", 0, 0, 0)]
    # the +663|−7 badge beside the vendor on a listing: no neutral count shown
    assert _account("hansa/listing_56750_.htm").feedback_counts == [
        FeedbackCounts("all", 663, None, 7)]
    assert extract("hansa/listing_56750_.htm").page_type == "listing"
    assert extract("hansa/listing_56750_feedback_.htm").page_type == "feedback"
    assert extract("hansa/listing_56750_terms_.htm").page_type == "terms"
    assert extract("hansa/vendor_dbworld_pgp_.htm").page_type == "pgp"
    assert extract("hansa/vendor_dbworld_terms_.htm").page_type == "terms"
    assert extract("hansa/vendor_dbworld_.htm").page_type == "vendor"


def test_cryptonia_destinations_no_feedback_and_relative_last_seen() -> None:
    acct = _account("cryptonia/users/saved_cryptonia_user_profile_4")
    assert acct.ships_to == ["United States", "Netherlands", "Australia", "France",
                             "European Union"]
    assert acct.last_seen_within == 86400  # "Within the last 24 hours"
    assert (acct.rating, acct.rating_scale) == (90.38, 100)
    assert acct.feedback_count is None and acct.feedback_counts == []
    new = _account("cryptonia/users/saved_cryptonia_user_profile_1")  # "no feedback yet"
    assert new.feedback_count == 0
    assert new.feedback_counts == [FeedbackCounts("all", 0, 0, 0)]
    assert _account("cryptonia/users/saved_cryptonia_user_profile_11").last_seen_within \
        == 7 * 86400  # "Whithin the last week"
    assert _account("cryptonia/users/saved_cryptonia_user_profile_14").last_seen_within \
        == 14 * 86400  # "Within the last two weeks"


def test_dream_rating_is_out_of_five() -> None:
    acct = _account("dream/sellers/seller_2.html")
    assert (acct.rating, acct.rating_scale) == (4.65, 5)


@pytest.mark.parametrize(("text", "seconds"), [
    ("Within the last 3 days", 3 * 86400), ("within the past hour", 3600),
    ("Oct 10, 2019", None), ("Within the last", None), ("in the last zillion days", None)])
def test_parse_within(text: str, seconds: float | None) -> None:
    assert parse_within(text) == seconds


def test_window_days() -> None:
    assert [window_days(w) for w in ("1m", "6m", "12m", "2w", "30d", "all", "m")] == [
        30, 180, 365, 14, 30, None, None]


@pytest.fixture(scope="module")
def pages_ws(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    path = tmp_path_factory.mktemp("facts") / "ws"
    ws = Workspace.init(path)
    try:
        ingest(ws, [data_dir / "pages"])
    finally:
        ws.close()
    return path


def test_store_keeps_counts_types_scales_and_intervals(pages_ws: Path) -> None:
    ws = Workspace.open(pages_ws, read_only=True)
    con = ws.con
    rows = con.execute(
        "SELECT window_label, window_days, positive, neutral, negative FROM feedback_counts "
        "f JOIN accounts a USING (account_id) WHERE a.handle = 'ChillTimes' AND "
        "f.source LIKE '%saved_empire_user_0' ORDER BY window_days").fetchall()
    assert rows == [("1m", 30, 76, 0, 1), ("6m", 180, 335, 1, 1), ("12m", 365, 335, 1, 1)]
    # every extracted page has its page type; skipped pages the type they were skipped as
    types = dict(con.execute(
        "SELECT regexp_extract(source, '[^/]+$'), page_type FROM processed").fetchall())
    assert types["negative_feedback_0"] == "feedback"
    assert types["listing_80539_feedback_.htm"] == "feedback"
    assert types["saved_empire_login_page_0"] == "login"
    assert con.execute("SELECT count(*) FROM processed p WHERE page_type IS NULL AND EXISTS "
                       "(SELECT 1 FROM markets m WHERE m.capture_sha256 = p.sha256)"
                       ).fetchone()[0] == 0
    scales = dict(con.execute(
        "SELECT DISTINCT a.market_id, o.rating_scale FROM account_observations o JOIN accounts"
        " a USING (account_id) WHERE o.rating IS NOT NULL").fetchall())
    assert scales == {"apollon": 100, "cryptonia": 100, "dream": 5, "empire": 100,
                      "hansa": 100}
    assert con.execute("SELECT min(rating_norm), max(rating_norm) FROM account_observations"
                       ).fetchone() == (0.0, 1.0)
    early, late, obs = con.execute(
        "SELECT last_seen_earliest, last_seen_latest, observed_at FROM account_observations "
        "WHERE source LIKE '%saved_cryptonia_user_profile_11'").fetchone()
    assert late == obs and (late - early).days == 7
    ws.close()


def test_status_fields_shows_found_counts(pages_ws: Path) -> None:
    ws = Workspace.open(pages_ws, read_only=True)
    try:
        counts = {(c.market, c.page_type, c.table, c.field): (c.found, c.rows)
                  for c in field_report(ws.con)}
    finally:
        ws.close()
    assert counts[("empire", "vendor", "account_observations", "joined_at")] == (4, 4)
    assert counts[("cryptonia", "vendor", "account_observations", "ships_to")] == (16, 16)
    found, rows = counts[("apollon", "vendor", "account_observations", "feedback_counts")]
    assert found == rows == 5
    out = CliRunner().invoke(main, ["status", "-w", str(pages_ws), "--fields"])
    assert out.exit_code == 0, out.output
    assert "empire vendor account_observations (4 rows)" in out.output
    assert "joined_at=4" in out.output


def test_label_rules_siblings_and_inner_on_a_small_page() -> None:
    """``siblings`` joins every element after the label up to a <br>; ``inner`` reads the
    label element's children; without them a label takes the next sibling only."""
    tpl = Template.from_dict({
        "market": "tiny", "name": "Tiny", "detect": {"rules": [{"title": "^Tiny$"}]},
        "pages": [{"type": "vendor", "when": {"css": "div.p"}, "account": {
            "handle": {"css": "h1"},
            "ships_to": {"label": "^Ship to:$", "siblings": True, "split": "\\s*,\\s*"},
            "ships_from": {"label": "^Ship to:$"},
            "joined_at": {"label": "^Member since:$", "inner": True, "type": "date"},
            "last_seen_at": {"label": "^Member since:$", "type": "date"}}}]}, "tiny.yaml")
    html = ("<html><head><title>Tiny</title></head><body><div class='p'><h1>bob</h1>"
            "<b>Ship to:</b><i>Germany</i><i>, France</i><i>, Spain</i><br><i>, Mars</i>"
            "<p>Member since: <span>April 19, 2019</span></p><p>Oct 1, 2019</p>"
            "</div></body></html>")
    (acct,) = of(extract_page(html, "tiny.html", templates=[tpl]), "Account")
    assert acct.ships_to == ["Germany", "France", "Spain"] and acct.ships_from == "Germany"
    assert acct.joined_at == datetime(2019, 4, 19)
    assert acct.last_seen_at == datetime(2019, 10, 1)  # no inner: the next sibling's text
