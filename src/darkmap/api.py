"""darkmap's Python API: the whole job as typed functions, in the order of the flow.

Each function is a thin call of the library function that does the work (named in its
docstring); the CLI commands call the same functions. Every function but
:func:`simulate_world` takes an open :class:`~darkmap.store.workspace.Workspace` first.
Paths may be given as ``str`` or :class:`pathlib.Path`. Errors darkmap raises on purpose
are :class:`~darkmap.errors.DarkmapError` subclasses (see :mod:`darkmap.errors`).

>>> import darkmap
>>> ws = darkmap.init_workspace("case-42")                      # doctest: +SKIP
>>> darkmap.ingest(ws, "../shared/data/pages").totals()         # doctest: +SKIP
>>> darkmap.link(ws).summary["personas"]                        # doctest: +SKIP

docs/python-api.md has a worked example on the real data; the tests run it.
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from darkmap.assess.harm import TargetRow, rank_targets
from darkmap.assess.sales import SalesParams
from darkmap.assess.stage import AssessSummary, assess_workspace
from darkmap.chain.cluster import DEFAULT_HEURISTICS, ClusterSummary, run_clustering
from darkmap.chain.etl_parquet import EtlImport, export_etl, import_etl
from darkmap.chain.spark import run_clustering_spark
from darkmap.chain.tags import sync_evidence_tags
from darkmap.chain.trace import TraceResult
from darkmap.chain.trace import trace as _trace
from darkmap.chain.wallet import WalletSummary, wallet_summary
from darkmap.collect.crawl import CrawlOptions, CrawlReport
from darkmap.collect.crawl import crawl as _crawl
from darkmap.collect.crawl import crawl_status as _crawl_status
from darkmap.collect.ingest import FileResult, IngestSummary
from darkmap.collect.ingest import ingest as _ingest
from darkmap.collect.verify import VerifyReport
from darkmap.collect.verify import verify_captures as _verify_captures
from darkmap.errors import BadInputError, NotFoundError, WorkspaceStateError
from darkmap.evaluate.clustering import ChainEvalReport, eval_chain
from darkmap.evaluate.drugs import DrugEvalReport, eval_drugs
from darkmap.evaluate.linking import LinkingReport, eval_linking
from darkmap.evaluate.sales import SalesEvalReport, eval_sales
from darkmap.export import ExportOptions, run_export
from darkmap.ops import audit as _audit
from darkmap.ops.records import Record, read_records, withdraw_record
from darkmap.ops.totals import operation_report as _operation_report
from darkmap.pipeline import DemoContext, StageResult, run_stages
from darkmap.plugins import exporters, importers
from darkmap.report.html import write_report as _write_report
from darkmap.resolve.judgements import Judgement, withdraw
from darkmap.resolve.judgements import judge as _judge
from darkmap.resolve.link import LinkOptions, LinkResult
from darkmap.resolve.link import link as _link
from darkmap.resolve.lookup import PersonaDetail, PersonaHit
from darkmap.resolve.lookup import search_personas as _search_personas
from darkmap.resolve.lookup import show_persona as _show_persona
from darkmap.resolve.spark import link_spark
from darkmap.simulate import SimParams, simulate
from darkmap.store.fieldreport import FieldCount
from darkmap.store.fieldreport import field_report as _field_report
from darkmap.store.operations import Space
from darkmap.store.workspace import Workspace, table_has_rows

__all__ = [
    "CrawlOptions",
    "CrawlReport",
    "ExportOptions",
    "LinkOptions",
    "PathLike",
    "SalesParams",
    "SimParams",
    "assess_listings",
    "cluster_addresses",
    "crawl_market",
    "crawl_status",
    "evaluate_chain",
    "evaluate_drugs",
    "evaluate_linking",
    "evaluate_sales",
    "export_chain_etl",
    "export_evidence",
    "import_chain_etl",
    "field_report",
    "ingest",
    "init_workspace",
    "judge",
    "link",
    "open_workspace",
    "operation_report",
    "ops_records",
    "ops_withdraw",
    "run_demo_pipeline",
    "search_personas",
    "show_persona",
    "simulate_world",
    "targets",
    "trace",
    "verify_audit",
    "verify_captures",
    "wallet",
    "withdraw_judgement",
    "write_report",
]

PathLike = str | os.PathLike[str]
"""A path given as ``str`` or :class:`pathlib.Path`."""


# -- workspace ---------------------------------------------------------------------------


def init_workspace(path: PathLike) -> Workspace:
    """Create the workspace folder ``path`` (or open it if it exists) and migrate it.

    A workspace is a folder holding one DuckDB file and the capture store (the exact
    bytes of every file ingested). Close it with ``ws.close()`` or use it in ``with``.

    Example::

        ws = darkmap.init_workspace("case-42")
    """
    return Workspace.init(Path(path))


def open_workspace(path: PathLike, read_only: bool = False) -> Workspace:
    """Open the existing workspace ``path``, applying any pending migrations.

    ``read_only=True`` opens it without writing (several readers may share it); the
    functions that only answer questions (personas, targets, trace...) work on it.
    Raises :class:`~darkmap.errors.WorkspaceStateError` when ``path`` is not a workspace
    or is newer than this darkmap.

    Example::

        with darkmap.open_workspace("case-42", read_only=True) as ws:
            print(ws.table_counts()["personas"])
    """
    return Workspace.open(Path(path), read_only=read_only)


# -- collect -----------------------------------------------------------------------------


def simulate_world(out: PathLike, seed: int = 7, params: SimParams | None = None,
                   force: bool = False) -> dict[str, Any]:
    """Write a synthetic world with ground truth into the folder ``out``; return counts.

    The world holds saved market pages, listing CSVs, a seized SQL dump, Bitcoin blk
    files and TagPacks (ingest those folders) and ``truth.json``, the answer key for the
    ``evaluate_*`` functions (never ingest it). The same seed and ``params`` give the same
    world. ``force=True`` replaces a previous simulation in ``out``. Calls
    :func:`darkmap.simulate.simulate`.

    Example::

        darkmap.simulate_world("world", seed=7, params=darkmap.SimParams(vendors=60))
    """
    return simulate(Path(out), seed, params or SimParams(), force)


def ingest(ws: Workspace, paths: PathLike | Iterable[PathLike], importer: str | None = None,
           progress: Callable[[FileResult], None] | None = None,
           mappings: Iterable[PathLike] = (), jobs: int = 1,
           reading: Callable[[str, int], None] | None = None,
           captured_at: datetime | None = None) -> IngestSummary:
    """Capture and read files and folders into ``ws``; return the run's summary.

    Each file goes to the importer that recognises it (saved market pages, listing
    datasets, seized SQL dumps, Bitcoin block data, GraphSense TagPacks), or to
    ``importer`` when named. Re-ingesting a file is a no-op; every unit read is stored,
    quarantined or skipped with its reason. ``progress`` is called after each file.
    ``mappings`` are dataset mapping files (YAML, docs/data-formats.md) to use besides
    the built-in ones (they stay loaded in this process until
    ``darkmap.importers.mappings.forget_added_mappings()``); ``summary.unrecognised()``
    lists the files no importer took. ``jobs`` > 1 extracts saved pages ahead in that
    many worker processes and reads a big CSV in a process of its own while it is
    written (the same rows are stored). ``reading(source, records)`` is told how many
    records of a big file (over 8 MiB) have been read, every 10,000 or so.
    ``captured_at`` (UTC) is when the files were captured, as the analyst states it
    (``darkmap ingest --captured-at``): saved pages that state no time of their own are
    observed then, not at their files' modification times.
    Calls :func:`darkmap.collect.ingest.ingest`.

    Example::

        summary = darkmap.ingest(ws, ["pages/hansa", "seized/dream-2016-sellers.sql"])
        summary.totals()      # files, read, stored, quarantined, skipped
        summary.by_market()
    """
    given = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    found = [Path(p) for p in given]
    for p in found:
        if not p.exists():
            raise NotFoundError(f"{p}: no such file or folder")
    if importer is not None and importer not in importers():
        raise BadInputError(f"unknown importer {importer!r}; have: "
                            + ", ".join(sorted(importers())))
    return _ingest(ws, found, importer_name=importer, progress=progress,
                   mapping_files=[Path(m) for m in mappings], jobs=jobs, reading=reading,
                   captured_at=captured_at)


def crawl_market(ws: Workspace, options: CrawlOptions,
                 on_start: Callable[[str], None] | None = None) -> CrawlReport:
    """Crawl (or resume the crawl of) one market through Tor; return the run's report.

    Every request and response is kept as WARC under ``<workspace>/crawl/``, every page
    captured and extracted like a saved page; a login, CAPTCHA, queue or expired-session
    page pauses the crawl (``report.status == "paused"``, ``report.reason`` says what to
    do). The run is logged to the audit trail. Calls :func:`darkmap.collect.crawl.crawl`
    (docs/crawling.md).

    Example::

        rep = darkmap.api.crawl_market(ws, CrawlOptions("nightshade",
                                                        start_url="http://...onion/",
                                                        proxy="socks5h://127.0.0.1:9050"))
    """
    def audit(rep: CrawlReport) -> None:
        _audit.log(ws.con, f"crawler:{getpass.getuser()}", "crawl", rep.status,
                   market=rep.market_id, crawl_id=rep.crawl_id, requests=rep.fetched,
                   pages=rep.pages, reason=rep.reason)

    # interrupted runs are audited too; on_start(message) states the job and its limits
    return _crawl(ws, options, on_end=audit, on_start=on_start)


def crawl_status(ws: Workspace, market: str) -> dict[str, Any]:
    """The market's latest crawl: status, reason, frontier and request counts.
    Calls :func:`darkmap.collect.crawl.crawl_status`."""
    return _crawl_status(ws, market)


def verify_captures(ws: Workspace,
                    progress: Callable[[int, int], None] | None = None) -> VerifyReport:
    """Re-hash every capture of ``ws``; report the ones changed on disk or missing.

    Every stored fact points to a capture (the exact bytes of a file ingested, named by
    their SHA-256); a capture edited or deleted after ingest is no longer evidence. The
    report's ``changed`` and ``missing`` list them (``intact`` when neither has any);
    nothing is written. ``progress(done_bytes, total_bytes)`` is called as it goes.
    Calls :func:`darkmap.collect.verify.verify_captures`.

    Example::

        report = darkmap.verify_captures(ws)
        report.intact, [p.sha256 for p in report.changed]
    """
    return _verify_captures(ws, progress)


# -- resolve: accounts into personas ------------------------------------------------------


def link(ws: Workspace, options: LinkOptions | None = None, engine: str = "embedded",
         master: str = "local[2]", progress: Callable[[str], None] | None = None
         ) -> LinkResult:
    """Link every account of ``ws`` into personas and store them with their links.

    Replaces the personas of an earlier run; analyst judgements always hold.
    ``options`` chooses the model, the signals and the merge threshold (default:
    every signal, the shipped logistic model, threshold 0.3). The result's ``summary``
    counts accounts, personas, multi-account and cross-market personas. Calls
    :func:`darkmap.resolve.link.link`.

    Example::

        res = darkmap.link(ws, darkmap.LinkOptions(without=("identifiers",)))
        res.summary["cross_market_personas"]

    ``engine="spark"`` compares the pairs and clusters them on Spark (``master``), with
    the same result (:func:`darkmap.resolve.spark.link_spark`). ``progress`` is told
    each stage as it starts (``darkmap link`` shows it on a status line).
    """
    if engine == "spark":
        return link_spark(ws, options, master, progress=progress)
    if engine != "embedded":
        raise BadInputError(f"unknown engine {engine!r}; embedded or spark")
    return _link(ws, options, progress)


def judge(ws: Workspace, a: str, b: str, verdict: str, author: str | None = None,
          note: str | None = None) -> Judgement:
    """Record an analyst verdict (``same``, ``different``, ``unsure``) on accounts ``a``, ``b``.

    The next :func:`link` treats ``same`` and ``different`` as hard constraints.
    ``author`` defaults to ``$USER``. Returns the stored judgement. Calls
    :func:`darkmap.resolve.judgements.judge`.

    Example::

        darkmap.judge(ws, "dream:monoko", "cryptonia:monoko", "same", note="same PGP key")
    """
    return _judge(ws, a, b, verdict, author=author, note=note)


def withdraw_judgement(ws: Workspace, a: str, b: str) -> int:
    """Withdraw every standing judgement on accounts ``a`` and ``b``; return how many.

    Judgements are never deleted, only stamped as withdrawn. Calls
    :func:`darkmap.resolve.judgements.withdraw`.

    Example::

        darkmap.withdraw_judgement(ws, "dream:monoko", "cryptonia:monoko")
    """
    return withdraw(ws, a, b)


def search_personas(ws: Workspace, text: str, limit: int = 50) -> list[PersonaHit]:
    """Personas whose accounts match ``text``, most accounts first.

    ``text`` is a handle or part of one, an account id, a PGP fingerprint (or its
    tail), a Bitcoin address or a contact; each hit says what matched. Calls
    :func:`darkmap.resolve.lookup.search_personas`.

    Example::

        [p["persona_id"] for p in darkmap.search_personas(ws, "monoko")]
    """
    return _search_personas(ws, text, limit)


def show_persona(ws: Workspace, ref: str) -> PersonaDetail:
    """One persona (by persona id or any member account id) and why it holds together.

    Gives its accounts with their active periods, the identifiers they published, every
    stored link with the signals that scored it, and the standing judgements. Raises
    :class:`~darkmap.errors.NotFoundError` (a ``KeyError``) for an unknown ``ref``.
    Calls :func:`darkmap.resolve.lookup.show_persona`.

    Example::

        p = darkmap.show_persona(ws, "dream:monoko")
        [a["account_id"] for a in p["accounts"]]
    """
    return _show_persona(ws, ref)


# -- assess: what is sold, how much, by whom, from where ----------------------------------


def assess_listings(ws: Workspace, params: SalesParams | None = None,
                    progress: Callable[[str], None] | None = None) -> AssessSummary:
    """Classify every listing (drug class, substance, fentanyl and counterfeit-pill flags,
    dose, quantity, unit price), then estimate sales and jurisdictions.

    Rebuilds the assessment tables, so a rerun gives the same rows. Orders, units and
    customers get 90% intervals (docs/sales.md); ``params`` may fix the feedback rate of
    markets that show no sales counters (default: borrowed from those that do) and the
    Monte Carlo size and seed; ``progress`` is called with each stage as it starts and
    the listings classified so far. Returns counts by drug class. Calls
    :func:`darkmap.assess.stage.assess_workspace`.

    Example::

        darkmap.assess_listings(ws)["fentanyl_risk"]
    """
    return assess_workspace(ws, params or SalesParams(), progress)


def targets(ws: Workspace, country: str | None = None,
            limit: int | None = 20) -> list[TargetRow]:
    """Personas ranked by harm score (0..100, highest first), each with its evidence.

    Fentanyl and counterfeit pills weigh most, then volume, revenue, reach and duration
    (see :mod:`darkmap.assess.harm`). ``country`` keeps the personas operating from that
    ISO country; ``limit=None`` returns all. Only reads: raises
    :class:`~darkmap.errors.WorkspaceStateError` when listings were ingested but not yet
    assessed. Calls :func:`darkmap.assess.harm.rank_targets`.

    Example::

        for t in darkmap.targets(ws, country="GB", limit=5):
            print(t["harm_score"], t["label"], t["accounts"])
    """
    if (table_has_rows(ws.con, "listing_observations")
            and not table_has_rows(ws.con, "listing_assessments")):
        raise WorkspaceStateError("the listings are not assessed yet: run "
                                  "assess_listings(ws) (`darkmap assess`) first")
    return rank_targets(ws, country, limit)


# -- follow the money ----------------------------------------------------------------------


def cluster_addresses(ws: Workspace, heuristics: Sequence[str] = DEFAULT_HEURISTICS,
                      method: str = "scipy", engine: str = "embedded",
                      master: str = "local[2]") -> ClusterSummary:
    """Cluster the ingested Bitcoin addresses into wallets and tie in the evidence.

    ``heuristics`` are named in :data:`darkmap.chain.cluster.HEURISTICS` (default:
    multi-input only); every merge is stored with its transaction and heuristic. Then
    the addresses that market pages and dumps published become ``evidence`` tags
    pointing at their accounts and personas (``evidence_tags`` in the summary). Calls
    :func:`darkmap.chain.cluster.run_clustering` and
    :func:`darkmap.chain.tags.sync_evidence_tags`.

    Example::

        darkmap.cluster_addresses(ws, ["multi_input", "change_one_time"])["clusters"]

    ``engine="spark"`` runs the same stage on Spark (``master``: ``local[2]``,
    ``spark://host:7077``, ``k8s://...``; :func:`darkmap.chain.spark.run_clustering_spark`):
    the same clusters, merges with their reasons and CoinJoins.
    """
    if engine == "spark":
        summary = run_clustering_spark(ws, tuple(heuristics), master).copy()
    elif engine == "embedded":
        summary = run_clustering(ws, tuple(heuristics), method).copy()
    else:
        raise BadInputError(f"unknown engine {engine!r}; embedded or spark")
    summary["evidence_tags"] = sync_evidence_tags(ws)
    return summary


def export_chain_etl(ws: Workspace, out_dir: PathLike) -> dict[str, int]:
    """Write the chain as blockchain-etl Parquet (``blocks.parquet``,
    ``transactions.parquet`` with nested inputs and outputs) under ``out_dir``. Calls
    :func:`darkmap.chain.etl_parquet.export_etl`.

    Example::

        darkmap.export_chain_etl(ws, "etl")["transactions"]
    """
    return export_etl(ws, Path(out_dir))


def import_chain_etl(ws: Workspace, path: PathLike) -> EtlImport:
    """Load blockchain-etl Parquet (a file or a folder) into the chain tables. Calls
    :func:`darkmap.chain.etl_parquet.import_etl`.

    Example::

        darkmap.import_chain_etl(ws, "etl")["txs"]
    """
    return import_etl(ws, Path(path))


def trace(ws: Workspace, target: str, direction: str = "forward", hops: int = 10,
          method: str = "poison") -> TraceResult:
    """Follow value from (``forward``) or into (``backward``) an address or ``cluster:N``.

    Stops at tagged services and lists the amounts that reached each, exchange
    cash-out points and peel chains. ``method`` is ``poison``, ``haircut`` or ``fifo``
    (how a transaction passes taint to its outputs). Calls
    :func:`darkmap.chain.trace.trace`.

    Example::

        t = darkmap.trace(ws, "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S", hops=5)
        t["transactions_visited"], t["peel_chains"]
    """
    return _trace(ws, target, direction, hops, method)


def wallet(ws: Workspace, ident: str, limit: int = 50) -> WalletSummary:
    """A wallet (the cluster of an address, a cluster id or ``cluster:N``) in full.

    Addresses, totals received and sent, flows by month, counterparties with their
    tags, the market accounts and personas that published its addresses, and why its
    addresses were merged; lists hold up to ``limit`` rows. Calls
    :func:`darkmap.chain.wallet.wallet_summary`.

    Example::

        w = darkmap.wallet(ws, "12cbQLTFMXRnSzktFkuoG3eHoMeFtpTu3S")
        w["received_sat"], w["paid_to"][0]["example_address"]
    """
    return wallet_summary(ws, ident, limit)


# -- evaluate --------------------------------------------------------------------------------


def field_report(ws: Workspace) -> list[FieldCount]:
    """How often each stored field was found, per market and page type.

    Calls :func:`darkmap.store.fieldreport.field_report`.

    Example::

        [c for c in darkmap.field_report(ws) if c.field == "joined_at"]
    """
    return _field_report(ws.con)


def _truth(truth: dict[str, Any] | PathLike) -> dict[str, Any]:
    """A truth document given as a dict or as the path of a ``truth.json``."""
    if isinstance(truth, dict):
        return truth
    path = Path(truth)
    if not path.is_file():
        raise NotFoundError(f"{path}: no such truth file")
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def evaluate_linking(ws: Workspace, truth: dict[str, Any] | PathLike) -> LinkingReport:
    """Score the personas of ``ws`` against a simulated world's truth.

    Pairwise and B-cubed precision, recall and F1 over the vendor accounts the truth
    names. ``truth`` is ``truth.json`` as a path or a loaded dict. Calls
    :func:`darkmap.evaluate.linking.eval_linking`.

    Example::

        darkmap.evaluate_linking(ws, "world/truth.json")["pairwise_f1"]
    """
    return eval_linking(ws, _truth(truth))


def evaluate_drugs(ws: Workspace | None, labels: PathLike, listings: PathLike | None = None,
                   split: str | None = None, errors: int = 25,
                   split_column: str = "split") -> DrugEvalReport:
    """Score the listing assessor against hand labels (a CSV with ``listing_id``, ...).

    The labelled listings are read from ``listings`` (a source CSV or folder) when
    given, else from ``ws`` (which may then be ``None`` only if ``listings`` is given).
    Gives accuracy and macro-F1 for drug class and substance, precision and recall of
    both flags, exact-match rates for units and dose, and up to ``errors`` mistakes.
    ``split`` keeps only the label rows whose ``split_column`` equals it (the CLI's
    ``--split``, ``--split-column``). Calls :func:`darkmap.evaluate.drugs.eval_drugs`.

    Example::

        darkmap.evaluate_drugs(None, "labels.csv", listings="hansa-2016-12.csv")
    """
    return eval_drugs(Path(labels), Path(listings) if listings is not None else None,
                      workspace=ws, split=split, errors=errors, split_column=split_column)


def evaluate_chain(ws: Workspace, truth: dict[str, Any] | PathLike, hops: int = 10,
                   method: str = "poison") -> ChainEvalReport:
    """Score address clustering and cash-out tracing against a simulated world's truth.

    Pairwise precision/recall and purity of the clusters against the true wallets, and
    the share of vendor cash-outs that a forward trace of ``hops`` reaches at the right
    exchange. Calls :func:`darkmap.evaluate.clustering.eval_chain`.

    Example::

        darkmap.evaluate_chain(ws, "world/truth.json")["cashouts"]["share_traced"]
    """
    return eval_chain(ws, _truth(truth), hops, method)


def evaluate_sales(ws: Workspace, truth: dict[str, Any] | PathLike) -> SalesEvalReport:
    """Score the sales estimates of ``ws`` against a simulated world's truth.

    Median relative error, coverage of the stated (90%) intervals and bias of orders,
    customers and units (pills, counterfeit pills, fentanyl-risk pills, grams) per account
    and per persona, and orders by the basis of the estimate. Calls
    :func:`darkmap.evaluate.sales.eval_sales`.

    Example::

        darkmap.evaluate_sales(ws, "world/truth.json")["accounts"]["orders"]["coverage"]
    """
    return eval_sales(ws, _truth(truth))


# -- present ----------------------------------------------------------------------------------


def write_report(ws: Workspace, out: PathLike | None = None, user: str | None = None,
                 ops: Space | None = None) -> Path:
    """Write the self-contained HTML report of ``ws``; return its path.

    One section per stage that has run (collection, markets, personas, targets, money,
    evaluation); with ``user``, the operations section as that user may see it (of the
    records in ``ops``, the team server, or else the workspace; audited). Default path:
    ``<workspace>/report.html``. Calls :func:`darkmap.report.html.write_report`.

    Example::

        darkmap.write_report(ws, "case-42.html", user="ana")
    """
    return _write_report(ws, Path(out) if out is not None else None, user, ops)


def export_evidence(ws: Workspace, out: PathLike, fmt: str = "ftm",
                    options: ExportOptions | None = None) -> dict[str, int]:
    """Export the evidence store in another tool's format; return counts written.

    ``fmt`` names a registered exporter (``ftm``: FollowTheMoney entities, one JSON
    object a line, each pointing at the capture it came from). ``options`` narrows the
    export to personas or countries and sets the format's options, as ``darkmap export``'s
    ``--persona``, ``--country``, ``--extended``, ``--table`` and ``--all`` do (``csv`` and
    ``parquet`` need ``tables`` or ``all_tables``); an option the format does not take is
    a :class:`~darkmap.errors.BadInputError`. Calls the exporter registered in
    :func:`darkmap.plugins.exporters` through :func:`darkmap.export.run_export`.

    Example::

        darkmap.export_evidence(ws, "entities.ftm.json")   # {"Person": ..., ...}
        darkmap.export_evidence(ws, "tables", "parquet", ExportOptions(all_tables=True))
    """
    found = exporters()
    if fmt not in found:
        raise BadInputError(f"unknown export format {fmt!r}; have: {', '.join(sorted(found))}")
    return run_export(found[fmt], ws, Path(out), options)


def run_demo_pipeline(ws: Workspace, world: PathLike | None = None,
                      real_data: PathLike | None = None, seed: int = 7, vendors: int = 300,
                      on_stage: Callable[[StageResult], None] | None = None
                      ) -> list[StageResult]:
    """Run the whole job (``darkmap demo``): simulate, ingest, link, assess, money, evaluate,
    and an operation of two agencies on a simulated persona (docs/operations.md).

    ``world`` is the folder of the simulated world (generated there unless it already
    holds one; no world: simulation and evaluation are skipped); ``real_data`` is a
    folder of real evidence ingested too. ``on_stage`` is called after each stage.
    Returns how each stage went; draw the report with :func:`write_report` after. Calls
    :func:`darkmap.pipeline.run_stages`.

    Example::

        for r in darkmap.run_demo_pipeline(ws, world="world", vendors=60):
            print(r.name, r.status, round(r.seconds, 1))
    """
    ctx = DemoContext(world=Path(world) if world is not None else None,
                      real_data=Path(real_data) if real_data is not None else None,
                      seed=seed, vendors=vendors)
    return run_stages(ws, ctx, on_stage)


# -- operations (issue #13) -----------------------------------------------------------------


def ops_records(ws: Space, user: str, kind: str | None = None,
                operation: str | None = None, case: str | None = None,
                withdrawn: bool = False) -> list[Record]:
    """The operational records ``user`` may read (cases, buys, parcels, seizures,
    arrests), optionally of one kind, operation or case; the read is audited. Withdrawn
    records are left out unless ``withdrawn`` (then ``Record.withdrawal`` marks them).

    Only what the user's grants reach is returned (docs/operations.md). Calls
    :func:`darkmap.ops.records.read_records`.

    Example::

        for r in darkmap.ops_records(ws, "ana", kind="buy"):
            print(r.row.record_id, r.lab)
    """
    return read_records(ws, user, kind, operation, case, withdrawn)


def ops_withdraw(ws: Space, user: str, record_id: str, why: str,
                 replaced_by: str | None = None) -> Any:
    """Withdraw an operational record (a mistyped seizure, the wrong operation, a
    duplicate), audited; the record is never changed or deleted, only left out of the
    totals, packages, fentanyl marks and exports by case. Only its author or an admin of
    its agency, still a writer of its compartment, may (docs/operations.md,
    "Corrections"). Calls :func:`darkmap.ops.records.withdraw_record`; returns the
    withdrawal (by, at, why, replaced_by).

    Example::

        darkmap.ops_withdraw(ws, "ben", "seizure-0a1b2c3d4e5f", "kg typed as g",
                             replaced_by="seizure-5f4e3d2c1b0a")
    """
    return withdraw_record(ws, user, record_id, why, replaced_by)


def operation_report(ws: Space, user: str, operation: str) -> dict[str, Any]:
    """Totals of an operation as a press release gives them: recorded (from the seizures
    and arrests ``user`` may read) and reported (imported figures, each with its source,
    ranges where sources disagree), side by side. Calls
    :func:`darkmap.ops.totals.operation_report`.

    Example::

        darkmap.operation_report(ws, "ana", "SpecTor")["recorded"]["fentanyl_kg"]
    """
    return _operation_report(ws, user, operation)


def verify_audit(ws: Space) -> tuple[int, str | None]:
    """Check the hash-chained audit trail and the records against the digests their
    entries carry: (entries checked, the first bad entry and why, or the records that do
    not match, or ``None`` when both hold). Calls :func:`darkmap.ops.audit.verify` and
    :func:`darkmap.ops.audit.verify_records`.

    Example::

        n, problem = darkmap.verify_audit(ws)
        assert problem is None, problem
    """
    n, problem = _audit.verify(ws.con)
    if problem is not None:
        return n, str(problem)
    records = _audit.verify_records(ws.con)  # what the records say, against their digests
    return n, str(records) if records.broken else None
