"""Every CLI error is one clear line and a non-zero exit, never a traceback (issue #18).

Bad values are refused before any work (ranges, ``nan``, flags that exclude each other);
a workspace held by a running ingest is named with the pid holding it; commands that
only read open the workspace read-only (several run side by side); a full disk says
"No space left on device", not what a rollback said afterwards.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from darkmap.cli import main
from darkmap.store.workspace import Workspace

DARKMAP = Path(sys.executable).with_name("darkmap")


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding an empty workspace ``ws``, a file, a folder and a user's folder."""
    base = tmp_path_factory.mktemp("bad")
    Workspace.init(base / "ws").close()
    (base / "a-file.txt").write_text("not a workspace\n", encoding="utf-8")
    (base / "a-folder").mkdir()
    (base / "mine").mkdir()
    (base / "mine" / "notes.txt").write_text("my case notes\n", encoding="utf-8")
    (base / "bad.json").write_text("{not json", encoding="utf-8")
    (base / "junk.bin").write_bytes(b"\xff\xfe\x00 not text")
    # the truth of another world: accounts and sales, no chain
    (base / "other.json").write_text(
        '{"accounts": {"m:a": {"actor": "x", "true_orders": 5}}}', encoding="utf-8")
    return base


# (arguments with {ws} {file} {dir} {mine} {base} {bad_json} filled in, exit code)
BAD: list[tuple[str, int]] = [
    # values out of range or nan: the library's own check, run as the line is read, a
    # usage error as the user guide says (found by a documentation audit: exit 1 before)
    ("link -w {ws} --threshold -1", 2),
    ("link -w {ws} --threshold 2", 2),
    ("link -w {ws} --threshold nan", 2),
    ("link -w {ws} --threshold inf", 2),
    ("targets -w {ws} --limit -5", 2),
    # values out of range, nan, wrong types, exclusive flags: usage errors (2)
    ("link -w {ws} --threshold half", 2),
    ("link -w {ws} --method bogus", 2),
    ("targets -w {ws} --limit many", 2),
    ("targets -w {ws} --json --csv", 2),
    ("keys -w {ws} --limit -1", 2),
    ("judge a b -w {ws} --same --different", 2),
    ("judge a b -w {ws} --different --unsure", 2),
    ("judge a b -w {ws}", 2),
    ("judge a b -w {ws} --same --withdraw", 2),
    ("assess -w {ws} --feedback-rate 0", 2),
    ("assess -w {ws} --feedback-rate 1.5", 2),
    ("assess -w {ws} --feedback-rate nan", 2),
    ("assess -w {ws} --feedback-rate-range 0.5 nan", 2),
    ("simulate --out {base}/sim --vendors 0", 2),
    ("simulate --out {base}/sim --markets 9", 2),
    ("simulate --out {base}/sim --coinjoin-rate -0.1", 2),
    ("simulate --out {base}/sim --orders-per-listing nan", 2),
    ("simulate --out {base}/sim --price-noise inf", 2),
    ("simulate --seed 1", 2),
    ("demo -w {base}/demo --vendors 0", 2),
    ("trace 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa -w {ws} --hops 0", 2),
    ("trace 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa -w {ws} --method bogus", 2),
    ("eval chain --truth {base}/missing.json -w {ws}", 2),
    ("chain cluster -w {ws} --method bogus", 2),
    ("tags import {base}/missing.yaml -w {ws}", 2),
    ("persona show", 2),
    ("report --bogus", 2),
    ("no-such-command", 2),
    ("--no-such-option", 2),
    # the machine, the workspace, the evidence: errors (1)
    ("init {file}", 1),
    ("ingest -w {file} {dir}", 1),
    ("status -w {file}", 1),
    ("status -w {base}/missing", 1),
    ("keys -w {dir}", 1),
    ("report -w {ws} -o {dir}", 1),
    ("report -w {ws} -o {base}/missing/report.html", 1),
    ("persona show dream:nobody -w {ws}", 1),
    ("judge dream:a dream:b --same -w {ws}", 1),
    ("demo -w {mine}", 1),
    ("demo -w {file}", 1),
    ("simulate --out {file}", 1),
    ("simulate --out {mine}", 1),
    ("eval linking --truth {bad_json} -w {ws}", 1),
    ("tags export {dir} -w {ws}", 1),
    # found by the error audit: tracebacks before
    ("eval chain --truth {bad_json} -w {ws}", 1),
    ("eval chain --truth {junk} -w {ws}", 1),
    ("chain import-etl {file} -w {ws}", 1),
    ("chain cluster -w {ws} --engine spark --master bogus://x", 1),
    ("importers --mapping {junk}", 1),
    ("ingest -w {ws} --mapping {junk} {dir}", 1),
    # ... a workspace created by a mistyped -w, a hung crawl, an empty file left behind
    ("chain import-etl {file} -w {base}/typo", 1),
    ("crawl nightshade -w {base}/typo --start http://x.onion/", 1),
    ("crawl nightshade -w {ws} --timeout 0 --start http://x.onion/", 1),
    ("export ftm -o {base}/e.json -w {ws} --persona nobody", 1),
    # ... scores over nothing, printed as if they meant something
    ("eval chain --truth {other} -w {ws}", 1),
    ("eval sales --truth {other} -w {ws}", 1),
    # ... a country that is none, taken as one (an option's value: a usage error)
    ("targets -w {ws} --country XX", 2),
    ("targets -w {ws} --country germany", 2),
    ("export ftm -o {base}/e.json -w {ws} --country ZZ", 2),
    ("ops agency add bka --country XX --contact desk --as ana -w {ws}", 1),
    # ... a host that is not one (uvicorn exited 3, after saying it was serving)
    ("serve -w {ws} --host 256.1.1.1", 1),
]


