"""What a market shows about a listing, a vendor or a feedback, layout-independent.

Views turn world objects into the values a page, a CSV row or a database row displays
(prices in the market's currency, ships-from names, category paths, descriptions,
feedback rows). Text is regenerated from per-object random streams, so the page, the
CSV and the seized dump of one listing always agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from darkmap.simulate import style
from darkmap.simulate.rand import stream
from darkmap.simulate.world import (
    COUNTRY_NAMES,
    Account,
    Listing,
    Market,
    World,
    day_date,
    eur_per_usd,
    usd_per_btc,
)

__all__ = [
    "FeedbackView",
    "ListingView",
    "VendorView",
    "category_path",
    "feedback_total",
    "feedback_views",
    "listing_view",
    "money",
    "price_in_currency",
    "total_shown",
    "vendor_view",
]

_CLASS_NAMES = {
    "classic": {"opioid": "Opioids", "stimulant": "Stimulants", "empathogen": "Ecstasy",
                "cannabis": "Cannabis", "psychedelic": "Psychedelics",
                "dissociative": "Dissociatives", "sedative": "Benzos",
                "other_medicine": "Prescription", "non_drug": "Other"},
    "modern": {"opioid": "Opiates", "stimulant": "Stimulants", "empathogen": "MDMA & Ecstasy",
               "cannabis": "Cannabis & Hash", "psychedelic": "Psychedelics",
               "dissociative": "Dissociatives", "sedative": "Sedatives",
               "other_medicine": "Medicine", "non_drug": "Miscellaneous"},
}
_UNIT_LABEL = {"pill": "pills", "gram": "g", "tab": "tabs", "blotter": "blotters", "ml": "ml",
               "seed": "seeds", "strip": "strips", "item": "x"}
_REGIONS = {"EU": "European Union", "Worldwide": "Worldwide"}
_RECENT = 3  # feedback rows a listing page repeats from the vendor's feedback


def price_in_currency(market: Market, usd: float, day: int) -> tuple[float, str]:
    """A USD amount converted to the market's display currency on ``day``."""
    if market.currency == "EUR":
        return round(usd * eur_per_usd(day), 2), "EUR"
    if market.currency == "BTC":
        return round(usd / usd_per_btc(day), 6), "BTC"
    return round(usd, 2), "USD"


def money(market: Market, usd: float, day: int) -> str:
    """A USD amount as the market displays it on ``day``."""
    if market.currency == "EUR":
        return f"€{usd * eur_per_usd(day):,.2f}" if market.layout == "modern" else \
            f"EUR {usd * eur_per_usd(day):,.2f}"
    if market.currency == "BTC":
        return f"{usd / usd_per_btc(day):.6f} BTC"
    return f"USD {usd:,.2f}" if market.layout == "classic" else f"${usd:,.2f}"


def category_path(market: Market, lst: Listing) -> list[str]:
    """The category breadcrumb of a listing in this market's layout."""
    top = _CLASS_NAMES[market.layout][lst.line.drug_class]
    path = [top, lst.line.subcategory] if top != lst.line.subcategory else [top]
    return (["Drugs"] + path) if market.layout == "classic" and \
        lst.line.drug_class != "non_drug" else path


def _qty(q: float) -> str:
    return str(int(q)) if float(q).is_integer() else f"{q:g}"


@dataclass(frozen=True, slots=True)
class ListingView:
    """A listing as displayed."""

    ref: str
    title: str
    handle: str
    vendor_uid: int
    price: str
    quantity: str
    ships_from: str
    ships_to: list[str]
    category: list[str]
    description: str
    sales: int
    feedback: int
    created: date
    recent: tuple[FeedbackView, ...] = ()


@dataclass(frozen=True, slots=True)
class VendorView:
    """A vendor profile as displayed."""

    handle: str
    uid: int
    joined: date
    last_seen: date
    level: int
    sales: int
    feedback: int | None  # None: the profile shows no feedback total
    rating: float | None
    ships_from: str
    profile: str
    terms: str
    pgp: list[str]
    btc_address: str | None


@dataclass(frozen=True, slots=True)
class FeedbackView:
    """One feedback row."""

    order: int
    buyer: str
    rating: int
    text: str
    day: date
    listing_ref: str
    listing_title: str
    amount: str


