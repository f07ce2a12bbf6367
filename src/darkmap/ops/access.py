"""Who may do what: agencies, users, compartments and grants, enforced in the library.

A user belongs to an agency (of a country) and has a role: ``admin`` (manages the users
and compartments of the agency and grants on them), ``officer`` (reads and writes records
through grants) or ``reader`` (reads only). Every compartment is created with the grants
of its kind:

- ``agency``: the owning agency, write;
- ``group``: each agency of the named sharing group, write;
- ``taskforce``: every agency of the task force (``*``), write;
- ``case``: the named users of the case team (the creator at least), write.

Further grants (to a user or an agency, read or write) are added by an admin of the
owning agency. Every change here is audited (:mod:`darkmap.ops.audit`); a refused one
too, with the outcome ``denied``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NamedTuple

from darkmap.errors import BadInputError, DarkmapError, NotFoundError
from darkmap.model.countries import check_country
from darkmap.ops.audit import log
from darkmap.ops.vocabulary import COMPARTMENT_KINDS, ROLES
from darkmap.store import operations as store
from darkmap.store.operations import AgencyRow, CompartmentRow, Con, GrantRow, UserRow
from darkmap.store.workspace import utcnow

__all__ = ["COMPARTMENT_KINDS", "COMPARTMENT_PREFIX", "ROLES", "AccessDenied",
           "CompartmentView", "UserView", "acting", "add_agency", "add_compartment",
           "add_user", "check_access", "grant", "list_agencies", "list_compartments",
           "list_users", "new_compartment_id", "revoke", "still_acting", "unit"]

COMPARTMENT_PREFIX = "cmp-"
"""What a generated compartment id starts with (:func:`new_compartment_id`)."""
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


class AccessDenied(DarkmapError):
    """The acting user holds no grant (or no role) for what was asked."""


@contextmanager
def unit(con: Con) -> Iterator[None]:
    """One transaction for a change and its audit entry; a refusal keeps its entry."""
    with store.transaction(con, keep=(AccessDenied,)):
        yield


def _check_id(value: str, what: str) -> str:
    """An identifier: letters, digits, ``_ . @ -``, at most 64."""
    if not _ID_RE.match(value):
        raise BadInputError(f"{what} {value!r}: use letters, digits, _ . @ - (at most 64)")
    return value


def acting(con: Con, user_id: str, *, suspended_ok: bool = False) -> UserRow:
    """The acting user; an unknown one is refused (and audited), and so is a suspended
    one unless ``suspended_ok`` (the user a new sign-in reinstates). On the team server
    the user is the database role the server authenticated: a connection acts only as
    its own role, unless that role is a front end trusted to authenticate users
    (``darkmap_ops_service``)."""
    if not store.acts_for(con, user_id):
        role = store.session_role(con)
        log(con, user_id, "authenticate", "denied", role=role)
        raise AccessDenied(f"the server authenticated role {role!r}, which may not act as "
                           f"{user_id!r}")
    found = store.user(con, user_id)
    if found is None:
        log(con, user_id, "authenticate", "denied")
        raise AccessDenied(
            f"unknown user {user_id!r}: no user has that id. `darkmap ops user list --as "
            "YOU` lists your agency's users (another agency's: ask its contact, `darkmap "
            "ops agency list`); an admin of your agency adds users (`darkmap ops user add`)")
    held = None if suspended_ok else store.suspension(con, user_id)
    if held is not None:
        log(con, user_id, "authenticate", "denied", suspended=True)
        raise AccessDenied(
            f"user {user_id!r} is suspended (by {held.suspended_by}, "
            f"{held.suspended_at:%Y-%m-%d %H:%M} UTC): an admin of the agency reinstates "
            "them by giving a new sign-in (`darkmap serve-user`)")
    return found


def _setup_actor(con: Con, user_id: str) -> UserRow | None:
    """The acting admin; ``None`` during set-up (no user yet: the first agency and its
    first admin are created by whoever runs the set-up, named in the audit)."""
    if not store.any_user(con):
        return None
    actor = acting(con, user_id)
    if actor.role != "admin":
        log(con, user_id, "admin", "denied")
        raise AccessDenied(f"{user_id} is {actor.role}, not admin")
    return actor


def add_agency(con: Con, by: str, agency_id: str, name: str,
               country: str, contact: str) -> AgencyRow:
    """Add an agency of the task force (by an admin, or anyone during set-up)."""
    _check_id(agency_id, "agency")
    country = check_country(country)
    if not contact.strip():
        raise BadInputError("an agency needs a deconfliction contact")
    with unit(con):
        _setup_actor(con, by)
        same = store.agency_like(con, agency_id)
        if same is not None:
            raise BadInputError(_taken("agency", agency_id, same))
        row = AgencyRow(agency_id, name or agency_id, country, contact)
        store.insert_agency(con, row, by, utcnow())
        log(con, by, "agency.add", agency=agency_id, country=country)
    return row


def _taken(what: str, asked: str, existing: str) -> str:
    """Why an agency or user id is refused: ``existing`` has it, regardless of case (an
    admin added agency FBI beside fbi, and a grant typed FBI went to the look-alike:
    found by an audit)."""
    if asked == existing:
        return f"{what} {asked} exists already"
    return (f"{what} {asked}: {what} {existing!r} exists already ({what} ids are one "
            "regardless of case); choose another id")


def add_user(con: Con, by: str, user_id: str, agency_id: str,
             role: str) -> UserRow:
    """Add a user to an agency: by an admin of that agency; the first user of a new
    agency by an admin of any agency (onboarding a partner); anyone during set-up."""
    _check_id(user_id, "user")
    if role not in ROLES:
        raise BadInputError(f"role {role!r}: one of {', '.join(ROLES)}")
    with unit(con):
        actor = _setup_actor(con, by)
        ag = store.agency(con, agency_id)
        if ag is None:
            raise NotFoundError(f"no agency {agency_id!r}")
        onboarding = not store.agency_has_users(con, agency_id)
        if actor is not None and actor.agency_id != agency_id and not onboarding:
            log(con, by, "user.add", "denied", user=user_id, agency=agency_id)
            raise AccessDenied(f"{by} is an admin of {actor.agency_id}, not of {agency_id}")
        same = store.user_like(con, user_id)
        if same is not None:
            raise BadInputError(_taken("user", user_id, same))
        store.insert_user(con, user_id, agency_id, role, by, utcnow())
        log(con, by, "user.add", user=user_id, agency=agency_id, role=role)
    return UserRow(user_id, agency_id, role, ag.country)


def new_compartment_id(kind: str) -> str:
    """A generated compartment id: ``cmp-KIND-`` and 10 hex digits. Record ids are
    ``KIND-`` and 12 (a case ``case-...``), so a case and its own compartment no longer
    look alike; ids generated before (``case-4a28d3041c``) and ids given with ``--id``
    stay valid (an id is looked up as it is written)."""
    return f"{COMPARTMENT_PREFIX}{kind}-{uuid.uuid4().hex[:10]}"


def add_compartment(con: Con, by: str, kind: str, name: str,
                    members: Sequence[str] = (), compartment_id: str | None = None
                    ) -> CompartmentRow:
    """Create a compartment owned by the actor's agency with the grants of its kind
    (``members``: the agencies of a sharing group, or the users of a case team). Any
    officer or admin may create one."""
    if kind not in COMPARTMENT_KINDS:
        raise BadInputError(f"compartment kind {kind!r}: one of {', '.join(COMPARTMENT_KINDS)}")
    cid = _check_id(compartment_id or new_compartment_id(kind), "compartment")
    with unit(con):
        actor = acting(con, by)
        if actor.role == "reader":
            log(con, by, "compartment.add", "denied", compartment=cid)
            raise AccessDenied(f"{by} is a reader and may not create compartments")
        if store.compartment_taken(con, cid):
            # the same answer whoever owns it: compartment ids are one namespace of the
            # task force; the answer tells that the id is used, never by whom, what kind
            # or under what name (docs/operations.md, "Records": compartment ids)
            raise BadInputError(f"compartment id {cid!r} is taken (compartment ids are "
                                "shared by the whole task force); choose another or leave "
                                "out --id for a generated one")
        grants = _initial_grants(con, actor, kind, cid, members)
        row = CompartmentRow(cid, kind, name or cid, actor.agency_id)
        now = utcnow()
        store.insert_compartment(con, row, by, now)
        for g in grants:
            store.put_grant(con, g, by, now)
        log(con, by, "compartment.add", compartment=cid, kind=kind,
            grants=[f"{g.grantee_kind}:{g.grantee}:{g.access}" for g in grants])
    return row


def _initial_grants(con: Con, actor: UserRow, kind: str, cid: str,
                    members: Sequence[str]) -> list[GrantRow]:
    """The grants a new compartment of ``kind`` starts with."""
    if kind == "agency":
        return [GrantRow(cid, "agency", actor.agency_id, "write")]
    if kind == "taskforce":
        return [GrantRow(cid, "taskforce", "*", "write")]
    if kind == "group":
        agencies = sorted({actor.agency_id, *members})
        for a in agencies:
            if store.agency(con, a) is None:
                raise NotFoundError(f"no agency {a!r}")
        return [GrantRow(cid, "agency", a, "write") for a in agencies]
    team = sorted({actor.user_id, *members})
    for u in team:
        if not store.user_exists(con, u):
            raise NotFoundError(f"--member {u!r}: no user of that id (`darkmap ops user list` "
                                "lists your agency's; a partner agency's contact gives "
                                "theirs)")
    return [GrantRow(cid, "user", u, "write") for u in team]


def _owner_admin(con: Con, by: str, cid: str,
                 action: str) -> CompartmentRow:
    """The compartment, when ``by`` is an admin of its owning agency (else refused)."""
    actor = acting(con, by)
    comp = store.compartment(con, cid)
    if actor.role != "admin":
        log(con, by, action, "denied", compartment=cid)
        raise AccessDenied(f"{by} is {'an' if actor.role == 'officer' else 'a'} "
                           f"{actor.role}: only an admin of the agency that owns a "
                           "compartment changes its grants")
    if comp is None or actor.agency_id != comp.owner_agency:
        # one answer for a missing compartment and another agency's (found by testing:
        # "ana may not change the grants of compartment X" was said of an id that did
        # not exist, to an admin, and confirmed another agency's that did)
        log(con, by, action, "denied", compartment=cid)
        raise AccessDenied(f"no compartment {cid!r} that {by}'s agency ({actor.agency_id}) "
                           "owns: an admin changes the grants of their own agency's "
                           "compartments (`darkmap ops compartment list` lists those you "
                           "hold a grant on; `ops compartment add --id` makes one)")
    return comp


def grant(con: Con, by: str, compartment_id: str, grantee_kind: str,
          grantee: str, access: str = "read") -> GrantRow:
    """Grant a user, an agency or the whole task force (``*``) read or write access."""
    if grantee_kind not in ("user", "agency", "taskforce") or access not in ("read", "write"):
        raise BadInputError("grant to user|agency|taskforce, access read|write")
    with unit(con):
        _owner_admin(con, by, compartment_id, "grant.add")
        known = (store.user_exists(con, grantee) if grantee_kind == "user" else
                 store.agency(con, grantee) if grantee_kind == "agency" else grantee == "*")
        if not known:
            raise NotFoundError(f"no {grantee_kind} {grantee!r}")
        row = GrantRow(compartment_id, grantee_kind, grantee, access)
        store.put_grant(con, row, by, utcnow())
        log(con, by, "grant.add", compartment=compartment_id,
            grant=f"{grantee_kind}:{grantee}:{access}")
    return row


def revoke(con: Con, by: str, compartment_id: str, grantee_kind: str,
           grantee: str) -> bool:
    """Remove a grant; True if there was one."""
    with unit(con):
        _owner_admin(con, by, compartment_id, "grant.revoke")
        n = store.delete_grant(con, compartment_id, grantee_kind, grantee)
        log(con, by, "grant.revoke", "ok" if n else "not_found",
            compartment=compartment_id, grant=f"{grantee_kind}:{grantee}")
    return bool(n)


class UserView(NamedTuple):
    """A user as another user may see them: ``role`` is ``None`` when hidden
    (:func:`list_users`)."""

    user_id: str
    agency_id: str
    role: str | None


class CompartmentView(NamedTuple):
    """A compartment the acting user holds a grant on: what the user may do there
    (``access``: 'write', or 'read', always for a reader) and every grant on it
    (``KIND:GRANTEE:ACCESS``)."""

    compartment_id: str
    kind: str
    name: str
    owner_agency: str
    access: str
    grants: tuple[str, ...]


def list_agencies(con: Con, by: str) -> list[AgencyRow]:
    """The agencies of the task force with their countries and deconfliction contacts:
    every user sees them (whom to call about a notice, whom to ask for a partner's user
    id). Audited."""
    actor = acting(con, by)
    rows = store.agencies(con)
    log(con, actor.user_id, "agency.list", agencies=[a.agency_id for a in rows])
    return rows


def list_users(con: Con, by: str) -> list[UserView]:
    """The users of the acting user's own agency, the ids ``--as`` and ``--member`` take
    (another agency's users are never listed). An admin sees every role; anyone else the
    admins (whom to ask) and their own role. Audited."""
    actor = acting(con, by)
    rows = store.agency_users(con, actor.agency_id)
    log(con, actor.user_id, "user.list", agency=actor.agency_id,
        users=[u.user_id for u in rows])
    return [UserView(u.user_id, u.agency_id,
                     u.role if actor.role == "admin" or u.role == "admin"
                     or u.user_id == actor.user_id else None) for u in rows]


def list_compartments(con: Con, by: str) -> list[CompartmentView]:
    """The compartments the acting user holds a grant on (to the user, their agency or
    the task force), with what the user may do there and the grants on each (the case
    team, the sharing group); no other compartment is named. Audited."""
    actor = acting(con, by)
    found = store.granted_compartments(con, actor.user_id, actor.agency_id)
    grants: dict[str, list[str]] = {}
    for g in store.grants_on(con, [c.compartment_id for c, _ in found]):
        grants.setdefault(g.compartment_id, []).append(
            f"{g.grantee_kind}:{g.grantee}:{g.access}")
    log(con, actor.user_id, "compartment.list",
        compartments=[c.compartment_id for c, _ in found])
    return [CompartmentView(*c, "read" if actor.role == "reader" else level,
                            tuple(grants.get(c.compartment_id, ()))) for c, level in found]


def still_acting(con: Con, actor: UserRow) -> None:
    """Refuse (and audit) ``actor`` if suspended since :func:`acting` found them: a
    write checks again inside its transaction, under the operational lock that every
    suspension takes (review of the suspension, finding 4: a write that had passed
    :func:`acting` landed after the suspension)."""
    held = store.suspension(con, actor.user_id)
    if held is not None:
        log(con, actor.user_id, "authenticate", "denied", suspended=True)
        raise AccessDenied(f"user {actor.user_id!r} is suspended (by {held.suspended_by}, "
                           f"{held.suspended_at:%Y-%m-%d %H:%M} UTC)")


def check_access(con: Con, actor: UserRow, compartment_id: str,
                 need: str) -> None:
    """Refuse (and audit) unless ``actor`` holds ``need`` ('read' or 'write') on the
    compartment; a reader never writes, nor a user suspended meanwhile
    (:func:`still_acting`)."""
    if need == "write":
        still_acting(con, actor)
    level = store.access_level(con, actor.user_id, actor.agency_id, compartment_id)
    ok = level is not None and (need == "read" or (level == "write" and actor.role != "reader"))
    if not ok:
        log(con, actor.user_id, f"{need}.compartment", "denied", compartment=compartment_id)
        raise AccessDenied(f"{actor.user_id} may not {need} compartment {compartment_id!r}")
