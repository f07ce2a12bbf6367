"""How deep a page's elements nest, found before the HTML parser sees the page.

The parser (lexbor) and the CSS queries on its tree slow down with the depth of the tree
and the number of elements: 200,000 nested ``<div>`` take minutes, and a few thousand
misnested ``<b a1>``, ``<b a2>``... make the parser re-open (create anew) millions of
elements. :func:`check_page_nesting` lets through at once the pages too small to do
either (every real page: two counts in C); for the others it scans the tags once
(:func:`check_html_nesting`, linear time, no tree) and raises
:class:`~darkmap.errors.LimitExceeded` (``nesting_depth``) when the elements would nest
deeper than :data:`MAX_PAGE_NESTING` or be re-opened more than :data:`MAX_REOPENED`
times, or (``element_siblings``) when they would stand side by side in more than
:data:`MAX_SIBLING_PAIRS` pairs; the page is then quarantined instead of parsed.

A wide page is as costly as a deep one: a CSS query with a sibling combinator
(``ul.nav-tabs ~ *``) or ``:nth-child`` walks each element's preceding siblings, in C,
where the per-file time limit cannot stop it. 40,000 ``<a>`` side by side take 6.7 s per
such query and 200,000 take minutes. The scan counts, for every element, the square of
the number of its children (the pairs of siblings a query may walk) and sums them.

The scan models the HTML tree builder's stack of open elements and its list of
formatting elements: void and raw-text elements (``<script>``...), comments, end tags
that close what they name within its scope, start tags that close an open ``<p>``,
``<li>`` or table cell, implied table rows, SVG and MathML (where ``/>`` closes a tag),
and formatting elements (``<b>``...) that a misnested end tag pops and the parser
re-opens. Where it cannot tell what the parser does it counts deeper. Checked against
lexbor on random tag soup, it is rarely shallower than the parser; the few soups it
undercounts mix SVG/MathML with table parts, and the per-file time limit of ingest
still bounds them. Real market pages nest under 20 deep.

>>> html_depth("<html><body><div><p>one<p>two<br></div></body></html>")
2
>>> html_depth("<div>" * 10 + "<script>" + "<div>" * 100 + "</script>")
11
>>> check_html_nesting("<span>" * 300)
Traceback (most recent call last):
...
darkmap.errors.LimitExceeded: elements nested deeper than 256 (at character 1536)
"""

from __future__ import annotations

import math
import re
from collections import deque
from typing import NamedTuple

from darkmap.errors import LimitExceeded
from darkmap.model.limits import ELEMENT_SIBLINGS, NESTING_DEPTH

__all__ = ["FAST_FORMATTING", "FAST_TAGS", "MAX_PAGE_NESTING", "MAX_REOPENED",
           "MAX_SIBLING_PAIRS", "check_html_nesting", "check_page_nesting", "html_depth",
           "sibling_pairs"]

MAX_PAGE_NESTING = 256
"""Deepest a page's elements may nest (real market pages: under 20)."""
MAX_REOPENED = 100_000
"""Most formatting elements the parser may re-open for misnested tags (each re-opening
creates an element: ``<div><b a1>x</div><div><b a2>x</div>...`` makes quadratically many)."""
MAX_SIBLING_PAIRS = 200_000_000
"""Most pairs of elements side by side a page may hold, summed over the elements whose
children they are (one element of 14,000 children, or 20 of 3,000 each): a sibling
query then takes under a second."""
FAST_TAGS = 8_000
"""Pages with at most this many ``<`` are not scanned (unless :data:`FAST_FORMATTING`)."""
FAST_FORMATTING = 512
"""... and at most this many start tags of formatting elements with attributes (real pages:
at most 319)."""

