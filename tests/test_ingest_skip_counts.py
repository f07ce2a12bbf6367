"""`skipped_by_page_type` adds up to `totals.skipped` (audit finding 8: a file whose
bytes repeat another's was counted skipped but left out of the reasons: Dream's two
identical login pages gave `skipped 2` and `{"login: login form": 1}`). Files already
ingested by an earlier run count under their stored reasons too."""

from __future__ import annotations

from pathlib import Path

from conftest import DATA

from darkmap.collect.ingest import ingest
from darkmap.store.workspace import Workspace

LOGIN = DATA / "pages" / "dream" / "login_page"


def _counts(ws: Workspace, paths: list[Path]) -> tuple[int, dict[str, int]]:
    out = ingest(ws, paths).as_dict()
    return out["totals"]["skipped"], out["skipped_by_page_type"]


def test_a_file_repeating_anothers_bytes_counts_under_its_skip_reason(
        tmp_path: Path) -> None:
    assert len({p.read_bytes() for p in LOGIN.iterdir()}) == 1 < len(list(LOGIN.iterdir()))
    with Workspace.init(tmp_path / "ws") as ws:
        assert _counts(ws, [LOGIN]) == (2, {"login: login form": 2})
        # a rerun: both files already ingested, counted under the stored reason
        assert _counts(ws, [LOGIN]) == (2, {"login: login form": 2})


def test_skip_reasons_add_up_over_the_real_pages(tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "ws") as ws:
        for _ in range(2):  # a first run, then a rerun of files all already ingested
            skipped, reasons = _counts(ws, [DATA / "pages"])
            assert skipped > 0
            assert sum(reasons.values()) == skipped, reasons
