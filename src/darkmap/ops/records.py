"""Operational records: cases, controlled buys (with the lab result), parcels, seizures
and arrests, each with its author, agency, UTC time, compartment and provenance, and
pointers into the analytical store (personas, accounts, listings, wallets, addresses).

Every function takes the acting user's id: a write needs a write grant on the target
compartment, a read returns only what the user's grants reach, and both are audited.
A buy whose lab result shows fentanyl marks its listing and persona
(:func:`fentanyl_marks`).

Records are append-only: a wrong one is withdrawn (:func:`withdraw_record`), never changed
or deleted. A withdrawn record is left out of the totals, packages, fentanyl marks and
exports by case, and shown marked by :func:`show_record` (and :func:`read_records` with
``withdrawn=True``).
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from darkmap.assess.lexicon import normalise
from darkmap.assess.taxonomy import SUBSTANCE_CLASS
from darkmap.errors import BadInputError, NotFoundError
from darkmap.model.countries import check_country
from darkmap.model.values import clean_btc_address, clean_xmr_address
from darkmap.ops.access import AccessDenied, acting, add_compartment, check_access, unit
from darkmap.ops.audit import log, record_digest
from darkmap.ops.deconflict import record_selectors, taskforce_key
from darkmap.ops.vocabulary import LINK_KINDS, RECORD_KINDS
from darkmap.store import operations as store
from darkmap.store.operations import Con, RecordRow, Space, WithdrawalRow
from darkmap.store.workspace import utcnow

__all__ = ["LINK_KINDS", "MAX_AMOUNT", "RECORD_KINDS", "Arrest", "Buy", "Case", "CryptoItem",
           "Detail", "LabResult", "Parcel", "Record", "Seizure", "add_record", "buy_reaches",
           "case_subjects", "cash_lots", "fentanyl_marks", "fentanyl_marks_of", "is_fentanyl",
           "link_warnings", "operation_key", "operation_name", "read_records",
           "seized_address", "show_record", "substance_name", "withdraw_record"]



def is_fentanyl(substance: str) -> bool:
    """True for fentanyl and its analogues (carfentanil, acetylfentanyl...), by name."""
    return "fentanyl" in substance.lower() or "fentanil" in substance.lower()


def substance_name(text: str, what: str = "drug") -> str:
    """A seized substance's name as the totals group it: its words lower-case with one
    space between, and the assessment's own name (:data:`darkmap.assess.taxonomy.
    SUBSTANCE_CLASS`) where the name is one written otherwise ("Cannabis Resin" ->
    ``cannabis_resin``, "MDMA" -> ``mdma``). Found by an audit: ``--drug "fentanyl :5"``
    made a substance ``"fentanyl "``, totalled apart from ``fentanyl``.

    Synonyms are not mapped to a substance (the lexicon would read "M30" as oxycodone,
    and M30 pills are often fentanyl): the record keeps the substance the inventory
    names. ``what`` names the field in the error for an empty name (a seizure's drug,
    a lab result)."""
    words = " ".join(text.split()).lower()
    if not words:
        raise BadInputError("drug: no substance named (give SUBSTANCE:GRAMS)" if what == "drug"
                            else f"{what}: no substance named")
    canonical = normalise(words).replace(" ", "_")
    return canonical if canonical in SUBSTANCE_CLASS else words


def operation_name(text: str) -> str:
    """An operation's name as stored and looked up: its words with one space between.
    Found by an audit: ``"SpecTor "`` was an operation of its own."""
    name = " ".join(text.split())
    if not name:
        raise BadInputError("operation: the name is empty (leave out --operation for a "
                            "record of no operation)")
    return name


def operation_key(name: str) -> str:
    """What the spellings of one operation share: its name without case or spaces
    (``SpecTor``, ``spector``, ``Spec Tor``)."""
    return "".join(name.split()).casefold()


MAX_AMOUNT = 1e15
"""The largest amount, weight or count a record takes: past any real one (found by
testing: amounts of 1e308 each summed to infinity in an operation's totals)."""


def _positive(value: float | None, what: str) -> None:
    """Refuse a negative, non-finite or larger than :data:`MAX_AMOUNT` number."""
    if value is not None and (not math.isfinite(value) or value < 0):
        raise BadInputError(f"{what}: {value} is not a non-negative number")
    if value is not None and value > MAX_AMOUNT:
        raise BadInputError(f"{what}: {value} is past {MAX_AMOUNT:.0e}, more than any "
                            "real seizure or buy")


@dataclass(frozen=True)
class Case:
    """A case: title and summary (its compartment holds the case team)."""

    title: str
    summary: str = ""


@dataclass(frozen=True)
class LabResult:
    """The laboratory's finding on what a controlled buy delivered."""

    substance: str
    purity_pct: float | None = None
    net_weight_g: float | None = None
    pill_count: int | None = None
    imprint: str | None = None

    def __post_init__(self) -> None:
        # named as a seizure's drugs are (found by an audit: " Fentanyl" was a lab
        # substance of its own beside the seizures' "fentanyl")
        object.__setattr__(self, "substance", substance_name(self.substance, "lab result"))
        _positive(self.net_weight_g, "net weight")
        _positive(self.pill_count, "pill count")
        if self.purity_pct is not None and not 0 <= self.purity_pct <= 100:
            raise BadInputError(f"purity {self.purity_pct}: a percentage from 0 to 100")


@dataclass(frozen=True)
class Buy:
    """A controlled (undercover) buy: listing, account used, price paid, txid, parcel."""

    listing: str
    account: str = ""
    price: float | None = None
    currency: str = "USD"
    txid: str = ""
    parcel: str = ""
    lab: LabResult | None = None

    def __post_init__(self) -> None:
        _positive(self.price, "price")


@dataclass(frozen=True)
class Parcel:
    """A parcel: carrier, tracking number, addresses as written, origin, weight, postage."""

    carrier: str = ""
    tracking: str = ""
    sender: str = ""
    return_address: str = ""
    origin_postal: str = ""
    destination: str = ""
    weight_g: float | None = None
    postage: str = ""
    photo_sha256: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _positive(self.weight_g, "weight")


_CLUSTER_REF = re.compile(r"cluster:[0-9]{1,30}")
"""A seized Bitcoin lot naming a wallet (a cluster of the chain data) for its address."""
_OTHER_ADDRESS = re.compile(r"[A-Za-z0-9]{8,128}")
"""The form of an address of an asset darkmap has no checksum check for (one word of
letters and digits, as base58, hex and bech32 addresses are)."""


def seized_address(asset: str, address: str) -> str:
    """The address a seized lot came from, checked as ``--link address:`` is: a Bitcoin
    lot's a Bitcoin address (checksum checked; bech32 lower-case) or ``cluster:ID``, a
    Monero lot's a Monero address; another asset's one word of letters and digits (no
    check is known for it). Found by an audit: ``BTC:1:notanaddress`` and an address
    with ``:extra`` after it were stored as written, and traced as nothing."""
    text = address.strip()
    if not text:
        return ""
    if asset == "BTC":
        clean = text if _CLUSTER_REF.fullmatch(text) else clean_btc_address(text)
        what = ("not a Bitcoin address (1..., 3... or bc1..., its checksum checked); a "
                "wallet (address cluster) is given as cluster:CLUSTER_ID")
    elif asset == "XMR":
        clean = clean_xmr_address(text)
        what = "not a Monero address (4... or 8..., its checksum checked)"
    else:
        clean = text if _OTHER_ADDRESS.fullmatch(text) else None
        what = ("not an address: one word of 8 to 128 letters and digits (Bitcoin and "
                "Monero addresses are checked in full)")
    if clean is None:
        raise BadInputError(f"crypto {asset} address {address!r}: {what}")
    return clean


@dataclass(frozen=True)
class CryptoItem:
    """Crypto seized: asset, amount, the address or cluster it came from, USD value.
    The asset is kept upper-case, the address checked (:func:`seized_address`)."""

    asset: str
    amount: float
    address: str = ""
    usd: float | None = None

    def __post_init__(self) -> None:
        asset = self.asset.strip().upper()
        if not asset:
            raise BadInputError(f"crypto {self.amount}: no asset (give ASSET:AMOUNT)")
        object.__setattr__(self, "asset", asset)
        object.__setattr__(self, "address", seized_address(asset, self.address))


@dataclass(frozen=True)
class Seizure:
    """What a seizure took: drugs (substance -> g), pills, firearms, cash (currency ->
    (amount, USD value)), crypto."""

    drugs_g: Mapping[str, float] = field(default_factory=dict)
    pills: int = 0
    firearms: int = 0
    cash: Mapping[str, tuple[float, float | None]] = field(default_factory=dict)
    crypto: tuple[CryptoItem, ...] = ()
    place: str = ""

    def __post_init__(self) -> None:
        drugs: dict[str, float] = {}
        for s, g in self.drugs_g.items():
            _positive(g, f"drug {s}")
            name = substance_name(s)  # "Fentanyl " and "fentanyl" are one substance
            drugs[name] = drugs.get(name, 0.0) + g
        object.__setattr__(self, "drugs_g", drugs)
        _positive(self.pills, "pills")
        _positive(self.firearms, "firearms")
        for cur, (amount, usd) in self.cash.items():
            _positive(amount, f"cash {cur}")
            _positive(usd, f"cash {cur} in USD")
        for c in self.crypto:
            _positive(c.amount, f"crypto {c.asset}")
            _positive(c.usd, f"crypto {c.asset} in USD")

    def seized_nothing(self) -> bool:
        """True when no item has an amount: no drug, pill, firearm, cash or crypto."""
        amounts = [*self.drugs_g.values(), self.pills, self.firearms,
                   *(amount for amount, _ in self.cash.values()),
                   *(c.amount for c in self.crypto)]
        return not any(amounts)

    def items(self) -> list[tuple[Any, ...]]:
        """Rows of ``ops_seizure_items``: item, substance, grams, count, currency, amount,
        usd, address."""
        out: list[tuple[Any, ...]] = [("drug", s, g, None, None, None, None, None)
                                      for s, g in sorted(self.drugs_g.items())]
        if self.pills:
            out.append(("pills", None, None, self.pills, None, None, None, None))
        if self.firearms:
            out.append(("firearms", None, None, self.firearms, None, None, None, None))
        for cur, (amount, usd) in sorted(self.cash.items()):
            usd = amount if usd is None and cur.upper() == "USD" else usd
            out.append(("cash", None, None, None, cur.upper(), amount, usd, None))
        out += [("crypto", None, None, None, c.asset.upper(), c.amount, c.usd, c.address or None)
                for c in self.crypto]
        return out


CashLot = tuple[str, float, float | None]
"""One lot of cash as seized: currency, amount, its USD value (None: not known)."""


def cash_lots(lots: Sequence[CashLot]) -> dict[str, tuple[float, float | None]]:
    """:attr:`Seizure.cash` from lots as seized, several of a currency summed (amounts
    and USD values). Found by an audit: a second ``--cash USD:500`` replaced the first
    ``USD:1000``, and the operation's totals lost it without a word.

    A USD lot is its own USD value. Lots of another currency are summed with their USD
    values only when every lot has one: a sum over some lots would pass for the value of
    all of them, and the totals never guess a value (none given: the total has none and
    counts as an item without a USD value)."""
    amounts: dict[str, float] = {}
    values: dict[str, list[float | None]] = {}
    for currency, amount, usd in lots:
        cur = currency.strip().upper()
        if not cur:
            raise BadInputError(f"cash {amount}: no currency")
        amounts[cur] = amounts.get(cur, 0.0) + amount
        values.setdefault(cur, []).append(amount if usd is None and cur == "USD" else usd)
    out: dict[str, tuple[float, float | None]] = {}
    for cur, amount in amounts.items():
        known = [v for v in values[cur] if v is not None]
        if known and len(known) < len(values[cur]):
            raise BadInputError(
                f"cash {cur}: {len(known)} of {len(values[cur])} lots have a USD value; "
                f"give every {cur} lot its value (CUR:AMOUNT@USD) or none, or sum them "
                "into one lot")
        out[cur] = (amount, sum(known) if known else None)
    return out


@dataclass(frozen=True)
class Arrest:
    """An arrest: person, place, agency (the author's), charges."""

    person: str
    place: str = ""
    charges: tuple[str, ...] = ()


Detail = Case | Buy | Parcel | Seizure | Arrest
_KIND_OF: dict[type, str] = {Case: "case", Buy: "buy", Parcel: "parcel", Seizure: "seizure",
                             Arrest: "arrest"}


@dataclass(frozen=True)
class Record:
    """A record as a user reads it: the stored row, its links and its lab result."""

    row: RecordRow
    links: tuple[tuple[str, str], ...] = ()
    lab: dict[str, Any] | None = None
    withdrawal: WithdrawalRow | None = None
    """Set when the record was withdrawn (:func:`withdraw_record`)."""

    def as_dict(self) -> dict[str, Any]:
        """Plain values (for JSON); ``withdrawn`` is ``None`` or by, at, why, replaced_by."""
        d = self.row._asdict()
        d["links"] = [f"{k}:{v}" for k, v in self.links]
        d["lab"] = self.lab
        w = self.withdrawal
        d["withdrawn"] = None if w is None else {
            "by": w.withdrawn_by, "at": w.withdrawn_at, "why": w.why,
            "replaced_by": w.replaced_by}
        return d


def _check_links(links: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Links of known kinds with non-empty ids; an address in a Bitcoin or Monero
    address's form (checksum checked), kept in its normal form (bech32 lower-case)."""
    out = []
    for kind, ref in links:
        if kind not in LINK_KINDS or not ref:
            raise BadInputError(f"link {kind}:{ref}: kind one of {', '.join(LINK_KINDS)}")
        if kind == "address":
            # a vendor's Monero address is an address to link as well as a Bitcoin one
            clean = clean_btc_address(ref) or clean_xmr_address(ref)
            if clean is None:
                # found by testing: `--link address:notanaddress` was recorded silently
                raise BadInputError(
                    f"link address:{ref}: not a Bitcoin address (1..., 3... or bc1..., "
                    "its checksum checked) nor a Monero one; a wallet (address cluster) is "
                    "linked as wallet:CLUSTER_ID")
            ref = clean
        out.append((kind, ref))
    return out


_WHAT = {
    "account": ("no account of that id in this workspace",
                "`darkmap persona search TEXT` finds an account by handle (id market:handle)"),
    "listing": ("no listing of that id in this workspace",
                "`darkmap persona show ACCOUNT` lists a vendor's listings as market:ref"),
    "persona": ("no persona of that id in this workspace",
                "`darkmap persona search TEXT` finds a persona by handle, key or address"),
    "wallet": ("no wallet (address cluster) of that id in this workspace's chain data",
               "a wallet is a cluster id: `darkmap wallet show ADDRESS` gives an address's"),
    "address": ("in neither this workspace's chain data nor any of its captures",
                "`darkmap persona search ADDRESS` finds a vendor that published it"),
}
"""Per link kind: what the workspace does not hold, and where to find the right id."""


def link_warnings(ws: Space, kind: str, links: Sequence[tuple[str, str]]) -> list[str]:
    """One warning per link of a ``kind`` record whose target the workspace (the
    reference data) does not hold: a mistyped id that would point at nothing. A persona
    a link run replaced names the personas that now hold its accounts. Reads evidence
    only: nothing audited."""
    out = []
    for lk, ref in _check_links(links):
        target = ref.removeprefix("cluster:") if lk == "wallet" else ref
        if store.reference_holds(ws.con, lk, target):
            continue
        now = store.persona_successors(ws.con, ref) if lk == "persona" else []
        if now:
            instead = (f"link persona:{now[0]} instead if that is the one meant "
                       f"(`darkmap persona show {now[0]}`)" if len(now) == 1 else
                       "link the one meant instead (`darkmap persona show ID`)")
            out.append(f"warning: link persona:{ref}: a link run replaced that persona; "
                       f"its accounts are now in {', '.join(now)}. The {kind} is recorded "
                       f"with the link as typed: {instead}")
            continue
        absent, hint = _WHAT[lk]
        out.append(f"warning: link {lk}:{ref}: {absent}. The {kind} is recorded with the "
                   f"link as typed: check the id ({hint})")
    return out


def add_record(ws: Space, by: str, detail: Detail, *,
               compartment: str | None = None, case_id: str | None = None,
               operation: str | None = None, occurred_on: date | None = None,
               country: str | None = None, provenance: str = "",
               links: Sequence[tuple[str, str]] = (), members: Sequence[str] = ()
               ) -> RecordRow:
    """Record ``detail`` in ``compartment`` (by default the case's compartment; a new case
    without one gets a new case compartment for its team ``members`` and the author).
    Needs a write grant; the selectors it holds are registered for deconfliction."""
    con = ws.con
    kind = _KIND_OF[type(detail)]
    if not provenance.strip():
        raise BadInputError("every record needs its provenance (where the fact comes from)")
    if isinstance(detail, Seizure) and detail.seized_nothing():
        # found by an audit: a seizure of nothing was stored and counted in the totals
        raise BadInputError("a seizure of nothing: give what was seized (--drug, --pills, "
                            "--firearms, --cash or --crypto, an amount above 0)")
    links = _check_links(links)
    if isinstance(detail, Buy) and ("listing", detail.listing) not in links:
        links.append(("listing", detail.listing))  # a buy always concerns its listing
    if members and (kind != "case" or compartment is not None or case_id is not None):
        # found by testing: the team was dropped without a word, and the members named
        # could not read the case they were told was theirs
        raise BadInputError(
            "members name the team of a new case's own compartment; "
            + ("a case in a compartment given takes none: grant them access with "
               f"`darkmap ops grant {compartment or '<compartment>'} --user USER`"
               if kind == "case" else f"a {kind} takes none"))
    actor = acting(con, by)
    if operation is not None:
        operation = _one_spelling(con, actor.user_id, actor.agency_id,
                                  operation_name(operation))
    if case_id is not None:
        # a case the author may read, also with a compartment given (found by testing: a
        # missing id, a buy's or another agency's case was stored as the record's case)
        case = _the_case(con, actor.user_id, actor.agency_id, case_id)
        if case.kind != "case":
            raise BadInputError(f"{case_id} is a {case.kind}, not a case")
        gone = store.withdrawals_of(con, actor.user_id, actor.agency_id, [case_id])
        if case_id in gone:
            # a record added to a withdrawn case counted in nothing that reads cases
            # (found by an audit of the withdrawal); its replacement is where it belongs
            then = gone[case_id].replaced_by
            raise BadInputError(f"case {case_id} was withdrawn (`darkmap ops show {case_id}` "
                                "says why)" + (f"; add the record to {then}, which replaces "
                                               "it" if then else ""))
        compartment = compartment or case.compartment_id
    if isinstance(detail, Buy) and detail.parcel:
        # a parcel record the author may read, as --case is checked (found by an audit:
        # another agency's parcel, or a missing id, was stored as the buy's parcel)
        parcel = _readable_one(con, actor.user_id, actor.agency_id, detail.parcel)
        if parcel.kind != "parcel":
            raise BadInputError(f"{detail.parcel} is a {parcel.kind}, not a parcel "
                                "(`darkmap ops show --kind parcel` lists the parcels you "
                                "may read)")
    # checked before a new case's compartment is made: a refused case left an empty
    # case compartment behind, granted to its team (review of the record form, 4)
    where = check_country(country) if country else actor.country
    if compartment is None and kind == "case":
        # not named after the case: on the team server every member reads the
        # compartments (the grants need them), a case's title only through a grant
        compartment = add_compartment(con, by, "case", "case team", members).compartment_id
    if compartment is None:
        raise BadInputError("give the compartment (or the case) the record goes in")
    data = asdict(detail)
    lab = data.pop("lab", None)
    row = RecordRow(f"{kind}-{uuid.uuid4().hex[:12]}", kind, compartment, actor.agency_id,
                    actor.user_id, utcnow(), case_id, operation, occurred_on,
                    where, provenance, data)
    lab_row = None if lab is None else (
        lab["substance"], lab["purity_pct"], lab["net_weight_g"], lab["pill_count"],
        lab["imprint"], is_fentanyl(lab["substance"]))
    if lab is not None:
        row.data["lab"] = lab
    items = detail.items() if isinstance(detail, Seizure) else ()
    with unit(con):
        check_access(con, actor, compartment, "write")
        store.insert_record(con, row, links, items, lab_row)
        # the digest of what was stored, read back as `audit verify` reads it (found by
        # an audit: amounts, authors and lab results changed in the database, records
        # planted and deleted, and the trail still verified)
        stored = store.record_contents(con, [row.record_id])[row.record_id]
        log(con, by, "record.add", record=row.record_id, kind=kind, compartment=compartment,
            digest=record_digest(stored))
        record_selectors(con, taskforce_key(ws), actor, row, links)
    return row


def _one_spelling(con: Con, user_id: str, agency_id: str, operation: str) -> str:
    """``operation``, refused when it differs only in case or spacing from an operation
    the user knows of (one a record the user may read names, or with reported figures):
    its records would be totalled as another operation's (found by an audit: "Spector"
    and "SpecTor" were two). Refused, not warned: a warning leaves the split in the
    totals. Naming the other spelling tells nothing the user may not read; an operation
    known only from compartments the user may not read is not looked at."""
    known = set(store.readable_operations(con, user_id, agency_id)) | set(
        store.reported_operations(con))
    if operation in known:
        return operation
    near = sorted(k for k in known if operation_key(k) == operation_key(operation))
    if near:
        raise BadInputError(
            f"operation {operation!r}: {user_id} knows of {near[0]!r}, which differs only "
            "in case or spacing; give that name (two spellings are totalled as two "
            "operations)")
    return operation


def _readable_one(con: Con, user_id: str, agency_id: str,
                  record_id: str) -> RecordRow:
    """One record the user may read, else NotFoundError (audited)."""
    rows = store.readable_records(con, user_id, agency_id, record_id=record_id)
    if not rows:
        log(con, user_id, "record.read", "not_found", record=record_id)
        raise NotFoundError(f"no record {record_id!r} that {user_id} may read")
    return rows[0]


def _the_case(con: Con, user_id: str, agency_id: str, case_id: str) -> RecordRow:
    """The case record ``--case`` names. A compartment id given there instead (a case's
    own compartment looks like it) is named as such, when the user holds a grant on it;
    otherwise it is "not found" like any id the user may not read."""
    rows = store.readable_records(con, user_id, agency_id, record_id=case_id)
    if rows:
        return rows[0]
    log(con, user_id, "record.read", "not_found", record=case_id)
    if store.access_level(con, user_id, agency_id, case_id) is not None:
        raise BadInputError(f"{case_id} is a compartment, not a case: give it with "
                            "--compartment, or give --case the case's record id (`darkmap "
                            "ops show --kind case` lists the cases you may read)")
    raise NotFoundError(f"no record {case_id!r} that {user_id} may read")


