"""The facts every exporter maps: read once from the store, narrowed to a selection.

:func:`load` reads markets, accounts, personas, listings, PGP keys, selectors
(crypto addresses, e-mail addresses, onions, contact handles), account links and the
captures behind them, plus each persona's harm score when the listings are assessed.
The Bitcoin addresses among the selectors are placed in their wallets (clusters) of the
chain tables, and the transfers paid by or to those wallets are read with the wallets at
their other end (:mod:`darkmap.store.transfers`), valued in USD at the fx table's rate of
the block's day. With a selection (:class:`~darkmap.export.options.ExportOptions`), only
the selected accounts and what hangs off them (so only the transfers touching the
wallets of their addresses), and only the captures those facts cite.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from darkmap.export.options import ExportOptions
from darkmap.store import exports as store
from darkmap.store import transfers as chain_store
from darkmap.store.workspace import Workspace, table_has_rows

__all__ = ["WALLET_KINDS", "ExportData", "Flow", "Harm", "link_criteria", "load"]

WALLET_KINDS = {"btc_address": ("BTC", "Bitcoin"), "xmr_address": ("XMR", "Monero")}
"""Selector kinds that are cryptocurrency addresses: (currency symbol, chain name)."""


@dataclass(frozen=True)
class Harm:
    """A persona's (or lone account's) harm score, the counts behind it and what it rests
    on, as `darkmap targets` gives them (:class:`~darkmap.assess.harm.TargetRow`)."""

    score: float
    fentanyl_listings: int
    counterfeit_listings: int
    drug_listings: int
    top_substances: dict[str, int]
    sales_evidence: bool = False
    """Some account shows a counter, feedback or a sales bracket."""
    rests_on: str = ""
    """"listings and sales", or "no sales evidence: ..." (``harm_rests_on``)."""
    from_listings: float = 0.0
    """Score points from the listings (fentanyl, counterfeit, opioid share)."""
    from_activity: float = 0.0
    """Score points from activity (volume, revenue, reach, duration)."""


@dataclass(frozen=True)
class Flow:
    """A Bitcoin transfer between two wallets, with its value in BTC and in USD at the
    day's rate of the fx table (``usd`` None when the table has no rate; ``usd_source``
    names the table and any note, such as a date past its end)."""

    transfer: chain_store.Transfer
    btc: float
    usd: float | None
    usd_source: str


@dataclass
class ExportData:
    """Everything an exporter writes, each list in a stable order."""

    markets: list[store.MarketFacts]
    accounts: list[store.AccountFacts]
    personas: list[store.PersonaFacts]
    listings: list[store.ListingFacts]
    pgp_keys: list[store.PgpKeyFacts]
    selectors: list[store.IdentifierFacts]
    links: list[store.LinkFacts]
    uses: list[store.SelectorUse]
    captures: list[store.CaptureFacts]
    harm: dict[str, Harm] = field(default_factory=dict)
    selection: list[str] | None = None
    address_wallets: dict[str, int] = field(default_factory=dict)
    """Exported Bitcoin address -> its wallet (cluster id, else address id) in the chain."""
    chain_wallets: dict[int, chain_store.ChainWallet] = field(default_factory=dict)
    """Every wallet an exported address is in or a flow touches."""
    flows: list[Flow] = field(default_factory=list)
    """Transfers paid by or to the wallets of the exported addresses, in chain order."""
    not_own: dict[str, str] = field(default_factory=dict)
    """Identifier values no one vendor's own, as the linker judges them (``kind:value``
    case-folded -> why: :func:`~darkmap.resolve.profiles.not_own_values`), over the
    whole workspace: a market's onion stays one in an export narrowed to one persona."""

    @property
    def wallets(self) -> list[store.IdentifierFacts]:
        """The selectors that are cryptocurrency addresses."""
        return [s for s in self.selectors if s.kind in WALLET_KINDS]

    def not_own_reason(self, selector: store.IdentifierFacts) -> str | None:
        """Why ``selector`` is no one vendor's own (a market's or a service's onion, a
        value on many accounts), or ``None``: what the linker does not compare is no
        vendor's indicator either."""
        return self.not_own.get(f"{selector.kind}:{selector.value.strip().casefold()}")

    def harm_of(self, account: store.AccountFacts) -> Harm | None:
        """The harm score of the account's persona (or of the account alone)."""
        return self.harm.get(account.persona_id or account.account_id)


