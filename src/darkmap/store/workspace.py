"""A workspace is a folder: one DuckDB file plus a content-addressed capture store.

>>> ws = Workspace.init(Path("case-42"))      # doctest: +SKIP
>>> ws.con.sql("select count(*) from listings").fetchone()  # doctest: +SKIP
"""

from __future__ import annotations

import errno
import os
import re
import resource
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from types import TracebackType

import duckdb

from darkmap.capture.content_store import CaptureStore
from darkmap.errors import WorkspaceStateError

__all__ = ["DEFAULT_WORKSPACE", "Workspace", "WorkspaceError", "default_path",
           "environment_error", "storage_failure", "table_exists", "table_has_rows", "utcnow"]

DEFAULT_WORKSPACE = "darkmap-workspace"
DB_NAME = "darkmap.duckdb"
_MIGRATION_RE = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
_LOCK_PID_RE = re.compile(r"\(PID (\d{1,10})\)")
_LOCK_FILE_RE = re.compile(r'Could not set lock on file "([^"\n]{1,4096})"')
_OS_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EACCES, errno.EPERM,
              errno.EFBIG, errno.ENOMEM, errno.EMFILE)
_OS_MESSAGES = tuple(os.strerror(e) for e in _OS_ERRNOS)
"""The machine's errors as DuckDB quotes them inside its own messages."""


class WorkspaceError(WorkspaceStateError):
    """A workspace that is missing, not a workspace, in use, or newer than this darkmap."""


def utcnow() -> datetime:
    """Naive UTC now: the store keeps every timestamp in UTC without a zone."""
    return datetime.now(UTC).replace(tzinfo=None)


def _usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), for DuckDB's thread pool."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: list[str] | None = None) -> int:
    """The number a ``SELECT count(*) ...`` query returns (0 if, impossibly, no row)."""
    row = con.execute(sql, params).fetchone()
    return int(row[0]) if row else 0


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """True when the store has table ``name`` (the migration of its stage ran)."""
    return bool(_count(
        con, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' "
        "AND table_name = ?", [name]))