# One token, as the HTML tokenizer reads it: a comment (to EOF when unclosed, ``<!-->``
# closed at once), a doctype or bogus comment, or a tag whose name and attributes run to
# the first ``>`` outside a quoted value (``<`` included; to EOF when there is none).
# Every alternative consumes what it matched exactly once, so the scan is linear.
_TOKEN_RE = re.compile(
    r"""<(?:
        (!--(?:-?>|[\s\S]*?(?:--!?>|\Z)))
      | ([!?][^>]*+>?|/(?![A-Za-z])[^>]*+>?)
      | (/?)([A-Za-z][^\s/>]*+)
        ((?:[^>"'=]++|=\s*+"[^"]*+"|=\s*+'[^']*+'|=|["'])*+)(>?)
    )""", re.X)
_UNQUOTED_END_RE = re.compile(r"""=\s*[^\s"']+$""")
_ATTR_VALUES_RE = re.compile(r"""=\s*+(?:"[^"]*+"|'[^']*+'|[^\s"'>]*+)""")
# <font> leaves SVG/MathML content only with one of these attributes
_FONT_BREAKOUT_RE = re.compile(r"(?:^|[\s/])(?:color|face|size)(?=[\s/=]|$)", re.I)

_VOID = frozenset("area base br col embed hr img input link meta param source track wbr "
                  "keygen basefont bgsound frame image".split())
_RAW = frozenset("script style xmp iframe noembed noframes textarea title".split())
_IGNORED = frozenset("html head body".split())
_FORMATTING = frozenset("a b big code em font i nobr s small strike strong tt u".split())
_MARKERS = frozenset("td th caption applet object marquee template".split())
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
# The parser's scopes: an end tag (or an implied close) does not reach past these. Each
# set holds at least the parser's own boundaries (more only make the count deeper);
# ``select`` is added everywhere (inside it the parser ignores most tags).
_DEFAULT_SCOPE = frozenset(
    "applet caption html table td th marquee object template select foreignobject desc "
    "title mi mo mn ms mtext annotation-xml".split())
_BUTTON_SCOPE = _DEFAULT_SCOPE | {"button"}
_LIST_SCOPE = _DEFAULT_SCOPE | {"ol", "ul"}
_TABLE_SCOPE = frozenset("table template html select".split())
_MARKER_SCOPE = _MARKERS | {"html", "select"}
_SPECIAL = _DEFAULT_SCOPE | frozenset(
    "address area article aside base basefont bgsound blockquote body br button center col "
    "colgroup dd details dir div dl dt embed fieldset figcaption figure footer form frame "
    "frameset h1 h2 h3 h4 h5 h6 head header hgroup hr iframe img input keygen li link listing "
    "main menu meta nav noembed noframes noscript ol p param plaintext pre script search "
    "section source style summary tbody textarea tfoot thead tr track ul wbr xmp".split())
_ITEM_SCOPE = _SPECIAL - {"address", "div", "p"}  # where <li>, <dd>, <dt> stop looking
_TABLE_PARTS = frozenset("table tr td th tbody thead tfoot caption colgroup".split())
# end tags the parser closes when their element is in (default) scope
_BLOCK_END = frozenset(
    "address article aside blockquote button center details dialog dir div dl fieldset "
    "figcaption figure footer header hgroup listing main menu nav ol pre search section "
    "summary ul dd dt h1 h2 h3 h4 h5 h6 applet marquee object template".split())
_CLOSE_CAPTION = frozenset("caption col colgroup tbody td tfoot th thead tr".split())
# start tags that close an open <p> first
_CLOSE_P = frozenset(
    "address article aside blockquote center details dialog dir div dl fieldset figcaption "
    "figure footer header hgroup main menu nav ol p search section summary ul h1 h2 h3 h4 h5 "
    "h6 pre listing form hr xmp li dd dt".split())  # and <table>, but not in quirks mode
