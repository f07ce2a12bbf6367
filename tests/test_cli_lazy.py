"""The CLI starts without the heavy libraries: ``--help`` imports no command module and
none of scipy, scikit-learn, psycopg, Jinja2, rich, pyarrow, numpy, pandas or DuckDB; a
command imports its own module only, and ``darkmap ingest --help`` none of pandas, DuckDB,
numpy, pyarrow or scipy; ingesting one CSV loads no exporter and the readers of no other
format. The help summaries listed without loading match the commands' own help."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from darkmap.cli import COMMANDS, main
from darkmap.plugins import exporter_names, exporters
from darkmap.store.workspace import Workspace

SRC = Path(__file__).resolve().parents[1] / "src"
HEAVY = ("scipy", "sklearn", "psycopg", "jinja2", "rich", "pyarrow", "numpy", "duckdb",
         "pandas")
HEAVY_FOR_HELP = (*HEAVY, "uvicorn", "fastapi", "starlette", "cryptography", "pyspark")


def _fresh_python(code: str, timeout: float = 120, check: bool = True,
                  drop: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter that imports this checkout's darkmap (the
    environment's variables ``drop`` left out); its completed process."""
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(SRC), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, check=check, timeout=timeout)


def _modules_after(args: list[str]) -> tuple[str, list[str]]:
    """Run ``darkmap ARGS`` in a fresh interpreter; its output and the modules it loaded."""
    code = ("import json, sys\n"
            "from darkmap.cli import main\n"
            "try:\n"
            f"    main.main({args!r}, prog_name='darkmap', terminal_width=80)\n"
            "except SystemExit:\n"
            "    pass\n"
            "sys.stderr.write('\\nMODULES ' + json.dumps(sorted(sys.modules)))\n")
    out = _fresh_python(code)
    mods = json.loads(out.stderr.rsplit("MODULES ", 1)[1])
    return out.stdout, mods


def test_help_imports_no_command_module_and_no_heavy_library() -> None:
    text, mods = _modules_after(["--help"])
    assert "ingest" in text and "wallet" in text
    assert not [m for m in mods if m.startswith("darkmap.cli.cmd_")]
    loaded = sorted({m.split(".")[0] for m in mods} & set(HEAVY))
    assert not loaded, f"--help imported {loaded}"


_HELP_WALK = """import json, sys
import click
from darkmap.cli import main

def paths(cmd, prefix):
    yield prefix
    if isinstance(cmd, click.Group):
        ctx = click.Context(cmd)
        for name in cmd.list_commands(ctx):
            yield from paths(cmd.get_command(ctx, name), [*prefix, name])

top = main.get_command(click.Context(main), NAME)
shown = []
for path in paths(top, [NAME]):
    try:
        main.main([*path, "--help"], prog_name="darkmap")
    except SystemExit as exc:
        shown.append([path, exc.code])
sys.stderr.write("\\nMODULES " + json.dumps([shown, sorted(sys.modules)]))
"""


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_commands_help_loads_no_heavy_library(name: str) -> None:
    """``darkmap CMD --help``, and the help of each of its subcommands, imports none of
    the heavy libraries: each command imports its library when it runs (#21; a command's
    help took up to 1.5 s loading numpy, scipy, DuckDB, Jinja2, psycopg and uvicorn)."""
    out = _fresh_python(_HELP_WALK.replace("NAME", repr(name)))
    shown, mods = json.loads(out.stderr.rsplit("MODULES ", 1)[1])
    assert shown and all(code == 0 for _, code in shown), shown
    assert out.stdout.count("Usage: darkmap") == len(shown)
    loaded = sorted({m.split(".")[0] for m in mods} & set(HEAVY_FOR_HELP))
    assert not loaded, f"darkmap {name} --help (or a subcommand's) imported {loaded}"


def test_export_help_lists_the_registry_without_loading_it() -> None:
    """``darkmap export --help`` lists the formats by entry point name (the exporters'
    modules import the store): the same names the loaded registry holds."""
    text, mods = _modules_after(["export", "--help"])
    assert "darkmap.export.ftm" not in mods
    names = exporter_names()
    assert names == sorted(exporters())
    assert f"{{{'|'.join(names)}}}" in text.replace("\n", "").replace(" ", "")


def test_a_command_imports_its_module_only() -> None:
    text, mods = _modules_after(["importers"])
    assert "csv" in text
    cmds = sorted(m for m in mods if m.startswith("darkmap.cli.cmd_"))
    assert cmds == ["darkmap.cli.cmd_ingest"]
    assert not {m.split(".")[0] for m in mods} & {"scipy", "sklearn", "psycopg", "jinja2"}


