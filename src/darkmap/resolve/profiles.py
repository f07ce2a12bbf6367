"""Per-account evidence profiles read from the store, as arrays and sparse matrices.

One row per account (vendors and buyers alike; buyers simply have little evidence).
Everything the pairwise comparisons need is built here once, vectorised: text
profiles as TF-IDF matrices, identifiers as (kind, value) rows, activity windows as
day numbers, price keys as a DuckDB table the pair joins read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, TypeVar, cast

import duckdb
import numpy as np
import scipy.sparse as sp

from darkmap.model.countries import country_code
from darkmap.resolve.claims import (
    MAX_CLAIMS,
    Claim,
    MarketNames,
    account_claims,
    market_names,
    verification_claims,
)
from darkmap.resolve.normalise import handle_key, handle_skeleton
from darkmap.resolve.vectors import (
    SharedEvidence,
    evidence_profile,
    hashed_ngrams,
    hashed_shingles,
    language_groups,
    market_dialects,
    product_vocabulary,
    symbol_runs,
    tfidf,
    word_shapes,
)
from darkmap.store import evidence

__all__ = ["IDENTIFIER_GROUPS", "Profiles", "Roster", "load_profiles", "not_own_values",
           "service_onion", "strip_blobs"]

# Which identifier kinds count as which signal.
IDENTIFIER_GROUPS: dict[str, tuple[str, ...]] = {
    "pgp": ("pgp_fingerprint",),
    "crypto": ("btc_address", "xmr_address"),
    "contact": ("email", "wickr", "telegram", "session", "jabber", "signal", "onion"),
}
_TEXT_CAP = 3000          # characters of vendor-written text per account
_FB_CAP = 3000            # characters of feedback per account
# Below about 25 words of free text (titles not counted) two texts' shingles are noise,
# not style: such an account has "no text" for the style and habit signals (a two-line
# profile must not outvote a shared key)
_MIN_STYLE_TEXT = 150
_TOPIC_MIN_ACCOUNTS = 3   # a title word of this many accounts is a product word ...
_TOPIC_MAX_PROSE = 2.0    # ... unless free text of more than twice as many uses it
_RARE_SHARE = 0.01        # `rare_phrases`: shingles of fewer than 1% of the accounts
_MAX_IDENT_HOLDERS = 5    # an identifier on more accounts than this is not compared
# An address that stands for anyone's: an order form's "eg you@you.com", a manual's
# name@example.com. Local parts of form placeholders, and the domains reserved for
# documentation and testing (RFC 2606, RFC 6761)
_PLACEHOLDER_LOCAL = frozenset({"you", "your", "yourname", "youremail", "yourmail",
                                "username", "user", "name", "email", "someone", "example",
                                "test"})
_DOC_DOMAINS = frozenset({"example.com", "example.net", "example.org"})
_DOC_TLDS = (".example", ".test", ".invalid", ".localhost")
_PRICE_OFFSET = 50.0      # keeps stored log prices non-zero so sparsity is stable
_FX = {"USD": 1.0, "EUR": 1.1, "GBP": 1.3, "AUD": 0.7, "CAD": 0.75, "CHF": 1.05}


_D = TypeVar("_D")


@dataclass
class Profiles:
    """Evidence per account, row ``i`` for ``ids[i]``."""

    ids: list[str]
    market: np.ndarray                 # object array of market ids
    market_code: np.ndarray            # int codes of market
    handle: list[str]
    hkey: list[str]
    style: sp.csr_matrix               # vendor-written text, word 1-2-grams, L2 rows
    phrasing: sp.csr_matrix            # same text, 1-3-grams, numbers and product words masked
    products: sp.csr_matrix            # titles/categories, words, L2 rows
    feedback: sp.csr_matrix            # buyer feedback, words, L2 rows
    handle_grams: sp.csr_matrix        # handle key char n-grams, L2 rows
    has_style: np.ndarray
    has_products: np.ndarray
    has_feedback: np.ndarray
    start: np.ndarray                  # activity window, days since 1970 (nan unknown)
    end: np.ndarray
    origin: np.ndarray                 # int code of most common ships_from (-1 unknown)
    dest: sp.csr_matrix                # ships_to set, binary
    idents: dict[str, sp.csr_matrix] = field(default_factory=dict)  # group -> binary
    ident_values: dict[str, list[str]] = field(default_factory=dict)
    price_keys: sp.csr_matrix | None = None    # account x (word,unit) -> mean log unit price
    price_mask: sp.csr_matrix | None = None    # same pattern, 1.0
    index: dict[str, int] = field(default_factory=dict)
    skeleton: list[str] = field(default_factory=list)          # handle_skeleton
    hkey_count: np.ndarray | None = None    # accounts sharing this account's handle key
    skeleton_count: np.ndarray | None = None  # ... and its exact (skeleton) handle
    # activity proper (joined date, buyer feedback), days since 1970, nan unknown:
    # unlike ``start``/``end`` it ignores when a page was captured or a dump ingested
    active_start: np.ndarray | None = None
    active_end: np.ndarray | None = None
    # writing habits of the same vendor-written text: share of ALL CAPS / lower /
    # Capitalised / mixed words (n x 4), and punctuation, symbol and emoji runs (L2 rows)
    capitals: np.ndarray | None = None
    symbols: sp.csr_matrix | None = None
    rare_phrases: sp.csr_matrix | None = None  # the phrasing shingles of <1% of accounts
    # shared-versus-chance weights of `style`, `phrasing`, `rare_phrases`
    # (vectors.SharedEvidence)
    style_evidence: SharedEvidence | None = None
    phrasing_evidence: SharedEvidence | None = None
    rare_evidence: SharedEvidence | None = None
    origin_share: np.ndarray | None = None  # share of accounts with this origin (nan unknown)
    # code of the region (an `origin` code, "eu") the account's origin country lies in,
    # -1 for none: such a country and that region do not disagree
    origin_region: np.ndarray | None = None
    # the (market, handle) pairs each account's own text says it holds elsewhere
    # (:mod:`darkmap.resolve.claims`); empty where it says none
    claims: list[tuple[Claim, ...]] = field(default_factory=list)
    # values derived from the whole set of profiles, computed once on first use (the
    # profiles do not change once loaded): pair comparison runs in many batches (Spark
    # tasks), and a derivation over every account must not run again in each
    derived: dict[tuple[Any, ...], Any] = field(default_factory=dict, repr=False,
                                                 compare=False)

    def __len__(self) -> int:
        return len(self.ids)

    def derive(self, key: tuple[Any, ...], make: Callable[[], _D]) -> _D:
        """``make()``, computed once per ``key`` for these profiles and kept."""
        if key not in self.derived:
            self.derived[key] = make()
        return cast(_D, self.derived[key])

    def roster(self) -> Roster:
        """Who the accounts are, without their evidence: what a link run still needs
        once its pairs are scored (naming and dating personas, storing links)."""
        return Roster(self.ids, self.index, self.handle, self.market, self.start,
                      self.end, self.claims)


@dataclass(frozen=True)
class Roster:
    """The accounts of :class:`Profiles`, row ``i`` for ``ids[i]``, without the text
    matrices (most of a profile's memory: at 100,000 accounts about 1.5 GB)."""

    ids: list[str]
    index: dict[str, int]
    handle: list[str]
    market: np.ndarray
    start: np.ndarray
    end: np.ndarray
    claims: list[tuple[Claim, ...]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)


_QTY = re.compile(r"(\d+(?:[.,]\d+)?)\s*(kg|g|gr|grams?|oz|mg|ug|mcg|ml|pills?|tabs?|"
                  r"caps?|pcs|x|blotters?|pieces?)\b", re.I)
_WORD = re.compile(r"[a-z][a-z0-9\-]{2,}")
_UNIT = {"kg": ("g", 1000.0), "g": ("g", 1.0), "gr": ("g", 1.0), "gram": ("g", 1.0),
         "grams": ("g", 1.0), "oz": ("g", 28.35), "ml": ("ml", 1.0)}


def _price_rows(title: str, price: float, currency: str | None) -> tuple[str, float] | None:
    """(unit, log unit price in USD) of a listing, or None when not comparable."""
    rate = _FX.get((currency or "USD").upper())
    if rate is None or not price or price <= 0 or not title:
        return None
    found = None
    for m in _QTY.finditer(title):
        unit = m.group(2).lower()
        if unit in ("mg", "ug", "mcg"):
            continue  # a dose, not a quantity
        qty = float(m.group(1).replace(",", "."))
        if qty <= 0:
            continue
        u, mult = _UNIT.get(unit, ("unit", 1.0))
        found = (u, qty * mult)
        break
    if found is None:
        return None
    return found[0], float(np.log(price * rate / found[1]))


def load_profiles(con: duckdb.DuckDBPyConnection,
                  account_ids: list[str] | None = None) -> Profiles:
    """Build the evidence profiles of every account in the store (or of ``account_ids``)."""
    rows = evidence.account_handles(con)
    if account_ids is not None:
        keep = set(account_ids)
        rows = [r for r in rows if r[0] in keep]
    ids = [r[0] for r in rows]
    index = {a: i for i, a in enumerate(ids)}
    n = len(ids)
    market = np.array([r[1] for r in rows], dtype=object)
    _, market_code = np.unique(market, return_inverse=True) if n else ([], np.zeros(0, int))
    handles = [r[2] or "" for r in rows]
    hkeys = [handle_key(h) for h in handles]
    skels = [handle_skeleton(h) for h in handles]

    # Every aggregate is ordered: the texts are cut at a length cap, and DuckDB's
    # parallel scans would otherwise concatenate them in a different order from run to
    # run, and personas would change with the number of threads. Profile and terms come
    # first, then the (short) titles, then descriptions.
    # `prose` is the same without titles: capitalisation and punctuation are habits of
    # free text (titles are Title Case by custom, and a dataset of titles alone must
    # not look like a different writer from the same vendor's profile pages)
    own, prose, claims = _own_texts(con, index, market, handles)
    prod = _texts(evidence.product_texts(con), index, _TEXT_CAP)
    fb = _texts(evidence.feedback_texts(con), index, _FB_CAP)

    # Two views of the same vendor-written text (profile, terms, descriptions, titles),
    # both as *presence* of shingles (a vendor pastes the same boilerplate into every
    # listing; counting it would let the number of listings decide the profile);
    # docs/linking.md, "Writing style". `style`: words and word pairs, numbers kept
    # ("ships within 36 hours"); `phrasing`: runs of one to three tokens with every
    # number and every product word masked (a word in the titles or categories of at
    # least three accounts, unless the free text of more than twice as many uses it:
    # "alprazolam" is masked, "pure" and "stealth" are not; vectors.product_vocabulary),
    # so it reads how a vendor writes, not what they sell ("Selling # at the best
    # prices"). Shingles of one account only are dropped: they
    # can match nothing and would crowd out the ones that can. Both are compared as
    # shared evidence against chance (vectors.SharedEvidence), not as cosines.
    topic = product_vocabulary(prod, prose, _TOPIC_MIN_ACCOUNTS, _TOPIC_MAX_PROSE)
    # Each text list and shingle matrix is let go once its last view is built: together
    # they weigh about as much as the finished profiles (1.2 GB at 100,000 accounts).
    has_free_text = np.array([len(t.strip()) >= _MIN_STYLE_TEXT for t in prose], dtype=bool)
    capitals = word_shapes(prose)
    symbols = tfidf(symbol_runs(prose), min_df=2)
    del prose
    products = tfidf(hashed_ngrams(prod, (4,), n_features=2**18, lowercase=True), top_k=600)
    has_products = np.array([bool(t.strip()) for t in prod], dtype=bool)
    del prod
    feedback = tfidf(hashed_ngrams(fb, (4,), n_features=2**18, lowercase=True), top_k=600)
    has_feedback = np.array([bool(t.strip()) for t in fb], dtype=bool)
    del fb
    # shingles weigh by their frequency among texts of the same language
    style_shingles = hashed_shingles(own, (1, 2), digits="split")
    # ... and of the same dialect: a phrase rare in the workspace but common on a group
    # of markets that write unlike the rest is their boilerplate, not two vendors' habit
    dialect = market_dialects(style_shingles, np.asarray(market_code, np.int64))
    groups = language_groups(style_shingles) * (int(dialect.max()) + 1 if n else 1) + dialect
    style, style_ev = evidence_profile(style_shingles, top_k=300, groups=groups)
    del style_shingles
    phrase_shingles = hashed_shingles(own, (1, 2, 3), digits="fold", mask=topic)
    del own
    phrasing, phrasing_ev = evidence_profile(phrase_shingles, top_k=600, groups=groups)
    # the same shingles held by fewer than 1% of the accounts, on their own: a pet
    # phrase, a habitual misspelling, boilerplate with its own carrier and hours. In
    # `phrasing` they are a small part of a large shared mass that strangers share too
    rare, rare_ev = evidence_profile(phrase_shingles, top_k=600, groups=groups,
                                     max_share=_RARE_SHARE)
    del phrase_shingles
    hgrams = tfidf(hashed_ngrams([f"^{k}$" for k in hkeys], (2, 3), n_features=2**18))

    start, end = _windows(con, index, n)
    active_start, active_end = _activity(con, index, n)
    origin, origin_region, dest = _shipping(con, index, n)
    idents, ident_values = _identifiers(con, index, n, hkeys)
    price_keys, price_mask = _prices(con, index, n)
    return Profiles(
        ids=ids, market=market, market_code=np.asarray(market_code), handle=handles,
        hkey=hkeys, style=style, phrasing=phrasing, rare_phrases=rare, products=products,
        feedback=feedback,
        handle_grams=hgrams,
        # style needs free text: titles alone are product names (the products signal
        # reads them), and lists of titles look alike whoever typed them
        has_style=has_free_text, has_products=has_products, has_feedback=has_feedback,
        start=start, end=end, origin=origin, dest=dest, idents=idents,
        ident_values=ident_values, price_keys=price_keys, price_mask=price_mask,
        index=index, skeleton=skels, hkey_count=_group_counts(hkeys),
        skeleton_count=_group_counts(skels), active_start=active_start,
        active_end=active_end, capitals=capitals, symbols=symbols,
        style_evidence=style_ev,
        phrasing_evidence=phrasing_ev, rare_evidence=rare_ev,
        origin_share=_value_shares(origin), origin_region=origin_region, claims=claims)


def _value_shares(codes: np.ndarray) -> np.ndarray:
    """Share of the accounts with a known value (code >= 0) that have each account's
    value; nan where unknown."""
    known = codes >= 0
    out = np.full(len(codes), np.nan)
    if known.any():
        cnt = np.bincount(codes[known])
        out[known] = cnt[codes[known]] / known.sum()
    return out


def _group_counts(values: list[str]) -> np.ndarray:
    """How many accounts share each account's value (empty values count as unique)."""
    cnt: dict[str, int] = {}
    for v in values:
        cnt[v] = cnt.get(v, 0) + 1
    return np.array([cnt[v] if v else 1 for v in values], dtype=np.int64)


# Text that is not writing: armoured PGP blocks (many vendors paste their public key
# into the profile), other base64 or hex runs (keys, signatures, addresses) and links
# (market invite and shop URLs are the market's wording, copied). Key fragments match
# other keys' fragments by chance, and URL paths match everyone who links the same
# market: both would read as shared style.
_BLOBS = re.compile(r"-----BEGIN PGP[^\n]*-----.*?(?:-----END PGP[^\n]*?-----|\Z)"
                    r"|[A-Za-z0-9+/]{40,}={0,2}"
                    r"|(?:https?://|www\.)\S+|\S*\b[a-z2-7]{16}(?:[a-z2-7]{40})?\.onion\S*",
                    re.S | re.I)


def strip_blobs(text: str) -> str:
    """``text`` without PGP blocks, long base64/hex runs and links."""
    low = text.lower()
    if ("-----begin" not in low and ".onion" not in low and "http" not in low
            and "www." not in low and not _LONG_RUN.search(text)):
        return text
    return _BLOBS.sub(" ", text)


_LONG_RUN = re.compile(r"[A-Za-z0-9+/]{40}")


def _texts(rows: Iterable[tuple[str, str | None]], index: dict[str, int],
           cap: int) -> list[str]:
    """One text per account of ``index`` from ``(account_id, text)`` rows, cut at
    ``cap``; empty where an account has none."""
    out = [""] * len(index)
    for aid, text in rows:
        i = index.get(aid)
        if i is not None and text:
            out[i] = text[:cap]
    return out


def _own_texts(con: duckdb.DuckDBPyConnection, index: dict[str, int],
               market: np.ndarray, handles: list[str]
               ) -> tuple[list[str], list[str], list[tuple[Claim, ...]]]:
    """Each account's vendor-written text with titles and without, keys and links
    stripped, cut at ``_TEXT_CAP``; and the claims of the text as written (links
    kept: a shop link's path names the handle, :mod:`darkmap.resolve.claims`) and of
    the market's verification lines."""
    own, prose = [""] * len(index), [""] * len(index)
    claims: list[tuple[Claim, ...]] = [()] * len(index)
    names = market_names(sorted({str(m) for m in market}))
    for aid, text, free in evidence.own_texts(con):
        i = index.get(aid)
        if i is not None:
            claims[i] = account_claims(text or "", str(market[i]), handles[i], names)
            own[i] = strip_blobs(text or "")[:_TEXT_CAP]
            prose[i] = strip_blobs(free or "")[:_TEXT_CAP]
    lines: dict[int, list[str]] = {}
    for aid, line in evidence.account_verifications(con):
        i = index.get(aid)
        if i is not None:
            lines.setdefault(i, []).append(line)
    for i, said in lines.items():
        more = verification_claims(said, str(market[i]), handles[i], names)
        have = {(c.market, c.handle) for c in claims[i]}
        claims[i] = (claims[i] + tuple(c for c in more
                                       if (c.market, c.handle) not in have))[:MAX_CLAIMS]
    return own, prose, claims


def _days(ts: datetime | None) -> float:
    """Days since 1970 of a timestamp, nan for None."""
    return float(np.datetime64(ts, "D").astype(np.int64)) if ts is not None else np.nan


def _windows(con: duckdb.DuckDBPyConnection, index: dict[str, int],
             n: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last day of any evidence of each account."""
    return _day_ranges(evidence.evidence_windows(con), index, n)


def _activity(con: duckdb.DuckDBPyConnection, index: dict[str, int],
              n: int) -> tuple[np.ndarray, np.ndarray]:
    """First (joined or first feedback) and last (last feedback) day of activity."""
    return _day_ranges(evidence.activity_spans(con), index, n)


def _day_ranges(rows: Iterable[tuple[str, datetime | None, datetime | None]],
                index: dict[str, int], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per account, the (first, last) day of ``(account_id, lo, hi)`` rows."""
    start = np.full(n, np.nan)
    end = np.full(n, np.nan)
    for aid, lo, hi in rows:
        i = index.get(aid)
        if i is not None:
            start[i], end[i] = _days(lo), _days(hi)
    return start, end


_WORLDWIDE = frozenset({"worldwide", "world", "ww", "worlwide", "international",
                        "internationalworldwide", "everywhere", "allcountries", "global"})
_EUROPE = frozenset({"eu", "europe", "europeanunion", "europeeu", "europeanunioneu",
                     "euonly", "europeonly"})
_ONLY = re.compile(r"\bonly\b", re.IGNORECASE)
# origins that name no place: an account with one has no known origin
_NO_ORIGIN = frozenset({"worldwide", "undeclared", "unknown", "internet", "online",
                        "digital", "none", "na", "notspecified", "various", "other"})
# "USA To: Worldwide": the origin is what comes before the destinations
_TO = re.compile(r"\s+to\s*:", re.IGNORECASE)
# European countries (EU, EEA, the UK, Switzerland, the Balkans): an account shipping
# from one of them does not disagree with one that names "EU" or "Europe", as
# vendors write the one for the other
_EUROPE_CODES = frozenset({
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
    "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "GB",
    "NO", "IS", "LI", "CH", "AL", "BA", "ME", "MK", "RS", "XK", "MD", "UA", "AD", "MC",
    "SM", "VA"})


@lru_cache(maxsize=4096)
def _country(v: str | None) -> str:
    """One name per place, whichever way a market or a vendor wrote it: an ISO code
    ("USA", "United States", "USA only" -> "US"), "worldwide", "eu", else the letters."""
    code = country_code(_ONLY.sub(" ", v or "").strip())
    if code:
        return code
    key = re.sub(r"[^a-z]", "", (v or "").casefold())[:40]
    if key in _WORLDWIDE:
        return "worldwide"
    return "eu" if key in _EUROPE else key


def _origin(v: str | None) -> str:
    """An origin as a place (an ISO code, "eu"), or "" when it names none: "Worldwide",
    "WW", "Undeclared", "Internet" say nothing about where a vendor ships from.
    "USA To: Worldwide" is "US"."""
    c = _country(_TO.split(v or "", maxsplit=1)[0])
    return "" if c in _NO_ORIGIN else c


def _shipping(con: duckdb.DuckDBPyConnection, index: dict[str, int],
              n: int) -> tuple[np.ndarray, np.ndarray, sp.csr_matrix]:
    """Per account its main origin's code (-1 unknown) and the code of the region its
    origin lies in (-1 none: "eu" for a European country, when some account names
    "eu"), and the binary account x destination matrix."""
    origin = np.full(n, -1, dtype=np.int64)
    codes: dict[str, int] = {}
    places: list[str] = [""] * n
    for aid, s in evidence.main_origins(con):
        i = index.get(aid)
        c = _origin(s)
        if i is not None and c:
            origin[i] = codes.setdefault(c, len(codes))
            places[i] = c
    eu = codes.get("eu", -1)
    region = np.array([eu if c in _EUROPE_CODES else -1 for c in places], dtype=np.int64)
    rows, cols = [], []
    dcodes: dict[str, int] = {}
    for aid, s in evidence.destinations(con):
        i = index.get(aid)
        c = _country(s)
        if i is not None and c:
            rows.append(i)
            cols.append(dcodes.setdefault(c, len(dcodes)))
    dest = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)),
                         shape=(n, max(1, len(dcodes))))
    dest.data[:] = 1.0
    return origin, region, dest


