"""`darkmap keys` and store.evidence.key_statistics on the real Dream seller dump: keys
parsed, shared between accounts, and a key block that fails (its CRC line damaged)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from darkmap.cli import main
from darkmap.collect.ingest import ingest
from darkmap.store.evidence import key_statistics
from darkmap.store.workspace import Workspace

OLDAMSTERDAM_FPR = "1D9DEA5392C6A420C868ACC573E25F3B44E13E81"   # see test_pgp.py


def _ingest(path: Path, inputs: Path) -> Path:
    with Workspace.init(path) as ws:
        ingest(ws, [inputs])
    return path


@pytest.fixture(scope="module")
def dream(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """The real Dream seller dump, ingested."""
    return _ingest(tmp_path_factory.mktemp("keys") / "ws", data_dir / "seized")


@pytest.fixture(scope="module")
def damaged(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """The same dump with the armor checksum of 0ldamsterdam's key block changed."""
    text = (data_dir / "seized" / "dream-2016-sellers.sql").read_text(encoding="utf-8")
    start = text.index("'0ldamsterdam'")
    crc = text.rindex("=", start, text.index("-----END PGP", start)) + 1
    assert text[crc:crc + 4] != "AAAA"
    base = tmp_path_factory.mktemp("damaged")
    (base / "in").mkdir()
    (base / "in" / "dream-2016-sellers.sql").write_text(text[:crc] + "AAAA" + text[crc + 4:],
                                                        encoding="utf-8")
    return _ingest(base / "ws", base / "in")


def test_key_statistics_of_the_dream_sellers(dream: Path) -> None:
    with Workspace.open(dream, read_only=True) as ws:
        s = key_statistics(ws.con)
    # 745 key blocks parse to 684 distinct fingerprints (test_pgp parses the same dump)
    assert (s["key_occurrences"], s["distinct_fingerprints"]) == (745, 684)
    assert sum(a["keys"] for a in s["algorithms"]) == s["distinct_fingerprints"]
    assert {(a["algorithm"], a["bits"]) for a in s["algorithms"]} >= {("RSA", 2048),
                                                                      ("RSA", 4096)}
    assert s["shared_fingerprints"] == len(s["shared"]) > 0
    assert all(len(k["accounts"]) > 1 and k["accounts"] == sorted(k["accounts"])
               for k in s["shared"])
    assert s["accounts_sharing_a_key"] == len({a for k in s["shared"] for a in k["accounts"]})
    assert {"dream:greygoosegl0bal", "dream:greygooseglobal"} in [
        set(k["accounts"]) for k in s["shared"]]
    assert (s["failed"], s["failed_by_reason"], s["failures"]) == (0, {}, [])


def test_a_damaged_key_block_is_counted_as_failed(damaged: Path) -> None:
    with Workspace.open(damaged, read_only=True) as ws:
        s = key_statistics(ws.con)
        unlisted = key_statistics(ws.con, limit=0)
        fprs = {v for (v,) in ws.con.execute(
            "SELECT value FROM identifiers WHERE kind = 'pgp_fingerprint'").fetchall()}
    assert OLDAMSTERDAM_FPR not in fprs
    assert (s["key_occurrences"], s["distinct_fingerprints"], s["failed"]) == (744, 683, 1)
    [failure] = s["failures"]
    assert failure["field"] == "pgp" and Path(failure["source"]).name == "dream-2016-sellers.sql"
    assert failure["reason"].startswith("PGP key block 1 in column 'pgp': armor CRC24 mismatch")
    [(reason, n)] = s["failed_by_reason"].items()
    assert n == 1 and reason.startswith("armor CRC24 mismatch: block says 000000")
    assert unlisted["failures"] == [] and unlisted["failed"] == 1


def test_keys_cli_prints_the_statistics(damaged: Path) -> None:
    with Workspace.open(damaged, read_only=True) as ws:
        s = key_statistics(ws.con)
    runner = CliRunner()
    res = runner.invoke(main, ["keys", "--json", "-w", str(damaged)])
    assert res.exit_code == 0 and json.loads(res.output) == s
    res = runner.invoke(main, ["keys", "-w", str(damaged)])
    assert res.exit_code == 0
    lines = res.output.splitlines()
    assert lines[0] == "key blocks parsed            744"
    assert lines[4] == "key blocks failed              1"
    assert lines[-1].startswith("  dream-2016-sellers.sql insert 1 row 1#pgp 1: PGP key block 1")
