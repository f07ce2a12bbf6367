"""`darkmap ops`, `darkmap audit`, `darkmap deconflict`: the operational layer.

Every command acts as a user (``--as USER``); the library checks that user's grants and
audits the call (darkmap.ops). Set-up: while the workspace has no user, the first agency
and its first admin may be added by anyone (the audit names who).

Each command imports the operational layer when it runs (#21): its stores load DuckDB,
psycopg and numpy, which ``--help`` does not need; the choices and defaults the options
offer come from :mod:`darkmap.ops.vocabulary`.
"""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from darkmap.cli.common import (
    OPS_SERVER_ENV,
    DarkmapError,
    FiniteFloat,
    cell,
    emit_json,
    interrupts_held,
    main,
    open_reference,
    open_ws,
    outside_workspace,
    say,
    short,
    workspace_option,
)
from darkmap.errors import BadInputError
from darkmap.ops.vocabulary import (
    COMPARTMENT_KINDS,
    DEFAULT_DISTANCE_M,
    EVENT_KINDS,
    MAX_COUNT,
    MAX_DISTANCE_M,
    MAX_EVENT_DAYS,
    RECORD_KINDS,
    RETENTION_DAYS,
    ROLES,
)

if TYPE_CHECKING:
    from darkmap.ops.records import Detail
    from darkmap.store.operations import Space

__all__ = ["SERVER_ENV", "audit_group", "deconflict_group", "ops_group"]

SERVER_ENV = OPS_SERVER_ENV
"""Set to the team server's URL to keep the operational records there."""

_AS = click.option("--as", "by", required=True, metavar="USER",
                   help="The user acting (their grants decide what they see and write).")


_EVENT_TIMES = ("%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S",
                "%Y-%m-%d %H:%M:%S", "%Y-%m-%d")
"""What --start and --end take (the help's own example, to the minute, was refused)."""


class _WindowEnd(click.DateTime):
    """``--end`` of a window: a date alone means the whole of that day, to 23:59:59.999999
    UTC (it meant midnight, the day's start: ``--start 2026-05-01 --end 2026-05-01`` was a
    window of no length that missed a raid that morning: found by an audit)."""

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        """The time, or the last instant of the day a date alone names."""
        at = super().convert(value, param, ctx)
        if isinstance(value, str) and _date_alone(value):
            return datetime.combine(at.date(), time.max)
        return at


def _date_alone(value: str) -> bool:
    """Whether ``value`` is a date without a time (``2026-05-01``, also ``2026-5-1``)."""
    try:
        datetime.strptime(value.strip()[:20], "%Y-%m-%d")
    except ValueError:
        return False
    return True


def _utf8_text() -> None:
    """Refuse a text option or argument of the running command that is not UTF-8 (the
    shell passes bytes; Python keeps the ones that are not UTF-8 as lone surrogates, which
    no record, query or audit entry can hold: found by testing, each such value ended in
    a traceback). Paths are not checked: a file's name may be any bytes."""
    ctx = click.get_current_context(silent=True)
    for name, value in (ctx.params.items() if ctx is not None else ()):
        for v in _texts(value):
            if not v.isascii():
                try:
                    v.encode("utf-8")
                except UnicodeEncodeError:
                    raise BadInputError(f"{name.replace('_', '-')}: {v!r} is not UTF-8 "
                                        "text") from None