# start tags that first close an open element of their kind: (kinds, where to stop looking)
_CLOSE_SAME: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
    "li": (("li",), _ITEM_SCOPE), "dd": (("dd", "dt"), _ITEM_SCOPE),
    "dt": (("dd", "dt"), _ITEM_SCOPE), "tr": (("tr",), _TABLE_SCOPE),
    "td": (("td", "th"), _TABLE_SCOPE), "th": (("td", "th"), _TABLE_SCOPE),
    "tbody": (("tbody", "thead", "tfoot"), _TABLE_SCOPE),
    "thead": (("tbody", "thead", "tfoot"), _TABLE_SCOPE),
    "tfoot": (("tbody", "thead", "tfoot"), _TABLE_SCOPE),
    "a": (("a",), _MARKER_SCOPE), "nobr": (("nobr",), _DEFAULT_SCOPE),
}
# table parts the parser inserts when missing: a td/th needs a tr, a tr a tbody
_IMPLIED: dict[str, tuple[tuple[str, ...], str]] = {
    "td": (("tr",), "tr"), "th": (("tr",), "tr"),
    "tr": (("tbody", "thead", "tfoot"), "tbody")}
# start tags that close the current element only, when it is of these kinds
_CLOSE_TOP: dict[str, tuple[str, ...]] = {
    "option": ("option",), "optgroup": ("option", "optgroup"),
    **dict.fromkeys(_HEADINGS, _HEADINGS)}
# inside SVG/MathML these are HTML again (the foreign element is closed or left)
_BREAKOUT = frozenset(
    "b big blockquote body br center code dd div dl dt em embed h1 h2 h3 h4 h5 h6 head hr i "
    "img li listing menu meta nobr ol p pre ruby s small span strong strike sub sup table tt "
    "u ul var font".split())
_INTEGRATION = frozenset("foreignobject desc title mi mo mn ms mtext annotation-xml".split())
# formatting start tags with attributes (<a> and <nobr> close their predecessor: at most
# one of each is ever re-opened), in lower-cased bytes
_FORMATTING_ATTRS_RE = re.compile(
    b"<(?:" + b"|".join(n.encode() for n in sorted(_FORMATTING - {"a", "nobr"}, key=len,
                                                    reverse=True)) + rb")[ \t\n\r\x0c/]")
_RAW_END: dict[str, re.Pattern[str]] = {
    n: re.compile(rf"</{n}(?=[\s/>])", re.I) for n in _RAW}
_SCOPES = (_DEFAULT_SCOPE, _BUTTON_SCOPE, _LIST_SCOPE, _TABLE_SCOPE, _MARKER_SCOPE, _SPECIAL,
           _ITEM_SCOPE)
_SCOPE_ID = {id(sc): i for i, sc in enumerate(_SCOPES)}
_SPECIAL_ID = _SCOPE_ID[id(_SPECIAL)]


_DEAD, _OPEN, _POPPED = 0, 1, 2  # states of an entry in the list of formatting elements


class _Region:
    """The parser's list of active formatting elements since the last marker.

    Each entry is open (on the stack), popped (by an end tag of an element around it:
    the parser re-opens it before the next text or start tag) or dead (closed by its own
    end tag, or dropped because 3 alike, same name and attributes, came after it: the
    "Noah's Ark" clause, which leaves an open element open).
    """

    __slots__ = ("by_key", "by_name", "entries", "popped", "state")

    def __init__(self) -> None:
        self.entries: list[tuple[str, str]] = []
        self.state: list[int] = []
        self.popped: list[int] = []  # entries made _POPPED (some may have died since)
        self.by_key: dict[str, deque[int]] = {}  # live entries alike, oldest first
        self.by_name: dict[str, list[int]] = {}  # entries by name, latest last

    def add(self, name: str, key: str) -> tuple[int, int]:
        """Add an open element; return (its entry, popped entries dropped: 0 or 1)."""
        alike = self.by_key.setdefault(key, deque())
        dropped = 0
        if len(alike) >= 3:
            old = alike.popleft()
            dropped = int(self.state[old] == _POPPED)
            self.state[old] = _DEAD
        i = len(self.entries)
        self.entries.append((name, key))
        self.state.append(_OPEN)
        alike.append(i)
        self.by_name.setdefault(name, []).append(i)
        return i, dropped

    def kill(self, i: int) -> None:
        """Entry ``i`` leaves the list."""
        if self.state[i] != _DEAD:
            self.state[i] = _DEAD
            self.by_key[self.entries[i][1]].remove(i)  # at most 3 alike: O(1)

    def latest(self, name: str) -> int:
        """The latest live entry named ``name``, or -1."""
        stack = self.by_name.get(name)
        while stack:
            if self.state[stack[-1]] != _DEAD:
                return stack[-1]
            stack.pop()
        return -1


