"""Extension points: importers, market templates and exporters are registered here.

Every reader of investigator data (saved pages, CSV datasets, seized SQL dumps, chain
data) is an :class:`Importer`. The pipeline never special-cases a format: it asks each
registered importer how well it recognises a file (``sniff``) and hands the file to
the best one. Importers and exporters, built-in or third-party, are declared as entry
points (groups ``darkmap.importers`` and ``darkmap.exporters``, see pyproject.toml) and
registered on first use (:func:`importers`, :func:`exporters`); :func:`register_importer`
adds one by hand.

Choosing a file's importer loads every registered importer and asks each to ``sniff``, so
an importer's module must import cheaply: what only reading needs (a parser library, the
chain store, the page extractor) is imported inside ``read`` / ``read_into``, and a
``sniff_range`` bound lets a costly ``sniff`` be skipped (:func:`best_importer`). Loading
the importers loads no exporter, and the reverse (``darkmap ingest`` of one CSV imports
neither the page extractor, warcio, the chain store nor any exporter;
``tests/test_cli_lazy.py``).

An importer may also offer work to do ahead of its turn in worker processes
(:class:`PreparingImporter`, ``darkmap ingest --jobs N``): a pure function of a file's
bytes whose result reaches :meth:`Importer.read` as :attr:`SourceFile.prepared`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, runtime_checkable

from darkmap.model.records import Record
from darkmap.model.reported import OPERATION_FIGURES

__all__ = [
    "HEAD_BYTES",
    "Exporter",
    "Importer",
    "Prepared",
    "Preparer",
    "PreparingImporter",
    "ReadElsewhere",
    "SourceFile",
    "TableImporter",
    "best_importer",
    "exporter_names",
    "exporters",
    "importers",
    "import_optional",
    "load_builtin",
    "read_elsewhere",
    "readers_elsewhere",
    "register_elsewhere",
    "register_exporter",
    "register_importer",
    "why_unrecognised",
]


HEAD_BYTES = 64 * 1024
"""How much of a file :attr:`SourceFile.head` holds (less for a shorter file)."""


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file handed to an importer: where it came from and its capture hash.

    ``head`` holds the first 64 KiB for sniffing; ``path`` is the immutable capture
    on disk (read it, never write it); ``source`` is the path or URL the investigator
    gave. ``prepared`` is the work a worker did ahead on these very bytes for the
    importer it names (see :class:`PreparingImporter`), or None.
    """

    path: Path
    source: str
    sha256: str
    head: bytes
    prepared: Prepared | None = None


class Prepared(Protocol):
    """Work done ahead for one file (:attr:`SourceFile.prepared`)."""

    importer: str
    """The name of the importer whose :class:`Preparer` did it."""

    def result(self) -> Any:
        """The work's result (waiting for it), or None: the importer does the work itself."""
        ...


@dataclass(frozen=True, slots=True)
class Preparer:
    """Work an importer lets worker processes do ahead of its turn.

    ``wants(head, size)`` runs in the pipeline's process on the first 64 KiB of a
    file read ahead; ``work(data, source)`` runs in a worker on the file's bytes and
    must be a pure function of them, picklable (a module-level function or a
    ``functools.partial`` of one) and return a picklable result. ``setup`` runs in the
    pipeline's process before the first worker starts (what every worker needs, loaded
    once: workers are forked), and only if some file is wanted.
    """

    importer: str
    wants: Callable[[bytes, int], bool]
    work: Callable[[bytes, str], Any]
    setup: Callable[[], object] | None = None


@runtime_checkable
class Importer(Protocol):
    """Reads one kind of source file into evidence records.

    Optional methods (looked up with ``getattr``): ``sniff_range``, ``why_not``,
    ``notes`` and ``media_type(src) -> str``, the media type ingest records for the
    file's capture (``captures.media_type``; docs/architecture.md).
    """

    name: str
    version: str

    def sniff(self, src: SourceFile) -> float:
        """How sure this importer is that it can read ``src``: 0 (no) to 1 (certain)."""
        ...

    def read(self, src: SourceFile) -> Iterator[Record]:
        """Yield records; a bad record becomes a ``QuarantineRecord``, never an exception."""
        ...


@runtime_checkable
class TableImporter(Importer, Protocol):
    """An importer whose data has tables of its own (e.g. Bitcoin blocks).

    ``read_into`` writes with ``con`` inside the pipeline's open transaction (the file
    gets a transaction to itself, so a failure rolls back all of it) and yields a
    ``UnitRecord`` per stored unit and a ``QuarantineRecord`` per bad one.
    """

    def read_into(self, src: SourceFile, con: Any, prov: Any) -> Iterator[Record]:
        """Write ``src``'s rows with ``con``; yield unit and quarantine records."""
        ...


@runtime_checkable
class PreparingImporter(Importer, Protocol):
    """An importer with costly, pure work on a file's bytes that can run ahead."""

    def preparer(self) -> Preparer:
        """What to prepare ahead, and how."""
        ...


class Exporter(Protocol):
    """Writes the evidence store in another tool's format."""

    name: str

    def export(self, workspace: object, out: Path) -> dict[str, int]:
        """Write to ``out``; return counts of what was written."""
        ...


