"""The operational layer (issue #13): agencies, users, compartments and grants; cases,
controlled buys, parcels, seizures and arrests; deconfliction; operation totals; and the
hash-chained audit trail of every read and write.

Every function takes the acting user (``by``) and enforces the grants in the library, so
the CLI and any other front end inherit them. docs/operations.md describes the model.
"""

from __future__ import annotations

__all__: list[str] = []
