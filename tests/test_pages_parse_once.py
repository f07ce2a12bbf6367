"""A page's scripts, styles and tracking pixels go in one pass, as tag by tag."""

from __future__ import annotations

from pathlib import Path

from selectolax.lexbor import LexborHTMLParser

from darkmap.extract.decode import decode_page
from darkmap.extract.engine import _STRIP_TAGS, Page

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

_HOSTILE = [
    "<noscript><img width='1' src='x'><script>a()</script></noscript><p>kept</p>",
    "<object><embed><iframe><p>in</p></iframe></embed></object><img height='1'><b>x</b>",
    "<template><script>x</script><p>t</p></template><style>p{}</style><img width=0>"
    "<img width='2' alt='stays'>",
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
