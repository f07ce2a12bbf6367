"""The team server over TLS: a throw-away PostgreSQL with a self-signed CA, reached with
``sslmode=verify-full`` (issue #18).

The server listens on 127.0.0.1 only, but is named ``darkmap-team.test`` (with
``hostaddr=127.0.0.1``): to darkmap that name is off loopback, so the address below gives
no ``sslmode`` and darkmap sets ``verify-full`` itself. The test is skipped where the
PostgreSQL server binaries or ``openssl`` are missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from darkmap.collect.ingest import ingest
from darkmap.resolve.judgements import judge
from darkmap.store.team import TeamServerError, init_server, secure_conninfo, sync_judgements
from darkmap.store.workspace import Workspace

NAME = "darkmap-team.test"


def _bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _as_server_user(args: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run its binaries as ``postgres``."""
    return ["runuser", "-u", "postgres", "--", *args] if os.getuid() == 0 else args


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _openssl(d: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)


def _make_certs(d: Path) -> None:
    """ca.crt (the team's CA), server.crt/.key signed by it for localhost and NAME, and
    other.crt, a CA that signed nothing here."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other"):
        _openssl(d, "req", "-x509", *ec, "-keyout", f"{ca}.key", "-out", f"{ca}.crt",
                 "-days", "2", "-subj", f"/CN=darkmap test {ca} CA")
    _openssl(d, "req", *ec, "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=localhost")
    (d / "san.ext").write_text(f"subjectAltName=DNS:localhost,DNS:{NAME}\n", encoding="utf-8")
    _openssl(d, "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext")
    (d / "server.key").chmod(0o600)


@dataclass(frozen=True)
class TlsServer:
    """Where the TLS server listens, and the CAs to try."""

    port: int
    ca: Path
    other_ca: Path

    def dsn(self, host: str = NAME, ca: Path | None = None, extra: str = "") -> str:
        """The server's address under ``host`` (reached at 127.0.0.1), trusting ``ca``."""
        return (f"postgresql://postgres@{host}:{self.port}/postgres?hostaddr=127.0.0.1"
                f"&sslrootcert={ca or self.ca}{extra}")


@pytest.fixture(scope="module")
def tls_server() -> Iterator[TlsServer]:
    """A PostgreSQL with ``ssl=on`` and a certificate of a self-signed CA, stopped and
    removed afterwards."""
    bindir = _bindir()
    if bindir is None or shutil.which("openssl") is None:
        pytest.skip("needs the PostgreSQL server binaries and openssl")
    if os.getuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("as root, needs runuser to start PostgreSQL as the postgres user")
    d = Path(tempfile.mkdtemp(prefix="darkmap-tls-"))
    data = d / "data"
    try:
        _make_certs(d)
        if os.getuid() == 0:
            for path in [d, *d.iterdir()]:
                shutil.chown(path, user="postgres")
        subprocess.run(_as_server_user([str(bindir / "initdb"), "-D", str(data), "-U",
                                        "postgres", "-A", "trust", "--no-sync"]),
                       check=True, capture_output=True, timeout=120)
        port = _free_port()
        options = (f"-h 127.0.0.1 -p {port} -k {d} -c ssl=on -c ssl_cert_file={d}/server.crt "
                   f"-c ssl_key_file={d}/server.key -c fsync=off")
        subprocess.run(_as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-l",
                                        str(d / "log"), "-w", "-t", "60", "-o", options,
                                        "start"]),
                       check=True, capture_output=True, timeout=120)
    except BaseException:
        shutil.rmtree(d, ignore_errors=True)
        raise
    yield TlsServer(port, d / "ca.crt", d / "other.crt")
    subprocess.run(_as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-m",
                                    "immediate", "stop"]), capture_output=True, timeout=60,
                   check=False)
    shutil.rmtree(d, ignore_errors=True)


def test_off_loopback_darkmap_connects_with_verify_full(tls_server: TlsServer, ws: Workspace,
                                                        data_dir: Path) -> None:
    dsn = tls_server.dsn()
    assert "sslmode" not in dsn
    with psycopg.connect(secure_conninfo(dsn, environ={})) as pg:
        assert pg.info.pgconn.ssl_in_use
        assert pg.info.get_parameters()["sslmode"] == "verify-full"
    init_server(dsn)
    ingest(ws, [data_dir / "pages" / "hansa"])
    a, b = (r[0] for r in ws.con.execute(
        "SELECT account_id FROM accounts ORDER BY 1 LIMIT 2").fetchall())
    judge(ws, a, b, "same")
    assert sync_judgements(ws, dsn).pushed == 1


def test_a_certificate_from_another_ca_is_refused(tls_server: TlsServer, ws: Workspace) -> None:
    with pytest.raises(TeamServerError, match=r"cannot reach team server: .*certificate verify"):
        sync_judgements(ws, tls_server.dsn(ca=tls_server.other_ca))


def test_a_certificate_for_another_name_is_refused(tls_server: TlsServer,
                                                   ws: Workspace) -> None:
    with pytest.raises(TeamServerError, match="does not match host name"):
        sync_judgements(ws, tls_server.dsn(host="elsewhere.test"))


def test_a_weaker_sslmode_is_refused_though_the_server_has_tls(tls_server: TlsServer,
                                                              ws: Workspace) -> None:
    with pytest.raises(TeamServerError, match="sslmode=require is refused off loopback"):
        sync_judgements(ws, tls_server.dsn(extra="&sslmode=require"))


def test_verify_full_on_loopback_by_name(tls_server: TlsServer) -> None:
    dsn = tls_server.dsn(host="localhost", extra="&sslmode=verify-full")
    with psycopg.connect(secure_conninfo(dsn, environ={})) as pg:
        assert pg.info.pgconn.ssl_in_use
