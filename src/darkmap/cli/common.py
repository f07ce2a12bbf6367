"""The CLI's shared parts: the ``darkmap`` command group, options, output and errors.

Every error a user meets is one line on stderr and a non-zero exit: darkmap's own errors
(``darkmap.errors``) and the machine's (a full disk, a file that cannot be read, a
workspace in use) exit 1, a usage error (a bad option value) exits 2. Anything else is a
bug and shows its traceback.

Commands print market text through :func:`say` (and :func:`short` for a cell of a line)
and :func:`emit_json`, which show control and bidi characters as visible escapes
(``\\x1b``, ``\\u202e``); ``emit_json`` keeps the values exact (``\\u202e`` in JSON).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from darkmap.errors import DarkmapError as LibraryError
from darkmap.errors import is_interrupt
from darkmap.model.display import UNSAFE_CHARS, columns, fit, for_display, lookalike_mark, pad

if TYPE_CHECKING:
    from darkmap.store.chain import ChainDoubts, StaleChain
    from darkmap.store.page_times import PageTimeDoubt
    from darkmap.store.workspace import Workspace

__all__ = ["ERROR_CHARS", "INTERRUPTED_EXIT", "OPS_SERVER_ENV", "DarkmapError", "FiniteFloat",
           "Interrupted", "Terminated", "UsageLine", "cell", "checked", "columns", "country_value",
           "emit_json", "interrupts_held", "is_interrupt", "line_width", "main",
           "terminate_as_interrupt", "nothing_left_at_exit", "open_ws", "outside_workspace",
           "pad", "say", "say_parts",
           "short", "status_line", "workspace_option"]

OPS_SERVER_ENV = "DARKMAP_OPS_SERVER"
"""The environment variable naming the team server (a PostgreSQL URL) whose operational
records `darkmap ops`, `report --as` and `export --case` read instead of the workspace's."""

ERROR_CHARS = 2000
"""Longest error line printed (a message quoting market text is cut, never wrapped)."""

_CLOSED: list[bool] = []


def nothing_left_at_exit(closed: bool | None = None) -> bool:
    """Whether the running command has closed all it opened (the store checkpointed and
    closed, files synced), so that its process may end without the interpreter's
    teardown (``darkmap.cli.run``); ``closed`` says so (or takes it back)."""
    if closed is not None:
        _CLOSED[:] = [closed]
    return bool(_CLOSED and _CLOSED[0])


def _one_line(message: object) -> str:
    """``message`` as one safe line: newlines, control and bidi characters escaped."""
    return for_display(str(message).strip(), max_chars=ERROR_CHARS)


class DarkmapError(click.ClickException):
    """A user-facing error raised by the CLI itself: printed as one line, exit code 1."""

    def format_message(self) -> str:
        """The message on one line, escapes shown."""
        return _one_line(self.message)


INTERRUPTED_EXIT = 130
"""The exit status of a command stopped by Ctrl-C (128 + SIGINT), as shells give it."""


_SIGNALLED: list[int] = []
"""The signals :func:`terminate_as_interrupt`'s handler turned into an interrupt."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C is (by the console script's handler), so that what a
    command left unfinished is undone (a partial export removed, a transaction rolled
    back) rather than the process ending where it stood."""


def terminate_as_interrupt() -> None:
    """Make SIGTERM stop the command as Ctrl-C does (:class:`Terminated`), unless the
    process was started with it ignored. The console script only: a library caller
    keeps its own handlers."""
    import signal  # noqa: PLC0415 - the console script's start only

    def stop(signum: int, frame: object) -> None:
        _SIGNALLED.append(signum)
        raise Terminated

    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, stop)


class Interrupted(click.ClickException):
    """Ctrl-C (or SIGTERM, see :func:`terminate_as_interrupt`) stopped the command: one
    line, exit status 130 (143 for SIGTERM), as shells give them (a traceback or click's
    ``Aborted!`` with status 1 before: found by a kill-resilience test)."""

    exit_code = INTERRUPTED_EXIT
    what = "interrupted (Ctrl-C)"

    def __init__(self) -> None:
        super().__init__(f"{self.what}: a write not yet committed was rolled back; what the "
                         "command had committed stays (`darkmap status` shows the workspace)")

    def format_message(self) -> str:
        """The message on one line."""
        return _one_line(self.message)


