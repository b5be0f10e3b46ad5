"""The package's layout and import boundaries, read from the source (every import, lazy ones too).

- one folder per seam (DESIGN.md, "Layout"), each importing only the seams below it (:data:`MAY_IMPORT`), and
  the run-time import graph has no cycle;
- no module over 600 lines and no function over 60 outside the simulator; all SQL lives in ``batchkit/stores``;
- the engine knows backends only through their interface (it imports no concrete backend);
- nothing in ``batchkit/backends`` imports pandas, the store or the engine: a backend moves
  bytes and reports states;
- the simulator imports nothing from the client side (it is served on its own);
- pure modules (render, keys, results, prices, costs, schemas) import neither the store nor
  the network;
- SDK exceptions are caught in one place, ``batchkit/backends``;
- front ends (``batchkit/frontends``) import the core; nothing in the core imports a front end
  (only the top ``batchkit/__init__`` does, to register them).
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import batchkit

PKG = Path(batchkit.__file__).resolve().parent
ROOT = PKG.parent

PURE = (
    "batchkit.core._json",
    "batchkit.core.columns",
    "batchkit.core.render",
    "batchkit.core.keys",
    "batchkit.core.plan",
    "batchkit.core.models",
    "batchkit.core.results",
    "batchkit.costs.prices",
    "batchkit.costs.pricing",
    "batchkit.core.structured",
    "batchkit.core.media",
)
NETWORK = ("anthropic", "httpx", "httpx2", "socket", "urllib.request", "batchkit.backends.clients", "batchkit.backends")
STORE = ("sqlite3", "batchkit.stores.store")


def _modules() -> dict[str, Path]:
    found = {}
    for path in PKG.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


@cache
def direct_imports(module: str) -> frozenset[str]:
    """Every module ``module`` imports at run time (``if TYPE_CHECKING:`` blocks left out)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return frozenset(names)


