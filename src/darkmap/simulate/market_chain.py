"""Build small, fully valid Bitcoin chains for tests and demos (real serialized bytes).

Keys are random 33-byte compressed-key-shaped strings and signatures dummy DER-shaped
bytes: nothing here can sign or spend real coins. Blocks carry correct merkle roots,
BIP34 heights, BIP141 witness commitments and a proof of work against the regtest
target, so :mod:`darkmap.importers.bitcoin_formats` checks them exactly like mainnet
blocks. The
builder records who owns every address, which is the truth tests score against.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from darkmap.model.bitcoin import (
    NULL_HASH,
    WITNESS_COMMITMENT_PREFIX,
    Tx,
    TxIn,
    TxOut,
    block_header,
    frame_block,
    merkle_root,
    parse_tx,
    script_for_address,
    serialize_block,
    serialize_tx,
    witness_commitment,
)
from darkmap.model.encoding import b58check_encode, bech32_encode, hash160, sha256d

__all__ = ["Coin", "SynthChain", "demo_market_chain"]

_REGTEST_BITS = 0x207FFFFF


@dataclass
class Coin:
    """An unspent output the builder knows how to spend."""

    txid: str
    vout: int
    value: int
    address: str
    owner: str


@dataclass
class _Key:
    pubkey: bytes
    kind: str


@dataclass
class SynthChain:
    """Append transactions, mine blocks, export blk-file bytes; owners kept as truth."""

    seed: int = 0
    start_time: int = 1_600_000_000
    rng: random.Random = field(init=False)
    keys: dict[str, _Key] = field(default_factory=dict)
    address_owner: dict[str, str] = field(default_factory=dict)
    wallets: dict[str, list[Coin]] = field(default_factory=dict)
    pending: list[Tx] = field(default_factory=list)
    blocks: list[bytes] = field(default_factory=list)
    prev_hash: bytes = b"\x00" * 32

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def new_address(self, owner: str, kind: str = "p2wpkh") -> str:
        """A fresh address of ``kind`` (p2wpkh or p2pkh) owned by ``owner``."""
        pub = bytes([2 + self.rng.getrandbits(1)]) + self.rng.randbytes(32)
        h = hash160(pub)
        addr = bech32_encode("bc", 0, h) if kind == "p2wpkh" else b58check_encode(0, h)
        self.keys[addr] = _Key(pub, kind)
        self.address_owner[addr] = owner
        self.wallets.setdefault(owner, [])
        return addr

    @staticmethod
    def script_for(addr: str, kind: str) -> bytes:
        """Output script paying ``addr``."""
        return script_for_address(addr)

    def _sig(self) -> bytes:
        return b"\x30\x44" + self.rng.randbytes(68) + b"\x01"

    def coinbase_to(self, address: str, value: int) -> Coin:
        """Give ``address`` a fresh coin (mined in the next block's coinbase)."""
        # coinbase txs are made in mine(); here we mint via a dedicated funding coinbase
        self.mine(reward_to=address, reward=value)
        coin = self._last_coinbase
        self.wallets[self.address_owner[address]].append(coin)
        return coin

    def pay(self, spends: list[Coin], outputs: list[tuple[str, int]], fee: int = 1000,
            change_to: str | None = None) -> Tx:
        """A tx spending ``spends`` to ``outputs``; the remainder minus fee to ``change_to``."""
        total = sum(c.value for c in spends)
        outs = list(outputs)
        rest = total - sum(v for _, v in outs) - fee
        if rest < 0:
            raise ValueError("outputs exceed inputs")
        if change_to is not None and rest > 0:
            outs.append((change_to, rest))
        inputs, segwit = [], False
        for c in spends:
            key = self.keys[c.address]
            if key.kind == "p2wpkh":
                inputs.append(TxIn(c.txid, c.vout, b"", 0xFFFFFFFF, [self._sig(), key.pubkey]))
                segwit = True
            else:
                sig = self._sig()
                script_sig = bytes([len(sig)]) + sig + bytes([33]) + key.pubkey
                inputs.append(TxIn(c.txid, c.vout, script_sig, 0xFFFFFFFF))
            owner = self.address_owner[c.address]
            self.wallets[owner] = [w for w in self.wallets[owner]
                                   if (w.txid, w.vout) != (c.txid, c.vout)]
        txouts = [TxOut(v, self.script_for(a, self.keys[a].kind)) for a, v in outs]
        draft = Tx(2, inputs, txouts, 0, "", "", 0, 0)
        tx, _ = parse_tx(serialize_tx(draft, witness=segwit))
        for n, (a, v) in enumerate(outs):
            self.wallets[self.address_owner[a]].append(Coin(tx.txid, n, v, a,
                                                            self.address_owner[a]))
        self.pending.append(tx)
        return tx

    def mine(self, reward_to: str | None = None, reward: int = 5_000_000_000) -> bytes:
        """Close a block with the pending txs; return its serialized bytes."""
        height = len(self.blocks)
        miner = reward_to or self.new_address("miner")
        hpush = height.to_bytes(4, "little")
        segwit = any(t.segwit for t in self.pending)
        outs = [TxOut(reward, self.script_for(miner, self.keys[miner].kind))]
        if segwit:
            commit = witness_commitment([bytes.fromhex(t.wtxid)[::-1] for t in self.pending])
            outs.append(TxOut(0, WITNESS_COMMITMENT_PREFIX + commit))
        cb_in = TxIn("00" * 32, 0xFFFFFFFF, bytes([4]) + hpush + b"\x00", 0xFFFFFFFF,
                     [NULL_HASH] if segwit else [])
        cb, _ = parse_tx(serialize_tx(Tx(2, [cb_in], outs, 0, "", "", 0, 0)))
        self._last_coinbase = Coin(cb.txid, 0, reward, miner, self.address_owner[miner])
        txs = [cb] + self.pending
        root = merkle_root([bytes.fromhex(t.txid)[::-1] for t in txs])
        when = self.start_time + 600 * height
        for nonce in range(1 << 20):
            header = block_header(0x20000000, self.prev_hash, root, when, _REGTEST_BITS, nonce)
            digest = sha256d(header)
            if int.from_bytes(digest, "little") <= 0x7FFFFF << (8 * (0x20 - 3)):
                break
        raw = serialize_block(header, [serialize_tx(t) for t in txs])
        self.prev_hash = digest
        self.blocks.append(raw)
        self.pending = []
        return raw

    def blk_file(self) -> bytes:
        """All mined blocks in Bitcoin Core's magic-framed blk*.dat format."""
        return b"".join(frame_block(b) for b in self.blocks)


def demo_market_chain(seed: int = 7,
                      peel_steps: int = 4) -> tuple[SynthChain, dict[str, Any], str]:
    """A small market economy on a synthetic chain: (chain, truth ``chain`` section, TagPack).

    Buyers pay a market hot wallet, the market pays the vendor at fresh addresses, the
    vendor consolidates them (a multi-input merge), then cashes out through a peel
    chain whose payments go to exchange deposit addresses; exchanges sweep deposits
    into tagged hot wallets. Two CoinJoins (Whirlpool-like, Wasabi-like) mix unrelated
    users and must not merge them. The TagPack tags only the exchanges' and market's
    hot wallets, as an investigator would have them.
    """
    ch = SynthChain(seed=seed)
    btc = 100_000_000
    ex_hot = {"ExchangeA": ch.new_address("exchange:ExchangeA"),
              "ExchangeB": ch.new_address("exchange:ExchangeB", "p2pkh")}
    for hot in ex_hot.values():
        ch.coinbase_to(hot, 50 * btc)
    market_hot = ch.new_address("market:alpha")
    ch.coinbase_to(market_hot, 1 * btc)
    buyers = [f"buyer:{i}" for i in range(5)]
    for b in buyers:  # buyers withdraw from ExchangeA
        coin = ch.wallets["exchange:ExchangeA"][0]
        ch.pay([coin], [(ch.new_address(b), 2 * btc)], change_to=ex_hot["ExchangeA"])
    ch.mine()
    vendor = "vendor:v1"
    payouts = []
    for b in buyers:  # order payments to the market, market pays the vendor
        coin = ch.wallets[b][0]
        ch.pay([coin], [(ch.new_address("market:alpha"), int(0.5 * btc))],
               change_to=ch.new_address(b))
    ch.mine()
    market_coins = [c for c in ch.wallets["market:alpha"] if c.value == int(0.5 * btc)]
    for c in market_coins:
        addr = ch.new_address(vendor)
        payouts.append(addr)
        ch.pay([c], [(addr, int(0.45 * btc))], change_to=ch.new_address("market:alpha"))
    ch.mine()
    # vendor consolidates: the multi-input heuristic links all payout addresses
    vcoins = list(ch.wallets[vendor])
    ch.pay(vcoins, [], fee=2000, change_to=ch.new_address(vendor))
    ch.mine()
    cashouts = []
    coin = ch.wallets[vendor][0]
    for step in range(peel_steps):  # peel chain: small payment to an exchange deposit
        ex = "ExchangeA" if step % 2 == 0 else "ExchangeB"
        dep = ch.new_address(f"exchange:{ex}", "p2pkh" if ex == "ExchangeB" else "p2wpkh")
        change = ch.new_address(vendor)
        tx = ch.pay([coin], [(dep, int(0.2 * btc))], change_to=change)
        cashouts.append({"actor": "actor:v1", "wallet": vendor, "start_txid": tx.txid,
                         "exchange": ex, "deposit_address": dep})
        coin = next(c for c in ch.wallets[vendor] if c.address == change)
        ch.mine()
    for ex, hot in ex_hot.items():  # exchanges sweep deposits into their hot wallet
        owner = f"exchange:{ex}"
        deposits = [c for c in ch.wallets[owner] if c.address != hot]
        hot_coin = [c for c in ch.wallets[owner] if c.address == hot][:1]
        if deposits:
            ch.pay(hot_coin + deposits, [], fee=3000, change_to=hot)
    ch.mine()
    # CoinJoins: unrelated users, equal outputs; must not be merged
    mixers = [f"mixuser:{i}" for i in range(12)]
    for m in mixers:
        ch.coinbase_to(ch.new_address(m), int(0.3 * btc))
    wp = mixers[:5]
    ins = [ch.wallets[m][0] for m in wp]
    whirl_outs = [(ch.new_address(m), 5_000_000) for m in wp]
    _coinjoin(ch, ins, whirl_outs)
    ws_ins = [ch.wallets[m][0] for m in mixers[5:]] + [ch.wallets[m][0] for m in wp]
    ws_ins = [c for c in ws_ins if c.value >= 20_000_000][:10]
    outs = [(ch.new_address(c.owner), 10_000_000) for c in ws_ins]
    outs += [(ch.new_address(c.owner), c.value - 10_000_000 - 5_000) for c in ws_ins]
    _coinjoin(ch, ws_ins, outs)
    ch.mine()
    kinds = {"mixuser": "buyer", "miner": "buyer"}
    wallets = {}
    for o in sorted(set(ch.address_owner.values())):
        kind = o.split(":", 1)[0]
        wallets[o] = {"kind": kinds.get(kind, kind),
                      "owner": "actor:v1" if kind == "vendor" else o.split(":", 1)[-1]}
    truth = {"address_owner": dict(ch.address_owner), "wallets": wallets, "cashouts": cashouts}
    tagpack = "\n".join([
        "title: Demo services", "creator: darkmap tests",
        "description: hot wallets of the demo exchanges and market", "currency: BTC",
        "confidence: service_data", "source: https://example.invalid/demo", "tags:",
        f"  - address: {ex_hot['ExchangeA']}", "    label: ExchangeA", "    category: exchange",
        "    actor: exchangea",
        f"  - address: {ex_hot['ExchangeB']}", "    label: ExchangeB", "    category: exchange",
        "    actor: exchangeb",
        f"  - address: {market_hot}", "    label: Alpha Market hot wallet",
        "    category: market", "    actor: alpha", ""])
    return ch, truth, tagpack


def _coinjoin(ch: SynthChain, ins: list[Coin], outs: list[tuple[str, int]]) -> Tx:
    """A tx with exactly ``outs`` (no change), fee = inputs - outputs."""
    fee = sum(c.value for c in ins) - sum(v for _, v in outs)
    return ch.pay(ins, outs, fee=fee)
