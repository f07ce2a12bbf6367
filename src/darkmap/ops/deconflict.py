"""Deconfliction as a pointer system: keyed-hash selectors and planned events.

*Target deconfliction.* A selector (persona, PGP fingerprint, wallet cluster, address,
market handle, listing, tracking number, phone, email, postal address) is normalised
(:func:`normalise`) and kept only as ``HMAC-SHA256(task-force key, kind NUL value)``,
with the form it was registered in (:func:`forms`: as written, or the bare handle of a
``market:handle``, whose match the notice calls the weaker one, :data:`BARE_MATCH`);
the key is a file in the workspace, created once (:func:`taskforce_key`). When a
compartment of one agency holds a selector that a compartment of another agency holds
too, both agencies get a notice naming the other agency and its contact, and the kind of
selector with a prefix of its hash: no case detail crosses. A partner that may not share
raw selectors submits hashed ones (:func:`submit`, ``hashed=True``).

*Event deconfliction.* A planned action (search warrant, controlled delivery, arrest,
surveillance) has a place (coordinates or a postal area) and a time window; two events of
different agencies closer than a distance (haversine, default 1 km, at most 5 km) or in
the same postal area, with overlapping windows, raise a notice to both at once. The
agency whose event was hit gets one notice per event of the other agency that hit it,
and its notices say how many there are (repeated probes fishing for its place show).

*Within one agency.* Two compartments of one agency are compared too: a match in another
compartment that the user who registered the selector or planned the event may not read
notifies both compartments (:func:`_within_agency`, :func:`_inside_event_notices`), each
notice addressed to one compartment (``NoticeRow.to_compartment``: its readers only) and
naming the user who created the other (:func:`darkmap.store.operations.
compartment_creator`), nothing of it. A user who may read the other compartment sees its
selectors and events already: no one is told.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import math
import os
import re
import unicodedata
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from darkmap.errors import BadInputError, NotFoundError
from darkmap.model.values import clean_btc_address, clean_xmr_address
from darkmap.ops.access import AccessDenied, acting, check_access, still_acting, unit
from darkmap.ops.audit import log
from darkmap.ops.vocabulary import (
    DEFAULT_DISTANCE_M,
    EVENT_KINDS,
    MAX_DISTANCE_M,
    MAX_EVENT_DAYS,
)
from darkmap.store import operations as store
from darkmap.store.operations import (
    BARE_MATCH,
    SELECTOR_FORMS,
    UNPLACED,
    WITHIN_AGENCY,
    WITHIN_TAIL,
    Con,
    EventRow,
    NoticeRow,
    RecordRow,
    SelectorMatch,
    Space,
    UserRow,
    selector_subject,
)
from darkmap.store.workspace import KEY_FILE, utcnow

__all__ = ["BARE_MATCH", "DEFAULT_DISTANCE_M", "EVENT_KINDS", "KEY_FILE", "MAX_DISTANCE_M",
           "SELECTOR_FORMS", "SELECTOR_KINDS", "UNPLACED", "Conflict", "acknowledge",
           "add_event", "forms",
           "hash_file", "hash_forms", "hash_selector", "hash_selectors", "haversine_m",
           "link_selectors", "normalise", "notices", "read_hashed", "read_key",
           "read_selectors", "record_selectors", "submit", "taskforce_key", "write_key"]

SELECTOR_KINDS = ("persona", "pgp", "wallet", "address", "handle", "listing", "tracking",
                  "phone", "email", "postal")
_HEX = re.compile(r"^[0-9a-f]{64}$")
_NON_ALNUM = re.compile(r"[^0-9A-Za-z]+")
_SPACES = re.compile(r"[\s,.;]+")
_IDENTIFIER_SELECTOR = {"pgp_fingerprint": "pgp", "email": "email", "btc_address": "address",
                        "xmr_address": "address"}
"""The identifiers an account published (reference data) that are selectors, and their
selector kind: what another agency knows a vendor by besides its handle."""


def taskforce_key(ws: Space) -> bytes:
    """The task force's HMAC key: 32 random bytes, created once and read thereafter: in
    ``taskforce.key`` of the workspace (mode 0600), or on the team server (one key for
    every agency that connects to it)."""
    if isinstance(ws.con, store.PgOps):
        return store.server_key(ws.con)
    if ws.path is None:
        raise BadInputError("no workspace to keep the task-force key in")
    path: Path = ws.path / KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes()
        if len(key) != 32:
            raise BadInputError(f"{path}: not a task-force key (32 bytes)") from None
        return key
    key = os.urandom(32)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


def write_key(ws: Space, by: str, out: Path) -> None:
    """Write the task force's key to a new file ``out`` (mode 0600) for a partner that
    submits hashed selectors: an admin only, audited."""
    actor = acting(ws.con, by)
    if actor.role != "admin":
        log(ws.con, by, "deconflict.key", "denied")
        raise AccessDenied(f"{by} is {actor.role}: only an admin hands out the key")
    key = taskforce_key(ws)
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise BadInputError(f"{out}: cannot create the key file ({exc.strerror}); give a "
                            "new file name") from exc
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    log(ws.con, by, "deconflict.key", file=out.name)


def normalise(kind: str, value: str) -> str:
    """A selector in the one form every agency writes it in.

    >>> normalise("phone", "0049 (30) 1234-567")
    '+49301234567'
    >>> normalise("pgp", "ab12 CD34 ef56 7890 ab12  cd34 ef56 7890 ab12 cd34")
    'AB12CD34EF567890AB12CD34EF567890AB12CD34'
    >>> normalise("postal", "  Hauptstraße 5,  10115 Berlin ")
    'hauptstrasse 5 10115 berlin'
    >>> normalise("phone", "\\u202a(+49) 30 (0)1234567\\u202c")
    '+49301234567'
    >>> normalise("phone", "tel:+49 301234567")
    '+49301234567'
    >>> normalise("address", "bitcoin:1NGb6Cesn2tJ3wCP4um2UjBKSHiouc7XXR?amount=0.1")
    '1NGb6Cesn2tJ3wCP4um2UjBKSHiouc7XXR'
    >>> normalise("handle", "Hansa: BruceLean")
    'hansa:brucelean'
    >>> normalise("email", "mailto:Bruce@Example.com")
    'bruce@example.com'

    Invisible format characters (bidi marks, zero-width spaces, soft hyphens: what a copy
    and paste brings along) are dropped, and digits of any script read as 0-9; a phone
    number's ``tel:``, brackets around its country code and a ``(0)`` trunk digit after
    it are passed over (found by testing: each kept two forms of one number apart), as
    are an e-mail's ``mailto:`` and spaces around a handle's or listing's market
    separator (found by an audit: ``Hansa: BruceLean`` met neither form). An
    address is a Bitcoin or Monero address (checksum checked, as a record's link is),
    also as a ``bitcoin:``/``monero:`` payment URI; anything else is refused, since its
    hash could never meet the address meant (found by an audit).
    """
    if kind not in SELECTOR_KINDS:
        raise BadInputError(f"selector kind {kind!r}: one of {', '.join(SELECTOR_KINDS)}")
    text = unicodedata.normalize("NFKC", value)
    text = "".join(c for c in text if unicodedata.category(c) != "Cf").strip()
    if kind == "pgp":
        out = _NON_ALNUM.sub("", text).upper().removeprefix("0X")
    elif kind == "tracking":
        out = _NON_ALNUM.sub("", text).upper()
    elif kind == "phone":
        out = _phone(text)
    elif kind == "address":
        out = _address(text)
    elif kind == "postal":
        out = " ".join(_SPACES.split(text.casefold())).strip()
    elif kind == "wallet":  # a seizure names a wallet cluster:ID, a link the bare ID
        out = text.casefold().removeprefix("cluster:").strip()
    elif kind == "email":  # a mailto: link goes the way a phone number's tel: does
        out = _MAILTO.sub("", text.casefold()).strip()
    elif kind in ("handle", "listing"):  # `Hansa: BruceLean` is hansa:brucelean
        market, sep, rest = text.casefold().partition(":")
        out = f"{market.strip()}{sep}{rest.strip()}"
    else:  # persona
        out = text.casefold()
    if not out:
        raise BadInputError(f"empty {kind} selector")
    return out


_MAILTO = re.compile(r"^mailto\s{0,8}:")


_PAYMENT_URI = re.compile(r"^(?:bitcoin|monero):", re.IGNORECASE)


def _address(text: str) -> str:
    """A Bitcoin address in its normal form (bech32 lower-case) or a Monero address, from
    the address or a BIP21/Monero payment URI (``bitcoin:ADDRESS?amount=...``)."""
    bare = _PAYMENT_URI.sub("", text.strip()).split("?", 1)[0].strip()
    clean = clean_btc_address(bare) or clean_xmr_address(bare)
    if clean is None:
        raise BadInputError(f"address {text[:80]!r}: not a Bitcoin address (1..., 3... or "
                            "bc1..., its checksum checked) nor a Monero one; a wallet "
                            "(address cluster) is a wallet selector")
    return clean


def _phone(text: str) -> str:
    """A phone number as ``+`` and its digits (international) or its digits."""
    t = "".join(c if (d := unicodedata.decimal(c, None)) is None else str(d)
                for c in text.casefold().removeprefix("tel:").lstrip(" ("))
    international = t.startswith(("+", "00"))
    if international:
        t = t.replace("(0)", "")
    digits = "".join(c for c in t if "0" <= c <= "9")
    if not international:
        return digits
    return "+" + (digits[2:] if digits.startswith("00") else digits)


def hash_selector(key: bytes, kind: str, value: str) -> str:
    """HMAC-SHA256 of the normalised selector, as hex."""
    return _hmac(key, kind, normalise(kind, value))


def _hmac(key: bytes, kind: str, normal: str) -> str:
    """HMAC-SHA256 of ``kind NUL normal`` (a selector already normalised), as hex."""
    return hmac.new(key, f"{kind}\x00{normal}".encode(), hashlib.sha256).hexdigest()


def forms(kind: str, value: str) -> list[str]:
    """The normalised forms a selector is registered in: one, but a market handle
    written ``market:handle`` (an account id) also as the bare handle.

    >>> forms("handle", "Hansa:WowDeal")
    ['hansa:wowdeal', 'wowdeal']
    >>> forms("handle", "wowdeal")
    ['wowdeal']

    Why: a partner writes the handle it saw, without the market, while a record's account
    link names ``market:handle``; each form alone kept the two apart (found by an audit).
    A bare handle matches the same handle on any market, so it is the weaker match.
    """
    normal = normalise(kind, value)
    market, sep, bare = normal.partition(":")
    return [normal, bare] if kind == "handle" and sep and market and bare else [normal]


def hash_selectors(key: bytes, kind: str, value: str) -> list[str]:
    """HMAC-SHA256 hex of every form of the selector (:func:`forms`)."""
    return [_hmac(key, kind, f) for f in forms(kind, value)]


def hash_forms(key: bytes, kind: str, value: str) -> list[tuple[str, str]]:
    """(HMAC-SHA256 hex, form) of every form of the selector: ``exact`` for the one
    written, ``bare`` for the bare handle of a ``market:handle`` (:func:`forms`)."""
    return [(_hmac(key, kind, f), "exact" if i == 0 else "bare")
            for i, f in enumerate(forms(kind, value))]


def read_selectors(path: Path) -> list[tuple[str, str]]:
    """The ``kind,value`` lines of a CSV file (a header line ``kind,value`` is skipped;
    kinds in lower case). The whole file is read and checked first:
    :class:`BadInputError` names the file and the line or byte that is wrong."""
    return [(kind, value) for _, kind, value in _numbered_selectors(path)]


def _numbered_selectors(path: Path) -> list[tuple[int, str, str]]:
    """(line, kind, value) of :func:`read_selectors`: the line of the file each came from,
    for an error about its value."""
    return [(line, kind, value) for line, kind, value, _ in _numbered_rows(path)]


def selector_lines(path: Path) -> list[str]:
    """Where each selector of :func:`read_selectors` or :func:`read_hashed` of ``path``
    comes from (``FILE: line N``, in their order), for :func:`submit`'s errors."""
    return [f"{path}: line {line}" for line, *_ in _numbered_rows(path)]


def _numbered_rows(path: Path) -> list[tuple[int, str, str, str]]:
    """(line, kind, value, third column or '') of the lines of a selector file."""
    try:
        text = path.read_bytes().decode("utf-8")  # whole: the byte named is the file's
        reader = csv.reader(io.StringIO(text, newline=""))
        rows = [(reader.line_num, r) for r in reader if r and any(c.strip() for c in r)]
    except UnicodeDecodeError as exc:
        raise BadInputError(f"{path}: cannot read selectors: not UTF-8 text (byte "
                            f"{exc.start}); give a CSV file of kind,value lines") from exc
    except csv.Error as exc:
        raise BadInputError(f"{path}: cannot read selectors: not CSV ({exc})") from exc
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read selectors: {exc.strerror or exc}") from exc
    out = []
    for i, (line, r) in enumerate(rows, start=1):
        if i == 1 and [c.strip().lower() for c in r[:2]] == ["kind", "value"]:
            continue
        if len(r) < 2:
            raise BadInputError(f"{path}: line {line}: give kind,value")
        out.append((line, r[0].strip().lower(), r[1], r[2] if len(r) > 2 else ""))
    return out


def read_hashed(path: Path) -> list[tuple[str, str, str]]:
    """The ``kind,value,form`` lines of a file of hashed selectors (what ``darkmap
    deconflict hash`` writes; a header line is skipped). ``form`` is ``exact`` or
    ``bare`` (a bare handle, only of kind ``handle``); a line without it, as files
    written before the form was given have, is ``exact``. Checked whole first:
    :class:`BadInputError` names the file and the line."""
    out = []
    for line, kind, value, form in _numbered_rows(path):
        form = form.strip().lower() or "exact"
        if form not in SELECTOR_FORMS or (form == "bare" and kind != "handle"):
            raise BadInputError(f"{path}: line {line}: form {form[:20]!r}: exact, or bare for "
                                "a handle")
        out.append((kind, value, form))
    return out


def read_key(path: Path) -> bytes:
    """A task-force key file (what :func:`write_key` wrote: 32 bytes)."""
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read the key file: {exc.strerror or exc}") from exc
    if len(key) != 32:
        raise BadInputError(f"{path}: not a task-force key (32 bytes)")
    return key


def hash_file(key_file: Path, path: Path) -> list[tuple[str, str, str]]:
    """(kind, HMAC hex, form) of every selector in the CSV ``path`` under the key in
    ``key_file`` (``darkmap deconflict hash``): all read, checked and hashed before any
    is returned, so a bad line, kind or byte leaves nothing half-written. A
    ``market:handle`` gives two lines, the second its bare handle (form ``bare``), so
    the partner's notice says when only the bare handle matched."""
    key = read_key(key_file)
    out = []
    for line, kind, value in _numbered_selectors(path):
        try:
            out += [(kind, h, f) for h, f in hash_forms(key, kind, value)]
        except BadInputError as exc:
            raise BadInputError(f"{path}: line {line}: {exc}") from exc
    return out


def _notice_id(kind: str, subject: str, to: str, other: str) -> str:
    """The same notice is sent once."""
    return hashlib.sha256(f"{kind}|{subject}|{to}|{other}".encode()).hexdigest()[:16]


def _selector_table(hashes: Sequence[tuple[str, str, str]], compartment: str, agency: str,
                    record_id: str | None, by: str, at: datetime) -> pa.Table:
    """The rows of ``ops_selectors`` for (kind, hmac, form) triples: one per (kind,
    hmac), ``exact`` where both forms of it were given (``wowdeal`` written, and the bare
    handle of ``hansa:wowdeal``)."""
    best: dict[tuple[str, str], str] = {}
    for kind, h, form in hashes:
        if best.get((kind, h)) != "exact":
            best[kind, h] = form
    n = len(best)
    return pa.table({
        "selector_hmac": [h for _, h in best], "kind": [k for k, _ in best],
        "compartment_id": [compartment] * n, "agency_id": [agency] * n,
        "record_id": pa.array([record_id] * n, pa.string()), "submitted_by": [by] * n,
        "submitted_at": pa.array([at] * n, pa.timestamp("us")),
        "form": list(best.values())})


def _register(con: Con, actor: UserRow, compartment: str,
              hashes: Sequence[tuple[str, str, str]], record_id: str | None) -> int:
    """Store the selectors (kind, hmac, form), notify both sides of every match; the
    notices sent. A match is exact when a row on each side of one agency pair was
    registered as written, else its subject says it was a bare handle (:data:`BARE_MATCH`,
    as the team server writes it). A match in another compartment of the same agency
    that the actor may not read notifies both compartments (:func:`_within_agency`)."""
    table = _selector_table(hashes, compartment, actor.agency_id, record_id, actor.user_id,
                            utcnow())
    store.insert_selectors(con, table)  # first: only what is stored matches
    found = store.selector_matches(con, table, actor.user_id)
    matches = [m for m in found if m.other_agency != m.agency_id]
    inside = _within_agency(con, actor, [m for m in found if m.other_agency == m.agency_id])
    now = utcnow()
    contacts = {a.agency_id: a.contact for a in store.agencies(con)}
    notices: dict[str, NoticeRow] = {}
    exact: dict[tuple[str, str, str, str], bool] = {}
    for m in matches:
        pair = (m.selector_hmac, m.kind, m.agency_id, m.other_agency)
        exact[pair] = exact.get(pair, False) or m.form == "exact"
    subjects = set()
    for (hmac_hex, kind, mine, theirs), strong in sorted(exact.items()):
        subject = selector_subject(kind, hmac_hex, strong)
        subjects.add(subject)
        for to, other in ((mine, theirs), (theirs, mine)):
            nid = _notice_id("selector", subject, to, other)
            notices[nid] = NoticeRow(nid, "selector", to, other, contacts.get(other, ""),
                                     subject, now, None, None)
    store.insert_notices(con, list(notices.values()))
    if exact:
        log(con, actor.user_id, "deconflict.match",
            agencies=sorted({a for p in exact for a in p[2:]}), subjects=sorted(subjects))
    if inside:
        if not store.is_server(con):   # the server has written them, to both sides
            store.insert_notices(con, [n for n in inside if n.notice_id])
        log(con, actor.user_id, "deconflict.match", agencies=[actor.agency_id],
            within_agency=True, subjects=sorted({n.subject for n in inside}),
            contacts=sorted({n.other_contact for n in inside
                             if n.to_compartment == compartment}))
    return len(notices) + len(inside)


def _within_agency(con: Con, actor: UserRow, found: Sequence[SelectorMatch]
                   ) -> list[NoticeRow]:
    """The notices of selector matches in other compartments of the actor's agency that
    the actor may not read (one who may read the other compartment sees its selectors
    already): to the actor's compartment, one per selector and contact (the user who
    created the other compartment); to each other compartment, one per selector and
    compartment that matched it, naming the user who created that one. Neither names the
    other compartment. From the team server, which answers only the compartments the
    actor may not read, by contact, and writes both sides itself, the other side's
    notices are counted one per contact (their ``notice_id`` empty: not written here)."""
    now = utcnow()
    agency = actor.agency_id
    mine: dict[tuple[str, str, str, str], bool] = {}
    theirs: dict[tuple[str, str, str, str], bool] = {}
    creator = _Creators(con)
    unread = {c for c in {m.other_compartment for m in found} - {None}
              if store.access_level(con, actor.user_id, agency, str(c)) is None}
    for m in found:
        if m.other_compartment is None:   # the team server: contact given, no compartment
            contact = m.other_contact
            theirs[m.selector_hmac, m.kind, m.compartment_id, contact] = m.form == "exact"
        elif m.other_compartment in unread:
            contact = creator(m.other_compartment)
            pair = (m.selector_hmac, m.kind, m.compartment_id, m.other_compartment)
            theirs[pair] = theirs.get(pair, False) or m.form == "exact"
        else:
            continue
        key = (m.selector_hmac, m.kind, m.compartment_id, contact)
        mine[key] = mine.get(key, False) or m.form == "exact"
    out: dict[tuple[str, str], NoticeRow] = {}
    for (h, kind, own, contact), strong in mine.items():
        subject = selector_subject(kind, h, strong) + WITHIN_TAIL
        out[own, subject + "|" + contact] = _inside_notice(
            "selector", subject, agency, own, contact, now)
    for (h, kind, own, other), strong in theirs.items():
        subject = selector_subject(kind, h, strong) + WITHIN_TAIL
        if store.is_server(con):   # ``other`` is the contact: the server wrote the notice
            out[f"?{other}", subject] = NoticeRow("", "selector", agency, agency, "",
                                                  subject, now, None, None, None)
        else:
            out[other, subject] = _inside_notice(
                "selector", subject, agency, other, creator(own), now)
    return list(out.values())


class _Creators:
    """The creator of each compartment asked (:func:`darkmap.store.operations.
    compartment_creator`), read once per compartment: a large submission matching many
    selectors of a few compartments asks the same ones again and again."""

    def __init__(self, con: Con) -> None:
        self.con = con
        self.known: dict[str, str] = {}

    def __call__(self, compartment_id: str) -> str:
        if compartment_id not in self.known:
            self.known[compartment_id] = store.compartment_creator(self.con, compartment_id)
        return self.known[compartment_id]


def _inside_notice(kind: str, subject: str, agency: str, to_compartment: str, contact: str,
                   now: datetime, key: str = "") -> NoticeRow:
    """A notice to one compartment of ``agency`` about another of its compartments,
    naming ``contact`` (the user who created that one), under the id the team server
    gives it (``key``: what makes a notice of one subject one of many, as an event's)."""
    nid = _notice_id(kind, subject + key, agency, f"{agency}|{to_compartment}|{contact}")
    return NoticeRow(nid, kind, agency, agency, contact, subject, now, None, None,
                     to_compartment)


def link_selectors(con: Con, links: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """The raw selectors (kind, value) that a record's links name, as an analyst means
    them: a listing is its listing id and its vendor's account; an account is its handle
    (``market:handle``), its persona and the PGP fingerprints, e-mails and addresses it
    published; a persona is itself and its accounts; a wallet and an address themselves.

    Why: another agency knows the vendor by any of these (a buy names only the listing,
    yet `ops buy add` says which account and persona it leads to), and a selector a
    record does not register can never raise a notice. Accounts, personas and published
    identifiers come from the reference data (the workspace); without it, only the links
    themselves."""
    out: set[tuple[str, str]] = set()
    accounts: set[str] = set()
    personas: set[str] = set()
    for kind, ref in links:
        if kind == "listing":
            out.add(("listing", ref))
            _, account, _ = store.listing_vendor(con, ref)
            accounts |= {account} if account else set()
        elif kind == "account":
            accounts.add(ref)
        elif kind == "persona":
            personas.add(ref)
        elif kind in ("wallet", "address"):
            out.add((kind, ref))
    accounts |= set(store.persona_accounts(con, sorted(personas)))
    personas |= set(store.account_personas(con, sorted(accounts)))
    out |= {("persona", p) for p in personas} | {("handle", a) for a in accounts}
    out |= {(_IDENTIFIER_SELECTOR[k], v) for k, v in store.account_identifiers(
        con, sorted(accounts), sorted(_IDENTIFIER_SELECTOR))}
    return out


def _detail_selectors(row: RecordRow) -> set[tuple[str, str]]:
    """The raw selectors in a record's own fields: a parcel's tracking number, sender
    and return address; the address (or ``cluster:ID`` wallet) of each crypto item of a
    seizure, when it is a Bitcoin or Monero address (another asset's address is kept in
    the record but is no selector: an address selector is checked as one)."""
    out: set[tuple[str, str]] = set()
    if row.kind == "parcel":
        out |= {("tracking", row.data.get("tracking") or "")}
        out |= {("postal", row.data.get(f) or "") for f in ("sender", "return_address")}
    crypto = row.data.get("crypto") or () if row.kind == "seizure" else ()
    for item in crypto:
        where = str(item.get("address") or "")
        if where.lower().startswith("cluster:"):
            out.add(("wallet", where))
        elif clean := clean_btc_address(where) or clean_xmr_address(where):
            out.add(("address", clean))
    return {(k, v) for k, v in out if v.strip()}


def record_selectors(con: Con, key: bytes, actor: UserRow,
                     row: RecordRow, links: Iterable[tuple[str, str]]) -> int:
    """Register the selectors of a new record (what its links name,
    :func:`link_selectors`, and its own fields, :func:`_detail_selectors`); the notices
    sent. A value from the reference data that is no selector of its kind is passed over:
    the record is kept whatever the evidence holds."""
    hashes = set()
    for kind, value in link_selectors(con, links) | _detail_selectors(row):
        try:
            hashes |= {(kind, h, f) for h, f in hash_forms(key, kind, value)}
        except BadInputError:
            continue
    return (_register(con, actor, row.compartment_id, sorted(hashes), row.record_id)
            if hashes else 0)


@dataclass(frozen=True)
class Submission:
    """The outcome of a submission: selectors taken and notices sent."""

    selectors: int
    notices: int


def submit(ws: Space, by: str, compartment: str, selectors: Iterable[Sequence[str]],
           hashed: bool = False, where: Sequence[str] = ()) -> Submission:
    """Submit selectors (kind, value) for a compartment the user may write; with
    ``hashed`` the values are already ``hash_selector`` hex digests (a partner that may
    not share raw selectors), each (kind, hex) or (kind, hex, form) as :func:`hash_file`
    gives them (a hash without a form is ``exact``). Matches notify both agencies (or,
    within the agency, both compartments, when ``by`` may not read the other). A raw
    selector is registered in each of its forms (:func:`forms`); the count taken is of
    the selectors given. An error names the selector by ``where`` (its file and line,
    :func:`selector_lines`), else by its number (found by an audit: "selector 3" of a
    file whose header and blank lines made it line 7)."""
    key = b"" if hashed else taskforce_key(ws)
    pairs: set[tuple[str, str, str]] = set()
    given: set[tuple[str, str]] = set()
    for i, (kind, value, *rest) in enumerate(selectors, start=1):
        at = where[i - 1] if i <= len(where) else f"selector {i}"
        if kind not in SELECTOR_KINDS:
            raise BadInputError(f"{at}: selector kind {kind[:40]!r}: one of "
                                f"{', '.join(SELECTOR_KINDS)}")
        if hashed:  # a hash cannot be checked: `deconflict hash` checked the value
            value = value.strip().lower()
            if not _HEX.match(value):
                raise BadInputError(f"{at}: {kind} selector {value[:80]!r}: not an "
                                    "HMAC-SHA256 hex")
            form = (rest[0].strip().lower() if rest else "") or "exact"
            if form not in SELECTOR_FORMS or (form == "bare" and kind != "handle"):
                raise BadInputError(f"{at}: form {form[:20]!r}: exact, or bare for a handle")
            pairs.add((kind, value, form))
            given.add((kind, value))
        else:
            try:
                pairs |= {(kind, h, f) for h, f in hash_forms(key, kind, value)}
            except BadInputError as exc:  # nothing is stored: all are checked first
                raise BadInputError(f"{at}: {exc}") from exc
            given.add((kind, normalise(kind, value)))
    con = ws.con
    actor = acting(con, by)
    with unit(con):
        check_access(con, actor, compartment, "write")
        sent = _register(con, actor, compartment, sorted(pairs), None) if pairs else 0
        log(con, by, "deconflict.submit", compartment=compartment, selectors=len(given),
            registered=len(pairs), hashed=hashed, notices=sent)
    return Submission(len(given), sent)


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (mean Earth radius 6,371,008.8 m).

    >>> round(haversine_m(52.52, 13.405, 52.52, 13.405))
    0
    """
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True)
class Conflict:
    """A clash with another agency's event: the agency and the contact to call. Nothing
    of where or when the other event is (its distance from a probe, asked from three
    places, would locate it)."""

    other_agency: str
    other_contact: str
    placed: bool = True
    """``False`` when the two places could not be compared (one event given by coordinates
    only, the other by postal area only): a conflict to check with the other agency, of the
    same country."""
    within_agency: bool = False
    """``True`` for a clash with an event in another compartment of the planner's own
    agency that the planner may not read: ``other_agency`` is the planner's own, and
    ``other_contact`` the user who created that compartment."""


def _clash(a: EventRow, b: EventRow, within_m: float) -> bool | None:
    """Whether two events clash in place: within ``within_m`` metres or ``b``'s own
    radius, whichever is larger (an event planned before radii were kept counts with the
    default), or (without coordinates) in the same postal area; ``None`` when their places
    cannot be compared (coordinates only against a postal area only: no postal area is
    placed without a gazetteer), a conflict to check. Only the later planner's radius
    counted, so another agency's declared 5 km safety radius was ignored, and such a pair
    read as no clash (found by an audit)."""
    if a.lat is not None and a.lon is not None and b.lat is not None and b.lon is not None:
        theirs = DEFAULT_DISTANCE_M if b.within_m is None else b.within_m
        return haversine_m(a.lat, a.lon, b.lat, b.lon) <= max(within_m, theirs)
    if a.postal_area and b.postal_area:
        return normalise("postal", a.postal_area) == normalise("postal", b.postal_area)
    return None


def add_event(ws: Space, by: str, kind: str, compartment: str, starts_at: datetime,
              ends_at: datetime, lat: float | None = None, lon: float | None = None,
              postal_area: str | None = None, within_m: float = DEFAULT_DISTANCE_M
              ) -> tuple[str, list[Conflict]]:
    """Plan an action; every event of another agency within ``within_m`` metres (at most
    :data:`MAX_DISTANCE_M`) or in the same postal area with an overlapping window is a
    conflict, notified to both now. A conflict names the other agency and its contact
    only (no distance, place or time). The other agency gets a notice for each event
    that hits theirs (:func:`notices` counts them). One by coordinates only against one
    by postal area only is a conflict to check between agencies of one country only; a
    window longer than :data:`MAX_EVENT_DAYS` is refused. An event of another compartment
    of the agency that ``by`` may not read is a conflict too (``within_agency``: the
    contact is the user who created that compartment), notified to both compartments."""
    if not (math.isfinite(within_m) and 0 <= within_m <= MAX_DISTANCE_M):
        raise BadInputError(f"--within-m {within_m:g}: between 0 and {MAX_DISTANCE_M:,.0f} "
                            "metres (a wider radius would let probes locate another "
                            "agency's action)")
    if kind not in EVENT_KINDS:
        raise BadInputError(f"event kind {kind!r}: one of {', '.join(EVENT_KINDS)}")
    if ends_at <= starts_at:  # a window of no length overlaps nothing (found by an audit)
        raise BadInputError(f"the event ends at or before it starts ({starts_at:%Y-%m-%d %H:%M}"
                            f" to {ends_at:%Y-%m-%d %H:%M}): give an end after the start (a "
                            "date alone as the end means the end of that day)")
    if ends_at - starts_at > timedelta(days=MAX_EVENT_DAYS):
        raise BadInputError(f"the event's window ({starts_at:%Y-%m-%d %H:%M} to "
                            f"{ends_at:%Y-%m-%d %H:%M}) is longer than {MAX_EVENT_DAYS} days:"
                            " plan each action in its own window (a longer one would be "
                            "compared with every action of those months)")
    if (lat is None) != (lon is None) or (lat is None and not postal_area):
        raise BadInputError("give coordinates (lat and lon) or a postal area")
    if lat is not None and lon is not None and not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise BadInputError(f"coordinates {lat}, {lon} out of range")
    if postal_area:
        try:
            normalise("postal", postal_area)
        except BadInputError:  # stored, it would stop the comparison of later events
            raise BadInputError(f"postal area {postal_area[:80]!r}: give letters or "
                                "digits") from None
    con = ws.con
    actor = acting(con, by)
    event = EventRow(f"event-{uuid.uuid4().hex[:12]}", kind, compartment, actor.agency_id,
                     lat, lon, postal_area, starts_at, ends_at, within_m)
    found: list[Conflict] = []
    with unit(con):
        check_access(con, actor, compartment, "write")
        now = utcnow()
        store.insert_event(con, event, by, now)
        clashes = _clashes(con, actor, event, within_m)
        for c in clashes:
            if c.agency_id == actor.agency_id:
                _inside_event_notices(con, event, c, now)
                hit = Conflict(c.agency_id, c.contact, c.placed, within_agency=True)
                found += [] if hit in found else [hit]
                continue
            other_id, other_agency, placed = c.event_id or "", c.agency_id, c.placed
            # to the planner: one notice per own event and other agency; to the agency
            # whose event was hit: one per event that hit it, so repeated probes show
            # (on the team server, the server has written both already)
            for to, theirs, subject, key in (
                    (actor.agency_id, other_agency, _own_subject(event.event_id, placed), ""),
                    (other_agency, actor.agency_id,
                     _hit_subject(other_id, actor.agency_id, placed), event.event_id)):
                contact = store.agency(con, theirs)
                store.insert_notice(con, NoticeRow(
                    _notice_id("event", subject + key, to, theirs), "event", to, theirs,
                    contact.contact if contact else "", subject, now, None, None))
            own = store.agency(con, other_agency)
            found.append(Conflict(other_agency, own.contact if own else "", placed))
        inside = [f.other_contact for f in found if f.within_agency]
        what: dict[str, Any] = {"within_agency": inside} if inside else {}
        log(con, by, "event.add", record=event.event_id, compartment=compartment,
            conflicts=[f.other_agency for f in found if not f.within_agency], **what)
    return event.event_id, found


@dataclass(frozen=True)
class _Clash:
    """An event the stored one clashes with: its id and compartment (``None`` from the
    team server within the agency: the server names neither), its agency, whether the
    places were compared, and whom to call (within the agency, the user who created its
    compartment)."""

    event_id: str | None
    agency_id: str
    placed: bool
    compartment_id: str | None
    contact: str


def _clashes(con: Con, actor: UserRow, event: EventRow, within_m: float) -> list[_Clash]:
    """The events of other agencies, and of the agency's other compartments that the
    planner may not read, that the stored ``event`` clashes with, ``placed`` false for
    those whose place could not be compared with its own (:func:`_clash`). On the team
    server the server compares them (no member reads another agency's events, nor a
    compartment of its own agency without a grant); in a workspace, here."""
    if isinstance(con, store.PgOps):
        return [_Clash(e, a, p, None, c)
                for e, a, p, c in store.event_clashes(con, event.event_id, within_m)]
    out = []
    country = _country(con, event.agency_id)
    for o in store.events_in_window(con, event.starts_at, event.ends_at, event.agency_id,
                                    event.compartment_id):
        inside = o.agency_id == event.agency_id
        if inside and store.access_level(con, actor.user_id, actor.agency_id,
                                         o.compartment_id) is not None:
            continue   # the planner reads that compartment's events already
        clash = _clash(event, o, within_m)
        # places not compared: a conflict to check between agencies of one country only
        # (review, M4: across borders one postal area listed every agency with an action
        # by coordinates in the window, anywhere)
        if clash is True or (clash is None and country != ""
                             and _country(con, o.agency_id) == country):
            contact = store.compartment_creator(con, o.compartment_id) if inside else ""
            out.append(_Clash(o.event_id, o.agency_id, clash is True, o.compartment_id,
                              contact))
    return out


def _inside_event_notices(con: Con, event: EventRow, c: _Clash, now: datetime) -> None:
    """The notices of a clash with an event in another compartment of the planner's
    agency: to the planner's compartment, one per own event and contact; to the other
    compartment, one per event that hit its event (counted, as between agencies,
    :func:`_count_hits`), each naming the user who created the other compartment. On the
    team server, the server has written both."""
    if store.is_server(con) or c.compartment_id is None or c.event_id is None:
        return
    agency = event.agency_id
    store.insert_notices(con, [
        _inside_notice("event", _own_subject(event.event_id, c.placed) + WITHIN_TAIL,
                       agency, event.compartment_id, c.contact, now),
        _inside_notice("event", _hit_subject(c.event_id, WITHIN_AGENCY, c.placed), agency,
                       c.compartment_id,
                       store.compartment_creator(con, event.compartment_id), now,
                       key=event.event_id)])


def _country(con: Con, agency_id: str) -> str:
    """The country of an agency (upper case), ``""`` if unknown."""
    row = store.agency(con, agency_id)
    return row.country.strip().upper() if row is not None and row.country else ""


def _own_subject(event_id: str, placed: bool) -> str:
    """The subject of the notice to the planner of ``event_id``."""
    if placed:
        return f"event {event_id} overlaps in time and place"
    return f"event {event_id} overlaps in time ({UNPLACED})"


def _hit_subject(hit_event_id: str, by_agency: str, placed: bool = True) -> str:
    """The subject of the notice to the agency whose event ``hit_event_id`` another
    agency's event overlaps: the same for every event of that agency, so they are
    counted."""
    if placed:
        return f"event {hit_event_id} overlaps in time and place with an event of {by_agency}"
    return f"event {hit_event_id} overlaps in time with an event of {by_agency} ({UNPLACED})"


def _count_hits(rows: list[NoticeRow]) -> list[NoticeRow]:
    """Event notices of one agency's hits on one event, each saying how many there are:
    many events of one agency hitting one event may be probes fishing for its place."""
    hits = Counter((n.subject, n.other_agency) for n in rows
                   if n.kind == "event" and " with an event of " in n.subject)
    return [n._replace(subject=f"{n.subject} ({hits[n.subject, n.other_agency]} of "
                               f"{n.other_agency}'s events have hit it)")
            if (n.subject, n.other_agency) in hits else n for n in rows]


def notices(ws: Space, by: str) -> list[NoticeRow]:
    """The notices to the user's agency (audited): those to one of its compartments (a
    match within the agency) only when the user may read that compartment. A notice of
    an event of the agency that another agency's event hit says how many events of that
    agency have hit it."""
    actor = acting(ws.con, by)
    out = _count_hits(store.notices_for(ws.con, actor.agency_id, actor.user_id))
    log(ws.con, by, "notice.list", notices=[n.notice_id for n in out])
    return out


def acknowledge(ws: Space, by: str, notice_id: str) -> None:
    """Acknowledge a notice to the user's agency (an officer or admin: a reader reads);
    one to a compartment of the agency only by a user who may read that compartment."""
    actor = acting(ws.con, by)
    if actor.role == "reader":   # it closes the notice for the whole agency (found by testing)
        log(ws.con, by, "notice.ack", "denied", notice=notice_id)
        raise AccessDenied(f"{by} is a reader and may not acknowledge notices")
    with unit(ws.con):
        still_acting(ws.con, actor)
        n = store.ack_notice(ws.con, notice_id, actor.agency_id, by, utcnow())
        log(ws.con, by, "notice.ack", "ok" if n else "not_found", notice=notice_id)
    if not n:
        raise NotFoundError(f"no open notice {notice_id!r} to {actor.agency_id}")