def _texts(value: Any) -> Iterator[str]:
    """The texts in an option's value (one, or several in lists and pairs)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _texts(v)


def _run(workspace: Path | None, fn: Callable[[Space], Any], hold: bool = True) -> Any:
    """Open the workspace, run, close. The workspace holds the records and their audit
    trail, so it is opened read-write (every access, a read too, appends an entry). With
    ``$DARKMAP_OPS_SERVER`` (a PostgreSQL URL) the records and the trail are the team
    server's and the workspace gives the reference data only (listings, personas, chain
    data, the fx table), which no command writes: it is opened read-only, so the
    commands run beside `darkmap serve --server` and other readers of the workspace
    (found by an audit: each was refused as "in use by another darkmap process"). For
    the command's records and their result line to go together, Ctrl-C is held while a
    record is written (see :func:`_held`)."""
    from darkmap.store.team import open_ops_server  # noqa: PLC0415

    _utf8_text()
    server = os.environ.get(SERVER_ENV)
    with _held(hold):
        ws = open_reference(workspace) if server else open_ws(workspace)
        try:
            if server:
                with open_ops_server(server, ws) as ops:
                    return fn(ops)
            return fn(ws)
        finally:
            ws.close()


def _held(hold: bool) -> AbstractContextManager[None]:
    """:func:`~darkmap.cli.common.interrupts_held` for an operational command's write
    and audit entry (a second or two), or nothing (``hold`` False: a long build, which
    Ctrl-C stops as any command)."""
    return interrupts_held("the command wrote its records") if hold else nullcontext()


@main.group("ops")
def ops_group() -> None:
    """Operational records: agencies, users, compartments, cases, buys, parcels, seizures,
    arrests; every command acts as a user (--as) and is audited.

    \b
    Example:
      darkmap ops agency add nl-police --country NL --contact "+31 ..." --as ana
    """


@ops_group.group("agency")
def agency_group() -> None:
    """Agencies of the task force. Example: darkmap ops agency add fbi --country US ..."""


@agency_group.command("add")
@click.argument("agency_id")
@click.option("--country", required=True, help="ISO 3166 two-letter code.")
@click.option("--name", default="", help="Full name.")
@click.option("--contact", required=True, help="Deconfliction contact (desk, phone, mail).")
@_AS
@workspace_option
def agency_add(agency_id: str, country: str, name: str, contact: str, by: str,
               workspace: Path | None) -> None:
    """Add an agency (an admin; anyone while the workspace has no user).

    Example: darkmap ops agency add bka --country DE --contact "BKA SO41 desk" --as ana
    """
    from darkmap.ops import access  # noqa: PLC0415

    row = _run(workspace, lambda ws: access.add_agency(ws.con, by, agency_id, name, country,
                                                       contact))
    say(f"agency {row.agency_id} ({row.country}) added")


@agency_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@_AS
@workspace_option
def agency_list(as_json: bool, by: str, workspace: Path | None) -> None:
    """The agencies of the task force: country and deconfliction contact (audited).

    Example: darkmap ops agency list --as ana
    """
    from darkmap.ops import access  # noqa: PLC0415

    rows = _run(workspace, lambda ws: access.list_agencies(ws.con, by))
    if as_json:
        emit_json([r._asdict() for r in rows])
        return
    for a in rows:
        say(f"{cell(a.agency_id, 30)} {a.country}  {short(a.name, 40)}; contact "
            f"{short(a.contact, 100)}")


@ops_group.group("user")
def user_group() -> None:
    """Users of an agency. Example: darkmap ops user add ana --agency bka --role admin"""


@user_group.command("add")
@click.argument("user_id")
@click.option("--agency", required=True)
@click.option("--role", type=click.Choice(ROLES), default="officer", show_default=True)
@_AS
@workspace_option
def user_add(user_id: str, agency: str, role: str, by: str, workspace: Path | None) -> None:
    """Add a user to an agency (an admin of that agency; anyone during set-up).

    Example: darkmap ops user add ben --agency bka --role officer --as ana
    """
    from darkmap.ops import access  # noqa: PLC0415

    row = _run(workspace, lambda ws: access.add_user(ws.con, by, user_id, agency, role))
    say(f"user {row.user_id} ({row.role}, {row.agency_id}) added")


@user_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@_AS
@workspace_option
def user_list(as_json: bool, by: str, workspace: Path | None) -> None:
    """The users of your agency: the ids --as and --member take (an admin sees every role,
    anyone else the admins; another agency's users are not listed; audited).

    Example: darkmap ops user list --as ben
    """
    from darkmap.ops import access  # noqa: PLC0415

    rows = _run(workspace, lambda ws: access.list_users(ws.con, by))
    if as_json:
        emit_json([r._asdict() for r in rows])
        return
    for u in rows:
        say(f"{cell(u.user_id, 40)} {u.agency_id}  {u.role or ''}".rstrip())


@ops_group.group("compartment")
def compartment_group() -> None:
    """Compartments. Example: darkmap ops compartment add --kind group --member fbi --as ana"""


@compartment_group.command("add")
@click.option("--kind", type=click.Choice(COMPARTMENT_KINDS), required=True)
@click.option("--name", default="")
@click.option("--id", "cid", default=None,
              help="Its id [default: generated]; ids are shared by the whole task force.")
@click.option("--member", "members", multiple=True,
              help="An agency of the sharing group, or a user of the case team.")
@_AS
@workspace_option
def compartment_add(kind: str, name: str, cid: str | None, members: tuple[str, ...], by: str,
                    workspace: Path | None) -> None:
    """Create a compartment owned by your agency, with the grants of its kind.

    Example: darkmap ops compartment add --kind group --id de-us --member fbi --as ana
    """
    from darkmap.ops import access  # noqa: PLC0415

    row = _run(workspace, lambda ws: access.add_compartment(ws.con, by, kind, name, members,
                                                            cid))
    say(f"compartment {row.compartment_id} ({row.kind}) created")


@compartment_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@_AS
@workspace_option
def compartment_list(as_json: bool, by: str, workspace: Path | None) -> None:
    """The compartments you hold a grant on: kind, name, owning agency, what you may do
    there, and who else holds a grant (audited).

    Example: darkmap ops compartment list --as ben
    """
    from darkmap.ops import access  # noqa: PLC0415

    rows = _run(workspace, lambda ws: access.list_compartments(ws.con, by))
    if as_json:
        emit_json([r._asdict() for r in rows])
        return
    for c in rows:
        say(f"{cell(c.compartment_id, 40)} {c.kind:9s} {c.access:5s} owner "
            f"{short(c.owner_agency, 30)}  {short(c.name, 60)}")
        say(f"  grants: {short(', '.join(c.grants), 300)}")


def _grantee(user: str | None, agency: str | None, taskforce: bool) -> tuple[str, str]:
    """(kind, id) from exactly one of --user, --agency, --taskforce."""
    given = [(k, v) for k, v in (("user", user), ("agency", agency),
                                 ("taskforce", "*" if taskforce else None)) if v]
    if len(given) != 1:
        raise click.UsageError("give exactly one of --user, --agency, --taskforce")
    return given[0]


@ops_group.command("grant")
@click.argument("compartment")
@click.option("--user", default=None)
@click.option("--agency", default=None)
@click.option("--taskforce", is_flag=True, help="Every agency of the task force.")
@click.option("--access", "level", type=click.Choice(["read", "write"]), default="read",
              show_default=True)
@click.option("--revoke", is_flag=True, help="Remove the grant instead.")
@_AS
@workspace_option
def grant_cmd(compartment: str, user: str | None, agency: str | None, taskforce: bool,
              level: str, revoke: bool, by: str, workspace: Path | None) -> None:
    """Grant (or --revoke) access to a compartment (an admin of its owning agency).

    Example: darkmap ops grant de-us --agency fbi --access read --as ana
    """
    from darkmap.ops import access  # noqa: PLC0415

    kind, who = _grantee(user, agency, taskforce)
    if revoke:
        done = _run(workspace, lambda ws: access.revoke(ws.con, by, compartment, kind, who))
        say(f"grant {kind}:{who} on {compartment} {'revoked' if done else 'not found'}")
        return
    _run(workspace, lambda ws: access.grant(ws.con, by, compartment, kind, who, level))
    say(f"{kind}:{who} may {level} {compartment}")


# -- records ------------------------------------------------------------------------------


def _record_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The options every record takes."""
    for opt in reversed((
        click.option("--compartment", default=None,
                     help="Compartment id [default: the case's compartment]."),
        click.option("--case", "case_id", default=None,
                     help="The case it belongs to: the case's record id (`ops case add` "
                          "prints it), not its compartment's."),
        click.option("--operation", default=None,
                     help="The operation (for the totals); a name that differs only in "
                          "case or spacing from one you know of is refused."),
        click.option("--date", "occurred_on", type=click.DateTime(["%Y-%m-%d"]), default=None,
                     help="When it happened (YYYY-MM-DD)."),
        click.option("--country", default=None, help="Where [default: your agency's]."),
        click.option("--provenance", required=True,
                     help="Where the fact comes from (report, exhibit, officer)."),
        click.option("--link", "links", multiple=True, metavar="KIND:ID",
                     help="persona|account|listing|wallet|address it concerns (repeat)."),
        _AS, workspace_option,
    )):
        f = opt(f)
    return f


def _add(workspace: Path | None, by: str, detail: Detail, opts: dict[str, Any],
         members: Sequence[str] = ()) -> Any:
    """Record ``detail``, print its id and return its row."""
    from darkmap.ops import records  # noqa: PLC0415

    on = opts["occurred_on"]
    from darkmap.ops.forms import link  # noqa: PLC0415

    links = [link(v) for v in opts["links"]]

    def add(ws: Space) -> tuple[Any, list[str]]:
        row = records.add_record(
            ws, by, detail, compartment=opts["compartment"], case_id=opts["case_id"],
            operation=opts["operation"], occurred_on=on.date() if on else None,
            country=opts["country"], provenance=opts["provenance"], links=links,
            members=members)
        # a buy's own listing: `buy_reaches` says where it leads, or warns
        own = ("listing", detail.listing) if isinstance(detail, records.Buy) else None
        return row, records.link_warnings(ws, row.kind, [k for k in links if k != own])

    # the record and the line naming it go together: Ctrl-C after the commit once left
    # a stored seizure unreported, and the analyst who ran the command again counted it
    # twice (found by a kill-resilience test)
    with _held(True):
        row, warnings = _run(workspace, add, hold=False)
        if row.kind == "case":   # its id and its compartment's look alike: say which is which
            say(f"case {row.record_id} opened (use --case {row.record_id}); its compartment: "
                f"{row.compartment_id}")
        else:
            say(f"{row.kind} {row.record_id} recorded in compartment {row.compartment_id}")
    for w in warnings:
        say(w, err=True)
    return row


@ops_group.group("case")
def case_group() -> None:
    """Cases. Example: darkmap ops case add "Vendor X" --provenance "file 12" --as ana"""


@case_group.command("add")
@click.argument("title")
@click.option("--summary", default="")
@click.option("--member", "members", multiple=True,
              help="A user of the new case compartment's team (repeat; not with --compartment).")
@_record_options
def case_add(title: str, summary: str, members: tuple[str, ...], by: str,
             workspace: Path | None, **opts: Any) -> None:
    """Open a case (a new case compartment for you and --member users unless --compartment).

    Example: darkmap ops case add "Vendor X" --member ben --provenance "file 12" --as ana
    """
    from darkmap.ops.records import Case  # noqa: PLC0415

    _add(workspace, by, Case(title, summary), opts, members)


@ops_group.group("buy")
def buy_group() -> None:
    """Controlled buys. Example: darkmap ops buy add --listing L --substance fentanyl ..."""


@buy_group.command("add")
@click.option("--listing", required=True, help="The listing bought from.")
@click.option("--account", default="", help="The undercover account used.")
@click.option("--price", type=FiniteFloat(min=0), default=None)
@click.option("--currency", default="USD", show_default=True)
@click.option("--txid", default="")
@click.option("--parcel", default="", help="The parcel record it came in.")
@click.option("--substance", default=None, help="Lab result: substance found.")
@click.option("--purity", type=FiniteFloat(min=0, max=100), default=None, help="Purity %.")
@click.option("--net-g", type=FiniteFloat(min=0), default=None, help="Net weight in g.")
@click.option("--pills", type=click.IntRange(min=0, max=MAX_COUNT), default=None,
              help="Pill count.")
@click.option("--imprint", default=None)
@_record_options
def buy_add(listing: str, account: str, price: float | None, currency: str, txid: str,
            parcel: str, substance: str | None, purity: float | None, net_g: float | None,
            pills: int | None, imprint: str | None, by: str, workspace: Path | None,
            **opts: Any) -> None:
    """Record a controlled buy and, with --substance, its lab result (a fentanyl result
    marks the listing and its persona).

    Example: darkmap ops buy add --listing dream:123 --substance fentanyl --purity 12
    --case case-ab12 --provenance "lab report 7" --as ben
    """
    from darkmap.ops import records  # noqa: PLC0415
    from darkmap.ops.records import Buy, LabResult  # noqa: PLC0415

    lab = None if substance is None else LabResult(substance, purity, net_g, pills, imprint)
    buy = Buy(listing, account, price, currency, txid, parcel, lab)
    _add(workspace, by, buy, opts)
    reach = _run(workspace, lambda ws: records.buy_reaches(ws, buy))
    say(reach, err=reach.startswith("warning:"))


@ops_group.group("parcel")
def parcel_group() -> None:
    """Parcels. Example: darkmap ops parcel add --tracking LX123 --provenance ..."""


@parcel_group.command("add")
@click.option("--carrier", default="")
@click.option("--tracking", default="")
@click.option("--sender", default="", help="Sender as written.")
@click.option("--return-address", default="", help="Return address as written.")
@click.option("--origin", "origin_postal", default="", help="Origin postal area.")
@click.option("--destination", default="")
@click.option("--weight-g", type=FiniteFloat(min=0), default=None)
@click.option("--postage", default="")
@click.option("--photo-sha256", "photos", multiple=True)
@_record_options
def parcel_add(carrier: str, tracking: str, sender: str, return_address: str,
               origin_postal: str, destination: str, weight_g: float | None, postage: str,
               photos: tuple[str, ...], by: str, workspace: Path | None, **opts: Any) -> None:
    """Record a parcel (its tracking number and addresses are deconflicted).

    Example: darkmap ops parcel add --carrier DHL --tracking JJD00123 --case case-ab12
    --provenance "exhibit 3" --as ben
    """
    from darkmap.ops.records import Parcel  # noqa: PLC0415

    _add(workspace, by, Parcel(carrier, tracking, sender, return_address, origin_postal,
                               destination, weight_g, postage, photos), opts)


@ops_group.group("seizure")
def seizure_group() -> None:
    """Seizures. Example: darkmap ops seizure add --drug heroin:1200 --firearms 2 ..."""


@seizure_group.command("add")
@click.option("--drug", "drugs", multiple=True, metavar="SUBSTANCE:GRAMS")
@click.option("--pills", type=click.IntRange(min=0, max=MAX_COUNT), multiple=True,
              help="Pills seized (repeat: the counts add up).")
@click.option("--firearms", type=click.IntRange(min=0, max=MAX_COUNT), multiple=True,
              help="Firearms seized (repeat: the counts add up).")
@click.option("--cash", "cash", multiple=True, metavar="CUR:AMOUNT[@USD]",
              help="Cash seized and after @ the USD value of the whole lot: "
                   "EUR:20000@21700 is EUR 20,000 worth USD 21,700 (repeat: lots of one "
                   "currency are summed, each with its USD value or none).")
@click.option("--crypto", "crypto", multiple=True, metavar="ASSET:AMOUNT[:ADDRESS][@USD]",
              help="Crypto seized, the address it came from, and after @ the USD value "
                   "of the whole lot, not a rate per coin: BTC:0.5:ADDRESS@30000 is 0.5 "
                   "BTC worth USD 30,000 in all (repeat).")
@click.option("--place", default="")
@_record_options
def seizure_add(drugs: tuple[str, ...], pills: tuple[int, ...], firearms: tuple[int, ...],
                cash: tuple[str, ...],
                crypto: tuple[str, ...], place: str, by: str, workspace: Path | None,
                **opts: Any) -> None:
    """Record a seizure: drugs in g, pills, firearms, cash and crypto. After @ comes the
    USD value of the whole lot at the seizure date, not a rate per unit (USD cash is its
    own value): below, EUR 20,000 worth USD 21,700 and 0.5 BTC worth USD 30,000 in all.

    Example: darkmap ops seizure add --drug fentanyl:500 --cash EUR:20000@21700
    --crypto BTC:0.5:1Q2TWHE3GMdB6BZKafqwxXtWAWgFt5Jvm3@30000 --operation SpecTor
    --compartment de-us --provenance "PV 88" --as ben
    """
    from darkmap.ops import forms  # noqa: PLC0415

    _add(workspace, by, forms.seizure(drugs, pills, firearms, cash, crypto, place), opts)


@ops_group.group("arrest")
def arrest_group() -> None:
    """Arrests. Example: darkmap ops arrest add "J. Doe" --country DE --charge ..."""


@arrest_group.command("add")
@click.argument("person")
@click.option("--place", default="")
@click.option("--charge", "charges", multiple=True)
@_record_options
def arrest_add(person: str, place: str, charges: tuple[str, ...], by: str,
               workspace: Path | None, **opts: Any) -> None:
    """Record an arrest (--link the personas and accounts attributed).

    Example: darkmap ops arrest add "J. Doe" --date 2023-04-20 --country DE
    --link persona:p-12 --operation SpecTor --compartment de-us
    --provenance "arrest report 4" --as ben
    """
    from darkmap.ops.records import Arrest  # noqa: PLC0415

    _add(workspace, by, Arrest(person, place, charges), opts)


@ops_group.command("show")
@click.argument("record_id", required=False)
@click.option("--kind", type=click.Choice(RECORD_KINDS), default=None)
@click.option("--operation", default=None)
@click.option("--case", "case_id", default=None)
@click.option("--fentanyl", is_flag=True, help="The listings and personas a buy showed to "
              "sell fentanyl, with the evidence.")
@click.option("--hide-withdrawn", is_flag=True,
              help="List no withdrawn record (by default they are listed, marked).")
@click.option("--json", "as_json", is_flag=True)
@_AS
@workspace_option
def show_cmd(record_id: str | None, kind: str | None, operation: str | None,
             case_id: str | None, fentanyl: bool, hide_withdrawn: bool, as_json: bool,
             by: str, workspace: Path | None) -> None:
    """Show one record, or list the records you may read (only those). A withdrawn
    record (`ops withdraw`) is shown marked: by whom, when, why, replaced by what.

    Example: darkmap ops show --kind buy --as ben
    """
    from darkmap.ops import records  # noqa: PLC0415

    def read(ws: Space) -> Any:
        if fentanyl:
            return records.fentanyl_marks(ws, by)
        if record_id:
            rec = records.show_record(ws, by, record_id)
            return [rec.as_dict()], records.fentanyl_marks_of(ws, by, record_id)
        return [r.as_dict() for r in records.read_records(
            ws, by, kind, operation, case_id, withdrawn=not hide_withdrawn)], []
    out = _run(workspace, read)
    if fentanyl:
        if as_json:
            emit_json(out)
        for m in [] if as_json else out:
            say(f"{m['ref_kind']} {short(m['ref_id'])}: {m['substance']} (buy {m['buy']})")
        return
    rows, marks = out
    if case_id is not None and not rows:
        # one line whether the case is missing, unreadable or holds nothing yet: which it
        # is would confirm a case of another agency (found by an audit: nothing at all
        # was printed, which read as a case without records)
        say(f"no record {by} may read belongs to case {short(case_id, 60)}; `darkmap ops "
            "show --kind case` lists the cases you may read", err=True)
    if as_json:
        emit_json(rows if not record_id else {**rows[0], "fentanyl_marks": marks})
        return
    for r in rows:
        say(f"{r['record_id']}  {r['kind']:8s} {r['compartment_id']}  {r['agency_id']}  "
            f"{r['author']}  {r['created_at']:%Y-%m-%d %H:%M}  {short(_summary(r), 100)}")
        if r["withdrawn"]:
            say(f"  {_withdrawn(r['withdrawn'])}")
        if record_id:
            for key, value in sorted(r["data"].items()):
                say(f"  {key}: {short(json.dumps(value, default=str), 200)}")
            say(f"  provenance: {short(r['provenance'], 200)}")
            for link in r["links"]:
                say(f"  link {short(link, 200)}")
            for m in marks:
                say(f"  marks {m['ref_kind']} {short(m['ref_id'])} as selling "
                    f"{m['substance']} (evidence: this buy's lab result)")


def _withdrawn(w: dict[str, Any]) -> str:
    """The line marking a withdrawn record."""
    by = f" replaced by {w['replaced_by']};" if w["replaced_by"] else ""
    return (f"WITHDRAWN by {w['by']} {w['at']:%Y-%m-%d %H:%M} UTC;{by} why: "
            f"{short(w['why'], 200)} (left out of totals, packages and marks)")


@ops_group.command("withdraw")
@click.argument("record_id")
@click.option("--why", required=True, help="Why it is withdrawn (kept with it, audited).")
@click.option("--replaced-by", default=None, metavar="RECORD_ID",
              help="The record that corrects it (record it first).")
@_AS
@workspace_option
def withdraw_cmd(record_id: str, why: str, replaced_by: str | None, by: str,
                 workspace: Path | None) -> None:
    """Withdraw a wrong record (a mistyped seizure, the wrong operation, a duplicate).
    The record is never changed or deleted: it is left out of the totals, packages,
    fentanyl marks and exports by case, and `ops show` shows it marked. Only its author
    or an admin of its agency, still a writer of its compartment, may; a withdrawal is
    final (record the record again if one was withdrawn by mistake).

    Example: darkmap ops withdraw case-ab12 --why "opened twice" --as ana
    """
    from darkmap.ops import records  # noqa: PLC0415

    w = _run(workspace, lambda ws: records.withdraw_record(ws, by, record_id, why,
                                                            replaced_by))
    say(f"{w.record_id} withdrawn by {w.withdrawn_by} at {w.withdrawn_at:%Y-%m-%d %H:%M} UTC"
        + (f", replaced by {w.replaced_by}" if w.replaced_by else ""))


def _summary(r: dict[str, Any]) -> str:
    """One line about a record."""
    d = r["data"]
    kind = r["kind"]
    if kind == "case":
        return str(d.get("title", ""))
    if kind == "buy":
        return f"listing {d.get('listing')}"
    if kind == "parcel":
        return f"{d.get('carrier')} {d.get('tracking')}"
    if kind == "seizure":
        return f"{len(d.get('drugs_g', {}))} drugs, {d.get('firearms')} firearms"
    return f"{d.get('person')} {r.get('country') or ''}"


@ops_group.command("import-reported")
@click.argument("csv_file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@_AS
@workspace_option
def import_reported_cmd(csv_file: Path, by: str, workspace: Path | None) -> None:
    """Import reported figures of past operations (jcode-operations.csv's columns).

    Example: darkmap ops import-reported ../shared/data/operations/jcode-operations.csv --as ana
    """
    from darkmap.ops import totals  # noqa: PLC0415

    out = _run(workspace, lambda ws: totals.import_reported(ws, by, csv_file))
    for op, n in out.items():
        say(f"{short(op, 60)}: {n} figures")


def _range(low: float | None, high: float | None) -> str:
    """``850``, ``153-155``, ``> 7,000,000``."""
    def n(x: float) -> str:
        return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.3f}".rstrip("0")
    if low is None and high is None:
        return "?"
    if high is None:
        return f"> {n(low or 0)}"
    if low is None:
        return f"< {n(high)}"
    return n(low) if low == high else f"{n(low)}-{n(high)}"


@ops_group.command("report")
@click.argument("operation")
@click.option("--json", "as_json", is_flag=True)
@_AS
@workspace_option
def report_cmd(operation: str, as_json: bool, by: str, workspace: Path | None) -> None:
    """Operation totals as a press release gives them: recorded (what you may read) and
    reported (each figure with its source; ranges where sources disagree).

    Example: darkmap ops report SpecTor --as ana
    """
    from darkmap.ops import totals  # noqa: PLC0415

    rep = _run(workspace, lambda ws: totals.operation_report(ws, by, operation))
    if as_json:
        emit_json(rep)
        return
    rec = rep["recorded"]
    say(f"operation {short(operation, 60)} as seen by {by}")
    say(f"recorded: {rec['arrests']} arrests in {rec['countries']} countries "
        + ", ".join(f"{c} {n}" for c, n in rec["arrests_by_country"].items()))
    say(f"  drugs {rec['drugs_kg']:,.3f} kg (fentanyl {rec['fentanyl_kg']:,.3f} kg); "
        f"pills {rec['pills']:,d}; firearms {rec['firearms']:,d}")
    say(f"  cash ${rec['cash_usd']:,.2f}, crypto ${rec['crypto_usd']:,.2f}"
        + (f" (without USD value: {rec['items_without_usd_value']})"
           if rec["items_without_usd_value"] else ""))
    for s, kg in rec["drugs_kg_by_substance"].items():
        say(f"  {cell(s, 40)} {kg:>12,.3f} kg")
    say(f"{'side by side':24s} {'recorded':>16s} {'reported':>16s}")
    for metric, row in rep["side_by_side"].items():
        say(f"  {metric:22s} {_range(row['recorded'], row['recorded']):>16s} "
            f"{_range(row['reported_low'], row['reported_high']):>16s}")
    say("reported:" if rep["reported"] else "reported: none imported for this operation")
    for metric, m in rep["reported"].items():
        flag = "  (sources disagree)" if m["sources_disagree"] else ""
        say(f"  {metric:24s} {_range(m['low'], m['high']):>16s}{flag}")
        for f in m["figures"]:
            say(f"      {cell(f['text'], 50)} {short(f['source'], 160)}")


# -- audit --------------------------------------------------------------------------------


@main.group("audit")
def audit_group() -> None:
    """The audit trail of operational records. Example: darkmap audit verify -w case-42"""


@audit_group.command("verify")
@click.option("--file", "export", type=click.Path(path_type=Path, dir_okay=False,
              exists=True), default=None, help="Check an exported trail instead.")
@click.option("--archive", "archives", multiple=True, type=click.Path(
              path_type=Path, dir_okay=False, exists=True),
              help="Also check these archive files (`darkmap audit archive`) against the "
                   "trail: together, the whole chain from the first entry. Repeat.")
@click.option("--as", "by", default=None, metavar="USER",
              help="Taken as by every operational command, and not needed: the check reads "
                   "hashes, no record, and anyone who may read the workspace makes it.")
@workspace_option
def audit_verify(export: Path | None, archives: tuple[Path, ...], by: str | None,
                 workspace: Path | None) -> None:
    """Check the hash chain; name the first bad entry (exit 1) if it does not hold.

    --as is accepted and not needed: the check reads hashes, no record.

    Example: darkmap audit verify -w case-42 --archive audit-2025.jsonl
    """
    from darkmap.ops import audit  # noqa: PLC0415

    # --as was refused here though every other operational command requires it (found
    # by an audit; scripts give it to all). It is taken and not used: the check needs no
    # grant, and runs on a read-only workspace beside its writers, where an unknown
    # user's refusal could not even be audited
    del by

    def check(con: Any) -> tuple[int, int, audit.AuditProblem | None,
                                 audit.RecordCheck | None, bool]:
        n, problem = audit.verify(con)
        m = 0
        if problem is None and archives:
            m, problem = audit.verify_archives(list(archives), con)
        # the records against the digests their entries carry (found by an audit: the
        # chain held while amounts, authors and lab results were changed)
        return (n, m, problem, audit.verify_records(con) if problem is None else None,
                audit.whole_trail_refusal(con) is None)

    archived, records, whole = 0, None, True
    if export is not None:
        rows, head = audit.read_export(export)
        n, problem = len(rows), audit.verify_chain(rows, head)
    elif os.environ.get(SERVER_ENV):
        n, archived, problem, records, whole = _run(workspace, lambda ws: check(ws.con))
    else:
        ws = open_ws(workspace, read_only=True)
        try:
            n, archived, problem, records, whole = check(ws.con)
        finally:
            ws.close()
    # a member of the team server is told whether the chain holds, not its length: run
    # before and after another agency's work, the count told how busy it was (found by
    # an audit); the owner and service roles read the whole trail and get it
    entries = f"{n} entries" if whole else ""
    if problem is not None:
        raise DarkmapError(f"audit trail broken at {problem}"
                           + (f" ({entries})" if entries else ""))
    if records is not None and records.broken:
        raise DarkmapError(f"audit trail broken: {records} (the chain"
                           + (f" of {entries}" if entries else "") + " holds)")
    extra = f", and {archived} archived entries in {len(archives)} files" if archives else ""
    say(f"audit trail intact: {entries}{extra}" if entries or extra else "audit trail intact")
    if records is not None:
        say(records.summary())


@audit_group.command("archive")
@click.option("--before", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="Archive the entries stamped before this day (UTC).")
@click.option("--out", "-o", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="The archive file to write (never overwritten).")
@click.option("--keep-days", type=click.IntRange(min=RETENTION_DAYS, max=100 * 366),
              default=RETENTION_DAYS, show_default=True,
              help="The retention period: nothing younger is archived (at least a year).")
@_AS
@workspace_option
def audit_archive(before: datetime, out: Path, keep_days: int, by: str,
                  workspace: Path | None) -> None:
    """Retention: move entries older than the retention period to an archive file,
    keeping the chain checkable across the cut (an admin; audited). On the team server
    only the owner role may.

    Example: darkmap audit archive --before 2025-01-01 --out audit-2024.jsonl --as ana
    """
    from darkmap.ops import access, audit  # noqa: PLC0415

    outside_workspace(out, workspace)

    def run(ws: Space) -> audit.ArchiveRow:
        actor = access.acting(ws.con, by)
        if actor.role != "admin":
            audit.log(ws.con, by, "audit.archive", "denied")
            raise access.AccessDenied(f"{by} is {actor.role}: only an admin archives the audit")
        return audit.archive_trail(ws.con, out, before.replace(tzinfo=UTC), by,
                                   min_days=keep_days)
    try:
        arc = _run(workspace, run)
    except PermissionError as exc:
        raise DarkmapError(str(exc)) from exc
    say(f"{arc.entries} audit entries ({arc.seq_from}-{arc.seq_to}, {arc.oldest_at} to "
        f"{arc.newest_at}) archived to {out} (sha256 {arc.file_sha256}); keep the file: "
        "`darkmap audit verify --archive` checks it with the trail")


@audit_group.command("export")
@click.option("--out", "-o", type=click.Path(path_type=Path, dir_okay=False), required=True)
@_AS
@workspace_option
def audit_export(out: Path, by: str, workspace: Path | None) -> None:
    """Export the whole trail with its hashes and head (JSON lines), for a court or an
    archive; `darkmap audit verify --file` checks it (an admin; audited).

    Example: darkmap audit export --out trail-2026-12.jsonl --as ana
    """
    from darkmap.ops import access, audit  # noqa: PLC0415

    outside_workspace(out, workspace)

    def run(ws: Space) -> int:
        actor = access.acting(ws.con, by)
        if actor.role != "admin":
            audit.log(ws.con, by, "audit.export", "denied")
            raise access.AccessDenied(f"{by} is {actor.role}: only an admin exports the audit")
        refusal = audit.whole_trail_refusal(ws.con)
        if refusal is not None:
            audit.log(ws.con, by, "audit.export", "denied")
            raise access.AccessDenied(f"{refusal}: the whole trail for a court is exported "
                                      "by the server's owner role; `darkmap audit show "
                                      "--json` gives your agency's entries")
        # checked before the entry saying so is written (found by testing: an export to a
        # folder that does not exist left an entry of an export that never was)
        if out.exists() or out.is_symlink():
            raise BadInputError(f"{out}: exists; an export is never overwritten (give a new "
                                "file)")
        if not out.parent.is_dir():
            raise BadInputError(f"{out.parent}: no such folder")
        audit.log(ws.con, by, "audit.export", file=out.name)
        return audit.export_trail(ws.con, out)
    n = _run(workspace, run)
    say(f"{n} audit entries written to {out}")


@audit_group.command("show")
@click.option("--user", default=None, help="Entries of this user.")
@click.option("--record", default=None, help="Entries naming this record.")
@click.option("--json", "as_json", is_flag=True)
@_AS
@workspace_option
def audit_show(user: str | None, record: str | None, as_json: bool, by: str,
               workspace: Path | None) -> None:
    """Entries of one user and/or naming one record (an admin reviews the entries of
    their agency's users; audited).

    Example: darkmap audit show --user ben --as ana
    """
    from darkmap.ops import access, audit  # noqa: PLC0415

    def read(ws: Space) -> list[dict[str, Any]]:
        actor = access.acting(ws.con, by)
        if actor.role != "admin":
            audit.log(ws.con, by, "audit.show", "denied")
            raise access.AccessDenied(f"{by} is {actor.role}: only an admin reviews the audit")
        entries = audit.entries_for(ws.con, actor, user, record)
        audit.log(ws.con, by, "audit.show", user=user, record=record)
        return entries
    entries = _run(workspace, read)
    if as_json:
        emit_json(entries)
        return
    for e in entries:
        what = e.get("record") or ",".join(e.get("records", [])[:5]) or e.get("compartment", "")
        role = e.get("connected_as")  # team server: the login role, when not the actor
        via = f" (connected as {short(role, 40)})" if role and role != e["actor"] else ""
        say(f"{e['seq']:>6d} {e['at']} {cell(e['actor'], 24)} {e['action']:22s} "
            f"{e['outcome']:9s} {short(what, 80)}{via}")


# -- deconfliction -------------------------------------------------------------------------


@main.group("deconflict")
def deconflict_group() -> None:
    """Target and event deconfliction. Example: darkmap deconflict notices --as ana"""


@deconflict_group.command("submit")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--hashed", is_flag=True, help="Values are HMAC-SHA256 hex (task-force key).")
@click.option("--compartment", required=True)
@_AS
@workspace_option
def submit_cmd(file: Path, hashed: bool, compartment: str, by: str,
               workspace: Path | None) -> None:
    """Submit selectors (CSV kind,value; raw, or --hashed as `deconflict hash` writes them:
    kind,value,form, a line without a form exact) for a compartment; matches with another
    agency notify both, no case details crossing (and with another compartment of your
    agency that you may not read, both compartments, naming whom to call).

    Example: darkmap deconflict submit --hashed partner.csv --compartment nl-1 --as piet
    """
    from darkmap.ops import deconflict  # noqa: PLC0415

    rows: list[tuple[str, ...]] = (list(deconflict.read_hashed(file)) if hashed
                                   else list(deconflict.read_selectors(file)))
    where = deconflict.selector_lines(file)
    out = _run(workspace, lambda ws: deconflict.submit(ws, by, compartment, rows, hashed,
                                                       where))
    say(f"{out.selectors} selectors taken, {out.notices} notices sent")


@deconflict_group.command("hash")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--key", "key_file", type=click.Path(path_type=Path, dir_okay=False,
              exists=True), required=True, help="The task-force key file.")