def read_records(ws: Space, by: str, kind: str | None = None,
                 operation: str | None = None, case_id: str | None = None,
                 withdrawn: bool = False) -> list[Record]:
    """The records ``by`` may read (optionally of one kind, operation or case); audited
    with the ids returned. Withdrawn records are left out unless ``withdrawn`` (then
    they come marked: :attr:`Record.withdrawal`)."""
    con = ws.con
    actor = acting(con, by)
    operation = None if operation is None else operation_name(operation)
    rows = store.readable_records(con, actor.user_id, actor.agency_id, kind=kind,
                                  operation=operation, case_id=case_id,
                                  active_only=not withdrawn)
    out = _with_details(con, actor.user_id, actor.agency_id, rows)
    log(con, by, "record.list", records=[r.record_id for r in rows],
        filter={"kind": kind, "operation": operation, "case": case_id})
    return out


def show_record(ws: Space, by: str, record_id: str) -> Record:
    """One record ``by`` may read (NotFoundError otherwise); audited."""
    con = ws.con
    actor = acting(con, by)
    row = _readable_one(con, actor.user_id, actor.agency_id, record_id)
    log(con, by, "record.read", record=record_id)
    return _with_details(con, actor.user_id, actor.agency_id, [row])[0]


def case_subjects(ws: Space, by: str, case_id: str) -> list[str]:
    """The personas and accounts a case concerns, as ``by`` may see them: those linked to
    the case record and to every record of the case ``by`` may read, and the account and
    persona of every listing linked there (a buy always links its listing: what `ops buy
    add` said it leads to). What ``darkmap export --case`` narrows to. A case ``by`` may
    not read is a NotFoundError, as if absent; audited like any read."""
    case = show_record(ws, by, case_id)
    if case.row.kind != "case":
        raise BadInputError(f"{case_id} is a {case.row.kind} record, not a case")
    # a withdrawn case, and the withdrawn records of a case, name no subject
    found = [*([] if case.withdrawal else [case]), *read_records(ws, by, case_id=case_id)]
    subjects = {ref for r in found for kind, ref in r.links if kind in ("persona", "account")}
    # found by a documentation audit: a case whose only subject was a buy's listing
    # exported "nothing", though the buy had named the listing's account and persona
    for listing in sorted({ref for r in found for kind, ref in r.links if kind == "listing"}):
        _, account, persona = store.listing_vendor(ws.con, listing)
        subjects |= {s for s in (account, persona) if s}
    return sorted(subjects)


