"""The page-template engine: one engine, one declarative YAML template per market layout.

A template (``templates/<market>.yaml``, format in ``docs/adding-a-market.md``) says how
to recognise the market, which of its pages to skip and why, and for each page type
which CSS selectors, label look-ups and regexes give each record field. The engine
applies templates to decoded, script-free HTML and returns plain records; it knows no
market by name. Adding a market is a new YAML file, never code here.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import MISSING, dataclass, field, fields
from datetime import UTC, datetime
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import yaml
from selectolax.lexbor import LexborHTMLParser, LexborNode, SelectolaxError

from darkmap.errors import BadInputError, LimitExceeded
from darkmap.extract.decode import DEFAULT_MAX_BYTES, decode_page
from darkmap.extract.identifiers import scan_text
from darkmap.extract.nesting import check_page_nesting
from darkmap.extract.parse import (
    clean_text,
    parse_date,
    parse_float,
    parse_int,
    parse_price,
    parse_within,
)
from darkmap.model.limits import MAX_FIELD_CHARS, cap_text
from darkmap.model.openpgp import crc24
from darkmap.model.records import (
    AccountRecord,
    CutRecord,
    FeedbackCounts,
    FeedbackRecord,
    ListingRecord,
    MarketRecord,
    QuarantineRecord,
    Record,
    SkipRecord,
)

_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present

__all__ = [
    "Page",
    "PageResult",
    "Template",
    "TemplateError",
    "cut_short",
    "detect_market",
    "extract_page",
    "load_templates",
    "template_dir",
]

_STRIP_TAGS = ["script", "style", "noscript", "iframe", "template", "object", "embed"]
# stripped tags and tracking pixels, removed from every page after parsing
_DROP_QUERY = ", ".join([*_STRIP_TAGS, "img[width='1']", "img[height='1']", "img[width='0']"])
_SECTION_RECORDS: dict[str, type] = {"listing": ListingRecord, "account": AccountRecord}
_ROW_RECORDS: dict[str, type] = {"listings": ListingRecord, "feedback": FeedbackRecord,
                                  "accounts": AccountRecord}
_SECTIONS = ("listing", "account", "pgp", "feedback", "listings", "accounts")
_RULE_SOURCES = ("css", "label", "source", "ref", "const", "text_regex")
_COND_KEYS = {"css", "title", "text", "html", "domain", "source", "all", "any", "not"}
_TOP_KEYS = ("market", "name", "onion", "version", "detect", "observed_at", "rates", "skip",
             "pages")
_RATE_CURRENCY = re.compile(r"[A-Z]{3,5}")
# a page-stated rate outside this range (USD per unit) is no rate: a misread, not a price
_RATE_RANGE = (1e-6, 1e9)
_RULE_KEYS = frozenset({*_RULE_SOURCES, "attr", "own", "pick", "nth", "join", "within",
                        "siblings", "inner", "page", "regex", "split", "map", "type",
                        "formats"})
# the values a rule key may take (docs/adding-a-market.md, "Field rules")
_RULE_CHOICES = {"type": ("str", "text", "int", "float", "price", "date", "list"),
                 "pick": ("first", "last", "all", "count"),
                 "source": ("title", "url", "page_text")}
_MAX_REGEX_CHARS = 200_000  # a field rule's regex reads at most this much of a value
# past this many characters, a rule skips the nodes it matched inside nodes it read
_MAX_RULE_CHARS = 2 * MAX_FIELD_CHARS
_LITERAL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 &/'-]*[A-Za-z0-9]|[A-Za-z0-9]")
_LABEL_TRIM = " \t\r\n:|-–—\u00a0"


class TemplateError(BadInputError):
    """A template file that cannot be used; the message names the file and the problem."""


# -- templates ---------------------------------------------------------------------------


@dataclass(slots=True)
class PageSpec:
    """One page type of a template: when it applies and what it yields."""

    type: str
    when: Any
    required: list[str]
    sections: dict[str, Any]


@dataclass(slots=True)
class Template:
    """A market layout: detection rules, skip rules and page types."""

    market: str
    name: str
    path: str
    version: str = "1"
    onion: str | None = None
    threshold: float = 1.0
    detect: list[dict[str, Any]] = field(default_factory=list)
    observed_at: list[dict[str, Any]] = field(default_factory=list)
    rates: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    skip: list[dict[str, Any]] = field(default_factory=list)
    pages: list[PageSpec] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: Any, path: str) -> Template:
        """Validate a parsed YAML template; raise :class:`TemplateError` naming the problem."""
        if not isinstance(data, dict):
            raise TemplateError(f"{path}: a template must be a mapping")
        for key in ("market", "name", "pages"):
            if key not in data:
                raise TemplateError(f"{path}: missing '{key}'")
        unknown_top = set(map(str, data)) - set(_TOP_KEYS)
        if unknown_top:
            raise TemplateError(f"{path}: unknown keys {sorted(unknown_top)} (a template "
                                f"takes {', '.join(_TOP_KEYS)})")
        market = str(data["market"])
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,40}", market):
            raise TemplateError(f"{path}: market '{market}' must be a lower-case slug")
        detect = data.get("detect") or {}
        rules = detect.get("rules") or []
        if not rules:
            raise TemplateError(f"{path}: detect.rules must list at least one rule")
        for r in rules:
            _check_cond({k: v for k, v in r.items() if k != "weight"}, f"{path}: detect")
        skips = data.get("skip") or []
        for s in skips:
            if not isinstance(s, dict) or "type" not in s or "reason" not in s or "when" not in s:
                raise TemplateError(f"{path}: every skip entry needs type, reason and when")
            _check_cond(s["when"], f"{path}: skip {s['type']}")
        pages: list[PageSpec] = []
        for p in data["pages"] or []:
            if not isinstance(p, dict) or "type" not in p or "when" not in p:
                raise TemplateError(f"{path}: every page entry needs type and when")
            where = f"{path}: page {p['type']}"
            _check_cond(p["when"], where)
            sections = {k: p[k] for k in _SECTIONS if p.get(k) is not None}
            unknown = set(p) - set(_SECTIONS) - {"type", "when", "required"}
            if unknown:
                raise TemplateError(f"{where}: unknown keys {sorted(unknown)}")
            for name, sec in sections.items():
                _check_section(name, sec, where)
            _check_required(p.get("required") or [], sections, where)
            pages.append(PageSpec(type=str(p["type"]), when=p["when"],
                                  required=list(p.get("required") or []), sections=sections))
        obs = data.get("observed_at") or []
        for r in _as_rules(obs, f"{path}: observed_at"):
            _check_rule(r, f"{path}: observed_at")
        rates = data.get("rates") or {}
        if not isinstance(rates, dict):
            raise TemplateError(f"{path}: rates must map a currency (BTC) to rules")
        for ccy, rr in rates.items():
            if not _RATE_CURRENCY.fullmatch(str(ccy)):
                raise TemplateError(f"{path}: rates: '{ccy}' is not a currency code (BTC)")
            for r in _as_rules(rr, f"{path}: rates.{ccy}"):
                _check_rule(r, f"{path}: rates.{ccy}")
        return cls(market=market, name=str(data["name"]), path=path,
                   version=str(data.get("version", "1")), onion=data.get("onion"),
                   threshold=float(detect.get("threshold", 1)), detect=rules,
                   observed_at=_as_rules(obs, path),
                   rates={str(c): _as_rules(r, path) for c, r in rates.items()},
                   skip=skips, pages=pages)


_RULE_LISTS: dict[int, tuple[Any, list[dict[str, Any]]]] = {}


def _rule_list(spec: Any) -> list[dict[str, Any]]:
    """``_as_rules(spec)`` for a template's field spec, remembered per spec object."""
    hit = _RULE_LISTS.get(id(spec))
    if hit is None or hit[0] is not spec:
        if len(_RULE_LISTS) > 50_000:  # specs come from templates; this only bounds misuse
            _RULE_LISTS.clear()
        hit = _RULE_LISTS[id(spec)] = (spec, _as_rules(spec, "field"))
    return hit[1]


def _as_rules(spec: Any, where: str) -> list[dict[str, Any]]:
    if spec is None:
        return []
    rules = spec if isinstance(spec, list) else [spec]
    for r in rules:
        if not isinstance(r, dict):
            raise TemplateError(f"{where}: a field rule must be a mapping, got {r!r}")
    return rules


def _check_rule(rule: dict[str, Any], where: str) -> None:
    if not any(k in rule for k in _RULE_SOURCES):
        raise TemplateError(f"{where}: rule {rule!r} needs one of {', '.join(_RULE_SOURCES)}")
    unknown = set(map(str, rule)) - _RULE_KEYS
    if unknown:  # a misspelt modifier (`atr: href`) would be ignored: the text read instead
        raise TemplateError(f"{where}: rule {rule!r}: unknown keys {sorted(unknown)} (a rule "
                            f"takes {', '.join(sorted(_RULE_KEYS))})")
    for key, allowed in _RULE_CHOICES.items():
        if key in rule and rule[key] not in allowed:
            raise TemplateError(f"{where}: rule {rule!r}: {key} must be one of "
                                f"{', '.join(allowed)}")
    for key in ("css", "within"):
        if key in rule:
            _check_css(rule[key], where)
    for key in ("regex", "split"):
        if key in rule:
            try:
                re.compile(rule[key])
            except re.error as exc:
                raise TemplateError(f"{where}: bad {key} {rule[key]!r}: {exc}") from exc
    if "label" in rule:
        try:
            re.compile(rule["label"])
        except re.error as exc:
            raise TemplateError(f"{where}: bad label regex {rule['label']!r}: {exc}") from exc


