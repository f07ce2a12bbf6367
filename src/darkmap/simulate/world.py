"""The simulated ecosystem: markets with lifetimes, actors, their accounts and listings,
buyers and orders.

:func:`build_world` is pure: the same seed and parameters give the same world. Orders are
held in numpy arrays (one row per order) so a world of 100,000 accounts and about a
million orders fits in a few hundred megabytes; text (descriptions, feedback comments)
is not stored but regenerated from per-object random streams when it is written.
"""

from __future__ import annotations

import base64
import hashlib
import math
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import numpy as np

from darkmap.simulate import catalog, style
from darkmap.simulate.params import SIM_DAYS, START_DATE, SimParams
from darkmap.simulate.pgp_keys import PgpKey, make_key
from darkmap.simulate.rand import derive_seed, stream

__all__ = [
    "Account",
    "Actor",
    "Listing",
    "Market",
    "Orders",
    "World",
    "build_world",
    "day_date",
    "day_ts",
    "usd_per_btc",
    "eur_per_usd",
    "market_onion",
    "MARKET_ROSTER",
    "CSV_MARKETS",
    "COUNTRY_NAMES",
]

# A fixed roster: market i always has the same id, name, layout and onion, whatever the
# seed, so the shipped page templates and dataset mappings (sim_*.yaml) recognise it.
MARKET_ROSTER = (("nightshade", "Nightshade Market"), ("atlas", "Atlas Bazaar"),
                 ("cerberus", "Cerberus Market"), ("velvet", "Velvet Road"),
                 ("monolith", "Monolith Market"), ("kestrel", "Kestrel Market"),
                 ("ozymandias", "Ozymandias Market"), ("bluebird", "Bluebird Bazaar"))
CSV_MARKETS = (2, 4, 6)  # roster indexes that also get a scraped listings CSV
_COUNTRIES = (("US", 30), ("GB", 10), ("DE", 12), ("NL", 12), ("CA", 5), ("AU", 5), ("FR", 4),
              ("ES", 4), ("PL", 3), ("CN", 3), ("IN", 3), ("BE", 2), ("IT", 2), ("SE", 2),
              ("CZ", 2), ("CO", 1))
COUNTRY_NAMES = {"US": "United States", "GB": "United Kingdom", "DE": "Germany",
                 "NL": "Netherlands", "CA": "Canada", "AU": "Australia", "FR": "France",
                 "ES": "Spain", "PL": "Poland", "CN": "China", "IN": "India", "BE": "Belgium",
                 "IT": "Italy", "SE": "Sweden", "CZ": "Czech Republic", "CO": "Colombia"}
_EU = {"DE", "NL", "FR", "ES", "PL", "BE", "IT", "SE", "CZ"}
_UID_DOMAINS = ("protonmail.com", "tutanota.com", "cock.li", "secmail.pro", "dnmx.org")
_KEY_HEADERS = ((), (), (("Version", "GnuPG v2"),), (("Comment", "https://gnupg.org"),),
                (("Version", "Mailvelope v4.4.1"), ("Comment", "https://mailvelope.com")),
                (("Comment", "User-ID:\tvendor"),))
# BTC price anchors (day index, USD): a smooth stand-in for the 2017-2021 market.
_BTC_ANCHORS = ((0, 1000.0), (180, 2500.0), (350, 15000.0), (450, 8000.0), (700, 3600.0),
                (900, 10000.0), (1100, 7000.0), (1180, 5500.0), (1400, 11000.0),
                (1500, 30000.0), (1560, 58000.0), (1650, 34000.0), (1770, 62000.0),
                (1825, 47000.0))


def day_date(day: int) -> date:
    """The calendar date of simulation ``day`` (0 = 2017-01-01)."""
    return START_DATE + timedelta(days=int(day))


def day_ts(day: int, seconds: int = 0) -> int:
    """Unix time of ``seconds`` after midnight UTC of ``day``."""
    d = day_date(day)
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) + seconds


