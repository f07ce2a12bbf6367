"""Fast paths give exactly what the slow definitions they replace give.

Each shortcut (a substring pre-check before a regex, a numpy scan instead of a regex
scan) is checked against the plain definition on the real data and on generated text
that mixes the characters the shortcuts reason about.
"""

from __future__ import annotations

import re

from conftest import DATA
from hypothesis import given, settings
from hypothesis import strategies as st

from darkmap.extract import decode, identifiers

# pieces the shortcuts treat specially: cue words, case folds, long alphanumeric runs
_PIECES = ["bc1", "BC1", ".onion", ".ONION", "@", "wickr", "TeLeGram", "tg", "TG", ".me/",
           "Jabber", "XMPP", "jid", "OTR", "omemo", "SIGNAL", "pgp", "PGP", "&amp;", "\\n",
           "\u017f", "\u212a", "\u0130", "\u0131", "\u00e9", "\u03a3", "\ud800", "\U0001f600",
           "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
           "05" + "a" * 64, "abcdefghijklmnopqrstuvwxyz234567.onion", "x@y.com",
           "wickr: bob99", "telegram @alice_b", "t.me/carol_c", "signal +1 555 123 4567",
           "\u00c3\u00a4", "\u00c3", "\u00e2\u20ac\u2122", "\u00c2\u00a0", "\u00f4\u0080",
           " ", "-", "\n", "a", "Z", "7", "another", "xtgx", "jidx"]
_TEXT = st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=8),
                           st.text("13458abcdefXYZ0", min_size=20, max_size=110)),
                 max_size=8).map("".join)

_OLD_REPAIR = (r"(?:[\u00c2-\u00f4][\u0080-\u00bf\u2018-\u203a\u20ac\u2122\u0152\u0153"
               r"\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc]{1,3})+")


def _fix_by_regex(text: str) -> str:
    """The definition of mojibake repair: a regex substitution over the whole text."""
    if not decode._MOJIBAKE_RE.search(text):
        return text
    return re.sub(_OLD_REPAIR, lambda m: decode._repair(m.group(0)), text)


def _real_texts() -> list[str]:
    return [p.read_bytes()[:2_000_000].decode("utf-8", "replace")
            for p in sorted(DATA.rglob("*")) if p.is_file() and p.stat().st_size]


def test_prefilters_on_real_data() -> None:
    texts = _real_texts()
    assert len(texts) > 100
    changed = 0
    for t in texts:
        assert decode.fix_mojibake(t) == _fix_by_regex(t)
        changed += decode.fix_mojibake(t) != t
        for line in t.splitlines()[:400]:
            assert identifiers._may_hold(line) == bool(identifiers._ANY_RE.search(line))
    assert changed > 0  # the real pages do hold mojibake


@settings(max_examples=400, deadline=None)
@given(_TEXT)
def test_identifier_prefilter_is_the_regex(text: str) -> None:
    assert identifiers._may_hold(text) == bool(identifiers._ANY_RE.search(text))


@settings(max_examples=400, deadline=None)
@given(_TEXT)
def test_mojibake_scan_is_the_regex(text: str) -> None:
    assert decode.fix_mojibake(text) == _fix_by_regex(text)


def _condition_values(keys: tuple[str, ...], nested: tuple[str, ...],
                      rows: bool = False) -> list[str]:
    """The values under ``keys`` in every condition of the templates and the generic skip
    recognisers, looking inside the combinators ``nested`` (and the row sections'
    ``when`` with ``rows``)."""
    from darkmap.extract import engine

    found: set[str] = set()

    def walk(cond: object) -> None:
        if isinstance(cond, list):
            for c in cond:
                walk(c)
        elif isinstance(cond, dict):
            for k, v in cond.items():
                if k in keys:
                    found.add(v)
                elif k in nested:
                    walk(v)

    for tpl in engine.load_templates():
        walk(tpl.detect)
        walk([s["when"] for s in tpl.skip])
        walk([spec.when for spec in tpl.pages])
        if rows:
            walk([sec for spec in tpl.pages for sec in spec.sections.values()
                  if isinstance(sec, dict) and "rows" in sec])
    walk([cond for _, _, cond in engine._GENERIC_SKIPS])
    return sorted(found)


def _template_patterns() -> list[str]:
    return _condition_values(("title", "text", "html", "domain", "source"),
                             ("all", "any", "not"))