def _args(template: str, base: Path) -> list[str]:
    names = {"ws": base / "ws", "file": base / "a-file.txt", "dir": base / "a-folder",
             "mine": base / "mine", "base": base, "bad_json": base / "bad.json",
             "junk": base / "junk.bin", "other": base / "other.json"}
    return template.format(**{k: str(v) for k, v in names.items()}).split()


@pytest.mark.parametrize(("template", "code"), BAD, ids=[t for t, _ in BAD])
def test_a_bad_invocation_is_one_line(place: Path, template: str, code: int) -> None:
    res = CliRunner().invoke(main, _args(template, place))
    assert isinstance(res.exception, SystemExit), res.exception  # not a crash
    assert res.exit_code == code, (res.exit_code, res.stderr)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.stderr
    assert "Traceback" not in res.output


def test_the_bad_invocations_change_nothing(place: Path) -> None:
    """The user's folder and file are as they were; nothing was created."""
    for template, _ in BAD:
        CliRunner().invoke(main, _args(template, place))
    assert (place / "mine" / "notes.txt").read_text(encoding="utf-8") == "my case notes\n"
    assert sorted(p.name for p in (place / "mine").iterdir()) == ["notes.txt"]
    assert (place / "a-file.txt").read_text(encoding="utf-8") == "not a workspace\n"
    assert not any((place / "a-folder").iterdir())
    assert not (place / "sim").exists() and not (place / "demo").exists()
    assert not (place / "typo").exists() and not (place / "e.json").exists()
    with Workspace.open(place / "ws", read_only=True) as ws:
        assert ws.con.execute("SELECT count(*) FROM ops_agencies").fetchone() == (0,)