class _Stack:
    """The modelled stack of open elements and list of formatting elements.

    Every operation is O(1) (amortised): per name and per scope the stack indices where
    they stand are kept, so finding an element "in scope" compares two indices.
    """

    __slots__ = ("at", "bounds", "foreign", "form", "kids", "links", "names", "pairs",
                 "rebuilt", "regions", "reopen", "top_kids", "widest")

    def __init__(self) -> None:
        self.names: list[str] = []
        # per open element: its entry in a list of formatting elements, if any
        self.links: list[tuple[_Region, int] | None] = []
        self.at: dict[str, list[int]] = {}  # name -> its stack indices, bottom first
        self.bounds: list[list[int]] = [[] for _ in _SCOPES]  # scope -> boundary indices
        self.regions: list[_Region] = [_Region()]
        self.reopen = 0  # popped formatting elements the parser would re-open
        self.foreign = -1  # index of the <svg>/<math> whose content is foreign, or -1
        self.form = False  # the parser's form element pointer is set
        self.rebuilt = 0  # elements re-opened so far (the parser creates each anew)
        self.kids: list[int] = []  # per open element: its children so far
        self.top_kids = 0  # children of the document (outside every open element)
        self.pairs = 0  # sum over elements of their children squared (siblings walked)
        self.widest = 0  # most children of one element

    def child(self) -> None:
        """An element is created inside the current one (or at the top)."""
        if self.kids:
            c = self.kids[-1]
            self.kids[-1] = c + 1
        else:
            c = self.top_kids
            self.top_kids = c + 1
        self.pairs += 2 * c + 1  # (c + 1)^2 - c^2
        if c >= self.widest:
            self.widest = c + 1

    def depth(self) -> int:
        """Open elements plus formatting elements the parser would re-open."""
        return len(self.names) + self.reopen

    def push(self, name: str, key: str | None = None) -> None:
        """Open an element (``key``: name and attributes of a formatting element)."""
        self.child()
        i = len(self.names)
        self.names.append(name)
        self.kids.append(0)
        link = None
        if key is not None:
            region = self.regions[-1]
            entry, dropped = region.add(name, key)
            self.reopen -= dropped
            link = (region, entry)
        self.links.append(link)
        self.at.setdefault(name, []).append(i)
        for s in _member_of(name):
            self.bounds[s].append(i)
        if name in _MARKERS:
            self.regions.append(_Region())

    def find(self, targets: tuple[str, ...], scope: frozenset[str]) -> int:
        """Index of the topmost of ``targets`` not below an element of ``scope`` (other
        than itself), or -1."""
        top = -1
        for t in targets:
            where = self.at.get(t)
            if where and where[-1] > top:
                top = where[-1]
        if top < 0:
            return -1
        bounds = self.bounds[_SCOPE_ID[id(scope)]]
        return top if not bounds or bounds[-1] <= top else -1

    def blocked(self, index: int) -> bool:
        """True when a special element is open above ``index``: closing the formatting
        element there is the parser's "adoption agency", which moves elements instead of
        popping them (counted as no change: never shallower than the parser)."""
        special = self.bounds[_SPECIAL_ID]
        return bool(special) and special[-1] > index

    def pop_to(self, index: int, closed: str | None = None) -> None:
        """Pop every element from the top down to ``index`` (included).

        A formatting element popped on the way (not the one an end tag of its own
        closes) stays in its list, to be re-opened; popping a marker element drops the
        list since that marker.
        """
        names = self.names
        while len(names) > index:
            i = len(names) - 1
            n = names.pop()
            self.kids.pop()
            link = self.links.pop()
            self.at[n].pop()
            for s in _member_of(n):
                self.bounds[s].pop()
            if n in _MARKERS:
                region = self.regions.pop()
                self.reopen -= sum(region.state[e] == _POPPED for e in set(region.popped))
            if link is not None:
                region, entry = link
                if i == index and n == closed:
                    region.kill(entry)
                elif region.state[entry] == _OPEN:
                    region.state[entry] = _POPPED
                    region.popped.append(entry)
                    self.reopen += 1
        if self.foreign >= len(names):
            self.foreign = -1

    def forget(self, name: str) -> None:
        """An end tag of ``name`` found no open one: its popped entry leaves the list."""
        region = self.regions[-1]
        entry = region.latest(name)
        if entry >= 0 and region.state[entry] == _POPPED:
            region.kill(entry)
            self.reopen -= 1

    def reconstruct(self) -> None:
        """Re-open the popped formatting elements since the last marker (the parser does
        it before text and most start tags; here before text and every start tag)."""
        region = self.regions[-1]
        if not region.popped:
            return
        state = region.state
        popped, region.popped = sorted(set(region.popped)), []
        for entry in popped:
            name = region.entries[entry][0]
            if state[entry] == _POPPED:
                state[entry] = _OPEN
                self.reopen -= 1
                self.rebuilt += 1
                self.child()
                i = len(self.names)
                self.names.append(name)
                self.kids.append(0)
                self.links.append((region, entry))
                self.at.setdefault(name, []).append(i)
                for s in _member_of(name):
                    self.bounds[s].append(i)


