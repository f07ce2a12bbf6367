"""The first hour of a new analyst (docs/user-guide.md walked on the real data): each
step's output says what its numbers mean and gives the id or command the next step takes.

One workspace of the real saved pages, listing datasets and seized seller table, linked
and assessed, as the guide builds it; the commands run as the analyst types them.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from darkmap.api import assess_listings, ingest, init_workspace, link
from darkmap.cli import main


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[Path]:
    """The real pages, listings and seized table: ingested, linked, assessed."""
    path = tmp_path_factory.mktemp("first-hour") / "ws"
    ws = init_workspace(path)
    try:
        ingest(ws, [data_dir / "pages", data_dir / "listings", data_dir / "seized"])
        link(ws)
        assess_listings(ws)
    finally:
        ws.close()
    yield path


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_targets_table_gives_the_persona_id_and_how_sure_the_country_is(real: Path) -> None:
    """The table showed a handle `persona show` refuses, and the country without the
    confidence `--json` has; it now shows the id, the country's confidence, what the
    columns mean and the next command, which runs as printed."""
    rows = json.loads(_run("targets", "-w", str(real), "--limit", "8", "--json").output)
    res = _run("targets", "-w", str(real), "--limit", "8")
    assert res.exit_code == 0
    lines = res.output.splitlines()
    for i, r in enumerate(rows, 1):
        line = lines[i]
        assert line.split()[:3] == [str(i), f"{r['harm_score']:.1f}", r["persona_id"]]
        if r["country"]:
            assert f" {r['country']} {r['country_confidence']:.2f} " in line
    assert any(r["country"] for r in rows)
    assert "how sure" in res.output and "fentanyl-risk" in res.output
    nxt = next(ln for ln in lines if ln.startswith("next: "))
    cmd = shlex.split(nxt.removeprefix("next: ").split(" (")[0])
    assert cmd[:3] == ["darkmap", "persona", "show"] and cmd[3] == rows[0]["persona_id"]
    shown = _run(*cmd[1:], "-w", str(real))
    assert shown.exit_code == 0 and shown.output.startswith(rows[0]["persona_id"])
