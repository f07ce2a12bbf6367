"""Issue 18: extraction on adversarial text and pages, and the cost of a bad PGP block.

Each adversarial input below once took seconds to minutes (a quadratic regex over 50,000
dashes or 40,000 spaces, the parser fed 200,000 nested ``<div>``). The tests assert that
the results on such inputs are complete and right, and that each rewritten pattern finds
exactly what the pattern it replaced found (property tests on small texts, where the old
patterns are fast); they never assert a time. The timings are in
``bench/extract_hostile.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from conftest import DATA
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from selectolax.lexbor import LexborHTMLParser

from darkmap.collect.ingest import ingest
from darkmap.errors import LimitExceeded
from darkmap.extract import identifiers, parse, pgp
from darkmap.extract.engine import extract_page, template_dir
from darkmap.extract.nesting import (
    MAX_PAGE_NESTING,
    MAX_SIBLING_PAIRS,
    check_html_nesting,
    check_page_nesting,
    html_depth,
    sibling_pairs,
)
from darkmap.model.limits import ELEMENT_SIBLINGS, MAX_FIELD_CHARS, NESTING_DEPTH
from darkmap.model.records import (
    CutRecord,
    ListingRecord,
    PgpKeyRecord,
    QuarantineRecord,
)
from darkmap.store.evidence import key_statistics
from darkmap.store.workspace import Workspace

LISTING = DATA / "pages" / "dream" / "listings" / "listing_0.html"
SELLER = DATA / "pages" / "dream" / "sellers" / "seller_3.html"
BIG = 200_000
SETTINGS = settings(max_examples=300, deadline=None, derandomize=True, database=None)

BAD_BLOCK = ("-----BEGIN PGP PUBLIC KEY BLOCK-----\nVersion: GnuPG v1\n\n"
             "mQINBFXMxFkBEADR81/Scer!!!!notbase64!!!!\n=abcd\n"
             "-----END PGP PUBLIC KEY BLOCK-----\n")


def texts(*parts: str, size: int = 12) -> st.SearchStrategy[str]:
    """Short texts made of ``parts`` (where the replaced patterns went wrong)."""
    return st.lists(st.sampled_from(parts), max_size=size).map("".join)


# ------------------------------------------------------------------- PGP armor markers

OLD_BEGIN = re.compile(r"-{2,}\s*BEGIN PGP PUBLIC KEY BLOCK\s*-{0,}", re.I)
OLD_END = re.compile(r"-{0,}\s*END PGP PUBLIC KEY BLOCK\s*-{0,}", re.I)
OLD_TAG = re.compile(r"<\s*(br|/?p|/?div|/?pre|/?li)\b[^>]*>", re.I)
OLD_ANY_TAG = re.compile(r"<[^>]{0,200}>")


def old_find_armor_blocks(text: str) -> list[tuple[int, int, str]]:
    """``find_armor_blocks`` as it was, with the quadratic marker patterns."""
    out = []
    starts = list(OLD_BEGIN.finditer(text))
    for i, m in enumerate(starts):
        limit = starts[i + 1].start() if i + 1 < len(starts) else len(text)
        end_m = OLD_END.search(text, m.end(), limit)
        end = end_m.end() if end_m else pgp._armor_extent(text, m.end(), limit)
        out.append((m.start(), end, text[m.start():end]))
    return out


MARKER_PARTS = ("-", "--", " ", "\n", "\u2028", "BEGIN PGP PUBLIC KEY BLOCK",
                "END PGP PUBLIC KEY BLOCK", "begin pgp public key block", "x", "AAAA",
                "=abcd", "<br>", "<p", ">", "<")


@SETTINGS
@given(texts(*MARKER_PARTS))
def test_armor_markers_are_found_where_the_old_patterns_found_them(text: str) -> None:
    assert pgp.find_armor_blocks(text) == old_find_armor_blocks(text)
    for pos in range(0, len(text) + 1, 3):
        old = OLD_END.search(text, pos, len(text))
        assert pgp._find_end(text, pos, len(text)) == (old.span() if old else None)


@SETTINGS
@given(texts("<br>", "<p", "<div a='>'>", "<", ">", "x", "< li >", "<br/>", "</pre>"))
def test_tags_are_stripped_from_armor_as_before(text: str) -> None:
    assert pgp._strip_tags(text) == OLD_ANY_TAG.sub("", OLD_TAG.sub("\n", text))


def test_a_begin_line_after_a_long_run_of_dashes_starts_at_the_first_dash() -> None:
    blocks = pgp.parse_armored("-" * BIG + "BEGIN PGP PUBLIC KEY BLOCK")
    assert [(b.start, b.error) for b in blocks] == [(0, "armored block holds no base64 data")]


def test_begin_words_followed_by_dashes_are_not_a_block() -> None:
    assert pgp.parse_armored("BEGIN PGP PUBLIC KEY BLOCK" + "-" * BIG) == []
    blocks = pgp.parse_armored("-----BEGIN PGP PUBLIC KEY BLOCK-----" + "-" * BIG)
    assert len(blocks) == 1 and blocks[0].error == "armored block holds no base64 data"


def test_tag_openers_without_a_closing_bracket_are_left_alone() -> None:
    text = "<br" * (BIG // 3)
    assert pgp.normalise_armor_text(text) == text


# ---------------------------------------------------------------- contact identifiers

_SEP = r"\s*(?:[:=>\-–|]+|\bis\b|\bat\b|\bon\b)?\s*"
# the patterns before the possessive rewrite (with the cue phrase ending at a word's end,
# as both have required since a cue glued to a word stopped counting: see below)
OLD_CONTACTS = {
    "wickr": re.compile(r"\bwickr(?:\s*me)?(?:\s*(?:id|name|user(?:name)?|handle))?(?!\w)"
                        + _SEP
                        + r"@?([A-Za-z0-9][A-Za-z0-9_.\-]{2,31})", re.I),
    "telegram": re.compile(
        r"(?:\b(?:telegram|tg)(?:\s*(?:id|name|user(?:name)?|handle|channel))?(?!\w)" + _SEP
        + r"@?|(?:https?://)?(?:www\.)?(?:t|telegram)\.me/)([A-Za-z][A-Za-z0-9_]{4,31})\b",
        re.I),
    "jabber": re.compile(
        r"\b(?:jabber|xmpp|jid|omemo|otr)(?:\s*(?:id|address|contact))?(?!\w)" + _SEP
        + r"(?:xmpp:)?([^\s@\"'<>:,;()]{1,64}@[A-Za-z0-9.\-]+\.[A-Za-z]{2,24})", re.I),
    "signal": re.compile(
        r"\bsignal(?:\s*(?:id|number|no\.?|user(?:name)?|messenger))?(?!\w)" + _SEP
        + r"(\+?\d[\d\s().\-]{6,20}\d|@?[A-Za-z_][A-Za-z0-9_]{2,31}\.\d{2,9})", re.I),
}
NEW_CONTACTS = {"wickr": identifiers._WICKR_RE, "telegram": identifiers._TG_RE,
                "jabber": identifiers._JID_CUE_RE, "signal": identifiers._SIGNAL_RE}


@SETTINGS
@given(texts("wickr", "telegram", "tg", "jabber", "signal", " ", "  ", "\u2028", "\n", "me",
             "id", "is", "at", "on", ":", "-", "=", "|", "–", ">", "abc", "x", "@", "a@b.com",
             ".", "123", "+1", "555 123 4567", "isaac", "xmpp:", "t.me/", "handle"))
def test_contact_cues_match_what_the_old_patterns_matched(text: str) -> None:
    for kind, old in OLD_CONTACTS.items():
        got = [(m.span(), m.groups()) for m in NEW_CONTACTS[kind].finditer(text)]
        assert got == [(m.span(), m.groups()) for m in old.finditer(text)], kind


@pytest.mark.parametrize("text", ["R&D Tgxsrhvk", "RD Tgxsrhvk", "wickrfoobar & co",
                                  "signalfoo.12 &", "Telegramxyzabc", "jabberfoo@bar.example"])
def test_a_cue_glued_to_a_word_is_no_cue(text: str) -> None:
    """`tg` at the start of a word read the rest of it as a Telegram handle ("Tgxsrhvk":
    `xsrhvk`), but only in a text holding `&` (whose scan ran on every cue found in the
    lower-cased text, not on the word-bounded ones): a title's `R&D` made one. A cue
    word (with its qualifier: `TelegramID`, `wickrme`) now ends where a word ends."""
    got = identifiers.extract_identifiers(text, market_id="m", account_handle="a",
                                          field="title", locator="x")
    assert [r.kind for r in got if r.kind in ("telegram", "wickr", "signal")] == []
    assert all(r.value != "foo@bar.example" for r in got)  # not the glued cue's JID


@pytest.mark.parametrize(("text", "kind", "value"), [
    ("TelegramID: vendor_tg", "telegram", "vendor_tg"),
    ("tg@vendor_tg", "telegram", "vendor_tg"),
    ("wickrme: vendorname", "wickr", "vendorname"),
    ("signal no.+14155550123", "signal", "+14155550123"),
    ("jabberid:vendor@exploit.im", "jabber", "vendor@exploit.im")])
def test_a_cue_with_its_qualifier_still_counts(text: str, kind: str, value: str) -> None:
    got = identifiers.extract_identifiers(text, market_id="m", account_handle="a",
                                          field="title", locator="x")
    assert (kind, value) in [(r.kind, r.value) for r in got]


@pytest.mark.parametrize(("cue", "space", "handle", "kind", "value"), [
    ("wickr", " ", "vendorname", "wickr", "vendorname"),
    ("telegram", "\u2028", "@vendor_tg", "telegram", "vendor_tg"),
    ("jabber", "\u2028", "vendor@jabber.example.org", "jabber", "vendor@jabber.example.org"),
    ("wickr", " ", "x", None, None),
])
def test_a_contact_cue_then_a_whitespace_flood(cue: str, space: str, handle: str,
                                               kind: str | None, value: str | None) -> None:
    recs = identifiers.extract_identifiers(cue + space * BIG + handle, market_id="m",
                                           account_handle="a", field="description",
                                           locator="row 1")
    got = [(r.kind, r.value) for r in recs]
    assert got == ([(kind, value)] if kind else [])


# ------------------------------------------------------------------------- clean_text

OLD_NL = re.compile(r"\s*\n\s*(?:\n\s*)+")


def old_clean_multiline(text: str) -> str:
    text = parse._WS_RE.sub(" ", text)
    text = OLD_NL.sub("\n", text)
    return "\n".join(line.strip() for line in text.split("\n")).strip()


@SETTINGS
@given(texts(" ", "\n", "\t", "\u2028", "x", "ab", "\r", "\x1c", "\xa0", "\n\n", "\u3000"))
def test_paragraph_breaks_are_collapsed_as_before(text: str) -> None:
    assert parse.clean_text(text, multiline=True) == old_clean_multiline(text)


def test_a_flood_of_unusual_whitespace_keeps_the_words() -> None:
    text = "a" + "\u2028" * BIG + "\n" + "\x1c" * BIG + "b" + " \n\t" * BIG + "c"
    assert parse.clean_text(text, multiline=True) == "a\nb\nc"


# ---------------------------------------------------------------------------- prices

_NUM = r"(\d{1,3}(?:[,\u00a0 ]\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
OLD_PRICE_RES = (
    re.compile(rf"(?<![A-Za-z])({parse._CODE_ALT})\s*{_NUM}", re.I),
    re.compile(rf"(?<![\w*.,]){_NUM}\s*({parse._CODE_ALT})(?![A-Za-z])", re.I),
    re.compile(rf"({parse._SYM_ALT})\s*{_NUM}"),
    re.compile(rf"(?<![\w*.,]){_NUM}\s*({parse._SYM_ALT})"),
)


@SETTINGS
@given(texts("1", "12", "123", " ", ",", ".", "000", " 000", ",000", "USD", "usd", "$", "€",
             "x", "EUR", "btc", "\u00a0", "mBTC", size=10))
def test_prices_are_read_as_before(text: str) -> None:
    # but a decimal comma ("12,12 USD": 1212 before, 12.12 now; test_pages_engine.py)
    assume(not re.search(r"\d,(?!\d{3}(?!\d))\d", text))
    new = parse.parse_price(text)
    patterns = parse._PRICE_RES
    parse._PRICE_RES = OLD_PRICE_RES
    try:
        old = parse.parse_price(text)
    finally:
        parse._PRICE_RES = patterns
    assert new == old


def test_a_long_chain_of_thousands_groups_is_read() -> None:
    # the old pattern restarted at every group: quadratic, minutes on this text
    amount, currency = parse.parse_price("1" + " 111" * (BIG // 4) + " USD")
    assert currency == "USD" and amount == float("111" * 9)


# -------------------------------------------------------------- template regexes

def template_regexes() -> set[str]:
    """Every ``regex`` of the built-in templates."""
    found: set[str] = set()

    def walk(x: object) -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                if k in ("regex", "text_regex") and isinstance(v, str):
                    found.add(v)
                else:
                    walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
    for path in sorted(Path(template_dir()).glob("*.yaml")):
        walk(yaml.safe_load(path.read_text(encoding="utf-8")))
    return found


BEGIN, END = "-----BEGIN PGP PUBLIC KEY BLOCK-----", "-----END PGP PUBLIC KEY BLOCK-----"
# (new pattern in a template, the pattern it replaced, parts of texts, values collapsed)
TEMPLATE_REWRITES = [
    (r"(?<![\d,.])[,.]*+(\d[\d,.]*+\s*+[A-Z]{3}\b.*)$", r"(\d[\d,.]*\s*[A-Z]{3}\b.*)$",
     ("1", ",", ".", " ", "USD", "x", "A"), True),
    (r"^(.+?)\s?\d{0,12}$", r"^(.+?)\s*\d*$", ("1", " ", "a", "b", "2"), True),
    ((r"(?s)^(?>(?:[^-]++|-)*?(?=-----BEGIN PGP PUBLIC KEY BLOCK-----))"
     r"(-----BEGIN PGP PUBLIC KEY BLOCK-----.+?-----END PGP PUBLIC KEY BLOCK-----)"),
     rf"(?s)({BEGIN}.+?{END})", (BEGIN, END, "-", "--", "x", "\n"), False),
    (r"(?<![\d.])([\d.]+)% positive feedback", r"([\d.]+)% positive feedback",
     ("1", ".", "% positive feedback", "x", " "), True),
    (r"(?<![\d,]),*+(\d[\d,]*) sold since", r"(\d[\d,]*) sold since",
     ("1", ",", " sold since", "x", " "), True),
]


def value(m: re.Match[str] | None) -> str | None:
    """What a template rule takes from a match (as ``engine._apply_rule`` does)."""
    if m is None:
        return None
    return next((g for g in m.groups() if g is not None), m.group(0))


@pytest.mark.parametrize(("new", "old", "parts", "collapsed"), TEMPLATE_REWRITES,
                         ids=[r[1][:24] for r in TEMPLATE_REWRITES])
def test_rewritten_template_regexes_take_what_the_old_ones_took(
        new: str, old: str, parts: tuple[str, ...], collapsed: bool) -> None:
    assert new in template_regexes()
    new_rx, old_rx = re.compile(new), re.compile(old)

    @SETTINGS
    @given(texts(*parts))
    def same(text: str) -> None:
        if collapsed:  # the value of a CSS or label rule: whitespace runs collapsed
            text = " ".join(text.split())
        assert value(new_rx.search(text)) == value(old_rx.search(text))
    same()


@pytest.mark.parametrize(("new", "text", "want"), [
    (TEMPLATE_REWRITES[0][0], "1" * BIG + "x", None),
    (TEMPLATE_REWRITES[0][0], "1" * BIG + " USD", "1" * BIG + " USD"),
    (TEMPLATE_REWRITES[1][0], "Drugs " + "1" * BIG + "x", "Drugs " + "1" * BIG + "x"),
    (TEMPLATE_REWRITES[2][0], BEGIN * (BIG // 36), None),
    (TEMPLATE_REWRITES[3][0], "1" * BIG + "%", None),
    (TEMPLATE_REWRITES[4][0], "1," * (BIG // 2) + " sold", None),
])
def test_template_regexes_on_adversarial_values(new: str, text: str, want: str | None) -> None:
    assert value(re.compile(new).search(text)) == want


# --------------------------------------------------------------------- page nesting


def lexbor_depth(html: str) -> int:
    """Depth of the deepest element the parser builds (html = 0)."""
    tree = LexborHTMLParser(html)
    best, stack = 0, [(tree.root, 0)]
    while stack:
        node, d = stack.pop()
        best = max(best, d)
        child = node.child
        while child is not None:
            if child.tag not in ("-text", "_comment"):
                stack.append((child, d + 1))
            child = child.next
    return best


@pytest.mark.parametrize("html", [
    "<div>" * BIG, "<span>" * BIG, "<section><div>" * BIG, "<div></span>" * BIG,
    "<div><table></div>" * (BIG // 4), "<b>" * BIG, "<svg>" + "<g>" * BIG,
    "".join(f"<div><b a{i}>x</div>" for i in range(20_000)),
])
def test_deep_nesting_is_refused_before_parsing(html: str) -> None:
    with pytest.raises(LimitExceeded) as exc:
        check_html_nesting(html)
    assert exc.value.limit == NESTING_DEPTH


@pytest.mark.parametrize("html", [
    "<div>" * 10 + "<script>" + "<div>" * BIG + "</script>",
    "<div>" * 10 + "<!--" + "<div>" * BIG + "-->",
    "<style>" + "<div>" * BIG,
])
def test_hidden_markup_is_not_refused(html: str) -> None:
    assert html_depth(html) < MAX_PAGE_NESTING
    check_html_nesting(html)


WIDE = [
    "<div></div>", "<p>one<p>two", "<li><span>item", "<tr><td>x", "<path d='m0 0'/>",
    "<br>", "<a>x", "<td>x",
]


def _wide(unit: str, n: int) -> str:
    head = {"<li><span>item": "<ul>", "<tr><td>x": "<table>", "<td>x": "<table><tr>",
            "<path d='m0 0'/>": "<svg>"}.get(unit, "<div>")
    return head + unit * n


@pytest.mark.parametrize("unit", WIDE)
def test_wide_markup_is_refused_by_its_sibling_pairs(unit: str) -> None:
    """Elements side by side by the hundred thousand: found by fuzzing, 80,000 `<a>` in a
    real Hansa page took 20 s and 200,000 minutes, in CSS sibling queries (`~`,
    `:nth-child`) that no time limit can stop; now refused before parsing, with its own
    limit. Shallow all the same, and 7,000 side by side (twice as many for `<p>`) still
    pass."""
    html = _wide(unit, BIG)
    assert html_depth(html) < MAX_PAGE_NESTING
    with pytest.raises(LimitExceeded) as exc:
        check_html_nesting(html)
    assert exc.value.limit == ELEMENT_SIBLINGS
    assert "side by side in more than 200,000,000 pairs" in str(exc.value)
    check_html_nesting(_wide(unit, 7_000))
    pairs, widest = sibling_pairs(_wide(unit, 7_000))
    assert widest >= 7_000 and pairs >= 7_000 ** 2


def test_a_page_too_wide_is_quarantined_with_the_limit_named(tmp_path: Path) -> None:
    page = DATA / "pages" / "hansa" / "vendor_bitloxer_terms.htm"
    raw = page.read_bytes()
    assert raw.count(b"</ul>") >= 1
    wide = tmp_path / "hansa" / page.name
    wide.parent.mkdir()
    wide.write_bytes(raw.replace(b"</ul>", b"</ul>" + b"<a>" * 80_000, 1))
    ws = Workspace.init(tmp_path / "ws")
    t = ingest(ws, [wide], jobs=1).totals()
    assert (t["read"], t["stored"], t["quarantined"]) == (1, 0, 1)
    assert ws.con.execute("SELECT limit_name FROM quarantine").fetchall() == [
        (ELEMENT_SIBLINGS,)]
    ws.close()


def test_real_pages_are_far_from_the_sibling_limit() -> None:
    from darkmap.extract.decode import decode_page
    worst = max(sibling_pairs(decode_page(p.read_bytes()).text)[0] for p in real_pages())
    assert 1_000 < worst < MAX_SIBLING_PAIRS // 1000


# constructs the scan once counted shallower than the parser: repeated, the scan must
# grow with the parser's depth
@pytest.mark.parametrize("unit", [
    "<b a=b/> </svg><svg a=b/><tbody x<y/>'</br></nobr></h1> </style><tbody x<y/>",
    "<a a=b/></option></b></mi><font></path><html />",
    "<h1></form><svg a=\"/>\"></p></dt><object color=red><math a=1>",
    "</font></caption><object a=1/></form><dd k3><svg></math><style k1></svg>",
    "<img></x></mi><mi a=1/></img><section a=b/>",
    "<form a=1><ol a=\"/>\"><!--><th></section></form></b><</script>",
    "<h1 a=b/><a class=\"x\">",
    "<tbody a=b/></table><i a=\"/>\"/>\"</caption></dt></b></h2>",
    ("</g></path></script><dt/><p a=\"/>\"/>--></caption><noscript a=\"/>\">\""
    "<html class=\"x\"/><tr class=\"x\"><"),
    "".join(f"<div><b a{i}>x</div>" for i in range(3)),
])
def test_the_scan_keeps_up_with_the_parser(unit: str) -> None:
    html = unit * 40
    assert html_depth(html) >= lexbor_depth(html) // 2 - 2


def real_pages() -> list[Path]:
    return [p for p in sorted((DATA / "pages").rglob("*"))
            if p.is_file() and not p.name.startswith("LICENSE")]


def test_real_pages_pass_the_fast_check_and_the_scan_counts_them_right() -> None:
    from darkmap.extract.decode import decode_page
    for path in real_pages():
        text = decode_page(path.read_bytes()).text
        check_page_nesting(text)  # the two counts: never the scan on a real page
        depth = html_depth(text)
        assert lexbor_depth(text) - 3 <= depth <= 32, path


def test_a_page_too_deep_is_quarantined_with_the_limit_named() -> None:
    page = LISTING.read_bytes().replace(b"<pre>", b"<pre>" + b"<div>" * BIG, 1)
    result = extract_page(page, "listing_0.html")
    assert [(type(r), r.locator, r.limit) for r in result.records] == [
        (QuarantineRecord, "page", NESTING_DEPTH)]
    assert "nested deeper than 256" in result.records[0].reason


def test_nested_matches_do_not_repeat_their_text() -> None:
    size = 3 * MAX_FIELD_CHARS
    payload = (b"</pre>" + b'<pre class="code">' * 200 + b"A" * size + b"</pre>" * 200
               + b'<pre class="code">')
    page = SELLER.read_bytes().replace(b'<pre class="code">', b'<pre class="code">' + payload, 1)
    result = extract_page(page, "seller_3.html")
    assert result.page_type == "vendor"
    # the nested blocks are read once, the vendor's real key after them still is
    assert sum(isinstance(r, PgpKeyRecord) for r in result.records) == 1
    assert not any(isinstance(r, QuarantineRecord) for r in result.records)


# ------------------------------------------------------------------ free-text caps


def test_a_description_over_the_cap_is_cut_and_the_cut_recorded() -> None:
    body = "LOOKING FOR " + "word " * (MAX_FIELD_CHARS // 4)
    page = LISTING.read_bytes().replace(b"<pre>LOOKING FOR", b"<pre>" + body.encode(), 1)
    recs = extract_page(page, "listing_0.html").records
    listing = next(r for r in recs if isinstance(r, ListingRecord))
    cuts = [r for r in recs if isinstance(r, CutRecord)]
    assert listing.description is not None and len(listing.description) == MAX_FIELD_CHARS
    assert [(c.locator, c.field, c.kept_chars) for c in cuts] == [
        ("page", "description", MAX_FIELD_CHARS)]
    assert cuts[0].original_chars > MAX_FIELD_CHARS


def test_fields_under_the_cap_are_whole_and_not_recorded() -> None:
    page = LISTING.read_bytes().replace(b"<pre>LOOKING FOR",
                                        b"<pre>" + b"x" * 300_000 + b" LOOKING FOR", 1)
    recs = extract_page(page, "listing_0.html").records
    listing = next(r for r in recs if isinstance(r, ListingRecord))
    assert not any(isinstance(r, CutRecord) for r in recs)
    assert listing.description is not None and len(listing.description) > 300_000


# ------------------------------------------------------------------- PGP failures


def seller_with_keys(blocks: str) -> bytes:
    """The real Dream vendor page with ``blocks`` as its PGP key text."""
    page = SELLER.read_bytes()
    start = page.index(b'<pre class="code">') + len(b'<pre class="code">')
    end = page.index(b"</pre>", start)
    return page[:start] + blocks.encode() + page[end:]


def real_block() -> str:
    page = SELLER.read_text(encoding="utf-8")
    start = page.index(BEGIN)
    return page[start:page.index(END) + len(END)]


def test_every_unreadable_block_of_a_page_is_quarantined() -> None:
    page = seller_with_keys(real_block() + "\n" + BAD_BLOCK * 3)
    recs = extract_page(page, "seller_3.html").records
    bad = [r for r in recs if isinstance(r, QuarantineRecord)]
    assert [(r.locator, r.field) for r in bad] == [
        ("page#pgp 2", "pgp"), ("page#pgp 3", "pgp"), ("page#pgp 4", "pgp")]
    assert all(r.reason.startswith(f"PGP key block {i} in field 'pgp': armor CRC24 mismatch")
               for i, r in zip((2, 3, 4), bad, strict=True))
    assert sum(isinstance(r, PgpKeyRecord) for r in recs) == 1


def test_darkmap_keys_counts_the_failed_blocks_of_pages(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "seller_3.html").write_bytes(seller_with_keys(BAD_BLOCK * 2))
    (folder / "seller_4.html").write_bytes(seller_with_keys(
        BEGIN + "-" * 50_000))
    ws = Workspace.init(tmp_path / "ws")
    try:
        summary = ingest(ws, [folder])
        stats = key_statistics(ws.con)
    finally:
        ws.close()
    assert [(f.stored, f.quarantined) for f in summary.files] == [(1, 0), (1, 0)]
    assert stats["failed"] == 3
    assert stats["failed_by_reason"] == {
        "armor CRC24 mismatch: block says 69B71D, data gives 3D70BD (24 bytes decoded)": 2,
        "armored block holds no base64 data": 1}


def test_a_broken_block_in_a_description_is_quarantined_and_the_listing_kept() -> None:
    page = LISTING.read_bytes().replace(b"<pre>LOOKING FOR",
                                        b"<pre>" + BAD_BLOCK.encode() + b"LOOKING FOR", 1)
    recs = extract_page(page, "listing_0.html").records
    assert sum(isinstance(r, ListingRecord) for r in recs) == 1
    assert [(r.locator, r.field) for r in recs if isinstance(r, QuarantineRecord)] == [
        ("page#pgp 1", "description")]


@pytest.mark.parametrize("date", ["2019-02-30", "2019-13-01", "2019-10-99999999999"])
def test_an_impossible_date_is_no_date_and_the_page_is_kept(date: str) -> None:
    """A feedback date no calendar has (found by fuzzing): the date parser called itself
    on it without end, and the whole page was quarantined with a RecursionError. Now it
    is no date: the feedback is kept without it, the rest of the page as before."""
    assert parse.parse_date(date) is None
    assert parse.parse_date(f"left {date} 12:00") is None
    assert parse.parse_date("left 2019-10-25 12:00 (UTC)") is not None  # inside text
    path = DATA / "pages" / "cryptonia" / "listings" / "saved_cryptonia_listing_0"
    raw = path.read_bytes()
    before = extract_page(raw, path.name).records
    after = extract_page(raw.replace(b"2019-10-25</span", date.encode() + b"</span", 1),
                         path.name).records
    assert not any(isinstance(r, QuarantineRecord) for r in after)
    dates = [[getattr(r, "left_at", None) for r in recs if type(r).__name__ == "FeedbackRecord"]
             for recs in (before, after)]
    assert len(dates[0]) == len(dates[1]) > 1
    changed = [i for i, (x, y) in enumerate(zip(*dates, strict=True)) if x != y]
    assert len(changed) == 1 and dates[1][changed[0]] is None
