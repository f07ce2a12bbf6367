"""Content-addressed store of raw captures: exact bytes, named by their sha256.

A capture is written once to ``captures/ab/cd/<sha256>`` through a temporary file and
an atomic rename, then made read-only. Re-adding the same bytes writes nothing, so a
crash at any point leaves either no file or a complete, correct one; but it first checks
that the stored capture still holds those bytes, and raises :class:`CaptureChangedError`
when it does not (a capture edited after ingest is never trusted again). A capture
deleted from the store is written again from the same bytes. :meth:`CaptureStore.check`
is what ``darkmap verify`` asks of every capture.

A writer killed outright (SIGKILL) in the middle of a capture leaves its temporary file
(``.SHA256.PID.tmp``, part of the bytes). :meth:`CaptureStore.scan` lists every file of
the store, temporary ones apart (``darkmap verify`` reports both kinds of stray file),
and :meth:`CaptureStore.remove_stale_temporaries`, which each ingest calls first,
removes those whose writer is gone (the rule of
:func:`darkmap.model.outputs.stale_writer`: its process runs no more and the file was
not written to for ten minutes; a live writer's is never touched).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Literal, NamedTuple

from darkmap.errors import WorkspaceStateError
from darkmap.model.outputs import pid_runs, stale_writer, sync_file

__all__ = ["CaptureChangedError", "CaptureState", "CaptureStore", "StoreFile",
           "TemporaryFile", "sha256_file", "sha256_stream"]

_TEMPORARY = re.compile(r"\.([0-9a-f]{64})\.(\d{1,10})\.tmp")
"""The name of a capture being written: ``.SHA256.PID.tmp`` (see ``_write``)."""


class StoreFile(NamedTuple):
    """A file in the capture store: its path (relative to the store) and size."""

    path: str
    size: int


class TemporaryFile(NamedTuple):
    """A capture's temporary file: what a writer writes before its rename."""

    path: str
    """Relative to the store."""
    size: int
    pid: int
    """The writer's process id (in the name)."""
    mtime: float
    writer_running: bool
    """Whether a process of that id runs on this machine."""

_CHUNK = 1 << 20

CaptureState = Literal["ok", "missing", "changed"]
"""What :meth:`CaptureStore.check` finds: the bytes hash to their name, the file is gone,
or its bytes hash to something else."""


class CaptureChangedError(WorkspaceStateError):
    """A stored capture no longer holds the bytes its name promises (edited on disk)."""

    def __init__(self, sha256: str, found: str) -> None:
        super().__init__(f"capture {sha256} changed on disk since it was stored (its bytes "
                         f"now hash to {found[:16]}...): not trusted; see `darkmap verify`")
        self.sha256 = sha256
        self.found = found


def sha256_stream(fh: BinaryIO) -> str:
    """Hex sha256 of what is left to read in ``fh``, read in chunks."""
    h = hashlib.sha256()
    for block in iter(lambda: fh.read(_CHUNK), b""):
        h.update(block)
    return h.hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    with open(path, "rb") as fh:
        return sha256_stream(fh)


_FSYNC_FILES = 8  # more unsynced captures than this: one os.sync() instead of fsyncs


def _sync_paths(paths: list[str]) -> None:
    """Flush written captures (and their folders) to disk."""
    if len(paths) > _FSYNC_FILES:
        os.sync()  # one call for many files
    else:
        # a few files (a big CSV, a dump): flush just those and their folders rather
        # than every dirty page of the machine
        for path in paths:
            sync_file(Path(path))
        for folder in {os.path.dirname(p) for p in paths}:
            sync_file(Path(folder))


