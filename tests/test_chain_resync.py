"""Hostile chain files (issue 18): blk files resynchronise at the next magic and count
what they skip and lose; the sniff never aborts a run; one bad unit of a JSON or hex file
is quarantined alone. Every case damages the real mainnet files in shared/data."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from conftest import DATA as REAL_DATA

from darkmap.collect.ingest import ingest, load_files
from darkmap.errors import LimitExceeded
from darkmap.importers.bitcoin_formats import ParseError, iter_framed_blocks, scan_blk
from darkmap.importers.blockchain import BitcoinImporter, sniff_format
from darkmap.plugins import SourceFile
from darkmap.store.workspace import Workspace

DATA = REAL_DATA / "bitcoin"
BLOCKS = DATA / "blocks1-256"  # 255 blocks, each framed, no padding


def _frames(raw: bytes) -> list[tuple[int, int]]:
    """(offset, payload length) of each frame of a clean blk file."""
    out, pos = [], 0
    while pos + 8 <= len(raw) and raw[pos:pos + 4] != b"\0\0\0\0":
        size = int.from_bytes(raw[pos + 4:pos + 8], "little")
        out.append((pos, size))
        pos += 8 + size
    return out


def _load(ws: Workspace, tmp_path: Path, data: bytes, name: str = "blk00000.dat"):
    f = tmp_path / name
    f.write_bytes(data)
    summary = ingest(ws, [f], importer_name="bitcoin")
    return summary, summary.files[0]


def _quarantine(ws: Workspace) -> list[tuple[str, str]]:
    return ws.con.execute("SELECT locator, reason FROM quarantine ORDER BY 1").fetchall()


def test_bad_magic_loses_one_block_and_counts_its_bytes(ws: Workspace, tmp_path: Path) -> None:
    raw = (DATA / "blk_0_to_4.dat").read_bytes()
    off, size = _frames(raw)[2]
    summary, f = _load(ws, tmp_path, raw[:off] + b"\xde\xad\xbe\xef" + raw[off + 4:])
    assert (f.read, f.stored, f.quarantined) == (5, 4, 1)
    assert f.details["skipped_bytes"] == 8 + size == summary.totals()["skipped_bytes"]
    ((loc, reason),) = _quarantine(ws)
    assert loc == f"block @{off}"
    assert "no block magic" in reason and f"next block at offset {off + 8 + size}" in reason
    assert ws.con.execute("SELECT count(*) FROM btc_blocks").fetchone()[0] == 4


@pytest.mark.parametrize("length", [0xFFFFFFFF, 100, 20])
def test_damaged_length_loses_only_that_block(ws: Workspace, tmp_path: Path,
                                              length: int) -> None:
    raw = BLOCKS.read_bytes()
    off, size = _frames(raw)[50]
    _, f = _load(ws, tmp_path, raw[:off + 4] + length.to_bytes(4, "little") + raw[off + 8:])
    assert (f.read, f.stored, f.quarantined) == (255, 254, 1)
    assert f.details["skipped_bytes"] == 8 + size
    assert [q[0] for q in _quarantine(ws)] == [f"block @{off}"]


def test_garbage_between_blocks_is_one_unit_and_its_bytes(ws: Workspace,
                                                          tmp_path: Path) -> None:
    raw = BLOCKS.read_bytes()
    off, _ = _frames(raw)[21]
    junk = random.Random(18).randbytes(1000)
    _, f = _load(ws, tmp_path, raw[:off] + junk + raw[off:])
    assert (f.read, f.stored, f.quarantined) == (256, 255, 1)
    assert f.details["skipped_bytes"] == 1000
    assert [q[0] for q in _quarantine(ws)] == [f"block @{off}"]


def test_truncated_last_block_is_quarantined(ws: Workspace, tmp_path: Path) -> None:
    raw = BLOCKS.read_bytes()
    off, _ = _frames(raw)[-1]
    _, f = _load(ws, tmp_path, raw[:-150])
    assert (f.read, f.stored, f.quarantined) == (255, 254, 1)
    ((loc, reason),) = _quarantine(ws)
    assert loc == f"block @{off}" and "runs past the end of the file" in reason
    assert f.details["skipped_bytes"] == len(raw) - 150 - off


def test_padding_ends_quietly_and_zeros_between_blocks_are_counted(ws: Workspace,
                                                                   tmp_path: Path) -> None:
    raw = BLOCKS.read_bytes()
    off, _ = _frames(raw)[100]
    _, f = _load(ws, tmp_path, raw[:off] + b"\0" * 5000 + raw[off:] + b"\0" * (1 << 20))
    assert (f.read, f.stored, f.quarantined) == (255, 255, 0)
    assert f.details["skipped_bytes"] == 5000


def test_real_files_scan_as_before() -> None:
    for name, blocks in (("blk_0_to_4.dat", 5), ("blocks1-256", 255), ("277647.dat", 1)):
        chunks = list(scan_blk((DATA / name).read_bytes()))
        assert len(chunks) == blocks
        assert all(c.raw is not None and c.error is None and c.skipped == 0 for c in chunks)


def test_iter_framed_blocks_goes_on_after_lost_framing() -> None:
    raw = (DATA / "blk_0_to_4.dat").read_bytes()
    frames = _frames(raw)
    off = frames[1][0]
    items = list(iter_framed_blocks(raw[:off] + b"\x00\x11\x22\x33" + raw[off + 4:]))
    assert [o for o, _ in items] == [o for o, _ in frames]
    assert [isinstance(r, ParseError) for _, r in items] == [False, True, False, False, False]


def test_magic_flood_is_one_lost_stretch() -> None:
    flood = b"\xf9\xbe\xb4\xd9" * 100_000
    (chunk,) = scan_blk(flood)
    assert chunk.raw is None and chunk.skipped == len(flood)
    assert sniff_format(flood[:65536], len(flood)) == (None, 0.0)


# -- the sniff and the JSON and hex readers


def _src(path: Path) -> SourceFile:
    return SourceFile(path=path, source=str(path), sha256="0" * 64,
                      head=path.read_bytes()[:65536])


@pytest.mark.parametrize("text", [b"[" * 100_000,
                                  b'{"hash": "00", "merkleroot": "00", "tx": ['
                                  + b"[" * 100_000 + b"]" * 100_000 + b"]}"])
def test_deep_json_is_not_mine_and_never_raises(tmp_path: Path, text: bytes) -> None:
    f = tmp_path / "deep.json"
    f.write_bytes(text)
    assert BitcoinImporter().sniff(_src(f)) == 0.0
    with pytest.raises(LimitExceeded) as exc:
        sniff_format(text[:65536], len(text), text, strict=True)
    assert exc.value.limit == "nesting_depth"


def test_forced_deep_json_is_quarantined_with_the_limit(ws: Workspace, tmp_path: Path) -> None:
    summary, f = _load(ws, tmp_path, b'{"tx": ' + b"[" * 5000 + b"]" * 5000 + b"}", "b.json")
    assert (f.read, f.quarantined) == (1, 1)
    assert summary.limits() == {"nesting_depth": 1}


def test_esplora_wrong_types_quarantine_each_tx(ws: Workspace, tmp_path: Path) -> None:
    doc = [{"txid": 5, "vin": [], "vout": [{"scriptpubkey": 1, "value": "x"}]},
           {"txid": "ab" * 32, "vin": [7], "vout": [{"scriptpubkey": "00", "value": 1e400}]},
           {"txid": "ab" * 32, "vin": [{"txid": None}], "vout": [{"scriptpubkey": []}],
            "status": []}]
    (r,) = load_files(ws, [_write(tmp_path / "txs.json", json.dumps(doc).encode())])
    assert r.fmt == "esplora_json" and (r.read, r.stored, r.quarantined) == (3, 0, 3)
    assert [q[0] for q in _quarantine(ws)] == ["json tx 0", "json tx 1", "json tx 2"]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_hex_file_with_one_damaged_line_is_read(ws: Workspace, tmp_path: Path) -> None:
    lines = (DATA / "blockheaders-mainnet-1-11.txt").read_bytes().split(b"\n")
    lines[4] = lines[4][:40] + b"zz" + lines[4][42:]
    f = _write(tmp_path / "headers.txt", b"\n".join(lines))
    assert sniff_format(f.read_bytes(), f.stat().st_size)[0] == "hex"
    summary = ingest(ws, [f])
    r = summary.files[0]
    assert (r.importer, r.read, r.stored, r.quarantined) == ("bitcoin", 11, 10, 1)
    assert _quarantine(ws) == [("line 5", "not hex")]


def test_text_with_few_hex_lines_is_not_hex() -> None:
    head = (DATA / "blockheaders-mainnet-1-11.txt").read_bytes().split(b"\n")[:3]
    assert sniff_format(b"\n".join([*head, b"not hex at all"]), 600)[0] is None


def test_giant_hex_line_is_quarantined_unread(ws: Workspace, tmp_path: Path) -> None:
    data = (DATA / "blockheaders-mainnet-1-11.txt").read_bytes() + b"01" * 5_000_000 + b"\n"
    (r,) = load_files(ws, [_write(tmp_path / "headers.txt", data)])
    assert (r.read, r.stored, r.quarantined) == (12, 11, 1)
    ((loc, reason),) = _quarantine(ws)
    assert loc == "line 12" and "10,000,000 characters" in reason


def test_units_another_file_stored_are_counted_already_stored(ws: Workspace,
                                                               tmp_path: Path) -> None:
    """The same real blocks in a second file (a copy with zero padding), then the real
    header lines of blocks 1-11: each unit is stored but not new. Every one was counted
    in ``stored_new`` (as the WARC importer counted pages a crawl had stored). Half of
    the blocks again, with one block twice in the file: the repeat is not new either."""
    raw = BLOCKS.read_bytes()
    first = ingest(ws, [BLOCKS]).totals()
    assert (first["read"], first["stored_new"], first["already_stored"]) == (255, 255, 0)
    again, _ = _load(ws, tmp_path, raw + b"\0" * 8, "copy.dat")
    t = again.totals()
    assert (t["read"], t["stored"], t["stored_new"], t["already_stored"]) == (255, 255, 0, 255)
    headers = ingest(ws, [DATA / "blockheaders-mainnet-1-11.txt"]).totals()
    assert (headers["stored"], headers["stored_new"], headers["already_stored"]) == (11, 0, 11)
    frames = _frames(raw)
    fresh = Workspace.init(tmp_path / "fresh")
    try:
        half = b"".join(raw[o:o + 8 + n] for o, n in frames[:100])
        ingest(fresh, [_write(tmp_path / "half.dat", half)])
        o, n = frames[150]
        more = b"".join(raw[o:o + 8 + n] for o, n in frames[90:160]) + raw[o:o + 8 + n]
        t = ingest(fresh, [_write(tmp_path / "more.dat", more)]).totals()
        assert (t["read"], t["stored_new"], t["already_stored"]) == (71, 60, 11)
        assert fresh.con.execute("SELECT count(*) FROM btc_blocks").fetchone() == (160,)
    finally:
        fresh.close()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