def _with_details(con: Con, user_id: str, agency_id: str,
                  rows: Sequence[RecordRow]) -> list[Record]:
    """Attach links and lab results."""
    ids = [r.record_id for r in rows]
    links = store.links_of(con, user_id, agency_id, ids)
    labs = store.lab_results(con, user_id, agency_id, ids)
    gone = store.withdrawals_of(con, user_id, agency_id, ids)
    keys = ("substance", "purity_pct", "net_weight_g", "pill_count", "imprint", "fentanyl")
    return [Record(r, tuple(links.get(r.record_id, ())),
                   dict(zip(keys, labs[r.record_id], strict=True))
                   if r.record_id in labs else None, gone.get(r.record_id)) for r in rows]


MAX_WHY = 2000
"""The longest reason a withdrawal takes."""


def withdraw_record(ws: Space, by: str, record_id: str, why: str,
                    replaced_by: str | None = None) -> WithdrawalRow:
    """Withdraw record ``record_id`` (a mistyped seizure, the wrong operation, a
    duplicate): one row in ``ops_withdrawals`` (by, when in UTC, why, the record that
    corrects it) and a ``record.withdraw`` audit entry, in one transaction. The record
    itself is never changed or deleted; from then on it is left out of the totals,
    packages, fentanyl marks and exports by case, and shown marked.

    Only the record's author or an admin of the record's agency may withdraw it, and
    only while they may write its compartment. A record ``by`` may not read is "not
    found", as a missing one; a record withdrawn already is refused (a withdrawal is
    final: there is no un-withdraw; a record withdrawn by mistake is recorded again)."""
    con = ws.con
    why = " ".join(why.split())
    if not why:
        raise BadInputError("a withdrawal needs its reason (--why)")
    if len(why) > MAX_WHY:
        raise BadInputError(f"the reason is {len(why)} characters; at most {MAX_WHY}")
    if replaced_by is not None and replaced_by == record_id:
        raise BadInputError(f"{record_id} cannot replace itself")
    actor = acting(con, by)
    # a record ``by`` may not read is not found, as a missing one (audited: outside the
    # transaction, which a refusal other than AccessDenied rolls back)
    _readable_one(con, actor.user_id, actor.agency_id, record_id)
    if replaced_by is not None:
        _readable_one(con, actor.user_id, actor.agency_id, replaced_by)
    with unit(con):
        row = _readable_one(con, actor.user_id, actor.agency_id, record_id)
        if not (row.author == actor.user_id
                or (actor.role == "admin" and row.agency_id == actor.agency_id)):
            log(con, by, "record.withdraw", "denied", record=record_id)
            raise AccessDenied(f"{by} may not withdraw {record_id}: only its author "
                               f"({row.author}) or an admin of {row.agency_id} may")
        check_access(con, actor, row.compartment_id, "write")
        if store.withdrawals_of(con, actor.user_id, actor.agency_id, [record_id]):
            raise BadInputError(f"{record_id} is withdrawn already (`darkmap ops show "
                                f"{record_id}` says by whom and why)")
        if replaced_by is not None and store.withdrawals_of(
                con, actor.user_id, actor.agency_id, [replaced_by]):
            raise BadInputError(f"{replaced_by} is withdrawn itself: name the record "
                                "that corrects this one")
        out = WithdrawalRow(record_id, actor.user_id, utcnow(), why, replaced_by)
        store.insert_withdrawal(con, out)
        # the record's digest with its withdrawal, which the trail now holds it to
        stored = store.record_contents(con, [record_id])[record_id]
        log(con, by, "record.withdraw", record=record_id, kind=row.kind,
            compartment=row.compartment_id, why=why, replaced_by=replaced_by,
            digest=record_digest(stored))
    got = store.withdrawals_of(con, actor.user_id, actor.agency_id, [record_id])
    return got.get(record_id, out)


