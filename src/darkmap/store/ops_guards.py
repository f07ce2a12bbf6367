"""Who may read and write what on the team server, enforced by PostgreSQL itself.

The library checks every grant before it reads or writes (:mod:`darkmap.ops.access`), but
each user of the team server connects with a login role of their own and could bypass the
library with ``psql``. Row-level security repeats the library's rules on every
operational table, so that a member reads and writes through ``psql`` no more than
through darkmap:

- *reading*: a record (with its links, seizure items and lab result), a selector and a
  planned event only in a compartment the user holds a grant on; a compartment and its
  grants also when the user's agency owns it; only the agency's own notices and users.
  The agencies stay a directory every member reads (whom to call about a notice).
- *writing*: an agency or user by an admin (a user of one's own agency, or the first of a
  new one); a compartment owned by one's agency, by an officer or admin; a grant by an
  admin of the owning agency, or by the compartment's creator in the transaction that
  created it (its initial grants); a record, selector or event in one's own name and
  agency, in a compartment one may write (a reader never writes), with its ``record.add``
  audit entry in the same transaction; a selector naming a record only with that record
  (its author, in its transaction and compartment); links, items and lab results only with the
  record, in the transaction that inserted it, by its author who may still write its
  compartment (items only on a seizure, a lab result only on a buy, links of a known
  kind); a withdrawal of a record by its author or an admin of its agency who may
  still write its compartment, with its ``record.withdraw`` audit entry in the same
  transaction; a notice only to or about one's own agency, naming
  the other agency's registered contact, never one addressed to a compartment (a match
  within the agency: the server writes those); an acknowledgement of one's agency's
  notice in one's own name (of one addressed to a compartment, only by a user who may
  read that compartment, as only such users read it).
- *suspended* (schema 11): a user an admin suspended (``ops_suspended``, which only the
  front end writes) has no agency, role or grant: their own login role reads of the
  operational records only their own user row and suspension (and what every member
  reads: the agencies' directory, the reported figures, the audit head and archives),
  not the task force's key, writes nothing, compares nothing, and appends to the audit
  trail only refusals (``authenticate``, ``denied``: a refused attempt stays on
  record); the front end ends their open connections when it suspends them
  (``ops_end_connections``).

Deconfliction must compare one agency's selectors and events with everyone's, which no
member may read. Two ``SECURITY DEFINER`` functions do it on the server
(``ops_selector_matches``, ``ops_event_clashes``; :func:`darkmap.store.operations.
selector_matches` and :func:`~darkmap.store.operations.event_clashes` call them): they
answer only for selectors the caller's agency stored in a compartment the caller may
write, match only rows that stand (a direct submission, or a record not withdrawn), and
for events the caller stored (so every probe leaves its row, naming who stored it and when),
answer no more than the library tells (the other agency, never its
compartment, place or time), cap the distance at
:data:`EVENT_RADIUS_CAP_M`, and write the notices to both agencies
themselves: a client that skips them still leaves the other agency its notice. They
compare the agency's other compartments too (schema 10), those the storing user may not
read, answering for them only the contact (the user who created that compartment) and
writing both compartments' notices.

A member of ``darkmap_ops_service`` (a front end that authenticates users itself) passes
every check; the library then filters for the user it acts for.
"""

from __future__ import annotations

from typing import Any

import psycopg

from darkmap.store.operations import (
    BARE_MATCH,
    OPS_ROLE,
    SERVICE_ROLE,
    UNPLACED,
    WITHIN_AGENCY,
    WITHIN_TAIL,
)
from darkmap.store.operations import live_selector as _live

__all__ = ["EVENT_MAX_DAYS", "EVENT_RADIUS_CAP_M", "EVENT_RADIUS_DEFAULT_M", "LINK_KINDS",
           "PG_GUARDS", "install"]

LINK_KINDS = ("persona", "account", "listing", "wallet", "address")
"""What a record may link to, as :data:`darkmap.ops.vocabulary.LINK_KINDS` (a test holds
them equal; the store does not import the operations layer)."""

EVENT_RADIUS_CAP_M = 5000.0
"""The widest radius the server compares events within, whatever a caller asks: the
same as :data:`darkmap.ops.vocabulary.MAX_DISTANCE_M` (a test holds them equal; the store
does not import the operations layer)."""

EVENT_MAX_DAYS = 31
"""The longest window of an event the server compares: an event stored with a longer one
(by a client that skipped the check) is compared with nothing. The same as
:data:`darkmap.ops.vocabulary.MAX_EVENT_DAYS` (a test holds them equal)."""

EVENT_RADIUS_DEFAULT_M = 1000.0
"""The radius of another agency's event that the server never compared (a client that
skipped the comparison left it unset): :data:`darkmap.ops.vocabulary.DEFAULT_DISTANCE_M`
(a test holds them equal)."""

SAFE_PATH = "SET search_path = pg_catalog, public, pg_temp"
"""The search path of every function on the server. ``pg_temp`` named last: unnamed, it
is searched first for tables, so a member's temporary table ``ops_users`` stood in for
the real one inside the definer functions, and a reader of one agency read, and wrote
as, another (found by testing)."""
_DEFINER = f"STABLE SECURITY DEFINER {SAFE_PATH}"
_WRITER = f"VOLATILE SECURITY DEFINER {SAFE_PATH}"

