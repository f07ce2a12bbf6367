"""Deconfliction (issue #13): the same selector in compartments of two agencies (raw or
hashed) -> a notice to both naming the other agency's contact, no case detail crossing;
events 300 m and 2 h apart -> conflict, 30 km apart -> none. On both homes of the
records: the workspace (DuckDB) and the team server (PostgreSQL)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from ops_backends import Backend

from darkmap.cli import main
from darkmap.errors import BadInputError
from darkmap.ops import access, deconflict, records
from darkmap.ops.access import AccessDenied
from darkmap.ops.records import Arrest, Buy, Case, CryptoItem, Parcel, Seizure
from darkmap.store import operations as ops_store
from darkmap.store.operations import EventRow, Space, is_server
from darkmap.store.workspace import Workspace

CASE_TITLE = "Operation Nightjar: informant K. says vendor ships Tuesdays"


@pytest.fixture
def ws(space: Space) -> Space:
    return _two_agencies(space)


def _two_agencies(ws: Space) -> Space:
    """bka (ana, compartment ``de``) and politie (piet, compartment ``nl``)."""
    access.add_agency(ws.con, "setup", "bka", "BKA", "DE", "BKA SO41 +49 611 55-0")
    access.add_user(ws.con, "setup", "ana", "bka", "admin")
    access.add_agency(ws.con, "ana", "politie", "Politie", "NL", "Team HTC +31 88 1234")
    access.add_user(ws.con, "ana", "piet", "politie", "admin")
    access.add_compartment(ws.con, "ana", "agency", "bka-own", compartment_id="de")
    access.add_compartment(ws.con, "piet", "agency", "nl-own", compartment_id="nl")
    return ws


def _no_details(ws: Space, agency: str, forbidden: list[str]) -> None:
    for n in ws.con.execute("SELECT * FROM ops_notices WHERE to_agency = ?",
                            [agency]).fetchall():
        text = json.dumps(n, default=str)
        assert not any(f in text for f in forbidden), text


def test_normalisation_makes_writings_equal() -> None:
    key = b"k" * 32
    h = deconflict.hash_selector
    assert h(key, "tracking", "jjd 0012-3") == h(key, "tracking", "JJD00123")
    assert h(key, "email", " Vendor@Mail.ORG") == h(key, "email", "vendor@mail.org")
    assert h(key, "phone", "+49 30 1234") == h(key, "phone", "0049301234")
    assert h(key, "handle", "dream:CandyMan") == h(key, "handle", "dream:candyman")
    assert h(key, "pgp", "0xab12 cd34") == h(key, "pgp", "AB12CD34")
    assert h(key, "tracking", "JJD1") != h(key, "email", "JJD1")   # kinds stay apart
    assert h(key, "tracking", "JJD1") != h(b"x" * 32, "tracking", "JJD1")  # keyed


def test_the_key_is_created_once_and_private(ws: Space) -> None:
    key = deconflict.taskforce_key(ws)
    assert len(key) == 32 and deconflict.taskforce_key(ws) == key
    assert ws.path is not None
    if is_server(ws.con):   # one key for every agency on the server, none in a file
        assert not (ws.path / deconflict.KEY_FILE).exists()
    else:
        assert (ws.path / deconflict.KEY_FILE).stat().st_mode & 0o077 == 0


def test_same_selector_raw_in_two_compartments_notifies_both(ws: Space) -> None:
    records.add_record(ws, "ana", Case(CASE_TITLE), compartment="de",
                       provenance="informant file 9", links=[("persona", "p-77")])
    records.add_record(ws, "ana", Parcel("DHL", "JJD 0012 3", sender="Hauptstr. 5"),
                       compartment="de", provenance="exhibit 4")
    assert deconflict.notices(ws, "piet") == []
    out = deconflict.submit(ws, "piet", "nl", [("tracking", "jjd00123"),
                                               ("email", "x@y.nl")])
    assert out.selectors == 2 and out.notices == 2
    de, nl = deconflict.notices(ws, "ana"), deconflict.notices(ws, "piet")
    assert len(de) == len(nl) == 1
    assert de[0].other_agency == "politie" and de[0].other_contact == "Team HTC +31 88 1234"
    assert nl[0].other_agency == "bka" and nl[0].other_contact == "BKA SO41 +49 611 55-0"
    assert de[0].subject.startswith("tracking ") and de[0].subject == nl[0].subject
    forbidden = [CASE_TITLE, "informant", "Hauptstr", "JJD", "jjd", "exhibit", "p-77",
                 "x@y.nl"]
    _no_details(ws, "bka", forbidden)
    _no_details(ws, "politie", forbidden)
    # the same submission again sends nothing new
    deconflict.submit(ws, "piet", "nl", [("tracking", "JJD00123")])
    assert len(deconflict.notices(ws, "piet")) == 1
    deconflict.acknowledge(ws, "piet", nl[0].notice_id)
    assert deconflict.notices(ws, "piet")[0].acked_by == "piet"


ADDRESS = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"   # a valid address (a link takes no other)


def test_same_selector_hashed_via_the_cli_notifies_both(ws: Space, tmp_path: Path,
                                                        backend: Backend) -> None:
    records.add_record(ws, "ana", Case(CASE_TITLE), compartment="de",
                       provenance="informant file 9", links=[("address", ADDRESS.upper())])
    ws.close()
    assert ws.path is not None
    key = tmp_path / "partner.key"   # what the task force hands the partner
    runner = CliRunner()
    got = runner.invoke(main, ["deconflict", "key", "--out", str(key), "--as", "piet", "-w",
                               str(ws.path)], env=backend.env)
    assert got.exit_code == 0, got.output
    assert key.stat().st_mode & 0o077 == 0 and len(key.read_bytes()) == 32
    refused = runner.invoke(main, ["deconflict", "key", "--out", str(tmp_path / "k2"),
                                   "--as", "nobody", "-w", str(ws.path)], env=backend.env)
    assert refused.exit_code == 1 and not (tmp_path / "k2").exists()
    raw = tmp_path / "raw.csv"
    raw.write_text(f"kind,value\naddress,{ADDRESS}\nphone,+31 6 1234 5678\n",
                   encoding="utf-8")
    hashed = runner.invoke(main, ["deconflict", "hash", str(raw), "--key", str(key)])
    assert hashed.exit_code == 0 and "bc1q" not in hashed.output
    sub = tmp_path / "hashed.csv"
    sub.write_text(hashed.output, encoding="utf-8")
    res = runner.invoke(main, ["deconflict", "submit", "--hashed", str(sub), "--compartment",
                               "nl", "--as", "piet", "-w", str(ws.path)],
                        env=backend.env)
    assert res.exit_code == 0 and "2 selectors taken, 2 notices sent" in res.output
    for user, other in (("ana", "politie"), ("piet", "bka")):
        out = runner.invoke(main, ["deconflict", "notices", "--json", "--as", user, "-w",
                                   str(ws.path)], env=backend.env)
        notices = json.loads(out.output)
        assert [n["other_agency"] for n in notices] == [other]
        assert CASE_TITLE not in out.output and "bc1q" not in out.output.lower()
    bad = tmp_path / "bad.csv"
    bad.write_text("address,bc1qnotahash\n", encoding="utf-8")
    res = runner.invoke(main, ["deconflict", "submit", "--hashed", str(bad), "--compartment",
                               "nl", "--as", "piet", "-w", str(ws.path)],
                        env=backend.env)
    assert res.exit_code == 1 and "not an HMAC-SHA256" in res.output


def test_selectors_of_one_agency_never_conflict_with_themselves(ws: Space) -> None:
    access.add_compartment(ws.con, "ana", "agency", "second", compartment_id="de2")
    deconflict.submit(ws, "ana", "de", [("email", "a@b.c")])
    assert deconflict.submit(ws, "ana", "de2", [("email", "a@b.c")]).notices == 0


def test_submitting_needs_a_write_grant(ws: Space) -> None:
    with pytest.raises(AccessDenied):
        deconflict.submit(ws, "piet", "de", [("email", "a@b.c")])


T0 = datetime(2026, 5, 1, 6, 0)
AMSTERDAM = (52.3730, 4.8924)


def _offset(lat: float, lon: float, north_m: float) -> tuple[float, float]:
    return lat + north_m / 111_195.0, lon


def test_events_300_m_and_2_h_apart_conflict(ws: Space) -> None:
    lat, lon = AMSTERDAM
    _, none = deconflict.add_event(ws, "ana", "search_warrant", "de", T0,
                                   T0 + timedelta(hours=3), lat, lon)
    assert none == []
    lat2, lon2 = _offset(lat, lon, 300)
    assert deconflict.haversine_m(lat, lon, lat2, lon2) == pytest.approx(300, abs=1)
    start = T0 + timedelta(hours=2)
    _, found = deconflict.add_event(ws, "piet", "controlled_delivery", "nl", start,
                                    start + timedelta(hours=2), lat2, lon2)
    assert found == [deconflict.Conflict("bka", "BKA SO41 +49 611 55-0")]
    assert [n.other_agency for n in deconflict.notices(ws, "ana")] == ["politie"]
    assert [n.other_agency for n in deconflict.notices(ws, "piet")] == ["bka"]


def test_an_event_conflict_does_not_locate_the_other_event(ws: Space, backend: Backend
                                                          ) -> None:
    """A conflict names the other agency and its contact, nothing more: probes from
    different places around another agency's search warrant get the same answer (a
    distance from three probes would locate the warrant), in the library and the CLI."""
    lat, lon = AMSTERDAM
    deconflict.add_event(ws, "ana", "search_warrant", "de", T0, T0 + timedelta(hours=3),
                         lat, lon)
    answers = []
    for north_m in (120, 480, 910):
        plat, plon = _offset(lat, lon, north_m)
        _, found = deconflict.add_event(ws, "piet", "surveillance", "nl", T0,
                                        T0 + timedelta(hours=1), plat, plon)
        answers.append(found)
    assert answers[0] == answers[1] == answers[2]
    assert [vars(c) for c in answers[0]] == [{"other_agency": "bka",
                                             "other_contact": "BKA SO41 +49 611 55-0",
                                             "placed": True, "within_agency": False}]
    ws.close()
    assert ws.path is not None
    outs = []
    for north_m in (150, 700):
        plat, _ = _offset(lat, lon, north_m)
        res = CliRunner().invoke(main, [
            "deconflict", "event", "--kind", "arrest", "--compartment", "nl", "--start",
            "2026-05-01T07:00:00", "--end", "2026-05-01T08:00:00", "--lat", f"{plat:.6f}",
            "--lon", f"{lon}", "--as", "piet", "-w", str(ws.path)], env=backend.env)
        assert res.exit_code == 0 and "1 conflicts" in res.output, res.output
        outs.append(res.output.split("\n", 1)[1])   # after "event <id> planned"
    assert outs[0] == outs[1] and " m away" not in outs[0] and "BKA SO41" in outs[0]


def test_events_30_km_apart_do_not_conflict(ws: Space) -> None:
    lat, lon = AMSTERDAM
    deconflict.add_event(ws, "ana", "search_warrant", "de", T0, T0 + timedelta(hours=3),
                         lat, lon)
    lat2, lon2 = _offset(lat, lon, 30_000)
    _, found = deconflict.add_event(ws, "piet", "arrest", "nl", T0, T0 + timedelta(hours=3),
                                    lat2, lon2)
    assert found == []
    assert deconflict.notices(ws, "ana") == deconflict.notices(ws, "piet") == []


def test_events_apart_in_time_or_by_postal_area(ws: Space) -> None:
    deconflict.add_event(ws, "ana", "surveillance", "de", T0, T0 + timedelta(hours=1),
                         postal_area="1012 AB")
    _, later = deconflict.add_event(ws, "piet", "arrest", "nl", T0 + timedelta(hours=2),
                                    T0 + timedelta(hours=3), postal_area="1012 ab")
    assert later == []
    _, same = deconflict.add_event(ws, "piet", "arrest", "nl", T0 + timedelta(minutes=30),
                                   T0 + timedelta(hours=3), postal_area="1012  AB")
    assert same == [deconflict.Conflict("bka", "BKA SO41 +49 611 55-0")]
    with pytest.raises(BadInputError):
        deconflict.add_event(ws, "piet", "arrest", "nl", T0, T0 - timedelta(hours=1),
                             postal_area="1012")


def test_a_postal_area_without_letters_or_digits_is_refused(ws: Space) -> None:
    """Stored, it made the comparison of every later event in its window fail."""
    with pytest.raises(BadInputError, match="letters or digits"):
        deconflict.add_event(ws, "ana", "surveillance", "de", T0, T0 + timedelta(hours=1),
                             lat=52.37, lon=4.89, postal_area=" ,; ")
    deconflict.add_event(ws, "ana", "surveillance", "de", T0, T0 + timedelta(hours=1),
                         postal_area="1012 AB")
    _, found = deconflict.add_event(ws, "piet", "arrest", "nl", T0, T0 + timedelta(hours=1),
                                    postal_area="1012.ab")
    assert [c.other_agency for c in found] == ["bka"]


def test_cli_event_reports_the_conflict(ws: Space, backend: Backend) -> None:
    ws.close()
    assert ws.path is not None
    base = ["-w", str(ws.path)]
    runner = CliRunner()
    a = runner.invoke(main, ["deconflict", "event", "--kind", "search_warrant",
                             "--compartment", "de", "--start", "2026-05-01T06:00:00",
                             "--end", "2026-05-01T09:00:00", "--lat", "52.373", "--lon",
                             "4.8924", "--as", "ana", *base], env=backend.env)
    assert a.exit_code == 0 and "0 conflicts" in a.output
    b = runner.invoke(main, ["deconflict", "event", "--kind", "arrest", "--compartment", "nl",
                             "--start", "2026-05-01T08:00:00", "--end", "2026-05-01T10:00:00",
                             "--lat", "52.3757", "--lon", "4.8924", "--as", "piet", *base],
                      env=backend.env)
    assert b.exit_code == 0 and "1 conflicts" in b.output and "BKA SO41" in b.output


def test_the_radius_is_bounded(ws: Space, backend: Backend) -> None:
    """A planned event asks about at most 5 km (``MAX_DISTANCE_M``): a wider radius, or
    one that is no number, is refused before anything is stored or anyone notified, in
    the library and the CLI; within the bound a clash is found as before."""
    lat, lon = AMSTERDAM
    deconflict.add_event(ws, "ana", "search_warrant", "de", T0, T0 + timedelta(hours=3),
                         lat, lon)
    far_lat, _ = _offset(lat, lon, 4_900)
    for radius in (5_001.0, 1e9, float("inf"), float("nan"), -1.0):
        with pytest.raises(BadInputError, match="within-m"):
            deconflict.add_event(ws, "piet", "surveillance", "nl", T0,
                                 T0 + timedelta(hours=1), far_lat, lon, within_m=radius)
    assert deconflict.notices(ws, "ana") == []
    _, found = deconflict.add_event(ws, "piet", "surveillance", "nl", T0,
                                    T0 + timedelta(hours=1), far_lat, lon,
                                    within_m=deconflict.MAX_DISTANCE_M)
    assert [c.other_agency for c in found] == ["bka"]
    ws.close()
    assert ws.path is not None
    res = CliRunner().invoke(main, [
        "deconflict", "event", "--kind", "arrest", "--compartment", "nl", "--start",
        "2026-05-01T07:00:00", "--end", "2026-05-01T08:00:00", "--lat", f"{far_lat:.6f}",
        "--lon", f"{lon}", "--within-m", "20000", "--as", "piet", "-w", str(ws.path)],
        env=backend.env)
    assert res.exit_code != 0 and "planned" not in res.output, res.output
    assert "5000" in res.output, res.output
    helped = CliRunner().invoke(main, ["deconflict", "event", "--help"])
    assert "at most 5,000" in helped.output, helped.output


def test_repeated_hits_on_one_event_are_counted_for_its_agency(ws: Space) -> None:
    """Probes walking a radius around bka's warrant each notify bka: bka gets one notice
    per politie event that hit its warrant, each saying how many there are, so fishing
    for the warrant's place shows; politie's own notices are one per own event."""
    lat, lon = AMSTERDAM
    warrant, _ = deconflict.add_event(ws, "ana", "search_warrant", "de", T0,
                                      T0 + timedelta(hours=3), lat, lon)
    for north_m in (900, 600, 300):
        plat, plon = _offset(lat, lon, north_m)
        deconflict.add_event(ws, "piet", "surveillance", "nl", T0, T0 + timedelta(hours=1),
                             plat, plon)
    to_bka = deconflict.notices(ws, "ana")
    assert len(to_bka) == 3 and len({n.notice_id for n in to_bka}) == 3
    assert all(n.other_agency == "politie" and warrant in n.subject
               and "3 of politie's events have hit it" in n.subject for n in to_bka)
    to_politie = deconflict.notices(ws, "piet")
    assert len(to_politie) == 3 and all("have hit it" not in n.subject for n in to_politie)


@pytest.mark.parametrize(("kind", "forms"), [
    ("phone", ["+49301234567", "\u202a+49301234567\u202c", "(+49) 30 1234567",
               "tel:+49 30 1234567", "+49 (0) 30 1234567", "0049 30 1234567",
               "\u0660\u0660\u0664\u0669\u0663\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667"]),
    ("handle", ["BigBoss", "big\u200bboss", "\u200ebigboss\u200f", "big\u00adboss"]),
    ("email", ["vendor@example.org", "ven\u200ddor@example.org", "\ufeffVendor@Example.org"]),
])
def test_forms_of_one_selector_normalise_alike(kind: str, forms: list[str]) -> None:
    """Copy and paste brings invisible marks along, and numbers come written many ways:
    each kept two forms of one selector apart, so two agencies on one target were not
    told (found by testing)."""
    got = [deconflict.normalise(kind, f) for f in forms]
    assert len(set(got)) == 1, got


# -- what records register: on the real data (a Hansa listing, Cryptonia vendor pages)

LISTING = "hansa:41764"                     # hansa:kingopi's listing (listings/hansa-2016-12.csv)
VENDOR = "cryptonia:terrysukstock"          # its pages publish a PGP key and an e-mail
PGP = "37474A6869D513FF0DADD79268DD47D7666DB031"


@pytest.fixture(scope="module")
def vendor_data(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A workspace of the real Hansa listings and Cryptonia pages, ingested and linked
    (built once per module; each test works on a copy)."""
    from darkmap.collect.ingest import ingest
    from darkmap.resolve.link import link
    path = tmp_path_factory.mktemp("vendors") / "ws"
    with Workspace.init(path) as ws:
        ingest(ws, [data_dir / "listings" / "hansa-2016-12.csv",
                    data_dir / "pages" / "cryptonia"])
        link(ws)
    return path


