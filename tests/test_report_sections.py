"""The report's sections (one module each, drawn in a fixed order) and the rule that the
assess, report, export and evaluate packages hold no SQL: they read through the store."""

from __future__ import annotations

import re
from pathlib import Path

from darkmap.report import html
from darkmap.report.sections import sections

SRC = Path(__file__).resolve().parents[1] / "src" / "darkmap"
# SQL statements and calls that run them; the store's query modules hold all of these
_SQL = re.compile(r"\.execute\(|\.sql\(|\b(SELECT|INSERT INTO|DELETE FROM|CREATE TABLE|"
                  r"DROP TABLE|BEGIN TRANSACTION|COMMIT|ROLLBACK)\b|\bUPDATE\s+\w+\s+SET\b")
# assess/dbutil.py is the assessment's Arrow insert helper, to be replaced by the store's
# one bulk writer
_ALLOWED = {SRC / "assess" / "dbutil.py"}


def test_sections_are_one_module_each_in_report_order() -> None:
    assert [key for _, key, _ in sections()] == [
        "collection", "markets", "personas", "targets", "money", "evaluation"]
    for (_, key, fn), module in zip(sections(), html.BUILTIN_SECTIONS, strict=True):
        assert fn.__module__ == module.__name__ == f"darkmap.report.section_{key}", key


def test_no_sql_outside_the_store() -> None:
    files = [p for pkg in ("assess", "report", "export", "evaluate")
             for p in sorted((SRC / pkg).rglob("*.py"))]
    files += [SRC / "cli" / f"{name}.py" for name in ("assess", "report", "evaluate")]
    found = [f"{p.relative_to(SRC)}:{n}: {line.strip()}"
             for p in files if p not in _ALLOWED
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if _SQL.search(line)]
    assert found == []