def test_messages_say_what_is_wrong(place: Path) -> None:
    def err(template: str) -> str:
        res = CliRunner().invoke(main, _args(template, place), prog_name="darkmap")
        return res.stderr.strip()

    assert err("link -w {ws} --threshold nan") == (
        "Error: darkmap link: Invalid value for '--threshold': threshold must be a "
        "probability in [0, 1], not nan (see `darkmap link --help`)")
    assert err("targets -w {ws} --limit -5") == (
        "Error: darkmap targets: Invalid value for '--limit': limit must be 0 or more (0 or "
        "None: all), not -5 (see `darkmap targets --help`)")
    assert err("simulate --out {base}/sim --style-noise nan") == (
        "Error: darkmap simulate: Invalid value for '--style-noise': 'nan' is not a number; "
        "give a value 0.0<=x<=1.0 (see `darkmap simulate --help`)")
    assert "'--limit': -1 is not in the range x>=0" in err("keys -w {ws} --limit -1")
    assert "give exactly one of --same, --different" in err(
        "judge a b -w {ws} --same --different")
    folder = place / "a-folder"
    assert err("report -w {ws} -o {dir}") == (
        f"Error: {folder}: is a folder; give the report a file name, e.g. "
        f"{folder / 'report.html'}")
    assert err("demo -w {mine}").startswith(f"Error: {place / 'mine'}: folder is not empty "
                                            "and was not created by `darkmap demo`")
    # a file given as the workspace: `darkmap init FILE` would fail too, so not offered
    assert err("status -w {file}") == (
        f"Error: {place / 'a-file.txt'}: not a darkmap workspace: it is a file, and a "
        "workspace is a folder (give the folder `darkmap init` made)")
    assert err("targets -w {ws} --country germany") == (
        "Error: darkmap targets: Invalid value for '--country': country 'germany': not an "
        "ISO 3166 two-letter code (germany is DE); give one such as DE, GB or US (see "
        "`darkmap targets --help`)")
    assert err("eval chain --truth {bad_json} -w {ws}") == (
        f"Error: {place / 'bad.json'}: cannot read truth file: not JSON (line 1, column 2: "
        "Expecting property name enclosed in double quotes); give the truth.json written "
        "by `darkmap simulate`")
    assert err("chain import-etl {file} -w {ws}").startswith(
        f"Error: {place / 'a-file.txt'}: not a Parquet file (")
    assert err("chain import-etl {file} -w {base}/typo") == (
        f"Error: {place / 'typo'}: no workspace there; create it with "
        f"`darkmap init {place / 'typo'}` or add --init")
    assert err("crawl nightshade -w {ws} --timeout 0 --start http://x.onion/") == (
        "Error: --timeout must be more than 0 seconds, --backoff 0 or more")
    assert err("chain cluster -w {ws} --engine spark --master bogus://x") == (
        "Error: Spark master 'bogus://x': give local[N], spark://host:port, "
        "k8s://https://host:port or yarn")
    assert err("importers --mapping {junk}") == (
        f"Error: {place / 'junk.bin'}: cannot read mapping: not UTF-8 text (byte 0)")
    assert "none of them has a sales estimate in this workspace" in err(
        "eval sales --truth {other} -w {ws}")


def test_a_message_quoting_market_text_stays_one_safe_line(place: Path) -> None:
    """A path or id taken from the evidence may hold newlines, escape sequences and bidi
    overrides: the error shows them as escapes, on one line."""
    evil = "evil\u202egnp\n\x1b[2Jx"
    res = CliRunner().invoke(main, ["status", "-w", str(place / evil)])
    assert res.exit_code == 1
    assert res.stderr.count("\n") == 1 and "\x1b" not in res.stderr and "\u202e" not in res.stderr
    assert "evil\\u202egnp\\x0a\\x1b[2Jx: not a darkmap workspace" in res.stderr
    res = CliRunner().invoke(main, ["persona", "show", f"dream:{evil}", "-w", str(place / "ws")])
    assert res.exit_code == 1 and res.stderr.count("\n") == 1
    assert "\x1b" not in res.stderr and "\u202e" not in res.stderr


# ------------------------------------------------------------------ a workspace in use


def _holds_lock(pid: int, db: Path) -> bool:
    """True when process ``pid`` holds a POSIX lock on file ``db`` (``/proc/locks``)."""
    try:
        ino = db.stat().st_ino
    except OSError:
        return False
    for line in Path("/proc/locks").read_text(encoding="ascii").splitlines():
        parts = line.split()
        if "POSIX" in parts and str(pid) in parts and any(
                p.endswith(f":{ino}") for p in parts):
            return True
    return False


def _stop_once_locked(proc: subprocess.Popen[bytes], db: Path) -> None:
    """Stop ``proc`` (SIGSTOP) at a moment it holds the lock on ``db``: it then holds it,
    deterministically, until continued."""
    while proc.poll() is None:
        os.kill(proc.pid, signal.SIGSTOP)
        if _holds_lock(proc.pid, db):
            return
        os.kill(proc.pid, signal.SIGCONT)
        time.sleep(0.005)
    raise AssertionError("the ingest ended before it held the workspace")


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(DARKMAP), *args], capture_output=True, text=True, timeout=300,
                          check=False, cwd=cwd)


