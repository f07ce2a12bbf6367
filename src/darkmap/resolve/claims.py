"""Claims: the (market, handle) pairs an account says it holds elsewhere.

A vendor's own text often names its shop on another market: a link to it
(``hansamkt2rr6nfg3.onion/vendor/TheHappyCrew``) or a plain statement ("i'm on Agora,
HANSA", "seller on Dreammarket, Alphabay"). A link names the handle in its path; a
statement without a name means the account's own handle on that market. A claim
*agrees* with a pair when the other account is on the claimed market with the claimed
handle, compared up to case and separators as the handle signal compares
(:func:`darkmap.resolve.normalise.handle_skeleton`). docs/linking.md, "Claims".

The text is written by the people under investigation: every pattern here is bounded
(no nested repetition), a claimed handle longer than :data:`MAX_HANDLE` or outside the
characters a handle is written with is no claim, and at most :data:`MAX_CLAIMS` claims
of an account are kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

from darkmap.extract.engine import load_templates
from darkmap.resolve.normalise import handle_skeleton

__all__ = ["BRIEF", "MAX_CLAIMS", "MAX_HANDLE", "Claim", "MarketNames", "account_claims",
           "market_names", "verification_claims"]

MAX_CLAIMS = 8     # claims kept per account (the first in text order)
BRIEF = 34         # characters of a claim in a stored link's level (Claim.brief)
MAX_HANDLE = 40    # characters of a claimed handle, after %-escapes are read
_MAX_TEXT = 20_000  # characters of an account's text searched
_EXCERPT = 80      # characters of the claim kept to show
_MIN_NAME = 3      # letters of a market name (before "market" is dropped)

# a shop link: an onion host and a path or query naming the vendor
# (/vendor/NAME, /user/NAME, user.php?id=NAME, ?page=profile&user=NAME)
_SHOP = re.compile(
    r"\b([a-z2-7]{16}(?:[a-z2-7]{40})?\.onion)"
    r"/(?:(?:vendor|user|seller|profile|shop|store|u|v)/([^\s/?#&\"'<>()\[\]]{1,200})"
    r"|[a-z_.]{0,20}\?(?:[a-z_]{1,12}=[^\s&#\"'<>]{0,40}&){0,3}"
    r"(?:id|user|vendor|seller|member)=([^\s&#\"'<>()\[\]]{1,200}))",
    re.IGNORECASE)
# a first-person statement: "i'm on", "we are also on", "seller on", "vendor on" ("were
# on", without the apostrophe, is no claim: "we never were on Hansa"),
# followed by the list of markets up to the end of the sentence or line
_SAYS = re.compile(
    r"(?:\b(?:i['’]?m|i\s+am|we['’]re|we\s+are)"
    r"(?:\s+(?:also|currently|now|active|selling|vending|a|an|trusted|seller|vendor)){0,3}"
    r"|\b(?:seller|vendor))\s+on\s+([^\n.;!?:()]{1,120})",
    re.IGNORECASE)
# words just before a statement that make it a warning or a denial, not a claim: "beware
# of the fake seller on Hansa", "not a vendor on Dream"
_DENIAL = re.compile(r"\b(?:fake|scam\w{0,4}|impost\w{0,4}|beware|clone\w?|cop(?:y|ies|ycat)"
                     r"|not|never|no|don'?t|isn'?t)\b", re.IGNORECASE)
_DENIAL_SPAN = 30  # characters before a statement read for such words
# a market's verification line: "Dream: 34000 deals, 4.82/5", "Hansa: 3549/2/2"
_VERIFIED = re.compile(r"\s*([^:\n]{1,40}):\s*\S")
_LIST_SEP = re.compile(r"\s*(?:,|/|&|\+|\band\b|\bor\b)\s*", re.IGNORECASE)
# the characters a handle is written with, on every market read (letters of any
# script, digits, separators): anything else in a link's path is not a name
_HANDLE_CHARS = re.compile(r"[\w.\-~]{1,40}")
_MARKET_WORD = re.compile(r"(?:market|mkt|marketplace)$")


@dataclass(frozen=True)
class Claim:
    """That the account holds ``handle`` (its skeleton, :func:`handle_skeleton`) on
    ``market``; ``said`` is what it wrote (cut, every unprintable character escaped),
    for the explanation; ``kind`` is "shop link", "statement" or "market verification"
    (the market's own line saying where else it verified the vendor)."""

    market: str
    handle: str
    said: str
    kind: str = "shop link"

    def wording(self, account: str) -> str:
        """The claim as an explanation says it, ``account`` being the claimer."""
        if self.kind == "market verification":
            return f'{account}\'s market verified it on {self.market}: "{self.said}"'
        if self.kind == "shop link":
            return f"{account}'s own text links its shop {self.said}"
        return f'{account}\'s own text says "{self.said}"'

    def brief(self) -> str:
        """The claim in at most :data:`BRIEF` characters, for a line of ``persona
        show``: "hansa shop Toys-R-Us", "verified: "Dream: 34000 deals, 4.82/5""."""
        if self.kind == "shop link":
            name = re.split(r"[/=]", self.said.rstrip("/"))[-1]
            text = f"{self.market} shop {name}"
        elif self.kind == "market verification":
            text = f'verified: "{self.said}"'
        else:
            text = f'says "{self.said}"'
        return text if len(text) <= BRIEF else text[:BRIEF - 3] + "..."


@dataclass(frozen=True)
class MarketNames:
    """How a market is named in text: onion host patterns and names, each to its id."""

    hosts: tuple[tuple[re.Pattern[str], str], ...]
    names: dict[str, str]

    def of_host(self, host: str) -> str | None:
        """The market id of an onion ``host``, or None."""
        for pattern, market in self.hosts:
            if pattern.fullmatch(host):
                return market
        return None

    def of_name(self, name: str) -> str | None:
        """The market id ``name`` stands for ("HANSA", "Hansamarket", "Dream Market"),
        or None."""
        key = re.sub(r"[^a-z0-9]", "", name.casefold())[:40]
        key = _MARKET_WORD.sub("", key) or key
        return self.names.get(key) if len(key) >= _MIN_NAME else None


@lru_cache(maxsize=1)
def _template_markets() -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """``(host pattern, market id)`` and ``(name, market id)`` of every market template."""
    hosts: list[tuple[str, str]] = []
    names: list[tuple[str, str]] = []
    for tpl in load_templates():
        if tpl.onion:
            hosts.append((re.escape(tpl.onion.casefold()), tpl.market))
        hosts.extend((d, tpl.market) for d in _domains(tpl.detect))
        names.extend([(tpl.market, tpl.market), (tpl.name, tpl.market)])
    return tuple(hosts), tuple(names)


def _domains(rules: Any) -> Iterable[str]:
    """Every ``domain:`` pattern in a template's (nested) detection rules."""
    if isinstance(rules, dict):
        for k, v in rules.items():
            if k == "domain" and isinstance(v, str):
                yield v
            else:
                yield from _domains(v)
    elif isinstance(rules, list):
        for r in rules:
            yield from _domains(r)


def market_names(markets: Iterable[str] = ()) -> MarketNames:
    """The markets the templates know, by onion and by name, and ``markets`` (the
    workspace's market ids, such as a dataset's ``agora``) by name."""
    host_rules, name_rules = _template_markets()
    hosts = tuple((re.compile(p, re.IGNORECASE), m) for p, m in host_rules)
    names: dict[str, str] = {}
    for name, market in [*name_rules, *((m, m) for m in markets)]:
        key = re.sub(r"[^a-z0-9]", "", name.casefold())
        key = _MARKET_WORD.sub("", key) or key
        if len(key) >= _MIN_NAME:
            names.setdefault(key, market)
    return MarketNames(hosts, names)


def _handle(raw: str) -> str:
    """The skeleton of a handle written in a link's path (%-escapes read), or "" when
    it is too long or not a name."""
    if len(raw) > 3 * MAX_HANDLE:
        return ""
    name = unquote(raw, errors="replace").strip("/ ")
    if not _HANDLE_CHARS.fullmatch(name):
        return ""
    return handle_skeleton(name)


def _excerpt(text: str, start: int, end: int) -> str:
    """The claim as written, on one line, cut to :data:`_EXCERPT` characters, every
    unprintable character (controls, bidi overrides, zero-width) escaped."""
    line = " ".join(text[start:min(end, start + _EXCERPT)].split())
    return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in line)