def test_ingest_help_imports_no_store_and_no_heavy_library() -> None:
    """``darkmap ingest --help`` (and a command's help in general) reads no workspace: it
    needs none of DuckDB, numpy, pyarrow, pandas or scipy (click's exit for the help once
    went through the store's error check, which imports DuckDB)."""
    for args in (["ingest", "--help"], ["verify", "--help"], ["importers", "--help"]):
        text, mods = _modules_after(args)
        assert "Usage: darkmap" in text and "--help" in text, (args, text[:300])
        loaded = sorted({m.split(".")[0] for m in mods} & set(HEAVY))
        assert not loaded, f"darkmap {' '.join(args)} imported {loaded}"
        assert "darkmap.collect.ingest" not in mods and "darkmap.plugins" not in mods


def test_listed_summaries_match_the_commands_help() -> None:
    wide = 10_000
    for name, (_, summary) in COMMANDS.items():
        real = main.commands[name]  # loads every command
        stand_in = click.Command(name, help=summary)
        assert stand_in.get_short_help_str(wide) == real.get_short_help_str(wide), name


def test_every_command_is_listed() -> None:
    own = {"init", "status"}  # defined in darkmap.cli.common itself
    public = {n for n, c in main.commands.items() if not c.hidden}
    assert public - own == set(COMMANDS)


def test_help_lists_the_same_rows_loaded_or_not() -> None:
    lazy_text, _ = _modules_after(["--help"])
    main.commands  # noqa: B018 - load every command
    from click.testing import CliRunner
    loaded = CliRunner().invoke(main, ["--help"], prog_name="darkmap", terminal_width=80)
    assert loaded.exit_code == 0
    assert lazy_text == loaded.output