def _check_section(name: str, sec: Any, where: str) -> None:
    if name == "pgp":
        for r in _as_rules(sec, f"{where}.pgp"):
            _check_rule(r, f"{where}.pgp")
        return
    if not isinstance(sec, dict):
        raise TemplateError(f"{where}.{name}: must be a mapping")
    if name in _ROW_RECORDS:
        if "rows" not in sec or "fields" not in sec:
            raise TemplateError(f"{where}.{name}: needs 'rows' (css) and 'fields'")
        _check_css(sec["rows"], f"{where}.{name}.rows")
        if "when" in sec:
            _check_cond(sec["when"], f"{where}.{name}")
        sec_fields = sec["fields"]
        cls = _ROW_RECORDS[name]
    else:
        sec_fields = sec
        cls = _SECTION_RECORDS[name]
    if not isinstance(sec_fields, dict):
        raise TemplateError(f"{where}.{name}: fields must be a mapping of field names to rules")
    for fname, rules in sec_fields.items():
        _check_field_name(cls, str(fname), f"{where}.{name}")
        for r in _as_rules(rules, f"{where}.{name}.{fname}"):
            _check_rule(r, f"{where}.{name}.{fname}")


# set by the engine for every record, never by a template
_ENGINE_FIELDS = frozenset({"market_id", "observed_at", "locator", "feedback_counts"})


def _template_fields(cls: type) -> list[str]:
    """The field names a template may give a ``cls`` section (docs/adding-a-market.md)."""
    return sorted(set(_field_kinds(cls)) - _ENGINE_FIELDS)


def _check_field_name(cls: type, fname: str, where: str) -> None:
    """Refuse a field the record does not have: the engine would drop its value unseen."""
    if fname in _template_fields(cls):
        return
    if "feedback_counts" in _field_kinds(cls) and _COUNT_FIELD_RE.fullmatch(fname):
        return
    extra = ", feedback_positive/_neutral/_negative[_6m...]" if cls is AccountRecord else ""
    raise TemplateError(f"{where}: unknown field '{fname}' ({cls.__name__} fields: "
                        f"{', '.join(_template_fields(cls))}{extra})")


def _check_required(required: list[Any], sections: dict[str, Any], where: str) -> None:
    """Refuse a ``required`` entry that is not a ``listing.`` / ``account.`` field of
    the page: it could never be found, and every page of the type would be quarantined."""
    for req in required:
        sec, _, name = str(req).partition(".")
        if sec not in _SECTION_RECORDS or name not in (sections.get(sec) or {}):
            raise TemplateError(f"{where}: required '{req}' is not a field of this page's "
                                "listing or account section (write section.field, e.g. "
                                "listing.title)")


@lru_cache(maxsize=1)
def _css_probe() -> LexborHTMLParser:
    """A tiny parsed page to try selectors on (:func:`_check_css`)."""
    return LexborHTMLParser("<p></p>")


def _check_css(selector: Any, where: str) -> None:
    """Refuse a selector the parser cannot read: at extraction it would match nothing."""
    if not isinstance(selector, str):
        raise TemplateError(f"{where}: a CSS selector must be text, got {selector!r}")
    try:
        _css_probe().css_matches(selector)
    except SelectolaxError as exc:
        raise TemplateError(f"{where}: bad CSS selector {selector!r} ({exc})") from exc


def _check_cond(cond: Any, where: str) -> None:
    if isinstance(cond, list):
        for c in cond:
            _check_cond(c, where)
        return
    if not isinstance(cond, dict) or not cond:
        raise TemplateError(f"{where}: condition must be a non-empty mapping, got {cond!r}")
    for k, v in cond.items():
        if k not in _COND_KEYS:
            raise TemplateError(f"{where}: unknown condition '{k}'")
        if k in ("all", "any"):
            _check_cond(list(v), where)
        elif k == "not":
            _check_cond(v, where)
        elif k == "css":
            _check_css(v, where)
        else:
            try:
                re.compile(v)
            except re.error as exc:
                raise TemplateError(f"{where}: bad regex {v!r}: {exc}") from exc


_TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"


def template_dir() -> Path:
    """The folder of built-in templates."""
    return _TEMPLATE_DIR


@lru_cache(maxsize=8)
def _load(dirs: tuple[str, ...]) -> tuple[Template, ...]:
    out: list[Template] = []
    seen: set[str] = set()
    for d in dirs:
        for path in sorted(Path(d).glob("*.y*ml")):
            try:
                text = path.read_text(encoding="utf-8")
                data = yaml.load(text, Loader=_YamlLoader)  # noqa: S506 - a SafeLoader (C or Py)
            except yaml.YAMLError as exc:
                raise TemplateError(f"{path}: not valid YAML ({_yaml_problem(exc)}); see "
                                    "docs/adding-a-market.md") from exc
            tpl = Template.from_dict(data, str(path))
            key = f"{tpl.market}/{path.stem}"
            if key not in seen:
                seen.add(key)
                out.append(tpl)
    return tuple(out)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error on one line, where it is in the file first (as for mappings)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        return f"{at}{exc.problem or exc.context}"
    return " ".join(str(exc).split())


def load_templates(extra_dirs: Iterable[Path | str] = ()) -> tuple[Template, ...]:
    """All templates: the built-in folder first, then ``extra_dirs`` (cached)."""
    if extra_dirs == ():  # the usual call, once per page: no paths to build
        return _load((_TEMPLATE_DIR_STR,))
    dirs = (str(template_dir()), *(str(Path(d)) for d in extra_dirs))
    return _load(dirs)


_TEMPLATE_DIR_STR = str(_TEMPLATE_DIR)


# -- the page ------------------------------------------------------------------------------


class Page:
    """A parsed page with scripts, styles and tracking pixels removed."""

    def __init__(self, raw: str, source: str = "", utf8: bytes | None = None) -> None:
        """Parse ``raw``; raise :class:`~darkmap.errors.LimitExceeded` (``nesting_depth``,
        ``element_siblings``) instead when its elements would nest too deep for the parser
        or stand side by side in too many pairs for the queries (see
        :mod:`darkmap.extract.nesting`).

        ``utf8`` is ``raw.encode("utf-8")`` when the caller has it (the bytes ``raw``
        was decoded from); else ``raw`` is encoded here, once, for the parser and the
        searches of the raw HTML.
        """
        self.raw = raw
        self.source = source
        self._lows: dict[int, tuple[str, bytes | None]] = {}
        self._utf8: dict[int, tuple[str, bytes]] = {}
        if utf8 is None:
            try:
                utf8 = raw.encode("utf-8")
            except UnicodeEncodeError:  # lone surrogates: each use encodes as it needs
                utf8 = None
        if utf8 is not None:  # what the parser is given for a str (it drops surrogates)
            self._utf8[id(raw)] = (raw, utf8)
        check_page_nesting(raw, _lowered(raw, self))
        self.tree = LexborHTMLParser(raw if utf8 is None else utf8)
        # one pass over the tree instead of one per stripped tag and one for the pixels:
        # the same nodes leave the tree (a pixel inside a stripped tag goes either way)
        for node in self.tree.css(_DROP_QUERY):
            node.decompose(recursive=node.tag == "img")
        title = self.tree.css_first("title")
        self.title = clean_text(title.text()) if title is not None else ""
        self._text: str | None = None
        self._queries: dict[tuple[int, str], list[LexborNode]] = {}
        self._matches: dict[tuple[int, str], bool] = {}  # see _matches
        # rows of repeated sections (see _register_rows): row -> its set, and per set
        # the row ids, the ids of every node above a row, and queries asked so far
        self._row_of: dict[int, int] = {}
        self._row_sets: list[tuple[set[int], set[int], LexborNode | None]] = []
        self._row_asks: dict[tuple[int, str], int] = {}
        self._row_done: set[tuple[int, str]] = set()
        self.observed_at: datetime | None = None

    @property
    def root(self) -> LexborNode:
        """The node every page-level selector starts from."""
        return self.tree.body or self.tree.root  # type: ignore[return-value]

    @property
    def text(self) -> str:
        """Visible text of the page (computed once)."""
        if self._text is None:
            root = self.tree.body or self.tree.root
            self._text = root.text(separator="\n") if root is not None else ""
        return self._text


def _search(pattern: str, text: str, page: Page | None = None) -> bool:
    """``re.search(pattern, text)``, by substring tests when the pattern is literal.

    Detection and skip rules are often a few plain words (``(?i)login to empire
    market|...``); a case-insensitive regex pays tens of nanoseconds per character of
    the page, a substring test of the lower-cased page a fraction of that.
    """
    plan = _literal_plan(pattern)
    if plan is not None:
        fold, words = plan
        if not fold:
            return any(w in text for w in words)
        low = _lowered(text, page)
        if low is not None:
            return any(w in low for w in words)
    need = _required_prefix(pattern) if page is not None and len(text) > 4096 else None
    if need is not None and page is not None:
        # every match begins with this ASCII literal: where the text (as UTF-8 bytes,
        # whose byte search is far quicker than a str's) lacks it, there is no match
        fold, word = need
        hay = _lowered(text, page) if fold else _utf8(text, page)
        if hay is not None and word not in hay:
            return False
    return _rx(pattern).search(text) is not None


_PREFIX_RE = re.compile(r"[A-Za-z0-9 ,:;!%&'\"<=>@_~`/-]+")


@lru_cache(maxsize=4096)
def _required_prefix(pattern: str) -> tuple[bool, bytes] | None:
    """(case-insensitive, literal) that every match of ``pattern`` begins with, if any.

    Only for patterns without alternation or inline flags (but a leading ``(?i)``)
    whose first item is a run of plain ASCII characters: ``apollon[a-z2-7]{0,56}\\.onion``
    begins with ``apollon``. A quantifier after the run (``*``, ``?``, ``{``) may drop its
    last character, so that one is left out. Case-insensitive literals are lower-cased,
    to be found in :func:`_lowered` text.
    """
    fold = pattern.startswith("(?i)")
    body = pattern[4:] if fold else pattern
    if "|" in body or "(?" in body:
        return None
    m = _PREFIX_RE.match(body)
    if m is None:
        return None
    word = m.group(0)
    if body[m.end():m.end() + 1] in ("*", "?", "{"):
        word = word[:-1]
    if len(word) < 4:
        return None
    return fold, (word.lower() if fold else word).encode("ascii")