def closure(module: str, *, stop: str | None = None) -> set[str]:
    """What importing ``module`` brings in, following batchkit's own modules (and the sub-package
    ``__init__`` each lives in; the top ``batchkit/__init__`` registers everything by design) —
    but not into ``stop`` (a package) when given."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if stop is not None and (name == stop or name.startswith(stop + ".")):
            continue
        if name in MODULES and name != "batchkit":  # `from . import x` names the package, not its __init__
            todo.extend(direct_imports(name))
            parent = name.rpartition(".")[0]
            if parent != "batchkit" and parent in MODULES:
                todo.append(parent)
    return seen


def _hits(names: set[str], banned: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if any(n == b or n.startswith(b + ".") for b in banned))


def test_the_check_sees_imports_through_other_modules():
    assert {"pandas", "batchkit.stores.store", "batchkit.backends.batches"} <= closure("batchkit.engine.jobs")
    assert "anthropic" in closure("batchkit.backends")  # through .errors, the SDK-error map


def test_backends_import_neither_pandas_nor_the_store_nor_the_engine():
    backends = [m for m in MODULES if m.startswith("batchkit.backends")]
    assert "batchkit.backends.batches" in backends and "batchkit.backends.errors" in backends
    for module in backends:
        # not followed into the simulator, whose in-process transport the realtime backend borrows:
        # it is a program of its own, and its sqlite3 is its own state file, not the job store
        reached = closure(module, stop="batchkit.simulator")
        assert not _hits(reached, ("pandas", *STORE, "batchkit.engine.jobs", "batchkit.engine.outcomes")), module
        assert not _hits(
            closure(module), ("pandas", "batchkit.stores.store", "batchkit.engine.jobs", "batchkit.engine.outcomes")
        ), module


def test_the_backend_interface_does_not_import_any_implementation():
    assert not _hits(
        set(direct_imports("batchkit.backends")),
        ("batchkit.backends.batches", "batchkit.backends.realtime", "batchkit.backends.ratelimit"),
    )


def test_the_simulator_imports_nothing_from_the_client_side():
    for module in (m for m in MODULES if m.startswith("batchkit.simulator")):
        outside = [
            n
            for n in direct_imports(module)
            if n.split(".")[0] == "batchkit" and not n.startswith("batchkit.simulator")
        ]
        assert not outside, (module, outside)


def test_pure_modules_import_neither_the_store_nor_the_network():
    for module in PURE:
        assert module in MODULES
        assert not _hits(closure(module), (*STORE, *NETWORK)), module


def test_sdk_errors_are_caught_only_in_the_backends():
    pattern = re.compile(r"except\b[^:\n]*\banthropic\.")
    for module, path in MODULES.items():
        if module.startswith(("batchkit.backends", "batchkit.simulator")):
            continue
        assert not pattern.search(path.read_text()), f"{module} catches an SDK error: map it in backends/errors.py"


FRONTENDS = "batchkit.frontends"


def test_nothing_in_the_core_imports_a_front_end():
    core = [m for m in MODULES if m != "batchkit" and not m.startswith(FRONTENDS)]
    assert "batchkit.engine.calls" in core and "batchkit.engine.jobs" in core and "batchkit.engine.outcomes" in core
    for module in core:
        assert not _hits(closure(module), (FRONTENDS,)), f"{module} imports a front end"


def _front_end(module: str) -> str:
    """The front end a module of ``batchkit/frontends`` belongs to: ``dask`` for ``dask``, ``dask_parts`` and
    ``dask_cascade`` (a front end's own parts are named after it)."""
    return module.rsplit(".", 1)[1].split("_")[0]


def test_front_ends_are_adapters_over_the_core():
    shared = (f"{FRONTENDS}.verbs", f"{FRONTENDS}._hooks")  # what every front end shares: not a front end
    frontends = [m for m in MODULES if m.startswith(FRONTENDS + ".") and m not in shared]
    assert "batchkit.frontends.pandas" in frontends
    for module in frontends:
        imported = direct_imports(module)
        if module == f"{FRONTENDS}.{_front_end(module)}":  # a front end's parts (dask_parts) may serve it otherwise
            assert "batchkit.engine.calls" in imported, f"{module} does not go through batchkit.engine.calls"
        others = [
            n
            for n in imported
            if n.startswith(FRONTENDS + ".") and n not in shared and _front_end(n) != _front_end(module)
        ]
        assert not others, f"{module} imports another front end: {others}"
        assert not _hits(set(imported), ("sqlite3", "batchkit.stores.store", *NETWORK)), (
            f"{module} talks to the store or the network itself; go through the core"
        )
    assert not direct_imports(FRONTENDS), "batchkit/frontends/__init__.py imports nothing (each front end is optional)"
    assert {"batchkit.frontends", "batchkit.frontends.pandas"} & direct_imports("batchkit")


# ---- the seams --------------------------------------------------------------------------------------------

LEAVES = ("batchkit.errors", "batchkit._crash")
"""Modules every seam may import: the exception hierarchy and the recovery tests' fault-injection point."""

MAY_IMPORT: dict[str, tuple[str, ...]] = {
    "core": ("core",),
    "costs": ("core", "costs"),
    "stores": ("core", "costs", "stores"),
    "backends": ("core", "backends", "simulator"),
    "engine": ("core", "costs", "stores", "backends", "engine"),
    "display": ("core", "costs", "stores", "backends", "engine", "display"),
    "compare": ("core", "costs", "stores", "backends", "engine", "display", "compare"),
    "frontends": ("core", "costs", "engine", "display", "compare", "frontends"),
    "simulator": ("simulator",),
}
"""Which seams each seam may import at run time (its own included): DESIGN.md's layout, one direction."""


def _seam(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in MAY_IMPORT else None


def _batchkit_imports(module: str) -> set[str]:
    return {n for n in direct_imports(module) if n.split(".")[0] == "batchkit" and n in MODULES}


def test_every_seam_has_its_folder_and_says_what_it_owns_and_may_import():
    for seam in MAY_IMPORT:
        init = PKG / seam / "__init__.py"
        assert init.exists(), f"batchkit/{seam}/ is missing"
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert len(doc) > 80, f"batchkit/{seam}/__init__.py needs a docstring saying what it owns and may import"
        if seam != "simulator":
            assert "import" in doc, f"batchkit/{seam}/__init__.py does not say what it may import"


def test_each_seam_imports_only_the_seams_below_it():
    wrong = []
    for module in MODULES:
        seam = _seam(module)
        if seam is None:
            continue
        for name in _batchkit_imports(module):
            if name in LEAVES or _seam(name) in MAY_IMPORT[seam]:
                continue
            wrong.append(f"{module} imports {name}")
    assert not wrong, "imports DESIGN.md does not allow:\n" + "\n".join(sorted(wrong))


def test_a_backend_reaches_the_simulator_only_through_its_public_surface():
    for module in (m for m in MODULES if m.startswith("batchkit.backends")):
        private = [n for n in _batchkit_imports(module) if n.startswith("batchkit.simulator.")]
        assert not private, f"{module} imports the simulator's private modules {private}"


def test_the_run_time_import_graph_has_no_cycle():
    graph = {m: {n for n in _batchkit_imports(m) if n != m} for m in MODULES}
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> None:
        if node in done:
            return
        if node in path:
            raise AssertionError("import cycle: " + " -> ".join([*path[path.index(node) :], node]))
        path.append(node)
        for nxt in sorted(graph[node]):
            if nxt != "batchkit":  # the package root imports everything, by design
                visit(nxt)
        path.pop()
        done.add(node)

    for module in sorted(MODULES):
        if module != "batchkit":
            visit(module)


def test_the_engine_knows_backends_only_through_their_interface():
    concrete = ("batchkit.backends.batches", "batchkit.backends.realtime", "batchkit.backends.ratelimit")
    for module in (m for m in MODULES if m.startswith("batchkit.engine")):
        assert not _hits(set(direct_imports(module)), concrete), f"{module} imports a concrete backend"
        text = MODULES[module].read_text()
        assert "MessageBatches" not in text and "Realtime(" not in text, f"{module} names a concrete backend"
        assert not re.search(r"getattr\((self\.)?_?backend\b", text), f"{module} probes a backend's attributes"


SQL = re.compile(
    r"\.execute(many)?\(|[\"']\s*(SELECT|INSERT|UPDATE|DELETE FROM|CREATE TABLE)\b|sqlite3\.Connection|\.query\("
)


def test_all_sql_lives_in_the_stores():
    for module, path in MODULES.items():
        if module.startswith(("batchkit.stores", "batchkit.simulator")):
            continue
        assert not SQL.search(path.read_text()), f"{module} speaks SQL or holds a connection: add a store verb"


def _function_lengths(tree: ast.AST) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                lines -= first.end_lineno - first.lineno + 1  # type: ignore[operator]
            found.append((node.name, lines))
    return found


def test_no_module_over_600_lines_and_no_function_over_60_outside_the_simulator():
    long_modules, long_functions = [], []
    for module, path in MODULES.items():
        if module.startswith("batchkit.simulator"):
            continue
        text = path.read_text()
        if len(text.splitlines()) > 600:
            long_modules.append(f"{module}: {len(text.splitlines())} lines")
        long_functions += [f"{module}.{name}: {n} lines" for name, n in _function_lengths(ast.parse(text)) if n > 60]
    assert not long_modules and not long_functions, "\n".join(long_modules + long_functions)
