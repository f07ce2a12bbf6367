"""The CLI starts without the heavy libraries: ``--help`` imports no command module and
none of scipy, scikit-learn, psycopg, Jinja2, rich, pyarrow, numpy or DuckDB; a command
imports its own module only. The help summaries listed without loading match the
commands' own help."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click

from darkmap.cli import COMMANDS, main

SRC = Path(__file__).resolve().parents[1] / "src"
HEAVY = ("scipy", "sklearn", "psycopg", "jinja2", "rich", "pyarrow", "numpy", "duckdb")


def _modules_after(args: list[str]) -> tuple[str, list[str]]:
    """Run ``darkmap ARGS`` in a fresh interpreter; its output and the modules it loaded."""
    code = ("import json, sys\n"
            "from darkmap.cli import main\n"
            "try:\n"
            f"    main.main({args!r}, prog_name='darkmap', terminal_width=80)\n"
            "except SystemExit:\n"
            "    pass\n"
            "sys.stderr.write('\\nMODULES ' + json.dumps(sorted(sys.modules)))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(SRC), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True, timeout=120)
    mods = json.loads(out.stderr.rsplit("MODULES ", 1)[1])
    return out.stdout, mods


def test_help_imports_no_command_module_and_no_heavy_library() -> None:
    text, mods = _modules_after(["--help"])
    assert "ingest" in text and "wallet" in text
    assert not [m for m in mods if m.startswith("darkmap.cli.cmd_")]
    loaded = sorted({m.split(".")[0] for m in mods} & set(HEAVY))
    assert not loaded, f"--help imported {loaded}"


def test_a_command_imports_its_module_only() -> None:
    text, mods = _modules_after(["importers"])
    assert "csv" in text
    cmds = sorted(m for m in mods if m.startswith("darkmap.cli.cmd_"))
    assert cmds == ["darkmap.cli.cmd_ingest"]
    assert not {m.split(".")[0] for m in mods} & {"scipy", "sklearn", "psycopg", "jinja2"}


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