_MEMBERSHIP: dict[str, tuple[int, ...]] = {}


def _member_of(name: str) -> tuple[int, ...]:
    """The scopes ``name`` bounds (remembered per name)."""
    hit = _MEMBERSHIP.get(name)
    if hit is None:
        hit = tuple(i for i, sc in enumerate(_SCOPES) if name in sc)
        if len(_MEMBERSHIP) < 4096:  # names come from the page: bound the memo
            _MEMBERSHIP[name] = hit
    return hit


def _self_closing(attrs: str, gt: str) -> bool:
    """True when the tag ends with ``/>`` that the tokenizer takes as self-closing (not
    the last character of an unquoted attribute value)."""
    if not gt or not attrs.endswith("/"):
        return False
    return _UNQUOTED_END_RE.search(attrs[:-1]) is None


def _start(st: _Stack, name: str, attrs: str, gt: str) -> None:
    """Apply a start tag to the modelled stack."""
    if st.foreign >= 0:
        if name in _BREAKOUT and (name != "font" or _FONT_BREAKOUT_RE.search(
                _ATTR_VALUES_RE.sub("", attrs))):
            st.pop_to(st.foreign)  # the parser leaves the foreign content: HTML again
        elif name == "font":  # an SVG <font> (or one we cannot tell): opened
            st.push(name)
            return
        elif _self_closing(attrs, gt):
            st.child()
            return
        else:
            st.push(name)
            if name in _INTEGRATION:
                st.foreign = -1  # HTML content inside (counted as HTML from here on)
            return
    if name in _IGNORED:
        return
    if name in _VOID:
        st.child()
        return
    if name in ("svg", "math"):
        st.reconstruct()
        if not _self_closing(attrs, gt):
            st.push(name)
            st.foreign = len(st.names) - 1
        else:
            st.child()
        return
    if name in _TABLE_PARTS and name != "table" and not (st.at.get("table")
                                                        or st.at.get("template")):
        return  # a cell, row or body outside any table: the parser ignores it
    if name == "form":
        if st.form and not st.at.get("template"):
            return  # a form inside a form: the parser ignores it
        st.form = True
    if name in _CLOSE_CAPTION:
        i = st.find(("caption",), _TABLE_SCOPE)
        if i >= 0:
            st.pop_to(i)  # a table part closes an open caption first
    same = _CLOSE_SAME.get(name)
    if same is not None:
        i = st.find(*same)
        if i >= 0 and not (name in _FORMATTING and st.blocked(i)):
            st.pop_to(i, closed=name)
        elif i < 0 and name in _FORMATTING:
            st.forget(name)
    if name in _CLOSE_P:
        i = st.find(("p",), _BUTTON_SCOPE)
        if i >= 0:
            st.pop_to(i)
    implied = _IMPLIED.get(name)
    if implied is not None and st.find(implied[0], _TABLE_SCOPE) < 0:
        st.push(implied[1])  # a cell without a row, a row without a body: the parser adds it
    top = _CLOSE_TOP.get(name)
    if top is not None:
        for kind in reversed(top):  # optgroup: an option, then an optgroup
            if st.names and st.names[-1] == kind:
                st.pop_to(len(st.names) - 1)
    st.reconstruct()
    st.push(name, f"{name} {attrs.strip()}" if name in _FORMATTING else None)


