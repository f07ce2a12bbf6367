"""The workbench on real data (tests/web_support.py, :func:`build_real_world`: the seized
Dream seller table and 14,755 Hansa listings): what a browser audit found on pages of a
real workspace. Against the real application served by uvicorn on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from web_support import FakeClock, Served, World, login, next_clock, serving, shared_real_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> World:
    return shared_real_world(tmp_path_factory, data_dir)


@pytest.fixture(scope="module")
def srv(world: World) -> Iterator[tuple[Served, FakeClock]]:
    clock = next_clock()
    with serving(world, clock) as s:
        yield s, clock


@contextmanager
def _client(srv: tuple[Served, FakeClock], world: World, user: str) -> Iterator[httpx.Client]:
    served, clock = srv
    clock.advance(seconds=31)                 # a fresh TOTP step for every sign-in
    with httpx.Client(base_url=served.url, timeout=60) as c:
        assert login(c, user, world.secrets[user], clock).status_code == 303
        yield c


DR_OHNO_ADDRESS = "1NGb6Cesn2tJ3wCP4um2UjBKSHiouc7XXR"
"""A Bitcoin address the Dream seller dr.ohno published; the world loads no chain data."""


def test_a_published_address_outside_the_chain_data_has_a_wallet_page(srv, world) -> None:
    """The persona page links every address a vendor published; one no loaded block pays
    was a dead link (404). Its page names the account that published it and says that the
    chain data do not hold it; an address nobody published is still not found."""
    with _client(srv, world, "alice") as c:
        persona = c.get("/persona/dream%3Adr.ohno")
        assert f'href="/wallet/{DR_OHNO_ADDRESS}"' in persona.text
        page = c.get(f"/wallet/{DR_OHNO_ADDRESS}")
        assert page.status_code == 200, page.text[:300]
        assert "Not in the loaded chain data" in page.text
        assert 'href="/account/dream%3Adr.ohno"' in page.text
        data = c.get(f"/api/wallet/{DR_OHNO_ADDRESS}").json()
        assert data["unclustered"] is True and data["in_chain"] is False
        assert data["linked_accounts"] == ["dream:dr.ohno"]
        assert [p["persona_id"] for p in data["linked_personas"]] == \
            [c.get("/api/persona/dream%3Adr.ohno").json()["persona_id"]]
        # a valid address nobody published, and no address at all: not found
        for ident in ("1BoatSLRHtKNngkdXEeobR76b53LETtpyT", quote("not an address")):
            assert c.get(f"/wallet/{ident}").status_code == 404
