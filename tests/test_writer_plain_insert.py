"""Plain INSERT where the writer proves it safe stores what INSERT OR IGNORE stores."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import DATA, table_snapshot

from darkmap.collect.ingest import ingest
from darkmap.store import writer as writer_mod
from darkmap.store.workspace import Workspace


def test_same_store_as_insert_or_ignore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inputs = [DATA / "pages", DATA / "listings"]
    plain: list[str] = []
    real = writer_mod.RecordWriter._no_conflict
    real_mem = writer_mod.RecordWriter._remembered

    def spy(self, table, tbl):  # type: ignore[no-untyped-def]
        ok = real(self, table, tbl)
        if ok:
            plain.append(table)
        return ok

    def spy_mem(self, table, tbl, caps):  # type: ignore[no-untyped-def]
        ok = real_mem(self, table, tbl, caps)
        if ok:
            plain.append(table)
        return ok

    monkeypatch.setattr(writer_mod.RecordWriter, "_no_conflict", spy)
    monkeypatch.setattr(writer_mod.RecordWriter, "_remembered", spy_mem)
    fast = Workspace.init(tmp_path / "fast")
    ingest(fast, inputs)
    assert {"captures", "processed", "listing_observations", "feedback",
            "identifiers"} <= set(plain)
    plain.clear()
    ingest(fast, inputs)  # a rerun writes nothing new, and nothing plainly
    assert plain == []
    slow = Workspace.init(tmp_path / "slow")
    # the slow run proves nothing: INSERT OR IGNORE for entity tables (no anti-join), and
    # for the keyless evidence tables a check of every id against the stored rows; the
    # writer remembers nothing of what it stored (every flush asks the store)
    monkeypatch.setattr(writer_mod.RecordWriter, "remember_stored", False)
    monkeypatch.setattr(writer_mod.RecordWriter, "_no_conflict", lambda self, t, tbl: False)
    monkeypatch.setattr(writer_mod.RecordWriter, "_stored_rows", lambda self, t: 1 << 62)
    ingest(slow, inputs)
    got, want = table_snapshot(fast), table_snapshot(slow)
    assert got == want
    assert len(want["listing_observations"]) > 10_000 and len(want["feedback"]) > 1000


def test_capture_known_under_another_importer_is_not_fresh(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    page = next(p for p in sorted((DATA / "pages" / "dream").rglob("*")) if p.is_file())
    ws = Workspace.init(tmp_path / "ws")
    first = ingest(ws, [page])
    assert first.files[0].importer == "pages"
    verbs = []
    real = writer_mod.RecordWriter._no_conflict

    def spy(self, table, tbl):  # type: ignore[no-untyped-def]
        ok = real(self, table, tbl)
        verbs.append((table, ok))
        return ok

    monkeypatch.setattr(writer_mod.RecordWriter, "_no_conflict", spy)
    # the same bytes again under another importer: its captures row is already stored
    second = ingest(ws, [page], importer_name="csv")
    assert second.files[0].importer == "csv" and second.files[0].quarantined == 1
    assert ("captures", False) in verbs and ("captures", True) not in verbs
    counts = ws.table_counts()
    assert counts["captures"] == 1 and counts["processed"] == 2


def test_many_flushes_of_one_file_store_what_the_store_checked_paths_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A big file flushed in many parts (listing ids, feedback and identifiers repeated
    across parts, as in the Agora crawls): the writer leaves out what it stored itself
    from memory (no scan of the store per flush) and stores exactly what the reference
    stores, which asks the store at every flush; a rerun and a second importer add
    nothing wrong."""
    from darkmap.collect import ingest as ingest_mod

    monkeypatch.setattr(ingest_mod, "_BIG_FILE", 0)  # every file: autoflush in parts
    monkeypatch.setattr(writer_mod.RecordWriter.__init__, "__defaults__",
                        (2_000, True, writer_mod.BATCH_TEXT))
    inputs = [DATA / "listings", DATA / "seized"]
    queries: list[str] = []
    real_query = writer_mod.query_arrow

    def spy_query(con, sql, rows, params=None):  # type: ignore[no-untyped-def]
        queries.append(sql)
        return real_query(con, sql, rows, params)

    monkeypatch.setattr(writer_mod, "query_arrow", spy_query)
    fast = Workspace.init(tmp_path / "fast")
    ingest(fast, inputs)
    # no flush asked the store which ids or keys of the growing tables it holds (the
    # markets and PGP keys, a handful of rows, are still checked by a NOT IN)
    big = ("listing_observations", "listings", "accounts", "feedback", "identifiers",
           "quarantine")
    asked = [q for q in queries if ("NOT IN" in q or " JOIN " in q or "LIMIT 1" in q)
             and any(f" {t} " in q or f" {t})" in q for t in big)]
    assert not asked
    assert len(queries) > 100  # many flushes
    ingest(fast, inputs)
    monkeypatch.setattr(writer_mod.RecordWriter, "remember_stored", False)
    slow = Workspace.init(tmp_path / "slow")
    ingest(slow, inputs)
    got, want = table_snapshot(fast), table_snapshot(slow)
    assert got == want
    assert len(want["listing_observations"]) > 25_000 and len(want["feedback"]) > 5_000
    ids = fast.con.execute("SELECT count(*), count(DISTINCT obs_id) FROM listing_observations"
                           ).fetchone()
    assert ids is not None and ids[0] == ids[1]
    fast.close()
    slow.close()


