"""Country names and codes: one ISO alpha-2 code per place, from ``data/countries.tsv``.

A value type like the others in ``darkmap.model``: jurisdiction inference (assess) and
account profiles (resolve) both name countries through :func:`country_code`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

__all__ = ["country_aliases", "country_code"]


@lru_cache(maxsize=1)
def country_aliases() -> dict[str, str]:
    """Every known country name, adjective and code (casefolded) -> ISO alpha-2 code."""
    text = resources.files("darkmap.model").joinpath("data", "countries.tsv").read_text(
        encoding="utf-8")
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        code, _, names = line.partition("\t")
        out[code.strip().casefold()] = code.strip()
        for n in names.split(","):
            if n.strip():
                out[n.strip().casefold()] = code.strip()
    return out


def country_code(name: str | None) -> str | None:
    """ISO alpha-2 code of a country name, adjective or code ("United States" -> "US")."""
    if not name:
        return None
    key = re.sub(r"[^\w\s]", " ", name.casefold())
    key = re.sub(r"\s+", " ", key).strip()
    al = country_aliases()
    if key in al:
        return al[key]
    for part in re.split(r"\s*(?:,|/|\(|\)|-)\s*", name.casefold()):
        part = part.strip()
        if part in al:
            return al[part]
    return None
