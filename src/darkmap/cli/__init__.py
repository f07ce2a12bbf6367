"""The command line: thin commands over the library, one library call each.

``darkmap.cli.common`` holds the ``darkmap`` group; each ``cmd_*`` module adds the commands
of one area to it when imported. The list is explicit: a missing module is an error.
"""

from __future__ import annotations

from darkmap.cli import (  # noqa: F401  (each module registers its commands on `main`)
    cmd_assess,
    cmd_chain,
    cmd_crawl,
    cmd_evaluate,
    cmd_export,
    cmd_ingest,
    cmd_keys,
    cmd_link,
    cmd_ops,
    cmd_report,
    cmd_sales,
    cmd_serve,
    cmd_simulate,
    cmd_team,
)
from darkmap.cli.common import main

__all__ = ["main"]
