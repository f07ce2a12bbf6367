"""Baseline: a BeautifulSoup scraper of the real saved pages, timed like darkmap's (#21).

Issue #21 asks darkmap's page ingest to keep its lead over a BeautifulSoup parse of the
same pages that reads the same fields. This is that parse: a plain scraper written with
BeautifulSoup 4 (Python's own ``html.parser``; lxml is not in the lock) and soupsieve's
CSS selectors, driven by darkmap's own YAML templates for the five real markets
(``src/darkmap/extract/templates/{empire,cryptonia,dream,apollon,hansa}.yaml``), so the
fields it reads are the engine's by construction. Per page it decodes the bytes (UTF-8,
BOM aware, else cp1252), parses once, detects the market (the templates' ``detect``
rules: title, css, text, html), runs the ``skip`` rules, takes the first page type whose
``when`` holds and reads every field of that page type: the first rule giving a
non-empty value wins (``css`` through ``select``, ``attr``, ``regex``, ``label``,
``pick``, ``join``, ``split``, ``map``, ``ref``, ``const``, ``source``), row sections
(``listings``, ``feedback``) row by row. Values are stripped text, a regex group, or an
int or float; prices and dates stay text (a plain scraper's parse, not darkmap's).

Not copied from darkmap's engine: its query caches, row-set sharing, literal fast paths,
the nesting and size limits for hostile pages, the page's ``observed_at`` (server time),
the built-in recognisers of pages no template types, and identifier and PGP scans.
The engine's ``:lexbor-contains("X" i)`` becomes soupsieve's ``:-soup-contains`` of X
as written, lower- and upper-cased.

``bench_bs4(rounds)`` times decode + parse + fields of every page in memory (best and
median wall seconds, CPU seconds, pages/s). ``main()`` also times darkmap's
``extract_page`` on the same pages in the same run (``--ingest``: darkmap's full ingest
too, ``bench/ingest.py``'s ``bench_ingest``), and checks that the baseline reads what
darkmap reads: the pages whose market and page type agree with ``extract_page``'s, and
the share of darkmap's non-empty listing and account field values that the baseline
also found. Pinned to one core; prints JSON; never passes or fails.

    .venv/bin/python bench/bs4_pages.py [--rounds N] [--ingest] [--details]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

import soupsieve
import yaml
from bs4 import BeautifulSoup, NavigableString, PageElement, Tag

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import _startup as ingest_startup  # bench/ingest.py: the same pages and timing
from ingest import bench_extract, bench_ingest, page_blobs, timed_pages

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PAGES = Path(os.environ.get("DARKMAP_DATA", DATA)) / "pages"
TEMPLATES = ROOT / "src" / "darkmap" / "extract" / "templates"
MARKETS = ("empire", "cryptonia", "dream", "apollon", "hansa")
PARSER = "html.parser"

_LABEL_TRIM = " \t\r\n:|-–—\u00a0"
_INT_RE = re.compile(r"[-+]?\d[\d,]*")
_FLOAT_RE = re.compile(r"[-+]?(?:\d[\d,]*(?:\.\d+)?|\.\d+)")
_CONTAINS_RE = re.compile(r':lexbor-contains\("([^"]*)"(\s+i)?\)')
_LITERAL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 &/'-]*[A-Za-z0-9]|[A-Za-z0-9]")


# -- templates --------------------------------------------------------------------------


def _soup_selector(selector: str) -> str:
    """A template selector for soupsieve: lexbor's ``:lexbor-contains`` rewritten."""
    def repl(m: re.Match[str]) -> str:
        word = m.group(1)
        variants = dict.fromkeys([word, word.lower(), word.upper()] if m.group(2) else [word])
        return ":-soup-contains(" + ", ".join(json.dumps(v) for v in variants) + ")"
    return _CONTAINS_RE.sub(repl, selector)


def _rewrite(node: Any) -> Any:
    """The template with every ``css``/``rows``/``within`` selector made soupsieve's."""
    if isinstance(node, list):
        return [_rewrite(n) for n in node]
    if isinstance(node, dict):
        return {k: _soup_selector(v) if k in ("css", "rows", "within") and isinstance(v, str)
                else _rewrite(v) for k, v in node.items()}
    return node


