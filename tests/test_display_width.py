"""Terminal columns of market text (darkmap.model.display.columns, fit, pad).

Market titles hold wide characters (CJK, emoji, the ⚫ of a real Hansa title: two columns
each), combining marks (none) and controls (shown as escapes). A cut by characters let a
table line with them run past its edge and shifted the columns after them; these tests
check the cut and the padding by terminal columns.
"""

from __future__ import annotations

import csv
import unicodedata
from pathlib import Path

import pytest

from darkmap.cli.common import cell, short
from darkmap.model.display import columns, fit, for_display, pad


def _wide_titles(data_dir: Path) -> list[str]:
    """Titles of the real Hansa CSV that hold a wide character."""
    with (data_dir / "listings" / "hansa-2016-12.csv").open(encoding="utf-8", newline="") as f:
        titles = [row[2] for row in csv.reader(f) if len(row) > 2]
    return [t for t in titles if any(unicodedata.east_asian_width(c) in "WF" for c in t)]


def test_columns_count_wide_combining_and_escaped_characters() -> None:
    assert columns("abc") == 3
    assert columns("日本語") == 6
    assert columns("🔥 M30") == 6
    assert columns("e\u0301") == 1  # e + combining acute: one glyph
    assert columns("\u26ab") == 2  # the black circle of the real titles
    assert columns(for_display("\x1b[2J")) == 7  # shown as \x1b[2J


@pytest.mark.parametrize("width", [1, 2, 3, 7, 20, 41])
@pytest.mark.parametrize("text", [
    "日本語のテキストとオキシコドン", "🔥🔥 Fentanyl 💊 pressed M30 🔥", "e\u0301" * 60,
    "evil\u202egnp.exe\x1b[2J\x07 and more text to cut", "x" * 100, "⚫ The BlackPearl ⚫"])
def test_fit_never_passes_its_width_and_never_cuts_an_escape(text: str, width: int) -> None:
    shown = fit(text, width)
    assert columns(shown) <= width
    whole = for_display(text)
    if columns(whole) <= width:
        assert shown == whole
    else:
        assert shown.endswith("…")
        # what is kept is a prefix of the shown text, escapes whole
        assert whole.startswith(shown[:-1])
        assert columns(shown) >= width - 2  # a cut loses at most one wide character


def test_a_cell_is_exactly_its_width_and_keeps_the_next_column_aligned(
        data_dir: Path) -> None:
    titles = _wide_titles(data_dir)
    assert titles, "the real Hansa CSV has titles with wide characters"
    for t in [*titles, "plain ascii title", "\u202eabc"]:
        for width in (10, 24, 40):
            c = cell(t, width)
            assert columns(c) == width, (t, width, c)
            assert columns(pad("12", width, right=True)) == width
    # a wide title is cut shorter in characters than an ASCII one of the same columns
    t = titles[0]
    assert len(short(t, 30)) < len(short("x" * len(t), 30))
    assert columns(short(t, 30)) in (29, 30)


@pytest.mark.parametrize("hidden", ["\u200b", "\u200c", "\u200d", "\u2060", "\u180e"])
def test_zero_width_characters_are_shown_escaped(hidden: str) -> None:
    """Two handles that print alike must not be two accounts that look one: a zero-width
    space, joiner or word joiner inside a handle printed as nothing (found by fuzzing, in
    `persona search`, `targets`, CSV and GEXF), while the BOM beside it was escaped."""
    handle = f"king{hidden}kong"
    shown = for_display(handle)
    assert hidden not in shown and f"\\u{ord(hidden):04x}" in shown
    assert shown != for_display("kingkong")