class CaptureStore:
    """Immutable raw bytes addressed by sha256 under ``root``."""

    def __init__(self, root: Path, durable: bool = True) -> None:
        self.root = root
        self.durable = durable
        self._root = str(root)
        self._unsynced: list[str] = []
        self._dirs: set[str] = set()
        root.mkdir(parents=True, exist_ok=True)

    def sync(self) -> None:
        """Make captures written with ``durable=False`` safe against power loss.

        The ingest pipeline calls this once before each commit, so the database never
        refers to a capture that a power cut could still take away, without paying one
        fsync per file.
        """
        paths, self._unsynced = self._unsynced, []
        _sync_paths(paths)

    def sync_started(self) -> Callable[[], None]:
        """Start :meth:`sync` in a thread; return the function that waits for it.

        The caller does other work (building its inserts) while the disk catches up,
        and waits before its commit: the same guarantee as :meth:`sync`. The wait
        raises what the sync raised.
        """
        paths, self._unsynced = self._unsynced, []
        if not paths:
            return lambda: None
        failed: list[BaseException] = []

        def run() -> None:
            try:
                _sync_paths(paths)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
                failed.append(exc)

        worker = threading.Thread(target=run, name="darkmap-capture-sync", daemon=True)
        worker.start()

        def wait() -> None:
            worker.join()
            if failed:
                raise failed[0]
        return wait

    def path_for(self, sha256: str) -> Path:
        """Where the capture with this hash lives (whether or not it exists)."""
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def _where(self, sha256: str) -> tuple[str, str]:
        """(folder, file) of :meth:`path_for` as plain strings (cheaper than Paths)."""
        folder = os.path.join(self._root, sha256[:2], sha256[2:4])
        return folder, os.path.join(folder, sha256)

    def __contains__(self, sha256: str) -> bool:
        return os.path.exists(self._where(sha256)[1])

    def put_bytes(self, data: bytes, digest: str | None = None) -> str:
        """Store ``data``; return its sha256.

        ``digest`` is that sha256 when the caller has computed it already from these
        very bytes (the ingest's read-ahead does). Raises :class:`CaptureChangedError`
        when a capture of that name is stored but no longer holds ``data``.
        """
        if digest is None:
            digest = hashlib.sha256(data).hexdigest()
        final = self._where(digest)[1]
        try:
            with open(final, "rb") as fh:
                same = os.fstat(fh.fileno()).st_size == len(data) and fh.read() == data
        except FileNotFoundError:
            self._write(digest, lambda fh: fh.write(data))
            return digest
        if not same:
            raise CaptureChangedError(digest, sha256_file(Path(final)))
        return digest

    def adopt(self, sha256: str) -> None:
        """Count the capture ``sha256``, which another process of this run stored (an
        ingest worker, :mod:`darkmap.collect.prefetch`), among those :meth:`sync`
        flushes: written with ``durable=False`` there, it is made safe before the
        commit that refers to it, as this process's own."""
        if not self.durable:
            self._unsynced.append(self._where(sha256)[1])

    def put_stream(self, src: BinaryIO) -> str:
        """Copy the whole of ``src`` (a seekable binary file) into the store; return its
        sha256.

        ``src`` is read twice (hash, then copy while hashing again): bytes that change in
        between raise ``OSError``, so the store never keeps a capture under a wrong
        name. A stored capture of that name is checked as in :meth:`put_bytes`.
        """
        src.seek(0)
        digest = sha256_stream(src)
        state, found = self._state(digest)
        if state == "changed":
            raise CaptureChangedError(digest, found)
        if state == "ok":
            return digest

        def copy(fh: BinaryIO) -> None:
            h = hashlib.sha256()
            src.seek(0)
            for block in iter(lambda: src.read(_CHUNK), b""):
                h.update(block)
                fh.write(block)
            if h.hexdigest() != digest:
                raise OSError("file changed while it was being captured")
        self._write(digest, copy)
        return digest

    def put_file(self, path: Path) -> str:
        """Copy the file at ``path`` into the store; return its sha256 (see
        :meth:`put_stream`)."""
        with open(path, "rb") as src:
            return self.put_stream(src)

    def read_bytes(self, sha256: str) -> bytes:
        """The exact bytes of a capture."""
        return self.path_for(sha256).read_bytes()

    def check(self, sha256: str) -> CaptureState:
        """Whether the capture named ``sha256`` is stored and still hashes to its name."""
        return self._state(sha256)[0]

    def _state(self, sha256: str) -> tuple[CaptureState, str]:
        try:
            found = sha256_file(Path(self._where(sha256)[1]))
        except FileNotFoundError:
            return "missing", ""
        return ("ok" if found == sha256 else "changed"), found

    def verify(self, sha256: str) -> bool:
        """True when the stored bytes still hash to their name."""
        return self.check(sha256) == "ok"

    def scan(self) -> tuple[list[StoreFile], list[TemporaryFile]]:
        """Every file in the store, by path: the files (captures, and anything else put
        there) and apart from them the temporary files of captures being written, or
        left by a writer killed mid-write. Folders are walked, links not followed."""
        files: list[StoreFile] = []
        temps: list[TemporaryFile] = []
        for folder, dirs, names in os.walk(self._root):
            dirs.sort()
            for name in sorted(names):
                full = os.path.join(folder, name)
                try:
                    st = os.lstat(full)
                except OSError:  # removed meanwhile
                    continue
                rel = os.path.relpath(full, self._root)
                m = _TEMPORARY.fullmatch(name)
                if m is None:
                    files.append(StoreFile(rel, st.st_size))
                    continue
                pid = int(m.group(2))
                temps.append(TemporaryFile(rel, st.st_size, pid, st.st_mtime,
                                           pid == os.getpid() or pid_runs(pid)))
        return files, temps

    def remove_stale_temporaries(self, now: float | None = None) -> list[str]:
        """Remove the temporary files of writers killed mid-capture (their process runs
        no more and the file was left unwritten for ten minutes:
        :func:`~darkmap.model.outputs.stale_writer`); return their paths (relative to the
        store). A live writer's file, and one that cannot be removed, stay."""
        now = time.time() if now is None else now
        removed: list[str] = []
        for tmp in self.scan()[1]:
            if not stale_writer(tmp.pid, tmp.mtime, now):
                continue
            try:
                os.unlink(os.path.join(self._root, tmp.path))
            except OSError:  # gone meanwhile, or not ours to remove: left as it is
                continue
            removed.append(tmp.path)
        return removed

    def _write(self, digest: str, writer: Callable[[BinaryIO], object]) -> None:
        folder, final = self._where(digest)
        if folder not in self._dirs:  # mkdir once per fan-out folder, not per file
            self._mkdir(os.path.dirname(folder))
            self._mkdir(folder)
        tmp = os.path.join(folder, f".{digest}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as fh:
                writer(fh)
                fh.flush()
                if self.durable:
                    os.fsync(fh.fileno())
                os.fchmod(fh.fileno(), stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
            os.replace(tmp, final)
        except BaseException:
            # a failed or interrupted write (a full disk, a file changing under it, a
            # time limit) leaves no temporary file behind
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        if not self.durable:
            self._unsynced.append(final)

    def _mkdir(self, folder: str) -> None:
        if folder not in self._dirs:
            try:
                os.mkdir(folder)
            except FileExistsError:
                pass
            self._dirs.add(folder)
