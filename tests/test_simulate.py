"""The world simulator: determinism, ground-truth consistency, real keys, real chain bytes."""

from __future__ import annotations

import csv
import hashlib
import html
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import DATA

from darkmap.cli import main
from darkmap.errors import BadInputError
from darkmap.importers.tagpack import read_tagpack
from darkmap.model.bitcoin import script_for_address
from darkmap.simulate import SimParams, simulate
from darkmap.simulate.support import expected_files
from darkmap.simulate.tx_builder import bech32_address
from darkmap.simulate.world import build_world

SRC = Path(__file__).resolve().parents[1] / "src" / "darkmap"
SEED, VENDORS = 7, 200


_SUMMARY: dict = {}


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "world"
    _SUMMARY.update(simulate(out, SEED, SimParams(vendors=VENDORS)))
    return out


@pytest.fixture(scope="module")
def truth(world_dir: Path) -> dict:
    return json.loads((world_dir / "truth.json").read_text(encoding="utf-8"))


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


# -- determinism ------------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_output(world_dir: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    simulate(again, SEED, SimParams(vendors=VENDORS))
    first, second = _tree(world_dir), _tree(again)
    assert sorted(first) == sorted(second)
    differing = [k for k in first if first[k] != second[k]]
    assert differing == []
    mtimes = {str(p.relative_to(world_dir)): p.stat().st_mtime for p in world_dir.rglob("*.html")}
    assert all(mtimes[str(p.relative_to(again))] == p.stat().st_mtime
               for p in again.rglob("*.html"))


def test_different_seed_gives_a_different_world(tmp_path: Path) -> None:
    a = build_world(1, SimParams(vendors=50))
    b = build_world(2, SimParams(vendors=50))
    assert [x.handle for x in a.accounts] != [x.handle for x in b.accounts]


def test_output_is_independent_of_hash_seed(tmp_path: Path) -> None:
    """A child process with another PYTHONHASHSEED writes the same truth.json."""
    outs = []
    for hs in ("1", "987"):
        out = tmp_path / f"h{hs}"
        env = dict(os.environ, PYTHONHASHSEED=hs)
        code = ("import sys; from pathlib import Path; from darkmap.simulate import simulate, "
                "SimParams; simulate(Path(sys.argv[1]), 3, SimParams(vendors=40, pages=False))")
        subprocess.run([sys.executable, "-c", code, str(out)], env=env, check=True)
        outs.append(_tree(out))
    assert outs[0] == outs[1]