def _utf8(text: str, page: Page) -> bytes:
    """``text`` as UTF-8 (remembered per page)."""
    key = id(text)
    hit = page._utf8.get(key)
    if hit is None or hit[0] is not text:
        hit = page._utf8[key] = (text, text.encode("utf-8", "surrogatepass"))
    return hit[1]


# The only non-ASCII characters a case-insensitive regex matches to ASCII letters.
_FOLDS = ("\u0130", "\u0131", "\u017f", "\u212a")
_LITERAL_ALT_RE = re.compile(r"(?:[A-Za-z0-9 ,:;!#%&'\"<=>@_~`-]|\\[ .\-/#&~:])+")


@lru_cache(maxsize=4096)
def _literal_plan(pattern: str) -> tuple[bool, tuple[Any, ...]] | None:
    """(case-insensitive, words) when ``pattern`` only matches one of some ASCII words.

    Case-insensitive words are lower-cased UTF-8 bytes; they are then found exactly in
    the ASCII-lower-cased UTF-8 of any text without ``_FOLDS`` (lower-casing works per
    character, and no other character lowers to ASCII or matches ASCII letters, so a
    match of ASCII words lies on ASCII characters, which bytes.lower() lowers alike).
    """
    fold = pattern.startswith("(?i)")
    body = pattern[4:] if fold else pattern
    alts = body.split("|")
    if not all(_LITERAL_ALT_RE.fullmatch(a) for a in alts):
        return None
    words = tuple(re.sub(r"\\(.)", r"\1", a) for a in alts)
    return fold, tuple(w.lower().encode("ascii") for w in words) if fold else words


def _lowered(text: str, page: Page | None) -> bytes | None:
    """``text`` in UTF-8 with ASCII letters lower-cased (remembered per page), or None
    if ``text`` holds a ``_FOLDS``. Several times cheaper than ``str.lower()``."""
    key = id(text)
    hit = page._lows.get(key) if page is not None else None
    if hit is None or hit[0] is not text:
        enc = page._utf8.get(key) if page is not None else None
        low = (None if any(c in text for c in _FOLDS)
               else enc[1].lower() if enc is not None and enc[0] is text
               else text.encode("utf-8", "surrogatepass").lower())
        hit = (text, low)
        if page is not None:
            page._lows[key] = hit
    return hit[1]


@lru_cache(maxsize=4096)
def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _css(scope: LexborNode | None, selector: str, page: Page | None = None) -> list[LexborNode]:
    """``scope.css(selector)``; with ``page``, each (node, selector) is queried once.

    Templates ask the same question of the same node again and again (several fields
    of one row cell, detection and skip rules); the tree does not change once parsed.
    """
    if scope is None:
        return []
    key = (scope.mem_id, selector) if page is not None else None
    if key is not None:
        hit = page._queries.get(key)  # type: ignore[union-attr]
        if hit is not None:
            return hit
        rows = page._row_of.get(key[0])  # type: ignore[union-attr]
        if rows is not None:
            if (rows, selector) in page._row_done:  # type: ignore[union-attr]
                return []  # the page query found nothing under this row
            if _rows_query(page, rows, selector):  # type: ignore[arg-type]
                return page._queries.get(key) or []  # type: ignore[union-attr]
    try:
        found = scope.css(selector)
    except SelectolaxError:  # a selector lexbor rejects is a template bug; treat as no match
        found = []
    if key is not None:
        page._queries[key] = found  # type: ignore[union-attr]
    return found


def _matches(scope: LexborNode | None, selector: str, page: Page) -> bool:
    """``bool(_css(scope, selector, page))``, by a query that stops at the first match.

    Conditions only ask whether a selector matches (detection, skip and page-type rules
    ask it of the whole page); ``css_matches`` stops at the first node it finds and
    makes no node objects, where ``css`` walks the whole tree. A selector that matches
    nothing has its (empty) answer remembered for :func:`_css` too. A row of a repeated
    section asks through :func:`_css`, whose one query answers every row.
    """
    if scope is None:
        return False
    key = (scope.mem_id, selector)
    found = page._queries.get(key)
    if found is not None:
        return bool(found)
    if key[0] in page._row_of:
        return bool(_css(scope, selector, page))
    hit = page._matches.get(key)
    if hit is None:
        try:
            hit = bool(scope.css_matches(selector))
        except SelectolaxError:  # as in _css: a selector lexbor rejects matches nothing
            hit = False
        page._matches[key] = hit
        if not hit:
            page._queries[key] = []
    return hit


def _register_rows(page: Page, rows: list[LexborNode]) -> None:
    """Let the rows of a repeated section share their queries (see :func:`_rows_query`).

    Also finds the rows' deepest common ancestor, the node their shared queries start
    from: each walk up from a row stops at a node an earlier walk met, and every node
    met remembers where its walk joined the first row's line of ancestors.
    """
    if len(rows) < 3:
        return
    ids = {r.mem_id for r in rows}
    above: set[int] = set()
    joins: dict[int, int] = {}  # node above a row -> index in ``line`` its walk joins at
    line: list[LexborNode] = []  # the first row's ancestors, nearest first
    top = 0  # the index in ``line`` of the rows' common ancestor
    for k, r in enumerate(rows):
        node = r.parent
        walked: list[int] = []
        join = -1
        while node is not None:
            mid = node.mem_id
            if mid in ids:  # a row inside a row: leave such sets to per-row queries
                return
            if mid in above:
                join = joins[mid]
                break
            above.add(mid)
            if k == 0:
                joins[mid] = len(line)
                line.append(node)
            else:
                walked.append(mid)
            node = node.parent
        if k:
            if join < 0:  # not under the first row's root (cannot happen in one tree)
                top = -1
            elif top >= 0:
                top = max(top, join)
            for mid in walked:
                joins[mid] = join
    n = len(page._row_sets)
    page._row_sets.append((ids, above, line[top] if line and top >= 0 else None))
    for mid in ids:
        page._row_of[mid] = n


def _rows_query(page: Page, rows: int, selector: str) -> bool:
    """Answer ``selector`` for every row of set ``rows`` with one query of the page.

    ``node.css(selector)`` gives the nodes of ``node``'s subtree (``node`` included)
    that match ``selector`` in the whole document, in document order; so each row's
    answer is the answer of the rows' common ancestor cut down to the nodes under that
    row, found by walking up from each matching node until a row, or a node above the
    rows. Asked of the second row only, so that a selector asked of one row costs one
    small query.
    """
    ask = (rows, selector)
    count = page._row_asks.get(ask, 0)
    page._row_asks[ask] = count + 1
    if count != 1:
        return False
    ids, above, common = page._row_sets[rows]
    if common is None:
        hits = _css(page.tree.root, selector, page)
    else:
        try:
            hits = common.css(selector)
        except SelectolaxError:  # as in _css: a selector lexbor rejects matches nothing
            hits = []
    found: dict[int, list[LexborNode]] = {}
    for hit in hits:
        node: LexborNode | None = hit
        while node is not None:
            mid = node.mem_id
            if mid in ids:
                found.setdefault(mid, []).append(hit)
                break
            if mid in above:
                break
            node = node.parent
    queries = page._queries
    for mid, nodes in found.items():
        queries.setdefault((mid, selector), nodes)
    page._row_done.add(ask)  # rows not in ``found`` have no match
    return True


def _holds(cond: Any, page: Page, scope: LexborNode | None = None) -> bool:
    """Evaluate a condition (see docs/adding-a-market.md) against ``page``."""
    if isinstance(cond, list):
        return all(_holds(c, page, scope) for c in cond)
    for key, val in cond.items():
        if key == "weight":
            continue
        if key == "css":
            ok = _matches(scope if scope is not None else page.tree.root, val, page)
        elif key == "title":
            ok = _search(val, page.title, page)
        elif key == "text":
            ok = (_search(val, scope.text(separator="\n")) if scope is not None
                  else _search(val, page.text, page))
        elif key in ("html", "domain"):
            ok = _search(val, page.raw, page)
        elif key == "source":
            ok = _search(val, page.source, page)
        elif key == "all":
            ok = all(_holds(c, page, scope) for c in val)
        elif key == "any":
            ok = any(_holds(c, page, scope) for c in val)
        elif key == "not":
            ok = not _holds(val, page, scope)
        else:
            ok = False
        if not ok:
            return False
    return True


def detect_market(page: Page, templates: Iterable[Template]) -> Template | None:
    """The template whose detection rules score highest, at or above its threshold.

    A template's score is the sum of the weights of its rules that hold, so the rules
    can be tried cheapest first, and a template stops being tried as soon as its
    remaining rules could no longer lift it to its threshold or past the best score so
    far (the first template with the best score wins, as if every rule were tried).

    Every template's cheapest rule (usually its title) is tried first, and the templates
    whose cheapest rule holds are scored before the others: the page's own market then
    sets the best score early, and the other templates stop after that one rule instead
    of searching the raw HTML and the text for their domains and names. A template
    scored later than one that comes after it in ``templates`` still wins a tie, so the
    choice is the one of scoring every template in order.
    """
    tpls = templates if isinstance(templates, tuple) else tuple(templates)
    plans = [_detect_plan(tpl) for tpl in tpls]
    first = [bool(rules) and _holds(rules[0][1], page) for rules in plans]
    order = [i for i, held in enumerate(first) if held]
    if len(order) < len(tpls):
        order += [i for i, held in enumerate(first) if not held]
    best: tuple[float, int] | None = None  # (score, index in ``tpls``)
    for i in order:
        rules, threshold = plans[i], tpls[i].threshold
        score = 0.0
        up = sum(w for w, _ in rules if w > 0)  # most the untried rules can still add
        for k, (weight, rule) in enumerate(rules):
            if weight > 0:
                up -= weight
            if (first[i] if k == 0 else _holds(rule, page)):
                score += weight
            most = score + up
            if most < threshold or (best is not None and (
                    most < best[0] or (most == best[0] and i > best[1]))):
                break
        else:
            if score >= threshold and (best is None or score > best[0]
                                       or (score == best[0] and i < best[1])):
                best = (score, i)
    return tpls[best[1]] if best else None


