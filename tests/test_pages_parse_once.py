"""Cheaper page handling, same answers: one pass strips scripts, styles and tracking
pixels as tag-by-tag stripping does; a literal pre-check answers as the regex does."""

from __future__ import annotations

import re

from conftest import DATA
from hypothesis import given, settings
from hypothesis import strategies as st
from selectolax.lexbor import LexborHTMLParser

from darkmap.extract.decode import decode_page
from darkmap.extract.engine import _STRIP_TAGS, Page

_HOSTILE = [
    "<noscript><img width='1' src='x'><script>a()</script></noscript><p>kept</p>",
    "<object><embed><iframe><p>in</p></iframe></embed></object><img height='1'><b>x</b>",
    ("<template><script>x</script><p>t</p></template><style>p{}</style><img width=0>"
    "<img width='2' alt='stays'>"),
    "<p>no tags at all</p>", "", "<script>never closed",
]


def _tag_by_tag(raw: str) -> str:
    tree = LexborHTMLParser(raw)
    tree.strip_tags(_STRIP_TAGS)
    for img in tree.css("img[width='1'], img[height='1'], img[width='0']"):
        img.decompose()
    return tree.html or ""


def test_one_pass_leaves_the_tree_tag_by_tag_stripping_leaves() -> None:
    pages = [p for p in sorted((DATA / "pages").rglob("*"))
             if p.is_file() and not p.name.startswith("LICENSE")]
    assert len(pages) > 100
    texts = [decode_page(p.read_bytes()).text for p in pages] + _HOSTILE
    stripped = 0
    for raw in texts:
        page = Page(raw)
        want = _tag_by_tag(raw)
        assert (page.tree.html or "") == want
        stripped += want != (LexborHTMLParser(raw).html or "")
    assert stripped > 50  # most real pages had something to strip


_PATTERNS = [r"apollon[a-z2-7]{0,56}\.onion", r"marketstyle\.css", r"(?i)Apollon Markets?",
             r"(?i)login to", r"abcde+f", r"hansamkt", r"Dream Market\s*$"]
_BITS = ["apollon", "APOLLON", "apollonxyz.onion", "apollo", "marketstyle.css", "marketstyle",
         "Apollon Market", "apollon marke", "LOGIN TO", "login  to", "abcdeeef", "abcdf",
         "hansamkt", "\u0130", "\u212a", "\u00e9", "\ud800", "Dream Market", " ", "x" * 700]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(_BITS), max_size=30).map("".join))
def test_prefix_precheck_gives_the_regex_answer(text: str) -> None:
    """Long texts (where the literal pre-check runs) answer as the regex does."""
    from darkmap.extract import engine

    page = Page("<p>x</p>")
    long = text + "y" * 5000
    for p in _PATTERNS:
        assert engine._search(p, long, page) == bool(re.search(p, long)), p
