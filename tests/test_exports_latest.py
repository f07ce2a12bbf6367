"""The exports give each account and listing, per field, the newest known value: that of
the newest observation that has the field (observations with a time before those without,
then ``obs_id``), so no field is lost because a newer capture did not show it. On the real
data a seized Dream dump (no time, profile text and join date) meets saved Dream pages
(a time, no profile text), and an Apollon search result row (newer, no description) meets
the listing's own page."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from export_workspaces import built, open_ro

from darkmap.export.ftm import FtmExporter, entity_id
from darkmap.store import exports
from darkmap.store.workspace import Workspace

DUMP = "dream-2016-sellers.sql"
DREAM = ("dream:bank", "dream:europe", "dream:hammerhome123")
ACCOUNT_FIELDS = ("joined_at", "last_seen_at", "rating", "level", "feedback_count",
                  "sales_count", "ships_from", "profile_text", "url")
LISTING_FIELDS = ("title", "description", "price_text", "ships_from", "ships_to",
                  "category_path", "url")


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[Workspace]:
    ws = open_ro(built("real", tmp_path_factory, data_dir))
    yield ws
    ws.close()


def _observations(ws: Workspace, table: str, key: str) -> dict[str, list[dict[str, Any]]]:
    """Every observation of ``table`` by ``key``, newest first (in Python, not SQL)."""
    cur = ws.con.execute(f"SELECT * FROM {table}")
    cols = [d[0] for d in cur.description or ()]
    out: dict[str, list[dict[str, Any]]] = {}
    for row in cur.fetchall():
        r = dict(zip(cols, row, strict=True))
        out.setdefault(r[key], []).append(r)
    for rows in out.values():
        rows.sort(key=lambda r: r["obs_id"])
        rows.sort(key=lambda r: r["observed_at"] or datetime.min, reverse=True)
        rows.sort(key=lambda r: r["observed_at"] is None)
    return out


def _newest(rows: list[dict[str, Any]], field: str) -> Any:
    """The field of the newest observation that has it (a list: a non-empty one), else
    the newest observation's value."""
    for r in rows:
        if r[field] is not None and r[field] != []:
            return r[field]
    return rows[0][field]


def test_the_dream_dump_keeps_its_profile_text_and_join_date(real: Workspace) -> None:
    obs = _observations(real, "account_observations", "account_id")
    facts = {a.account_id: a for a in exports.accounts(real.con, DREAM)}
    for aid in DREAM:
        dump = [r for r in obs[aid] if r["source"].endswith(DUMP)]
        pages = [r for r in obs[aid] if r["observed_at"] is not None]
        assert len(dump) == 1 and dump[0]["observed_at"] is None and pages, aid
        assert all(r["profile_text"] is None for r in pages), aid
        a = facts[aid]
        assert a.profile_text == dump[0]["profile_text"] and a.profile_text, aid
        assert a.joined_at is not None
        assert a.joined_at == _newest(obs[aid], "joined_at"), aid
        # the page is newer and shows a rating: its rating, not the dump's
        assert a.rating == pages[0]["rating"] is not None, aid
        assert a.n_observations == len(obs[aid])
        assert a.first_seen is not None and a.first_seen <= a.joined_at  # the window too
    # dream:bank's page shows no join date: the dump's is kept
    assert facts["dream:bank"].joined_at == next(
        r["joined_at"] for r in obs["dream:bank"] if r["source"].endswith(DUMP))


def test_every_account_field_is_its_newest_known_value(real: Workspace) -> None:
    obs = _observations(real, "account_observations", "account_id")
    facts = exports.accounts(real.con)
    seen = 0
    for a in facts:
        if a.account_id not in obs:
            assert a.n_observations == 0 and a.profile_text is None
            continue
        rows = obs[a.account_id]
        for field in ACCOUNT_FIELDS:
            assert getattr(a, field) == _newest(rows, field), (a.account_id, field)
        seen += len(rows) > 1
    assert seen >= 3


def test_every_listing_field_is_its_newest_known_value(real: Workspace) -> None:
    obs = _observations(real, "listing_observations", "listing_id")
    facts = exports.listings(real.con)
    assert {x.listing_id for x in facts} >= set(obs)
    for x in facts:
        rows = obs[x.listing_id]
        for field in LISTING_FIELDS:
            assert getattr(x, field) == _newest(rows, field), (x.listing_id, field)
        priced = [r for r in rows if r["price"] is not None]
        if priced:  # a price with its own currency, never another capture's
            assert (x.price, x.currency) == (priced[0]["price"], priced[0]["currency"])
        # the provenance is the newest observation's, as before
        assert (x.capture_sha256, x.observed_at) == (rows[0]["capture_sha256"],
                                                     rows[0]["observed_at"])
        assert x.n_observations == len(rows)


def test_an_apollon_search_row_does_not_hide_the_listings_description(
        real: Workspace) -> None:
    obs = _observations(real, "listing_observations", "listing_id")["apollon:73431"]
    assert "search_result" in obs[0]["source"] and obs[0]["description"] is None
    page = next(r for r in obs if r["description"])
    (x,) = [x for x in exports.listings(real.con) if x.listing_id == "apollon:73431"]
    assert x.description == page["description"]
    assert x.ships_from == page["ships_from"] is not None
    assert "search_result" in x.source  # the row's provenance: the newest capture


def test_the_ftm_export_carries_the_dumps_profile_and_join_date(
        real: Workspace, tmp_path: Path) -> None:
    out = tmp_path / "real.ftm.json"
    FtmExporter().export(real, out, None)
    entities = {r["id"]: r for r in map(json.loads, out.read_text("utf-8").splitlines())}
    obs = _observations(real, "account_observations", "account_id")
    for aid in DREAM:
        dump = next(r for r in obs[aid] if r["source"].endswith(DUMP))
        props = entities[entity_id("account", aid)]["properties"]
        assert props["description"] == [dump["profile_text"]], aid
        assert props["createdAt"][0].startswith(
            _newest(obs[aid], "joined_at").date().isoformat()), aid
