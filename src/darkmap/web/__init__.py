"""The web workbench (issue #14): a multi-user ASGI application over the library API.

:mod:`.auth` holds sign-in (argon2id, TOTP), lockout and sessions; :mod:`.views` what each
page shows; :mod:`.app` the FastAPI application (pages, ``/api/``, security headers);
:mod:`.demo` the demo user of ``darkmap demo --serve``. docs/workbench.md describes it.
"""

from __future__ import annotations

__all__ = ["WEB_ROLES"]

WEB_ROLES = ("analyst", "supervisor", "admin")
"""The workbench's roles (:mod:`.auth` checks them; ``darkmap serve-user --role`` offers
them): here, where ``--help`` reads them without loading the application."""
