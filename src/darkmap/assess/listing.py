"""One listing in, one assessment out: class, substance, flags, pack and prices in USD.

:func:`assess_listing` is the pure function; :func:`assess_many` runs it over a batch.
The workspace runner lives in :mod:`darkmap.assess.stage`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime

from darkmap.assess.classify import classify_words
from darkmap.assess.flags import assess_flags
from darkmap.assess.fx import FxTable, PriceBin, load_fx, parse_price, parse_price_bin
from darkmap.assess.lexicon import Lexicon, load_lexicon, normalise
from darkmap.assess.quantity import Quantity, parse_quantity

__all__ = ["GRAM_CEILING_USD", "METHOD", "PACK_FLOOR_USD", "UNIT_CEILING_USD",
           "UNIT_FLOOR_USD", "Assessment", "assess_listing", "price_floor_usd"]

METHOD = "darkmap.drugs-lexicon@1"
_PILL_WORD = re.compile(r"\b(?:pills?|tabs?|tablets?|xtc|teile|pillen)\b")
# "500X MYSTERBIRD 220mg": a multiplied count is how pills are sold, as a pill word is
_X_COUNT = re.compile(r"(?<![\d.,])\d{1,6}\s?x(?![a-z])|(?<![a-z])x\s?\d{1,6}(?![\d.,])")
_NO_PACK = Quantity(None, "unknown", None, 0.0, "not a drug: no pack parsed")


@dataclass(slots=True)
class Assessment:
    """Everything ``darkmap assess`` stores for one listing."""

    drug_class: str
    substance: str
    class_confidence: float
    counterfeit_pill: bool
    fentanyl_risk: bool
    evidence: dict[str, list[str]]  # {"class": [...], "counterfeit_pill": [...], ...}
    units: float | None
    unit_kind: str
    dose_mg: float | None
    pack_price_usd: float | None
    unit_price_usd: float | None
    price_per_gram_usd: float | None
    parse_confidence: float
    parse_note: str
    method: str = METHOD

    @property
    def flag_evidence(self) -> str:
        """The evidence as JSON (serialised only when stored or shown)."""
        return json.dumps(self.evidence, ensure_ascii=False)

    def as_dict(self) -> dict[str, object]:
        """Plain dict (for JSON or a DataFrame row), evidence as JSON text."""
        d = asdict(self)
        d["flag_evidence"] = json.dumps(d.pop("evidence"), ensure_ascii=False)
        return d


# "2.80 USD/gram", "131.25 USD/Ounce", "1150.00 USD/454gram": what the price is for
_PRICE_UNIT = re.compile(r"^\s*+[\d.,]{1,20}\s*+[A-Za-z]{3}\s*+/\s*+(\S.{0,39})$")
# a price per gram under this (USD) is no drug's price: the pack read was not what it buys
PER_GRAM_FLOOR_USD = 0.5


def _with_price_unit(q: Quantity, price_text: str | None, substance: str,
                     pack_usd: float | None) -> Quantity:
    """The pack a listing's price is for, given the unit its price names (Cryptonia's
    "131.25 USD/Ounce"). The title's pack is kept when it has one, except that a price
    per gram or ounce which, spread over the title's grams, would cost less than
    :data:`PER_GRAM_FLOOR_USD` a gram is that unit's price ("Light Dep Trim - 1 OZ" at
    "2.80 USD/gram" is $2.80 a gram, not $0.099). A title without a pack takes the
    unit's ("Sour Diesel, Ounce" at "115.00 USD/28g": 28 g). Units that are no quantity
    ("Each", "Order", "Piece") change nothing."""
    m = _PRICE_UNIT.match(price_text) if price_text and len(price_text) <= 80 else None
    if m is None:
        return q
    unit = m.group(1).strip()
    uq = parse_quantity(unit if unit[:1].isdigit() else f"1 {unit}", substance)
    if not uq.units or uq.unit_kind == "unknown":
        return q
    if not q.units or q.unit_kind == "unknown":
        return Quantity(uq.units, uq.unit_kind, q.dose_mg if q.dose_mg else uq.dose_mg,
                        uq.confidence, f"pack from the price's unit '{unit}'")
    if q.unit_kind == uq.unit_kind == "gram" and pack_usd is not None \
            and q.units > uq.units and pack_usd / q.units < PER_GRAM_FLOOR_USD:
        return Quantity(uq.units, "gram", q.dose_mg, uq.confidence,
                        f"priced per '{unit}': the title's {q.units:g} g at "
                        f"${pack_usd / q.units:.3f}/g is no price")
    return q


# The least a unit of a drug sells for on a market, in USD (wholesale cannabis trim is
# about $1/g, the cheapest generic pill about $0.30, morning-glory seeds $0.02): far below
# any real price, far above the $0.00-0.01 placeholders of flash-sale and range listings.
PACK_FLOOR_USD = 0.50
UNIT_FLOOR_USD = {"gram": 0.10, "pill": 0.05, "blotter": 0.05, "piece": 0.05, "patch": 0.05,
                  "spray": 0.05,
                  "seed": 0.01, "ml": 0.01}


# The most a pill or blotter sells for: an order of magnitude above the dearest real one
# (a genuine OxyContin 80 mg at $59); "1500.00 USD/Pill" for an Adderall is a placeholder.
UNIT_CEILING_USD = {"pill": 500.0, "blotter": 500.0}
# The most a gram of cannabis (flower or concentrate) sells for: 25 times the real median
# (about $10/g), 1.8 times the dearest real concentrate ($140/g for a 0.5 g cartridge). A
# price per gram above it means the grams read are not what the price buys ("Vape
# Cartridge ... 5000mcg" at $45 is no 0.005 g at $9,000/g): the pack's price is kept.
GRAM_CEILING_USD = {"cannabis": 250.0}
# a raffle's price is a ticket's, not the price of the prizes its title lists
_RAFFLE = re.compile(r"(?<![a-z])(?:raffle|lottery|tombola)(?![a-z])")


def _price_not_used(q: Quantity, pack_usd: float, title: str) -> str | None:
    """Why a drug pack's price is no price of it: under the floor, a raffle ticket, or a
    unit price above the ceiling; None when the price stands."""
    floor = price_floor_usd(q)
    if pack_usd < floor:
        # "$0.01" flash-sale and range listings: a placeholder, not what a pack costs
        return (f"price ${pack_usd:g} below the ${floor:g} floor for this pack (a "
                "placeholder, a raffle ticket or a price per smaller unit): not used")
    if _RAFFLE.search(title[:300].casefold()):
        return f"price ${pack_usd:g} is a raffle ticket's, not the pack's: not used"
    ceiling = UNIT_CEILING_USD.get(q.unit_kind)
    if ceiling is not None and q.units and pack_usd / q.units > ceiling:
        return (f"${pack_usd / q.units:,.2f} a {q.unit_kind} is above the ${ceiling:g} "
                "ceiling (a placeholder or custom listing): not used")
    return None


def _unit_prices(q: Quantity, pack_usd: float | None, drug_class: str,
                 notes: list[str]) -> tuple[float | None, float | None]:
    """(price per unit, price per gram) of a pack; a price per gram above the class's
    ceiling is not used, and ``notes`` says so."""
    if pack_usd is None or not q.units:
        return None, None
    if q.unit_kind != "gram":
        return round(pack_usd / q.units, 4), None
    per_gram = round(pack_usd / q.units, 4)
    top = GRAM_CEILING_USD.get(drug_class)
    if top is not None and per_gram > top:
        notes.append(f"${per_gram:,.2f} a gram is above the ${top:g} ceiling for {drug_class}"
                     " (the grams read are not what the price buys): price per gram not used")
        return None, None
    return None, per_gram


def price_floor_usd(q: Quantity) -> float:
    """The lowest believable price of a drug pack: $0.50, or the pack's units at the
    unit kind's floor when that is more ("5 - 100 LSD BLOTTERS" at $0.01 is no price)."""
    per_unit = UNIT_FLOOR_USD.get(q.unit_kind)
    if per_unit is None or not q.units:
        return PACK_FLOOR_USD
    return max(PACK_FLOOR_USD, round(q.units * per_unit, 4))


