"""A third generator of linked-vendor worlds, built to be hard where the other two are easy.

darkmap has two generators already: ``darkmap.simulate`` (whole markets as saved pages)
and :mod:`darkmap.training.synthworld` (records through the store writer, a few phrases
per vendor). Both give every actor one writing style of his own and unrelated vendors
little in common. This module writes the same kinds of records (markets, accounts,
listings, feedback, identifiers, through :class:`~darkmap.store.writer.RecordWriter`
with provenance) from its *own* vocabulary, handle habits and text model, and adds what
makes real scenes confusing, each a knob of :class:`SceneParams`:

* **scene boilerplate** (``scene_boilerplate``): every shipping country has a bank of
  stock sentences (stealth, refund, escrow, reship, dispatch, customs); its vendors
  paste from it, so unrelated vendors of one country share whole sentences;
* **look-alikes** (``lookalike_rate``): different actors whose handles differ from an
  earlier actor's by a digit, a suffix, two swapped letters, leetspeak, a doubled or a
  dropped letter; **impersonators** (``impersonator_rate``): actors who take a known
  vendor's handle on another market and copy some of his listing titles, but not his
  writing habits or his key;
* **teams** (``team_rate``): an actor written by two or three voices, sentence by
  sentence inside one account or one voice per account; with ``shared_writer_rate`` one
  of the voices is another actor's own (a writer working for two shops);
* **noisy timing** (``timing_jitter_days``, ``overlap_rate``, ``missing_dates_rate``)
  and **style drift** (``style_drift``: each later account of an actor redraws each
  writing habit with this probability, cumulatively, so his last account may write
  unlike his first);
* **bare accounts** (``terse_rate``): one line of profile, no terms, titles only;
* the usual: several accounts per actor across markets (``multi_account_rate``),
  ``handle_change_rate``, ``key_reuse_rate``, ``contact_rate``, ``crypto_rate``.

A writing *voice* is a choice of synonym for each of 16 concepts, five personal
sentence frames, casing, sentence endings, a trailing mark, abbreviations, the sentence
separator, list bullets, an opener, a sign-off and a title template. The text of an
account is sentences drawn from its voice(s) and from the actor's share of his scene's
bank, rendered with the voice's surface habits.

:func:`make_scene_world` returns the truth in the ``truth.json`` shape read by
:func:`darkmap.evaluate.linking.eval_linking` (``accounts`` with ``actor`` and
``market``; ``actors``) plus what each phenomenon did (``lookalikes``,
``impersonators``, ``teams``, ``scenes``). Everything is drawn from one
``random.Random(seed)``: the same seed and knobs give the same records.

Seeds: 900-949 may be used for fitting and tuning; 950-999 are held out
(docs/simulator.md, "The linker's test bed").
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import asdict, dataclass, field
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

__all__ = ["HELD_OUT_SEEDS", "TUNING_SEEDS", "SceneParams", "make_scene_world"]

TUNING_SEEDS = range(900, 950)
"""Seeds that may be used to fit or tune anything."""
HELD_OUT_SEEDS = range(950, 1000)
"""Seeds never used for fitting or tuning: report on these."""


@dataclass
class SceneParams:
    """Knobs of a scene world (docs/simulator.md, "The linker's test bed")."""

    actors: int = 300
    markets: int = 7
    seed: int = 900
    multi_account_rate: float = 0.4    # chance an actor has more than one account
    scene_boilerplate: float = 0.6     # chance a boilerplate slot is pasted from the scene
    scene_copy_rate: float = 0.25      # chance a vendor copies a same-country vendor's terms
    lookalike_rate: float = 0.08       # chance an actor's handle mimics an earlier actor's
    lookalike_same_country: float = 0.5  # ... and he ships from the same country
    impersonator_rate: float = 0.02    # share of actors impersonating a known vendor
    impersonator_title_share: float = 0.5  # share of his titles copied from the victim
    team_rate: float = 0.06            # chance an actor is a team of 2-3 voices
    team_mixed_rate: float = 0.6       # chance a team account mixes voices sentence by sentence
    shared_writer_rate: float = 0.4    # chance a team voice is another actor's own voice
    style_drift: float = 0.2           # per later account, chance each habit is redrawn
    handle_change_rate: float = 0.35   # chance a later account does not keep the handle
    new_handle_share: float = 0.35     # of those changes, share that is a brand-new name
    key_reuse_rate: float = 0.55       # chance an account shows the actor's own key
    key_shown_rate: float = 0.85       # chance an account shows any key at all
    contact_rate: float = 0.25         # chance an account shows the actor's contact
    crypto_rate: float = 0.08          # chance an account shows the actor's BTC address
    same_market_rate: float = 0.05     # chance a further account is on an already used market
    overlap_rate: float = 0.3          # chance a further account starts before the last ends
    timing_jitter_days: float = 25.0   # sd of the noise on stated joined / last-seen dates
    missing_dates_rate: float = 0.1    # chance an account states no joined date
    terse_rate: float = 0.12           # chance an account has one line of text and titles only
    extra: dict[str, Any] = field(default_factory=dict)


# -- vocabulary (this module's own) -------------------------------------------------

_ROOTS = (
    "kestrel", "basalt", "onyx", "harbor", "tundra", "vortex", "mango", "juniper", "cobalt",
    "raven", "pixel", "nomad", "orbit", "saffron", "quartz", "lynx", "maple", "cactus",
    "zephyr", "bandit", "marble", "comet", "echo", "nova", "atlas", "ember", "fjord",
    "glacier", "hazel", "indigo", "jasper", "karma", "lotus", "meadow", "nimbus", "opal",
    "pepper", "quiver", "rocket", "sierra", "tango", "umbra", "velvet", "willow", "yeti",
    "zenith", "acorn", "bishop", "cinder", "fable", "gizmo", "hermit", "igloo", "jungle",
    "koala", "lemon", "mosaic", "nectar", "olive", "parrot", "rhino", "salsa", "thistle",
    "walrus", "falcon", "biscuit", "canyon", "dervish", "ferret", "goblin", "hydra", "lagoon",
    "mantis", "pluto", "rustic", "sphinx", "turbo", "voodoo", "wizard", "yonder", "badger")
_PREFIXES = ("sir", "von", "los", "team", "herr", "dj", "uncle", "auntie", "lil", "big_")
_SUFFIXES = ("co", "works", "bay", "hq", "point", "yard", "trading", "outlet", "corner")
_LOOKALIKE_SUFFIXES = ("_", "x", "z", "hq", "co", "_eu", "_us", "x2", "pro")
_RENAME_SUFFIXES = ("reborn", "_again", "_v3", "hq", "returns", "_", "co")
_LEET = str.maketrans({"a": "4", "e": "3", "o": "0", "i": "1", "s": "5", "t": "7"})

_LEX: dict[str, tuple[str, ...]] = {
    "parcel": ("parcel", "packet", "shipment", "envelope", "box", "drop"),
    "fast": ("fast", "quick", "speedy", "snappy", "swift", "prompt"),
    "buyer": ("buyer", "customer", "client", "friend", "fam", "mate"),
    "goods": ("goods", "product", "stuff", "gear", "merch", "items"),
    "good": ("excellent", "grand", "stellar", "proper", "top tier", "banging"),
    "send": ("send", "post", "dispatch", "mail", "ship out", "move"),
    "msg": ("message", "PM", "DM", "note", "inbox", "mail"),
    "day": ("day", "24h", "business day", "working day", "24 hours"),
    "thanks": ("thanks a lot", "thank you", "cheers", "ty", "much appreciated", "respect"),
    "trust": ("trust", "reputation", "rep", "track record", "history", "name"),
    "price": ("price", "rate", "cost", "pricing", "deal"),
    "bulk": ("bulk", "wholesale", "large orders", "big orders", "volume"),
    "hello": ("hello", "hi there", "good day", "welcome", "hey hey", "salute", "greetings"),
    "safe": ("safe", "secure", "hush hush", "careful", "low profile", "invisible"),
    "we": ("we", "I"),
    "often": ("weekly", "every week", "twice a week", "regularly", "often"),
}
_FRAMES = (
    "{we} {send} every {parcel} within one {day}",
    "{hello} and {thanks} for stopping by",
    "{bulk} {price} on request, just {msg} {us}",
    "only {good} {goods} here, no fillers",
    "{our} {goods} speak for themselves",
    "if anything goes wrong {msg} {us} before you leave feedback",
    "{fast} replies to every {msg}",
    "{trust} matters more than one sale",
    "a happy {buyer} is a returning {buyer}",
    "new {buyer}s get a small bonus on the first order",
    "{we} keep it {safe} for every {buyer}",
    "check {our} {trust} on the other markets",
    "{we} restock {often}, {fast} turnover",
    "{good} quality for a fair {price}",
    "long time in this game, {fast} and {safe}",
    "{we} answer every {msg} within one {day}",
    "do not ask for samples, {we} do not give them",
    "{our} {goods} are weighed on calibrated scales",
    "stay {safe} out there and {thanks}",
    "{we} only work with patient {buyer}s",
    "questions about {bulk}? {msg} {us}",
    "{thanks} to every {buyer} who leaves honest words",
    "a {fast} {parcel} is a {safe} {parcel}",
    "{we} test every batch before it goes on sale",
)
_ABBREV = {" for ": " 4 ", " with ": " w/ ", " are ": " r ", " before ": " b4 ",
           " because ": " cuz ", " thanks": " thx", " and ": " n "}
_CASES = ("sentence", "lower", "upper", "title", "sentence", "lower")
_ENDS = (".", "!", "...", "", " !", "..", ".", "!!")
_TAILS = ("", "", "", " ^^", " (:", " =)", " +++", " //", " >>")
_SEPS = (" ", " ", " | ", " - ", "\n", " // ", " ~ ", " :: ")
_BULLETS = ("", "", "* ", "> ", "+ ", "# ", "o ", "=> ")
_SIGNOFFS = ("-- {h}", "yours, {h}", "{h} out", "[{h}]", "sincerely team {h}",
             "{h} signing off", "~ {H} ~", "", "")
_TITLE_STYLES = ("{q}{u} {name}", "{name} - {q}{u}", "[{q}{u}] {name} {grade}",
                 "{Name} x{q}", "{grade} {name} ({q} {u})", "{q} {u} of {name}",
                 "{NAME} {q}{u} {grade}", "{name} | {q}{u} | {grade}")
_GRADES = ("reagent tested", "single origin", "small batch", "double filtered",
           "export quality", "hand picked", "vendor choice", "untouched", "fresh press",
           "grade A", "restocked", "limited")

_PRODUCTS: dict[str, tuple[tuple[str, ...], str, tuple[float, ...], float]] = {
    "amphetamine": (("speed paste", "amph sulphate", "pep base"), "g", (5, 10, 25, 50), 9.0),
    "cocaine": (("peruvian flake", "cocaine hcl", "fishscale"), "g", (1, 2, 3.5, 7), 75.0),
    "mdma": (("mdma crystal", "champagne mdma", "mandy rocks"), "g", (1, 5, 10, 28), 22.0),
    "ecstasy": (("ecstasy tablets", "presses", "rolls"), "pcs", (10, 25, 50, 100), 4.5),
    "cannabis": (("amnesia", "gorilla glue", "northern lights", "gelato buds"), "g",
                 (5, 10, 28, 100), 8.5),
    "hash": (("moroccan hash", "charas", "dry sift"), "g", (5, 10, 25, 50), 7.0),
    "lsd": (("lsd blotters", "cardboard", "hofmann tabs"), "tabs", (5, 10, 25, 100), 7.5),
    "mushrooms": (("golden teacher", "cubensis caps", "shroom chocolate"), "g",
                  (7, 14, 28, 56), 6.0),
    "benzodiazepines": (("diazepam 10mg", "etizolam 1mg", "clonazepam 2mg"), "pcs",
                        (20, 50, 100, 300), 1.2),
    "opioids": (("oxycodone 40mg", "tramadol 200mg", "codeine linctus"), "pcs",
                (10, 20, 50, 100), 14.0),
    "2c-b": (("2c-b", "nexus pills", "pink powder"), "pcs", (5, 10, 25, 50), 9.0),
    "dmt": (("dmt freebase", "changa", "n,n-dmt"), "g", (0.5, 1, 2, 5), 70.0),
    "methamphetamine": (("meth shards", "tina", "glass"), "g", (1, 3.5, 7, 14), 45.0),
}
_FEEDBACK = ("landed in {n} days", "weight spot on", "clean {p}", "comms quick",
             "solid as always", "bit late but all good", "strong batch of {p}",
             "all good here", "thx m8", "{n}/5 stealth", "no complaints", "repeat buyer, legit",
             "took {n} days, worth it", "{p} as described", "tiny bit short but ok",
             "good vibes", "arrived safe", "best {p} this year")

# country: (weight, local place, timezone, decoy item, carrier phrase, local words)
_COUNTRIES: dict[str, tuple[float, str, str, str, str, tuple[str, ...]]] = {
    "US": (0.26, "midwest", "EST", "greeting card", "first class mail", ("stateside",)),
    "UK": (0.12, "midlands", "GMT", "magazine", "royal post", ("proper", "innit")),
    "DE": (0.13, "ruhr", "CET", "catalogue", "Einschreiben", ("Versand", "Warensendung")),
    "NL": (0.12, "randstad", "CET", "flyer", "brievenbuspakje", ("verzending",)),
    "CA": (0.06, "ontario", "EST", "calendar", "lettermail", ("eh",)),
    "AU": (0.05, "victoria", "AEST", "brochure", "express post", ("mate",)),
    "FR": (0.05, "lyon", "CET", "menu card", "lettre suivie", ("colis",)),
    "ES": (0.04, "levante", "CET", "postcard", "certificado", ("envio",)),
    "PL": (0.05, "silesia", "CET", "leaflet", "polecony", ("paczka",)),
    "IT": (0.04, "lombardy", "CET", "recipe card", "raccomandata", ("spedizione",)),
    "SE": (0.04, "scania", "CET", "coupon", "rek letter", ("frakt",)),
    "CZ": (0.04, "moravia", "CET", "sticker sheet", "doporucene", ("zasilka",)),
}
_SCENE_FRAMES: dict[str, tuple[str, ...]] = {
    "stealth": ("{place} stealth: {k}x heat sealed, {decoy} decoy inside",
                "every order leaves in a {decoy} style wrap with a moisture barrier",
                "odour proof {k} layer wrap, no names on the label, {local}",
                "{decoy} stealth since day one, {k} barrier bags"),
    "refund": ("refund policy: {pct}% back or one reship, buyer chooses",
               "no refunds once {n} days have passed since dispatch",
               "seized by customs = {pct}% refund with the letter as proof",
               "partial refunds only, {pct}% max, no exceptions"),
    "escrow": ("escrow only until {k} orders completed, then early release is possible",
               "we never ask for early release before {k} orders",
               "escrow releases itself after {n} days, be patient",
               "use escrow, always, {local} rules"),
    "reship": ("one free reship per buyer per {period}",
               "reship after {n} working days without a tracking update",
               "reships only to a different address",
               "{pct}% reship for first timers, full reship for regulars"),
    "dispatch": ("cutoff for same day dispatch is {h}:{mm} {tz}",
                 "we drop {carrier} parcels {days}",
                 "{carrier} from {place}, {n} to {n2} days domestic",
                 "no dispatch on {off}, {local}"),
    "customs": ("domestic only, no customs worries",
                "international orders go through the {place} sorting centre",
                "{carrier} for international, tracked",
                "we avoid customs by shipping {carrier} only"),
}
_DAYS = ("monday to friday", "tuesdays and fridays", "every weekday", "mon wed fri",
         "six days a week")
_OFF = ("sundays", "bank holidays", "weekends", "mondays")
_PERIODS = ("month", "quarter", "year", "ten orders")
_MARKET_NAMES = ("Lantern", "Quarry", "Tollgate", "Beacon", "Warren", "Causeway", "Orchard",
                 "Foundry", "Lighthouse", "Crossroads", "Granary", "Wharf")
_CONTACT_KINDS = ("session", "signal", "jabber", "telegram", "wickr")
_DESTS = ("Worldwide", "EU", "Europe", "North America", "Oceania", "Scandinavia")


# -- voices -------------------------------------------------------------------------

_TRAITS = ("lex", "frames", "case", "end", "tail", "abbrev", "sep", "bullet", "signoff",
           "opener", "title")


def _draw(trait: str, rng: random.Random) -> Any:
    if trait == "lex":
        return {k: rng.choice(v) for k, v in _LEX.items()}
    if trait == "frames":
        return rng.sample(_FRAMES, 5)
    if trait == "abbrev":
        return rng.random() < 0.25
    if trait == "opener":
        return rng.random() < 0.6
    pools: dict[str, tuple[str, ...]] = {
        "case": _CASES, "end": _ENDS, "tail": _TAILS, "sep": _SEPS, "bullet": _BULLETS,
        "signoff": _SIGNOFFS, "title": _TITLE_STYLES}
    return rng.choice(pools[trait])


def _new_voice(rng: random.Random) -> dict[str, Any]:
    return {t: _draw(t, rng) for t in _TRAITS}


def _drift(voice: dict[str, Any], rate: float, rng: random.Random) -> tuple[dict[str, Any],
                                                                          int]:
    """A copy of ``voice`` with each habit redrawn with probability ``rate``; lexical
    choices and frames drift item by item."""
    out = dict(voice)
    changed = 0
    for t in _TRAITS:
        if t == "lex":
            lex = dict(voice["lex"])
            for k in sorted(lex):
                if rng.random() < rate:
                    lex[k] = rng.choice(_LEX[k])
                    changed += 1
            out["lex"] = lex
        elif t == "frames":
            frames = list(voice["frames"])
            for i in range(len(frames)):
                if rng.random() < rate:
                    frames[i] = rng.choice(_FRAMES)
                    changed += 1
            out["frames"] = frames
        elif rng.random() < rate:
            out[t] = _draw(t, rng)
            changed += 1
    return out, changed


def _fill(frame: str, lex: dict[str, str]) -> str:
    we = lex["we"]
    slots = dict(lex, us="us" if we == "we" else "me", our="our" if we == "we" else "my")
    return frame.format(**slots)


def _render(sentence: str, voice: dict[str, Any]) -> str:
    s = sentence
    if voice["abbrev"]:
        s = " " + s + " "
        for a, b in _ABBREV.items():
            s = s.replace(a, b)
        s = s.strip()
    case = voice["case"]
    if case == "lower":
        s = s.lower()
    elif case == "upper":
        s = s.upper()
    elif case == "title":
        s = " ".join(w[:1].upper() + w[1:] for w in s.split(" "))
    else:
        s = s[:1].upper() + s[1:]
    end = voice["end"]
    if s.endswith("?"):
        end = ""
    return s + str(end) + str(voice["tail"])


# -- handles ------------------------------------------------------------------------

def _new_handle(rng: random.Random) -> str:
    r = rng.random()
    a, b = rng.sample(_ROOTS, 2)
    if r < 0.25:
        return a.capitalize() + b.capitalize()
    if r < 0.4:
        return f"{a}_{b}"
    if r < 0.6:
        return a + str(rng.choice((rng.randint(1, 99), rng.randint(1980, 2005))))
    if r < 0.75:
        return rng.choice(_PREFIXES) + a
    if r < 0.9:
        return a + rng.choice(_SUFFIXES)
    return a + b


def _lookalike(h: str, rng: random.Random) -> str:
    """A handle a different vendor would pick to look like ``h``."""
    kind = rng.randrange(7)
    if kind == 0:  # a digit added or changed
        if h[-1:].isdigit():
            return h[:-1] + str((int(h[-1]) + rng.randint(1, 9)) % 10)
        return h + str(rng.randint(0, 9))
    if kind == 1:
        return h + rng.choice(_LOOKALIKE_SUFFIXES)
    if kind == 2 and len(h) > 3:  # two neighbouring letters swapped
        i = rng.randrange(1, len(h) - 2)
        if h[i] != h[i + 1]:
            return h[:i] + h[i + 1] + h[i] + h[i + 2:]
    if kind == 3:
        leet = h.translate(_LEET)
        if leet != h:
            return leet
    if kind == 4:  # a doubled letter
        i = rng.randrange(len(h))
        return h[:i + 1] + h[i] + h[i + 1:]
    if kind == 5 and len(h) > 4:  # a letter dropped
        i = rng.randrange(1, len(h))
        return h[:i] + h[i + 1:]
    return "the" + h if not h.startswith("the") else h + "_"


def _rename(h: str, rng: random.Random, new_share: float) -> str:
    """The handle an actor takes on a later account."""
    if rng.random() < new_share:
        return _new_handle(rng)
    kind = rng.randrange(4)
    if kind == 0:
        return h.capitalize() if h != h.capitalize() else h.lower()
    if kind == 1:
        return h + rng.choice(_RENAME_SUFFIXES)
    if kind == 2:
        return h + str(rng.randint(2, 9))
    return h.replace("_", "") if "_" in h else h.translate(_LEET)


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789ABCDEF") for _ in range(n))


def _bech32(rng: random.Random) -> str:
    return "bc1q" + "".join(rng.choice("qpzry9x8gf2tvdw0s3jn54khce6mua7l") for _ in range(38))


# -- scenes -------------------------------------------------------------------------

def _scene_bank(country: str, rng: random.Random) -> dict[str, list[str]]:
    """Two stock sentences per category for one country, fixed for the world."""
    _, place, tz, decoy, carrier, local = _COUNTRIES[country]
    bank: dict[str, list[str]] = {}
    for cat in sorted(_SCENE_FRAMES):
        out = []
        for frame in rng.sample(_SCENE_FRAMES[cat], 2):
            n = rng.randint(3, 21)
            out.append(frame.format(
                place=place, tz=tz, decoy=decoy, carrier=carrier, local=rng.choice(local),
                k=rng.randint(2, 5), pct=rng.choice((25, 30, 40, 50, 60, 75)), n=n,
                n2=n + rng.randint(1, 4), period=rng.choice(_PERIODS),
                h=rng.randint(9, 17), mm=rng.choice(("00", "15", "30", "45")),
                days=rng.choice(_DAYS), off=rng.choice(_OFF)))
        bank[cat] = out
    return bank


# -- the world ----------------------------------------------------------------------

@dataclass
class _Actor:
    name: str
    country: str
    handle: str
    voices: list[dict[str, Any]]
    voice_ids: list[str]
    scene: list[str]            # the bank sentences this actor pastes
    own_bp: list[str]           # his own boilerplate (when not pasting)
    products: list[str]
    price_mult: float
    keys: list[str]
    contact: tuple[str, str]
    btc: str
    ships_to: list[str]
    accounts: list[str] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    markets: set[str] = field(default_factory=set)


class _World:
    def __init__(self, ws: Workspace, p: SceneParams) -> None:
        self.p = p
        self.rng = random.Random(p.seed)
        self.t0 = datetime(2016, 1, 1)
        self.span = 2600
        rng = self.rng
        self.markets: list[tuple[str, int, int]] = []
        names = rng.sample(_MARKET_NAMES, min(p.markets, len(_MARKET_NAMES)))
        for m in range(p.markets):
            opened = rng.randint(0, self.span - 500)
            closed = min(self.span, opened + rng.randint(500, 1600))
            self.markets.append((f"sc{m}", opened, closed))
        self.names = names
        self.countries = sorted(_COUNTRIES)
        self.weights = [_COUNTRIES[c][0] for c in self.countries]
        self.banks = {c: _scene_bank(c, rng) for c in self.countries}
        sha = hashlib.sha256(f"sceneworld-{p.seed}".encode()).hexdigest()
        self.prov = Provenance(sha, f"sceneworld:{p.seed}", "sceneworld@1", self.t0)
        self.w = RecordWriter(ws.con)
        self.used: set[str] = set()
        self.voice_pool: list[tuple[str, dict[str, Any]]] = []
        self.scene_users: dict[str, list[tuple[str, list[str], list[str]]]] = {}
        self.actors: list[_Actor] = []
        self.truth: dict[str, Any] = {
            "generator": "sceneworld", "seed": p.seed, "params": asdict(p), "actors": {},
            "accounts": {}, "markets": {}, "scenes": self.banks, "lookalikes": [],
            "impersonators": {}, "teams": {}, "scene_copies": []}

    def day(self, d: float) -> datetime:
        return self.t0 + timedelta(days=d)

    def run(self) -> dict[str, Any]:
        p, rng = self.p, self.rng
        for i, (mid, opened, closed) in enumerate(self.markets):
            self.w.add(MarketRecord(mid, f"{self.names[i % len(self.names)]} {mid}",
                                    observed_at=self.day(opened)), self.prov)
            self.truth["markets"][mid] = {"opened": self.day(opened).date().isoformat(),
                                          "closed": self.day(closed).date().isoformat()}
        n_imp = round(p.impersonator_rate * p.actors)
        for a in range(p.actors - n_imp):
            self.make_actor(a)
        known = [x for x in self.actors if len(x.accounts) >= 2] or self.actors
        for a in range(p.actors - n_imp, p.actors):
            self.make_impersonator(a, rng.choice(known))
        self.w.flush()
        return self.truth

    # -- actors ---------------------------------------------------------------------
    def _base(self, name: str, country: str) -> dict[str, Any]:
        rng = self.rng
        voice = _new_voice(rng)
        bank = self.banks[country]
        own_bp = [_fill(f, voice["lex"]) for f in rng.sample(_FRAMES, 4)]
        peers = self.scene_users.setdefault(country, [])
        copied = None
        if peers and rng.random() < self.p.scene_copy_rate:
            copied, scene, theirs = rng.choice(peers)
            scene = list(scene)
            own_bp = theirs[:2] + own_bp[2:]
            self.truth["scene_copies"].append([name, copied])
        else:
            scene = [s for cat in sorted(bank) for s in bank[cat] if rng.random() < 0.5]
            scene = scene or [rng.choice(bank["stealth"])]
        peers.append((name, scene, own_bp))
        return {"voice": voice, "scene": scene, "own_bp": own_bp}

    def make_actor(self, a: int) -> None:
        p, rng = self.p, self.rng
        name = f"actor{a}"
        country = rng.choices(self.countries, self.weights)[0]
        handle = _new_handle(rng)
        mimic = None
        if self.actors and rng.random() < p.lookalike_rate:
            mimic = rng.choice(self.actors)
            handle = _lookalike(mimic.handle, rng)
            if rng.random() < p.lookalike_same_country:
                country = mimic.country
            self.truth["lookalikes"].append([name, mimic.name])
        b = self._base(name, country)
        voices, vids = [b["voice"]], [f"{name}/v0"]
        if rng.random() < p.team_rate:
            for k in range(rng.randint(1, 2)):
                if self.voice_pool and rng.random() < p.shared_writer_rate:
                    vid, v = rng.choice(self.voice_pool)
                else:
                    vid, v = f"{name}/v{k + 1}", _new_voice(rng)
                voices.append(v)
                vids.append(vid)
            self.truth["teams"][name] = vids
        self.voice_pool.append((vids[0], voices[0]))
        actor = _Actor(
            name, country, handle, voices, vids, b["scene"], b["own_bp"],
            rng.sample(sorted(_PRODUCTS), rng.randint(1, 4)), rng.lognormvariate(0, 0.2),
            [_hex(rng, 40)] + ([_hex(rng, 40)] if rng.random() < 0.15 else []),
            (rng.choice(_CONTACT_KINDS), self._contact_value(handle)), _bech32(rng),
            ["Worldwide"] if rng.random() < 0.35 else sorted(
                {country, rng.choice(_DESTS), rng.choice(self.countries)}))
        self.actors.append(actor)
        self.truth["actors"][name] = {
            "country": country, "accounts": actor.accounts, "pgp_fingerprints": actor.keys,
            "voices": vids, "team": len(vids) > 1,
            "lookalike_of": mimic.name if mimic else None, "impersonates": None}
        n_acc = 1 if rng.random() >= p.multi_account_rate else rng.choice((2, 2, 2, 3, 3, 4, 5))
        self.career(actor, n_acc)

    def _contact_value(self, handle: str) -> str:
        rng = self.rng
        if rng.random() < 0.3:
            return f"{handle.lower()}{rng.randint(10, 999)}"
        return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(10))

    def make_impersonator(self, a: int, victim: _Actor) -> None:
        rng = self.rng
        name = f"actor{a}"
        country = victim.country if rng.random() < 0.7 else rng.choices(
            self.countries, self.weights)[0]
        b = self._base(name, country)
        actor = _Actor(
            name, country, victim.handle, [b["voice"]], [f"{name}/v0"], b["scene"],
            b["own_bp"], list(victim.products), rng.lognormvariate(-0.1, 0.2),
            [_hex(rng, 40)], (rng.choice(_CONTACT_KINDS), self._contact_value(victim.handle)),
            _bech32(rng), list(victim.ships_to))
        self.actors.append(actor)
        self.truth["impersonators"][name] = victim.name
        self.truth["actors"][name] = {
            "country": country, "accounts": actor.accounts, "pgp_fingerprints": actor.keys,
            "voices": actor.voice_ids, "team": False, "lookalike_of": None,
            "impersonates": victim.name}
        free = [m for m in self.markets if m[0] not in victim.markets] or self.markets
        n_acc = 1 if rng.random() < 0.8 else 2
        for k in range(n_acc):
            mid, opened, closed = rng.choice(free)
            start = rng.uniform(opened, max(opened + 1, closed - 90))
            end = min(closed, start + rng.uniform(40, 300))
            self.account(actor, k, mid, victim.handle, start, end, actor.voices[0], 0,
                         copy_from=victim.titles)

    def career(self, actor: _Actor, n_acc: int) -> None:
        p, rng = self.p, self.rng
        start = rng.uniform(0, self.span - 200)
        handle = actor.handle
        voice = actor.voices[0]
        drifted = 0
        prev_dur = 0.0
        for k in range(n_acc):
            dur = rng.uniform(60, 600)
            if k:
                if rng.random() < p.overlap_rate:
                    start = start + rng.uniform(0.1, 0.8) * prev_dur
                else:
                    start = start + prev_dur + max(0.0, rng.gauss(60, 90))
                if rng.random() < p.handle_change_rate:
                    handle = _rename(handle, rng, p.new_handle_share)
                voice, ch = _drift(voice, p.style_drift, rng)
                drifted += ch
            mid, opened, closed = self._market_for(actor, start, k)
            s = min(max(start, opened), closed - 30)
            e = min(closed, s + dur)
            prev_dur = dur
            self.account(actor, k, mid, handle, s, e, voice, drifted)

    def _market_for(self, actor: _Actor, day: float, k: int) -> tuple[str, int, int]:
        rng = self.rng
        open_ = [m for m in self.markets if m[1] <= day < m[2] - 30]
        fresh = [m for m in open_ if m[0] not in actor.markets]
        if fresh and not (k and rng.random() < self.p.same_market_rate and
                          len(fresh) < len(open_)):
            return rng.choice(fresh)
        if open_:
            return rng.choice(open_)
        return min(self.markets, key=lambda m: min(abs(m[1] - day), abs(m[2] - day)))

    # -- one account ----------------------------------------------------------------
    def account(self, actor: _Actor, k: int, mid: str, handle: str, start: float,
                end: float, voice: dict[str, Any], drifted: int,
                copy_from: list[str] | None = None) -> None:
        p, rng, w, prov = self.p, self.rng, self.w, self.prov
        while account_id(mid, handle) in self.used:
            handle = handle + str(rng.randint(0, 9))
        aid = account_id(mid, handle)
        self.used.add(aid)
        actor.markets.add(mid)
        actor.accounts.append(aid)
        # the writers of this account
        voices, writers = [voice], [actor.voice_ids[0]]
        if len(actor.voices) > 1:
            if rng.random() < p.team_mixed_rate:
                voices = [voice, *actor.voices[1:]]
                writers = list(actor.voice_ids)
            else:
                j = rng.randrange(len(actor.voices))
                voices = [voice if j == 0 else actor.voices[j]]
                writers = [actor.voice_ids[j]]

        def sentences(n_personal: int, n_boiler: int) -> list[str]:
            out: list[str] = []
            for i in range(n_personal + n_boiler):
                v = rng.choice(voices)
                if i < n_personal:
                    src = [_fill(f, v["lex"]) for f in v["frames"]]
                else:
                    src = actor.scene if rng.random() < p.scene_boilerplate else actor.own_bp
                s = _render(rng.choice(src), v)
                out.append(s if s not in out else _render(rng.choice(src), v))
            return out

        lead = voices[0]
        sep = lead["sep"]
        profile = sep.join(sentences(rng.randint(2, 3), rng.randint(1, 3)))
        if lead["opener"]:
            profile = _render(lead["lex"]["hello"], lead) + lead["sep"] + profile
        if lead["signoff"]:
            profile += "\n" + lead["signoff"].format(h=handle, H=handle.upper())
        terms = "\n".join(lead["bullet"] + x for x in sentences(1, rng.randint(2, 4)))
        terse = rng.random() < p.terse_rate
        if terse:  # a bare account: one line of profile, no terms, titles only
            profile, terms = sentences(1, 0)[0], ""
        origin = actor.country if rng.random() < 0.9 else rng.choice(self.countries)
        jit = p.timing_jitter_days
        joined = None if rng.random() < p.missing_dates_rate else self.day(
            start + rng.gauss(0, jit))
        last = self.day(end + rng.gauss(0, jit))
        if actor.keys and rng.random() < p.key_shown_rate:
            key = (rng.choice(actor.keys) if rng.random() < p.key_reuse_rate
                   else _hex(rng, 40))
            w.add(IdentifierRecord("pgp_fingerprint", key, mid, handle, field="pgp"), prov)
            keys = [key]
        else:
            keys = []
        if rng.random() < p.contact_rate:
            kind, value = actor.contact
            w.add(IdentifierRecord(kind, value, mid, handle, field="profile"), prov)
            profile += f"{lead['sep']}{kind}: {value}"
        if rng.random() < p.crypto_rate:
            w.add(IdentifierRecord("btc_address", actor.btc, mid, handle, field="profile"),
                  prov)
        w.add(AccountRecord(mid, handle, "vendor", joined_at=joined, last_seen_at=last,
                            profile_text=profile, terms_text=terms, ships_from=origin,
                            observed_at=last, locator=f"scene acct {aid}"), prov)
        self.truth["accounts"][aid] = {
            "actor": actor.name, "market": mid, "handle": handle, "role": "vendor",
            "pgp_fingerprints": keys, "writers": writers, "index": k, "terse": terse,
            "drifted_traits": drifted, "start": self.day(start).date().isoformat(),
            "end": self.day(end).date().isoformat()}
        dests = list(actor.ships_to)
        for li in range(rng.randint(2, 9)):
            title = None
            if copy_from and rng.random() < p.impersonator_title_share:
                title = rng.choice(copy_from)
                drug = next((d for d in actor.products if any(
                    n in title.lower() for n in _PRODUCTS[d][0])), actor.products[0])
            if title is None:
                drug = rng.choice(actor.products)
                title = self._title(drug, rng.choice(voices))
            names, unit, qtys, unit_price = _PRODUCTS[drug]
            if copy_from is None:
                actor.titles.append(title)
            qty = rng.choice(qtys)
            price = round(unit_price * qty ** 0.85 * actor.price_mult
                          * rng.lognormvariate(0, 0.1), 2)
            desc = "" if terse else sep.join(sentences(rng.randint(1, 2), rng.randint(0, 2)))
            obs = self.day(rng.uniform(start, end))
            ref = f"{mid}-{len(self.used)}-{li}"
            w.add(ListingRecord(mid, ref, handle, title, desc, price, "USD",
                                ships_from=origin, ships_to=dests,
                                category_path=["Drugs", drug], observed_at=obs,
                                locator=f"scene lst {ref}"), prov)
            for fi in range(rng.choice((0, 0, 1, 1, 2, 3, 4))):
                txt = rng.choice(_FEEDBACK).format(p=rng.choice(names), n=rng.randint(2, 9))
                left = self.day(rng.uniform(start, end) + rng.gauss(0, jit / 2))
                w.add(FeedbackRecord(mid, handle, txt, listing_ref=ref, left_at=left,
                                     buyer_masked=f"{rng.choice('abcdefgh')}..."
                                                  f"{rng.randint(0, 9)}",
                                     locator=f"scene fb {ref} {fi}"), prov)

    def _title(self, drug: str, voice: dict[str, Any]) -> str:
        rng = self.rng
        names, unit, qtys, _ = _PRODUCTS[drug]
        name = rng.choice(names)
        q = rng.choice(qtys)
        qs = f"{q:g}"
        return str(voice["title"]).format(q=qs, u=unit, name=name, Name=name.title(),
                                          NAME=name.upper(), grade=rng.choice(_GRADES))


def make_scene_world(ws: Workspace, params: SceneParams) -> dict[str, Any]:
    """Write a scene world into ``ws``; return its truth (``truth.json`` shape)."""
    return _World(ws, params).run()