def test_refuses_a_non_empty_folder_without_force(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("case notes")
    with pytest.raises(BadInputError):
        simulate(tmp_path, 1, SimParams(vendors=10), force=True)


# -- truth consistency ------------------------------------------------------------------------


def test_truth_has_the_contract_sections(truth: dict) -> None:
    assert truth["seed"] == SEED
    assert truth["params"]["vendors"] == VENDORS
    for key in ("style_noise", "handle_change_rate", "key_reuse_rate"):
        assert key in truth["params"]
    assert len(truth["accounts"]) == VENDORS
    assert set(truth["chain"]) >= {"address_owner", "wallets", "cashouts"}
    fates = Counter(m["fate"] for m in truth["markets"].values())
    assert len(truth["markets"]) >= 4 and fates["takedown"] and fates["exit_scam"] and fates["open"]
    for aid, acc in truth["accounts"].items():
        assert aid == f"{acc['market']}:{acc['handle'].strip().casefold()}"
        assert aid in truth["actors"][acc["actor"]]["accounts"]
        actor_keys = truth["actors"][acc["actor"]]["pgp_fingerprints"]
        assert set(acc["pgp_fingerprints"]) <= set(actor_keys)
    orders = Counter()
    for lid, lst in truth["listings"].items():
        assert lid.split(":", 1)[0] == truth["accounts"][lst["account"]]["market"]
        orders[lst["account"]] += lst["true_orders"]
    assert all(orders[a] == acc["true_orders"] for a, acc in truth["accounts"].items())


def _page_handles(world_dir: Path, market: str) -> set[str]:
    found = set()
    for p in (world_dir / "pages" / market).rglob("*.html"):
        text = p.read_text(encoding="utf-8")
        m = re.search(r'<th colspan="2" class="uname">([^<]+)</th>|<h1 class="vendor-name">([^<]+)'
                      r'</h1>', text)
        if m:
            found.add(html.unescape(m.group(1) or m.group(2)).casefold())
    return found


def test_every_account_and_listing_appears_in_the_output(world_dir: Path, truth: dict) -> None:
    by_market = defaultdict(set)
    for acc in truth["accounts"].values():
        by_market[acc["market"]].add(acc["handle"].casefold())
    for market, handles in by_market.items():
        assert handles <= _page_handles(world_dir, market), market
    for lid in truth["listings"]:
        market, ref = lid.split(":", 1)
        layout = truth["markets"][market]["layout"]
        page = world_dir / "pages" / market / ("listing" if layout == "classic" else "product") \
            / f"{ref}.html"
        assert page.is_file(), lid
    csv_files = sorted((world_dir / "listings").glob("*.csv"))
    assert csv_files
    for f in csv_files:
        with open(f, encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
        market = f.stem
        want = {lid for lid in truth["listings"] if lid.startswith(market + ":")}
        assert {f"{market}:{r['listing_id']}" for r in rows} == want
    seized = [m for m, v in truth["markets"].items() if v["seized_dump"]]
    dump = (world_dir / "seized" / f"{seized[0]}.sql").read_text(encoding="utf-8")
    assert dump.startswith("-- MySQL dump")
    assert "CREATE TABLE `vendors`" in dump and "INSERT INTO `vendors` VALUES (" in dump
    for acc in truth["accounts"].values():
        if acc["market"] == seized[0]:
            assert re.search(r",'" + re.escape(acc["handle"].replace("'", "\\'")) + "',", dump)


def test_accounts_migrate_after_a_takedown(truth: dict) -> None:
    closed = {m: date.fromisoformat(v["closed"]) for m, v in truth["markets"].items()
              if v["fate"] in ("takedown", "exit_scam")}
    lags = []
    for actor in truth["actors"].values():
        accs = [truth["accounts"][a] for a in actor["accounts"]]
        for a in accs:
            if a["market"] not in closed:
                continue
            c = closed[a["market"]]
            later = [date.fromisoformat(b["active"][0]) for b in accs
                     if b["market"] != a["market"] and date.fromisoformat(b["active"][0]) >= c]
            if later:
                lags.append((min(later) - c).days)
    assert len(lags) >= 10
    assert all(lag >= 2 for lag in lags)
    assert 5 <= sorted(lags)[len(lags) // 2] <= 90  # median lag: weeks, not zero, not years


def test_counterfeit_pills_and_drug_classes(truth: dict, world_dir: Path) -> None:
    lst = truth["listings"].values()
    classes = Counter(x["drug_class"] for x in lst)
    assert len(classes) >= 7
    m30 = [(lid, x) for lid, x in truth["listings"].items()
           if x["counterfeit_pill"] and x["substance"] == "oxycodone"]
    assert m30 and all(x["unit_kind"] == "pill" and x["dose_mg"] == 30.0 and x["fentanyl_risk"]
                       for _, x in m30)
    bars = [x for x in lst if x["counterfeit_pill"] and x["substance"] == "alprazolam"]
    assert bars
    # a counterfeit M30 is sold as oxycodone; its fentanyl shows only in the risk flag
    lid, _ = m30[0]
    market, ref = lid.split(":", 1)
    page = next((world_dir / "pages" / market).rglob(f"{ref}.html")).read_text(encoding="utf-8")
    assert re.search(r"M-?30|blues|Oxy", page)


def test_key_reuse_and_rotation_follow_the_knobs() -> None:
    p = SimParams(vendors=3000, key_reuse_rate=0.6, key_rotation_rate=0.1)
    w = build_world(11, p)
    reused = later = rotated = 0
    for actor in w.actors:
        seen: set[int] = set()
        for i, ai in enumerate(actor.accounts):
            acc = w.accounts[ai]
            if i:
                later += 1
                reused += acc.keys[0] in seen
            seen.update(acc.keys)
            rotated += len(acc.keys) > 1
    assert later > 300
    assert abs(reused / later - 0.6) < 0.08
    assert abs(rotated / len(w.accounts) - 0.1) < 0.04
    # with no reuse at all, no later account shows an earlier key of its actor
    w0 = build_world(11, SimParams(vendors=500, key_reuse_rate=0.0))
    for actor in w0.actors:
        firsts = [w0.accounts[a].keys[0] for a in actor.accounts]
        assert len(set(firsts)) == len(firsts)


def test_feedback_rate_is_within_the_documented_range(truth: dict, world_dir: Path) -> None:
    w = build_world(SEED, SimParams(vendors=VENDORS))
    o = w.orders
    assert len(o) == sum(x["true_orders"] for x in truth["listings"].values())
    left = int((o.rating > 0).sum())
    assert 0.4 <= left / len(o) <= 0.8


def test_invalid_knobs_are_rejected() -> None:
    with pytest.raises(ValueError):
        SimParams(style_noise=1.5)
    with pytest.raises(ValueError):
        SimParams(markets=3)
    with pytest.raises(ValueError):
        SimParams(feedback_rate_min=0.9, feedback_rate_max=0.5)


# -- PGP keys ---------------------------------------------------------------------------------


def test_gpg_accepts_a_generated_key_with_the_same_fingerprint(world_dir: Path, truth: dict,
                                                               tmp_path: Path) -> None:
    gpg = shutil.which("gpg")
    if gpg is None:
        pytest.skip("gpg is not installed")
    aid, acc = next((a, x) for a, x in truth["accounts"].items()
                    if truth["markets"][x["market"]]["layout"] == "classic")
    market = acc["market"]
    pages = [p for p in (world_dir / "pages" / market / "user").glob("*.html")
             if f'class="uname">{acc["handle"]}<' in p.read_text(encoding="utf-8")
             or f'class="uname">{html.escape(acc["handle"])}<' in p.read_text(encoding="utf-8")]
    assert pages
    blocks = re.findall(r'<pre class="pgp">(.*?)</pre>', pages[0].read_text(encoding="utf-8"),
                        re.S)
    armored = html.unescape(blocks[0])
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    res = subprocess.run([gpg, "--batch", "--with-colons", "--import-options", "show-only",
                          "--import"], input=armored.encode(), capture_output=True,
                         env=dict(os.environ, GNUPGHOME=str(home)), check=True)
    fprs = [line.split(":")[9] for line in res.stdout.decode().splitlines()
            if line.startswith("fpr:")]
    assert fprs and fprs[0] == acc["pgp_fingerprints"][-1]
    assert "pub:" in res.stdout.decode() and ":22:" in res.stdout.decode()  # EdDSA
    # and a full import verifies the self-signatures
    subprocess.run([gpg, "--batch", "--import"], input=armored.encode(), capture_output=True,
                   env=dict(os.environ, GNUPGHOME=str(home)), check=True)
    chk = subprocess.run([gpg, "--batch", "--check-sigs", fprs[0]], capture_output=True,
                         env=dict(os.environ, GNUPGHOME=str(home)), check=True)
    assert "sig!" in chk.stdout.decode() and "sig-" not in chk.stdout.decode()


# -- Bitcoin ----------------------------------------------------------------------------------


def _dsha(b: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(b).digest()).digest()


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    n = buf[pos]
    if n < 0xFD:
        return n, pos + 1
    size = {0xFD: 2, 0xFE: 4, 0xFF: 8}[n]
    return int.from_bytes(buf[pos + 1:pos + 1 + size], "little"), pos + 1 + size


def _tx(buf: bytes, pos: int) -> tuple[bytes, list, list, int]:
    """(txid, inputs [(prev txid, vout)], outputs [(value, script)], end) of one tx."""
    start = pos
    pos += 4
    segwit = buf[pos] == 0 and buf[pos + 1] == 1
    if segwit:
        pos += 2
    body_start = pos
    n_in, pos = _varint(buf, pos)
    ins = []
    for _ in range(n_in):
        ins.append((buf[pos:pos + 32], int.from_bytes(buf[pos + 32:pos + 36], "little")))
        pos += 36
        ln, pos = _varint(buf, pos)
        pos += ln + 4
    n_out, pos = _varint(buf, pos)
    outs = []
    for _ in range(n_out):
        value = int.from_bytes(buf[pos:pos + 8], "little")
        ln, p2 = _varint(buf, pos + 8)
        outs.append((value, buf[p2:p2 + ln]))
        pos = p2 + ln
    body_end = pos
    if segwit:
        for _ in range(n_in):
            items, pos = _varint(buf, pos)
            for _ in range(items):
                ln, pos = _varint(buf, pos)
                pos += ln
    stripped = buf[start:start + 4] + buf[body_start:body_end] + buf[pos:pos + 4]
    return _dsha(stripped), ins, outs, pos + 4


def _merkle(hashes: list[bytes]) -> bytes:
    while len(hashes) > 1:
        if len(hashes) % 2:
            hashes.append(hashes[-1])
        hashes = [_dsha(hashes[i] + hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]


def _blocks(data: bytes):
    pos = 0
    while pos + 8 <= len(data) and data[pos:pos + 4] == bytes.fromhex("f9beb4d9"):
        size = struct.unpack("<I", data[pos + 4:pos + 8])[0]
        raw = data[pos + 8:pos + 8 + size]
        n, p = _varint(raw, 80)
        txs = []
        for _ in range(n):
            txid, ins, outs, p = _tx(raw, p)
            txs.append((txid, ins, outs))
        assert p == len(raw)
        yield raw[:80], txs
        pos += 8 + size


def test_checker_recomputes_a_real_mainnet_block() -> None:
    """The test's own txid/merkle code agrees with a real 2018 segwit block."""
    blk = (DATA / "bitcoin"
           / "block-00000000000000000021868c2cefc52a480d173c849412fe81c4e5ab806f94ab.blk")
    raw = blk.read_bytes()
    n, p = _varint(raw, 80)
    ids = []
    for _ in range(n):
        txid, _, _, p = _tx(raw, p)
        ids.append(txid)
    assert _merkle(ids) == raw[36:68]
    assert _dsha(raw[:80])[::-1].hex() == blk.stem.split("-")[1]


def test_chain_txids_merkle_roots_and_spends_recompute(world_dir: Path, truth: dict) -> None:
    files = sorted((world_dir / "chain").glob("blk*.dat"))
    assert [f.name for f in files][0] == "blk00000.dat"
    known: dict[tuple[bytes, int], int] = {}
    prev = b"\x00" * 32
    n_blocks = n_tx = multi_input = coinjoins = 0
    owner = truth["chain"]["address_owner"]
    scripts = {}
    for f in files:
        for header, txs in _blocks(f.read_bytes()):
            assert header[4:36] == prev
            assert _merkle([t[0] for t in txs]) == header[36:68]
            prev = _dsha(header)
            n_blocks += 1
            for i, (txid, ins, outs) in enumerate(txs):
                n_tx += 1
                if i:
                    vin = 0
                    for op in ins:
                        assert op in known, "input spends an unknown or spent output"
                        vin += known.pop(op)
                    assert vin >= sum(v for v, _ in outs)
                    multi_input += len(ins) > 1
                    values = Counter(v for v, _ in outs)
                    if len(ins) >= 4 and values.most_common(1)[0][1] >= 4:
                        coinjoins += 1
                for k, (v, script) in enumerate(outs):
                    known[(txid, k)] = v
                    scripts[script] = True
    assert n_blocks > 10 and n_tx > 1000 and multi_input > 100 and coinjoins > 0
    # truth addresses are real encodings (decoded by the chain module's own code) of
    # scripts on chain; a few were handed out and never paid (unused payout addresses)
    sample = list(owner)[:: max(1, len(owner) // 400)]
    kinds = Counter()
    on_chain = 0
    for addr in sample:
        on_chain += script_for_address(addr) in scripts
        kinds[addr[:4] if addr.startswith("bc1") else addr[0]] += 1
    assert on_chain / len(sample) > 0.9
    assert set(kinds) >= {"1", "3", "bc1q", "bc1p"}
    assert _SUMMARY["unpaid_orders"] == 0
    assert n_tx == _SUMMARY["transactions"]


def test_coinjoin_inputs_belong_to_different_wallets(world_dir: Path, truth: dict) -> None:
    from darkmap.importers.bitcoin_formats import iter_framed_blocks, parse_block
    from darkmap.model.bitcoin import infer_input_address
    owner = truth["chain"]["address_owner"]
    wallets = truth["chain"]["wallets"]
    data = (world_dir / "chain" / "blk00000.dat").read_bytes()
    found = 0
    for off, raw in iter_framed_blocks(data):
        block = parse_block(raw, off)
        for tx in block.txs[1:]:
            values = Counter(o.value for o in tx.outputs)
            if len(tx.inputs) < 4 or values.most_common(1)[0][1] < 4:
                continue
            owners = set()
            for i in tx.inputs:
                got = infer_input_address(i.script_sig, i.witness)
                if got:
                    owners.add(owner[got[1]])
            kinds = {wallets[w]["kind"] for w in owners}
            assert len(owners) >= 4 and "mixer" in kinds
            found += 1
    assert found


def test_cashouts_end_at_exchange_deposit_addresses(truth: dict) -> None:
    ch = truth["chain"]
    assert ch["cashouts"]
    for c in ch["cashouts"][:200]:
        w = ch["wallets"][ch["address_owner"][c["deposit_address"]]]
        assert w["kind"] == "exchange" and w["owner"] == c["exchange"]
        assert ch["wallets"][c["wallet"]]["owner"] == c["actor"]
        assert c["actor"] in truth["actors"]
        assert re.fullmatch(r"[0-9a-f]{64}", c["start_txid"])


def test_tagpacks_hold_only_known_services(world_dir: Path, truth: dict) -> None:
    owner, wallets = truth["chain"]["address_owner"], truth["chain"]["wallets"]
    total = 0
    for f in sorted((world_dir / "tags").glob("*.yaml")):
        header, tags, problems = read_tagpack(f.read_text(encoding="utf-8"), f.name)
        assert problems == [] and header["title"] and header["creator"]
        for t in tags:
            w = wallets[owner[t["address"]]]
            assert t["category"] == w["kind"] and t["label"] == w["owner"]
            assert t["currency"] == "BTC" and t["confidence"] and t["source"]
        total += len(tags)
        raw = yaml.safe_load(f.read_text(encoding="utf-8"))
        assert {"address", "label", "category", "confidence", "source", "currency"} <= set(
            raw["tags"][0])
    vendor_addrs = sum(1 for w in owner.values() if wallets[w]["kind"] in ("vendor", "buyer"))
    assert 0 < total < len(owner) // 4 and vendor_addrs > total


def test_address_encoders_match_bip_vectors() -> None:
    assert bech32_address(0, bytes.fromhex("751e76e8199196d454941c45d1b3a323f1433bd6")) == \
        "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
    assert bech32_address(1, bytes.fromhex(
        "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")) == \
        "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0"


# -- shipped templates/mappings and the CLI ---------------------------------------------------


def test_shipped_templates_and_mappings_match_the_generator() -> None:
    for path, text in expected_files(SRC).items():
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: run " \
            "python -m darkmap.simulate.support"


def test_cli_writes_a_world_and_prints_counts(tmp_path: Path) -> None:
    out = tmp_path / "cli-world"
    res = CliRunner().invoke(main, ["simulate", "--seed", "5", "--vendors", "30", "--out",
                                    str(out), "--no-pages"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["accounts"] == 30 and (out / "truth.json").is_file()
    assert not (out / "pages").exists()
    again = CliRunner().invoke(main, ["simulate", "--seed", "5", "--vendors", "30", "--out",
                                      str(out)])
    assert again.exit_code != 0 and "--force" in again.output


def test_catalogue_speaks_the_controlled_vocabulary() -> None:
    from darkmap.assess.taxonomy import DRUG_CLASSES, SUBSTANCES
    from darkmap.simulate.catalog import LINES

    for line in LINES:
        assert line.drug_class in DRUG_CLASSES, line
        assert line.substance in SUBSTANCES, line
