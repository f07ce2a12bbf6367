"""Records from what a user types: the command line's options and the workbench's record
form (``/record``) read the same text the same way.

- lots as ``NAME:NUMBER`` (``fentanyl:500``, ``EUR:20000``), and after ``@`` the USD
  value of the whole lot (``EUR:20000@21700``; crypto ``BTC:0.5:ADDRESS@30000``);
- links as ``KIND:ID`` (``persona:p-12``);
- counts (pills, firearms) added up over repeats, at most :data:`MAX_COUNT`;
- numbers finite, dates ``YYYY-MM-DD``.

Every refusal is a :class:`~darkmap.errors.BadInputError` naming the field and the value
(cut to 80 characters: a pasted page does not fill the message). What a record then
checks itself (its provenance, a seizure of nothing, a link's address checksum, the
compartment and case) stays with :func:`darkmap.ops.records.add_record`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from darkmap.errors import BadInputError
from darkmap.ops.records import (
    Arrest,
    Buy,
    Case,
    CryptoItem,
    Detail,
    LabResult,
    Parcel,
    Seizure,
    cash_lots,
)
from darkmap.ops.vocabulary import LINK_KINDS, MAX_COUNT, RECORD_KINDS

__all__ = ["FIELDS", "MAX_COUNT", "MAX_FIELD_CHARS", "Field", "RecordForm", "check_text", "count",
           "detail", "link", "number", "pair", "read_form", "seizure", "valued"]

MAX_FIELD_CHARS = 4000
"""The most characters one field of the record form takes (a summary, a list of lots)."""


def _shown(value: str) -> str:
    """``value`` as an error message quotes it: at most 80 characters."""
    return repr(value if len(value) <= 80 else value[:77] + "...")


def pair(value: str, what: str) -> tuple[str, float]:
    """``NAME:NUMBER``."""
    name, sep, num = value.rpartition(":")
    try:
        amount = float(num)
    except ValueError:
        amount = math.nan
    if not sep or not name or math.isnan(amount):   # the record checks the range
        raise BadInputError(f"{what} {_shown(value)}: give NAME:NUMBER")
    return name, amount


def valued(value: str, what: str) -> tuple[str, float | None]:
    """``REST@USD`` -> (REST, USD); no ``@``: (REST, None)."""
    rest, sep, usd = value.partition("@")
    try:
        return rest, float(usd) if sep else None
    except ValueError:
        raise BadInputError(f"{what} {_shown(value)}: the USD value after @ is not a "
                            "number") from None


def link(value: str, what: str = "--link") -> tuple[str, str]:
    """``KIND:ID`` of a link, KIND one of :data:`~darkmap.ops.vocabulary.LINK_KINDS`."""
    kind, sep, ref = value.strip().partition(":")
    if not sep or kind not in LINK_KINDS or not ref:
        raise BadInputError(f"{what} {_shown(value)}: give KIND:ID, KIND one of "
                            f"{', '.join(LINK_KINDS)}")
    return kind, ref


def count(counts: Sequence[int], what: str) -> int:
    """The counts of a repeated pill or firearm count added up, as lots are (click kept
    the last value of a single option: found by an audit, 10 pills of ``--pills 10
    --pills 20`` were lost)."""
    total = sum(counts)
    if total > MAX_COUNT:
        raise BadInputError(f"{what}: {total:,} in all; at most {MAX_COUNT:,}")
    return total


def seizure(drugs: Sequence[str], pills: Sequence[int], firearms: Sequence[int],
            cash: Sequence[str], crypto: Sequence[str], place: str,
            names: Mapping[str, str] | None = None) -> Seizure:
    """A seizure from its lots as typed: ``SUBSTANCE:GRAMS`` (one substance's lots added
    up), ``CUR:AMOUNT[@USD]`` (one currency's lots summed, each with its USD value or
    none), ``ASSET:AMOUNT[:ADDRESS][@USD]``. ``names``: what each field is called in the
    messages (``drugs``, ``pills``, ``firearms``, ``cash``, ``crypto``; default the
    command line's options)."""
    said = {k: f"--{k.removesuffix('s') if k == 'drugs' else k}" for k in
            ("drugs", "pills", "firearms", "cash", "crypto")} | dict(names or {})
    drug_g: dict[str, float] = {}
    for d in drugs:
        name, grams = pair(d, said["drugs"])
        drug_g[name.lower()] = drug_g.get(name.lower(), 0.0) + grams
    lots = []
    for c in cash:
        rest, usd = valued(c, said["cash"])
        cur, amount = pair(rest, said["cash"])
        lots.append((cur, amount, usd))
    coins = []
    for c in crypto:
        rest, usd = valued(c, said["crypto"])
        asset, _, tail = rest.partition(":")
        amount_text, _, address = tail.partition(":")
        _, amount = pair(f"{asset}:{amount_text}", said["crypto"])
        coins.append(CryptoItem(asset, amount, address, usd))
    return Seizure(drug_g, count(pills, said["pills"]), count(firearms, said["firearms"]),
                   cash_lots(lots), tuple(coins), place)


# -- the workbench's record form -------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One field of the record form: its name (the form's and the JSON API's), label,
    a hint, and whether it takes one value per line."""

    name: str
    label: str
    hint: str = ""
    lines: bool = False
    required: bool = False


FIELDS: dict[str, tuple[Field, ...]] = {
    "case": (Field("title", "Title", required=True),
             Field("summary", "Summary", lines=True),
             Field("members", "Case team", "user ids, one per line: of your agency, or a "
                   "partner agency's (its contact gives the id); a new case compartment "
                   "for you and them, unless a compartment is chosen", lines=True)),
    "buy": (Field("listing", "Listing bought from", "market:ref", required=True),
            Field("account", "Undercover account used"),
            Field("price", "Price", "a number"),
            Field("currency", "Currency", "USD unless given"),
            Field("txid", "Transaction id"),
            Field("parcel", "Parcel record", "the parcel record it came in (parcel-...)"),
            Field("substance", "Lab result: substance found", "leave empty without a result"),
            Field("purity", "Lab result: purity %"),
            Field("net_g", "Lab result: net weight g"),
            Field("pills", "Lab result: pill count"),
            Field("imprint", "Lab result: imprint")),
    "parcel": (Field("carrier", "Carrier"), Field("tracking", "Tracking number"),
               Field("sender", "Sender as written"),
               Field("return_address", "Return address as written"),
               Field("origin", "Origin postal area"), Field("destination", "Destination"),
               Field("weight_g", "Weight g"),
               Field("postage", "Postage"),
               Field("photos", "Photo SHA-256", "one per line", lines=True)),
    "seizure": (Field("drugs", "Drugs", "SUBSTANCE:GRAMS, one lot per line (fentanyl:500)",
                      lines=True),
                Field("pills", "Pills", "a count"),
                Field("firearms", "Firearms", "a count"),
                Field("cash", "Cash", "CUR:AMOUNT[@USD of the whole lot], one per line "
                      "(EUR:20000@21700)", lines=True),
                Field("crypto", "Crypto", "ASSET:AMOUNT[:ADDRESS][@USD of the whole lot], "
                      "one per line (BTC:0.5:bc1q...@30000)", lines=True),
                Field("place", "Place")),
    "arrest": (Field("person", "Person", required=True), Field("place", "Place"),
               Field("charges", "Charges", "one per line", lines=True)),
}
"""The fields of each kind's record, in the order the form shows them (the options of
``darkmap ops KIND add``)."""

COMMON = (Field("compartment", "Compartment", "one you may write; empty: the case's "
                "(a new case: a new case compartment)"),
          Field("case_id", "Case", "the case's record id (case-...), if it belongs to one"),
          Field("operation", "Operation", "for the totals"),
          Field("occurred_on", "Date", "YYYY-MM-DD"),
          Field("country", "Country", "ISO code; empty: your agency's"),
          Field("provenance", "Provenance", "report, exhibit, officer: where the fact "
                "comes from", required=True),
          Field("links", "Links", "KIND:ID, one per line: persona, account, listing, wallet "
                "or address it concerns", lines=True))
"""The fields every record has."""


@dataclass(frozen=True)
class RecordForm:
    """A record as the form gave it: what :func:`darkmap.ops.records.add_record` takes."""

    detail: Detail
    compartment: str | None
    case_id: str | None
    operation: str | None
    occurred_on: date | None
    country: str | None
    provenance: str
    links: tuple[tuple[str, str], ...]
    members: tuple[str, ...]


def _lines(text: str) -> list[str]:
    """The non-empty lines of a field, each stripped: split at line feeds only (with a
    carriage return before one), not at the other characters ``str.splitlines`` takes
    for line ends (a pasted charge with U+2028 in it was five)."""
    return [ln.strip() for ln in text.split("\n") if ln.strip()]


def check_text(name: str, value: str) -> None:
    """Refuse a field's text that no record can hold or that was not text: a lone
    surrogate (JSON's ``\\ud800``: the record was stored on the team server and every page
    listing it failed, review of the record form, 1), a NUL or another control character
    but tab and line ends, or U+FFFD (bytes that were not UTF-8, replaced on the way)."""
    bad = next((c for c in value if ("\ud800" <= c <= "\udfff" or c == "\ufffd"
                                     or (ord(c) < 32 and c not in "\t\n\r"))), None)
    if bad is not None:
        what = ("not UTF-8 text" if bad >= "\ud800" else
                f"a control character (U+{ord(bad):04X})")
        raise BadInputError(f"field {_shown(name)}: {what}; give the text as written")


_NUMBER = re.compile(r"[0-9]{1,20}(?:\.[0-9]{1,20})?")
"""A number as a field takes it: digits and a decimal point, nothing else. A comma is
refused, not read: "1,5" was 15 (a decimal comma read as a thousands separator, review
of the record form, 2), and the CLI refuses it too."""
_WHOLE = re.compile(r"[0-9]{1,13}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def number(text: str, label: str, *, low: float = 0.0, high: float | None = None
           ) -> float | None:
    """A number of at least ``low`` (and at most ``high``), written with digits and a
    decimal point (``12.5``), or None when empty."""
    text = text.strip()
    if not text:
        return None
    within = f"between {low:g} and {high:g}" if high is not None else f"{low:g} or more"
    value = float(text) if _NUMBER.fullmatch(text) else math.nan
    if not (value >= low and (high is None or value <= high)):
        raise BadInputError(f"{label} {_shown(text)}: a number {within}, written with "
                            "digits and a decimal point (12.5; no comma)")
    return value


def _whole(text: str, label: str) -> int | None:
    """A whole count from 0 to :data:`MAX_COUNT` in digits, or None when empty."""
    text = text.strip()
    if not text:
        return None
    if not _WHOLE.fullmatch(text) or int(text) > MAX_COUNT:
        raise BadInputError(f"{label} {_shown(text)}: a whole number from 0 to "
                            f"{MAX_COUNT:,}, in digits (1000; no comma)")
    return int(text)


def _date(text: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        if _DATE.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise BadInputError(f"Date {_shown(text)}: give YYYY-MM-DD")


def _or_none(text: str) -> str | None:
    return text.strip() or None


def _case(f: Mapping[str, str]) -> Detail:
    return Case(f["title"].strip(), f["summary"].strip())


def _buy(f: Mapping[str, str]) -> Detail:
    lab = None
    if f["substance"].strip():
        lab = LabResult(f["substance"].strip(),
                        number(f["purity"], "Lab result: purity %", high=100),
                        number(f["net_g"], "Lab result: net weight g"),
                        _whole(f["pills"], "Lab result: pill count"),
                        _or_none(f["imprint"]))
    else:
        given = [fld.label for fld in FIELDS["buy"][-4:] if f[fld.name].strip()]
        if given:
            raise BadInputError(f"{', '.join(given)} given without the substance found: "
                                "a lab result names its substance")
    return Buy(f["listing"].strip(), f["account"].strip(), number(f["price"], "Price"),
               f["currency"].strip() or "USD", f["txid"].strip(), f["parcel"].strip(), lab)


def _parcel(f: Mapping[str, str]) -> Detail:
    return Parcel(f["carrier"].strip(), f["tracking"].strip(), f["sender"].strip(),
                  f["return_address"].strip(), f["origin"].strip(),
                  f["destination"].strip(), number(f["weight_g"], "Weight g"),
                  f["postage"].strip(), tuple(_lines(f["photos"])))


def _seizure(f: Mapping[str, str]) -> Detail:
    pills, firearms = _whole(f["pills"], "Pills"), _whole(f["firearms"], "Firearms")
    return seizure(_lines(f["drugs"]), [pills or 0], [firearms or 0], _lines(f["cash"]),
                   _lines(f["crypto"]), f["place"].strip(),
                   names={"drugs": "Drugs", "pills": "Pills", "firearms": "Firearms",
                          "cash": "Cash", "crypto": "Crypto"})


def _arrest(f: Mapping[str, str]) -> Detail:
    return Arrest(f["person"].strip(), f["place"].strip(), tuple(_lines(f["charges"])))


_BUILD: dict[str, Callable[[Mapping[str, str]], Detail]] = {
    "case": _case, "buy": _buy, "parcel": _parcel, "seizure": _seizure, "arrest": _arrest}


def detail(kind: str, fields: Mapping[str, str]) -> Detail:
    """The record of ``kind`` the form's ``fields`` give (a field not given is empty)."""
    if kind not in FIELDS:
        raise BadInputError(f"record kind {_shown(kind)}: one of {', '.join(RECORD_KINDS)}")
    f = {fld.name: fields.get(fld.name, "") for fld in FIELDS[kind]}
    for fld in FIELDS[kind]:
        if fld.required and not f[fld.name].strip():
            raise BadInputError(f"{fld.label}: required for a {kind}")
    return _BUILD[kind](f)


