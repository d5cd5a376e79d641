"""Generate chronik's synchronous API from its async source.

    python tools/async_to_sync.py            # rewrite the checked-in sync modules
    python tools/async_to_sync.py --root D   # write them under D instead (the CI check)

Why generated, and why this way
-------------------------------
The async modules are the one source of truth.  Each module listed in
``MODULES`` is read with ``ast`` and written to ``<package>/sync/<module>.py``:

* ``async def`` -> ``def``, ``await x`` -> ``x``, ``async with``/``async for``
  (and async comprehensions) -> their plain forms;
* names in ``RENAMES`` are mapped (``AsyncConnection`` -> ``Connection``,
  ``asyncio.sleep`` -> ``time.sleep``, ``__aenter__`` -> ``__enter__`` ...);
* chronik's own classes keep their names: the sync twin of
  ``eventstore.PostgresEventStore`` is ``eventstore.sync.PostgresEventStore``,
  as Django code reads best when only the import line differs.

Only what touches I/O is converted.  A top-level definition that contains no
async code and names nothing converted (SQL text, row decoding, validation,
dataclasses, errors) is *imported* from the async module instead of copied, so
there is exactly one object of each such kind: an ``OpenTransaction`` or a
``SchemaRecord`` is the same class for both APIs.  The generated modules are
the thin I/O layer only.

Members in ``OMIT`` are left out of the sync API: live subscriptions
(``subscribe``) need a wake-up listener and stay async with the runners.

Async-only code: an ``if ASYNC_ONLY:`` or ``if ASYNC_ONLY and ...:`` statement
(no ``else``) is left out of the sync twin, at any depth.  ``ASYNC_ONLY`` is a
constant ``True`` (``eventstore._pg_coalesce``), so the async code runs the
branch and the sync code falls through to what follows it: the store's
coalescing of concurrent appends, for one, which only concurrent tasks need.
Keep such code in modules not listed in ``MODULES``; its names then go unused
in the twin and their imports are dropped with them.

Comments do not survive ``ast``; the header of every generated file names its
source, where the reasons live.  ``tests/unit/test_sync_generated.py`` runs
this script into a temporary directory and fails if a checked-in file differs.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Module:
    package: str
    name: str  # the module's file name without .py, e.g. "_postgres"

    @property
    def source(self) -> Path:
        return ROOT / self.package / f"{self.name}.py"

    @property
    def target(self) -> Path:
        return Path(self.package) / "sync" / f"{self.name}.py"

    @property
    def dotted(self) -> str:
        return f"{self.package}.{self.name}"


MODULES = [
    Module("eventstore", "_lifecycle"),
    Module("eventstore", "_embedded"),
    Module("eventstore", "_schemas"),
    Module("eventstore", "_pg_schemas"),
    Module("eventstore", "_pg_schema"),
    Module("eventstore", "_pg_append"),
    Module("eventstore", "_pg_jsonb"),
    Module("eventstore", "_pg_raw"),
    Module("eventstore", "_store"),
    Module("eventstore", "_memory"),
    Module("eventstore", "_postgres"),
    Module("snapshots", "_store"),
    Module("snapshots", "_pg_schema"),
    Module("snapshots", "_memory"),
    Module("snapshots", "_postgres"),
    Module("aggregates", "_snapshotting"),
    Module("aggregates", "_repository"),
    Module("projections", "_redis_embedded"),
    Module("projections", "_redis_reads"),
    Module("projections", "_mongo_reads"),
]

RENAMES = {
    "AsyncConnection": "Connection",
    "AsyncCursor": "Cursor",
    "AsyncRawCursor": "RawCursor",
    "AsyncConnectionPool": "ConnectionPool",
    "AsyncIterator": "Iterator",
    "AsyncIterable": "Iterable",
    "AsyncGenerator": "Generator",
    "AbstractAsyncContextManager": "AbstractContextManager",
    "AsyncClosing": "Closing",
    "asynccontextmanager": "contextmanager",
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "aclose": "close",
    "aioredis": "redis",
    "AsyncMongoClient": "MongoClient",
}
# Modules whose synchronous twin has another name.
MODULE_RENAMES = {"redis.asyncio": "redis"}
# ``module.attribute`` calls with a synchronous counterpart elsewhere.
ATTRIBUTE_RENAMES = {
    ("asyncio", "sleep"): ("time", "sleep"),
    ("asyncio", "Lock"): ("threading", "Lock"),
    ("asyncio", "Event"): ("threading", "Event"),
}
# Type wrappers that vanish: ``Awaitable[T]`` is ``T`` once nothing is awaited.
UNWRAP = {"Awaitable": 0, "Coroutine": 2}
OMIT = {"subscribe", "listen_for_appends", "_wake_up_listener"}
# The name that marks an ``if`` statement as async-only (see the docstring).
ASYNC_ONLY = "ASYNC_ONLY"


def _is_async(node: ast.AST) -> bool:
    return any(
        isinstance(n, ast.AsyncFunctionDef | ast.Await | ast.AsyncWith | ast.AsyncFor)
        or (isinstance(n, ast.comprehension) and n.is_async)
        for n in ast.walk(node)
    )


def _names(node: ast.AST) -> set[str]:
    found: set[str] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            found.add(n.id)
        elif isinstance(n, ast.Attribute):
            found.add(n.attr)
    return found


def _defined(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def _is_async_only(node: ast.stmt) -> bool:
    """``if ASYNC_ONLY:`` or ``if ASYNC_ONLY and ...:``, which the sync twin drops."""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        test = test.values[0]
    if not (isinstance(test, ast.Name) and test.id == ASYNC_ONLY):
        return False
    if node.orelse:
        raise SystemExit(f"line {node.lineno}: an 'if {ASYNC_ONLY}' statement cannot have 'else'")
    return True


def converted_names(modules: list[Module]) -> dict[Module, set[str]]:
    """Per module, the top-level names that must be converted (to a fixed point)."""
    trees = {m: ast.parse(m.source.read_text()) for m in modules}
    bound: dict[Module, set[str]] = {m: set() for m in modules}
    changed = True
    while changed:
        changed = False
        every = set(RENAMES).union(*bound.values())
        for module, tree in trees.items():
            for node in tree.body:
                names = _defined(node)
                if not names or set(names) <= bound[module]:
                    continue
                if _is_async(node) or _names(node) & every:
                    bound[module].update(names)
                    changed = True
    return bound


class _ToSync(ast.NodeTransformer):
    def visit_If(self, node: ast.If) -> Any:
        if _is_async_only(node):
            return None  # dropped; the sync code runs what follows
        return self.generic_visit(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> Any:
        sync = ast.FunctionDef(**{f: getattr(node, f) for f in node._fields})
        ast.copy_location(sync, node)
        return self.visit(sync)

    def visit_AsyncWith(self, node: ast.AsyncWith) -> Any:
        return self.visit(ast.copy_location(ast.With(node.items, node.body), node))

    def visit_AsyncFor(self, node: ast.AsyncFor) -> Any:
        plain = ast.For(node.target, node.iter, node.body, node.orelse)
        return self.visit(ast.copy_location(plain, node))

    def visit_Await(self, node: ast.Await) -> Any:
        return self.visit(node.value)

    def visit_comprehension(self, node: ast.comprehension) -> Any:
        node.is_async = 0
        return self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> Any:
        node.id = RENAMES.get(node.id, node.id)
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> Any:
        node.name = RENAMES.get(node.name, node.name)
        return self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> Any:
        node.name = RENAMES.get(node.name, node.name)
        node.body = [
            n
            for n in node.body
            if not (isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name in OMIT)
        ]
        return self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> Any:
        if isinstance(node.value, ast.Name):
            mapped = ATTRIBUTE_RENAMES.get((node.value.id, node.attr))
            if mapped:
                return ast.copy_location(
                    ast.Attribute(ast.Name(mapped[0], ast.Load()), mapped[1], node.ctx), node
                )
        node.attr = RENAMES.get(node.attr, node.attr)
        return self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> Any:
        if isinstance(node.value, ast.Name) and node.value.id in UNWRAP:
            inner = node.slice
            if isinstance(inner, ast.Tuple):
                inner = inner.elts[UNWRAP[node.value.id]]
            return self.visit(inner)
        return self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> Any:
        # asyncio.to_thread(f, *args) runs f in a thread; in sync code call it.
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and (func.value.id, func.attr) == ("asyncio", "to_thread")
        ):
            call = ast.Call(node.args[0], node.args[1:], node.keywords)
            return self.visit(ast.copy_location(call, node))
        return self.generic_visit(node)


def _package_of(module: Module, level: int, name: str | None) -> str:
    """The dotted module a relative import in ``module`` points at."""
    parts = module.package.split(".")
    base = parts[: len(parts) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def generate(module: Module, bound: dict[Module, set[str]]) -> str:
    tree = ast.parse(module.source.read_text())
    by_dotted = {m.dotted: m for m in bound}
    # Which converted names each package's sync subpackage exports.
    sync_packages: dict[str, set[str]] = {}
    for m, names in bound.items():
        sync_packages.setdefault(m.package, set()).update(RENAMES.get(n, n) for n in names)

    body: list[ast.stmt] = []
    imports: list[ast.stmt] = []
    shared: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the module docstring: replaced by the header
        if isinstance(node, ast.ImportFrom):
            imports.extend(_import_from(module, node, by_dotted, bound, sync_packages))
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                alias.name = MODULE_RENAMES.get(alias.name, alias.name)
                if alias.asname is not None:
                    alias.asname = RENAMES.get(alias.asname, alias.asname)
                    if alias.asname == alias.name:
                        alias.asname = None
            imports.append(node)
            continue
        defined = _defined(node)
        if defined and not set(defined) & bound[module]:
            shared.extend(defined)
            continue
        body.append(_ToSync().visit(node))

    if shared:
        imports.append(ast.ImportFrom(module.dotted, [ast.alias(n) for n in shared], 0))
    header = (
        f"Generated from {module.package}/{module.name}.py by tools/async_to_sync.py: "
        "do not edit.\n\n"
        f"The synchronous twin of ``{module.dotted}``; read the source for the reasons\n"
        f"behind the code (comments do not survive the conversion)."
    )
    used = {n.id for node in body for n in ast.walk(node) if isinstance(n, ast.Name)}
    for node in imports:
        if isinstance(node, ast.ImportFrom) and node.module and ".sync" not in node.module:
            _refuse_async_names(node.module, [a.name for a in node.names if a.name in used])
    new = ast.Module(
        [ast.Expr(ast.Constant(header)), *_used_imports(imports, body), *body], type_ignores=[]
    )
    ast.fix_missing_locations(new)
    return ast.unparse(new) + "\n"


def _import_from(
    module: Module,
    node: ast.ImportFrom,
    by_dotted: dict[str, Module],
    bound: dict[Module, set[str]],
    sync_packages: dict[str, set[str]],
) -> list[ast.stmt]:
    if node.module == "__future__":
        return [node]
    target = _package_of(module, node.level, node.module) if node.level else node.module or ""
    source = by_dotted.get(target)
    moved: list[ast.alias] = []
    kept: list[ast.alias] = []
    for alias in node.names:
        renamed = RENAMES.get(alias.name, alias.name)
        if source is not None:
            converted = alias.name in bound[source]
        else:  # a package's public name: converted if its sync subpackage has it
            converted = renamed in sync_packages.get(target, set())
        if converted:
            moved.append(ast.alias(renamed, alias.asname))
        else:
            kept.append(ast.alias(renamed, alias.asname))
    out: list[ast.stmt] = []
    if kept:
        out.append(ast.ImportFrom(target, kept, 0))
    if moved:
        if source is not None:
            out.append(ast.ImportFrom(f"{source.package}.sync.{source.name}", moved, 0))
        else:
            out.append(ast.ImportFrom(f"{target}.sync", moved, 0))
    return out


def _refuse_async_names(dotted: str, names: list[str]) -> None:
    """Fail when a module not in MODULES hands over a definition tied to async I/O.

    Importing it into sync code would type-check only by accident and fail at
    run time (an async connection expected, a coroutine returned): such a
    module belongs in MODULES so that it gets a sync twin.
    """
    path = ROOT / Path(*dotted.split(".")).with_suffix(".py")
    if not path.is_file():
        return  # a package's __init__ or a third-party module
    for node in ast.parse(path.read_text()).body:
        defined = _defined(node)
        if set(defined) & set(names) and (_is_async(node) or _names(node) & set(RENAMES)):
            raise SystemExit(
                f"{dotted}.{defined[0]} uses async I/O: add {dotted} to MODULES "
                "in tools/async_to_sync.py"
            )


def _used_imports(imports: list[ast.stmt], body: list[ast.stmt]) -> list[ast.stmt]:
    used: set[str] = set()
    for node in body:
        for n in ast.walk(node):
            if isinstance(n, ast.Name):
                used.add(n.id)
    needed = {"time", "threading"} & used
    out: list[ast.stmt] = []
    for node in imports:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            out.append(node)
            continue
        assert isinstance(node, ast.Import | ast.ImportFrom)
        names = [a for a in node.names if (a.asname or a.name).split(".")[0] in used]
        if isinstance(node, ast.Import):
            needed -= {a.name for a in names}
        if names:
            node.names = names
            out.append(node)
    out.extend(ast.Import([ast.alias(name)]) for name in sorted(needed))
    return out


def _format(text: str, path: Path) -> str:
    """ruff's import sorting and formatting, so the output reads like the source."""
    for command in (
        ["check", "--fix-only", "--select", "I,F401,UP", "--exit-zero", "-q"],
        ["format", "-q"],
    ):
        done = subprocess.run(  # noqa: S603 (our own interpreter and arguments)
            [sys.executable, "-m", "ruff", *command, "--stdin-filename", str(path), "-"],
            input=text,
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        )
        text = done.stdout
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="where to write the packages")
    options = parser.parse_args(argv)
    bound = converted_names(MODULES)
    for module in MODULES:
        path = options.root / module.target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_format(generate(module, bound), ROOT / module.target))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
