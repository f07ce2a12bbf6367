"""Handles and writing habits of simulated actors, and the text they write.

An actor has a :class:`Style` (phrasing templates, favourite words, habitual typos, emoji,
signature, capitalisation, shipping boilerplate, contacts). Each of its accounts gets a
noisy copy (:func:`perturb`): with probability ``noise`` a trait is redrawn, so two
accounts of one actor look alike without being identical. All text is produced from a
``random.Random`` the caller derives from the world seed.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, replace

__all__ = [
    "Style",
    "buyer_handle",
    "describe_listing",
    "feedback_text",
    "mask_handle",
    "new_handle",
    "perturb",
    "profile_text",
    "random_style",
    "terms_text",
    "variant_handle",
]

_ADJ = ("dark", "gold", "silent", "royal", "dutch", "euro", "white", "blue", "green", "purple",
        "frosty", "happy", "crazy", "lucky", "stealth", "prime", "top", "real", "old", "big",
        "north", "cali", "urban", "magic", "mister", "doctor", "captain", "pure", "holy",
        "crystal", "sugar", "candy", "rapid", "night", "ghost", "shadow", "secret", "wild")
_NOUN = ("pharma", "supply", "labs", "kings", "dragon", "fox", "rabbit", "panda", "wolf",
         "garden", "connect", "plug", "express", "store", "shop", "house", "factory", "cartel",
         "family", "monkey", "tiger", "eagle", "snow", "leaf", "chemist", "doc", "candyman",
         "bear", "owl", "shark", "vault", "depot", "market", "kitchen", "bros", "crew", "gang")
_FIRST = ("alex", "ben", "chris", "dan", "eva", "frank", "gina", "hank", "ivan", "jake", "kim",
          "leo", "max", "nina", "oscar", "paul", "rick", "sam", "tom", "vic", "will", "zoe",
          "marco", "lucas", "julia", "tyler", "dave", "mike", "sara", "nick")
_GREETINGS = ("Welcome to {shop}!", "Hey guys,", "Hello and welcome.", "Yo!", "Greetings friends.",
              "Hi all", "WELCOME!!", "")
_TEMPLATES = (
    "{what} {fav}. {ship}",
    "We offer {what}, {fav} and always {fav2}.",
    "Selling {what}. Quality is {fav}, no complaints so far.",
    "{what} - {fav} - {fav2}",
    "Here you get {what}. Everything is {fav}.",
    "Straight from the source: {what}. {fav}!",
    "{what}. Been doing this for years, {fav2}.",
    "Top {what}, {fav}, pack is {fav2}.",
    "Offering {what} at the best prices. {fav}.",
    "You are buying {what}. Product is {fav} and {fav2}.",
    "{what} for serious buyers only. {fav}.",
    "Best {what} on the market, {fav}.",
)
_FAVS = ("top notch", "stealth", "fire", "legit", "premium", "discreet", "high quality",
         "best in the game", "no bs", "A+", "pure", "lab tested", "fast shipping",
         "vacuum sealed", "reship policy", "super strong", "consistent", "never cut")
_TYPOS = {"receive": "recieve", "shipping": "shiping", "definitely": "definately",
          "separate": "seperate", "until": "untill", "address": "adress",
          "guaranteed": "guarenteed", "which": "wich", "a lot": "alot", "your": "ur",
          "quality": "qaulity", "business": "buisness", "tomorrow": "tommorow",
          "package": "pakage", "order": "oder", "please": "pls"}
_EMOJI = ("🔥", "💊", "❄️", "🌿", "🚀", "✅", "💯", "📦", "⭐", "👌", "🍄", "💎", "🇺🇸", "🇩🇪", "🇳🇱")
_SIGNATURES = ("- {handle} team", "Stay safe, {handle}", "Peace ✌", "~{initials}",
               "Much love - {handle}", "Regards, {handle}", "-- {initials} --", "")
_CARRIERS = ("USPS Priority", "USPS First Class", "Royal Mail 1st class", "DHL", "PostNL",
             "Deutsche Post", "Canada Post", "Australia Post", "La Poste", "Correos")
_SHIP_TEMPLATES = (
    "Orders placed before {h}:00 ship same day via {carrier}. Stealth: vacuum sealed x{k}.",
    "We ship Monday to Friday with {carrier}. {k}x MBB, smell proof.",
    "Shipping: {carrier}, {d} business days. Tracking on request for orders over ${t}.",
    "All orders ship within 24h ({carrier}). Reship once on first non-arrival, no exceptions.",
    "{carrier} only. Please encrypt your address with our PGP. No FE unless trusted.",
)
_CONTACT_KINDS = ("wickr", "telegram", "session", "jabber")


@dataclass(frozen=True, slots=True)
class Style:
    """Writing habits: stable per actor, perturbed per account."""

    greeting: str
    templates: tuple[int, ...]
    favs: tuple[str, ...]
    typos: tuple[str, ...]  # keys of the habitual misspellings
    typo_rate: float
    emoji: tuple[str, ...]
    emoji_rate: float
    signature: str
    case: str  # normal, lower, title, shout
    exclaim: str  # "!", "!!!", "."
    ship: int
    carrier: str
    ship_hour: int
    contacts: tuple[tuple[str, str], ...]


def _contact(kind: str, base: str, rng: random.Random) -> str:
    # A contact names one person: two actors who picked the same handle must not share
    # a JID or a Telegram name, so every contact carries a number of its own.
    tag = str(rng.randrange(100, 1000))
    if kind == "telegram":
        return "@" + base + rng.choice(("", "_shop", "official", "_")) + tag
    if kind == "jabber":
        server = rng.choice(("jabber.calyxinstitute.org", "xmpp.jp", "exploit.im"))
        return f"{base}{tag}@{server}"
    if kind == "session":
        return "05" + "".join(rng.choice("0123456789abcdef") for _ in range(64))
    return base + rng.choice(("", "_w", "x")) + tag


def random_style(rng: random.Random, base_handle: str, contact_rate: float) -> Style:
    """A fresh style for an actor whose first handle is ``base_handle``."""
    contacts: tuple[tuple[str, str], ...] = ()
    if rng.random() < contact_rate:
        kinds = rng.sample(_CONTACT_KINDS, rng.choice((1, 1, 2)))
        contacts = tuple((k, _contact(k, base_handle.lower().strip("_-")[:14] or "vendor", rng))
                         for k in sorted(kinds))
    return Style(
        greeting=rng.choice(_GREETINGS),
        templates=tuple(rng.sample(range(len(_TEMPLATES)), 3)),
        favs=tuple(rng.sample(_FAVS, 3)),
        typos=tuple(sorted(rng.sample(sorted(_TYPOS), rng.choice((0, 1, 2, 3, 4))))),
        typo_rate=rng.choice((0.0, 0.01, 0.02, 0.04)),
        emoji=tuple(rng.sample(_EMOJI, rng.choice((0, 0, 1, 2, 3)))),
        emoji_rate=rng.choice((0.2, 0.5, 0.9)),
        signature=rng.choice(_SIGNATURES),
        case=rng.choices(("normal", "lower", "title", "shout"), (6, 2, 1.5, 1))[0],
        exclaim=rng.choice(("!", "!!!", ".", "!!")),
        ship=rng.randrange(len(_SHIP_TEMPLATES)),
        carrier=rng.choice(_CARRIERS),
        ship_hour=rng.choice((10, 11, 12, 14, 15, 16)),
        contacts=contacts,
    )


def perturb(style: Style, rng: random.Random, noise: float, handle: str,
            contact_rate: float) -> Style:
    """A noisy copy of ``style`` for a new account: each trait redrawn with prob ``noise``."""
    fresh = random_style(rng, handle, contact_rate)
    changes = {}
    for name in ("greeting", "templates", "favs", "typos", "typo_rate", "emoji", "signature",
                 "case", "exclaim", "ship", "carrier", "ship_hour"):
        if rng.random() < noise:
            changes[name] = getattr(fresh, name)
    if rng.random() < noise:  # contacts: dropped or replaced, not only kept
        changes["contacts"] = fresh.contacts if rng.random() < 0.5 else ()
    return replace(style, **changes)


def new_handle(rng: random.Random) -> str:
    """A fresh vendor handle."""
    pattern = rng.randrange(7)
    a, n = rng.choice(_ADJ), rng.choice(_NOUN)
    if pattern == 0:
        return a + n
    if pattern == 1:
        return f"{a.capitalize()}{n.capitalize()}"
    if pattern == 2:
        return f"{a}_{n}{rng.randrange(10, 100)}"
    if pattern == 3:
        return f"{rng.choice(_FIRST)}{n}"
    if pattern == 4:
        return f"{a.upper()}{n.upper()}"
    if pattern == 5:
        return f"The{a.capitalize()}{n.capitalize()}"
    return f"{n}{a}{rng.randrange(1, 10)}"


def variant_handle(handle: str, rng: random.Random) -> str:
    """A recognisable variant of ``handle`` (for actors who keep their brand loosely)."""
    k = rng.randrange(6)
    if k == 0:
        return handle + rng.choice(("_official", "Official", "2", "_v2", "-new", "_back"))
    if k == 1:
        return "The" + handle[:1].upper() + handle[1:]
    if k == 2:
        return handle.replace("o", "0").replace("e", "3") if any(c in handle for c in "oe") \
            else handle + "_"
    if k == 3:
        return handle + rng.choice(("US", "UK", "EU", "NL", "DE"))
    if k == 4:
        return handle.lower() if handle != handle.lower() else handle.capitalize()
    return "real" + handle


def buyer_handle(rng: random.Random) -> str:
    """A buyer account name."""
    return rng.choice(_FIRST) + rng.choice(("", "_", "x")) + (
        str(rng.randrange(1, 9999)) if rng.random() < 0.7 else rng.choice(_NOUN))


def mask_handle(handle: str) -> str:
    """How markets show buyers: first and last character, ``***`` between."""
    return f"{handle[0]}***{handle[-1]}" if len(handle) > 1 else f"{handle}***"


def _case(text: str, style: Style, rng: random.Random) -> str:
    if style.case == "lower":
        return text.lower()
    if style.case == "title":
        return string.capwords(text)
    if style.case == "shout":
        return " ".join(w.upper() if rng.random() < 0.3 else w for w in text.split(" "))
    return text


def _typos(text: str, style: Style, rng: random.Random) -> str:
    for key in style.typos:
        text = text.replace(key, _TYPOS[key])
    if style.typo_rate:
        chars = list(text)
        for i in range(1, len(chars) - 1):
            if chars[i].isalpha() and rng.random() < style.typo_rate / 4:
                chars[i], chars[i + 1] = chars[i + 1], chars[i]
        text = "".join(chars)
    return text


def _finish(text: str, style: Style, rng: random.Random) -> str:
    text = _typos(_case(text, style, rng), style, rng)
    text = text.replace("!", style.exclaim) if style.exclaim != "!" else text
    if style.emoji and rng.random() < style.emoji_rate:
        text = f"{rng.choice(style.emoji)} {text} {rng.choice(style.emoji)}"
    return text


def _ship_text(style: Style, rng: random.Random) -> str:
    return _SHIP_TEMPLATES[style.ship].format(
        h=style.ship_hour, carrier=style.carrier, k=rng.choice((2, 3)),
        d=rng.choice(("2-4", "3-5", "5-10")), t=rng.choice((100, 200, 500)))


def _signature(style: Style, handle: str) -> str:
    initials = "".join(w[0] for w in handle.replace("_", " ").split() if w)[:3].upper() or "X"
    return style.signature.format(handle=handle, initials=initials)


def describe_listing(style: Style, handle: str, what: str, tiers: list[str],
                     rng: random.Random) -> str:
    """A listing description in the account's voice, with its price tiers."""
    tpl = _TEMPLATES[rng.choice(style.templates)]
    favs = list(style.favs)
    body = tpl.format(what=what, fav=favs[0], fav2=rng.choice(favs[1:]),
                      ship=_ship_text(style, rng))
    parts = []
    if style.greeting:
        parts.append(style.greeting.format(shop=handle))
    parts.append(_finish(body if body[-1:] in ".!?" else body + "!", style, rng))
    parts.append("Prices:\n" + "\n".join(tiers))
    parts.append(_finish(_ship_text(style, rng), style, rng))
    sig = _signature(style, handle)
    if sig:
        parts.append(sig)
    return "\n\n".join(parts)


