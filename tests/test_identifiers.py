"""extract_identifiers on hand-written contact text and the real Dream seller profiles."""

from __future__ import annotations

import re
from collections import Counter

from conftest import DATA
from hypothesis import given, settings
from hypothesis import strategies as st

from darkmap.extract.identifiers import extract_identifiers, scan_text
from darkmap.model.records import IdentifierRecord, PgpKeyRecord

DUMP = DATA / "seized" / "dream-2016-sellers.sql"
XMR = ("44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7SqSsaBYBb98uNbr2VBBEt7f2"
       "wfn3RVGQBEP3A")


def _ids(text: str) -> set[tuple[str, str]]:
    recs = extract_identifiers(text, market_id="m", account_handle="v", field="description",
                               locator="row 1")
    return {(r.kind, r.value) for r in recs if isinstance(r, IdentifierRecord)}


def test_contact_cues() -> None:
    text = ("Contact: Wickr: DrugLord_99 | telegram @best_vendor_x or t.me/another_one.\n"
            "jabber - Foo@Exploit.IM, mail Foo.Bar@ProtonMail.com, signal: +1 (555) 123-4567\n"
            "session 05" + "ab" * 32 + " shop http://duskgytldkxiuqc6.onion/ wickr is down\n"
            f"BTC 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2 fake 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3 "
            f"bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4 XMR {XMR}")
    assert _ids(text) == {
        ("wickr", "druglord_99"), ("telegram", "best_vendor_x"), ("telegram", "another_one"),
        ("jabber", "foo@exploit.im"), ("email", "foo.bar@protonmail.com"),
        ("signal", "+15551234567"), ("session", "05" + "ab" * 32),
        ("onion", "duskgytldkxiuqc6.onion"),
        ("btc_address", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"),
        ("btc_address", "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"),
        ("xmr_address", XMR),
    }


def test_record_fields_and_context() -> None:
    [r] = extract_identifiers("blah blah wickr: Foo123 blah", market_id="dream",
                              account_handle="Seller", listing_ref="77", field="profile",
                              locator="insert 1 row 2")
    assert isinstance(r, IdentifierRecord)
    assert (r.kind, r.value, r.market_id, r.account_handle, r.listing_ref, r.field,
            r.locator) == ("wickr", "foo123", "dream", "Seller", "77", "profile",
                           "insert 1 row 2")
    assert "wickr: Foo123" in r.context and len(r.context) <= 100


def test_no_false_positives_in_prose() -> None:
    prose = ("Wickr is down, telegram only for support. Best quality 100% pure, 3x "
             "tested. Our signal is strong. 1NotAnAddressJustAWordXYZabcdefgh and "
             "3BigWordsThatLookLikeBase58Strings yes.")
    assert _ids(prose) == set()


def test_pgp_key_in_text() -> None:
    text = DUMP.read_text(encoding="utf-8")
    m = re.search(r"\(1,'0ldamsterdam','[^']*','[^']*','[^']*','((?:[^'\\]|\\.)*)'", text)
    assert m
    res = scan_text("my key:\\n" + m.group(1) + "\\nwickr: oldams", market_id="dream",
                    account_handle="0ldamsterdam", field="profile", locator="p")
    keys = [r for r in res.records if isinstance(r, PgpKeyRecord)]
    assert [k.fingerprint for k in keys] == ["1D9DEA5392C6A420C868ACC573E25F3B44E13E81"]
    assert keys[0].account_handle == "0ldamsterdam" and keys[0].field == "profile"
    others = {(r.kind, r.value) for r in res.records if isinstance(r, IdentifierRecord)}
    assert others == {("wickr", "oldams")}  # nothing found inside the key's base64
    assert res.pgp_failures == []


def test_real_dream_profiles() -> None:
    text = DUMP.read_text(encoding="utf-8")
    recs = extract_identifiers(text, market_id="dream", account_handle=None,
                               field="dump", locator="file")
    kinds = Counter(r.kind for r in recs if isinstance(r, IdentifierRecord))
    # every e-mail-like hit is a valid address; Dream's own onion is among the onions
    assert kinds["email"] > 20 and kinds["onion"] > 20
    onions = {r.value for r in recs if isinstance(r, IdentifierRecord) and r.kind == "onion"}
    assert "lchudifyeqm4ldjj.onion" in onions
    assert all(re.fullmatch(r"[a-z2-7]{16}\.onion|[a-z2-7]{56}\.onion", o) for o in onions)


@given(st.text(max_size=400))
@settings(max_examples=200, deadline=None)
def test_never_crashes(text: str) -> None:
    for r in extract_identifiers(text, market_id=None, account_handle=None, field="f",
                                 locator="l"):
        assert r.locator == "l"