def _end_scope(name: str) -> frozenset[str]:
    """Where the parser stops looking for the element an end tag closes."""
    if name in _TABLE_PARTS:
        return _TABLE_SCOPE
    if name == "p":
        return _BUTTON_SCOPE
    if name == "li":
        return _LIST_SCOPE
    if name in _BLOCK_END or name in _FORMATTING:
        return _DEFAULT_SCOPE
    return _SPECIAL  # any other end tag stops at the first special element


def _end(st: _Stack, name: str) -> None:
    """Apply an end tag: close ``name`` and what is open inside it, within its scope."""
    if name in _IGNORED:
        return
    if st.foreign >= 0:
        if name in ("br", "p"):
            st.pop_to(st.foreign)  # these end tags leave foreign content first
        else:
            where = st.at.get(name)
            if where and where[-1] >= st.foreign:  # a foreign element: closed as such
                st.pop_to(where[-1])
                return
    if name == "form" and not st.at.get("template"):
        # the parser removes the form element alone, leaving what is open inside it:
        # popped when it is the current element, else left counted (never shallower)
        st.form = False
        if st.names and st.names[-1] == "form":
            st.pop_to(len(st.names) - 1)
        return
    kinds = _HEADINGS if name in _HEADINGS else (name,)
    i = st.find(kinds, _end_scope(name))
    if i >= 0 and not (name in _FORMATTING and st.blocked(i)):
        st.pop_to(i, closed=name)
    elif i < 0 and name in _FORMATTING:
        st.forget(name)


class _Scan(NamedTuple):
    """What :func:`_walk` found: the deepest modelled depth (-1 when the parser would
    re-open more than :data:`MAX_REOPENED` elements), the offset where it stopped at a
    limit (-1 when it read to the end), which limit (``depth``, ``reopened``,
    ``siblings`` or ""), and the sibling pairs and most children of one element."""

    deepest: int
    at: int
    why: str
    pairs: int
    widest: int


def _walk(text: str, limit: int, pair_limit: int | float = math.inf) -> _Scan:
    """The scan of ``text`` (see :class:`_Scan`), stopped where the depth passes ``limit``
    or the sibling pairs pass ``pair_limit``.

    The text is read in ranges, each once: a raw-text element (``<script>``...) in
    HTML content is skipped to its end tag; where the parser might be in foreign content
    instead, its content is read as markup, but only up to that end tag (so that neither
    reading hides markup from the other).
    """
    st = _Stack()
    deepest = 0
    last = 0
    ranges = [(0, len(text))]
    while ranges:
        pos, stop = ranges.pop()
        for m in _TOKEN_RE.finditer(text, pos, stop):
            if m.start() > last:  # text before this token
                st.reconstruct()
            last = m.end()
            name = m.group(4)
            if name is None:  # comment, doctype, bogus comment
                continue
            name = name.lower()
            if m.group(3):
                _end(st, name)
                continue
            # raw text surely only in HTML content outside <svg>/<math> (the elements
            # left open after a breakout may still hold the parser in foreign content)
            html_mode = st.foreign < 0 and not (st.at.get("svg") or st.at.get("math"))
            _start(st, name, m.group(5), m.group(6))
            d = st.depth()
            if d > deepest:
                deepest = d
                if d > limit:
                    return _Scan(deepest, m.start(), "depth", st.pairs, st.widest)
            if st.rebuilt > MAX_REOPENED:
                return _Scan(-1, m.start(), "reopened", st.pairs, st.widest)
            if st.pairs > pair_limit:
                return _Scan(deepest, m.start(), "siblings", st.pairs, st.widest)
            if name in _RAW:
                end = _RAW_END[name].search(text, m.end(), stop)
                raw_end = end.start() if end else stop
                ranges.append((raw_end, stop))
                if not html_mode:
                    ranges.append((m.end(), raw_end))
                else:
                    last = raw_end
                break
            if name == "plaintext" and html_mode:
                return _Scan(deepest, -1, "", st.pairs, st.widest)
    return _Scan(deepest, -1, "", st.pairs, st.widest)


