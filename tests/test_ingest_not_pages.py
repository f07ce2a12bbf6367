"""Saved files that are no whole page: binary bytes named ``.html``, pages cut short.

Found by user-level audits (2026-12): a PNG named ``.html`` that carries "<html>" in its
metadata was read as an Empire page and skipped ("no page type of template empire
matches"), its capture recorded as ``text/html``; without the tag it failed the run as
recognised by no importer.
"""

from __future__ import annotations

from pathlib import Path

from test_crawl_audit import _png

from darkmap.collect.ingest import ingest
from darkmap.store.workspace import Workspace


def test_a_binary_file_named_html_is_quarantined_naming_the_file(tmp_path: Path) -> None:
    """A PNG named .html, with or without "<html>" in a text chunk: quarantined, the
    reason naming the file and what its bytes are; never a page, nor text/html."""
    src = tmp_path / "in"
    src.mkdir()
    tagged = src / "listing.html"
    tagged.write_bytes(_png(b"<html><head><title>Empire Market</title></head><body>"
                            b"<div class='listing'>x</div></body></html>"))
    plain = src / "vendor.htm"
    plain.write_bytes(_png())
    with Workspace.init(tmp_path / "ws") as ws:
        summary = ingest(ws, [src])
        media = dict(ws.con.execute("SELECT source, media_type FROM captures").fetchall())
    t = summary.totals()
    assert (t["read"], t["stored"], t["quarantined"], t["skipped"]) == (2, 0, 2, 0), t
    problems = " | ".join(p for f in summary.files for p in f.problems)
    for f in (tagged, plain):
        assert f"{f}: not a page: the file is a PNG image" in problems, problems
    assert set(media.values()) == {"image/png"}, media
    assert not [f for f in summary.files if f.unrecognised]
