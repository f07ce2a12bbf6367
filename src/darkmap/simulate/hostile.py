"""A hostile corpus for ``darkmap ingest`` (issue 18), with exact expectations.

Everything darkmap reads is written by the people under investigation. Each
:class:`HostileCase` writes one folder of hostile input (bytes, symlinks, FIFOs, device
nodes, deep trees, huge fields, damaged real data...) and states what ``darkmap ingest
--json FOLDER`` must report for it: units read / stored / quarantined / skipped, the
exact units lost, and what must not happen (a file outside the folder captured, more
than 10 s, more than N MB, an abort, a hang).

Cases built on real data (``../shared/data``) derive their numbers from the undamaged
file's own ingest: a case names a *baseline* (:data:`BASELINES`, the clean twin), the
harness ingests that once, and the case's ``expect`` turns the baseline's outcome into
the expectation (``stored = N - 1, quarantined = 1 naming insert 2 row 57``). Where the
issue leaves a policy open (is a file too deep to parse quarantined with the limit
named, or skipped as unrecognised?), a case lists each acceptable outcome as an
alternative :class:`Expect`; each alternative is exact.

Some expectations name summary fields that ``darkmap ingest --json`` does not print yet
(issue 18 asks for them); they are the proposal of this corpus:

- ``totals.stored_new`` / ``totals.already_stored``: units stored by this run, and units
  of files found already ingested (a rerun that stores nothing says 0 new);
- ``totals.skipped_bytes``: input bytes no unit covers (blk resynchronisation);
- ``totals.fields_cut``: free-text fields cut at the cap (the cut recorded);
- ``limits``: ``{limit name: units quarantined for breaking it}`` (the limit named).

The harness (:func:`run_ingest`, :func:`check`) runs the CLI in a subprocess under a
memory cap and a timeout and measures wall and CPU seconds and peak memory (``wait4``
rusage of the command, which includes its own waited-for workers, taken by a small
launcher so that the size of the calling process does not leak into it); ``tests/test_hostile.py``
and ``bench/hostile.py`` use it. This module holds no SQL: facts only the workspace
knows (quarantine rows) are read by the caller and passed in as :class:`WsFacts`.
"""

from __future__ import annotations

import base64
import codecs
import gzip
import hashlib
import json
import os
import random
import re
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

__all__ = [
    "BASELINES",
    "KINDS",
    "Baseline",
    "BlkFrame",
    "CaseUnavailable",
    "DumpRow",
    "Expect",
    "HostileCase",
    "Outcome",
    "Problem",
    "Run",
    "WsFacts",
    "blk_frames",
    "capture_shas",
    "cases",
    "check",
    "darkmap_cli",
    "data_dir",
    "dump_rows",
    "regular_file_shas",
    "rmtree",
    "run_cli",
    "run_ingest",
    "tuple_value_spans",
    "tuple_values",
]

KINDS = ("pages", "csv", "sql", "blocks", "tagpack", "pgp", "warc", "fs")
MAX_SECONDS = 10.0
"""Issue 18: no file over 10 s."""
MAX_MB = 512
"""Default bound on a case's peak resident memory (an empty ingest peaks near 190 MB)."""
MEM_CAP = 4 << 30
"""RLIMIT_AS of the ingest child (4 GiB): a runaway allocation fails instead of swapping.
This caps address space, not memory: the child reserves about 2 GiB it never touches
(OpenBLAS buffers, one malloc arena and stack per thread, DuckDB's allocator), and under a
2 GiB cap DuckDB could not start a thread. What a case may really use is bounded by its
resident peak (:data:`MAX_MB`)."""
FSIZE_CAP = 2 << 30
"""RLIMIT_FSIZE of the child: a runaway capture cannot fill the shared disk."""
TIMEOUT = 60.0
"""Wall-clock seconds after which the harness kills the child and calls it a hang."""


class CaseUnavailable(RuntimeError):
    """This machine cannot build the case (e.g. ``mknod`` without CAP_MKNOD)."""


# ------------------------------------------------------------------------------ model


@dataclass(frozen=True)
class Expect:
    """One acceptable outcome of ingesting a case; ``None`` fields are not checked.

    ``quarantine``: one regex per quarantine row (``"locator | field | reason"``), rows
    and patterns matched one to one (exact count). ``limit``: a regex that a key of the
    proposed ``limits`` summary field must match. ``totals``: exact values of (proposed)
    ``totals`` fields. ``skip_reason``: a regex one ``skipped_by_page_type`` key matches.
    """

    read: int | None = None
    stored: int | None = None
    quarantined: int | None = None
    skipped: int | None = None
    min_stored: int | None = None
    records: Mapping[str, int] | None = None
    quarantine: tuple[str, ...] | None = None
    limit: str | None = None
    totals: Mapping[str, int] = field(default_factory=dict)
    skip_reason: str | None = None
    keys_failed: int | None = None
    label: str = ""


@dataclass(frozen=True)
class Outcome:
    """What one ingest reported (JSON summary), plus workspace facts when known."""

    summary: dict[str, Any]
    quarantine_rows: tuple[str, ...] | None = None
    keys_failed: int | None = None

    @property
    def totals(self) -> dict[str, int]:
        """The summary's ``totals``."""
        return dict(self.summary.get("totals", {}))

    @property
    def read(self) -> int:
        """Units read."""
        return int(self.totals.get("read", 0))

    @property
    def stored(self) -> int:
        """Units stored."""
        return int(self.totals.get("stored", 0))

    @property
    def quarantined(self) -> int:
        """Units quarantined."""
        return int(self.totals.get("quarantined", 0))

    @property
    def skipped(self) -> int:
        """Units skipped."""
        return int(self.totals.get("skipped", 0))

    @property
    def records(self) -> dict[str, int]:
        """Stored records by type."""
        return dict(self.summary.get("records", {}))


@dataclass(frozen=True)
class Baseline:
    """A clean twin of some cases: built, ingested once, its outcome feeds ``expect``."""

    name: str
    build: Callable[[Path], None]


ExpectFn = Callable[[Outcome | None], tuple[Expect, ...]]


@dataclass(frozen=True)
class HostileCase:
    """One hostile input folder and what ``darkmap ingest --json`` must say about it.

    ``between_runs`` (for rerun cases) changes the folder after a first ingest; the
    expectation then applies to the second ingest into the same workspace. ``fix`` is
    the kind of fix the case needs, from reading today's code: ``isolation`` (per-file
    guard and limits), ``regex`` (super-linear pattern), ``resync`` (a parser or sniffer
    must resynchronise and count), ``accounting`` (summary fields), ``fs-policy``
    (non-regular files, links, names), ``output``, ``none`` (a regression guard);
    ``issue`` marks the cases listed in issue 18.
    """

    name: str
    kind: str
    build: Callable[[Path], None]
    expect: ExpectFn
    baseline: str | None = None
    between_runs: Callable[[Path], None] | None = None
    max_seconds: float = MAX_SECONDS
    max_mb: int = MAX_MB
    clean_output: bool = False
    must_not_exist: tuple[str, ...] = ()
    holds: Callable[[], frozenset[str]] | None = None
    """sha256 of the pages the case's files hold inside them (a WARC's responses): its
    captures may be of these as well as of the files."""
    issue: bool = False
    fix: str = ""
    note: str = ""


@dataclass(frozen=True)
class Problem:
    """One way a run missed its expectation; ``what`` is one of :data:`PROBLEMS`."""

    what: str
    detail: str

    def __str__(self) -> str:
        return f"{self.what}: {self.detail}"


PROBLEMS = ("hang", "abort", "slow", "memory", "no-summary", "reconcile", "counts",
            "field-missing", "quarantine", "capture-outside-root", "output", "side-effect")


@dataclass
class Run:
    """One CLI run in a subprocess: exit, time, memory, output."""

    args: list[str]
    exit_code: int | None
    signal: int | None
    timed_out: bool
    seconds: float
    cpu_seconds: float
    peak_mb: float
    stdout: str
    stderr: str

    @property
    def summary(self) -> dict[str, Any] | None:
        """The JSON summary printed on stdout, if any."""
        try:
            doc = json.loads(self.stdout)
        except ValueError:
            return None
        return doc if isinstance(doc, dict) else None

    def last_error_line(self) -> str:
        """The last non-blank line of stderr (the exception of an abort)."""
        lines = [ln for ln in self.stderr.splitlines() if ln.strip()]
        return lines[-1][:300] if lines else ""


@dataclass(frozen=True)
class WsFacts:
    """Facts read from the workspace after a run (by a caller allowed to hold SQL)."""

    quarantine_rows: tuple[str, ...] | None = None
    keys_failed: int | None = None
    captures: frozenset[str] = frozenset()


# ------------------------------------------------------------------------ the harness


def darkmap_cli() -> Path:
    """The ``darkmap`` console script next to the running interpreter."""
    return Path(sys.executable).with_name("darkmap")


_LIMITED_EXEC = """\
import json, os, resource, signal, sys
cap, fsize, report = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[4], sys.argv[4:])
while True:
    try:
        _, status, use = os.wait4(pid, 0)
        break
    except InterruptedError:
        continue
with open(report, "w") as fh:
    json.dump({"maxrss_kb": use.ru_maxrss, "cpu": use.ru_utime + use.ru_stime}, fh)
code = os.waitstatus_to_exitcode(status)
if code < 0:
    signal.signal(-code, signal.SIG_DFL)
    os.kill(os.getpid(), -code)
sys.exit(code)
"""
"""Sets the limits, then runs the command as its own child and reports that child's
``wait4`` rusage to a file. The command must not be a direct child of the test process:
Linux carries the RSS high-water mark of the forking process over ``fork`` and ``execve``
into the child's ``ru_maxrss``, so a child of a 1 GB pytest would report at least 1 GB.
This small launcher is what the command is forked from."""


