"""Sales estimates (issue #22): simulator knobs, calibration, orders/units/customers,
``darkmap eval sales``, on real pages and on simulated worlds (no mocks)."""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import darkmap
from darkmap.assess import sales as sales_mod
from darkmap.assess.customers import chao1, collision_curve, estimate_customers
from darkmap.assess.feedback_rate import CounterPair, calibrate, counter_pairs, level_sales
from darkmap.assess.sales import dedupe_rows
from darkmap.assess.units import allocate_units, counterfeit_suspect
from darkmap.cli import main
from darkmap.errors import BadInputError
from darkmap.model.records import AccountRecord, FeedbackRecord, ListingRecord
from darkmap.simulate import SimParams, simulate
from darkmap.simulate.world import build_world
from darkmap.store.sales import AccountCounters, FeedbackRow, ListingPack, feedback_rates
from darkmap.store.workspace import Workspace
from darkmap.store.writer import Provenance, RecordWriter

KNOBS = {"market_feedback_rate_min": 0.3, "market_feedback_rate_max": 0.95,
         "feedback_pages_kept": 1, "feedback_totals_shown": 0.7, "hidden_feedback_rate": 0.05,
         "multi_order_review_rate": 0.2, "orders_per_listing": 12.0, "chain": False}


# -- the simulator's knobs ------------------------------------------------------------------

def test_default_world_is_unchanged_by_the_new_knobs() -> None:
    """Unset knobs draw nothing: the default world keeps its feedback rates and orders."""
    a = build_world(5, SimParams(vendors=60))
    b = build_world(5, SimParams(vendors=60, feedback_pages_kept=0, feedback_totals_shown=1.0))
    assert [x.feedback_rate for x in a.accounts] == [x.feedback_rate for x in b.accounts]
    assert np.array_equal(a.orders.rating, b.orders.rating) and a.orders.hidden is None
    assert all(0.5 <= x.feedback_rate <= 0.8 for x in a.accounts)


def test_market_rates_hidden_and_multi_order_knobs() -> None:
    w = build_world(7, SimParams(vendors=150, **{k: v for k, v in KNOBS.items()
                                                 if k != "chain"}))  # type: ignore[arg-type]
    rates = w.market_feedback_rates
    assert len(rates) == len(w.markets) and all(0.3 <= r <= 0.95 for r in rates.values())
    assert len({round(r, 6) for r in rates.values()}) == len(rates)  # drawn per market
    o = w.orders
    assert o.hidden is not None and int((o.hidden & (o.rating == 0)).sum()) == 0
    share_hidden = o.hidden.sum() / max((o.rating > 0).sum(), 1)
    assert 0.01 < share_hidden < 0.12
    # repeat orders of a buyer with one vendor leave feedback less often than first orders
    acct = np.array([w.listings[int(li)].account for li in o.listing])
    order = np.lexsort((o.day, o.buyer, acct))
    repeat = np.zeros(len(o), bool)
    repeat[order[1:]] = (acct[order][1:] == acct[order][:-1]) & \
        (o.buyer[order][1:] == o.buyer[order][:-1])
    rated = o.rating > 0
    assert repeat.sum() > 50 and rated[repeat].mean() < 0.9 * rated[~repeat].mean()
    with pytest.raises(BadInputError):
        SimParams(market_feedback_rate_min=0.5)
    with pytest.raises(BadInputError):
        SimParams(hidden_feedback_rate=1.5)


def test_partial_capture_and_truth_fields(tmp_path: Path) -> None:
    out = tmp_path / "w"
    params = SimParams(vendors=80, **KNOBS)  # type: ignore[arg-type]
    summary = simulate(out, 3, params)
    truth = json.loads((out / "truth.json").read_text())
    accs = truth["accounts"]
    # one feedback page per vendor at most: every vendor with feedback has exactly one
    with_fb = sum(1 for a in accs.values() if a["feedback_rows_shown"])
    assert summary["pages"]["feedback"] == with_fb
    big = [a for a in accs.values() if a["feedback_rows_shown"] > 50]
    assert big, "the world needs vendors with more than one page of feedback"
    a = next(iter(accs.values()))
    assert {"true_feedback", "feedback_rows_shown", "true_customers", "units"} <= set(a)
    assert set(a["units"]) == {"pills", "counterfeit_pills", "fentanyl_risk_pills",
                               "grams_total", "grams"}
    assert all(v["true_customers"] <= v["true_orders"] for v in accs.values())
    actor = next(iter(truth["actors"].values()))
    assert actor["true_orders"] == sum(accs[x]["true_orders"] for x in actor["accounts"])
    assert all(m["feedback_rate"] is not None for m in truth["markets"].values())
    # some profiles hide their feedback total (70% show it)
    pages = list((out / "pages").rglob("user/*.html")) + list((out / "pages").rglob(
        "vendor/*.html"))
    shown = [p for p in pages if "ratings)" in p.read_text() or "nreviews" in p.read_text()]
    assert 0.4 * len(pages) < len(shown) < len(pages)


