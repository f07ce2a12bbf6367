"""A market's crawl plan: which links of its pages lead where, and canonical URLs.

One YAML file per market layout in ``collect/crawl_plans/`` (docs/crawling.md shows how
to write one) names the markets it covers (the ``market`` ids of their page templates)
and, per kind of page the crawl can follow (``categories``, ``listings``, ``vendors``,
``feedback``), the CSS selectors of the links that lead to such pages. ``pager`` rules
turn a page's "Page 2 of 7" into the URL of its next page (the same kind as the page);
``derive`` rules add a URL the market builds from the page's own URL (a vendor's review
pages). The crawl follows only the kinds its ``--plan`` names, and only links to the
market's own onion addresses: never a form, a log-out, an order or a message link.
A redirect is followed only to a URL that passes the same check
(:meth:`CrawlPlan.redirect_target`): on the market, a link rule of a followed kind
matching it, and naming no action the crawler never takes (log out, order, message...).

URLs are made canonical before they enter the frontier (:meth:`CrawlPlan.canonical`):
the market's canonical onion for every mirror, lower-case scheme and host, no fragment,
query parameters sorted, session and tracking parameters dropped, a parameter at its
default value (``page=1``) dropped; so a page is fetched once whatever link reached it.

The parsers (YAML, selectolax, the page decoder, which loads numpy) are imported where a
plan is read or a page parsed: ``darkmap crawl --help`` reads :data:`KINDS` only.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit, urlunsplit

from darkmap.errors import BadInputError, LimitExceeded

if TYPE_CHECKING:
    from selectolax.lexbor import LexborHTMLParser

__all__ = ["ACTION_WORDS", "KINDS", "CrawlPlan", "Link", "authority", "load_plan", "plan_dir",
           "plans"]

KINDS = ("categories", "listings", "vendors", "feedback")
"""The kinds of page a plan may follow, in the order ``--plan`` lists them."""
_MAX_URL = 2048  # characters of a URL taken from a page
_MAX_LINKS = 5000  # links read from one page
_MAX_PAGES = 100_000  # a pager's "of N" above this is not believed
ACTION_WORDS = re.compile(
    r"(?i)(?<![a-z])(log[-_]?(?:out|off)|sign[-_]?(?:out|off)|orders?|buy|checkout|cart|"
    r"basket|purchase|pay(?:ment)?|messages?|compose|inbox|wallet|withdraw|deposit|"
    r"delete|remove|confirm|send|settings|password)(?![a-z])")
"""Words of a URL (its path and query) that name an action, not a page: a redirect to
such a URL is never followed, whatever the plan (a market redirecting a listing to
``logout.php`` or ``order.php?buy=1&confirm=yes`` once had the crawler request it)."""


@dataclass(frozen=True)
class Link:
    """A URL found on a page: canonical form, kind of page it leads to, and whether it
    is the page's next page (a pager's: it does not count as one more level of depth)."""

    url: str
    kind: str
    next_page: bool = field(default=False, compare=False)


@dataclass
class CrawlPlan:
    """The crawl plan of one or more markets (see the module docstring)."""

    markets: tuple[str, ...]
    links: dict[str, list[str]]
    pager: list[dict[str, Any]] = field(default_factory=list)
    derive: list[dict[str, Any]] = field(default_factory=list)
    drop_params: frozenset[str] = frozenset()
    default_params: dict[str, str] = field(default_factory=dict)
    path: str = ""

    def canonical(self, url: str, host: str) -> str | None:
        """``url`` in canonical form with ``host`` as its host; None when not http(s)."""
        parts = urlsplit(url.strip())
        if parts.scheme.lower() not in ("http", "https"):
            return None
        query = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                       if k.lower() not in self.drop_params
                       and self.default_params.get(k) != v)
        path = quote(_dot_segments(parts.path) or "/", safe="/%:@!$&'()*+,;=-._~")
        return urlunsplit(("http", host.lower(), path, urlencode(query), ""))

    def resolve(self, raw: str, page_url: str, hosts: Iterable[str], host: str) -> str | None:
        """The canonical URL of a link ``raw`` on ``page_url``; None when it leaves the
        market's ``hosts`` (or is too long, or not http)."""
        if len(raw) > _MAX_URL:
            return None
        try:
            absolute = urljoin(page_url, raw.strip())
            if not _on_market(absolute, hosts):
                return None
            return self.canonical(absolute, host)
        except ValueError:  # "http://[::1/x", a bad port: no URL (found by fuzzing: such a
            return None     # link stopped the crawl, and its resume, for good)

    def redirect_target(self, location: str, page_url: str, kind: str, follow: Iterable[str],
                        hosts: Iterable[str], host: str) -> tuple[Link | None, str]:
        """Where a redirect from ``page_url`` (a page of ``kind``) to ``location`` may
        lead the crawl: (the link, "") or (None, why not).

        The same check as a link of a page: on the market's ``hosts``; one of the plan's
        link rules of a kind the crawl follows matches it (the rule tried on an ``<a>``
        holding the URL as its ``href``, as the Location gave it, absolute, and as a path;
        a rule that needs more than the ``href``, a class or a parent, matches no
        redirect), or it is the same page (the same path: ``/x`` to ``/x/``, another
        query) or the start page's redirect; and it names no action (:data:`ACTION_WORDS`).
        """
        if not location.strip():
            return None, "no Location"
        canon = self.resolve(location, page_url, hosts, host)
        if canon is None:
            return None, "not an http URL on the market's onions"
        parts = urlsplit(canon)
        action = ACTION_WORDS.search(f"{parts.path}?{parts.query}")
        if action is not None:
            return None, (f"it names an action ({action.group(0)!r}); the crawler never "
                          "logs out, orders, messages or pays")
        if kind == "start" or urlsplit(self.canonical(page_url, host) or "").path.rstrip(
                "/") == parts.path.rstrip("/"):
            return Link(canon, kind), ""
        absolute = urljoin(page_url, location.strip())
        rel = parts.path + (f"?{parts.query}" if parts.query else "")
        to = self._kind_of_href((location.strip(), absolute, canon, rel, rel.lstrip("/")),
                                follow)
        if to is None:
            return None, ("no link rule of the plan's followed kinds "
                          f"({', '.join(k for k in KINDS if k in set(follow))}) matches it")
        return Link(canon, to), ""

    def _kind_of_href(self, hrefs: Iterable[str], follow: Iterable[str]) -> str | None:
        """The first followed kind one of whose link rules matches an ``<a>`` holding one
        of ``hrefs``; None when none does."""
        from selectolax.lexbor import LexborHTMLParser  # noqa: PLC0415 - see the docstring

        anchors = "".join(f'<a href="{html.escape(h, quote=True)}">x</a>' for h in hrefs)
        tree = LexborHTMLParser(f"<html><body>{anchors}</body></html>")
        wanted = set(follow)
        for to, selectors in self.links.items():
            if to in wanted and any(tree.css(sel) for sel in selectors):
                return to
        return None

    def links_of(self, body: bytes, page_url: str, kind: str, follow: Iterable[str],
                 hosts: Iterable[str], host: str) -> list[Link]:
        """The links of a page (fetched as ``page_url``, of ``kind``) the crawl follows.

        ``follow``: the kinds the crawl's plan names; ``hosts``: every onion of the
        market (links elsewhere are ignored); ``host``: the canonical one.
        """
        from selectolax.lexbor import LexborHTMLParser  # noqa: PLC0415 - see the docstring

        from darkmap.extract.decode import decode_page  # noqa: PLC0415
        from darkmap.extract.nesting import check_page_nesting  # noqa: PLC0415

        wanted = set(follow)
        own = {h.lower() for h in hosts}
        text = decode_page(body).text
        try:
            check_page_nesting(text)
        except LimitExceeded:
            return []  # the engine quarantines such a page; no links are read from it
        tree = LexborHTMLParser(text)
        out: dict[str, Link] = {}

        def add(raw: str, to: str, next_page: bool = False) -> None:
            if len(out) >= _MAX_LINKS:
                return
            canon = self.resolve(raw, page_url, own, host)
            if canon is not None and canon not in out:
                out[canon] = Link(canon, to, next_page)

        for to, selectors in self.links.items():
            if to not in wanted:
                continue
            for sel in selectors:
                for node in tree.css(sel):
                    href = node.attributes.get("href")
                    if href:
                        add(href, to)
        if kind in wanted or kind == "start":
            for url in self._pages_after(tree, page_url):
                add(url, kind, next_page=True)
        for rule in self.derive:
            if rule["from"] == kind and rule["kind"] in wanted and _holds(rule, tree):
                add(page_url.split("?", 1)[0].rstrip("/") + rule["append"], rule["kind"])
        return list(out.values())

    def _pages_after(self, tree: LexborHTMLParser, page_url: str) -> list[str]:
        """The next page's URL when a pager rule reads "page N of M" with N < M."""
        urls = []
        for rule in self.pager:
            node = tree.css_first(rule["css"])
            if node is None:
                continue
            m = re.search(rule["regex"], node.text(deep=True)[:200])
            if m is None:
                continue
            page, pages = int(m.group(1)), int(m.group(2))
            if page < pages <= _MAX_PAGES:
                urls.append(_with_param(page_url, rule["param"], str(page + 1)))
        return urls


