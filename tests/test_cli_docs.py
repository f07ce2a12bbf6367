"""The CLI is documented: every command is in the user guide and has an example."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click

from darkmap.cli import main

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "user-guide.md"


def _commands(cmd: click.Command, path: list[str]) -> Iterator[tuple[str, click.Command]]:
    if isinstance(cmd, click.Group):
        for name, sub in sorted(cmd.commands.items()):
            yield from _commands(sub, [*path, name])
    else:
        yield " ".join(path), cmd


def test_every_command_is_in_the_user_guide() -> None:
    guide = GUIDE.read_text(encoding="utf-8")
    missing = [name for name, _ in _commands(main, []) if f"darkmap {name}" not in guide]
    assert not missing, f"commands not described in docs/user-guide.md: {missing}"


def test_every_command_help_has_an_example() -> None:
    bare = [name for name, cmd in _commands(main, [])
            if "example" not in (cmd.help or "").lower()]
    assert not bare, f"commands whose --help has no example: {bare}"


def test_every_example_stays_on_a_line_of_its_own() -> None:
    # click rewraps a paragraph: two "Example:" lines in one would print as one run-on
    # line (a "\b" line before them keeps them as written)
    merged = []
    for name, cmd in _commands(main, []):
        text = cmd.get_help(click.Context(cmd, info_name=f"darkmap {name}"))
        merged += [f"{name}: {line.strip()}" for line in text.splitlines()
                   if line.count("Example:") > 1 or (line.count("Example:") == 1
                                                     and not line.strip().startswith("Example:"))]
    assert not merged, merged


def test_every_out_option_has_its_short_form() -> None:
    # `darkmap report` and `export` took -o, `darkmap package` only --out (usability walk):
    # an analyst who learnt -o on one command meets "no such option" on the next
    long_only = [f"{name}: {' '.join(p.opts)}" for name, cmd in _commands(main, [])
                 for p in cmd.params if "--out" in p.opts and "-o" not in p.opts]
    assert not long_only, long_only