def _harm(ws: Workspace) -> dict[str, Harm]:
    """Harm per persona id (and per account id of unlinked accounts), once assessed."""
    if not table_has_rows(ws.con, "listing_assessments"):
        return {}
    # Imported here, measured: ~30 ms, and every ingest loads every exporter.
    from darkmap.assess.harm import rank_targets  # noqa: PLC0415 - see above

    return {t["persona_id"]: Harm(t["harm_score"], t["fentanyl_listings"],
                                  t["counterfeit_listings"], t["drug_listings"],
                                  dict(t["top_substances"]), t["sales_evidence"],
                                  t["harm_rests_on"], t["harm_parts"]["listings"],
                                  t["harm_parts"]["activity"])
            for t in rank_targets(ws, None, None)}


def _flows(ws: Workspace, data: ExportData) -> None:
    """The wallets of the exported Bitcoin addresses and the transfers touching them."""
    btc = [s.value for s in data.selectors if s.kind == "btc_address"]
    data.address_wallets = chain_store.wallets_of(ws.con, btc)
    transfers = chain_store.transfers_touching(ws.con, list(data.address_wallets.values()))
    if not transfers:
        data.chain_wallets = chain_store.chain_wallets(
            ws.con, list(data.address_wallets.values()))
        return
    # Imported here: the fx table is read only when there is a flow to value.
    from darkmap.assess.fx import load_fx  # noqa: PLC0415 - see above

    fx = load_fx(workspace=ws.path)
    for t in transfers:
        btc_amount = t.amount_sat / 1e8
        rate, note = fx.rate("BTC", t.block_time)
        source = fx.source + (f" ({note})" if note else "")
        data.flows.append(Flow(t, round(btc_amount, 8),
                               None if rate is None else round(btc_amount * rate, 2), source))
    wallets = set(data.address_wallets.values())
    wallets.update(w for t in transfers for w in (t.payer, t.beneficiary))
    data.chain_wallets = chain_store.chain_wallets(ws.con, sorted(wallets))


def load(ws: Workspace, options: ExportOptions | None = None) -> ExportData:
    """Read the facts of ``ws`` (narrowed to ``options``' selection) for an exporter."""
    options = options or ExportOptions()
    con = ws.con
    sel = store.select_accounts(con, options.personas, options.countries,
                                options.subjects)
    data = ExportData(
        markets=store.markets(con, sel), accounts=store.accounts(con, sel),
        personas=store.personas(con, sel), listings=store.listings(con, sel),
        pgp_keys=store.pgp_keys(con, sel), selectors=store.identifiers(con, sel),
        links=store.account_links(con, sel), uses=store.selector_uses(con, sel),
        captures=[], harm=_harm(ws), selection=sel)
    _flows(ws, data)
    if data.selectors:
        # Imported here: the linker's profiles load numpy and scipy, which most
        # commands importing the exporters never need.
        from darkmap.resolve.profiles import not_own_values  # noqa: PLC0415 - see above

        data.not_own = not_own_values(con)
    if sel is None:
        data.captures = store.captures(con)
    else:
        cited = {m.capture_sha256 for m in data.markets}
        cited.update(a.capture_sha256 for a in data.accounts)
        cited.update(x.capture_sha256 for x in data.listings)
        cited.update(k.capture_sha256 for k in data.pgp_keys)
        cited.update(c for s in data.selectors for c in s.captures)
        cited.update(f.transfer.capture_sha256 for f in data.flows)
        data.captures = store.captures(con, sorted(cited))
    return data


def link_criteria(signals: str) -> str:
    """The signals that moved a link score, strongest first (``handle: same handle...``)."""
    try:
        parsed = json.loads(signals)
    except ValueError:
        return signals
    if not isinstance(parsed, dict):
        return signals
    rows = [(abs(float(v.get("contribution") or 0)), k, v.get("level"))
            for k, v in parsed.items() if isinstance(v, dict) and k != "_base"]
    rows.sort(key=lambda r: (-r[0], r[1]))
    return "; ".join(f"{k}: {lvl}" for c, k, lvl in rows if c > 0) or "no signal"