_COND_COST = {"source": 0, "title": 1, "domain": 2, "html": 2, "text": 3, "css": 4}


def _cond_cost(cond: Any) -> int:
    """Rough cost of evaluating a condition (title regex < CSS query < text < raw HTML)."""
    if isinstance(cond, list):
        return sum(_cond_cost(c) for c in cond)
    cost = 0
    for key, val in cond.items():
        if key in ("all", "any"):
            cost += _cond_cost(list(val))
        elif key == "not":
            cost += _cond_cost(val)
        else:
            cost += _COND_COST.get(key, 5)
    return cost


_PLANS: dict[int, tuple[Template, list[tuple[float, dict[str, Any]]]]] = {}


def _detect_plan(tpl: Template) -> list[tuple[float, dict[str, Any]]]:
    """``tpl``'s detection rules as (weight, rule), cheapest first, negative weights last."""
    plan = _PLANS.get(id(tpl))
    if plan is None or plan[0] is not tpl:
        rules = [(float(r.get("weight", 1)), r) for r in tpl.detect]
        rules.sort(key=lambda wr: (wr[0] < 0, _cond_cost(wr[1])))
        plan = _PLANS[id(tpl)] = (tpl, rules)
    return plan[1]


# -- field rules -----------------------------------------------------------------------------


def _node_text(node: LexborNode, own: bool = False, multiline: bool = False) -> str:
    if own:
        return clean_text(node.text(deep=False))
    if multiline:
        return clean_text(node.text(separator="\n"), multiline=True)
    return clean_text(node.text(separator=" "))


_MAX_SIBLINGS = 200  # a ``siblings`` label rule reads at most this many elements


def _after(node: LexborNode, siblings: bool = False) -> str:
    """Text that follows ``node``: its following siblings, then its parent's (2 levels).

    With ``siblings``, the text of every following sibling up to the next ``<br>`` (or
    the end of that parent) is joined: a value shown as one element per item
    (``<small>World Wide</small><small>, Europe</small>``).
    """
    cur: LexborNode | None = node
    for _ in range(3):
        if cur is None:
            return ""
        sib = cur.next
        while sib is not None:
            txt = clean_text(sib.text(deep=True, separator=" ")).strip(_LABEL_TRIM)
            if txt:
                return _following(sib, txt) if siblings else txt
            sib = sib.next
        cur = cur.parent
    return ""


def _following(first: LexborNode, text: str) -> str:
    """``text`` (of ``first``) and the texts of ``first``'s next siblings up to a ``<br>``."""
    parts = [text]
    sib = first.next
    for _ in range(_MAX_SIBLINGS):
        if sib is None or sib.tag == "br":
            break
        txt = clean_text(sib.text(deep=True, separator=" ")).strip(" \t\r\n|\u00a0")
        if txt:
            parts.append(txt)
        sib = sib.next
    return " ".join(parts)


def _inner_rest(node: LexborNode, own: str) -> str:
    """The text after the label inside ``node``'s children (``<p>Member since:
    <span>April 19, 2019</span></p>``), when the whole of ``node`` is short."""
    deep = clean_text(node.text(deep=True, separator=" "))
    if len(deep) > 300 or len(deep) <= len(own) or not deep.startswith(own):
        return ""
    return deep[len(own):].strip(_LABEL_TRIM)


@lru_cache(maxsize=1024)
def _label_plan(pattern: str) -> tuple[re.Pattern[str], str]:
    """A label rule's regex and the longest literal in it (to find candidate nodes)."""
    rx = _rx(pattern if pattern.startswith("(?") else "(?i)" + pattern)
    literals = _LITERAL_RE.findall(re.sub(r"\\.|\[.*?\]|\(\?[a-z]+\)", " ", pattern))
    return rx, max(literals, key=len, default="").replace('"', "").strip()


def _label_values(rule: dict[str, Any], page: Page, scope: LexborNode) -> list[str]:
    rx, literal = _label_plan(rule["label"])
    if literal:
        candidates = _css(scope, f'*:lexbor-contains("{literal}" i)', page)
    else:
        candidates = list(scope.traverse(include_text=False))
    out: list[str] = []
    for node in candidates:
        own = clean_text(node.text(deep=False))
        if len(own) > 300:
            continue
        m = rx.search(own)
        if not m:
            continue
        rest = own[m.end():].strip(_LABEL_TRIM)
        if not rest and rule.get("inner"):
            rest = _inner_rest(node, own)
        out.append(rest if rest else _after(node, bool(rule.get("siblings"))))
    return [v for v in out if v]


def _raw_values(rule: dict[str, Any], page: Page, scope: LexborNode,
                ctx: dict[str, dict[str, Any]]) -> list[Any]:
    """The candidate values a rule's source gives, before regex and typing."""
    if "const" in rule:
        return [rule["const"]]
    if "ref" in rule:
        sec, _, name = str(rule["ref"]).partition(".")
        val = ctx.get(sec, {}).get(name)
        return [] if val is None or val == "" or val == [] else [val]
    if "text_regex" in rule:
        rule = {**rule, "source": "page_text", "regex": rule["text_regex"]}
    if "source" in rule:
        src = rule["source"]
        val = {"title": page.title, "url": page.source, "page_text": page.text}.get(src, "")
        return [val] if val else []
    base = page.root if rule.get("page") else scope
    if "within" in rule:
        inner = _css(base, rule["within"], page)
        if not inner:
            return []
        base = inner[0]
    if "label" in rule:
        return _label_values(rule, page, base)
    nodes = _css(base, rule["css"], page)
    if rule.get("pick") == "count":
        return [len(nodes)]
    if "nth" in rule:
        n = int(rule["nth"])
        nodes = nodes[n:n + 1] if -len(nodes) <= n < len(nodes) else []
    multiline = rule.get("type") == "text"
    if "attr" in rule:
        vals: list[Any] = []
        for node in nodes:
            v = node.attributes.get(rule["attr"])
            v = clean_text(v) if v else ""
            if v:
                vals.append(v)
        return vals
    return _texts(nodes, bool(rule.get("own")), multiline)


@dataclass(slots=True, frozen=True)
class _RulePlan:
    """What a field rule asks for, read from its mapping once (rules are applied per row)."""

    css_only: bool  # a CSS rule (no const, ref, source, text_regex or label)
    css: Any
    page: bool
    within: bool
    count: bool
    nth: bool
    multiline: bool
    attr: bool
    own: bool
    pick: Any
    text_regex: bool
    has_regex: bool
    regex: Any
    map: bool
    join: bool
    split: bool
    listed: bool


def _make_plan(rule: dict[str, Any]) -> _RulePlan:
    text_regex = "text_regex" in rule
    return _RulePlan(
        css_only="css" in rule and not any(k in rule for k in (
            "const", "ref", "source", "text_regex", "label")),
        css=rule.get("css"), page=bool(rule.get("page")), within="within" in rule,
        count=rule.get("pick") == "count", nth="nth" in rule,
        multiline=rule.get("type") == "text", attr="attr" in rule, own=bool(rule.get("own")),
        pick=rule.get("pick", "first"), text_regex=text_regex,
        has_regex=text_regex or "regex" in rule,
        regex=rule["text_regex"] if text_regex else rule.get("regex"),
        map="map" in rule, join="join" in rule, split="split" in rule,
        listed=rule.get("type") == "list")


_RULE_PLANS: dict[int, tuple[dict[str, Any], _RulePlan]] = {}


def _rule_plan(rule: dict[str, Any]) -> _RulePlan:
    """``_make_plan(rule)``, remembered per rule object (rules come from templates)."""
    hit = _RULE_PLANS.get(id(rule))
    if hit is None or hit[0] is not rule:
        if len(_RULE_PLANS) > 50_000:  # only bounds misuse
            _RULE_PLANS.clear()
        hit = _RULE_PLANS[id(rule)] = (rule, _make_plan(rule))
    return hit[1]


def _css_values(plan: _RulePlan, rule: dict[str, Any], page: Page,
                scope: LexborNode) -> list[Any]:
    """:func:`_raw_values` of a CSS rule, from its plan."""
    base = page.root if plan.page else scope
    if plan.within:
        inner = _css(base, rule["within"], page)
        if not inner:
            return []
        base = inner[0]
    nodes = _css(base, plan.css, page)
    if plan.count:
        return [len(nodes)]
    if plan.nth:
        n = int(rule["nth"])
        nodes = nodes[n:n + 1] if -len(nodes) <= n < len(nodes) else []
    if plan.attr:
        attr = rule["attr"]
        vals: list[Any] = []
        for node in nodes:
            v = node.attributes.get(attr)
            v = clean_text(v) if v else ""
            if v:
                vals.append(v)
        return vals
    return _texts(nodes, plan.own, plan.multiline)


def _texts(nodes: list[LexborNode], own: bool, multiline: bool) -> list[str]:
    """The non-empty texts of ``nodes`` (see :func:`_iter_texts`)."""
    return list(_iter_texts(nodes, own, multiline))