@pytest.mark.skipif(not Path("/proc/locks").is_file(), reason="needs /proc/locks")
def test_a_workspace_held_by_a_running_ingest(tmp_path: Path, data_dir: Path) -> None:
    """While an ingest writes, every other command (reading or writing) gets one line
    naming the ingest's pid; once it finishes, they all run."""
    ws = tmp_path / "case"
    proc = subprocess.Popen([str(DARKMAP), "ingest", "-q", "--init", "-w", str(ws),
                             str(data_dir / "listings"), str(data_dir / "pages")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _stop_once_locked(proc, ws / "darkmap.duckdb")
        for args in (["keys"], ["persona", "search", "frost"], ["status"], ["report"],
                     ["link"], ["ingest", str(data_dir / "pages")]):
            res = _run(*args, "-w", str(ws))
            assert res.returncode == 1, (args, res.stderr)
            assert res.stderr.strip().splitlines() == [(
                f"Error: workspace {ws} is in use by another darkmap process (pid {proc.pid}); "
                "try again when it finishes (one process may write to a workspace, or "
                "several read it, never both)")], args
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
        _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    res = _run("keys", "-w", str(ws))
    assert res.returncode == 0 and "key blocks parsed" in res.stdout


def test_reading_commands_open_read_only(tmp_path: Path, data_dir: Path) -> None:
    """With another process holding the workspace read-only, every command that only
    reads runs (it opened read-only too); one that writes is told the workspace is in
    use."""
    ws = tmp_path / "case"
    assert _run("ingest", "-q", "--init", "-w", str(ws),
                str(data_dir / "pages" / "dream")).returncode == 0
    assert _run("link", "-w", str(ws)).returncode == 0
    assert _run("assess", "-w", str(ws)).returncode == 0
    code = ("import sys; from pathlib import Path; "
            "from darkmap.store.workspace import Workspace; "
            f"ws = Workspace.open(Path({str(ws)!r}), read_only=True); print('open', flush=True); "
            "sys.stdin.readline()")
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        for args in (["status"], ["keys"], ["persona", "search", "a"], ["targets"],
                     ["report", "-o", str(tmp_path / "r.html")],
                     ["tags", "export", str(tmp_path / "t.yaml")]):
            res = _run(*args, "-w", str(ws))
            assert res.returncode == 0, (args, res.stderr)
        res = _run("link", "-w", str(ws))
        assert res.returncode == 1 and "is in use by another darkmap process" in res.stderr
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(timeout=30)
        if holder.stdout is not None:
            holder.stdout.close()


# ------------------------------------------------------------------------- a full disk


def _can_mount_tmpfs() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs tmpfs /mnt"],
                           capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not _can_mount_tmpfs(), reason="needs unshare and a tmpfs mount")
@pytest.mark.parametrize("size", ["3m", "20m"])
def test_a_full_disk_says_so(tmp_path: Path, data_dir: Path, size: str) -> None:
    """An ingest onto a small tmpfs (in a private mount namespace) fills it: at 3 MB while
    writing a capture, at 20 MB while DuckDB commits. Either way the one line says "No
    space left on device" (not "cannot rollback - no transaction is active")."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = (f"mount -t tmpfs -o size={size} tmpfs {mnt} && exec {DARKMAP} ingest -q --init "
              f"-w {mnt}/ws {data_dir / 'listings'} {data_dir / 'pages'}")
    res = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True,
                         text=True, timeout=300, check=False, env=os.environ)
    assert res.returncode == 1, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.stderr
    assert lines[0].endswith("No space left on device"), lines


# ------------------------------------------- found by the error audit: steps out of order


def test_serve_on_a_port_in_use_says_so_in_one_line(place: Path) -> None:
    """uvicorn printed "darkmap workbench on http://..." and then its own log line, and
    exited 3 (a code the CLI does not use); now one line names the port, exit 1."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        res = CliRunner().invoke(main, ["serve", "-w", str(place / "ws"), "--port", str(port)])
    assert res.exit_code == 1, res.output
    assert res.stdout == ""  # no "workbench on ..." line for a workbench that never ran
    assert res.stderr.strip() == (
        f"Error: port {port} on 127.0.0.1 is in use by another program (another `darkmap "
        "serve`?); stop it or choose another --port")


def test_scores_need_their_steps_first(tmp_path: Path) -> None:
    """`eval chain` before `chain cluster`, `eval sales` before `assess`: refused, naming the
    step (they printed "precision 1.0 recall 0.0" and an empty table, exit 0); once the
    steps ran, both score."""
    world, ws = tmp_path / "world", tmp_path / "ws"
    cli = CliRunner()

    def run(*args: str) -> Any:
        return cli.invoke(main, [*args, "-w", str(ws)] if args[0] != "simulate" else list(args))

    assert run("simulate", "--out", str(world), "--vendors", "3", "--seed", "3").exit_code == 0
    assert run("ingest", "-q", "--init", str(world / "pages")).exit_code == 0
    truth = str(world / "truth.json")
    res = run("eval", "chain", "--truth", truth)
    assert res.exit_code == 1 and "is in this workspace's chain data" in res.stderr
    assert "`darkmap chain load` not run" in res.stderr
    assert run("chain", "load", str(world / "chain")).exit_code == 0
    res = run("eval", "chain", "--truth", truth)
    assert res.exit_code == 1 and res.stdout == ""
    assert res.stderr.strip() == (
        "Error: no clustering in this workspace: run `darkmap chain cluster` first (each "
        "address would count as a wallet of its own)")
    res = run("eval", "sales", "--truth", truth)
    assert res.exit_code == 1 and res.stdout == ""
    assert "(wrong truth file or workspace, or `darkmap assess` not run)" in res.stderr
    assert run("chain", "cluster").exit_code == 0
    assert run("assess", "-q").exit_code == 0
    res = run("eval", "chain", "--truth", truth)
    assert res.exit_code == 0 and res.stdout.startswith("clustering: precision "), res.stderr
    res = run("eval", "sales", "--truth", truth)
    assert res.exit_code == 0 and "scored 3 accounts" in res.stdout, res.output
    # no judgement yet: no precision of 0.000 (95% 0.000-0.000), but what to do
    assert run("link", "-q").exit_code == 0
    res = run("review", "--estimate")
    assert res.exit_code == 0 and "precision of merged pairs" not in res.stdout
    assert "no precision or recall to estimate yet: judge the pairs `darkmap review` " \
           "proposes" in res.stdout


def test_a_package_before_link_says_what_it_lacks(tmp_path: Path, data_dir: Path) -> None:
    """Assessed but not linked: the package was refused with "--persona needs personas"
    (an option `package` does not have) and left an empty entities.ftm.json; now it is
    built and says what is left out and why. Neither step run: it says that too."""
    ws = tmp_path / "ws"
    cli = CliRunner()

    def run(*args: str) -> Any:
        return cli.invoke(main, [*args, "-w", str(ws)])

    assert run("ingest", "-q", "--init", str(data_dir / "pages" / "hansa")).exit_code == 0
    assert run("ops", "agency", "add", "fbi", "--country", "US", "--contact", "desk",
               "--as", "ana").exit_code == 0
    assert run("ops", "user", "add", "ana", "--agency", "fbi", "--role", "admin",
               "--as", "ana").exit_code == 0
    res = run("package", "--country", "US", "--out", str(tmp_path / "p1"), "--as", "ana")
    assert res.exit_code == 0, res.output
    assert "0 personas" in res.stdout
    assert "not included: personas (no jurisdiction estimates yet: run `darkmap link`, " \
           "then `darkmap assess`)" in res.stdout
    assert run("assess", "-q").exit_code == 0
    res = run("package", "--country", "US", "--out", str(tmp_path / "p2"), "--as", "ana")
    assert res.exit_code == 0, res.output
    assert "not included: FollowTheMoney entities (the workspace has no personas yet: " \
           "run `darkmap link`, then `darkmap assess`)" in res.stdout
    assert sorted(p.name for p in (tmp_path / "p2").iterdir()) == ["package.html",
                                                                   "package.json"]


def test_an_empty_target_list_says_why(place: Path) -> None:
    res = CliRunner().invoke(main, ["targets", "-w", str(place / "ws")])
    assert res.exit_code == 0
    assert res.stdout.strip() == ("no persona to rank: the workspace has no listing (ingest "
                                  "pages first: `darkmap ingest`)")


# ------------------------------ found by the error audit: judgement calls, decided


def _free_port() -> int:
    """A loopback port nothing listens on (bound, then let go)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_crawl_without_tor_says_so(tmp_path: Path) -> None:
    """Nothing listening at --proxy: the crawl ended "done", 0 pages, exit 0, no hint;
    now one line names the proxy, says nothing was requested and what to do, exit 1, and
    no job is created (it is checked before anything is written)."""
    ws, port = tmp_path / "ws", _free_port()
    Workspace.init(ws).close()
    res = CliRunner().invoke(main, ["crawl", "nightshade", "-w", str(ws), "--start",
                                    "http://x.onion/", "--proxy", f"socks5h://127.0.0.1:{port}"])
    assert res.exit_code == 1 and res.stdout == "", res.output
    message = (f"the proxy at 127.0.0.1:{port} refused the connection (nothing listens "
               "there): no request was made, no crawl was started; start Tor (`sudo "
               "systemctl start tor`, or run `tor`), or point --proxy socks5h://HOST:PORT "
               "at a SOCKS port that runs, then run the same command again")
    assert res.stderr.splitlines() == [f"Error: {message}"]
    res = CliRunner().invoke(main, ["crawl", "nightshade", "-w", str(ws), "--status", "--json"])
    assert res.exit_code == 1 and "never crawled" in res.stderr


@pytest.mark.parametrize("command", ["chain load", "tags import"])
def test_loading_what_is_not_chain_data_is_refused(tmp_path: Path, data_dir: Path,
                                                   command: str) -> None:
    """A saved market page or a listing CSV given to `chain load` or `tags import` was
    captured, quarantined as "not a recognised Bitcoin format" (or "not YAML") and the
    command exited 0. Now it is refused before anything is stored: one line naming the
    file, what was expected and which command reads it, exit 1; a good file given with it
    is not loaded either."""
    ws = tmp_path / "ws"
    Workspace.init(ws).close()
    with Workspace.open(ws, read_only=True) as w:
        before = w.table_counts()
    page = data_dir / "pages" / "dream" / "login_page" / "login_0.html"
    listing = data_dir / "listings" / "hansa-2016-12.csv"
    good = data_dir / "bitcoin" / "megatx.bin"
    tagpack = tmp_path / "exchanges.yaml"
    tagpack.write_text("title: exchanges\ncreator: test\ntags:\n  - address: "
                       "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa\n    label: genesis\n",
                       encoding="utf-8")
    chain_expected = ("expected Bitcoin blocks or transactions (blk*.dat, a raw block or "
                      "transaction, hex lines, getblock or Esplora JSON, a UTXO file)")
    tags_expected = ("expected GraphSense TagPack YAML: a header (title, creator...) and a "
                     "top-level `tags:` list of addresses with their labels")
    what, expected, verb = (("chain data", chain_expected, "loaded") if command == "chain load"
                            else ("a TagPack", tags_expected, "imported"))
    first = good if command == "chain load" else tagpack
    for path, importer in ((page, "pages"), (listing, "csv")):
        res = CliRunner().invoke(main, [*command.split(), str(first), str(path), "-w", str(ws)])
        assert res.exit_code == 1 and res.stdout == "", res.output
        line = (f"Error: {path}: not {what} (`darkmap ingest` reads it: its `{importer}` "
                f"importer does); {expected}; nothing was {verb}")
        assert res.stderr.splitlines() == [line]
    res = CliRunner().invoke(main, [*command.split(), str(data_dir / "pages" / "dream"),
                                    "-w", str(ws)])
    assert res.exit_code == 1
    assert res.stderr.startswith(f"Error: {data_dir / 'pages' / 'dream'}: no file in this "
                                 f"folder is {what} (")
    with Workspace.open(ws, read_only=True) as w:
        assert w.table_counts() == before  # no capture, no quarantine row, no run
    assert not [p for p in (ws / "captures").rglob("*") if p.is_file()]
    res = CliRunner().invoke(main, [*command.split(), str(first), "-w", str(ws)])
    assert res.exit_code == 0, res.output


def test_deconflict_hash_checks_the_whole_file_before_printing(tmp_path: Path) -> None:
    """`deconflict hash` printed its "kind,value" header (and the lines before a bad one)
    and then failed, leaving half a CSV where it was redirected; now every line is read
    and hashed first: a file that is not UTF-8, or a bad kind, prints nothing but the
    one error line naming the file and the byte or selector."""
    key = tmp_path / "taskforce.key"
    key.write_bytes(bytes(range(32)))
    good = "kind,value\nemail,Vendor@Example.org\nphone,0049 30 1234567\n"
    raw = tmp_path / "raw.csv"
    raw.write_bytes(good.encode() + b"handle,caf\xe9\n")
    res = CliRunner().invoke(main, ["deconflict", "hash", str(raw), "--key", str(key)])
    assert res.exit_code == 1 and res.stdout == "", res.output
    line = (f"Error: {raw}: cannot read selectors: not UTF-8 text (byte {len(good) + 10}); "
            "give a CSV file of kind,value lines")
    assert res.stderr.splitlines() == [line]
    raw.write_text(good + "colour,blue\n", encoding="utf-8")
    res = CliRunner().invoke(main, ["deconflict", "hash", str(raw), "--key", str(key)])
    assert res.exit_code == 1 and res.stdout == "", res.output
    assert res.stderr.startswith(f"Error: {raw}: line 4: selector kind 'colour': one of ")
    raw.write_text(good, encoding="utf-8")
    res = CliRunner().invoke(main, ["deconflict", "hash", str(raw), "--key", str(key)])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0] == "kind,value,form" and len(lines) == 3
    assert lines[1].startswith("email,") and lines[1].endswith(",exact")
    assert len(lines[1]) == len("email,") + 64 + len(",exact")


@pytest.mark.parametrize("command", ["chain cluster", "link"])
def test_a_spark_master_that_is_not_there_fails_in_seconds(place: Path, command: str) -> None:
    """`--engine spark --master spark://HOST:PORT` with nothing listening there started a
    JVM, retried for a minute and ended in a Java stack trace (exit 1, 200 lines). The
    master's port is now tried before any JVM starts: one line naming it, in seconds."""
    port = _free_port()
    t0 = time.monotonic()
    res = CliRunner().invoke(main, [*command.split(), "-w", str(place / "ws"), "--engine",
                                    "spark", "--master", f"spark://127.0.0.1:{port}"])
    took = time.monotonic() - t0
    assert res.exit_code == 1 and res.stdout == "", res.output
    line = (f"Error: Spark master spark://127.0.0.1:{port}: 127.0.0.1:{port} refused the "
            "connection (nothing listens there); start the master (`start-master.sh` on "
            "its host) or check --master, or run on this machine with --master local[N]")
    # (`link` clears its status line: an empty line on a stderr that is not a terminal)
    assert [ln for ln in res.stderr.splitlines() if ln.strip()] == [line]
    assert took < 15, took


# -- Ctrl-C (found by a kill-resilience test) ------------------------------------------------

_INTERRUPT_HOOK = '''
import os, signal, sys
# Ctrl-C as a terminal delivers it: a shell starts a background job (make test run with
# `&`) with SIGINT ignored, and Python then leaves it ignored
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.argv[0] = "darkmap"
{patch}
from darkmap.cli import run
run()
'''


def _with_hook(patch: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``darkmap ARGS`` as the console script runs it, after ``patch`` (which sends the
    process a real SIGINT at a chosen point)."""
    code = _INTERRUPT_HOOK.format(patch=patch)
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=300, check=False)


_SIGNAL_IN_A_QUERY = '''
import darkmap.store.workspace as w
def counts(self):
    os.kill(os.getpid(), signal.{signal})   # as DuckDB starts a statement of minutes
    self.con.execute("SELECT count(*) FROM range(50000000000) t(x) WHERE x % 7 = 3").fetchall()
w.Workspace.table_counts = counts
'''


def test_ctrl_c_during_a_query_is_one_line_and_exit_130(place: Path) -> None:
    """Ctrl-C while DuckDB ran a statement printed a 36-line traceback ending in
    ``RuntimeError: Query interrupted`` (DuckDB's own error for it), or click's
    ``Aborted!`` with status 1, the status of a workspace error. Now one line and 130."""
    res = _with_hook(_SIGNAL_IN_A_QUERY.format(signal="SIGINT"), "status", "-w",
                     str(place / "ws"))
    assert res.returncode == 130, (res.returncode, res.stderr)
    assert res.stderr.strip() == (
        "Error: interrupted (Ctrl-C): a write not yet committed was rolled back; what the "
        "command had committed stays (`darkmap status` shows the workspace)")
    patch = '''
import darkmap.store.workspace as w
def counts(self):
    raise KeyboardInterrupt
w.Workspace.table_counts = counts
'''
    res = _with_hook(patch, "status", "-w", str(place / "ws"))
    assert res.returncode == 130 and "Traceback" not in res.stderr
    assert res.stderr.startswith("Error: interrupted (Ctrl-C)")


def test_ctrl_c_while_a_record_is_written_is_held_until_it_is_reported(tmp_path: Path) -> None:
    """Ctrl-C during `ops seizure add` once stopped the command after the seizure and its
    audit entry were committed: no id printed, and the analyst who ran it again stored the
    seizure twice. The write and its line go together; the Ctrl-C is said after them."""
    ws = tmp_path / "ws"
    Workspace.init(ws).close()
    for args in (["ops", "agency", "add", "bka", "--country", "DE", "--contact", "desk",
                  "--as", "setup"],
                 ["ops", "user", "add", "ana", "--agency", "bka", "--role", "admin",
                  "--as", "setup"],
                 ["ops", "case", "add", "Vendor X", "--provenance", "file 12", "--as", "ana"]):
        res = CliRunner().invoke(main, [*args, "-w", str(ws)])
        assert res.exit_code == 0, res.output
    case = res.output.split()[1]
    patch = '''
import darkmap.ops.records as r
add = r.add_record
def interrupted(*a, **k):
    os.kill(os.getpid(), signal.SIGINT)   # Ctrl-C as the write begins
    return add(*a, **k)
r.add_record = interrupted
'''
    res = _with_hook(patch, "ops", "seizure", "add", "--case", case, "--drug", "heroin:10",
                     "--provenance", "PV 88", "--as", "ana", "-w", str(ws))
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("seizure seizure-") and "recorded in compartment" in res.stdout
    assert "note: Ctrl-C came while the command wrote its records; that was finished first" \
        in res.stderr
    with Workspace.open(ws, read_only=True) as w:
        kinds = [k for (k,) in w.con.execute("SELECT kind FROM ops_records").fetchall()]
    assert sorted(kinds) == ["case", "seizure"]


def test_sigterm_stops_a_command_as_ctrl_c_does(place: Path, tmp_path: Path,
                                                data_dir: Path) -> None:
    """SIGTERM (`kill PID`, a service stopping) ended the process where it stood: a
    partial export's hidden file was left behind and nothing was said. The console script
    turns it into an interrupt: what the command left unfinished is undone, and it ends
    with one line and status 143."""
    res = _with_hook(_SIGNAL_IN_A_QUERY.format(signal="SIGTERM"), "status", "-w",
                     str(place / "ws"))
    assert res.returncode == 143, (res.returncode, res.stderr)
    assert res.stderr.strip() == (
        "Error: terminated (SIGTERM): a write not yet committed was rolled back; what the "
        "command had committed stays (`darkmap status` shows the workspace)")
    # an export stopped as it writes: neither the output nor its partial file is left
    patch = '''
import darkmap.export.graph as g
real = g.xml_text
n = [0]
def text(*a, **k):
    n[0] += 1
    if n[0] == 50:
        os.kill(os.getpid(), signal.SIGTERM)
    return real(*a, **k)
g.xml_text = text
'''
    out = tmp_path / "out.gexf"
    ws = tmp_path / "ws"
    res = _with_hook("", "ingest", "--init", "-q", "-w", str(ws), str(data_dir / "pages" / "dream"))
    assert res.returncode == 0, res.stderr
    res = _with_hook(patch, "export", "gexf", "-o", str(out), "-w", str(ws))
    assert res.returncode == 143, (res.returncode, res.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ws"]