def profile_text(style: Style, handle: str, specialties: list[str], country: str,
                 rng: random.Random) -> str:
    """The "about" text of a vendor profile (contacts included when the actor has any)."""
    lines = []
    if style.greeting:
        lines.append(style.greeting.format(shop=handle))
    lines.append(_finish(f"We are a {rng.choice(('small', 'trusted', 'family', 'professional'))}"
                         f" team from {country} selling {', '.join(specialties)}"
                         f", {style.favs[0]} and {style.favs[1]}!", style, rng))
    if style.contacts:
        lines.append("Contact: " + " | ".join(f"{k}: {v}" for k, v in style.contacts))
    sig = _signature(style, handle)
    if sig:
        lines.append(sig)
    return "\n".join(lines)


def terms_text(style: Style, rng: random.Random) -> str:
    """Terms of sale: shipping boilerplate and refund rules."""
    rules = ("No refunds on wrong addresses.", "Reship 50% on first loss.",
             "FE for trusted buyers only.", "Always encrypt your address please.",
             "Leave feedback, it helps us a lot.", "Disputes: message us first.")
    picked = [rules[i] for i in sorted(rng.sample(range(len(rules)), 3))]
    return _finish(_ship_text(style, rng) + " " + " ".join(picked), style, rng)


_FB_POS = ("great stealth, fast shipping", "5/5 would buy again", "product as described",
           "top quality, thanks", "arrived in 3 days, great comms", "legit vendor!!",
           "very good product", "A+++", "super fast, perfect stealth", "good stuff", "thx",
           "best on the market", "exactly as advertised, will order again")
_FB_MID = ("took 2 weeks but arrived", "ok quality, slow shipping", "decent but a bit weak",
           "stealth could be better", "arrived, not tested yet")
_FB_NEG = ("never arrived", "weak product, not as described", "scam, no reply",
           "short weight", "package seized, no reship")


def feedback_text(rating: int, rng: random.Random) -> str:
    """A buyer's feedback comment matching a 1-5 ``rating``."""
    pool = _FB_POS if rating >= 4 else _FB_MID if rating == 3 else _FB_NEG
    text = rng.choice(pool)
    if rng.random() < 0.2:
        text = text.capitalize()
    return text