def authority(url: str) -> str:
    """The host of absolute ``url`` with its port when not the scheme's default
    (``x.onion:8080``; ``x.onion`` for port 80 of http): another port is another service,
    so the market's addresses, the requests and the stored URLs keep it. Raises
    ``ValueError`` on a bad port."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return host if port is None or port == default else f"{host}:{port}"


def _on_market(url: str, hosts: Iterable[str]) -> bool:
    """Whether absolute ``url`` is on one of the market's ``hosts`` (port included)."""
    return authority(url) in {h.lower() for h in hosts}


def _holds(rule: dict[str, Any], tree: LexborHTMLParser) -> bool:
    """A derive rule's condition: its ``css`` element's text matches its ``regex``."""
    if "css" not in rule:
        return True
    node = tree.css_first(rule["css"])
    return node is not None and re.search(rule.get("regex", "."), node.text()[:200]) is not None


def _with_param(url: str, name: str, value: str) -> str:
    """``url`` with query parameter ``name`` set to ``value``."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    query.append((name, value))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def _dot_segments(path: str) -> str:
    """``path`` with ``.`` and ``..`` segments resolved (RFC 3986, 5.2.4)."""
    out: list[str] = []
    for seg in path.split("/"):
        if seg == "..":
            if len(out) > 1:
                out.pop()
        elif seg != ".":
            out.append(seg)
    return "/".join(out)


def plan_dir() -> Path:
    """The folder of the shipped crawl plans."""
    return Path(__file__).with_name("crawl_plans")


def _selectors(spec: Any, where: str) -> list[str]:
    items = spec if isinstance(spec, list) else [spec]
    out = []
    for it in items:
        css = it.get("css") if isinstance(it, dict) else it
        if not isinstance(css, str) or not css:
            raise BadInputError(f"{where}: a link rule needs a css selector")
        out.append(css)
    return out


def load_plan(path: Path) -> CrawlPlan:
    """Read one plan file; a malformed one raises ``BadInputError`` naming the field."""
    import yaml  # noqa: PLC0415 - see the module docstring

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise BadInputError(f"{path}: cannot read crawl plan: {exc}") from exc
    if not isinstance(raw, dict) or not raw.get("markets"):
        raise BadInputError(f"{path}: a crawl plan needs `markets` (template market ids)")
    links = {k: _selectors(v, f"{path}: links.{k}") for k, v in (raw.get("links") or {}).items()}
    unknown = sorted(set(links) - set(KINDS))
    if unknown:
        raise BadInputError(f"{path}: links: unknown kind {unknown[0]!r} (have {', '.join(KINDS)})")
    for i, rule in enumerate(raw.get("pager") or []):
        for key in ("css", "regex", "param"):
            if key not in rule:
                raise BadInputError(f"{path}: pager[{i}] needs `{key}`")
    for i, rule in enumerate(raw.get("derive") or []):
        for key in ("from", "kind", "append"):
            if key not in rule:
                raise BadInputError(f"{path}: derive[{i}] needs `{key}`")
    canon = raw.get("canonical") or {}
    return CrawlPlan(
        markets=tuple(str(m) for m in raw["markets"]), links=links,
        pager=list(raw.get("pager") or []), derive=list(raw.get("derive") or []),
        drop_params=frozenset(str(p).lower() for p in canon.get("drop_params") or ()),
        default_params={str(k): str(v) for k, v in (canon.get("default_params") or {}).items()},
        path=str(path))


def plans(extra_dirs: Iterable[Path] = ()) -> dict[str, CrawlPlan]:
    """Every plan by market id: the shipped ones, then those of ``extra_dirs``."""
    out: dict[str, CrawlPlan] = {}
    for folder in (plan_dir(), *extra_dirs):
        for path in sorted(Path(folder).glob("*.yaml")):
            plan = load_plan(path)
            for m in plan.markets:
                out[m] = plan
    return out
