"""Bitcoin money flows of the simulated world, written as Bitcoin Core blk files.

Flows, day by day: exchanges fund buyer addresses (batched withdrawals); each order is a
buyer payment to a fresh market deposit address (buyers spend all their coins, so old
change joins new funds: multi-input spends within one wallet); markets sweep deposits
into reused hot-wallet addresses and pay vendors in batches after an escrow delay;
vendors cash out by consolidating, optionally mixing through a CoinJoin (equal outputs
from several unrelated wallets: a correct clusterer must not merge its inputs), and
peeling chunks into their personal exchange deposit address; exchanges sweep deposits
into their hot wallets. Exit-scamming markets empty their hot wallet to the operator.

Every transaction is serialised exactly as on the wire; blocks carry correct merkle
roots and BIP 141 witness commitments; files are ``blkNNNNN.dat`` with main-net magic
framing, rolled over at 128 MiB like Bitcoin Core.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np

from darkmap.model.bitcoin import TxOut, display_hex, frame_block
from darkmap.simulate.params import SIM_DAYS
from darkmap.simulate.rand import stream
from darkmap.simulate.tx_builder import (
    RawTx,
    Spend,
    address_for,
    block_bytes,
    build_tx,
    coinbase_tx,
    output_script,
)
from darkmap.simulate.world import World, day_ts, usd_per_btc

__all__ = ["ChainResult", "EXCHANGES", "Address", "plan_payout_addresses", "simulate_chain"]

EXCHANGES = ("BitHarbor", "CoinVault", "Nordic Coin Exchange", "Satoshi Square")
_BLK_LIMIT = 128 * 1024 * 1024
_TXS_PER_BLOCK = 2500
_VBYTES_IN = {"p2pkh": 148, "p2wpkh": 68, "p2sh": 91, "p2tr": 58}
_DUST = 1000
_COIN = 100_000_000


@dataclass(frozen=True, slots=True)
class Address:
    """An address a wallet controls: script kind, key, scriptPubKey and encoding."""

    kind: str
    key: bytes
    script: bytes
    text: str


@dataclass(slots=True)
class Wallet:
    """A wallet: who owns it and its unspent outputs."""

    wid: str
    kind: str
    owner: str
    script_kind: str
    utxos: list[tuple[bytes, int, int, Address]] = field(default_factory=list)
    n_addr: int = 0

    def balance(self) -> int:
        """Sum of unspent output values in satoshis."""
        return sum(u[2] for u in self.utxos)


@dataclass
class ChainResult:
    """What other writers need from the chain run."""

    payout_address: list[str]  # per account index
    order_payment: dict[int, tuple[str, str]]  # seized-market order -> (deposit addr, txid)
    wallets: dict[str, tuple[str, str]]  # wallet id -> (kind, owner)
    cashouts: list[dict[str, str]]
    blocks: int = 0
    transactions: int = 0
    unpaid_orders: int = 0  # orders an exchange could not fund (0 unless reserves ran dry)
    files: list[str] = field(default_factory=list)


class _Chain:
    """Mutable chain state: wallets, pending flows, the block being filled."""

    def __init__(self, world: World, out: Path, addr_sink: IO[str]) -> None:
        self.w = world
        self.seed = world.seed
        self.out = out
        self.sink = addr_sink
        self.first_addr = True
        self.wallets: dict[str, Wallet] = {}
        self.pending: list[RawTx] = []
        self.height = 0
        self.prev = b"\x00" * 32
        self.blk_index = -1
        self.blk: IO[bytes] | None = None
        self.blk_size = 0
        self.files: list[str] = []
        self.n_tx = 0
        self.rng = stream(self.seed, "chain")
        self.cashouts: list[dict[str, str]] = []
        self.tagged: dict[str, tuple[str, str, str, str]] = {}

    # -- wallets and addresses --------------------------------------------------------

    def wallet(self, wid: str, kind: str, owner: str, script_kind: str) -> Wallet:
        w = self.wallets.get(wid)
        if w is None:
            w = self.wallets[wid] = Wallet(wid, kind, owner, script_kind)
        return w

    def new_address(self, w: Wallet, kind: str | None = None) -> Address:
        kind = kind or w.script_kind
        secret = hashlib.sha256(f"{self.seed}|{w.wid}|{w.n_addr}".encode()).digest()
        w.n_addr += 1
        key = secret if kind == "p2tr" else bytes([2 | (secret[0] & 1)]) + secret
        script = output_script(kind, key)
        addr = Address(kind, key, script, address_for(kind, script))
        self.sink.write(("" if self.first_addr else ",\n") + json.dumps(addr.text) + ": "
                        + json.dumps(w.wid))
        self.first_addr = False
        return addr

    # -- transactions -----------------------------------------------------------------

    def fee(self, spends: list[Spend], n_out: int, day: int) -> int:
        vbytes = 11 + sum(_VBYTES_IN[s.kind] for s in spends) + 34 * n_out
        rate = 2 + (day * 7919 % 40) + (20 if 330 <= day <= 380 else 0)
        return vbytes * rate

    def emit(self, spends: list[Spend], outs: list[tuple[int, Address, Wallet | None]],
             fee: int) -> RawTx:
        """Serialise a tx and credit each output to its wallet (``None``: not tracked)."""
        if not spends or not outs or min(v for v, _, _ in outs) < 0:
            raise RuntimeError("simulator bug: a transaction without inputs, outputs or "
                               "with a negative output")
        tx = build_tx(spends, [TxOut(v, a.script) for v, a, _ in outs], fee)
        for vout, (value, addr, w) in enumerate(outs):
            if w is not None:
                w.utxos.append((tx.txid, vout, value, addr))
        self.pending.append(tx)
        self.n_tx += 1
        return tx

    @staticmethod
    def spends_of(utxos: list[tuple[bytes, int, int, Address]]) -> list[Spend]:
        return [Spend(t, v, a.kind, a.key) for t, v, _, a in utxos]

    def take(self, w: Wallet, need: int) -> list[tuple[bytes, int, int, Address]]:
        """Pop coins from ``w`` (largest last-in first) until ``need`` is covered."""
        got: list[tuple[bytes, int, int, Address]] = []
        total = 0
        while w.utxos and total < need:
            u = w.utxos.pop()
            got.append(u)
            total += u[2]
        return got

    # -- blocks -----------------------------------------------------------------------

    def flush_blocks(self, day: int, miner: Wallet, miner_addr: Address) -> None:
        txs, self.pending = self.pending, []
        for k in range(0, len(txs), _TXS_PER_BLOCK):
            chunk = txs[k:k + _TXS_PER_BLOCK]
            fees = sum(t.fee for t in chunk)
            subsidy = (50 * _COIN) >> min(self.height // 210_000, 63)
            segwit = any(t.segwit for t in chunk)
            cb = coinbase_tx(self.height, [TxOut(subsidy + fees, miner_addr.script)],
                             [t.wtxid for t in chunk] if segwit else None)
            miner.utxos.append((cb.txid, 0, subsidy + fees, miner_addr))
            self.write_block(day_ts(day, 600 * (1 + k // _TXS_PER_BLOCK)), [cb] + chunk)

    def write_block(self, ts: int, txs: list[RawTx]) -> None:
        raw, bhash = block_bytes(self.prev, ts, txs, nonce=self.height)
        if self.blk is None or self.blk_size + len(raw) + 8 > _BLK_LIMIT:
            if self.blk is not None:
                self.blk.close()
            self.blk_index += 1
            name = f"blk{self.blk_index:05d}.dat"
            self.files.append(name)
            self.blk = open(self.out / name, "wb")
            self.blk_size = 0
        self.blk.write(frame_block(raw))
        self.blk_size += len(raw) + 8
        self.prev = bhash
        self.height += 1

    def close(self) -> None:
        if self.blk is not None:
            self.blk.close()


def plan_payout_addresses(world: World) -> list[tuple[str, int]]:
    """(vendor wallet id, address number) of each account's payout address.

    A later account of an actor reuses an earlier payout address with probability
    ``payout_address_reuse``; otherwise it gets the wallet's next address.
    """
    out: list[tuple[str, int]] = [("", 0)] * len(world.accounts)
    for actor in world.actors:
        rng = stream(world.seed, "payout", actor.idx)
        used: list[int] = []
        for a in sorted(actor.accounts, key=lambda j: world.accounts[j].start):
            if used and rng.random() < world.params.payout_address_reuse:
                out[a] = (f"vendor:{actor.actor_id}", rng.choice(used))
            else:
                used.append(len(used))
                out[a] = (f"vendor:{actor.actor_id}", used[-1])
    return out


def simulate_chain(world: World, out: Path, addr_sink: IO[str]) -> ChainResult:
    """Run every payment of ``world`` and write ``out/blkNNNNN.dat``.

    Each address created is written to ``addr_sink`` as a JSON object member
    (``"address": "wallet_id"``), so the caller can stream it into truth.json.
    """
    out.mkdir(parents=True, exist_ok=True)
    ch = _Chain(world, out, addr_sink)
    try:
        return _run(ch)
    finally:
        ch.close()


def _run(ch: _Chain) -> ChainResult:
    w = ch.w
    rng = ch.rng
    miner = ch.wallet("miner:pool", "miner", "Mining pool", "p2wpkh")
    miner_addr = ch.new_address(miner)
    ex_wallets = [ch.wallet(f"exchange:{n}", "exchange", n, "p2wpkh") for n in EXCHANGES]
    ex_hot = [[ch.new_address(x) for _ in range(3)] for x in ex_wallets]
    for x, hot in zip(ex_wallets, ex_hot, strict=True):
        for a in hot:
            ch.tagged[a.text] = (x.owner, "exchange", "service_data", "exchange proof of reserves")
    mk_wallets = [ch.wallet(f"market:{m.market_id}", "market", m.market_id,
                            "p2pkh" if m.layout == "classic" else "p2wpkh") for m in w.markets]
    mk_hot = [[ch.new_address(mw) for _ in range(2)] for mw in mk_wallets]
    vendor_wallets = [ch.wallet(f"vendor:{a.actor_id}", "vendor", a.actor_id, a.script_kind)
                      for a in w.actors]
    # payout addresses: one per distinct (wallet, number), created in plan order
    plan = plan_payout_addresses(w)
    made: dict[tuple[str, int], Address] = {}
    payout: list[Address] = []
    for acc, (wid, n) in zip(w.accounts, plan, strict=True):
        if (wid, n) not in made:
            made[(wid, n)] = ch.new_address(vendor_wallets[acc.actor])
        payout.append(made[(wid, n)])
    # exchange reserves: block 0 pays each exchange enough to fund every order 1.6 times
    o = w.orders
    rate = np.array([usd_per_btc(d) for d in range(SIM_DAYS)])
    # every order is funded once, CoinJoin participants are funded by exchanges too
    need_btc = float((o.usd / rate[o.day]).sum()) * (2.0 + 14 * w.params.coinjoin_rate) + 50.0
    per_ex = int(need_btc * _COIN / len(EXCHANGES) / 20) + _COIN
    outs = []
    for x, hot in zip(ex_wallets, ex_hot, strict=True):
        for k in range(20):
            outs.append((per_ex, hot[k % 3], x))
    cb = coinbase_tx(0, [TxOut(v, a.script) for v, a, _ in outs], None)
    for vout, (v, a, x) in enumerate(outs):
        x.utxos.append((cb.txid, vout, v, a))
    ch.write_block(day_ts(0), [cb])

    order_payment: dict[int, tuple[str, str]] = {}
    seized = next(m.idx for m in w.markets if m.seized)
    listing_market = [lst.market for lst in w.listings]
    listing_account = [lst.account for lst in w.listings]
    by_day = np.argsort(o.day, kind="stable")
    day_bounds = np.searchsorted(o.day[by_day], np.arange(SIM_DAYS + 1))
    payouts_due: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    deposits: dict[int, list[tuple[bytes, int, int, Address]]] = defaultdict(list)
    ex_deposit_addr: dict[tuple[int, str], Address] = {}
    ex_pending: list[list[tuple[bytes, int, int, Address]]] = [[] for _ in ex_wallets]
    last_cashout = [min(w.accounts[a].start for a in actor.accounts) for actor in w.actors]
    buyer_wallets: dict[int, Wallet] = {}
    holding: set[int] = set()
    next_check = [0] * len(w.actors)
    unpaid = 0
    mix_pool = [ch.wallet(f"coinjoin:{k:03d}", "mixer", f"coinjoin-participant-{k:03d}",
                          "p2wpkh") for k in range(40)]

    def buyer_wallet(b: int) -> Wallet:
        bw = buyer_wallets.get(b)
        if bw is None:
            kind = ("p2wpkh", "p2pkh", "p2sh", "p2tr")[b * 2654435761 % 97 % 4]
            bw = buyer_wallets[b] = ch.wallet(f"buyer:{b:07d}", "buyer", f"buyer-{b:07d}", kind)
        return bw

    for day in range(SIM_DAYS):
        btc_usd = usd_per_btc(day)
        sl = by_day[day_bounds[day]:day_bounds[day + 1]]
        todays = list(zip(sl.tolist(), o.buyer[sl].tolist(), o.listing[sl].tolist(),
                          o.usd[sl].tolist(), strict=True))
        # 1. exchanges fund buyers who lack coins (one batched withdrawal per exchange)
        need: dict[int, int] = defaultdict(int)
        for _, b, _, usd in todays:
            need[b] += int(round(usd / btc_usd * _COIN)) + 60_000
        withdrawals: dict[int, list[tuple[int, Address, Wallet]]] = defaultdict(list)
        for b, amount in need.items():
            bw = buyer_wallet(b)
            short = amount - bw.balance()
            if short > 0:
                extra = int(short * rng.choice((0.05, 0.1, 0.3, 0.8))) + 30_000
                withdrawals[b % len(ex_wallets)].append((short + extra, ch.new_address(bw), bw))
        for e, outs_w in sorted(withdrawals.items()):
            for k in range(0, len(outs_w), 200):
                _pay_from(ch, ex_wallets[e], outs_w[k:k + 200], day, ex_hot[e])
        # 2. buyers pay market deposit addresses
        for oi, b, lid, usd in todays:
            bw = buyer_wallets[b]
            m = listing_market[lid]
            sats = int(round(usd / btc_usd * _COIN))
            coins, bw.utxos = bw.utxos, []
            spends = ch.spends_of(coins)
            fee = ch.fee(spends, 2, day)
            change = sum(c[2] for c in coins) - sats - fee
            if change < 0:  # an unusually expensive day (or a dry exchange): top up
                bw.utxos = coins
                _pay_from(ch, ex_wallets[b % len(ex_wallets)],
                          [(-change + 100_000, ch.new_address(bw), bw)], day,
                          ex_hot[b % len(ex_wallets)])
                coins, bw.utxos = bw.utxos, []
                spends = ch.spends_of(coins)
                fee = ch.fee(spends, 2, day)
                change = sum(c[2] for c in coins) - sats - fee
                if change < 0:  # still unfunded: this order is not paid on chain
                    bw.utxos = coins
                    unpaid += 1
                    continue
            dep = ch.new_address(mk_wallets[m])
            outs_p: list[tuple[int, Address, Wallet | None]] = [(sats, dep, None)]
            if change > _DUST:
                outs_p.append((change, ch.new_address(bw), bw))
            else:
                fee += max(change, 0)
            if rng.random() < 0.5:
                outs_p.reverse()
            tx = ch.emit(spends, outs_p, fee)
            vout = next(i for i, (_, a, _) in enumerate(outs_p) if a is dep)
            deposits[m].append((tx.txid, vout, sats, dep))
            if m == seized:
                order_payment[oi] = (dep.text, display_hex(tx.txid))
                if rng.random() < 0.3:
                    ch.tagged[dep.text] = (w.markets[m].market_id, "market", "forensic",
                                           "seized market server")
            mk = w.markets[m]
            due = day + rng.randrange(3, 15)
            if mk.closed is None or due < mk.closed:
                net = int(sats * (1 - mk.commission))
                payouts_due[due].append((m, listing_account[lid], net))
        # 3. markets sweep the day's deposits into their hot wallet
        for m in sorted(deposits):
            coins = deposits.pop(m)
            for k in range(0, len(coins), 60):
                # the wallet spends a hot coin along with the deposits, as service
                # wallets do: every deposit address joins the hot wallet's cluster
                chunk = coins[k:k + 60] + ([mk_wallets[m].utxos.pop()]
                                           if mk_wallets[m].utxos else [])
                spends = ch.spends_of(chunk)
                fee = ch.fee(spends, 1, day)
                ch.emit(spends, [(sum(c[2] for c in chunk) - fee,
                                  mk_hot[m][rng.randrange(2)], mk_wallets[m])], fee)
        # 4. escrow releases: batched vendor payouts
        due_today = payouts_due.pop(day, [])
        per_market: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        for m, acct, net in due_today:
            per_market[m][acct] += net
        for m in sorted(per_market):
            items = sorted(per_market[m].items())
            pay = [(v, payout[a], vendor_wallets[w.accounts[a].actor]) for a, v in items
                   if v > _DUST]
            holding.update(w.accounts[a].actor for a, v in items if v > _DUST)
            for k in range(0, len(pay), 150):
                _pay_from(ch, mk_wallets[m], pay[k:k + 150], day, mk_hot[m])
        # weekly housekeeping: hot wallets consolidate their coins (links them on chain)
        if day % 7 == 6:
            for mw, hot in zip(mk_wallets, mk_hot, strict=True):
                _consolidate(ch, mw, hot, day)
            for xw, hot in zip(ex_wallets, ex_hot, strict=True):
                _consolidate(ch, xw, hot, day)
        # 5. exit scams: the operator empties the hot wallet on the closing day
        for mk in w.markets:
            if mk.closed == day and mk.fate == "exit_scam":
                mw = mk_wallets[mk.idx]
                op = ch.wallet(f"market:{mk.market_id}:operator", "market", mk.market_id,
                               "p2wpkh")
                coins, mw.utxos = mw.utxos, []
                if coins:
                    spends = ch.spends_of(coins)
                    fee = ch.fee(spends, 1, day)
                    ch.emit(spends, [(sum(c[2] for c in coins) - fee, ch.new_address(op), op)],
                            fee)
                    _cashout(ch, op, mk.market_id, day, rng.randrange(len(EXCHANGES)),
                             ex_wallets, ex_deposit_addr, ex_pending, mix=None, record=False)
        # 6. vendor cash-outs (only actors holding coins are looked at)
        for ai in sorted(holding):
            actor = w.actors[ai]
            vw = vendor_wallets[ai]
            if not vw.utxos:
                holding.discard(ai)
                continue
            since = day - last_cashout[ai]
            if since < 14 or day < next_check[ai]:
                continue
            usd = vw.balance() * btc_usd / _COIN
            if not (usd >= 5000 or (usd >= 300 and since >= 60)):
                next_check[ai] = day + 5  # balances move slowly: look again in a few days
                continue
            last_cashout[actor.idx] = day
            mix = mix_pool if actor.coinjoin else None
            _cashout(ch, vw, actor.actor_id, day, actor.idx % len(EXCHANGES), ex_wallets,
                     ex_deposit_addr, ex_pending, mix=mix)
        # 7. exchanges sweep customer deposits every third day
        if day % 3 == 2:
            for e, pend in enumerate(ex_pending):
                for k in range(0, len(pend), 80):
                    chunk = pend[k:k + 80] + ([ex_wallets[e].utxos.pop()]
                                              if ex_wallets[e].utxos else [])
                    spends = ch.spends_of(chunk)
                    fee = ch.fee(spends, 1, day)
                    ch.emit(spends, [(sum(c[2] for c in chunk) - fee, ex_hot[e][rng.randrange(3)],
                                      ex_wallets[e])], fee)
                pend.clear()
        if ch.pending:
            ch.flush_blocks(day, miner, miner_addr)
    ch.tagged[miner_addr.text] = ("Mining pool", "miner", "service_data", "pool payout address")
    _tag_sample(ch, w, mk_hot, ex_deposit_addr)
    res = ChainResult(
        payout_address=[a.text for a in payout], order_payment=order_payment,
        wallets={k: (v.kind, v.owner) for k, v in ch.wallets.items()},
        cashouts=ch.cashouts, blocks=ch.height, transactions=ch.n_tx + ch.height,
        unpaid_orders=unpaid,
        files=list(ch.files))
    _write_tags(ch)
    return res


def _pay_from(ch: _Chain, src: Wallet, outs: list[tuple[int, Address, Wallet]], day: int,
              change_addrs: list[Address]) -> bool:
    """A batched payment from ``src`` with change back to one of ``change_addrs``."""
    total = sum(v for v, _, _ in outs)
    est = ch.fee([Spend(b"", 0, src.script_kind, b"")] * 2, len(outs) + 1, day)
    coins = ch.take(src, total + est)
    have = sum(c[2] for c in coins)
    if have < total + est:  # not enough funds (a drained market): pay nothing
        src.utxos.extend(coins)
        return False
    spends = ch.spends_of(coins)
    fee = ch.fee(spends, len(outs) + 1, day)
    change = have - total - fee
    full: list[tuple[int, Address, Wallet | None]] = list(outs)
    if change > _DUST:
        full.append((change, change_addrs[ch.rng.randrange(len(change_addrs))], src))
    else:
        fee += max(change, 0)
    ch.emit(spends, full, fee)
    return True


def _consolidate(ch: _Chain, w: Wallet, hot: list[Address], day: int) -> None:
    """Merge all of ``w``'s coins into one hot-wallet output, 100 inputs per transaction
    (each later transaction also spends the previous one's output)."""
    if len(w.utxos) < 2:
        return
    coins, w.utxos = w.utxos, []
    carry: list[tuple[bytes, int, int, Address]] = []
    while coins:
        chunk, coins = carry + coins[:100 - len(carry)], coins[100 - len(carry):]
        spends = ch.spends_of(chunk)
        fee = ch.fee(spends, 1, day)
        ch.emit(spends, [(sum(c[2] for c in chunk) - fee, hot[ch.rng.randrange(len(hot))], w)],
                fee)
        carry = [w.utxos.pop()]
    w.utxos.extend(carry)


def _cashout(ch: _Chain, vw: Wallet, owner: str, day: int, exchange: int,
             ex_wallets: list[Wallet], ex_deposit_addr: dict[tuple[int, str], Address],
             ex_pending: list[list[tuple[bytes, int, int, Address]]],
             mix: list[Wallet] | None, record: bool = True) -> None:
    """Consolidate, optionally CoinJoin, then peel into the owner's exchange deposit address."""
    rng = ch.rng
    coins, vw.utxos = vw.utxos, []
    spends = ch.spends_of(coins)
    fee = ch.fee(spends, 1, day)
    total = sum(c[2] for c in coins) - fee
    if total < 20 * _DUST:
        vw.utxos = coins
        return
    start = ch.emit(spends, [(total, ch.new_address(vw), vw)], fee)
    cur = vw.utxos.pop()
    if mix is not None and total > 200_000:
        cur = _coinjoin(ch, vw, cur, mix, ex_wallets, day)
    key = (exchange, owner)
    dep = ex_deposit_addr.get(key)
    if dep is None:
        ex = ex_wallets[exchange]
        dep = ex_deposit_addr[key] = ch.new_address(ex, "p2sh" if rng.random() < 0.4 else None)
    hops = rng.randrange(2, 6)
    for h in range(hops):
        sp = ch.spends_of([cur])
        value = cur[2]
        if h == hops - 1 or value < 100_000:
            fee = ch.fee(sp, 1, day)
            tx = ch.emit(sp, [(value - fee, dep, None)], fee)
            ex_pending[exchange].append((tx.txid, 0, value - fee, dep))
            break
        fee = ch.fee(sp, 2, day)
        peel = int(value * rng.uniform(0.1, 0.4))
        outs: list[tuple[int, Address, Wallet | None]] = [
            (peel, dep, None), (value - peel - fee, ch.new_address(vw), vw)]
        if rng.random() < 0.5:
            outs.reverse()
        tx = ch.emit(sp, outs, fee)
        pv = next(i for i, (_, a, _) in enumerate(outs) if a is dep)
        ex_pending[exchange].append((tx.txid, pv, peel, dep))
        cur = vw.utxos.pop()
    if record:
        ch.cashouts.append({"actor": vw.owner, "wallet": vw.wid,
                            "start_txid": display_hex(start.txid),
                            "exchange": EXCHANGES[exchange], "deposit_address": dep.text})


def _coinjoin(ch: _Chain, vw: Wallet, cur: tuple[bytes, int, int, Address], pool: list[Wallet],
              ex_wallets: list[Wallet], day: int) -> tuple[bytes, int, int, Address]:
    """Mix ``cur`` with 4-9 unrelated participants into equal outputs; return the vendor's."""
    rng = ch.rng
    n = rng.randrange(4, 10)
    parts = rng.sample(pool, n)
    denom = _round_denom(int(cur[2] * 0.8))
    funding = []
    for p in parts:  # each participant withdraws its input from an exchange
        need = denom + rng.randrange(20_000, max(20_001, denom // 3))
        funding.append((need, ch.new_address(p), p))
    e = rng.randrange(len(ex_wallets))
    if not _pay_from(ch, ex_wallets[e], funding, day, [ch.new_address(ex_wallets[e])]):
        return cur
    inputs = [cur]
    owners: list[Wallet] = [vw]
    for p in parts:
        if p.utxos:
            inputs.append(p.utxos.pop())
            owners.append(p)
    spends = ch.spends_of(inputs)
    fee = ch.fee(spends, 2 * len(inputs), day)
    fee_each = fee // len(inputs) + 1
    outs: list[tuple[int, Address, Wallet | None]] = []
    mine: Address | None = None
    for c, own in zip(inputs, owners, strict=True):
        a = ch.new_address(own, "p2wpkh")
        if own is vw:
            mine = a
        outs.append((denom, a, own))
        change = c[2] - denom - fee_each
        if change > _DUST:
            outs.append((change, ch.new_address(own, "p2wpkh"), own))
    rng.shuffle(outs)
    fee_total = sum(c[2] for c in inputs) - sum(v for v, _, _ in outs)
    tx = ch.emit(spends, outs, fee_total)
    # participants' outputs are not followed further; keep their wallets small
    for p in parts:
        p.utxos.clear()
    # the vendor's change stays in its wallet (spent with the next cash-out)
    k = next(i for i, u in enumerate(vw.utxos) if u[0] == tx.txid and u[3] is mine)
    return vw.utxos.pop(k)


def _round_denom(v: int) -> int:
    """Round down to one significant digit (CoinJoin denominations like 0.1, 0.05 BTC)."""
    if v <= 0:
        return 0
    mag = 10 ** (len(str(v)) - 1)
    return int((v // mag) * mag)


def _tag_sample(ch: _Chain, w: World, mk_hot: list[list[Address]],
                ex_deposit_addr: dict[tuple[int, str], Address]) -> None:
    """What an investigator knows: market hot wallets (all for the seized market, some
    others) and a fifth of exchange deposit addresses (from subpoena returns)."""
    rng = stream(w.seed, "tags")
    for m, hot in zip(w.markets, mk_hot, strict=True):
        if m.seized or rng.random() < 0.5:
            for a in hot:
                ch.tagged[a.text] = (m.market_id, "market",
                                     "forensic" if m.seized else "web_crawl",
                                     "seized market server" if m.seized else "public report")
    for (e, _owner), a in sorted(ex_deposit_addr.items(), key=lambda kv: kv[1].text):
        if rng.random() < 0.2:
            ch.tagged[a.text] = (EXCHANGES[e], "exchange", "authority_data",
                                 "exchange subpoena return")


def _yaml_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def _write_tags(ch: _Chain) -> None:
    tags_dir = ch.out.parent / "tags"
    tags_dir.mkdir(parents=True, exist_ok=True)
    groups: dict[str, list[tuple[str, tuple[str, str, str, str]]]] = defaultdict(list)
    for addr, t in sorted(ch.tagged.items()):
        groups[{"exchange": "exchanges", "market": "markets"}.get(t[1], "other")].append((addr, t))
    for name, items in sorted(groups.items()):
        buf = io.StringIO()
        buf.write(f"title: Known {name} addresses (darkmap simulation)\n")
        buf.write("creator: darkmap simulator\n")
        buf.write("description: Synthetic attribution tags; only what an investigator "
                  "would know.\n")
        buf.write("is_public: false\n")
        buf.write("lastmod: 2022-01-01\n")
        buf.write("tags:\n")
        for addr, (label, cat, conf, src) in items:
            buf.write(f"  - address: {addr}\n    label: {_yaml_str(label)}\n"
                      f"    category: {cat}\n    confidence: {conf}\n"
                      f"    source: {_yaml_str(src)}\n    currency: BTC\n")
        (tags_dir / f"{name}.yaml").write_text(buf.getvalue(), encoding="utf-8")


def payout_addresses(res: ChainResult) -> list[str]:
    """Each account's payout address (for pages and dumps)."""
    return res.payout_address