@pytest.fixture
def vws(space: Space, backend: Backend, vendor_data: Path, tmp_path: Path
        ) -> Iterator[Space]:
    """``ws`` (bka with ``de``, politie with ``nl``) on a copy of ``vendor_data`` (the
    server emptied by ``space``)."""
    space.close()
    path = tmp_path / "vendors"
    shutil.copytree(vendor_data, path)
    with backend.open(path) as ops:
        yield _two_agencies(ops)


def _persona_of(space: Space, account: str) -> str:
    ref = space.con if not is_server(space.con) else space.con.ref  # type: ignore[union-attr]
    row = ref.execute("SELECT persona_id FROM persona_members WHERE account_id = ?",
                      [account]).fetchone()
    assert row is not None
    return str(row[0])


def _kinds(space: Space, user: str) -> list[str]:
    return sorted(n.subject.split()[0] for n in deconflict.notices(space, user))


def test_a_buy_registers_its_listing_and_the_account_and_persona_it_leads_to(
        vws: Space) -> None:
    """`ops buy add --listing hansa:41764` said it leads to account hansa:kingopi and its
    persona, yet registered no selector: an agency holding that persona, or buying from
    the same listing, was never told (audit). The buy now registers the listing, the
    account's handle and the persona."""
    persona = _persona_of(vws, "hansa:kingopi")
    records.add_record(vws, "ana", Buy(LISTING, price=120.0), compartment="de",
                       provenance="UC buy 7")
    assert deconflict.submit(vws, "piet", "nl", [("persona", persona)]).notices == 2
    assert deconflict.submit(vws, "piet", "nl", [("handle", "hansa:KingOpi")]).notices == 4
    records.add_record(vws, "piet", Buy(LISTING), compartment="nl", provenance="buy 2")
    assert _kinds(vws, "ana") == _kinds(vws, "piet") == ["handle", "handle", "listing",
                                                          "persona"]  # 2 handle forms
    assert {n.other_agency for n in deconflict.notices(vws, "ana")} == {"politie"}
    assert {n.other_agency for n in deconflict.notices(vws, "piet")} == {"bka"}
    _no_details(vws, "politie", ["kingopi", LISTING, persona, "UC buy"])