def read_form(kind: str, fields: Mapping[str, str]) -> RecordForm:
    """The record the workbench's form gives: ``fields`` by name (:data:`FIELDS` of the
    kind and :data:`COMMON`), each a text of at most :data:`MAX_FIELD_CHARS`."""
    known = {f.name for f in (*FIELDS.get(kind, ()), *COMMON)}
    for name, value in fields.items():
        check_text("(a field's name)", name)
        if kind in FIELDS and name not in known:
            # a field the form does not have was dropped without a word (the API's
            # `drug` for `drugs`: a seizure of fentanyl stored without it, review of the
            # record form, 3)
            raise BadInputError(f"field {_shown(name)}: a {kind} has no such field (its "
                                f"fields: {', '.join(sorted(known))})")
        if len(value) > MAX_FIELD_CHARS:
            raise BadInputError(f"field {_shown(name)}: {len(value):,} characters; at most "
                                f"{MAX_FIELD_CHARS:,}")
        check_text(name, value)
    made = detail(kind, fields)
    members = tuple(_lines(fields.get("members", ""))) if kind == "case" else ()
    return RecordForm(
        made, _or_none(fields.get("compartment", "")), _or_none(fields.get("case_id", "")),
        _or_none(fields.get("operation", "")), _date(fields.get("occurred_on", "")),
        _or_none(fields.get("country", "")), fields.get("provenance", "").strip(),
        tuple(link(v, "Links") for v in _lines(fields.get("links", ""))), members)
