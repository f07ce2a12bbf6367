"""The operational layer's fixed vocabularies and defaults: roles, compartment, record,
link and event kinds, the deconfliction distance and the audit's shortest retention.

Here, apart from the modules that use them, so that ``darkmap ops --help`` (which offers
them as choices and defaults) loads none of the stores: :mod:`.access`, :mod:`.records`,
:mod:`.deconflict` and :mod:`.audit` import and re-export them.
"""

from __future__ import annotations

__all__ = ["COMPARTMENT_KINDS", "DEFAULT_DISTANCE_M", "EVENT_KINDS", "LINK_KINDS", "MAX_COUNT",
           "MAX_DISTANCE_M", "MAX_EVENT_DAYS", "RECORD_KINDS", "RETENTION_DAYS", "ROLES"]

ROLES = ("admin", "officer", "reader")
"""A user's role in their agency (docs/operations.md, "Who may see what")."""

COMPARTMENT_KINDS = ("agency", "group", "taskforce", "case")
"""Compartments, each starting with the grants of its kind."""

RECORD_KINDS = ("case", "buy", "parcel", "seizure", "arrest")
"""The operational records."""

LINK_KINDS = ("persona", "account", "listing", "wallet", "address")
"""What a record may link to in the analytical store (``--link KIND:ID``)."""

EVENT_KINDS = ("search_warrant", "controlled_delivery", "arrest", "surveillance")
"""Planned actions that event deconfliction compares."""

MAX_COUNT = 10**12
"""The largest pill or firearm count a record takes (a larger one overflowed the store's
column)."""

DEFAULT_DISTANCE_M = 1000.0
"""Two events closer than this (metres), with overlapping windows, conflict."""

MAX_EVENT_DAYS = 31
"""The longest window a planned event may have (days). Without a bound, one event by
postal area over years was compared (as "place not compared") with every event by
coordinates of the same country in those years, and listed their agencies (review, M4).
"""

MAX_DISTANCE_M = 5000.0
"""The largest distance a planned event may ask about (``within_m``, metres). Without a
bound, another agency could widen and narrow the radius of probe events to find where a
planned action is. Fixed for the installation (whoever installs darkmap may change it
here), never per call."""

RETENTION_DAYS = 365
"""The shortest retention :func:`~darkmap.ops.audit.archive_trail` allows: the CJIS
Security Policy keeps audit records at least one year (an agency may keep them longer:
``min_days``)."""
