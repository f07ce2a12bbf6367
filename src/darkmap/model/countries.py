"""Country names and codes: one ISO alpha-2 code per place, from ``data/countries.tsv``.

A value type like the others in ``darkmap.model``: jurisdiction inference (assess) and
account profiles (resolve) both name countries through :func:`country_code`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

from darkmap.errors import BadInputError

__all__ = ["ISO_3166_CODES", "check_country", "country_aliases", "country_code"]

ISO_3166_CODES = frozenset("""
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
VN VU WF WS YE YT ZA ZM ZW XK
""".split())
"""The ISO 3166-1 alpha-2 codes (249) and XK (Kosovo, the code agencies use)."""


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


def check_country(value: str) -> str:
    """``value`` as an ISO 3166 two-letter code (upper case), or a :class:`BadInputError`
    naming the code meant when ``value`` is a country's name ("germany": DE).

    >>> check_country("de")
    'DE'
    """
    code = value.strip().upper()
    if code in ISO_3166_CODES:
        return code
    meant = country_code(value)
    hint = f" ({value.strip()} is {meant})" if meant else ""
    raise BadInputError(f"country {value!r}: not an ISO 3166 two-letter code{hint}; give "
                        "one such as DE, GB or US")