class _TerminatedLine(Interrupted):
    exit_code = 143  # 128 + SIGTERM
    what = "terminated (SIGTERM)"


def interrupted() -> Interrupted:
    """The error line for the signal that stopped the command (Ctrl-C unless the last
    one :func:`terminate_as_interrupt` saw was SIGTERM)."""
    import signal  # noqa: PLC0415

    return _TerminatedLine() if _SIGNALLED and _SIGNALLED[-1] == signal.SIGTERM else \
        Interrupted()


@contextmanager
def interrupts_held(doing: str) -> Iterator[None]:
    """Hold Ctrl-C (and SIGTERM) until the block ends: for a short write whose result
    line must follow it (an operational record: interrupted after its commit, the
    command printed a traceback and no id, the analyst ran it again and the seizure was
    counted twice; found by a kill-resilience test). A signal that came is said once the
    block is done.
    Only in the main thread (signal handlers can be set nowhere else)."""
    import signal  # noqa: PLC0415 - only the commands that write records need it
    import threading  # noqa: PLC0415

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []
    held = [signal.SIGINT, signal.SIGTERM]
    before = {n: signal.getsignal(n) for n in held}
    for n in held:
        if before[n] is not signal.SIG_IGN:
            signal.signal(n, lambda signum, frame: came.append(signum))
    try:
        yield
    finally:
        for n in held:
            if before[n] is not signal.SIG_IGN:
                signal.signal(n, before[n])
        if came:
            what = "Ctrl-C" if came[-1] == signal.SIGINT else "SIGTERM"
            click.echo(f"note: {what} came while {doing}; that was finished first", err=True)


class UsageLine(click.UsageError):
    """A usage error (a bad option value, a missing argument) as one line, exit code 2:
    ``Error: darkmap link: Invalid value for '--threshold' ... (see `darkmap link -h`)``."""

    def show(self, file: Any = None) -> None:
        """Print the one line (no usage block)."""
        where = self.ctx.command_path if self.ctx is not None else "darkmap"
        click.echo(f"Error: {where}: {_one_line(self.message)} (see `{where} --help`)",
                   file=file, err=file is None)


def _usage_line(exc: click.UsageError) -> click.UsageError:
    """``exc`` printed on one line (help asked for by running a group bare is kept)."""
    if isinstance(exc, (UsageLine, click.exceptions.NoArgsIsHelpError)):
        return exc
    return UsageLine(exc.format_message(), exc.ctx)


def _outside_error(exc: Exception) -> DarkmapError | None:
    """``exc`` as one line when darkmap raised it on purpose (``darkmap.errors``) or the
    machine did (a full disk, an unreadable file, a workspace in use); ``None`` for
    anything else (a bug). A storage failure is searched from the root of the exception
    chain: an error raised while handling a full disk (a rollback that found no
    transaction) does not hide it."""
    if isinstance(exc, LibraryError):
        return DarkmapError(str(exc))
    # loaded when an error is shown, not on every start (DuckDB's import is 0.1 s)
    from darkmap.store.workspace import environment_error, storage_failure  # noqa: PLC0415

    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for cause in reversed(chain):
        failure = storage_failure(cause)
        if failure is not None:
            return DarkmapError(failure)
    message = environment_error(exc)
    return None if message is None else DarkmapError(message)


