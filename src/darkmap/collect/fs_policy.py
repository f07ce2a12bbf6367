"""Which paths ingest reads, and how it opens them (issue #18: the file-system policy).

The folders darkmap ingests are prepared by the people under investigation, so a path is
read only when it is a *regular file inside the folders given*:

- the walk is iterative and holds one directory descriptor per level (``openat``), so a
  deep tree or a path longer than ``PATH_MAX`` cannot break it; it never descends more
  than :data:`~darkmap.model.limits.MAX_TREE_DEPTH` folders below a root (a deeper
  folder is one unit, not read, with the limit named);
- a file is opened with ``O_NOFOLLOW | O_NONBLOCK`` relative to its folder's
  descriptor and ``fstat``-ed before a byte is read: only ``S_ISREG`` passes, so a FIFO
  never blocks and a device is never read;
- FIFOs, sockets and device nodes are refused from the listing, without being opened;
- a symlink is followed only to a regular file inside the given folders (the same
  bytes as that file: the same capture). Links leaving the folders, dangling links, link
  loops and links to folders are refused. Links are read after every other file, so the
  file a link points to is read under its own name first;
- hidden files and folders (``.name``) and licence / read-me files travelling with a
  data set are not evidence: each is one unit, skipped with that reason (ingest one by
  naming it to read it anyway).

A path not read is an :class:`Entry` with ``refused`` set; the pipeline counts it as one
skipped unit with that reason. A path given on the command line is read when it is a
regular file, whatever its name, following a symlink the user named.

File names are text for the store: a name that is not UTF-8 (Python's surrogate escapes)
is kept losslessly by :func:`storable_path` (``\\xNN`` per undecodable byte) and turned
back into bytes by :func:`path_bytes`.

>>> storable_path("caf\\udce9.html")
'caf\\\\xe9.html'
>>> path_bytes(storable_path("caf\\udce9.html"))
b'caf\\xe9.html'
>>> storable_path("pages/listing 1.html")
'pages/listing 1.html'
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from darkmap.errors import NotFoundError
from darkmap.model.limits import MAX_TREE_DEPTH, TREE_DEPTH

__all__ = ["Entry", "Refused", "open_entry", "path_bytes", "read_whole", "storable_path",
           "walk"]

_IGNORED_NAMES = {"LICENSE", "README", "README.md"}
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_SURROGATE = re.compile("[\udc80-\udcff]")
_ESCAPED = re.compile(r"\\\\|\\x([0-9a-f]{2})")


class Refused(OSError):
    """A path the policy does not read; ``str()`` is the reason."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One path the walk met.

    ``source`` is the path as stored (see :func:`storable_path`). A readable entry is
    opened with :func:`open_entry`: ``name`` relative to ``dir_fd`` (valid until the walk
    moves on), or a path when ``dir_fd`` is None: one the user ``given`` (a symlink
    there is followed) or the resolved target of a ``link`` inside the roots. ``refused``
    says why a path is not read; ``ignored`` marks the not-evidence kind (hidden,
    licence).
    """

    source: str
    name: str
    dir_fd: int | None = None
    given: bool = False
    link: bool = False
    refused: str | None = None
    ignored: bool = False


def storable_path(path: str | os.PathLike[str]) -> str:
    """``path`` as text any store accepts, losslessly.

    A path that decoded cleanly and holds no ``\\\\`` or ``\\x`` is returned as is.
    Otherwise every backslash is doubled and every undecodable byte (a surrogate escape)
    becomes ``\\xNN``; :func:`path_bytes` reverses both.
    """
    s = os.fspath(path)
    if not _SURROGATE.search(s) and "\\\\" not in s and "\\x" not in s:
        return s
    s = s.replace("\\", "\\\\")
    return _SURROGATE.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", s)


def path_bytes(stored: str) -> bytes:
    """The file-system bytes of a path kept by :func:`storable_path`."""
    raw = _ESCAPED.sub(lambda m: chr(0xDC00 + int(m.group(1), 16)) if m.group(1) else "\\",
                       stored)
    return os.fsencode(raw)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "unknown file type"


def _not_evidence(name: str) -> str | None:
    """Why a name in a folder is not read as evidence (None: it is read)."""
    if name.startswith("."):
        return "hidden file (not read; name it to ingest it)"
    if name in _IGNORED_NAMES or name.upper().startswith(("LICENSE", "LICENCE", "COPYING")):
        return "licence or read-me file (not read; name it to ingest it)"
    return None


@dataclass(slots=True)
class _Frame:
    """One open folder of the walk."""

    fd: int
    source: str
    real: str
    depth: int
    subdirs: Iterator[str] = field(default_factory=lambda: iter(()))


@dataclass(slots=True)
class _Roots:
    """The real paths the given folders and files resolve to (where links may point)."""

    folders: list[str] = field(default_factory=list)
    files: set[str] = field(default_factory=set)

    def inside(self, real: str) -> bool:
        return real in self.files or any(
            real == d or real.startswith(d if d.endswith("/") else d + "/")
            for d in self.folders)


def walk(paths: Iterable[Path | str], max_depth: int = MAX_TREE_DEPTH) -> Iterator[Entry]:
    """Every path under ``paths`` as an :class:`Entry`, in a stable order.

    In each folder its files come first (sorted by name), then its subfolders in order;
    links inside the roots come last. Raises :class:`NotFoundError` before yielding
    anything when a given path does not exist.
    """
    given: list[tuple[str, os.stat_result]] = []
    roots = _Roots()
    for p in paths:
        path = str(Path(p))
        try:
            st = os.stat(path)
        except OSError as exc:
            raise NotFoundError(f"{storable_path(path)}: no such file or folder") from exc
        given.append((path, st))
        real = os.path.realpath(path)
        if stat.S_ISDIR(st.st_mode):
            roots.folders.append(real)
        else:
            roots.files.add(real)
    links: list[Entry] = []
    for path, st in given:
        if stat.S_ISDIR(st.st_mode):
            yield from _walk_folder(path, roots, links, max_depth)
        elif stat.S_ISREG(st.st_mode):
            yield Entry(storable_path(path), path, given=True)
        else:
            yield Entry(storable_path(path), path, refused=f"not a regular file: "
                                                            f"{_kind(st.st_mode)}")
    yield from links


def _walk_folder(top: str, roots: _Roots, links: list[Entry],
                 max_depth: int) -> Iterator[Entry]:
    try:
        fd = os.open(top, _DIR_FLAGS)
    except OSError as exc:
        yield Entry(storable_path(top), top, refused=f"cannot open folder: {exc.strerror}")
        return
    stack: list[_Frame] = []
    try:
        first = _Frame(fd, storable_path(top), os.path.realpath(top), 0)
        stack.append(first)
        yield from _list(first, roots, links)
        while stack:
            frame = stack[-1]
            name = next(frame.subdirs, None)
            if name is None:
                os.close(stack.pop().fd)
                continue
            source = _join(frame.source, name)
            if name.startswith("."):
                yield Entry(source, name, refused="hidden folder (not read)", ignored=True)
                continue
            if frame.depth >= max_depth:
                yield Entry(source, name,
                            refused=f"folder deeper than {max_depth} levels below the "
                                    f"folder given (limit {TREE_DEPTH}): not read")
                continue
            try:
                sub = os.open(name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=frame.fd)
            except OSError as exc:
                yield Entry(source, name, refused=f"cannot open folder: {exc.strerror}")
                continue
            child = _Frame(sub, source, os.path.join(frame.real, name), frame.depth + 1)
            stack.append(child)
            yield from _list(child, roots, links)
    finally:
        for frame in stack:
            os.close(frame.fd)


def _list(frame: _Frame, roots: _Roots, links: list[Entry]) -> Iterator[Entry]:
    """The files of one folder (sorted), and its subfolders remembered on ``frame``."""
    try:
        with os.scandir(frame.fd) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        yield Entry(frame.source, "", refused=f"cannot list folder: {exc.strerror}")
        return
    subdirs = []
    for de in entries:
        source = _join(frame.source, de.name)
        try:
            if de.is_dir(follow_symlinks=False):
                subdirs.append(de.name)
                continue
            entry = _classify(de, frame, source, roots)
        except OSError as exc:  # vanished or unreadable while being listed
            entry = Entry(source, de.name, refused=f"cannot stat: {exc.strerror}")
        if entry.link:
            links.append(entry)
        else:
            yield entry
    frame.subdirs = iter(subdirs)


def _classify(de: os.DirEntry[str], frame: _Frame, source: str, roots: _Roots) -> Entry:
    why = _not_evidence(de.name)
    if why:
        return Entry(source, de.name, refused=why, ignored=True)
    if de.is_symlink():
        return _link(de.name, frame, source, roots)
    if de.is_file(follow_symlinks=False):
        return Entry(source, de.name, frame.fd)
    mode = de.stat(follow_symlinks=False).st_mode
    if stat.S_ISREG(mode):
        return Entry(source, de.name, frame.fd)
    return Entry(source, de.name, refused=f"not a regular file: {_kind(mode)}")


def _link(name: str, frame: _Frame, source: str, roots: _Roots) -> Entry:
    """A symlink: followed (to an absolute path) only to a regular file inside the roots."""
    try:
        st = os.stat(name, dir_fd=frame.fd)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            why = "dangling symlink (its target does not exist)"
        elif exc.errno == errno.ELOOP:
            why = "symlink loop (too many levels of links)"
        else:
            why = f"symlink not followed: {exc.strerror}"
        return Entry(source, name, refused=why)
    try:
        target = os.path.realpath(os.path.join(frame.real, name))
    except OSError as exc:
        return Entry(source, name, refused=f"symlink not followed: {exc.strerror}")
    if not roots.inside(target):
        return Entry(source, name, refused="symlink leaving the folder (not followed)")
    if stat.S_ISDIR(st.st_mode):
        return Entry(source, name, refused="symlink to a folder (not followed)")
    if not stat.S_ISREG(st.st_mode):
        return Entry(source, name, refused=f"symlink to a non-regular file: "
                                           f"{_kind(st.st_mode)}")
    return Entry(source, target, link=True)


def _join(folder_source: str, name: str) -> str:
    """The stored path of ``name`` in a folder whose stored path is ``folder_source``
    (as ``str(Path(folder) / name)`` writes it)."""
    if folder_source == ".":
        return storable_path(name)
    return (folder_source if folder_source.endswith("/") else folder_source + "/") \
        + storable_path(name)


def open_entry(entry: Entry) -> tuple[int, os.stat_result]:
    """Open a readable entry: ``(fd, fstat)`` of a regular file, or raise :class:`Refused`.

    The open never follows a symlink (except on a path the user named) and never blocks;
    what was opened is checked with ``fstat``, so a path swapped for a FIFO or device
    between the listing and the open is refused too. The caller closes ``fd``.
    """
    if entry.refused:
        raise Refused(entry.refused)
    flags = _FILE_FLAGS if entry.given else _FILE_FLAGS | os.O_NOFOLLOW
    try:
        fd = os.open(entry.name, flags, dir_fd=entry.dir_fd)
    except OSError as exc:
        raise Refused(_open_error(exc)) from exc
    try:
        st = os.fstat(fd)
    except OSError as exc:
        os.close(fd)
        raise Refused(f"cannot stat: {exc.strerror}") from exc
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise Refused(f"not a regular file: {_kind(st.st_mode)}")
    return fd, st


def read_whole(fd: int, size: int, limit: int) -> bytes | None:
    """The whole of the open file ``fd`` (``size <= limit`` bytes by its ``fstat``), or
    None when it holds more than ``limit`` bytes.

    A file that grew since its ``fstat`` is read on, up to ``limit + 1`` bytes. Reads by
    offset (``pread``): the file's own position is left as it was.
    """
    data = _pread_upto(fd, size + 1, 0)
    if len(data) > size:  # it grew since fstat: read on, up to the limit
        data += _pread_upto(fd, limit + 1 - len(data), len(data))
    return data if len(data) <= limit else None


def _pread_upto(fd: int, n: int, offset: int) -> bytes:
    """Up to ``n`` bytes of ``fd`` from ``offset`` (fewer only at the end of the file)."""
    parts: list[bytes] = []
    while n > 0:
        more = os.pread(fd, n, offset)
        if not more:
            break
        parts.append(more)
        n -= len(more)
        offset += len(more)
    return b"".join(parts)


def _open_error(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink (not followed)"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "cannot read: permission denied"
    if exc.errno == errno.ENXIO:
        return "not a regular file: socket"
    if exc.errno == errno.ENOENT:
        return "vanished before it was read"
    if exc.errno == errno.ENAMETOOLONG:
        return "path too long to open"
    return f"cannot open: {exc.strerror}"