def test_an_account_or_persona_link_registers_what_the_vendor_is_known_by(
        vws: Space) -> None:
    """A link to an account registers its handle, its persona and the PGP key and e-mail
    its pages published; a link to a persona registers its accounts' handles too: what a
    partner knows the vendor by."""
    records.add_record(vws, "ana", Arrest("T. S."), compartment="de", provenance="arrest 1",
                       links=[("account", VENDOR)])
    sent = deconflict.submit(vws, "piet", "nl", [
        ("pgp", "0x3747 4a68 69d5 13ff 0dad d792 68dd 47d7 666d b031"),
        ("email", "TheTerry@secmail.pro"), ("persona", _persona_of(vws, VENDOR))])
    assert sent.notices == 6
    assert _kinds(vws, "ana") == ["email", "persona", "pgp"]
    records.add_record(vws, "piet", Case("Terry"), compartment="nl", provenance="file 3",
                       links=[("persona", _persona_of(vws, VENDOR))])
    assert "handle" in _kinds(vws, "ana")
    assert deconflict.normalise("pgp", PGP) == PGP


ADDRESS_B58 = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"


def test_a_seizure_registers_the_addresses_and_wallets_it_names(ws: Space) -> None:
    """`ops seizure add --crypto BTC:0.5:ADDRESS` (or `:cluster:ID`) registered nothing:
    the address seized from is a selector as a linked one is; a wallet named
    ``cluster:ID`` matches a wallet link ``ID``. An address of another asset is kept in
    the record and registers nothing (no error)."""
    records.add_record(ws, "ana", Seizure(crypto=(
        CryptoItem("BTC", 0.5, ADDRESS_B58), CryptoItem("BTC", 0.1, "cluster:4711"),
        CryptoItem("ETH", 2.0, "0x52908400098527886E0F7030069857D2E4169EE7"))),
        compartment="de", provenance="inventory S-1")
    out = deconflict.submit(ws, "piet", "nl", [("address", ADDRESS_B58), ("wallet", "4711")])
    assert out.notices == 4
    assert _kinds(ws, "ana") == ["address", "wallet"]


