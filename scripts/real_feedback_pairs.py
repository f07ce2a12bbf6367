"""Every (orders, feedback) pair the real saved pages display, and each market's rate.

Reads the raw pages under $DARKMAP_DATA/pages (default ../shared/data/pages) with plain
patterns, because part of what they show is not stored by the page templates yet
(Apollon's positive/neutral/negative totals and the counts it imports from other markets;
Empire's feedback ratings table; Dream's search-result pairs). Prints JSON: the pairs,
where each comes from, and the rates darkmap.assess.feedback_rate.calibrate makes of them.

Run: .venv/bin/python scripts/real_feedback_pairs.py  (docs/sales.md quotes its output)
"""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path

from darkmap.assess.feedback_rate import CounterPair, calibrate

DATA = Path(os.environ.get("DARKMAP_DATA", Path(__file__).resolve().parents[2] / "shared"
                           / "data")) / "pages"
TAGS = re.compile(r"<[^>]{0,2000}>")


def _text(path: Path) -> str:
    raw = path.read_text(encoding="utf-8", errors="replace")
    return re.sub(r"\s+", " ", html.unescape(TAGS.sub(" ", raw)))


def apollon() -> list[dict[str, object]]:
    """Apollon: "Seller Level N (sales)" beside the Positive/Neutral/Negative totals, and
    the feedback imported from other markets: "<market>: S Sales | pos/neu/neg"."""
    out: list[dict[str, object]] = []
    seen: set[tuple[str, int, int]] = set()
    for p in sorted((DATA / "apollon").rglob("*")):
        if not p.is_file():
            continue
        raw = p.read_text(encoding="utf-8", errors="replace")
        t = _text(p)
        lv = re.search(r"Seller Level \d+ \((\d+)\)", t)
        fb = re.search(r"Feedback Ratings : Positive : (\d+) Neutral : (\d+) Negative : (\d+)", t)
        if lv and fb:
            n, f = int(lv.group(1)), sum(int(x) for x in fb.groups())
            key = ("apollon", n, f)
            if key not in seen and n > 0:
                seen.add(key)
                out.append({"market": "apollon", "orders": n, "feedback": f, "page": p.name,
                            "what": "Seller Level (sales) vs positive+neutral+negative"})
        for m in re.finditer(r'images/([a-z]+)\.(?:jpg|png)"[^>]*>\s*<b><big>:</big></b>\s*'
                             r'(\d+)\s*<b>Sales</b>\s*\|\s*<a style="color:green">(\d+)</a><b>/'
                             r'</b><a style="color:grey">(\d+)</a><b>/</b><a style="color:red">'
                             r"(\d+)</a>", raw):
            mk, n = m.group(1), int(m.group(2))
            f = sum(int(m.group(i)) for i in (3, 4, 5))
            if (mk, n, f) not in seen:
                seen.add((mk, n, f))
                out.append({"market": mk, "orders": n, "feedback": f, "page": p.name,
                            "what": f"imported on an Apollon profile: {mk} sales vs feedback"})
    return out


def empire() -> list[dict[str, object]]:
    """Empire profiles: "(sales)" beside the handle and the 12-month feedback table (the
    accounts joined in 2019, within those 12 months)."""
    out: list[dict[str, object]] = []
    seen: set[str] = set()
    for p in sorted((DATA / "empire").rglob("*")):
        if not p.is_file():
            continue
        raw = p.read_text(encoding="utf-8", errors="replace")
        h = re.search(r'user_info_mid_head">([^<]{1,80})<span style="">\((\d+)\)', raw)
        t = _text(p)
        fb = re.search(r"12 months Positive \d+ \d+ (\d+) Neutral \d+ \d+ (\d+) Negative \d+ "
                       r"\d+ (\d+)", t)
        if h and fb and h.group(1).strip() not in seen:
            seen.add(h.group(1).strip())
            out.append({"market": "empire", "orders": int(h.group(2)),
                        "feedback": sum(int(x) for x in fb.groups()), "page": p.name,
                        "what": "profile (sales) vs 12-month feedback (joined 2019)"})
    return out


def dream() -> list[dict[str, object]]:
    """Dream: "Successful transactions (N)" beside "out of M rating[s]" (rounded)."""
    out: list[dict[str, object]] = []
    seen: set[tuple[int, int]] = set()
    pat = re.compile(r"Successful transactions[^(]{0,20}\((\d+)\)<\\?/span>\s*\(<span "
                     r'class=\\?"userRating[^"]{0,40}"\s*title=\\?"Average rating out of '
                     r"(\d+) rating")
    for p in sorted((DATA / "dream").rglob("*")):
        if not p.is_file():
            continue
        raw = p.read_text(encoding="utf-8", errors="replace")
        for m in pat.finditer(raw):
            n, f = int(m.group(1)), int(m.group(2))
            if (n, f) not in seen and n > 0:
                seen.add((n, f))
                out.append({"market": "dream", "orders": n, "feedback": f, "page": p.name,
                            "what": "Successful transactions vs ratings (rounded)"})
    return out


def cryptonia() -> list[dict[str, object]]:
    """Cryptonia profiles list orders; "No feedback left." marks those without feedback."""
    out: list[dict[str, object]] = []
    for p in sorted((DATA / "cryptonia" / "users").glob("*")):
        t = _text(p)
        h = re.search(r"Cryptonia Market - ([^ ]{1,60})", t)
        n_none = t.count("No feedback left.")
        rows = len(re.findall(r"\d{4}-\d\d-\d\d [\d.]+ BTC", t))
        if rows:
            out.append({"market": "cryptonia", "orders": rows, "feedback": rows - n_none,
                        "page": p.name, "what": f"order rows of {h.group(1) if h else '?'}"
                                                ", 'No feedback left.' marks"})
    return out


def main() -> None:
    """Print the pairs and the calibrated rates."""
    found = apollon() + empire() + dream() + cryptonia()
    rows = [r for r in found if int(str(r["feedback"])) <= int(str(r["orders"]))]
    left_out = [r for r in found if r not in rows]  # more feedback than sales: inconsistent
    pairs = [CounterPair(str(r["market"]), f"{r['market']}:{i}", int(str(r["orders"])),
                         int(str(r["feedback"])), "counters") for i, r in enumerate(rows)]
    rates, pop = calibrate(sorted({p.market_id for p in pairs} | {"hansa", "agora"}), pairs)
    print(json.dumps({"pairs": rows, "left_out": left_out, "rates": {
        m: {"rate": round(r.rate, 3), "low": round(r.interval[0], 3),
            "high": round(r.interval[1], 3), "source": r.source, "accounts": r.n_accounts,
            "orders": r.n_orders, "feedback": r.n_feedback} for m, r in rates.items()},
        "population": {"sigma_vendor": round(pop.sigma_v, 3), "tau": round(pop.tau, 3),
                       "markets": pop.n_markets}}, indent=1))


if __name__ == "__main__":
    main()