def buy_reaches(ws: Space, buy: Buy) -> str:
    """What a buy's listing leads to in the evidence, as a line for the analyst who
    recorded it: the vendor account and persona a fentanyl result marks too, or a warning
    that the listing is in no capture of the workspace (a mistyped id marks nothing but
    itself). Reads evidence only: no operational record, nothing audited."""
    known, account, persona = store.listing_vendor(ws.con, buy.listing)
    fent = buy.lab is not None and is_fentanyl(buy.lab.substance)
    if not known:
        so = ("its fentanyl result marks no account or persona" if fent
              else "the buy leads to no vendor")
        return (f"warning: listing {buy.listing!r} is in no capture of this workspace, so "
                f"{so}; check the id (`darkmap persona show ACCOUNT` lists a vendor's "
                "listings)")
    if account is None:
        return f"listing {buy.listing}" + (": marked as selling fentanyl" if fent else "")
    who = f"account {account}" + (f", persona {persona}" if persona else "")
    return (f"listing {buy.listing} ({who})"
            + (": marked as selling fentanyl" if fent else ""))


def fentanyl_marks(ws: Space, by: str) -> list[dict[str, str]]:
    """The listings, accounts and personas a buy ``by`` may read has shown to sell
    fentanyl: one mark per (ref, buy) with the evidence (the buy and the substance)."""
    con = ws.con
    actor = acting(con, by)
    rows = store.fentanyl_evidence(con, actor.user_id, actor.agency_id)
    log(con, by, "record.fentanyl_marks", records=sorted({r[2] for r in rows}))
    return [{"ref_kind": k, "ref_id": ref, "buy": buy, "substance": sub}
            for k, ref, buy, sub in rows]


def fentanyl_marks_of(ws: Space, by: str, buy_id: str) -> list[dict[str, str]]:
    """The marks one buy's lab result puts on listings, accounts and personas."""
    return [m for m in fentanyl_marks(ws, by) if m["buy"] == buy_id]