def load_templates(markets: tuple[str, ...] = MARKETS) -> list[dict[str, Any]]:
    """The real markets' YAML templates (darkmap's files), selectors made soupsieve's."""
    out = []
    for name in markets:
        with open(TEMPLATES / f"{name}.yaml", encoding="utf-8") as fh:
            out.append(_rewrite(yaml.safe_load(fh)))
    return out


# -- the page ---------------------------------------------------------------------------


def decode(data: bytes) -> str:
    """A plain scraper's decode: UTF-8 (a BOM dropped), else Windows-1252."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def clean(text: str) -> str:
    """Whitespace collapsed."""
    return " ".join(text.split())


def clean_lines(text: str) -> str:
    """Multi-line text: each line stripped, blank lines dropped."""
    return "\n".join(s for s in (line.strip() for line in text.splitlines()) if s)


def own_text(tag: Tag) -> str:
    """The element's own text (its text children, not its elements')."""
    return clean("".join(s for s in tag.children if type(s) is NavigableString))


def node_text(node: PageElement) -> str:
    """Visible text of an element or a text node (comments and the like give nothing)."""
    if isinstance(node, Tag):
        return clean(node.get_text(" "))
    return clean(str(node)) if type(node) is NavigableString else ""


class Page:
    """One parsed page: the soup, its raw HTML, title and (once asked) visible text."""

    def __init__(self, raw: str, source: str) -> None:
        self.raw = raw
        self.source = source
        self.soup = BeautifulSoup(raw, PARSER)
        title = self.soup.title
        self.title = clean(title.get_text()) if title is not None else ""
        self._text: str | None = None

    @property
    def text(self) -> str:
        """The page's visible text (bs4 leaves script and style strings out)."""
        if self._text is None:
            self._text = self.soup.get_text("\n")
        return self._text


@lru_cache(maxsize=1024)
def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@lru_cache(maxsize=1024)
def _css(selector: str) -> soupsieve.SoupSieve:
    """A selector compiled once. NOSTRICT: soupsieve 4 otherwise refuses a complex
    relative selector in ``:has()`` (``div.row:has(> div > div.item-details)``)."""
    return soupsieve.compile(selector, flags=soupsieve.NOSTRICT)


def select(scope: Tag, selector: str) -> list[Tag]:
    """``scope.select(selector)``."""
    return _css(selector).select(scope)


def select_one(scope: Tag, selector: str) -> Tag | None:
    """``scope.select_one(selector)``."""
    return _css(selector).select_one(scope)


def holds(cond: Any, page: Page, scope: Tag | None = None) -> bool:
    """A template condition (``css``, ``title``, ``text``, ``html``, ``all``...)."""
    if isinstance(cond, list):
        return all(holds(c, page, scope) for c in cond)
    for key, val in cond.items():
        if key == "weight":
            continue
        if key == "css":
            ok = select_one(scope if scope is not None else page.soup, val) is not None
        elif key == "title":
            ok = _rx(val).search(page.title) is not None
        elif key == "text":
            text = scope.get_text("\n") if scope is not None else page.text
            ok = _rx(val).search(text) is not None
        elif key in ("html", "domain"):
            ok = _rx(val).search(page.raw) is not None
        elif key == "source":
            ok = _rx(val).search(page.source) is not None
        elif key == "all":
            ok = all(holds(c, page, scope) for c in val)
        elif key == "any":
            ok = any(holds(c, page, scope) for c in val)
        elif key == "not":
            ok = not holds(val, page, scope)
        else:
            ok = False
        if not ok:
            return False
    return True


_COST = {"source": 0, "title": 1, "domain": 2, "html": 2, "text": 3, "css": 4}


