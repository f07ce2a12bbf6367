"""The architecture, checked from the source (issue #12, "What it must show").

The import graph of ``src/darkmap`` is built with :mod:`ast`: module-level imports,
imports inside functions, ``from darkmap import x`` where ``x`` is a module, relative
imports, and imports by string (``importlib.import_module`` / ``import_optional`` /
``__import__`` of a literal name). On it and on the source text these hold:

(a) no import cycle between modules, and none between packages (the top-level
    subpackages and modules of ``darkmap``);
(b) no edge from a lower layer to a higher one (:data:`LAYERS`), and every module has a
    layer (a new top-level module fails until it is placed);
(c) no import by string except of an optional extra (:data:`OPTIONAL_EXTRAS`);
(d) SQL only in ``darkmap/store``: elsewhere no string that reads as SQL (docstrings
    aside) and no call on a database connection (``con.execute``, ``ws.con.sql``, ...);
(e) inside ``darkmap/store`` a table is written only by its owner module
    (:func:`owners_of`); the tables are read from the migrations, so a new table without
    an owner fails;
(f) ``python -c "import darkmap; help(darkmap)"`` runs.

Entry points (pyproject's ``darkmap.importers`` / ``darkmap.exporters``, loaded by
``darkmap.plugins``) are declared wiring, not imports: they are not edges of the graph.

Each check lists every violation (file:line and what) in its assertion message. The
detectors are plain functions over source text; the tests at the end of this file pin
them on small synthetic sources.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from darkmap.store.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
PACKAGE = "darkmap"
STORE = "darkmap.store"
MIGRATIONS = SRC / "darkmap" / "store" / "migrations"

# Low to high. A module may import its own layer (if no cycle results) and lower ones.
# The key is a top-level module or subpackage of darkmap; "darkmap" is the package's
# own __init__ only.
LAYERS: dict[str, int] = {
    "darkmap.errors": 0, "darkmap.model": 0, "darkmap.deferred_imports": 0,
    "darkmap.capture": 1, "darkmap.store": 1,
    "darkmap.plugins": 2, "darkmap.extract": 2,
    "darkmap.importers": 3, "darkmap.collect": 3,
    "darkmap.resolve": 4, "darkmap.assess": 4, "darkmap.chain": 4, "darkmap.ops": 4,
    "darkmap.simulate": 5, "darkmap.training": 5, "darkmap.evaluate": 5,
    "darkmap.report": 6, "darkmap.export": 6,
    "darkmap.pipeline": 7, "darkmap.api": 7,
    "darkmap.cli": 8, "darkmap.web": 8, "darkmap": 8, "darkmap.__main__": 8,
}

# The only packages a module may import by string: optional extras that are not installed
# by default. ``darkmap.plugins.import_optional`` is the one place that imports a name
# given at run time.
OPTIONAL_EXTRAS = frozenset({"torch", "sentence_transformers", "pyspark"})
STRING_IMPORTERS = frozenset({"import_module", "import_optional", "__import__"})
DYNAMIC_IMPORT_SITE = ("darkmap.plugins", "import_optional")

# The owner of each table (issue #12: only the store module of a stage writes its tables;
# any store module may read any table).
EVIDENCE_TABLES = frozenset({
    "markets", "accounts", "listings", "account_observations", "listing_observations",
    "feedback", "feedback_counts", "identifiers", "pgp_keys", "skipped_pages", "quarantine",
    "field_cuts", "captures", "page_rates",
    "processed", "ingest_runs"})
EVIDENCE_WRITERS = frozenset({"darkmap.store.writer", "darkmap.store.runs",
                              "darkmap.store.workspace"})
OWNERS: dict[str, frozenset[str]] = {
    **dict.fromkeys(EVIDENCE_TABLES, EVIDENCE_WRITERS),
    **dict.fromkeys(("personas", "persona_members", "account_links", "judgements",
                     "link_runs", "persona_changes"), frozenset({"darkmap.store.personas"})),
    **dict.fromkeys(("listing_assessments", "jurisdictions", "sales_monthly",
                     "sales_summary"), frozenset({"darkmap.store.assessment"})),
    "evaluations": frozenset({"darkmap.store.evaluations"}),
    **dict.fromkeys(("ops_agencies", "ops_users", "ops_compartments", "ops_grants",
                     "ops_records", "ops_links", "ops_seizure_items", "ops_lab_results",
                     "ops_selectors", "ops_events", "ops_notices", "ops_reported",
                     "ops_withdrawals", "ops_suspended", "ops_server_key"),
                    # ops_guards: the server's row-level security on them, and the owner
                    # functions of deconfliction that write the notices
                    frozenset({"darkmap.store.operations", "darkmap.store.ops_guards"})),
    **dict.fromkeys(("ops_audit", "ops_audit_head", "ops_audit_archives"),
                    frozenset({"darkmap.store.audit"})),
    **dict.fromkeys(("feedback_rates", "sales_estimates"), frozenset({"darkmap.store.sales"})),
    **dict.fromkeys(("web_logins", "web_failures", "web_tokens", "web_sessions"),
                    frozenset({"darkmap.store.web"})),
    "schema_migrations": frozenset({"darkmap.store.workspace"}),
    **dict.fromkeys(("crawl_jobs", "crawl_frontier", "crawl_fetches"),
                    frozenset({"darkmap.store.crawl"})),
}
PREFIX_OWNERS: dict[str, frozenset[str]] = {"btc_": frozenset({"darkmap.store.chain"})}
# The one bulk writer: it writes the table its caller names, so its SQL may name the
# table at run time (f"INSERT INTO {table} ...").
BULK_WRITER = "darkmap.store.writer"


# --------------------------------------------------------------------------------------
# The source

@dataclass(frozen=True)
class Module:
    """One module of the package: dotted name, file, and whether it is a package."""

    name: str
    path: Path
    is_package: bool

    @property
    def where(self) -> str:
        """The file relative to the repository, for messages."""
        return self.path.relative_to(REPO).as_posix() if self.path.is_relative_to(REPO) \
            else str(self.path)


def module_name(path: Path, src: Path) -> tuple[str, bool]:
    """Dotted name of the module in ``path`` under the source root ``src``."""
    parts = list(path.relative_to(src).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


@cache
def modules() -> dict[str, Module]:
    """Every module of src/darkmap by dotted name."""
    out = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        name, is_package = module_name(path, SRC)
        out[name] = Module(name, path, is_package)
    return out


@cache
def tree_of(path: Path) -> ast.Module:
    """The syntax tree of a file (parsed once per session)."""
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def in_store(name: str) -> bool:
    """True for darkmap.store and its modules."""
    return name == STORE or name.startswith(STORE + ".")


# --------------------------------------------------------------------------------------
# Imports

@dataclass(frozen=True)
class Import:
    """One import in a module. ``target`` is absolute and may name an attribute of a
    module (``darkmap.store.workspace.Workspace``); ``None`` for an import by string
    whose name is computed at run time. ``function`` encloses the import ('' if none)."""

    target: str | None
    line: int
    by_string: bool = False
    function: str = ""


def absolute(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute name of ``from <level dots><name> import ...`` inside ``module``."""
    package = module if is_package else module.rpartition(".")[0]
    parts = package.split(".")
    if level > 1:
        parts = parts[: len(parts) - (level - 1)]
    base = ".".join(parts)
    return f"{base}.{name}" if name else base


