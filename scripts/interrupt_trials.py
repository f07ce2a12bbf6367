"""Trials of Ctrl-C and SIGTERM sent into ``darkmap ingest`` of a big file, at spread times.

Usage: python scripts/interrupt_trials.py [--trials 16] [--signals INT,TERM] [--jobs 1,2]
       [--rows 206822] [--file PATH] [--keep DIR] [--src SRC] [--span LO,HI]

Each trial runs ``darkmap ingest --init -q --json -j J`` of one big file (default: the
Hansa CSV repeated with new listing ids to ``--rows`` rows, about 31 MB, as
``bench/ingest_scale.py`` makes it; ``--file`` for another, e.g. a seized SQL dump) into a
new workspace, with the darkmap of ``--src`` (default: this checkout's), in a session of
its own, under ``python -X faulthandler`` (a crash prints every thread's Python stack).
After a delay it sends SIGINT to the process group (Ctrl-C at a terminal) or SIGTERM to
the process (``kill PID``). The delays of each signal and job count are spread over the
span of one uninterrupted run of that job count (measured first), so the signals land in
every step of the file: its capture, its reading, its flushes, its commit (``--span``
gives the delays' range in seconds instead, the same for every job count: on a busy
machine the measured run is longer than the trials' runs, and the signals of its last
delays come after the end).

Each trial's outcome is its exit status (130, 143; 0: the run ended before the signal
took effect; -11: killed by SIGSEGV) and whether standard error ends with the one
``Error: interrupted``/``terminated`` line. A crash's standard error (the faulthandler
stacks) is kept under ``--keep`` (default: the run's temporary folder). The kernel's new
``segfault`` lines are read from ``dmesg`` where it may be read (a fault faulthandler
reported is usually not logged there). Prints JSON: per signal and job count the trials,
the exit statuses counted, the crashes (delay, status, the stacks' file, the first lines of
the crashed thread's stack), and the totals. Never passes or fails (exit 0): the figures
are for the reader. On a shared machine, run it under ``nice``.

Used to find and check the fix of a SIGSEGV after Ctrl-C or SIGTERM in a big CSV's
ingest (DuckDB importing ``pyarrow.dataset`` inside a statement: see
:func:`darkmap.store.writer.tables_scannable`).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import suppress
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from ingest_scale import make_csv  # a bench script, not a package

HERE = Path(__file__).resolve().parents[1]

ENTRY = "import sys; from darkmap.cli import run; sys.argv[0] = 'darkmap'; run()"
GOLDEN = 0.6180339887498949
"""Trial i's delay is the span's fraction frac(i * GOLDEN): spread, none repeated."""


SRC = [HERE / "src"]
"""The darkmap source tree the trials run (``--src``)."""


def command(ws: Path, path: Path, jobs: int) -> list[str]:
    """The ingest of ``path`` into the new workspace ``ws`` with ``jobs``."""
    return [sys.executable, "-X", "faulthandler", "-c", ENTRY, "ingest", "--init", "-q",
            "--json", "-j", str(jobs), "-w", str(ws), str(path)]


def environment() -> dict[str, str]:
    """The trials' darkmap (:data:`SRC`) first on the path."""
    src = str(SRC[0])
    old = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": src if not old else f"{src}{os.pathsep}{old}"}