def test_a_handle_matches_with_or_without_its_market(vws: Space, tmp_path: Path) -> None:
    """An account link registered ``hansa:kingopi`` only, and a partner's bare
    ``handle,KingOpi`` found nothing (audit). A market handle is now registered in both
    forms, from a record, a raw submission and ``deconflict hash`` alike; the same bare
    handle on another market meets the bare form (one notice, not a second)."""
    assert deconflict.forms("handle", " Hansa:KingOpi ") == ["hansa:kingopi", "kingopi"]
    assert deconflict.forms("handle", "KingOpi") == ["kingopi"]
    records.add_record(vws, "ana", Arrest("K."), compartment="de", provenance="arrest 2",
                       links=[("account", "hansa:kingopi")])
    bare = deconflict.submit(vws, "piet", "nl", [("handle", "KingOpi")])
    assert (bare.selectors, bare.notices) == (1, 2)
    deconflict.submit(vws, "piet", "nl", [("handle", "dream:kingopi")])
    assert _kinds(vws, "piet") == _kinds(vws, "ana") == ["handle"]  # the bare one again
    raw = tmp_path / "raw.csv"
    raw.write_text("kind,value\nhandle,hansa:KingOpi\nhandle,wowdeal\n", encoding="utf-8")
    key = tmp_path / "partner.key"
    key.write_bytes(deconflict.taskforce_key(vws))
    hashed = deconflict.hash_file(key, raw)
    k = deconflict.taskforce_key(vws)
    assert hashed == [
        ("handle", deconflict.hash_selector(k, "handle", "hansa:kingopi"), "exact"),
        ("handle", deconflict.hash_selector(k, "handle", "kingopi"), "bare"),
        ("handle", deconflict.hash_selector(k, "handle", "wowdeal"), "exact")]
    assert deconflict.submit(vws, "piet", "nl", hashed[:1], hashed=True).notices == 2
    assert _kinds(vws, "piet") == _kinds(vws, "ana") == ["handle", "handle"]  # + hansa's