def _called_name(func: ast.expr) -> str | None:
    """``f`` for a call of ``f`` or of ``x.f``."""
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _string_import(call: ast.Call, module: str, is_package: bool) -> str | None:
    """The literal module name of ``import_module("x")`` and the like, else None."""
    if not call.args or not isinstance(call.args[0], ast.Constant) \
            or not isinstance(call.args[0].value, str):
        return None
    name = call.args[0].value
    if name.startswith("."):
        package = next((k.value for k in call.keywords if k.arg == "package"
                        and isinstance(k.value, ast.Constant)), None)
        if not isinstance(package, str):
            return None
        level = len(name) - len(name.lstrip("."))
        return absolute(package, True, level, name.lstrip(".") or None)
    return name


def imports_in(tree: ast.AST, module: str, is_package: bool) -> list[Import]:
    """Every import of a module's syntax tree, wherever it stands."""
    found: list[Import] = []

    def visit(node: ast.AST, function: str) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function = node.name
        if isinstance(node, ast.Import):
            found.extend(Import(a.name, node.lineno, function=function) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = absolute(module, is_package, node.level, node.module) if node.level \
                else node.module or ""
            found.extend(Import(base if a.name == "*" else f"{base}.{a.name}", node.lineno,
                                function=function) for a in node.names)
        elif isinstance(node, ast.Call) and _called_name(node.func) in STRING_IMPORTERS:
            found.append(Import(_string_import(node, module, is_package), node.lineno, True,
                                function))
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(tree, "")
    return found


def resolve(target: str, known: set[str]) -> str | None:
    """The module ``target`` names: its longest dotted prefix that is a known module."""
    parts = target.split(".")
    for n in range(len(parts), 0, -1):
        name = ".".join(parts[:n])
        if name in known:
            return name
    return None


@dataclass(frozen=True)
class Edge:
    """``source`` imports ``target`` at ``where`` (file:line)."""

    source: str
    target: str
    where: str
    by_string: bool


def build_graph(mods: dict[str, Module]) -> list[Edge]:
    """Every import between two modules of the package (self-imports left out)."""
    known, edges = set(mods), set()
    for m in mods.values():
        for imp in imports_in(tree_of(m.path), m.name, m.is_package):
            target = imp.target and resolve(imp.target, known)
            if target and target != m.name:
                edges.add(Edge(m.name, target, f"{m.where}:{imp.line}", imp.by_string))
    return sorted(edges, key=lambda e: (e.where, e.target))


@cache
def graph() -> tuple[Edge, ...]:
    """The import graph of src/darkmap."""
    return tuple(build_graph(modules()))


def strongly_connected(nodes: Iterable[str], edges: Iterable[tuple[str, str]]
                       ) -> list[list[str]]:
    """The cycles of a directed graph: its strongly connected components of more than
    one node (Tarjan), each sorted, in sorted order."""
    succ: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        if a != b:
            succ[a].add(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(succ[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(set(nodes) | set(succ)):
        if v not in index:
            connect(v)
    return sorted(out)


def unit_of(module: str) -> str:
    """The package a module belongs to: ``darkmap.x`` for ``darkmap.x.y``; ``darkmap``
    for the package's own __init__."""
    return ".".join(module.split(".")[:2])


def layer_of(module: str) -> int | None:
    """The layer of a module (None: its package is not placed in :data:`LAYERS`)."""
    return LAYERS.get(unit_of(module))


def _same(module: str) -> str:
    return module


def cycle_report(cycles: list[list[str]], edges: Iterable[Edge],
                 unit: Callable[[str], str] = _same) -> list[str]:
    """Per cycle (of modules, or of packages with ``unit=unit_of``): its members and
    every import between two of them (file:line)."""
    edges = list(edges)
    lines = []
    for comp in cycles:
        members = set(comp)
        sites = sorted(f"{e.where} {e.source} -> {e.target}" for e in edges
                       if unit(e.source) in members and unit(e.target) in members
                       and unit(e.source) != unit(e.target))
        lines.append(f"cycle {' <-> '.join(comp)}:\n    " + "\n    ".join(sites))
    return lines


def layer_violations(edges: Iterable[Edge]) -> list[str]:
    """Imports from a lower layer to a higher one."""
    out = []
    for e in edges:
        lo, hi = layer_of(e.source), layer_of(e.target)
        if lo is not None and hi is not None and lo < hi:
            how = " (by string)" if e.by_string else ""
            out.append(f"{e.where}: {e.source} (layer {lo}) imports {e.target} "
                       f"(layer {hi}){how}")
    return sorted(out)


def string_import_violations(mod: Module, tree: ast.AST) -> list[str]:
    """Imports by string other than of an optional extra."""
    out = []
    for imp in imports_in(tree, mod.name, mod.is_package):
        if not imp.by_string:
            continue
        if imp.target is None:
            if (mod.name, imp.function) != DYNAMIC_IMPORT_SITE:
                out.append(f"{mod.where}:{imp.line}: import of a name computed at run time")
        elif imp.target.split(".")[0] not in OPTIONAL_EXTRAS:
            out.append(f"{mod.where}:{imp.line}: import by string of {imp.target!r}")
    return out


# --------------------------------------------------------------------------------------
# SQL

PLACEHOLDER = "{}"
SQL_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (what, re.compile(rx, re.IGNORECASE | re.DOTALL)) for what, rx in (
        ("SELECT ... FROM", (r"\bSELECT\s+(?:DISTINCT\s+)?(?:[\w*\"{}(][^;]*?)\s+FROM\s+"
                             r"[\w\"{}(]")),
        ("INSERT INTO", r"\bINSERT\s+(?:OR\s+(?:IGNORE|REPLACE)\s+)?INTO\b"),
        ("UPDATE ... SET", (r"\bUPDATE\s+(?!SET\b)[\w.\"{}]+\s+(?:(?:AS\s+)?(?!SET\b)\w+\s+)?"
                            r"SET\b")),
        ("DELETE FROM", r"\bDELETE\s+FROM\b"),
        ("CREATE TABLE/VIEW/INDEX", (r"\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMP\s+|TEMPORARY\s+)?"
                                     r"(?:UNIQUE\s+)?(?:TABLE|VIEW|INDEX|SEQUENCE|MACRO)\b")),
        ("DROP TABLE/VIEW/INDEX", r"\bDROP\s+(?:TABLE|VIEW|INDEX|SEQUENCE|MACRO)\b"),
        ("ALTER TABLE", r"\bALTER\s+TABLE\b"),
        ("COPY ... TO/FROM", r"\bCOPY\s+(?:\(|[\w.\"{}]+\s+(?:TO|FROM)\s+['\"{(])"),
        ("COPY INTO", r"\bCOPY\s+INTO\b"),
        ("WITH ... AS (", r"\bWITH\s+(?:RECURSIVE\s+)?\w+\s+AS\s+\((?=\s*SELECT\b)"),
    ))

# Calls that reach a database: methods of a connection or cursor, and the drivers' modules.
DB_METHODS = frozenset({
    "execute", "executemany", "sql", "query", "fetchall", "fetchone", "fetchmany",
    "fetchdf", "fetchnumpy", "fetch_arrow_table", "fetch_record_batch", "arrow", "df", "pl",
    "register", "unregister", "cursor", "commit", "rollback", "begin", "table", "view",
    "read_csv", "read_parquet", "read_json", "from_arrow", "copy", "load_extension",
    "install_extension", "checkpoint"})
CONNECTION_NAME = re.compile(
    r"^_?(?:con|conn|connection|cur|cursor|pg|db)(?:_\w+|\d+)?$|^\w+_(?:con|conn|cur)$")
DB_MODULES = frozenset({"duckdb", "psycopg", "psycopg2", "sqlite3"})


def _is_str(node: ast.AST) -> bool:
    """A string expression: a literal, an f-string, or a ``+`` of strings."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.JoinedStr):
        return True
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) \
        and (_is_str(node.left) or _is_str(node.right))


def string_text(node: ast.AST, constants: dict[str, str] | None = None) -> str:
    """The text of a string expression, each run-time part as ``{}`` (or the value of a
    module-level string constant it names). Adjacent literals are already one node."""
    constants = constants or {}
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(string_text(v, constants) for v in node.values)
    if isinstance(node, ast.FormattedValue) and isinstance(node.value, ast.Name) \
            and node.value.id in constants:
        return constants[node.value.id]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and _is_str(node):
        return string_text(node.left, constants) + string_text(node.right, constants)
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    return PLACEHOLDER


def module_constants(tree: ast.Module) -> dict[str, str]:
    """Module-level ``NAME = "text"`` assignments."""
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name) \
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            out[node.targets[0].id] = node.value.value
    return out


def _code_parts(node: ast.AST) -> list[ast.AST]:
    """The expressions of a string expression that are not string text themselves."""
    if isinstance(node, ast.JoinedStr):
        return [v.value for v in node.values if isinstance(v, ast.FormattedValue)]
    if isinstance(node, ast.BinOp):
        return [p for side in (node.left, node.right)
                for p in (_code_parts(side) if _is_str(side) else [side])]
    return []


def string_literals(tree: ast.AST, constants: dict[str, str] | None = None
                    ) -> list[tuple[int, str]]:
    """Every string expression of the code (line, text). Docstrings and other string
    statements (prose, not code) are left out; f-strings and concatenations are one
    string each."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Expr) and _is_str(node.value):
            return
        if isinstance(node, ast.expr) and _is_str(node):
            found.append((node.lineno, string_text(node, constants)))
            for part in _code_parts(node):  # the expressions inside: they may hold strings
                visit(part)
            return
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


# MySQL's backtick-quoted names: text in that dialect is the content of a dump file (the
# synthetic seized dumps), not a query: DuckDB and PostgreSQL do not accept it.
MYSQL_NAME = re.compile(r"`[^`\s]*`")


def sql_in(text: str) -> list[str]:
    """The kinds of SQL statement ``text`` reads as (empty: not SQL, or MySQL dump text)."""
    if MYSQL_NAME.search(text):
        return []
    return [what for what, rx in SQL_PATTERNS if rx.search(text)]


def _receiver(node: ast.expr) -> str | None:
    """The last name of a call's receiver: ``con`` for ``ws.con.execute``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _root(node: ast.expr) -> str | None:
    """``duckdb`` for ``duckdb.x.y``."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def database_calls(tree: ast.AST) -> list[tuple[int, str]]:
    """Calls on a database connection or cursor, or into a database driver (line, call)."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        method, recv = node.func.attr, _receiver(node.func.value)
        if (method in DB_METHODS and recv and CONNECTION_NAME.match(recv)) \
                or _root(node.func.value) in DB_MODULES:
            found.append((node.lineno, ast.unparse(node.func)))
    return sorted(found)


def sql_violations(mod: Module, tree: ast.Module) -> list[str]:
    """SQL text and database calls in a module outside the store."""
    out = [f"{mod.where}:{line}: SQL ({', '.join(kinds)}): {_short(text)}"
           for line, text in string_literals(tree, module_constants(tree))
           if (kinds := sql_in(text))]
    out += [f"{mod.where}:{line}: database call {call}(...)" for line, call in database_calls(tree)]
    return out


def _short(text: str, n: int = 70) -> str:
    """``text`` on one line, cut to ``n`` characters, quoted."""
    one = " ".join(text.split())
    return repr(one if len(one) <= n else one[: n - 3] + "...")


# --------------------------------------------------------------------------------------
# Table writes

_NAME = r"(?:\"?\w+\"?\.)?\"?(\{\}|[A-Za-z_]\w*)\"?"
WRITE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (verb, re.compile(rx, re.IGNORECASE)) for verb, rx in (
        ("INSERT INTO", rf"\bINSERT\s+(?:OR\s+(?:IGNORE|REPLACE)\s+)?INTO\s+{_NAME}"),
        ("UPDATE", rf"\bUPDATE\s+(?!SET\b){_NAME}\s+(?:(?:AS\s+)?(?!SET\b)\w+\s+)?SET\b"),
        ("DELETE FROM", rf"\bDELETE\s+FROM\s+{_NAME}"),
        ("CREATE TABLE", (r"\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMP\s+|TEMPORARY\s+)?"
                          rf"(?:TABLE|VIEW)\s+(?:IF\s+NOT\s+EXISTS\s+)?{_NAME}")),
        ("CREATE INDEX", (r"\bCREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?"
                          rf"[\w\"]+\s+ON\s+{_NAME}")),
        ("DROP TABLE", rf"\bDROP\s+(?:TABLE|VIEW)\s+(?:IF\s+EXISTS\s+)?{_NAME}"),
        ("ALTER TABLE", rf"\bALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?{_NAME}"),
        ("TRUNCATE", rf"\bTRUNCATE\s+(?:TABLE\s+)?{_NAME}"),
        ("COPY FROM", rf"\bCOPY\s+{_NAME}\s+FROM\b"),
        ("COPY INTO", rf"\bCOPY\s+INTO\s+{_NAME}"),
        ("MERGE INTO", rf"\bMERGE\s+INTO\s+{_NAME}"),
    ))
CREATES = frozenset({"CREATE TABLE"})
# A call such as ``writer.insert_rows(con, "btc_tx", rows)`` writes the table it names.
WRITE_CALL = re.compile(r"insert|write|add_row|upsert", re.IGNORECASE)


@dataclass(frozen=True)
class Write:
    """``verb`` on ``table`` (None: named at run time) at ``line``."""

    line: int
    verb: str
    table: str | None


def writes_in_text(line: int, text: str) -> list[Write]:
    """The tables one SQL string writes."""
    out = []
    for verb, rx in WRITE_PATTERNS:
        for m in rx.finditer(text):
            name = m.group(1)
            out.append(Write(line, verb, None if name == PLACEHOLDER else name.lower()))
    return out


def writes_in(tree: ast.Module, tables: Iterable[str]) -> list[Write]:
    """Every table write of a module: by SQL text, and by a writing call that names a
    known table in a string argument."""
    tables = set(tables)
    out = [w for line, text in string_literals(tree, module_constants(tree))
           for w in writes_in_text(line, text)]
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and WRITE_CALL.search(_called_name(node.func) or ""):
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                if isinstance(arg, ast.Constant) and arg.value in tables:
                    out.append(Write(node.lineno, f"{_called_name(node.func)}()", arg.value))
    return out


def owners_of(table: str) -> frozenset[str] | None:
    """The store modules that may write ``table`` (None: it has no owner)."""
    if table in OWNERS:
        return OWNERS[table]
    return next((o for prefix, o in PREFIX_OWNERS.items() if table.startswith(prefix)), None)


def migration_tables(sql_files: Iterable[Path]) -> set[str]:
    """The tables the migrations leave, applying CREATE / DROP / RENAME in order."""
    rx = re.compile(
        r"\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?\"?(\w+)\"?"
        r"|\bDROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?\"?(\w+)\"?"
        r"|\bALTER\s+TABLE\s+\"?(\w+)\"?\s+RENAME\s+TO\s+\"?(\w+)\"?", re.IGNORECASE)
    tables: set[str] = set()
    for path in sorted(sql_files):
        text = re.sub(r"--[^\n]*", "", path.read_text(encoding="utf-8"))
        for created, dropped, old, new in rx.findall(text):
            if created:
                tables.add(created.lower())
            elif dropped:
                tables.discard(dropped.lower())
            else:
                tables.discard(old.lower())
                tables.add(new.lower())
    return tables


def ownership_violations(store_modules: dict[str, tuple[Module, ast.Module]],
                         tables: set[str]) -> list[str]:
    """Writes, inside the store, of a table by a module that does not own it. A table
    not in the migrations belongs to the store module that creates it (temporary tables,
    the team server's tables)."""
    writes = {name: writes_in(tree, tables) for name, (_, tree) in store_modules.items()}
    created: dict[str, set[str]] = defaultdict(set)
    for name, ws in writes.items():
        for w in ws:
            if w.verb in CREATES and w.table and w.table not in tables:
                created[w.table].add(name)
    out = []
    for name, ws in writes.items():
        where = store_modules[name][0].where
        for w in ws:
            if w.table is None:
                if name != BULK_WRITER:
                    out.append(f"{where}:{w.line}: {w.verb} a table named at run time")
            elif w.table in tables or owners_of(w.table) is not None:
                owners = owners_of(w.table) or frozenset()
                if name not in owners:
                    out.append(f"{where}:{w.line}: {w.verb} {w.table}, owned by "
                               f"{', '.join(sorted(owners)) or 'nobody'}")
            elif name not in created[w.table]:
                made = ", ".join(sorted(created[w.table])) or "no store module"
                out.append(f"{where}:{w.line}: {w.verb} {w.table}, not in the migrations "
                           f"and created by {made}")
    return out


# --------------------------------------------------------------------------------------
# The checks on darkmap

def _fail(what: str, violations: list[str]) -> str:
    """The assertion message: how many, then one violation a line."""
    return f"{len(violations)} {what}:\n  " + "\n  ".join(violations)


def test_no_import_cycle_between_modules() -> None:
    edges = graph()
    cycles = strongly_connected(modules(), [(e.source, e.target) for e in edges])
    assert not cycles, _fail("module import cycles", cycle_report(cycles, edges))


def test_no_import_cycle_between_packages() -> None:
    edges = graph()
    cycles = strongly_connected({unit_of(m) for m in modules()},
                                [(unit_of(e.source), unit_of(e.target)) for e in edges])
    assert not cycles, _fail("package import cycles", cycle_report(cycles, edges, unit_of))


def test_every_module_has_a_layer() -> None:
    unplaced = [f"{m.where}: {m.name} is in no layer (add {unit_of(m.name)} to LAYERS)"
                for m in modules().values() if layer_of(m.name) is None]
    assert not unplaced, _fail("modules without a layer", unplaced)


def test_no_import_from_a_lower_layer_to_a_higher_one() -> None:
    bad = layer_violations(graph())
    assert not bad, _fail("imports against the layers", bad)


def test_no_import_by_string_but_optional_extras() -> None:
    bad = [v for m in modules().values() for v in string_import_violations(m, tree_of(m.path))]
    assert not bad, _fail("imports by string", bad)


def test_sql_only_in_the_store() -> None:
    bad = [v for m in modules().values() if not in_store(m.name)
           for v in sql_violations(m, tree_of(m.path))]
    store_dir = SRC / "darkmap" / "store"
    bad += [f"{p.relative_to(REPO).as_posix()}: an SQL file" for p in
            sorted((SRC / PACKAGE).rglob("*.sql")) if not p.is_relative_to(store_dir)]
    assert not bad, _fail("SQL outside darkmap/store", bad)


def test_every_table_has_an_owner() -> None:
    tables = migration_tables(MIGRATIONS.glob("*.sql"))
    assert tables
    orphans = sorted(t for t in tables if owners_of(t) is None)
    assert not orphans, _fail("tables of the migrations without an owner module (add to "
                              "OWNERS)", orphans)


def test_each_table_written_only_by_its_owner() -> None:
    store = {m.name: (m, tree_of(m.path)) for m in modules().values() if in_store(m.name)}
    bad = ownership_violations(store, migration_tables(MIGRATIONS.glob("*.sql")))
    assert not bad, _fail("writes of a table by a store module that does not own it", bad)


def test_help_on_the_package_runs() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "PAGER": "cat", "MANPAGER": "cat", "TERM": "dumb"}
    run = subprocess.run([sys.executable, "-c", "import darkmap; help(darkmap)"], env=env,
                         capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
                         check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "darkmap" in run.stdout


# --------------------------------------------------------------------------------------
# The detectors, on synthetic sources

def _tree(src: str) -> ast.Module:
    """The syntax tree of a synthetic module."""
    return ast.parse(src)


def test_migration_tables_are_the_tables_of_a_new_workspace(ws: Workspace) -> None:
    assert migration_tables(MIGRATIONS.glob("*.sql")) \
        == set(ws.table_counts()) - {"schema_migrations"}


def test_migrations_are_applied_in_order(tmp_path: Path) -> None:
    (tmp_path / "001_a.sql").write_text("CREATE TABLE a (x INT);\n-- DROP TABLE a\n"
                                        "CREATE TABLE b__new (y INT);")
    (tmp_path / "002_b.sql").write_text("DROP TABLE a; ALTER TABLE b__new RENAME TO b;\n"
                                        'CREATE TABLE IF NOT EXISTS "C" (z INT);')
    assert migration_tables(tmp_path.glob("*.sql")) == {"b", "c"}


def test_imports_of_every_kind_are_found() -> None:
    src = '''
import os
import darkmap.store.workspace
from darkmap import store
from darkmap.model.records import Record
from . import sibling
from .. import errors
from ..model import values as v
import importlib

def f():
    from darkmap.chain import trace
    importlib.import_module("darkmap.report.html")
    return import_optional("torch")

def g(name):
    return import_module(name)
'''
    found = imports_in(_tree(src), "darkmap.resolve.link", False)
    targets = {i.target for i in found}
    assert {"os", "darkmap.store.workspace", "darkmap.store", "darkmap.model.records.Record",
            "darkmap.resolve.sibling", "darkmap.errors", "darkmap.model.values",
            "darkmap.chain.trace", "darkmap.report.html", "torch", None} <= targets
    by_string = {i.target: i.function for i in found if i.by_string}
    assert by_string == {"darkmap.report.html": "f", "torch": "f", None: "g"}
    assert next(i for i in found if i.target == "darkmap.chain.trace").function == "f"
    # relative imports inside a package's __init__ resolve against the package itself
    assert {i.target for i in imports_in(_tree("from .link import x\nfrom . import y"),
                                         "darkmap.resolve", True)} \
        == {"darkmap.resolve.link.x", "darkmap.resolve.y"}


def test_imports_resolve_to_the_module_they_name() -> None:
    known = {"darkmap", "darkmap.store", "darkmap.store.workspace", "darkmap.errors"}
    assert resolve("darkmap.store.workspace.Workspace", known) == "darkmap.store.workspace"
    assert resolve("darkmap.store", known) == "darkmap.store"
    assert resolve("darkmap.Workspace", known) == "darkmap"
    assert resolve("numpy.linalg", known) is None


def test_graph_of_a_synthetic_package_has_its_cycle(tmp_path: Path) -> None:
    pkg = tmp_path / "darkmap"
    for rel, text in {"__init__.py": "", "a/__init__.py": "", "a/x.py": "from darkmap.b import y",
                      "b/__init__.py": "", "b/y.py": "def f():\n    from ..a import x\n",
                      "c.py": "import importlib\nimportlib.import_module('darkmap.a.x')"
                      }.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    mods = {}
    for path in sorted(pkg.rglob("*.py")):
        name, is_package = module_name(path, tmp_path)
        mods[name] = Module(name, path, is_package)
    edges = build_graph(mods)
    assert {(e.source, e.target, e.by_string) for e in edges} == {
        ("darkmap.a.x", "darkmap.b.y", False), ("darkmap.b.y", "darkmap.a.x", False),
        ("darkmap.c", "darkmap.a.x", True)}
    assert strongly_connected(mods, [(e.source, e.target) for e in edges]) \
        == [["darkmap.a.x", "darkmap.b.y"]]
    assert strongly_connected({unit_of(m) for m in mods},
                              [(unit_of(e.source), unit_of(e.target)) for e in edges]) \
        == [["darkmap.a", "darkmap.b"]]
    report = cycle_report([["darkmap.a", "darkmap.b"]], edges, unit_of)
    assert "darkmap/b/y.py:2 darkmap.b.y -> darkmap.a.x" in report[0]


def test_cycles_are_components_not_paths() -> None:
    edges = [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a"), ("e", "e"), ("f", "g"), ("g", "f")]
    assert strongly_connected("abcdefg", edges) == [["a", "b", "c"], ["f", "g"]]
    assert strongly_connected("abc", [("a", "b"), ("b", "c")]) == []


def test_layers_place_every_unit_and_flag_upward_edges() -> None:
    assert layer_of("darkmap") == 8
    assert layer_of("darkmap.errors") == 0
    assert layer_of("darkmap.store.writer") == 1
    assert layer_of("darkmap.cli.common") == 8
    assert layer_of("darkmap.newthing") is None
    edges = [Edge("darkmap.store.team", "darkmap.resolve.lookup", "s.py:3", False),
             Edge("darkmap.resolve.link", "darkmap.chain.trace", "r.py:4", False),
             Edge("darkmap.cli.cmd_link", "darkmap.store.writer", "c.py:5", False),
             Edge("darkmap.plugins", "darkmap.export.ftm", "p.py:6", True)]
    assert layer_violations(edges) == [
        "p.py:6: darkmap.plugins (layer 2) imports darkmap.export.ftm (layer 6) (by string)",
        "s.py:3: darkmap.store.team (layer 1) imports darkmap.resolve.lookup (layer 4)"]


def test_string_imports_allow_only_optional_extras() -> None:
    src = '''
def import_optional(module):
    return import_module(module)
def f(name):
    import_optional("torch.nn")
    import_optional("darkmap.report.html")
    importlib.import_module(name)
'''
    plugins = Module("darkmap.plugins", Path("p.py"), False)
    assert string_import_violations(plugins, _tree(src)) == [
        "p.py:6: import by string of 'darkmap.report.html'",
        "p.py:7: import of a name computed at run time"]
    other = Module("darkmap.other", Path("o.py"), False)
    assert "o.py:3: import of a name computed at run time" \
        in string_import_violations(other, _tree(src))


def test_sql_in_code_is_found_and_prose_in_docstrings_is_not() -> None:
    src = '''
"""Module doc: SELECT name FROM accounts is how you would ask."""
QUERY = "SELECT a, b FROM accounts WHERE x = ?"

def f(con, table):
    """Run DELETE FROM listings, but only in prose."""
    con.run("INSERT OR IGNORE INTO "
            "accounts VALUES (?)")
    con.run(f"SELECT {table}.x FROM {table}")
    con.run("SELECT count(*) " + "FROM " + table)
    msg = "select the rows you want"
    note = "nothing to see" + run("DELETE FROM quarantine")
    """A bare string statement: CREATE TABLE x is prose here."""
    return f"{'UPDATE btc_tx SET height = 1'}"

class C:
    """CREATE TABLE in a class docstring."""
'''
    found = {line: sql_in(text) for line, text in string_literals(_tree(src))}
    assert found == {3: ["SELECT ... FROM"], 7: ["INSERT INTO"], 9: ["SELECT ... FROM"],
                     10: ["SELECT ... FROM"], 11: [], 12: ["DELETE FROM"],
                     14: ["UPDATE ... SET"]}


def test_sql_patterns_cover_the_statements() -> None:
    sql = ["UPDATE btc_tx AS t SET height = 1", "DELETE FROM x", "CREATE TEMP TABLE _t AS",
           "create or replace view v as", "CREATE INDEX i ON t (a)", "DROP TABLE IF EXISTS t",
           "ALTER TABLE t ADD COLUMN c INT", "COPY (SELECT 1) TO 'f.parquet'",
           "COPY t FROM 'x.csv'", "copy {} to '{}' (FORMAT PARQUET)",
           "WITH m AS (SELECT 1) SELECT * FROM m", "SELECT\n  a,\n  b\nFROM t"]
    assert [s for s in sql if not sql_in(s)] == []
    prose = ["Select one or more personas", "update the model", "copy the file to the folder",
             "created a table", "delete it", "run `darkmap link` first", "insert a row",
             "with care", "DROP the idea", "select", "from here on"]
    assert [s for s in prose if sql_in(s)] == []
    dump = ["INSERT INTO `users` VALUES (1);", "DROP TABLE IF EXISTS `{}`;",
            "/*!40000 ALTER TABLE `{}` DISABLE KEYS */;"]
    assert [s for s in dump if sql_in(s)] == []


def test_database_calls_are_found() -> None:
    src = '''
def f(ws, con, cur, batch, pg_con):
    ws.con.execute("x")
    con.sql("x").fetchall()
    self.ws.con.executemany("x", [])
    cur.fetchone()
    pg_con.commit()
    batch.commit()
    content.table()
    duckdb.connect(":memory:")
    dbutil.insert_rows(con, "t", rows)
'''
    assert database_calls(_tree(src)) == [
        (3, "ws.con.execute"), (4, "con.sql"),
        (5, "self.ws.con.executemany"), (6, "cur.fetchone"), (7, "pg_con.commit"),
        (10, "duckdb.connect")]


def test_table_writes_are_read_from_sql_and_writing_calls() -> None:
    src = '''
TABLE = "personas"
def f(con, table):
    con.execute("INSERT OR IGNORE INTO accounts VALUES (?)")
    con.execute("UPDATE btc_tx AS t SET height = b.height FROM btc_blocks b")
    con.execute("INSERT INTO x VALUES (?) ON CONFLICT (k) DO UPDATE SET v = 1")
    con.execute("CREATE TEMP TABLE IF NOT EXISTS _new AS SELECT * FROM listings")
    con.execute('DROP TABLE IF EXISTS "_new"')
    con.execute(f"DELETE FROM {TABLE} WHERE x = ?")
    con.execute(f"INSERT INTO {table} SELECT * FROM v")
    con.execute("COPY btc_tags FROM 'tags.csv'"); names.append("accounts")
    con.execute("COPY (SELECT * FROM btc_tags) TO 'tags.csv'")
    insert_rows(con, "btc_tx", rows)
    reader.count(con, "btc_tx")
    con.execute("UPDATE accounts a SET role = 'x'")
'''
    got = sorted((w.line, w.verb, w.table or "")
                 for w in writes_in(_tree(src), {"btc_tx", "accounts"}))
    assert got == [(4, "INSERT INTO", "accounts"), (5, "UPDATE", "btc_tx"),
                   (6, "INSERT INTO", "x"), (7, "CREATE TABLE", "_new"),
                   (8, "DROP TABLE", "_new"), (9, "DELETE FROM", "personas"),
                   (10, "INSERT INTO", ""), (11, "COPY FROM", "btc_tags"),
                   (13, "insert_rows()", "btc_tx"), (15, "UPDATE", "accounts")]


def test_ownership_of_writes() -> None:
    tables = {"accounts", "btc_tx", "judgements"}
    sources = {
        "darkmap.store.chain": 'A = "INSERT INTO btc_tx SELECT 1"\n'
                               'B = "CREATE TEMP TABLE _t AS SELECT 1"\n'
                               'C = "DROP TABLE _t"',
        "darkmap.store.team": 'A = "CREATE TABLE IF NOT EXISTS team_x (a INT)"\n'
                              'B = "INSERT INTO team_x VALUES (1)"\n'
                              'C = "UPDATE judgements SET withdrawn_at = 1"\n'
                              'D = "INSERT INTO _t SELECT 1"',
        "darkmap.store.writer": 'def f(t):\n    return f"INSERT INTO {t} SELECT 1"',
        "darkmap.store.personas": 'def f(t):\n    return f"DELETE FROM {t}"\n'
                                  'def g(con):\n    insert_rows(con, "accounts", 1)',
    }
    store = {n: (Module(n, Path(n.split(".")[-1] + ".py"), False), _tree(s))
             for n, s in sources.items()}
    assert sorted(ownership_violations(store, tables)) == [
        "personas.py:2: DELETE FROM a table named at run time",
        ("personas.py:4: insert_rows() accounts, owned by darkmap.store.runs, "
         "darkmap.store.workspace, darkmap.store.writer"),
        "team.py:3: UPDATE judgements, owned by darkmap.store.personas",
        "team.py:4: INSERT INTO _t, not in the migrations and created by darkmap.store.chain"]
