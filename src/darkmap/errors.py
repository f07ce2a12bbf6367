"""darkmap's errors: one root, a few meanings.

Every error darkmap raises on purpose is a :class:`DarkmapError`; its subclasses say what
went wrong from the caller's point of view. The CLI prints these as one line and exits
non-zero; anything else that escapes is a bug and shows its traceback.

>>> try:
...     raise NotFoundError("persona p-123 is not in this workspace")
... except DarkmapError as exc:
...     print(exc)
persona p-123 is not in this workspace
"""

from __future__ import annotations

__all__ = ["BadInputError", "DarkmapError", "LimitExceeded", "NotFoundError",
           "WorkspaceStateError", "is_interrupt"]


class DarkmapError(Exception):
    """Root of every error darkmap raises on purpose."""


class NotFoundError(DarkmapError, KeyError):
    """A lookup found nothing: an account, persona, wallet, address or file."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class BadInputError(DarkmapError, ValueError):
    """An argument or input the caller gave is invalid (a value out of range, a file
    that cannot be read as what it claims to be)."""


class WorkspaceStateError(DarkmapError):
    """The workspace cannot do this now: missing, not a workspace, newer than this
    darkmap, locked by another process, or a stage it needs has not run."""


class LimitExceeded(BadInputError):
    """An input broke one of darkmap's limits on hostile input (issue #18): a file too
    big, text nested too deep, a field too long, a parse running too long.

    ``limit`` names the limit (``file_bytes``, ``nesting_depth``, ``field_chars``,
    ``seconds``, ``yaml_aliases``...); the ingest pipeline quarantines the unit or file
    with that name, counts it under ``limits`` in the run's summary and goes on.
    """

    def __init__(self, limit: str, message: str) -> None:
        super().__init__(message)
        self.limit = limit

    def __reduce__(self) -> tuple[type[LimitExceeded], tuple[str, str]]:
        # pickled (a reader in another process raised it) with its limit
        return type(self), (self.limit, str(self))


def is_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` is Ctrl-C (or SIGTERM, which darkmap turns into one): Python's, or
    DuckDB's (a statement it stopped raises ``RuntimeError('Query interrupted')``, or its
    ``InterruptException``). A guard that keeps one bad file from stopping a run must let
    it through: caught as the file's failure, it marked the file done and quarantined, and
    the run went on and exited 0 (found by an audit: 206,570 rows lost for good)."""
    if isinstance(exc, KeyboardInterrupt):
        return True
    if type(exc).__name__ == "InterruptException":
        return True
    return isinstance(exc, RuntimeError) and str(exc).strip() == "Query interrupted"
