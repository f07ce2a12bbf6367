"""An analyst's usual template mistakes are refused when the template is loaded, with a
message naming the file, the place and the problem (docs/adding-a-market.md).

Each test writes a real template file, loads it through the real YAML parser and the
engine, and checks the message; before these checks, every one of these templates loaded
and then silently extracted less (a field dropped, a selector that matched nothing).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from darkmap.extract.engine import TemplateError, extract_page, load_templates

_GOOD = """\
market: nightfall
name: Nightfall Market
detect:
  threshold: 2
  rules:
    - {title: "^Nightfall ::", weight: 2}
pages:
  - type: vendor
    when: {css: "div.profile"}
    required: [account.handle]
    account:
      handle: {css: "h1.handle"}
      joined_at: {label: "^Member since:", inner: true, type: date}
    listings:
      rows: "table.vitems tr:has(> td)"
      fields:
        listing_ref: {css: "a", attr: href, regex: "/item/(\\\\d+)"}
        title: {css: "a"}
"""

_PAGE = ("<html><head><title>Nightfall :: Vendor dealer</title></head><body>"
         "<div class='profile'><h1 class='handle'>dealer</h1>"
         "<ul><li>Member since: <span>2020-11-02</span></li></ul>"
         "<table class='vitems'><tr><th>Item</th></tr>"
         "<tr><td><a href='/item/90001'>Ketamine 5g</a></td></tr></table></div></body></html>")


def _load(tmp_path: Path, text: str) -> None:
    (tmp_path / "nightfall.yaml").write_text(text, encoding="utf-8")
    load_templates([tmp_path])


def test_the_good_template_loads_and_reads_the_page(tmp_path: Path) -> None:
    (tmp_path / "nightfall.yaml").write_text(_GOOD, encoding="utf-8")
    res = extract_page(_PAGE.encode(), "p.html", templates=load_templates([tmp_path]))
    names = sorted(type(r).__name__ for r in res.records)
    assert names == ["AccountRecord", "ListingRecord", "MarketRecord"]


def test_a_misspelt_field_name_is_refused(tmp_path: Path) -> None:
    bad = _GOOD.replace("joined_at:", "member_since:")
    with pytest.raises(TemplateError, match=r"nightfall\.yaml: page vendor\.account: unknown "
                                            r"field 'member_since'.*joined_at"):
        _load(tmp_path, bad)


def test_a_misspelt_row_field_name_is_refused(tmp_path: Path) -> None:
    bad = _GOOD.replace("        title:", "        titel:")
    with pytest.raises(TemplateError, match=r"page vendor\.listings: unknown field 'titel'"):
        _load(tmp_path, bad)


@pytest.mark.parametrize(("good", "bad", "message"), [
    ('attr: href,', 'atr: href,', r"unknown keys \['atr'\]"),  # read the text instead
    ('type: date}', 'type: datetime}', r"type must be one of str, text, int"),
    ("pages:", "skips: []\npages:", r"unknown keys \['skips'\] \(a template takes"),
])
def test_a_misspelt_rule_or_template_key_is_refused(tmp_path: Path, good: str, bad: str,
                                                     message: str) -> None:
    assert good in _GOOD
    with pytest.raises(TemplateError, match=rf"nightfall\.yaml: .*{message}"):
        _load(tmp_path, _GOOD.replace(good, bad, 1))


def test_a_required_field_the_page_does_not_define_is_refused(tmp_path: Path) -> None:
    bad = _GOOD.replace("required: [account.handle]", "required: [account.hande]")
    with pytest.raises(TemplateError, match=r"page vendor: required 'account\.hande'"):
        _load(tmp_path, bad)


@pytest.mark.parametrize(("good", "bad"), [
    ('when: {css: "div.profile"}', 'when: {css: "div.profile["}'),  # a page type's condition
    ('handle: {css: "h1.handle"}', 'handle: {css: "h1.handle::text"}'),  # a field rule
    ('rows: "table.vitems tr:has(> td)"', 'rows: "table.vitems > > tr"'),  # a row selector
    ('inner: true,', 'inner: true, within: "ul[",'),  # a within
])
def test_a_css_selector_the_parser_cannot_read_is_refused(tmp_path: Path, good: str,
                                                           bad: str) -> None:
    assert good in _GOOD
    with pytest.raises(TemplateError, match=r"nightfall\.yaml: page vendor.*bad CSS selector"):
        _load(tmp_path, _GOOD.replace(good, bad))


def test_a_yaml_indentation_error_is_one_line_with_its_line_number(tmp_path: Path) -> None:
    bad = _GOOD.replace("      joined_at:", "     joined_at:")
    with pytest.raises(TemplateError) as err:
        _load(tmp_path, bad)
    msg = str(err.value)
    assert "\n" not in msg and "<unicode string>" not in msg
    assert "nightfall.yaml: not valid YAML (line 13, column 6: " in msg


def test_the_debugging_command_names_a_bad_template_without_a_traceback(
        tmp_path: Path) -> None:
    tdir = tmp_path / "templates"
    tdir.mkdir()
    (tdir / "nightfall.yaml").write_text(_GOOD.replace("joined_at:", "member_since:"),
                                         encoding="utf-8")
    page = tmp_path / "p.html"
    page.write_text(_PAGE, encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "darkmap.extract.engine", "--templates",
                          str(tdir), str(page)], capture_output=True, text=True, check=False)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert "unknown field 'member_since'" in out.stderr


def test_the_debugging_command_reads_a_page_with_an_extra_template_folder(
        tmp_path: Path) -> None:
    tdir = tmp_path / "templates"
    tdir.mkdir()
    (tdir / "nightfall.yaml").write_text(_GOOD, encoding="utf-8")
    page = tmp_path / "p.html"
    page.write_text(_PAGE, encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "darkmap.extract.engine", "--templates",
                          str(tdir), str(page)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert "market=nightfall type=vendor" in out.stdout
    assert "ListingRecord" in out.stdout and "'90001'" in out.stdout


def _debug(tmp_path: Path, template: str) -> str:
    tdir = tmp_path / "templates"
    tdir.mkdir()
    (tdir / "nightfall.yaml").write_text(template, encoding="utf-8")
    page = tmp_path / "p.html"
    page.write_text(_PAGE, encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "darkmap.extract.engine", "--templates",
                          str(tdir), str(page)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_the_debugging_command_says_why_a_template_matches_no_page(tmp_path: Path) -> None:
    bad = _GOOD.replace('- {title: "^Nightfall ::", weight: 2}',
                        '- {title: "^NightFall ::", weight: 2}\n'
                        '    - {css: "div.profile", weight: 1}')
    out = _debug(tmp_path, bad)
    assert "market=None type=unknown" in out
    assert "why: nightfall (" in out and "scored 1 of threshold 2" in out
    assert "'css': 'div.profile'" in out


def test_the_debugging_command_says_why_no_page_type_matches(tmp_path: Path) -> None:
    out = _debug(tmp_path, _GOOD.replace('when: {css: "div.profile"}',
                                         'when: {css: "div.vendor-profile"}'))
    assert "market=nightfall type=unknown" in out
    assert "why: page type vendor: when {'css': 'div.vendor-profile'} does not hold" in out
