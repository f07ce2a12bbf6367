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


def _groups(cmd: click.Command, path: list[str]) -> Iterator[tuple[str, click.Group]]:
    if isinstance(cmd, click.Group):
        yield " ".join(path), cmd
        for name, sub in sorted(cmd.commands.items()):
            yield from _groups(sub, [*path, name])


def test_every_command_help_has_an_example() -> None:
    """And every group's (`darkmap chain --help` had none, though the README says every
    command's help has one: found by a documentation audit)."""
    bare = [name or "darkmap" for name, cmd in [*_commands(main, []), *_groups(main, [])]
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


# -- the examples run ----------------------------------------------------------------------

OPS_SETUP: tuple[tuple[str, ...], ...] = (
    ("ops", "agency", "add", "bka", "--country", "DE", "--contact", "BKA desk", "--as", "ana"),
    ("ops", "user", "add", "ana", "--agency", "bka", "--role", "admin", "--as", "ana"),
    ("ops", "user", "add", "ben", "--agency", "bka", "--role", "officer", "--as", "ana"),
    ("ops", "agency", "add", "fbi", "--country", "US", "--contact", "JCODE desk", "--as", "ana"),
    ("ops", "compartment", "add", "--kind", "group", "--id", "de-us", "--member", "fbi",
     "--as", "ana"),
    ("ops", "case", "add", "Vendor X", "--member", "ben", "--provenance", "file 12",
     "--as", "ana"),
)
"""A workspace set up for the `ops` examples: agencies bka and fbi, users ana (admin) and
ben (officer), the group compartment de-us and a case of ana and ben."""
OPS_SETUP_BEFORE = {"ops agency add": 0, "ops user add": 2, "ops compartment add": 4}
"""The set-up steps an example needs when it makes what a later step makes (all else)."""
OPS_SETUP_MORE = {"ops report": ("ops", "import-reported", "DATA/operations/jcode-operations.csv",
                                 "--as", "ana")}
"""A step one example needs besides (DATA: the data folder)."""
EXAMPLE_CASE = "case-ab12"
"""The one id an example cannot know (a case's id is generated): the set-up case's."""


def _example(cmd: click.Command) -> str:
    """The command line of the help's Example (its paragraph, joined)."""
    text = (cmd.help or "").replace("\b", "")
    para = text[text.index("Example:") + len("Example:"):].split("\n\n")[0]
    return " ".join(para.split())


def test_every_ops_example_runs(backend: object, tmp_path: Path, data_dir: Path) -> None:
    """The examples of `ops seizure add --help` and `ops arrest add --help` failed with
    "give the compartment (or the case) the record goes in": every `ops` command's
    example now runs, as printed, in a workspace set up for it (on both homes of the
    records); only a case id is the set-up case's, and ../shared/data the data folder."""
    import shlex

    from click.testing import CliRunner

    from darkmap.store.workspace import Workspace

    env = backend.env  # type: ignore[attr-defined]
    ops = [(name, cmd) for name, cmd in _commands(main, []) if name.startswith("ops ")]
    assert len(ops) >= 14
    failed = []
    for name, cmd in ops:
        backend.reset()  # type: ignore[attr-defined]
        path = tmp_path / name.replace(" ", "-")
        Workspace.init(path).close()
        runner = CliRunner()
        case_id = EXAMPLE_CASE
        more = [tuple(a.replace("DATA", str(data_dir)) for a in OPS_SETUP_MORE[name])
                ] if name in OPS_SETUP_MORE else []
        for step in [*OPS_SETUP[:OPS_SETUP_BEFORE.get(name, len(OPS_SETUP))], *more]:
            res = runner.invoke(main, [*step, "-w", str(path)], env=env)
            assert res.exit_code == 0, (step, res.output)
            if step[1] == "case":
                case_id = res.stdout.split()[1]
        line = _example(cmd).replace(EXAMPLE_CASE, case_id).replace(
            "../shared/data/", f"{data_dir}/")
        argv = shlex.split(line)
        assert argv[0] == "darkmap" and " ".join(argv[1:]).startswith(name), (name, line)
        res = runner.invoke(main, [*argv[1:], "-w", str(path)], env=env)
        if res.exit_code != 0:
            failed.append(f"{name}: {line}\n  {res.output.strip()}")
    assert not failed, "\n".join(failed)


def _guide_block(section: str) -> list[str]:
    """The lines of the first ``sh`` block of the user guide's ``section``."""
    text = GUIDE.read_text(encoding="utf-8")
    start = text.index("```sh\n", text.index(f"\n## {section}")) + len("```sh\n")
    return text[start:text.index("```\n", start)].splitlines()


def test_the_guides_operations_sequence_runs_as_typed(backend: object, tmp_path: Path,
                                                      data_dir: Path,
                                                      monkeypatch: object) -> None:
    """User guide §8, typed in order from a new workspace, failed at its third line (`no
    agency 'fbi'`, then `unknown user 'ben'`: neither was ever added). Every command of
    its block now runs, read from the guide itself so the two cannot drift apart; CASE
    SEIZURE and NOTICE are the ids printed before them, raw.csv the partner's file, and
    ../shared/data the data folder (the guide says so). On both homes of the records."""
    import shlex

    from click.testing import CliRunner

    from darkmap.store.workspace import Workspace

    backend.reset()  # type: ignore[attr-defined]
    monkeypatch.chdir(tmp_path)  # type: ignore[attr-defined]
    Workspace.init(tmp_path / "ws").close()
    (tmp_path / "raw.csv").write_text("kind,value\npersona,p-1\n", encoding="utf-8")
    env = {**backend.env, "DARKMAP_WORKSPACE": str(tmp_path / "ws")}  # type: ignore[attr-defined]
    ids = {"CASE": "", "SEIZURE": "", "NOTICE": ""}
    lines = _guide_block("8. Act together")
    assert len(lines) >= 30
    ran = 0
    for line in lines:
        words = shlex.split(line.replace("../shared/data/", f"{data_dir}/"), comments=True)
        while words:
            cmd = words[:words.index("&&")] if "&&" in words else words
            words = words[len(cmd) + 1:]
            out = None
            if ">" in cmd:
                cmd, out = cmd[:cmd.index(">")], cmd[cmd.index(">") + 1]
            assert cmd[0] == "darkmap", line
            argv = [ids.get(w) or w for w in cmd[1:]]
            res = CliRunner().invoke(main, argv, env=env)
            assert res.exit_code == 0, f"{line}\n{res.output}"
            ran += 1
            if out:
                Path(out).write_text(res.stdout, encoding="utf-8")
            if argv[:2] == ["ops", "case"]:
                ids["CASE"] = res.stdout.split()[1]
            if argv[:2] == ["ops", "seizure"]:
                ids["SEIZURE"] = res.stdout.split()[1]
            if argv[:2] == ["deconflict", "notices"]:
                ids["NOTICE"] = res.stdout.split()[0]
    assert ran == len(lines) + 2 and ids["CASE"] and ids["NOTICE"]   # two lines hold `&&`
