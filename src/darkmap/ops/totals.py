"""Operation totals as a press release gives them, recorded and reported side by side.

*Recorded*: from the seizures and arrests of one operation that the acting user may
read: arrests by country and the number of those countries, drugs by substance in kg,
fentanyl kg, pills, firearms, cash and crypto in USD (the value at the seizure date as
recorded with each item; items without a USD value are counted apart, never guessed).

*Reported*: the figures of past operations as the press reported them
(../shared/data/operations/jcode-operations.csv), each kept with its source; where
sources disagree (a note such as "some outlets say US 155") each figure is kept and the
metric shows the range.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from darkmap.errors import BadInputError, NotFoundError
from darkmap.model.reported import OPERATION_COLUMN
from darkmap.ops.access import AccessDenied, acting, unit
from darkmap.ops.audit import log
from darkmap.ops.records import is_fentanyl, operation_key, operation_name
from darkmap.store import operations as store
from darkmap.store.operations import Space

__all__ = ["COUNTRY_CODES", "SIDE_BY_SIDE", "Figure", "import_reported", "known_operations",
           "operation_report", "parse_row", "recorded_totals"]

COUNTRY_CODES = {
    "us": "US", "usa": "US", "united states": "US", "uk": "GB", "united kingdom": "GB",
    "germany": "DE", "netherlands": "NL", "austria": "AT", "sweden": "SE", "italy": "IT",
    "france": "FR", "switzerland": "CH", "bulgaria": "BG", "poland": "PL", "brazil": "BR",
    "south korea": "KR", "spain": "ES", "australia": "AU", "canada": "CA",
}
_DIGITS = r"(?<!\d)(?<!\d[.,])\d[\d,]*(?:\.\d+)?(?!\d|[.,]\d)"
"""A number as press releases write it (``1,234.5``), never part of a longer one: the
digits before it or after it are not left out (a longer number was once read as its
last 16 digits)."""
_NUM = re.compile(rf"(>|~|<)?\s?(EUR\s|€|\$)?({_DIGITS})\s?(M|k|million)?\b")
_COUNTRY_N = re.compile(r"^([A-Za-z][A-Za-z .]{0,40}?)\s(\d+)$")
_OUTLETS = re.compile(r"some outlets say ([A-Za-z][A-Za-z .]{0,40}?) (\d+)\b")
_PART = re.compile(rf"({_DIGITS})\s?(M|k)?\s([A-Za-z][A-Za-z-]{{1,40}})")
_IN_COUNTRY = re.compile(rf"({_DIGITS}) in ([A-Z]{{2,3}})\b")
_PILLS = re.compile(rf"(>\s?)?({_DIGITS}) pills")
_FIREARMS = re.compile(rf"({_DIGITS}) firearms")
_FENTANYL = re.compile(rf"({_DIGITS}) fentanyl")
_ALONE = re.compile(r"^([A-Z]{2,3}) alone:")
_ALSO_NAMED = re.compile(r"\balso named\b")
_ALSO_NAMES = re.compile(r"([A-Z][A-Za-z ]{1,40}?) also names ([A-Z][a-z]{1,30})")
_IN_N_COUNTRIES = re.compile(r"in (\w{1,12}) countries'?(?: \(([^()]{1,40})\))?")
_WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
          "nine": 9, "ten": 10, "eleven": 11, "twelve": 12}
SIDE_BY_SIDE = ("arrests", "countries", "drugs_kg", "fentanyl_kg", "pills", "firearms",
                "cash_crypto_usd")
"""The press-release metrics shown recorded next to reported."""
_SCALE = {"M": 1e6, "million": 1e6, "k": 1e3, None: 1.0, "": 1.0}
_LISTED = 20
"""Most operation names an unknown-operation message lists."""


@dataclass(frozen=True)
class Figure:
    """One reported figure: metric, bounds (``high`` None: "more than"), text, source."""

    metric: str
    low: float | None
    high: float | None
    text: str
    source: str


EXACT_DIGITS = 15
"""Most significant digits of a reported figure: a float holds every number of 15 digits
exactly, not every one of 16."""


class FigureError(ValueError):
    """A number in a reported figure that cannot be held as written (``text``)."""

    def __init__(self, text: str) -> None:
        super().__init__(f"the number {text[:40]}{'...' if len(text) > 40 else ''} has more "
                         f"than {EXACT_DIGITS} significant digits: a figure holds at most "
                         f"{EXACT_DIGITS} exactly")
        self.text = text


def _number(text: str) -> float:
    """``1,234.5`` -> 1234.5; :class:`FigureError` for more than :data:`EXACT_DIGITS`
    significant digits (found by testing: they were read as another number)."""
    plain = text.replace(",", "")
    if len(plain.replace(".", "").strip("0")) > EXACT_DIGITS:
        raise FigureError(text)
    return float(plain)


def _amount(text: str) -> tuple[float, str, str] | None:
    """The first amount in ``text``: (value, qualifier '>' '~' '<' or '', currency)."""
    m = _NUM.search(text)
    if not m:
        return None
    qual, cur, num, scale = m.groups()
    currency = "EUR" if cur and cur.strip() in ("EUR", "€") else "USD" if cur else ""
    return _number(num) * _SCALE[scale], qual or "", currency


def _bounds(value: float, qual: str) -> tuple[float | None, float | None]:
    """Bounds for a qualified value: "> x" has no upper bound, "< x" no lower one."""
    return (value, None) if qual == ">" else (None, value) if qual == "<" else (value, value)


def _fig(metric: str, value: float, qual: str, text: str, source: str) -> Figure:
    """A figure from a qualified value."""
    low, high = _bounds(value, qual)
    return Figure(metric, low, high, text.strip(), source)


def _outside_parens(text: str) -> tuple[str, list[str]]:
    """The text outside parentheses and each parenthesised part (one level)."""
    outside: list[str] = []
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
            if depth == 1:
                cur = []
                continue
        elif ch == ")" and depth:
            depth -= 1
            if depth == 0:
                parts.append("".join(cur))
                continue
        (cur if depth else outside).append(ch)
    return "".join(outside), parts


def _country(name: str) -> str | None:
    """ISO code of a country name as the reports write it."""
    return COUNTRY_CODES.get(name.strip().lower())


def parse_row(row: dict[str, str]) -> tuple[str, list[Figure]]:
    """The figures of one operation row of jcode-operations.csv."""
    op = operation_name(row["operation"])
    source = "jcode-operations.csv: " + " | ".join(
        u.strip() for u in row.get("source_urls", "").split("|") if u.strip())
    outlets = f"some outlets (a note in jcode-operations.csv for {op})"
    figs: list[Figure] = []
    total = _amount(row.get("total_arrests", ""))
    if total:
        figs.append(_fig("arrests", total[0], total[1], row["total_arrests"], source))
    main, notes = _outside_parens(row.get("arrests_by_country", ""))
    listed = 0
    for part in main.split(";"):
        cm = _COUNTRY_N.match(part.strip())
        code = _country(cm.group(1)) if cm else None
        if cm and code:
            listed += 1
            figs.append(_fig(f"arrests:{code}", _number(cm.group(2)), "", part, source))
    if listed:
        figs.append(_fig("countries", listed, "", f"{listed} countries listed", source))
    for note in notes:
        for om in _OUTLETS.finditer(note):
            code = _country(om.group(1))
            if code:
                figs.append(_fig(f"arrests:{code}", _number(om.group(2)), "", om.group(0),
                                 outlets))
        named = _ALSO_NAMED.search(note)
        if named and listed:
            figs.append(_fig("countries", listed + 1, "", note, source))
    figs += _countries_in_notes(row.get("other", ""), listed, op)
    figs += _money(row.get("seized_cash_and_crypto", ""), source)
    figs += _drugs(row.get("drugs_kg", ""), source)
    fa = _amount(row.get("firearms", ""))
    if fa:
        figs.append(_fig("firearms", fa[0], fa[1], row["firearms"], source))
    for part in row.get("other", "").split(";"):
        alone = _ALONE.match(part.strip())
        suffix = f":{_country(alone.group(1)) or alone.group(1)}" if alone else ""
        for m in _PILLS.finditer(part):
            figs.append(_fig(f"pills{suffix}", _number(m.group(2)), ">" if m.group(1) else "",
                             m.group(0), source))
        for m in _FIREARMS.finditer(part):
            figs.append(_fig(f"firearms{suffix}", _number(m.group(1)), "", part.strip(),
                             source))
    return op, figs


def _countries_in_notes(other: str, listed: int, op: str) -> list[Figure]:
    """"179 ... in seven countries' (Rosen)" and "X also names Canada": how many
    countries other sources give, each with its source."""
    out = []
    for m in _IN_N_COUNTRIES.finditer(other):
        n = _WORDS.get(m.group(1).lower()) or (
            int(m.group(1)) if m.group(1).isascii() and m.group(1).isdigit() else 0)
        who = m.group(2) or f"a quote in jcode-operations.csv for {op}"
        if n:
            out.append(_fig("countries", n, "", m.group(0), who.strip()))
    for m in _ALSO_NAMES.finditer(other):
        if listed:
            out.append(_fig("countries", listed + 1, "", m.group(0), m.group(1).strip()))
    return out


def _money(text: str, source: str) -> list[Figure]:
    """Cash and crypto: the total (USD or EUR) and its parts (crypto, cash, gold)."""
    main, notes = _outside_parens(text)
    out: list[Figure] = []
    head = _amount(main)
    if head:
        cur = head[2] or "USD"
        out.append(_fig(f"cash_crypto_{cur.lower()}", head[0], head[1], main, source))
    for note in notes:
        for piece in note.split(","):
            amt = _amount(piece)
            if amt is None:
                continue
            words = piece.lower()
            kind = "crypto" if "crypto" in words else "cash" if "cash" in words else \
                "gold" if "gold" in words else "cash_crypto"
            out.append(_fig(f"{kind}_{(amt[2] or 'USD').lower()}", amt[0], amt[1], piece,
                            source))
    return out


def _drugs(text: str, source: str) -> list[Figure]:
    """Drugs in kg: the total, by substance, by country, fentanyl."""
    main, notes = _outside_parens(text)
    out: list[Figure] = []
    head = _amount(main)
    if head:
        out.append(_fig("drugs_kg", head[0], head[1], main, source))
    for note in notes:
        fent = _FENTANYL.search(note)
        if fent:
            out.append(_fig("fentanyl_kg", _number(fent.group(1)), "", fent.group(0), source))
            continue
        for cm in _IN_COUNTRY.finditer(note):
            code = _country(cm.group(2)) or cm.group(2)
            out.append(_fig(f"drugs_kg:{code}", _number(cm.group(1)), "", cm.group(0), source))
        for piece in note.split(","):
            pm = _PART.search(piece.strip())
            if pm and not _IN_COUNTRY.search(piece):
                out.append(_fig(f"drugs_kg:{pm.group(3).lower()}", _number(pm.group(1)), "",
                                piece, source))
    return out


def import_reported(ws: Space, by: str, path: Path) -> dict[str, int]:
    """Import the reported figures of the operations in a CSV (jcode-operations.csv's
    columns, :mod:`darkmap.model.reported`: what `darkmap ingest` names this command
    for), replacing those imported before; figures per operation."""
    actor = acting(ws.con, by)
    if actor.role == "reader":
        # the figures are the task force's, one set for every agency: a reader once
        # replaced or erased them (found by testing)
        log(ws.con, actor.user_id, "reported.import", "denied", file=path.name)
        raise AccessDenied(f"{by} is a reader and may not replace the reported figures")
    try:
        with path.open(encoding="utf-8", newline="") as f:
            # a short row's missing cells read as empty (DictReader's None: a traceback)
            rows = list(csv.DictReader(f, restval=""))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise BadInputError(f"{path}: cannot read the reported figures: {exc}") from exc
    if not rows or OPERATION_COLUMN not in rows[0]:
        raise BadInputError(f"{path}: no {OPERATION_COLUMN!r} column")
    out: dict[str, int] = {}
    with unit(ws.con):
        for n, row in enumerate(rows, start=1):
            if not str(row.get(OPERATION_COLUMN) or "").strip():
                raise BadInputError(f"{path}: row {n}: the {OPERATION_COLUMN!r} cell is "
                                    "empty")
            row.pop(None, None)  # cells past the header's (DictReader keys them None)
            try:
                op, figs = parse_row(row)
            except FigureError as exc:
                column = next((c for c, v in row.items() if exc.text in (v or "")), "?")
                raise BadInputError(f"{path}: row {n}, column {column!r}: {exc}; nothing "
                                    "was imported") from exc
            store.replace_reported(ws.con, op, [
                (f.metric, f.low, f.high, f.text, f.source) for f in figs])
            out[op] = len(figs)
        log(ws.con, actor.user_id, "reported.import", file=path.name, operations=out)
    return out


def _metric_summary(figs: Iterable[Sequence[Any]]) -> dict[str, dict[str, Any]]:
    """metric -> low, high over its sources, disagree flag, and each (text, source)."""
    by: dict[str, list[Sequence[Any]]] = defaultdict(list)
    for f in figs:
        by[f[0]].append(f)
    out = {}
    for metric, rows in sorted(by.items()):
        lows = [r[1] for r in rows if r[1] is not None]
        highs = [r[2] for r in rows if r[2] is not None]
        open_top = any(r[2] is None for r in rows)
        values = {(r[1], r[2]) for r in rows}
        out[metric] = {
            "low": min(lows) if lows else None,
            "high": None if open_top or not highs else max(highs),
            "sources_disagree": len(values) > 1,
            "figures": [{"text": r[3], "source": r[4], "low": r[1], "high": r[2]}
                        for r in rows]}
    return out


def recorded_totals(ws: Space, by: str, operation: str) -> dict[str, Any]:
    """The totals of the operation's seizures and arrests that ``by`` may read (none
    withdrawn)."""
    operation = operation_name(operation)
    actor = acting(ws.con, by)
    arrests = store.readable_records(ws.con, actor.user_id, actor.agency_id, kind="arrest",
                                     operation=operation, active_only=True)
    items = store.seizure_items(ws.con, actor.user_id, actor.agency_id, operation)
    by_country: dict[str, int] = defaultdict(int)
    for a in arrests:
        by_country[a.country or "??"] += 1
    # "288 arrests in nine countries": a press release counts the countries where the
    # arrests were made (the reported figure is the countries its arrests list), not
    # those of the seizures or of the agencies
    countries = len([c for c in by_country if c != "??"])
    drugs: dict[str, float] = defaultdict(float)
    totals = {"pills": 0, "firearms": 0, "cash_usd": 0.0, "crypto_usd": 0.0}
    unvalued: dict[str, int] = defaultdict(int)
    for _rid, item, substance, grams, count, _cur, _amt, usd, _addr in items:
        if item == "drug":
            drugs[str(substance).lower()] += float(grams or 0.0)
        elif item in ("pills", "firearms"):
            totals[item] += int(count or 0)
        elif usd is None:
            unvalued[item] += 1
        else:
            totals[f"{item}_usd"] += float(usd)
    fentanyl_g = sum(g for s, g in drugs.items() if is_fentanyl(s))
    seizures = sorted({i[0] for i in items})
    log(ws.con, by, "report.recorded", records=[a.record_id for a in arrests] + seizures,
        operation=operation)
    return {
        "arrests": len(arrests),
        "arrests_by_country": dict(sorted(by_country.items(), key=lambda kv: (-kv[1], kv[0]))),
        "countries": countries,
        "drugs_kg": round(sum(drugs.values()) / 1000, 6),
        "drugs_kg_by_substance": {s: round(g / 1000, 6) for s, g in sorted(drugs.items())},
        "fentanyl_kg": round(fentanyl_g / 1000, 6),
        "pills": totals["pills"], "firearms": totals["firearms"],
        "cash_usd": round(float(totals["cash_usd"]), 2),
        "crypto_usd": round(float(totals["crypto_usd"]), 2),
        "cash_crypto_usd": round(float(totals["cash_usd"]) + float(totals["crypto_usd"]), 2),
        "items_without_usd_value": dict(unvalued),
        "seizures": len(seizures),
    }


def known_operations(ws: Space, by: str) -> list[str]:
    """The operations ``by`` may know of: those named by records ``by`` may read, and
    those with reported figures (public, imported for everyone)."""
    actor = acting(ws.con, by)
    return sorted(set(store.readable_operations(ws.con, actor.user_id, actor.agency_id))
                  | set(store.reported_operations(ws.con)))


def _unknown_operation(operation: str, by: str, known: list[str]) -> str:
    """The message for an operation ``by`` does not know of: the same whether it exists
    in compartments ``by`` may not read or nowhere (its existence is not confirmed)."""
    head = (f"operation {operation!r}: no record {by} may read names it and no reported "
            "figures were imported for it")
    if not known:
        return (f"{head}; {by} knows of no operation yet (a record names its operation with "
                "--operation; `darkmap ops import-reported` imports past ones)")
    near = [k for k in known if operation_key(k) == operation_key(operation)]
    if near:
        return f"{head}; did you mean {near[0]!r}?"
    more = f" and {len(known) - _LISTED} more" if len(known) > _LISTED else ""
    return f"{head}; {by} knows of: {', '.join(known[:_LISTED])}{more}"


def operation_report(ws: Space, by: str, operation: str) -> dict[str, Any]:
    """Recorded totals (what ``by`` may read) and reported figures, side by side.

    An operation ``by`` does not know of (:func:`known_operations`) is a
    :class:`NotFoundError` listing those ``by`` knows, the same message whether or not
    other compartments name it; the attempt is audited (outcome ``not_found``)."""
    operation = operation_name(operation)  # "SpecTor " is SpecTor
    known = known_operations(ws, by)
    if operation not in known:
        log(ws.con, by, "report.recorded", "not_found", operation=operation)
        raise NotFoundError(_unknown_operation(operation, by, known))
    recorded = recorded_totals(ws, by, operation)
    reported = _metric_summary(store.reported(ws.con, operation))
    side = {m: {"recorded": recorded[m],
                "reported_low": reported.get(m, {}).get("low"),
                "reported_high": reported.get(m, {}).get("high")}
            for m in SIDE_BY_SIDE}
    for code, n in recorded["arrests_by_country"].items():
        rep = reported.get(f"arrests:{code}", {})
        side[f"arrests:{code}"] = {"recorded": n, "reported_low": rep.get("low"),
                                   "reported_high": rep.get("high")}
    return {"operation": operation, "as_seen_by": by, "recorded": recorded,
            "reported": reported, "side_by_side": side}
