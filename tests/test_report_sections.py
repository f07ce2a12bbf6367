"""The report's sections: one module each, drawn in a fixed order. (That no package but
store/ holds SQL is checked for the whole tree in test_architecture.py.)"""

from __future__ import annotations

from darkmap.report import html
from darkmap.report.sections import sections


def test_sections_are_one_module_each_in_report_order() -> None:
    assert [key for _, key, _ in sections()] == [
        "collection", "markets", "personas", "targets", "money", "operations", "evaluation"]
    for (_, key, fn), module in zip(sections(), html.BUILTIN_SECTIONS, strict=True):
        assert fn.__module__ == module.__name__ == f"darkmap.report.section_{key}", key


