"""``darkmap verify``: every capture still holds the bytes its name promises.

Every fact darkmap stores points to a capture: the exact bytes of a file, kept under
their SHA-256 in the workspace's capture store. :func:`verify_captures` re-hashes each
capture the ``captures`` table lists and reports the ones whose bytes changed on disk
(edited after ingest) and the ones missing from the store. A row standing for a path
ingest did not read (``media_type`` :data:`~darkmap.collect.ingest.NOT_READ_MEDIA_TYPE`,
no bytes kept) is checked against its path instead (its name hashes the path).

Nothing is written: verify only reads the workspace. A changed capture stays as it is
(it is the trace of what happened); to restore it, move it away and ingest the original
file again, which writes the capture anew from the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from darkmap.collect.ingest import NOT_READ_MEDIA_TYPE, not_read_sha256
from darkmap.store.runs import stored_captures
from darkmap.store.workspace import Workspace

__all__ = ["CaptureProblem", "VerifyReport", "verify_captures"]


@dataclass(frozen=True)
class CaptureProblem:
    """One capture that does not hold what its name promises."""

    sha256: str
    source: str
    problem: str  # "changed", "missing" or "not-read row altered"


@dataclass
class VerifyReport:
    """What :func:`verify_captures` found.

    ``checked`` captures (``bytes`` re-hashed), ``ok`` of them intact, ``not_read`` rows
    of paths never read (checked against their path), and the ``problems``.
    """

    checked: int = 0
    bytes: int = 0
    ok: int = 0
    not_read: int = 0
    problems: list[CaptureProblem] = field(default_factory=list)

    @property
    def changed(self) -> list[CaptureProblem]:
        """Captures whose bytes no longer hash to their name."""
        return [p for p in self.problems if p.problem != "missing"]

    @property
    def missing(self) -> list[CaptureProblem]:
        """Captures listed in the workspace and absent from the capture store."""
        return [p for p in self.problems if p.problem == "missing"]

    @property
    def intact(self) -> bool:
        """True when no capture changed or went missing."""
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready report."""
        return {"checked": self.checked, "bytes": self.bytes, "ok": self.ok,
                "not_read": self.not_read, "intact": self.intact,
                "changed": [vars(p) for p in self.changed],
                "missing": [vars(p) for p in self.missing]}


def verify_captures(ws: Workspace,
                    progress: Callable[[int, int], None] | None = None) -> VerifyReport:
    """Re-hash every capture of ``ws``; report the changed and the missing ones.

    ``progress(done_bytes, total_bytes)`` is called after each capture.
    """
    rows = stored_captures(ws.con)
    total = sum(r.size for r in rows if r.media_type != NOT_READ_MEDIA_TYPE)
    report = VerifyReport()
    for row in rows:
        report.checked += 1
        if row.media_type == NOT_READ_MEDIA_TYPE:
            if not_read_sha256(row.source) == row.sha256:
                report.not_read += 1
            else:
                report.problems.append(CaptureProblem(row.sha256, row.source,
                                                      "not-read row altered"))
            continue
        state = ws.captures.check(row.sha256)
        if state == "ok":
            report.ok += 1
        else:
            report.problems.append(CaptureProblem(row.sha256, row.source, state))
        report.bytes += row.size
        if progress:
            progress(report.bytes, total)
    return report
