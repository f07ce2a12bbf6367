"""Streaming mysqldump reader and the Dream seller table mapping."""

from __future__ import annotations

import io
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner
from conftest import DATA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from darkmap.collect.ingest import ingest
from darkmap.importers.sqldump import (
    SqlStats,
    iter_insert_rows,
    iter_statements,
    parse_create_table,
    parse_insert_head,
    read_dump,
)
from darkmap.model.records import AccountRecord, MarketRecord, PgpKeyRecord, QuarantineRecord

DUMP = DATA / "seized" / "dream-2016-sellers.sql"


def _rows(sql: str) -> list[list[str | None]]:
    table, cols, off = parse_insert_head(sql)  # type: ignore[misc]
    return list(iter_insert_rows(sql, off))


def test_mysql_escaping() -> None:
    sql = (r"INSERT INTO `t` VALUES (1,'it\'s','a''b','c\\d','l1\nl2\tt\r','\0\Z',NULL,"
           r"-1.5e3,_binary 'bin',X'4142',0x4344,"
           "'\"q\"',\"dq\"\"x\");")
    [row] = _rows(sql)
    assert row == ["1", "it's", "a'b", "c\\d", "l1\nl2\tt\r", "\0\x1a", None, "-1.5e3", "bin",
                   "AB", "CD", '"q"', 'dq"x']


def test_create_table_columns() -> None:
    ct = parse_create_table(
        "CREATE TABLE `dnm_dream` (\n `seqNo` int(11) NOT NULL,\n `pgp` longtext,\n"
        " `price` decimal(10,2) DEFAULT '0,0',\n PRIMARY KEY (`seqNo`),\n KEY `k` (`pgp`(10))\n"
        ") ENGINE=InnoDB")
    assert ct == ("dnm_dream", ["seqNo", "pgp", "price"])


def test_statements_stream_in_small_chunks() -> None:
    sizes = {}
    for chunk in (1 << 20, 997, 64):
        with open(DUMP, "rb") as fh:
            stmts = list(iter_statements(fh, chunk=chunk))
        sizes[chunk] = [(s.number, s.line, len(s.text), s.error) for s in stmts]
    assert sizes[1 << 20] == sizes[997] == sizes[64]
    assert sum(1 for s in sizes[64] if s[3] is None) == len(sizes[64]) == 33


def test_dream_sellers() -> None:
    st_ = SqlStats()
    recs = list(read_dump(DUMP, stats=st_))
    accounts = [r for r in recs if isinstance(r, AccountRecord)]
    keys = [r for r in recs if isinstance(r, PgpKeyRecord)]
    text = DUMP.read_text(encoding="utf-8")
    assert st_.rows == st_.stored_rows + st_.quarantined_rows == len(accounts) == 690
    assert st_.inserts == text.count("INSERT INTO ") == 4
    blocks = text.count("BEGIN PGP PUBLIC KEY BLOCK")
    pgp = st_.map["dnm_dream"]
    assert blocks == 745 and pgp.pgp_blocks == blocks
    assert pgp.pgp_keys + pgp.pgp_failures == blocks
    assert len(keys) == pgp.pgp_keys
    first = accounts[0]
    assert (first.market_id, first.handle, first.role, first.locator) == (
        "dream", "0ldamsterdam", "vendor", "insert 1 row 1")
    assert first.joined_at == datetime(2016, 7, 13, tzinfo=UTC)
    assert first.rating == 4.83 and first.sales_count is None and first.level is None
    assert first.profile_text and first.profile_text.startswith("-.-.-.-. OLDAMSTERDAM")
    k = next(k for k in keys if k.account_handle == "0ldamsterdam")
    assert k.fingerprint == "1D9DEA5392C6A420C868ACC573E25F3B44E13E81"
    assert k.locator == "insert 1 row 1#pgp 1" and k.field == "pgp"
    # insert 2 starts at seqNo 190 (hand-checked in the file)
    assert next(a for a in accounts if a.locator == "insert 2 row 1").handle == \
        "dutchdopemasters"