def account_claims(text: str, market: str, handle: str,
                   names: MarketNames) -> tuple[Claim, ...]:
    """The claims in an account's own ``text`` (on ``market``, under ``handle``): shop
    links to another market, and first-person statements naming other markets. A claim
    of the account's own market, or of a market no template or workspace knows, is
    none. At most :data:`MAX_CLAIMS`, in text order, each (market, handle) once."""
    text = text[:_MAX_TEXT]
    own = handle_skeleton(handle)
    found: list[tuple[int, Claim]] = []
    for m in _SHOP.finditer(text):
        where = names.of_host(m.group(1).casefold())
        name = _handle(m.group(2) or m.group(3) or "")
        if where and where != market and name:
            found.append((m.start(), Claim(where, name, _excerpt(text, m.start(), m.end()))))
    for m in _SAYS.finditer(text):
        if not own:
            break
        if _DENIAL.search(text[max(0, m.start() - _DENIAL_SPAN):m.start()]):
            continue
        for part in _LIST_SEP.split(m.group(1))[:MAX_CLAIMS]:
            where = names.of_name(part)
            if where and where != market:
                said = _excerpt(text, m.start(), m.end())
                found.append((m.start(), Claim(where, own, said, "statement")))
    out: dict[tuple[str, str], Claim] = {}
    for _, c in sorted(found, key=lambda x: x[0]):
        out.setdefault((c.market, c.handle), c)
        if len(out) >= MAX_CLAIMS:
            break
    return tuple(out.values())


def verification_claims(lines: Iterable[str], market: str, handle: str,
                        names: MarketNames) -> tuple[Claim, ...]:
    """The claims of a market's verification ``lines`` of an account (on ``market``,
    under ``handle``): "Dream: 34000 deals, 4.82/5" is the account's own handle on Dream.
    A line naming the account's own market, or no market known, is none; at most
    :data:`MAX_CLAIMS`, each market once."""
    own = handle_skeleton(handle)
    out: dict[str, Claim] = {}
    for line in lines:
        m = _VERIFIED.match(line[:_MAX_TEXT])
        where = names.of_name(m.group(1)) if m and own else None
        if where and where != market:
            said = _excerpt(line, 0, len(line))
            out.setdefault(where, Claim(where, own, said, "market verification"))
        if len(out) >= MAX_CLAIMS:
            break
    return tuple(out.values())