def _rule_base(page: Page, scope: LexborNode, on_page: bool,
               within: str | None) -> LexborNode | None:
    """Where a rule's selector runs: the page or the scope, narrowed to the first node
    of ``within`` (None when there is none)."""
    base = page.root if on_page else scope
    if within is not None:
        inner = _css(base, within, page)
        if not inner:
            return None
        base = inner[0]
    return base


def _count_rule(rule: dict[str, Any], plan: _RulePlan) -> _RuleFn:
    """A rule counting the nodes its selector finds (``pick: count``), as a closure."""
    css, on_page, has_within = plan.css, plan.page, plan.within
    within = rule["within"] if has_within else ""

    def run(page: Page, scope: LexborNode, ctx: dict[str, dict[str, Any]]) -> Any:
        base = _rule_base(page, scope, on_page, within if has_within else None)
        if base is None:
            return None
        return _finish_rule([len(_css(base, css, page))], rule, plan, page)

    return run


def _iter_texts(nodes: list[LexborNode], own: bool, multiline: bool) -> Iterator[str]:
    """The non-empty texts of ``nodes``, one at a time (a rule that stops at the first it
    takes reads no more); past :data:`_MAX_RULE_CHARS` characters, nodes inside a node
    already read are skipped (nested matches, ``<pre>`` in ``<pre>`` in ``<pre>``...,
    would each repeat the text of everything inside them)."""
    total = 0
    taken: set[int] = set()
    for node in nodes:
        if total > _MAX_RULE_CHARS and _inside(node, taken):
            continue
        v = _node_text(node, own, multiline)
        if v:
            total += len(v)
            taken.add(node.mem_id)
            yield v


def _attr_values(nodes: list[LexborNode], attr: Any) -> Iterator[str]:
    """The non-empty cleaned values of attribute ``attr`` of ``nodes``, one at a time."""
    for node in nodes:
        v = node.attributes.get(attr)
        v = clean_text(v) if v else ""
        if v:
            yield v


def _inside(node: LexborNode, ids: set[int]) -> bool:
    """True when an ancestor of ``node`` is one of ``ids`` (the page's nesting is bounded:
    see :mod:`darkmap.extract.nesting`)."""
    parent = node.parent
    while parent is not None:
        if parent.mem_id in ids:
            return True
        parent = parent.parent
    return False


def _apply_rule(rule: dict[str, Any], page: Page, scope: LexborNode,
                ctx: dict[str, dict[str, Any]]) -> Any:
    plan = _rule_plan(rule)
    if plan.css_only:
        vals = _css_values(plan, rule, page, scope)
    else:
        if plan.text_regex:
            rule = {**rule, "source": "page_text", "regex": rule["text_regex"]}
        vals = _raw_values(rule, page, scope, ctx)
    pick = plan.pick
    if pick == "last":
        vals = vals[-1:]
    out: list[Any] = []
    one = pick != "all" and not plan.join
    for v in vals:
        if isinstance(v, str):
            if plan.has_regex:
                m = _rx(plan.regex).search(v[:_MAX_REGEX_CHARS])
                if not m:
                    continue
                v = next((g for g in m.groups() if g is not None), m.group(0)) if m.groups() \
                    else m.group(0)
                v = v.strip()
            if plan.map:
                v = rule["map"].get(v, v)
        out.append(v)
        if one:
            break
    return _finish_rule(out, rule, plan, page)


def _finish_rule(out: list[Any], rule: dict[str, Any], plan: _RulePlan, page: Page) -> Any:
    """A rule's value from the values it took (joined, split, listed or typed)."""
    if not out:
        return None
    pick = plan.pick
    if plan.join:
        return _typed(str(rule["join"]).join(str(v) for v in out), rule, page)
    if plan.split:
        parts: list[str] = []
        for v in out:
            parts.extend(p.strip() for p in _rx(rule["split"]).split(str(v)))
        return _dedup([p for p in parts if p])
    if pick == "all" or plan.listed:
        return _dedup([str(v) for v in out if v != ""])
    return _typed(out[0], rule, page)


def _dedup(items: list[str]) -> list[str]:
    seen: set[str] = set()
    return [x for x in items if not (x in seen or seen.add(x))]  # type: ignore[func-returns-value]


def _typed(value: Any, rule: dict[str, Any], page: Page) -> Any:
    kind = rule.get("type", "str")
    if kind == "int":
        return parse_int(value)
    if kind == "float":
        return parse_float(value)
    if kind == "price":
        text = str(value)
        amount, cur = (_parse_price_text(text) if len(text) <= _CACHED_CHARS
                       else parse_price(text))
        if amount is None:
            return None
        return {"amount": amount, "currency": cur, "text": clean_text(str(value))}
    if kind == "date":
        formats = tuple(rule.get("formats") or ())
        obs = page.observed_at
        if (isinstance(value, str) and len(value) <= _CACHED_CHARS
                and (obs is None or obs.tzinfo in (None, UTC))):
            return _parse_date_text(value, obs, formats)
        return parse_date(value, page.observed_at, formats)
    if kind == "text":
        return str(value)
    return clean_text(str(value)) if isinstance(value, str) else value


_CACHED_CHARS = 256
"""Texts longer than this are parsed without the caches below (which keep their keys:
8,192 hostile texts of a million characters each would be gigabytes)."""


@lru_cache(maxsize=8192)
def _parse_price_text(value: str) -> tuple[float | None, str | None]:
    """``parse_price`` of a text (rows repeat prices such as "~ $17" page after page)."""
    return parse_price(value)


@lru_cache(maxsize=8192)
def _parse_date_text(value: str, observed_at: datetime | None,
                     formats: tuple[str, ...]) -> datetime | None:
    """``parse_date`` of a text (pages repeat dates such as "2 days ago" row after row)."""
    return parse_date(value, observed_at, formats)


_RuleFn = Callable[[Page, LexborNode, dict[str, dict[str, Any]]], Any]
_RULE_ERRORS = (ValueError, TypeError, OverflowError, re.error)
_REJECTED = object()  # a text a rule's regex does not match
_FIELD_FNS: dict[int, tuple[Any, tuple[_RuleFn, ...]]] = {}


def _field_fns(rules: Any) -> tuple[_RuleFn, ...]:
    """The compiled rules of a field spec, remembered per spec object."""
    hit = _FIELD_FNS.get(id(rules))
    if hit is None or hit[0] is not rules:
        if len(_FIELD_FNS) > 50_000:  # specs come from templates; this only bounds misuse
            _FIELD_FNS.clear()
        hit = _FIELD_FNS[id(rules)] = (rules, tuple(_compile_rule(r) for r in _rule_list(rules)))
    return hit[1]


def _field(rules: Any, page: Page, scope: LexborNode, ctx: dict[str, dict[str, Any]]) -> Any:
    """The first non-empty value the field's rules give (a rule that fails gives none)."""
    return _first_value(_field_fns(rules), page, scope, ctx)


def _first_value(fns: tuple[_RuleFn, ...], page: Page, scope: LexborNode,
                 ctx: dict[str, dict[str, Any]]) -> Any:
    """The first non-empty value of the compiled rules ``fns`` (a rule that fails gives
    none), or None."""
    for fn in fns:
        try:
            val = fn(page, scope, ctx)
        except _RULE_ERRORS:
            val = None
        if val is not None and val != "" and val != []:
            return val
    return None


def _compile_rule(rule: dict[str, Any]) -> _RuleFn:
    """``partial(_apply_rule, rule)``, as a closure specialised to the rule.

    Field rules run once per field of every row of every page, and most are a CSS
    selector whose first non-empty text (or attribute) is the value: the closure reads
    the rule's options once, and reads texts only until one is taken (what the rule
    gives is the same: the texts are the same, in the same order, and those after the
    one taken were never used).
    """
    plan = _make_plan(rule)
    general: _RuleFn = partial(_apply_rule, rule)
    if not plan.css_only:
        return general
    try:
        rx = re.compile(plan.regex) if plan.has_regex else None
    except (re.error, TypeError):  # let the general path fail (or not) as it always did
        return general
    css, on_page, has_within = plan.css, plan.page, plan.within
    within = rule["within"] if has_within else ""
    has_attr = plan.attr
    attr = rule["attr"] if has_attr else ""
    own, multiline, pick, has_map = plan.own, plan.multiline, plan.pick, plan.map
    # one value wanted (no join, not "all" or "last"): the texts are read lazily
    if pick == "all" or pick == "last" or plan.join or plan.nth:
        return general
    if plan.count:
        return _count_rule(rule, plan)
    groups = rx.groups if rx is not None else 0
    plain_str = rule.get("type", "str") == "str" and not plan.split and not plan.listed
    # the texts read are cleaned already: a plain text that no regex or map changed is
    # its own value (cleaning it again gives the same text)
    as_read = plain_str and rx is None and not has_map

    def take(v: str, page: Page) -> Any:
        """The rule's value from the text ``v`` it read, or _REJECTED (regex missed)."""
        if as_read:
            return v
        if rx is not None:
            m = rx.search(v[:_MAX_REGEX_CHARS])
            if not m:
                return _REJECTED
            if groups:
                for g in m.groups():
                    if g is not None:
                        v = g
                        break
                else:
                    v = m.group(0)
            else:
                v = m.group(0)
            v = v.strip()
        got: Any = rule["map"].get(v, v) if has_map else v  # a map gives any value
        if plain_str:
            return clean_text(got) if isinstance(got, str) else got
        return _finish_rule([got], rule, plan, page)

    in_scope = not on_page and not has_within  # the rule's selector runs on the scope
    plain_text = not (has_attr or own or multiline)  # the text as _node_text reads it

    def run(page: Page, scope: LexborNode, ctx: dict[str, dict[str, Any]]) -> Any:
        base = scope if in_scope else _rule_base(page, scope, on_page,
                                                 within if has_within else None)
        if base is None:
            return None
        nodes = _css(base, css, page)
        if not nodes:
            return None
        # the first node's text, read here (it is the value in most rows), then the
        # others, from the first again, one at a time
        first = nodes[0]
        if plain_text:  # _node_text(first), without its two calls
            v = " ".join(first.text(separator=" ").split())
        elif has_attr:
            got_attr = first.attributes.get(attr)
            v = clean_text(got_attr) if got_attr else ""
        else:
            v = _node_text(first, own, multiline)
        if v:
            if as_read:
                return v
            got = take(v, page)
            if got is not _REJECTED:
                return got
        if len(nodes) == 1:
            return None
        values = _attr_values(nodes, attr) if has_attr else _iter_texts(nodes, own, multiline)
        for v in values:
            got = take(v, page)
            if got is not _REJECTED:
                return got
        return None

    return run


