"""darkmap: an offline, auditable investigation workbench for darknet drug markets.

The Python API, in the order of the job (docs/python-api.md has a worked example):

Workspace
    init_workspace(path)            create (or open) a workspace folder
    open_workspace(path)            open an existing one (read_only=True to only read)
    Workspace                       the open workspace: .con (DuckDB), .table_counts(),
                                    .close(); usable in ``with``

Collect
    simulate_world(out, seed)       write a synthetic world with ground truth (SimParams)
    ingest(ws, paths)               capture and read pages, datasets, seized dumps,
                                    Bitcoin blocks and TagPacks; returns the run summary
    verify_captures(ws)             re-hash every capture: changed or missing ones

Resolve: accounts into personas
    link(ws, options)               link accounts into personas, every link explained
                                    (LinkOptions: model, signals, threshold)
    judge(ws, a, b, verdict)        record an analyst verdict; link always respects it
    withdraw_judgement(ws, a, b)    withdraw the standing verdicts on a pair
    search_personas(ws, text)       personas by handle, fragment, PGP key, address, contact
    show_persona(ws, ref)           one persona: accounts, identifiers, links and why

Assess
    assess_listings(ws)             drug class, substance, flags, dose, price; sales and
                                    jurisdictions (SalesParams: feedback rate)
    targets(ws, country, limit)     personas ranked by harm score, with evidence

Follow the money
    cluster_addresses(ws)           cluster addresses into wallets, tie in the evidence
    trace(ws, target)               follow value to tagged services, cash-outs, peel chains
    wallet(ws, ident)               a wallet: flows, counterparties, tags, linked personas

Evaluate (against a simulated world's truth or hand labels)
    evaluate_linking(ws, truth)     pairwise and B-cubed scores of the personas
    evaluate_drugs(ws, labels)      accuracy of the listing assessor
    evaluate_chain(ws, truth)       clustering scores and cash-outs traced
    evaluate_sales(ws, truth)       error and interval coverage of orders, units, customers

Present
    write_report(ws, out)           the self-contained HTML report
    export_evidence(ws, out, fmt)   FollowTheMoney entities (fmt="ftm")
    run_demo_pipeline(ws, world)    the whole job in one call (``darkmap demo``)

Operations (every read and write as a user, audited; docs/operations.md)
    ops_records(ws, user)           the operational records the user may read
    operation_report(ws, user, op)  recorded and reported totals of an operation
    verify_audit(ws)                check the hash-chained audit trail

Errors: DarkmapError is the root; NotFoundError (a KeyError), BadInputError (a
ValueError) and WorkspaceStateError say what went wrong.

Importing ``darkmap`` stays cheap: the API (which imports numpy, scipy, pyarrow, DuckDB and
every stage) loads on first use of one of its names. Every ``import darkmap.<module>`` runs
this file first, and loading the API here would cost each of them (a simulator child
process, a script using one value type) 0.5 s and 90 MB: ``import darkmap`` measures
0.07 s and 51 MB peak memory, ``import darkmap.api`` 0.6 s and 141 MB.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from darkmap.errors import BadInputError, DarkmapError, NotFoundError, WorkspaceStateError

if TYPE_CHECKING:  # the names the lazy loader below provides, for type checkers
    from darkmap.api import (
        LinkOptions,
        SalesParams,
        SimParams,
        assess_listings,
        cluster_addresses,
        evaluate_chain,
        evaluate_drugs,
        evaluate_linking,
        evaluate_sales,
        export_evidence,
        ingest,
        init_workspace,
        judge,
        link,
        open_workspace,
        operation_report,
        ops_records,
        run_demo_pipeline,
        search_personas,
        show_persona,
        simulate_world,
        targets,
        trace,
        verify_audit,
        verify_captures,
        wallet,
        withdraw_judgement,
        write_report,
    )
    from darkmap.store.workspace import Workspace

__version__ = "0.1.0"

# A literal list of strings, so that ruff, mypy and IDEs read the public names without running
# this file. The names of the API (the first block) are loaded by __getattr__ below.
__all__ = [
    "init_workspace", "open_workspace",
    "simulate_world", "ingest", "verify_captures",
    "link", "judge", "withdraw_judgement", "search_personas", "show_persona",
    "assess_listings", "targets",
    "cluster_addresses", "trace", "wallet",
    "evaluate_linking", "evaluate_drugs", "evaluate_chain",
    "evaluate_sales",
    "write_report", "export_evidence", "run_demo_pipeline",
    "ops_records", "operation_report", "verify_audit",
    "LinkOptions", "SalesParams", "SimParams",
    "Workspace",
    "DarkmapError", "NotFoundError", "BadInputError", "WorkspaceStateError",
    "__version__",
]

# The public names bound by this file itself; Workspace comes from darkmap.store.workspace
# (DuckDB's import is half of `darkmap --help`), every other one from darkmap.api.
_EAGER = frozenset({
    "DarkmapError", "NotFoundError", "BadInputError", "WorkspaceStateError",
    "__version__",
})
_API = frozenset(__all__) - _EAGER - {"Workspace"}


def __getattr__(name: str) -> object:
    """Load the API on first use of one of its names (PEP 562)."""
    if name == "Workspace":
        from darkmap.store.workspace import Workspace  # noqa: PLC0415 - deferred, see above

        globals()[name] = Workspace
        return Workspace
    if name not in _API:
        raise AttributeError(f"module 'darkmap' has no attribute {name!r}")
    from darkmap import api  # noqa: PLC0415 - deferred: 0.5 s and 90 MB, see the docstring

    value = getattr(api, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """Module attributes including the API names not loaded yet (for help() and tab)."""
    return sorted(set(globals()) | set(__all__))
