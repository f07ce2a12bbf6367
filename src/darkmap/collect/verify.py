"""``darkmap verify``: every capture still holds the bytes its name promises.

Every fact darkmap stores points to a capture: the exact bytes of a file, kept under
their SHA-256 in the workspace's capture store. :func:`verify_captures` re-hashes each
capture the ``captures`` table lists and reports the ones whose bytes changed on disk
(edited after ingest) and the ones missing from the store. A row standing for a path
ingest did not read (``media_type`` :data:`~darkmap.collect.ingest.NOT_READ_MEDIA_TYPE`,
no bytes kept) is checked against its path instead (its name hashes the path).

It also lists the files in the capture store that no row names (``unreferenced``: bytes
kept without provenance, such as the complete capture of a big file whose ingest was
killed before its commit) and the temporary files of capture writes (``temporary``: a
writer killed mid-write left part of the bytes; the next ingest removes those whose
writer is gone). Neither is tampering: they are counted and listed, and the workspace
stays ``intact``.

Nothing is written: verify only reads the workspace. A changed capture stays as it is
(it is the trace of what happened); to restore it, move it away and ingest the original
file again, which writes the capture anew from the same bytes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from darkmap.collect.ingest import NOT_READ_MEDIA_TYPE, not_read_sha256
from darkmap.store.runs import stored_captures
from darkmap.store.workspace import Workspace

__all__ = ["TEMPORARY_HINT", "UNREFERENCED_HINT", "CaptureProblem", "StrayFile", "VerifyReport",
           "verify_captures"]

UNREFERENCED_HINT = ("bytes kept without provenance; ingest the same path again to record "
                     "them, or remove them")
TEMPORARY_HINT = ("part of a capture a killed writer left; the next ingest removes it once "
                  "its writer is gone")


@dataclass(frozen=True)
class CaptureProblem:
    """One capture that does not hold what its name promises."""

    sha256: str
    source: str
    problem: str  # "changed", "missing" or "not-read row altered"


@dataclass(frozen=True)
class StrayFile:
    """A file in the capture store that is not a capture a row names: ``path`` under the
    workspace (``captures/...``), ``size``; for a temporary file the writer's ``pid`` and
    whether it still runs."""

    path: str
    size: int
    pid: int | None = None
    writer_running: bool | None = None


@dataclass
class VerifyReport:
    """What :func:`verify_captures` found.

    ``checked`` captures (``bytes`` re-hashed), ``ok`` of them intact, ``not_read`` rows
    of paths never read (checked against their path), and the ``problems``; besides,
    the stray files of the capture store: ``unreferenced`` (no row names them) and
    ``temporary`` (capture writes not finished), which are no problem.
    """

    checked: int = 0
    bytes: int = 0
    ok: int = 0
    not_read: int = 0
    problems: list[CaptureProblem] = field(default_factory=list)
    unreferenced: list[StrayFile] = field(default_factory=list)
    temporary: list[StrayFile] = field(default_factory=list)

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
                "missing": [vars(p) for p in self.missing],
                "unreferenced": [{"path": f.path, "size": f.size} for f in self.unreferenced],
                "temporary": [vars(f) for f in self.temporary]}


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
    named = {os.path.relpath(ws.captures.path_for(r.sha256), ws.captures.root) for r in rows}
    files, temps = ws.captures.scan()
    top = ws.captures.root.name
    report.unreferenced = [StrayFile(f"{top}/{f.path}", f.size) for f in files
                           if f.path not in named]
    report.temporary = [StrayFile(f"{top}/{t.path}", t.size, t.pid, t.writer_running)
                        for t in temps]
    return report