def test_condition_search_on_real_pages() -> None:
    from darkmap.extract import engine

    pats = _template_patterns()
    assert sum(engine._literal_plan(p) is not None for p in pats) >= 10
    paths = [p for p in sorted((DATA / "pages").rglob("*"))
             if p.is_file() and not p.name.startswith("LICENSE")]
    assert len(paths) > 100
    for path in paths[::2]:
        page = engine.Page(decode.decode_page(path.read_bytes()).text, str(path))
        for text in (page.text, page.title, page.raw):
            for p in pats:
                assert engine._search(p, text, page) == bool(re.search(p, text)), (path, p)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["login to empire market", "LOGIN TO EMPIRE MARKET", "Error 404",
                                 "not found", "NOT FOUND", "ddos", "\u017f", "\u212a", "\u0130",
                                 "\u0131", "\u00c9", "Apollon Market", "hansa market", " ", "x"]),
                max_size=6).map("".join))
def test_condition_search_is_the_regex(text: str) -> None:
    from darkmap.extract import engine

    for p in _template_patterns() + [r"(?i)a\.b|c d", "(?i)sk", "(?i)kill|is"]:
        assert engine._search(p, text) == bool(re.search(p, text)), p


def test_row_queries_answered_from_the_page_equal_row_queries() -> None:
    from darkmap.extract import engine

    paths = [p for p in sorted((DATA / "pages").rglob("*"))
             if p.is_file() and not p.name.startswith("LICENSE")]
    checked = 0
    for path in paths:
        page = engine.Page(decode.decode_page(path.read_bytes()).text, str(path))
        engine._extract(page, engine.detect_market(page, engine.load_templates()), str(path))
        if not page._row_of:
            continue
        nodes = {n.mem_id: n for n in page.tree.root.traverse(include_text=False)}
        asked = {(mid, sel) for mid, sel in page._queries if mid in page._row_of}
        for rows, sel in page._row_done:  # every row of a set answered from the page
            asked |= {(mid, sel) for mid in page._row_sets[rows][0]}
        for mid, selector in asked:
            found = engine._css(nodes[mid], selector, page)
            want = nodes[mid].css(selector)
            assert [n.mem_id for n in found] == [n.mem_id for n in want], (path, selector)
            checked += 1
    assert checked > 5000


def test_row_sets_are_queried_from_their_deepest_common_ancestor() -> None:
    from darkmap.extract import engine

    def ancestors(node):  # type: ignore[no-untyped-def]
        out = []
        node = node.parent
        while node is not None:
            out.append(node.mem_id)
            node = node.parent
        return out

    paths = [p for p in sorted((DATA / "pages").rglob("*"))
             if p.is_file() and not p.name.startswith("LICENSE")]
    sets = below_root = 0
    for path in paths:
        page = engine.Page(decode.decode_page(path.read_bytes()).text, str(path))
        engine._extract(page, engine.detect_market(page, engine.load_templates()), str(path))
        nodes = {n.mem_id: n for n in page.tree.root.traverse(include_text=False)}
        for ids, _above, common in page._row_sets:
            chains = [ancestors(nodes[mid]) for mid in ids]
            shared = set(chains[0]).intersection(*chains[1:])
            deepest = next(mid for mid in chains[0] if mid in shared)
            assert common is not None and common.mem_id == deepest, path
            sets += 1
            below_root += common.tag != "html"
    assert sets > 50 and below_root > 50


def _condition_selectors() -> list[str]:
    """Every ``css`` of the templates' and the skip recognisers' conditions."""
    return _condition_values(("css",), ("all", "any", "not", "when"), rows=True)


def test_condition_queries_stopping_at_the_first_match_equal_full_queries() -> None:
    from darkmap.extract import engine

    sels = _condition_selectors() + ["p:lexbor-contains(\"price\" i)", "bad[[[", ":root"]
    paths = [p for p in sorted((DATA / "pages").rglob("*"))
             if p.is_file() and not p.name.startswith("LICENSE")]
    matched = empty = 0
    for path in paths[::3]:
        page = engine.Page(decode.decode_page(path.read_bytes()).text, str(path))
        for scope in [page.tree.root, page.root, *page.root.css("div, tr")[:20]]:
            for sel in sels:
                want = bool(engine._css(scope, sel))  # no page: a plain query
                assert engine._matches(scope, sel, page) == want, (path, sel)
                assert engine._matches(scope, sel, page) == want, (path, sel)  # remembered
                if not want:  # the empty answer serves later queries too
                    assert engine._css(scope, sel, page) == []
                matched += want
                empty += not want
    assert matched > 1000 and empty > 1000


_SPACES = [c for c in map(chr, range(0x3100)) if c.isspace()] + ["\u3000", "\ud800", "a", "\u00e9"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_SPACES), max_size=10).map("".join))
def test_squash_is_the_whitespace_regex(text: str) -> None:
    from darkmap.importers import mappings

    assert mappings._squash(text) == mappings._WS_RE.sub(" ", text).strip()


