"""STIX 2.1 and MISP: the bundle passes the OASIS stix2-validator and loads with the stix2
library; the event loads with pymisp's MISPEvent, follows pymisp's event schema and the
misp-objects templates it ships. All offline (a socket guard fails any connection), on the
demo workspace and on the real data, with counts compared with the store."""

from __future__ import annotations

import json
import os
import socket
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pymisp
import pytest
import stix2
from export_workspaces import HOSTILE_HANDLE, build_hostile, built, open_ro
from pymisp import MISPEvent, MISPObject
from stix2validator import ValidationOptions, validate_file

import darkmap
from darkmap.export.misp import TEMPLATES, MispExporter
from darkmap.export.options import ExportOptions
from darkmap.export.stix import (
    CITED,
    HARM_EXTENSION,
    StixExporter,
    pattern_literal,
    sco_id,
    sdo_id,
)
from darkmap.store.workspace import Workspace

WORKSPACES = ["demo", "real"]


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any attempt to open a network connection fails the test."""
    def refuse(self: socket.socket, address: Any) -> None:
        raise AssertionError(f"network access attempted: {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    yield


def _export(exporter: StixExporter | MispExporter, name: str,
            factory: pytest.TempPathFactory, data: Path, out: Path,
            options: ExportOptions | None = None) -> dict[str, int]:
    ws = open_ro(built(name, factory, data))
    try:
        return exporter.export(ws, out, options)
    finally:
        ws.close()


def _store(name: str, factory: pytest.TempPathFactory, data: Path) -> dict[str, int]:
    ws = open_ro(built(name, factory, data))
    try:
        return dict(ws.con.execute(r"""
            SELECT 'accounts', count(*) FROM accounts UNION ALL
            SELECT 'actors', count(DISTINCT coalesce(m.persona_id, a.account_id))
                FROM accounts a LEFT JOIN persona_members m USING (account_id) UNION ALL
            SELECT 'personas', count(*) FROM personas WHERE n_accounts > 1 UNION ALL
            SELECT 'links', count(*) FROM account_links UNION ALL
            SELECT 'listings', count(*) FROM listings UNION ALL
            SELECT 'keys', count(*) FROM pgp_keys UNION ALL
            SELECT 'emails', count(DISTINCT value) FROM identifiers WHERE kind = 'email'
            UNION ALL SELECT 'plain_emails', count(DISTINCT value) FROM identifiers
                WHERE kind = 'email' AND regexp_full_match(value,
                '[a-z0-9_.+\-]+@[a-z0-9\-]+(\.[a-z0-9\-]+)+') UNION ALL
            SELECT 'onions', count(DISTINCT value) FROM identifiers
                WHERE kind = 'onion' UNION ALL
            SELECT 'wallets', count(DISTINCT value) FROM identifiers
                WHERE kind IN ('btc_address', 'xmr_address') UNION ALL
            SELECT 'contacts', count(DISTINCT (kind, value)) FROM identifiers
                WHERE kind IN ('jabber', 'wickr', 'telegram', 'session', 'signal')
            """).fetchall())
    finally:
        ws.close()


@pytest.mark.parametrize("name", WORKSPACES)
def test_stix_bundle_validates_and_loads(name: str, tmp_path_factory: pytest.TempPathFactory,
                                         data_dir: Path, tmp_path: Path,
                                         offline: None) -> None:
    out = tmp_path / "bundle.json"
    counts = _export(StixExporter(), name, tmp_path_factory, data_dir, out)
    results = validate_file(str(out), ValidationOptions(version="2.1"))
    assert results.is_valid, [str(e) for r in results.object_results for e in r.errors][:5]
    warnings = [str(w) for r in results.object_results for w in r.warnings]
    # the warnings left: the validator wants UUIDv4 for a custom observable, STIX 2.1
    # (section 2.9) wants UUIDv5 for observables; the wallets keep the spec's ids; and
    # the money trail's relationship types ("paid" between wallets, a wallet cluster that
    # "consists-of" its addresses), permitted but not among the suggested ones (the
    # actors' harm is in a declared property extension: no custom property warning)
    assert all((w.startswith("cryptocurrency-wallet--") and "{103}" in w)
               or (w.startswith("relationship--") and "{202}" in w
                   and ("'paid'" in w or "'consists-of'" in w)) for w in warnings)
    bundle = stix2.parse(out.read_text(encoding="utf-8"), allow_custom=True)
    seen = Counter(o["type"] for o in bundle.objects)
    assert dict(seen) == counts
    n = _store(name, tmp_path_factory, data_dir)
    assert seen["threat-actor"] == n["actors"] and seen["identity"] == n["actors"] + 1
    odd_emails = n["emails"] - n["plain_emails"]
    assert seen["user-account"] == n["accounts"] + n["contacts"] + odd_emails
    assert seen.get("email-addr", 0) == n["plain_emails"] and seen.get("url", 0) == n["onions"]
    rels = [o for o in bundle.objects if o["type"] == "relationship"]
    by_id = {o["id"]: o for o in bundle.objects}
    # the advertised wallets, plus the lone counterparty addresses of the transfers
    paid = {r[k] for r in rels if r["relationship_type"] == "paid"
            for k in ("source_ref", "target_ref")}
    advertised = {r["target_ref"] for r in rels if r["relationship_type"] == "related-to"
                  and r["target_ref"].startswith("cryptocurrency-wallet--")}
    wallets = {o["id"] for o in bundle.objects if o["type"] == "cryptocurrency-wallet"}
    assert len(advertised) == n["wallets"] and wallets - advertised <= paid
    assert all(r["source_ref"] in by_id and r["target_ref"] in by_id for r in rels)
    assert all(0 <= r.get("confidence", 0) <= 100 for r in rels)
    between_accounts = [r for r in rels if r["source_ref"].startswith("user-account--")
                        and r["description"].startswith("darkmap link score")]
    assert len(between_accounts) == n["links"]
    actors = [o for o in bundle.objects if o["type"] == "threat-actor"]
    assert all(o["external_references"][0]["hashes"]["SHA-256"] for o in actors)
    _assert_relationships_cite_captures(rels)
    assert Counter(r["relationship_type"] for r in rels)["located-at"] > 0
    indicators = [o for o in bundle.objects if o["type"] == "indicator"]
    assert all(any(r["source_ref"] == i["id"] and r["relationship_type"] == "indicates"
                   for r in rels) for i in indicators)
    if n["emails"]:
        assert indicators


def _assert_relationships_cite_captures(rels: list[Any]) -> None:
    """Every relationship names a capture by SHA-256 (docs/exports.md); those citing
    an actor's or an address's many captures cite a bounded number."""
    uncited = Counter(r["relationship_type"] for r in rels
                      if not any(e.get("hashes", {}).get("SHA-256")
                                 for e in r.get("external_references", [])))
    assert not uncited, uncited
    bounded = [r for r in rels if r["relationship_type"] in ("located-at", "consists-of")
               or (r["source_ref"].startswith("user-account--")
                   and r["target_ref"].startswith("user-account--"))]
    assert all(len(r["external_references"]) <= CITED for r in bounded)


def test_stix_is_stable_and_escapes_patterns(tmp_path_factory: pytest.TempPathFactory,
                                             data_dir: Path, tmp_path: Path,
                                             offline: None) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    _export(StixExporter(), "demo", tmp_path_factory, data_dir, a)
    _export(StixExporter(), "demo", tmp_path_factory, data_dir, b)
    assert a.read_bytes() == b.read_bytes()
    assert pattern_literal("it's \\ here") == "'it\\'s \\\\ here'"
    # the same id the stix2 library computes for an observable
    assert sco_id("email-addr", {"value": "a@b.example"}) == stix2.EmailAddress(
        value="a@b.example").id
    h = tmp_path / "h.json"
    _export(StixExporter(), "hostile", tmp_path_factory, data_dir, h)
    assert validate_file(str(h), ValidationOptions(version="2.1")).is_valid
    parsed = stix2.parse(h.read_text(encoding="utf-8"), allow_custom=True)
    logins = {o.get("account_login") for o in parsed.objects if o["type"] == "user-account"}
    assert HOSTILE_HANDLE in logins  # exact text: JSON escapes it
    rels = [o for o in parsed.objects if o["type"] == "relationship"]
    _assert_relationships_cite_captures(rels)
    located = [r for r in rels if r["relationship_type"] == "located-at"]
    fixture = {e["external_id"] for r in located for e in r["external_references"]}
    assert located and len(fixture) == 1  # the fixture's one capture, shipping from NL


def _check_misp(path: Path) -> MISPEvent:
    raw = json.loads(path.read_text(encoding="utf-8"))
    data = Path(pymisp.__file__).parent / "data"
    schema = json.loads((data / "schema-lax.json").read_text(encoding="utf-8"))
    errors = list(jsonschema.validators.validator_for(schema)(schema).iter_errors(raw))
    assert not errors, [e.message for e in errors[:3]]
    event = MISPEvent()
    event.load(raw)
    types = json.loads((data / "describeTypes.json").read_text(encoding="utf-8"))["result"]
    uuids = {o.uuid for o in event.objects}
    for obj in event.objects:
        template = MISPObject(obj.name, strict=True)  # pymisp's own template for it
        assert (obj.template_uuid, str(obj.template_version)) == (
            template.template_uuid, str(template.template_version)) == (
            TEMPLATES[obj.name][0], str(TEMPLATES[obj.name][1]))
        definition = template._definition["attributes"]
        for attr in obj.attributes:
            # a template's values_list is closed: MISP refuses a value outside it
            allowed = definition[attr.object_relation].get("values_list")
            assert not allowed or attr.value in allowed, (obj.name, attr.object_relation,
                                                          attr.value)
            assert attr.category in types["categories"] and attr.type in types["types"]
            assert attr.type in types["category_type_mappings"][attr.category]
            template.add_attribute(attr.object_relation, value=attr.value, type=attr.type)
        template._validate()  # required attributes present, one of requiredOneOf
        assert all(r.referenced_uuid in uuids for r in obj.references)
    return event


@pytest.mark.parametrize("name", WORKSPACES)
def test_misp_event_loads_with_pymisp(name: str, tmp_path_factory: pytest.TempPathFactory,
                                      data_dir: Path, tmp_path: Path, offline: None) -> None:
    out = tmp_path / "event.json"
    counts = _export(MispExporter(), name, tmp_path_factory, data_dir, out)
    event = _check_misp(out)
    seen = Counter(o.name for o in event.objects)
    assert {**dict(seen), "references": sum(len(o.references) for o in event.objects)} == counts
    n = _store(name, tmp_path_factory, data_dir)
    assert seen["person"] == n["personas"]
    persons = [o for o in event.objects if o.name == "person"]
    assert {a.value for o in persons for a in o.get_attributes_by_relation("role")} == \
        ({"Suspect"} if persons else set())
    assert all(o.get_attributes_by_relation("text")[0].value.startswith(
        "darknet vendor (darkmap persona ") for o in persons)
    assert seen["user-account"] == n["accounts"] + n["contacts"]
    assert seen["annotation"] == n["listings"] and seen.get("pgp-meta", 0) == n["keys"]
    advertised = {r.referenced_uuid for o in event.objects for r in o.references
                  if r.relationship_type == "uses"}
    sent = {r.referenced_uuid for o in event.objects for r in o.references
            if r.relationship_type in ("sent-from", "sent-to")}
    coins = {o.uuid for o in event.objects if o.name == "coin-address"}
    # the advertised wallets, plus the lone counterparty addresses of the transfers
    assert len(coins & advertised) == n["wallets"] and coins - advertised <= sent
    assert seen.get("tor-hiddenservice", 0) == n["onions"]
    rels = Counter(r.relationship_type for o in event.objects for r in o.references)
    assert rels["similar"] == n["links"] and rels["seller-of"] > 0
    tags = {t.name for t in event.tags}
    assert "darkmap:export" in tags and any(t.startswith("darkmap:drug-class=") for t in tags)
    assert event.distribution == 0 and not event.published


def test_misp_selection_and_hostile_text(tmp_path_factory: pytest.TempPathFactory,
                                         data_dir: Path, tmp_path: Path,
                                         offline: None) -> None:
    out = tmp_path / "gb.json"
    counts = _export(MispExporter(), "real", tmp_path_factory, data_dir, out,
                     ExportOptions(countries=("GB",)))
    event = _check_misp(out)
    assert "(GB)" in event.info and 0 < counts["user-account"]
    texts = [a.value for o in event.objects if o.name == "person" for a in o.attributes
             if a.object_relation == "text"]
    assert texts and all("jurisdiction estimate GB" in t for t in texts)
    h = tmp_path / "h.json"
    _export(MispExporter(), "hostile", tmp_path_factory, data_dir, h)
    event = _check_misp(h)
    names = {a.value for o in event.objects for a in o.attributes
             if a.object_relation == "username"}
    assert HOSTILE_HANDLE in names
    assert os.path.getsize(h) > 0


def test_misp_event_is_the_workspace_not_its_folder_name(tmp_path: Path,
                                                         offline: None) -> None:
    """Two workspaces called case-42 (two agencies) are two events: the uuid came from the
    folder name only, so importing one into MISP replaced the other's event. Each one's
    re-export is the same bytes (MISP updates its event), and an empty workspace's event
    is dated the day the workspace was created, not 1970-01-01."""
    events, created = [], []
    for agency in ("agency-a", "agency-b"):
        path = tmp_path / agency / "case-42"
        Workspace.init(path).close()
        ws = open_ro(path)
        try:
            created.append(ws.created_at())
            runs = [tmp_path / f"{agency}-{n}.json" for n in (1, 2)]
            for out in runs:
                MispExporter().export(ws, out)
        finally:
            ws.close()
        assert runs[0].read_bytes() == runs[1].read_bytes()
        events.append(json.loads(runs[0].read_text(encoding="utf-8"))["Event"])
    a, b = events
    assert a["info"] == b["info"] == "darkmap export of case-42"
    assert a["uuid"] != b["uuid"]
    assert [e["date"] for e in events] == [c.strftime("%Y-%m-%d") for c in created if c]


def test_misp_subset_is_its_own_event(tmp_path_factory: pytest.TempPathFactory,
                                      data_dir: Path, tmp_path: Path, offline: None) -> None:
    """A --country export is another event than the whole workspace's, and its objects
    and attributes have other uuids (MISP holds a uuid once across events: the subset's
    objects would be refused, or taken for the whole event's); the same selection gives
    the same event again."""
    whole, gb, again = tmp_path / "all.json", tmp_path / "gb.json", tmp_path / "gb2.json"
    _export(MispExporter(), "real", tmp_path_factory, data_dir, whole)
    for out in (gb, again):
        _export(MispExporter(), "real", tmp_path_factory, data_dir, out,
                ExportOptions(countries=("GB",)))
    assert gb.read_bytes() == again.read_bytes()
    w, s = (json.loads(p.read_text(encoding="utf-8"))["Event"] for p in (whole, gb))
    assert w["uuid"] != s["uuid"]

    def uuids(event: dict[str, Any]) -> dict[tuple[Any, ...], str]:
        """(template, its attributes) -> object uuid, and (that, attribute) -> uuid."""
        out = {}
        for o in event["Object"]:
            key = (o["name"], tuple(sorted((a["object_relation"], a["value"])
                                           for a in o["Attribute"])))
            out[key] = o["uuid"]
            out.update({(*key, a["object_relation"], a["value"]): a["uuid"]
                        for a in o["Attribute"]})
        return out

    in_whole, in_subset = uuids(w), uuids(s)
    shared = in_whole.keys() & in_subset.keys()
    assert len(shared) > 100  # the GB accounts, their listings and keys are in both
    assert not {in_whole[k] for k in shared} & {in_subset[k] for k in shared}


def test_stix_readings_of_two_workspaces_never_share_an_id(tmp_path: Path) -> None:
    """Two workspaces holding the same evidence (two agencies) give their personas,
    account identities, indicators, wallet clusters and relationships ids of their own
    (STIX reads one id as versions of one object; a cluster id is a number local to a
    workspace); observables, countries and the producer keep the ids every producer
    gives them; a re-export is the same bytes."""
    ids: list[dict[str, set[str]]] = []
    for agency in ("agency-a", "agency-b"):
        build_hostile(tmp_path / agency / "ws")
        ws = open_ro(tmp_path / agency / "ws")
        try:
            outs = [tmp_path / f"{agency}-{n}.json" for n in (1, 2)]
            for out in outs:
                StixExporter().export(ws, out)
        finally:
            ws.close()
        assert outs[0].read_bytes() == outs[1].read_bytes()
        by_type: dict[str, set[str]] = {}
        for o in json.loads(outs[0].read_text(encoding="utf-8"))["objects"]:
            by_type.setdefault(o["type"], set()).add(o["id"])
        ids.append(by_type)
    a, b = ids
    assert a.keys() == b.keys()
    for kind in ("threat-actor", "indicator", "relationship"):
        assert a[kind] and not a[kind] & b[kind], kind
    for kind in ("user-account", "location", "extension-definition"):
        assert a.get(kind) == b.get(kind), kind
    assert a["identity"] & b["identity"] == {sdo_id("identity", "darkmap")}  # the producer


def test_an_empty_workspaces_stix_is_dated_when_it_was_created(tmp_path: Path) -> None:
    Workspace.init(tmp_path / "ws").close()
    ws = open_ro(tmp_path / "ws")
    try:
        created = ws.created_at()
        StixExporter().export(ws, tmp_path / "e.json")
    finally:
        ws.close()
    assert created is not None
    objects = json.loads((tmp_path / "e.json").read_text(encoding="utf-8"))["objects"]
    assert objects and {o["created"][:10] for o in objects} == {created.strftime("%Y-%m-%d")}


def _target_parts(factory: pytest.TempPathFactory, data: Path) -> set[tuple[Any, ...]]:
    """(score, sales evidence, what it rests on, listing and activity points) of each
    target of the real workspace, as `darkmap targets` gives them."""
    ws = open_ro(built("real", factory, data))
    try:
        return {(t["harm_score"], t["sales_evidence"], t["harm_rests_on"],
                 t["harm_parts"]["listings"], t["harm_parts"]["activity"])
                for t in darkmap.targets(ws, limit=None)}
    finally:
        ws.close()


def test_stix_actors_say_what_their_harm_rests_on(
        tmp_path_factory: pytest.TempPathFactory, data_dir: Path, tmp_path: Path,
        offline: None) -> None:
    """A threat-actor with a harm score carries its parts and whether sales evidence
    lies behind it in darkmap's property extension, declared once in the bundle by an
    extension definition (and its description says so); the bundle stays valid STIX
    2.1 with no warning about it."""
    out = tmp_path / "bundle.json"
    _export(StixExporter(), "real", tmp_path_factory, data_dir, out)
    results = validate_file(str(out), ValidationOptions(version="2.1"))
    assert results.is_valid
    assert not [w for r in results.object_results for w in r.warnings
                if "extension" in str(w) or "{401}" in str(w)]
    bundle = stix2.parse(out.read_text(encoding="utf-8"), allow_custom=True)
    [definition] = [o for o in bundle.objects if o["id"] == HARM_EXTENSION]
    assert definition["type"] == "extension-definition"
    assert definition["extension_types"] == ["property-extension"]
    actors = [o for o in bundle.objects if o["type"] == "threat-actor"
              and HARM_EXTENSION in o.get("extensions", {})]
    targets = _target_parts(tmp_path_factory, data_dir)
    assert actors
    for o in actors:
        ext = o["extensions"][HARM_EXTENSION]
        assert ext["extension_type"] == "property-extension"
        assert (ext["harm_score"], ext["sales_evidence"], ext["rests_on"],
                ext["from_listings"], ext["from_activity"]) in targets
        assert f"rests on {ext['rests_on']}" in o["description"]
    assert {o["extensions"][HARM_EXTENSION]["sales_evidence"] for o in actors} == {True, False}


def test_misp_persons_say_what_their_harm_rests_on(
        tmp_path_factory: pytest.TempPathFactory, data_dir: Path, tmp_path: Path,
        offline: None) -> None:
    """A person's text gives its harm score with what it rests on and its parts."""
    out = tmp_path / "event.json"
    _export(MispExporter(), "real", tmp_path_factory, data_dir, out)
    event = _check_misp(out)
    texts = [o.get_attributes_by_relation("text")[0].value for o in event.objects
             if o.name == "person"]
    scored = [t for t in texts if "harm score" in t]
    assert scored and all("; rests on " in t and " from listings, " in t for t in scored)
    assert any("rests on no sales evidence" in t for t in scored)