def hash_cmd(file: Path, key_file: Path) -> None:
    """Hash raw selectors (CSV kind,value) with the task-force key, for --hashed: lines
    kind,value,form (a market:handle also as its bare handle, form bare).

    Example: darkmap deconflict hash raw.csv --key taskforce.key > hashed.csv
    """
    from darkmap.ops import deconflict  # noqa: PLC0415

    hashed = deconflict.hash_file(key_file, file)  # all checked before a line is printed
    say("kind,value,form")
    for kind, value, form in hashed:
        say(f"{kind},{value},{form}")


@deconflict_group.command("key")
@click.option("--out", "-o", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="A new file (written with mode 0600).")
@_AS
@workspace_option
def key_cmd(out: Path, by: str, workspace: Path | None) -> None:
    """Write the task-force key (the workspace's, or the team server's) for a partner
    that submits hashed selectors; admins only, audited.

    Example: darkmap deconflict key --out partner.key --as ana
    """
    from darkmap.ops import deconflict  # noqa: PLC0415

    outside_workspace(out, workspace)
    _run(workspace, lambda ws: deconflict.write_key(ws, by, out))
    say(f"task-force key written to {out}: hand it over in person or sealed")


@deconflict_group.command("event")
@click.option("--kind", type=click.Choice(EVENT_KINDS), required=True)
@click.option("--compartment", required=True)
@click.option("--start", type=click.DateTime(_EVENT_TIMES), required=True,
              help="UTC, to the minute or second.")