# -- calibration and the pieces -------------------------------------------------------------

def _counter(aid: str, sales: int | None, fb: int | None, level: str | None = None
             ) -> AccountCounters:
    return AccountCounters(aid, aid.split(":")[0], sales, fb, level, None, None)


def test_counter_pairs_and_borrowed_markets() -> None:
    assert level_sales("Seller Level 4 (767) / Trust Level 7") == 767
    assert level_sales("Level 9 (900+)") is None and level_sales(None) is None
    counters = [_counter("a:x", 100, 60), _counter("a:y", None, 30, "Seller Level 2 (50)"),
                _counter("a:z", 10, 20), _counter("b:q", None, None)]
    rows = [FeedbackRow("b:q", "b", None, "m***1", None, None, i < 2, None, None, "c")
            for i in range(10)]
    pairs = counter_pairs(counters, rows)
    assert [(p.account_id, p.orders, p.feedback, p.source) for p in pairs] == [
        ("a:x", 100, 60, "counters"), ("a:y", 50, 30, "counters"),  # a:z: more fb than sales
        ("b:q", 10, 8, "order rows")]
    rates, pop = calibrate(["a", "b", "c"], pairs)
    assert rates["a"].source == "counters" and 0.5 < rates["a"].rate < 0.7
    assert rates["b"].source == "order rows" and rates["c"].source == "borrowed"
    lo, hi = rates["c"].interval
    a_lo, a_hi = rates["a"].interval
    assert hi - lo > 2 * (a_hi - a_lo)  # a borrowed rate is much less certain


def test_calibration_recovers_known_rates() -> None:
    rng = np.random.default_rng(1)
    pairs = []
    for m, r in (("m1", 0.4), ("m2", 0.6), ("m3", 0.85)):
        for i in range(30):
            n = int(rng.integers(20, 400))
            pairs.append(CounterPair(m, f"{m}:{i}", n, int(rng.binomial(n, r)), "counters"))
    rates, _ = calibrate(["m1", "m2", "m3", "m4"], pairs)
    for m, r in (("m1", 0.4), ("m2", 0.6), ("m3", 0.85)):
        lo, hi = rates[m].interval
        assert lo < r < hi and hi - lo < 0.1
    lo, hi = rates["m4"].interval
    assert lo < 0.4 and hi > 0.85


def test_borrowed_spread_follows_the_calibrated_markets() -> None:
    """A borrowed rate's spread is tau (pooled with its prior) and se(mu) in quadrature:
    markets that agree narrow it, markets far apart widen it."""
    rng = np.random.default_rng(3)

    def borrowed(rates: list[float]) -> tuple[float, float]:
        pairs = [CounterPair(f"m{j}", f"m{j}:{i}", 200, int(rng.binomial(200, r)), "counters")
                 for j, r in enumerate(rates) for i in range(20)]
        out, pop = calibrate([f"m{j}" for j in range(len(rates))] + ["x"], pairs)
        assert out["x"].sd == pytest.approx(math.hypot(pop.tau, pop.mu_se))
        return out["x"].interval

    agree3, agree8 = borrowed([0.6, 0.62, 0.64]), borrowed([0.6, 0.62, 0.64] * 2 + [0.6] * 2)
    apart = borrowed([0.2, 0.35, 0.5, 0.7, 0.85, 0.95, 0.3, 0.9])
    width = [hi - lo for lo, hi in (agree3, agree8, apart)]
    assert width[1] < width[0] < width[2]
    assert apart[0] < 0.2 and apart[1] > 0.9


