"""A small, independent generator of linked-vendor worlds for the linker's own tests.

darkmap's main simulator (``darkmap.simulate``) makes whole markets; this module makes
only what the linker reads (accounts, listings, feedback, identifiers) through the real
store writer, with its *own* vocabulary, handle habits and phrasing. Evaluating the
linker on worlds from two unrelated generators is what keeps it from fitting one
generator's quirks. The truth it returns has the ``truth.json`` shape (``accounts``
with ``actor`` and ``market``).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from darkmap.model.records import (
    AccountRecord,
    FeedbackRecord,
    IdentifierRecord,
    ListingRecord,
    MarketRecord,
)
from darkmap.store.workspace import Workspace
from darkmap.store.writer import Provenance, RecordWriter, account_id

__all__ = ["WorldParams", "make_world"]


@dataclass
class WorldParams:
    """Realism knobs of a synthetic world."""

    actors: int = 200
    markets: int = 5
    style_noise: float = 0.3          # share of a vendor's phrases replaced per account
    handle_change_rate: float = 0.3   # chance an account's handle is not the base handle
    key_reuse_rate: float = 0.6       # chance an account publishes the actor's PGP key
    contact_rate: float = 0.3         # chance an account shows a contact handle
    multi_account_rate: float = 0.6   # chance an actor has more than one account
    copycat_rate: float = 0.1         # chance a vendor copies another vendor's text
    seed: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


_SYL = ["ka", "lo", "mi", "ra", "zo", "te", "vi", "nu", "sa", "do", "ge", "pi", "xu", "ba",
        "re", "fo", "ly", "qu", "an", "el", "or", "ix", "um", "ed"]
_WORDS = ["green", "frost", "king", "doc", "pharma", "lab", "cartel", "ghost", "blue",
          "tiger", "wolf", "candy", "moon", "dutch", "euro", "star", "dragon", "white",
          "shadow", "silk", "north", "coast", "chemist", "garden", "magic", "gold", "rx",
          "express", "direct", "quality", "supreme", "alpha", "toxic", "happy", "cloud"]
_DRUGS: dict[str, tuple[list[str], str, list[float], float]] = {
    "cannabis": (["weed", "kush", "haze", "bud", "og"], "g", [1, 3.5, 7, 14, 28], 8.0),
    "cocaine": (["cocaine", "coke", "flake"], "g", [0.5, 1, 2, 5, 10], 80.0),
    "mdma": (["mdma", "molly", "xtc pills"], "g", [1, 5, 10, 25], 25.0),
    "heroin": (["heroin", "h", "dope"], "g", [0.5, 1, 5, 10], 90.0),
    "oxycodone": (["oxycodone", "oxy", "m30"], "pill", [10, 20, 50, 100], 20.0),
    "alprazolam": (["xanax", "alprazolam", "bars"], "pill", [10, 50, 100, 500], 2.0),
    "lsd": (["lsd", "acid tabs", "blotter"], "tab", [1, 5, 10, 50], 8.0),
    "meth": (["meth", "crystal", "ice"], "g", [1, 3.5, 7, 28], 40.0),
    "ketamine": (["ketamine", "ket", "k"], "g", [1, 5, 10, 50], 30.0),
    "fentanyl": (["fentanyl", "fent powder", "china white"], "g", [0.1, 0.5, 1], 300.0),
}
_DOSES: dict[str, list[int]] = {"oxycodone": [10, 15, 30, 80], "alprazolam": [1, 2],
                                "mdma": [120, 200, 250], "lsd": [100, 150, 200, 250]}
_ADJ = ["premium", "top", "pure", "uncut", "lab tested", "high grade", "fire", "AAA+",
        "best", "fresh", "strong", "original", "pharma grade", "quality"]
_COUNTRIES = ["US", "NL", "DE", "UK", "CA", "AU", "ES", "FR", "CN", "IN", "BE", "PL"]
_PHRASES = [
    "we ship within {n} hours of payment", "all orders are vacuum sealed twice",
    "no refunds for wrong addresses", "reship once if lost", "stealth is our priority",
    "please finalize after you receive", "pgp encrypted addresses only",
    "we do not ship on weekends", "bulk discounts available on request",
    "message me before placing large orders", "tracking available for a fee",
    "open 7 days a week", "our product is tested in a lab", "FE only for trusted buyers",
    "leave honest feedback please", "no signature required", "quality over quantity",
    "been in the game since {y}", "new customers welcome", "we answer messages daily",
    "do not message about prices", "escrow only", "we never reship to the same address",
    "family business, small batches", "your satisfaction is guaranteed",
    "orders placed after {n}pm ship next day", "read our terms before ordering",
    "custom orders possible", "we use discreet packaging", "best prices on the market",
]
_QUIRKS: list[Callable[[str], str]] = [
    lambda s: s.upper(), lambda s: s + "!!", lambda s: s + " :)",
    lambda s: s.replace(" you", " u"), lambda s: s + "...", lambda s: s.capitalize() + ".",
    lambda s: "~ " + s + " ~", lambda s: s.replace("and", "&"), lambda s: s + " <3",
    lambda s: s.lower(), lambda s: "** " + s + " **", lambda s: s.replace("the", "da")]
_FB = ["great {p}, fast shipping", "stealth was perfect", "arrived in {n} days",
       "good vendor", "{p} was top quality", "will order again", "a bit slow but legit",
       "10/10 would recommend", "smells amazing", "weight was spot on", "took {n} days",
       "excellent comms", "best {p} on here", "ok product", "never arrived, vendor reshipped",
       "thanks", "ffs finally", "great stealth and fast", "legit", "solid"]


def _pick_handle(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.45:
        return rng.choice(_WORDS) + rng.choice(_WORDS) + "".join(
            rng.choice(_SYL) for _ in range(rng.randint(0, 2)))
    if r < 0.75:
        return "".join(rng.choice(_SYL) for _ in range(rng.randint(2, 4)))
    return rng.choice(_WORDS) + "".join(rng.choice(_SYL) for _ in range(rng.randint(1, 2)))


def _variant(base: str, rng: random.Random) -> str:
    """A handle variation a vendor might use on a new market."""
    kind = rng.random()
    if kind < 0.25:
        return base + rng.choice(["_official", "-shop", "store", "_back", "2", "_v2", "uk",
                                  "_eu", "420", str(rng.randint(1, 99))])
    if kind < 0.45:
        return rng.choice(["the", "real", "mr", "xX", "official_"]) + base + (
            "Xx" if rng.random() < 0.3 else "")
    if kind < 0.65:
        table = str.maketrans({"o": "0", "e": "3", "a": "4", "i": "1", "s": "5"})
        return base.translate(table)
    if kind < 0.8:
        return base.capitalize().replace("_", "") + rng.choice(["", "Pharma", "Lab"])
    return _pick_handle(rng)  # a new name altogether


def _fp(rng: random.Random) -> str:
    return "".join(rng.choice("0123456789ABCDEF") for _ in range(40))


def _btc(rng: random.Random) -> str:
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    return "1" + "".join(rng.choice(alphabet) for _ in range(33))


def make_world(ws: Workspace, params: WorldParams) -> dict[str, Any]:
    """Write a synthetic world into ``ws``; return its truth (``truth.json`` shape)."""
    rng = random.Random(params.seed)
    t0 = datetime(2014, 1, 1)
    markets = []
    for m in range(params.markets):
        opened = t0 + timedelta(days=rng.randint(0, 1500))
        closed = opened + timedelta(days=rng.randint(300, 1200))
        markets.append((f"mk{m}", opened, closed))
    sha = hashlib.sha256(f"synth-{params.seed}".encode()).hexdigest()
    prov = Provenance(sha, f"synthworld:{params.seed}", "synthworld@1", t0)
    w = RecordWriter(ws.con)
    for mid, opened, _ in markets:
        w.add(MarketRecord(mid, f"Market {mid}", observed_at=opened), prov)
    truth: dict[str, Any] = {"seed": params.seed, "params": vars(params), "actors": {},
                             "accounts": {}, "markets": {}}
    for mid, opened, closed in markets:
        truth["markets"][mid] = {"opened": opened.date().isoformat(),
                                 "closed": closed.date().isoformat()}
    texts_pool: list[list[str]] = []
    taken: set[str] = set()   # account ids: a market gives a handle to one account
    for a in range(params.actors):
        _make_actor(rng, params, a, markets, w, prov, truth, texts_pool, taken)
    w.flush()
    return truth


def _make_actor(rng: random.Random, params: WorldParams, a: int,
                markets: list[tuple[str, datetime, datetime]], w: RecordWriter,
                prov: Provenance, truth: dict[str, Any], pool: list[list[str]],
                taken: set[str]) -> None:
    actor = f"actor{a}"
    base = _pick_handle(rng)
    country = rng.choice(_COUNTRIES)
    drugs = rng.sample(sorted(_DRUGS), rng.randint(1, 3))
    price_mult = rng.lognormvariate(0, 0.25)
    phrases = rng.sample(_PHRASES, 7)
    phrases = [p.format(n=rng.randint(1, 72), y=rng.randint(2011, 2016)) for p in phrases]
    quirks = rng.sample(_QUIRKS, 2)
    keys = [_fp(rng)] + ([_fp(rng)] if rng.random() < 0.2 else [])
    btc = _btc(rng)
    contact = (rng.choice(["wickr", "telegram", "jabber"]), base + str(rng.randint(1, 999)))
    ships_to = (["Worldwide"] if rng.random() < 0.4
                else sorted(set(rng.sample(_COUNTRIES, 3)) | {country}))
    if rng.random() < params.copycat_rate and pool:
        phrases = phrases[:3] + rng.choice(pool)[:4]
    pool.append(phrases)
    n_acc = 1 if rng.random() > params.multi_account_rate else rng.randint(2, 4)
    chosen = rng.sample(markets, min(n_acc, len(markets)))
    if rng.random() < 0.1 and n_acc > 1:
        chosen = chosen[:-1] + [chosen[0]]  # a second account on the same market
    truth["actors"][actor] = {"country": country, "accounts": [], "pgp_fingerprints": keys}
    for mid, opened, closed in chosen:
        handle = base if rng.random() >= params.handle_change_rate else _variant(base, rng)
        while account_id(mid, handle) in taken:   # taken on this market: add digits, as
            handle = handle + str(rng.randint(2, 9))   # vendors do when a name is taken
        aid = account_id(mid, handle)
        taken.add(aid)
        start = opened + timedelta(days=rng.randint(0, max(1, (closed - opened).days // 2)))
        end = min(closed, start + timedelta(days=rng.randint(60, 700)))
        origin = country if rng.random() < 0.85 else rng.choice(_COUNTRIES)
        dest = list(ships_to)
        if rng.random() < 0.4:
            dest = sorted(set(dest[:-1]) | {rng.choice(_COUNTRIES)})
        own = [p if rng.random() >= params.style_noise else rng.choice(_PHRASES).format(
            n=rng.randint(1, 72), y=rng.randint(2011, 2016)) for p in phrases]
        styled = [rng.choice(quirks)(p) for p in own]
        profile = " ".join(rng.sample(styled, min(4, len(styled))))
        terms = ". ".join(rng.sample(styled, min(3, len(styled))))
        key = keys[0] if rng.random() < 0.8 or len(keys) == 1 else keys[1]
        if rng.random() < params.key_reuse_rate:
            w.add(IdentifierRecord("pgp_fingerprint", key, mid, handle, field="pgp"), prov)
        else:
            fresh = _fp(rng)
            w.add(IdentifierRecord("pgp_fingerprint", fresh, mid, handle, field="pgp"), prov)
        if rng.random() < params.contact_rate:
            w.add(IdentifierRecord(contact[0], contact[1].lower(), mid, handle,
                                   field="profile"), prov)
            profile += f" {contact[0]}: {contact[1]}"
        if rng.random() < 0.15:
            w.add(IdentifierRecord("btc_address", btc, mid, handle, field="profile"), prov)
        w.add(AccountRecord(mid, handle, "vendor", joined_at=start, last_seen_at=end,
                            profile_text=profile, terms_text=terms, ships_from=origin,
                            observed_at=end, locator=f"acct {aid}"), prov)
        truth["accounts"][aid] = {"actor": actor, "market": mid, "handle": handle,
                                  "role": "vendor", "pgp_fingerprints": [key]}
        truth["actors"][actor]["accounts"].append(aid)
        for li in range(rng.randint(2, 10)):
            drug = rng.choice(drugs)
            names, unit, qtys, unit_price = _DRUGS[drug]
            qty = rng.choice(qtys)
            dose = rng.choice(_DOSES[drug]) if drug in _DOSES else None
            title = f"{qty}{unit} {rng.choice(_ADJ)} {rng.choice(names)}" + (
                f" {dose}mg" if dose else "")
            if rng.random() < 0.5:
                title = rng.choice(quirks)(title)
            price = round(unit_price * qty ** 0.9 * price_mult * rng.lognormvariate(0, 0.08), 2)
            desc = " ".join(rng.sample(styled, min(3, len(styled))))
            obs = start + timedelta(days=rng.randint(0, max(1, (end - start).days)))
            ref = f"{aid.split(':', 1)[1]}-{li}"
            w.add(ListingRecord(mid, ref, handle, title, desc, price, "USD",
                                ships_from=origin, ships_to=dest,
                                category_path=["Drugs", drug], observed_at=obs,
                                locator=f"lst {ref}"), prov)
            for fi in range(rng.randint(0, 4)):
                txt = rng.choice(_FB).format(p=rng.choice(names), n=rng.randint(2, 9))
                left = start + timedelta(days=rng.randint(0, max(1, (end - start).days)))
                w.add(FeedbackRecord(mid, handle, txt, listing_ref=ref, left_at=left,
                                     buyer_masked=f"b***{rng.randint(0, 99)}",
                                     locator=f"fb {ref} {fi}"), prov)