_FUNCTIONS = f"""
CREATE OR REPLACE FUNCTION ops_is_service() RETURNS BOOLEAN
LANGUAGE sql STABLE {SAFE_PATH} AS $$
    SELECT pg_has_role(session_user, '{SERVICE_ROLE}', 'MEMBER')
$$;
-- schema 11: a suspended user has no agency or role (every policy that asks for one
-- refuses them) and no grant, not even the task force's
CREATE OR REPLACE FUNCTION ops_suspended_me() RETURNS BOOLEAN LANGUAGE sql {_DEFINER} AS $$
    SELECT EXISTS (SELECT 1 FROM ops_suspended s WHERE s.user_id = session_user::text)
$$;
CREATE OR REPLACE FUNCTION ops_my_agency() RETURNS TEXT LANGUAGE sql {_DEFINER} AS $$
    SELECT u.agency_id FROM ops_users u WHERE u.user_id = session_user::text
       AND NOT EXISTS (SELECT 1 FROM ops_suspended s WHERE s.user_id = u.user_id)
$$;
CREATE OR REPLACE FUNCTION ops_my_role() RETURNS TEXT LANGUAGE sql {_DEFINER} AS $$
    SELECT u.role FROM ops_users u WHERE u.user_id = session_user::text
       AND NOT EXISTS (SELECT 1 FROM ops_suspended s WHERE s.user_id = u.user_id)
$$;
CREATE OR REPLACE FUNCTION ops_any_user() RETURNS BOOLEAN LANGUAGE sql {_DEFINER} AS $$
    SELECT EXISTS (SELECT 1 FROM ops_users)
$$;
CREATE OR REPLACE FUNCTION ops_user_exists(who TEXT) RETURNS BOOLEAN
LANGUAGE sql {_DEFINER} AS $$
    SELECT EXISTS (SELECT 1 FROM ops_users u WHERE u.user_id = who)
$$;
-- the user whose id is ``who`` regardless of case (ids are one regardless of case: an
-- admin added agency FBI beside fbi, and a grant typed FBI went to the look-alike,
-- found by an audit); the unique indexes below hold it for a member in psql too
CREATE OR REPLACE FUNCTION ops_user_like(who TEXT) RETURNS TEXT
LANGUAGE sql {_DEFINER} AS $$
    SELECT min(u.user_id) FROM ops_users u WHERE lower(u.user_id) = lower(who)
$$;
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM ops_agencies GROUP BY lower(agency_id)
                   HAVING count(*) > 1) THEN
        CREATE UNIQUE INDEX IF NOT EXISTS ops_agencies_nocase ON ops_agencies
            (lower(agency_id));
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ops_users GROUP BY lower(user_id) HAVING count(*) > 1) THEN
        CREATE UNIQUE INDEX IF NOT EXISTS ops_users_nocase ON ops_users (lower(user_id));
    END IF;
END $$;
CREATE OR REPLACE FUNCTION ops_agency_has_users(agency TEXT) RETURNS BOOLEAN
LANGUAGE sql {_DEFINER} AS $$
    SELECT EXISTS (SELECT 1 FROM ops_users u WHERE u.agency_id = agency)
$$;
CREATE OR REPLACE FUNCTION ops_granted(level INTEGER) RETURNS SETOF TEXT
LANGUAGE sql {_DEFINER} AS $$
    SELECT g.compartment_id FROM ops_grants g
    WHERE ((g.grantee_kind = 'user' AND g.grantee = session_user::text)
           OR (g.grantee_kind = 'agency' AND g.grantee = (SELECT ops_my_agency()))
           OR g.grantee_kind = 'taskforce')
      AND (level = 1 OR (g.access = 'write'
                         AND coalesce((SELECT ops_my_role()), 'reader') <> 'reader'))
      AND NOT (SELECT ops_suspended_me())
$$;
CREATE OR REPLACE FUNCTION ops_owned() RETURNS SETOF TEXT LANGUAGE sql {_DEFINER} AS $$
    SELECT c.compartment_id FROM ops_compartments c
    WHERE c.owner_agency = (SELECT ops_my_agency())
$$;
CREATE OR REPLACE FUNCTION ops_may_grant(compartment TEXT) RETURNS BOOLEAN
LANGUAGE sql {_DEFINER} AS $$
    SELECT ops_is_service()
        OR (ops_my_role() = 'admin' AND compartment IN (SELECT ops_owned()))
        OR EXISTS (SELECT 1 FROM ops_compartments c WHERE c.compartment_id = compartment
                   AND c.created_by = session_user::text
                   AND c.xmin = pg_current_xact_id()::xid)
$$;
CREATE OR REPLACE FUNCTION ops_compartment_taken(compartment TEXT) RETURNS BOOLEAN
LANGUAGE sql {_DEFINER} AS $$
    SELECT EXISTS (SELECT 1 FROM ops_compartments c WHERE c.compartment_id = compartment)
$$;
-- the transaction that inserted each record, stamped by the server whatever the row
-- says (members may not update a record): its links, items and lab result go in with it
ALTER TABLE ops_records ADD COLUMN IF NOT EXISTS created_xact XID8;
CREATE OR REPLACE FUNCTION ops_records_stamp() RETURNS trigger
LANGUAGE plpgsql {SAFE_PATH} AS $$
BEGIN
    NEW.created_xact := pg_current_xact_id();
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS ops_records_stamp ON ops_records;
CREATE TRIGGER ops_records_stamp BEFORE INSERT ON ops_records
    FOR EACH ROW EXECUTE FUNCTION ops_records_stamp();
CREATE OR REPLACE FUNCTION ops_adding_to(record TEXT, record_kind TEXT) RETURNS BOOLEAN
LANGUAGE sql {_DEFINER} AS $$
    SELECT EXISTS (SELECT 1 FROM ops_records r WHERE r.record_id = record
                   AND r.author = session_user::text AND r.agency_id = ops_my_agency()
                   AND r.created_xact = pg_current_xact_id()
                   AND (record_kind IS NULL OR r.kind = record_kind)
                   AND r.compartment_id IN (SELECT ops_granted(2)))
$$;
-- a member's record goes in with its `record.add` audit entry, appended by the same
-- login role before the transaction commits (a record written in psql without one
-- left no trace that `audit verify` could miss)
CREATE OR REPLACE FUNCTION ops_records_audited() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER {SAFE_PATH} AS $$
BEGIN
    IF ops_is_service() OR NOT pg_has_role(session_user, '{OPS_ROLE}', 'MEMBER') THEN
        RETURN NULL;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ops_audit a WHERE a.action = 'record.add'
                   AND ops_audit_field(a.entry, 'record') = NEW.record_id
                   AND a.db_role = session_user::text) THEN
        RAISE EXCEPTION 'record % was added without its audit entry (record.add)',
            NEW.record_id USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS ops_records_audited ON ops_records;
CREATE CONSTRAINT TRIGGER ops_records_audited AFTER INSERT ON ops_records
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ops_records_audited();
-- a withdrawal (schema 8): by the record's author or an admin of its agency, who may
-- still write its compartment; stamped with the server's clock; with its
-- `record.withdraw` audit entry appended by the same login role in the transaction
CREATE OR REPLACE FUNCTION ops_may_withdraw(record TEXT) RETURNS BOOLEAN
LANGUAGE sql {_DEFINER} AS $$
    SELECT EXISTS (SELECT 1 FROM ops_records r WHERE r.record_id = record
                   AND (r.author = session_user::text
                        OR (ops_my_role() = 'admin' AND r.agency_id = ops_my_agency()))
                   AND r.compartment_id IN (SELECT ops_granted(2)))
$$;
CREATE OR REPLACE FUNCTION ops_withdrawals_stamp() RETURNS trigger
LANGUAGE plpgsql {SAFE_PATH} AS $$
BEGIN
    NEW.withdrawn_at := now() AT TIME ZONE 'UTC';
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS ops_withdrawals_stamp ON ops_withdrawals;
CREATE TRIGGER ops_withdrawals_stamp BEFORE INSERT ON ops_withdrawals
    FOR EACH ROW EXECUTE FUNCTION ops_withdrawals_stamp();
CREATE OR REPLACE FUNCTION ops_withdrawals_audited() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER {SAFE_PATH} AS $$
BEGIN
    IF ops_is_service() OR NOT pg_has_role(session_user, '{OPS_ROLE}', 'MEMBER') THEN
        RETURN NULL;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ops_audit a WHERE a.action = 'record.withdraw'
                   AND ops_audit_field(a.entry, 'record') = NEW.record_id
                   AND ops_audit_field(a.entry, 'outcome') = 'ok'
                   AND a.db_role = session_user::text) THEN
        RAISE EXCEPTION 'record % was withdrawn without its audit entry (record.withdraw)',
            NEW.record_id USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS ops_withdrawals_audited ON ops_withdrawals;
CREATE CONSTRAINT TRIGGER ops_withdrawals_audited AFTER INSERT ON ops_withdrawals
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ops_withdrawals_audited();
CREATE OR REPLACE FUNCTION ops_contact(agency TEXT) RETURNS TEXT
LANGUAGE sql {_DEFINER} AS $$
    SELECT coalesce((SELECT a.contact FROM ops_agencies a WHERE a.agency_id = agency), '')
$$;
CREATE OR REPLACE FUNCTION ops_notice_id(kind TEXT, subject TEXT, to_agency TEXT,
                                         other TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE AS $$
    SELECT left(encode(sha256(convert_to(kind || '|' || subject || '|' || to_agency || '|'
                                         || other, 'UTF8')), 'hex'), 16)
$$;
CREATE OR REPLACE FUNCTION ops_haversine_m(lat1 DOUBLE PRECISION, lon1 DOUBLE PRECISION,
                                           lat2 DOUBLE PRECISION, lon2 DOUBLE PRECISION)
RETURNS DOUBLE PRECISION LANGUAGE sql IMMUTABLE AS $$
    SELECT 2 * 6371008.8 * asin(least(1.0, sqrt(
        sin((radians(lat2) - radians(lat1)) / 2) ^ 2
        + cos(radians(lat1)) * cos(radians(lat2)) * sin(radians(lon2 - lon1) / 2) ^ 2)))
$$;
CREATE OR REPLACE FUNCTION ops_postal_key(area TEXT) RETURNS TEXT
LANGUAGE sql STABLE AS $$
    SELECT btrim(regexp_replace(replace(replace(lower(
        CASE WHEN current_setting('server_encoding') = 'UTF8'
             THEN normalize(area, NFKC) ELSE area END), 'ß', 'ss'), 'ς', 'σ'),
        '[\\s,.;]+', ' ', 'g'))
$$;

-- schema 10: whether user ``who`` may read a compartment (a grant to the user, its
-- agency or the task force), and whom to call about a compartment (the user who created
-- it): what a match within one agency asks; neither answers a member directly
CREATE OR REPLACE FUNCTION ops_user_reads(who TEXT, compartment TEXT) RETURNS BOOLEAN
LANGUAGE sql {_DEFINER} AS $$
    SELECT EXISTS (SELECT 1 FROM ops_grants g WHERE g.compartment_id = compartment
                   AND ((g.grantee_kind = 'user' AND g.grantee = who)
                        OR (g.grantee_kind = 'agency' AND g.grantee =
                            (SELECT u.agency_id FROM ops_users u WHERE u.user_id = who))
                        OR g.grantee_kind = 'taskforce'))
$$;
CREATE OR REPLACE FUNCTION ops_compartment_contact(compartment TEXT) RETURNS TEXT
LANGUAGE sql {_DEFINER} AS $$
    SELECT coalesce((SELECT c.created_by FROM ops_compartments c
                     WHERE c.compartment_id = compartment), '')
$$;
REVOKE ALL ON FUNCTION ops_user_reads(TEXT, TEXT) FROM PUBLIC;
REVOKE ALL ON FUNCTION ops_compartment_contact(TEXT) FROM PUBLIC;

-- a record's selectors (schema 9) go in with it: by its author, in the transaction that
-- inserted it, in its compartment (a row naming another's record, or a record of
-- another compartment, would stand or fall with a withdrawal not the member's)
CREATE OR REPLACE FUNCTION ops_registering(record TEXT, compartment TEXT) RETURNS BOOLEAN
LANGUAGE sql {_DEFINER} AS $$
    SELECT EXISTS (SELECT 1 FROM ops_records r WHERE r.record_id = record
                   AND r.compartment_id = compartment
                   AND r.author = session_user::text AND r.agency_id = ops_my_agency()
                   AND r.created_xact = pg_current_xact_id())
$$;
-- only rows that stand match (schema 9): a direct submission, or a record's registration
-- of a record not withdrawn; the probe is the caller's own agency's standing row. A match
-- is exact when a row on each side was registered as written, else bare (a bare handle
-- on one side or both), and the notice's subject says so as the library's does
-- (schema 9 adds the form: the function's result changed, so it is made anew). Schema
-- 10 matches another compartment of the same agency too, when the user who stored the
-- rows (the member; for the service role, ``p_user``) may not read it: both compartments
-- are told, each naming the user who created the other, and the caller is answered that
-- contact, never the compartment
DROP FUNCTION IF EXISTS ops_selector_matches(TEXT[], TEXT[], TEXT[], TEXT[]);
DROP FUNCTION IF EXISTS ops_selector_matches(TEXT[], TEXT[], TEXT[], TEXT[], TEXT);
CREATE FUNCTION ops_selector_matches(p_hmac TEXT[], p_kind TEXT[],
                                     p_compartment TEXT[], p_agency TEXT[],
                                     p_user TEXT DEFAULT NULL)
RETURNS TABLE (selector_hmac TEXT, kind TEXT, compartment_id TEXT, agency_id TEXT,
               other_agency TEXT, form TEXT, other_contact TEXT)
LANGUAGE sql {_WRITER} AS $$
    WITH me AS (
        SELECT CASE WHEN ops_is_service() THEN coalesce(p_user, '')
                    ELSE session_user::text END AS who),
    probe AS (
        SELECT p.h, p.k, p.c, p.a, bool_or(o.form = 'exact') AS exact
        FROM (SELECT DISTINCT * FROM unnest(p_hmac, p_kind, p_compartment, p_agency)
              AS u(h, k, c, a)) p
        JOIN ops_selectors o ON o.selector_hmac = p.h AND o.kind = p.k
         AND o.compartment_id = p.c AND o.agency_id = p.a
        WHERE ((SELECT ops_is_service())
               OR (p.a = (SELECT ops_my_agency()) AND p.c IN (SELECT ops_granted(2))))
          AND {_live("o")}
        GROUP BY 1, 2, 3, 4),
    found AS (
        SELECT p.h, p.k, p.c, p.a, s.agency_id AS oa,
               CASE WHEN bool_or(p.exact AND s.form = 'exact') THEN 'exact' ELSE 'bare'
               END AS f
        FROM probe p JOIN ops_selectors s
          ON s.selector_hmac = p.h AND s.kind = p.k AND s.agency_id <> p.a
        WHERE {_live("s")}
        GROUP BY 1, 2, 3, 4, 5),
    pairs AS (SELECT k || ' ' || left(h, 12)
                     || CASE WHEN bool_or(f = 'exact') THEN '' ELSE '{BARE_MATCH}' END
                     AS subject, a AS mine, oa AS theirs
              FROM found GROUP BY h, k, a, oa),
    sent AS (
        INSERT INTO ops_notices
        SELECT ops_notice_id('selector', n.subject, n.to_a, n.other_a), 'selector', n.to_a,
               n.other_a, ops_contact(n.other_a), n.subject, now() AT TIME ZONE 'UTC',
               NULL, NULL
        FROM (SELECT subject, mine AS to_a, theirs AS other_a FROM pairs
              UNION SELECT subject, theirs, mine FROM pairs) n
        ON CONFLICT DO NOTHING),
    -- within the agency: the other compartments the storing user may not read
    inside AS (
        SELECT p.h, p.k, p.c, p.a, s.compartment_id AS oc,
               ops_compartment_contact(s.compartment_id) AS o_contact,
               bool_or(p.exact AND s.form = 'exact') AS exact
        FROM probe p JOIN ops_selectors s
          ON s.selector_hmac = p.h AND s.kind = p.k AND s.agency_id = p.a
         AND s.compartment_id <> p.c
        WHERE {_live("s")}
          AND NOT ops_user_reads((SELECT who FROM me), s.compartment_id)
        GROUP BY 1, 2, 3, 4, 5),
    -- to the storing compartment: one notice per selector and contact; to each other
    -- compartment: one per selector and storing compartment
    told AS (
        SELECT h, k, c, a, o_contact, bool_or(exact) AS exact FROM inside
        GROUP BY 1, 2, 3, 4, 5),
    inside_notes AS (
        SELECT k || ' ' || left(h, 12) || CASE WHEN exact THEN '' ELSE '{BARE_MATCH}' END
                   || '{WITHIN_TAIL}' AS subject,
               a, c AS to_c, o_contact AS contact FROM told
        UNION
        SELECT k || ' ' || left(h, 12) || CASE WHEN exact THEN '' ELSE '{BARE_MATCH}' END
                   || '{WITHIN_TAIL}', a, oc, ops_compartment_contact(c) FROM inside),
    sent_inside AS (
        INSERT INTO ops_notices (notice_id, kind, to_agency, other_agency, other_contact,
                                 subject, created_at, acked_by, acked_at, to_compartment)
        SELECT ops_notice_id('selector', n.subject, n.a,
                             n.a || '|' || n.to_c || '|' || n.contact), 'selector', n.a,
               n.a, n.contact, n.subject, now() AT TIME ZONE 'UTC', NULL, NULL, n.to_c
        FROM inside_notes n
        ON CONFLICT DO NOTHING)
    SELECT h, k, c, a, oa, f, ops_contact(oa) FROM found
    UNION ALL
    SELECT h, k, c, a, a, CASE WHEN exact THEN 'exact' ELSE 'bare' END, o_contact FROM told
    ORDER BY 1, 2, 3, 5, 7
$$;

ALTER TABLE ops_events ADD COLUMN IF NOT EXISTS within_m DOUBLE PRECISION;
-- schema 5's function answered (event, agency): it now says whether the places were
-- compared too, and (schema 10) whom to call; it compares the events of the agency's
-- other compartments that the planner may not read too, answering for them no event id
-- but the user who created that compartment (a return type is changed only by dropping
-- the function)
DROP FUNCTION IF EXISTS ops_event_clashes(TEXT, DOUBLE PRECISION);
CREATE FUNCTION ops_event_clashes(p_event TEXT, p_within_m DOUBLE PRECISION)
RETURNS TABLE (event_id TEXT, agency_id TEXT, placed BOOLEAN, other_contact TEXT)
LANGUAGE sql {_WRITER} AS $$
    -- the first comparison of an event fixes its radius: asked again with others, the
    -- same event answered each, unaudited, and located another agency's action to a
    -- few metres (found by testing)
    UPDATE ops_events x SET within_m = least(greatest(coalesce(p_within_m, 0), 0),
                                             {EVENT_RADIUS_CAP_M})
     WHERE x.event_id = p_event AND x.within_m IS NULL
       AND ((x.created_by = session_user::text AND NOT ops_suspended_me())
            OR ops_is_service());
    WITH e AS (
        SELECT * FROM ops_events x WHERE x.event_id = p_event
           AND ((x.created_by = session_user::text AND NOT ops_suspended_me())
                OR ops_is_service())
           AND x.ends_at - x.starts_at <= interval '{EVENT_MAX_DAYS} days'),
    pair AS (
        SELECT o.event_id AS theirs, o.agency_id AS their_agency, e.event_id AS mine,
               e.agency_id AS my_agency, o.agency_id = e.agency_id AS inside,
               o.compartment_id AS their_c, e.compartment_id AS my_c,
               e.lat IS NOT NULL AND e.lon IS NOT NULL AND o.lat IS NOT NULL
                   AND o.lon IS NOT NULL AS by_point,
               coalesce(e.postal_area, '') <> '' AND coalesce(o.postal_area, '') <> ''
                   AS by_area,
               coalesce((SELECT upper(a.country) FROM ops_agencies a
                          WHERE a.agency_id = e.agency_id), '') <> ''
                   AND (SELECT upper(a.country) FROM ops_agencies a
                         WHERE a.agency_id = e.agency_id)
                     = (SELECT upper(a.country) FROM ops_agencies a
                         WHERE a.agency_id = o.agency_id) AS same_country,
               e.lat, e.lon, o.lat AS olat, o.lon AS olon, e.within_m,
               o.within_m AS owithin_m, e.postal_area, o.postal_area AS opostal_area
        FROM e JOIN ops_events o
          ON (o.agency_id <> e.agency_id
              OR (o.compartment_id <> e.compartment_id
                  AND NOT ops_user_reads(e.created_by, o.compartment_id)))
         AND o.starts_at <= e.ends_at AND o.ends_at >= e.starts_at),
    hit AS (
        SELECT theirs, their_agency, mine, my_agency, by_point OR by_area AS placed,
               inside, their_c, my_c
        FROM pair
        WHERE CASE
            -- either side's radius (found by an audit: only the later planner's
            -- counted); an event never compared has none yet: the default
            WHEN by_point
            THEN ops_haversine_m(lat, lon, olat, olon)
                 <= greatest(within_m, coalesce(owithin_m, {EVENT_RADIUS_DEFAULT_M}))
            WHEN by_area
            THEN ops_postal_key(postal_area) <> ''
                 AND ops_postal_key(postal_area) = ops_postal_key(opostal_area)
            -- coordinates only against a postal area only: not comparable, a conflict
            -- to check (found by an audit: it read as none), between agencies of one
            -- country only (review, M4: across borders it listed every agency with
            -- an action by coordinates in the window, anywhere)
            ELSE same_country END),
    notes AS (
        SELECT 'event ' || mine || CASE WHEN placed THEN ' overlaps in time and place'
               ELSE ' overlaps in time ({UNPLACED})' END AS subject, '' AS tail,
               my_agency AS to_a, their_agency AS other_a FROM hit WHERE NOT inside
        UNION
        SELECT 'event ' || theirs || CASE WHEN placed
               THEN ' overlaps in time and place with an event of ' || my_agency
               ELSE ' overlaps in time with an event of ' || my_agency
                    || ' ({UNPLACED})' END, mine, their_agency, my_agency FROM hit
        WHERE NOT inside),
    sent AS (
        INSERT INTO ops_notices
        SELECT ops_notice_id('event', subject || tail, to_a, other_a), 'event', to_a,
               other_a, ops_contact(other_a), subject, now() AT TIME ZONE 'UTC', NULL, NULL
        FROM notes ON CONFLICT DO NOTHING),
    -- within the agency (schema 10): to the planner's compartment one notice per own
    -- event and contact, to the other compartment one per event that hit its event
    -- (counted, as between agencies), each naming the user who created the other
    inside_notes AS (
        SELECT 'event ' || mine || CASE WHEN placed THEN ' overlaps in time and place'
               ELSE ' overlaps in time ({UNPLACED})' END || '{WITHIN_TAIL}' AS subject,
               '' AS tail, my_agency AS a, my_c AS to_c,
               ops_compartment_contact(their_c) AS contact FROM hit WHERE inside
        UNION
        SELECT 'event ' || theirs || CASE WHEN placed
               THEN ' overlaps in time and place with an event of {WITHIN_AGENCY}'
               ELSE ' overlaps in time with an event of {WITHIN_AGENCY} ({UNPLACED})'
               END, mine, my_agency, their_c, ops_compartment_contact(my_c) FROM hit
        WHERE inside),
    sent_inside AS (
        INSERT INTO ops_notices (notice_id, kind, to_agency, other_agency, other_contact,
                                 subject, created_at, acked_by, acked_at, to_compartment)
        SELECT ops_notice_id('event', subject || tail, a, a || '|' || to_c || '|'
                             || contact), 'event', a, a, contact, subject,
               now() AT TIME ZONE 'UTC', NULL, NULL, to_c
        FROM inside_notes ON CONFLICT DO NOTHING)
    SELECT theirs, their_agency, placed, ops_contact(their_agency) FROM hit
     WHERE NOT inside
    UNION
    SELECT NULL, their_agency, placed, ops_compartment_contact(their_c) FROM hit
     WHERE inside
    ORDER BY 1, 4
$$;
REVOKE ALL ON FUNCTION ops_selector_matches(TEXT[], TEXT[], TEXT[], TEXT[], TEXT)
    FROM PUBLIC;
REVOKE ALL ON FUNCTION ops_event_clashes(TEXT, DOUBLE PRECISION) FROM PUBLIC;
REVOKE ALL ON FUNCTION ops_compartment_taken(TEXT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops_selector_matches(TEXT[], TEXT[], TEXT[], TEXT[], TEXT)
    TO {OPS_ROLE};
GRANT EXECUTE ON FUNCTION ops_event_clashes(TEXT, DOUBLE PRECISION) TO {OPS_ROLE};
GRANT EXECUTE ON FUNCTION ops_compartment_taken(TEXT) TO {OPS_ROLE};

-- schema 11: a suspended user's open connections end (a transaction of REPEATABLE READ
-- or SERIALIZABLE reads the snapshot it took before the suspension, and kept every
-- power: review of the suspension, finding 1); the front end calls it after the
-- suspension commits. Only for a suspended user; a connection the owner may not signal
-- (without pg_signal_backend) is counted as refused, not ended
CREATE OR REPLACE FUNCTION ops_end_connections(who TEXT)
RETURNS TABLE (ended INTEGER, refused INTEGER)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER {SAFE_PATH} AS $$
DECLARE
    p INTEGER;
BEGIN
    ended := 0;
    refused := 0;
    IF NOT EXISTS (SELECT 1 FROM ops_suspended s WHERE s.user_id = who) THEN
        RETURN NEXT;
        RETURN;
    END IF;
    FOR p IN SELECT a.pid FROM pg_stat_activity a
              WHERE a.usename = who AND a.pid <> pg_backend_pid() LOOP
        BEGIN
            IF pg_terminate_backend(p) THEN
                ended := ended + 1;
            END IF;
        EXCEPTION WHEN insufficient_privilege THEN
            refused := refused + 1;
        END;
    END LOOP;
    RETURN NEXT;
END $$;
REVOKE ALL ON FUNCTION ops_end_connections(TEXT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ops_end_connections(TEXT) TO {SERVICE_ROLE};
"""