PUBLISHED = "1NGb6Cesn2tJ3wCP4um2UjBKSHiouc7XXR"    # published by dream:dr.ohno (real data)
XMR = ("44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2"
       "wfn3RVGQBEP3A")


def test_an_address_in_a_payment_uri_meets_the_bare_address(ws: Space) -> None:
    """`address,bitcoin:1NGb6...XXR` (a BIP21 URI, as wallets copy it) met no record's
    `address:1NGb6...XXR` (audit): the ``bitcoin:``/``monero:`` scheme and a ``?query``
    are dropped."""
    records.add_record(ws, "ana", Case("dr. ohno"), compartment="de", provenance="file 5",
                       links=[("address", PUBLISHED), ("address", XMR)])
    sent = deconflict.submit(ws, "piet", "nl", [
        ("address", f"bitcoin:{PUBLISHED}?amount=0.05&label=dr.ohno"),
        ("address", f"Monero:{XMR}")])
    assert (sent.selectors, sent.notices) == (2, 4)
    assert _kinds(ws, "piet") == _kinds(ws, "ana") == ["address", "address"]


def test_an_address_that_is_no_address_is_refused_by_line(ws: Space, tmp_path: Path
                                                          ) -> None:
    """An address with a bad checksum (`1NGb6...XXX`) was hashed and taken without a word,
    and could never meet the address meant (audit). It is refused as a record's link is:
    `submit` names the selector, `deconflict hash` the line of the file, and nothing is
    stored or printed. A hashed selector cannot be checked and is taken as before."""
    bad = PUBLISHED[:-1] + "X"
    with pytest.raises(BadInputError, match=r"selector 2: address '1NGb6.*XXX': not a "
                                            "Bitcoin address"):
        deconflict.submit(ws, "piet", "nl", [("email", "a@b.c"), ("address", bad)])
    records.add_record(ws, "ana", Case("x"), compartment="de", provenance="f",
                       links=[("address", PUBLISHED)])
    assert deconflict.notices(ws, "ana") == []   # the e-mail of the refused file: not stored
    raw = tmp_path / "raw.csv"
    raw.write_text(f"kind,value\n\nemail,a@b.c\naddress,{bad}\n", encoding="utf-8")
    key = tmp_path / "partner.key"
    key.write_bytes(deconflict.taskforce_key(ws))
    res = CliRunner().invoke(main, ["deconflict", "hash", str(raw), "--key", str(key)])
    assert res.exit_code == 1 and res.stdout == "", res.output
    assert res.stderr.startswith(f"Error: {raw}: line 4: address '1NGb6"), res.stderr
    # `submit` of the same file names its line too (it said "selector 2": the header and
    # the blank line make it line 4, found by an audit)
    with pytest.raises(BadInputError,
                       match=rf"{re.escape(str(raw))}: line 4: address '1NGb6.*XXX'"):
        deconflict.submit(ws, "piet", "nl", deconflict.read_selectors(raw),
                          where=deconflict.selector_lines(raw))
    other = tmp_path / "other"    # the command, on a workspace of its own (this one is open)
    Workspace.init(other).close()
    res = CliRunner().invoke(main, ["deconflict", "submit", str(raw), "--compartment", "nl",
                                    "--as", "piet", "-w", str(other)],
                             env={"DARKMAP_OPS_SERVER": None})
    assert res.exit_code == 1 and res.stderr.startswith(
        f"Error: {raw}: line 4: address '1NGb6"), res.stderr
    raw.write_text(f"address,{PUBLISHED}\n", encoding="utf-8")
    hashed = deconflict.hash_file(key, raw)
    assert deconflict.submit(ws, "piet", "nl", hashed, hashed=True).notices == 2


# -- the form of a match: a handle matched market-qualified, or bare ------------------------


def _subjects(space: Space, user: str) -> list[str]:
    return sorted(n.subject for n in deconflict.notices(space, user))


def test_a_notice_says_when_only_the_bare_handle_matched(ws: Space, backend: Backend
                                                         ) -> None:
    """A `market:handle` is registered also as its bare handle, which matches the same
    name on any market: the weaker match. A notice did not say which form matched (found
    by an audit); now its subject says when either side held only the bare handle."""
    bare = deconflict.BARE_MATCH
    assert bare == " (bare handle: the same name on any market)"
    records.add_record(ws, "ana", Arrest("K."), compartment="de", provenance="arrest 2",
                       links=[("account", "hansa:kingopi")])
    assert deconflict.submit(ws, "piet", "nl", [("handle", "KingOpi")]).notices == 2
    [weak] = _subjects(ws, "ana")
    assert weak.startswith("handle ") and weak.endswith(bare) and _subjects(ws, "piet") == [weak]
    # the same market's handle: an exact match (and the bare one, already told)
    assert deconflict.submit(ws, "piet", "nl", [("handle", "hansa:KingOpi")]).notices == 4
    subjects = _subjects(ws, "ana")
    assert len(subjects) == 2 and weak in subjects
    [strong] = [s for s in subjects if s != weak]
    assert not strong.endswith(bare) and _subjects(ws, "piet") == subjects
    # a bare name written on both sides is exact (neither side knew more)
    deconflict.submit(ws, "ana", "de", [("handle", "wowdeal")])
    deconflict.submit(ws, "piet", "nl", [("handle", "WowDeal")])
    assert len(_subjects(ws, "ana")) == 3
    assert sum(s.endswith(bare) for s in _subjects(ws, "ana")) == 1
    # what an officer reads: `deconflict notices` (and the workbench: the subject)
    assert ws.path is not None
    ws.close()
    res = CliRunner().invoke(main, ["deconflict", "notices", "--as", "ana", "-w",
                                    str(ws.path)], env=backend.env)
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert text.count("(bare handle: the same name on any market)") == 1, res.output