def test_suspect_bars_count_as_counterfeit_in_half_the_draws() -> None:
    def pack(lid: str, title: str, flagged: bool = False) -> ListingPack:
        return ListingPack(lid, "a:v", "pill", 100.0, "alprazolam", flagged, False, None, title)

    generic = pack("a:1", "100 x Yellow Xanax bars R039")
    assert counterfeit_suspect(generic)
    assert not counterfeit_suspect(pack("a:2", "Xanax 2mg bars - Pfizer pharma"))
    assert not counterfeit_suspect(pack("a:3", "Green hulk bars 2mg x100", flagged=True))
    orders = np.full(2000, 10.0)
    units, _ = allocate_units(orders, [generic], Counter(), np.random.default_rng(0))
    assert np.all(units["pills"] == 1000)
    cf = units["counterfeit_pills"]
    assert set(np.unique(cf)) == {0.0, 1000.0} and 0.4 < float(np.mean(cf > 0)) < 0.6


def test_rows_seen_twice_count_once() -> None:
    t = datetime(2020, 1, 5, 10)
    page = [FeedbackRow("a:v", "a", "a:1", "j***4", t, t, False, None, None, "p1"),
            FeedbackRow("a:v", "a", "a:1", "j***4", t, t, False, None, None, "p1")]
    listing = [FeedbackRow("a:v", "a", "a:1", "j***4", t, t, False, None, None, "p2")]
    dump = [FeedbackRow("a:v", "a", "a:1", "jake_1234", t, t, False, None, None, "d")]
    assert len(dedupe_rows(page + listing + dump)) == 2  # twice on one page: kept twice
    other = [FeedbackRow("a:v", "a", "a:1", "k***4", t, t, False, None, None, "p2")]
    assert len(dedupe_rows(page + other)) == 3


def test_customers_between_masks_and_orders() -> None:
    est, lo, hi, f1, f2 = chao1(Counter({"a": 1, "b": 1, "c": 1, "d": 2, "e": 3}))
    assert (f1, f2) == (3, 1) and 5 < est and lo < est < hi
    curve = collision_curve(np.full(10, 0.1), 200)  # ten equally likely masks
    assert curve[1] == pytest.approx(1.0) and curve[200] == pytest.approx(10, rel=1e-3)
    rng = np.random.default_rng(0)
    orders = np.full(500, 40.0)
    c = estimate_customers(Counter({f"m{i}": 1 for i in range(20)}), None, orders, rng)
    assert c.lower_bound == 20 and np.all(c.draws >= 20) and np.all(c.draws <= 40)
    # every row a different buyer: all 40 orders are (nearly) 40 customers
    assert np.median(c.draws) > 35


# -- the whole job on a simulated world, and on the real pages ---------------------------------

@pytest.fixture(scope="module")
def sim_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("sales-world")
    world, wsdir = base / "world", base / "ws"
    darkmap.simulate_world(world, seed=211, params=SimParams(vendors=150, **KNOBS))  # type: ignore[arg-type]
    ws = darkmap.init_workspace(wsdir)
    try:
        darkmap.ingest(ws, [world / "pages", world / "listings", world / "seized"])
        darkmap.link(ws)
        darkmap.assess_listings(ws)
    finally:
        ws.close()
    return world, wsdir


def test_held_out_world_intervals_hold(sim_world: tuple[Path, Path]) -> None:
    """A world the constants were not chosen on: 90% intervals hold, errors are small."""
    world, wsdir = sim_world
    ws = darkmap.open_workspace(wsdir, read_only=True)
    try:
        r = darkmap.evaluate_sales(ws, world / "truth.json")
        rates = feedback_rates(ws.con)
    finally:
        ws.close()
    assert r["coverage_stated"] == 0.9
    for kind in ("accounts", "personas"):
        s = r[kind]["orders"]  # type: ignore[literal-required]
        assert s["n"] > 80 and s["coverage"] >= 0.85 and s["median_rel_error"] <= 0.25
        for m in ("customers", "pills", "grams_total"):
            u = r[kind][m]  # type: ignore[literal-required]
            assert u["n"] > 20 and u["coverage"] >= 0.8 and u["median_rel_error"] <= 0.3
    fb = r["accounts_orders_by_basis"]["feedback"]
    # measured 0.877 on this world (3 borrowing markets): neither under- nor over-covering
    assert 0.85 <= fb["coverage"] <= 0.97 and fb["median_rel_error"] <= 0.4
    truth = json.loads((world / "truth.json").read_text())
    by = {x.market_id: x for x in rates}
    classic = [m for m, v in truth["markets"].items() if v["layout"] == "classic"]
    assert {by[m].source for m in classic} == {"counters"}
    for m in classic:  # the market's own counters give its rate
        assert by[m].rate_low - 0.1 < truth["markets"][m]["feedback_rate"] < by[m].rate_high + 0.1