# the clauses of the policies: the session's facts as subqueries (evaluated once per
# statement, not per row), the compartments as sets
_SERVICE = "(SELECT ops_is_service())"
_AGENCY = "(SELECT ops_my_agency())"
_ROLE = "(SELECT ops_my_role())"
_ME = "session_user::text"
_READS = "compartment_id IN (SELECT ops_granted(1))"
_WRITES = "compartment_id IN (SELECT ops_granted(2))"
_TO_ME = (f"(to_agency = {_AGENCY} AND (to_compartment IS NULL "
          "OR to_compartment IN (SELECT ops_granted(1))))")

# (table, policy, command, USING, WITH CHECK): every policy of the ops tables but the
# audit trail's (darkmap.store.audit)
_POLICIES: tuple[tuple[str, str, str, str | None, str | None], ...] = (
    ("ops_agencies", "ops_read", "SELECT", "true", None),
    ("ops_agencies", "ops_add", "INSERT", None,
     f"{_SERVICE} OR NOT ops_any_user() OR ({_ROLE} = 'admin' AND created_by = {_ME})"),
    ("ops_users", "ops_read", "SELECT",
     f"{_SERVICE} OR agency_id = {_AGENCY} OR user_id = {_ME}", None),
    ("ops_users", "ops_add", "INSERT", None,
     (f"{_SERVICE} OR NOT ops_any_user() OR ({_ROLE} = 'admin' AND created_by = {_ME} "
     f"AND (agency_id = {_AGENCY} OR NOT ops_agency_has_users(agency_id)))")),
    ("ops_compartments", "ops_read", "SELECT",
     f"{_SERVICE} OR {_READS} OR owner_agency = {_AGENCY}", None),
    ("ops_compartments", "ops_add", "INSERT", None,
     (f"{_SERVICE} OR (created_by = {_ME} AND owner_agency = {_AGENCY} "
     f"AND {_ROLE} IN ('admin', 'officer'))")),
    ("ops_grants", "ops_read", "SELECT",
     f"{_SERVICE} OR {_READS} OR compartment_id IN (SELECT ops_owned())", None),
    ("ops_grants", "ops_add", "INSERT", None,
     f"ops_may_grant(compartment_id) AND ({_SERVICE} OR granted_by = {_ME})"),
    ("ops_grants", "ops_change", "UPDATE", "ops_may_grant(compartment_id)",
     f"ops_may_grant(compartment_id) AND ({_SERVICE} OR granted_by = {_ME})"),
    ("ops_grants", "ops_remove", "DELETE", "ops_may_grant(compartment_id)", None),
    ("ops_records", "ops_read", "SELECT", f"{_SERVICE} OR {_READS}", None),
    ("ops_records", "ops_add", "INSERT", None,
     f"{_SERVICE} OR (author = {_ME} AND agency_id = {_AGENCY} AND {_WRITES})"),
    *((table, "ops_read", "SELECT",
       f"EXISTS (SELECT 1 FROM ops_records r WHERE r.record_id = {table}.record_id)", None)
      for table in ("ops_links", "ops_seizure_items", "ops_lab_results")),
    # what hangs off a record goes in with it, in the transaction that inserted it, by
    # its author who may still write its compartment: a seizure's items, a buy's lab
    # result, links of a known kind (found by testing: an officer added a tonne of
    # fentanyl to an old seizure, a lab result to a case, and a link that took a seizure
    # into another country's package, unaudited, and `audit verify` passed)
    ("ops_links", "ops_add", "INSERT", None,
     (f"{_SERVICE} OR (ref_kind IN ({', '.join(repr(k) for k in LINK_KINDS)}) "
      "AND ref_id <> '' AND ops_adding_to(record_id, NULL))")),
    ("ops_seizure_items", "ops_add", "INSERT", None,
     f"{_SERVICE} OR ops_adding_to(record_id, 'seizure')"),
    ("ops_lab_results", "ops_add", "INSERT", None,
     f"{_SERVICE} OR ops_adding_to(record_id, 'buy')"),
    # a withdrawal (schema 8): read with its record; added by the record's author or an
    # admin of its agency who may still write its compartment, naming a replacement the
    # member may read (found by an audit: no mistyped record could be corrected)
    ("ops_withdrawals", "ops_read", "SELECT",
     "EXISTS (SELECT 1 FROM ops_records r WHERE r.record_id = ops_withdrawals.record_id)",
     None),
    ("ops_withdrawals", "ops_add", "INSERT", None,
     (f"{_SERVICE} OR (withdrawn_by = {_ME} AND ops_may_withdraw(record_id) "
      "AND why <> '' AND (replaced_by IS NULL OR EXISTS (SELECT 1 FROM ops_records r "
      "WHERE r.record_id = ops_withdrawals.replaced_by)))")),
    ("ops_selectors", "ops_read", "SELECT", f"{_SERVICE} OR {_READS}", None),
    # a record's registration only with the record (schema 9: a withdrawal now takes a
    # record's selectors out of the matching, so a row must be its author's own)
    ("ops_selectors", "ops_add", "INSERT", None,
     (f"{_SERVICE} OR (submitted_by = {_ME} AND agency_id = {_AGENCY} AND {_WRITES} "
      "AND (record_id IS NULL OR ops_registering(record_id, compartment_id)))")),
    ("ops_events", "ops_read", "SELECT", f"{_SERVICE} OR {_READS}", None),
    ("ops_events", "ops_add", "INSERT", None,
     f"{_SERVICE} OR (created_by = {_ME} AND agency_id = {_AGENCY} AND {_WRITES})"),
    # a notice to one compartment of the agency (schema 10: a match within the agency)
    # is read and acknowledged only by those who may read that compartment
    ("ops_notices", "ops_read", "SELECT", f"{_TO_ME} OR {_SERVICE}", None),
    # a notice comes in open, a selector notice under the id its content gives (found by
    # testing: a member planted another agency's notice, acknowledged, ahead of the
    # match, and the real one was never shown)
    ("ops_notices", "ops_add", "INSERT", None,
     (f"{_SERVICE} OR (to_compartment IS NULL AND "
      f"(to_agency = {_AGENCY} OR other_agency = {_AGENCY}) AND "
     "(other_agency, other_contact) IN (SELECT a.agency_id, a.contact FROM ops_agencies a)"
     " AND acked_by IS NULL AND acked_at IS NULL AND (kind <> 'selector' OR notice_id = "
     "ops_notice_id(kind, subject, to_agency, other_agency)))")),
    ("ops_notices", "ops_ack", "UPDATE", f"{_TO_ME} OR {_SERVICE}",
     f"{_SERVICE} OR ({_TO_ME} AND acked_by = {_ME} AND {_ROLE} <> 'reader')"),
    # the reported figures: one set for every agency, replaced by an officer or admin
    ("ops_reported", "ops_read", "SELECT", "true", None),
    ("ops_reported", "ops_add", "INSERT", None,
     f"{_SERVICE} OR {_ROLE} IN ('admin', 'officer')"),
    ("ops_reported", "ops_remove", "DELETE", f"{_SERVICE} OR {_ROLE} IN ('admin', 'officer')",
     None),
    # suspensions (schema 11): read with the user they suspend (one's own agency's, and
    # one's own); written only by the front end, after the library's checks
    ("ops_suspended", "ops_read", "SELECT",
     (f"{_SERVICE} OR user_id = {_ME} OR EXISTS (SELECT 1 FROM ops_users u WHERE "
      "u.user_id = ops_suspended.user_id)"), None),
    ("ops_suspended", "ops_add", "INSERT", None, _SERVICE),
    ("ops_suspended", "ops_remove", "DELETE", _SERVICE, None),
    # the task force's selector key: not to a suspended user (schema 11)
    ("ops_server_key", "ops_read", "SELECT", f"{_SERVICE} OR NOT ops_suspended_me()", None),
)