def placeholder_address(value: str) -> bool:
    """True for an address that names no one: the local part repeats the domain
    (``you@you.com``, ``email@email.com``) or is a form's placeholder word
    (``yourname@...``), or the domain is reserved for documentation (``example.com``,
    ``*.test``)."""
    local, at, domain = value.strip().casefold().rpartition("@")
    if not at or not local:
        return False
    label = domain.split(".", 1)[0]
    return (local == label or local in _PLACEHOLDER_LOCAL or domain in _DOC_DOMAINS
            or domain.endswith(_DOC_TLDS))


# An onion that is a service, not a vendor's own: a mixer, tumbler, escrow, forum, wiki,
# search engine, mail service or market. Told by its host (services pick a vanity
# prefix: bitmixer2whesjgj, thehub7gqe43miyc) or by the words just before it in the text
# ("a service like Bitmixer http://...", "REVIEW THREAD: http://...", "Wall Street
# Market: http://..."). Words of four letters or more only: a three-letter word turns
# up by chance in a random 56-letter host
_SERVICE_HOST = re.compile(r"mixer|tumbl|escrow|forum|wiki|search|market|thehub|grams|"
                           r"mail|laundr", re.IGNORECASE)
_SERVICE_WORDS = re.compile(
    r"(?:mix(?:er|ing)?|tumbl\w{0,5}|laund\w{0,5}|escrow|forum|wiki|search|"
    r"market(?:place)?|thread|topic|tutorial|invite|invitation|referral|register|"
    r"affiliate|hub)\b", re.IGNORECASE)