# -- records -----------------------------------------------------------------------------------


@lru_cache(maxsize=16)
def _field_kinds(cls: type) -> dict[str, str]:
    kinds: dict[str, str] = {}
    for f in fields(cls):
        t = str(f.type)
        kinds[f.name] = ("list" if t.startswith("list") else "int" if t.startswith("int")
                         else "float" if t.startswith("float")
                         else "date" if t.startswith("datetime") else "str")
    return kinds


_COUNT_FIELD_RE = re.compile(r"feedback_(positive|neutral|negative)(?:_(\d{1,3}[dwmy]))?")


def _feedback_counts(values: dict[str, Any]) -> list[FeedbackCounts]:
    """The ``feedback_<polarity>[_<window>]`` fields of a section as one
    :class:`FeedbackCounts` per window (``feedback_positive_6m``: window ``6m``)."""
    by_window: dict[str, FeedbackCounts] = {}
    for name, val in values.items():
        m = _COUNT_FIELD_RE.fullmatch(name)
        if m is None:
            continue
        n = parse_int(val)
        if n is None:
            continue
        window = m.group(2) or "all"
        counts = by_window.setdefault(window, FeedbackCounts(window=window))
        setattr(counts, m.group(1), abs(n))  # "-7" on a badge is 7 negative feedbacks
    return list(by_window.values())


def _coerce(cls: type, values: dict[str, Any], page: Page) -> dict[str, Any]:
    kinds = _field_kinds(cls)
    out: dict[str, Any] = {}
    if "feedback_counts" in kinds and any(k.startswith("feedback_") for k in values):
        counts = _feedback_counts(values)
        if counts:
            out["feedback_counts"] = counts
    for name, val in values.items():
        if name == "feedback_counts":
            continue
        if name == "last_seen_within" and name in kinds:
            within = val if isinstance(val, float) else parse_within(val)
            if within is not None:
                out[name] = within
            continue
        if isinstance(val, dict) and "amount" in val:  # a parsed price
            target = "price" if name == "price" else "amount"
            if target in kinds:
                out[target] = val["amount"]
                out.setdefault("currency", val["currency"])
                if "price_text" in kinds and target == "price":
                    out.setdefault("price_text", val["text"])
            continue
        if name not in kinds or val is None:
            continue
        kind = kinds[name]
        if kind == "int":
            val = parse_int(val)
        elif kind == "float":
            val = parse_float(val)
        elif kind == "date":
            val = val if isinstance(val, datetime) else parse_date(val, page.observed_at)
        elif kind == "list":
            val = [str(v) for v in val] if isinstance(val, list) else [str(val)]
        else:
            val = val if isinstance(val, str) else str(val)
        if val is not None:
            out[name] = val
    return out


_SECTION_FNS: dict[int, tuple[dict[str, Any], tuple[tuple[str, tuple[_RuleFn, ...]], ...]]] = {}


def _section_fns(spec: dict[str, Any]) -> tuple[tuple[str, tuple[_RuleFn, ...]], ...]:
    """A section's fields and their compiled rules, remembered per section spec."""
    hit = _SECTION_FNS.get(id(spec))
    if hit is None or hit[0] is not spec:
        if len(_SECTION_FNS) > 50_000:  # specs come from templates; this only bounds misuse
            _SECTION_FNS.clear()
        hit = _SECTION_FNS[id(spec)] = (spec, tuple((f, _field_fns(r)) for f, r in spec.items()))
    return hit[1]


