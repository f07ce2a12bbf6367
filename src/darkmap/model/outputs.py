"""Output files written whole or not at all.

An export, a report, a package or an audit archive is first written under a hidden
partial name next to its target (``.NAME.partial-PID``), flushed and synced, and only
then renamed onto the target (atomic on POSIX). An error or Ctrl-C removes the partial
file; a kill (SIGKILL, or SIGTERM, which Python does not turn into an exception) leaves
only the partial file, which no one takes for the output. An earlier complete output at
the target stays until the new one is complete. Found by a kill-resilience test: a
killed FtM export left whole lines that parsed and ended with a newline, and replaced a
complete earlier export with a third of it.

A killed writer's partial file or folder of an export or the report is removed by the
next write of the same target (:func:`remove_stale_partials`): one whose process no
longer runs on this machine and that nobody has written to for :data:`STALE_SECONDS`.
Partials that may hold the only copy of something recorded (an audit archive, an audited
package, an audit export) are never removed for the user.

An output is never written over the workspace it is read from (:func:`refuse_in_workspace`):
the workspace folder, its database and WAL, its captures and what else it keeps. Found by
the exports audit (finding 1): ``darkmap export ftm -o ws/darkmap.duckdb -w ws`` replaced
the database with FtM lines, and ``darkmap report -o`` a capture with HTML, exit status 0.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from darkmap.errors import BadInputError

__all__ = ["PARTIAL", "atomic_file", "atomic_folder", "fsync_folder", "is_partial",
           "partial_file", "partial_folder", "pid_runs", "place", "place_new",
           "refuse_in_workspace", "remove_stale_partials", "stale_writer", "sync_file",
           "workspace_part"]

PARTIAL = ".partial-"
"""What every partial name holds: ``.NAME.partial-PID`` (``-N`` after a name taken)."""


def is_partial(path: Path) -> bool:
    """Whether ``path`` is a partial name this module makes (a hidden, unfinished output)."""
    return path.name.startswith(".") and PARTIAL in path.name


STALE_SECONDS = 600.0
"""How long a partial output must have been left unwritten, its writer gone, before the
next write of the same target removes it (a writer on another machine sharing the
folder has a process id this machine cannot see: the age keeps its partial)."""


def pid_runs(pid: int) -> bool:
    """Whether a process ``pid`` runs on this machine (one we may not signal runs too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def stale_writer(pid: int, mtime: float, now: float) -> bool:
    """Whether a partial file written by process ``pid`` and last written at ``mtime`` was
    left by a killed writer: not this process, no process ``pid`` runs on this machine,
    and nobody wrote to it for :data:`STALE_SECONDS` (a live writer's is never stale)."""
    return (pid != os.getpid() and not pid_runs(pid)
            and now - mtime >= STALE_SECONDS)


def remove_stale_partials(target: Path, now: float | None = None) -> list[Path]:
    """Remove the partial outputs of ``target`` that killed writers left: partial names
    of exactly this target whose process id runs no process here and whose last write is
    :data:`STALE_SECONDS` old or older. Returns what was removed (a partial it cannot
    remove is left as it is)."""
    pattern = re.compile(re.escape(f".{target.name}{PARTIAL}") + r"(\d{1,10})(?:-\d{1,10})?")
    now = time.time() if now is None else now
    removed: list[Path] = []
    try:
        names = os.listdir(target.parent)
    except OSError:
        return removed
    for name in names:
        m = pattern.fullmatch(name)
        if m is None or int(m.group(1)) == os.getpid() or pid_runs(int(m.group(1))):
            continue
        path = target.parent / name
        try:
            if not stale_writer(int(m.group(1)), path.lstat().st_mtime, now):
                continue
            _remove(path)
        except OSError:
            continue
        if not os.path.lexists(path):
            removed.append(path)
    return removed


def _real(path: Path) -> Path:
    """``path`` absolute, its folders' symbolic links and ``..`` resolved (the last name
    kept: a rename replaces a link there, not what it points to)."""
    path = Path(os.path.abspath(path))
    return path.parent.resolve() / path.name if path.name else path.resolve()


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def workspace_part(out: Path, workspace: Path, kept: Iterable[str]) -> str | None:
    """What of the workspace folder ``workspace`` writing an output at ``out`` would
    replace or write into, or ``None``: the folder itself (or one holding it), or a
    name it ``kept`` (its captures folder; a name ending in ``*`` is a prefix: the
    database, its WAL and temporary files) or anything under one. Relative paths and
    symbolic links are resolved on both sides first (the output's own name too when it
    is a link). A new file or folder of another name inside the workspace folder is not
    refused (the report's default, ``<workspace>/report.html``).

    >>> workspace_part(Path("/w/captures/ab/cd"), Path("/w"), ["captures", "db*"])
    'its captures'
    >>> workspace_part(Path("/w/db.wal"), Path("/w"), ["captures", "db*"])
    'its db.wal'
    >>> workspace_part(Path("/w/report.html"), Path("/w"), ["captures", "db*"]) is None
    True
    """
    ws = Path(os.path.realpath(workspace))
    for target in dict.fromkeys((_real(out), Path(os.path.realpath(out)))):
        if _inside(ws, target):
            return "the workspace folder"
        for name in kept:
            if name.endswith("*"):
                if target.parent == ws and target.name.startswith(name[:-1]):
                    return f"its {target.name}"
            elif _inside(target, ws / name):
                return f"its {name}"
    return None


def refuse_in_workspace(out: Path, workspace: Path, kept: Iterable[str]) -> None:
    """A :class:`BadInputError` naming ``out`` when writing it would replace or write
    into part of the workspace ``workspace`` being read (:func:`workspace_part`): an
    output only reads the workspace, and a slip of the tab key must not replace the
    database or a capture with the export."""
    part = workspace_part(out, workspace, tuple(kept))
    if part is not None:
        raise BadInputError(f"{out}: inside the workspace {workspace} ({part}); write the "
                            "output outside it")


def _candidates(target: Path) -> Iterator[Path]:
    base = f".{target.name}{PARTIAL}{os.getpid()}"
    yield target.with_name(base)
    n = 1
    while True:
        yield target.with_name(f"{base}-{n}")
        n += 1


def _target_mode(target: Path) -> int | None:
    """The permission bits of an existing file at ``target`` (``None``: none there)."""
    try:
        st = target.stat()
    except FileNotFoundError:
        return None
    return stat.S_IMODE(st.st_mode) if stat.S_ISREG(st.st_mode) else None


def _keep(target: Path, mode: int | None) -> int | None:
    return _target_mode(target) if mode is None else mode


def partial_file(target: Path, mode: int | None = None, clean: bool = False) -> Path:
    """Create an empty partial file for ``target`` in its folder; its path. The mode is
    ``mode``, else that of a file already at ``target`` (as writing over it kept it),
    else the default for a new file (0666 less the umask). With ``clean``, a killed
    writer's stale partial of ``target`` is removed first (:func:`remove_stale_partials`)."""
    if clean:
        remove_stale_partials(target)
    keep = _keep(target, mode)
    for path in _candidates(target):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                         0o666 if keep is None else 0o600)
        except FileExistsError:
            continue
        try:
            if keep is not None:  # writable by its owner until it is placed
                os.fchmod(fd, keep | stat.S_IRUSR | stat.S_IWUSR)
        finally:
            os.close(fd)
        return path
    raise AssertionError("unreachable")  # pragma: no cover - the candidates never end