@click.option("--end", type=_WindowEnd(_EVENT_TIMES), required=True,
              help="UTC, to the minute or second; a date alone means the end of that day. "
                   f"At most {MAX_EVENT_DAYS} days after --start.")
@click.option("--lat", type=FiniteFloat(min=-90, max=90), default=None)
@click.option("--lon", type=FiniteFloat(min=-180, max=180), default=None)
@click.option("--postal-area", default=None)
@click.option("--within-m", type=FiniteFloat(min=0, max=MAX_DISTANCE_M),
              default=DEFAULT_DISTANCE_M, show_default=True,
              help=f"Distance (metres) under which two events conflict; at most "
                   f"{MAX_DISTANCE_M:,.0f}.")
@_AS
@workspace_option
def event_cmd(kind: str, compartment: str, start: datetime, end: datetime, lat: float | None,
              lon: float | None, postal_area: str | None, within_m: float, by: str,
              workspace: Path | None) -> None:
    """Plan an action; a clash with another agency's event notifies both at once (and
    with an event of another compartment of your agency you may not read, both
    compartments).

    The other agency's notice counts the events of your agency that hit its event.

    Example: darkmap deconflict event --kind search_warrant --compartment c1
    --start 2026-05-01T06:00 --end 2026-05-01T09:00 --lat 52.37 --lon 4.89 --as piet
    """
    from darkmap.ops import deconflict  # noqa: PLC0415

    eid, conflicts = _run(workspace, lambda ws: deconflict.add_event(
        ws, by, kind, compartment, start, end, lat, lon, postal_area, within_m))
    say(f"event {eid} planned; {len(conflicts)} conflicts")
    for c in conflicts:
        how = "" if c.placed else f" ({deconflict.UNPLACED})"
        who = (f"an event of another compartment of {short(c.other_agency, 60)} (you may "
               "not read it)" if c.within_agency else c.other_agency)
        say(f"  conflict with {who}{how}; contact {short(c.other_contact, 120)}")


