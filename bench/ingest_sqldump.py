"""Benchmark: a seized SQL dump of growing size through ``darkmap ingest``, against a
MariaDB load of the same file, in the same run.

The dump is the real Dream seller dump (``seized/dream-2016-sellers.sql``) with its row
tuples repeated up to each size: copy ``k`` of a row gets the id ``seqNo + k * 10**6``
and the handle ``seller_name + "_r<k>"`` (copy 0 is the real row), so no row is a
duplicate of another, written as extended INSERTs of about 1 MiB like mysqldump's,
between the real dump's own header and trailer. For each size:

- MariaDB: a private server (``mariadb-install-db`` into a temp folder, ``mariadbd`` on a
  unix socket there, no networking), timing ``mariadb < dump.sql`` (the client's parse,
  the server's parse and the InnoDB writes); the server is stopped and its folder
  removed after each size. ``mariadb-server`` is installed from Debian with apt-get
  when ``mariadbd`` is missing.
- darkmap: ``darkmap ingest --init -w <fresh workspace> dump.sql`` in a child process
  (its per-file time budget raised: this measures throughput, not the guard); seconds,
  and the child's peak memory: its own high-water mark (``VmHWM``), which the child
  reports as it exits. ``wait4``'s ``ru_maxrss`` is kept as ``rusage_peak_mb`` but is not
  the child's own figure on Linux: a forked child inherits the parent's high-water mark
  through ``execve``, and this bench's parent once held the whole dump (counting the rows
  of a kept one, before this was done in a child process): 1,031 MB for ``/bin/true``
  after a 1 GB dump was read.

Each figure is the median of ``--runs`` runs; prints JSON with seconds, MB/s, rows/s,
CPU seconds (MariaDB's: client and server), peak MB, and darkmap's wall and CPU time
over MariaDB's (on a shared machine the CPU ratio is the steadier). Never passes or
fails.

    .venv/bin/python bench/ingest_sqldump.py [--sizes 10,100,1000] [--runs 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from darkmap.simulate.hostile import dump_rows, tuple_value_spans

DATA = Path(os.environ.get("DARKMAP_DATA", Path(__file__).resolve().parents[2] / "shared"
                           / "data"))
DREAM = DATA / "seized" / "dream-2016-sellers.sql"
MB = 1_000_000
STATEMENT_BYTES = 1 << 20  # mysqldump's default net_buffer_length-sized INSERTs


# ---------------------------------------------------------------------------- the dump


def _parts() -> tuple[bytes, list[tuple[bytes, bytes, bytes]], bytes]:
    """The real dump's header (up to its first INSERT), its rows as (before the id, id,
    handle, rest) pieces, and its trailer (after its last INSERT)."""
    raw = DREAM.read_bytes()
    rows = dump_rows(raw)
    first = raw.rfind(b"\n", 0, rows[0].start) + 1
    last = raw.index(b";", rows[-1].end) + 1
    pieces = []
    for r in rows:
        text = raw[r.start:r.end]
        (a0, b0), (a1, b1) = tuple_value_spans(text)[:2]
        # (id) and ('handle': its closing quote kept in the rest
        pieces.append((text[a0:b0], text[a1:b1 - 1], text[b1 - 1:]))
    return raw[:first], pieces, raw[last:]


def make_dump(path: Path, size: int) -> int:
    """Write a dump of about ``size`` bytes; the number of row tuples written."""
    head, rows, tail = _parts()
    insert = b"INSERT INTO `dnm_dream` VALUES "
    n = copy = 0
    with open(path, "wb") as out:
        out.write(head)
        written = len(head)
        stmt: list[bytes] = []
        stmt_len = 0
        while written < size:
            for ident, handle, rest in rows:
                new_id = str(int(ident) + copy * 1_000_000).encode()
                new_handle = handle if copy == 0 else handle + b"_r%d" % copy
                tup = b"(" + new_id + b"," + new_handle + rest
                stmt.append(tup)
                stmt_len += len(tup) + 1
                n += 1
                if stmt_len >= STATEMENT_BYTES:
                    written += out.write(insert + b",".join(stmt) + b";\n")
                    stmt, stmt_len = [], 0
                    if written >= size:
                        break
            copy += 1
        if stmt:
            out.write(insert + b",".join(stmt) + b";\n")
        out.write(tail)
    return n


# ----------------------------------------------------------------------------- MariaDB


def _mariadbd() -> str:
    for name in ("mariadbd", "mysqld"):
        for d in ("", "/usr/sbin/", "/usr/libexec/"):
            p = shutil.which(d + name) if d == "" else (d + name if os.path.exists(d + name)
                                                        else None)
            if p:
                return p
    subprocess.run(["apt-get", "install", "-y", "mariadb-server"], check=True,
                   stdout=subprocess.DEVNULL)
    return "/usr/sbin/mariadbd"


class MariaDb:
    """A private MariaDB server on a unix socket in a temp folder (stopped on exit)."""

    def __init__(self, base: Path) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="mariadb-", dir=base))
        self.sock = self.dir / "sock"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> MariaDb:
        daemon = _mariadbd()
        data = self.dir / "data"
        subprocess.run(["mariadb-install-db", f"--datadir={data}", "--user=root",
                        "--auth-root-authentication-method=normal", "--skip-test-db"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.proc = subprocess.Popen(
            [daemon, "--no-defaults", f"--datadir={data}", f"--socket={self.sock}",
             "--skip-networking", "--user=root", f"--pid-file={self.dir / 'pid'}",
             f"--log-error={self.dir / 'err.log'}", f"--tmpdir={self.dir}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(600):
            if subprocess.run(self._client("-e", "SELECT 1"), check=False,
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode == 0:
                return self
            time.sleep(0.1)
        raise RuntimeError("mariadbd did not start: " + (self.dir / "err.log").read_text())

    def _client(self, *args: str) -> list[str]:
        return ["mariadb", "--no-defaults", f"--socket={self.sock}", "-uroot", *args]

    def _server_cpu(self) -> float:
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def load(self, dump: Path) -> tuple[float, float]:
        """Seconds of ``mariadb < dump`` into a fresh database, and the CPU seconds of
        the client and the server together."""
        subprocess.run(self._client("-e", "DROP DATABASE IF EXISTS DreamMarketSellers"),
                       check=True)
        with open(dump, "rb") as fh:
            c0 = self._server_cpu()
            t = time.perf_counter()
            proc = subprocess.Popen(self._client(), stdin=fh)
            _pid, status, usage = os.wait4(proc.pid, 0)
            secs = time.perf_counter() - t
            proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.returncode:
                raise RuntimeError(f"mariadb exited {proc.returncode}")
        return secs, usage.ru_utime + usage.ru_stime + self._server_cpu() - c0

    def rows(self) -> int:
        out = subprocess.run(self._client("-N", "-e",
                                          "SELECT COUNT(*) FROM DreamMarketSellers.dnm_dream"),
                             check=True, capture_output=True, text=True).stdout
        return int(out.strip())

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


# ----------------------------------------------------------------------------- darkmap


def _child(dump: str, ws: str, peak_file: str) -> None:
    """In the child: ``darkmap ingest --init -w ws dump`` with the time budget raised;
    its own peak memory (kB) is written to ``peak_file`` on the way out."""
    from darkmap.cli import run
    from darkmap.collect import ingest as ingest_mod

    ingest_mod.FILE_SECONDS_PER_MB = 120.0
    sys.argv = ["darkmap", "ingest", "--init", "-q", "--json", "-w", ws, dump]

    def peak() -> None:
        with open("/proc/self/status", encoding="ascii") as fh:
            hwm = next(line.split()[1] for line in fh if line.startswith("VmHWM:"))
        Path(peak_file).write_text(hwm, encoding="ascii")

    atexit.register(peak)  # run() may end the process itself (darkmap.cli.run)
    run()


def _count_rows(dump: Path) -> int:
    """The row tuples of a kept dump, counted in a child process (reading the dump here
    would raise this process's high-water mark, which a child started later inherits)."""
    out = subprocess.run([sys.executable, __file__, "--count", str(dump)], check=True,
                         capture_output=True, text=True).stdout
    return int(out.strip())


def darkmap_ingest(dump: Path, base: Path) -> dict[str, Any]:
    """One ``darkmap ingest`` of ``dump`` into a fresh workspace, in a child process."""
    ws = Path(tempfile.mkdtemp(prefix="ws-", dir=base))
    try:
        out = open(ws.parent / (ws.name + ".out"), "w+b")
        peak_file = ws.parent / (ws.name + ".peak")
        t = time.perf_counter()
        proc = subprocess.Popen([sys.executable, __file__, "--child", str(dump),
                                 str(ws / "ws"), str(peak_file)], stdout=out)
        _pid, status, usage = os.wait4(proc.pid, 0)
        secs = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
        out.close()
        os.unlink(out.name)
        summary = json.loads(text[text.index("{"):]) if "{" in text else {}
        totals = summary.get("totals", {})
        hwm = int(peak_file.read_text(encoding="ascii")) if peak_file.exists() else None
        peak_file.unlink(missing_ok=True)
        return {"seconds": secs, "peak_mb": (hwm if hwm is not None else usage.ru_maxrss) / 1024,
                "rusage_peak_mb": usage.ru_maxrss / 1024,
                "cpu_seconds": usage.ru_utime + usage.ru_stime, "exit": proc.returncode,
                "read": totals.get("read"), "stored": totals.get("stored"),
                "quarantined": totals.get("quarantined")}
    finally:
        shutil.rmtree(ws, ignore_errors=True)


# -------------------------------------------------------------------------------- main


def _med(xs: list[float]) -> float:
    return round(statistics.median(xs), 3)


def bench_size(size_mb: float, runs: int, base: Path, keep: Path | None) -> dict[str, Any]:
    """Both loads of one dump size, ``runs`` times each."""
    name = f"dream-{size_mb:g}MB.sql"
    dump = (keep or base) / name
    if not dump.exists():
        rows = make_dump(dump, int(size_mb * MB))
    else:
        rows = _count_rows(dump)
    nbytes = dump.stat().st_size
    with MariaDb(base) as db:
        loads = [db.load(dump) for _ in range(runs)]
        maria_rows = db.rows()
    maria = [x[0] for x in loads]
    dm = [darkmap_ingest(dump, base) for _ in range(runs)]
    if keep is None:
        dump.unlink()
    ms, ds = _med(maria), _med([d["seconds"] for d in dm])
    return {
        "size_mb": round(nbytes / MB, 1), "rows": rows,
        "mariadb": {"seconds": ms, "mb_per_s": round(nbytes / MB / ms, 1),
                    "rows_per_s": round(rows / ms), "rows_loaded": maria_rows,
                    "cpu_seconds": _med([x[1] for x in loads]),
                    "runs": [round(x, 3) for x in maria]},
        "darkmap": {"seconds": ds, "mb_per_s": round(nbytes / MB / ds, 2),
                    "rows_per_s": round(rows / ds),
                    "cpu_seconds": _med([d["cpu_seconds"] for d in dm]),
                    "peak_mb": round(statistics.median(d["peak_mb"] for d in dm)),
                    "peaks_mb": [round(d["peak_mb"]) for d in dm],
                    "rusage_peak_mb": round(statistics.median(d["rusage_peak_mb"] for d in dm)),
                    "read": dm[0]["read"], "stored": dm[0]["stored"],
                    "quarantined": dm[0]["quarantined"], "exit": dm[0]["exit"],
                    "runs": [round(d["seconds"], 3) for d in dm]},
        "darkmap_over_mariadb": round(ds / ms, 2),
        "darkmap_over_mariadb_cpu": round(_med([d["cpu_seconds"] for d in dm])
                                          / _med([x[1] for x in loads]), 2),
    }


def main() -> None:
    """Run the sizes and print JSON."""
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3], sys.argv[4])
        return
    if len(sys.argv) == 3 and sys.argv[1] == "--count":
        print(sum(1 for _ in dump_rows(Path(sys.argv[2]).read_bytes())))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10,100,1000", help="dump sizes in MB (10**6 bytes)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", type=Path, help="keep (and reuse) the generated dumps here")
    ap.add_argument("--tmp", type=Path, default=None, help="folder for dumps and servers")
    args = ap.parse_args()
    load = os.getloadavg()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-sqldump-", dir=args.tmp) as d:
        sizes = [bench_size(float(s), args.runs, Path(d), args.keep)
                 for s in args.sizes.split(",")]
    print(json.dumps({"load_average_before": [round(x, 2) for x in load],
                      "load_average_after": [round(x, 2) for x in os.getloadavg()],
                      "cpus": os.cpu_count(), "runs": args.runs, "sizes": sizes,
                      "python": sys.version.split()[0]}, indent=2))


if __name__ == "__main__":
    main()