def _dump_bench() -> Any:
    name = "darkmap_bench_ingest_sqldump"
    spec = importlib.util.spec_from_file_location(
        name, Path(__file__).resolve().parents[1] / "bench" / "ingest_sqldump.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    mod.DREAM = DATA / "seized" / "dream-2016-sellers.sql"
    return mod


def test_a_key_buffered_once_stores_what_a_row_per_key_record_stores(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer buffers one ``pgp_keys`` row per fingerprint (a flush keeps the first
    row of each anyway): on the real Dream dump repeated with new ids and handles (each
    key on many rows), flushed in many parts, the store is the one a row per key record
    makes, and a rerun adds nothing."""
    from darkmap.collect import ingest as ingest_mod

    dump = tmp_path / "dream-repeated.sql"
    _dump_bench().make_dump(dump, 12_000_000)
    monkeypatch.setattr(ingest_mod, "_BIG_FILE", 0)  # autoflush in parts
    monkeypatch.setattr(writer_mod.RecordWriter.__init__, "__defaults__",
                        (3_000, True, writer_mod.BATCH_TEXT))
    inputs = [dump, DATA / "seized" / "dream-2016-sellers.sql"]
    fast = Workspace.init(tmp_path / "fast")
    ingest(fast, inputs)
    ingest(fast, inputs)

    def every_row(self, r, p):  # type: ignore[no-untyped-def]
        self._pgp_buffered.clear()  # as before: a pgp_keys row for every key record
        return real_pgp(self, r, p)

    real_pgp = writer_mod.RecordWriter._pgp
    monkeypatch.setitem(writer_mod._HANDLERS, writer_mod.PgpKeyRecord, every_row)
    slow = Workspace.init(tmp_path / "slow")
    ingest(slow, inputs)
    got, want = table_snapshot(fast), table_snapshot(slow)
    assert got == want
    keys = fast.con.execute("SELECT count(*), count(DISTINCT fingerprint) FROM pgp_keys"
                            ).fetchone()
    assert keys is not None and keys[0] == keys[1] > 600
    seen = fast.con.execute("SELECT count(*) FROM identifiers WHERE kind = 'pgp_fingerprint'"
                            ).fetchone()
    assert seen is not None and seen[0] > 4 * keys[0]  # each key stored once, seen often
    fast.close()
    slow.close()


def test_key_halves_are_duckdbs_md5_number_upper_and_lower(ws: Workspace) -> None:
    """The writer cuts a key's two MD5 halves from one ``md5_number`` (four times faster):
    they are what ``md5_number_upper`` / ``md5_number_lower`` return, for any text and
    NULL, from an Arrow table and from a stored table alike."""
    import pyarrow as pa

    keys = ["hansa:1", "", "é", "\x00x", "a" * 1000, "😀 \u202e", None,
            *(f"m{i}:{i * 7919}" for i in range(2000))]
    rows = pa.table({"k": pa.array(keys, pa.string())})
    ws.con.execute("CREATE TABLE k_test (k VARCHAR)")
    writer_mod.insert_arrow(ws.con, "k_test", rows)
    want = ws.con.execute(
        "SELECT md5_number_upper(k), md5_number_lower(k) FROM k_test").fetchall()
    got = ws.con.execute(
        f"SELECT {writer_mod._md5_halves('k')} FROM k_test").fetchall()
    assert got == want
    hi, lo = writer_mod._key_halves(ws.con, f"SELECT {{f}} FROM {writer_mod.ARROW_ROWS}",
                                    "k", rows.slice(0, 6))  # the Arrow path, no NULL
    assert [(int(h), int(lo_)) for h, lo_ in zip(hi, lo, strict=True)] == want[:6]
