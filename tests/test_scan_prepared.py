"""Free text scanned ahead for a group of rows gives what it gives one row at a time
(#21): the armor checksums of many blocks in one numpy pass (``crc24_many``), blocks
parsed together (``parse_normalised_many``), ``scan_text`` taking its first step from
``PreparedScans``, and the dump reader mapping rows in groups (``RowMapper.prepare``)."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import pytest
from conftest import DATA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_scan_fast_paths import _ARMOR_EDITS, _BODY_EDITS, dream_cells

from darkmap.extract import identifiers as ids
from darkmap.extract import pgp
from darkmap.importers import sqldump
from darkmap.importers.mappings import RowMapper
from darkmap.model import openpgp

_SETTINGS = settings(max_examples=200, derandomize=True, deadline=None, database=None,
                     suppress_health_check=[HealthCheck.too_slow])
_DREAM = DATA / "seized" / "dream-2016-sellers.sql"


def test_crc24_many_is_crc24_one_by_one() -> None:
    span = openpgp._CRC24_SPAN
    sizes = (0, 1, 2, 3, 4, 255, 256, 1618, span - 1, span, span + 1, 2 * span + 5, 3, 0)
    datas = [os.urandom(n) for n in sizes]
    assert openpgp.crc24_many(datas) == [openpgp._crc24_loop(d) for d in datas]
    assert openpgp.crc24_many([]) == []
    assert openpgp.crc24_many([b"123456789"]) == [0x21CF02]


@_SETTINGS
@given(st.lists(st.binary(max_size=5000), max_size=12))
def test_crc24_many_any_bytes(datas: list[bytes]) -> None:
    assert openpgp.crc24_many(datas) == [openpgp.crc24(d) for d in datas]


def _block(b: pgp.PgpBlock) -> dict[str, object]:
    return asdict(b)


def _edited(cells: list[str], edits: list[tuple[int, float, str]]) -> list[str]:
    """``cells`` with each ``(cell, where, piece)`` edit inserted."""
    out = list(cells)
    for k, where, piece in edits:
        c = out[k % len(out)]
        i = int(where * len(c))
        out[k % len(out)] = c[:i] + piece + c[i:]
    return out


def _norms() -> list[str]:
    return [pgp.normalise_armor_text(c) for c in dream_cells()]


def test_blocks_parsed_together_are_one_by_one_on_the_real_cells() -> None:
    norms = _norms()
    together = pgp.parse_normalised_many(norms)
    assert sum(len(b) for b in together) > 600
    for norm, blocks in zip(norms, together, strict=True):
        assert [_block(b) for b in blocks] == [_block(b) for b in pgp.parse_normalised(norm)]


_EDITS = _ARMOR_EDITS + _BODY_EDITS + ["=AAAA", "=", "\n=abcd\n", "mQ",
                                       "-----END PGP PUBLIC KEY BLOCK-----",
                                       "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n"]


@_SETTINGS
@given(st.integers(0, 10_000), st.integers(1, 24),
       st.lists(st.tuples(st.integers(0, 23), st.floats(0, 1), st.sampled_from(_EDITS)),
                max_size=8))
def test_blocks_parsed_together_are_one_by_one_edited(
        start: int, n: int, edits: list[tuple[int, float, str]]) -> None:
    norms = _norms()
    group = [norms[(start + i) % len(norms)] for i in range(n)]
    group = _edited(group, edits)
    together = pgp.parse_normalised_many(group)
    for norm, blocks in zip(group, together, strict=True):
        assert [_block(b) for b in blocks] == [_block(b) for b in pgp.parse_normalised(norm)]


def _scan(text: str, prepared: ids.PreparedScans | None) -> tuple[object, ...]:
    res = ids.scan_text(text, market_id="dream", account_handle="h", field="f",
                        locator="u", key_records=True, prepared=prepared)
    return ([asdict(r) for r in res.records], [_block(b) for b in res.pgp_blocks])


_SCAN_EDITS = _EDITS + ["&amp;", "&lt;br&gt;", "\\n", "\\r\\n", "wickr: someone", "@", "pgp",
                        "1BoatSLRHtKNngkdXEeobR76b53LvsAd5d", "é", "\u0130", ""]


@_SETTINGS
@given(st.integers(0, 10_000), st.integers(1, 24),
       st.lists(st.tuples(st.integers(0, 23), st.floats(0, 1), st.sampled_from(_SCAN_EDITS)),
                max_size=8), st.booleans())
def test_scan_with_prepared_steps_is_the_plain_scan(
        start: int, n: int, edits: list[tuple[int, float, str]], repeat: bool) -> None:
    cells = list(dream_cells())
    group = _edited([cells[(start + i) % len(cells)] for i in range(n)], edits)
    if repeat:  # a text met twice: the second time it is scanned as usual
        group.append(group[0])
    prepared = ids.PreparedScans(group)
    for text in group:
        assert _scan(text, prepared) == _scan(text, None)


def test_scan_with_prepared_steps_on_the_real_cells() -> None:
    cells = list(dream_cells()) + ["", "-", "plain words, nothing to find"]
    prepared = ids.PreparedScans(cells)
    for text in cells:
        assert _scan(text, prepared) == _scan(text, None)


def _records(path: Path, monkeypatch: pytest.MonkeyPatch, *, prepare: bool,
             group_rows: int = sqldump._GROUP_ROWS) -> list[tuple[str, dict[str, object]]]:
    with monkeypatch.context() as m:
        m.setattr(sqldump, "_GROUP_ROWS", group_rows)
        if not prepare:
            m.setattr(RowMapper, "prepare", lambda self, rows: None)
        stats = sqldump.SqlStats()
        recs = [(type(r).__name__, asdict(r)) for r in sqldump.read_dump(path, stats=stats)]
    return recs + [("stats", stats.as_dict())]


def _damaged(tmp_path: Path) -> Path:
    """The Dream dump with broken armor, CRC lines, quotes and a cut tuple."""
    raw = _DREAM.read_bytes()
    for old, new in ((b"\\n=", b"\\n=Q"), (b"mQINBF", b"mQINB!"), (b"-----END PGP", b"--END"),
                     (b"'),(", b"'),"), (b"GnuPG", b"Gn\xffPG")):
        i = 0
        for _ in range(7):
            i = raw.find(old, i + 50_000)
            if i < 0:
                break
            raw = raw[:i] + new + raw[i + len(old):]
    cut = raw.find(b"),(", len(raw) // 2)
    raw = raw[:cut + 40] + raw[cut + 400:]
    path = tmp_path / "dream-2016-sellers.sql"
    path.write_bytes(raw)
    return path


def test_rows_mapped_in_groups_give_the_records_of_one_by_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for path in (_DREAM, _damaged(tmp_path)):
        plain = _records(path, monkeypatch, prepare=False)
        assert _records(path, monkeypatch, prepare=True) == plain
        assert _records(path, monkeypatch, prepare=True, group_rows=7) == plain
    quarantined = [r for name, r in plain if name == "QuarantineRecord"]
    assert any("CRC24 mismatch" in str(q["reason"]) for q in quarantined)


def test_row_groups_yield_the_rows_read_before_an_error() -> None:
    def rows():  # type: ignore[no-untyped-def]
        for i in range(5):
            yield sqldump.SqlRow(i + 1, ["x"])
        raise sqldump.SqlSyntaxError("broken")

    seen: list[int] = []
    with pytest.raises(sqldump.SqlSyntaxError):
        for group in sqldump._row_groups(rows()):
            seen += [r.number for r in group]
    assert seen == [1, 2, 3, 4, 5]


def test_row_groups_end_at_their_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqldump, "_GROUP_CHARS", 10)
    rows = [sqldump.SqlRow(i, ["abcd", None, "ef"]) for i in range(5)]
    assert [len(g) for g in sqldump._row_groups(iter(rows))] == [2, 2, 1]