def usd_per_btc(day: int) -> float:
    """Synthetic BTC/USD rate on ``day`` (log-linear between anchors)."""
    day = min(max(day, 0), SIM_DAYS - 1)
    for (d0, p0), (d1, p1) in pairwise(_BTC_ANCHORS):
        if d0 <= day <= d1:
            f = (day - d0) / (d1 - d0)
            return round(math.exp(math.log(p0) + f * (math.log(p1) - math.log(p0))), 2)
    return _BTC_ANCHORS[-1][1]


def eur_per_usd(day: int) -> float:
    """Synthetic EUR per USD on ``day``."""
    return round(0.88 + 0.05 * math.sin(day / 300.0), 4)


@dataclass(slots=True)
class Market:
    """A market and its fate."""

    idx: int
    market_id: str
    name: str
    layout: str  # classic | modern
    opened: int
    closed: int | None
    fate: str  # takedown | exit_scam | open
    onion: str
    currency: str
    commission: float
    seized: bool = False
    csv: bool = False
    next_uid: int = 0
    next_ref: int = 0

    @property
    def last_day(self) -> int:
        """Last day the market operated (and was crawled)."""
        return (self.closed - 1) if self.closed is not None else SIM_DAYS - 1

    def open_on(self, day: int) -> bool:
        """Whether the market operates on ``day``."""
        return self.opened <= day and (self.closed is None or day < self.closed)


@dataclass(slots=True)
class Actor:
    """A person or crew behind one or more vendor accounts."""

    idx: int
    actor_id: str
    country: str
    style: style.Style
    lines: tuple[str, ...]
    title_pref: int
    price_level: float
    ships_to: tuple[str, ...]
    script_kind: str
    coinjoin: bool
    accounts: list[int] = field(default_factory=list)
    keys: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Account:
    """A vendor account on one market."""

    idx: int
    actor: int
    market: int
    handle: str
    uid: int
    start: int
    end: int
    style: style.Style
    feedback_rate: float
    keys: list[int] = field(default_factory=list)
    listings: list[int] = field(default_factory=list)
    true_orders: int = 0


@dataclass(slots=True)
class Listing:
    """One offer of an account."""

    idx: int
    account: int
    market: int
    ref: str
    line: catalog.ProductLine
    units: float
    dose: float | None
    title: str
    price_usd: float
    tiers: tuple[tuple[float, float], ...]
    start: int
    end: int
    fentanyl_risk: bool
    true_orders: int = 0


@dataclass(slots=True)
class Orders:
    """All orders as parallel arrays, sorted by (listing, day)."""

    listing: np.ndarray
    day: np.ndarray
    buyer: np.ndarray
    usd: np.ndarray
    rating: np.ndarray  # 0 = no feedback left, else 1..5
    fb_day: np.ndarray
    starts: np.ndarray  # starts[i]:starts[i+1] are the orders of listing i
    hidden: np.ndarray | None = None  # feedback counted in totals but not shown as a row

    def shown(self, oi: int) -> bool:
        """Whether order ``oi`` has a feedback row on the pages."""
        return bool(self.rating[oi]) and not (self.hidden is not None and self.hidden[oi])

    def __len__(self) -> int:
        return int(self.listing.shape[0])


@dataclass(slots=True)
class World:
    """Everything the writers need."""

    seed: int
    params: SimParams
    markets: list[Market]
    actors: list[Actor]
    accounts: list[Account]
    listings: list[Listing]
    keys: list[PgpKey]
    n_buyers: int
    orders: Orders
    market_feedback_rates: dict[int, float] = field(default_factory=dict)

    def account_id(self, acc: Account) -> str:
        """The store id ``market:handle-casefolded``."""
        return f"{self.markets[acc.market].market_id}:{acc.handle.strip().casefold()}"

    def listing_id(self, lst: Listing) -> str:
        """The store id ``market:listing_ref``."""
        return f"{self.markets[lst.market].market_id}:{lst.ref}"

    def buyer_handle(self, b: int) -> str:
        """Buyer ``b``'s account name (deterministic)."""
        return style.buyer_handle(stream(self.seed, "buyer", b)) + f"{b % 97:02d}"


