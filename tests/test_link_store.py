"""Storing a link run replaces the previous run's personas, members and links, keeps the
tables' schema (keys included), and leaves the previous run whole if it fails."""

from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from darkmap.store.personas import LinkTables, store_link_run
from darkmap.store.workspace import Workspace

_TABLES = ("personas", "persona_members", "account_links")
NOW = datetime(2026, 12, 5, 12, 0, 0)


def _run(k: int, n: int) -> LinkTables:
    personas = [(f"p-{k}-{x}", f"h{x}", 2, 1, NOW, NOW, 0.9, f"r{k}", NOW) for x in range(n)]
    members = [(f"p-{k}-{x}", f"m:a{x}") for x in range(n)] + [
        (f"p-{k}-{x}", f"m:b{x}") for x in range(n)]
    links = [(f"m:a{x}", f"m:b{x}", 0.9, '{"handle": {"level": "same"}}', "logistic@1",
              True, f"r{k}", NOW) for x in range(n)]
    return LinkTables(personas, members, links)


def _schema(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    return sorted(con.execute(
        "SELECT table_name, sql FROM duckdb_tables() WHERE list_contains(?, table_name)",
        [list(_TABLES)]).fetchall())


def _counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in _TABLES}


def test_a_run_replaces_the_last_and_the_schema_and_keys_stay(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    before = _schema(ws.con)
    store_link_run(ws.con, "r1", NOW, "{}", _run(1, 50))
    store_link_run(ws.con, "r2", NOW, "{}", _run(2, 30))
    assert _counts(ws.con) == {"personas": 30, "persona_members": 60, "account_links": 30}
    assert {r[0] for r in ws.con.execute("SELECT DISTINCT run_id FROM personas").fetchall()
            } == {"r2"}
    assert _schema(ws.con) == before
    # the primary keys still hold
    with pytest.raises(duckdb.ConstraintException):
        ws.con.execute("INSERT INTO persona_members VALUES ('p-2-0', 'm:a0')")
    with pytest.raises(duckdb.ConstraintException):
        ws.con.execute("INSERT INTO account_links SELECT * FROM account_links LIMIT 1")
    ws.close()


def test_a_failed_run_leaves_the_last_one_whole(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    store_link_run(ws.con, "r1", NOW, "{}", _run(1, 40))
    bad = _run(2, 10)
    bad.members.append(bad.members[0])          # a repeated member breaks the key
    with pytest.raises(duckdb.ConstraintException):
        store_link_run(ws.con, "r2", NOW, "{}", bad)
    assert _counts(ws.con) == {"personas": 40, "persona_members": 80, "account_links": 40}
    assert ws.con.execute("SELECT DISTINCT run_id FROM account_links").fetchall() == [("r1",)]
    ws.close()
    # and the workspace opens again with the same tables
    again = Workspace.open(tmp_path / "ws")
    assert _counts(again.con)["personas"] == 40
    again.close()


def test_an_index_on_a_link_table_survives_a_run(tmp_path: Path) -> None:
    # none of the link tables has an index of its own today; a migration that adds one
    # must not lose it at the next link run (the tables are dropped and created again)
    ws = Workspace.init(tmp_path / "ws")
    ws.con.execute("CREATE INDEX account_links_b ON account_links (b)")
    store_link_run(ws.con, "r1", NOW, "{}", _run(1, 20))
    store_link_run(ws.con, "r2", NOW, "{}", _run(2, 10))
    assert ws.con.execute("SELECT index_name, table_name FROM duckdb_indexes()"
                          " WHERE table_name = 'account_links'").fetchall() == [
        ("account_links_b", "account_links")]
    assert _counts(ws.con)["account_links"] == 10
    ws.close()