def _text(value: object) -> str:
    """A title as text, whatever an untyped caller passed (a number from a dataset's
    title column goes through ``str``, ``None`` is the empty title)."""
    if isinstance(value, str):
        return value
    return "" if value is None else str(value)


def _categories(path: Iterable[object] | None) -> list[str]:
    """The non-empty strings of a category path (untyped callers may pass ``None`` items)."""
    return [c for c in (path or []) if isinstance(c, str) and c]


def _bin_note(b: PriceBin, observed_at: date | datetime | None, fx: FxTable | None) -> str:
    """What a binned price says (Agora's "[1.00e-07,1.49e+00)"): its bounds, in USD when
    they convert; no point price is taken from it."""
    cur = b.currency or ""
    text = f"price bin {b.low:.3g} to {b.high:.3g} {cur}".rstrip()
    if cur:
        rate, _ = (fx or load_fx()).rate(cur, observed_at)
        if rate is not None:
            text += f" (about ${b.low * rate:,.0f} to ${b.high * rate:,.0f})"
    return text + ": a range, no point price"


def assess_listing(title: str | None, description: str | None = None,
                   category_path: list[str] | None = None, price: float | None = None,
                   currency: str | None = None, price_text: str | None = None,
                   observed_at: date | datetime | None = None,
                   lexicon: Lexicon | None = None, fx: FxTable | None = None,
                   page_rates: Mapping[str, float] | None = None) -> Assessment:
    """Classify, flag and normalise one listing. Never raises on odd text.

    ``page_rates`` are the exchange rates the listing's own page states (USD per unit,
    ``{"BTC": 10890.3}``): a price in such a currency is converted at the page's rate, not
    the fx table's, and ``parse_note`` says so ("BTC at the page's own rate (USD 10890.3)");
    a price converted at the table's rate has no such note."""
    lex = lexicon or load_lexicon()
    title = _text(title)
    description = description if isinstance(description, str) else None
    tn = normalise(title)
    cls = classify_words(tn.split(" ") if tn else [], tn, normalise(description),
                         _categories(category_path), lex, title)
    unnamed = cls.confidence <= 0.3 and (not cls.words or cls.words[0].startswith("("))
    if cls.substance != "non_drug" or unnamed:
        q = parse_quantity(title, None if unnamed else cls.substance)
        if unnamed and q.unit_kind == "pill" and q.units and q.dose_mg \
                and 60 <= q.dose_mg <= 350 \
                and (_PILL_WORD.search(tn) or _X_COUNT.search(title[:300].casefold())):
            # "Tomorrowland pills x50 (300mg)": a branded pill of an ecstasy-sized dose
            cls.drug_class, cls.substance, cls.confidence = "empathogen", "mdma", 0.3
            cls.words = [f"(unnamed pill brand at {q.dose_mg:g} mg: ecstasy pattern)"]
        elif cls.substance == "non_drug":
            q = _NO_PACK
    else:
        q = _NO_PACK
    notes: list[str] = []
    pack_usd = None
    binned = parse_price_bin(price_text, currency) if price_text else None
    if binned is not None:
        notes.append(_bin_note(binned, observed_at, fx) if price is None
                     else "price: the midpoint of a price bin")
    if price is None and price_text and binned is None:
        p = parse_price(price_text, currency)
        if p is not None:
            price, currency = p.amount, p.currency
            if p.tiered:
                notes.append("tiered price: first taken")
    if price is not None and currency:
        page_rate = page_rates.get(currency.upper()) if page_rates else None
        rate: float | None
        if page_rate is not None:
            rate = page_rate
            note = f"{currency.upper()} at the page's own rate (USD {page_rate:g})"
        else:
            rate, note = (fx or load_fx()).rate(currency, observed_at)
        if rate is not None and price >= 0:
            pack_usd = round(price * rate, 4)
        if note:
            notes.append(note)
    elif price is None and binned is None:
        notes.append("no price")
    if q is not _NO_PACK:
        q = _with_price_unit(q, price_text, cls.substance, pack_usd)
    flags = assess_flags(title, description, cls.substance, q.unit_kind, q.dose_mg,
                         cls.drug_class)
    notes = ([q.note] if q.note else []) + notes
    if pack_usd is not None and cls.substance != "non_drug" \
            and (why := _price_not_used(q, pack_usd, title)):
        notes.append(why)
        pack_usd = None
    unit_usd, per_gram = _unit_prices(q, pack_usd, cls.drug_class, notes)
    evidence = {"class": cls.words, **flags.evidence} if flags.evidence else {"class": cls.words}
    return Assessment(
        drug_class=cls.drug_class, substance=cls.substance,
        class_confidence=cls.confidence, counterfeit_pill=flags.counterfeit_pill,
        fentanyl_risk=flags.fentanyl_risk,
        evidence=evidence,
        units=q.units, unit_kind=q.unit_kind, dose_mg=q.dose_mg,
        pack_price_usd=pack_usd, unit_price_usd=unit_usd, price_per_gram_usd=per_gram,
        parse_confidence=q.confidence, parse_note="; ".join(n for n in notes if n))