def test_eval_sales_cli(sim_world: tuple[Path, Path]) -> None:
    world, wsdir = sim_world
    res = CliRunner().invoke(main, ["eval", "sales", "--truth", str(world / "truth.json"),
                                    "-w", str(wsdir), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert set(data["accounts"]) == {"orders", "customers", "pills", "counterfeit_pills",
                                     "fentanyl_risk_pills", "grams_total"}
    text = CliRunner().invoke(main, ["eval", "sales", "--truth", str(world / "truth.json"),
                                     "-w", str(wsdir)])
    assert text.exit_code == 0 and "orders (counter)" in text.output


def test_targets_show_pills_and_customers(sim_world: tuple[Path, Path]) -> None:
    _, wsdir = sim_world
    ws = darkmap.open_workspace(wsdir, read_only=True)
    try:
        rows = darkmap.targets(ws, limit=0)
    finally:
        ws.close()
    with_pills = [r for r in rows if r["pills"]]
    assert with_pills and all(p[1] <= p[0] <= p[2] for p in (r["pills"] for r in with_pills)
                              if p)
    assert all(r["customers"] is None or r["customers"][1] <= r["customers"][0] <= r[
        "customers"][2] for r in rows)
    assert {r["sales_basis"] for r in rows} >= {"counter"}
    res = CliRunner().invoke(main, ["targets", "-w", str(wsdir), "--csv", "--limit", "5"])
    header = res.output.splitlines()[0].split(",")
    assert res.exit_code == 0 and "pills_est" in header and "customers_high" in header


def test_real_pages_rates_from_displayed_counters(data_dir: Path, tmp_path: Path) -> None:
    """Apollon, Dream and Cryptonia show counters beside feedback; the rest borrow."""
    ws = Workspace.init(tmp_path / "real")
    try:
        darkmap.ingest(ws, [data_dir / "pages"])
        darkmap.assess_listings(ws)
        rates = {r.market_id: r for r in feedback_rates(ws.con)}
    finally:
        ws.close()
    assert rates["apollon"].source == "counters" and rates["apollon"].n_accounts >= 2
    assert 0.4 < rates["apollon"].rate < 0.7            # 433 of 767, 406 of 789 (positive)
    assert rates["cryptonia"].source == "order rows" and 0.7 < rates["cryptonia"].rate < 0.9
    assert rates["dream"].source == "counters" and rates["dream"].n_accounts >= 5
    # Apollon's pairs count every polarity shown (433 + 16 + 11 of 767), as docs/sales.md
    assert rates["apollon"].n_accounts == 5 and rates["apollon"].n_feedback == 1373
    # Hansa's small exact levels ("Level 1 (6)" beside [+6|0]) pair; brackets ("(800+)") do not
    assert rates["hansa"].source == "counters" and rates["hansa"].n_orders < 100
    assert rates["empire"].source == "borrowed"
    assert rates["empire"].rate_high - rates["empire"].rate_low > \
        rates["cryptonia"].rate_high - rates["cryptonia"].rate_low


def test_hansa_category_vendors_have_orders_and_origin(data_dir: Path, tmp_path: Path) -> None:
    """Hansa's category pages show each vendor's [+628|-9] badge and "Level 9 (800+)":
    the feedback total is the basis, the bracket a floor no draw goes under; the rows'
    "Ships from" reach the vendor's country (the audit's target #1 had orders "-", "--")."""
    ws = Workspace.init(tmp_path / "hansa")
    try:
        darkmap.ingest(ws, [data_dir / "pages" / "hansa"])
        darkmap.assess_listings(ws)
        est = {e: (v, lo, hi, lb, basis, json.loads(ev)) for e, v, lo, hi, lb, basis, ev in
               ws.con.execute(
                   "SELECT entity_id, estimate, low, high, lower_bound, basis, evidence "
                   "FROM sales_estimates WHERE entity_kind = 'account' AND period = 'all' "
                   "AND measure = 'orders'").fetchall()}
        ships = ws.con.execute(
            "SELECT count(*) FILTER (WHERE ships_from IS NOT NULL) FROM listing_observations "
            "WHERE source LIKE '%category%'").fetchone()
    finally:
        ws.close()
    v, lo, hi, lb, basis, ev = est["hansa:counterfeits"]
    assert basis == "feedback total shown" and ev["feedback_used"] == 637
    assert lb == 800 and 800 <= lo <= v <= hi and ev["sales_floors"] == {"hansa:counterfeits": 800}
    v, lo, hi, lb, basis, ev = est["hansa:kingodua"]  # 1 row read, 265 feedback, 300+ sales
    assert basis == "feedback total shown" and 300 <= lo <= v <= hi
    v, lo, hi, lb, basis, _ = est["hansa:tramapro"]  # profile: "Orders 60+", 46/2/4 feedback
    assert basis == "feedback total shown" and lo >= 60
    assert ships == (65,)


def test_partial_capture_is_extrapolated_and_levels_count(ws: Workspace) -> None:
    """A profile with no total and one full page of recent feedback: orders extrapolated
    over the vendor's active span; a level with the sales in brackets is a counter."""
    crawl = datetime(2021, 12, 31)
    w = RecordWriter(ws.con)
    profile = Provenance("1" * 64, "profile.html", "test@1", crawl)
    page = Provenance("2" * 64, "feedback_1.html", "test@1", crawl)
    w.add(AccountRecord(market_id="mk", handle="Big", joined_at=crawl - timedelta(days=730),
                        observed_at=crawl, locator="profile"), profile)
    w.add(AccountRecord(market_id="mk", handle="Leveled", level="Seller Level 4 (767)",
                        feedback_count=433, observed_at=crawl, locator="profile 2"), profile)
    w.add(ListingRecord(market_id="mk", listing_ref="1", vendor_handle="Big",
                        title="100x Xanax bars 2mg (pressed)", price=150.0, currency="USD",
                        observed_at=crawl, locator="listing"), profile)
    for i in range(50):  # one full page: the newest 50 feedback, over the last 100 days
        w.add(FeedbackRecord(market_id="mk", vendor_handle="Big", listing_ref="1",
                             text="good", buyer_masked=f"{'abcdefgh'[i % 8]}***{i % 10}",
                             left_at=crawl - timedelta(days=2 * i), locator=f"fb {i}"), page)
    w.flush()
    darkmap.assess_listings(ws)
    rows = {(e, m): (est, lo, hi, basis, ev) for e, m, est, lo, hi, basis, ev in ws.con.execute(
        "SELECT entity_id, measure, estimate, low, high, basis, evidence FROM sales_estimates "
        "WHERE entity_kind = 'account' AND period = 'all'").fetchall()}
    est, lo, hi, basis, ev = rows[("mk:big", "orders")]
    assert basis == "extrapolated" and json.loads(ev)["extrapolation"]["mk:big"] > 5
    assert lo > 50 and est > 50 * 2.5 and hi > est  # 50 rows over 100 of 730 active days
    est, lo, hi, basis, _ = rows[("mk:leveled", "orders")]
    assert basis == "counter" and est == lo == hi == 767
    # the level pair (767 orders, 433 feedback) calibrates the market's rate
    rate = {r.market_id: r for r in feedback_rates(ws.con)}["mk"]
    assert rate.source == "counters" and rate.n_accounts == 1
    assert rate.rate_low < 433 / 767 < rate.rate_high
    pills = rows[("mk:big", "counterfeit_pills")]
    assert pills[0] == pytest.approx(100 * rows[("mk:big", "orders")][0], rel=0.02)


def test_quantiles_are_numpys_percentile_bit_for_bit() -> None:
    # the estimate and its interval come from the order statistics and the interpolation
    # np.percentile uses, with the positions prepared once per sample size: the stored
    # figures must not move by one bit
    rng = np.random.default_rng(7)
    for trial in range(3000):
        n = int(rng.choice([1, 2, 3, 5, 10, 19, 20, 21, 199, 2000, 2001]))
        x = [rng.normal(size=n) * 1e3, rng.lognormal(size=n), rng.integers(0, 50, size=n),
             rng.poisson(2.0, size=n), np.round(rng.gamma(2.0, 3.0, size=n), 1),
             np.zeros(n)][trial % 6]
        lo, mid, hi = np.percentile(x, sales_mod._Q)
        want = np.array([mid, lo, hi], dtype=np.float64)
        assert np.array(sales_mod._q(x), dtype=np.float64).tobytes() == want.tobytes(), (n, x)
    with_nan = np.array([1.0, np.nan, 3.0])
    assert all(np.isnan(v) for v in sales_mod._q(with_nan))