def partial_folder(target: Path, mode: int = 0o777, clean: bool = False) -> Path:
    """Create an empty partial folder for ``target`` next to it (``mode`` less the
    umask); its path. With ``clean``, a killed writer's stale partial of ``target`` is
    removed first."""
    if clean:
        remove_stale_partials(target)
    for path in _candidates(target):
        try:
            path.mkdir(mode=mode)
        except FileExistsError:
            continue
        return path
    raise AssertionError("unreachable")  # pragma: no cover - the candidates never end


def sync_file(path: Path) -> None:
    """Flush ``path``'s data to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(folder: Path) -> None:
    """Make the names in ``folder`` (a rename into it) durable."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - a folder that cannot be opened to sync
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - filesystems that do not sync folders
        pass
    finally:
        os.close(fd)


def place(partial: Path, target: Path) -> None:
    """Rename a finished partial file or folder onto ``target`` (a folder only onto a
    missing or empty one) and sync the folder."""
    os.replace(partial, target)
    fsync_folder(target.parent)


def place_new(partial: Path, target: Path) -> None:
    """Give a finished partial file the name ``target`` without ever replacing a file
    there (a hard link: :class:`FileExistsError` when ``target`` exists), drop the
    partial name and sync the folder (the audit trail's exports and archives)."""
    os.link(partial, target)
    partial.unlink()
    fsync_folder(target.parent)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_file(target: Path, mode: int | None = None) -> Iterator[Path]:
    """The path to write ``target``'s content to: a partial file in ``target``'s folder
    (mode as :func:`partial_file`). When the block ends normally it is synced and renamed
    onto ``target``; when it raises (anything, Ctrl-C too) it is removed and ``target``
    is left as it was. A killed writer's stale partial of ``target`` is removed first."""
    target.parent.mkdir(parents=True, exist_ok=True)
    keep = _keep(target, mode)
    part = partial_file(target, keep, clean=True)
    try:
        yield part
        if keep is not None:
            os.chmod(part, keep)
        sync_file(part)
        place(part, target)
    except BaseException:
        _remove(part)
        raise


@contextmanager
def atomic_folder(target: Path, mode: int | None = None, clean: bool = True
                  ) -> Iterator[Path]:
    """The folder to write ``target``'s files into: a partial folder next to ``target``
    (which must be missing or empty). When the block ends normally its files are synced
    and it is renamed onto ``target``; when it raises it is removed with its files. Its
    mode is ``mode``, else that of the empty folder at ``target``, else the default.
    With ``clean`` a killed writer's stale partial of ``target`` is removed first (not
    for an output whose partial may be the only copy of something audited)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    keep = mode
    if keep is None and target.is_dir():
        keep = stat.S_IMODE(target.stat().st_mode)
    part = partial_folder(target, 0o777 if keep is None else 0o700, clean=clean)
    try:
        if keep is not None:
            part.chmod(keep)
        yield part
        for f in part.iterdir():
            if f.is_file():
                sync_file(f)
        fsync_folder(part)
        place(part, target)
    except BaseException:
        _remove(part)
        raise
