"""End to end over real Tor software: a private Tor network on loopback (``make test-tor``).

:class:`TorNet` sets up what the chutney tool sets up for its ``hs-v3`` networks, with
Debian's ``tor``: three directory authorities (also relays), two relays, the test market
(tests/test_crawl_market.py) published as a v3 onion service by a fourth tor, and a tor
client whose SOCKS port the crawler uses, all in ``TestingTorNetwork`` mode with short
voting intervals. The crawl then reaches the market by its real ``.onion`` address
through real Tor circuits (client -> rendezvous <- service), and stores every page of the
market once, as through the test proxy.

It takes 25-45 s here (the authorities must vote a consensus, the service publish its
descriptor). It runs when ``DARKMAP_TEST_TOR=1`` and ``tor`` is installed: ``make test``
and ``make test-tor`` install Debian's tor where missing and set it; a bare ``pytest``
skips it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from test_crawl_market import MarketSite, make_world, page_files

from darkmap.collect.crawl import CrawlOptions, crawl
from darkmap.store.workspace import Workspace

pytestmark = pytest.mark.skipif(
    os.environ.get("DARKMAP_TEST_TOR") != "1" or shutil.which("tor") is None
    or shutil.which("tor-gencert") is None,
    reason="the private Tor network test runs with DARKMAP_TEST_TOR=1 and tor installed "
           "(make test-tor)")

COMMON = """TestingTorNetwork 1
DataDirectory {dir}
RunAsDaemon 0
Nickname {nick}
Log notice file {dir}/notice.log
SafeLogging 0
ProtocolWarnings 1
ShutdownWaitLength 0
PathsNeededToBuildCircuits 0.67
TestingDirAuthVoteExit *
TestingDirAuthVoteHSDir *
TestingDirAuthVoteGuard *
TestingMinExitFlagThreshold 0
V3AuthNIntervalsValid 2
TestingV3AuthInitialVotingInterval 10
TestingV3AuthInitialVoteDelay 2
TestingV3AuthInitialDistDelay 2
V3AuthVotingInterval 10
V3AuthVoteDelay 2
V3AuthDistDelay 2
AssumeReachable 1
ClientUseIPv6 0
{authorities}
"""
RELAY = """Address 127.0.0.1
SocksPort 0
ORPort 127.0.0.1:{orport}
ExitPolicy reject *:*
ContactInfo relay@test.test
"""
AUTHORITY = RELAY + """DirPort 127.0.0.1:{dirport}
AuthoritativeDirectory 1
V3AuthoritativeDirectory 1
"""


def _port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


class TorNet:
    """A private Tor network on loopback (see the module docstring)."""

    def __init__(self, root: Path, site_port: int) -> None:
        self.root = root
        self.site_port = site_port
        self.procs: list[subprocess.Popen[bytes]] = []
        self.socks = _port()
        self.onion = ""

    def _authority(self, nick: str) -> tuple[str, dict[str, int]]:
        d = self.root / nick
        (d / "keys").mkdir(parents=True)
        ports = {"orport": _port(), "dirport": _port()}
        subprocess.run(
            ["tor-gencert", "--create-identity-key", "-m", "12", "-a",
             f"127.0.0.1:{ports['dirport']}", "-i", str(d / "keys/authority_identity_key"),
             "-s", str(d / "keys/authority_signing_key"), "-c",
             str(d / "keys/authority_certificate"), "--passphrase-fd", "0"],
            input=b"\n", check=True, capture_output=True)
        cert = (d / "keys/authority_certificate").read_text()
        v3ident = next(line.split()[1] for line in cert.splitlines()
                       if line.startswith("fingerprint "))
        out = subprocess.run(["tor", "--quiet", "--ignore-missing-torrc", "--DataDirectory",
                              str(d), "--ORPort", "1", "--Nickname", nick,
                              "--list-fingerprint"], check=True, capture_output=True,
                             text=True).stdout
        fpr = "".join(out.strip().splitlines()[-1].split()[1:])
        line = (f"DirAuthority {nick} orport={ports['orport']} no-v2 v3ident={v3ident} "
                f"127.0.0.1:{ports['dirport']} {fpr}")
        return line, ports

    def _start(self, nick: str, extra: str, authorities: str) -> None:
        d = self.root / nick
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o700)
        torrc = d / "torrc"
        torrc.write_text(COMMON.format(dir=d, nick=nick, authorities=authorities) + extra)
        self.procs.append(subprocess.Popen(["tor", "-f", str(torrc)],
                                           stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL))

    def start(self) -> None:
        """Start every tor; return once the service's address is known."""
        auths = [self._authority(f"auth{i}") for i in range(3)]
        lines = "\n".join(line for line, _ in auths)
        for i, (_, ports) in enumerate(auths):
            self._start(f"auth{i}", AUTHORITY.format(**ports), lines)
        for i in range(2):
            self._start(f"relay{i}", RELAY.format(orport=_port()), lines)
        hs = self.root / "hs"
        self._start("hs", f"HiddenServiceDir {hs}/service\nHiddenServicePort 80 "
                          f"127.0.0.1:{self.site_port}\nSocksPort 0\n", lines)
        self._start("client", f"SocksPort 127.0.0.1:{self.socks}\n", lines)
        hostname = hs / "service" / "hostname"
        deadline = time.monotonic() + 60
        while not hostname.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        self.onion = hostname.read_text().strip()

    def wait_reachable(self, seconds: float = 300) -> None:
        """Wait until the client reaches the onion service (consensus, descriptor)."""
        deadline = time.monotonic() + seconds
        last = ""
        while time.monotonic() < deadline:
            try:
                with httpx.Client(proxy=f"socks5h://127.0.0.1:{self.socks}", timeout=30,
                                  trust_env=False) as c:
                    if c.get(f"http://{self.onion}/").status_code == 200:
                        return
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(3)
        raise AssertionError(f"the onion service was not reachable in {seconds} s: {last}")

    def stop(self) -> None:
        """Stop every tor this network started."""
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture
def tornet(tmp_path: Path) -> Iterator[tuple[TorNet, MarketSite, Path]]:
    pages = make_world(tmp_path / "world")
    site = MarketSite(pages, "nightshade")
    net = TorNet(Path(f"/tmp/darkmap-tor-{os.getpid()}"), site.start())
    shutil.rmtree(net.root, ignore_errors=True)
    try:
        net.start()
        yield net, site, pages
    finally:
        net.stop()
        site.stop()
        shutil.rmtree(net.root, ignore_errors=True)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_crawl_through_a_private_tor_network(tornet: tuple[TorNet, MarketSite, Path],
                                             tmp_path: Path) -> None:
    net, site, pages = tornet
    net.wait_reachable()
    with Workspace.init(tmp_path / "ws") as ws:
        rep = crawl(ws, CrawlOptions("nightshade", start_url=f"http://{net.onion}/",
                                     proxy=f"socks5h://127.0.0.1:{net.socks}", rate=0.0,
                                     concurrency=2, backoff=1.0, timeout=60.0))
        assert rep.status == "done", rep.as_dict()
        stored = sorted(sha for (sha,) in ws.con.execute(
            "SELECT sha256 FROM crawl_frontier WHERE state = 'done' AND kind <> 'start'"
        ).fetchall())
        mirrors = {m for (m,) in ws.con.execute(
            "SELECT DISTINCT target FROM crawl_fetches WHERE outcome = 'ok'").fetchall()}
    assert stored == sorted(hashlib.sha256(p.read_bytes()).hexdigest()
                            for p in page_files(pages, "nightshade"))
    assert all(m.startswith(f"http://{net.onion}/") for m in mirrors)
    assert set(site.hosts_seen) == {net.onion}