class _Group(click.Group):
    """The ``darkmap`` group: an error darkmap raises on purpose (``darkmap.errors``) or
    the machine raises (:func:`~darkmap.store.workspace.environment_error`) becomes one
    line on stderr and exit code 1; a usage error one line and exit code 2. Anything else
    is a bug: its traceback shows.

    Commands are loaded lazily: :meth:`add_lazy` names a command with the function that
    imports its module (which registers it) and its help summary. ``darkmap --help``
    lists the summaries without importing any command module; running a command imports
    its module only. Reading :attr:`commands` (tests, documentation checks) loads every
    command.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._commands: dict[str, click.Command] = {}
        self._lazy: dict[str, tuple[Callable[[], object], str]] = {}
        super().__init__(*args, **kwargs)

    @property  # type: ignore[override]
    def commands(self) -> dict[str, click.Command]:
        """Every command, each lazy one loaded first."""
        for name in list(self._lazy):
            self._load(name)
        return self._commands

    @commands.setter
    def commands(self, value: dict[str, click.Command]) -> None:
        self._commands = dict(value)

    def add_lazy(self, name: str, load: Callable[[], object], summary: str) -> None:
        """Name command ``name``: ``load()`` imports the module that registers it;
        ``summary`` is its help's first sentence, shown by ``--help``."""
        if name not in self._commands:
            self._lazy[name] = (load, summary)

    def lazy_summaries(self) -> dict[str, str]:
        """The help summaries given to :meth:`add_lazy`, by command (checked by a test)."""
        return {name: summary for name, (_, summary) in self._lazy.items()}

    def _load(self, name: str) -> None:
        entry = self._lazy.pop(name, None)
        if entry is not None:
            entry[0]()
            if name not in self._commands:
                raise RuntimeError(f"loading command {name!r} did not register it")

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        """Register ``cmd`` (without loading the lazy commands)."""
        name = name or cmd.name
        if name is None:
            raise TypeError("Command has no name.")
        self._lazy.pop(name, None)
        self._commands[name] = cmd

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command named ``cmd_name``, its module imported if need be."""
        if cmd_name not in self._commands:
            self._load(cmd_name)
        return self._commands.get(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name, loaded or not."""
        return sorted(set(self._commands) | set(self._lazy))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of ``--help``: lazy commands by their summaries, unloaded."""
        rows: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            cmd = self._commands.get(name)
            if cmd is None:
                cmd = click.Command(name, help=self._lazy[name][1])
            if not cmd.hidden:
                rows.append((name, cmd))
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, cmd.get_short_help_str(limit))
                                    for name, cmd in rows])

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            raise _usage_line(exc) from exc

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _usage_line(exc) from exc
        except (click.ClickException, click.exceptions.Exit, BrokenPipeError):
            # click prints the first and ends on the second (`CMD --help`, an exit status
            # asked for) without looking at the store's errors, and quietly ends on the
            # third (`| head`)
            raise
        except KeyboardInterrupt as exc:
            raise interrupted() from exc
        except Exception as exc:
            if is_interrupt(exc):
                raise interrupted() from exc
            err = _outside_error(exc)
            if err is None:
                raise
            raise err from exc


class FiniteFloat(click.FloatRange):
    """A float within a range that is a number: ``nan`` and ``inf`` are refused (a
    ``click.FloatRange`` lets ``nan`` through, every comparison with it being false)."""

    name = "finite float"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        """The number, or a usage error naming the range."""
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a number; give a value {self._describe_range()}",
                      param, ctx)
        return super().convert(number, param, ctx)


def checked(check: Callable[[Any], object]) -> Callable[[click.Context, click.Parameter, Any],
                                                        Any]:
    """An option callback that runs the library's own check on the value while the
    command line is read (before any work): ``--limit -5`` fails at once as a usage error
    (one line, exit 2, as every value out of range) with the library's message."""
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None:
            try:
                check(value)
            except LibraryError as exc:
                raise click.BadParameter(str(exc), ctx, param) from exc
        return value
    return callback