@runtime_checkable
class ReadElsewhere(Protocol):
    """A kind of file that ``darkmap ingest`` does not read because another command does
    (reported operation figures: ``darkmap ops import-reported``). It is never ingested;
    when no importer recognises a file, the first of these that recognises it is named
    with the file, so the analyst learns which command takes it (:func:`read_elsewhere`).
    ``recognises`` gets the file's first 64 KiB and must be cheap."""

    @property
    def name(self) -> str:
        """Its name in the registry."""
        ...

    @property
    def what(self) -> str:
        """What such a file holds, for the message."""
        ...

    @property
    def command(self) -> str:
        """The command that reads it, as the analyst types it (``FILE`` for the file)."""
        ...

    def recognises(self, head: bytes) -> bool:
        """True when ``head`` starts a file of this kind."""
        ...


_IMPORTERS: dict[str, Importer] = {}
_EXPORTERS: dict[str, Exporter] = {}
_ELSEWHERE: dict[str, ReadElsewhere] = {OPERATION_FIGURES.name: OPERATION_FIGURES}
"""The built-in declarations, and those :func:`register_elsewhere` adds."""


def register_importer(importer: Importer) -> Importer:
    """Register an importer instance under its ``name`` (last registration wins)."""
    _IMPORTERS[importer.name] = importer
    return importer


def register_elsewhere(reader: ReadElsewhere) -> ReadElsewhere:
    """Declare a kind of file another command reads (last registration of a name wins)."""
    _ELSEWHERE[reader.name] = reader
    return reader


def readers_elsewhere() -> dict[str, ReadElsewhere]:
    """The kinds of file other commands read, by name."""
    return dict(_ELSEWHERE)


def why_unrecognised(src: SourceFile) -> str | None:
    """For a file no importer recognises: what keeps the format nearest to fitting it from
    fitting, as an importer that offers ``why_not(src) -> str | None`` says (a CSV
    mapping whose header names match but for a column a required field reads); ``None``
    when no importer comes near. Never raises: it only explains."""
    for name in sorted(importers()):
        why_not = getattr(importers()[name], "why_not", None)
        if why_not is None:
            continue
        try:
            reason = why_not(src)
        except Exception:  # noqa: BLE001, S112 - an explanation must never fail the file
            continue
        if reason:
            return str(reason)[:500]
    return None


def read_elsewhere(src: SourceFile) -> ReadElsewhere | None:
    """The declaration of the command that reads ``src``, for a file no importer
    recognises (by content, never by its name); ``None`` if none recognises it."""
    for name in sorted(_ELSEWHERE):
        if _ELSEWHERE[name].recognises(src.head):
            return _ELSEWHERE[name]
    return None


def register_exporter(exporter: Exporter) -> Exporter:
    """Register an exporter instance under its ``name``."""
    _EXPORTERS[exporter.name] = exporter
    return exporter


def import_optional(module: str) -> ModuleType | None:
    """Import ``module`` if it (and its package) exists; ``None`` if it is not built.

    An import error raised *inside* an existing module still propagates: a broken
    stage must fail loudly, only an absent one is skipped.
    """
    try:
        return import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            return None
        raise


@cache
def _load_importers() -> None:
    for ep in entry_points(group="darkmap.importers"):
        imp = ep.load()()
        _IMPORTERS.setdefault(imp.name, imp)  # one registered by hand wins


@cache
def _load_exporters() -> None:
    for ep in entry_points(group="darkmap.exporters"):
        exp = ep.load()()
        _EXPORTERS.setdefault(exp.name, exp)


def load_builtin() -> None:
    """Register every importer and exporter declared as an entry point, once."""
    _load_importers()
    _load_exporters()


def importers() -> dict[str, Importer]:
    """All registered importers by name (loads no exporter)."""
    _load_importers()
    return dict(_IMPORTERS)


def exporters() -> dict[str, Exporter]:
    """All registered exporters by name (loads no importer)."""
    _load_exporters()
    return dict(_EXPORTERS)


def exporter_names() -> list[str]:
    """The export formats installed, sorted, without loading them: the exporters registered
    so far and the names of the ``darkmap.exporters`` entry points (an exporter's entry
    point is named as the exporter, as pyproject.toml's are; a test checks the built-in
    ones). For ``darkmap export --help``: the exporters' modules import the store."""
    return sorted({*_EXPORTERS, *(ep.name for ep in entry_points(group="darkmap.exporters"))})


def best_importer(src: SourceFile, threshold: float = 0.5) -> Importer | None:
    """The importer most sure it can read ``src``, or ``None`` below ``threshold``.

    Ties go to the importer whose name sorts first. An importer may also offer
    ``sniff_range(src) -> (low, high)``, a cheap bound on what ``sniff`` would return;
    its full ``sniff`` then runs only when the bound leaves the winner open, so the
    choice is always the one full sniffs would make.
    """
    cands: list[list[Any]] = []
    for imp in importers().values():
        bound = getattr(imp, "sniff_range", None)
        rng = bound(src) if bound is not None else None
        if rng is None:
            s = imp.sniff(src)
            rng = (s, s)
        cands.append([float(rng[0]), float(rng[1]), imp.name, imp])
    while True:
        live = [c for c in cands if c[1] >= threshold]
        if not live:
            return None
        live.sort(key=lambda c: (-c[0], c[2]))
        top = live[0]
        if top[0] >= threshold and all((-top[0], top[2]) < (-c[1], c[2]) for c in live[1:]):
            winner: Importer = top[3]  # wins even at its lowest against every rival at its highest
            return winner
        c = max((c for c in live if c[0] != c[1]), key=lambda c: c[1] - c[0])
        c[0] = c[1] = float(c[3].sniff(src))


SniffFn = Callable[[SourceFile], float]
