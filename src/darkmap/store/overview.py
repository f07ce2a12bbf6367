"""Where a workspace stands (``darkmap status``): what was ingested, whether it is linked,
assessed and chain-clustered, its operational records, and the command to run next.

Read-only: row counts and the times of the last ingest and link runs, of the
judgements and of the assessment.

Out of date: the personas when evidence the linker reads was ingested after the last
link run (:data:`LINK_EVIDENCE`; chain data and tag packs are none of it) or a judgement
was made or withdrawn since; the assessment when evidence it reads was ingested after it
(:data:`ASSESS_EVIDENCE`) or a link run after it changed the personas (sales,
jurisdictions and harm are per persona). Evidence counts as ingested after a time when a
row of those tables comes from a capture ``processed`` after it.

An ingest run that did not finish (killed, or stopped after its first commit; see
:func:`~darkmap.store.runs.unfinished_run`) comes before everything else: the next
command is that ingest again (it reads only what the run had not committed), not a link
over part of the evidence.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

import duckdb

from darkmap.model.display import shell_path
from darkmap.store.runs import unfinished_run
from darkmap.store.workspace import table_exists

__all__ = ["ASSESS_EVIDENCE", "LINK_EVIDENCE", "AssessmentAge", "InterruptedIngest",
           "WorkspaceStage",
           "assessment_age", "assessment_note", "assessment_stale", "stage_assessment_stale",
           "workspace_stage"]

LINK_EVIDENCE = ("accounts", "account_observations", "listings", "listing_observations",
                 "feedback", "identifiers")
"""The evidence tables the linker reads (darkmap.resolve.profiles, store.evidence)."""
ASSESS_EVIDENCE = (*LINK_EVIDENCE, "feedback_counts", "page_rates")
"""The evidence tables the assessment reads (listings, feedback and its counters, the
accounts' shipping and profile, the rates pages state)."""


class AssessmentAge(TypedDict):
    """When the stored assessment was made and what happened since."""

    assessed_at: datetime | None
    ingested_since: bool
    relinked_since: bool


class InterruptedIngest(TypedDict):
    """The last ingest run that did not finish, and the command that completes it."""

    run_id: str
    started_at: datetime
    files_committed: int
    args: list[str] | None
    """Its paths as stored (None: not recorded)."""
    command: str
    """The same ingest, its paths quoted for a shell (``darkmap ingest PATH...`` when
    they were not recorded)."""
    unfinished_runs: int
    """Runs that did not finish and were not repeated since, this one included."""


class WorkspaceStage(TypedDict):
    """A workspace's stage and the next command (``next``, with ``why``)."""

    files: int
    ingest_runs: int
    interrupted_ingest: InterruptedIngest | None
    accounts: int
    listings: int
    feedback: int
    transactions: int
    linked: bool
    personas: int
    multi_account_personas: int
    link_run: str | None
    linked_at: datetime | None
    judgements: int
    judgements_since_link: int
    ingested_since_link: bool
    assessed: int
    assessed_at: datetime | None
    ingested_since_assessment: bool
    relinked_since_assessment: bool
    chain_clustered: bool
    wallets: int
    unclustered_addresses: int
    stale_blocks: int
    stale_transactions: int
    operational_records: int
    next: str
    why: str


def _one(con: duckdb.DuckDBPyConnection, table: str, sql: str,
         params: list[object] | None = None) -> int:
    """The count ``sql`` selects (0 when ``table`` does not exist: a workspace opened
    read-only is not migrated)."""
    if not table_exists(con, table):
        return 0
    row = con.execute(sql, params or []).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return _one(con, table, f'SELECT count(*) FROM "{table}"')


def _evidence_since(con: duckdb.DuckDBPyConnection, since: datetime,
                    tables: tuple[str, ...]) -> bool:
    """True when a row of ``tables`` comes from a capture processed at or after
    ``since`` (a chain load or a tag pack writes none of the market evidence)."""
    if not table_exists(con, "processed"):
        return False
    if not _one(con, "processed", "SELECT count(*) FROM processed WHERE processed_at >= ?",
                [since]):
        return False
    for table in tables:
        if _one(con, table, f'SELECT count(*) FROM (SELECT 1 FROM "{table}" WHERE'
                " capture_sha256 IN (SELECT sha256 FROM processed WHERE processed_at >= ?)"
                " LIMIT 1)", [since]):
            return True
    return False


def assessment_age(con: duckdb.DuckDBPyConnection) -> AssessmentAge:
    """When the assessment was made (its listings' ``assessed_at``, else its sales'
    ``computed_at``; None when there is none) and whether evidence it reads was ingested
    since or a link run since changed the personas (the first link run after an
    assessment made before any always does: every account becomes a persona)."""
    at = None
    for table, column in (("listing_assessments", "assessed_at"),
                          ("sales_summary", "computed_at")):
        if at is None and table_exists(con, table):
            row = con.execute(f'SELECT max("{column}") FROM "{table}"').fetchone()
            at = row[0] if row else None
    if at is None:
        return {"assessed_at": None, "ingested_since": False, "relinked_since": False}
    relinked = False
    if table_exists(con, "link_runs"):
        later = [r[0] for r in con.execute(
            "SELECT run_id FROM link_runs WHERE finished_at IS NOT NULL AND finished_at > ?",
            [at]).fetchall()]
        if later:
            before = _one(con, "link_runs", "SELECT count(*) FROM link_runs WHERE"
                          " finished_at IS NOT NULL AND finished_at <= ?", [at])
            relinked = (not before or not table_exists(con, "persona_changes")
                        or bool(_one(con, "persona_changes", "SELECT count(*) FROM"
                                     " persona_changes WHERE list_contains(?, run_id)",
                                     [later])))
    return {"assessed_at": at, "ingested_since": _evidence_since(con, at, ASSESS_EVIDENCE),
            "relinked_since": relinked}


def assessment_stale(age: AssessmentAge) -> str | None:
    """What made the assessment out of date ("evidence ingested", "personas
    re-linked", or both joined by "and"); None when it is not."""
    why = [w for w, flag in (("evidence ingested", age["ingested_since"]),
                             ("personas re-linked", age["relinked_since"])) if flag]
    return " and ".join(why) or None


def assessment_note(age: AssessmentAge) -> str | None:
    """The line saying the assessment is out of date and why (None when it is not)."""
    why = assessment_stale(age)
    return f"assessment out of date ({why} since): run `darkmap assess`" if why else None


def _age(st: WorkspaceStage) -> AssessmentAge:
    return {"assessed_at": st["assessed_at"], "ingested_since": st["ingested_since_assessment"],
            "relinked_since": st["relinked_since_assessment"]}


def workspace_stage(con: duckdb.DuckDBPyConnection) -> WorkspaceStage:
    """What the workspace holds and has been through, and the next command to run."""
    link_row = (con.execute(
        "SELECT run_id, started_at, finished_at FROM link_runs WHERE finished_at IS NOT NULL"
        " ORDER BY started_at DESC, run_id LIMIT 1").fetchone()
        if table_exists(con, "link_runs") else None)
    started = link_row[1] if link_row else None
    since = 0
    ingested_since = False
    if started is not None:
        since = _one(con, "judgements", "SELECT count(*) FROM judgements WHERE"
                     " created_at >= ? OR withdrawn_at >= ?", [started, started])
        ingested_since = _evidence_since(con, started, LINK_EVIDENCE)
    age = assessment_age(con)
    st: WorkspaceStage = {
        "files": _count(con, "processed"), "ingest_runs": _count(con, "ingest_runs"),
        "interrupted_ingest": _interrupted(con),
        "accounts": _count(con, "accounts"), "listings": _count(con, "listings"),
        "feedback": _count(con, "feedback"), "transactions": _count(con, "btc_tx"),
        "linked": _count(con, "personas") > 0, "personas": _count(con, "personas"),
        "multi_account_personas": _one(
            con, "personas", "SELECT count(*) FROM personas WHERE n_accounts > 1"),
        "link_run": link_row[0] if link_row else None,
        "linked_at": link_row[2] if link_row else None,
        "judgements": _one(con, "judgements", "SELECT count(*) FROM judgements"
                           " WHERE withdrawn_at IS NULL"),
        "judgements_since_link": since, "ingested_since_link": ingested_since,
        "assessed": _count(con, "listing_assessments"),
        "assessed_at": age["assessed_at"],
        "ingested_since_assessment": age["ingested_since"],
        "relinked_since_assessment": age["relinked_since"],
        "chain_clustered": _count(con, "btc_cluster_runs") > 0,
        "wallets": _one(con, "btc_clusters",
                        "SELECT count(DISTINCT cluster_id) FROM btc_clusters"),
        # a clustering gives every address it saw a row, so an address without one was
        # loaded after it (found by an audit: status said "clustered" and `wallet show`
        # refused the new addresses)
        "unclustered_addresses": (_one(con, "btc_clusters", "SELECT count(*) FROM btc_address"
                                       " a ANTI JOIN btc_clusters c USING (address_id)")
                                  if _count(con, "btc_cluster_runs") else 0),
        "stale_blocks": _one(con, "btc_blocks",
                             "SELECT count(*) FROM btc_blocks WHERE stale"),
        "stale_transactions": _one(con, "btc_tx", "SELECT count(*) FROM btc_tx WHERE stale"),
        "operational_records": _count(con, "ops_records"),
        "next": "", "why": ""}
    st["next"], st["why"] = _next(st)
    return st


def _interrupted(con: duckdb.DuckDBPyConnection) -> InterruptedIngest | None:
    run = unfinished_run(con)
    if run is None:
        return None
    command = ("darkmap ingest " + " ".join(shell_path(a) for a in run.args) if run.args
               else "darkmap ingest PATH...")
    return {"run_id": run.run_id, "started_at": run.started_at, "files_committed": run.files,
            "args": run.args, "command": command, "unfinished_runs": run.runs}


def _next(st: WorkspaceStage) -> tuple[str, str]:
    """The command to run next and why: an interrupted ingest again, collect, link,
    assess, cluster the chain, then rank and report."""
    run = st["interrupted_ingest"]
    if run is not None:
        why = (f"ingest run {run['run_id']} started {run['started_at']:%Y-%m-%d %H:%M:%S} UTC"
               f" did not finish ({run['files_committed']:,} file(s) committed): run it "
               "again, it reads only what is not done, before linking")
        if run["args"] is None:
            why += "; its paths were not recorded: give the same ones"
        elif any(not a.startswith(("/", "--")) for a in run["args"]):
            why += "; from the folder it ran in (its paths are relative)"
        return run["command"], why
    if not st["files"] and not st["transactions"]:  # `chain import-etl` processes no file
        return ("darkmap ingest PATH...",
                "nothing ingested yet: saved pages, listing CSVs, seized dumps, chain data")
    if st["accounts"] and not st["linked"]:
        return "darkmap link", "the accounts are not linked into personas yet"
    if st["accounts"] and st["ingested_since_link"]:
        return "darkmap link", "account evidence was ingested after the last link run"
    if st["accounts"] and st["judgements_since_link"]:
        n = st["judgements_since_link"]
        return "darkmap link", f"{n:,} judgement(s) made or withdrawn since the last link run"
    if st["listings"] > st["assessed"]:
        n = st["listings"] - st["assessed"]
        return "darkmap assess", f"{n:,} listing(s) not assessed yet: drugs, doses, prices, sales"
    stale = assessment_stale(_age(st))
    if stale:
        return "darkmap assess", f"assessment out of date: {stale} since"
    if st["transactions"] and not st["chain_clustered"]:
        return "darkmap chain cluster", "chain data is loaded but not clustered into wallets"
    if st["unclustered_addresses"]:
        n = st["unclustered_addresses"]
        return ("darkmap chain cluster",
                f"{n:,} address(es) loaded after the last clustering are in no wallet yet")
    if st["listings"]:
        return "darkmap targets", "every stage has run: rank the personas by harm"
    return "darkmap report -o report.html", "every stage has run"


def stage_assessment_stale(st: WorkspaceStage) -> str | None:
    """:func:`assessment_stale` of a workspace stage."""
    return assessment_stale(_age(st))
