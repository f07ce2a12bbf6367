"""The FtM export never makes two accounts textually one (exports audit, finding 3).

FollowTheMoney's cleaning strips control characters: a hostile Dream vendor
``bel<BEL>nul<NUL>x`` was exported with username, name, ``dream:belnulx`` keyword and
summary "account id" identical to those of the real vendor ``belnulx``, and an account
id the workspace does not know. Free text holding a control, bidi or zero-width
character or a backslash is now written as the CSV and the report show it, one to one:
the BEL handle as ``bel\\x07nul\\x00x``, a handle spelling that with its backslashes
doubled.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from export_workspaces import text_capture

import darkmap
from darkmap.export import run_export
from darkmap.model.records import AccountRecord
from darkmap.plugins import exporters
from darkmap.store.workspace import Workspace

HANDLES = ("bel\x07nul\x00x", "belnulx", "bel\\x07nul\\x00x", "abc\u202egpj.exe", "abcgpj.exe",
           "zero\u200bwidth", "zerowidth")


@pytest.fixture(scope="module")
def accounts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, list[str]]]:
    """The exported UserAccount properties per account id of the workspace."""
    path = tmp_path_factory.mktemp("ftm-escaped")
    t0 = datetime(2020, 1, 2, 3, 4, 5)
    with darkmap.init_workspace(path / "ws") as ws:
        w, prov = text_capture(ws, HANDLES, "hostile.txt", t0)
        for i, handle in enumerate(HANDLES):
            w.add(AccountRecord(market_id="dream", handle=handle, role="vendor",
                                profile_text=f"vendor {handle}", observed_at=t0,
                                locator=f"row {i}"), prov)
        w.flush()
    out = path / "a.ftm"
    with Workspace.open(path / "ws", read_only=True) as ws:
        counts = run_export(exporters()["ftm"], ws, out)
        ids = {a for (a,) in ws.con.execute("SELECT account_id FROM accounts").fetchall()}
    assert counts["values_escaped"] > 0
    found: dict[str, dict[str, list[str]]] = {}
    for line in out.read_text(encoding="utf-8").splitlines():
        ent = json.loads(line)
        if ent["schema"] == "UserAccount":
            found[ent["properties"]["keywords"][0]] = ent["properties"]
    assert len(found) == len(HANDLES)
    assert {k.encode().decode("unicode_escape") for k in found} == ids
    return found


@pytest.mark.parametrize("prop", ["username", "name", "keywords"])
def test_no_two_accounts_share_a_value(accounts: dict[str, dict[str, list[str]]],
                                       prop: str) -> None:
    values = [tuple(p[prop]) for p in accounts.values()]
    assert len(set(values)) == len(HANDLES), values


def test_the_summary_names_each_account_id_once(
        accounts: dict[str, dict[str, list[str]]]) -> None:
    lines = [next(ln for s in p["summary"] for ln in s.split("\n")
                  if ln.startswith("account id: ")) for p in accounts.values()]
    assert len(set(lines)) == len(HANDLES)
    assert "account id: dream:belnulx" in lines  # the real vendor, as it is


def test_the_hostile_handles_are_shown_escaped(
        accounts: dict[str, dict[str, list[str]]]) -> None:
    assert accounts["dream:bel\\x07nul\\x00x"]["username"] == ["bel\\x07nul\\x00x"]
    assert accounts["dream:bel\\\\x07nul\\\\x00x"]["username"] == ["bel\\\\x07nul\\\\x00x"]
    assert accounts["dream:abc\\u202egpj.exe"]["name"] == ["abc\\u202egpj.exe"]
    assert accounts["dream:zero\\u200bwidth"]["username"] == ["zero\\u200bwidth"]
    assert accounts["dream:belnulx"]["description"] == ["vendor belnulx"]