_ENABLE = """
ALTER TABLE ops_agencies ENABLE ROW LEVEL SECURITY;
ALTER TABLE ops_users ENABLE ROW LEVEL SECURITY;
ALTER TABLE ops_compartments ENABLE ROW LEVEL SECURITY;
ALTER TABLE ops_grants ENABLE ROW LEVEL SECURITY;
ALTER TABLE ops_records ENABLE ROW LEVEL SECURITY;
ALTER TABLE ops_links ENABLE ROW LEVEL SECURITY;
ALTER TABLE ops_seizure_items ENABLE ROW LEVEL SECURITY;
ALTER TABLE ops_lab_results ENABLE ROW LEVEL SECURITY;
ALTER TABLE ops_selectors ENABLE ROW LEVEL SECURITY;
ALTER TABLE ops_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE ops_notices ENABLE ROW LEVEL SECURITY;
ALTER TABLE ops_reported ENABLE ROW LEVEL SECURITY;
ALTER TABLE ops_withdrawals ENABLE ROW LEVEL SECURITY;
ALTER TABLE ops_suspended ENABLE ROW LEVEL SECURITY;
ALTER TABLE ops_server_key ENABLE ROW LEVEL SECURITY;
"""
"""Row-level security on: every table :data:`_POLICIES` names (a test holds them equal)."""


