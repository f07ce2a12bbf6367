"""Linking, personas and judgements say what is wrong: NotFoundError for a lookup that
finds nothing, BadInputError for an invalid argument, before anything is written. Run on
the real Dream seller dump (accounts, no personas yet) and on a linked one."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from darkmap.cli import main
from darkmap.collect.ingest import ingest
from darkmap.errors import BadInputError, NotFoundError
from darkmap.resolve.judgements import check_request, judge, withdraw
from darkmap.resolve.link import LinkOptions, link
from darkmap.resolve.lookup import search_personas, show_persona
from darkmap.store.workspace import Workspace

A, B = "dream:0ldamsterdam", "dream:greygooseglobal"   # two real Dream sellers


def _dream(base: Path, data_dir: Path, linked: bool) -> Path:
    path = base / "ws"
    with Workspace.init(path) as ws:
        ingest(ws, [data_dir / "seized"])
        if linked:
            link(ws)
    return path


@pytest.fixture(scope="module")
def dream(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A workspace holding the real Dream seller dump, not linked yet."""
    return _dream(tmp_path_factory.mktemp("dream"), data_dir, linked=False)


@pytest.fixture(scope="module")
def linked(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """The same, linked."""
    return _dream(tmp_path_factory.mktemp("linked"), data_dir, linked=True)


@pytest.fixture
def ws(dream: Path) -> Workspace:
    w = Workspace.open(dream)
    yield w
    w.close()


@pytest.mark.parametrize("kwargs", [
    {"threshold": 1.5}, {"threshold": -0.1}, {"threshold": math.nan},
    {"threshold": None}, {"store_min": 2.0}, {"store_min": math.nan},
    {"complete_max": -1}, {"method": "k-means"},
])
def test_invalid_link_options_are_bad_input(kwargs: dict) -> None:
    with pytest.raises(BadInputError) as err:
        LinkOptions(**kwargs)
    assert isinstance(err.value, ValueError)
    assert next(iter(kwargs)) in str(err.value)


def test_threshold_bounds_are_allowed() -> None:
    assert LinkOptions(threshold=0.0).threshold == 0.0
    assert LinkOptions(threshold=1, store_min=0).threshold == 1


def test_link_refuses_bad_options_before_writing(ws: Workspace) -> None:
    opts = LinkOptions()
    opts.threshold = math.nan          # changed after construction: link checks again
    with pytest.raises(BadInputError, match="threshold"):
        link(ws, opts)
    with pytest.raises(BadInputError, match="unknown signal 'colour'"):
        link(ws, LinkOptions(signals=("colour",)))
    with pytest.raises(BadInputError, match="no signals left"):
        link(ws, LinkOptions(signals=("identifiers",), without=("identifiers",)))
    assert ws.con.execute("SELECT count(*) FROM link_runs").fetchone()[0] == 0
    assert ws.con.execute("SELECT count(*) FROM personas").fetchone()[0] == 0


def test_persona_lookups_before_link_find_nothing(ws: Workspace) -> None:
    with pytest.raises(NotFoundError, match="run `darkmap link` first"):
        show_persona(ws, A)               # a real account, but no personas yet
    assert search_personas(ws, "amsterdam") == []


def test_judge_unknown_account_is_not_found_and_bad_verdicts_bad_input(ws: Workspace) -> None:
    with pytest.raises(NotFoundError, match="'dream:nobody'"):
        judge(ws, A, "dream:nobody", "same")
    with pytest.raises(BadInputError, match="two different accounts"):
        judge(ws, A, A, "same")
    with pytest.raises(BadInputError, match="verdict must be one of"):
        judge(ws, A, B, "maybe")
    assert ws.con.execute("SELECT count(*) FROM judgements").fetchone()[0] == 0
    j = judge(ws, B, A, "unsure", author="tester")
    assert (j["a"], j["b"], j["verdict"], j["author"]) == (A, B, "unsure", "tester")
    assert withdraw(ws, A, B) == 1 and withdraw(ws, A, B) == 0


@pytest.mark.parametrize("verdict, withdraw_, ok", [
    (None, False, False), ("same", True, False), ("same", False, True), (None, True, True),
])
def test_judge_request_needs_exactly_one_action(verdict: str | None, withdraw_: bool,
                                                 ok: bool) -> None:
    if ok:
        check_request(verdict, withdraw_)
    else:
        with pytest.raises(BadInputError, match="exactly one of"):
            check_request(verdict, withdraw_)


def test_unknown_persona_after_link_and_known_one_by_any_member(linked: Path) -> None:
    with Workspace.open(linked, read_only=True) as ws:
        _check_linked(ws)


def _check_linked(ws: Workspace) -> None:
    with pytest.raises(NotFoundError) as err:
        show_persona(ws, "p-000000000000")
    assert isinstance(err.value, KeyError)
    assert str(err.value) == (
        "no persona or account 'p-000000000000': give a persona id (p-...) or an account id "
        "(market:handle); `darkmap persona search TEXT` finds one by handle, key or address")
    # greygooseglobal and greygoosegl0bal publish one key: one persona, found either way
    d = show_persona(ws, "DREAM:GreyGooseGlobal")
    assert {a["account_id"] for a in d["accounts"]} >= {B, "dream:greygoosegl0bal"}
    assert show_persona(ws, d["persona_id"]) == d


def test_a_handle_given_to_persona_show_names_the_persona_id_to_paste(linked: Path) -> None:
    """`darkmap targets` prints handles; `persona show HANDLE` said "run `darkmap link`
    first?" on a linked workspace. The error now names the persona ids the handle finds."""
    with Workspace.open(linked, read_only=True) as ws:
        pid = show_persona(ws, B)["persona_id"]
        with pytest.raises(NotFoundError) as err:
            show_persona(ws, "GreyGooseGlobal")
    msg = str(err.value)
    assert "run `darkmap link`" not in msg
    assert f"'GreyGooseGlobal' matches {pid} (GreyGooseGl0bal)" in msg   # its label
    res = CliRunner().invoke(main, ["persona", "show", pid, "-w", str(linked)])
    assert res.exit_code == 0 and res.output.startswith(pid)


def test_cli_errors_are_one_line(dream: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["persona", "show", "dream:nobody", "-w", str(dream)])
    assert res.exit_code == 1
    assert res.output.strip() == ("Error: no persona or account 'dream:nobody': the "
                                  "workspace has no personas yet (run `darkmap link` first)")
    res = runner.invoke(main, ["link", "--threshold", "1.5", "-w", str(dream)],
                        prog_name="darkmap")
    assert res.exit_code == 2  # a value out of range: a usage error, as the guide says
    assert res.output.strip() == (
        "Error: darkmap link: Invalid value for '--threshold': threshold must be a "
        "probability in [0, 1], not 1.5 (see `darkmap link --help`)")
    res = runner.invoke(main, ["judge", A, B, "--same", "--withdraw", "-w", str(dream)])
    assert res.exit_code == 2 and "give exactly one of" in res.output
    res = runner.invoke(main, ["judge", A, "dream:nobody", "--same", "-w", str(dream)])
    assert res.exit_code == 1 and res.output.strip() == (
        "Error: no account 'dream:nobody' in this workspace (ids look like market:handle)")