def test_dream_ingest_and_keys_command(ws, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    [f] = ingest(ws, [DUMP]).files
    assert f.importer == "sqldump" and f.error is None
    assert (f.read, f.stored, f.quarantined) == (690, 690, 0)
    ws.close()
    from darkmap.cli import main

    res = CliRunner().invoke(main, ["keys", "-w", str(tmp_path / "ws"), "--json"])
    assert res.exit_code == 0, res.output
    import json

    data = json.loads(res.output)
    assert data["key_occurrences"] + data["failed"] == 745
    assert data["distinct_fingerprints"] == 684
    shared = {s["fingerprint"]: s["accounts"] for s in data["shared"]}
    assert data["shared_fingerprints"] == len(shared) > 0
    assert all(len(a) > 1 for a in shared.values())
    res = CliRunner().invoke(main, ["keys", "-w", str(tmp_path / "ws")])
    assert "distinct fingerprints" in res.output


def _dump(rows: list[str], extra: str = "") -> bytes:
    return ("-- MySQL dump\nCREATE TABLE `dnm_dream` (\n `seqNo` int, `seller_name` varchar(4),"
            "\n `member_since` varchar(4), `pgp` longtext, `description` longtext\n);\n"
            + "".join(f"INSERT INTO `dnm_dream` VALUES {r};\n" for r in rows) + extra).encode()


def _read(data: bytes, tmp_path: Path) -> tuple[SqlStats, list]:  # type: ignore[type-arg]
    p = tmp_path / "d.sql"
    p.write_bytes(data)
    st_ = SqlStats()
    return st_, list(read_dump(p, stats=st_, chunk=17))


def test_broken_statements_resynchronise(tmp_path: Path) -> None:
    data = _dump([
        "(1,'alice','01/01/2016',NULL,'hi wickr: alice99')",
        "(2,'bob','01/01/2016',NULL,'lost quote)",             # quote never closed
        "(3,'carol','x',NULL,'ok'),(4,'dave')",                # 2 values for 5 columns
        "(5,'eve','01/01/2016',NULL,'ok') junk",
        "(6,'-','01/01/2016',NULL,'no handle')",
    ])
    st_, recs = _read(data, tmp_path)
    handles = [r.handle for r in recs if isinstance(r, AccountRecord)]
    assert handles == ["alice", "carol", "eve"]
    q = {r.locator: r.reason for r in recs if isinstance(r, QuarantineRecord)}
    assert "unterminated ' string" in q["insert 2"]
    assert "2 values, table `dnm_dream` has 5 columns" in q["insert 3 row 2"]
    assert "expected ',' between rows" in q["insert 4 row 2"]
    assert "field 'handle'" in q["insert 5 row 1"]
    assert st_.rows == st_.stored_rows + st_.quarantined_rows


_value = st.one_of(st.none(), st.integers().map(str),
                   st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20))


def _sql_literal(v: str | None) -> str:
    if v is None:
        return "NULL"
    if re.fullmatch(r"-?[0-9]+", v):
        return v
    esc = {"\\": "\\\\", "'": "\\'", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t",
           "\0": "\\0", "\x1a": "\\Z"}
    return "'" + "".join(esc.get(c, c) for c in v) + "'"


@given(st.lists(st.lists(_value, min_size=1, max_size=5), min_size=1, max_size=6))
@settings(max_examples=150, deadline=None)
def test_escaping_round_trip(rows: list[list[str | None]]) -> None:
    sql = "INSERT INTO `t` VALUES " + ",".join(
        "(" + ",".join(_sql_literal(v) for v in r) + ")" for r in rows) + ";"
    assert _rows(sql) == rows


@given(st.data())
@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_mangled_dumps_never_crash(tmp_path: Path, data: st.DataObject) -> None:
    base = _dump([f"({i},'u{i}','01/01/2016',NULL,'it\\'s ''ok'' {i}')" for i in range(1, 6)])
    cut = data.draw(st.integers(0, len(base)))
    pos = data.draw(st.integers(0, len(base)))
    junk = data.draw(st.binary(max_size=8) | st.sampled_from([b"'", b"\\", b";", b"(", b")"]))
    for mangled in (base[:cut], base[:pos] + junk + base[pos:]):
        st_, recs = _read(mangled, tmp_path)
        assert st_.rows == st_.stored_rows + st_.quarantined_rows
        units = Counter(r.locator.split("#")[0] for r in recs if not isinstance(r, MarketRecord))
        assert sum(isinstance(r, MarketRecord) for r in recs) <= 1
        assert st_.stored_rows == sum(isinstance(r, AccountRecord) for r in recs)
        assert all(u.startswith(("insert", "statement")) for u in units)


def test_iter_statements_on_bytes() -> None:
    fh = io.BytesIO(b"SET a=1;\n-- c;\n/* x; */ INSERT INTO t VALUES ('a;b');")
    stmts = list(iter_statements(fh, chunk=3))
    assert [s.text for s in stmts] == ["SET a=1", "INSERT INTO t VALUES ('a;b')"]