def market_onion(market_id: str) -> str:
    """The market's (fixed) v3 onion address: pubkey || checksum || version, base32."""
    pub = hashlib.sha256(f"darkmap-sim:onion:{market_id}".encode()).digest()
    chk = hashlib.sha3_256(b".onion checksum" + pub + b"\x03").digest()[:2]
    return base64.b32encode(pub + chk + b"\x03").decode().lower() + ".onion"


def _make_markets(seed: int, n: int) -> list[Market]:
    rng = stream(seed, "markets")
    plan: list[tuple[int, int | None, str]] = [
        (-400, rng.randrange(220, 400), "takedown"),
        (-200, rng.randrange(600, 800), "exit_scam"),
        (rng.randrange(100, 200), rng.randrange(1000, 1300), "takedown"),
        (rng.randrange(300, 400), None, "open"),
        (rng.randrange(500, 700), rng.randrange(1400, 1600), "exit_scam"),
        (rng.randrange(800, 1000), None, "open"),
    ]
    for _ in range(6, n):
        o = rng.randrange(0, 1500)
        fate = rng.choice(("takedown", "exit_scam", "open"))
        c = o + rng.randrange(300, 900) if fate != "open" else None
        if c is not None and c >= SIM_DAYS:
            c, fate = None, "open"
        plan.append((o, c, fate))
    out = []
    for i in range(n):
        o, c, fate = plan[i]
        mid, name = MARKET_ROSTER[i]
        out.append(Market(
            idx=i, market_id=mid, name=name, layout="classic" if i % 2 == 0 else "modern",
            opened=o, closed=c, fate=fate, onion=market_onion(mid),
            currency=("USD", "EUR", "USD", "BTC")[i % 4],
            commission=rng.choice((0.03, 0.04, 0.05)), next_ref=rng.randrange(1000, 60000),
            seized=i == 0, csv=i in CSV_MARKETS))
    return out


def _weighted_open_market(markets: list[Market], day: int, rng: random.Random,
                          exclude: int | None = None) -> Market | None:
    cands = [m for m in markets if m.open_on(day) and m.idx != exclude
             and (m.closed is None or m.closed - day > 20)]
    if not cands:
        return None
    # older markets hold more vendors; new ones gain them after closures
    weights = [1.0 + min(day - m.opened, 600) / 200.0 for m in cands]
    return rng.choices(cands, weights)[0]