def _decoded_by_repair(data: bytes) -> str:
    """What ``decode_page`` gives a plain UTF-8 page by its definition: the repair of
    the whole decoded text."""
    return decode.fix_mojibake(data.decode("utf-8"))


def test_pages_without_the_lead_byte_skip_the_repair_on_real_data() -> None:
    pages = [p.read_bytes() for p in sorted((DATA / "pages").rglob("*")) if p.is_file()]
    skipped = 0
    for data in pages:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if data.startswith(b"\xef\xbb\xbf") or b"\x00" in data or data.lstrip()[:1] == b"b":
            continue
        assert decode.decode_page(data).text == _decoded_by_repair(data)
        skipped += b"\xc3" not in data and not data.isascii()
    assert skipped > 20  # non-ASCII pages with nothing to repair, found by a byte search


@settings(max_examples=400, deadline=None)
@given(_TEXT)
def test_byte_prefilter_of_the_repair_is_the_repair(text: str) -> None:
    data = text.replace("\x00", "").encode("utf-8", "surrogatepass")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:  # a lone surrogate: not a plain UTF-8 page
        return
    if data.startswith(b"\xef\xbb\xbf") or data.lstrip()[:1] == b"b":
        return
    assert decode.decode_page(data).text == _decoded_by_repair(data)


def test_warm_prepares_what_the_workers_would_each_prepare() -> None:
    from darkmap.extract import engine
    from darkmap.model import openpgp

    pages = [p for p in sorted((DATA / "pages").rglob("*"))
             if p.is_file() and not p.name.startswith("LICENSE")][:40]
    before = [repr(engine.extract_page(p.read_bytes(), str(p)).records) for p in pages]
    engine.warm()
    sections = 0
    for tpl in engine.load_templates():
        for spec in tpl.pages:
            for name, sec in spec.sections.items():
                if name in ("listing", "account"):
                    assert engine._SECTION_FNS[id(sec)][0] is sec
                    sections += 1
                elif name in ("listings", "feedback"):
                    assert engine._SECTION_FNS[id(sec["fields"])][0] is sec["fields"]
                    sections += 1
    assert sections > 30 and openpgp._CRC24_BY_POSITION
    assert [repr(engine.extract_page(p.read_bytes(), str(p)).records) for p in pages] == before


def test_value_caches_keep_no_long_text() -> None:
    from darkmap.extract import engine
    from darkmap.extract.parse import parse_date, parse_price

    page = engine.Page("<html><title>t</title><body><p>x</p></body></html>")
    engine._parse_price_text.cache_clear()
    engine._parse_date_text.cache_clear()
    huge = "USD 5.20 " + "x" * 300_000
    got = engine._typed(huge, {"type": "price"}, page)
    assert (got["amount"], got["currency"]) == parse_price(huge)
    assert engine._typed(huge, {"type": "date"}, page) == parse_date(huge) is None
    assert engine._parse_price_text.cache_info().currsize == 0
    assert engine._parse_date_text.cache_info().currsize == 0
    assert engine._typed("~ $17", {"type": "price"}, page)["amount"] == 17.0
    assert engine._typed("Nov 17, 2019", {"type": "date"}, page) == parse_date("Nov 17, 2019")
    assert engine._parse_price_text.cache_info().currsize == 1
    assert engine._parse_date_text.cache_info().currsize == 1


def _clean_multiline_by_regex(text: str) -> str:
    """The definition of ``clean_text(text, multiline=True)``: the whitespace regex, then
    the line-break regex, then each line stripped."""
    from darkmap.extract import parse

    if not text:
        return ""
    text = parse._WS_RE.sub(" ", text)
    text = parse._NL_RE.sub("\n", text)
    return "\n".join(line.strip() for line in text.split("\n")).strip()


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_SPACES + [" ", "  ", "\n", "\n\n", "word", "\u00a0\u00a0"]),
                max_size=14).map("".join))
def test_multiline_clean_is_the_whitespace_regex(text: str) -> None:
    from darkmap.extract import parse

    assert parse.clean_text(text, multiline=True) == _clean_multiline_by_regex(text)


def test_multiline_clean_on_real_pages() -> None:
    from darkmap.extract import parse
    from darkmap.extract.engine import Page

    paths = [p for p in sorted((DATA / "pages").rglob("*"))
             if p.is_file() and not p.name.startswith("LICENSE")]
    for path in paths[::3]:
        page = Page(decode.decode_page(path.read_bytes()).text, str(path))
        for node in page.tree.css("div, td, pre, p"):
            text = node.text(separator="\n")
            assert parse.clean_text(text, multiline=True) == _clean_multiline_by_regex(text)