def _section_values(spec: dict[str, Any], page: Page, scope: LexborNode,
                    ctx: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    """Every field of a section (:func:`_field` of each, in order; a row's per row)."""
    vals: dict[str, Any] = {}
    ctx[name] = vals
    for fname, fns in _section_fns(spec):
        for fn in fns:  # _first_value(fns, ...), inline: it runs for every field of every row
            try:
                v = fn(page, scope, ctx)
            except _RULE_ERRORS:
                continue
            if v is not None and v != "" and v != []:
                vals[fname] = v
                break
    return vals


# -- identifiers ----------------------------------------------------------------------------

_FREE_TEXT = {("listing", "description"): "description", ("account", "profile_text"): "profile",
              ("account", "terms_text"): "terms"}


def _identifiers(text: Any, *, market_id: str, handle: str | None, listing_ref: str | None,
                 field_name: str, locator: str, tally: list[int]) -> list[Record]:
    """The identifiers in ``text`` and a ``QuarantineRecord`` per PGP block that could not
    be read (``page#pgp N``: ``tally`` numbers the page's blocks, read or not)."""
    if not text or not isinstance(text, str):
        return []
    try:
        res = scan_text(text, market_id=market_id, account_handle=handle,
                        listing_ref=listing_ref, field=field_name, locator=locator)
    except Exception as exc:  # noqa: BLE001 - hostile text must not lose the page's other records
        return [QuarantineRecord(locator=locator, reason=f"identifier extraction failed on "
                                 f"{field_name}: {type(exc).__name__}: {exc}"[:400],
                                 field=field_name, excerpt=text[:200], market_id=market_id)]
    out: list[Record] = list(res.records)
    for block in res.pgp_blocks:
        tally[0] += 1
        if block.error:
            out.append(QuarantineRecord(
                locator=f"page#pgp {tally[0]}", field=field_name, market_id=market_id,
                reason=f"PGP key block {tally[0]} in field '{field_name}': "
                       f"{block.error}"[:500], excerpt=block.armored[:300]))
    return out


# every str field of these records is capped at MAX_FIELD_CHARS, the cut recorded
_CAPPED: dict[type, tuple[str, ...]] = {
    cls: tuple(f.name for f in fields(cls) if str(f.type).startswith(("str", "list")))
    for cls in (ListingRecord, AccountRecord, FeedbackRecord)}


def _cap_fields(rec: Record, cls: type) -> list[CutRecord]:
    """Cut ``rec``'s text fields longer than the cap (in place); the cuts made."""
    cuts: list[CutRecord] = []
    for name in _CAPPED[cls]:
        value = getattr(rec, name)
        if not value:
            continue
        if type(value) is str:
            if len(value) > MAX_FIELD_CHARS:
                value, cut = cap_text(value, name, getattr(rec, "locator", ""),
                                      market_id=getattr(rec, "market_id", None))
                setattr(rec, name, value)
                if cut is not None:
                    cuts.append(cut)
        elif type(value) is list and any(len(v) > MAX_FIELD_CHARS for v in value
                                         if type(v) is str):
            kept = []
            for v in value:
                v, cut = cap_text(v, name, getattr(rec, "locator", ""),
                                  market_id=getattr(rec, "market_id", None))
                kept.append(v)
                if cut is not None:
                    cuts.append(cut)
            setattr(rec, name, kept)
    return cuts


def _with_cuts(recs: list[Record]) -> list[Record]:
    """``recs`` with a ``CutRecord`` after each record whose text fields were cut."""
    out: list[Record] = []
    for r in recs:
        out.append(r)
        cls = type(r)
        if cls in _CAPPED:
            out += _cap_fields(r, cls)
    return out


# -- skip recognisers ----------------------------------------------------------------------

_GENERIC_SKIPS: tuple[tuple[str, str, Any], ...] = (
    ("redirect", "meta refresh redirect",
     {"all": [{"css": "meta[http-equiv='refresh' i]"}, {"not": {"text": r"\S[\s\S]{600}"}}]}),
    ("anti_ddos", "anti-DDoS challenge",
     {"any": [{"title": r"(?i)ddos|checking your browser|just a moment"},
              {"text": r"(?i)ddos protection|checking your browser|"
                       r"verify (?:that )?you are human"}]}),
    ("captcha", "CAPTCHA challenge",
     {"all": [{"any": [{"css": "img[alt*='captcha' i], img[src*='captcha' i], "
                              "input[name*='captcha' i]"},
                       {"title": r"(?i)captcha"}]},
              {"not": {"text": r"\S[\s\S]{3000}"}}]}),
    ("login", "login page",
     {"any": [{"title": r"(?i)\blog ?in\b|sign ?in"},
              {"all": [{"css": "input[type='password' i]"},
                       {"not": {"text": r"\S[\s\S]{6000}"}}]}]}),
    ("not_found", "page not found",
     {"any": [{"title": r"(?i)\b404\b|not found"},
              {"all": [{"text": r"(?i)\b(?:404|not found|no longer exists|does not exist)\b"},
                       {"not": {"text": r"\S[\s\S]{12000}"}}]}]}),
    ("error", "server error page",
     {"any": [{"title": r"(?i)\berror\b|\b50[0-4]\b"},
              {"all": [{"text": r"(?i)internal server error|bad gateway|service unavailable"},
                       {"not": {"text": r"\S[\s\S]{3000}"}}]}]}),
    ("home", "main/home page",
     {"any": [{"title": r"(?i)\bhome\b|welcome"}, {"text": r"(?i)^\s*welcome\b"}]}),
    ("empty", "page has no visible text", {"not": {"text": r"\S"}}),
)


def _generic_skip(page: Page) -> tuple[str, str] | None:
    for ptype, reason, cond in _GENERIC_SKIPS:
        if _holds(cond, page):
            return ptype, reason
    return None


# -- extraction -------------------------------------------------------------------------------


def warm(templates: Iterable[Template] | None = None) -> None:
    """Prepare now what extraction prepares on first use: detection plans, compiled
    field rules, and the regexes and literal plans of every condition and rule of
    ``templates`` (all loaded ones by default) and of the built-in skip recognisers.

    Worker processes forked after this start with it, instead of each preparing it
    again on its first pages (about a tenth of a second of CPU per worker on the real
    pages). Nothing here changes what a page gives; a pattern that fails to prepare is
    left to fail (or not) where it is used, as before.
    """
    tpls = load_templates() if templates is None else tuple(templates)
    conds: list[Any] = [cond for _, _, cond in _GENERIC_SKIPS]
    for tpl in tpls:
        _detect_plan(tpl)
        conds += list(tpl.detect) + [sk.get("when") for sk in tpl.skip]
        if tpl.observed_at:
            _warm_field(tpl.observed_at)
        for rules in tpl.rates.values():
            _warm_field(rules)
        for spec in tpl.pages:
            conds.append(spec.when)
            for name, sec in spec.sections.items():
                if name == "pgp":
                    _warm_field(sec)
                elif name in _ROW_RECORDS and isinstance(sec, dict):
                    conds.append(sec.get("when"))
                    _warm_section(sec.get("fields"))
                else:
                    _warm_section(sec)
    for cond in conds:
        _warm_cond(cond)
    parse_date("1 Jan 2019", None)  # imports and compiles what strptime uses
    crc24(bytes(5000))  # builds the armor checksum's by-position table (4 MiB, 25 ms)


def _warm_field(rules: Any) -> None:
    try:
        _field_fns(rules)
        for rule in _rule_list(rules):
            for key in ("regex", "split", "text_regex"):
                if isinstance(rule.get(key), str):
                    _rx(rule[key])
            if isinstance(rule.get("label"), str):
                _label_plan(rule["label"])
    except Exception:  # noqa: BLE001, S110 - a bad rule fails where it is used, as before
        pass


def _warm_section(spec: Any) -> None:
    if not isinstance(spec, dict):
        return
    try:
        _section_fns(spec)
    except Exception:  # noqa: BLE001 - as in _warm_field
        return
    for rules in spec.values():
        _warm_field(rules)


def _warm_cond(cond: Any) -> None:
    if isinstance(cond, list):
        for c in cond:
            _warm_cond(c)
        return
    if not isinstance(cond, dict):
        return
    for key, val in cond.items():
        if key in ("all", "any"):
            _warm_cond(list(val) if isinstance(val, (list, tuple)) else val)
        elif key == "not":
            _warm_cond(val)
        elif key in ("title", "text", "html", "domain", "source") and isinstance(val, str):
            try:
                _literal_plan(val)
                _required_prefix(val)
                _rx(val)
            except Exception:  # noqa: BLE001, S110 - as in _warm_field
                pass


@dataclass(slots=True)
class PageResult:
    """What one page gave: its market, page type and records (all locators ``page...``)."""

    market_id: str | None
    page_type: str
    records: list[Record]
    notes: tuple[str, ...] = ()


def _missing(required: list[str], ctx: dict[str, dict[str, Any]]) -> str | None:
    for req in required:
        sec, _, name = req.partition(".")
        v = ctx.get(sec, {}).get(name)
        if v is None or v == "" or v == []:
            return req
    return None


def _rows(spec: dict[str, Any], page: Page) -> list[LexborNode]:
    rows = _css(page.tree.root, spec["rows"], page)
    _register_rows(page, rows)
    if "when" in spec:
        rows = [r for r in rows if _holds(spec["when"], page, r)]
    return rows


def _build(page: Page, tpl: Template, spec: PageSpec, where: str) -> list[Record]:
    """The records of one page of type ``spec``, free-text fields capped (the cuts
    recorded), and a quarantine record per PGP block that could not be read."""
    return _with_cuts(_records(page, tpl, spec, where))


def _records(page: Page, tpl: Template, spec: PageSpec, where: str) -> list[Record]:
    ctx: dict[str, dict[str, Any]] = {"page": {"type": spec.type, "title": page.title,
                                               "url": page.source}}
    tally = [0]
    root = page.root
    secs = spec.sections
    for name in ("listing", "account"):
        if name in secs:
            _section_values(secs[name], page, root, ctx, name)
    missing = _missing(spec.required, ctx)
    if missing:
        return [QuarantineRecord(
            locator="page", field=missing, market_id=tpl.market,
            reason=f"{where}: {tpl.market} {spec.type} page: required field '{missing}' "
                   f"not found", excerpt=page.title[:200])]
    recs: list[Record] = []
    mid = tpl.market
    listing_vals = ctx.get("listing", {})
    account_vals = ctx.get("account", {})
    listing_ref = listing_vals.get("listing_ref")
    handle = account_vals.get("handle") or listing_vals.get("vendor_handle")
    if listing_vals:
        vals = _coerce(ListingRecord, listing_vals, page)
        if not vals.get("listing_ref") and vals.get("url"):
            vals["listing_ref"] = vals["url"]
        if vals.get("listing_ref") and vals.get("title"):
            vals.setdefault("vendor_handle", handle)
            recs.append(ListingRecord(market_id=mid, observed_at=page.observed_at,
                                      locator="page", **vals))
            recs += _identifiers(vals.get("description"), market_id=mid, handle=handle,
                                 listing_ref=vals["listing_ref"], field_name="description",
                                 locator="page", tally=tally)
        else:
            recs.append(QuarantineRecord(
                locator="page", market_id=mid, field="listing.title",
                reason=f"{where}: {mid} {spec.type} page: listing without "
                       f"{'listing_ref' if vals.get('title') else 'title'}"))
    if account_vals.get("handle"):
        vals = _coerce(AccountRecord, account_vals, page)
        recs.append(AccountRecord(market_id=mid, observed_at=page.observed_at,
                                  locator="page#vendor", **vals))
        for key, fname in (("profile_text", "profile"), ("terms_text", "terms")):
            recs += _identifiers(vals.get(key), market_id=mid, handle=vals["handle"],
                                 listing_ref=None, field_name=fname, locator="page#vendor",
                                 tally=tally)
    if "pgp" in secs:
        blocks = _field(secs["pgp"], page, root, ctx)
        blocks = blocks if isinstance(blocks, list) else [blocks] if blocks else []
        for block in blocks:
            recs += _identifiers(str(block), market_id=mid, handle=handle, listing_ref=None,
                                 field_name="pgp", locator="page#pgp", tally=tally)
        if blocks and not any(isinstance(r, (ListingRecord, AccountRecord)) for r in recs) \
                and handle:
            recs.append(AccountRecord(market_id=mid, handle=handle, observed_at=page.observed_at,
                                      locator="page#vendor"))
    for name, cls, unit in (("feedback", FeedbackRecord, "feedback"),
                            ("listings", ListingRecord, "row")):
        if name not in secs:
            continue
        spec_rows = secs[name]
        for i, row in enumerate(_rows(spec_rows, page), start=1):
            loc = f"page#{unit} {i}"
            row_ctx = dict(ctx)
            vals = _coerce(cls, _section_values(spec_rows["fields"], page, row, row_ctx, "row"),
                           page)
            recs += _row_record(cls, vals, mid, page, loc, where, spec.type, handle,
                                listing_ref, tally)
    if "accounts" in secs:
        recs += _row_accounts(secs["accounts"], page, ctx, mid, where, spec.type)
    return recs


def _page_rates(tpl: Template, page: Page) -> dict[str, float]:
    """The exchange rates the page itself states (the market's "USD/BTC 2711.90"), as USD
    per unit of each currency of the template's ``rates``; a value that is no positive
    number in a sane range is left out (the table's rate is used for it)."""
    out: dict[str, float] = {}
    for ccy, rules in tpl.rates.items():
        v = _field(rules, page, page.root, {})
        v = v if isinstance(v, float) else parse_float(v) if isinstance(v, str) else None
        if v is not None and math.isfinite(v) and _RATE_RANGE[0] <= v <= _RATE_RANGE[1]:
            out[ccy] = v
    return out


def _row_accounts(spec_rows: dict[str, Any], page: Page, ctx: dict[str, dict[str, Any]],
                  mid: str, where: str, ptype: str) -> list[Record]:
    """The vendors a page shows beside its rows (a category page's "Counterfeits
    [+628|-9] Level 9 (800+)" under each listing): one ``AccountRecord`` per distinct
    observation, located at the first row showing it (``page#account N``); a vendor shown
    the same way beside five listings is one observation, not five."""
    out: list[Record] = []
    seen: set[str] = set()
    for i, row in enumerate(_rows(spec_rows, page), start=1):
        loc = f"page#account {i}"
        vals = _coerce(AccountRecord, _section_values(spec_rows["fields"], page, row, dict(ctx),
                                                      "row"), page)
        if not vals.get("handle"):
            out.append(QuarantineRecord(locator=loc, market_id=mid, field="accounts.handle",
                                        reason=f"{where}: {mid} {ptype} page: {loc} has no "
                                               "handle"))
            continue
        key = repr(sorted(vals.items()))
        if key in seen:
            continue
        seen.add(key)
        out.append(AccountRecord(market_id=mid, observed_at=page.observed_at, locator=loc,
                                 **vals))
    return out


def _row_record(cls: type, vals: dict[str, Any], mid: str, page: Page, loc: str, where: str,
                ptype: str, handle: str | None, listing_ref: str | None,
                tally: list[int]) -> list[Record]:
    if cls is FeedbackRecord:
        vals.setdefault("vendor_handle", handle)
        vals.setdefault("listing_ref", listing_ref)
        vals.setdefault("text", "")
        if not (vals["text"] or vals.get("rating") is not None or vals.get("buyer_masked")):
            return [QuarantineRecord(locator=loc, market_id=mid, field="feedback.text",
                                     reason=f"{where}: {mid} {ptype} page: {loc} has no text,"
                                            f" rating or buyer")]
        out: list[Record] = [FeedbackRecord(market_id=mid, observed_at=page.observed_at,
                                            locator=loc, **vals)]
        return out + _identifiers(vals["text"], market_id=mid, handle=vals.get("vendor_handle"),
                                  listing_ref=vals.get("listing_ref"), field_name="feedback",
                                  locator=loc, tally=tally)
    if not vals.get("listing_ref") and vals.get("url"):
        vals["listing_ref"] = vals["url"]
    if not vals.get("vendor_handle") and handle:
        vals["vendor_handle"] = handle
    vals.setdefault("vendor_handle", None)
    for req in ("listing_ref", "title"):
        if not vals.get(req):
            return [QuarantineRecord(locator=loc, market_id=mid, field=f"listings.{req}",
                                     reason=f"{where}: {mid} {ptype} page: {loc} has no {req}")]
    return [ListingRecord(market_id=mid, observed_at=page.observed_at, locator=loc, **vals)]


def extract_page(data: bytes | str, source: str = "", *,
                 templates: Iterable[Template] | None = None,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> PageResult:
    """Decode, recognise and extract one saved page. Never raises on page content."""
    where = source or "page"
    notes: tuple[str, ...] = ()
    utf8: bytes | None = None
    if isinstance(data, bytes):
        decoded = decode_page(data, max_bytes=max_bytes)
        raw, notes, utf8 = decoded.text, decoded.notes, decoded.utf8
    else:
        raw = data[:max_bytes]
    tpls = tuple(templates) if templates is not None else load_templates()
    try:
        page = Page(raw, source, utf8)
    except LimitExceeded as exc:  # too deep to parse: the page is quarantined, not read
        return PageResult(None, "unparsed", [QuarantineRecord(
            locator="page", reason=f"{where}: {exc}", excerpt=raw[:200], limit=exc.limit)],
            notes)
    tpl = detect_market(page, tpls)
    trunc = [n for n in notes if n.startswith("truncated")]
    result = _extract(page, tpl, where)
    if trunc:
        result.records.append(QuarantineRecord(
            locator="page#truncated", market_id=result.market_id, field=None,
            reason=f"{where}: page {trunc[0]}; content after the cap was not read"))
    elif tpl is not None and (cut := cut_short(raw)) is not None:
        _say_cut(result, where, cut, {(str(s["type"]), str(s["reason"])) for s in tpl.skip})
    result.notes = notes
    return result


_CUT_TAIL = 4096
"""Characters at the end of a page searched for its closing ``</body>`` or ``</html>``."""


def cut_short(raw: str) -> str | None:
    """How a market page looks cut short (a save or a copy that stopped part-way), or
    None: its last :data:`_CUT_TAIL` characters close neither ``<body>`` nor ``<html>``.

    Every market's software closes its pages; a page cut part-way ends inside a list of
    rows, a tag or a sentence. What it ends with (at most 40 characters, as a quoted
    literal) is given, for the analyst to see.
    """
    tail = raw[-_CUT_TAIL:]
    low = tail.lower()
    if "</html" in low or "</body" in low:
        return None
    return f"no </body> or </html>; it ends {' '.join(tail[-60:].split())[-40:]!r}"


def _say_cut(result: PageResult, where: str, how: str, rules: set[tuple[str, str]]) -> None:
    """Mark a market page cut short: a quarantined unit ``page#cut`` saying so.

    When nothing of the page could be read because of the cut (it was taken for a page
    without records or for no page type), the note replaces the skip, whose reason it
    quotes, so that the page counts as quarantined, not skipped. A page one of the
    template's skip ``rules`` (type, reason) names (a login form, a redirect) is still
    what it is, and rows read from the part that arrived are kept: the note goes after
    them.
    """
    skips = [r for r in result.records if isinstance(r, SkipRecord)]
    read_as = "; ".join(f"read as {r.page_type}: {r.reason}" for r in skips)
    note = QuarantineRecord(
        locator="page#cut", market_id=result.market_id, field=None,
        reason=f"{where}: page looks cut short ({how}): what followed the cut was never "
               f"saved; a complete copy is needed" + (f" ({read_as})" if read_as else ""))
    by_rule = any((r.page_type, r.reason) in rules for r in skips)
    if not by_rule and all(isinstance(r, (SkipRecord, QuarantineRecord))
                           for r in result.records):
        # the page is not skipped (its skip reason is in the note): it is quarantined
        result.records[:] = [note, *(r for r in result.records if not isinstance(r, SkipRecord))]
    else:
        result.records.append(note)


def _extract(page: Page, tpl: Template | None, where: str) -> PageResult:
    if tpl is None:
        generic = _generic_skip(page)
        ptype, why = generic if generic else ("unknown", "no template matches")
        if generic:
            why = f"{why} (no template matches)"
        return PageResult(None, ptype, [SkipRecord(page_type=ptype, reason=why, locator="page")])
    mid = tpl.market
    for s in tpl.skip:
        if _holds(s["when"], page):
            return PageResult(mid, s["type"], [SkipRecord(page_type=str(s["type"]),
                                                          reason=str(s["reason"]),
                                                          market_id=mid, locator="page")])
    if tpl.observed_at:
        obs = _field(tpl.observed_at, page, page.root, {})
        page.observed_at = obs if isinstance(obs, datetime) else parse_date(obs) if obs else None
    for spec in tpl.pages:
        if not _holds(spec.when, page):
            continue
        recs = _build(page, tpl, spec, where)
        if not recs:
            return PageResult(mid, spec.type, [SkipRecord(
                page_type=spec.type, reason="page shows no records", market_id=mid,
                locator="page")])
        if any(not isinstance(r, QuarantineRecord) for r in recs):
            recs.insert(0, MarketRecord(market_id=mid, name=tpl.name, onion=tpl.onion,
                                        observed_at=page.observed_at, page_type=spec.type,
                                        usd_rates=_page_rates(tpl, page)))
        return PageResult(mid, spec.type, recs)
    generic = _generic_skip(page)
    ptype, why = generic if generic else ("unknown", f"no page type of template {mid} matches")
    return PageResult(mid, ptype, [SkipRecord(page_type=ptype, reason=why, market_id=mid,
                                              locator="page")])


def _main(argv: list[str]) -> int:
    """``python -m darkmap.extract.engine [--templates DIR]... PAGE...``: print what each
    page yields. Every template is checked first: a bad one is named on stderr (exit 2)."""
    import argparse  # noqa: PLC0415 - only this debugging entry point needs it

    parser = argparse.ArgumentParser(
        prog="python -m darkmap.extract.engine",
        description="Show what saved pages yield through the market templates.")
    parser.add_argument("--templates", action="append", default=[], metavar="DIR",
                        help="also load the templates in DIR (to try one before copying it "
                             "into src/darkmap/extract/templates/)")
    parser.add_argument("pages", nargs="+", metavar="PAGE")
    args = parser.parse_args(argv)
    try:
        tpls = load_templates(args.templates) if args.templates else load_templates()
    except BadInputError as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201 - a debugging entry point
        return 2
    failed = 0
    for arg in args.pages:
        try:
            data = Path(arg).read_bytes()
        except OSError as exc:
            print(f"error: {arg}: cannot read: {exc.strerror or exc}", file=sys.stderr)  # noqa: T201
            failed = 1
            continue
        res = extract_page(data, arg, templates=tpls)
        _print_result(arg, res)
        if res.page_type == "unknown":  # say why no template or page type was taken
            for line in _why_unknown(data, arg, res, tpls):
                print(f"  why: {line}")  # noqa: T201 - a debugging entry point
    return failed


def _why_unknown(data: bytes, source: str, res: PageResult,
                 templates: tuple[Template, ...]) -> list[str]:
    """Why a page was not read: each template's detection score against its threshold
    and the rules that held (when no market was detected), or each page type's ``when``
    (when the market was detected but none of its page types matched)."""
    page = Page(decode_page(data).text, source)
    out: list[str] = []
    for tpl in templates:
        if res.market_id is not None and tpl.market != res.market_id:
            continue
        if res.market_id is None:
            held = [r for r in tpl.detect if _holds(r, page)]
            score = sum(float(r.get("weight", 1)) for r in held)
            if held:
                out.append(f"{tpl.market} ({tpl.path}) scored {score:g} of threshold "
                           f"{tpl.threshold:g}; rules that held: {held}")
            continue
        for spec in tpl.pages:
            out.append(f"page type {spec.type}: when {spec.when} does not hold")
    if res.market_id is None and not out:
        out.append("no detect rule of any template holds on this page")
    return out


def _print_result(arg: str, res: PageResult) -> None:
    """Print one page's market, type and records (long texts cut)."""
    print(f"== {arg}: market={res.market_id} type={res.page_type} notes={res.notes}")  # noqa: T201
    for r in res.records:
        d = {f.name: getattr(r, f.name) for f in fields(r)
             if getattr(r, f.name) not in (None, "", [], MISSING)}
        for k in ("description", "profile_text", "terms_text", "text", "armored"):
            if isinstance(d.get(k), str) and len(d[k]) > 80:
                d[k] = d[k][:80] + "..."
        print(f"  {type(r).__name__} {d}")  # noqa: T201 - a debugging entry point


def iter_records(results: Iterable[PageResult]) -> Iterator[Record]:
    """Flatten page results into records."""
    for res in results:
        yield from res.records


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