class _Builder:
    """Mutable state while a world is generated."""

    def __init__(self, seed: int, params: SimParams) -> None:
        self.seed = seed
        self.p = params
        self.markets = _make_markets(seed, params.markets)
        self.actors: list[Actor] = []
        self.accounts: list[Account] = []
        self.listings: list[Listing] = []
        self.keys: list[PgpKey] = []
        self.handles: list[set[str]] = [set() for _ in self.markets]
        self.refs: list[set[str]] = [set() for _ in self.markets]

    # -- actors and accounts --------------------------------------------------------

    def add_actor(self, i: int, budget: int) -> None:
        rng = stream(self.seed, "actor", i)
        country = rng.choices([c for c, _ in _COUNTRIES], [w for _, w in _COUNTRIES])[0]
        classes, weights = catalog.class_weights()
        main = rng.choices(classes, weights)[0]
        lines = rng.sample(catalog.LINES_BY_CLASS[main],
                           min(len(catalog.LINES_BY_CLASS[main]), rng.choice((1, 2, 2, 3))))
        if rng.random() < 0.3:
            other = rng.choices(classes, weights)[0]
            lines.append(rng.choice(catalog.LINES_BY_CLASS[other]))
        keys_sorted = tuple(dict.fromkeys(pl.key for pl in lines))
        first_handle = style.new_handle(rng)
        ships_to = (("Worldwide",) if rng.random() < 0.45 else
                    ("EU",) if country in _EU else (country,)) if country != "CN" else \
            ("Worldwide",)
        actor = Actor(
            idx=len(self.actors), actor_id=f"actor-{i:06d}", country=country,
            style=style.random_style(rng, first_handle, self.p.contact_rate),
            lines=keys_sorted, title_pref=rng.randrange(6),
            price_level=math.exp(rng.gauss(0.0, 0.15)), ships_to=ships_to,
            script_kind=rng.choices(("p2wpkh", "p2pkh", "p2sh", "p2tr"), (5, 3, 2, 1))[0],
            coinjoin=rng.random() < self.p.coinjoin_rate,
        )
        start = rng.randrange(0, SIM_DAYS - 90)
        retire = min(SIM_DAYS - 1, start + 60 + int(rng.expovariate(1 / 700)))
        plan = self._career(rng, start, retire, first_handle)
        if not plan:
            return
        self.actors.append(actor)
        for market, handle, a_start, a_end in plan[:budget]:
            self._add_account(actor, rng, market, handle, a_start, a_end)

    def _career(self, rng: random.Random, start: int, retire: int,
                handle: str) -> list[tuple[Market, str, int, int]]:
        plan: list[tuple[Market, str, int, int]] = []
        t, h = start, handle
        m = _weighted_open_market(self.markets, t, rng)
        while m is not None and t < retire:
            end = min(retire, m.last_day)
            plan.append((m, h, t, end))
            if m.closed is None or m.closed > retire or rng.random() >= self.p.migration_rate:
                break
            lag = max(2, int(round(self.p.migration_lag_days * math.exp(rng.gauss(0, 0.6)))))
            t = m.closed + lag
            if rng.random() < self.p.handle_change_rate:
                h = style.variant_handle(h, rng) if rng.random() < 0.5 else style.new_handle(rng)
            m = _weighted_open_market(self.markets, t, rng, exclude=m.idx)
        if plan and rng.random() < self.p.multi_account_rate:
            for _ in range(1 if rng.random() < 0.7 else 2):
                t_p = rng.randrange(start, max(start + 1, retire - 30))
                same = rng.random() < 0.25
                host = next((mm for mm, _, s, e in plan if s <= t_p <= e), None)
                m2 = host if same and host is not None else \
                    _weighted_open_market(self.markets, t_p, rng)
                if m2 is None:
                    continue
                h2 = style.new_handle(rng) if (m2 is host or rng.random() <
                                               self.p.handle_change_rate) else handle
                plan.append((m2, h2, t_p, min(retire, m2.last_day)))
        return plan

    def _unique_handle(self, market: Market, handle: str, rng: random.Random) -> str:
        taken = self.handles[market.idx]
        h = handle
        while h.casefold() in taken:
            h = f"{handle}{rng.randrange(2, 999)}"
        taken.add(h.casefold())
        return h

    def _add_account(self, actor: Actor, rng: random.Random, market: Market, handle: str,
                     start: int, end: int) -> None:
        idx = len(self.accounts)
        h = self._unique_handle(market, handle, rng)
        acc_style = actor.style if not actor.accounts else style.perturb(
            actor.style, rng, self.p.style_noise, h, self.p.contact_rate)
        market.next_uid += rng.randrange(1, 40)
        acc = Account(idx=idx, actor=actor.idx, market=market.idx, handle=h,
                      uid=market.next_uid, start=max(start, market.opened, 0), end=end,
                      style=acc_style,
                      feedback_rate=rng.uniform(self.p.feedback_rate_min,
                                                self.p.feedback_rate_max))
        self.accounts.append(acc)
        first = not actor.accounts
        actor.accounts.append(idx)
        if not first and actor.keys and rng.random() < self.p.key_reuse_rate:
            acc.keys.append(actor.keys[-1] if rng.random() < 0.8 else rng.choice(actor.keys))
        else:
            acc.keys.append(self._new_key(actor, rng, h, acc.start))
        if rng.random() < self.p.key_rotation_rate:
            acc.keys.append(self._new_key(actor, rng, h, acc.start + (acc.end - acc.start) // 2))
        self._add_listings(actor, acc, rng)

    def _new_key(self, actor: Actor, rng: random.Random, handle: str, day: int) -> int:
        uid = handle if rng.random() < 0.5 else \
            f"{handle} <{handle.lower()}@{rng.choice(_UID_DOMAINS)}>"
        key = make_key(rng.randbytes(32), uid, day_ts(max(day, 0), rng.randrange(86400)),
                       with_subkey=rng.random() < 0.8, headers=rng.choice(_KEY_HEADERS))
        key = PgpKey(key.fingerprint, key.key_id, key.user_id, key.created, b"", key.armored)
        self.keys.append(key)
        actor.keys.append(len(self.keys) - 1)
        return len(self.keys) - 1

    # -- listings ---------------------------------------------------------------------

    def _ref(self, market: Market, rng: random.Random) -> str:
        while True:
            if market.layout == "classic":
                market.next_ref += rng.randrange(1, 30)
                ref = str(market.next_ref)
            else:
                ref = "".join(rng.choice("0123456789abcdef") for _ in range(10))
            if ref not in self.refs[market.idx]:
                self.refs[market.idx].add(ref)
                return ref

    def _add_listings(self, actor: Actor, acc: Account, rng: random.Random) -> None:
        market = self.markets[acc.market]
        mean_extra = max(self.p.listings_per_account - 1.0, 0.0)
        n = 1 + min(24, int(rng.expovariate(1 / mean_extra)) if mean_extra > 0 else 0)
        by_key = {pl.key: pl for pl in catalog.LINES}
        for _ in range(n):
            line = by_key[rng.choice(actor.lines)]
            tiers_all = line.tiers
            ti = rng.randrange(len(tiers_all))
            dose = rng.choice(line.doses) if line.doses else None
            noise = math.exp(rng.gauss(0.0, self.p.price_noise))
            tiers = tuple((q, self._price(line, q, dose, actor, noise))
                          for q in tiers_all[max(0, ti - 1): ti + 3])
            units = tiers_all[ti]
            price = next(p for q, p in tiers if q == units)
            title = catalog.render_title(line, units, dose, rng,
                                         template=actor.title_pref if rng.random() < 0.7 else None)
            span = max(acc.end - acc.start, 0)
            start = acc.start + (rng.randrange(span // 2 + 1) if span else 0)
            lst = Listing(idx=len(self.listings), account=acc.idx, market=market.idx,
                          ref=self._ref(market, rng), line=line, units=units, dose=dose,
                          title=title, price_usd=price, tiers=tiers, start=start, end=acc.end,
                          fentanyl_risk=line.fentanyl_risk >= 0.5)
            self.listings.append(lst)
            acc.listings.append(lst.idx)

    def _price(self, line: catalog.ProductLine, q: float, dose: float | None, actor: Actor,
               noise: float) -> float:
        base: float = line.unit_usd * (q ** 0.88)
        if dose is not None and line.doses:
            base *= (dose / line.doses[0]) ** 0.6
        noisy = base * actor.price_level * noise
        return round(max(noisy, 1.0), 2)


def _market_feedback_rates(seed: int, p: SimParams, markets: list[Market],
                           accounts: list[Account]) -> dict[int, float]:
    """Per-market feedback rates (knob ``market_feedback_rate_min/max``): each market's rate
    is uniform in the range, each account's a log-normal variation of it (sigma
    ``vendor_feedback_sigma``). Own random streams: the default world is unchanged."""
    if p.market_feedback_rate_min is None or p.market_feedback_rate_max is None:
        return {}
    lo, hi = p.market_feedback_rate_min, p.market_feedback_rate_max
    rates = {m.idx: stream(seed, "market-feedback", m.idx).uniform(lo, hi) for m in markets}
    for acc in accounts:
        g = stream(seed, "vendor-feedback", acc.idx).gauss(0.0, p.vendor_feedback_sigma)
        acc.feedback_rate = min(1.0, max(0.02, rates[acc.market] * math.exp(g)))
    return rates


def _feedback_knobs(seed: int, p: SimParams, acct_of_order: np.ndarray, buyer: np.ndarray,
                    day: np.ndarray, left: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Multi-order reviews, removed and hidden feedback (knobs; own random stream)."""
    if not (p.multi_order_review_rate or p.removed_feedback_rate or p.hidden_feedback_rate):
        return left, None
    g = np.random.Generator(np.random.PCG64(derive_seed(seed, "feedback-knobs")))
    n = left.shape[0]
    u_multi, u_removed, u_hidden = g.random(n), g.random(n), g.random(n)
    left = left.copy()
    if p.multi_order_review_rate and n:
        order = np.lexsort((day, buyer, acct_of_order))
        same = np.zeros(n, bool)
        same[1:] = (acct_of_order[order][1:] == acct_of_order[order][:-1]) & \
            (buyer[order][1:] == buyer[order][:-1])
        repeat = np.zeros(n, bool)
        repeat[order] = same  # a repeat order of a buyer with this vendor
        left &= ~(repeat & (u_multi < p.multi_order_review_rate))
    left &= ~(u_removed < p.removed_feedback_rate)
    hidden = left & (u_hidden < p.hidden_feedback_rate)
    return left, hidden


def _orders(seed: int, p: SimParams, accounts: list[Account], listings: list[Listing],
            markets: list[Market], n_buyers: int) -> Orders:
    g = np.random.Generator(np.random.PCG64(derive_seed(seed, "orders")))
    n_l = len(listings)
    start = np.fromiter((lst.start for lst in listings), np.int64, n_l)
    end = np.fromiter((lst.end for lst in listings), np.int64, n_l)
    price = np.fromiter((lst.price_usd for lst in listings), np.float64, n_l)
    acct = np.fromiter((lst.account for lst in listings), np.int64, n_l)
    crawl = np.fromiter((markets[lst.market].last_day for lst in listings), np.int64, n_l)
    fb_rate = np.fromiter((a.feedback_rate for a in accounts), np.float64, len(accounts))
    days = np.maximum(end - start + 1, 1)
    pop = g.lognormal(0.0, 1.0, n_l) / math.exp(0.5)
    lam = p.orders_per_listing * pop * np.minimum(1.0, days / 240.0) ** 0.5
    counts = g.poisson(lam)
    total = int(counts.sum())
    lid = np.repeat(np.arange(n_l, dtype=np.int64), counts)
    day = start[lid] + np.floor(g.random(total) * days[lid]).astype(np.int64)
    buyer = np.floor(n_buyers * g.random(total) ** 1.6).astype(np.int64)
    usd = np.round(price[lid] * np.exp(g.normal(0.0, 0.02, total)), 2)
    fb_day = day + 2 + g.geometric(0.25, total)
    left = (g.random(total) < fb_rate[acct[lid]]) & (fb_day <= crawl[lid])
    rating = g.choice(np.array([5, 4, 3, 2, 1], np.int8), total,
                      p=[0.78, 0.1, 0.05, 0.03, 0.04]).astype(np.int8)
    left, hidden = _feedback_knobs(seed, p, acct[lid], buyer, day, left)
    rating[~left] = 0
    order = np.lexsort((day, lid))
    lid, day, buyer = lid[order], day[order], buyer[order]
    usd, rating, fb_day = usd[order], rating[order], fb_day[order]
    hidden = hidden[order] if hidden is not None else None
    starts = np.zeros(n_l + 1, np.int64)
    np.cumsum(counts, out=starts[1:])
    for i, lst in enumerate(listings):
        lst.true_orders = int(counts[i])
        accounts[lst.account].true_orders += int(counts[i])
    return Orders(lid.astype(np.int32), day.astype(np.int32), buyer.astype(np.int32), usd,
                  rating, fb_day.astype(np.int32), starts, hidden)


def build_world(seed: int, params: SimParams) -> World:
    """Generate the whole world for ``seed`` (deterministic)."""
    b = _Builder(seed, params)
    i = 0
    while len(b.accounts) < params.vendors:
        b.add_actor(i, params.vendors - len(b.accounts))
        i += 1
    n_buyers = max(50, int(params.vendors * params.buyers_per_vendor))
    rates = _market_feedback_rates(seed, params, b.markets, b.accounts)
    orders = _orders(seed, params, b.accounts, b.listings, b.markets, n_buyers)
    return World(seed, params, b.markets, b.actors, b.accounts, b.listings, b.keys, n_buyers,
                 orders, rates)
