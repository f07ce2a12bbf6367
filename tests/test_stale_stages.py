"""Out-of-date stages: `darkmap status` says when the personas or the assessment are older
than what they rest on, and `targets` and `report` say it too instead of ranking stale
figures silently.

Walked with the CLI on a small `darkmap simulate` world (with chain data and tag packs),
through the real importers; its vendors' review pages are held back and ingested after
the assessment: evidence (accounts seen again, feedback) that adds no listing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from darkmap.cli import main


def _run(*args: str) -> Result:
    res = CliRunner().invoke(main, list(args))
    assert res.exit_code == 0, (args, res.output, res.exception)
    return res


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated world whose review pages are moved from ``pages`` to ``reviews``."""
    from darkmap.simulate import SimParams, simulate

    out = tmp_path_factory.mktemp("stale") / "world"
    simulate(out, 3, SimParams(vendors=8, chain=True))
    for folder in sorted((out / "pages").glob("*/reviews")):
        dest = out / "reviews" / folder.parent.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(folder, dest)
    assert any((out / "reviews").rglob("*.html"))
    return out


def _stage(ws: str) -> dict:
    """`darkmap status --json`'s stage, the assessed line and the next line of the text."""
    st = json.loads(_run("status", "-w", ws, "--json").output)["stage"]
    lines = _run("status", "-w", ws).output.splitlines()
    st["assessed_line"] = next(ln for ln in lines if ln.startswith("  assessed "))
    st["next_line"] = next(ln for ln in lines if ln.startswith("next: "))
    return st


def _ingest(ws: str, *paths: Path) -> None:
    _run("ingest", "-q", "-w", ws, *map(str, paths))


def test_a_chain_load_after_the_link_leaves_the_personas_up_to_date(world: Path,
                                                                     tmp_path: Path) -> None:
    """Chain data and tag packs ingested after `darkmap link` made `status` call the
    link out of date and send the analyst back to `darkmap link`: the linker reads no
    chain data. Review pages (accounts and feedback, which it reads) still do."""
    ws = str(tmp_path / "ws")
    _run("ingest", "-q", "--init", "-w", ws, *(str(world / p) for p in
                                                ("pages", "listings", "seized")))
    _run("link", "-q", "-w", ws)
    _run("assess", "-q", "-w", ws)
    _ingest(ws, world / "chain", world / "tags")
    st = _stage(ws)
    assert st["next"] == "darkmap chain cluster", st["next_line"]
    assert not st["ingested_since_link"] and st["transactions"] > 0
    assert not st["ingested_since_assessment"]
    assert "out of date" not in _run("status", "-w", ws).output
    _ingest(ws, world / "reviews")
    st = _stage(ws)
    assert st["ingested_since_link"] and st["next"] == "darkmap link"
    assert "account evidence was ingested after the last link run" in st["next_line"]


def test_status_says_the_assessment_is_older_than_the_evidence(world: Path,
                                                                tmp_path: Path) -> None:
    """Feedback and account pages ingested after `darkmap assess` (no new listing): once
    re-linked, `status` counted every listing assessed and said every stage had run,
    though the sales rest on the feedback. It now says the assessment is out of date and
    sends the analyst to `darkmap assess`; after it, nothing is out of date."""
    ws = str(tmp_path / "ws")
    _run("ingest", "-q", "--init", "-w", ws, *(str(world / p) for p in
                                                ("pages", "listings", "seized")))
    _run("link", "-q", "-w", ws)
    _run("assess", "-q", "-w", ws)
    before = _stage(ws)
    _ingest(ws, world / "reviews")
    assert _stage(ws)["next"] == "darkmap link"  # the personas first
    _run("link", "-q", "-w", ws)
    st = _stage(ws)
    assert st["feedback"] > before["feedback"] and st["listings"] == st["assessed"]
    assert st["next"] == "darkmap assess", st["next_line"]
    assert "assessment out of date: evidence ingested since" in st["next_line"]
    assert st["assessed_line"].endswith("(out of date: evidence ingested since)")
    assert st["ingested_since_assessment"] and not st["relinked_since_assessment"]
    _run("assess", "-q", "-w", ws)
    st = _stage(ws)
    assert not st["ingested_since_assessment"] and st["next"] == "darkmap targets"
    assert "out of date" not in _run("status", "-w", ws).output


