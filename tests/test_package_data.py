"""Every data file the package reads at run time is declared to setuptools, so that an
installed (non-editable) darkmap has it: a lexicon or a country table left out of the
wheel works in the checkout and fails on an analyst's machine."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "darkmap"


def _declared() -> set[Path]:
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = conf["tool"]["setuptools"]["package-data"]["darkmap"]
    return {p for pattern in patterns for p in PACKAGE.glob(pattern) if p.is_file()}


def _data_files() -> set[Path]:
    return {p for p in PACKAGE.rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts}


def test_every_data_file_is_package_data() -> None:
    missing = sorted(str(p.relative_to(PACKAGE)) for p in _data_files() - _declared())
    assert not missing, f"not in [tool.setuptools.package-data]: {missing}"


def test_the_lexicons_are_among_the_data_files() -> None:
    # the check above is only as good as its walk: the files the assessment reads are in it
    names = {p.name for p in _data_files()}
    assert {"lexicon.tsv", "countries.tsv", "tablet_strengths.tsv"} <= names