def _script_run(args: list[str], entry: str) -> tuple[str, list[str]]:
    """Run ``darkmap ARGS`` through ``darkmap.cli.ENTRY`` (``run``: the console script)
    in a fresh interpreter; its stdout and the modules it loaded."""
    code = ("import json, sys, atexit\n"
            f"from darkmap.cli import {entry} as entry\n"
            "atexit.register(lambda: sys.stderr.write("
            "'\\nMODULES ' + json.dumps(sorted(sys.modules))))\n"
            f"sys.argv = ['darkmap', *{args!r}]\n"
            "entry()\n")
    out = _fresh_python(code, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout, json.loads(out.stderr.rsplit("MODULES ", 1)[1])


def test_the_script_ingests_without_pandas_and_stores_the_same(tmp_path: Path,
                                                               data_dir: Path) -> None:
    """DuckDB imports pandas on a process's first parameterised query when it is
    installed (pyspark's dependency): the console script defers it, and an ingest through
    it stores exactly what one through ``main`` (pandas importable) stores."""
    import importlib.util


    csv = data_dir / "listings" / "hansa-2016-12.csv"
    counts = {}
    for entry in ("run", "main"):
        ws = tmp_path / entry
        text, mods = _script_run(["ingest", "--init", "-w", str(ws), str(csv)], entry)
        assert "listing 14755" in text, text
        has_pandas = any(m.split(".")[0] == "pandas" for m in mods)
        if entry == "run":
            assert not has_pandas
        elif importlib.util.find_spec("pandas") is not None:
            assert has_pandas  # what the deferral saves: without it DuckDB loads pandas
        with Workspace.open(ws, read_only=True) as w:
            counts[entry] = w.table_counts()
    volatile = {"ingest_runs", "runs"}
    assert {k: v for k, v in counts["run"].items() if k not in volatile} == \
        {k: v for k, v in counts["main"].items() if k not in volatile}


def test_the_spark_engine_lifts_the_deferral() -> None:
    from darkmap import deferred_imports
    from darkmap.chain.spark import sql_module

    deferred_imports.defer_import("pandas")
    try:
        assert "pandas" in deferred_imports.deferred()
        assert sql_module().__name__ == "pyspark.sql"
        assert "pandas" not in deferred_imports.deferred()
    finally:
        deferred_imports.allow_import("pandas")


def test_every_eval_subcommand_is_reachable_in_a_fresh_process() -> None:
    """``eval drugs`` and ``eval chain`` are registered by other command modules: a fresh
    process that loads only ``cmd_evaluate`` must still find them (it did not)."""
    text, _ = _modules_after(["eval", "--help"])
    listed = {line.split()[0] for line in text.split("Commands:", 1)[1].splitlines()
              if line.strip()}
    assert listed == {"chain", "drugs", "linking", "sales"}
    for sub, option in (("drugs", "--labels"), ("chain", "--truth"), ("sales", "--truth")):
        text, _ = _modules_after(["eval", sub, "--help"])
        assert option in text, (sub, text[:300])


def test_ingesting_a_csv_loads_only_what_reads_it(tmp_path: Path, data_dir: Path) -> None:
    """Choosing the importer of a CSV loads every importer, each cheaply (darkmap.plugins):
    no exporter, no page template engine (selectolax), no warcio, no chain store, no
    TagPack or chain batch writer; with ``-q`` no rich either; and the CSV is read.
    Neither ``pyarrow.compute`` (the path calls Arrow's kernels by name,
    ``darkmap.model.arrow_compute``) nor ``pyarrow.dataset`` (DuckDB is given the rows as
    an Arrow stream, not as a table it would wrap in a dataset) is imported: 0.06 s."""
    csv = data_dir / "listings" / "hansa-2016-12.csv"
    text, mods = _script_run(["ingest", "--init", "-q", "-w", str(tmp_path / "ws"), str(csv)],
                             "run")
    assert "listing 14755" in text, text
    loaded = set(mods)
    assert {"darkmap.importers.csv_mapped", "darkmap.importers.warc",
            "darkmap.importers.pages", "darkmap.importers.blockchain"} <= loaded  # all sniffed
    unwanted = {"darkmap.export", "darkmap.extract.engine", "darkmap.store.chain",
                "darkmap.importers.bitcoin_batch", "warcio", "selectolax", "rich", "pandas",
                "scipy", "sklearn", "pyarrow.compute", "pyarrow.dataset"}
    assert not sorted(m for m in loaded if m in unwanted or m.split(".")[0] in unwanted
                      or m.startswith("darkmap.export.")), "loaded more than the CSV needs"


def test_ingest_imports_numpy_with_one_blas_thread(tmp_path: Path, data_dir: Path) -> None:
    """``darkmap ingest`` does no linear algebra: numpy's OpenBLAS runs one thread (no
    thread per core spinning at the import), and the environment is left as it was."""
    csv = data_dir / "listings" / "hansa-2016-12.csv"
    code = ("import json, os, sys, atexit\n"
            "from darkmap.cli import run\n"
            "def report():\n"
            "    from threadpoolctl import threadpool_info\n"
            "    blas = [i['num_threads'] for i in threadpool_info()\n"
            "            if i.get('internal_api') == 'openblas']\n"
            "    sys.stderr.write('\\nBLAS ' + json.dumps(\n"
            "        [blas, os.environ.get('OPENBLAS_NUM_THREADS')]))\n"
            "atexit.register(report)\n"
            f"sys.argv = ['darkmap', 'ingest', '--init', '-q', '-w', {str(tmp_path / 'ws')!r},"
            f" {str(csv)!r}]\n"
            "run()\n")
    out = _fresh_python(code, timeout=300, check=False, drop=("OPENBLAS_NUM_THREADS",))
    assert out.returncode == 0, out.stderr[-2000:]
    blas, variable = json.loads(out.stderr.rsplit("BLAS ", 1)[1])
    assert blas and set(blas) == {1}, blas
    assert variable is None


def test_the_sql_dump_reader_compiles_no_pattern_when_imported() -> None:
    """Choosing any file's importer imports the SQL dump reader: its patterns are
    compiled on first use (``darkmap.model.patterns``), and one used works as compiled."""
    code = ("import re, sys\n"
            "import darkmap.importers.sqldump as s\n"
            "from darkmap.model.patterns import _LazyPattern\n"
            "values = [v for x in vars(s).values()\n"
            "          for v in (x.values() if isinstance(x, dict) else [x])]\n"
            "lazy = [v for v in values if isinstance(v, _LazyPattern)]\n"
            "eager = [v for v in values if isinstance(v, re.Pattern)]\n"
            "compiled = [v for v in lazy if v._compiled is not None]\n"
            "print(len(lazy), len(eager), len(compiled))\n")
    out = _fresh_python(code)
    lazy, eager, compiled = map(int, out.stdout.split())
    assert lazy >= 20 and eager == 0 and compiled == 0, out.stdout


def test_a_lazy_pattern_is_the_pattern_it_stands_for() -> None:
    import re

    from darkmap.model.patterns import lazy_compile

    source, flags = r"(?P<word>[a-z]+)\s*+", re.I
    lazy, real = lazy_compile(source, flags), re.compile(source, flags)
    text = "Abc  def\nGHI"
    assert lazy.pattern == source and lazy.flags == real.flags
    assert lazy.match(text, 5) is not None and lazy.match(text, 5).group("word") == "def"
    assert lazy.findall(text) == real.findall(text)
    assert lazy.sub(r"<\g<word>>", text) == real.sub(r"<\g<word>>", text)
    assert [m.span() for m in lazy.finditer(text)] == [m.span() for m in real.finditer(text)]
    assert lazy.groupindex == real.groupindex and lazy.split(text) == real.split(text)


def test_reading_a_persona_and_judging_load_no_array_library(hostile_ws: Path,
                                                               tmp_path: Path) -> None:
    """``darkmap persona show``, ``persona search`` and ``judge`` read or write a few rows:
    they load DuckDB, and neither numpy, pyarrow, scipy nor the linker (the store's Arrow
    writer is imported by the functions that write in bulk)."""
    ws = tmp_path / "ws"
    shutil.copytree(hostile_ws, ws)
    with Workspace.open(ws, read_only=True) as w:
        a, b = (r[0] for r in w.con.execute(
            "SELECT account_id FROM accounts ORDER BY account_id LIMIT 2").fetchall())
    for args in (["persona", "show", a, "-w", str(ws)], ["persona", "search", "a", "-w", str(ws)],
                 ["judge", a, b, "--different", "-w", str(ws)]):
        _, mods = _script_run(args, "run")
        loaded = {m.split(".")[0] for m in mods}
        assert "duckdb" in loaded, args
        assert not loaded & {"numpy", "pyarrow", "scipy", "sklearn", "pandas"}, (args, loaded)
        assert "darkmap.resolve.link" not in mods, args


def test_ingest_ends_its_process_without_the_interpreter_teardown(tmp_path: Path,
                                                                  data_dir: Path) -> None:
    """Once the workspace is closed, the console script ends ``darkmap ingest`` with
    ``os._exit`` (darkmap.cli.run): the atexit handlers still run, the output is whole,
    the exit status is the command's (3: a file no importer reads), an object's
    finalizer in ``__main__`` is not run (no teardown), and the workspace holds the rows."""
    stray = tmp_path / "in" / "notes.txt"
    stray.parent.mkdir()
    stray.write_text("nothing any importer reads\n", encoding="utf-8")
    csv = data_dir / "listings" / "hansa-2016-12.csv"
    code = ("import atexit, sys\n"
            "from darkmap.cli import run\n"
            "class Teardown:\n"
            "    def __del__(self):\n"
            "        sys.stderr.write('TEARDOWN\\n')\n"
            "kept = Teardown()\n"
            "atexit.register(lambda: sys.stderr.write('ATEXIT\\n'))\n"
            f"sys.argv = ['darkmap', 'ingest', '--init', '--json', '-q', '-w', "
            f"{str(tmp_path / 'ws')!r}, {str(csv)!r}, {str(stray.parent)!r}]\n"
            "run()\n"
            "sys.stderr.write('AFTER RUN\\n')\n")
    out = _fresh_python(code, timeout=300, check=False)
    assert out.returncode == 3, out.stderr[-2000:]
    assert out.stderr.splitlines()[-1] == "ATEXIT", out.stderr[-2000:]
    assert "TEARDOWN" not in out.stderr and "AFTER RUN" not in out.stderr
    assert json.loads(out.stdout)["records"] == {"listing": 14755}
    ws = Workspace.open(tmp_path / "ws", read_only=True)
    try:
        assert ws.con.execute("SELECT count(*) FROM listing_observations").fetchone() == (14755,)
        assert not (tmp_path / "ws" / "darkmap.duckdb.wal").exists()
    finally:
        ws.close()


def test_python_dash_m_darkmap_is_the_command(tmp_path: Path) -> None:
    """``python -m darkmap`` runs the CLI as the console script does (a user without the
    script on the PATH found no ``darkmap.__main__``), named so in its usage line."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(SRC), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]))
    res = subprocess.run([sys.executable, "-m", "darkmap", "--help"], capture_output=True,
                         text=True, env=env, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    assert "Usage: python -m darkmap" in res.stdout and "ingest" in res.stdout
    res = subprocess.run([sys.executable, "-m", "darkmap", "status", "-w",
                          str(tmp_path / "none")], capture_output=True, text=True, env=env,
                         timeout=120, check=False)
    assert res.returncode == 1 and "not a darkmap workspace" in res.stderr
