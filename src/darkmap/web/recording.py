"""Recording from the workbench (``/record``): a case, a controlled buy, a parcel, a
seizure or an arrest entered in a form, or posted to ``/api/records`` by a script.

Over a workspace the workbench holds the workspace, so ``darkmap ops KIND add`` cannot run
beside it: an officer who logged a seizure at 2 a.m. had to stop every analyst's
workbench first. The form reads what is typed as the command line does
(:mod:`darkmap.ops.forms`) and records it through the library
(:func:`darkmap.ops.records.add_record`): the same checks (a write grant on the
compartment, the case readable and not withdrawn, provenance given), the same audit
entry (``record.add``) and the same deconfliction of its selectors. The powers follow the
operational role, as the CLI's do: an officer or admin records, a reader does not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from darkmap.errors import BadInputError, NotFoundError
from darkmap.ops import access, records
from darkmap.ops.forms import COMMON, FIELDS, read_form
from darkmap.ops.records import Buy
from darkmap.ops.vocabulary import RECORD_KINDS
from darkmap.store.operations import RecordRow, Space, UserRow

__all__ = ["CASES_LISTED", "RECORD_ID", "added_view", "form_view", "record_from_form"]

CASES_LISTED = 200
"""The most cases the form offers to choose from (the newest; any other is typed)."""

RECORD_ID = re.compile(r"(?:case|buy|parcel|seizure|arrest)-[0-9a-f]{12}")
"""A record id as :func:`darkmap.ops.records.add_record` makes them."""


def form_view(ops: Space, user: UserRow, kind: str) -> dict[str, Any]:
    """The record form of ``kind``: its fields, the compartments ``user`` may write and
    the newest cases they may read (both audited reads, as ``ops compartment list`` and
    ``ops show --kind case``). A reader is shown no form."""
    if kind not in FIELDS:
        raise BadInputError(f"record kind {kind[:40]!r}: one of {', '.join(RECORD_KINDS)}")
    out: dict[str, Any] = {"kind": kind, "kinds": RECORD_KINDS, "fields": FIELDS[kind],
                           "common": COMMON, "may_write": user.role != "reader",
                           "compartments": [], "cases": []}
    if not out["may_write"]:
        return out
    out["compartments"] = [c for c in access.list_compartments(ops.con, user.user_id)
                           if c.access == "write"]
    cases = records.read_records(ops, user.user_id, "case")
    out["cases"] = [(r.row.record_id, str(r.row.data.get("title", "")))
                    for r in sorted(cases, key=lambda r: r.row.created_at,
                                    reverse=True)[:CASES_LISTED]]
    return out


def record_from_form(ops: Space, by: str, kind: str,
                     fields: Mapping[str, str]) -> tuple[RecordRow, list[str]]:
    """Record what the form gave (``fields`` by name): the stored row and the warnings of
    its links (a target the workspace does not hold, a buy whose listing leads nowhere)."""
    form = read_form(kind, fields)
    row = records.add_record(ops, by, form.detail, compartment=form.compartment,
                             case_id=form.case_id, operation=form.operation,
                             occurred_on=form.occurred_on, country=form.country,
                             provenance=form.provenance, links=form.links,
                             members=form.members)
    return row, warnings_of(ops, row.kind, form.links, form.detail)


def warnings_of(ops: Space, kind: str, links: Any, detail: Any) -> list[str]:
    """What ``darkmap ops KIND add`` says after recording: a warning for each link to
    nothing the workspace holds, and for a buy where its listing leads (the vendor a
    fentanyl result marks, or a warning that the listing is in no capture)."""
    own = ("listing", detail.listing) if isinstance(detail, Buy) else None
    out = records.link_warnings(ops, kind, [k for k in links if k != own])
    if isinstance(detail, Buy):
        out.append(records.buy_reaches(ops, detail))
    return out


def added_view(ops: Space, user: UserRow, record_id: str) -> dict[str, Any] | None:
    """What the cases page says of a record just added (``?added=ID``): its id, kind and
    compartment, and the warnings of its links; None for an id not in the shape of one
    (the query is anyone's to write), a record the user may not read, did not write, or
    that is withdrawn."""
    if not RECORD_ID.fullmatch(record_id):
        return None
    try:
        rec = records.show_record(ops, user.user_id, record_id)
    except NotFoundError:
        return None
    if rec.row.author != user.user_id or rec.withdrawal is not None:
        return None   # not one the user just made (review of the record form, 8)
    detail = _detail_of(rec)
    return {"record_id": rec.row.record_id, "kind": rec.row.kind,
            "compartment": rec.row.compartment_id,
            "said": warnings_of(ops, rec.row.kind, list(rec.links), detail)}


def _detail_of(rec: records.Record) -> Any:
    """A buy as :func:`warnings_of` reads it (its listing and lab result); None for the
    other kinds."""
    if rec.row.kind != "buy":
        return None
    lab = rec.lab or {}
    return Buy(str(rec.row.data.get("listing", "")),
               lab=records.LabResult(str(lab["substance"])) if lab.get("substance") else None)