def _policy_sql() -> str:
    """Row-level security on every table of :data:`_POLICIES`, its policies replaced."""
    out = [_ENABLE]
    for table in dict.fromkeys(t for t, *_ in _POLICIES):
        out.append(f"DROP POLICY IF EXISTS ops_change ON {table};")
        out.append(f"DROP POLICY IF EXISTS ops_remove ON {table};")
    for table, name, command, using, check in _POLICIES:
        clauses = "".join((f" USING ({using})" if using else "",
                           f" WITH CHECK ({check})" if check else ""))
        out.append(f"DROP POLICY IF EXISTS {name} ON {table};")
        out.append(f"CREATE POLICY {name} ON {table} FOR {command}{clauses};")
    return "\n".join(out)


PG_GUARDS = _FUNCTIONS + _policy_sql() + """
DROP FUNCTION IF EXISTS ops_may_read(TEXT);
DROP FUNCTION IF EXISTS ops_own_record(TEXT);
"""  # schema 4's read check and schema 6's check of a record's children, which no policy
# uses now (dropped after the policies are replaced)
"""The functions and row-level security policies of the operational tables on the
server (installed after the tables and roles, :data:`darkmap.store.operations.PG_SCHEMA`)."""


def install(pg: psycopg.Connection[Any]) -> None:
    """Install (or replace) the guards; the caller holds the transaction."""
    pg.execute(PG_GUARDS)