def uninterrupted_seconds(path: Path, jobs: int, work: Path) -> float:
    """Wall seconds of one whole ingest of ``path`` with ``jobs``."""
    ws = work / f"whole-j{jobs}"
    start = time.monotonic()
    subprocess.run(command(ws, path, jobs), env=environment(), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.monotonic() - start
    remove_tree(ws)
    return seconds


def remove_tree(path: Path) -> None:
    """Remove a trial's workspace (its files may be read-only captures)."""
    subprocess.run(["rm", "-rf", str(path)], check=False)


def one_trial(path: Path, jobs: int, sig: str, delay: float, ws: Path) -> dict[str, Any]:
    """Signal ``sig`` (INT or TERM) sent ``delay`` s into an ingest: its outcome."""
    proc = subprocess.Popen(command(ws, path, jobs), env=environment(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    time.sleep(delay)
    sent = proc.poll() is None
    if sent:
        if sig == "INT":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate()
    text = err.decode(errors="replace")
    last = text.strip().splitlines()[-1] if text.strip() else ""
    return {"delay": round(delay, 3), "sent": sent, "status": proc.returncode,
            "one_line": last.startswith(("Error: interrupted", "Error: terminated")),
            "stderr": text}


def main_stack(stderr: str, lines: int = 12) -> list[str]:
    """The first ``lines`` of the crashed process's current (or main) thread's stack."""
    out = stderr.splitlines()
    for i, line in enumerate(out):
        if line.startswith(("Current thread", "Thread")) and "most recent call first" in line:
            return out[i:i + lines]
    return out[:lines]


def segfault_lines() -> list[str]:
    """The kernel's ``segfault`` lines so far ([] where ``dmesg`` may not be read)."""
    try:
        res = subprocess.run(["dmesg"], capture_output=True, text=True, check=False)
    except OSError:
        return []
    return [ln for ln in res.stdout.splitlines() if "segfault" in ln]


def run_trials(path: Path, jobs: int, sig: str, trials: int, span: tuple[float, float],
               work: Path, keep: Path) -> dict[str, Any]:
    """``trials`` trials of one signal and job count; their statuses and crashes."""
    statuses: Counter[str] = Counter()
    crashes = []
    not_one_line = 0
    for i in range(trials):
        delay = span[0] + (span[1] - span[0]) * ((i * GOLDEN) % 1.0)
        ws = work / f"{sig}-j{jobs}-{i}"
        res = one_trial(path, jobs, sig, delay, ws)
        statuses[str(res["status"])] += 1
        if res["status"] in (130, 143) and not res["one_line"]:
            not_one_line += 1
        if res["status"] not in (0, 130, 143):
            kept = keep / f"{sig}-j{jobs}-{i}.stderr"
            kept.write_text(res["stderr"])
            crashes.append({"delay": res["delay"], "status": res["status"],
                            "stderr": str(kept), "stack": main_stack(res["stderr"])})
        remove_tree(ws)
    return {"signal": sig, "jobs": jobs, "trials": trials,
            "span_s": [round(s, 2) for s in span], "statuses": dict(statuses),
            "interrupted_without_the_line": not_one_line, "crashes": crashes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=16, help="per signal and job count")
    ap.add_argument("--signals", default="INT,TERM")
    ap.add_argument("--jobs", default="1,2")
    ap.add_argument("--rows", type=int, default=206_822)
    ap.add_argument("--file", type=Path, help="the big file (default: a repeated Hansa CSV)")
    ap.add_argument("--keep", type=Path, help="where crashes' stderr is kept")
    ap.add_argument("--src", type=Path, help="the darkmap source tree to run")
    ap.add_argument("--span", help="LO,HI: the delays' range in seconds (default: measured)")
    args = ap.parse_args()
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # started in the background (`cmd &`, nohup): the ingests would inherit SIGINT
        # ignored, and every Ctrl-C trial would run to its end (status 0)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.src is not None:
        SRC[0] = args.src.resolve()
    work = Path(tempfile.mkdtemp(prefix="darkmap-interrupts-"))
    keep = args.keep or work / "crashes"
    keep.mkdir(parents=True, exist_ok=True)
    path = args.file
    if path is None:
        path = work / "big.csv"
        make_csv(path, args.rows)
    before = set(segfault_lines())
    results = []
    for jobs in (int(j) for j in args.jobs.split(",")):
        if args.span:
            lo, hi = (float(x) for x in args.span.split(","))
            span = (lo, hi)
        else:
            span = (0.3, max(0.6, uninterrupted_seconds(path, jobs, work) * 0.97))
        results.extend(run_trials(path, jobs, sig, args.trials, span, work, keep)
                       for sig in args.signals.split(","))
    statuses: Counter[str] = Counter()
    for r in results:
        statuses.update(r["statuses"])
    print(json.dumps({
        "src": str(SRC[0]), "file": str(path), "bytes": path.stat().st_size, "results": results,
        "total": {"trials": sum(r["trials"] for r in results), "statuses": dict(statuses),
                  "crashes": sum(len(r["crashes"]) for r in results)},
        "dmesg_segfaults": sorted(set(segfault_lines()) - before), "kept": str(keep),
    }, indent=2))
    if args.file is None:
        path.unlink()
    for left in (keep, work):
        with suppress(OSError):
            left.rmdir()  # kept only if a crash left its stacks there


if __name__ == "__main__":
    main()