def test_the_form_travels_with_hashed_selectors(ws: Space, tmp_path: Path, backend: Backend
                                               ) -> None:
    """`deconflict hash` writes kind,value,form (a `market:handle`'s bare handle is
    ``bare``); `submit --hashed` keeps the form, so the partner's notices say when only a
    bare handle matched. A file of two columns (written before) is read as exact; a form
    that is no form, or bare of another kind, is refused by line."""
    records.add_record(ws, "ana", Case("x"), compartment="de", provenance="f",
                       links=[("account", "dream:wowdeal")])
    assert ws.path is not None
    ws.close()
    key = tmp_path / "partner.key"
    runner = CliRunner()
    got = runner.invoke(main, ["deconflict", "key", "--out", str(key), "--as", "piet", "-w",
                               str(ws.path)], env=backend.env)
    assert got.exit_code == 0, got.output
    raw = tmp_path / "raw.csv"
    raw.write_text("kind,value\nhandle,hansa:WowDeal\n", encoding="utf-8")
    hashed = runner.invoke(main, ["deconflict", "hash", str(raw), "--key", str(key)])
    lines = hashed.output.splitlines()
    assert lines[0] == "kind,value,form" and [ln.split(",")[2] for ln in lines[1:]] == [
        "exact", "bare"]
    sub = tmp_path / "hashed.csv"
    sub.write_text(hashed.output, encoding="utf-8")
    res = runner.invoke(main, ["deconflict", "submit", "--hashed", str(sub), "--compartment",
                               "nl", "--as", "piet", "-w", str(ws.path)], env=backend.env)
    assert res.exit_code == 0 and "2 selectors taken, 2 notices sent" in res.output, res.output
    out = runner.invoke(main, ["deconflict", "notices", "--json", "--as", "piet", "-w",
                               str(ws.path)], env=backend.env)
    [notice] = json.loads(out.output)
    assert notice["subject"].endswith(deconflict.BARE_MATCH)   # hansa's vs dream's
    # a file of two columns: its lines are exact
    old = tmp_path / "old.csv"
    old.write_text("kind,value\n" + lines[2].rsplit(",", 1)[0] + "\n", encoding="utf-8")
    assert deconflict.read_hashed(old) == [("handle", lines[2].split(",")[1], "exact")]
    for bad, why in (("handle,{h},maybe", "form 'maybe'"), ("email,{h},bare", "form 'bare'")):
        wrong = tmp_path / "wrong.csv"
        wrong.write_text("kind,value,form\n" + bad.format(h="ab" * 32) + "\n",
                         encoding="utf-8")
        res = runner.invoke(main, ["deconflict", "submit", "--hashed", str(wrong),
                                   "--compartment", "nl", "--as", "piet", "-w",
                                   str(ws.path)], env=backend.env)
        assert res.exit_code == 1 and f"line 2: {why}: exact, or bare for a handle" in \
            res.output, res.output
    with backend.open(ws.path) as again, pytest.raises(BadInputError, match="form 'bare'"):
        deconflict.submit(again, "piet", "nl", [("email", "ab" * 32, "bare")], hashed=True)


