"""Benchmark: extraction on adversarial text (issue #18), seconds at 10k, 100k and 1M.

For each pattern rewritten for linear time, the new code on inputs of 10,000, 100,000 and
1,000,000 characters, and the pattern it replaced on the sizes it can finish (it is
stopped from growing once a size takes over ``--budget`` seconds). Linear code takes
about ten times longer per step; the old quadratic patterns about a hundred. Prints JSON;
never passes or fails (``tests/test_extract_hostile.py`` checks the results).

    .venv/bin/python bench/extract_hostile.py [--budget SECONDS]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Callable

from darkmap.errors import LimitExceeded
from darkmap.extract import identifiers, parse, pgp
from darkmap.extract.nesting import check_html_nesting

SIZES = (10_000, 100_000, 1_000_000)

_SEP = r"\s*(?:[:=>\-–|]+|\bis\b|\bat\b|\bon\b)?\s*"
OLD = {
    "begin": re.compile(r"-{2,}\s*BEGIN PGP PUBLIC KEY BLOCK\s*-{0,}", re.I),
    "end": re.compile(r"-{0,}\s*END PGP PUBLIC KEY BLOCK\s*-{0,}", re.I),
    "wickr": re.compile(r"\bwickr(?:\s*me)?(?:\s*(?:id|name|user(?:name)?|handle))?" + _SEP
                        + r"@?([A-Za-z0-9][A-Za-z0-9_.\-]{2,31})", re.I),
    "nl": re.compile(r"\s*\n\s*(?:\n\s*)+"),
    "tag": re.compile(r"<\s*(br|/?p|/?div|/?pre|/?li)\b[^>]*>", re.I),
    "price": re.compile(rf"(?<![\w*.,])(\d{{1,3}}(?:[,\u00a0 ]\d{{3}})+(?:\.\d+)?|\d+(?:\.\d+)?"
                        rf"|\.\d+)\s*({parse._CODE_ALT})(?![A-Za-z])", re.I),
    "dream_category": re.compile(r"^(.+?)\s*\d*$"),
    "cryptonia_price": re.compile(r"(\d[\d,.]*\s*[A-Z]{3}\b.*)$"),
    "pgp_template": re.compile(r"(?s)(-----BEGIN PGP PUBLIC KEY BLOCK-----.+?"
                               r"-----END PGP PUBLIC KEY BLOCK-----)"),
}


def _nesting(text: str) -> None:
    try:
        check_html_nesting(text)
    except LimitExceeded:
        pass


# case -> (adversarial text of about n characters, new code, old code or None)
CASES: dict[str, tuple[Callable[[int], str], Callable[[str], object],
                       Callable[[str], object] | None]] = {
    "pgp_begin_after_dashes": (lambda n: "-" * n + "x BEGIN PGP PUBLIC KEY BLOCK",
                               pgp.find_armor_blocks, OLD["begin"].search),
    "pgp_end_after_dashes": (lambda n: "-" * n + "x", pgp._find_end,
                             OLD["end"].search),
    "pgp_br_without_gt": (lambda n: "<br" * (n // 3), pgp.normalise_armor_text,
                          lambda t: OLD["tag"].sub("\n", t)),
    "contact_spaces": (lambda n: "wickr" + " " * n + "!",
                       lambda t: identifiers.scan_text(t, market_id=None, account_handle=None,
                                                       field="d", locator="x"),
                       OLD["wickr"].search),
    "clean_text_u2028": (lambda n: "a" + "\u2028" * n + "b",
                         lambda t: parse.clean_text(t, multiline=True),
                         lambda t: OLD["nl"].sub("\n", t)),
    "price_thousands": (lambda n: "1" + " 111" * (n // 4) + " x", parse.parse_price,
                        OLD["price"].search),
    "dream_category_digits": (lambda n: "a" + "1" * n + "x",
                              re.compile(r"^(.+?)\s?\d{0,12}$").search,
                              OLD["dream_category"].search),
    "cryptonia_price_digits": (lambda n: "1" * n + "x",
                               re.compile(r"(?<![\d,.])[,.]*+(\d[\d,.]*+\s*+[A-Z]{3}\b.*)$")
                               .search, OLD["cryptonia_price"].search),
    "pgp_template_begins": (lambda n: "-----BEGIN PGP PUBLIC KEY BLOCK-----" * (n // 36),
                            re.compile(r"(?s)^(?>(?:[^-]++|-)*?(?=-----BEGIN PGP PUBLIC KEY "
                                       r"BLOCK-----))(-----BEGIN PGP PUBLIC KEY BLOCK-----.+?"
                                       r"-----END PGP PUBLIC KEY BLOCK-----)").search,
                            OLD["pgp_template"].search),
    "nesting_divs": (lambda n: "<div>" * (n // 5), _nesting, None),
    "nesting_div_pairs": (lambda n: "<div></div>" * (n // 11), _nesting, None),
    "nesting_script": (lambda n: "<script>" + "<div>" * (n // 5), _nesting, None),
}


def _time(fn: Callable[[str], object], text: str) -> float:
    t0 = time.perf_counter()
    fn(text)
    return round(time.perf_counter() - t0, 4)


def main() -> None:
    """Print the seconds of each case at each size (new code, and old where it finishes)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=5.0,
                    help="stop timing the old pattern once one size takes longer")
    args = ap.parse_args()
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for name, (make, new, old) in CASES.items():
        row: dict[str, dict[str, float | None]] = {"new": {}, "old": {}}
        over = old is None
        for n in SIZES:
            text = make(n)
            row["new"][f"{n}"] = _time(new, text)
            row["old"][f"{n}"] = None if over or old is None else _time(old, text)
            over = over or (row["old"][f"{n}"] or 0) > args.budget / 100
        out[name] = row
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