def test_status_says_the_assessment_is_older_than_the_personas(world: Path,
                                                                tmp_path: Path) -> None:
    """`assess` before `link` (sales and jurisdictions computed per account), or a link
    run after it that changed the personas, left `status` saying every stage had run. It
    now says the assessment is out of date because the personas were re-linked. A link
    run that changes no persona leaves it up to date."""
    ws = str(tmp_path / "ws")
    _run("ingest", "-q", "--init", "-w", ws, *(str(world / p) for p in
                                                ("pages", "listings", "seized")))
    _run("assess", "-q", "-w", ws)
    _run("link", "-q", "-w", ws)
    st = _stage(ws)
    assert st["next"] == "darkmap assess", st["next_line"]
    assert "personas re-linked since" in st["next_line"]
    assert st["relinked_since_assessment"] and not st["ingested_since_assessment"]
    _run("assess", "-q", "-w", ws)
    _run("link", "-q", "-w", ws)  # the same personas again
    st = _stage(ws)
    assert not st["relinked_since_assessment"] and st["next"] == "darkmap targets"
    # a judgement that splits a persona: the next link run changes the personas
    a, b = _members_of_a_persona(ws)
    _run("judge", a, b, "--different", "-w", ws)
    _run("link", "-q", "-w", ws)
    st = _stage(ws)
    assert st["relinked_since_assessment"] and st["next"] == "darkmap assess"


def _members_of_a_persona(ws: str) -> tuple[str, str]:
    """Two accounts of one persona of the workspace ``ws``."""
    from darkmap.store.workspace import Workspace

    w = Workspace.open(Path(ws), read_only=True)
    try:
        row = w.con.execute(
            "SELECT min(account_id), max(account_id) FROM persona_members GROUP BY persona_id"
            " HAVING count(*) > 1 ORDER BY 1 LIMIT 1").fetchone()
    finally:
        w.close()
    assert row is not None
    return row[0], row[1]


def test_targets_and_report_say_the_assessment_is_out_of_date(world: Path,
                                                               tmp_path: Path) -> None:
    """`targets` and `report` ranked the figures of an assessment older than the
    evidence without a word. `targets` now says so in one line on stderr (its table,
    JSON and CSV on stdout unchanged) and the report in a note under its title; neither
    says it of an assessment up to date."""
    ws = str(tmp_path / "ws")
    _run("ingest", "-q", "--init", "-w", ws, *(str(world / p) for p in
                                                ("pages", "listings", "seized")))
    _run("link", "-q", "-w", ws)
    _run("assess", "-q", "-w", ws)
    note = "assessment out of date (evidence ingested since): run `darkmap assess`"
    fresh = _run("targets", "-w", ws, "--json")
    assert note not in fresh.stderr and "out of date" not in fresh.output
    html = tmp_path / "fresh.html"
    _run("report", "-w", ws, "-o", str(html))
    assert 'class="stale"' not in html.read_text(encoding="utf-8")
    _ingest(ws, world / "reviews")
    for args in ((), ("--json",), ("--csv",)):
        res = _run("targets", "-w", ws, *args)
        assert [ln for ln in res.stderr.splitlines() if "out of date" in ln] == [
            f"note: {note}"], args
        assert note not in res.stdout
    assert json.loads(_run("targets", "-w", ws, "--json").stdout)
    _run("report", "-w", ws, "-o", str(html))
    text = html.read_text(encoding="utf-8")
    head = text[:text.index("<h2")] if "<h2" in text else text
    assert 'class="stale"' in head
    assert "assessment out of date (evidence ingested since): run `darkmap assess`" in head
