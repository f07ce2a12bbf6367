"""Choosing an importer and a market template without trying everything: the shortcuts
(``sniff_range`` bounds, cheapest-first detection with early stops) must make exactly
the choices the exhaustive versions make."""

from __future__ import annotations

from pathlib import Path

from conftest import DATA

from darkmap.extract.decode import decode_page
from darkmap.extract.engine import Page, _holds, detect_market, load_templates
from darkmap.plugins import SourceFile, best_importer, importers


def _src(path: Path, source: str | None = None) -> SourceFile:
    with open(path, "rb") as fh:
        head = fh.read(65536)
    return SourceFile(path=path, source=source or str(path), sha256="0" * 64, head=head)


def _exhaustive(src: SourceFile, threshold: float = 0.5) -> str | None:
    scored = sorted((-imp.sniff(src), name) for name, imp in importers().items())
    return scored[0][1] if scored and -scored[0][0] >= threshold else None


def _files() -> list[Path]:
    return sorted(p for d in ("pages", "listings", "seized", "bitcoin", "operations")
                  for p in (DATA / d).rglob("*") if p.is_file())


def test_best_importer_makes_the_exhaustive_choice_on_real_files() -> None:
    chosen = {}
    for path in _files():
        src = _src(path)
        imp = best_importer(src)
        assert (imp.name if imp else None) == _exhaustive(src), path
        chosen[path.relative_to(DATA).as_posix()] = imp.name if imp else None
    assert chosen["pages/hansa/listing_80539_.htm"] == "pages"
    assert chosen["listings/hansa-2016-12.csv"] == "csv"
    assert chosen["seized/dream-2016-sellers.sql"] == "sqldump"
    assert chosen["bitcoin/blk_0_to_4.dat"] == "bitcoin"


def test_pages_range_bounds_its_sniff_and_rivals_still_win(tmp_path: Path) -> None:
    pages = importers()["pages"]
    for path in sorted((DATA / "pages").rglob("*"))[:40]:
        if path.is_file():
            src = _src(path)
            lo, hi = pages.sniff_range(src)
            assert lo <= pages.sniff(src) <= hi
    # an HTML page that is also a Hansa-shaped CSV: the CSV mapping scores 0.9 and
    # the page (no template) 0.55, so csv must win although pages could reach 0.9
    row = '"2016-12-11 20:13:54.1 -0500 EST", "18365", "<b>t</b>", "v", "USD 1.00", "Drugs"\n'
    odd = tmp_path / "hansa-dump.csv"
    odd.write_text("<html>" + row * 30, encoding="utf-8")
    src = _src(odd)
    assert pages.sniff(src) == 0.55 and importers()["csv"].sniff(src) >= 0.85
    assert best_importer(src).name == _exhaustive(src) == "csv"
    # a page a template recognises (0.9) against the same CSV score (0.9): the tie goes
    # to the name that sorts first, as before
    page = (DATA / "pages" / "hansa" / "listing_80539_.htm").read_bytes()
    both = tmp_path / "hansa-both.csv"
    both.write_bytes(page[:2000] + b"\n" + row.encode() * 40)
    src = _src(both)
    assert best_importer(src).name == _exhaustive(src)


def _brute_detect(page: Page, templates) -> object:  # type: ignore[no-untyped-def]
    best = None
    for tpl in templates:
        score = sum(float(r.get("weight", 1)) for r in tpl.detect if _holds(r, page))
        if score >= tpl.threshold and (best is None or score > best[0]):
            best = (score, tpl)
    return best[1] if best else None


def test_detect_market_equals_scoring_every_rule() -> None:
    templates = load_templates()
    seen = set()
    for path in sorted((DATA / "pages").rglob("*")):
        if not path.is_file() or path.name.startswith("LICENSE"):
            continue
        data = path.read_bytes()
        for blob in (data, data[: len(data) // 3]):
            text = decode_page(blob).text
            got = detect_market(Page(text, str(path)), templates)
            want = _brute_detect(Page(text, str(path)), templates)
            assert got is want, path
            seen.add(got.market if got else None)
    assert {"apollon", "cryptonia", "dream", "empire", "hansa"} <= seen


def test_detect_market_ties_go_to_the_first_template_whatever_is_scored_first() -> None:
    """Templates whose cheapest rule holds are scored first; a tie still goes to the
    template that comes first, and the scores are those of every rule tried."""
    from darkmap.extract.engine import Template

    def tpl(name: str, rules: list[dict[str, object]], threshold: float = 1.0) -> Template:
        return Template(market=name, name=name, path=name, detect=rules, threshold=threshold)

    html = ("<html><head><title>Shop B</title></head><body><div class='x'>Shop A"
            "</div><p>alpha</p></body></html>")
    # a's cheapest rule (text) fails, so b (title holds) is scored first: both score 3
    a = tpl("a", [{"css": "div.x", "weight": 3}, {"text": "missing", "weight": 1}])
    b = tpl("b", [{"title": "Shop B", "weight": 2}, {"css": "div.x", "weight": 1}])
    c = tpl("c", [{"title": "Shop B", "weight": 1}, {"text": "nothing here", "weight": 5}])
    d = tpl("d", [{"title": "nope", "weight": 4}, {"css": "p", "weight": 1}], threshold=1.0)
    e = tpl("e", [{"title": "Shop B", "weight": 2}, {"css": "p", "weight": 2},
                  {"css": "div.x", "weight": -2}])
    for order in ([a, b, c, d, e], [b, a, c, d, e], [c, d, e, b, a], [e, d, c, b, a],
                  [d, c], [c], [d], [e, b]):
        got = detect_market(Page(html), order)
        assert got is _brute_detect(Page(html), order), [t.market for t in order]