def test_migration_019_keeps_the_rows_and_takes_old_handles_as_bare(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A workspace's selectors stored before migration 019 are kept; they do not say
    their form, and a handle among them is taken as bare (the weaker match)."""
    from darkmap.store import workspace as workspace_mod
    shipped = workspace_mod.migrations()
    with monkeypatch.context() as m:   # a workspace of migration 018
        m.setattr(workspace_mod, "migrations", lambda: [x for x in shipped if x[0] < 19])
        with Workspace.init(tmp_path / "ws") as old:
            old.con.execute("INSERT INTO ops_selectors VALUES ('h1', 'handle', 'c', 'a', "
                            "'r-1', 'u', now()), ('h2', 'email', 'c', 'a', NULL, 'u', now())")
    with Workspace.open(tmp_path / "ws") as ws:
        assert ws.con.execute("SELECT selector_hmac, record_id, form FROM ops_selectors "
                              "ORDER BY 1").fetchall() == [("h1", "r-1", "bare"),
                                                           ("h2", None, "exact")]


def test_a_date_alone_as_end_means_the_whole_day(ws: Space, backend: Backend) -> None:
    """``--start 2026-05-01 --end 2026-05-01`` was a zero-length window at midnight that
    missed another agency's raid at the same address that morning and said "0
    conflicts" (audit ops, finding 2): a date-only end is the end of that day."""
    ws.close()
    assert ws.path is not None
    base = ["--lat", "52.373", "--lon", "4.8924", "-w", str(ws.path)]
    runner = CliRunner()
    a = runner.invoke(main, ["deconflict", "event", "--kind", "search_warrant",
                             "--compartment", "de", "--start", "2026-05-01T06:00",
                             "--end", "2026-05-01T09:00", "--as", "ana", *base],
                      env=backend.env)
    assert a.exit_code == 0 and "0 conflicts" in a.output, a.output
    b = runner.invoke(main, ["deconflict", "event", "--kind", "search_warrant",
                             "--compartment", "nl", "--start", "2026-05-01", "--end",
                             "2026-05-01", "--as", "piet", *base], env=backend.env)
    assert b.exit_code == 0 and "1 conflicts" in b.output, b.output
    # the whole day and no more: a raid the next morning is another day
    c = runner.invoke(main, ["deconflict", "event", "--kind", "arrest",
                             "--compartment", "nl", "--start", "2026-04-30", "--end",
                             "2026-04-30", "--as", "piet", *base], env=backend.env)
    assert c.exit_code == 0 and "0 conflicts" in c.output, c.output
    d = runner.invoke(main, ["deconflict", "event", "--kind", "arrest",   # unpadded
                             "--compartment", "nl", "--start", "2026-5-1", "--end",
                             "2026-5-1", "--as", "piet", *base], env=backend.env)
    assert d.exit_code == 0 and "1 conflicts" in d.output, d.output


@pytest.mark.parametrize("end", ["2026-05-01T06:00", "2026-05-01T05:00", "2026-04-30"])
def test_an_empty_or_reversed_window_is_refused(ws: Space, backend: Backend,
                                                end: str) -> None:
    """A window of no length (or ending before it starts) overlaps nothing: it is refused,
    never a silent "0 conflicts" (audit ops, finding 2)."""
    with pytest.raises(BadInputError, match="ends at or before it starts"):
        deconflict.add_event(ws, "ana", "arrest", "de", T0, T0, 52.37, 4.89)
    ws.close()
    assert ws.path is not None
    res = CliRunner().invoke(main, [
        "deconflict", "event", "--kind", "arrest", "--compartment", "nl", "--start",
        "2026-05-01T06:00", "--end", end, "--lat", "52.37", "--lon", "4.89", "--as",
        "piet", "-w", str(ws.path)], env=backend.env)
    assert res.exit_code != 0 and "planned" not in res.output, res.output
    assert "ends at or before it starts" in res.output, res.output


def test_either_sides_radius_decides_the_clash(ws: Space) -> None:
    """bka declared a 5 km safety radius; politie plans 3 km away with the default 1 km.
    Only the later planner's radius counted, so the answer depended on who planned
    second (audit ops, finding 4): the larger of the two radii decides, both ways."""
    lat, lon = AMSTERDAM
    deconflict.add_event(ws, "ana", "arrest", "de", T0, T0 + timedelta(hours=3), lat, lon,
                         within_m=5000)
    lat2, lon2 = _offset(lat, lon, 3000)
    _, found = deconflict.add_event(ws, "piet", "arrest", "nl", T0, T0 + timedelta(hours=3),
                                    lat2, lon2)
    assert [c.other_agency for c in found] == ["bka"]
    # the other way round: the later planner's wide radius covers the earlier event
    later = T0 + timedelta(days=1)
    deconflict.add_event(ws, "ana", "arrest", "de", later, later + timedelta(hours=1), lat,
                         lon)
    _, found = deconflict.add_event(ws, "piet", "arrest", "nl", later,
                                    later + timedelta(hours=1), lat2, lon2, within_m=5000)
    assert [c.other_agency for c in found] == ["bka"]
    # neither radius covers 3 km: no clash
    third = T0 + timedelta(days=2)
    deconflict.add_event(ws, "ana", "arrest", "de", third, third + timedelta(hours=1), lat,
                         lon, within_m=2000)
    _, found = deconflict.add_event(ws, "piet", "arrest", "nl", third,
                                    third + timedelta(hours=1), lat2, lon2, within_m=2500)
    assert found == []


def _lka(ws: Space) -> None:
    """A second German agency: lka (lena, compartment ``lka``)."""
    access.add_agency(ws.con, "ana", "lka", "LKA Berlin", "DE", "LKA 5 +49 30 4664")
    access.add_user(ws.con, "ana", "lena", "lka", "admin")
    access.add_compartment(ws.con, "lena", "agency", "lka-own", compartment_id="lka")


def test_coordinates_against_a_postal_area_are_a_conflict_to_check(ws: Space,
                                                                   backend: Backend) -> None:
    """An event given by coordinates only was never compared with one given by postal
    area only, and the planner read "0 conflicts" (audit ops, finding 5). No postal area
    can be placed without a gazetteer, so such a pair in one window is a conflict to
    check, said as such, and both agencies are told, when the two agencies are of one
    country (review, M4: across borders it was an oracle)."""
    _lka(ws)
    deconflict.add_event(ws, "ana", "arrest", "de", T0, T0 + timedelta(hours=3),
                         postal_area="10115")
    _, found = deconflict.add_event(ws, "lena", "arrest", "lka", T0, T0 + timedelta(hours=3),
                                    52.5320, 13.3849)
    assert found == [deconflict.Conflict("bka", "BKA SO41 +49 611 55-0", placed=False)]
    to_bka = [n.subject for n in deconflict.notices(ws, "ana")]
    to_lka = [n.subject for n in deconflict.notices(ws, "lena")]
    assert len(to_bka) == len(to_lka) == 1
    assert all("not compared" in s for s in to_bka + to_lka), (to_bka, to_lka)
    # comparable forms are compared as before: same postal area, and none in other windows
    later = T0 + timedelta(days=1)
    _, apart = deconflict.add_event(ws, "lena", "arrest", "lka", later,
                                    later + timedelta(hours=1), 52.5320, 13.3849)
    assert apart == []
    # an agency of another country by coordinates only is not compared with the postal
    # area; with the postal area given too, it is (lka's event is 10 km away)
    _, abroad = deconflict.add_event(ws, "piet", "arrest", "nl", T0, T0 + timedelta(hours=3),
                                     52.62, 13.50)
    assert abroad == []
    _, both = deconflict.add_event(ws, "piet", "arrest", "nl", T0, T0 + timedelta(hours=3),
                                   52.62, 13.50, "10115")
    assert both == [deconflict.Conflict("bka", "BKA SO41 +49 611 55-0", placed=True)]
    ws.close()
    assert ws.path is not None
    res = CliRunner().invoke(main, [
        "deconflict", "event", "--kind", "surveillance", "--compartment", "lka", "--start",
        "2026-05-01T07:00", "--end", "2026-05-01T08:00", "--lat", "52.53", "--lon", "13.38",
        "--as", "lena", "-w", str(ws.path)], env=backend.env)
    assert res.exit_code == 0, res.output
    assert "0 conflicts" not in res.output and "1 conflicts" in res.output, res.output
    assert "place not compared" in res.output and "BKA SO41" in res.output, res.output


def test_a_postal_area_over_years_lists_no_agency_abroad(ws: Space, backend: Backend) -> None:
    """One event by postal area over five years conflicted, as "place not compared",
    with every event by coordinates in those years, anywhere: a Berlin probe listed the
    AFP's Sydney raid and its contact (review, M4). A window longer than
    ``MAX_EVENT_DAYS`` is refused, and within it Berlin is not compared with Sydney."""
    access.add_agency(ws.con, "ana", "afp", "AFP", "AU", "AFP +61")
    access.add_user(ws.con, "ana", "pat", "afp", "admin")
    access.add_compartment(ws.con, "pat", "agency", "au-own", compartment_id="au")
    raid = datetime(2027, 3, 14, 5)
    deconflict.add_event(ws, "pat", "search_warrant", "au", raid, raid + timedelta(hours=4),
                         -33.87, 151.21, None, 1000)
    with pytest.raises(BadInputError, match="longer than 31 days"):
        deconflict.add_event(ws, "ana", "search_warrant", "de", datetime(2026, 1, 1),
                             datetime(2030, 12, 31), None, None, "10115", 1000)
    _, found = deconflict.add_event(ws, "ana", "search_warrant", "de", datetime(2027, 3, 1),
                                    datetime(2027, 4, 1), None, None, "10115", 1000)
    assert found == []
    assert deconflict.notices(ws, "pat") == [] and deconflict.notices(ws, "ana") == []
    if is_server(ws.con):
        # a client that skips the check: the server compares a longer window with nothing
        # (an event of another German agency by coordinates in it would be "not compared")
        _lka(ws)
        deconflict.add_event(ws, "lena", "arrest", "lka", raid, raid + timedelta(hours=1),
                             52.53, 13.38)
        long = EventRow("event-long", "search_warrant", "de", "bka", None, None, "10115",
                        datetime(2026, 1, 1), datetime(2030, 12, 31))
        ops_store.insert_event(ws.con, long, "ana", datetime(2026, 1, 1))
        assert ops_store.event_clashes(ws.con, "event-long", 1000) == []
        short = long._replace(event_id="event-short", starts_at=datetime(2027, 3, 1),
                              ends_at=datetime(2027, 4, 1))
        ops_store.insert_event(ws.con, short, "ana", datetime(2026, 1, 1))
        assert [c[1] for c in ops_store.event_clashes(ws.con, "event-short", 1000)] == [
            "lka"]
    ws.close()
    assert ws.path is not None
    res = CliRunner().invoke(main, [
        "deconflict", "event", "--kind", "surveillance", "--compartment", "de", "--start",
        "2026-01-01", "--end", "2030-12-31", "--postal-area", "10115", "--as", "ana",
        "-w", str(ws.path)], env=backend.env)
    assert res.exit_code != 0 and "longer than 31 days" in res.output, res.output


def test_spaces_around_the_market_and_mailto_are_dropped(vws: Space, tmp_path: Path) -> None:
    """``Hansa: BruceLean`` (a space after the colon) and ``mailto:`` e-mails met neither
    the account id nor the bare e-mail (audit ops, finding 6). On the real data: a record
    linking cryptonia:terrysukstock registers its handle and the e-mail its pages
    publish; a partner's file writing them the other ways meets them, and the other way
    round a record's form meets a submission written with spaces."""
    assert deconflict.forms("handle", "Hansa: BruceLean") == ["hansa:brucelean", "brucelean"]
    assert deconflict.forms("handle", " hansa :\tBruceLean ") == ["hansa:brucelean",
                                                                 "brucelean"]
    assert deconflict.normalise("email", "MailTo: Bruce@Example.com") == "bruce@example.com"
    records.add_record(vws, "ana", Arrest("T. S."), compartment="de", provenance="arrest 1",
                       links=[("account", VENDOR)])
    raw = tmp_path / "b.csv"
    raw.write_text("kind,value\nhandle,Cryptonia: TerrySukStock\n"
                   "email,mailto:TheTerry@secmail.pro\n", encoding="utf-8")
    sent = deconflict.submit(vws, "piet", "nl", deconflict.read_selectors(raw))
    assert sent.selectors == 2 and sent.notices == 6, sent   # handle, bare handle, e-mail
    assert _kinds(vws, "ana") == ["email", "handle", "handle"]
    # registration with spaces, matching without
    deconflict.submit(vws, "ana", "de", [("handle", "Hansa : KingOpi")])
    records.add_record(vws, "piet", Case("K."), compartment="nl", provenance="file 4",
                       links=[("account", "hansa:kingopi")])
    assert sum("handle" in n.subject for n in deconflict.notices(vws, "piet")) == 4


def test_an_event_planned_before_radii_were_kept_counts_with_the_default(ws: Space) -> None:
    """Events planned before migration 023 have no radius in a workspace: they count with
    the default 1 km, not with none (on the server, one never compared likewise)."""
    lat, lon = AMSTERDAM
    old, _ = deconflict.add_event(ws, "ana", "arrest", "de", T0, T0 + timedelta(hours=3),
                                  lat, lon, within_m=5000)
    ws.con.execute("UPDATE ops_events SET within_m = NULL WHERE event_id = ?", [old])
    far_lat, _ = _offset(lat, lon, 3000)
    _, found = deconflict.add_event(ws, "piet", "arrest", "nl", T0, T0 + timedelta(hours=1),
                                    far_lat, lon, within_m=0)
    assert found == []                       # 3 km: outside the default
    near_lat, _ = _offset(lat, lon, 800)
    _, found = deconflict.add_event(ws, "piet", "arrest", "nl", T0, T0 + timedelta(hours=1),
                                    near_lat, lon, within_m=0)
    assert [c.other_agency for c in found] == ["bka"]   # 800 m: inside it