def run_cli(args: list[str], *, timeout: float = TIMEOUT, mem_cap: int = MEM_CAP,
            env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Run:
    """Run ``darkmap ARGS`` in a new session under ``mem_cap`` and ``timeout``.

    Peak memory and CPU are the command's own ``wait4`` rusage (its own and that of the
    workers it waited for), taken by a small launcher process the command is forked
    from, so neither the size of the calling process nor concurrent runs blur them.
    On timeout the whole process group is killed, the run is marked ``timed_out`` and
    its figures are those of the launcher (an upper bound).
    """
    cmd = [str(darkmap_cli()), *args]
    with tempfile.TemporaryDirectory(prefix="darkmap-run-") as tmp, \
            tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        report = Path(tmp) / "rusage.json"
        wrapped = [sys.executable, "-c", _LIMITED_EXEC, str(mem_cap), str(FSIZE_CAP),
                   str(report), *cmd]
        t0 = time.monotonic()
        # a fixed argv and no shell: the CLI under test, with the hostile folder's path
        proc = subprocess.Popen(  # noqa: S603
            wrapped, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=cwd,
            env=dict(env if env is not None else os.environ), start_new_session=True)
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - t0 > timeout:
                timed_out = True
                _kill_group(proc.pid)
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        seconds = time.monotonic() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
        cpu, peak_kb = usage.ru_utime + usage.ru_stime, usage.ru_maxrss
        try:
            own = json.loads(report.read_text())
            cpu, peak_kb = float(own["cpu"]), int(own["maxrss_kb"])
        except (OSError, ValueError, KeyError):
            pass  # killed before it could report: the launcher's (larger) figures stand
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read()[-20000:].decode("utf-8", "replace")
    code = proc.returncode
    return Run(args=cmd, exit_code=None if code < 0 else code,
               signal=-code if code < 0 else None, timed_out=timed_out, seconds=seconds,
               cpu_seconds=cpu, peak_mb=peak_kb / 1024, stdout=stdout, stderr=stderr)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_ingest(paths: list[Path], workspace: Path, **kw: Any) -> Run:
    """``darkmap ingest -w WORKSPACE --json --allow-unrecognised PATHS`` through
    :func:`run_cli` (hostile folders hold files no importer recognises on purpose)."""
    return run_cli(["ingest", "-w", str(workspace), "--init", "--json",
                    "--allow-unrecognised", *map(str, paths)], **kw)


def regular_file_shas(root: Path) -> frozenset[str]:
    """sha256 of every regular file under ``root``, symlinks never followed.

    Walks with directory file descriptors, iteratively, so trees deeper than the
    recursion limit or longer than PATH_MAX are covered too.
    """
    out: set[str] = set()
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    stack = [os.open(root, flags)]
    try:
        while stack:
            dfd = stack.pop()
            try:
                for entry in os.scandir(dfd):
                    st = entry.stat(follow_symlinks=False)
                    if stat.S_ISDIR(st.st_mode):
                        try:
                            stack.append(os.open(entry.name, flags, dir_fd=dfd))
                        except OSError:
                            continue
                    elif stat.S_ISREG(st.st_mode):
                        sha = _sha_at(dfd, entry.name)
                        if sha:
                            out.add(sha)
            finally:
                os.close(dfd)
    finally:
        for dfd in stack:
            os.close(dfd)
    return frozenset(out)


def _sha_at(dfd: int, name: str) -> str | None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dfd)
    except OSError:
        return None
    h = hashlib.sha256()
    with os.fdopen(fd, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def capture_shas(workspace: Path) -> frozenset[str]:
    """Names (sha256) of the files in a workspace's capture store."""
    root = workspace / "captures"
    if not root.is_dir():
        return frozenset()
    return frozenset(p.name for p in root.rglob("*")
                     if p.is_file() and re.fullmatch(r"[0-9a-f]{64}", p.name))


def rmtree(path: Path) -> None:
    """Remove a case folder or workspace: read-only captures, FIFOs, sockets, device
    nodes, and trees deeper than the recursion limit or longer than PATH_MAX.

    Iterative and descriptor-based (``shutil.rmtree`` recurses once per level): every
    subfolder is first moved up to the top folder, so no path ever gets long.
    """
    if not os.path.lexists(path):
        return
    if os.path.islink(path) or not os.path.isdir(path):
        os.unlink(path)
        return
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    os.chmod(path, 0o700)
    top = os.open(path, flags)
    try:
        pending, moved = [e.name for e in os.scandir(top)], 0
        while pending:
            name = pending.pop()
            if not stat.S_ISDIR(os.stat(name, dir_fd=top, follow_symlinks=False).st_mode):
                os.unlink(name, dir_fd=top)
                continue
            sub = os.open(name, flags, dir_fd=top)
            try:
                os.fchmod(sub, 0o700)
                for entry in list(os.scandir(sub)):
                    if entry.is_dir(follow_symlinks=False):
                        moved += 1
                        up = f".hostile-rm-{os.getpid()}-{moved}"
                        os.rename(entry.name, up, src_dir_fd=sub, dst_dir_fd=top)
                        pending.append(up)
                    else:
                        os.unlink(entry.name, dir_fd=sub)
            finally:
                os.close(sub)
            os.rmdir(name, dir_fd=top)
    finally:
        os.close(top)
    os.rmdir(path)


# ------------------------------------------------------------------------------ check

_BAD_OUTPUT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def check(case: HostileCase, expects: tuple[Expect, ...], run: Run,
          facts: WsFacts | None = None, allowed_shas: frozenset[str] | None = None
          ) -> list[Problem]:
    """Every way ``run`` misses the case: hang, abort, time, memory, accounting...

    The accounting passes when any alternative in ``expects`` matches exactly; when
    none does, the problems of the closest alternative are reported.
    """
    probs = _run_problems(case, run)
    summary = run.summary
    if summary is None:
        if not run.timed_out and run.exit_code == 0:
            probs.append(Problem("no-summary", "stdout is not a JSON summary"))
        return probs + _side_problems(case, run, facts, allowed_shas)
    t = summary.get("totals", {})
    parts = sum(int(t.get(k, 0)) for k in ("stored", "quarantined", "skipped"))
    if int(t.get("read", 0)) != parts:
        probs.append(Problem("reconcile", f"read {t.get('read', 0)} != stored + quarantined"
                                          f" + skipped = {parts}"))
    out = Outcome(summary, facts.quarantine_rows if facts else None,
                  facts.keys_failed if facts else None)
    best: list[Problem] | None = None
    for exp in expects:
        miss = _expect_problems(exp, out)
        if not miss:
            best = []
            break
        if best is None or len(miss) < len(best):
            best = miss
    return probs + (best or []) + _side_problems(case, run, facts, allowed_shas)


def _run_problems(case: HostileCase, run: Run) -> list[Problem]:
    probs = []
    if run.timed_out:
        probs.append(Problem("hang", f"killed after {run.seconds:.0f} s "
                                     f"(cpu {run.cpu_seconds:.1f} s, {run.peak_mb:.0f} MB)"))
    elif run.exit_code != 0:
        why = f"signal {run.signal}" if run.signal else f"exit {run.exit_code}"
        probs.append(Problem("abort", f"{why}: {run.last_error_line()}"))
    if not run.timed_out and run.seconds > case.max_seconds:
        probs.append(Problem("slow", f"{run.seconds:.1f} s > {case.max_seconds:.0f} s "
                                     f"(cpu {run.cpu_seconds:.1f} s)"))
    if run.peak_mb > case.max_mb:
        probs.append(Problem("memory", f"peak {run.peak_mb:.0f} MB > {case.max_mb} MB"))
    return probs


def _expect_problems(exp: Expect, out: Outcome) -> list[Problem]:
    probs: list[Problem] = []
    got = {"read": out.read, "stored": out.stored, "quarantined": out.quarantined,
           "skipped": out.skipped}
    want = {"read": exp.read, "stored": exp.stored, "quarantined": exp.quarantined,
            "skipped": exp.skipped}
    diff = [f"{k} {got[k]} (want {v})" for k, v in want.items() if v is not None and got[k] != v]
    if exp.min_stored is not None and out.stored < exp.min_stored:
        diff.append(f"stored {out.stored} (want >= {exp.min_stored})")
    if diff:
        probs.append(Problem("counts", ", ".join(diff) + (f" [{exp.label}]" if exp.label else "")))
    if exp.records is not None:
        rec = {k: v for k, v in out.records.items() if v}
        want_rec = {k: v for k, v in exp.records.items() if v}
        if rec != want_rec:
            probs.append(Problem("counts", f"records {rec} (want {want_rec})"))
    for key, value in exp.totals.items():
        if key not in out.totals:
            probs.append(Problem("field-missing", f"totals.{key} (proposed; want {value})"))
        elif out.totals[key] != value:
            probs.append(Problem("counts", f"totals.{key} {out.totals[key]} (want {value})"))
    if exp.limit is not None:
        limits = out.summary.get("limits")
        if not isinstance(limits, dict):
            probs.append(Problem("field-missing", f"limits (proposed; want a key ~ {exp.limit!r})"))
        elif not any(re.search(exp.limit, str(k)) for k in limits):
            probs.append(Problem("counts", f"limits {limits} (want a key ~ {exp.limit!r})"))
    if exp.skip_reason is not None:
        keys = list(out.summary.get("skipped_by_page_type", {}))
        if not any(re.search(exp.skip_reason, k) for k in keys):
            probs.append(Problem("counts", f"no skip reason ~ {exp.skip_reason!r} in {keys}"))
    if exp.quarantine is not None and out.quarantine_rows is not None:
        probs += _quarantine_problems(exp.quarantine, out.quarantine_rows)
    if exp.keys_failed is not None and out.keys_failed is not None \
            and out.keys_failed != exp.keys_failed:
        probs.append(Problem("quarantine", f"`darkmap keys` failed {out.keys_failed} "
                                           f"(want {exp.keys_failed})"))
    return probs


def _quarantine_problems(patterns: tuple[str, ...], rows: tuple[str, ...]) -> list[Problem]:
    left = list(rows)
    missing = []
    for pat in patterns:
        hit = next((r for r in left if re.search(pat, r)), None)
        if hit is None:
            missing.append(pat)
        else:
            left.remove(hit)
    probs = []
    if missing:
        probs.append(Problem("quarantine", f"no quarantine row ~ {missing[:3]!r} "
                                           f"({len(rows)} rows: {_short(rows)})"))
    if left:
        probs.append(Problem("quarantine", f"{len(left)} unexpected quarantine rows: "
                                           f"{_short(tuple(left))}"))
    return probs


def _short(rows: tuple[str, ...]) -> str:
    return "; ".join(r[:160] for r in rows[:3]) + (" ..." if len(rows) > 3 else "")


def _side_problems(case: HostileCase, run: Run, facts: WsFacts | None,
                   allowed: frozenset[str] | None) -> list[Problem]:
    probs = []
    if facts is not None and allowed is not None:
        outside = facts.captures - allowed - (case.holds() if case.holds else frozenset())
        if outside:
            names = [_known_outside(s) for s in sorted(outside)]
            probs.append(Problem("capture-outside-root",
                                 f"{len(outside)} capture(s) of no regular file inside the "
                                 f"root: {', '.join(names[:3])}"))
    if case.clean_output:
        bad = _BAD_OUTPUT.findall(run.stdout + run.stderr)
        if bad:
            probs.append(Problem("output", f"{len(bad)} raw control/bidi characters reach the "
                                           f"terminal: {sorted(set(map(ascii, bad)))[:6]}"))
    for p in case.must_not_exist:
        if os.path.lexists(p):
            probs.append(Problem("side-effect", f"{p} exists"))
    return probs


def _known_outside(sha: str) -> str:
    for p in ("/etc/passwd", "/etc/hostname", "/etc/hosts"):
        try:
            if hashlib.sha256(Path(p).read_bytes()).hexdigest() == sha:
                return f"{sha[:12]} (= {p})"
        except OSError:
            continue
    return sha[:12]


# ------------------------------------------------------------------ independent parsers


@dataclass(frozen=True)
class DumpRow:
    """A row tuple of a mysqldump INSERT: statement and tuple numbers, byte span."""

    statement: int
    row: int
    start: int
    end: int

    @property
    def unit(self) -> str:
        """The unit name the sqldump importer gives this row."""
        return f"insert {self.statement} row {self.row}"


_INSERT_LINE = re.compile(rb"^INSERT INTO [^\n]*? VALUES ", re.MULTILINE)
_TUPLE_SPECIAL = re.compile(rb"[()']")
_STRING_STOP = re.compile(rb"[\\']")


def dump_rows(raw: bytes) -> list[DumpRow]:
    """Every row tuple of a mysqldump file (one INSERT per line), found independently of
    darkmap's own parser: quotes, backslash escapes and doubled quotes respected."""
    rows: list[DumpRow] = []
    for stmt, m in enumerate(_INSERT_LINE.finditer(raw), 1):
        pos, r = m.end(), 0
        while True:
            if raw[pos:pos + 1] != b"(":
                raise ValueError(f"statement {stmt}: no tuple at byte {pos}")
            end = _tuple_end(raw, pos)
            r += 1
            rows.append(DumpRow(stmt, r, pos, end))
            sep = raw[end:end + 1]
            if sep == b",":
                pos = end + 1
            elif sep == b";":
                break
            else:
                raise ValueError(f"statement {stmt} row {r}: {sep!r} after the tuple")
    return rows


def _tuple_end(raw: bytes, pos: int) -> int:
    depth, i = 0, pos
    while True:
        m = _TUPLE_SPECIAL.search(raw, i)
        if m is None:
            raise ValueError(f"tuple at byte {pos} never closes")
        if m.group() == b"'":
            i = _string_end(raw, m.end())
            continue
        depth += 1 if m.group() == b"(" else -1
        i = m.end()
        if depth == 0:
            return i


def _string_end(raw: bytes, i: int) -> int:
    while True:
        m = _STRING_STOP.search(raw, i)
        if m is None:
            raise ValueError("string never closes")
        if m.group() == b"\\" or raw[m.end():m.end() + 1] == b"'":
            i = m.end() + 1  # an escaped character or a doubled quote
        else:
            return m.end()


_VALUE = re.compile(rb"'((?:[^'\\]|\\.|'')*)'|(-?\d+(?:\.\d+)?)|(NULL)", re.DOTALL)


def tuple_values(text: bytes) -> list[bytes | None] | None:
    """The values of one ``(v, v, ...)`` tuple under MySQL's rules, or ``None`` if it is
    not exactly one well-formed tuple (strings, numbers, NULL)."""
    if not text.startswith(b"(") or not text.endswith(b")"):
        return None
    pos, end, vals = 1, len(text) - 1, []
    while True:
        m = _VALUE.match(text, pos)
        if m is None:
            return None
        vals.append(None if m.group(3) else m.group(1) if m.group(1) is not None
                    else m.group(2))
        pos = m.end()
        if pos == end:
            return vals
        if text[pos:pos + 1] != b",":
            return None
        pos += 1


def tuple_value_spans(text: bytes) -> list[tuple[int, int]]:
    """(start, end) of each value token of a well-formed tuple (quotes included),
    relative to the tuple's ``(``; empty if ``text`` is not one well-formed tuple."""
    if tuple_values(text) is None:
        return []
    spans, pos = [], 1
    while True:
        m = _VALUE.match(text, pos)
        if m is None:  # pragma: no cover - tuple_values accepted the same text
            return []
        spans.append((m.start(), m.end()))
        pos = m.end() + 1
        if m.end() == len(text) - 1:
            return spans


@dataclass(frozen=True)
class BlkFrame:
    """One magic-framed block of a blk file: offset of the magic and payload length."""

    offset: int
    size: int

    @property
    def end(self) -> int:
        """Offset after the frame."""
        return self.offset + 8 + self.size


def blk_frames(raw: bytes) -> list[BlkFrame]:
    """The frames of a clean blk file (magic, 4-byte length, block), in order."""
    frames, pos = [], 0
    while pos + 8 <= len(raw) and raw[pos:pos + 4] != b"\0\0\0\0":
        size = int.from_bytes(raw[pos + 4:pos + 8], "little")
        frames.append(BlkFrame(pos, size))
        pos += 8 + size
    return frames


# ------------------------------------------------------------------------- real data


def data_dir() -> Path:
    """``$DARKMAP_DATA`` or ``../shared/data`` next to the repository."""
    env = os.environ.get("DARKMAP_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[4] / "shared" / "data"


@lru_cache(maxsize=64)
def _real(data: Path, rel: str) -> bytes:
    return (data / rel).read_bytes()


_DREAM_LISTING = "pages/dream/listings/listing_0.html"
_DREAM_LISTING_2 = "pages/dream/listings/listing_1.html"
_DREAM_SELLER = "pages/dream/sellers/seller_3.html"
_DREAM_SQL = "seized/dream-2016-sellers.sql"
_HANSA = "listings/hansa-2016-12.csv"
_AGORA = "listings/agora-2014/Ag2014-sscSynth.csv"
_BLOCKS = "bitcoin/blocks1-256"
_BLK5 = "bitcoin/blk_0_to_4.dat"
_HEADERS = "bitcoin/blockheaders-mainnet-1-11.txt"
_MEGATX = "bitcoin/megatx.bin"
_UTXO = "bitcoin/277647.utxostore"
_CSV_LINES = 300

TAGPACK = """\
title: Exchange deposit addresses seen in case 42
creator: analyst@example.org
category: exchange
confidence: ownership
tags:
  - address: 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa
    label: Genesis (test)
    source: block explorer
  - address: bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq
    label: Example exchange hot wallet
    source: subpoena return
  - address: 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb
    label: mistyped address
"""
"""A small TagPack: 3 tags, 2 valid, 1 with a bad checksum (as tests/test_chain_tagpack)."""


def _real_data_as_expected(ok: bool, what: str) -> None:
    """Stop a builder whose real input no longer looks as the case assumes."""
    if not ok:
        raise RuntimeError(f"the real data changed: {what}")


def _write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def _stream(path: Path, parts: Iterator[bytes]) -> None:
    """Write a large file piece by piece (the builder never holds it whole)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.writelines(parts)


def _repeat(chunk: bytes, total: int) -> Iterator[bytes]:
    block = chunk * max(1, (1 << 20) // len(chunk))
    left = total
    while left > 0:
        piece = block[:left] if left < len(block) else block
        yield piece
        left -= len(piece)


def _hansa_lines(data: Path) -> list[bytes]:
    return _real(data, _HANSA).splitlines(keepends=True)[:_CSV_LINES]


def _agora_lines(data: Path) -> list[bytes]:
    return _real(data, _AGORA).splitlines(keepends=True)[:_CSV_LINES]


@lru_cache(maxsize=4)
def _dump_layout(data: Path) -> tuple[DumpRow, ...]:
    return tuple(dump_rows(_real(data, _DREAM_SQL)))


def _dump_row(data: Path, statement: int, row: int) -> DumpRow:
    return next(r for r in _dump_layout(data) if r.statement == statement and r.row == row)


def _string_spans(raw: bytes, row: DumpRow) -> list[tuple[int, int]]:
    """(start, end) of the contents of each quoted value of a dump row."""
    spans: list[tuple[int, int]] = []
    i = row.start
    while True:
        m = _TUPLE_SPECIAL.search(raw, i, row.end)
        if m is None:
            return spans
        if m.group() == b"'":
            end = _string_end(raw, m.end())
            spans.append((m.end(), end - 1))
            i = end
        else:
            i = m.end()


# Column order of dnm_dream: seqNo, seller_name, member_since, contracts, contact, pgp,
# level, description, positive_feedbacks, negative_feedbacks, market_name (ten strings
# after the number).
_COL_NAME, _COL_CONTRACTS, _COL_PGP, _COL_DESCRIPTION = 0, 2, 4, 6
_PWNED = str(Path(tempfile.gettempdir()) / "darkmap-hostile-pwned")


def _replace_in_row(data: Path, statement: int, row: int, col: int,
                    payload: Callable[[bytes], bytes]) -> bytes:
    raw = _real(data, _DREAM_SQL)
    r = _dump_row(data, statement, row)
    a, b = _string_spans(raw, r)[col]
    return raw[:a] + payload(raw[a:b]) + raw[b:]


# ---------------------------------------------------------------------------- builders


def _b_baseline_pages(data: Path, folder: Path) -> None:
    _write(folder / "good" / "listing_0.html", _real(data, _DREAM_LISTING))
    _write(folder / "good" / "seller_3.html", _real(data, _DREAM_SELLER))


def _b_file(rel: str, name: str, data: Path, folder: Path) -> None:
    _write(folder / name, _real(data, rel))


def _b_text(name: str, text: str, data: Path, folder: Path) -> None:
    _write(folder / name, text)


def _b_csv(kind: str, data: Path, folder: Path) -> None:
    lines = _hansa_lines(data) if kind == "hansa" else _agora_lines(data)
    name = "hansa-2016-12.csv" if kind == "hansa" else "Ag2014-sscSynth.csv"
    _write(folder / name, b"".join(lines))


BASELINES: dict[str, Baseline] = {}


def _baselines(data: Path) -> dict[str, Baseline]:
    defs = {
        "dream_pages": partial(_b_baseline_pages, data),
        "dream_listing": partial(_b_file, _DREAM_LISTING, "listing_0.html", data),
        "dream_seller": partial(_b_file, _DREAM_SELLER, "seller_3.html", data),
        "dream_sql": partial(_b_file, _DREAM_SQL, "dream-2016-sellers.sql", data),
        "hansa_csv": partial(_b_csv, "hansa", data),
        "agora_csv": partial(_b_csv, "agora", data),
        "blocks": partial(_b_file, _BLOCKS, "blocks1-256", data),
        "blk5": partial(_b_file, _BLK5, "blk_0_to_4.dat", data),
        "headers": partial(_b_file, _HEADERS, "blockheaders-mainnet-1-11.txt", data),
        "tagpack": partial(_b_text, "exchanges.yaml", TAGPACK, data),
        "warc": partial(_b_warc, lambda d: _warc(_warc_pages(d)), data),
    }
    return {k: Baseline(k, v) for k, v in defs.items()}


# -- expectation helpers


def _need(b: Outcome | None) -> Outcome:
    """The baseline outcome a case's expectation is derived from."""
    if b is None:
        raise ValueError("this case's expectation needs its baseline's outcome")
    return b


def _rec(b: Outcome | None) -> dict[str, int] | None:
    """The baseline's stored records by type (None without a baseline)."""
    return b.records if b is not None else None


def _same(b: Outcome | None, records: bool = True, **kw: Any) -> tuple[Expect, ...]:
    """Exactly the baseline's counts (and records)."""
    b = _need(b)
    return (Expect(read=b.read, stored=b.stored, quarantined=b.quarantined, skipped=b.skipped,
                   records=b.records if records else None, label="as the clean file", **kw),)


def _plus(b: Outcome | None, stored: int = 0, q: int = 0, s: int = 0, label: str = "",
          records: Mapping[str, int] | None = None, **kw: Any) -> Expect:
    """The baseline plus some units."""
    b = _need(b)
    return Expect(read=b.read + stored + q + s, stored=b.stored + stored,
                  quarantined=b.quarantined + q, skipped=b.skipped + s, records=records,
                  label=label, **kw)


def _lost_one(b: Outcome | None, limit: str = "", skip_reason: str | None = None,
              records: bool = True) -> tuple[Expect, ...]:
    """The baseline plus one unit, skipped (not recognised / refused) or quarantined
    with a limit named."""
    rec = b.records if (b is not None and records) else None
    return (_plus(b, s=1, label="skipped", skip_reason=skip_reason, records=rec),
            _plus(b, q=1, label=f"quarantined, limit {limit or 'named'}",
                  limit=limit or r"\w", records=rec))


def _page_quarantined(b: Outcome | None, limit: str) -> Expect:
    """The single page quarantined instead of stored, with the limit named."""
    b = _need(b)
    return Expect(read=b.read, stored=b.stored - 1, quarantined=b.quarantined + 1,
                  skipped=b.skipped, limit=limit, label=f"page quarantined, limit {limit}")


def _fs_refused(b: Outcome | None) -> tuple[Expect, ...]:
    """A path that is not a regular file inside the root: refused, reported as skipped."""
    return (_plus(b, s=1, records=_rec(b), label="refused and reported",
                  skip_reason=r"(?i)symlink|link|not a regular file|fifo|device|socket|"
                              r"outside|refused|loop"),)


def _rows_lost(b: Outcome | None, units: list[str], label: str, **kw: Any) -> Expect:
    """The clean dump's units, the given ones quarantined (one row each)."""
    b = _need(b)
    return Expect(read=b.read, stored=b.stored - len(units), quarantined=len(units),
                  skipped=b.skipped,
                  quarantine=tuple(rf"^{re.escape(u)}\b" for u in units), label=label, **kw)


# -- pages


def _page_with_description(data: Path, payload: bytes) -> bytes:
    page = _real(data, _DREAM_LISTING)
    marker = b"<pre>LOOKING FOR"
    _real_data_as_expected(marker in page, "Dream listing_0 description marker")
    return page.replace(marker, b"<pre>" + payload + b"\nLOOKING FOR", 1)


def _page_with_pgp(data: Path, text: bytes) -> bytes:
    page = _real(data, _DREAM_SELLER)
    start = page.index(b'<pre class="code">') + len(b'<pre class="code">')
    end = page.index(b"</pre>", start)
    return page[:start] + text + page[end:]


def _b_companions_plus(name: str, content: Callable[[Path], bytes], data: Path,
                       folder: Path) -> None:
    _b_baseline_pages(data, folder)
    _write(folder / name, content(data))


def _b_companions_stream(name: str, parts: Callable[[Path], Iterator[bytes]], data: Path,
                         folder: Path) -> None:
    _b_baseline_pages(data, folder)
    _stream(folder / name, parts(data))


def _b_single(name: str, content: Callable[[Path], bytes], data: Path, folder: Path) -> None:
    _write(folder / name, content(data))


def _nested_divs(n: int, data: Path) -> Iterator[bytes]:
    yield b"<html><head><title>nested</title></head><body>"
    yield from _repeat(b"<div>", 5 * n)
    yield b"deep"
    yield from _repeat(b"</div>", 6 * n)
    yield b"</body></html>"


def _in_listing_nested(n: int, data: Path) -> bytes:
    return _page_with_description(data, b"<span>" * n + b"deep" + b"</span>" * n)


def _billion_laughs(data: Path) -> bytes:
    ents = ['<!ENTITY lol "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)]
    head = ('<?xml version="1.0"?>\n<!DOCTYPE html [\n' + "\n".join(ents) + "\n]>\n").encode()
    return head + _page_with_description(data, b"&lol9;")


def _script_style(data: Path) -> bytes:
    page = _real(data, _DREAM_LISTING)
    js = b"<script>" + b"var a='</scr'+'ipt>';/*<div class=viewProduct>*/\n" * 60_000 + \
         b"</script>"
    css = b"<style>" + b".viewProduct{content:'</style>'}\n" * 60_000 + b"</style>"
    return page.replace(b"<head>", b"<head>" + js + css, 1)


def _huge_attribute(data: Path) -> bytes:
    return _page_with_description(data, b'<div title="' + b"A" * (6 << 20) + b'">x</div>')


def _many_attributes(data: Path) -> bytes:
    attrs = b" ".join(b'a%d="%d"' % (i, i) for i in range(10_000))
    return _page_with_description(data, b"<div " + attrs + b">x</div>")


def _huge_title(data: Path) -> bytes:
    page = _real(data, _DREAM_LISTING)
    m = re.search(rb'(<div class="title">)([^<]*)(</div>)', page)
    if m is None:
        raise RuntimeError("the real data changed: no title div in Dream listing_0")
    return page[:m.end(1)] + b"X" * 200_000 + m.group(2) + page[m.start(3):]


def _handle_page(handle: str, data: Path) -> bytes:
    page = _real(data, _DREAM_LISTING)
    m = re.search(rb"contactMember\?member=([^\"&#]+)", page)
    if m is None:
        raise RuntimeError("the real data changed: no vendor link in Dream listing_0")
    old = m.group(1)
    return page.replace(b">" + old + b"<", b">" + handle.encode() + b"<").replace(
        b"member=" + old, b"member=" + handle.encode("utf-8"))


def _over_cap(data: Path) -> Iterator[bytes]:
    yield _real(data, _DREAM_LISTING)
    yield b"<!-- "
    yield from _repeat(b"padding ", 9 << 20)
    yield b" -->"


def _utf16(content: bytes) -> bytes:
    return codecs.BOM_UTF16_LE + content.decode("utf-8", "replace").encode("utf-16-le")


def _sprinkle(content: bytes, junk: bytes, every: int, start: int = 2000) -> bytes:
    """Insert ``junk`` every ``every`` bytes after ``start`` (inside text, not tags)."""
    out, last = [], 0
    for pos in range(start, len(content), every):
        gt = content.rfind(b">", last, pos)
        lt = content.rfind(b"<", last, pos)
        if gt > lt >= 0 or (gt >= 0 > lt):  # between tags: safe to insert
            out.append(content[last:pos])
            out.append(junk)
            last = pos
    out.append(content[last:])
    return b"".join(out)


def _pages_cases(data: Path) -> list[HostileCase]:
    cp = partial(_b_companions_plus)
    lp = _DREAM_LISTING
    return [
        HostileCase(
            "pages_brackets_100k", "pages",
            partial(cp, "listing_9.html", lambda d: b"[" * 100_000, data),
            lambda b: _lost_one(b, r"depth|nest"), "dream_pages", issue=True,
            fix="isolation", note="RecursionError in the bitcoin sniff (json.loads) aborts"),
        HostileCase(
            "pages_nested_div_200k", "pages",
            partial(_b_companions_stream, "nested.html", partial(_nested_divs, 200_000), data),
            lambda b: _lost_one(b, r"depth|nest|time"), "dream_pages", issue=True,
            fix="isolation", note="over 120 s in the HTML parser (issue)"),
        HostileCase(
            "pages_nested_span_100k_in_listing", "pages",
            partial(_b_single, "listing_0.html", partial(_in_listing_nested, 100_000), data),
            lambda b: (*_same(b), _page_quarantined(b, r"depth|nest")),
            "dream_listing", fix="isolation"),
        HostileCase(
            "pages_wide_80k_links_in_listing", "pages",
            partial(_b_single, "listing_0.html", lambda d: _page_with_description(
                d, b"<a>x" * 80_000), data),
            lambda b: (_page_quarantined(b, "element_siblings"),), "dream_listing",
            fix="isolation",
            note="found by fuzzing: in a Hansa page 80,000 took 20 s and 200,000 minutes "
                 "(CSS sibling queries, in C: past the time limit); refused on any page"),
        HostileCase(
            "pages_pgp_begin_dashes_50k", "pages",
            partial(_b_single, "listing_0.html", lambda d: _page_with_description(
                d, b"BEGIN PGP PUBLIC KEY BLOCK" + b"-" * 50_000), data),
            _same, "dream_listing", issue=True, fix="regex",
            note="46 s in the issue: extract/pgp.py _BEGIN_RE '-{2,}\\s*BEGIN' over dashes"),
        HostileCase(
            "pages_pgp_begin_dashes_190k", "pages",
            partial(_b_single, "listing_0.html", lambda d: _page_with_description(
                d, b"BEGIN PGP PUBLIC KEY BLOCK" + b"-" * 190_000), data),
            _same, "dream_listing", issue=True, fix="regex"),
        HostileCase(
            "pages_contact_u2028_40k", "pages",
            partial(_b_single, "listing_0.html", lambda d: _page_with_description(
                d, b"jabber" + "\u2028".encode() * 40_000 + b"x"), data),
            _same, "dream_listing", fix="regex",
            note="U+2028 is \\s for re but not collapsed by clean_text"),
        HostileCase(
            "pages_contact_spaces_40k", "pages",
            partial(_b_single, "listing_0.html", lambda d: _page_with_description(
                d, b"wickr" + b" " * 40_000 + b"x"), data),
            _same, "dream_listing", issue=True, fix="regex"),
        HostileCase(
            "pages_whitespace_flood_1m", "pages",
            partial(_b_single, "listing_0.html", lambda d: _page_with_description(
                d, b" \n\t" * 350_000 + b"x"), data),
            _same, "dream_listing", fix="regex"),
        HostileCase(
            "pages_utf8_bom", "pages",
            partial(_b_single, "listing_0.html", lambda d: codecs.BOM_UTF8 + _real(d, lp), data),
            _same, "dream_listing", fix="none"),
        HostileCase(
            "pages_utf16_bom", "pages",
            partial(_b_single, "listing_0.html", lambda d: _utf16(_real(d, lp)), data),
            _same, "dream_listing", fix="none"),
        HostileCase(
            "pages_invalid_utf8", "pages",
            partial(_b_single, "listing_0.html",
                    lambda d: _sprinkle(_real(d, lp), b"\xff\xfe\xc3\x28\xed\xa0\x80", 997), data),
            _same, "dream_listing"),
        HostileCase(
            "pages_nul_bytes", "pages",
            partial(_b_single, "listing_0.html",
                    lambda d: _sprinkle(_real(d, lp), b"\x00\x00", 1009), data),
            _same, "dream_listing"),
        HostileCase(
            "pages_crlf", "pages",
            partial(_b_single, "listing_0.html",
                    lambda d: _real(d, lp).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"), data),
            _same, "dream_listing"),
        HostileCase(
            "pages_cr_only", "pages",
            partial(_b_single, "listing_0.html",
                    lambda d: _real(d, lp).replace(b"\r\n", b"\n").replace(b"\n", b"\r"), data),
            _same, "dream_listing"),
        HostileCase(
            "pages_bytes_repr", "pages",
            partial(_b_single, "listing_0.html", lambda d: repr(_real(d, lp)).encode(), data),
            _same, "dream_listing"),
        HostileCase(
            "pages_billion_laughs_xhtml", "pages",
            partial(_b_single, "listing_0.html", _billion_laughs, data),
            _same, "dream_listing"),
        HostileCase(
            "pages_script_style_payload", "pages",
            partial(_b_single, "listing_0.html", _script_style, data),
            _same, "dream_listing"),
        HostileCase(
            "pages_huge_attribute_6mb", "pages",
            partial(_b_single, "listing_0.html", _huge_attribute, data),
            _same, "dream_listing"),
        HostileCase(
            "pages_10k_attributes", "pages",
            partial(_b_single, "listing_0.html", _many_attributes, data),
            _same, "dream_listing"),
        HostileCase(
            "pages_title_200k", "pages",
            partial(_b_single, "listing_0.html", _huge_title, data),
            _same, "dream_listing",
            note="the report renders a 200,000-character title in full (issue)"),
        HostileCase(
            "pages_rtl_control_handle", "pages",
            partial(_b_single, "listing_0.html",
                    partial(_handle_page, "evil\u202egnp.exe\x1b[2J\x07"), data),
            _same, "dream_listing", clean_output=True, fix="output",
            note="RTL override and escape sequences in a vendor handle"),
        HostileCase(
            "pages_formula_handle", "pages",
            partial(_b_single, "listing_0.html",
                    partial(_handle_page, "=HYPERLINK(\"http://x\",\"y\")"), data),
            _same, "dream_listing"),
        HostileCase(
            "pages_over_8mb_cap", "pages",
            partial(_b_companions_stream, "listing_big.html", _over_cap, data),
            lambda b: (_plus(b, stored=1, label="stored, the cut recorded",
                             quarantine=(r"^page#truncated",)),), "dream_pages", fix="none"),
        HostileCase(
            "pages_empty_file", "pages",
            partial(cp, "listing_9.html", lambda d: b"", data),
            lambda b: (_plus(b, s=1, records=_rec(b),
                             skip_reason=r"(?i)no importer|empty"),), "dream_pages"),
        HostileCase(
            "pages_truncated_gzip", "pages",
            partial(cp, "listing_9.html.gz",
                    lambda d: gzip.compress(_real(d, _DREAM_LISTING_2), mtime=0)[:3000], data),
            lambda b: (_plus(b, s=1, records=_rec(b),
                             skip_reason=r"(?i)no importer|gzip"),), "dream_pages",
            note="gzip is not read by any importer: a skipped unit"),
        HostileCase(
            "pages_rerun_new_vs_already", "pages",
            _baseline_builder(data, "dream_pages"),
            lambda b: (Expect(read=b.read, quarantined=b.quarantined, skipped=b.skipped,
                              totals={"files_already_ingested": 2, "stored_new": 0,
                                      "already_stored": b.stored},
                              label="second run stores nothing new") if b else Expect(),),
            "dream_pages", between_runs=lambda f: None, issue=True, fix="accounting",
            note="a rerun that stores nothing reports everything as stored (issue)"),
        HostileCase(
            "pages_rerun_one_added", "pages",
            _baseline_builder(data, "dream_pages"),
            lambda b: (Expect(read=b.read + 1, totals={"files_already_ingested": 2,
                                                       "stored_new": 1,
                                                       "already_stored": b.stored},
                              label="one new page") if b else Expect(),),
            "dream_pages",
            between_runs=lambda f: _write(f / "new" / "listing_1.html",
                                          _real(data, _DREAM_LISTING_2)),
            issue=True, fix="accounting"),
    ]


def _baseline_builder(data: Path, name: str) -> Callable[[Path], None]:
    return _baselines(data)[name].build


# -- pgp


_BAD_BLOCK = (b"-----BEGIN PGP PUBLIC KEY BLOCK-----\nVersion: GnuPG v1\n\n"
              b"mQINBFXMxFkBEADR81/Scer!!!!notbase64!!!!\n=abcd\n"
              b"-----END PGP PUBLIC KEY BLOCK-----\n")


def _real_block(data: Path) -> bytes:
    page = _real(data, _DREAM_SELLER)
    start = page.index(b"-----BEGIN PGP PUBLIC KEY BLOCK-----")
    end = page.index(b"-----END PGP PUBLIC KEY BLOCK-----") + 34
    return page[start:end]


def _truncated_block(data: Path) -> bytes:
    """The vendor's real block cut inside its primary key packet (4 base64 lines kept)."""
    lines = _real_block(data).split(b"\n")
    return b"\n".join(lines[:6] + [b"-----END PGP PUBLIC KEY BLOCK-----"])


def _huge_block(size: int) -> bytes:
    """An armored block of ``size`` bytes of base64 whose first packet byte is invalid."""
    body = base64.b64encode(b"\0" + random.Random(18).randbytes(size * 3 // 4))
    lines = b"\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    return (b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n" + lines
            + b"\n-----END PGP PUBLIC KEY BLOCK-----")


def _pgp_fail(b: Outcome | None, n: int = 1, keys: int = 0) -> tuple[Expect, ...]:
    """The vendor page stored, its keys parsed, ``n`` failed blocks quarantined (named
    as the page's PGP sub-unit, so counted by ``darkmap keys``)."""
    b = _need(b)
    rec = dict(b.records)
    rec["pgpkey"] = keys
    return (Expect(read=b.read, stored=b.stored, quarantined=b.quarantined, skipped=b.skipped,
                   records=rec, quarantine=tuple([r"(?i)^page.*pgp"] * n),
                   keys_failed=n, label=f"{n} failed PGP block(s) quarantined"),)


def _pgp_cases(data: Path) -> list[HostileCase]:
    seller = partial(_b_single, "seller_3.html")
    return [
        HostileCase(
            "pgp_page_bad_base64", "pgp",
            partial(seller, lambda d: _page_with_pgp(d, _BAD_BLOCK), data),
            _pgp_fail, "dream_seller", issue=True, fix="resync",
            note="no quarantine row, `darkmap keys` reports 0 failures (issue)"),
        HostileCase(
            "pgp_page_truncated_block", "pgp",
            partial(seller, lambda d: _page_with_pgp(d, _truncated_block(d)), data),
            _pgp_fail, "dream_seller", issue=True, fix="resync"),
        HostileCase(
            "pgp_page_good_and_bad_block", "pgp",
            partial(seller, lambda d: _page_with_pgp(d, _real_block(d) + b"\n" + _BAD_BLOCK),
                    data),
            lambda b: _pgp_fail(b, 1, keys=1), "dream_seller", fix="resync"),
        HostileCase(
            "pgp_page_1000_bad_blocks", "pgp",
            partial(seller, lambda d: _page_with_pgp(d, _BAD_BLOCK * 1000), data),
            lambda b: _pgp_fail(b, 1000), "dream_seller", fix="resync"),
        HostileCase(
            "pgp_page_begin_then_dashes_50k", "pgp",
            partial(seller, lambda d: _page_with_pgp(
                d, b"-----BEGIN PGP PUBLIC KEY BLOCK-----" + b"-" * 50_000), data),
            _pgp_fail, "dream_seller", issue=True, fix="resync",
            note="a real BEGIN line then dashes: fast here, but the failed block is not counted"),
        HostileCase(
            "pgp_page_huge_block_5mb", "pgp",
            partial(seller, lambda d: _page_with_pgp(d, _huge_block(5 << 20)), data),
            _pgp_fail, "dream_seller", fix="resync"),
        HostileCase(
            "pgp_sql_bad_block", "pgp",
            partial(_b_single, "dream-2016-sellers.sql", lambda d: _replace_in_row(
                d, 2, 40, _COL_PGP, lambda v: v[:120] + b"!!!!" + v[140:]), data),
            lambda b: (Expect(read=b.read, stored=b.stored, quarantined=b.quarantined,
                              skipped=b.skipped,
                              keys_failed=(b.keys_failed or 0) + 1,
                              label="row stored, its key block quarantined")
                       if b else Expect(),),
            "dream_sql", fix="none"),
    ]


# -- csv


def _csv_with(kind: str, edits: dict[int, Callable[[bytes], bytes]], data: Path) -> bytes:
    """The real CSV slice with some lines (1-based) rewritten."""
    lines = list(_hansa_lines(data) if kind == "hansa" else _agora_lines(data))
    for n, fn in edits.items():
        lines[n - 1] = fn(lines[n - 1])
    return b"".join(lines)


def _hansa_field(line: bytes, index: int, value: bytes) -> bytes:
    fields = line.rstrip(b"\r\n").split(b'", "')
    fields[index] = value
    return b'", "'.join(fields) + b"\n"


def _b_csv_file(kind: str, content: Callable[[Path], bytes], data: Path, folder: Path) -> None:
    name = "hansa-2016-12.csv" if kind == "hansa" else "Ag2014-sscSynth.csv"
    _write(folder / name, content(data))


def _agora_days(data: Path, days: bytes) -> bytes:
    """The Agora slice with its first "N days ago" made ``days`` days ago."""
    text = b"".join(_agora_lines(data))
    m = re.search(rb" \d+ days? ago ", text)
    if m is None:
        raise RuntimeError("the real data changed: an Agora feedback 'N days ago'")
    return text[:m.start()] + b" " + days + b" days ago " + text[m.end():]


def _agora_feedback(data: Path, payload: bytes) -> bytes:
    """The Agora slice with ``payload`` at the start of its second feedback text."""
    text = b"".join(_agora_lines(data))
    marker = b'," Feedbacks: '
    first = text.index(marker)
    at = text.index(marker, first + 1) + len(marker)
    return text[:at] + payload + text[at:]


def _drop_closing_quote(line: bytes, k: int) -> bytes:
    """Remove the closing quote of field ``k`` of a Hansa line (``"a", "b", ...``)."""
    fields = line.rstrip(b"\n").split(b'", "')
    return b'", "'.join(fields[:k + 1]) + b', "' + b'", "'.join(fields[k + 1:]) + b"\n"


def _b_csv_huge_field(data: Path, folder: Path) -> None:
    lines = _hansa_lines(data)
    head, line, tail = lines[:4], lines[4], lines[5:]

    def parts() -> Iterator[bytes]:
        yield b"".join(head)
        a, _, rest = line.partition(b'", "')
        b_, _, rest = rest.partition(b'", "')
        yield a + b'", "' + b_ + b'", "'
        yield from _repeat(b"A", 100 << 20)
        yield b'", "' + rest.partition(b'", "')[2]
        yield b"".join(tail)

    _stream(folder / "hansa-2016-12.csv", parts())


def _csv_row_units(lines: list[int]) -> list[str]:
    return [f"row {n}" for n in lines]


def _csv_cases(data: Path) -> list[HostileCase]:
    hf = partial(_b_csv_file, "hansa")
    af = partial(_b_csv_file, "agora")
    hansa = partial(_csv_with, "hansa")
    return [
        HostileCase(
            "csv_field_100mb", "csv", partial(_b_csv_huge_field, data),
            lambda b: (_same(b, records=False, totals={"fields_cut": 1})[0],
                       _rows_lost(b, ["row 5"], "row 5 quarantined, limit field",
                                  limit=r"field|size")),
            "hansa_csv", issue=True, fix="isolation",
            note="no field-size cap: the 100 MB field is stored whole (788 MB peak, issue)"),
        HostileCase(
            "csv_unclosed_quote", "csv",
            partial(hf, lambda d: hansa({100: lambda ln: _drop_closing_quote(ln, 2)}, d), data),
            lambda b: (_rows_lost(b, ["row 100"], "only row 100 lost"),), "hansa_csv",
            fix="resync"),
        HostileCase(
            "csv_quote_never_closed", "csv",
            partial(hf, lambda d: hansa({100: lambda ln: ln[:60] + b'"' + ln[60:].replace(
                b'"', b"")}, d), data),
            lambda b: (_rows_lost(b, ["row 100"], "only row 100 lost"),), "hansa_csv",
            fix="resync", note="one stray quote: the csv module swallows the rest of the file"),
        HostileCase(
            "csv_100k_columns", "csv",
            partial(hf, lambda d: hansa({50: lambda ln: ln.rstrip(b"\n") + b', "x"' * 100_000
                                        + b"\n"}, d), data),
            lambda b: (_rows_lost(b, ["row 50"], "row 50 quarantined"),), "hansa_csv"),
        HostileCase(
            "csv_ragged_rows", "csv",
            partial(hf, lambda d: hansa({
                10: lambda ln: b'"a", "b", "c"\n',
                20: lambda ln: ln.rstrip(b"\n") + b', "x", "y"\n',
                30: lambda ln: ln.rstrip(b"\n") + b', "x", "y", "z", "w", "v"\n'}, d), data),
            lambda b: (_rows_lost(b, ["row 10", "row 20", "row 30"], "3 rows quarantined"),),
            "hansa_csv"),
        HostileCase(
            "csv_nul_in_field", "csv",
            partial(hf, lambda d: hansa({40: lambda ln: _hansa_field(ln, 2, b"Ki\x00lo\x00")},
                                       d), data),
            lambda b: (*_same(b, records=False), _rows_lost(b, ["row 40"], "row 40 lost")),
            "hansa_csv"),
        HostileCase(
            "csv_invalid_utf8", "csv",
            partial(hf, lambda d: hansa({60: lambda ln: _hansa_field(ln, 2, b"caf\xe9 \xff\xfe")},
                                       d), data),
            lambda b: (*_same(b, records=False), _rows_lost(b, ["row 60"], "row 60 lost")),
            "hansa_csv"),
        HostileCase(
            "csv_utf16_bom", "csv",
            partial(hf, lambda d: _utf16(b"".join(_hansa_lines(d))), data),
            _same, "hansa_csv", fix="resync",
            note="UTF-16 with BOM, as Excel and PowerShell write it"),
        HostileCase(
            "csv_utf8_bom", "csv",
            partial(hf, lambda d: codecs.BOM_UTF8 + b"".join(_hansa_lines(d)), data),
            _same, "hansa_csv", fix="resync",
            note="the BOM stays on the first field: row 1 quarantined"),
        HostileCase(
            "csv_crlf", "csv",
            partial(hf, lambda d: b"".join(_hansa_lines(d)).replace(b"\n", b"\r\n"), data),
            _same, "hansa_csv"),
        HostileCase(
            "csv_cr_only", "csv",
            partial(hf, lambda d: b"".join(_hansa_lines(d)).replace(b"\n", b"\r"), data),
            _same, "hansa_csv"),
        HostileCase(
            "csv_empty_file", "csv", partial(hf, lambda d: b"", data),
            lambda b: (Expect(read=1, stored=0, quarantined=0, skipped=1, label="skipped"),
                       Expect(read=0, stored=0, quarantined=0, skipped=0, label="no units")),
            None),
        HostileCase(
            "csv_contact_spaces_40k", "csv",
            partial(hf, lambda d: hansa({70: lambda ln: _hansa_field(
                ln, 2, b"jabber" + b" " * 40_000 + b"x")}, d), data),
            lambda b: _same(b, records=False), "hansa_csv", issue=True, fix="regex",
            note="extract/identifiers.py _SEP '\\s*(...)?\\s*' after a contact word"),
        HostileCase(
            "csv_pgp_begin_dashes_50k", "csv",
            partial(hf, lambda d: hansa({80: lambda ln: _hansa_field(
                ln, 2, b"BEGIN PGP PUBLIC KEY BLOCK" + b"-" * 50_000)}, d), data),
            lambda b: _same(b, records=False), "hansa_csv", issue=True, fix="regex"),
        HostileCase(
            "csv_formula_handles", "csv",
            partial(hf, lambda d: hansa({
                11: lambda ln: _hansa_field(ln, 3, b'=HYPERLINK(""http://x"",""y"")'),
                12: lambda ln: _hansa_field(ln, 3, b"+cmd|' /C calc'!A0"),
                13: lambda ln: _hansa_field(ln, 3, b"-2+3"),
                14: lambda ln: _hansa_field(ln, 3, b"@SUM(A1:A9)")}, d), data),
            lambda b: _same(b, records=False), "hansa_csv",
            note="stored as evidence; `targets --csv` must neutralise them (issue)"),
        HostileCase(
            "csv_rtl_control_handles", "csv",
            partial(hf, lambda d: hansa({
                15: lambda ln: _hansa_field(ln, 3, "evil\u202egnp.exe".encode()),
                16: lambda ln: _hansa_field(ln, 3, b"red\x1b[31m\x1b]0;pwned\x07"),
                17: lambda ln: _hansa_field(ln, 3, b"nul\x01\x02\x7f\xc2\x9b")}, d), data),
            lambda b: _same(b, records=False), "hansa_csv", clean_output=True),
        HostileCase(
            "csv_agora_feedback_no_days_ago", "csv",
            partial(af, lambda d: _agora_feedback(d, b"5/5 x " * 20_000), data),
            lambda b: _same(b, records=False), "agora_csv", fix="regex",
            note="the Agora feedback split regex '(\\d+)/5 (.*?) ?(\\d+) days? ago' per start"),
        HostileCase(
            "csv_agora_days_ago_26_digits", "csv",
            partial(af, lambda d: _agora_days(d, b"9" * 26), data),
            _same, "agora_csv", fix="isolation",
            note="found by fuzzing: OverflowError lost the whole file; now that date only"),
        HostileCase(
            "csv_quoted_newlines_100k", "csv",
            partial(af, lambda d: _agora_feedback(d, b"\n" * 100_000), data),
            lambda b: _same(b, records=False), "agora_csv"),
        HostileCase(
            "csv_blank_lines_1m", "csv",
            partial(hf, lambda d: hansa({150: lambda ln: ln + b"\n" * 1_000_000}, d), data),
            lambda b: _same(b, records=False), "hansa_csv",
            note="units are named by line: rows after the blank lines keep their counts"),
    ]


# -- sql


def _b_sql(content: Callable[[Path], bytes], data: Path, folder: Path) -> None:
    _write(folder / "dream-2016-sellers.sql", content(data))


def _b_sql_huge_field(data: Path, folder: Path) -> None:
    raw = _real(data, _DREAM_SQL)
    r = _dump_row(data, 2, 20)
    a, b = _string_spans(raw, r)[_COL_DESCRIPTION]
    _stream(folder / "dream-2016-sellers.sql",
            iter([raw[:a], *_repeat(b"A", 100 << 20), raw[b:]]))


def _sep_damage(data: Path, statement: int, row: int, new: bytes) -> bytes:
    """Replace the ``,`` between row ``row`` and the next one."""
    raw = _real(data, _DREAM_SQL)
    r = _dump_row(data, statement, row)
    _real_data_as_expected(raw[r.end:r.end + 2] == b",(", f"{r.unit} followed by ',('")
    return raw[:r.end] + new + raw[r.end + 1:]


def _one_statement(data: Path) -> bytes:
    raw = _real(data, _DREAM_SQL)
    rows = _dump_layout(data)
    first = _INSERT_LINE.search(raw)
    if first is None:
        raise RuntimeError("the real data changed: no INSERT in the Dream dump")
    line_start = first.start()
    last_end = rows[-1].end
    tuples = b",".join(raw[r.start:r.end] for r in rows)
    return raw[:line_start] + raw[line_start:first.end()] + tuples + raw[last_end:]


def _units_before(data: Path, statement: int, row: int) -> int:
    rows = _dump_layout(data)
    return next(i for i, r in enumerate(rows) if r.statement == statement and r.row == row)


def _truncated_dump(data: Path) -> bytes:
    raw = _real(data, _DREAM_SQL)
    a, b = _string_spans(raw, _dump_row(data, 4, 50))[_COL_DESCRIPTION]
    return raw[:(a + b) // 2]


def _comments(data: Path) -> bytes:
    raw = _real(data, _DREAM_SQL)
    r1 = _dump_row(data, 2, 10)
    r2 = _dump_row(data, 3, 1)
    line3 = raw.rfind(b"\n", 0, r2.start) + 1
    extra = (b"/* a comment ; with ' a quote and \"another\" */\n-- dashed comment ' ;\n"
             b"# hash comment ;\n/*!40000 ALTER TABLE `dnm_dream` DISABLE KEYS */;\n")
    return raw[:r1.end] + b",/* between rows ; ' */" + raw[r1.end + 1:line3] + extra + raw[line3:]


def _extra_table(rows: int) -> Callable[[Path], bytes]:
    def build(data: Path) -> bytes:
        raw = _real(data, _DREAM_SQL)
        body = b",".join(b"(%d,'user%d')" % (i, i) for i in range(1, rows + 1))
        return raw + (b"\nCREATE TABLE `users` (`id` int(11), `name` varchar(20));\n"
                      b"INSERT INTO `users` VALUES " + body + b";\n")
    return build


def _sql_cases(data: Path) -> list[HostileCase]:
    sf = partial(_b_sql)
    rep = partial(_replace_in_row)
    return [
        HostileCase(
            "sql_separator_comma_dropped", "sql",
            partial(sf, lambda d: _sep_damage(d, 2, 60, b""), data),
            lambda b: (_rows_lost(b, ["insert 2 row 61"], "the row after the separator"),
                       _rows_lost(b, ["insert 2 row 60"], "the row before the separator")),
            "dream_sql", issue=True, fix="resync",
            note="'rest of the statement skipped': every later row of the INSERT lost (issue)"),
        HostileCase(
            "sql_separator_semicolon", "sql",
            partial(sf, lambda d: _sep_damage(d, 2, 60, b";"), data),
            lambda b: (Expect(read=b.read, label="every row still read and counted")
                       if b else Expect(),),
            "dream_sql", fix="resync",
            note="the rest of the INSERT becomes a statement without a head: silently ignored"),
        HostileCase(
            "sql_stray_backslash", "sql",
            partial(sf, lambda d: rep(d, 2, 57, _COL_NAME, lambda v: v[:-1] + b"\\"), data),
            lambda b: (_rows_lost(b, ["insert 2 row 57"], "only the touched row"),),
            "dream_sql", issue=True, fix="resync",
            note="the closing quote escaped: quote parity flips for the rest"),
        HostileCase(
            "sql_stray_quote", "sql",
            partial(sf, lambda d: rep(d, 3, 33, _COL_DESCRIPTION,
                                     lambda v: v[:10] + b"'" + v[11:]), data),
            lambda b: (_rows_lost(b, ["insert 3 row 33"], "only the touched row"),),
            "dream_sql", fix="resync"),
        HostileCase(
            "sql_wrong_value_count", "sql",
            partial(sf, lambda d: rep(d, 1, 5, _COL_NAME, lambda v: v + b"','extra"), data),
            lambda b: (_rows_lost(b, ["insert 1 row 5"], "row quarantined"),), "dream_sql",
            fix="none"),
        HostileCase(
            "sql_field_100mb", "sql", partial(_b_sql_huge_field, data),
            lambda b: (_same(b, records=False, totals={"fields_cut": 1})[0],
                       _rows_lost(b, ["insert 2 row 20"], "row quarantined, limit field",
                                  limit=r"field|size")),
            "dream_sql", issue=True, fix="isolation"),
        HostileCase(
            "sql_count_over_32_bits", "sql",
            partial(sf, lambda d: rep(d, 2, 57, _COL_CONTRACTS, lambda v: b"9" * 26), data),
            _same, "dream_sql", fix="isolation",
            note="found by fuzzing: the store's 32-bit column failed the run at its commit"),
        HostileCase(
            "sql_contact_spaces_40k", "sql",
            partial(sf, lambda d: rep(d, 2, 30, _COL_DESCRIPTION,
                                     lambda v: b"jabber" + b" " * 40_000 + b"x " + v), data),
            lambda b: _same(b, records=False), "dream_sql", issue=True, fix="regex",
            note="52 s in the issue: identifiers _SEP '\\s*(?:...)?\\s*'"),
        HostileCase(
            "sql_pgp_begin_dashes_190k", "sql",
            partial(sf, lambda d: rep(d, 2, 31, _COL_DESCRIPTION,
                                     lambda v: b"BEGIN PGP PUBLIC KEY BLOCK" + b"-" * 190_000),
                    data),
            lambda b: _same(b, records=False), "dream_sql", issue=True, fix="regex"),
        HostileCase(
            "sql_unterminated_string_eof", "sql", partial(sf, _truncated_dump, data),
            lambda b: (Expect(read=_units_before(data, 4, 50) + 1,
                              stored=_units_before(data, 4, 50), quarantined=1, skipped=0,
                              quarantine=(r"^insert 4 row 50\b",),
                              label="rows before the cut stored, the cut row quarantined"),),
            "dream_sql", fix="resync",
            note="today the whole last INSERT is one quarantined unit"),
        HostileCase(
            "sql_raw_newline_keyword_in_string", "sql",
            partial(sf, lambda d: rep(d, 2, 45, _COL_DESCRIPTION,
                                     lambda v: v[:20] + b"\nINSERT INTO `x` VALUES (1);" + v[20:]),
                    data),
            lambda b: (*_same(b, records=False),
                       _rows_lost(b, ["insert 2 row 45"], "only that row lost")),
            "dream_sql", fix="resync",
            note="the lost-quote heuristic lets a description cut the statement"),
        HostileCase(
            "sql_comments_everywhere", "sql", partial(sf, _comments, data),
            _same, "dream_sql", fix="resync",
            note="a comment between two row tuples"),
        HostileCase(
            "sql_one_huge_insert", "sql", partial(sf, _one_statement, data),
            _same, "dream_sql"),
        HostileCase(
            "sql_unmapped_table", "sql", partial(sf, _extra_table(3), data),
            lambda b: (_plus(b, s=1, label="one skipped INSERT", records=_rec(b)),
                       _plus(b, s=3, label="three skipped rows", records=_rec(b))),
            "dream_sql"),
        HostileCase(
            "sql_unmapped_insert_500k_rows", "sql", partial(sf, _extra_table(500_000), data),
            lambda b: (_plus(b, s=1, label="one skipped INSERT", records=_rec(b)),
                       _plus(b, s=500_000, label="500,000 skipped rows", records=_rec(b))),
            "dream_sql"),
        HostileCase(
            "sql_deep_parens", "sql",
            partial(sf, lambda d: _real(d, _DREAM_SQL) + b"\nINSERT INTO `dnm_dream` VALUES "
                    + b"(" * 100_000 + b")" * 100_000 + b";\n", data),
            lambda b: (_plus(b, q=1, label="one broken row", records=_rec(b),
                             quarantine=(r"^insert 5\b",)),), "dream_sql"),
        HostileCase(
            "sql_invalid_utf8", "sql",
            partial(sf, lambda d: rep(d, 2, 70, _COL_DESCRIPTION,
                                     lambda v: v[:5] + b"\xff\xfe\xc3\x28" + v[5:]), data),
            lambda b: _same(b, records=False), "dream_sql"),
        HostileCase(
            "sql_nul_in_string", "sql",
            partial(sf, lambda d: rep(d, 2, 71, _COL_DESCRIPTION,
                                     lambda v: v[:5] + b"\x00" + v[5:]), data),
            lambda b: (*_same(b, records=False),
                       _rows_lost(b, ["insert 2 row 71"], "row 71 quarantined")), "dream_sql"),
        HostileCase(
            "sql_nul_in_header", "sql",
            partial(sf, lambda d: _real(d, _DREAM_SQL).replace(b"-- Host:", b"-- \x00Host:", 1),
                    data),
            _same, "dream_sql", fix="resync",
            note="one NUL in the first 4 KiB makes the whole dump unrecognised"),
        HostileCase(
            "sql_crlf", "sql",
            partial(sf, lambda d: _real(d, _DREAM_SQL).replace(b"\n", b"\r\n"), data),
            _same, "dream_sql"),
        HostileCase(
            "sql_utf8_bom", "sql",
            partial(sf, lambda d: codecs.BOM_UTF8 + _real(d, _DREAM_SQL), data),
            _same, "dream_sql"),
        HostileCase(
            "sql_utf16_bom", "sql",
            partial(sf, lambda d: _utf16(_real(d, _DREAM_SQL)), data),
            _same, "dream_sql", fix="resync",
            note="mysqldump redirected by PowerShell writes UTF-16LE with a BOM"),
        HostileCase(
            "sql_rerun_new_vs_already", "sql", _baseline_builder(data, "dream_sql"),
            lambda b: (Expect(read=b.read, totals={"files_already_ingested": 1,
                                                   "stored_new": 0,
                                                   "already_stored": b.stored},
                              label="second run stores nothing new") if b else Expect(),),
            "dream_sql", between_runs=lambda f: None, issue=True, fix="accounting"),
    ]


# -- blocks


def _blk(data: Path, rel: str) -> tuple[bytes, list[BlkFrame]]:
    raw = _real(data, rel)
    return raw, blk_frames(raw)


def _blk_edit(rel: str, edit: Callable[[bytes, list[BlkFrame]], bytes]
              ) -> Callable[[Path], bytes]:
    def build(data: Path) -> bytes:
        raw, frames = _blk(data, rel)
        return edit(raw, frames)
    return build


def _bad_magic(k: int) -> Callable[[bytes, list[BlkFrame]], bytes]:
    def edit(raw: bytes, frames: list[BlkFrame]) -> bytes:
        o = frames[k].offset
        return raw[:o] + b"\xde\xad\xbe\xef" + raw[o + 4:]
    return edit


def _set_length(k: int, size: int) -> Callable[[bytes, list[BlkFrame]], bytes]:
    def edit(raw: bytes, frames: list[BlkFrame]) -> bytes:
        o = frames[k].offset
        return raw[:o + 4] + size.to_bytes(4, "little") + raw[o + 8:]
    return edit


def _in_block(k: int, at: int, old_len: int, new: bytes) -> Callable[[bytes, list[BlkFrame]],
                                                                      bytes]:
    """Replace ``old_len`` bytes at block offset ``at`` of frame ``k``, fixing its length."""
    def edit(raw: bytes, frames: list[BlkFrame]) -> bytes:
        f = frames[k]
        p = f.offset + 8 + at
        size = f.size - old_len + len(new)
        return raw[:f.offset + 4] + size.to_bytes(4, "little") + raw[f.offset + 8:p] + new \
            + raw[p + old_len:]
    return edit


def _insert_before(k: int, junk: bytes) -> Callable[[bytes, list[BlkFrame]], bytes]:
    def edit(raw: bytes, frames: list[BlkFrame]) -> bytes:
        o = frames[k].offset
        return raw[:o] + junk + raw[o:]
    return edit


def _flip_byte(k: int, from_end: int) -> Callable[[bytes, list[BlkFrame]], bytes]:
    """Flip the low bit of one byte of frame ``k`` (``from_end`` bytes before its end)."""
    def edit(raw: bytes, frames: list[BlkFrame]) -> bytes:
        p = frames[k].end + from_end
        return raw[:p] + bytes([raw[p] ^ 1]) + raw[p + 1:]
    return edit


def _duplicate(k: int) -> Callable[[bytes, list[BlkFrame]], bytes]:
    """Frame ``k`` twice in a row."""
    def edit(raw: bytes, frames: list[BlkFrame]) -> bytes:
        f = frames[k]
        return raw[:f.end] + raw[f.offset:f.end] + raw[f.end:]
    return edit


def _megatx_inputs(data: Path) -> bytes:
    """The 5,569-input transaction with its input count (fd c1 15) claiming 0xFFFFFFFF."""
    raw = _real(data, _MEGATX)
    _real_data_as_expected(raw[4:7] == b"\xfd\xc1\x15", "megatx input count fd c1 15")
    return raw[:4] + b"\xfe\xff\xff\xff\xff" + raw[7:]


def _frame_info(data: Path, rel: str, k: int) -> BlkFrame:
    return _blk(data, rel)[1][k]


def _blk_lost(b: Outcome | None, data: Path, rel: str, k: int, skipped_bytes: int | None,
              label: str) -> Expect:
    f = _frame_info(data, rel, k)
    totals = {"skipped_bytes": skipped_bytes} if skipped_bytes is not None else {}
    return _rows_lost(b, [f"block @{f.offset}"], label, totals=totals)


def _b_blocks(name: str, content: Callable[[Path], bytes], data: Path, folder: Path) -> None:
    _write(folder / name, content(data))


def _nested_json(n: int) -> bytes:
    return (b'{"hash": "00", "merkleroot": "00", "tx": [' + b"[" * n + b"]" * n + b"]}")


def _blocks_cases(data: Path) -> list[HostileCase]:
    bf = partial(_b_blocks, "blocks1-256")
    b5f = partial(_b_blocks, "blk_0_to_4.dat")
    f100 = partial(_frame_info, data, _BLOCKS, 100)
    return [
        HostileCase(
            "blk_bad_magic", "blocks", partial(bf, _blk_edit(_BLOCKS, _bad_magic(100)), data),
            lambda b: (_blk_lost(b, data, _BLOCKS, 100, 8 + f100().size,
                                 "resync at the next magic, the frame's bytes counted"),),
            "blocks", issue=True, fix="resync",
            note="no resync: every block after the bad magic lost and not counted (issue)"),
        HostileCase(
            "blk5_bad_magic_issue", "blocks",
            partial(b5f, _blk_edit(_BLK5, _bad_magic(2)), data),
            lambda b: (_blk_lost(b, data, _BLK5, 2, 8 + _frame_info(data, _BLK5, 2).size,
                                 "1 of 5 lost and counted"),),
            "blk5", issue=True, fix="resync", note="3 of 5 blocks lost and not counted (issue)"),
        HostileCase(
            "blk_truncated_last_block", "blocks",
            partial(bf, lambda d: _real(d, _BLOCKS)[:-150], data),
            lambda b: (_blk_lost(b, data, _BLOCKS, 254, None, "the cut block quarantined"),),
            "blocks", fix="resync"),
        HostileCase(
            "blk_length_4gb", "blocks",
            partial(bf, _blk_edit(_BLOCKS, _set_length(50, 0xFFFFFFFF)), data),
            lambda b: (_blk_lost(b, data, _BLOCKS, 50, 8 + _frame_info(data, _BLOCKS, 50).size,
                                 "resync at the next magic"),),
            "blocks", fix="resync"),
        HostileCase(
            "blk_length_too_short", "blocks",
            partial(bf, _blk_edit(_BLOCKS, _set_length(50, 100)), data),
            lambda b: (_blk_lost(b, data, _BLOCKS, 50, None, "resync at the next magic"),),
            "blocks", fix="resync"),
        HostileCase(
            "blk_garbage_between_blocks", "blocks",
            partial(bf, _blk_edit(_BLOCKS, _insert_before(21, random.Random(18).randbytes(1000))),
                    data),
            lambda b: (_same(b, totals={"skipped_bytes": 1000})[0],
                       _plus(b, q=1, records=_rec(b),
                             totals={"skipped_bytes": 1000},
                             label="the gap quarantined as a unit")),
            "blocks", fix="resync"),
        HostileCase(
            "blk_tx_count_varint_overflow", "blocks",
            partial(bf, _blk_edit(_BLOCKS, _in_block(10, 80, 1, b"\xff" * 9)), data),
            lambda b: (_blk_lost(b, data, _BLOCKS, 10, None, "that block quarantined"),),
            "blocks"),
        HostileCase(
            "blk_tx_inputs_ffffffff", "blocks",
            partial(bf, _blk_edit(_BLOCKS, _in_block(12, 85, 1, b"\xfe\xff\xff\xff\xff")), data),
            lambda b: (_blk_lost(b, data, _BLOCKS, 12, None, "that block quarantined"),),
            "blocks"),
        HostileCase(
            "blk_merkle_mismatch", "blocks",
            partial(bf, _blk_edit(_BLOCKS, _flip_byte(30, -10)), data),
            lambda b: (_blk_lost(b, data, _BLOCKS, 30, None, "that block quarantined"),),
            "blocks", fix="none"),
        HostileCase(
            "blk_zero_padding_1mb", "blocks",
            partial(bf, lambda d: _real(d, _BLOCKS) + b"\0" * (1 << 20), data),
            _same, "blocks", fix="none"),
        HostileCase(
            "blk_duplicate_block", "blocks",
            partial(bf, _blk_edit(_BLOCKS, _duplicate(5)), data),
            lambda b: (_plus(b, stored=1, label="both copies stored"),
                       _plus(b, s=1, label="the copy skipped as a duplicate")),
            "blocks", fix="isolation",
            note="a block seen twice in one file"),
        HostileCase(
            "blk_magic_flood_10mb", "blocks",
            partial(bf, lambda d: b"\xf9\xbe\xb4\xd9" * (10 << 18), data),
            lambda b: (Expect(read=1, stored=0, quarantined=0, skipped=1, label="skipped"),
                       Expect(read=1, stored=0, quarantined=1, skipped=0, label="quarantined")),
            None),
        HostileCase(
            "json_nested_100k", "blocks",
            partial(_b_companions_plus, "block.json", lambda d: _nested_json(100_000), data),
            lambda b: _lost_one(b, r"depth|nest"), "dream_pages", fix="isolation",
            note="json.loads RecursionError in the bitcoin sniff is not caught"),
        HostileCase(
            "json_esplora_wrong_types", "blocks",
            partial(_b_blocks, "txs.json", lambda d: json.dumps([
                {"txid": 5, "vin": [], "vout": [{"scriptpubkey": 1, "value": "x"}]},
                {"txid": "ab" * 32, "vin": [{"txid": None}], "vout": [{"scriptpubkey": []}],
                 "status": []}]).encode(), data),
            lambda b: (Expect(read=2, stored=0, quarantined=2, skipped=0,
                              quarantine=(r"^json tx 0\b", r"^json tx 1\b"),
                              label="each bad tx quarantined"),), None, fix="isolation",
            note="a TypeError in one tx fails the whole file"),
        HostileCase(
            "hex_header_line_damaged", "blocks",
            partial(_b_blocks, "blockheaders-mainnet-1-11.txt", lambda d: b"\n".join(
                ln if i != 4 else ln[:40] + b"zz" + ln[42:]
                for i, ln in enumerate(_real(d, _HEADERS).split(b"\n"))), data),
            lambda b: (_rows_lost(b, ["line 5"], "line 5 quarantined"),), "headers", fix="resync",
            note="one non-hex line in the sniffed head: the whole file is unrecognised"),
        HostileCase(
            "hex_line_50mb", "blocks",
            partial(_b_blocks, "blockheaders-mainnet-1-11.txt", lambda d: _real(d, _HEADERS)
                    + b"01" * (25 << 20) + b"\n", data),
            lambda b: (_plus(b, q=1, label="the giant line quarantined",
                             quarantine=(r"^line 12\b",)),), "headers"),
        HostileCase(
            "tx_inputs_ffffffff", "blocks",
            partial(_b_blocks, "megatx.bin", _megatx_inputs, data),
            lambda b: (Expect(read=1, stored=0, quarantined=0, skipped=1, label="skipped"),
                       Expect(read=1, stored=0, quarantined=1, skipped=0, label="quarantined")),
            None),
        HostileCase(
            "utxostore_truncated", "blocks",
            partial(_b_blocks, "277647.utxostore",
                    lambda d: _real(d, _UTXO)[:len(_real(d, _UTXO)) // 2 + 7], data),
            lambda b: (Expect(read=1, stored=0, quarantined=0, skipped=1, label="skipped"),
                       Expect(read=1, stored=0, quarantined=1, skipped=0, label="quarantined")),
            None),
    ]


# -- tagpack


def _alias_bomb(levels: int) -> str:
    lols = ",".join(['"lol"'] * 9)
    lines = ["title: t", "creator: c", f"a0: &a0 [{lols}]"]
    for i in range(1, levels):
        refs = ",".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    lines += ["tags:", f"  - address: *a{levels - 1}", f"    label: *a{levels - 1}"]
    return "\n".join(lines) + "\n"


def _b_tagpack(text: Callable[[], str | bytes], name: str, folder: Path) -> None:
    _write(folder / name, text())


def _b_tagpack_1m(folder: Path) -> None:
    head = TAGPACK.split("tags:\n")[0].encode() + b"tags:\n"
    tag = b"  - address: 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa\n    label: t\n"
    _stream(folder / "million.yaml", iter([head, *_repeat(tag, len(tag) * 1_000_000)]))


_WRONG_TYPES = """\
title: wrong types
creator: c
tags:
  - address: 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa
    label: good one
  - address: 12345
    label: address is a number
  - address: 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa
    label: [a, list]
  - just a string
  - address: bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq
    label: good two
  - address: bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq
    label: currency is a mapping
    currency: {a: 1}
"""


def _tagpack_cases(data: Path) -> list[HostileCase]:
    one_bad = (Expect(read=1, stored=0, quarantined=1, skipped=0, label="quarantined"),)
    return [
        HostileCase(
            "tagpack_alias_bomb_8_levels", "tagpack",
            partial(_b_tagpack, lambda: _alias_bomb(8), "bomb.yaml"),
            lambda b: one_bad, None, issue=True, fix="isolation",
            note="a few hundred bytes, 959 MB and 13 s in the issue: str() of the aliases"),
        HostileCase(
            "tagpack_alias_bomb_9_levels", "tagpack",
            partial(_b_tagpack, lambda: _alias_bomb(9), "bomb.yaml"),
            lambda b: one_bad, None, issue=True, fix="isolation",
            note="one level more: about 10 GB (issue)"),
        HostileCase(
            "tagpack_1m_tags", "tagpack", _b_tagpack_1m,
            lambda b: (Expect(read=1_000_000, stored=1_000_000, quarantined=0, skipped=0,
                              label="all stored"),
                       Expect(read=1, stored=0, quarantined=1, skipped=0,
                              limit=r"size|time|memory|bytes|seconds",
                              label="file quarantined, limit named")), None,
            fix="isolation"),
        HostileCase(
            "tagpack_non_mapping_root", "tagpack",
            partial(_b_tagpack, lambda: "[\ntitle: x,\ntags: y\n]\n", "root.yaml"),
            lambda b: one_bad, None, fix="none"),
        HostileCase(
            "tagpack_tags_not_a_list", "tagpack",
            partial(_b_tagpack, lambda: "title: x\ncreator: c\ntags: {a: 1}\n", "map.yaml"),
            lambda b: one_bad, None, fix="none"),
        HostileCase(
            "tagpack_wrong_types", "tagpack",
            partial(_b_tagpack, lambda: _WRONG_TYPES, "types.yaml"),
            lambda b: (Expect(read=6, stored=2, quarantined=4, skipped=0,
                              label="2 good tags stored, 4 quarantined"),), None),
        HostileCase(
            "tagpack_deep_nesting", "tagpack",
            partial(_b_tagpack, lambda: "title: x\ncreator: c\ntags:\n  - address: "
                    + "[" * 100_000 + "]" * 100_000 + "\n    label: deep\n", "deep.yaml"),
            lambda b: one_bad, None, fix="isolation"),
        HostileCase(
            "tagpack_python_object_tag", "tagpack",
            partial(_b_tagpack, lambda: "title: x\ncreator: c\ntags:\n  - address: "
                    f"!!python/object/apply:os.system ['touch {_PWNED}']\n"
                    "    label: pwn\n", "pwn.yaml"),
            lambda b: one_bad, None, must_not_exist=(_PWNED,), fix="none"),
        HostileCase(
            "tagpack_utf8_bom", "tagpack",
            partial(_b_tagpack, lambda: codecs.BOM_UTF8 + TAGPACK.encode(), "exchanges.yaml"),
            _same, "tagpack"),
        HostileCase(
            "tagpack_invalid_utf8", "tagpack",
            partial(_b_tagpack, lambda: TAGPACK.encode().replace(b"Genesis", b"Gen\xff\xfesis"),
                    "exchanges.yaml"),
            _same, "tagpack"),
        HostileCase(
            "tagpack_label_10mb", "tagpack",
            partial(_b_tagpack, lambda: TAGPACK.replace("Genesis (test)", "L" * (10 << 20)),
                    "exchanges.yaml"),
            _same, "tagpack"),
    ]


# -- warc


def _warc_record(kind: str, block: bytes, uri: str = "", *, digest: bool = True,
                 length: bytes | None = None, extra: bytes = b"") -> bytes:
    """One uncompressed WARC/1.1 record (block and payload digests as writers give them)."""
    def b32(data: bytes) -> bytes:
        return b"sha256:" + base64.b32encode(hashlib.sha256(data).digest())

    head = [b"WARC/1.1", b"WARC-Type: " + kind.encode(),
            b"WARC-Record-ID: <urn:uuid:" + str(uuid.UUID(bytes=hashlib.sha256(
                block + uri.encode()).digest()[:16])).encode() + b">",
            b"WARC-Date: 2019-03-01T12:00:00Z"]
    if uri:
        head.append(b"WARC-Target-URI: " + uri.encode("utf-8", "surrogateescape"))
    if kind == "response":
        head.append(b"Content-Type: application/http; msgtype=response")
        if digest:
            payload = block.split(b"\r\n\r\n", 1)[-1]
            head += [b"WARC-Payload-Digest: " + b32(payload), b"WARC-Block-Digest: " + b32(block)]
    head.append(b"Content-Length: " + (length if length is not None else
                                       str(len(block)).encode()))
    return b"\r\n".join(head) + b"\r\n" + extra + b"\r\n" + block + b"\r\n\r\n"


def _http(body: bytes, status: bytes = b"200 OK") -> bytes:
    return b"HTTP/1.1 " + status + b"\r\nContent-Type: text/html\r\n\r\n" + body


def _warc_pages(data: Path) -> list[bytes]:
    """The two Dream pages of the baseline, as the HTTP blocks of responses."""
    return [_http(_real(data, _DREAM_LISTING)), _http(_real(data, _DREAM_SELLER))]


def _warc(blocks: list[bytes], *, lengths: Mapping[int, bytes] | None = None) -> bytes:
    """A warcinfo record, then one response per block (``lengths``: a response's
    Content-Length as written instead of its true one, by position)."""
    onion = "dreamxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.onion"
    out = [_warc_record("warcinfo", b"software: hostile-corpus\r\n")]
    for k, block in enumerate(blocks):
        out.append(_warc_record("response", block, f"http://{onion}/page/{k}",
                                length=(lengths or {}).get(k)))
    return b"".join(out)


def _b_warc(content: Callable[[Path], bytes], data: Path, folder: Path,
            name: str = "crawl.warc") -> None:
    _write(folder / name, content(data))


def _warc_case(content: Callable[[Path], bytes], data: Path,
               name: str = "crawl.warc") -> Callable[[Path], None]:
    """The builder of a case: the WARC ``content`` makes, as ``name``."""
    return lambda folder: _b_warc(content, data, folder, name)


def _raised(by: Callable[[list[bytes]], int]) -> Callable[[Path], bytes]:
    """The baseline WARC with its first response's Content-Length raised by ``by``."""
    def make(data: Path) -> bytes:
        blocks = _warc_pages(data)
        return _warc(blocks, lengths={0: str(len(blocks[0]) + by(blocks)).encode()})
    return make


def _tiny_records(n: int, data: Path) -> bytes:
    rec = _warc_record("request", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "http://x.onion/")
    return _warc(_warc_pages(data)) + rec * n


def _whole_gzip(expand: int, data: Path) -> bytes:
    return gzip.compress(_warc(_warc_pages(data)) + b"\r\n" * expand, 1)


def _member_bomb(data: Path) -> bytes:
    """A gzip WARC, one member per record; the last response's payload is 1 GiB of
    zeros, about 1 MB compressed."""
    plain = _warc(_warc_pages(data))
    zeros = zlib.compressobj(1, zlib.DEFLATED, 31)
    bomb = _warc_record("response", _http(b""), "http://x.onion/bomb", digest=False,
                        length=str(len(_http(b"")) + (1 << 30)).encode())
    head = bomb[:-4]  # its block, without the record's closing CRLFs, then the zeros
    member = zeros.compress(head)
    chunk = bytes(1 << 20)
    for _ in range(1 << 10):
        member += zeros.compress(chunk)
    member += zeros.compress(b"\r\n\r\n") + zeros.flush()
    starts = [0] + [m.start() + 4 for m in re.finditer(rb"\r\n\r\nWARC/1\.1\r\n", plain)]
    parts = [plain[a:b] for a, b in zip(starts, [*starts[1:], len(plain)], strict=True)]
    return b"".join(gzip.compress(p, 1) for p in parts) + member


_NOT_NUMBER = r"^record 2 \| Content-Length \| .*'12abc'\) is not a number"
_OVERRUN = r"^record 2 \| Content-Length \| .*runs over the start of another record"


def _warc_cases(data: Path) -> list[HostileCase]:
    def lost_first(b: Outcome | None) -> tuple[Expect, ...]:
        b = _need(b)
        return (Expect(read=b.read, stored=b.stored - 1, quarantined=b.quarantined + 1,
                       skipped=b.skipped,
                       quarantine=(_OVERRUN,),
                       label="the response with the false length quarantined, the next "
                             "one read"),)

    def one_more_quarantined(b: Outcome | None) -> tuple[Expect, ...]:
        return (_plus(b, q=1, records=_rec(b), label="the bad record quarantined"),)

    def warc(content: Callable[[Path], bytes], name: str = "crawl.warc"
             ) -> Callable[[Path], None]:
        return _warc_case(content, data, name)
    def pages() -> frozenset[str]:
        return frozenset(hashlib.sha256(b.split(b"\r\n\r\n", 1)[1]).hexdigest()
                         for b in _warc_pages(data))

    return [replace(c, holds=pages) for c in [
        HostileCase("warc_length_raised_over_next", "warc",
                    warc(_raised(lambda bl: len(bl[1]) // 2)),
                    lost_first, "warc", fix="resync",
                    note="a raised Content-Length once swallowed the records after it"),
        HostileCase("warc_length_raised_over_whole_next", "warc",
                    warc(_raised(lambda bl: len(_warc([bl[1]])) - len(_warc([])))),
                    lost_first, "warc", fix="resync"),
        HostileCase("warc_length_past_the_end", "warc",
                    warc(_raised(lambda bl: 10 ** 30)), lost_first, "warc",
                    fix="resync"),
        HostileCase("warc_length_lowered", "warc",
                    warc(_raised(lambda bl: -1000)),
                    lambda b: (Expect(read=_need(b).read + 1, stored=_need(b).stored - 1,
                                      quarantined=_need(b).quarantined + 2,
                                      skipped=_need(b).skipped,
                                      label="the cut response and its rest quarantined"),),
                    "warc", fix="resync"),
        HostileCase("warc_length_not_a_number", "warc",
                    warc(lambda d: _warc(_warc_pages(d), lengths={0: b"12abc"})),
                    lambda b: (Expect(read=_need(b).read, stored=_need(b).stored - 1,
                                      quarantined=_need(b).quarantined + 1,
                                      skipped=_need(b).skipped,
                                      quarantine=(_NOT_NUMBER,),
                                      label="that response quarantined, the next one read"),),
                    "warc", fix="resync"),
        HostileCase("warc_header_line_10mb", "warc",
                    warc(lambda d: _warc_record(
                        "warcinfo", b"x: y\r\n", extra=b"X-Long: " + b"a" * (10 << 20)
                        + b"\r\n") + _warc(_warc_pages(d))),
                    lambda b: (_plus(b, s=1, records=_rec(b), label="read as a warcinfo"),
                               _plus(b, q=1, records=_rec(b), label="quarantined")),
                    "warc"),
        HostileCase("warc_20k_request_records", "warc",
                    warc(partial(_tiny_records, 20_000)),
                    lambda b: (_plus(b, s=20_000, records=_rec(b),
                                     label="every request record skipped"),), "warc"),
        HostileCase("warc_junk_after_magic", "warc",
                    warc(lambda d: _warc(_warc_pages(d)) + b"WARC/1.1\r\n"
                            + bytes(range(256)) * 4096),
                    one_more_quarantined, "warc", fix="resync"),
        HostileCase("warc_no_record_id", "warc",
                    warc(lambda d: _warc(_warc_pages(d)).replace(
                        b"WARC-Record-ID:", b"WARC-Record-Nd:", 2)),
                    lambda b: (Expect(read=_need(b).read, stored=_need(b).stored - 1,
                                      quarantined=_need(b).quarantined + 1,
                                      skipped=_need(b).skipped - 1,
                                      label="the warcinfo and a response without ids "
                                            "quarantined"),
                               Expect(read=_need(b).read, stored=_need(b).stored - 1,
                                      quarantined=_need(b).quarantined + 2,
                                      skipped=_need(b).skipped - 1,
                                      label="quarantined")),
                    "warc"),
        HostileCase("warc_uri_with_escapes", "warc",
                    warc(lambda d: _warc(_warc_pages(d)).replace(
                        b"/page/0", b"/page/\x1b]0;pwned\x07\xe2\x80\xae\x1b[2J", 1)),
                    _same, "warc", clean_output=True, fix="output"),
        HostileCase("warc_gzip_whole_expands_past_50x", "warc",
                    warc(partial(_whole_gzip, 40 << 20), name="crawl.warc.gz"),
                    lambda b: (Expect(read=1, stored=0, quarantined=1, skipped=0,
                                      quarantine=(r"expands past 50 times",),
                                      label="quarantined, not read further"),), "warc",
                    fix="isolation"),
        HostileCase("warc_gzip_member_1gib_of_zeros", "warc",
                    warc(_member_bomb, name="crawl.warc.gz"),
                    lambda b: (_plus(b, s=1, records=_rec(b),
                                     label="the payload refused by its size"),
                               _plus(b, q=1, records=_rec(b), label="quarantined")), "warc",
                    fix="isolation"),
    ]]


# -- file system


def _b_fs(make: Callable[[Path, Path], None], data: Path, folder: Path) -> None:
    _b_baseline_pages(data, folder)
    make(data, folder)


def _fs_symlink(target: str, name: str = "link.html") -> Callable[[Path, Path], None]:
    def make(data: Path, folder: Path) -> None:
        os.symlink(target, folder / name)
    return make


def _fs_fifo(data: Path, folder: Path) -> None:
    os.mkfifo(folder / "pipe.html")


def _fs_socket(data: Path, folder: Path) -> None:
    # a socket path is limited to 108 bytes: bind through the folder's descriptor
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(f"/proc/self/fd/{fd}/socket.html")
    finally:
        os.close(fd)


def _fs_chardev(data: Path, folder: Path) -> None:
    try:
        os.mknod(folder / "zero.html", stat.S_IFCHR | 0o600, os.makedev(1, 5))
    except PermissionError as exc:
        raise CaseUnavailable(f"mknod not permitted here: {exc}") from exc


def _fs_deep(depth: int) -> Callable[[Path, Path], None]:
    """A page ``depth`` folders down, made with directory fds (beyond PATH_MAX too)."""
    def make(data: Path, folder: Path) -> None:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for _ in range(depth):
                os.mkdir("d", dir_fd=fd)
                nfd = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
                os.close(fd)
                fd = nfd
            out = os.open("listing_1.html", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
            with os.fdopen(out, "wb") as fh:
                fh.write(_real(data, _DREAM_LISTING_2))
        finally:
            os.close(fd)
    return make


def _fs_named(name: str | bytes) -> Callable[[Path, Path], None]:
    def make(data: Path, folder: Path) -> None:
        raw = os.fsencode(folder) + b"/" + (name if isinstance(name, bytes) else
                                            name.encode("utf-8"))
        with open(raw, "wb") as fh:
            fh.write(_real(data, _DREAM_LISTING_2))
    return make


def _fs_unreadable(data: Path, folder: Path) -> None:
    p = folder / "listing_1.html"
    _write(p, _real(data, _DREAM_LISTING_2))
    os.chmod(p, 0)


def _fs_sparse(data: Path, folder: Path) -> None:
    with open(folder / "huge.html", "wb") as fh:
        fh.truncate(600 << 20)


def _fs_two(make_a: Callable[[Path, Path], None],
            make_b: Callable[[Path, Path], None]) -> Callable[[Path, Path], None]:
    def make(data: Path, folder: Path) -> None:
        make_a(data, folder)
        make_b(data, folder)
    return make


def _fs_copy(name: str) -> Callable[[Path, Path], None]:
    def make(data: Path, folder: Path) -> None:
        _write(folder / name, _real(data, _DREAM_LISTING))
    return make


def _stored_one(b: Outcome | None) -> tuple[Expect, ...]:
    return (_plus(b, stored=1, label="read like any page"),)


def _unreadable_expect(b: Outcome | None) -> tuple[Expect, ...]:
    if os.geteuid() == 0:  # root reads through chmod 000: the page is simply read
        return _stored_one(b)
    return (_plus(b, s=1, label="unreadable: skipped with the reason",
                  skip_reason=r"(?i)permission|cannot read"),
            _plus(b, q=1, label="unreadable: quarantined"))


def _fs_cases(data: Path) -> list[HostileCase]:
    fc = partial(_b_fs)
    refused = _fs_refused
    return [
        HostileCase("fs_dangling_symlink", "fs",
                    partial(fc, _fs_symlink("does-not-exist.html"), data),
                    refused, "dream_pages", issue=True, fix="fs-policy",
                    note="stat() outside any guard: the whole run aborts"),
        HostileCase("fs_fifo", "fs", partial(fc, _fs_fifo, data), refused, "dream_pages",
                    issue=True, fix="fs-policy", note="read_bytes() blocks forever"),
        HostileCase("fs_symlink_dev_zero", "fs", partial(fc, _fs_symlink("/dev/zero"), data),
                    refused, "dream_pages", issue=True, fix="fs-policy",
                    note="st_size 0, read_bytes() grows until the memory cap"),
        HostileCase("fs_symlink_etc_passwd", "fs",
                    partial(fc, _fs_symlink("/etc/passwd", "passwd.html"), data),
                    refused, "dream_pages", issue=True, fix="fs-policy",
                    note="followed, captured and exported as evidence (issue)"),
        HostileCase("fs_dir_symlink_outside", "fs", partial(fc, _fs_symlink("/etc", "etc"), data),
                    refused, "dream_pages", fix="fs-policy",
                    note="os.walk does not follow it: silently ignored, not reported"),
        HostileCase("fs_dir_symlink_loop", "fs", partial(fc, _fs_symlink(".", "loop"), data),
                    refused, "dream_pages", fix="fs-policy"),
        HostileCase("fs_symlink_cycle", "fs",
                    partial(fc, _fs_two(_fs_symlink("b.html", "a.html"),
                                       _fs_symlink("a.html", "b.html")), data),
                    lambda b: (_plus(b, s=2, records=_rec(b),
                                     label="both refused and reported"),),
                    "dream_pages", fix="fs-policy", note="ELOOP from stat()"),
        HostileCase("fs_symlink_inside_root", "fs",
                    partial(fc, _fs_symlink("good/listing_0.html", "alias.html"), data),
                    lambda b: (_plus(b, stored=1, records=_rec(b),
                                     totals={"already_stored": 1, "stored_new": b.stored},
                                     label="followed: the same capture, already stored")
                               if b else Expect(),
                               *refused(b)),
                    "dream_pages", fix="accounting"),
        HostileCase("fs_socket", "fs", partial(fc, _fs_socket, data), refused, "dream_pages",
                    fix="fs-policy", note="open() of a socket fails with ENXIO"),
        HostileCase("fs_char_device_in_root", "fs", partial(fc, _fs_chardev, data), refused,
                    "dream_pages", fix="fs-policy",
                    note="a device node (1,5 = /dev/zero) inside the root, no symlink"),
        HostileCase("fs_deep_tree_1200", "fs", partial(fc, _fs_deep(1200), data),
                    lambda b: (*_stored_one(b),
                               _plus(b, s=1, label="refused, depth limit named",
                                     skip_reason=r"(?i)depth|deep")),
                    "dream_pages", fix="isolation",
                    note="os.walk recurses (Python 3.11): RecursionError at ~1000 levels"),
        HostileCase("fs_path_over_path_max", "fs", partial(fc, _fs_deep(2100), data),
                    lambda b: (*_stored_one(b),
                               _plus(b, s=1, label="refused, path length named",
                                     skip_reason=r"(?i)depth|deep|long")),
                    "dream_pages", fix="isolation", note="4,200-character path: ENAMETOOLONG"),
        HostileCase("fs_unreadable_file", "fs", partial(fc, _fs_unreadable, data),
                    _unreadable_expect, "dream_pages",
                    note="chmod 000; as root it is read anyway (root ignores file modes)"),
        HostileCase("fs_newline_in_name", "fs", partial(fc, _fs_named("listing\n1.html"), data),
                    _stored_one, "dream_pages", clean_output=True),
        HostileCase("fs_escape_sequence_name", "fs",
                    partial(fc, _fs_named("\x1b[2J\x1b]0;owned\x07listing.html"), data),
                    _stored_one, "dream_pages", clean_output=True, fix="output"),
        HostileCase("fs_non_utf8_name", "fs", partial(fc, _fs_named(b"caf\xe9-listing.html"), data),
                    _stored_one, "dream_pages", clean_output=True, fix="fs-policy",
                    note="the path (surrogate-escaped) cannot be stored: the run aborts"),
        HostileCase("fs_bidi_name", "fs",
                    partial(fc, _fs_named("listing\u202elmth.exe"), data),
                    _stored_one, "dream_pages", clean_output=True, fix="output"),
        HostileCase("fs_hidden_file", "fs", partial(fc, _fs_named(".listing_9.html"), data),
                    lambda b: (*_stored_one(b),
                               _plus(b, s=1, label="skipped and reported")),
                    "dream_pages", fix="fs-policy",
                    note="hidden files are dropped without a count"),
        HostileCase("fs_license_named_page", "fs", partial(fc, _fs_named("LICENSE-vendor.html"),
                                                             data),
                    lambda b: (*_stored_one(b),
                               _plus(b, s=1, label="skipped and reported")),
                    "dream_pages", fix="fs-policy",
                    note="any name starting LICENSE/LICENCE/COPYING is dropped uncounted"),
        HostileCase("fs_sparse_600mb", "fs", partial(fc, _fs_sparse, data),
                    lambda b: (_plus(b, s=1, records=_rec(b),
                                     label="not recognised"),
                               _plus(b, q=1, records=_rec(b),
                                     limit=r"size|time|bytes|seconds",
                                     label="quarantined, limit named")),
                    "dream_pages", fix="isolation"),
        HostileCase("fs_random_binary_1mb", "fs",
                    partial(fc, lambda d, f: _write(f / "blob.html",
                                                   random.Random(18).randbytes(1 << 20)), data),
                    lambda b: (_plus(b, s=1, records=_rec(b),
                                     skip_reason=r"(?i)no importer"),),
                    "dream_pages", fix="none"),
        HostileCase("fs_same_content_twice", "fs", partial(fc, _fs_copy("copy.html"), data),
                    lambda b: (_plus(b, stored=1, records=_rec(b),
                                     totals={"files_already_ingested": 1, "stored_new": b.stored,
                                             "already_stored": 1},
                                     label="the copy counted as already stored")
                               if b else Expect(),),
                    "dream_pages", fix="accounting"),
    ]


# ---------------------------------------------------------------------------------- api


def cases(data: Path | None = None) -> list[HostileCase]:
    """Every hostile case, in a stable order (cheap: nothing is built or read here)."""
    d = data or data_dir()
    BASELINES.clear()
    BASELINES.update(_baselines(d))
    out = (_pages_cases(d) + _pgp_cases(d) + _csv_cases(d) + _sql_cases(d) + _blocks_cases(d)
           + _tagpack_cases(d) + _warc_cases(d) + _fs_cases(d))
    names = [c.name for c in out]
    if len(names) != len(set(names)) or any(c.kind not in KINDS for c in out) \
            or any(c.baseline is not None and c.baseline not in BASELINES for c in out):
        raise ValueError("hostile cases: duplicate names, unknown kinds or baselines")
    return out
