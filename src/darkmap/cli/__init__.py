"""The command line: thin commands over the library, one library call each.

``darkmap.cli.common`` holds the ``darkmap`` group; each ``cmd_*`` module adds the commands
of one area to it when imported. Modules are imported lazily (``darkmap --help`` imports
none of them, ``darkmap ingest`` only ``cmd_ingest``): :data:`COMMANDS` names each
top-level command with its module and the first sentence of its help, which ``--help``
shows. The list is explicit: a command missing from it, or a summary that no longer
matches the command's help, fails ``tests/test_cli_lazy.py``.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from collections.abc import Callable
from contextlib import suppress

from darkmap.cli import common
from darkmap.cli.common import main
from darkmap.deferred_imports import defer_import

__all__ = ["COMMANDS", "main", "run"]

# each loader imports one module, which registers its commands on `main`
# (imports inside functions: the point is to import them only when used)


def _assess() -> None:
    from darkmap.cli import cmd_assess  # noqa: F401, PLC0415


def _chain() -> None:
    from darkmap.cli import cmd_chain  # noqa: F401, PLC0415


def _crawl() -> None:
    from darkmap.cli import cmd_crawl  # noqa: F401, PLC0415


def _evaluate() -> None:
    # `eval drugs` and `eval chain` are registered by the modules of their areas
    from darkmap.cli import cmd_assess, cmd_chain, cmd_evaluate  # noqa: F401, PLC0415


def _export() -> None:
    from darkmap.cli import cmd_export  # noqa: F401, PLC0415


def _ingest() -> None:
    from darkmap.cli import cmd_ingest  # noqa: F401, PLC0415


def _keys() -> None:
    from darkmap.cli import cmd_keys  # noqa: F401, PLC0415


def _link() -> None:
    from darkmap.cli import cmd_link  # noqa: F401, PLC0415


def _ops() -> None:
    from darkmap.cli import cmd_ops  # noqa: F401, PLC0415


def _report() -> None:
    from darkmap.cli import cmd_report  # noqa: F401, PLC0415


def _serve() -> None:
    from darkmap.cli import cmd_serve  # noqa: F401, PLC0415


def _simulate() -> None:
    from darkmap.cli import cmd_simulate  # noqa: F401, PLC0415


def _team() -> None:
    from darkmap.cli import cmd_team  # noqa: F401, PLC0415


COMMANDS: dict[str, tuple[Callable[[], None], str]] = {
    "assess": (_assess, "Classify and normalise every listing; estimate sales and jurisdictions."),
    "targets": (_assess, (
        "Rank personas by harm score (fentanyl and counterfeit pills weigh most).")),
    "chain": (_chain, (
        "Bitcoin data: load blocks and transactions, cluster addresses, explain merges.")),
    "tags": (_chain, "Attribution tags (GraphSense TagPack YAML)."),
    "trace": (_chain, (
        "Follow the money from an ADDRESS or CLUSTER (cluster:N) to tagged services.")),
    "wallet": (_chain, "Clusters seen as wallets."),
    "crawl": (_crawl, (
        "Crawl MARKET through Tor: every page captured, extracted, kept as WARC; resumable.")),
    "eval": (_evaluate, "Score results against a simulated world's truth or a label file."),
    "export": (_export, (
        "Export the evidence in another tool's format: one of those in braces above, the "
        "installed exporters (docs/exports.md: what maps to what, how to open the result).")),
    "importers": (_ingest, (
        "List the registered importers (market templates, datasets, dumps, chain data) and the "
        "dataset mappings loaded.")),
    "ingest": (_ingest, (
        "Read saved pages, datasets, seized dumps and chain data into the workspace.")),
    "verify": (_ingest, (
        "Re-hash every capture: report those changed on disk or missing (exit 1 if any).")),
    "keys": (_keys, (
        "PGP keys: parsed, distinct fingerprints, keys shared between accounts, failures.")),
    "judge": (_link, (
        "Record an analyst verdict on two accounts; `darkmap link` always respects it.")),
    "link": (_link, "Link accounts into personas (across and within markets), with explanations."),
    "persona": (_link, "Inspect personas built by `darkmap link`."),
    "review": (_link, (
        "Pairs whose judgement teaches most about the linking, and what judgements say.")),
    "audit": (_ops, "The audit trail of operational records."),
    "deconflict": (_ops, "Target and event deconfliction."),
    "ops": (_ops, (
        "Operational records: agencies, users, compartments, cases, buys, parcels, seizures, "
        "arrests; every command acts as a user (--as) and is audited.")),
    "package": (_ops, (
        "A country's package: personas attributed there (with the evidence), accounts, listings"
        " and drug assessments, their wallets (clusters, tags, merge reasons) and the flows "
        "traced from them to cash-out points, the operational records you may read, fentanyl "
        "marks, deconfliction contacts; package.json, package.html and entities.ftm.json "
        "(FollowTheMoney, stock schemata) (audited).")),
    "demo": (_report, "Run the main job end to end: simulate, ingest, analyse, report."),
    "report": (_report, "Write the HTML report of everything in the workspace."),
    "serve": (_serve, "Run the web workbench over a workspace, or a team server (--server)."),
    "serve-user": (_serve, (
        "Give an operational user (`darkmap ops user add`) a workbench sign-in, or "
        "suspend the user, or end their lockout.")),
    "serve-token": (_serve, (
        "Issue an API token for a user with a sign-in (shown once), or revoke them.")),
    "simulate": (_simulate, (
        "Generate a synthetic multi-market world with ground truth (truth.json).")),
    "team": (_team, "Share analyst judgements through a team PostgreSQL server."),
}
"""Top-level command -> (loader of its module, first sentence of its help)."""

for _name, (_load, _summary) in COMMANDS.items():
    main.add_lazy(_name, _load, _summary)


def run() -> None:
    """The ``darkmap`` console script: :data:`main` in a process that defers pandas.

    DuckDB imports pandas, when it is installed (pyspark needs it), on the first
    parameterised query of a process, only to check a parameter's type: 0.18 s and 85 MB
    on every command. The script defers it (:func:`darkmap.deferred_imports.defer_import`); the
    Spark engine allows it again. ``main`` itself (``CliRunner``, a library caller's
    process) is left as it is.

    A command that has closed everything it opened (``darkmap ingest``: the workspace
    closed and checkpointed, every capture synced) may say so
    (:func:`darkmap.cli.common.nothing_left_at_exit`): its process then ends with
    ``os._exit`` once standard output and error are written out, with the same status,
    instead of tearing the interpreter down (freeing every module's objects and
    unloading DuckDB, Arrow and numpy: 0.04 s of CPU after the 14.7k-row CSV). The
    :mod:`atexit` handlers still run; only the main thread may be left; code after
    ``run()`` in the same process does not run (register it with :mod:`atexit`).

    SIGTERM stops a command as Ctrl-C does (:func:`darkmap.cli.common.terminate_as_interrupt`):
    what it left unfinished is undone, and it ends with one line and status 143.
    """
    defer_import("pandas")
    common.terminate_as_interrupt()
    try:
        main()
    except SystemExit as exc:
        code = 0 if exc.code is None else exc.code
        if isinstance(code, int) and common.nothing_left_at_exit() and _quiet():
            _end_now(code)
        raise


def _quiet() -> bool:
    """Only the main thread is left and standard output and error are written out
    (False: the normal exit reports a pipe that broke)."""
    if threading.active_count() != 1:
        return False
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return False
    return True


def _end_now(code: int) -> None:
    """End the process with ``code`` without the interpreter's teardown: the exit handlers
    registered with :mod:`atexit` (a caller's, the libraries') run as at a normal exit."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with suppress(Exception):
            stream.flush()
    os._exit(code)
