"""Bitcoin data the chain tests craft: output scripts, unsigned transactions, and blocks
whose merkle root is right but whose proof of work fails. Transaction and block ids are
given in display hex, as darkmap shows them."""

from __future__ import annotations

from darkmap.model.bitcoin import (
    TxOut,
    block_header,
    merkle_root,
    serialize_block,
    serialize_parts,
)
from darkmap.model.encoding import sha256d


def p2pkh(fill: int) -> bytes:
    """A pay-to-pubkey-hash output script whose 20-byte hash is ``fill`` repeated."""
    return b"\x76\xa9\x14" + bytes([fill]) * 20 + b"\x88\xac"


def unsigned_tx(spends: list[tuple[str, int]], values: list[int], fill: int) -> bytes:
    """A version-1 transaction, unsigned, spending ``spends`` (txid, output index) and
    paying ``values`` to ``p2pkh(fill)``, ``p2pkh(fill + 1)``, ..."""
    raw, _ = serialize_parts(1, [(bytes.fromhex(t)[::-1], n, b"", 0xFFFFFFFF, [])
                                 for t, n in spends],
                             [TxOut(v, p2pkh(fill + k)) for k, v in enumerate(values)])
    return raw


def unmined_block(parent: str, coinbase_script: bytes, txs: list[bytes], time: int) -> bytes:
    """A block on ``parent`` holding a 50-BTC coinbase (input script ``coinbase_script``,
    paying ``p2pkh(0x55)``) and then ``txs``: merkle root right, nonce 0, so its proof of
    work fails."""
    cb, _ = serialize_parts(1, [(b"\x00" * 32, 0xFFFFFFFF, coinbase_script, 0xFFFFFFFF, [])],
                            [TxOut(5_000_000_000, p2pkh(0x55))])
    raws = [cb, *txs]
    header = block_header(1, bytes.fromhex(parent)[::-1],
                          merkle_root([sha256d(r) for r in raws]), time, 0x1D00FFFF, 0)
    return serialize_block(header, raws)