def detect(page: Page, templates: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The template whose detect rules score highest, at or above its threshold.

    Cheap rules first; a template is given up once its other rules cannot lift it to
    its threshold (a scraper author's obvious short cut, not the engine's planner).
    """
    best: tuple[float, dict[str, Any]] | None = None
    for tpl in templates:
        det = tpl["detect"]
        threshold = float(det.get("threshold", 1))
        rules = sorted(det["rules"], key=lambda r: min(_COST.get(k, 5) for k in r))
        score, left = 0.0, sum(float(r.get("weight", 1)) for r in rules)
        for rule in rules:
            weight = float(rule.get("weight", 1))
            left -= weight
            if holds(rule, page):
                score += weight
            if score + left < threshold:
                break
        if score >= threshold and (best is None or score > best[0]):
            best = (score, tpl)
    return best[1] if best else None


# -- field rules ------------------------------------------------------------------------


def _after(node: Tag, siblings: bool) -> str:
    """The text after a label element: its next siblings', else its parent's (2 up)."""
    cur: Tag | None = node
    for _ in range(3):
        if cur is None:
            return ""
        sib = cur.next_sibling
        while sib is not None:
            txt = node_text(sib).strip(_LABEL_TRIM)
            if txt:
                if not siblings:
                    return txt
                parts = [txt]
                nxt = sib.next_sibling
                while nxt is not None and not (isinstance(nxt, Tag) and nxt.name == "br"):
                    more = node_text(nxt).strip(" \t\r\n|\u00a0")
                    if more:
                        parts.append(more)
                    nxt = nxt.next_sibling
                return " ".join(parts)
            sib = sib.next_sibling
        cur = cur.parent
    return ""


@lru_cache(maxsize=256)
def _label_plan(pattern: str) -> tuple[re.Pattern[str], str]:
    """The label regex (case-insensitive unless it sets flags) and its longest literal."""
    rx = re.compile(pattern if pattern.startswith("(?") else "(?i)" + pattern)
    words = _LITERAL_RE.findall(re.sub(r"\\.|\[.*?\]|\(\?[a-z]+\)", " ", pattern))
    return rx, max(words, key=len, default="").lower()


def label_values(rule: dict[str, Any], scope: Tag) -> list[str]:
    """The values next to the elements whose own text matches the label regex."""
    rx, word = _label_plan(rule["label"])
    strings = scope.find_all(string=lambda s: word in s.lower()) if word else \
        scope.find_all(string=True)
    out: list[str] = []
    seen: set[int] = set()
    for s in strings:
        tag = s.parent
        if type(s) is not NavigableString or tag is None or id(tag) in seen:
            continue
        seen.add(id(tag))
        own = own_text(tag)
        m = rx.search(own) if len(own) <= 300 else None
        if m is None:
            continue
        rest = own[m.end():].strip(_LABEL_TRIM)
        if not rest and rule.get("inner"):
            deep = clean(tag.get_text(" "))
            if len(deep) <= 300 and deep.startswith(own) and len(deep) > len(own):
                rest = deep[len(own):].strip(_LABEL_TRIM)
        value = rest or _after(tag, bool(rule.get("siblings")))
        if value:
            out.append(value)
    return out


def raw_values(rule: dict[str, Any], page: Page, scope: Tag,
               ctx: dict[str, dict[str, Any]]) -> list[Any]:
    """What a rule's source gives, before regex, map and type."""
    if "const" in rule:
        return [rule["const"]]
    if "ref" in rule:
        sec, _, name = str(rule["ref"]).partition(".")
        val = ctx.get(sec, {}).get(name)
        return [val] if val not in (None, "", []) else []
    if "text_regex" in rule:
        return [page.text]
    if "source" in rule:
        val = {"title": page.title, "url": page.source, "page_text": page.text}.get(
            rule["source"], "")
        return [val] if val else []
    base: Tag = page.soup if rule.get("page") else scope
    if "within" in rule:
        inner = select_one(base, rule["within"])
        if inner is None:
            return []
        base = inner
    if "label" in rule:
        return label_values(rule, base)
    if rule.get("pick", "first") == "first" and not any(k in rule for k in ("join", "regex",
                                                                             "nth")):
        # the first element with a value: select_one, and only if it has none, all of them
        first = select_one(base, rule["css"])
        vals = _node_values(rule, [first]) if first is not None else []
        return vals if vals or first is None else _node_values(rule, select(base, rule["css"]))
    nodes = select(base, rule["css"])
    if rule.get("pick") == "count":
        return [len(nodes)]
    if "nth" in rule:
        n = int(rule["nth"])
        nodes = nodes[n:n + 1] if -len(nodes) <= n < len(nodes) else []
    return _node_values(rule, nodes)


def _node_values(rule: dict[str, Any], nodes: list[Tag]) -> list[Any]:
    """The non-empty attribute values or texts of ``nodes``."""
    if "attr" in rule:
        vals = []
        for node in nodes:
            v = node.get(rule["attr"])
            v = clean(" ".join(v) if isinstance(v, list) else v) if v else ""
            if v:
                vals.append(v)
        return vals
    if rule.get("own"):
        texts = [own_text(n) for n in nodes]
    elif rule.get("type") == "text":
        texts = [clean_lines(n.get_text("\n")) for n in nodes]
    else:
        texts = [clean(n.get_text(" ")) for n in nodes]
    return [t for t in texts if t]


def typed(value: Any, kind: str) -> Any:
    """A plain scraper's types: int and float from the first number; price needs one."""
    if not isinstance(value, str):
        return value
    if kind == "int":
        m = _INT_RE.search(value)
        return int(m.group(0).replace(",", "")) if m else None
    if kind == "float":
        m = _FLOAT_RE.search(value)
        return float(m.group(0).replace(",", "")) if m else None
    if kind == "price":
        return value if _FLOAT_RE.search(value) else None
    return value


def apply_rule(rule: dict[str, Any], page: Page, scope: Tag,
               ctx: dict[str, dict[str, Any]]) -> Any:
    """One rule's value: None, a value, or a list (``pick: all``, ``split``)."""
    vals = raw_values(rule, page, scope, ctx)
    pick = rule.get("pick", "first")
    if pick == "last":
        vals = vals[-1:]
    one = pick != "all" and "join" not in rule
    out: list[Any] = []
    for v in vals:
        if isinstance(v, str):
            if "regex" in rule or "text_regex" in rule:
                m = _rx(rule.get("regex") or rule["text_regex"]).search(v)
                if m is None:
                    continue
                v = next((g for g in m.groups() if g is not None), m.group(0)).strip()
            if "map" in rule:
                v = rule["map"].get(v, v)
        out.append(v)
        if one:
            break
    if not out:
        return None
    kind = rule.get("type", "str")
    if "join" in rule:
        return typed(str(rule["join"]).join(str(v) for v in out), kind)
    if "split" in rule:
        parts = [p.strip() for v in out for p in _rx(rule["split"]).split(str(v))]
        return list(dict.fromkeys(p for p in parts if p))
    if pick == "all" or kind == "list":
        return list(dict.fromkeys(str(v) for v in out if v != ""))
    return typed(out[0], kind)


def field_value(rules: Any, page: Page, scope: Tag, ctx: dict[str, dict[str, Any]]) -> Any:
    """The first non-empty value of a field's rules."""
    for rule in rules if isinstance(rules, list) else [rules]:
        try:
            val = apply_rule(rule, page, scope, ctx)
        except (ValueError, TypeError, re.error):
            val = None
        if val not in (None, "", []):
            return val
    return None


def section(spec: dict[str, Any], page: Page, scope: Tag,
            ctx: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    """Every field of a section that has a value (``ctx[name]``, for later ``ref``)."""
    vals: dict[str, Any] = {}
    ctx[name] = vals
    for fname, rules in spec.items():
        v = field_value(rules, page, scope, ctx)
        if v is not None:
            vals[fname] = v
    return vals


# -- a page ---------------------------------------------------------------------------------


@dataclass
class Scraped:
    """What the baseline read from one page."""

    market: str | None
    page_type: str
    listing: dict[str, Any] = field(default_factory=dict)
    account: dict[str, Any] = field(default_factory=dict)
    pgp: Any = None
    feedback: list[dict[str, Any]] = field(default_factory=list)
    listings: list[dict[str, Any]] = field(default_factory=list)

    def values(self) -> int:
        """The number of non-empty field values read."""
        n = len(self.listing) + len(self.account) + (self.pgp is not None)
        return n + sum(len(r) for r in self.feedback) + sum(len(r) for r in self.listings)


def scrape(data: bytes, source: str, templates: list[dict[str, Any]]) -> Scraped:
    """Decode, parse once and read one page's fields."""
    page = Page(decode(data), source)
    tpl = detect(page, templates)
    if tpl is None:
        return Scraped(None, "unknown")
    market = tpl["market"]
    for skip in tpl.get("skip") or []:
        if holds(skip["when"], page):
            return Scraped(market, skip["type"])
    for spec in tpl["pages"]:
        if not holds(spec["when"], page):
            continue
        out = Scraped(market, spec["type"])
        ctx: dict[str, dict[str, Any]] = {}
        for name in ("listing", "account"):
            if spec.get(name):
                setattr(out, name, section(spec[name], page, page.soup, ctx, name))
        if spec.get("pgp"):
            out.pgp = field_value(spec["pgp"], page, page.soup, ctx)
        for name in ("feedback", "listings"):
            rows_spec = spec.get(name)
            if not rows_spec:
                continue
            rows = select(page.soup, rows_spec["rows"])
            if "when" in rows_spec:
                rows = [r for r in rows if holds(rows_spec["when"], page, r)]
            setattr(out, name, [section(rows_spec["fields"], page, row, dict(ctx), "row")
                                for row in rows])
        # rows default to the page's vendor (and feedback to its listing), as documented
        handle = out.account.get("handle") or out.listing.get("vendor_handle")
        ref = out.listing.get("listing_ref")
        for row in out.listings:
            if handle and not row.get("vendor_handle"):
                row["vendor_handle"] = handle
        for row in out.feedback:
            if handle and not row.get("vendor_handle"):
                row["vendor_handle"] = handle
            if ref and not row.get("listing_ref"):
                row["listing_ref"] = ref
        return out
    return Scraped(market, "unknown")


# -- timing -------------------------------------------------------------------------------


def bench_bs4(rounds: int = 5) -> dict[str, Any]:
    """Decode + parse + field extraction of every real page with BeautifulSoup, in memory."""
    pages = page_blobs(PAGES)
    templates = load_templates()
    found: list[Scraped] = []

    def run() -> None:
        found[:] = [scrape(data, src, templates) for src, data in pages]

    out = timed_pages(run, rounds, pages)
    out["parser"] = PARSER
    out["field_values"] = sum(s.values() for s in found)
    out["found"] = found_per_type(found)
    return out


def bench_bs4_parse(rounds: int = 5) -> dict[str, Any]:
    """Decode + ``BeautifulSoup(html, "html.parser")`` of every page, no field read: the
    floor under :func:`bench_bs4`."""
    pages = page_blobs(PAGES)
    return timed_pages(lambda: [Page(decode(data), src) for src, data in pages], rounds, pages)


def found_per_type(found: list[Scraped]) -> dict[str, dict[str, dict[str, int]]]:
    """Per market and page type: pages, rows and non-empty field values read."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for s in found:
        t = out.setdefault(s.market or "-", {}).setdefault(
            s.page_type, {"pages": 0, "values": 0, "rows": 0})
        t["pages"] += 1
        t["values"] += s.values()
        t["rows"] += len(s.feedback) + len(s.listings)
    return out


# -- does it read what darkmap reads? --------------------------------------------------------

_COUNT_RE = re.compile(r"feedback_(positive|neutral|negative)(?:_(\d{1,3}[dwmy]))?")


def _darkmap_value(rec: Any, name: str) -> Any:
    """The value darkmap stored for template field ``name`` (None when it has no such)."""
    m = _COUNT_RE.fullmatch(name)
    if m is not None:
        window = m.group(2) or "all"
        return next((getattr(c, m.group(1)) for c in rec.feedback_counts
                     if c.window == window), None)
    names = {f.name for f in fields(rec)}
    return getattr(rec, name) if name in names else None


def compare(templates: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Market and page type agreement with ``extract_page``, and field coverage."""
    from darkmap.extract.engine import extract_page
    from darkmap.model.records import AccountRecord, FeedbackRecord, ListingRecord

    templates = templates or load_templates()
    specs = {(t["market"], p["type"]): p for t in templates for p in t["pages"]}
    market_ok = type_ok = 0
    mismatches = []
    per_section: dict[str, list[int]] = {}
    missed: Counter[str] = Counter()
    pages = page_blobs(PAGES)
    for src, data in pages:
        dm = extract_page(data, src)
        bs = scrape(data, src, templates)
        market_ok += dm.market_id == bs.market
        type_ok += dm.market_id == bs.market and dm.page_type == bs.page_type
        if (dm.market_id, dm.page_type) != (bs.market, bs.page_type):
            mismatches.append({"page": str(Path(src).relative_to(PAGES)),
                               "darkmap": [dm.market_id, dm.page_type],
                               "bs4": [bs.market, bs.page_type]})
        spec = specs.get((dm.market_id or "", dm.page_type))
        if spec is None or (bs.market, bs.page_type) != (dm.market_id, dm.page_type):
            continue
        for rec in dm.records:
            if isinstance(rec, ListingRecord) and rec.locator == "page":
                sec, ours = "listing", bs.listing
            elif isinstance(rec, AccountRecord) and rec.locator == "page#vendor":
                sec, ours = "account", bs.account
            elif isinstance(rec, (ListingRecord, FeedbackRecord)) and \
                    rec.locator.startswith(("page#row ", "page#feedback ")):
                i = int(rec.locator.rsplit(" ", 1)[1]) - 1
                sec = "listings" if isinstance(rec, ListingRecord) else "feedback"
                rows = bs.listings if sec == "listings" else bs.feedback
                ours = rows[i] if i < len(rows) else {}
            else:
                continue
            names = spec[sec]["fields"] if sec in ("listings", "feedback") else spec.get(sec) or {}
            tally = per_section.setdefault(sec, [0, 0, 0])
            for name in names:
                dv = _darkmap_value(rec, name)
                found = ours.get(name) not in (None, "", [])
                if dv in (None, "", []):
                    tally[2] += found  # the baseline read a value darkmap has not
                    continue
                tally[0] += 1
                if found:
                    tally[1] += 1
                else:
                    missed[f"{dm.market_id}.{sec}.{name}"] += 1
    n = len(pages)
    have = sum(v[0] for k, v in per_section.items() if k != "feedback")
    both = sum(v[1] for k, v in per_section.items() if k != "feedback")
    fb = per_section.get("feedback", [0, 0, 0])
    return {"pages": n, "market_agree": market_ok, "page_type_agree": type_ok,
            "market_agree_share": round(market_ok / n, 3),
            "page_type_agree_share": round(type_ok / n, 3), "mismatches": mismatches,
            # listing and account values: the page's listing and vendor, and listing rows
            "darkmap_values": have, "bs4_also_found": both,
            "coverage": round(both / have, 3) if have else None,
            "feedback_coverage": (round(fb[1] / fb[0], 3) if fb[0] else None),
            "coverage_per_section": {k: {"darkmap": v[0], "bs4_also": v[1],
                                         "share": round(v[1] / v[0], 3) if v[0] else None,
                                         "bs4_only": v[2]}
                                     for k, v in per_section.items()},
            "missed": dict(missed.most_common())}


def main() -> None:
    """Time the baseline and darkmap's extraction on one core; print the figures as JSON."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--ingest", action="store_true",
                    help="also darkmap's full ingest of the pages (bench/ingest.py)")
    ap.add_argument("--details", action="store_true",
                    help="list the mismatched pages and the fields the baseline missed")
    args = ap.parse_args()
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    except (AttributeError, OSError):
        pass
    load = os.getloadavg()
    out: dict[str, Any] = {"load_average": [round(x, 2) for x in load], "cpus": os.cpu_count(),
                           "rounds": args.rounds, "darkmap_extract": bench_extract(args.rounds)}
    if args.ingest:  # before the baseline, whose garbage would be the ingest's to collect
        out["darkmap_ingest_startup_seconds"] = round(ingest_startup(), 3)
        out["darkmap_ingest"] = bench_ingest(args.rounds, 1)
    out["bs4"] = bs = bench_bs4(args.rounds)
    out["bs4_parse_only"] = bench_bs4_parse(args.rounds)
    out["darkmap_extract_lead"] = round(bs["seconds"] / out["darkmap_extract"]["seconds"], 2)
    if args.ingest:  # the ingest reads the folder's LICENSE file too: one file more
        out["darkmap_ingest_lead"] = round(bs["seconds"] / out["darkmap_ingest"]["seconds"], 2)
    check = compare()
    if not args.details:
        check.pop("missed")
        check["mismatches"] = len(check["mismatches"])
    out["agreement"] = check
    out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