@deconflict_group.command("notices")
@click.option("--json", "as_json", is_flag=True)
@_AS
@workspace_option
def notices_cmd(as_json: bool, by: str, workspace: Path | None) -> None:
    """Deconfliction notices to your agency (and to its compartments you may read).

    Example: darkmap deconflict notices --as ana
    """
    from darkmap.ops import deconflict  # noqa: PLC0415

    rows = _run(workspace, lambda ws: deconflict.notices(ws, by))
    if as_json:
        emit_json([r._asdict() for r in rows])
        return
    for n in rows:
        state = f"acked by {n.acked_by}" if n.acked_by else "open"
        who = (f"another compartment of {short(n.other_agency, 60)}" if n.to_compartment
               else short(n.other_agency, 60))
        for line in _wrapped(f"{n.notice_id} {n.kind:8s} {short(n.subject, _SUBJECT_MAX)}: "
                             f"{who} has an interest; contact "
                             f"{short(n.other_contact, 100)} [{state}]"):
            say(line)


_NOTICE_WIDTH = 100
"""The columns a notice's line takes before it wraps."""
_SUBJECT_MAX = 400
"""The most of a notice's subject shown: far past any darkmap writes (an event's, with the
count of hits, is about 120 characters), a bound on an agency id of any length."""


def _wrapped(text: str) -> list[str]:
    """``text`` in lines of at most :data:`_NOTICE_WIDTH` columns, continued lines
    indented. A notice's subject was cut at 60 characters, and an event's lost its count
    of hits ("overlaps in time and place with an..."), the one figure that shows fishing
    (found by an audit). Ids are never broken (no break at their hyphens)."""
    return textwrap.wrap(text, _NOTICE_WIDTH, subsequent_indent="    ",
                         break_long_words=False, break_on_hyphens=False) or [text]