def table_has_rows(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """True when table ``name`` exists and holds at least one row (its stage has run)."""
    return table_exists(con, name) and _count(
        con, f'SELECT count(*) FROM (SELECT 1 FROM "{name}" LIMIT 1)') > 0


def _connect(db: Path, path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB file: UTC, one thread per usable core, and no extension is ever
    downloaded (darkmap is offline; the extensions it uses ship as Python packages).

    DuckDB's progress bar is off: it prints to standard output once a statement runs for
    two seconds (a big file's commit), inside a command's ``--json`` or CSV output."""
    ext_dir = path / ".duckdb-extensions"
    if not read_only:
        ext_dir.mkdir(exist_ok=True)
    config: dict[str, str | bool | int | float | list[str]] = {
        "extension_directory": str(ext_dir), "autoinstall_known_extensions": False,
        "allow_community_extensions": False}
    try:
        con = duckdb.connect(str(db), read_only=read_only, config=config)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise WorkspaceError(_in_use(path, str(exc))) from exc
        raise WorkspaceError(f"{path}: cannot open {db.name}: {_first_line(exc)}") from exc
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    con.execute(f"SET threads = {_usable_cores()}")
    limit = _memory_limit_mb()
    if limit is not None:
        con.execute(f"SET memory_limit = '{limit}MB'")
    return con


def _memory_limit_mb() -> int | None:
    """DuckDB's buffer limit when the process runs under an address-space cap (``ulimit -v``,
    RLIMIT_AS): a quarter of the cap, so that DuckDB spills or evicts before ``malloc`` fails
    (its default, 80% of physical memory, knows nothing of the cap). ``None``: no cap."""
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (OSError, ValueError):
        return None
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return None
    return max(64, soft // 4 // (1 << 20))


def _in_use(path: Path, message: str) -> str:
    """The one line for a workspace another process holds (DuckDB names its pid)."""
    m = _LOCK_PID_RE.search(message)
    who = f" (pid {m.group(1)})" if m else ""
    return (f"workspace {path} is in use by another darkmap process{who}; try again when it "
            "finishes (one process may write to a workspace, or several read it, never both)")


def _first_line(exc: BaseException) -> str:
    """An exception's message, first line, without DuckDB's ``IO Error: `` prefix."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    head, sep, rest = text.partition(" Error: ")
    return rest if sep and len(head) < 40 else text


def storage_failure(exc: BaseException) -> str | None:
    """One line when ``exc`` is the machine failing darkmap's storage: a full disk, a quota,
    a read-only or failing file system, a permission, no memory (an ``OSError`` with such
    an errno, or a DuckDB error quoting one). ``None`` otherwise."""
    if isinstance(exc, MemoryError):
        return "out of memory"
    if isinstance(exc, OSError):
        if exc.errno not in _OS_ERRNOS:
            return None
        where = exc.filename if exc.filename is not None else ""
        what = exc.strerror or _first_line(exc)
        return f"{where}: {what}" if where else what
    if isinstance(exc, duckdb.OutOfMemoryException) or (
            isinstance(exc, duckdb.Error) and any(m in str(exc) for m in _OS_MESSAGES)):
        return _first_line(exc)
    return None


def environment_error(exc: BaseException) -> str | None:
    """One line for an error of the machine rather than of darkmap: a storage failure
    (:func:`storage_failure`), a file missing or unreadable (any ``OSError``), the database
    file failing to be read or written, or a workspace locked by another process. ``None``
    for anything else.

    >>> environment_error(OSError(28, "No space left on device", "/ws/darkmap.duckdb.wal"))
    '/ws/darkmap.duckdb.wal: No space left on device'
    >>> environment_error(ValueError("a bug")) is None
    True
    """
    failure = storage_failure(exc)
    if failure is not None:
        return failure
    if isinstance(exc, OSError):
        where = exc.filename if exc.filename is not None else ""
        what = exc.strerror or _first_line(exc)
        return f"{where}: {what}" if where else what
    if isinstance(exc, (duckdb.IOException, duckdb.PermissionException)):
        text = _first_line(exc)
        m = _LOCK_FILE_RE.search(text)
        return _in_use(Path(m.group(1)).parent, text) if m else text
    return None


def default_path() -> Path:
    """``$DARKMAP_WORKSPACE`` if set, else ``./darkmap-workspace``."""
    return Path(os.environ.get("DARKMAP_WORKSPACE") or DEFAULT_WORKSPACE)


def migrations() -> list[tuple[int, str, str]]:
    """All schema migrations shipped with darkmap as (version, name, sql), in order."""
    found = []
    for entry in resources.files("darkmap.store").joinpath("migrations").iterdir():
        m = _MIGRATION_RE.match(entry.name)
        if m:
            found.append((int(m.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


class Workspace:
    """An open workspace: ``con`` (DuckDB) and ``captures`` (raw bytes by sha256)."""

    def __init__(self, path: Path, con: duckdb.DuckDBPyConnection) -> None:
        self.path = path
        self.con = con
        self.captures = CaptureStore(path / "captures")

    @classmethod
    def init(cls, path: Path) -> Workspace:
        """Create the workspace at ``path`` (or open it if it exists) and migrate it."""
        if path.exists() and not path.is_dir():
            raise WorkspaceError(f"{path}: exists and is not a folder; choose another path")
        try:
            path.mkdir(parents=True, exist_ok=True)
            (path / "captures").mkdir(exist_ok=True)
        except OSError as exc:
            raise WorkspaceError(f"{path}: cannot create the workspace: {exc.strerror}") from exc
        return cls.open(path)

    @classmethod
    def open(cls, path: Path, read_only: bool = False) -> Workspace:
        """Open an existing workspace, applying any pending forward migrations.

        ``read_only`` opens the DuckDB file without write access (no migration runs): for
        commands that only answer questions. A workspace another process is writing (an
        ingest running) cannot be opened until that process ends; the error says so.
        """
        if path.exists() and not path.is_dir():
            raise WorkspaceError(f"{path}: not a darkmap workspace: it is a file, and a "
                                 "workspace is a folder (give the folder `darkmap init` made)")
        if not path.is_dir():
            raise WorkspaceError(
                f"{path}: not a darkmap workspace (run `darkmap init {path}` first)")
        db = path / DB_NAME
        if not db.exists() and not (path / "captures").is_dir():
            raise WorkspaceError(
                f"{path}: not a darkmap workspace (run `darkmap init {path}` first)"
            )
        con = _connect(db, path, read_only)
        ws = cls(path, con)
        if not read_only:
            try:
                ws.migrate()
            except BaseException:
                con.close()  # the file stays openable (in this process too) at its old version
                raise
        elif ws.pending_migrations():
            # a workspace an older darkmap wrote: migrated once, then opened read-only
            ws.con.close()
            cls.open(path).close()
            ws = cls(path, _connect(db, path, read_only))
        return ws

    def pending_migrations(self) -> list[str]:
        """Names of the shipped migrations this workspace has not applied yet (works on a
        read-only connection)."""
        applied: set[int] = set()
        if table_exists(self.con, "schema_migrations"):
            applied = {int(r[0]) for r in self.con.execute(
                "SELECT version FROM schema_migrations").fetchall()}
        return [name for version, name, _ in migrations() if version not in applied]

    def schema_version(self) -> int:
        """Highest applied migration, 0 for an empty database."""
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP)"
        )
        row = self.con.execute("SELECT max(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0) if row else 0

    def applied_versions(self) -> set[int]:
        """Versions of every migration already applied."""
        self.schema_version()  # creates the bookkeeping table when missing
        return {int(r[0]) for r in self.con.execute(
            "SELECT version FROM schema_migrations").fetchall()}

    def migrate(self) -> list[str]:
        """Apply every shipped migration not yet applied, in order, all in one transaction.

        A version missing below the newest applied one (a stage added later to a
        workspace created earlier) is applied too; a workspace whose newest version is
        unknown to this darkmap is refused. The pending migrations commit together (one
        WAL sync instead of one per migration: a new workspace was created in 13
        transactions), so a failing one leaves the workspace as it was, at its old
        version; the error carries a note naming the migration.
        """
        shipped = migrations()
        known = {v for v, _, _ in shipped}
        applied = self.applied_versions()
        unknown = sorted(applied - known)
        if unknown and unknown[-1] > max(known, default=0):
            raise WorkspaceError(
                f"{self.path}: schema version {unknown[-1]} is newer than this darkmap "
                f"({max(known, default=0)})"
            )
        pending = [(v, name, sql) for v, name, sql in shipped if v not in applied]
        if not pending:
            return []
        self.con.execute("BEGIN TRANSACTION")
        try:
            for _, name, sql in pending:
                try:
                    self.con.execute(sql)
                except duckdb.Error as exc:
                    exc.add_note(f"in migration {name}")
                    raise
            now = utcnow()
            self.con.executemany("INSERT INTO schema_migrations VALUES (?, ?, ?)",
                                 [[v, name, now] for v, name, _ in pending])
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        return [name for _, name, _ in pending]

    def table_counts(self) -> dict[str, int]:
        """Row count of every table in the workspace."""
        names = [r[0] for r in self.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema='main'"
            " ORDER BY table_name").fetchall()]
        return {n: _count(self.con, f'SELECT count(*) FROM "{n}"') for n in names}

    def close(self) -> None:
        """Checkpoint and close the database."""
        try:
            self.con.execute("CHECKPOINT")
        except duckdb.Error:
            pass
        self.con.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
