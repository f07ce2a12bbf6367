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

__all__ = ["BadInputError", "DarkmapError", "NotFoundError", "WorkspaceStateError"]


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