@deconflict_group.command("ack")
@click.argument("notice_id")
@_AS
@workspace_option
def ack_cmd(notice_id: str, by: str, workspace: Path | None) -> None:
    """Acknowledge a notice to your agency.

    Example: darkmap deconflict ack 3f2a9c0d1e2b4a5f --as ana
    """
    from darkmap.ops import deconflict  # noqa: PLC0415

    _run(workspace, lambda ws: deconflict.acknowledge(ws, by, notice_id))
    say(f"notice {notice_id} acknowledged")



@main.command("package")
@click.option("--country", required=True, help="ISO 3166 two-letter code.")
@click.option("--out", "-o", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="A new or empty folder.")
@_AS
@workspace_option
def package_cmd(country: str, out: Path, by: str, workspace: Path | None) -> None:
    """A country's package: personas attributed there (with the evidence), accounts,
    listings and drug assessments, their wallets (clusters, tags, merge reasons) and the
    flows traced from them to cash-out points, the operational records you may read,
    fentanyl marks, deconfliction contacts; package.json, package.html and
    entities.ftm.json (FollowTheMoney, stock schemata) (audited).

    Example: darkmap package --country DE --out pkg-de --as ana
    """
    from darkmap.export import ftm_subgraph  # noqa: PLC0415 - the exporter loads slowly
    from darkmap.ops import package  # noqa: PLC0415

    outside_workspace(out, workspace)
    counts = _run(workspace, lambda ws: package.build_package(ws, by, country, out,
                                                              ftm_subgraph), hold=False)
    say(f"package for {country.upper()} in {out}: " +
        ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items()))
    bundle = json.loads((out / "package.json").read_text(encoding="utf-8"))
    for missing in bundle.get("not_included") or []:
        say(f"  not included: {missing}")
