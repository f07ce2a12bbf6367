"""assess / sales / jurisdiction / targets on a small real workspace (DuckDB, no mocks)."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from darkmap.assess.fx import load_fx
from darkmap.assess.harm import harm_components, harm_score, rank_targets
from darkmap.assess.sales import SalesParams, correct_orders, informative_mask
from darkmap.assess.stage import assess_workspace
from darkmap.cli import main
from darkmap.errors import BadInputError, WorkspaceStateError
from darkmap.evaluate.drugs import eval_drugs
from darkmap.export.ftm import FtmExporter
from darkmap.model.records import AccountRecord, FeedbackRecord, ListingRecord
from darkmap.report.html import render_report
from darkmap.store import assessment, evaluations
from darkmap.store.workspace import Workspace
from darkmap.store.writer import Provenance, RecordWriter

T0 = datetime(2016, 10, 1)


def _fill(ws: Workspace) -> None:
    w = RecordWriter(ws.con)
    prov = Provenance("0" * 64, "test-fixture", "test@1", T0)

    def listing(mkt: str, ref: str, vendor: str, title: str, price: float, ships: str,
                cat: str = "Drugs") -> None:
        w.add(ListingRecord(market_id=mkt, listing_ref=ref, vendor_handle=vendor, title=title,
                            price=price, currency="USD", ships_from=ships,
                            category_path=[cat], observed_at=T0, locator=f"row {ref}"), prov)

    def feedback(mkt: str, vendor: str, ref: str, n: int, masks: list[str],
                 amount: float | None = None, cur: str | None = None) -> None:
        for i in range(n):
            w.add(FeedbackRecord(market_id=mkt, vendor_handle=vendor, listing_ref=ref,
                                 text=f"great stealth, parcel from usa #{i}",
                                 buyer_masked=masks[i % len(masks)],
                                 left_at=T0 + timedelta(days=3 * i), amount=amount,
                                 currency=cur, locator=f"fb {vendor} {ref} {i}"), prov)

    listing("alpha", "1", "FentKing", "100x M30 blues pressed 30mg", 1500.0, "United States")
    listing("alpha", "2", "FentKing", "1g Fentanyl HCL 99% USA to USA", 300.0, "United States")
    listing("beta", "9", "FentKing_v2", "10gr. Carfentanil", 800.0, "USA")
    listing("alpha", "3", "Weedy", "Amnesia Haze 10g", 100.0, "Netherlands")
    listing("alpha", "4", "Weedy", "OG Kush 28g", 250.0, "Netherlands")
    listing("alpha", "5", "Carder", "Fresh CVV fullz USA", 20.0, "United States", "Fraud")
    feedback("alpha", "FentKing", "1", 20, ["a***1", "a***1", "b***2", "***", "anon"])
    feedback("alpha", "Weedy", "3", 60, ["c***3", "d***4", "e***5"])
    feedback("alpha", "Carder", "5", 200, ["f***6"], amount=0.05, cur="BTC")
    w.add(AccountRecord(market_id="alpha", handle="Weedy", feedback_count=150,
                        profile_text="Wir versenden aus den Niederlanden, schnell und sicher "
                                     "und diskret, die Ware ist nicht gestreckt",
                        observed_at=T0, locator="profile weedy"), prov)
    w.flush()
    ws.con.execute("INSERT INTO personas (persona_id, label, n_accounts, created_at) "
                   "VALUES ('p-fent', 'FentKing', 2, now())")
    ws.con.execute("INSERT INTO persona_members VALUES ('p-fent', 'alpha:fentking'), "
                   "('p-fent', 'beta:fentking_v2')")


@pytest.fixture
def filled(ws: Workspace) -> Workspace:
    _fill(ws)
    assess_workspace(ws)
    return ws


def test_correction_factor_and_range() -> None:
    est, low, high = correct_orders(100)
    assert (est, low, high) == pytest.approx((125.0, 100.0, 160.0))
    assert correct_orders(10, 0.5, (0.25, 1.0)) == pytest.approx((20.0, 10.0, 40.0))
    with pytest.raises(BadInputError):
        SalesParams(rate=0.9, rate_low=0.95, rate_high=1.0)
    with pytest.raises(BadInputError):
        SalesParams(rate_low=0.5)


def test_buyer_masks() -> None:
    assert informative_mask("a***1") and informative_mask("bu***er9")
    assert not informative_mask("***") and not informative_mask("anon")
    assert not informative_mask(None) and not informative_mask("a***")


def test_assess_is_idempotent_and_complete(filled: Workspace) -> None:
    first = filled.con.execute("SELECT * EXCLUDE (assessed_at) FROM listing_assessments "
                               "ORDER BY listing_id").fetchall()
    assess_workspace(filled)
    again = filled.con.execute("SELECT * EXCLUDE (assessed_at) FROM listing_assessments "
                               "ORDER BY listing_id").fetchall()
    assert first == again and len(first) == 6
    row = filled.con.execute("SELECT substance, counterfeit_pill, fentanyl_risk, units, "
                             "unit_price_usd FROM listing_assessments "
                             "WHERE listing_id='alpha:1'").fetchone()
    assert row == ("oxycodone", True, True, 100.0, 15.0)


def test_sales_account_and_persona(filled: Workspace) -> None:
    con = filled.con
    fb, est, lo, hi, rev, buyers, note, days, ev = con.execute(
        "SELECT feedback_count, orders_est, orders_low, orders_high, revenue_usd, "
        "buyers_distinct_min, buyers_note, active_days, evidence FROM sales_summary "
        "WHERE entity_kind='account' AND entity_id='alpha:fentking'").fetchone()
    ev = json.loads(ev)
    # no market here shows counters: the rate is borrowed (the real markets' middle, 0.72)
    assert fb == 20 and ev["basis"] == {"feedback rows": 1}
    assert ev["feedback_rates"]["alpha"]["source"] == "borrowed"
    assert 20 <= lo < est < hi and 20 / 0.8 < est < 20 / 0.65 and hi > 2 * est
    assert rev == pytest.approx(1500 * est)               # 20 rows at the listing price
    assert buyers == 2 and "lower bound" in note and "8 feedback" in note
    assert days == 57
    # the profile shows 150 feedback although only 60 were read: the total wins
    fb_w, est_w, ev_w = con.execute(
        "SELECT feedback_count, orders_est, evidence FROM sales_summary "
        "WHERE entity_id='alpha:weedy' AND entity_kind='account'").fetchone()
    assert fb_w == 150 and 150 / 0.8 < est_w < 150 / 0.65
    assert json.loads(ev_w)["basis"] == {"feedback total shown": 1}
    # persona p-fent joins both FentKing accounts across markets
    n_acc, n_mk, n_lst, p_est = con.execute(
        "SELECT n_accounts, n_markets, n_listings, orders_est FROM sales_summary "
        "WHERE entity_kind='persona' AND entity_id='p-fent'").fetchone()
    assert (n_acc, n_mk, n_lst) == (2, 2, 3) and p_est >= est
    months = con.execute("SELECT month, feedback_count FROM sales_monthly WHERE "
                         "entity_id='alpha:fentking' ORDER BY month").fetchall()
    assert [m[1] for m in months] == [11, 9] and sum(m[1] for m in months) == 20
    # feedback with its own BTC amount is valued at the fx rate of its day
    rev_c, est_c = con.execute("SELECT revenue_usd, orders_est FROM sales_summary WHERE "
                               "entity_id='alpha:carder' AND entity_kind='account'").fetchone()
    fx = load_fx()
    expected = sum(0.05 * fx.rate("BTC", T0 + timedelta(days=3 * i))[0] for i in range(200))
    assert rev_c == pytest.approx(expected * est_c / 200)


def test_sales_estimates_units_and_customers(filled: Workspace) -> None:
    """Orders, pills (counterfeit, fentanyl-risk), grams and customers with intervals."""
    rows = {(k, e, m): (est, lo, hi, lb) for k, e, m, est, lo, hi, lb in filled.con.execute(
        "SELECT entity_kind, entity_id, measure, estimate, low, high, lower_bound "
        "FROM sales_estimates WHERE period = 'all'").fetchall()}
    est, lo, hi, lb = rows[("account", "alpha:fentking", "orders")]
    assert lb == 20 and lo <= est <= hi
    # every order of alpha:1 is a pack of 100 counterfeit M30s: pills = 100 x its orders
    pills = rows[("account", "alpha:fentking", "pills")]
    assert rows[("account", "alpha:fentking", "counterfeit_pills")] == pills
    assert rows[("account", "alpha:fentking", "fentanyl_risk_pills")] == pills
    assert 100 * lo <= pills[0] <= 100 * hi and pills[1] < pills[0] < pills[2]
    # grams by substance: Weedy sells 10 g and 28 g packs of cannabis flower
    g = rows[("account", "alpha:weedy", "grams:cannabis_flower")]
    assert rows[("account", "alpha:weedy", "grams_total")] == g and g[1] < g[0] < g[2]
    # customers: at least the 3 masks seen; at most the orders
    c_est, c_lo, c_hi, c_lb = rows[("account", "alpha:weedy", "customers")]
    w_est, _, w_hi, _ = rows[("account", "alpha:weedy", "orders")]
    assert c_lb == 3 and 3 <= c_lo <= c_est <= c_hi <= w_hi
    # monthly figures of a persona sum to its total
    monthly = filled.con.execute(
        "SELECT sum(estimate) FROM sales_estimates WHERE entity_id = 'p-fent' AND "
        "measure = 'pills' AND period <> 'all'").fetchone()[0]
    assert monthly == pytest.approx(rows[("persona", "p-fent", "pills")][0], rel=1e-3)
    orders_m = filled.con.execute("SELECT sum(orders_est) FROM sales_monthly WHERE "
                                  "entity_id = 'p-fent'").fetchone()[0]
    assert orders_m == pytest.approx(rows[("persona", "p-fent", "orders")][0], rel=1e-3)
    rates = {r[0]: r for r in filled.con.execute(
        "SELECT market_id, rate, rate_low, rate_high, source FROM feedback_rates").fetchall()}
    assert set(rates) == {"alpha", "beta"} and rates["alpha"][4] == "borrowed"
    assert rates["alpha"][2] < rates["alpha"][1] < rates["alpha"][3]


def test_jurisdiction(filled: Workspace) -> None:
    j = {e: (c, conf) for e, c, conf in filled.con.execute(
        "SELECT entity_id, country, confidence FROM jurisdictions WHERE entity_kind='persona'"
    ).fetchall()}
    assert j["p-fent"][0] == "US" and j["p-fent"][1] > 0.5
    assert j["alpha:weedy"][0] == "NL"


def test_harm_ranking_order(filled: Workspace) -> None:
    rows = rank_targets(filled, limit=None)
    order = [r["persona_id"] for r in rows]
    assert order[:3] == ["p-fent", "alpha:weedy", "alpha:carder"]
    top = rows[0]
    assert top["fentanyl_listings"] == 3 and top["counterfeit_listings"] == 1
    assert top["evidence"]["flagged_listings"] and top["country"] == "US"
    assert rows[-1]["harm_score"] == 0.0            # fraud-only vendor
    assert [r["persona_id"] for r in rank_targets(filled, country="NL")] == ["alpha:weedy"]


def test_harm_components_weigh_fentanyl_most() -> None:
    fent = harm_score(harm_components(3, 0, 3, 3, 10, 1000, 5, 1, 30, 3))
    busy_weed = harm_score(harm_components(0, 0, 50, 0, 5000, 500_000, 800, 2, 700, 50))
    assert fent > busy_weed > 0


def test_cli_assess_targets_and_eval(filled: Workspace, tmp_path: Path) -> None:
    path = filled.path
    filled.close()
    runner = CliRunner()
    res = runner.invoke(main, ["assess", "-w", str(path), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["listings_assessed"] == 6
    res = runner.invoke(main, ["targets", "-w", str(path), "--csv", "--limit", "2"])
    assert res.exit_code == 0 and res.output.splitlines()[1].split(",")[1] == "p-fent"
    res = runner.invoke(main, ["targets", "-w", str(path), "--json", "--country", "US"])
    assert [r["persona_id"] for r in json.loads(res.output)][0] == "p-fent"
    labels = tmp_path / "labels.csv"
    labels.write_text("listing_id,drug_class,substance,counterfeit_pill,fentanyl_risk,units,"
                      "unit_kind,dose_mg\nalpha:1,opioid,oxycodone,true,true,100,pill,30\n"
                      "3,cannabis,cannabis_flower,false,false,10,gram,\n", encoding="utf-8")
    res = runner.invoke(main, ["eval", "drugs", "--labels", str(labels), "-w", str(path), "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output)
    assert rep["n"] == 2 and rep["drug_class"]["accuracy"] == 1.0
    Workspace.open(path).close()


def test_a_negative_limit_is_bad_input(filled: Workspace) -> None:
    with pytest.raises(BadInputError, match="limit must be 0 or more"):
        rank_targets(filled, limit=-5)
    assert len(rank_targets(filled, limit=0)) == len(rank_targets(filled, limit=None)) == 3
    path = filled.path
    filled.close()
    res = CliRunner().invoke(main, ["targets", "-w", str(path), "--limit", "-5"])
    assert res.exit_code == 2 and "limit must be 0 or more" in res.output
    assert "Traceback" not in res.output
    Workspace.open(path).close()


def test_a_workspace_without_the_drug_tables_says_so(filled: Workspace) -> None:
    filled.con.execute("DROP TABLE sales_monthly")
    with pytest.raises(WorkspaceStateError, match="lacks the drug tables \\(sales_monthly\\)"):
        assess_workspace(filled)


def test_reads_work_on_a_read_only_workspace(filled: Workspace, tmp_path: Path) -> None:
    """Ranking, the report, the FtM export and the drug evaluation never write the store."""
    path = filled.path
    evaluations.save_evaluation(filled.con, "drugs", {"n": 2, "note": "x"}, "labels.csv")
    filled.close()
    labels = tmp_path / "labels.csv"
    labels.write_text("listing_id,drug_class,substance,counterfeit_pill,fentanyl_risk\n"
                      "alpha:3,cannabis,cannabis_flower,false,false\n", encoding="utf-8")
    ro = Workspace.open(path, read_only=True)
    try:
        assert [r["persona_id"] for r in rank_targets(ro)][0] == "p-fent"
        html = render_report(ro)
        assert "Targets: what is sold" in html and "Evaluation against" in html
        counts = FtmExporter().export(ro, tmp_path / "out.ftm.json")
        assert counts["Asset"] == 6
        assert eval_drugs(labels, workspace=ro)["drug_class"]["accuracy"] == 1.0
        (stored,) = evaluations.stored_evaluations(ro.con)
        assert (stored.key, stored.result, stored.truth_source) == (
            "drugs", {"n": 2, "note": "x"}, "labels.csv")
        assert assessment.count_assessments(ro.con) == 6
    finally:
        ro.close()


def test_assessment_reads_are_typed_rows(filled: Workspace) -> None:
    by_class = dict(assessment.count_by_class(filled.con))
    assert by_class == {"opioid": 3, "cannabis": 2, "non_drug": 1}
    assert assessment.count_flagged(filled.con) == (3, 1)
    first = assessment.flagged_listings(filled.con, 40)[0]
    assert first.fentanyl_risk and first.listing_id == "alpha:1"
    months = assessment.monthly_orders(filled.con, "p-fent")
    assert [m for m, _ in months] == ["2016-10", "2016-11"]
    p_est = filled.con.execute("SELECT orders_est FROM sales_summary WHERE "
                               "entity_id = 'p-fent' AND entity_kind = 'persona'").fetchone()[0]
    assert sum(v for _, v in months) == pytest.approx(p_est)


def test_targets_csv_leaves_sales_not_captured_empty(tmp_path: Path, data_dir: Path) -> None:
    """No sales captured (Hansa's listings CSV has no feedback): the CSV gave orders of
    0.0, where the table shows "-" (found by a documentation audit): unknown and none
    looked the same in a spreadsheet. Their cells are empty."""
    path = tmp_path / "ws"
    runner = CliRunner()
    res = runner.invoke(main, ["ingest", "--init", "-q", "-w", str(path),
                               str(data_dir / "listings" / "hansa-2016-12.csv")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["targets", "-w", str(path), "--csv", "--limit", "0"])
    assert res.exit_code == 0, res.output
    table = list(csv.DictReader(io.StringIO(res.stdout)))
    unknown = [r for r in table if r["sales_basis"] == "not captured"]
    assert len(unknown) > 100
    assert all(r[k] == "" for r in unknown for k in ("orders_est", "orders_low", "orders_high",
                                                      "revenue_usd"))
