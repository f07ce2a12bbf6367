"""Chain files damaged at their start are read as far as they can be, not refused whole
(audit finding 3: a blk file whose first frame length was 0 or over 32 MB was
"recognised by no importer", its 4 intact blocks unread and nothing quarantined; a
truncated raw transaction was "not recognised" where a truncated hex one is
quarantined). Arbitrary bytes that begin like chain data are still nobody's."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest
from conftest import DATA

from darkmap.collect.ingest import ingest
from darkmap.importers.blockchain import sniff_format
from darkmap.model.bitcoin import MAINNET_MAGIC
from darkmap.store.workspace import Workspace

BLK = DATA / "bitcoin" / "blk_0_to_4.dat"
MEGATX = DATA / "bitcoin" / "megatx.bin"


def _ingest_one(tmp_path: Path, name: str, data: bytes) -> tuple[dict, list[tuple[str, str]]]:
    path = tmp_path / "in" / name
    path.parent.mkdir()
    path.write_bytes(data)
    with Workspace.init(tmp_path / "ws") as ws:
        summary = ingest(ws, [path])
        rows = ws.con.execute("SELECT locator, reason FROM quarantine ORDER BY locator"
                              ).fetchall()
        return dict(summary.as_dict()), rows


@pytest.mark.parametrize(("length", "why"), [
    (0, "block length 0 is too short for a block"),
    (0xFFFFFFF0, "block length 4,294,967,280 is over the 32,000,000-byte limit")])
def test_a_damaged_first_frame_length_quarantines_that_block_and_reads_the_rest(
        tmp_path: Path, length: int, why: str) -> None:
    data = bytearray(BLK.read_bytes())
    assert data[:4] == MAINNET_MAGIC
    data[4:8] = struct.pack("<I", length)
    out, quarantined = _ingest_one(tmp_path, BLK.name, bytes(data))
    assert out["unrecognised"] == []
    t = out["totals"]
    assert (t["read"], t["stored"], t["quarantined"]) == (5, 4, 1)
    assert len(quarantined) == 1
    locator, reason = quarantined[0]
    assert locator == "block @0"
    assert reason.startswith(f"framing lost: offset 0: {why}")


@pytest.mark.parametrize("cut", [959_716, 639_718, 2_000])
def test_a_truncated_raw_transaction_is_quarantined_as_cut_short(
        tmp_path: Path, cut: int) -> None:
    out, quarantined = _ingest_one(tmp_path, MEGATX.name, MEGATX.read_bytes()[:cut])
    assert out["unrecognised"] == []
    t = out["totals"]
    assert (t["read"], t["stored"], t["quarantined"]) == (1, 0, 1)
    assert quarantined[0][0] == "tx"
    assert quarantined[0][1].startswith("transaction cut short (the file ends inside it): ")


def test_bytes_that_only_begin_like_chain_data_are_not_recognised() -> None:
    """The rules need more than a first word: a version number then arbitrary bytes is
    no transaction, a network magic then arbitrary bytes no blk file."""
    rnd = random.Random(7)
    for i in range(3000):
        body = rnd.randbytes(rnd.choice([200, 5_000, 60_000]))
        tx_like = bytes([1 + i % 2, 0, 0, 0]) + body
        assert sniff_format(tx_like[:65536], len(tx_like), tx_like)[0] is None
        blk_like = MAINNET_MAGIC + struct.pack("<I", i) + body
        assert sniff_format(blk_like[:65536], len(blk_like), blk_like)[0] is None
    # a whole transaction with bytes after it stays unrecognised, as before
    whole = MEGATX.read_bytes() + b"\x00trailing"
    assert sniff_format(whole[:65536], len(whole), whole)[0] is None