_BEFORE = 40  # characters before an onion read for the words above


def service_onion(host: str, before: str) -> bool:
    """True when the onion ``host`` is a service (mixer, forum, market...), by its host
    or by the words of the text ``before`` it (its last 40 characters)."""
    return bool(_SERVICE_HOST.search(host[:16]) or _SERVICE_WORDS.search(before[-_BEFORE:]))


def _services(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """The onion hosts :func:`service_onion` finds a service in any text naming them."""
    out = set()
    for host, context in evidence.onion_contexts(con):
        at = context.casefold().find(host)
        if service_onion(host, context[:at] if at >= 0 else ""):
            out.add(host)
    return frozenset(out)


def _sites(con: duckdb.DuckDBPyConnection) -> frozenset[str]:
    """Onion hosts that are sites, not a vendor's: the markets' own (their stated onion,
    the hosts of the pages read), the mail hosts of the e-mail addresses seen, and the
    services (:func:`service_onion`)."""
    hosts = set(evidence.site_hosts(con)) | _services(con)
    hosts.update(v.rpartition("@")[2].casefold()
                 for _, kind, v in evidence.account_identifiers(con)
                 if kind in ("email", "jabber") and "@" in v)
    return frozenset(hosts)


def _not_own(values: list[str], rows: list[int], cols: list[int], hkeys: list[str],
             sites: frozenset[str]) -> np.ndarray:
    """Per contact value, True when it cannot be one vendor's own contact.

    * a placeholder address (:func:`placeholder_address`);
    * an onion of a market (its template's onion or detected domain, a page's host), a
      mail host, or a service (a mixer, forum, search engine...: :func:`service_onion`);
    * an onion named by accounts of more than one handle (normalised key): a market,
      forum or service that unrelated vendors point their buyers to (Acropolis, The
      Hub, temp.pm). A vendor's own site is named by his own accounts only.
    """
    names: list[set[str]] = [set() for _ in values]
    for r, c in zip(rows, cols, strict=True):
        names[c].add(hkeys[r] or str(r))
    markets = market_names()  # the templates' onions and the domains they detect
    out = np.zeros(len(values), dtype=bool)
    for c, v in enumerate(values):
        out[c] = _why_not_own(v, len(names[c]), sites, markets) is not None
    return out


def _why_not_own(value: str, handles: int, sites: frozenset[str],
                 markets: MarketNames) -> str | None:
    """Why the contact ``value`` (``kind:value``, case-folded) named by accounts of
    ``handles`` different handles cannot be one vendor's own (:func:`_not_own`), or
    ``None`` when it may be."""
    kind, _, host = value.partition(":")
    if kind != "onion":
        return "a placeholder address" if placeholder_address(host) else None
    market = markets.of_host(host)
    if market is not None:
        return f"the onion of the market {market}"
    if host in sites:
        return ("the onion of a market, a mail host or a service (a mixer, forum, search "
                "engine...)")
    if handles > 1:
        return (f"named by accounts of {handles} different handles: a market's or a "
                "service's onion")
    return None


def not_own_values(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The identifier values the linker never compares as one vendor's own, keyed as it
    keys them (``kind:value``, the value stripped and case-folded), each with why: a
    contact that cannot be one vendor's (:func:`_not_own`: a market's or a service's
    onion, an onion named by accounts of several handles, a placeholder address), and
    any value on more accounts than :data:`_MAX_IDENT_HOLDERS` (a market's onion, a
    search engine, a hot wallet). For the exports: such a value is no vendor's
    selector (exports audit, finding 2)."""
    handles = {aid: handle for aid, _, handle in evidence.account_handles(con)}
    holders: dict[str, set[str]] = {}
    for aid, kind, value in evidence.account_identifiers(con):
        holders.setdefault(f"{kind}:{str(value).strip().casefold()}", set()).add(aid)
    sites, markets = _sites(con), market_names()
    contact = set(IDENTIFIER_GROUPS["contact"])
    out: dict[str, str] = {}
    for v, aids in sorted(holders.items()):
        keys = {handle_key(handles.get(a) or "") or a for a in aids}
        why = (_why_not_own(v, len(keys), sites, markets)
               if v.partition(":")[0] in contact else None)
        if why is None and len(aids) > _MAX_IDENT_HOLDERS:
            why = f"on {len(aids)} accounts: shared, no one vendor's own"
        if why is not None:
            out[v] = why
    return out


def _identifiers(con: duckdb.DuckDBPyConnection, index: dict[str, int], n: int,
                 hkeys: list[str] | None = None
                 ) -> tuple[dict[str, sp.csr_matrix], dict[str, list[str]]]:
    """Per identifier group, a binary account x value matrix (values on too many
    accounts, and contacts that cannot be a vendor's own, zeroed) and the value names
    of its columns."""
    by_group: dict[str, tuple[list[int], list[int], dict[str, int]]] = {
        g: ([], [], {}) for g in IDENTIFIER_GROUPS}
    kind_group = {k: g for g, ks in IDENTIFIER_GROUPS.items() for k in ks}
    for aid, kind, value in evidence.account_identifiers(con):
        i = index.get(aid)
        g = kind_group.get(kind)
        if i is None or g is None:
            continue
        v = f"{kind}:{str(value).strip().casefold()}"
        rows, cols, vocab = by_group[g]
        rows.append(i)
        cols.append(vocab.setdefault(v, len(vocab)))
    mats, values = {}, {}
    for g, (rows, cols, vocab) in by_group.items():
        m = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)),
                          shape=(n, max(1, len(vocab))))
        m.data[:] = 1.0
        # a value on many accounts is not one person's: a market's onion or invite
        # link, a search engine, a hot wallet. It is kept for display, not compared.
        holders = np.bincount(m.indices, minlength=m.shape[1])
        m.data[holders[m.indices] > _MAX_IDENT_HOLDERS] = 0.0
        names = [""] * len(vocab)
        for v, c in vocab.items():
            names[c] = v
        if g == "contact" and vocab:
            keys = hkeys if hkeys is not None else [str(r) for r in range(n)]
            m.data[_not_own(names, rows, cols, keys, _sites(con))[m.indices]] = 0.0
        m.eliminate_zeros()
        mats[g] = m
        values[g] = names
    return mats, values


def _prices(con: duckdb.DuckDBPyConnection, index: dict[str, int],
            n: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Mean log unit price (plus an offset) per (product word, unit) per account."""
    rows, cols, vals = [], [], []
    vocab: dict[str, int] = {}
    for aid, title, price, cur in evidence.priced_titles(con):
        i = index.get(aid)
        if i is None:
            continue
        pr = _price_rows(title, price, cur)
        if pr is None:
            continue
        unit, lp = pr
        words = set(_WORD.findall(title.casefold())) - {"grams", "gram", "pills", "tabs"}
        # in order: a set's order changes with each process's string hashing, and the
        # columns' order with it (and so the order in which a pair's price gaps are summed)
        for w in sorted(words):
            rows.append(i)
            cols.append(vocab.setdefault(f"{w}/{unit}", len(vocab)))
            vals.append(lp + _PRICE_OFFSET)
    shape = (n, max(1, len(vocab)))
    sums = sp.csr_matrix((np.array(vals, np.float64), (rows, cols)), shape=shape)
    cnt = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=shape)
    mean = sums.copy()
    if cnt.nnz:
        mean.data = sums.data / cnt.data  # same sparsity pattern after sum_duplicates
    mask = cnt.copy()
    mask.data[:] = 1.0
    return mean.tocsr(), mask.tocsr()