def listing_view(world: World, lst: Listing) -> ListingView:
    """How ``lst`` shows on its market at the crawl."""
    m = world.markets[lst.market]
    acc = world.accounts[lst.account]
    actor = world.actors[acc.actor]
    crawl = m.last_day
    rng = stream(world.seed, "desc", lst.idx)
    unit = _UNIT_LABEL[lst.line.unit_kind]
    tiers = [f"{_qty(q)} {unit} - {money(m, p, crawl)}" for q, p in lst.tiers]
    what = lst.line.subcategory.lower() if lst.line.drug_class != "non_drug" else "this item"
    desc = style.describe_listing(acc.style, acc.handle, what, tiers, rng)
    o = world.orders
    s, e = int(o.starts[lst.idx]), int(o.starts[lst.idx + 1])
    fb = int((o.rating[s:e] > 0).sum())
    rated = sorted((oi for oi in range(s, e) if o.shown(oi)),
                   key=lambda oi: (int(o.fb_day[oi]), oi), reverse=True)[:_RECENT]
    return ListingView(
        ref=lst.ref, title=lst.title, handle=acc.handle, vendor_uid=acc.uid,
        price=money(m, lst.price_usd, crawl), quantity=f"{_qty(lst.units)} {unit}",
        ships_from=COUNTRY_NAMES[actor.country],
        ships_to=[_REGIONS.get(t, COUNTRY_NAMES.get(t, t)) for t in actor.ships_to],
        category=category_path(m, lst), description=desc, sales=lst.true_orders, feedback=fb,
        created=day_date(lst.start),
        recent=tuple(_feedback_row(world, m, lst, oi) for oi in rated))


def _feedback_row(world: World, m: Market, lst: Listing, oi: int) -> FeedbackView:
    o = world.orders
    r = int(o.rating[oi])
    return FeedbackView(
        order=oi, buyer=style.mask_handle(world.buyer_handle(int(o.buyer[oi]))),
        rating=r, text=style.feedback_text(r, stream(world.seed, "fb", oi)),
        day=day_date(int(o.fb_day[oi])), listing_ref=lst.ref, listing_title=lst.title,
        amount=money(m, float(o.usd[oi]), int(o.day[oi])))


def feedback_views(world: World, acc: Account) -> list[FeedbackView]:
    """All feedback left for ``acc``, newest first."""
    o = world.orders
    m = world.markets[acc.market]
    rows: list[FeedbackView] = []
    for li in acc.listings:
        lst = world.listings[li]
        for oi in range(int(o.starts[li]), int(o.starts[li + 1])):
            if not o.shown(oi):
                continue
            rows.append(_feedback_row(world, m, lst, oi))
    rows.sort(key=lambda f: (f.day, f.order), reverse=True)
    return rows


def feedback_total(world: World, acc: Account) -> int:
    """Feedback left for ``acc`` (hidden rows included): the total a profile shows."""
    o = world.orders
    return sum(int((o.rating[int(o.starts[li]):int(o.starts[li + 1])] > 0).sum())
               for li in acc.listings)


def total_shown(world: World, acc: Account) -> bool:
    """Whether the profile of ``acc`` shows its feedback total (knob
    ``feedback_totals_shown``; an own random stream, so other draws are unchanged)."""
    p = world.params.feedback_totals_shown
    return p >= 1.0 or stream(world.seed, "fb-total-shown", acc.idx).random() < p


def vendor_view(world: World, acc: Account, btc_address: str | None,
                feedback: list[FeedbackView]) -> VendorView:
    """How the profile of ``acc`` shows at the crawl."""
    actor = world.actors[acc.actor]
    rng = stream(world.seed, "profile", acc.idx)
    specialties = sorted({world.listings[i].line.subcategory for i in acc.listings})
    ratings = [f.rating for f in feedback]
    sales = acc.true_orders
    level = 1 + (sales >= 10) + (sales >= 50) + (sales >= 200) + (sales >= 1000)
    profile = style.profile_text(acc.style, acc.handle, specialties,
                                 COUNTRY_NAMES[actor.country], rng)
    if btc_address:
        profile += f"\nDirect deals (trusted buyers only): BTC {btc_address}"
    return VendorView(
        handle=acc.handle, uid=acc.uid, joined=day_date(acc.start), last_seen=day_date(acc.end),
        level=level, sales=sales,
        feedback=(feedback_total(world, acc) if world.orders.hidden is not None
                  else len(feedback)) if total_shown(world, acc) else None,
        rating=round(sum(ratings) / len(ratings), 2) if ratings else None,
        ships_from=COUNTRY_NAMES[actor.country],
        profile=profile,
        terms=style.terms_text(acc.style, rng),
        pgp=[world.keys[k].armored for k in acc.keys], btc_address=btc_address)