def html_depth(text: str, limit: int = 1 << 62) -> int:
    """The deepest the elements of ``text`` nest, as the scan models it (see above);
    stops counting once past ``limit``."""
    return _walk(text, limit).deepest


def sibling_pairs(text: str) -> tuple[int, int]:
    """(pairs of elements side by side, summed over the elements whose children they
    are; most children of one element) in ``text``, as the scan models the tree."""
    scan = _walk(text, 1 << 62)
    return scan.pairs, scan.widest


def check_html_nesting(text: str, limit: int = MAX_PAGE_NESTING,
                       pair_limit: int = MAX_SIBLING_PAIRS) -> None:
    """Raise :class:`LimitExceeded` (``nesting_depth``) if the elements of ``text`` may
    nest deeper than ``limit``, or make the parser re-open formatting elements more than
    :data:`MAX_REOPENED` times; (``element_siblings``) if they stand side by side in more
    than ``pair_limit`` pairs. Linear in the length of ``text``."""
    scan = _walk(text, limit, pair_limit)
    if scan.why == "reopened":
        raise LimitExceeded(NESTING_DEPTH, f"misnested formatting elements re-opened more "
                                           f"than {MAX_REOPENED:,} times (at character "
                                           f"{scan.at})")
    if scan.why == "depth":
        raise LimitExceeded(NESTING_DEPTH, f"elements nested deeper than {limit} "
                                           f"(at character {scan.at})")
    if scan.why == "siblings":
        raise LimitExceeded(ELEMENT_SIBLINGS, (
            f"elements side by side in more than {pair_limit:,} pairs (one element holds "
            f"{scan.widest:,} children by character {scan.at}): CSS sibling queries would "
            "take time quadratic in them"))


def _formatting_with_attributes(low: bytes) -> int:
    """How many start tags of formatting elements (``<b class=...>``...) carry attributes,
    in ASCII-lower-cased bytes (a literal-led pattern: one pass in C)."""
    return len(_FORMATTING_ATTRS_RE.findall(low))


def check_page_nesting(text: str, low: bytes | None = None) -> None:
    """:func:`check_html_nesting` for a page, skipped when it cannot matter.

    A page of at most :data:`FAST_TAGS` tags, with at most :data:`FAST_FORMATTING` start
    tags of formatting elements that carry attributes, cannot make the parser slow: its
    tree is at most a few times as deep as it has tags, re-opened formatting elements
    number at most the square of those tags, and one element holds at most a few times
    as many children as it has tags (a sibling query over 16,000 takes about a second).
    Every real page is such a page; the scan of the tags (much slower than these two
    counts) is for the others. ``low`` is the page's UTF-8 with ASCII letters
    lower-cased, when the caller has it.
    """
    if low is None:
        low = text.encode("utf-8", "surrogatepass").lower()
    tags = low.count(b"<")
    if tags <= FAST_FORMATTING or (tags <= FAST_TAGS
                                   and _formatting_with_attributes(low) <= FAST_FORMATTING):
        return
    check_html_nesting(text)