def country_value(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """An option callback: ``--country`` values (one, or a tuple of several) as ISO 3166
    codes in upper case; a value that is not one is a usage error (exit 2), naming the
    code meant when it is a country's name."""
    from darkmap.model.countries import check_country  # noqa: PLC0415 - see open_ws

    if value is None:
        return None
    try:
        if isinstance(value, tuple):
            return tuple(check_country(v) for v in value)
        return check_country(value)
    except LibraryError as exc:
        raise click.BadParameter(str(exc), ctx, param) from exc


def workspace_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--workspace`` (default ``$DARKMAP_WORKSPACE`` or ./darkmap-workspace)."""
    return click.option(
        "--workspace", "-w", type=click.Path(path_type=Path), default=None,
        help="Workspace folder [default: $DARKMAP_WORKSPACE or ./darkmap-workspace].",
    )(f)


def open_ws(path: Path | None, create: bool = False, read_only: bool = False) -> Workspace:
    """Open (``create``: create) the workspace at ``path`` or the default one.

    ``read_only`` is for commands that only answer questions: they work while another
    process reads the workspace too, and can never change it.
    """
    from darkmap.store.workspace import Workspace, default_path  # noqa: PLC0415 - see above

    path = path or default_path()
    return Workspace.init(path) if create else Workspace.open(path, read_only=read_only)


def outside_workspace(out: Path | None, workspace: Path | None) -> None:
    """A usage error (one line, exit status 2) naming ``out`` when a command would write
    its output over the workspace it reads (``workspace``, or the default one) or into
    what that keeps: its folder, database, WAL, captures
    (:func:`~darkmap.store.workspace.refuse_output`). Called before the workspace is
    opened: nothing is read, audited or written. Every command writing a file or folder
    the user names calls it."""
    from darkmap.store.workspace import default_path, refuse_output  # noqa: PLC0415

    if out is None:
        return
    try:
        refuse_output(out, workspace or default_path())
    except LibraryError as exc:
        raise click.UsageError(for_display(str(exc))) from exc


def open_reference(path: Path | None) -> Workspace:
    """The workspace at ``path`` (or the default one) as the reference data of the team
    server's records: read-only, beside `darkmap serve --server` and other readers
    (:meth:`~darkmap.store.workspace.Workspace.open_reading`)."""
    from darkmap.store.workspace import Workspace, default_path  # noqa: PLC0415 - see above

    return Workspace.open_reading(path or default_path())


def open_ws_to_write(path: Path | None, init: bool) -> Workspace:
    """The workspace a loading command writes to: it must exist, unless ``--init`` asks
    for it. A mistyped ``-w`` would otherwise start a new, empty workspace and put the
    evidence there."""
    from darkmap.store.workspace import default_path  # noqa: PLC0415 - see open_ws

    where = path or default_path()
    if not init and not where.exists():
        raise DarkmapError(f"{for_display(where)}: no workspace there; create it with "
                           f"`darkmap init {for_display(where)}` or add --init")
    return open_ws(where, create=init)


init_option = click.option(
    "--init", "init", is_flag=True,
    help="Create the workspace if it does not exist yet (else it must exist).")


def say(text: str, err: bool = False) -> None:
    """Print one line with every control and bidi character shown as an escape: a vendor
    handle holding ``ESC [2J`` or U+202E cannot rewrite or reverse the analyst's
    terminal."""
    click.echo(for_display(text), err=err)


def short(text: object, max_chars: int = 80) -> str:
    """Market text cut to take at most ``max_chars`` terminal columns for a table-like
    line (``…`` marks the cut; a CJK character or an emoji takes two columns, a
    combining mark none; escapes shown)."""
    return fit("" if text is None else text, max_chars)


def ident(text: object, max_chars: int = 80, account_id: bool = True) -> str:
    """An account id (a handle when not ``account_id``) as :func:`short` prints it, then,
    when it may print like a name it is not (mixed scripts, invisible or confusable
    characters), its mark: ``hansa:theshоp [!mixed script: о=U+043E CYRILLIC SMALL
    LETTER O]`` (:func:`~darkmap.model.display.lookalike_mark`; never cut)."""
    mark = lookalike_mark(text, account_id)
    return short(text, max_chars) + (f" {mark}" if mark else "")


def ident_cell(text: object, width: int, account_id: bool = True) -> str:
    """An account id as a table cell (:func:`cell`); a marked one (:func:`ident`) takes
    what room it needs: the mark is never cut, so that row's columns move."""
    mark = lookalike_mark(text, account_id)
    return f"{short(text, width)} {mark} " if mark else cell(text, width)


def cell(text: object, width: int, right: bool = False) -> str:
    """A table cell: :func:`short` of ``text`` padded to exactly ``width`` terminal
    columns (on the left when ``right``), so the columns after it stay aligned whatever
    script the market text is written in."""
    return pad(short(text, width), width, right)


LINE_WIDTH = 100
"""Columns a table-like line takes when the output is not a terminal (a file, a pipe)."""


def line_width() -> int:
    """Columns a table-like line may take: the terminal's width when the output is a
    terminal (at least 60), else :data:`LINE_WIDTH`."""
    if sys.stdout.isatty():
        import shutil  # noqa: PLC0415 - only on a terminal

        return max(60, shutil.get_terminal_size((LINE_WIDTH, 24)).columns)
    return LINE_WIDTH


def say_chain_doubts(d: ChainDoubts, indent: str = "") -> None:
    """Name the coins spent twice (which spender is kept, which set aside and why), and
    count the blocks whose proof of work fails and the transactions in no loaded block;
    nothing when there are none."""
    if d.n_conflicts:
        say(f"{indent}double spends: {d.n_conflicts:,} coin(s) spent by two or more loaded "
            f"transactions; {d.n_set_aside:,} transaction(s) set aside, left out of clusters, "
            "traces and wallets (docs/chain.md, \"Coins spent twice\"):")
        for c in d.conflicts:
            say(f"{indent}  coin {c.outpoint}:")
            for txid, standing, kept, why in c.spenders:
                state = "kept" if kept else f"set aside: {short(why or '', 300)}"
                say(f"{indent}    {txid} ({standing}): {state}")
        if d.n_conflicts > len(d.conflicts):
            say(f"{indent}  ... and {d.n_conflicts - len(d.conflicts):,} more")
    elif d.n_set_aside:
        say(f"{indent}set aside: {d.n_set_aside:,} transaction(s)")
    if d.pow_failed_blocks:
        say(f"{indent}unproven: {d.pow_failed_blocks:,} block(s) on the best chain fail their "
            "proof of work (not mined as their header claims; a simulated chain is not "
            "mined): their transactions are used but not proven")
    if d.transactions_without_block:
        say(f"{indent}unproven: {d.transactions_without_block:,} transaction(s) are in no "
            "loaded block (raw transactions, JSON): used, but nothing shows they were mined")


def say_stale_chain(st: StaleChain, indent: str = "") -> None:
    """Name the stale blocks (off the best chain) and the transactions left out for it;
    nothing when there are none."""
    if not st.blocks:
        return
    say(f"{indent}competing blocks: {len(st.blocks):,} block(s) are stale, off the best "
        "chain (the branch with the most work wins: docs/chain.md, \"Competing blocks\"):")
    for b in st.blocks[:20]:
        height = "?" if b.height is None else f"{b.height:,}"
        txs = "header only" if b.n_tx is None else f"{b.n_tx:,} tx"
        say(f"{indent}  height {height:>9s}  {b.block_hash}  {txs}  from "
            f"{short(Path(b.source).name, 60)}")
    if len(st.blocks) > 20:
        say(f"{indent}  ... and {len(st.blocks) - 20:,} more")
    if st.n_transactions:
        more = f" (first {len(st.txids)})" if st.n_transactions > len(st.txids) else ""
        say(f"{indent}  {st.n_transactions:,} transaction(s) found only in them are left out "
            f"of balances, clusters, traces and wallets{more}:")
        for t in st.txids:
            say(f"{indent}    {t}")


class CapturedAt(click.ParamType[Any]):
    """An ISO date or datetime ("2019-11-18", "2019-11-18T06:30", "...+01:00"), as a
    naive UTC datetime (a time without an offset is UTC)."""

    name = "date"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        from datetime import UTC, datetime  # noqa: PLC0415 - only when the option is given

        if isinstance(value, datetime):
            return value
        try:
            when = datetime.fromisoformat(str(value).strip())
        except ValueError:
            self.fail(f"{value!r} is not an ISO date or datetime (e.g. 2019-11-18 or "
                      "2019-11-18T06:30:00Z)", param, ctx)
        if when.tzinfo is not None:
            when = when.astimezone(UTC).replace(tzinfo=None)
        return when


def say_page_time_doubts(doubts: list[PageTimeDoubt], indent: str = "",
                         err: bool = False) -> None:
    """Warn of saved pages observed long after the newest date their market's pages show
    (darkmap.store.page_times): their time is likely a copied file's; nothing when none."""
    for d in doubts:
        years = (d.observed_last - d.newest_shown).days / 365.25
        when = (f"{d.observed_first:%Y-%m-%d}" if d.observed_first.date() ==
                d.observed_last.date() else
                f"{d.observed_first:%Y-%m-%d} to {d.observed_last:%Y-%m-%d}")
        text = (f"warning: {d.pages:,} {short(d.market_id, 30)} page(s) are observed at "
                f"{when}, {years:.1f} years after the newest date the market's pages show "
                f"({d.newest_shown:%Y-%m-%d}): the files' times are likely the day they "
                "were copied, not saved; their prices convert at that day's rates and "
                "activity runs to it. Ingest them into a new workspace with --captured-at "
                "DATE (re-ingesting changes nothing).")
        import textwrap  # noqa: PLC0415 - only for a warning

        for i, line in enumerate(textwrap.wrap(text, max(40, line_width() - len(indent) - 2),
                                               break_on_hyphens=False)):
            say(f"{indent}{'  ' if i else ''}{line}", err=err)


def say_parts(*parts: str, sep: str = "; ", indent: str = "  ") -> None:
    """Print ``parts`` joined by ``sep`` on as few lines as :func:`line_width` allows:
    a part that does not fit starts a new line, indented (a part is never cut)."""
    width = line_width()
    line = ""
    for part in parts:
        if line and columns(line) + len(sep) + columns(part) > width:
            say(line + sep.rstrip())
            line = indent + part
        else:
            line = line + sep + part if line else part
    if line:
        say(line)


def _json_escape(m: re.Match[str]) -> str:
    return f"\\u{ord(m.group()):04x}"


@contextmanager
def status_line(label: str) -> Iterator[Callable[[str], None]]:
    """A status line on stderr for a long command: ``label``, a spinner, the time so far
    and what the work says it is doing (the callable yielded: give it each stage as it
    starts). On a terminal each stage's start also stays on the screen, timed; the line
    is gone when the block ends. Stage text passes through :func:`for_display` and
    rich's markup escaping (it may quote market text)."""
    from rich.console import Console  # noqa: PLC0415 - rich only when the line is shown
    from rich.markup import escape  # noqa: PLC0415
    from rich.progress import (  # noqa: PLC0415
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    console = Console(stderr=True, log_path=False)
    with Progress(SpinnerColumn(), TextColumn(f"[bold]{escape(label)}"), TimeElapsedColumn(),
                  TextColumn("{task.description}"), console=console, transient=True) as bar:
        task = bar.add_task("", total=None)

        def stage(text: str) -> None:
            shown = escape(for_display(text))
            bar.update(task, description=shown)
            if console.is_terminal:
                console.log(shown, highlight=False)

        yield stage


def emit_json(data: Any) -> None:
    """Print JSON to stdout; control and bidi characters written as ``\\uXXXX`` escapes
    (the same JSON value, but inert on a terminal)."""
    text = json.dumps(data, indent=2, default=str, ensure_ascii=False)
    click.echo(UNSAFE_CHARS.sub(_json_escape, text))


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="darkmap")
def main() -> None:
    """darkmap: investigation workbench for darknet drug markets.

    \b
    Example:
      darkmap init case-42 && darkmap ingest -w case-42 saved-pages/
    """


@main.command()
@click.argument("path", type=click.Path(path_type=Path))
def init(path: Path) -> None:
    """Create a workspace folder (DuckDB file + capture store).

    Example: darkmap init case-42
    """
    ws = open_ws(path, create=True)
    say(f"workspace ready: {path} (schema version {ws.schema_version()})")
    ws.close()


@main.command()
@workspace_option
@click.option("--json", "as_json", is_flag=True,
              help="Print the stage, the next command and the table counts as JSON.")
@click.option("--fields", "by_field", is_flag=True,
              help="Per market and page type, how often each stored field was found.")
def status(workspace: Path | None, as_json: bool, by_field: bool) -> None:
    """Where the workspace stands and what to run next, then the rows of every table
    (with --fields: how often each field of listings, accounts and feedback was found,
    per market and page type).

    Example: darkmap status -w case-42 --fields
    """
    from darkmap.store.chain import chain_doubts, stale_chain  # noqa: PLC0415 - see open_ws
    from darkmap.store.fieldreport import field_report  # noqa: PLC0415 - see open_ws
    from darkmap.store.overview import workspace_stage  # noqa: PLC0415
    from darkmap.store.page_times import page_time_doubts  # noqa: PLC0415 - see open_ws

    ws = open_ws(workspace, read_only=True)
    try:
        if by_field:
            _print_fields(field_report(ws.con), as_json)
            return
        stage = workspace_stage(ws.con)
        stale = stale_chain(ws.con) if stage["stale_blocks"] else None
        chain = chain_doubts(ws.con) if stage["transactions"] else None
        doubts = page_time_doubts(ws.con)
        counts = ws.table_counts()
    finally:
        ws.close()
    if as_json:
        emit_json({"stage": stage, "next": stage["next"], "stale_chain": dataclasses.asdict(
            stale) if stale else None,
            "chain_doubts": dataclasses.asdict(chain) if chain else None,
            "page_time_warnings": [dataclasses.asdict(d) for d in doubts], "tables": counts})
        return
    _print_stage(stage, stale, chain)
    say_page_time_doubts(doubts, indent="  ")
    say("tables (rows):")
    for name, n in counts.items():
        say(f"  {name:28s} {n:>10,d}")


def _print_stage(st: Any, stale_chain: StaleChain | None = None,
                 doubts: ChainDoubts | None = None) -> None:
    """The workspace's stage in five lines (the stale blocks and the chain's doubts after
    them, if any), then the next command and why."""
    from darkmap.store.overview import stage_assessment_stale  # noqa: PLC0415

    def count(n: int, what: str) -> str:
        return f"{n:,} {what}"

    ingested = (f"{count(st['files'], 'files')} in {count(st['ingest_runs'], 'run(s)')}: "
                f"{count(st['accounts'], 'accounts')}, {count(st['listings'], 'listings')}, "
                f"{count(st['feedback'], 'feedback')}, "
                f"{count(st['transactions'], 'transactions')}" if st["files"]
                else f"no file; {count(st['transactions'], 'transactions')} of chain data"
                if st["transactions"] else "nothing")
    if st["linked"]:
        linked = (f"yes, run {st['link_run']}: {count(st['personas'], 'personas')} "
                  f"({st['multi_account_personas']:,} of several accounts); "
                  f"{count(st['judgements'], 'judgement(s)')}")
        if st["ingested_since_link"] or st["judgements_since_link"]:
            linked += " (out of date)"
    else:
        linked = "no"
    assessed = (f"{st['assessed']:,} of {count(st['listings'], 'listings')}"
                if st["listings"] else "nothing to assess (no listing)")
    stale = stage_assessment_stale(st)
    if stale:
        assessed += f" (out of date: {stale} since)"
    chain = ("no chain data" if not st["transactions"] else
             f"clustered: {count(st['wallets'], 'wallets')}" if st["chain_clustered"]
             else "loaded, not clustered")
    if st["chain_clustered"] and st["unclustered_addresses"]:
        chain += (f" (out of date: {count(st['unclustered_addresses'], 'address(es)')} "
                  "loaded since are in no wallet)")
    if st["stale_blocks"]:
        chain += (f"; {count(st['stale_blocks'], 'stale block(s)')} off the best chain, "
                  f"{count(st['stale_transactions'], 'transaction(s)')} left out")
    run = st.get("interrupted_ingest")
    if run is not None:
        # a killed run's row has no finished_at: said before the link that would read
        # part of the evidence (found by an audit: "ingested 143 files", next: link)
        more = (f"; {run['unfinished_runs'] - 1:,} earlier unfinished run(s) too"
                if run["unfinished_runs"] > 1 else "")
        ingested += (f"; the last ingest did not finish: run {run['run_id']} started "
                     f"{run['started_at']:%Y-%m-%d %H:%M:%S} UTC, "
                     f"{count(run['files_committed'], 'file(s)')} committed{more}")
    say("workspace stage:")
    for name, text in (("ingested", ingested), ("linked", linked), ("assessed", assessed),
                       ("chain", chain), ("operations",
                                          count(st["operational_records"], "records"))):
        say(f"  {name:11s} {text}")
    if stale_chain is not None:
        say_stale_chain(stale_chain, indent="  ")
    if doubts is not None:
        say_chain_doubts(doubts, indent="  ")
    say_parts(f"next: {st['next']}", f"({st['why']})", sep="   ")


def _print_fields(counts: list[Any], as_json: bool) -> None:
    """The field report, one line per (market, page type, table), found/rows per field."""
    if as_json:
        emit_json([{"market": c.market, "page_type": c.page_type, "table": c.table,
                    "field": c.field, "found": c.found, "rows": c.rows} for c in counts])
        return
    groups: dict[tuple[str, str, str], list[Any]] = {}
    for c in counts:
        groups.setdefault((c.market, c.page_type, c.table), []).append(c)
    for (market, ptype, table), items in groups.items():
        say(f"{short(market, 20)} {short(ptype, 12)} {table} ({items[0].rows} rows)")
        # wrapped to the line's width (one line of 211 columns, found by an audit)
        import textwrap  # noqa: PLC0415 - only for this report

        for line in textwrap.wrap("  ".join(f"{c.field}={c.found}" for c in items),
                                  line_width() - 2, break_on_hyphens=False):
            say("  " + line)

